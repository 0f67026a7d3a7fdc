/*
 * pg.h - what the files of the PostgreSQL plugin share: the context, the
 * connection and query helpers, and each file's functions. The layout is the
 * one every plugin follows (docs/plugin-guide.md, "Naming"):
 *   struct pg_ctx        the one context: settings, read-only after open()
 *   ctx->host            the agent's services
 *   pg_<slot>            a table slot (pg_user_create, pg_backup_restore)
 *   pg_<noun>_<verb>     a helper shared between files (pg_conn_open, pg_server_start)
 * Only plugin files include it; it depends on libpq, the ABI and the support
 * library, and nothing here is visible outside the shared object.
 */
#ifndef TROVE_PG_H
#define TROVE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define PG_PLUGIN_VERSION "1.1.0"
#define PG_NAME_MAX 63          /* NAMEDATALEN - 1 */
#define PG_PATH_MAX 1024
#define PG_PASSWORD_MAX 1024
#define PG_SERVER_COMM "postgres"   /* the postmaster's process name */

/* The [datastore] settings (docs/plugins/postgres.md), parsed by plugin.c's
 * table. Strings are never NULL after open(): absent ones are "". */
struct pg_settings {
    char *host;                 /* TCP host, or a socket directory when it starts with '/' */
    int64_t port;
    char *socket_dir;           /* unix_socket_directories for a server we start; "" = the server's own */
    char *user;                 /* the agent's admin role (a superuser) */
    char *password;             /* its password ("" = none, e.g. trust/peer); a secret */
    char *database;             /* the maintenance database, "postgres" */
    char *sslmode;
    char *datadir;              /* "" = the server is not managed locally */
    char *bindir;
    char *os_user;
    char *wal_archive_dir;      /* "" in the table: <datadir>.wal-archive */
    char *log_file;             /* "" in the table: <datadir>.log */
    char *listen_addresses;     /* "" in the table: host */
    char *root_user;
    char *initdb_locale;
    char *initdb_encoding;
    int64_t connect_timeout;    /* seconds */
    int64_t start_timeout;      /* seconds, for starts, stops and waits */
};

/* One open plugin. Read-only after open(), so the loop and worker threads
 * (and another agent process) share nothing through it: every call opens its
 * own connection, and files are guarded by locks in state_dir. */
struct pg_ctx {
    const struct trove_host *host;
    struct pg_settings s;
    char state_dir[PG_PATH_MAX];
};

/* ---- conn.c: connections and queries ---------------------------------- */

/* Connect as the admin to `dbname` (NULL = the maintenance database).
 * On failure calls fail() (TROVE_EUNAVAIL) and returns NULL. Every session
 * has standard_conforming_strings on, so tps_quote_literal() is exact. */
PGconn *pg_conn_open(struct pg_ctx *ctx, struct trove_call *call, const char *dbname);
/* Same, to another server or socket directory (timeout_s 0 = the setting). */
PGconn *pg_conn_open_at(struct pg_ctx *ctx, struct trove_call *call, const char *host, int port, const char *user,
                        const char *password, const char *dbname, int timeout_s);
/* Run a statement with text parameters. Returns the result (caller PQclear)
 * or NULL after fail() with the server's message (TROVE_EDATASTORE, or
 * TROVE_EUNAVAIL when the connection broke). */
PGresult *pg_conn_query(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                        const char *const *params);
/* Run a statement that returns no rows; TROVE_OK or the failure status. */
int pg_conn_run(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                const char *const *params);
/* Run a statement built in a tps_buf (TROVE_EINTERNAL when building it ran
 * out of memory); the buffer is wiped and freed either way. */
int pg_conn_run_buf(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct tps_buf *sql);
/* True when a single-row, single-column result of `sql` is "t". */
int pg_conn_query_bool(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                       const char *const *params, bool *out);
/* The SQLSTATE of the last failure pg_conn_query saw on this thread, or "". */
const char *pg_conn_sqlstate(void);

/* The environment of a libpq tool connecting as some role: PGPASSWORD and
 * friends, never argv. pg_tool_env_wipe() wipes the password. */
struct pg_tool_env {
    struct tps_buf password;
    char sslmode[48];
    const char *list[6];
};
/* False when out of memory. */
bool pg_tool_env_init(struct pg_ctx *ctx, struct pg_tool_env *env, const char *password);
void pg_tool_env_wipe(struct pg_tool_env *env);
/* Connection arguments of a tool connecting as the admin (-h host -p port -U user -w). */
struct pg_tool_args {
    char port[16];
    const char *argv[8];
};
void pg_tool_args_init(struct pg_ctx *ctx, struct pg_tool_args *a);

/* ---- names.c: validation ---------------------------------------------- */

enum pg_object { PG_ROLE, PG_DATABASE };
/* A role or database the API may manage: PostgreSQL's syntax rules
 * (TROVE_EINVAL), then not a reserved name: TROVE_EINVAL for names
 * PostgreSQL reserves, TROVE_ECONFLICT for objects in use (system objects,
 * the settings' roles and database, the plugin's own trove_ roles). */
int pg_name_check(struct pg_ctx *ctx, struct trove_call *call, enum pg_object kind, const char *name);
/* Whether `name` is reserved (the same table): listings leave it out. */
bool pg_name_reserved(struct pg_ctx *ctx, enum pg_object kind, const char *name);
int pg_password_check(struct pg_ctx *ctx, struct trove_call *call, const char *password);

/* ---- users.c / root.c ------------------------------------------------- */

int pg_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_list(void *self, struct trove_call *call);
int pg_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int pg_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int pg_root_enable(void *self, struct trove_call *call, const char *password);
int pg_root_disable(void *self, struct trove_call *call);
int pg_root_show(void *self, struct trove_call *call);
/* root_enable, optionally without putting name/password in the result. */
int pg_root_set(struct pg_ctx *ctx, struct trove_call *call, const char *password, bool reporting);
/* Append "PASSWORD '<SCRAM-SHA-256 verifier>'" to b, computed on the client
 * whatever the server's password_encryption says, so no statement ever
 * carries the clear text; NULL password = "PASSWORD NULL". TROVE_OK or the
 * status fail() got. */
int pg_password_append(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct tps_buf *b, const char *role,
                       const char *password);
int pg_role_exists(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, bool *exists);

/* ---- databases.c ------------------------------------------------------ */

int pg_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int pg_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int pg_database_list(void *self, struct trove_call *call);
int pg_database_alter(void *self, struct trove_call *call, const struct trove_database *db);
int pg_database_exists(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, bool *exists);

/* ---- config.c --------------------------------------------------------- */

int pg_config_schema(void *self, struct trove_call *call);
int pg_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int pg_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int pg_config_reset(void *self, struct trove_call *call);
/* config_apply, optionally without the applied/pending_restart lists. */
int pg_config_set(struct pg_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n,
                  bool reporting);
int pg_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* Reload the configuration and wait until this session has re-read it. */
int pg_config_reload(struct pg_ctx *ctx, struct trove_call *call, PGconn *c);

/* ---- server.c: the server process and its files ------------------------ */

int pg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int pg_start(void *self, struct trove_call *call);
int pg_stop(void *self, struct trove_call *call);
int pg_restart(void *self, struct trove_call *call);
int pg_status(void *self, struct trove_call *call, struct trove_health *out);
/* Start the postmaster (support library supervision) and wait until it
 * accepts connections. `extra` are more postgres arguments, after the
 * plugin's own (a later -c wins), NULL-terminated, or NULL. Nothing to do
 * when it runs already. */
int pg_server_start(struct pg_ctx *ctx, struct trove_call *call, const char *const *extra);
/* Fast shutdown (SIGINT), escalating to SIGKILL after start_timeout. */
int pg_server_stop(struct pg_ctx *ctx, struct trove_call *call);
int pg_server_restart(struct pg_ctx *ctx, struct trove_call *call);
bool pg_server_running(struct pg_ctx *ctx);
/* The lock held around steps that stop, start or replace the server (another
 * agent process may try the same): its fd, or -1 after fail(). */
int pg_server_lock(struct pg_ctx *ctx, struct trove_call *call);
int pg_datadir_require(struct pg_ctx *ctx, struct trove_call *call);
/* Run a PostgreSQL tool from bindir as os_user; `env` may be NULL. */
int pg_tool_run(struct pg_ctx *ctx, struct trove_call *call, const char *const *argv, const char *const *env,
                char *output, size_t output_size);
/* Run any command as os_user with optional stdin source / stdout sink. */
int pg_cmd_run(struct pg_ctx *ctx, struct trove_call *call, const char *const *argv, const char *const *env,
               struct trove_source *in, struct trove_sink *out);
/* Make the directory (and parents) owned by os_user with `mode`. */
int pg_dir_make(struct pg_ctx *ctx, struct trove_call *call, const char *path, int mode);
int pg_file_chown(struct pg_ctx *ctx, struct trove_call *call, const char *path);
/* Replace a file atomically with `text`, owned by os_user, mode 0600. */
int pg_file_write(struct pg_ctx *ctx, struct trove_call *call, const char *path, const char *text);
/* The same without fail(), for cleanup after a failure: 0 or -errno. */
int pg_file_store(struct pg_ctx *ctx, const char *path, const char *text);
/* A whole file (at most max bytes) or NULL after fail(). */
char *pg_file_read(struct pg_ctx *ctx, struct trove_call *call, const char *path, size_t max);
/* Remove a tree (no symlink followed); absent is fine. */
int pg_tree_remove(struct pg_ctx *ctx, struct trove_call *call, const char *path);
/* A fresh 0700 directory under /tmp for os_user, "trove-pg-<pid>-<what>-..."
 * (those of dead agent processes are removed first). The caller removes it. */
int pg_work_dir(struct pg_ctx *ctx, struct trove_call *call, const char *what, char *dir, size_t len);
/* "<datadir>/<name>" */
const char *pg_data_path(struct pg_ctx *ctx, const char *name, char *buf, size_t len);
/* "<state_dir>/<name>" */
const char *pg_state_path(struct pg_ctx *ctx, const char *name, char *buf, size_t len);

/* ---- conffiles.c: the configuration files the plugin owns --------------- */

/* Write trove.conf (archiving, wal_log_hints) and make postgresql.conf
 * include the plugin's files. */
int pg_conf_write_base(struct pg_ctx *ctx, struct trove_call *call);
/* Write/remove trove_replication.conf (primary_conninfo, primary_slot_name). */
int pg_conf_write_replication(struct pg_ctx *ctx, struct trove_call *call,
                              const struct trove_replication_source *src, const char *slot);
/* Write/remove trove_recovery.conf (restore_command). */
int pg_conf_write_recovery(struct pg_ctx *ctx, struct trove_call *call, const char *restore_wal_dir);
/* Ensure archiving and wal_log_hints are active, restarting when needed. */
int pg_archiving_ensure(struct pg_ctx *ctx, struct trove_call *call);

/* ---- backup.c / restore.c / tar.c ------------------------------------- */

int pg_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int pg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* backup_restore with the server lock already held (prepare). */
int pg_restore_run(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req);
/* The base backup itself (full), shared with repl_snapshot. */
int pg_basebackup_stream(struct pg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req);

/* A minimal ustar writer: one regular file at a time. */
#define PG_TAR_BLOCK 512
#define PG_TAR_MAX_SIZE UINT64_C(077777777777)   /* 11 octal digits: 8 GiB - 1 */
/* Fill one header block for a regular file (mode 0600, uid/gid 0). -1 if the
 * name is empty or 100 bytes or longer, or the size exceeds PG_TAR_MAX_SIZE;
 * an mtime outside 0..PG_TAR_MAX_SIZE is clamped. */
int pg_tar_header(char h[PG_TAR_BLOCK], const char *name, uint64_t size, int64_t mtime);
int pg_tar_add(struct pg_ctx *ctx, struct trove_call *call, struct trove_sink *sink, const char *dir,
               const char *name);
int pg_tar_finish(struct pg_ctx *ctx, struct trove_call *call, struct trove_sink *sink);

/* ---- replication.c / lsn.c -------------------------------------------- */

int pg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int pg_repl_credentials(void *self, struct trove_call *call);
int pg_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int pg_repl_detach(void *self, struct trove_call *call);
int pg_repl_promote(void *self, struct trove_call *call);
int pg_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int pg_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int pg_repl_position(void *self, struct trove_call *call);
int pg_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int pg_repl_status(void *self, struct trove_call *call);
int pg_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);

/* Parse "X/Y" (hex halves of up to 8 digits). */
bool pg_lsn_parse(const char *text, uint64_t *lsn);
void pg_lsn_format(uint64_t lsn, char *buf, size_t len);
/* True for a WAL segment size PostgreSQL can have: a power of two from
 * 1 MiB to 1 GiB. Every other function here needs one. */
bool pg_wal_segment_size_valid(uint64_t seg_size);
/* WAL segment file name of segment number `segno` (= lsn / seg_size). */
void pg_wal_segment_format(uint32_t timeline, uint64_t segno, uint64_t seg_size, char *buf, size_t len);

/* ---- logs.c ----------------------------------------------------------- */

int pg_guest_log_list(void *self, struct trove_call *call);
int pg_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif /* TROVE_PG_H */
