/*
 * plugin.c - the MongoDB plugin's table, open() and close(). open() reads
 * and checks the settings and initialises libmongoc once per process
 * (mongoc_init through pthread_once; never mongoc_cleanup, because the
 * driver cannot be initialised again in the same process). It never
 * touches the server.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct mg_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct mg_settings, field, key, fallback, lo, hi)

/* Every key the [datastore] section may hold (docs/plugins/mongodb.md). */
static const struct tps_setting SETTINGS[] = {
    S(mongod, "mongod", "mongod", TPS_NONEMPTY | TPS_PLAIN),
    S(host, "host", "127.0.0.1", TPS_PLAIN | TPS_NONEMPTY),
    I(port, "port", "27017", 1, 65535),
    S(dbpath, "dbpath", "/var/lib/mongodb", TPS_ABSOLUTE | TPS_PLAIN),
    S(config_dir, "config_dir", "/etc/trove-mongodb", TPS_ABSOLUTE | TPS_PLAIN),
    S(log_file, "log_file", NULL, TPS_ABSOLUTE | TPS_PLAIN),
    S(run_as, "run_as", NULL, TPS_NONEMPTY | TPS_PLAIN),
    S(admin_user, "admin_user", "trove_admin", TPS_NONEMPTY),
    S(admin_password, "admin_password", NULL, TPS_REQUIRED | TPS_SECRET | TPS_NONEMPTY),
    S(replication_user, "replication_user", "trove_replicator", TPS_NONEMPTY),
    S(replica_set, "replica_set", NULL, TPS_NONEMPTY | TPS_PLAIN),
    I(heartbeat_interval_ms, "heartbeat_interval_ms", "2000", 100, 60000),
    I(election_timeout_ms, "election_timeout_ms", "10000", 500, 600000),
    I(start_timeout, "start_timeout", "120", 1, 3600),
    I(stop_timeout, "stop_timeout", "60", 1, 3600),
    I(sync_timeout, "sync_timeout", "600", 1, 86400),
    I(connect_timeout_ms, "connect_timeout_ms", "5000", 100, 60000),
    I(status_timeout_ms, "status_timeout_ms", "1000", 100, 10000),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

static pthread_once_t driver_once = PTHREAD_ONCE_INIT;

static void driver_init(void)
{
    mongoc_init();
    /* The driver's own log lines go nowhere: every failure reaches the
     * operator through the call's message instead. */
    mongoc_log_set_handler(NULL, NULL);
}

/* Replica set names: what mongod accepts in --replSet and a URI. */
static bool set_name_ok(const char *name)
{
    return tps_name_ok(name, 64, "-.", false);
}

static int check_settings(struct mg_ctx *ctx, const char *instance_id, char *err, size_t errlen)
{
    struct mg_settings *s = &ctx->s;
    if (!strcmp(s->admin_user, s->replication_user) || !strcmp(s->admin_user, MG_ROOT_USER) ||
        !strcmp(s->replication_user, MG_ROOT_USER))
        return snprintf(err, errlen, "admin_user, replication_user and \"%s\" must differ", MG_ROOT_USER),
               TROVE_EINVAL;
    if (strlen(s->admin_user) > MG_NAME_MAX || strlen(s->replication_user) > MG_NAME_MAX ||
        tps_has_control(s->admin_user) || tps_has_control(s->replication_user))
        return snprintf(err, errlen, "admin_user and replication_user must be 1-%d bytes without control characters",
                        MG_NAME_MAX), TROVE_EINVAL;
    if (s->replica_set)
        snprintf(ctx->default_set, sizeof(ctx->default_set), "%s", s->replica_set);
    else
        snprintf(ctx->default_set, sizeof(ctx->default_set), "trove-%s", instance_id ? instance_id : "mongodb");
    if (!set_name_ok(ctx->default_set))
        return snprintf(err, errlen, "replica set name \"%s\" is invalid: use 1-64 of [A-Za-z0-9_.-]", ctx->default_set),
               TROVE_EINVAL;
    return TROVE_OK;
}

static int mg_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    struct mg_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    int rc = tps_settings_parse(SETTINGS, N_SETTINGS, req->settings, req->n_settings, &ctx->s, "mongodb", err, errlen);
    if (rc == TROVE_OK)
        rc = check_settings(ctx, req->instance_id, err, errlen);
    if (rc == TROVE_OK && !tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", req->state_dir))
        rc = TROVE_EINVAL, snprintf(err, errlen, "the state directory path is too long");
    if (rc != TROVE_OK) {
        tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
        free(ctx);
        return rc;
    }
    pthread_once(&driver_once, driver_init);
    pthread_mutex_init(&ctx->status_lock, NULL);
    *self = ctx;
    return TROVE_OK;
}

static void mg_close(void *self)
{
    struct mg_ctx *ctx = self;
    if (!ctx)
        return;
    mg_status_reset(ctx);
    pthread_mutex_destroy(&ctx->status_lock);
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
    /* No mongoc_cleanup(): the driver cannot be initialised twice in one
     * process, and the agent may open the plugin again. */
}

static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "mongodb",
    .version = MG_VERSION,
    .features = TROVE_FEATURE_BACKUP_INCREMENTAL | TROVE_FEATURE_BACKUP_LOGICAL | TROVE_FEATURE_DATABASE_CREATE,
    .open = mg_open,
    .close = mg_close,
    .prepare = mg_prepare,
    .start = mg_start,
    .stop = mg_stop,
    .restart = mg_restart,
    .status = mg_status,
    .user_create = mg_user_create,
    .user_delete = mg_user_delete,
    .user_list = mg_user_list,
    .user_show = mg_user_show,
    .user_grant = mg_user_grant,
    .user_revoke = mg_user_revoke,
    .user_access = mg_user_access,
    .user_set_password = mg_user_set_password,
    .root_enable = mg_root_enable,
    .root_disable = mg_root_disable,
    .root_show = mg_root_show,
    .database_create = mg_database_create,
    .database_delete = mg_database_delete,
    .database_list = mg_database_list,
    .config_schema = mg_config_schema,
    .config_validate = NULL,   /* no rules across parameters: the schema and the server say it all */
    .config_apply = mg_config_apply,
    .config_reset = mg_config_reset,
    .config_show = mg_config_show,
    .backup_create = mg_backup_create,
    .backup_restore = mg_backup_restore,
    .repl_snapshot = mg_repl_snapshot,
    .repl_attach = mg_repl_attach,
    .repl_detach = mg_repl_detach,
    .repl_promote = mg_repl_promote,
    .repl_demote = mg_repl_demote,
    .repl_set_read_only = mg_repl_set_read_only,
    .repl_position = mg_repl_position,
    .repl_wait = mg_repl_wait,
    .repl_status = mg_repl_status,
    .repl_compare = mg_repl_compare,
    .repl_credentials = mg_repl_credentials,
    .database_alter = NULL,    /* MongoDB databases have no settings of their own */
    .cluster_join = mg_cluster_join,
    .cluster_leave = mg_cluster_leave,
    .cluster_status = mg_cluster_status,
    .guest_log_list = mg_guest_log_list,
    .guest_log_read = mg_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
