/*
 * plugin.c - the Cassandra plugin's table, open() and close(). open() reads
 * and checks the [datastore] settings through one table that refuses keys it
 * does not know, derives the directories left unset, and never touches the
 * node: the agent opens the plugin before the node exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cassandra.h"

#define S(field, key, fallback, flags) TPS_SETTING_STR(struct cs_settings, field, key, fallback, flags)
#define I(field, key, fallback, lo, hi) TPS_SETTING_INT(struct cs_settings, field, key, fallback, lo, hi)
#define PATH (TPS_PLAIN | TPS_ABSOLUTE | TPS_NONEMPTY)

/* Every key the [datastore] section may hold (docs/plugins/cassandra.md). */
static const struct tps_setting SETTINGS[] = {
    S(cassandra, "cassandra", "cassandra", TPS_PLAIN | TPS_NONEMPTY),
    S(nodetool, "nodetool", "nodetool", TPS_PLAIN | TPS_NONEMPTY),
    S(config_dir, "config_dir", "/etc/cassandra", PATH),
    S(data_dir, "data_dir", "/var/lib/cassandra/data", PATH),
    S(commitlog_dir, "commitlog_dir", NULL, PATH),
    S(hints_dir, "hints_dir", NULL, PATH),
    S(saved_caches_dir, "saved_caches_dir", NULL, PATH),
    S(log_dir, "log_dir", "/var/log/cassandra", PATH),
    S(pid_file, "pid_file", "/var/run/cassandra/cassandra.pid", PATH),
    S(listen_address, "listen_address", "127.0.0.1", TPS_PLAIN | TPS_NONEMPTY),
    S(rpc_address, "rpc_address", NULL, TPS_PLAIN | TPS_NONEMPTY),
    I(native_port, "native_port", "9042", 1, 65535),
    I(storage_port, "storage_port", "7000", 1, 65535),
    I(jmx_port, "jmx_port", "7199", 1, 65535),
    S(cluster_name, "cluster_name", "Test Cluster", TPS_PLAIN | TPS_NONEMPTY),
    I(num_tokens, "num_tokens", "16", 1, 1536),
    S(dc, "dc", NULL, TPS_PLAIN | TPS_NONEMPTY),
    S(rack, "rack", NULL, TPS_PLAIN | TPS_NONEMPTY),
    S(admin_user, "admin_user", "trove_admin", TPS_NONEMPTY),
    S(admin_password, "admin_password", NULL, TPS_REQUIRED | TPS_SECRET | TPS_NONEMPTY),
    S(root_user, "root_user", "root", TPS_NONEMPTY),
    S(cluster_role, "cluster_role", "trove_cluster", TPS_NONEMPTY),
    S(jmx_user, "jmx_user", NULL, TPS_PLAIN | TPS_NONEMPTY),
    S(jmx_password, "jmx_password", NULL, TPS_SECRET | TPS_NONEMPTY),
    S(run_as, "run_as", NULL, TPS_NONEMPTY),
    I(start_timeout, "start_timeout", "180", 1, 3600),
    I(stop_timeout, "stop_timeout", "120", 1, 3600),
    I(connect_timeout_ms, "connect_timeout_ms", "3000", 10, 60000),
    I(request_timeout_ms, "request_timeout_ms", "20000", 100, 600000),
};
#define N_SETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

/* Paths go into cassandra.yaml and a file:// URL unquoted: keep them plain. */
static bool path_chars_ok(const char *p)
{
    return p == NULL || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-") == strlen(p);
}

static bool address_ok(const char *a)
{
    return a && *a && strlen(a) < 256 &&
           strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:-") == strlen(a);
}

/* <parent of data_dir>/<leaf>, unless the setting names it. */
static bool derive(char *out, size_t len, const char *setting, const char *data_dir, const char *leaf)
{
    if (setting)
        return tps_path(out, len, "%s", setting);
    const char *slash = strrchr(data_dir, '/');
    size_t parent = slash && slash != data_dir ? (size_t)(slash - data_dir) : 0;
    return tps_path(out, len, "%.*s/%s", (int)parent, data_dir, leaf);
}

static int check_settings(struct cs_ctx *ctx, const char *state_dir, char *err, size_t errlen)
{
    const struct cs_settings *s = &ctx->s;
    const char *paths[] = {s->config_dir, s->data_dir, s->commitlog_dir, s->hints_dir, s->saved_caches_dir,
                           s->log_dir, s->pid_file, s->cassandra, s->nodetool};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (!path_chars_ok(paths[i]))
            return snprintf(err, errlen, "path \"%s\" may hold only letters, digits and / . _ + -", paths[i]),
                   TROVE_EINVAL;
    if (!address_ok(s->listen_address) || (s->rpc_address && !address_ok(s->rpc_address)))
        return snprintf(err, errlen, "listen_address and rpc_address must be an address or a host name"),
               TROVE_EINVAL;
    if (!cs_label_ok(s->cluster_name, true))
        return snprintf(err, errlen, "cluster_name may hold only letters, digits, spaces and _ . - (1-64)"),
               TROVE_EINVAL;
    if ((s->dc && !cs_label_ok(s->dc, false)) || (s->rack && !cs_label_ok(s->rack, false)))
        return snprintf(err, errlen, "dc and rack may hold only letters, digits and _ . - (1-64)"), TROVE_EINVAL;
    if (!s->dc != !s->rack)
        return snprintf(err, errlen, "dc and rack go together: set both or neither"), TROVE_EINVAL;
    if (!s->jmx_user != !s->jmx_password)
        return snprintf(err, errlen, "jmx_user and jmx_password go together: set both or neither"), TROVE_EINVAL;
    if (s->jmx_user && strchr(s->jmx_user, ' '))
        return snprintf(err, errlen, "jmx_user must not contain a space"), TROVE_EINVAL;
    const char *roles[] = {s->admin_user, s->root_user, s->cluster_role};
    for (size_t i = 0; i < 3; i++)
        if (strlen(roles[i]) > CS_ROLE_NAME_MAX || tps_has_control(roles[i]))
            return snprintf(err, errlen, "role name \"%s\" is too long or holds control characters", roles[i]),
                   TROVE_EINVAL;
    if (!strcmp(s->admin_user, s->root_user) || !strcmp(s->admin_user, s->cluster_role) ||
        !strcmp(s->root_user, s->cluster_role))
        return snprintf(err, errlen, "admin_user, root_user and cluster_role must differ"), TROVE_EINVAL;
    if (!strcmp(s->admin_user, CS_DEFAULT_SUPERUSER) || !strcmp(s->root_user, CS_DEFAULT_SUPERUSER))
        return snprintf(err, errlen, "the plugin disables the default role \"cassandra\": pick another admin_user "
                                     "or root_user"), TROVE_EINVAL;
    ctx->rpc_address = s->rpc_address ? s->rpc_address : s->listen_address;
    if (!tps_path(ctx->state_dir, sizeof(ctx->state_dir), "%s", state_dir) ||
        !derive(ctx->commitlog_dir, CS_PATH_MAX, s->commitlog_dir, s->data_dir, "commitlog") ||
        !derive(ctx->hints_dir, CS_PATH_MAX, s->hints_dir, s->data_dir, "hints") ||
        !derive(ctx->saved_caches_dir, CS_PATH_MAX, s->saved_caches_dir, s->data_dir, "saved_caches"))
        return snprintf(err, errlen, "a directory path is too long"), TROVE_EINVAL;
    return TROVE_OK;
}

static int cs_open(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                   size_t errlen)
{
    struct cs_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return snprintf(err, errlen, "out of memory"), TROVE_EINTERNAL;
    ctx->host = host;
    int rc = tps_settings_parse(SETTINGS, N_SETTINGS, req->settings, req->n_settings, &ctx->s, "cassandra", err,
                                errlen);
    if (rc == TROVE_OK)
        rc = check_settings(ctx, req->state_dir, err, errlen);
    if (rc != TROVE_OK) {
        tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
        free(ctx);
        return rc;
    }
    /* Credential files of an agent killed mid-call. */
    tps_remove_stale(ctx->state_dir, ".trove-");
    *self = ctx;
    return TROVE_OK;
}

static void cs_close(void *self)
{
    struct cs_ctx *ctx = self;
    if (!ctx)
        return;
    tps_settings_free(SETTINGS, N_SETTINGS, &ctx->s);
    free(ctx);
}

/* Replication is per keyspace across the ring (database_alter, cluster_*):
 * a node has no primary, replica or position of its own, so every repl_*
 * slot stays NULL and the agent answers not_supported. */
static const struct trove_plugin PLUGIN = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "cassandra",
    .version = CS_VERSION,
    .features = TROVE_FEATURE_DATABASE_CREATE,
    .open = cs_open,
    .close = cs_close,
    .prepare = cs_prepare,
    .start = cs_start,
    .stop = cs_stop,
    .restart = cs_restart,
    .status = cs_status,
    .user_create = cs_user_create,
    .user_delete = cs_user_delete,
    .user_list = cs_user_list,
    .user_show = cs_user_show,
    .user_grant = cs_user_grant,
    .user_revoke = cs_user_revoke,
    .user_access = cs_user_access,
    .user_set_password = cs_user_set_password,
    .root_enable = cs_root_enable,
    .root_disable = cs_root_disable,
    .root_show = cs_root_show,
    .database_create = cs_database_create,
    .database_delete = cs_database_delete,
    .database_list = cs_database_list,
    .config_schema = cs_config_schema,
    .config_validate = cs_config_validate,
    .config_apply = cs_config_apply,
    .config_reset = cs_config_reset,
    .config_show = cs_config_show,
    .backup_create = cs_backup_create,
    .backup_restore = cs_backup_restore,
    .database_alter = cs_database_alter,
    .cluster_join = cs_cluster_join,
    .cluster_leave = cs_cluster_leave,
    .cluster_status = cs_cluster_status,
    .guest_log_list = cs_guest_log_list,
    .guest_log_read = cs_guest_log_read,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &PLUGIN;
}
