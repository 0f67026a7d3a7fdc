/*
 * mysql_plugin.h - what the files of the MySQL/MariaDB plugin share: the
 * context, the settings, and each file's functions, named by the plugin
 * guide's convention (docs/plugin-guide.md, "Naming"):
 *   struct my_ctx        the one context: settings, read-only after open()
 *   ctx->host            the agent's services
 *   my_<slot>            a table slot (my_user_create, my_backup_restore)
 *   my_<noun>_<verb>     a helper shared between files (my_conn_open, my_server_start)
 * Nothing here is visible outside the shared object.
 */
#ifndef MYSQL_PLUGIN_H
#define MYSQL_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define MY_VERSION "1.1.0"
#define MY_PATH_MAX 4200

/* Settings from the agent's [datastore] section (docs/plugins/mysql.md),
 * parsed by plugin.c's table; paths left out default to files in run_dir. */
struct my_settings {
    char *host;              /* TCP address the plugin and tools connect to */
    int64_t port;
    char *socket;            /* unix socket; preferred for local connections (NULL: none) */
    char *bind_address;
    char *admin_user;        /* the plugin's own superuser account */
    char *admin_password;    /* a secret */
    char *replication_user;  /* prefix of the replication account */
    bool manage_server;      /* the plugin starts and stops mariadbd itself */
    char *datadir;
    char *run_dir;           /* generated option files, pid file, logs */
    char *pid_file;
    char *log_error;
    char *slow_log;          /* slow_query_log_file */
    char *general_log;       /* general_log_file */
    char *overrides_file;    /* configuration overrides (config_apply) */
    char *server_user;       /* mariadbd --user, and owner of the data files */
    int64_t server_id;
    char *log_bin;           /* binary log basename */
    char *mariadbd, *install_db, *backup_tool, *mbstream, *dump_tool, *client_tool;
    int64_t connect_timeout; /* seconds */
    int64_t start_timeout;   /* seconds */
    int64_t stop_timeout;    /* seconds */
};

/* One open plugin. Read-only after open(), so the loop and worker threads
 * (and another agent process) share nothing through it: every call opens
 * its own connection, and files are guarded by locks in state_dir. */
struct my_ctx {
    const struct trove_host *host;
    struct my_settings s;
    char my_cnf[MY_PATH_MAX];      /* <run_dir>/my.cnf, written before every start */
    char role_file[MY_PATH_MAX];   /* <run_dir>/role.cnf: read_only and the role */
    char state_dir[MY_PATH_MAX];   /* the agent's directory for the plugin's own files */
};

/* A field of a struct the agent passed, or `fallback` when the agent's
 * struct is too short to hold it (TROVE_FIELD_OK). */
#define MY_FIELD(ptr, type, member, fallback) (TROVE_FIELD_OK(ptr, type, member) ? (ptr)->member : (fallback))

/* ---- quote.c: MariaDB statements' quoting ------------------------------ */

/* `name`, backticks doubled. */
void my_quote_ident(struct tps_buf *b, const char *name);
/* A string literal escaped for `conn` (mysql_real_escape_string). */
void my_quote_literal(struct tps_buf *b, MYSQL *conn, const char *s);
/* 'user'@'host' */
void my_quote_account(struct tps_buf *b, MYSQL *conn, const char *user, const char *host);
/* A literal without a connection, for files the server reads with
 * backslash escapes on (the init file). */
void my_quote_literal_offline(struct tps_buf *b, const char *s);
/* A database name as a grant pattern: the grant wildcards `_` and `%` (and
 * the escape character `\` itself) escaped with a backslash, so they match
 * literally. This is a value (what mysql.db.Db holds); quote it with
 * my_quote_ident for GRANT/REVOKE and with my_quote_literal for a lookup.
 * Caller frees; NULL when out of memory. */
char *my_grant_pattern(const char *name);
/* The database name a grant pattern stands for (in place). */
void my_grant_pattern_unescape(char *pattern);
/* A database for GRANT/REVOKE: my_quote_ident(my_grant_pattern(name)). */
void my_quote_grant_db(struct tps_buf *b, const char *name);

/* ---- password.c -------------------------------------------------------- */

#define MY_HASH_LEN 41   /* '*' and 40 hex digits */

/* The mysql_native_password hash of password ('*' and the uppercase hex of
 * SHA1(SHA1(password))) into out. False when libcrypto fails. */
bool my_password_hash(const char *password, char out[MY_HASH_LEN + 1]);
/* Append " IDENTIFIED BY PASSWORD '<hash>'": the server gets the hash, never
 * the cleartext. A hashing failure marks the builder oom. */
void my_password_identified_by(struct tps_buf *b, const char *password);

/* ---- conn.c: talking to the server ------------------------------------- */

/* Connect as the admin. On failure fail()s with TROVE_EUNAVAIL. A connection
 * with `quick` set uses short read/write timeouts (status). */
int my_conn_open(struct my_ctx *ctx, struct trove_call *call, bool quick, MYSQL **out);
/* Try to connect; fill msg with the client error on failure. */
MYSQL *my_conn_try(struct my_ctx *ctx, bool quick, char *msg, size_t msglen, unsigned *err);
void my_conn_close(MYSQL *conn);
/* Run a statement; on error fail()s with the server's message. */
int my_conn_exec(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql);
/* The same for a built statement (out of memory when the builder failed). */
int my_conn_exec_buf(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct tps_buf *sql);
/* Run a query and store its result. */
int my_conn_query(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql, MYSQL_RES **res);
/* First column of the first row into out ("" and *is_null when NULL or no row). */
int my_conn_scalar(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql, char *out,
                   size_t outlen, bool *is_null);
/* fail() with the connection's last error, mapping well-known codes. */
int my_conn_fail(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *what);
/* fail() for an allocation failure. */
int my_fail_oom(struct my_ctx *ctx, struct trove_call *call);
/* Make a 0600 client option file ([client] user/password/socket/host/port)
 * in run_dir for a tool; path receives its name. The caller unlinks it. */
int my_conn_defaults_file(struct my_ctx *ctx, struct trove_call *call, char *path, size_t pathlen);

/* ---- names.c: what names may be, and which are protected --------------- */

int my_name_check_user(struct my_ctx *ctx, struct trove_call *call, const char *name);
int my_name_check_host(struct my_ctx *ctx, struct trove_call *call, const char *host);
int my_name_check_database(struct my_ctx *ctx, struct trove_call *call, const char *name);
int my_name_check_password(struct my_ctx *ctx, struct trove_call *call, const char *password);
/* a host name or address a replica connects to (CHANGE MASTER) */
int my_name_check_source_host(struct my_ctx *ctx, struct trove_call *call, const char *host);
/* The protected names of docs/plugins/mysql.md ("Protected names"): the API
 * refuses to manage them and list operations hide them. */
bool my_name_is_system_user(const struct my_ctx *ctx, const char *name);
bool my_name_is_system_database(const char *name);
/* user->host, or "%" when the request gave none (NULL). An empty host is not
 * "none": my_name_check_host refuses it. */
const char *my_user_host(const struct trove_user *u);

/* ---- users.c ----------------------------------------------------------- */

int my_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_list(void *self, struct trove_call *call);
int my_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int my_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
/* The checks of user.create that need no server (account, password, names
 * of the databases); prepare runs them before it changes anything. */
int my_user_check_new(struct my_ctx *ctx, struct trove_call *call, const struct trove_user *user);
/* Create a user on an open connection (prepare uses it). */
int my_user_create_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_user *user);
/* 1 if 'user'@'host' exists, 0 if not, <0 on error (failed). */
int my_user_exists(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *user, const char *host);

/* ---- databases.c ------------------------------------------------------- */

int my_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int my_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int my_database_list(void *self, struct trove_call *call);
int my_database_alter(void *self, struct trove_call *call, const struct trove_database *db);
/* The checks of database.create that need no server (name, not protected,
 * form of the character set and collation). */
int my_database_check_new(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db);
int my_database_create_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_database *db);
/* 1 if the database exists, 0 if not, <0 on error. */
int my_database_exists(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *name);

/* ---- root.c ------------------------------------------------------------ */

int my_root_enable(void *self, struct trove_call *call, const char *password);
int my_root_disable(void *self, struct trove_call *call);
int my_root_show(void *self, struct trove_call *call);
/* report: set_str name/password in the result (root_enable), not in prepare. */
int my_root_enable_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *password, bool report);
int my_root_disable_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn);

/* ---- config.c ---------------------------------------------------------- */

int my_config_schema(void *self, struct trove_call *call);
int my_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int my_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int my_config_reset(void *self, struct trove_call *call);
int my_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* Write overrides (prepare, before the first start). */
int my_config_write_overrides(struct my_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n);

/* ---- server.c: the mariadbd process ------------------------------------ */

int my_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int my_start(void *self, struct trove_call *call);
int my_stop(void *self, struct trove_call *call);
int my_restart(void *self, struct trove_call *call);
int my_status(void *self, struct trove_call *call, struct trove_health *out);
/* Lock held around steps that start, stop or replace the server (another
 * agent process may try the same): returns the lock's fd, or a negative
 * status after fail() (TROVE_ECONFLICT when another operation holds it). */
int my_server_lock(struct my_ctx *ctx, struct trove_call *call);
/* Start the server (init file resets the admin account); waits until ready.
 * The caller holds my_server_lock. */
int my_server_start(struct my_ctx *ctx, struct trove_call *call);
/* Stop the server (SIGTERM, SIGKILL after stop_timeout); marks the stop as
 * intended. The caller holds my_server_lock. */
int my_server_stop(struct my_ctx *ctx, struct trove_call *call);
/* Write run_dir/my.cnf (and empty overrides/role files if missing). */
int my_server_write_config(struct my_ctx *ctx, struct trove_call *call);
/* Mark a physical restore under way (status says starting meanwhile). */
void my_server_mark_restoring(struct my_ctx *ctx, bool on);
/* pid of the running mariadbd from the pid file, or 0. */
pid_t my_server_pid(struct my_ctx *ctx);
/* Whether lifecycle operations are allowed (fails otherwise). */
int my_server_need_managed(struct my_ctx *ctx, struct trove_call *call, const char *what);
/* The system user tools that touch the data files run as (NULL = agent's). */
const char *my_server_tool_user(struct my_ctx *ctx);
/* mkdir (when missing) and give to the server's user. */
int my_server_make_dir(struct my_ctx *ctx, struct trove_call *call, const char *path, unsigned mode);
/* Persist or read the plugin-owned role file (read_only, role name). */
int my_role_write(struct my_ctx *ctx, struct trove_call *call, const char *role, bool read_only);
void my_role_read(struct my_ctx *ctx, char *role, size_t rolelen);

/* ---- backup.c ---------------------------------------------------------- */

int my_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int my_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* backup_restore for a caller that holds my_server_lock (prepare). */
int my_backup_restore_locked(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req);
/* Physical full backup into req->sink; fills meta. */
int my_backup_physical(struct my_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req,
                       bool incremental);

/* ---- backup_meta.c ----------------------------------------------------- */

/* The value of `key` in "key = value" lines (xtrabackup_checkpoints,
 * xtrabackup_info). Returns 1 and fills out, 0 if the key is absent, -1 if
 * the value does not fit in outlen (never cut short). */
int my_backup_info_value(const char *text, const char *key, char *out, size_t outlen);
/* One field of binlog_pos ("filename 'f', position 'p', GTID of the last
 * change 'g'"), label without the quote ("position"). Returns as above. */
int my_backup_binlog_field(const char *binlog_pos, const char *label, char *out, size_t outlen);

/* ---- replication.c ----------------------------------------------------- */

int my_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int my_repl_credentials(void *self, struct trove_call *call);
int my_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int my_repl_detach(void *self, struct trove_call *call);
int my_repl_promote(void *self, struct trove_call *call);
int my_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int my_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int my_repl_position(void *self, struct trove_call *call);
int my_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int my_repl_status(void *self, struct trove_call *call);
/* Role and position for status(); never fails (leaves defaults on error). */
void my_repl_health(struct my_ctx *ctx, MYSQL *conn, struct trove_health *out);

/* ---- gtid.c ------------------------------------------------------------ */

/* Compare two GTID lists (domain-server-seq, comma separated) as sets. */
int my_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);
/* True if s is a syntactically valid GTID list ("" is valid: the empty set). */
bool my_gtid_valid(const char *s);

/* ---- logs.c ------------------------------------------------------------ */

int my_guest_log_list(void *self, struct trove_call *call);
int my_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif
