/*
 * plugin.c - the Redis plugin's table, open() and close(). open() only reads
 * and checks the [datastore] settings, through one table that also refuses
 * keys it does not know; it never touches the server, so the agent starts
 * even when the server is down or not yet prepared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_plugin.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct rd_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct rd_settings, field, key, fallback, lo, hi)
#define PATH TPS_PLAIN   /* a path the config file names: absolute once given (check_paths) */

/* Every key the [datastore] section may hold (docs/plugins/redis.md). */
static const struct tps_setting SETTINGS[] = {
    S(host, "host", "127.0.0.1", TPS_PLAIN | TPS_NONEMPTY),
    I(port, "port", "6379", 1, 65535),
    S(socket, "socket", NULL, PATH),
    S(bind, "bind", NULL, TPS_PLAIN),
    S(user, "user", "default", TPS_NONEMPTY),
    S(password, "password", NULL, TPS_SECRET),
    S(redis_server, "redis_server", "redis-server", TPS_NONEMPTY),
    S(config_file, "config_file", NULL, PATH),
    S(dir, "dir", NULL, PATH),
    S(dbfilename, "dbfilename", "dump.rdb", TPS_PLAIN | TPS_NONEMPTY),
    S(pid_file, "pid_file", NULL, PATH),
    S(log_file, "log_file", NULL, PATH),
    S(root_user, "root_user", "root", TPS_NONEMPTY),
    S(replication_user, "replication_user", "replicator", TPS_NONEMPTY),
    S(run_as, "run_as", NULL, 0),
    S(shutdown, "shutdown", "save", TPS_NONEMPTY),
    I(connect_timeout_ms, "connect_timeout_ms", "2000", 10, 600000),
    I(command_timeout_ms, "command_timeout_ms", "30000", 100, 3600000),
    I(start_timeout, "start_timeout", "120", 1, 86400),
    I(stop_timeout, "stop_timeout", "120", 1, 86400),
    I(sync_timeout, "sync_timeout", "300", 1, 86400),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

const char *rd_state_path(struct rd_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->state_dir, name);
    return buf;
}

int rd_require_managed(struct rd_ctx *ctx, struct trove_call *call, const char *what)
{
    if (!ctx->s.config_file || !ctx->s.dir)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "%s needs the config_file setting (the plugin controls the server "
                       "through the config file it owns)", what);
    return TROVE_OK;
}

/* An optional string given empty counts as absent. */
static void empty_is_absent(char **field)
{
    if (*field && !**field) {
        free(*field);
        *field = NULL;
    }
}

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* bind defaults to host, dir to config_file's directory, and the pid and
 * log files to dir. Returns false when out of memory. */
static bool derive(struct rd_settings *s)
{
    char **optional[] = {&s->socket, &s->bind, &s->password, &s->config_file, &s->dir, &s->pid_file, &s->log_file,
                         &s->run_as};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        empty_is_absent(optional[i]);
    if (!s->bind && !(s->bind = strdup(s->host)))
        return false;
    const char *slash = s->config_file ? strrchr(s->config_file, '/') : NULL;
    if (!s->dir && slash)   /* a config_file without one is refused by check_paths */
        if (!(s->dir = slash == s->config_file ? strdup("/") : strndup(s->config_file, (size_t)(slash - s->config_file))))
            return false;
    if (s->dir && !s->pid_file && !(s->pid_file = path_join(s->dir, "redis.pid")))
        return false;
    if (s->dir && !s->log_file && !(s->log_file = path_join(s->dir, "redis.log")))
        return false;
    return true;
}

static int check_shutdown(struct rd_ctx *ctx, char *err, size_t errlen)
{
    static const struct { const char *name; enum rd_shutdown mode; } modes[] = {
        {"save", RD_SHUTDOWN_SAVE}, {"nosave", RD_SHUTDOWN_NOSAVE}, {"default", RD_SHUTDOWN_DEFAULT}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (!strcmp(ctx->s.shutdown, modes[i].name))
            return ctx->shutdown = modes[i].mode, TROVE_OK;
    snprintf(err, errlen, "setting shutdown must be save, nosave or default, not \"%s\"", ctx->s.shutdown);
    return TROVE_EINVAL;
}

/* Values written into the config file may hold no control character. */
static int check_file_values(const struct rd_settings *s, char *err, size_t errlen)
{
    const struct { const char *key, *value; } v[] = {{"host", s->host}, {"bind", s->bind}, {"socket", s->socket},
                                                      {"dir", s->dir}, {"dbfilename", s->dbfilename},
                                                      {"pid_file", s->pid_file}, {"log_file", s->log_file}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i].value && tps_has_control(v[i].value))
            return snprintf(err, errlen, "setting %s must not contain control characters", v[i].key), TROVE_EINVAL;
    return TROVE_OK;
}

/* Paths must be absolute: the agent and redis-server (which runs in "/")
 * must read them alike. Checked after derive(), so "" stays "absent". */
static int check_paths(const struct rd_settings *s, char *err, size_t errlen)
{
    const struct { const char *key, *value; } v[] = {{"socket", s->socket}, {"config_file", s->config_file},
                                                      {"dir", s->dir}, {"pid_file", s->pid_file},
                                                      {"log_file", s->log_file}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i].value && v[i].value[0] != '/')
            return snprintf(err, errlen, "setting %s must be an absolute path, not \"%s\"", v[i].key, v[i].value),
                   TROVE_EINVAL;
    return TROVE_OK;
}

static int check_users(const struct rd_settings *s, char *err, size_t errlen)
{
    if (!rd_user_name_ok(s->user) && strcmp(s->user, "default") != 0)
        return snprintf(err, errlen, "setting user: \"%s\" is not a valid ACL user name", s->user), TROVE_EINVAL;
    if (!rd_user_name_ok(s->root_user) || !rd_user_name_ok(s->replication_user))
        return snprintf(err, errlen, "settings root_user and replication_user must be valid ACL user names"),
               TROVE_EINVAL;
    if (!strcmp(s->root_user, s->user) || !strcmp(s->replication_user, s->user) ||
        !strcmp(s->root_user, s->replication_user) || !strcmp(s->root_user, "default") ||
        !strcmp(s->replication_user, "default"))
        return snprintf(err, errlen, "settings user, root_user and replication_user must name three different "
                        "users, and only user may be \"default\""), TROVE_EINVAL;
    return TROVE_OK;
}

static int rd_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    const struct trove_kv *kv = RD_FIELD(req, struct trove_open_request, settings, NULL);
    size_t n_kv = RD_FIELD(req, struct trove_open_request, n_settings, 0);
    const char *state_dir = RD_FIELD(req, struct trove_open_request, state_dir, NULL);
    struct rd_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    int rc = tps_settings_parse(SETTINGS, N_SETTINGS, kv, n_kv, &ctx->s, "redis", err, errlen);
    if (rc == TROVE_OK && !derive(&ctx->s))
        rc = TROVE_EINTERNAL, snprintf(err, errlen, "out of memory");
    if (rc == TROVE_OK)
        rc = check_shutdown(ctx, err, errlen);
    if (rc == TROVE_OK)
        rc = check_users(&ctx->s, err, errlen);
    if (rc == TROVE_OK)
        rc = check_paths(&ctx->s, err, errlen);
    if (rc == TROVE_OK)
        rc = check_file_values(&ctx->s, err, errlen);
    if (rc == TROVE_OK && (!state_dir || !tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", state_dir)))
        rc = TROVE_EINVAL, snprintf(err, errlen, "the agent gave no usable state directory");
    if (rc != TROVE_OK) {
        tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
        free(ctx);
        return rc;
    }
    *self = ctx;
    return TROVE_OK;
}

static void rd_close(void *self)
{
    struct rd_ctx *ctx = self;
    if (!ctx)
        return;
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "redis",
    .version = RD_VERSION,
    .features = 0,
    .open = rd_open,
    .close = rd_close,
    .prepare = rd_prepare,
    .start = rd_start,
    .stop = rd_stop,
    .restart = rd_restart,
    .status = rd_status,
    .user_create = rd_user_create,
    .user_delete = rd_user_delete,
    .user_list = rd_user_list,
    .user_show = rd_user_show,
    .user_grant = rd_user_grant,
    .user_revoke = rd_user_revoke,
    .user_access = rd_user_access,
    .user_set_password = rd_user_set_password,
    .root_enable = rd_root_enable,
    .root_disable = rd_root_disable,
    .root_show = rd_root_show,
    .database_create = NULL,   /* Redis has a fixed set of numbered databases */
    .database_delete = NULL,
    .database_list = rd_database_list,
    .config_schema = rd_config_schema,
    .config_validate = rd_config_validate,
    .config_apply = rd_config_apply,
    .config_reset = rd_config_reset,
    .config_show = rd_config_show,
    .backup_create = rd_backup_create,
    .backup_restore = rd_backup_restore,
    .repl_snapshot = rd_repl_snapshot,
    .repl_attach = rd_repl_attach,
    .repl_detach = rd_repl_detach,
    .repl_promote = rd_repl_promote,
    .repl_demote = rd_repl_demote,
    .repl_set_read_only = rd_repl_set_read_only,
    .repl_position = rd_repl_position,
    .repl_wait = rd_repl_wait,
    .repl_status = rd_repl_status,
    .repl_compare = rd_repl_compare,
    .repl_credentials = rd_repl_credentials,
    .database_alter = NULL,    /* numbered databases have no settings of their own */
    .cluster_join = NULL,      /* Redis Cluster is not managed */
    .cluster_leave = NULL,
    .cluster_status = NULL,
    .guest_log_list = rd_guest_log_list,
    .guest_log_read = rd_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
