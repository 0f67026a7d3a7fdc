/*
 * plugin.c - the example plugin's table, open() and close(). open() only
 * reads and checks the settings, through one table that also refuses keys
 * it does not know; it never touches the server, so the agent starts even
 * when the server is down or not yet prepared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct ex_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct ex_settings, field, key, fallback, lo, hi)

/* Every key the [datastore] section may hold (docs/plugins/example.md). */
static const struct tps_setting SETTINGS[] = {
    S(host, "host", "127.0.0.1", TPS_PLAIN | TPS_NONEMPTY),
    I(port, "port", "7400", 1, 65535),
    S(datadir, "datadir", "/var/lib/trove-example", TPS_ABSOLUTE),
    S(admin_user, "admin_user", "trove_admin", TPS_NONEMPTY),
    S(admin_password, "admin_password", NULL, TPS_REQUIRED | TPS_SECRET | TPS_NONEMPTY),
    S(replication_user, "replication_user", "replicator", TPS_NONEMPTY),
    S(kvd, "kvd", "trove-example-kvd", TPS_NONEMPTY),
    S(run_as, "run_as", NULL, TPS_NONEMPTY),
    I(start_timeout, "start_timeout", "30", 1, 3600),
    I(stop_timeout, "stop_timeout", "30", 1, 3600),
    I(connect_timeout_ms, "connect_timeout_ms", "2000", 10, 60000),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

static int ex_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    struct ex_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    int rc = tps_settings_parse(SETTINGS, N_SETTINGS, req->settings, req->n_settings, &ctx->s, "example", err,
                                errlen);
    if (rc == TROVE_OK && !strcmp(ctx->s.admin_user, ctx->s.replication_user))
        rc = TROVE_EINVAL, snprintf(err, errlen, "admin_user and replication_user must differ");
    if (rc == TROVE_OK && !tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", req->state_dir))
        rc = TROVE_EINVAL, snprintf(err, errlen, "the state directory path is too long");
    if (rc != TROVE_OK) {
        tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
        free(ctx);
        return rc;
    }
    *self = ctx;
    return TROVE_OK;
}

static void ex_close(void *self)
{
    struct ex_ctx *ctx = self;
    if (!ctx)
        return;
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "example",
    .version = EX_VERSION,
    .features = TROVE_FEATURE_DATABASE_CREATE,
    .open = ex_open,
    .close = ex_close,
    .prepare = ex_prepare,
    .start = ex_start,
    .stop = ex_stop,
    .restart = ex_restart,
    .status = ex_status,
    .user_create = ex_user_create,
    .user_delete = ex_user_delete,
    .user_list = ex_user_list,
    .user_show = ex_user_show,
    .user_grant = ex_user_grant,
    .user_revoke = ex_user_revoke,
    .user_access = ex_user_access,
    .user_set_password = ex_user_set_password,
    .root_enable = ex_root_enable,
    .root_disable = ex_root_disable,
    .root_show = ex_root_show,
    .database_create = ex_database_create,
    .database_delete = ex_database_delete,
    .database_list = ex_database_list,
    .config_schema = ex_config_schema,
    .config_validate = NULL,   /* no rules across parameters: the schema says it all */
    .config_apply = ex_config_apply,
    .config_reset = ex_config_reset,
    .config_show = ex_config_show,
    .backup_create = ex_backup_create,
    .backup_restore = ex_backup_restore,
    .repl_snapshot = ex_repl_snapshot,
    .repl_attach = ex_repl_attach,
    .repl_detach = ex_repl_detach,
    .repl_promote = ex_repl_promote,
    .repl_demote = ex_repl_demote,
    .repl_set_read_only = ex_repl_set_read_only,
    .repl_position = ex_repl_position,
    .repl_wait = ex_repl_wait,
    .repl_status = ex_repl_status,
    .repl_compare = ex_repl_compare,
    .repl_credentials = ex_repl_credentials,
    .database_alter = ex_database_alter,
    .cluster_join = ex_cluster_join,
    .cluster_leave = ex_cluster_leave,
    .cluster_status = ex_cluster_status,
    .guest_log_list = ex_guest_log_list,
    .guest_log_read = ex_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
