/*
 * plugin.c - the MySQL/MariaDB plugin's table, open() and close(). open()
 * only reads and checks the settings, through one table that also refuses
 * keys it does not know; it never touches the server, so an agent starts
 * even while MariaDB is down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_plugin.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct my_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct my_settings, field, key, fallback, lo, hi)
#define B(field, key, fallback) TPS_SETTING_BOOL(struct my_settings, field, key, fallback)

/* Every key the [datastore] section may hold (docs/plugins/mysql.md). Values
 * go into option files, so all but the password are TPS_PLAIN; paths with
 * no fallback default to files in run_dir (derive_paths). */
static const struct tps_setting SETTINGS[] = {
    S(host, "host", "127.0.0.1", TPS_PLAIN),
    I(port, "port", "3306", 1, 65535),
    S(socket, "socket", NULL, TPS_PLAIN),
    S(bind_address, "bind_address", NULL, TPS_PLAIN),
    S(admin_user, "admin_user", "os_admin", TPS_PLAIN),
    S(admin_password, "admin_password", NULL, TPS_REQUIRED | TPS_SECRET),
    S(replication_user, "replication_user", "os_repl", TPS_PLAIN),
    B(manage_server, "manage_server", "true"),
    S(datadir, "datadir", "/var/lib/mysql", TPS_PLAIN | TPS_ABSOLUTE),
    S(run_dir, "run_dir", "/var/lib/trove-mysql", TPS_PLAIN | TPS_ABSOLUTE),
    S(pid_file, "pid_file", NULL, TPS_PLAIN),
    S(log_error, "log_error", NULL, TPS_PLAIN),
    S(slow_log, "slow_query_log_file", NULL, TPS_PLAIN),
    S(general_log, "general_log_file", NULL, TPS_PLAIN),
    S(overrides_file, "overrides_file", NULL, TPS_PLAIN),
    S(server_user, "server_user", "mysql", TPS_PLAIN),
    I(server_id, "server_id", "1", 1, 4294967295LL),
    S(log_bin, "log_bin", "mariadb-bin", TPS_PLAIN),
    S(mariadbd, "mariadbd", "mariadbd", TPS_PLAIN),
    S(install_db, "mariadb_install_db", "mariadb-install-db", TPS_PLAIN),
    S(backup_tool, "mariadb_backup", "mariadb-backup", TPS_PLAIN),
    S(mbstream, "mbstream", "mbstream", TPS_PLAIN),
    S(dump_tool, "mariadb_dump", "mariadb-dump", TPS_PLAIN),
    S(client_tool, "mariadb", "mariadb", TPS_PLAIN),
    I(connect_timeout, "connect_timeout", "5", 1, 3600),
    I(start_timeout, "start_timeout", "120", 1, 86400),
    I(stop_timeout, "stop_timeout", "120", 1, 86400),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

/* Empty is not absent: a known key given "" is refused rather than read as
 * its default, so an empty line in the configuration is an error. (Unknown
 * keys are the table's to name.) */
static int refuse_empty(const struct trove_kv *kv, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!kv[i].key || !kv[i].value || *kv[i].value)
            continue;
        for (size_t k = 0; k < N_SETTINGS; k++)
            if (!strcmp(kv[i].key, SETTINGS[k].key))
                return snprintf(err, errlen, "setting \"%s\" is empty; leave it out for its default", kv[i].key),
                       TROVE_EINVAL;
    }
    return TROVE_OK;
}

/* *field = "<run_dir>/<name>" when the setting was left out. */
static int default_path(char **field, const char *run_dir, const char *name)
{
    if (*field)
        return TROVE_OK;
    return asprintf(field, "%s/%s", run_dir, name) < 0 ? (*field = NULL, TROVE_EINTERNAL) : TROVE_OK;
}

static int derive_paths(struct my_ctx *ctx, const struct trove_open_request *req, char *err, size_t errlen)
{
    struct my_settings *s = &ctx->s;
    int rc = TROVE_OK;
    if (!s->socket && s->manage_server)
        rc = default_path(&s->socket, s->run_dir, "mysqld.sock");
    if (rc == TROVE_OK)
        rc = default_path(&s->pid_file, s->run_dir, "mysqld.pid");
    if (rc == TROVE_OK)
        rc = default_path(&s->log_error, s->run_dir, "error.log");
    if (rc == TROVE_OK)
        rc = default_path(&s->slow_log, s->run_dir, "slow.log");
    if (rc == TROVE_OK)
        rc = default_path(&s->general_log, s->run_dir, "general.log");
    if (rc == TROVE_OK)
        rc = default_path(&s->overrides_file, s->run_dir, "overrides.cnf");
    if (rc == TROVE_OK && !s->bind_address && !(s->bind_address = strdup(s->host)))
        rc = TROVE_EINTERNAL;
    if (rc != TROVE_OK)
        return snprintf(err, errlen, "out of memory"), rc;
    if (!tps_path(ctx->my_cnf, sizeof(ctx->my_cnf), "%s/my.cnf", s->run_dir) ||
        !tps_path(ctx->role_file, sizeof(ctx->role_file), "%s/role.cnf", s->run_dir) ||
        !tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", req->state_dir))
        return snprintf(err, errlen, "run_dir or the state directory path is too long"), TROVE_EINVAL;
    return TROVE_OK;
}

/* Rules between settings and the server's own limits. */
static int check_settings(const struct my_settings *s, char *err, size_t errlen)
{
    if (strlen(s->admin_user) > 80 || strpbrk(s->admin_user, "'\\`"))
        return snprintf(err, errlen, "admin_user must be 1..80 characters without quotes or backslashes"),
               TROVE_EINVAL;
    if (strlen(s->replication_user) > 70 || strpbrk(s->replication_user, "'\\`%"))
        return snprintf(err, errlen, "replication_user must be 1..70 characters without quotes, backslashes "
                                     "or %%"), TROVE_EINVAL;
    if (!strcmp(s->admin_user, s->replication_user))
        return snprintf(err, errlen, "admin_user and replication_user must differ"), TROVE_EINVAL;
    if (s->socket && strlen(s->socket) >= 108)
        return snprintf(err, errlen, "socket path is longer than a unix socket path may be (107 bytes)"),
               TROVE_EINVAL;
    return TROVE_OK;
}

/* Credential files and work directories of an agent that was killed in the
 * middle of an operation (named with its pid; a live process keeps its own). */
static void remove_leftovers(struct my_ctx *ctx)
{
    char parent[MY_PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", ctx->s.datadir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *(slash == parent ? slash + 1 : slash) = '\0';
    int n = tps_remove_stale(ctx->s.run_dir, ".trove-") + tps_remove_stale(ctx->s.run_dir, "backup-") +
            tps_remove_stale(parent, ".trove-restore-");
    if (n > 0)
        ctx->host->log(TROVE_LOG_INFO, "mysql: removed %d temporary files left by an interrupted operation", n);
}

static int my_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    struct my_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    const struct trove_kv *kv = MY_FIELD(req, struct trove_open_request, settings, NULL);
    size_t n_kv = MY_FIELD(req, struct trove_open_request, n_settings, 0);
    int rc;
    if (!MY_FIELD(req, struct trove_open_request, state_dir, NULL)) {
        rc = TROVE_EINVAL, snprintf(err, errlen, "the agent gave no state directory");
        goto fail;
    }
    if ((rc = refuse_empty(kv, n_kv, err, errlen)) != TROVE_OK ||
        (rc = tps_settings_parse(SETTINGS, N_SETTINGS, kv, n_kv, &ctx->s, "mysql", err, errlen)) != TROVE_OK)
        goto fail;
    if ((rc = derive_paths(ctx, req, err, errlen)) != TROVE_OK ||
        (rc = check_settings(&ctx->s, err, errlen)) != TROVE_OK)
        goto fail;
    if (mysql_library_init(0, NULL, NULL) != 0) {
        rc = TROVE_EINTERNAL, snprintf(err, errlen, "libmariadb failed to initialise");
        goto fail;
    }
    remove_leftovers(ctx);
    *self = ctx;
    return TROVE_OK;
fail:
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
    return rc;
}

static void my_close(void *self)
{
    struct my_ctx *ctx = self;
    if (!ctx)
        return;
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
    mysql_library_end();
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "mysql",
    .version = MY_VERSION,
    .features = TROVE_FEATURE_BACKUP_INCREMENTAL | TROVE_FEATURE_BACKUP_LOGICAL | TROVE_FEATURE_USER_HOST |
                TROVE_FEATURE_DATABASE_CREATE,
    .open = my_open,
    .close = my_close,
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
    .repl_credentials = my_repl_credentials,
    .database_alter = my_database_alter,
    .cluster_join = NULL,     /* no membership: a Galera cluster would fill these */
    .cluster_leave = NULL,
    .cluster_status = NULL,
    .guest_log_list = my_guest_log_list,
    .guest_log_read = my_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
