/*
 * cassandra.h - what the files of the Cassandra plugin share: the context
 * (settings, read-only after open), the CQL connection helpers, the node
 * process, nodetool, and each file's slots. The plugin speaks CQL native
 * protocol v4 through cql.h; it never links a Cassandra driver.
 *   struct cs_ctx        the one context
 *   ctx->host            the agent's services
 *   cs_<slot>            a table slot (cs_user_create, cs_backup_restore)
 *   cs_<noun>_<verb>     a helper shared between files (cs_conn_open, cs_server_start)
 * Nothing here is visible outside the shared object.
 */
#ifndef CASSANDRA_PLUGIN_H
#define CASSANDRA_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cql.h"
#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define CS_VERSION "1.0.0"
#define CS_PATH_MAX 1024
/* Role names are stored literally (quoted identifiers); this bounds them. */
#define CS_ROLE_NAME_MAX 256
/* The role Cassandra creates on its first start with PasswordAuthenticator. */
#define CS_DEFAULT_SUPERUSER "cassandra"

/* The [datastore] settings (docs/plugins/cassandra.md), parsed by plugin.c's table. */
struct cs_settings {
    char *cassandra;              /* the launcher (bin/cassandra, or the stand-in's) */
    char *nodetool;
    char *config_dir;             /* where the plugin writes cassandra.yaml; absolute */
    char *data_dir;               /* data_file_directories; absolute */
    char *commitlog_dir;          /* NULL: <parent of data_dir>/commitlog */
    char *hints_dir;              /* NULL: <parent of data_dir>/hints */
    char *saved_caches_dir;       /* NULL: <parent of data_dir>/saved_caches */
    char *log_dir;                /* system.log and friends */
    char *pid_file;               /* the launcher's -p */
    char *listen_address;         /* listen_address, and nodetool's host */
    char *rpc_address;            /* NULL: listen_address */
    int64_t native_port;
    int64_t storage_port;
    int64_t jmx_port;
    char *cluster_name;           /* until cluster.join names another */
    int64_t num_tokens;
    char *dc;                     /* NULL: SimpleSnitch; set: GossipingPropertyFileSnitch */
    char *rack;
    char *admin_user;             /* the plugin's superuser role */
    char *admin_password;         /* a secret */
    char *root_user;              /* the role root.enable manages */
    char *cluster_role;           /* the ring's membership role (its password is the cluster secret) */
    char *jmx_user;               /* nodetool -u, with jmx_password in a 0600 -pwf file */
    char *jmx_password;           /* a secret, or NULL: nodetool without a login */
    char *run_as;                 /* system user for the node, or NULL */
    int64_t start_timeout;        /* seconds */
    int64_t stop_timeout;         /* seconds */
    int64_t connect_timeout_ms;
    int64_t request_timeout_ms;
};

/* One open plugin. Read-only after open(): every call opens its own
 * connection, and the plugin's files are guarded by locks in state_dir. */
struct cs_ctx {
    const struct trove_host *host;
    struct cs_settings s;
    char state_dir[CS_PATH_MAX];
    char commitlog_dir[CS_PATH_MAX];
    char hints_dir[CS_PATH_MAX];
    char saved_caches_dir[CS_PATH_MAX];
    const char *rpc_address;      /* s.rpc_address or s.listen_address */
};

/* ---- conn.c: CQL connections --------------------------------------- */

struct cs_conn {
    struct cs_ctx *ctx;
    struct trove_call *call;
    struct cql_conn *cql;
    char where[300];              /* "host:port", for messages */
};

/* Who to log in as, and where; NULL host/user mean the node and the admin role. */
struct cs_login {
    const char *host;
    int port;
    const char *user;
    const char *password;
    int connect_timeout_ms;       /* 0: the setting */
    int request_timeout_ms;       /* 0: the setting */
};

/* Connect and log in as the admin role. Fails through fail() with a mapped status. */
int cs_conn_open(struct cs_ctx *ctx, struct trove_call *call, struct cs_conn *c);
/* Connect with another login; on failure *err (may be NULL) holds the CQL error
 * and nothing is reported (the caller decides what the failure means). */
enum cql_status cs_conn_open_as(struct cs_ctx *ctx, struct trove_call *call, const struct cs_login *login,
                                struct cs_conn *c, struct cql_error *err);
void cs_conn_close(struct cs_conn *c);
/* Report a CQL failure through fail(): the status mapped, the message naming `what`.
 * With `secret` (the statement carried a password) the server's text is withheld. */
int cs_fail_cql(struct cs_ctx *ctx, struct trove_call *call, const char *where, const struct cql_error *err,
                const char *what, bool secret);
/* The ABI status for a CQL status. */
int cs_status_of(enum cql_status status);
/* Run one statement with bound values; *out (may be NULL) gets the result.
 * `what` names it in a failure; `secret` as for cs_fail_cql. */
int cs_query(struct cs_conn *c, const char *what, const char *cql, const struct cql_param *params, size_t n,
             struct cql_result **out, bool secret);
/* The same, also reporting the raw CQL status (for callers that map some
 * server errors themselves): returns CQL_OK or the status, reporting nothing. */
enum cql_status cs_query_raw(struct cs_conn *c, const char *cql, const struct cql_param *params, size_t n,
                             struct cql_result **out);

/* ---- names.c: what names the engine and the plugin allow ------------ */

/* A role name a user operation may touch: EINVAL (with a message) otherwise. */
int cs_check_role(struct cs_ctx *ctx, struct trove_call *call, const char *name);
/* True for the roles the plugin keeps for itself (admin, root, cluster, cassandra, trove_*). */
bool cs_role_protected(const struct cs_ctx *ctx, const char *name);
/* A keyspace name a user may create or touch: \w{1,48}, not system*. */
int cs_check_keyspace(struct cs_ctx *ctx, struct trove_call *call, const char *name);
bool cs_keyspace_is_system(const char *name);
/* Append a quoted identifier or literal to b; false when it is not UTF-8 or memory ran out. */
bool cs_add_ident(struct tps_buf *b, const char *name);
bool cs_add_literal(struct tps_buf *b, const char *text);
/* A cluster name, data center or rack name the plugin writes into files. */
bool cs_label_ok(const char *text, bool spaces);

/* ---- server.c: the node process -------------------------------------- */

int cs_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int cs_start(void *self, struct trove_call *call);
int cs_stop(void *self, struct trove_call *call);
int cs_restart(void *self, struct trove_call *call);
int cs_status(void *self, struct trove_call *call, struct trove_health *out);
/* Start and stop without taking the server lock (the caller holds it). */
int cs_server_start(struct cs_ctx *ctx, struct trove_call *call);
int cs_server_stop(struct cs_ctx *ctx, struct trove_call *call);
/* The lock held around steps that stop, restart or replace the node: its fd, or fails. */
int cs_server_lock(struct cs_ctx *ctx, struct trove_call *call);
/* The node's pid from the pid file, when it runs; 0 otherwise. */
pid_t cs_server_pid(struct cs_ctx *ctx);
/* Regenerate cassandra.yaml (and cassandra-rackdc.properties) from the
 * settings, the ring membership and the configuration overrides. */
int cs_yaml_write(struct cs_ctx *ctx, struct trove_call *call);
/* "<state_dir>/<name>" */
const char *cs_state_path(struct cs_ctx *ctx, const char *name, char *buf, size_t len);
/* Markers in state_dir: "stopped" (on purpose) and "left" (decommissioned). */
void cs_mark(struct cs_ctx *ctx, const char *marker, bool set);
bool cs_marked(struct cs_ctx *ctx, const char *marker);
/* Make a directory (and its parents) owned by run_as. */
int cs_mkdir(struct cs_ctx *ctx, struct trove_call *call, const char *path);
/* Empty the node's data, commit log, hints and saved caches (node stopped). */
int cs_server_wipe(struct cs_ctx *ctx, struct trove_call *call);

/* Run nodetool against this node: argv after the connection options; the
 * output (stdout) into out when given. The JMX password travels in a 0600
 * file, never on argv. */
int cs_nodetool(struct cs_ctx *ctx, struct trove_call *call, const char *const *args, char *out, size_t outlen,
                uint32_t timeout_ms);

/* ---- membership state (cluster.c) ------------------------------------ */

/* What cluster.join decided, kept in state_dir/cluster.conf and written
 * into every generated cassandra.yaml. */
struct cs_membership {
    char cluster_name[128];
    char seeds[1024];             /* comma-separated addresses; "" = this node alone */
    char dc[80];                  /* "" = the setting */
    char rack[80];
    bool auto_bootstrap;
};

/* The membership in effect: the file, or the settings when there is none. */
void cs_membership_load(struct cs_ctx *ctx, struct cs_membership *m);
int cs_membership_save(struct cs_ctx *ctx, struct trove_call *call, const struct cs_membership *m);

int cs_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int cs_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int cs_cluster_status(void *self, struct trove_call *call);

/* ---- users.c ---------------------------------------------------------- */

int cs_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_list(void *self, struct trove_call *call);
int cs_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int cs_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int cs_root_enable(void *self, struct trove_call *call, const char *password);
int cs_root_disable(void *self, struct trove_call *call);
int cs_root_show(void *self, struct trove_call *call);
/* On an open connection (prepare uses them too). */
int cs_user_create_on(struct cs_conn *c, const struct trove_user *user);
int cs_root_enable_on(struct cs_conn *c, const char *password, bool report);
/* A role's row: *exists, and its login and superuser flags. */
int cs_role_get(struct cs_conn *c, const char *name, bool *exists, bool *login, bool *super);
/* CREATE ROLE, or ALTER ROLE when it exists, with a password (never logged). */
int cs_role_put(struct cs_conn *c, const char *name, const char *password, bool login, bool super, bool exists);

/* ---- databases.c ------------------------------------------------------ */

int cs_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int cs_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int cs_database_list(void *self, struct trove_call *call);
int cs_database_alter(void *self, struct trove_call *call, const struct trove_database *db);
int cs_database_create_on(struct cs_conn *c, const struct trove_database *db);
/* Whether a keyspace exists (any keyspace, system ones included). */
int cs_keyspace_exists(struct cs_conn *c, const char *name, bool *exists);

/* The user keyspaces (not system*), each with its replication map. */
struct cs_keyspace {
    char *name;
    char *cql;                    /* the CREATE KEYSPACE statement that makes it again */
};
int cs_keyspaces_list(struct cs_conn *c, struct cs_keyspace **out, size_t *n);
void cs_keyspaces_free(struct cs_keyspace *ks, size_t n);

/* ---- config.c --------------------------------------------------------- */

int cs_config_schema(void *self, struct trove_call *call);
int cs_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int cs_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int cs_config_reset(void *self, struct trove_call *call);
int cs_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* The overrides as cassandra.yaml lines ("name: value\n"), appended to b. */
int cs_config_yaml(struct cs_ctx *ctx, struct trove_call *call, struct tps_buf *b);
/* Persist overrides (prepare: before the first start). */
int cs_config_store(struct cs_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n);

/* ---- backup.c and tar.c ----------------------------------------------- */

int cs_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int cs_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);

/* A ustar stream of regular files into a host sink. */
struct cs_tar_out {
    struct cs_ctx *ctx;
    struct trove_call *call;
    struct trove_sink *sink;
    uint64_t bytes;
};
int cs_tar_add_data(struct cs_tar_out *t, const char *name, const void *data, size_t len);
int cs_tar_add_file(struct cs_tar_out *t, const char *name, const char *path);
int cs_tar_finish(struct cs_tar_out *t);

/* Read a ustar stream from a host source: for each regular file, `accept`
 * decides where it goes (*path, a file to create) or refuses the archive
 * (a status from fail()). Anything but regular files and directories is
 * refused. */
typedef int (*cs_tar_accept_fn)(void *arg, const char *name, uint64_t size, const char **path);
int cs_tar_extract(struct cs_ctx *ctx, struct trove_call *call, struct trove_source *src, cs_tar_accept_fn accept,
                   void *arg);

/* ---- logs.c ----------------------------------------------------------- */

int cs_guest_log_list(void *self, struct trove_call *call);
int cs_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif
