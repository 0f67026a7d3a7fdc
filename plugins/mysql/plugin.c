/*
 * plugin.c - the MySQL/MariaDB plugin's table, open/close and settings.
 * open() only parses and checks settings; it never touches the server, so an
 * agent starts even while MariaDB is down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mysql_plugin.h"

struct setting_spec {
    const char *key;
    const char *fallback;   /* NULL: no default */
};

/* Every key the [datastore] section may hold, with its default. Paths under
 * run_dir default to it (see settings_derive). */
static const struct setting_spec SPECS[] = {
    {"host", "127.0.0.1"},
    {"port", "3306"},
    {"socket", NULL},
    {"bind_address", NULL},
    {"admin_user", "os_admin"},
    {"admin_password", NULL},
    {"replication_user", "os_repl"},
    {"manage_server", "true"},
    {"datadir", "/var/lib/mysql"},
    {"run_dir", "/var/lib/trove-mysql"},
    {"pid_file", NULL},
    {"log_error", NULL},
    {"overrides_file", NULL},
    {"server_user", "mysql"},
    {"server_id", "1"},
    {"log_bin", "mariadb-bin"},
    {"mariadbd", "mariadbd"},
    {"mariadb_install_db", "mariadb-install-db"},
    {"mariadb_backup", "mariadb-backup"},
    {"mbstream", "mbstream"},
    {"mariadb_dump", "mariadb-dump"},
    {"mariadb", "mariadb"},
    {"connect_timeout", "5"},
    {"start_timeout", "120"},
    {"stop_timeout", "120"},
};
#define N_SPECS (sizeof(SPECS) / sizeof(SPECS[0]))

static const char *lookup(const struct trove_kv *kv, size_t n, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            v = kv[i].value;
    return v;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1"))
        return *out = true, true;
    if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0"))
        return *out = false, true;
    return false;
}

static bool parse_range(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    return parse_i64(v, out) && *out >= lo && *out <= hi;
}

static char *path_in(const char *dir, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

static void settings_free(struct my_settings *s)
{
    char **strs[] = {&s->host, &s->socket, &s->bind_address, &s->admin_user, &s->replication_user, &s->datadir,
                     &s->run_dir, &s->pid_file, &s->log_error, &s->my_cnf, &s->overrides_file, &s->role_file,
                     &s->server_user, &s->log_bin, &s->mariadbd, &s->install_db, &s->backup_tool, &s->mbstream,
                     &s->dump_tool, &s->client_tool};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    my_wipe_free(s->admin_password);
    s->admin_password = NULL;
}

/* Option files and init files hold these values: no line breaks, no quotes. */
static bool plain_value(const char *v)
{
    return v && !strpbrk(v, "\n\r\"");
}

static int settings_numbers(struct my_settings *s, const struct trove_kv *kv, size_t n, char *err, size_t errlen)
{
    int64_t v;
    const char *port = lookup(kv, n, "port"), *sid = lookup(kv, n, "server_id");
    const char *ct = lookup(kv, n, "connect_timeout"), *st = lookup(kv, n, "start_timeout");
    const char *sp = lookup(kv, n, "stop_timeout"), *ms = lookup(kv, n, "manage_server");
    if (!parse_range(port ? port : "3306", 1, 65535, &v))
        return snprintf(err, errlen, "port must be 1..65535"), TROVE_EINVAL;
    s->port = (int)v;
    if (!parse_range(sid ? sid : "1", 1, 4294967295LL, &v))
        return snprintf(err, errlen, "server_id must be 1..4294967295"), TROVE_EINVAL;
    s->server_id = (long)v;
    if (!parse_range(ct ? ct : "5", 1, 3600, &v))
        return snprintf(err, errlen, "connect_timeout must be 1..3600 seconds"), TROVE_EINVAL;
    s->connect_timeout = (unsigned)v;
    if (!parse_range(st ? st : "120", 1, 86400, &v))
        return snprintf(err, errlen, "start_timeout must be 1..86400 seconds"), TROVE_EINVAL;
    s->start_timeout = (unsigned)v;
    if (!parse_range(sp ? sp : "120", 1, 86400, &v))
        return snprintf(err, errlen, "stop_timeout must be 1..86400 seconds"), TROVE_EINVAL;
    s->stop_timeout = (unsigned)v;
    if (!parse_bool(ms ? ms : "true", &s->manage_server))
        return snprintf(err, errlen, "manage_server must be true or false"), TROVE_EINVAL;
    return TROVE_OK;
}

static char *value_or(const struct trove_kv *kv, size_t n, const char *key)
{
    const char *v = lookup(kv, n, key);
    for (size_t i = 0; !v && i < N_SPECS; i++)
        if (strcmp(SPECS[i].key, key) == 0)
            v = SPECS[i].fallback;
    return v ? strdup(v) : NULL;
}

static int settings_parse(struct my_settings *s, const struct trove_kv *kv, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t j = 0; j < N_SPECS && !known; j++)
            known = strcmp(kv[i].key, SPECS[j].key) == 0;
        if (!known)
            return snprintf(err, errlen, "unknown [datastore] setting \"%s\" for the mysql plugin", kv[i].key),
                   TROVE_EINVAL;
        if (kv[i].value && !*kv[i].value)   /* empty is not absent: never a silent default */
            return snprintf(err, errlen, "setting \"%s\" is empty; leave it out for its default", kv[i].key),
                   TROVE_EINVAL;
        bool secret = strstr(kv[i].key, "password") != NULL;   /* escaped wherever written */
        if (!kv[i].value || (secret ? strpbrk(kv[i].value, "\n\r") != NULL : !plain_value(kv[i].value)))
            return snprintf(err, errlen, "setting \"%s\" must not contain line breaks%s", kv[i].key,
                            secret ? "" : " or double quotes"), TROVE_EINVAL;
    }
    int rc = settings_numbers(s, kv, n, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    s->host = value_or(kv, n, "host");
    s->admin_user = value_or(kv, n, "admin_user");
    s->admin_password = value_or(kv, n, "admin_password");
    s->replication_user = value_or(kv, n, "replication_user");
    s->datadir = value_or(kv, n, "datadir");
    s->run_dir = value_or(kv, n, "run_dir");
    s->server_user = value_or(kv, n, "server_user");
    s->log_bin = value_or(kv, n, "log_bin");
    s->mariadbd = value_or(kv, n, "mariadbd");
    s->install_db = value_or(kv, n, "mariadb_install_db");
    s->backup_tool = value_or(kv, n, "mariadb_backup");
    s->mbstream = value_or(kv, n, "mbstream");
    s->dump_tool = value_or(kv, n, "mariadb_dump");
    s->client_tool = value_or(kv, n, "mariadb");
    const char *bind = lookup(kv, n, "bind_address");
    s->bind_address = strdup(bind ? bind : s->host ? s->host : "127.0.0.1");
    return TROVE_OK;
}

/* Paths that default to files in run_dir. */
static int settings_derive(struct my_settings *s, const struct trove_kv *kv, size_t n)
{
    const char *sock = lookup(kv, n, "socket"), *pid = lookup(kv, n, "pid_file");
    const char *log = lookup(kv, n, "log_error"), *ov = lookup(kv, n, "overrides_file");
    if (sock)
        s->socket = strdup(sock);
    else if (s->manage_server)
        s->socket = path_in(s->run_dir, "mysqld.sock");
    s->pid_file = pid ? strdup(pid) : path_in(s->run_dir, "mysqld.pid");
    s->log_error = log ? strdup(log) : path_in(s->run_dir, "error.log");
    s->overrides_file = ov ? strdup(ov) : path_in(s->run_dir, "overrides.cnf");
    s->my_cnf = path_in(s->run_dir, "my.cnf");
    s->role_file = path_in(s->run_dir, "role.cnf");
    return s->pid_file && s->log_error && s->overrides_file && s->my_cnf && s->role_file ? TROVE_OK : TROVE_EINTERNAL;
}

static bool all_set(const struct my_settings *s)
{
    return s->host && s->admin_user && s->replication_user && s->datadir && s->run_dir && s->server_user &&
           s->log_bin && s->mariadbd && s->install_db && s->backup_tool && s->mbstream && s->dump_tool &&
           s->client_tool && s->bind_address;
}

static int settings_check(const struct my_settings *s, char *err, size_t errlen)
{
    if (!s->admin_password || !*s->admin_password)
        return snprintf(err, errlen, "admin_password is required (in the agent's secrets file)"), TROVE_EINVAL;
    if (!*s->admin_user || strlen(s->admin_user) > 80 || strpbrk(s->admin_user, "'\\`"))
        return snprintf(err, errlen, "admin_user must be 1..80 characters without quotes or backslashes"),
               TROVE_EINVAL;
    if (!*s->replication_user || strlen(s->replication_user) > 70 || strpbrk(s->replication_user, "'\\`%"))
        return snprintf(err, errlen, "replication_user must be 1..70 characters without quotes, backslashes "
                                     "or %%"), TROVE_EINVAL;
    if (s->datadir[0] != '/' || s->run_dir[0] != '/')
        return snprintf(err, errlen, "datadir and run_dir must be absolute paths"), TROVE_EINVAL;
    if (s->socket && strlen(s->socket) >= 108)
        return snprintf(err, errlen, "socket path is longer than a unix socket path may be (107 bytes)"),
               TROVE_EINVAL;
    return TROVE_OK;
}

/* Credential files and work directories of an agent that was killed in the
 * middle of an operation (named with its pid; a live process keeps its own). */
static void remove_leftovers(struct my_plugin *p)
{
    static const char *const in_run[] = {".trove-", "backup-"};
    static const char *const beside_data[] = {".trove-restore-"};
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", p->s.datadir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *(slash == parent ? slash + 1 : slash) = '\0';
    int n = remove_stale_temporaries(p->s.run_dir, in_run, 2) + remove_stale_temporaries(parent, beside_data, 1);
    if (n > 0)
        p->host->log(TROVE_LOG_INFO, "mysql: removed %d temporary files left by an interrupted operation", n);
}

static int my_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    const struct trove_kv *settings = req->settings;
    size_t n_settings = req->n_settings;
    struct my_plugin *p = calloc(1, sizeof(*p));
    if (!p)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    p->host = host;
    int rc = settings_parse(&p->s, settings, n_settings, err, errlen);
    if (rc == TROVE_OK && !all_set(&p->s))
        rc = TROVE_EINTERNAL, snprintf(err, errlen, "out of memory");
    if (rc == TROVE_OK && (rc = settings_derive(&p->s, settings, n_settings)) != TROVE_OK)
        snprintf(err, errlen, "out of memory");
    if (rc == TROVE_OK)
        rc = settings_check(&p->s, err, errlen);
    if (rc == TROVE_OK && mysql_library_init(0, NULL, NULL) != 0)
        rc = TROVE_EINTERNAL, snprintf(err, errlen, "libmariadb failed to initialise");
    if (rc != TROVE_OK) {
        settings_free(&p->s);
        free(p);
        return rc;
    }
    remove_leftovers(p);
    *self = p;
    return TROVE_OK;
}

static void my_plugin_close(void *self)
{
    struct my_plugin *p = self;
    if (!p)
        return;
    settings_free(&p->s);
    free(p);
    mysql_library_end();
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "mysql",
    .version = MY_PLUGIN_VERSION,
    .features = TROVE_FEATURE_BACKUP_INCREMENTAL | TROVE_FEATURE_BACKUP_LOGICAL | TROVE_FEATURE_USER_HOST |
                TROVE_FEATURE_DATABASE_CREATE,
    .open = my_open,
    .close = my_plugin_close,
    .prepare = my_prepare,
    .start = my_start,
    .stop = my_stop,
    .restart = my_restart,
    .status = my_status,
    .user_create = my_user_create,
    .user_delete = my_user_delete,
    .user_list = my_user_list,
    .user_show = my_user_show,
    .user_grant = my_user_grant,
    .user_revoke = my_user_revoke,
    .user_access = my_user_access,
    .user_set_password = my_user_set_password,
    .root_enable = my_root_enable,
    .root_disable = my_root_disable,
    .root_show = my_root_show,
    .database_create = my_database_create,
    .database_delete = my_database_delete,
    .database_list = my_database_list,
    .config_schema = my_config_schema,
    .config_validate = my_config_validate,
    .config_apply = my_config_apply,
    .config_reset = my_config_reset,
    .config_show = my_config_show,
    .backup_create = my_backup_create,
    .backup_restore = my_backup_restore,
    .repl_snapshot = my_repl_snapshot,
    .repl_attach = my_repl_attach,
    .repl_detach = my_repl_detach,
    .repl_promote = my_repl_promote,
    .repl_demote = my_repl_demote,
    .repl_set_read_only = my_repl_set_read_only,
    .repl_position = my_repl_position,
    .repl_wait = my_repl_wait,
    .repl_status = my_repl_status,
    .repl_compare = my_repl_compare,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
