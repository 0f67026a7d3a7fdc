/*
 * trove_plugin.h - the datastore plugin ABI, version 2.
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
 *   own and says both numbers. TROVE_ABI_MINOR grows when anything is
 *   appended: a slot to struct trove_plugin, a service to struct trove_host,
 *   a field to any other struct, a value to an enum. Nothing is ever removed
 *   or reordered within a major.
 *
 *   The first three fields of struct trove_plugin (abi_major, abi_minor,
 *   size) keep their place in every major, so any agent can read any plugin's
 *   major and refuse it cleanly.
 *
 * STRUCTS THAT GROW
 *   Every struct that crosses the boundary, except the tables' first fields
 *   and struct trove_kv (a frozen pair), starts with `uint32_t size`: the
 *   sizeof of that struct in the side that filled it. The rules:
 *   - Whoever fills a struct sets size = sizeof(the struct) as it was
 *     compiled (`struct trove_user u = { sizeof u, ... }`, or `.size =
 *     sizeof(struct trove_user)`). A size of 0 is refused as a programming
 *     error.
 *   - Whoever reads a struct reads only fields that lie wholly inside its
 *     size (TROVE_FIELD_OK); fields beyond it count as 0 / NULL / false. The
 *     agent follows this for everything a plugin hands it (the table, emitted
 *     users, databases, parameters, members, guest logs, exec commands), and a
 *     plugin built against a newer header must do the same for what the agent
 *     hands it (request structs, the host table).
 *   - Arrays of growable structs travel with their element size
 *     (`n_users`, `user_size`): index them with TROVE_AT, never with [].
 *   - Caller-owned out-structs (struct trove_health) are zero-filled by the
 *     caller, which sets size to its own sizeof. The callee writes only
 *     fields inside that size and never clears the whole struct with its own
 *     sizeof (that would write past an older caller's struct).
 *
 * UNKNOWN ENUM VALUES
 *   A peer built against a newer minor may send an enum value this side does
 *   not know. Each enum below names its fallback ("unknown values: ..."); the
 *   agent applies it to what plugins return, and a plugin must apply it to
 *   what the agent passes (an unknown backup kind, log mode... is answered
 *   with TROVE_ENOTSUP). Enum-typed struct fields are int32_t so their size
 *   never depends on the compiler.
 *
 * NOT SUPPORTED
 *   A NULL slot, or a slot beyond the plugin's size (a plugin built against
 *   an older minor), means "this datastore cannot do that". The agent answers
 *   such a request with TROVE_ENOTSUP without calling the plugin, and lists
 *   only the operations whose slots are set in the capabilities it announces.
 *
 * RESULTS AND ERRORS
 *   Every operation returns an enum trove_status. On failure the plugin sets a
 *   human-readable message with host->fail(), which also returns the status, so
 *   `return h->fail(call, TROVE_EINVAL, "name too long");` is the idiom. Results
 *   go out through the host's builders (emit_*, set_*, add_str, put) or through
 *   caller-owned structs (struct trove_health). The plugin never allocates
 *   memory that the host must free, and the host never frees plugin memory.
 *   Strings passed to the plugin are NUL-terminated UTF-8 owned by the host and
 *   valid only for the duration of the call; copy what you keep.
 *
 * THREADING
 *   Within one agent process the plugin is called from at most two threads at
 *   once: the loop thread, which runs short operations (users, databases,
 *   status, ...) one at a time, and one worker thread, which runs long
 *   operations (the slots marked [long]) one at a time. A short operation may
 *   therefore run while a long one is in progress, and the plugin must keep
 *   its instance state safe for that (a connection per call is the simple
 *   way). open() and close() are called with no other call in flight. Host
 *   services may be called from any thread, but a struct trove_call belongs
 *   to the one call it was passed to.
 *
 * CROSS-PROCESS RULE
 *   More than one agent process may have the plugin open for the same
 *   instance at the same time: the daemon (`trove-agent`) and `trove-agent
 *   call OP`, which an operator runs beside it on the guest and which goes
 *   through the same dispatch. They share only files. So a plugin:
 *   - keeps nothing in memory that another process could invalidate without
 *     reading it again (the server's state, pid files, role files);
 *   - writes its files atomically (a temporary name holding the pid, then
 *     rename) and names temporary files and directories with its pid;
 *   - locks (flock) a file in state_dir around read-modify-write of its own
 *     files and around steps that must not interleave;
 *   - treats a pid file as a claim to verify, never as proof.
 *   The agent takes an exclusive lock for [long] operations across processes:
 *   a second long operation while one runs in another process fails with
 *   TROVE_ECONFLICT before the plugin is called.
 *
 * LIMITS
 *   TROVE_WIRE_FRAME_MAX    one message on the wire (request, reply, event).
 *                           A result that does not fit makes the reply fail
 *                           with TROVE_EINTERNAL; results are meant to be
 *                           small (lists are paginated by the agent, backups
 *                           and logs travel as files, never in a result).
 *   TROVE_WIRE_STRING_MAX   one string in a request or a result.
 *   TROVE_WIRE_DEPTH        nesting of maps and lists in a message.
 *   TROVE_FAIL_MAX          a failure message (fail()); longer ones are cut.
 *   TROVE_PROGRESS_MAX      a progress message; longer ones are cut.
 *   TROVE_MESSAGE_MAX       struct trove_health.message.
 *   TROVE_POSITION_MAX      a replication position, NUL included.
 *   TROVE_NAME_MAX          a plugin name ([a-z0-9_-]) and an instance or
 *                           backup id.
 *   TROVE_LOG_TAIL_MAX      what a guest log tail may return inline.
 *   TROVE_EXEC_STDERR_MAX   the end of a command's stderr kept by exec().
 *   All sizes are in bytes.
 *
 * BOOLEANS
 *   Wherever a boolean travels as text (TROVE_PARAM_BOOLEAN values, the
 *   agent's own settings), these spellings are accepted, in any ASCII case:
 *   true: "true", "yes", "on", "1"; false: "false", "no", "off", "0".
 *   Anything else is invalid. The agent checks configuration values against
 *   this list and passes them to the plugin as written; a plugin maps them
 *   to its engine's spelling, and accepts the same list for its settings.
 *
 * SECRETS
 *   Passwords arrive in struct fields named `password`, the cluster secret in
 *   fields named `secret`, and settings whose key ends in "password" or
 *   "secret". Never pass them to host->log(), never put them on a command
 *   line (use struct trove_exec's env or a 0600 file), never paste them
 *   unescaped into a statement, and never store them in backup metadata
 *   (the agent refuses metadata keys ending in "password" or "secret").
 *
 * This header includes only standard headers and compiles alone with
 * -std=c11 -Wall -Wextra -Werror -pedantic, and as C++.
 */
#ifndef TROVE_PLUGIN_H
#define TROVE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TROVE_ABI_MAJOR 2
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

/* ---------------------------------------------------------------- limits */

#define TROVE_WIRE_FRAME_MAX (16u * 1024 * 1024)
#define TROVE_WIRE_STRING_MAX (1u * 1024 * 1024)
#define TROVE_WIRE_DEPTH 16
#define TROVE_FAIL_MAX 2048
#define TROVE_PROGRESS_MAX 512
#define TROVE_MESSAGE_MAX 256
#define TROVE_POSITION_MAX 4096
#define TROVE_NAME_MAX 64
#define TROVE_LOG_TAIL_MAX (64u * 1024)
#define TROVE_EXEC_STDERR_MAX 2048

/* -------------------------------------------------------- struct helpers */

/* True if the struct at `ptr` (of type `type`, with a leading size) holds
 * `member` wholly: read a field only when this holds. */
#define TROVE_FIELD_OK(ptr, type, member) \
    ((size_t)(ptr)->size >= offsetof(type, member) + sizeof(((type *)0)->member))

/* Element `i` of an array of `type` whose elements are `elem_size` bytes apart. */
#define TROVE_AT(type, base, elem_size, i) \
    ((const type *)(const void *)((const char *)(const void *)(base) + (size_t)(i) * (size_t)(elem_size)))

/* ---------------------------------------------------------------- status */

/*
 * Uniform status codes. The numeric values and the wire names (in brackets)
 * are part of the ABI and of the wire protocol; new codes are only appended.
 * Unknown values: a status the agent does not know, returned by a newer
 * plugin, is reported as TROVE_EDATASTORE with the plugin's message.
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

/* A string key/value pair, for settings, options and metadata. This struct
 * is frozen: it never grows, so arrays of it carry no element size. */
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
    uint32_t size;                   /* sizeof(struct trove_user) of the filler */
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
    uint32_t size;                   /* sizeof(struct trove_database) of the filler */
    const char *name;
    const char *character_set;       /* NULL = server default; PostgreSQL: encoding */
    const char *collation;           /* NULL = server default; PostgreSQL: locale */
    const char *owner;               /* NULL = default owner; engines without owners ignore it */
    /* Engine-specific settings: on create and alter, what to set (a
     * Cassandra keyspace's "replication"); when emitted, what to show
     * (Redis "keys" count). Keys the plugin does not know are refused. */
    const struct trove_kv *options;
    size_t n_options;
};

/* Configuration parameter types, for the schema (struct trove_param).
 * Unknown values: the agent treats a parameter of unknown type as a string. */
enum trove_param_type {
    TROVE_PARAM_STRING = 0,
    TROVE_PARAM_INTEGER = 1,  /* decimal integer in [min, max] */
    TROVE_PARAM_FLOAT = 2,    /* decimal number in [min_float, max_float] */
    TROVE_PARAM_BOOLEAN = 3,  /* one of the BOOLEANS spellings above */
    TROVE_PARAM_ENUM = 4      /* one of `allowed` (ASCII case-insensitive) */
};

/* One configuration parameter the plugin lets operators set (emit_param). */
struct trove_param {
    uint32_t size;                 /* sizeof(struct trove_param) of the filler */
    const char *name;
    int32_t type;                  /* enum trove_param_type */
    int64_t min, max;              /* TROVE_PARAM_INTEGER bounds, inclusive */
    double min_float, max_float;   /* TROVE_PARAM_FLOAT bounds, inclusive */
    const char *const *allowed;    /* TROVE_PARAM_ENUM values */
    size_t n_allowed;
    bool dynamic;                  /* true: applies live; false: needs a restart */
    const char *unit;              /* NULL, or "bytes", "seconds", "ms", "8kB", ... */
    const char *default_value;     /* NULL if unknown */
    const char *description;       /* one line, NULL if none */
};

/* The state of the database server, as status() sees it.
 * Unknown values: TROVE_DB_UNKNOWN. */
enum trove_db_state {
    TROVE_DB_UNKNOWN = 0,
    TROVE_DB_RUNNING = 1,     /* accepting connections */
    TROVE_DB_STOPPED = 2,     /* stopped on purpose */
    TROVE_DB_STARTING = 3,    /* starting, recovering, or restoring */
    TROVE_DB_CRASHED = 4,     /* should be running but is not */
    TROVE_DB_NEW = 5          /* never prepared: no data directory yet */
};

/* Replication role. Unknown values: TROVE_ROLE_UNKNOWN. */
enum trove_role {
    TROVE_ROLE_UNKNOWN = 0,
    TROVE_ROLE_STANDALONE = 1,  /* no replication configured */
    TROVE_ROLE_PRIMARY = 2,     /* has (or may have) replicas; writable */
    TROVE_ROLE_REPLICA = 3      /* follows a source; read-only */
};

/*
 * Caller-owned health report, filled by status(). The agent zero-fills it,
 * sets `size`, and sends it in every heartbeat. `position` is the datastore's
 * comparable replication position (GTID set, LSN, offset, optime) in its own
 * text form, or "". `term` is a number that never decreases across
 * promotions (PostgreSQL timeline, MongoDB term; 0 where the engine has none).
 */
struct trove_health {
    uint32_t size;                     /* set by the agent: write only fields inside it */
    int32_t state;                     /* enum trove_db_state */
    int32_t role;                      /* enum trove_role */
    uint64_t term;
    char position[TROVE_POSITION_MAX];
    char message[TROVE_MESSAGE_MAX];   /* short explanation when not RUNNING, else "" */
};

/* How two positions relate; see repl_compare.
 * Unknown values: TROVE_ORDER_DIVERGED (so nothing is promoted on a guess). */
enum trove_order {
    TROVE_ORDER_BEFORE = -1,   /* a is behind b */
    TROVE_ORDER_EQUAL = 0,
    TROVE_ORDER_AFTER = 1,     /* a is ahead of b */
    TROVE_ORDER_DIVERGED = 2   /* neither contains the other (e.g. GTID sets with foreign writes) */
};

/* --------------------------------------------------------- byte streams */

/*
 * A sink receives bytes from the plugin (a backup, a guest log); a source
 * gives a backup back for a restore. The host owns both: for backups it
 * compresses, checksums and stores what the plugin writes, and decompresses
 * and verifies what the plugin reads. The plugin sees only its datastore's
 * native bytes.
 */
struct trove_sink;
struct trove_source;

/* The kind of backup requested.
 * Unknown values: a plugin answers TROVE_ENOTSUP for a kind it does not know. */
enum trove_backup_kind {
    TROVE_BACKUP_FULL = 0,         /* physical full backup */
    TROVE_BACKUP_INCREMENTAL = 1,  /* changes since the parent (parent_meta says where) */
    TROVE_BACKUP_LOGICAL = 2       /* a logical dump (SQL, ...) */
};

/*
 * A backup (or replication snapshot) request. The plugin writes the backup
 * bytes to `sink` and records what a restore or a child incremental needs with
 * host->put(call, "meta", key, value): engine version, end position, LSNs.
 * The host stores those metadata with the backup, in clear, and hands them
 * back as `parent_meta` (for an incremental) or as a piece's `meta` (for a
 * restore). Never put a secret there: the agent refuses metadata keys ending
 * in "password" or "secret" and fails the backup.
 */
struct trove_backup_request {
    uint32_t size;
    const char *id;                     /* the backup's id, for messages */
    int32_t kind;                       /* enum trove_backup_kind */
    const struct trove_kv *parent_meta; /* INCREMENTAL: the parent's metadata; else NULL */
    size_t n_parent_meta;
    const struct trove_kv *options;     /* engine-specific extras */
    size_t n_options;
    struct trove_sink *sink;
};

/* One backup in a restore chain: the full backup first, then incrementals. */
struct trove_restore_piece {
    uint32_t size;
    const char *id;
    int32_t kind;                  /* enum trove_backup_kind */
    const struct trove_kv *meta;
    size_t n_meta;
    struct trove_source *source;   /* checksum already verified before the call */
};

struct trove_restore_request {
    uint32_t size;
    const struct trove_restore_piece *pieces;   /* index with TROVE_AT(..., piece_size, i) */
    size_t n_pieces;
    size_t piece_size;
    /* True when the restored server is about to follow a source (the agent
     * restores a replication snapshot before repl_attach): keep the backup's
     * replication history (position, timeline, term) and do not make the
     * server a writable primary; repl_attach comes next. False for an
     * ordinary restore, after which the server is a writable standalone. */
    bool for_replica;
};

/* --------------------------------------------------------- replication */

/* Where a replica replicates from, and how it starts. */
struct trove_replication_source {
    uint32_t size;
    const char *host;
    int32_t port;
    const char *user;
    const char *password;           /* a secret */
    const struct trove_kv *meta;    /* the snapshot's metadata (start position, ...); may be empty */
    size_t n_meta;
    /* The shared secret of the cluster the source belongs to (MongoDB's
     * keyFile contents), or NULL. A secret: keep it in a 0600 file. */
    const char *secret;
};

/* ---------------------------------------------------------------- cluster */

/* A member's state, as cluster_status sees it. Unknown values: UNKNOWN. */
enum trove_member_state {
    TROVE_MEMBER_UNKNOWN = 0,
    TROVE_MEMBER_UP = 1,        /* a working member */
    TROVE_MEMBER_JOINING = 2,   /* being added (bootstrapping, initial sync) */
    TROVE_MEMBER_LEAVING = 3,   /* being removed (decommissioning) */
    TROVE_MEMBER_DOWN = 4       /* a member that does not answer */
};

/*
 * One member of a cluster: a MongoDB replica-set member, a Cassandra ring
 * node. In requests (seeds, the member to remove), `host` and `port` say
 * where it is and `id` may name it; emitted by cluster_status, every field
 * the engine knows is filled.
 */
struct trove_member {
    uint32_t size;
    const char *id;                  /* engine's id (Cassandra host id, MongoDB member _id), or NULL */
    const char *host;
    int32_t port;
    int32_t state;                   /* enum trove_member_state */
    int32_t role;                    /* enum trove_role: primary/replica in a replica set, standalone on a ring */
    bool self;                       /* this node */
    const char *location;            /* "datacenter/rack" or NULL */
    const struct trove_kv *options;  /* engine-specific (priority, votes, tokens) */
    size_t n_options;
};

/*
 * A membership change. cluster_join runs on the node that joins: with no
 * seeds it forms a new cluster of itself; with seeds (members already in the
 * cluster) it joins theirs. cluster_leave runs on any member: with `member`
 * NULL this node leaves; otherwise `member` (a dead node, say) is removed.
 */
struct trove_cluster_request {
    uint32_t size;
    const char *cluster_name;             /* replica set name, cluster_name; NULL = the plugin's setting */
    const struct trove_member *seeds;     /* index with TROVE_AT(..., seed_size, i) */
    size_t n_seeds;
    size_t seed_size;
    const struct trove_member *member;    /* cluster_leave: the member to remove, NULL = this node */
    const char *user;                     /* an account valid on the cluster's members, or NULL */
    const char *password;                 /* its password; a secret */
    /* The cluster's shared secret (MongoDB keyFile contents, a ring's
     * internode credential): a secret. Keep it in a 0600 file and never in
     * backup metadata. NULL when the engine or the cluster has none. */
    const char *secret;
    const struct trove_kv *options;       /* engine-specific (priority, datacenter, rack, ...) */
    size_t n_options;
};

/* ------------------------------------------------------------- guest logs */

/* Unknown values: the agent shows a log of unknown type as "system". */
enum trove_guest_log_type {
    TROVE_GUEST_LOG_SYSTEM = 0,   /* written by the engine for operators (error log, server log) */
    TROVE_GUEST_LOG_USER = 1      /* enabled for a tenant's diagnosis (slow query log, general log) */
};

/* One log a plugin can read (emit_guest_log). */
struct trove_guest_log {
    uint32_t size;
    const char *name;          /* [a-z0-9_-], unique within the plugin: "error", "slow_query" */
    int32_t type;              /* enum trove_guest_log_type */
    const char *description;   /* one line, or NULL */
    int64_t bytes;             /* current size, or -1 when unknown */
};

/* Unknown values: a plugin answers TROVE_ENOTSUP for a mode it does not know. */
enum trove_guest_log_mode {
    TROVE_GUEST_LOG_TAIL = 0,    /* the last max_bytes bytes, from a line start where possible */
    TROVE_GUEST_LOG_WHOLE = 1    /* the whole log, oldest first */
};

/*
 * Read one log into `sink` with host->sink_write(). The host decides where
 * the bytes go: a tail (at most TROVE_LOG_TAIL_MAX) returns inline; a whole
 * log goes to a file on the guest and only its location, size and checksum
 * travel. A sink refuses bytes past its limit with a failure status, which
 * the plugin returns as it is.
 */
struct trove_guest_log_request {
    uint32_t size;
    const char *name;          /* one of the names log_list emitted */
    int32_t mode;              /* enum trove_guest_log_mode */
    uint64_t max_bytes;        /* TAIL: bytes wanted (never 0); WHOLE: the sink's limit, 0 = none */
    struct trove_sink *sink;
};

/* ------------------------------------------------------------- lifecycle */

/* Everything prepare() needs to bring a fresh instance to a working state. */
struct trove_prepare_request {
    uint32_t size;
    const struct trove_database *databases;   /* created after the server runs; TROVE_AT(..., database_size, i) */
    size_t n_databases;
    size_t database_size;
    const struct trove_user *users;           /* created after the databases; TROVE_AT(..., user_size, i) */
    size_t n_users;
    size_t user_size;
    const char *root_password;                /* NULL: leave root disabled */
    const struct trove_kv *overrides;         /* configuration overrides, already validated */
    size_t n_overrides;
    const struct trove_restore_request *restore;  /* NULL, or a backup chain to restore first */
};

/* What open() gets besides the host table. */
struct trove_open_request {
    uint32_t size;
    /* The agent's [datastore] settings, with the secrets file's [datastore]
     * section merged over them. Valid only during open(): copy what you keep.
     * Refuse keys you do not know, naming them. */
    const struct trove_kv *settings;
    size_t n_settings;
    /* A directory for the plugin's own files (lock files, markers, a
     * cluster keyFile): it exists, is owned by the agent's user, has mode
     * 0700, survives agent restarts, and is the same for every agent process
     * of this instance (see CROSS-PROCESS RULE). Never NULL. */
    const char *state_dir;
    const char *instance_id;   /* this instance's id: [A-Za-z0-9._-], at most TROVE_NAME_MAX */
};

/* -------------------------------------------------------------- processes */

/*
 * A command for host->exec(). The host runs argv directly (no shell), looks
 * argv[0] up in PATH, adds `env` to a minimal environment, optionally switches
 * to `run_as` (a system user name), feeds stdin from `stdin_source` or
 * /dev/null, sends stdout to `stdout_sink` or, when that is NULL, into
 * `output` (truncated to output_size - 1 and NUL-terminated). The last
 * TROVE_EXEC_STDERR_MAX bytes of stderr go to the log at debug level and into
 * the failure message. A command still running after timeout_ms (0 = no
 * limit) or when the call is cancelled is killed. Returns TROVE_OK if it
 * exits 0, TROVE_ECANCELLED or TROVE_ETIMEOUT if killed, else
 * TROVE_EDATASTORE with a message naming argv[0], the exit status and the
 * stderr tail. Secrets go in `env`, never in argv: argv is visible to every
 * user of the machine. exec() waits for the command: to start an engine
 * that outlives the call, the command must detach itself (the support
 * library's process functions do that without exec()).
 */
struct trove_exec {
    uint32_t size;                    /* sizeof(struct trove_exec) of the plugin */
    const char *const *argv;          /* NULL-terminated */
    const char *const *env;           /* NULL-terminated "NAME=value" list, or NULL */
    const char *cwd;                  /* NULL = the agent's */
    const char *run_as;               /* NULL = the agent's user */
    struct trove_source *stdin_source;
    struct trove_sink *stdout_sink;
    char *output;                     /* caller-owned, may be NULL */
    size_t output_size;
    uint32_t timeout_ms;
    int32_t exit_status;              /* out: exit code, or 128 + signal */
};

/* ---------------------------------------------------------- host services */

/* The per-operation handle. Opaque; valid only during the call it came with. */
struct trove_call;

/* Unknown values: the agent logs a line of unknown level at INFO. */
enum trove_log_level {
    TROVE_LOG_ERROR = 0,
    TROVE_LOG_WARN = 1,
    TROVE_LOG_INFO = 2,
    TROVE_LOG_DEBUG = 3
};

/*
 * Services the agent offers a plugin. The table lives as long as the plugin
 * is open. Every function is safe to call from any thread. A plugin built
 * against a newer minor tests services added after 2.0 with TROVE_HOST_HAS.
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
     * All copy their arguments and read the structs they get only within
     * their `size`. They return TROVE_OK, TROVE_EINVAL (a struct whose size is
     * 0 or lacks its name) or TROVE_EINTERNAL (no memory).
     */
    int (*emit_user)(struct trove_call *call, const struct trove_user *user);
    int (*emit_database)(struct trove_call *call, const struct trove_database *database);
    int (*emit_param)(struct trove_call *call, const struct trove_param *param);
    int (*set_str)(struct trove_call *call, const char *key, const char *value);
    int (*set_int)(struct trove_call *call, const char *key, int64_t value);
    int (*set_bool)(struct trove_call *call, const char *key, bool value);
    int (*add_str)(struct trove_call *call, const char *list, const char *value);
    int (*put)(struct trove_call *call, const char *map, const char *key, const char *value);

    /* Byte streams. write returns TROVE_OK or a failure status (disk full,
     * over the sink's limit, cancelled); read sets *got to 0 at the end of
     * the stream. */
    int (*sink_write)(struct trove_sink *sink, const void *data, size_t len);
    int (*source_read)(struct trove_source *source, void *buf, size_t cap, size_t *got);

    /* Run a command (see struct trove_exec). */
    int (*exec)(struct trove_call *call, struct trove_exec *cmd);

    /* Fill buf with len - 1 random characters from [A-Za-z0-9] and a NUL,
     * from the system's CSPRNG. Returns TROVE_OK or TROVE_EINTERNAL. */
    int (*random_password)(char *buf, size_t len);

    /*   emit_member    -> "members": [ {id, host, port, state, role, self, location, options} ... ]
     *   emit_guest_log -> "logs": [ {name, type, description, bytes} ... ]   */
    int (*emit_member)(struct trove_call *call, const struct trove_member *member);
    int (*emit_guest_log)(struct trove_call *call, const struct trove_guest_log *log);

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
    uint32_t abi_major;     /* TROVE_ABI_MAJOR the plugin was built with (this place in every major) */
    uint32_t abi_minor;     /* TROVE_ABI_MINOR the plugin was built with */
    uint32_t size;          /* sizeof(struct trove_plugin) the plugin was built with */
    const char *name;       /* datastore name = file name without .so: "mysql", "postgres", "redis", ... */
    const char *version;    /* plugin version, "1.0.0" */
    uint64_t features;      /* TROVE_FEATURE_* */

    /*
     * Open the plugin (see struct trove_open_request). On failure write a
     * message into err (errlen bytes) and return a status; *self is then
     * ignored. Must not require the server to be running.
     */
    int (*open)(const struct trove_host *host, const struct trove_open_request *req, void **self, char *err,
                size_t errlen);
    void (*close)(void *self);

    /* --- lifecycle ------------------------------------------------------ */
    int (*prepare)(void *self, struct trove_call *call, const struct trove_prepare_request *req); /* [long] */
    int (*start)(void *self, struct trove_call *call);
    int (*stop)(void *self, struct trove_call *call);
    int (*restart)(void *self, struct trove_call *call);   /* [long] */
    /* Fill *out (see struct trove_health). Must not block long: the
     * heartbeat calls it. A server that is down is reported in out->state,
     * not as a failure. */
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
    /* Replace the server's data with the chain and leave the server running
     * (see for_replica). [long] */
    int (*backup_restore)(void *self, struct trove_call *call, const struct trove_restore_request *req);

    /* --- replication ---------------------------------------------------- */
    /* A backup for seeding a replica (like backup_create), plus put "meta" of the
     * start position, and set_str "user"/"password" of a replication account
     * (created if needed) for the replica to use. [long] */
    int (*repl_snapshot)(void *self, struct trove_call *call, const struct trove_backup_request *req);
    /* Start replicating from `src`. When the request carried a snapshot, the
     * agent has already restored it with backup_restore (for_replica set).
     * Read-only after. [long] */
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

    /* --- added in 2.0 ---------------------------------------------------- */

    /* The handshake without the data: set_str "user"/"password" of a
     * replication account (created if needed), as repl_snapshot does, so a
     * server can be told to follow this one (demote) without a snapshot. */
    int (*repl_credentials)(void *self, struct trove_call *call);

    /* Change settings of an existing database db->name: db->options (a
     * Cassandra keyspace's replication, ...), and character_set, collation
     * or owner when set and the engine can change them. Refuse what you
     * cannot change, naming it; change nothing then. */
    int (*database_alter)(void *self, struct trove_call *call, const struct trove_database *db);

    /* Cluster membership (see struct trove_cluster_request). The agent never
     * stores req->secret; the plugin keeps it where the engine needs it. [long] */
    int (*cluster_join)(void *self, struct trove_call *call, const struct trove_cluster_request *req);
    int (*cluster_leave)(void *self, struct trove_call *call, const struct trove_cluster_request *req); /* [long] */
    /* emit_member for every member this node knows of, itself included;
     * set_str "cluster_name". A node in no cluster emits only itself. */
    int (*cluster_status)(void *self, struct trove_call *call);

    /* Guest logs: emit_guest_log for every log the plugin can read, then
     * read one into a host sink (see struct trove_guest_log_request). A
     * WHOLE read runs on the worker thread [long]; a TAIL read on the loop
     * thread, so it must only read the end of the log. */
    int (*guest_log_list)(void *self, struct trove_call *call);
    int (*guest_log_read)(void *self, struct trove_call *call, const struct trove_guest_log_request *req);

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
 * agent checks abi_major before anything else, and reads no more of the
 * table than its `size`.
 */
typedef const struct trove_plugin *(*trove_plugin_entry_fn)(void);
TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* TROVE_PLUGIN_H */
