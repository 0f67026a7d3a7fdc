/*
 * pg.h - the PostgreSQL plugin's internal interface: its settings, the
 * connection and query helpers, and the functions each file offers the
 * others. Only plugin files include it; it depends on libpq and the ABI.
 */
#ifndef TROVE_PG_H
#define TROVE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trove_plugin.h"

#define PG_NAME_MAX 63          /* NAMEDATALEN - 1 */
#define PG_PATH_MAX 1024
#define PG_PASSWORD_MAX 1024

/* The plugin's settings and nothing else: every call opens its own
 * connection, so two threads never share state here. */
struct pg {
    const struct trove_host *h;
    char host[256];             /* TCP host, or a socket directory when it starts with '/' */
    int port;
    char socket_dir[PG_PATH_MAX];   /* unix_socket_directories for a server we start; "" = none */
    char user[PG_NAME_MAX + 1];     /* the agent's admin role (a superuser) */
    char password[PG_PASSWORD_MAX]; /* its password ("" = none, e.g. trust/peer) */
    char database[PG_NAME_MAX + 1]; /* the maintenance database, "postgres" */
    char sslmode[32];
    char datadir[PG_PATH_MAX - 64]; /* "" = the server is not managed locally */
    char bindir[PG_PATH_MAX];
    char os_user[64];
    char wal_archive_dir[PG_PATH_MAX];
    char log_file[PG_PATH_MAX];
    char listen_addresses[256];
    char root_user[PG_NAME_MAX + 1];
    char initdb_locale[64];
    char initdb_encoding[32];
    int connect_timeout;            /* seconds */
    int start_timeout;              /* seconds, for pg_ctl -t and waits */
};

/* ---- conn.c: connections and queries ---------------------------------- */

/* Connect as the admin to `dbname` (NULL = the maintenance database).
 * On failure calls fail() (TROVE_EUNAVAIL) and returns NULL. */
PGconn *pg_connect(struct pg *pg, struct trove_call *call, const char *dbname);
/* Same, with explicit socket directory/host (restore uses a private socket). */
PGconn *pg_connect_to(struct pg *pg, struct trove_call *call, const char *host, int port, const char *user,
                      const char *password, const char *dbname, int timeout_s);
/* Run a statement with text parameters. Returns the result (caller PQclear)
 * or NULL after fail() with the server's message (TROVE_EDATASTORE). */
PGresult *pg_query(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n,
                   const char *const *params);
/* Run a statement that returns no rows; TROVE_OK or the failure status. */
int pg_run(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n, const char *const *params);
/* The SQLSTATE of the last failure pg_query saw on this thread, or "". */
const char *pg_last_sqlstate(void);
/* Quote an identifier or a literal for `c`; the caller PQfreemem()s it.
 * NULL after fail() when out of memory or the text is not valid. */
char *pg_ident(struct pg *pg, struct trove_call *call, PGconn *c, const char *name);
char *pg_literal(struct pg *pg, struct trove_call *call, PGconn *c, const char *value);
/* Build "fmt" with %s replaced by already quoted pieces; malloc'd or NULL. */
char *pg_sql(const char *fmt, ...);
/* True when a single-row, single-column result of `sql` is "t". */
int pg_query_bool(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n,
                  const char *const *params, bool *out);

/* ---- names.c: validation ---------------------------------------------- */

enum pg_object { PG_ROLE, PG_DATABASE };
/* A role or database the API may manage: PostgreSQL's syntax rules
 * (TROVE_EINVAL), then not a reserved name: TROVE_EINVAL for names
 * PostgreSQL reserves, TROVE_ECONFLICT for objects in use (system objects,
 * the settings' roles and database, the plugin's own trove_ roles). */
int pg_check_managed(struct pg *pg, struct trove_call *call, enum pg_object kind, const char *name);
/* Whether `name` is reserved (the same table): listings leave it out. */
bool pg_is_protected(struct pg *pg, enum pg_object kind, const char *name);
int pg_check_password(struct pg *pg, struct trove_call *call, const char *password);

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
int pg_root_set(struct pg *pg, struct trove_call *call, const char *password, bool reporting);
/* "PASSWORD '<SCRAM-SHA-256 verifier>'", computed on the client whatever the
 * server's password_encryption says, so no statement ever carries the clear
 * text; NULL password = "PASSWORD NULL". malloc'd, or NULL after fail(). */
char *pg_password_clause(struct pg *pg, struct trove_call *call, PGconn *c, const char *role, const char *password);
int pg_role_exists(struct pg *pg, struct trove_call *call, PGconn *c, const char *name, bool *exists);

/* ---- databases.c ------------------------------------------------------ */

int pg_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int pg_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int pg_database_list(void *self, struct trove_call *call);
int pg_database_exists(struct pg *pg, struct trove_call *call, PGconn *c, const char *name, bool *exists);

/* ---- config.c --------------------------------------------------------- */

int pg_config_schema(void *self, struct trove_call *call);
int pg_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int pg_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int pg_config_reset(void *self, struct trove_call *call);
/* config_apply, optionally without the applied/pending_restart lists. */
int pg_config_set(struct pg *pg, struct trove_call *call, const struct trove_kv *values, size_t n, bool reporting);
int pg_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* Reload the configuration and wait until this session has re-read it. */
int pg_reload_and_wait(struct pg *pg, struct trove_call *call, PGconn *c);

/* ---- server.c: the server process and its files ------------------------ */

int pg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int pg_start(void *self, struct trove_call *call);
int pg_stop(void *self, struct trove_call *call);
int pg_restart(void *self, struct trove_call *call);
int pg_status(void *self, struct trove_call *call, struct trove_health *out);
/* Start with extra postgres options (already safe text, may be NULL). */
int pg_server_start(struct pg *pg, struct trove_call *call, const char *extra_opts);
int pg_server_stop(struct pg *pg, struct trove_call *call, const char *mode);
bool pg_server_running(struct pg *pg);
int pg_require_datadir(struct pg *pg, struct trove_call *call);
/* Run a PostgreSQL tool from bindir as os_user; `env` may be NULL. */
int pg_tool(struct pg *pg, struct trove_call *call, const char *const *argv, const char *const *env,
            char *output, size_t output_size);
/* Run any command as os_user with optional stdin source / stdout sink. */
int pg_exec(struct pg *pg, struct trove_call *call, const char *const *argv, const char *const *env,
            struct trove_source *in, struct trove_sink *out);
/* Make the directory (and parents) owned by os_user with `mode`. */
int pg_make_dir(struct pg *pg, struct trove_call *call, const char *path, int mode);
int pg_chown(struct pg *pg, struct trove_call *call, const char *path);
/* Write a file owned by os_user, mode 0600. */
int pg_write_file(struct pg *pg, struct trove_call *call, const char *path, const char *text);
/* The same without fail(), for cleanup after a failure: 0 or an errno. */
int pg_store_file(struct pg *pg, const char *path, const char *text);
int pg_remove_tree(struct pg *pg, struct trove_call *call, const char *path);

/* ---- conffiles.c: the configuration files the plugin owns --------------- */

/* Write trove.conf (archiving, wal_log_hints) and make postgresql.conf
 * include the plugin's files. *restart_needed tells whether a running server
 * must restart for them (NULL: do not ask the server). */
int pg_conf_write_base(struct pg *pg, struct trove_call *call);
/* Write/remove trove_replication.conf (primary_conninfo, primary_slot_name). */
int pg_conf_write_replication(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src,
                              const char *slot);
/* Write/remove trove_recovery.conf (restore_command). */
int pg_conf_write_recovery(struct pg *pg, struct trove_call *call, const char *restore_wal_dir);
/* Quote for a postgresql.conf string value; malloc'd or NULL. */
char *pg_conf_quote(const char *value);
/* Quote for a libpq conninfo value; malloc'd or NULL. */
char *pg_conninfo_quote(const char *value);
/* Ensure archiving and wal_log_hints are active, restarting when needed. */
int pg_ensure_archiving(struct pg *pg, struct trove_call *call);

/* ---- backup.c / restore.c / tar.c ------------------------------------- */

/* The environment for a libpq tool connecting as the admin: PGPASSWORD and
 * friends, never argv. pg_env_clear() wipes the password. */
struct pg_env {
    char password[PG_PASSWORD_MAX + 16];
    char sslmode[48];
    const char *list[6];
};
void pg_env_init(struct pg *pg, struct pg_env *env, const char *password);
void pg_env_clear(struct pg_env *env);
/* Connection arguments for a tool (-h host -p port -U user -w). */
struct pg_conn_args {
    char port[16];
    const char *argv[8];
};
void pg_conn_args_init(struct pg *pg, struct pg_conn_args *a);

int pg_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int pg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* The base backup itself (full), shared with repl_snapshot. */
int pg_base_backup(struct pg *pg, struct trove_call *call, const struct trove_backup_request *req);
const char *pg_kv_get(const struct trove_kv *kv, size_t n, const char *key);

/* A minimal ustar writer: one regular file at a time. */
#define PG_TAR_BLOCK 512
#define PG_TAR_MAX_SIZE UINT64_C(077777777777)   /* 11 octal digits: 8 GiB - 1 */
/* Fill one header block for a regular file (mode 0600, uid/gid 0). -1 if the
 * name is empty or 100 bytes or longer, or the size exceeds PG_TAR_MAX_SIZE;
 * an mtime outside 0..PG_TAR_MAX_SIZE is clamped. */
int pg_tar_header(char h[PG_TAR_BLOCK], const char *name, uint64_t size, int64_t mtime);
int pg_tar_add_file(struct pg *pg, struct trove_call *call, struct trove_sink *sink, const char *dir,
                    const char *name);
int pg_tar_finish(struct pg *pg, struct trove_call *call, struct trove_sink *sink);

/* ---- replication.c / lsn.c -------------------------------------------- */

int pg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
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
void pg_wal_segment_name(uint32_t timeline, uint64_t segno, uint64_t seg_size, char *buf, size_t len);

/* Milliseconds on the monotonic clock; sleep. */
uint64_t pg_now_ms(void);
void pg_sleep_ms(unsigned ms);

#endif /* TROVE_PG_H */
