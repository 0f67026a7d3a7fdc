/*
 * mysql_plugin.h - shared declarations of the MySQL/MariaDB plugin: its
 * settings, the per-instance state, and the helpers the slot files use.
 * Nothing here is visible outside the shared object.
 */
#ifndef MYSQL_PLUGIN_H
#define MYSQL_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "trove_plugin.h"

#define MY_PLUGIN_VERSION "1.0.0"

/* Settings from the agent's [datastore] section (see docs/plugins/mysql.md). */
struct my_settings {
    char *host;              /* TCP address the plugin and tools connect to */
    int port;
    char *socket;            /* unix socket; preferred for local connections */
    char *bind_address;
    char *admin_user;        /* the plugin's own superuser account */
    char *admin_password;    /* a secret */
    char *replication_user;  /* prefix of replication accounts made by repl_snapshot */
    bool manage_server;      /* the plugin starts and stops mariadbd itself */
    char *datadir;
    char *run_dir;           /* generated option files, pid file, error log */
    char *pid_file;
    char *log_error;
    char *my_cnf;            /* generated option file the server starts with */
    char *overrides_file;    /* configuration overrides (config_apply) */
    char *role_file;         /* plugin-owned replication settings (read_only) */
    char *server_user;       /* mariadbd --user, and owner of the data files */
    long server_id;
    char *log_bin;           /* binary log basename */
    char *mariadbd, *install_db, *backup_tool, *mbstream, *dump_tool, *client_tool;
    unsigned connect_timeout; /* seconds */
    unsigned start_timeout;   /* seconds */
    unsigned stop_timeout;    /* seconds */
};

struct my_plugin {
    const struct trove_host *host;
    struct my_settings s;
};

/* ------------------------------------------------------------ util.c */

/* A growable string; any allocation failure sticks in `oom`. */
struct sb {
    char *buf;
    size_t len, cap;
    bool oom;
};

void sb_add(struct sb *b, const char *s);
void sb_addn(struct sb *b, const char *s, size_t n);
void sb_addf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an identifier in backticks, doubling embedded backticks. */
void sb_ident(struct sb *b, const char *name);
/* A database name as a grant pattern: the grant wildcards `_` and `%` (and
 * the escape character `\` itself) escaped with a backslash, so they match
 * literally. This is a value (what
 * mysql.db.Db holds); quote it with sb_ident for GRANT/REVOKE and with
 * sb_literal for a lookup. Caller frees; NULL when out of memory. */
char *grant_pattern(const char *name);
/* The database name a grant pattern of grant_pattern() stands for (in place). */
void grant_pattern_to_name(char *pattern);
/* Append a database name for GRANT/REVOKE: sb_ident(grant_pattern(name)). */
void sb_grant_db(struct sb *b, const char *name);
/* Append a quoted string literal escaped for `conn` (mysql_real_escape_string). */
void sb_literal(struct sb *b, MYSQL *conn, const char *s);
/* Append 'user'@'host'. */
void sb_account(struct sb *b, MYSQL *conn, const char *user, const char *host);
/* Literal escaping without a connection (option and init files, sql_mode ''). */
void sb_literal_offline(struct sb *b, const char *s);
void sb_free(struct sb *b);
/* Wipe and free (for buffers that held a secret). */
void sb_wipe(struct sb *b);

char *my_strdup(const char *s);
void my_wipe_free(char *s);
/* Write a whole file with `mode` atomically (tmp + rename). 0 or -errno. */
int write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);
/* Read a whole file (NUL-terminated, caller frees). NULL on error (errno set). */
char *read_file(const char *path, size_t max, size_t *len);
bool path_exists(const char *path);
bool dir_is_empty_or_missing(const char *path);
/* Create a 0600 temp file in dir holding data; *path receives its name. */
int write_secret_file(const char *dir, const char *data, char *path, size_t pathlen);
/* snprintf for paths; false when truncated. */
bool path_printf(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Remove entries of dir named "<prefix><pid>-..." whose process is gone
 * (credential files and work directories of a killed agent). Returns the
 * number removed. */
int remove_stale_temporaries(const char *dir, const char *const *prefixes, size_t n_prefixes);
/* Sleep ms milliseconds. */
void sleep_ms(unsigned ms);
uint64_t mono_ms(void);
/* Remove a directory tree (no symlink following). 0 or -errno. */
int remove_tree(const char *path);
/* The last `max` bytes of a file, from its last complete lines. */
void file_tail(const char *path, char *out, size_t max);
/* Parse a decimal integer (whole string). */
bool parse_i64(const char *s, int64_t *out);
bool parse_u64(const char *s, uint64_t *out);

/* ------------------------------------------------------------ password.c */

#define NATIVE_HASH_LEN 41   /* '*' and 40 hex digits */

/* The mysql_native_password hash of password ('*' and the uppercase hex of
 * SHA1(SHA1(password))) into out. False when libcrypto fails. */
bool native_password_hash(const char *password, char out[NATIVE_HASH_LEN + 1]);
/* Append " IDENTIFIED BY PASSWORD '<hash>'": the server gets the hash, never
 * the cleartext. A hashing failure marks the builder oom. */
void sb_identified_by(struct sb *b, const char *password);

/* ------------------------------------------------------------ conn.c */

/* Connect as the admin. On failure fail()s with TROVE_EUNAVAIL. A connection
 * with `quick` set uses short read/write timeouts (status). */
int my_connect(struct my_plugin *p, struct trove_call *call, bool quick, MYSQL **out);
/* Try to connect; fill msg with the client error on failure. */
MYSQL *my_try_connect(struct my_plugin *p, bool quick, char *msg, size_t msglen, unsigned *err);
void my_close(MYSQL *conn);
/* Run a statement; on error fail()s with the server's message. */
int my_exec(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *sql);
int my_exec_sb(struct my_plugin *p, struct trove_call *call, MYSQL *conn, struct sb *sql);
/* Run a query and store its result. */
int my_query(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *sql, MYSQL_RES **res);
/* First column of the first row into out ("" and *is_null when NULL or no row). */
int my_scalar(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *sql, char *out, size_t outlen,
              bool *is_null);
/* fail() with the connection's last error, mapping well-known codes. */
int my_fail_conn(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *what);
/* A string-builder OOM. */
int my_oom(struct my_plugin *p, struct trove_call *call);

/* ------------------------------------------------------------ names.c */

int check_user_name(struct my_plugin *p, struct trove_call *call, const char *name);
int check_host(struct my_plugin *p, struct trove_call *call, const char *host);
int check_database_name(struct my_plugin *p, struct trove_call *call, const char *name);
int check_password(struct my_plugin *p, struct trove_call *call, const char *password);
/* The protected names of docs/plugins/mysql.md ("Protected names"): the API
 * refuses to manage them and list operations hide them. */
bool is_system_user(const struct my_plugin *p, const char *name);
bool is_system_database(const char *name);
/* user->host, or "%" when the request gave none (NULL). An empty host is not
 * "none": check_host refuses it. */
const char *user_host(const struct trove_user *u);
/* a "host:port" style server host name for CHANGE MASTER */
int check_server_host(struct my_plugin *p, struct trove_call *call, const char *host);

/* ------------------------------------------------------------ users.c */

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
int users_check_new(struct my_plugin *p, struct trove_call *call, const struct trove_user *user);
/* Create a user on an open connection (prepare uses it). */
int users_create_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_user *user);
/* 1 if 'user'@'host' exists, 0 if not, <0 on error (failed). */
int account_exists(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *user, const char *host);

/* ------------------------------------------------------------ databases.c */

int my_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int my_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int my_database_list(void *self, struct trove_call *call);
/* The checks of database.create that need no server (name, not protected,
 * form of the character set and collation). */
int databases_check_new(struct my_plugin *p, struct trove_call *call, const struct trove_database *db);
int databases_create_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_database *db);
/* 1 if the database exists, 0 if not, <0 on error. */
int database_exists(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *name);

/* ------------------------------------------------------------ root.c */

int my_root_enable(void *self, struct trove_call *call, const char *password);
int my_root_disable(void *self, struct trove_call *call);
int my_root_show(void *self, struct trove_call *call);
/* report: set_str name/password in the result (root_enable), not in prepare. */
int root_enable_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *password, bool report);
int root_disable_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn);

/* ------------------------------------------------------------ config.c */

int my_config_schema(void *self, struct trove_call *call);
int my_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int my_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int my_config_reset(void *self, struct trove_call *call);
int my_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* Write overrides (prepare, before the first start). */
int config_write_overrides(struct my_plugin *p, struct trove_call *call, const struct trove_kv *values, size_t n);

/* ------------------------------------------------------------ lifecycle.c */

int my_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int my_start(void *self, struct trove_call *call);
int my_stop(void *self, struct trove_call *call);
int my_restart(void *self, struct trove_call *call);
int my_status(void *self, struct trove_call *call, struct trove_health *out);
/* Start the server (init file resets the admin account); waits until ready. */
int server_start(struct my_plugin *p, struct trove_call *call);
/* Stop the server (SIGTERM + wait); marks the stop as intended. */
int server_stop(struct my_plugin *p, struct trove_call *call);
/* Write run_dir/my.cnf (and empty overrides/role files if missing). */
int server_write_config(struct my_plugin *p, struct trove_call *call);
/* Mark a physical restore under way (status says starting meanwhile). */
void mark_restoring(struct my_plugin *p, bool on);
/* pid of the running mariadbd from the pid file, or 0. */
long server_pid(struct my_plugin *p);
/* Whether lifecycle operations are allowed (fails otherwise). */
int need_managed(struct my_plugin *p, struct trove_call *call, const char *what);
/* The system user tools that touch the data files run as (NULL = agent's). */
const char *tool_user(struct my_plugin *p);
/* Persist or read the plugin-owned role file (read_only, role name). */
int role_write(struct my_plugin *p, struct trove_call *call, const char *role, bool read_only);
void role_read(struct my_plugin *p, char *role, size_t rolelen);
/* Make a 0600 client option file ([client] user/password/socket/host/port)
 * in run_dir; path receives its name. The caller unlinks it. */
int client_defaults_file(struct my_plugin *p, struct trove_call *call, char *path, size_t pathlen);

/* ------------------------------------------------------------ backup.c */

int my_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int my_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* Physical full backup into req->sink; fills meta. */
int backup_physical(struct my_plugin *p, struct trove_call *call, const struct trove_backup_request *req,
                    bool incremental);

/* ------------------------------------------------------------ backup_meta.c */

/* The value of `key` in "key = value" lines (xtrabackup_checkpoints,
 * xtrabackup_info). Returns 1 and fills out, 0 if the key is absent, -1 if
 * the value does not fit in outlen (never cut short). */
int backup_info_value(const char *text, const char *key, char *out, size_t outlen);
/* One field of binlog_pos ("filename 'f', position 'p', GTID of the last
 * change 'g'"), label without the quote ("position"). Returns as above. */
int backup_binlog_field(const char *binlog_pos, const char *label, char *out, size_t outlen);

/* ------------------------------------------------------------ replication.c */

int my_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int my_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int my_repl_detach(void *self, struct trove_call *call);
int my_repl_promote(void *self, struct trove_call *call);
int my_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int my_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int my_repl_position(void *self, struct trove_call *call);
int my_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int my_repl_status(void *self, struct trove_call *call);
/* Role and position for status(); never fails (leaves defaults on error). */
void repl_health(struct my_plugin *p, MYSQL *conn, struct trove_health *out);

/* ------------------------------------------------------------ gtid.c */

/* Compare two GTID lists (domain-server-seq, comma separated) as sets. */
int my_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);
/* True if s is a syntactically valid GTID list ("" is valid: the empty set). */
bool gtid_valid(const char *s);

#endif
