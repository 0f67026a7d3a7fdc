/*
 * example.h - what the files of the example plugin share: the context, the
 * connection to the server (kvd), and each file's functions. The layout is
 * the one every plugin follows (docs/plugin-guide.md, "Naming"):
 *   struct ex_ctx        the one context: settings, read-only after open()
 *   ctx->host            the agent's services
 *   ex_<slot>            a table slot (ex_user_create, ex_backup_restore)
 *   ex_<noun>_<verb>     a helper shared between files (ex_conn_open, ex_server_start)
 * Nothing here is visible outside the shared object.
 */
#ifndef EXAMPLE_H
#define EXAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define EX_VERSION "1.0.0"
#define EX_ROOT_USER "root"
#define EX_SERVER_COMM "trove-example-kvd"   /* the server's process name (first 15 bytes count) */

/* The [datastore] settings (docs/plugins/example.md), parsed by plugin.c's table. */
struct ex_settings {
    char *host;                  /* where the server listens and peers reach it */
    int64_t port;
    char *datadir;               /* the server's files; absolute */
    char *admin_user;            /* the plugin's own account on the server */
    char *admin_password;        /* a secret */
    char *replication_user;      /* the account replicas log in as */
    char *kvd;                   /* the server binary */
    char *run_as;                /* system user for the server, or NULL */
    int64_t start_timeout;       /* seconds */
    int64_t stop_timeout;        /* seconds */
    int64_t connect_timeout_ms;
};

/* One open plugin. Read-only after open(), so the loop and worker threads
 * (and another agent process) share nothing through it: every call opens its
 * own connection, and files are guarded by locks in state_dir. */
struct ex_ctx {
    const struct trove_host *host;
    struct ex_settings s;
    char state_dir[1024];
};

/* ---- conn.c: talking to the server ------------------------------------ */

struct ex_conn {
    struct ex_ctx *ctx;
    struct trove_call *call;
    int fd;
    struct kv_reader in;
};

/* One line of a reply, split into decoded tokens. */
struct ex_row {
    char *line;
    char *col[KV_TOKENS_MAX];
    int n;
};

/* Called for each ROW of a reply as it arrives; a status other than
 * TROVE_OK stops reading (the connection is then unusable). */
typedef int (*ex_row_fn)(void *arg, const struct ex_row *row);

/* Connect and log in as the admin. Fails with TROVE_EUNAVAIL. */
int ex_conn_open(struct ex_ctx *ctx, struct trove_call *call, struct ex_conn *c);
/* Connect without logging in (readiness probes); no message on failure. */
int ex_conn_open_quiet(struct ex_ctx *ctx, struct ex_conn *c, unsigned timeout_ms);
void ex_conn_close(struct ex_conn *c);
/* Run a command (NULL-terminated tokens). ROWs go to `each` (may be NULL:
 * they are skipped); the OK line's tokens to *ok when given (free with
 * ex_row_free). An ERR becomes fail() with the server's message. */
int ex_conn_cmd(struct ex_conn *c, ex_row_fn each, void *arg, struct ex_row *ok, ...);
void ex_row_free(struct ex_row *row);

/* ---- server.c: the server process ------------------------------------ */

int ex_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int ex_start(void *self, struct trove_call *call);
int ex_stop(void *self, struct trove_call *call);
int ex_restart(void *self, struct trove_call *call);
int ex_status(void *self, struct trove_call *call, struct trove_health *out);
int ex_server_start(struct ex_ctx *ctx, struct trove_call *call);
int ex_server_stop(struct ex_ctx *ctx, struct trove_call *call);
/* --init a data directory (admin account from the settings). */
int ex_server_init(struct ex_ctx *ctx, struct trove_call *call);
bool ex_server_initialised(struct ex_ctx *ctx);
/* Lock held around steps that stop or replace the server (another agent
 * process may try the same): returns the lock's fd or fails. */
int ex_server_lock(struct ex_ctx *ctx, struct trove_call *call);
/* "<datadir>/<name>" */
const char *ex_data_path(struct ex_ctx *ctx, const char *name, char *buf, size_t len);

/* ---- users.c ---------------------------------------------------------- */

int ex_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_list(void *self, struct trove_call *call);
int ex_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int ex_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int ex_root_enable(void *self, struct trove_call *call, const char *password);
int ex_root_disable(void *self, struct trove_call *call);
int ex_root_show(void *self, struct trove_call *call);
/* Create on an open connection (prepare uses it too). */
int ex_user_create_on(struct ex_conn *c, const struct trove_user *user);
int ex_root_enable_on(struct ex_conn *c, const char *password, bool report);

/* ---- databases.c ------------------------------------------------------ */

int ex_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int ex_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int ex_database_list(void *self, struct trove_call *call);
int ex_database_alter(void *self, struct trove_call *call, const struct trove_database *db);
int ex_database_create_on(struct ex_conn *c, const struct trove_database *db);

/* ---- config.c --------------------------------------------------------- */

int ex_config_schema(void *self, struct trove_call *call);
int ex_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int ex_config_reset(void *self, struct trove_call *call);
int ex_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* Set values on the running server; *restart tells whether one waits for a
 * restart. With `report`, add_str "applied" / "pending_restart" each. */
int ex_config_set(struct ex_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n,
                  bool report, bool *restart);

/* ---- backup.c --------------------------------------------------------- */

int ex_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int ex_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);

/* ---- replication.c ---------------------------------------------------- */

int ex_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int ex_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int ex_repl_detach(void *self, struct trove_call *call);
int ex_repl_promote(void *self, struct trove_call *call);
int ex_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int ex_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int ex_repl_position(void *self, struct trove_call *call);
int ex_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int ex_repl_status(void *self, struct trove_call *call);
int ex_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);
int ex_repl_credentials(void *self, struct trove_call *call);

/* ---- cluster.c and logs.c --------------------------------------------- */

int ex_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int ex_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int ex_cluster_status(void *self, struct trove_call *call);
int ex_guest_log_list(void *self, struct trove_call *call);
int ex_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif
