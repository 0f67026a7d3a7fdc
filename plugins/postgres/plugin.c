/*
 * plugin.c - the PostgreSQL plugin's table, open/close and settings.
 * Settings are parsed and checked once here; every other file reads them
 * from struct pg and never sees the raw key/value list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

struct setting {
    const char *key;
    size_t offset;
    size_t size;
    const char *fallback;
};

#define S(k, field, def) {k, offsetof(struct pg, field), sizeof(((struct pg *)0)->field), def}
static const struct setting string_settings[] = {
    S("host", host, "127.0.0.1"),
    S("socket_dir", socket_dir, ""),
    S("user", user, "postgres"),
    S("password", password, ""),
    S("database", database, "postgres"),
    S("sslmode", sslmode, "prefer"),
    S("datadir", datadir, ""),
    S("bindir", bindir, "/usr/lib/postgresql/15/bin"),
    S("os_user", os_user, "postgres"),
    S("wal_archive_dir", wal_archive_dir, ""),
    S("log_file", log_file, ""),
    S("listen_addresses", listen_addresses, ""),
    S("root_user", root_user, "root"),
    S("initdb_locale", initdb_locale, "C.UTF-8"),
    S("initdb_encoding", initdb_encoding, "UTF8"),
};
#undef S

static const char *const int_settings[] = {"port", "connect_timeout", "start_timeout"};

/* Characters allowed in paths and addresses that end up in pg_ctl's shell
 * command line and in postgresql.conf: no quotes, spaces or shell syntax. */
static bool safe_text(const char *s, const char *extra)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(extra, ch)))
            return false;
    }
    return true;
}

static bool safe_path(const char *p)
{
    return p[0] == '/' && safe_text(p, "/._+-,@=:~") && !strstr(p, "/../") &&
           strlen(p) < PG_PATH_MAX - 64;
}

static int parse_int(const char *key, const char *value, int lo, int hi, int *out, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || !end || *end || end == value || v < lo || v > hi) {
        snprintf(err, errlen, "setting %s = \"%s\" must be an integer in [%d, %d]", key, value, lo, hi);
        return TROVE_EINVAL;
    }
    *out = (int)v;
    return TROVE_OK;
}

static int apply_setting(struct pg *pg, const char *key, const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(string_settings) / sizeof(string_settings[0]); i++) {
        const struct setting *s = &string_settings[i];
        if (strcmp(s->key, key) != 0)
            continue;
        if (strlen(value) >= s->size) {
            snprintf(err, errlen, "setting %s is too long (at most %zu bytes)", key, s->size - 1);
            return TROVE_EINVAL;
        }
        memcpy((char *)pg + s->offset, value, strlen(value) + 1);
        return TROVE_OK;
    }
    if (strcmp(key, "port") == 0)
        return parse_int(key, value, 1, 65535, &pg->port, err, errlen);
    if (strcmp(key, "connect_timeout") == 0)
        return parse_int(key, value, 1, 3600, &pg->connect_timeout, err, errlen);
    if (strcmp(key, "start_timeout") == 0)
        return parse_int(key, value, 1, 86400, &pg->start_timeout, err, errlen);
    (void)int_settings;
    snprintf(err, errlen, "unknown setting \"%s\" in [datastore]", key);
    return TROVE_EINVAL;
}

static void set_defaults(struct pg *pg)
{
    for (size_t i = 0; i < sizeof(string_settings) / sizeof(string_settings[0]); i++)
        snprintf((char *)pg + string_settings[i].offset, string_settings[i].size, "%s", string_settings[i].fallback);
    pg->port = 5432;
    pg->connect_timeout = 5;
    pg->start_timeout = 120;
}

/* Derived defaults and the checks that keep paths out of shell trouble. */
static int finish_settings(struct pg *pg, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (pg->datadir[0]) {
        if (!pg->wal_archive_dir[0])
            snprintf(pg->wal_archive_dir, sizeof(pg->wal_archive_dir), "%s.wal-archive", pg->datadir);
        if (!pg->log_file[0])
            snprintf(pg->log_file, sizeof(pg->log_file), "%s.log", pg->datadir);
    }
    if (!pg->listen_addresses[0] && pg->host[0] != '/')
        snprintf(pg->listen_addresses, sizeof(pg->listen_addresses), "%s", pg->host);
    if (pg->datadir[0] && !safe_path(pg->datadir))
        bad = "datadir";
    else if (!safe_path(pg->bindir))
        bad = "bindir";
    else if (pg->wal_archive_dir[0] && !safe_path(pg->wal_archive_dir))
        bad = "wal_archive_dir";
    else if (pg->log_file[0] && !safe_path(pg->log_file))
        bad = "log_file";
    else if (pg->socket_dir[0] && !safe_path(pg->socket_dir))
        bad = "socket_dir";
    if (bad) {
        snprintf(err, errlen, "setting %s must be an absolute path of letters, digits and /._+-,@=:~", bad);
        return TROVE_EINVAL;
    }
    if (!safe_text(pg->listen_addresses, ".:-_,*") || !safe_text(pg->os_user, "._-") || !pg->os_user[0]) {
        snprintf(err, errlen, "settings listen_addresses and os_user may hold only letters, digits and .:-_,*");
        return TROVE_EINVAL;
    }
    if (!pg->user[0] || !pg->root_user[0] || strcmp(pg->user, pg->root_user) == 0) {
        snprintf(err, errlen, "settings user and root_user must be set and differ");
        return TROVE_EINVAL;
    }
    if (!safe_text(pg->initdb_locale, "._-@") || !safe_text(pg->initdb_encoding, "_-")) {
        snprintf(err, errlen, "settings initdb_locale/initdb_encoding hold unexpected characters");
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

static int pg_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    const struct trove_kv *settings = req->settings;
    size_t n_settings = req->n_settings;
    struct pg *pg = calloc(1, sizeof(*pg));
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    pg->h = host;
    set_defaults(pg);
    int rc = TROVE_OK;
    for (size_t i = 0; i < n_settings && rc == TROVE_OK; i++)
        if (settings[i].key && settings[i].value)
            rc = apply_setting(pg, settings[i].key, settings[i].value, err, errlen);
    if (rc == TROVE_OK)
        rc = finish_settings(pg, err, errlen);
    if (rc != TROVE_OK) {
        explicit_bzero(pg, sizeof(*pg));
        free(pg);
        return rc;
    }
    *self = pg;
    return TROVE_OK;
}

static void pg_close(void *self)
{
    if (!self)
        return;
    explicit_bzero(self, sizeof(struct pg));
    free(self);
}

static const struct trove_plugin plugin = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "postgres",
    .version = "1.0.0",
    .features = TROVE_FEATURE_BACKUP_INCREMENTAL | TROVE_FEATURE_BACKUP_LOGICAL | TROVE_FEATURE_DATABASE_CREATE,
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .start = pg_start,
    .stop = pg_stop,
    .restart = pg_restart,
    .status = pg_status,
    .user_create = pg_user_create,
    .user_delete = pg_user_delete,
    .user_list = pg_user_list,
    .user_show = pg_user_show,
    .user_grant = pg_user_grant,
    .user_revoke = pg_user_revoke,
    .user_access = pg_user_access,
    .user_set_password = pg_user_set_password,
    .root_enable = pg_root_enable,
    .root_disable = pg_root_disable,
    .root_show = pg_root_show,
    .database_create = pg_database_create,
    .database_delete = pg_database_delete,
    .database_list = pg_database_list,
    .config_schema = pg_config_schema,
    .config_validate = pg_config_validate,
    .config_apply = pg_config_apply,
    .config_reset = pg_config_reset,
    .config_show = pg_config_show,
    .backup_create = pg_backup_create,
    .backup_restore = pg_backup_restore,
    .repl_snapshot = pg_repl_snapshot,
    .repl_attach = pg_repl_attach,
    .repl_detach = pg_repl_detach,
    .repl_promote = pg_repl_promote,
    .repl_demote = pg_repl_demote,
    .repl_set_read_only = pg_repl_set_read_only,
    .repl_position = pg_repl_position,
    .repl_wait = pg_repl_wait,
    .repl_status = pg_repl_status,
    .repl_compare = pg_repl_compare,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &plugin;
}
