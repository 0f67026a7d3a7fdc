/*
 * mongodb.h - what the files of the MongoDB plugin share: the context, the
 * connections (libmongoc), the plugin's files, and each file's functions.
 * The layout follows docs/plugin-guide.md ("Naming"): struct mg_ctx,
 * ctx->host, mg_<slot> for table slots, mg_<noun>_<verb> between files.
 * Nothing here is visible outside the shared object.
 */
#ifndef MONGODB_PLUGIN_H
#define MONGODB_PLUGIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include "trove_plugin.h"
#include "trove_plugin_support.h"

#define MG_VERSION "1.0.0"
#define MG_ROOT_USER "root"
#define MG_SERVER_COMM "mongod"        /* the server's process name */
#define MG_PATH_MAX 4096
#define MG_NAME_MAX 128                /* the plugin's limit on user names, in bytes */
#define MG_DB_NAME_MAX 63              /* MongoDB: fewer than 64 bytes */
#define MG_PLACEHOLDER "_trove"        /* the collection database_create makes */
#define MG_READ_ONLY_SECS 31536000     /* a read-only member stays out of elections this long */

/* The [datastore] settings (docs/plugins/mongodb.md), parsed by plugin.c's table. */
struct mg_settings {
    char *mongod;                /* the server binary */
    char *host;                  /* the member's advertised host; bound beside 127.0.0.1 */
    int64_t port;
    char *dbpath;                /* storage.dbPath; absolute */
    char *config_dir;            /* mongod.conf, keyfile, the plugin's state file, pid file */
    char *log_file;              /* systemLog.path; NULL = <config_dir>/mongod.log */
    char *run_as;                /* system user for mongod, or NULL */
    char *admin_user;            /* the plugin's own account (root role) */
    char *admin_password;        /* a secret */
    char *replication_user;      /* the account handed to members for membership changes */
    char *replica_set;           /* the set prepare initiates; NULL = "trove-<instance id>" */
    int64_t heartbeat_interval_ms;
    int64_t election_timeout_ms;
    int64_t start_timeout;       /* seconds */
    int64_t stop_timeout;        /* seconds */
    int64_t sync_timeout;        /* seconds a new member may take to reach SECONDARY */
    int64_t connect_timeout_ms;
    int64_t status_timeout_ms;
};

/* One open plugin. Settings are read-only after open(); the one shared
 * thing, the status connection, is guarded by status_lock. Every other call
 * opens its own connection, and files are guarded by locks in state_dir. */
struct mg_ctx {
    const struct trove_host *host;
    struct mg_settings s;
    char state_dir[1024];
    char default_set[128];
    pthread_mutex_t status_lock;
    mongoc_client_t *status_client;   /* pre-authenticated; guarded by status_lock */
};

/* ---- conn.c: connections and commands --------------------------------- */

/* Who a connection logs in as. */
enum mg_login {
    MG_LOGIN_ADMIN = 0,    /* the plugin's admin account */
    MG_LOGIN_NONE = 1,     /* no authentication (readiness probes, the localhost exception) */
    MG_LOGIN_SYSTEM = 2,   /* __system@local with the keyFile (maintenance, keyFile probes) */
    MG_LOGIN_USER = 3      /* the user and password given */
};

struct mg_target {
    const char *host;         /* NULL = 127.0.0.1 */
    int port;                 /* 0 = the settings' port */
    enum mg_login login;
    const char *user;         /* MG_LOGIN_USER */
    const char *password;     /* MG_LOGIN_USER, MG_LOGIN_SYSTEM (the keyFile text); a secret */
    uint32_t timeout_ms;      /* 0 = connect_timeout_ms; socket timeouts are longer */
};

/* A new client for one call (never shared between threads). Fails through
 * fail() with TROVE_EUNAVAIL (naming host and port) or TROVE_EINTERNAL. */
int mg_client_open(struct mg_ctx *ctx, struct trove_call *call, const struct mg_target *t, mongoc_client_t **out);
/* The local server as the admin. */
int mg_admin_open(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t **out);
/* Run cmd on db; *reply is always initialised (bson_destroy it). Failures
 * go through fail() with the server's text, prefixed by `what`. */
int mg_cmd(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *db, const bson_t *cmd,
           bson_t *reply, const char *what);
/* The same without fail(): true on success; *error says why not. */
bool mg_cmd_raw(mongoc_client_t *c, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error);
/* The trove status for a libmongoc error. */
int mg_status_of(const bson_error_t *error);
/* The server's error code in error, or 0 when it is not a server error. */
int mg_server_code(const bson_error_t *error);
/* fail() with what and the error's message. */
int mg_fail_error(struct mg_ctx *ctx, struct trove_call *call, const bson_error_t *error, const char *what);
/* Run `hello` (and replSetGetStatus on a member) on the status connection,
 * (re)connecting when needed; both replies are always initialised (destroy
 * them). Bounded by about status_timeout_ms. */
enum mg_reach {
    MG_REACH_OK = 0,        /* answered */
    MG_REACH_REFUSED = 1,   /* answered, but refused the admin login */
    MG_REACH_DOWN = 2       /* no answer in time */
};
enum mg_reach mg_status_hello(struct mg_ctx *ctx, bson_t *hello, bson_t *rs_status);
/* Make sure a kept status connection still answers, logged in (before a
 * step that may block new logins, like an fsync lock); a process that has
 * never reported status opens none. */
void mg_status_warm(struct mg_ctx *ctx);
/* Drop the status connection (the server is restarting). */
void mg_status_reset(struct mg_ctx *ctx);
/* Read prefs that let reads run on a secondary. */
const mongoc_read_prefs_t *mg_any_member(void);

/* BSON helpers: a string, int or bool field at a dotted path. */
const char *mg_bson_str(const bson_t *doc, const char *path);
int64_t mg_bson_int(const bson_t *doc, const char *path, int64_t fallback);
bool mg_bson_bool(const bson_t *doc, const char *path);

/* ---- names.c: MongoDB's rules ----------------------------------------- */

/* fail(TROVE_EINVAL) naming the rule a name breaks. */
int mg_check_user_name(struct mg_ctx *ctx, struct trove_call *call, const char *name);
int mg_check_db_name(struct mg_ctx *ctx, struct trove_call *call, const char *name);
/* admin, local, config (any case). */
bool mg_system_db(const char *name);
/* The plugin's own accounts and root: not for user_* slots. */
bool mg_reserved_user(struct mg_ctx *ctx, const char *name);

/* ---- server.c: files and the server process --------------------------- */

/* The plugin's files (in config_dir unless said otherwise). */
const char *mg_conf_path(struct mg_ctx *ctx, char *buf, size_t len);
const char *mg_keyfile_path(struct mg_ctx *ctx, char *buf, size_t len);
const char *mg_log_path(struct mg_ctx *ctx, char *buf, size_t len);
const char *mg_pid_path(struct mg_ctx *ctx, char *buf, size_t len);
const char *mg_state_path(struct mg_ctx *ctx, const char *name, char *buf, size_t len);  /* in state_dir */

/* The plugin's persistent state (<config_dir>/trove-state.json): the set
 * name and the configuration overrides. Load returns defaults when absent. */
struct mg_state {
    char set[128];
    bson_t parameters;   /* setParameter name -> value text */
    bson_t options;      /* dotted mongod.conf option -> value text */
    bson_t originals;    /* live parameter -> its value before the first override */
};
int mg_state_load(struct mg_ctx *ctx, struct trove_call *call, struct mg_state *st);
/* Write the state and regenerate mongod.conf from it, atomically. */
int mg_state_save(struct mg_ctx *ctx, struct trove_call *call, const struct mg_state *st);
void mg_state_free(struct mg_state *st);

/* The keyFile text (whitespace removed), malloc'd and wiped by the caller
 * with mg_secret_free; NULL with fail() when unreadable. */
char *mg_keyfile_read(struct mg_ctx *ctx, struct trove_call *call);
/* Write the keyFile (0600, owned by run_as) from a cluster secret: used as
 * it is when it is a valid keyFile (6-1024 base64 characters), else the
 * base64 of its SHA-256, so every member derives the same file. */
int mg_keyfile_write(struct mg_ctx *ctx, struct trove_call *call, const char *secret);
/* The keyFile text a secret becomes (see mg_keyfile_write), malloc'd. */
char *mg_keyfile_text(const char *secret);
void mg_secret_free(char *s);

/* Lock held around steps that stop, replace or reconfigure the server. */
int mg_server_lock(struct mg_ctx *ctx, struct trove_call *call);
bool mg_server_initialised(struct mg_ctx *ctx);
/* Start (from a regenerated mongod.conf) / stop the server. */
int mg_server_start(struct mg_ctx *ctx, struct trove_call *call);
/* The same on an empty dbPath (a member about to be filled by an initial sync). */
int mg_server_start_empty(struct mg_ctx *ctx, struct trove_call *call);
int mg_server_stop(struct mg_ctx *ctx, struct trove_call *call);
/* Wait until the local server is PRIMARY (writable). */
int mg_wait_primary(struct mg_ctx *ctx, struct trove_call *call, uint32_t timeout_ms);
/* replSetInitiate a one-member set of this host on a connection. */
int mg_replset_initiate(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *set);

/* A standalone copy of mongod on a data directory, on a private loopback
 * port, logged in as __system: restores and replica-set resets work there
 * without touching the live server (or with it stopped). */
struct mg_side {
    pid_t pid;
    int port;
    char dbpath[MG_PATH_MAX];
    char pid_file[MG_PATH_MAX];
    mongoc_client_t *client;
};
int mg_side_start(struct mg_ctx *ctx, struct trove_call *call, const char *dbpath, struct mg_side *side);
int mg_side_stop(struct mg_ctx *ctx, struct trove_call *call, struct mg_side *side);
/* Make sure the admin account exists with the plugin's password and root. */
int mg_admin_ensure(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c);
/* Leave every replica set: drop `local` with the server stopped (on a side
 * instance), then start as a new one-member set `set`. Lock held. */
int mg_replset_reset(struct mg_ctx *ctx, struct trove_call *call, const char *set);

/* Lifecycle slots. */
int mg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int mg_start(void *self, struct trove_call *call);
int mg_stop(void *self, struct trove_call *call);
int mg_restart(void *self, struct trove_call *call);
int mg_status(void *self, struct trove_call *call, struct trove_health *out);

/* ---- users.c, databases.c --------------------------------------------- */

int mg_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_list(void *self, struct trove_call *call);
int mg_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int mg_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int mg_root_enable(void *self, struct trove_call *call, const char *password);
int mg_root_disable(void *self, struct trove_call *call);
int mg_root_show(void *self, struct trove_call *call);
int mg_user_create_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const struct trove_user *user);
int mg_root_enable_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *password,
                      bool report);
/* Create or update a user on admin with `roles` (a BSON array) and password. */
int mg_user_upsert(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *name,
                   const char *password, const bson_t *roles);

int mg_database_create(void *self, struct trove_call *call, const struct trove_database *db);
int mg_database_delete(void *self, struct trove_call *call, const struct trove_database *db);
int mg_database_list(void *self, struct trove_call *call);
int mg_database_create_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *name);
/* The user databases (not admin, local, config) as a NULL-terminated list; free with mg_strv_free. */
int mg_database_names(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, char ***out);
void mg_strv_free(char **v);

/* ---- config.c --------------------------------------------------------- */

int mg_config_schema(void *self, struct trove_call *call);
int mg_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int mg_config_reset(void *self, struct trove_call *call);
int mg_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
/* A value of schema parameter `name` as a mongod.conf scalar (numbers and
 * booleans plain, anything else double-quoted). */
void mg_config_yaml(const char *name, const char *text, struct tps_buf *out);
/* Record overrides in st without touching the server (prepare, before the
 * first start); fails naming an unknown parameter. */
int mg_config_stage(struct mg_ctx *ctx, struct trove_call *call, struct mg_state *st, const struct trove_kv *values,
                    size_t n);
/* Apply overrides (prepare): persist, apply live where running; *restart
 * tells whether one waits for a restart. With `report`, add_str each. */
int mg_config_set(struct mg_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n,
                  bool report, bool *restart);

/* ---- optime.c: positions ---------------------------------------------- */

struct mg_optime {
    int64_t term;
    uint32_t secs, inc;
};
/* "term:secs:inc" */
void mg_optime_format(const struct mg_optime *o, char *out, size_t len);
bool mg_optime_parse(const char *text, struct mg_optime *o);
/* -1, 0, 1: term first, then the timestamp (term -1: timestamps only). */
int mg_optime_cmp(const struct mg_optime *a, const struct mg_optime *b);
/* The optime document {ts, t} at path in doc. */
bool mg_optime_from(const bson_t *doc, const char *path, struct mg_optime *o);
int mg_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);

/* ---- tar.c: data directories as tar streams ------------------------------ */

/* Stream dir (without the top-level names in `skip`) into the sink as ustar. */
int mg_tar_write(struct mg_ctx *ctx, struct trove_call *call, const char *dir, const char *const *skip,
                 struct trove_sink *sink, uint64_t *bytes);
/* Extract a stream into the empty directory dir: regular files and
 * directories only, relative names without "..". */
int mg_tar_extract(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, const char *dir,
                   const char *piece);

/* ---- archive.c: mongodump's archive format ----------------------------- */

/* Write a logical backup (collections, indexes, users and the oplog slice
 * that makes them consistent) in mongodump's archive format. */
int mg_archive_dump(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_sink *sink,
                    struct mg_optime *end);
/* Load an archive into a (side) server logged in as __system, skipping the
 * plugin's own accounts; the oplog slice is replayed with applyOps. */
int mg_archive_load(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_source *source,
                    const char *piece);
/* Replay a stream of oplog entries (an incremental backup) with applyOps. */
int mg_oplog_replay(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_source *source,
                    const char *piece);
/* Apply a batch of oplog entries (a BSON array) with applyOps. */
int mg_apply_ops(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const bson_t *ops);

/* Read exactly len bytes (false at a clean end before any byte: *eof). */
int mg_source_read_full(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, void *buf,
                        size_t len, bool *eof, const char *piece);
/* Read one BSON document from a stream into a malloc'd buffer (validated). */
int mg_source_read_doc(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, uint8_t **doc,
                       uint32_t *len, bool *eof, const char *piece);

/* ---- backup.c, restore.c ---------------------------------------------- */

int mg_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int mg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
/* The full (file) backup: fsync lock on one connection, the data files,
 * unlock on the same connection. Puts "meta". */
int mg_backup_files(struct mg_ctx *ctx, struct trove_call *call, struct trove_sink *sink);

/* ---- replication.c, cluster.c, logs.c --------------------------------- */

int mg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int mg_repl_credentials(void *self, struct trove_call *call);
int mg_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int mg_repl_detach(void *self, struct trove_call *call);
int mg_repl_promote(void *self, struct trove_call *call);
int mg_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int mg_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int mg_repl_position(void *self, struct trove_call *call);
int mg_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int mg_repl_status(void *self, struct trove_call *call);
/* Re-apply a persisted read-only flag after a start (a restart forgets it). */
int mg_read_only_restore(struct mg_ctx *ctx, struct trove_call *call);

/* Join the replica set whose member answers at host:port (as user/password,
 * or the admin account when NULL), with the keyFile text `key` (NULL: the
 * current one). With `keep_data`, this server's data must already be a copy
 * of the set's (a restored snapshot); otherwise it is replaced by an initial
 * sync and must hold no user database. `want_set`: the set's expected name or NULL. */
struct mg_join {
    const char *host;
    int port;
    const char *user, *password;
    const char *secret;
    const char *want_set;
};
int mg_replset_join(struct mg_ctx *ctx, struct trove_call *call, const struct mg_join *j);
/* Remove this member from its set (through the primary) and reset it as a
 * one-member set of its own. */
int mg_replset_leave(struct mg_ctx *ctx, struct trove_call *call);

int mg_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int mg_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req);
int mg_cluster_status(void *self, struct trove_call *call);

int mg_guest_log_list(void *self, struct trove_call *call);
int mg_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

#endif
