/*
 * trove_plugin.h - the datastore plugin ABI, version 1.
 *
 * This is the only header a datastore vendor needs. A plugin is a shared
 * object that exports one function, trove_plugin_entry(), returning a const
 * table of operations (struct trove_plugin). The agent passes its services in
 * as a table (struct trove_host) when it opens the plugin. Neither side links
 * against the other's symbols, and the plugin never sees the wire format.
 *
 * VERSIONING
 *   TROVE_ABI_MAJOR changes only when an existing slot or structure changes
 *   meaning or layout; the agent refuses a plugin whose major differs from its
 *   own and says both numbers. TROVE_ABI_MINOR grows when slots are appended to
 *   struct trove_plugin or services are appended to struct trove_host. Both
 *   tables carry their compiled size in `size`: the agent calls a plugin slot
 *   only if it lies inside the plugin's `size` and is not NULL
 *   (TROVE_PLUGIN_HAS), and a plugin uses a host service only if it lies inside
 *   the host's `size` (TROVE_HOST_HAS). Slots are never removed or reordered.
 *
 * NOT SUPPORTED
 *   A NULL slot means "this datastore cannot do that". The agent answers such
 *   a request with TROVE_ENOTSUP without calling the plugin, and lists only the
 *   operations whose slots are set in the capabilities it announces.
 *
 * RESULTS AND ERRORS
 *   Every operation returns an enum trove_status. On failure the plugin sets a
 *   human-readable message with host->fail(), which also returns the status, so
 *   `return h->fail(call, TROVE_EINVAL, "name too long");` is the idiom. Results
 *   go out through the host's builders (emit_*, set_*, add_*, put) or through
 *   caller-owned structs (struct trove_health). The plugin never allocates
 *   memory that the host must free, and the host never frees plugin memory.
 *   Strings passed to the plugin are NUL-terminated UTF-8 owned by the host and
 *   valid only for the duration of the call; copy what you keep.
 *
 * THREADING
 *   The agent calls a plugin from at most two threads at once: the loop
 *   thread, which runs short operations (users, databases, status, ...) one at
 *   a time, and one worker thread, which runs long operations (prepare,
 *   restart, backups, restore, replication snapshot/attach/demote) one at a
 *   time. A short operation may therefore run while a long one is in progress,
 *   and the plugin must keep its instance state safe for that (a connection
 *   per call is the simple way). open() and close() are called with no other
 *   call in flight. Host services may be called from any thread, but a
 *   struct trove_call belongs to the one call it was passed to.
 *
 * SECRETS
 *   Passwords arrive in struct fields named `password` and in settings whose
 *   key ends in "password". Never pass them to host->log(), never put them on
 *   a command line (use struct trove_exec's env or a 0600 file), and never
 *   paste them unescaped into a statement.
 *
 * This header includes only standard headers and compiles alone with
 * -std=c11 -Wall -Wextra -Werror -pedantic.
 */
#ifndef TROVE_PLUGIN_H
#define TROVE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TROVE_ABI_MAJOR 1
#define TROVE_ABI_MINOR 0

/* The name of the one symbol a plugin exports (see trove_plugin_entry). */
#define TROVE_PLUGIN_ENTRY "trove_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define TROVE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define TROVE_EXPORT __attribute__((visibility("default")))
#else
#define TROVE_PRINTF(fmt, args)
#define TROVE_EXPORT
#endif

/* ---------------------------------------------------------------- status */

/*
 * Uniform status codes. The numeric values and the wire names (in brackets)
 * are part of the ABI and of the wire protocol; new codes are only appended.
 */
enum trove_status {
    TROVE_OK = 0,          /* [ok] */
    TROVE_EINVAL = 1,      /* [invalid_argument] bad name, value or combination */
    TROVE_ENOTFOUND = 2,   /* [not_found] the user, database, backup... does not exist */
    TROVE_EEXIST = 3,      /* [already_exists] */
    TROVE_ENOTSUP = 4,     /* [not_supported] the datastore cannot do this */
    TROVE_EDATASTORE = 5,  /* [datastore_error] the server refused or failed; message says why */
    TROVE_EUNAVAIL = 6,    /* [unavailable] the server is not reachable or not running */
    TROVE_ECANCELLED = 7,  /* [cancelled] stopped by host->cancelled() or agent shutdown */
    TROVE_EINTERNAL = 8,   /* [internal] a bug or resource failure in agent or plugin */
    TROVE_ETIMEOUT = 9,    /* [timeout] a deadline passed (waiting for a position, ...) */
    TROVE_ECONFLICT = 10,  /* [failed_precondition] state forbids it (promote while behind, ...) */
    TROVE_ECHECKSUM = 11   /* [checksum_mismatch] stored bytes do not match their checksum */
};

/* ------------------------------------------------------------ value types */

/* A string key/value pair. Used for settings, options and metadata. */
struct trove_kv {
    const char *key;
    const char *value;
};

/*
 * A database user (MySQL user@host, PostgreSQL role, Redis ACL user,
 * MongoDB user, Cassandra role). In requests, fields a request does not need
 * are NULL / 0. When the plugin emits a user, `password` is ignored.
 */
struct trove_user {
    const char *name;
    const char *host;                /* NULL = datastore default ("%" in MySQL); others ignore it */
    const char *password;            /* NULL when not part of the request; a secret */
    const char *const *databases;    /* databases (or key patterns) this user may access */
    size_t n_databases;
    const struct trove_kv *options;  /* engine-specific extras, e.g. Redis "rules"; see the plugin guide */
    size_t n_options;
};

/* A database (MySQL schema, PostgreSQL database, Redis numbered database,
 * MongoDB database, Cassandra keyspace). */
struct trove_database {
    const char *name;
    const char *character_set;       /* NULL = server default; PostgreSQL: encoding */
    const char *collation;           /* NULL = server default; PostgreSQL: locale */
    const char *owner;               /* NULL = default owner; engines without owners ignore it */
    const struct trove_kv *options;  /* engine-specific extras (Redis: "keys" count when emitted) */
    size_t n_options;
};

/* Configuration parameter types, for the schema (struct trove_param). */
enum trove_param_type {
    TROVE_PARAM_STRING = 0,
    TROVE_PARAM_INTEGER = 1,  /* decimal integer in [min, max] */
    TROVE_PARAM_FLOAT = 2,    /* decimal number in [min_float, max_float] */
    TROVE_PARAM_BOOLEAN = 3,  /* on/off, true/false, 1/0 (case-insensitive) */
    TROVE_PARAM_ENUM = 4      /* one of `allowed` (case-insensitive) */
};

/* One configuration parameter the plugin lets operators set. */
struct trove_param {
    const char *name;
    enum trove_param_type type;
    int64_t min, max;              /* TROVE_PARAM_INTEGER bounds, inclusive */
    double min_float, max_float;   /* TROVE_PARAM_FLOAT bounds, inclusive */
    const char *const *allowed;    /* TROVE_PARAM_ENUM values */
    size_t n_allowed;
    bool dynamic;                  /* true: applies live; false: needs a restart */
    const char *unit;              /* NULL, or "bytes", "seconds", "ms", "8kB", ... */
    const char *default_value;     /* NULL if unknown */
    const char *description;       /* one line, NULL if none */
};

/* The state of the database server, as status() sees it. */
enum trove_db_state {
    TROVE_DB_UNKNOWN = 0,
    TROVE_DB_RUNNING = 1,     /* accepting connections */
    TROVE_DB_STOPPED = 2,     /* stopped on purpose */
    TROVE_DB_STARTING = 3,    /* starting, recovering, or restoring */
    TROVE_DB_CRASHED = 4,     /* should be running but is not */
    TROVE_DB_NEW = 5          /* never prepared: no data directory yet */
};

/* Replication role. */
enum trove_role {
    TROVE_ROLE_UNKNOWN = 0,
    TROVE_ROLE_STANDALONE = 1,  /* no replication configured */
    TROVE_ROLE_PRIMARY = 2,     /* has (or may have) replicas; writable */
    TROVE_ROLE_REPLICA = 3      /* follows a source; read-only */
};

#define TROVE_POSITION_MAX 4096
#define TROVE_MESSAGE_MAX 256

/*
 * Caller-owned health report, filled by status(). The agent sends it in
 * every heartbeat. `position` is the datastore's comparable replication
 * position (GTID set, LSN, offset, optime) in its own text form, or "".
 * `term` is a number that never decreases across promotions (PostgreSQL
 * timeline, MongoDB term; 0 where the engine has none).
 */
struct trove_health {
    enum trove_db_state state;
    enum trove_role role;
    uint64_t term;
    char position[TROVE_POSITION_MAX];
    char message[TROVE_MESSAGE_MAX];   /* short explanation when not RUNNING, else "" */
};

/* How two positions relate; see repl_compare. */
enum trove_order {
    TROVE_ORDER_BEFORE = -1,   /* a is behind b */
    TROVE_ORDER_EQUAL = 0,
    TROVE_ORDER_AFTER = 1,     /* a is ahead of b */
    TROVE_ORDER_DIVERGED = 2   /* neither contains the other (e.g. GTID sets with foreign writes) */
};

/* --------------------------------------------------------- byte streams */

/*
 * A sink receives the bytes of a backup; a source gives them back for a
 * restore. The host owns both: it compresses, checksums and stores what the
 * plugin writes, and decompresses and verifies what the plugin reads. The
 * plugin sees only its datastore's native bytes.
 */
struct trove_sink;
struct trove_source;

/* The kind of backup requested. */
enum trove_backup_kind {
    TROVE_BACKUP_FULL = 0,         /* physical full backup */
    TROVE_BACKUP_INCREMENTAL = 1,  /* changes since the parent (parent_meta says where) */
    TROVE_BACKUP_LOGICAL = 2       /* a logical dump (SQL, ...) */
};

/*
 * A backup (or replication snapshot) request. The plugin writes the backup
 * bytes to `sink` and records what a restore or a child incremental needs with
 * host->put(call, "meta", key, value): engine version, end position, LSNs.
 * The host stores those metadata with the backup and hands them back as
 * `parent_meta` (for an incremental) or as a piece's `meta` (for a restore).
 */
struct trove_backup_request {
    const char *id;                     /* the backup's id, for messages */
    enum trove_backup_kind kind;
    const struct trove_kv *parent_meta; /* INCREMENTAL: the parent's metadata; else NULL */
    size_t n_parent_meta;
    const struct trove_kv *options;     /* engine-specific extras */
    size_t n_options;
    struct trove_sink *sink;
};

/* One backup in a restore chain: the full backup first, then incrementals. */
struct trove_restore_piece {
    const char *id;
    enum trove_backup_kind kind;
    const struct trove_kv *meta;
    size_t n_meta;
    struct trove_source *source;   /* checksum already verified before the call */
};

struct trove_restore_request {
    const struct trove_restore_piece *pieces;
    size_t n_pieces;
};

/* --------------------------------------------------------- replication */

/* Where a replica replicates from, and how it starts. */
struct trove_replication_source {
    const char *host;
    int port;
    const char *user;
    const char *password;           /* a secret */
    const struct trove_kv *meta;    /* the snapshot's metadata (start position, ...); may be empty */
    size_t n_meta;
};

/* ------------------------------------------------------------- lifecycle */

/* Everything prepare() needs to bring a fresh instance to a working state. */
struct trove_prepare_request {
    const struct trove_database *databases;   /* created after the server runs */
    size_t n_databases;
    const struct trove_user *users;           /* created after the databases */
    size_t n_users;
    const char *root_password;                /* NULL: leave root disabled */
    const struct trove_kv *overrides;         /* configuration overrides, already validated */
    size_t n_overrides;
    const struct trove_restore_request *restore;  /* NULL, or a backup chain to restore first */
};

/* -------------------------------------------------------------- processes */

/*
 * A command for host->exec(). The host runs argv directly (no shell), looks
 * argv[0] up in PATH, adds `env` to a minimal environment, optionally switches
 * to `run_as` (a system user name), feeds stdin from `stdin_source` or
 * /dev/null, sends stdout to `stdout_sink` or, when that is NULL, into
 * `output` (truncated to output_size - 1 and NUL-terminated). The last part
 * of stderr goes to the log at debug level and into the failure message.
 * A command still running after timeout_ms (0 = no limit) or when the call is
 * cancelled is killed. Returns TROVE_OK if it exits 0, TROVE_ECANCELLED or
 * TROVE_ETIMEOUT if killed, else TROVE_EDATASTORE with a message naming
 * argv[0], the exit status and the stderr tail. Secrets go in `env`, never
 * in argv: argv is visible to every user of the machine.
 */
struct trove_exec {
    const char *const *argv;          /* NULL-terminated */
    const char *const *env;           /* NULL-terminated "NAME=value" list, or NULL */
    const char *cwd;                  /* NULL = the agent's */
    const char *run_as;               /* NULL = the agent's user */
    struct trove_source *stdin_source;
    struct trove_sink *stdout_sink;
    char *output;                     /* caller-owned, may be NULL */
    size_t output_size;
    uint32_t timeout_ms;
    int exit_status;                  /* out: exit code, or 128 + signal */
};

/* ---------------------------------------------------------- host services */

/* The per-operation handle. Opaque; valid only during the call it came with. */
struct trove_call;

enum trove_log_level {
    TROVE_LOG_ERROR = 0,
    TROVE_LOG_WARN = 1,
    TROVE_LOG_INFO = 2,
    TROVE_LOG_DEBUG = 3
};

/*
 * Services the agent offers a plugin. The table lives as long as the plugin
 * is open. Every function is safe to call from any thread.
 */
struct trove_host {
    uint32_t abi_major;   /* TROVE_ABI_MAJOR of the agent */
    uint32_t abi_minor;   /* TROVE_ABI_MINOR of the agent */
    uint32_t size;        /* sizeof(struct trove_host) in the agent */

    /* Write a line to the agent's log. Never pass a secret. */
    void (*log)(enum trove_log_level level, const char *fmt, ...) TROVE_PRINTF(2, 3);

    /* Record the failure message of this call and return `status`. */
    int (*fail)(struct trove_call *call, int status, const char *fmt, ...) TROVE_PRINTF(3, 4);

    /* Report progress of a long operation: percent in 0..100, or -1 if unknown. */
    void (*progress)(struct trove_call *call, int percent, const char *fmt, ...) TROVE_PRINTF(3, 4);

    /* True once the call should stop (agent shutdown); return TROVE_ECANCELLED then. */
    bool (*cancelled)(struct trove_call *call);

    /*
     * Result builders. The result of a call is a map. These append to it:
     *   emit_user      -> "users": [ {name, host, databases} ... ]
     *   emit_database  -> "databases": [ {name, character_set, collation, owner, options} ... ]
     *   emit_param     -> "parameters": [ {name, type, min, max, allowed, dynamic, ...} ... ]
     *   set_str/int/bool -> a top-level field `key`
     *   add_str        -> appends `value` to the top-level list `list`
     *   put            -> sets `key` = `value` in the top-level string map `map`
     * All copy their arguments. They return TROVE_OK or TROVE_EINTERNAL (no memory).
     */
    int (*emit_user)(struct trove_call *call, const struct trove_user *user);
    int (*emit_database)(struct trove_call *call, const struct trove_database *database);
    int (*emit_param)(struct trove_call *call, const struct trove_param *param);
    int (*set_str)(struct trove_call *call, const char *key, const char *value);
    int (*set_int)(struct trove_call *call, const char *key, int64_t value);
    int (*set_bool)(struct trove_call *call, const char *key, bool value);
    int (*add_str)(struct trove_call *call, const char *list, const char *value);
    int (*put)(struct trove_call *call, const char *map, const char *key, const char *value);

    /* Backup streams. write returns TROVE_OK or a failure status (disk full,
     * cancelled); read sets *got to 0 at the end of the stream. */
    int (*sink_write)(struct trove_sink *sink, const void *data, size_t len);
    int (*source_read)(struct trove_source *source, void *buf, size_t cap, size_t *got);

    /* Run a command (see struct trove_exec). */
    int (*exec)(struct trove_call *call, struct trove_exec *cmd);

    /* Fill buf with len - 1 random characters from [A-Za-z0-9] and a NUL,
     * from the system's CSPRNG. Returns TROVE_OK or TROVE_EINTERNAL. */
    int (*random_password)(char *buf, size_t len);

    /* Append new services here only, and bump TROVE_ABI_MINOR. */
};

/* ---------------------------------------------------------- plugin table */

/* Optional features that are not visible from which slots are set. */
#define TROVE_FEATURE_BACKUP_INCREMENTAL (UINT64_C(1) << 0)
#define TROVE_FEATURE_BACKUP_LOGICAL     (UINT64_C(1) << 1)
#define TROVE_FEATURE_USER_HOST          (UINT64_C(1) << 2)  /* users are name@host */
#define TROVE_FEATURE_DATABASE_CREATE    (UINT64_C(1) << 3)  /* database_create/delete are real */

/*
 * The operations of a plugin. `self` is what open() returned. Slots marked
 * [long] run on the worker thread and may take minutes; the others should
 * finish in seconds. Unless stated, an operation emits nothing on success.
 */
struct trove_plugin {
    uint32_t abi_major;     /* TROVE_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;     /* TROVE_ABI_MINOR the plugin was built with */
    uint32_t size;          /* sizeof(struct trove_plugin) the plugin was built with */
    const char *name;       /* datastore name: "mysql", "postgresql", "redis", ... */
    const char *version;    /* plugin version, "1.0.0" */
    uint64_t features;      /* TROVE_FEATURE_* */

    /*
     * Open the plugin with the agent's [datastore] settings (secrets merged in
     * from the secrets file). Copy what you keep. On failure write a message
     * into err (errlen bytes) and return a status; *self is then ignored.
     */
    int (*open)(const struct trove_host *host, const struct trove_kv *settings, size_t n_settings,
                void **self, char *err, size_t errlen);
    void (*close)(void *self);

    /* --- lifecycle ------------------------------------------------------ */
    int (*prepare)(void *self, struct trove_call *call, const struct trove_prepare_request *req); /* [long] */
    int (*start)(void *self, struct trove_call *call);
    int (*stop)(void *self, struct trove_call *call);
    int (*restart)(void *self, struct trove_call *call);   /* [long] */
    /* Fill *out. Must not block long: the heartbeat calls it. A server that is
     * down is reported in out->state, not as a failure. */
    int (*status)(void *self, struct trove_call *call, struct trove_health *out);

    /* --- users ---------------------------------------------------------- */
    int (*user_create)(void *self, struct trove_call *call, const struct trove_user *user);
    int (*user_delete)(void *self, struct trove_call *call, const struct trove_user *user);
    int (*user_list)(void *self, struct trove_call *call);                        /* emit_user each */
    int (*user_show)(void *self, struct trove_call *call, const struct trove_user *user); /* emit_user once */
    /* Grant / revoke access to user->databases. */
    int (*user_grant)(void *self, struct trove_call *call, const struct trove_user *user);
    int (*user_revoke)(void *self, struct trove_call *call, const struct trove_user *user);
    int (*user_access)(void *self, struct trove_call *call, const struct trove_user *user); /* emit_database each */
    int (*user_set_password)(void *self, struct trove_call *call, const struct trove_user *user);

    /* --- root (the datastore's superuser) ------------------------------- */
    /* Enable with `password`, or a generated one when NULL; set_str "name" and "password". */
    int (*root_enable)(void *self, struct trove_call *call, const char *password);
    int (*root_disable)(void *self, struct trove_call *call);
    int (*root_show)(void *self, struct trove_call *call);   /* set_bool "enabled" */

    /* --- databases ------------------------------------------------------ */
    int (*database_create)(void *self, struct trove_call *call, const struct trove_database *db);
    int (*database_delete)(void *self, struct trove_call *call, const struct trove_database *db);
    int (*database_list)(void *self, struct trove_call *call);                /* emit_database each */

    /* --- configuration -------------------------------------------------- */
    /* emit_param for every parameter operators may set. The agent validates
     * types, ranges and allowed values against this schema before calling
     * config_validate or config_apply, so those see only well-typed values. */
    int (*config_schema)(void *self, struct trove_call *call);
    /* Engine-specific checks beyond the schema (cross-parameter rules). Call
     * fail() naming every violation. Optional. */
    int (*config_validate)(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
    /* Apply and persist. add_str "applied" for each parameter in effect now,
     * add_str "pending_restart" for each that needs a restart. All or nothing. */
    int (*config_apply)(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
    /* Remove every override (back to defaults); same reporting as apply. */
    int (*config_reset)(void *self, struct trove_call *call);
    /* put "values" name -> effective value, read back from the server, for
     * every schema parameter (or only `names` when n > 0). */
    int (*config_show)(void *self, struct trove_call *call, const char *const *names, size_t n);

    /* --- backup --------------------------------------------------------- */
    int (*backup_create)(void *self, struct trove_call *call, const struct trove_backup_request *req); /* [long] */
    /* Replace the server's data with the chain and leave the server running. [long] */
    int (*backup_restore)(void *self, struct trove_call *call, const struct trove_restore_request *req);

    /* --- replication ---------------------------------------------------- */
    /* A backup for seeding a replica (like backup_create), plus put "meta" of the
     * start position, and set_str "user"/"password" of a replication account
     * (created if needed) for the replica to use. [long] */
    int (*repl_snapshot)(void *self, struct trove_call *call, const struct trove_backup_request *req);
    /* Start replicating from `src`. When the request carried a snapshot, the
     * agent has already restored it with backup_restore. Read-only after. [long] */
    int (*repl_attach)(void *self, struct trove_call *call, const struct trove_replication_source *src);
    /* Stop replicating and become a standalone, writable server. */
    int (*repl_detach)(void *self, struct trove_call *call);
    /* Become the writable primary, keeping every write this replica has. */
    int (*repl_promote)(void *self, struct trove_call *call);
    /* Stop being a primary and follow `src` (rewinding if needed). [long] */
    int (*repl_demote)(void *self, struct trove_call *call, const struct trove_replication_source *src);
    int (*repl_set_read_only)(void *self, struct trove_call *call, bool read_only);
    /* set_str "position" to the current position (what a replica must reach to have every write). */
    int (*repl_position)(void *self, struct trove_call *call);
    /* Wait until this server has applied `position`; TROVE_ETIMEOUT after timeout_ms. */
    int (*repl_wait)(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
    /* set_str "role", "position", "source_host"; set_int "lag_seconds", "source_port";
     * set_str "io_state"/"apply_state" where the engine has them. */
    int (*repl_status)(void *self, struct trove_call *call);
    /* Compare two positions as the engine defines them (GTID sets as sets, LSNs
     * as numbers). TROVE_EINVAL if either does not parse. No call handle: pure. */
    int (*repl_compare)(void *self, const char *a, const char *b, enum trove_order *order);

    /* Append new slots here only, and bump TROVE_ABI_MINOR. */
};

/* True if `plugin` (of any minor) has a non-NULL slot `member`. */
#define TROVE_PLUGIN_HAS(plugin, member)                                                  \
    ((plugin)->size >= offsetof(struct trove_plugin, member) + sizeof((plugin)->member) && \
     (plugin)->member != NULL)

/* True if `host` (of any minor) offers service `member`. */
#define TROVE_HOST_HAS(host, member) \
    ((host)->size >= offsetof(struct trove_host, member) + sizeof((host)->member) && (host)->member != NULL)

/*
 * The entry point every plugin exports (name: TROVE_PLUGIN_ENTRY). It must
 * not allocate or touch the datastore: it only returns the static table. The
 * agent checks abi_major before anything else.
 */
typedef const struct trove_plugin *(*trove_plugin_entry_fn)(void);
TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* TROVE_PLUGIN_H */
