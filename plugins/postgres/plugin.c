/*
 * plugin.c - the PostgreSQL plugin's table, open() and close(). open() only
 * reads and checks the settings, through one support-library table that also
 * refuses keys it does not know; it never touches the server, so the agent
 * starts even when the server is down or not yet prepared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct pg_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct pg_settings, field, key, fallback, lo, hi)

/* Every key the [datastore] section may hold (docs/plugins/postgres.md).
 * Every string has a fallback, so none is NULL after open(). */
static const struct tps_setting SETTINGS[] = {
    S(host, "host", "127.0.0.1", TPS_NONEMPTY),
    I(port, "port", "5432", 1, 65535),
    S(socket_dir, "socket_dir", "", 0),
    S(user, "user", "postgres", TPS_NONEMPTY),
    S(password, "password", "", TPS_SECRET),
    S(database, "database", "postgres", TPS_NONEMPTY),
    S(sslmode, "sslmode", "prefer", TPS_NONEMPTY),
    S(datadir, "datadir", "", 0),
    S(bindir, "bindir", "/usr/lib/postgresql/15/bin", TPS_NONEMPTY),
    S(os_user, "os_user", "postgres", TPS_NONEMPTY),
    S(wal_archive_dir, "wal_archive_dir", "", 0),
    S(log_file, "log_file", "", 0),
    S(listen_addresses, "listen_addresses", "", 0),
    S(root_user, "root_user", "root", TPS_NONEMPTY),
    S(initdb_locale, "initdb_locale", "C.UTF-8", TPS_NONEMPTY),
    S(initdb_encoding, "initdb_encoding", "UTF8", TPS_NONEMPTY),
    I(connect_timeout, "connect_timeout", "5", 1, 3600),
    I(start_timeout, "start_timeout", "120", 1, 86400),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

/* Characters allowed in paths and addresses that end up in archive_command
 * (a shell command) and in postgresql.conf: no quotes, spaces or shell syntax. */
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
    return p[0] == '/' && safe_text(p, "/._+-,@=:~") && !strstr(p, "/../") && strlen(p) < PG_PATH_MAX - 64;
}

/* Replace a string setting by a derived value (the setting's own string is
 * freed). False when out of memory. */
static bool derive(char **field, const char *fmt, const char *value)
{
    struct tps_buf b = {0};
    tps_buf_addf(&b, fmt, value);
    if (!tps_buf_str(&b))
        return false;
    free(*field);
    *field = b.data;   /* the buffer's storage becomes the setting's */
    return true;
}

static int derive_defaults(struct pg_settings *s, char *err, size_t errlen)
{
    bool ok = true;
    if (s->datadir[0] && !s->wal_archive_dir[0])
        ok = derive(&s->wal_archive_dir, "%s.wal-archive", s->datadir);
    if (ok && s->datadir[0] && !s->log_file[0])
        ok = derive(&s->log_file, "%s.log", s->datadir);
    if (ok && !s->listen_addresses[0] && s->host[0] != '/')
        ok = derive(&s->listen_addresses, "%s", s->host);
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok ? TROVE_OK : TROVE_EINTERNAL;
}

/* The checks that keep paths out of shell trouble and names within
 * PostgreSQL's limits. */
static int check_settings(const struct pg_settings *s, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (s->datadir[0] && !safe_path(s->datadir))
        bad = "datadir";
    else if (!safe_path(s->bindir))
        bad = "bindir";
    else if (s->wal_archive_dir[0] && !safe_path(s->wal_archive_dir))
        bad = "wal_archive_dir";
    else if (s->log_file[0] && !safe_path(s->log_file))
        bad = "log_file";
    else if (s->socket_dir[0] && !safe_path(s->socket_dir))
        bad = "socket_dir";
    if (bad)
        return snprintf(err, errlen, "setting %s must be an absolute path of letters, digits and /._+-,@=:~", bad),
               TROVE_EINVAL;
    if (!safe_text(s->listen_addresses, ".:-_,*") || !safe_text(s->os_user, "._-"))
        return snprintf(err, errlen, "settings listen_addresses and os_user may hold only letters, digits and .:-_,*"),
               TROVE_EINVAL;
    if (strcmp(s->user, s->root_user) == 0)
        return snprintf(err, errlen, "settings user and root_user must differ"), TROVE_EINVAL;
    if (strlen(s->user) > PG_NAME_MAX || strlen(s->root_user) > PG_NAME_MAX || strlen(s->database) > PG_NAME_MAX)
        return snprintf(err, errlen, "settings user, root_user and database are PostgreSQL names: at most %d bytes",
                        PG_NAME_MAX), TROVE_EINVAL;
    if (strlen(s->password) >= PG_PASSWORD_MAX || strlen(s->host) >= 256)
        return snprintf(err, errlen, "setting password (at most %d bytes) or host (255) is too long",
                        PG_PASSWORD_MAX - 1), TROVE_EINVAL;
    if (!safe_text(s->initdb_locale, "._-@") || !safe_text(s->initdb_encoding, "_-") ||
        strlen(s->initdb_locale) > 63 || strlen(s->initdb_encoding) > 31)
        return snprintf(err, errlen, "settings initdb_locale/initdb_encoding hold unexpected characters"),
               TROVE_EINVAL;
    return TROVE_OK;
}

static int pg_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    struct pg_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    int rc = tps_settings_parse(SETTINGS, N_SETTINGS, req->settings, req->n_settings, &ctx->s, "postgres", err,
                                errlen);
    if (rc == TROVE_OK && (rc = derive_defaults(&ctx->s, err, errlen)) == TROVE_OK)
        rc = check_settings(&ctx->s, err, errlen);
    if (rc == TROVE_OK && !tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", req->state_dir))
        rc = TROVE_EINVAL, snprintf(err, errlen, "the state directory path is too long");
    if (rc != TROVE_OK) {
        tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);   /* a no-op after a failed parse */
        free(ctx);
        return rc;
    }
    *self = ctx;
    return TROVE_OK;
}

static void pg_close(void *self)
{
    struct pg_ctx *ctx = self;
    if (!ctx)
        return;
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "postgres",
    .version = PG_PLUGIN_VERSION,
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
    .repl_credentials = pg_repl_credentials,
    .database_alter = pg_database_alter,
    .cluster_join = NULL,     /* a primary and its standbys are replication, not membership */
    .cluster_leave = NULL,
    .cluster_status = NULL,
    .guest_log_list = pg_guest_log_list,
    .guest_log_read = pg_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
