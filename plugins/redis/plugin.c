/*
 * plugin.c - the Redis plugin's table, open/close and its [datastore]
 * settings. Settings are parsed once here into struct rd_ctx; nothing else
 * reads the raw key/value list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_plugin.h"

static const char *setting(const struct trove_kv *s, size_t n, const char *key, const char *dflt)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].key && strcmp(s[i].key, key) == 0 && s[i].value)
            return s[i].value;
    return dflt;
}

/* Copy a setting; an empty value counts as absent when `dflt` is NULL. */
static int copy_setting(char **dst, const struct trove_kv *s, size_t n, const char *key, const char *dflt)
{
    const char *v = setting(s, n, key, dflt);
    if (v && !*v && !dflt)
        v = NULL;
    *dst = NULL;
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

static int int_setting(const struct trove_kv *s, size_t n, const char *key, int dflt, int min, int max, int *out,
                       char *err, size_t errlen)
{
    const char *v = setting(s, n, key, NULL);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (errno || *end || l < min || l > max) {
        snprintf(err, errlen, "setting %s: expected an integer in [%d, %d], got \"%s\"", key, min, max, v);
        return -1;
    }
    *out = (int)l;
    return 0;
}

static void ctx_free(struct rd_ctx *ctx)
{
    if (!ctx)
        return;
    char **fields[] = {&ctx->host, &ctx->socket, &ctx->bind, &ctx->user, &ctx->password, &ctx->server_bin,
                       &ctx->config_file, &ctx->dir, &ctx->dbfilename, &ctx->pid_file, &ctx->log_file,
                       &ctx->root_user, &ctx->repl_user, &ctx->run_as};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i] == ctx->password && ctx->password)
            memset(ctx->password, 0, strlen(ctx->password));
        free(*fields[i]);
    }
    free(ctx);
}

/* dir defaults to the config file's directory. */
static char *default_dir(const char *config_file)
{
    const char *slash = strrchr(config_file, '/');
    if (!slash)
        return strdup(".");
    if (slash == config_file)
        return strdup("/");
    return strndup(config_file, (size_t)(slash - config_file));
}

static int parse_strings(struct rd_ctx *c, const struct trove_kv *s, size_t n)
{
    if (copy_setting(&c->host, s, n, "host", "127.0.0.1") || copy_setting(&c->socket, s, n, "socket", NULL) ||
        copy_setting(&c->user, s, n, "user", "default") || copy_setting(&c->password, s, n, "password", NULL) ||
        copy_setting(&c->server_bin, s, n, "redis_server", "redis-server") ||
        copy_setting(&c->config_file, s, n, "config_file", NULL) || copy_setting(&c->dir, s, n, "dir", NULL) ||
        copy_setting(&c->dbfilename, s, n, "dbfilename", "dump.rdb") ||
        copy_setting(&c->pid_file, s, n, "pid_file", NULL) || copy_setting(&c->log_file, s, n, "log_file", NULL) ||
        copy_setting(&c->root_user, s, n, "root_user", "root") ||
        copy_setting(&c->repl_user, s, n, "replication_user", "replicator") ||
        copy_setting(&c->run_as, s, n, "run_as", NULL))
        return -1;
    if (copy_setting(&c->bind, s, n, "bind", c->host))
        return -1;
    if (!c->dir && c->config_file && !(c->dir = default_dir(c->config_file)))
        return -1;
    if (c->dir && !c->pid_file && !(c->pid_file = rd_path_with_suffix(c->dir, "/redis.pid")))
        return -1;
    if (c->dir && !c->log_file && !(c->log_file = rd_path_with_suffix(c->dir, "/redis.log")))
        return -1;
    return 0;
}

static int check_settings(struct rd_ctx *c, const struct trove_kv *s, size_t n, char *err, size_t errlen)
{
    const char *shut = setting(s, n, "shutdown", "save");
    if (strcmp(shut, "save") == 0)
        c->shutdown = RD_SHUTDOWN_SAVE;
    else if (strcmp(shut, "nosave") == 0)
        c->shutdown = RD_SHUTDOWN_NOSAVE;
    else if (strcmp(shut, "default") == 0)
        c->shutdown = RD_SHUTDOWN_DEFAULT;
    else {
        snprintf(err, errlen, "setting shutdown: expected save, nosave or default, got \"%s\"", shut);
        return -1;
    }
    if (!rd_valid_user_name(c->user) && strcmp(c->user, "default") != 0) {
        snprintf(err, errlen, "setting user: \"%s\" is not a valid ACL user name", c->user);
        return -1;
    }
    if (!rd_valid_user_name(c->root_user) || !rd_valid_user_name(c->repl_user)) {
        snprintf(err, errlen, "settings root_user and replication_user must be valid ACL user names");
        return -1;
    }
    if (!strcmp(c->root_user, c->user) || !strcmp(c->repl_user, c->user) || !strcmp(c->root_user, c->repl_user) ||
        !strcmp(c->root_user, "default") || !strcmp(c->repl_user, "default")) {
        snprintf(err, errlen, "settings user, root_user and replication_user must name three different users, "
                              "and only user may be \"default\"");
        return -1;
    }
    return int_setting(s, n, "port", 6379, 1, 65535, &c->port, err, errlen) ||
                   int_setting(s, n, "connect_timeout_ms", 2000, 10, 600000, &c->connect_timeout_ms, err, errlen) ||
                   int_setting(s, n, "command_timeout_ms", 30000, 100, 3600000, &c->command_timeout_ms, err,
                               errlen) ||
                   int_setting(s, n, "start_timeout", 120, 1, 86400, &c->start_timeout_s, err, errlen) ||
                   int_setting(s, n, "stop_timeout", 120, 1, 86400, &c->stop_timeout_s, err, errlen) ||
                   int_setting(s, n, "sync_timeout", 300, 1, 86400, &c->sync_timeout_s, err, errlen)
               ? -1
               : 0;
}

static int rd_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    const struct trove_kv *settings = req->settings;
    size_t n = req->n_settings;
    struct rd_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    ctx->h = host;
    if (parse_strings(ctx, settings, n) != 0) {
        snprintf(err, errlen, "out of memory");
        ctx_free(ctx);
        return TROVE_EINTERNAL;
    }
    if (check_settings(ctx, settings, n, err, errlen) != 0) {
        ctx_free(ctx);
        return TROVE_EINVAL;
    }
    *self = ctx;
    return TROVE_OK;
}

static void rd_close(void *self)
{
    ctx_free(self);
}

static const struct trove_plugin redis_plugin = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "redis",
    .version = "1.0.0",
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
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &redis_plugin;
}
