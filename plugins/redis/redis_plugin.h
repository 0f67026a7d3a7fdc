/*
 * redis_plugin.h - what the files of the Redis plugin share: the context
 * (settings read once by open(), immutable after), connections and commands,
 * and each file's functions. The layout is the one every plugin follows
 * (docs/plugin-guide.md, "Naming"):
 *   struct rd_ctx        the one context: settings, read-only after open()
 *   ctx->host            the agent's services
 *   rd_<slot>            a table slot (rd_user_create, rd_backup_restore)
 *   rd_<noun>_<verb>     a helper shared between files (rd_conn_open, rd_server_start)
 * Nothing here is visible outside the shared object or part of the ABI.
 */
#ifndef REDIS_PLUGIN_H
#define REDIS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define RD_VERSION "1.1.0"
#define RD_PATH_MAX 4096
#define RD_SERVER_COMM "redis-server"   /* the server's process name */

enum rd_shutdown { RD_SHUTDOWN_SAVE, RD_SHUTDOWN_NOSAVE, RD_SHUTDOWN_DEFAULT };

/* The [datastore] settings (docs/plugins/redis.md), parsed by plugin.c's
 * table. Optional strings are NULL when absent or empty. */
struct rd_settings {
    char *host;                 /* where the agent connects (TCP) */
    int64_t port;
    char *socket;               /* unix socket; preferred over TCP when set */
    char *bind;                 /* bind address written into the config file (default: host) */
    char *user;                 /* the agent's admin ACL user */
    char *password;             /* its password (a secret) */
    char *redis_server;         /* the server binary */
    char *config_file;          /* the config file the plugin owns; NULL = unmanaged server */
    char *dir;                  /* data directory (default: config_file's directory) */
    char *dbfilename;
    char *pid_file;             /* default <dir>/redis.pid */
    char *log_file;             /* default <dir>/redis.log */
    char *root_user;            /* ACL user behind root.enable */
    char *replication_user;     /* ACL user replicas authenticate as */
    char *run_as;               /* system user for redis-server, NULL = the agent's */
    char *shutdown;             /* save, nosave or default */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    int64_t start_timeout;      /* seconds */
    int64_t stop_timeout;       /* seconds */
    int64_t sync_timeout;       /* seconds of silence allowed while reading an RDB */
};

/* One open plugin. Read-only after open(), so the loop and worker threads
 * (and another agent process) share nothing through it: every call opens its
 * own connection, and files are guarded by locks in state_dir. */
struct rd_ctx {
    const struct trove_host *host;
    struct rd_settings s;
    enum rd_shutdown shutdown;
    char state_dir[RD_PATH_MAX];   /* the agent's directory for the plugin's own files */
};

/* A field of a struct the agent passed, or `fallback` when the agent's
 * struct is too short to hold it (TROVE_FIELD_OK). */
#define RD_FIELD(ptr, type, member, fallback) (TROVE_FIELD_OK(ptr, type, member) ? (ptr)->member : (fallback))

#define RD_FAIL(ctx, call, st, ...) ((ctx)->host->fail((call), (st), __VA_ARGS__))

/* ---- plugin.c --------------------------------------------------------- */

/* "<state_dir>/<name>": the plugin's own files (locks, markers). */
const char *rd_state_path(struct rd_ctx *ctx, const char *name, char *buf, size_t len);
/* Require config_file: the plugin controls the server through the file it owns. */
int rd_require_managed(struct rd_ctx *ctx, struct trove_call *call, const char *what);

/* ---- request.c: what the agent hands in, read within its size -------- */

/* The agent's user as this plugin reads it: fields beyond the agent's
 * struct are NULL / 0; key patterns read within n_databases. */
struct trove_user rd_user_in(const struct trove_user *in);
/* The replication source the same way (host, port, user, password). */
struct trove_replication_source rd_source_in(const struct trove_replication_source *in);

/* ---- names.c: names and secrets -------------------------------------- */

/* ACL user names: 1-64 of [A-Za-z0-9_.:@-], a letter, digit or '_' first. */
bool rd_user_name_ok(const char *name);
/* Key patterns: 1-256 printable ASCII, no spaces or quotes, no rule prefix. */
bool rd_pattern_ok(const char *p);
/* Passwords: 1-512 bytes without control characters. */
bool rd_password_ok(const char *pw);
/* Host names and addresses of a replication source. */
bool rd_host_ok(const char *host);
#define RD_PASSWORD_RULE_SIZE 66   /* '#', 64 hex digits, NUL */
/* The ACL rule "#<sha256 hex>" that gives a user this password. */
void rd_password_rule(const char *password, char out[RD_PASSWORD_RULE_SIZE]);

/* ---- conn.c: talking to the server ------------------------------------ */

/* A connection for one call. */
struct rd_conn {
    struct rd_ctx *ctx;
    struct trove_call *call;
    redisContext *c;
};

/* Connect and AUTH as the admin; fails with TROVE_EUNAVAIL when down. */
int rd_conn_open(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn);
/* The same with a connect timeout; without `report`, an unreachable server
 * is TROVE_EUNAVAIL with no message (a failed login still fails()). */
int rd_conn_open_timeout(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn, int timeout_ms,
                         bool report);
void rd_conn_close(struct rd_conn *conn);
/* Run a command; an error reply becomes fail() naming the command, never its
 * arguments. *out (when given) receives the reply for freeReplyObject(). */
int rd_conn_cmd_argv(struct rd_conn *conn, redisReply **out, int argc, const char *const *argv);
int rd_conn_cmd(struct rd_conn *conn, redisReply **out, ...);   /* NULL-terminated string arguments */
int rd_conn_cmd_ok(struct rd_conn *conn, ...);                   /* same, reply discarded */
/* INFO <section>'s field into buf; fails when absent. */
int rd_info_get(struct rd_conn *conn, const char *section, const char *field, char *buf, size_t len);
int rd_config_get(struct rd_conn *conn, const char *name, char *buf, size_t len);
/* Persist ACL changes: ACL SAVE with an aclfile, else CONFIG REWRITE. */
int rd_acl_save(struct rd_conn *conn);

/* ---- info.c: INFO text and replication positions (no connection) ------ */

/* "field:value" at a line start in an INFO text: the value into buf (cut to
 * len - 1 bytes), or NULL. */
const char *rd_info_find(const char *info, const char *field, char *buf, size_t len);
/* A replication position: "<replid>:<offset>", then ",<replid2>:<offset2>"
 * when the server carries an earlier history (after a promotion). */
struct rd_pos {
    char id[41];
    uint64_t off;
    bool has2;
    char id2[41];
    uint64_t off2;   /* first offset NOT covered by id2 (Redis's second_repl_offset) */
};
int rd_pos_parse(const char *s, struct rd_pos *p);   /* 0, or -1 if s is not a position */
enum trove_order rd_pos_compare(const struct rd_pos *a, const struct rd_pos *b);
/* The position an INFO replication text describes, into buf. */
void rd_position_from_info(const char *info, char *buf, size_t len);

/* ---- conffile.c: the config file the plugin owns ---------------------- */

/* "name value\n" as Redis's parser reads it back: the value bare when it is
 * a plain word, else double-quoted (refuse control characters first). */
void rd_config_line(struct tps_buf *b, const char *name, const char *value);
/* Set (value != NULL) or remove (NULL) directive `name` atomically. 0 or -errno. */
int rd_config_file_set(const char *path, const char *name, const char *value);
/* The value of the last line setting `name` (quotes removed). 0 or -1. */
int rd_config_file_get(const char *path, const char *name, char *buf, size_t len);

/* ---- server.c: the redis-server process ------------------------------- */

int rd_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int rd_start(void *self, struct trove_call *call);
int rd_stop(void *self, struct trove_call *call);
int rd_restart(void *self, struct trove_call *call);
int rd_status(void *self, struct trove_call *call, struct trove_health *out);
/* Start (with extra arguments, e.g. --appendonly no) and wait until ready. */
int rd_server_start(struct rd_ctx *ctx, struct trove_call *call, const char *const *extra_args);
int rd_server_stop(struct rd_ctx *ctx, struct trove_call *call, enum rd_shutdown mode);
/* Lock held around steps that stop, start or replace the server (another
 * agent process may try the same): returns the lock's fd, or fails. */
int rd_server_lock(struct rd_ctx *ctx, struct trove_call *call);

/* ---- users.c ---------------------------------------------------------- */

int rd_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_list(void *self, struct trove_call *call);
int rd_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int rd_root_enable(void *self, struct trove_call *call, const char *password);
int rd_root_disable(void *self, struct trove_call *call);
int rd_root_show(void *self, struct trove_call *call);
bool rd_user_is_system(struct rd_ctx *ctx, const char *name);

/* ---- databases.c ------------------------------------------------------ */

int rd_database_list(void *self, struct trove_call *call);

/* ---- config.c --------------------------------------------------------- */

int rd_config_schema(void *self, struct trove_call *call);
int rd_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int rd_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int rd_config_reset(void *self, struct trove_call *call);
int rd_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* prepare: every override straight into the config file. */
int rd_config_write_overrides(struct rd_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n);
/* Drop the restart-only values staged for the next start (it came). */
void rd_config_pending_clear(struct rd_ctx *ctx);
/* CONFIG REWRITE, the file back to 0600, staged restart values written again. */
int rd_config_rewrite(struct rd_conn *conn);

/* ---- backup.c --------------------------------------------------------- */

int rd_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int rd_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* The restore itself, for prepare and backup_restore: the caller holds the server lock. */
int rd_restore_install(struct rd_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req);
/* Stream an RDB snapshot of the server into sink, meta recorded. */
int rd_rdb_fetch(struct rd_ctx *ctx, struct trove_call *call, struct trove_sink *sink);

/* ---- replication.c ---------------------------------------------------- */

int rd_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int rd_repl_credentials(void *self, struct trove_call *call);
int rd_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int rd_repl_detach(void *self, struct trove_call *call);
int rd_repl_promote(void *self, struct trove_call *call);
int rd_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int rd_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int rd_repl_position(void *self, struct trove_call *call);
int rd_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int rd_repl_status(void *self, struct trove_call *call);
int rd_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);
/* Make a primary refuse writes (or lift that), keeping the operator's
 * min-replicas-to-write in the state directory meanwhile. */
int rd_repl_primary_read_only(struct rd_conn *conn, bool read_only);

/* ---- logs.c ----------------------------------------------------------- */

int rd_guest_log_list(void *self, struct trove_call *call);
int rd_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif /* REDIS_PLUGIN_H */
