/*
 * trove_plugin_support.h - the plugin support library: what every datastore
 * plugin needs beside the ABI. Settings tables, one monotonic clock, files
 * written atomically, supervising the engine process, guest logs from files,
 * a string builder, quoting, SHA-256.
 *
 * It is part of the vendor kit, not of the ABI: each plugin links it
 * statically (libtrove-plugin-support.a, `pkg-config --libs trove-plugin`),
 * so it may change between releases without breaking a plugin already built.
 * Every name starts with tps_. Nothing here keeps global state, and every
 * function is safe to call from the agent's two plugin threads at once.
 *
 * Errors: functions that run inside an operation take the host table and the
 * call and report through host->fail() (returning its status); the few that
 * also run in open() write into an err buffer; plain helpers return 0 or
 * -errno. Secrets given to these functions never reach a message or the log.
 */
#ifndef TROVE_PLUGIN_SUPPORT_H
#define TROVE_PLUGIN_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trove_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ settings */

/* Where a setting's value goes in the plugin's settings struct. */
enum tps_setting_type {
    TPS_STRING = 0,   /* char *, malloc'd (NULL when absent without fallback) */
    TPS_INT = 1,      /* int64_t, within [min, max] */
    TPS_BOOL = 2      /* bool, from the BOOLEANS spellings of trove_plugin.h */
};

#define TPS_REQUIRED 0x01u   /* must be present (a fallback is then pointless) */
#define TPS_SECRET 0x02u     /* wiped when freed; its value never appears in a message */
#define TPS_PLAIN 0x04u      /* no line breaks or double quotes: it goes into config files */
#define TPS_ABSOLUTE 0x08u   /* an absolute path */
#define TPS_NONEMPTY 0x10u   /* "" is refused */

/* One key of the [datastore] section. */
struct tps_setting {
    const char *key;
    enum tps_setting_type type;
    const char *fallback;   /* the value when the key is absent; NULL = none */
    int64_t min, max;       /* TPS_INT bounds, inclusive */
    size_t offset;          /* offsetof(your struct, field) */
    unsigned flags;         /* TPS_* above */
};

#define TPS_SETTING_STR(st, field, key, fallback, flags) \
    {(key), TPS_STRING, (fallback), 0, 0, offsetof(st, field), (flags)}
#define TPS_SETTING_INT(st, field, key, fallback, lo, hi) \
    {(key), TPS_INT, (fallback), (lo), (hi), offsetof(st, field), 0}
#define TPS_SETTING_BOOL(st, field, key, fallback) {(key), TPS_BOOL, (fallback), 0, 0, offsetof(st, field), 0}

/*
 * Fill `out` from the settings `kv` by `table`: every key of kv must be in
 * the table (unknown keys are refused, all of them named in one message:
 * `unknown [datastore] settings for the mysql plugin: foo, bar`), values are
 * checked by type and flags, absent keys take their fallback. The last of
 * repeated keys wins. `plugin` names the plugin in messages. On failure
 * everything already filled is freed and err says why; returns TROVE_OK,
 * TROVE_EINVAL or TROVE_EINTERNAL.
 */
int tps_settings_parse(const struct tps_setting *table, size_t n_table, const struct trove_kv *kv, size_t n_kv,
                       void *out, const char *plugin, char *err, size_t errlen);
/* Free the strings tps_settings_parse put into `out` (secrets wiped first). */
void tps_settings_free(const struct tps_setting *table, size_t n_table, void *out);

/* The value of `key` in kv (the last one when repeated), or NULL. */
const char *tps_kv_get(const struct trove_kv *kv, size_t n, const char *key);
/* true/yes/on/1 and false/no/off/0, ASCII case-insensitive; false on anything else. */
bool tps_parse_bool(const char *text, bool *out);
/* A whole decimal integer within [min, max]. */
bool tps_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);
/* A whole unsigned decimal integer up to UINT64_MAX (LSNs, byte counts): no
 * sign, no spaces. */
bool tps_parse_u64(const char *text, uint64_t *out);

/* ------------------------------------------------------------ clock */

/* Milliseconds on the monotonic clock: for deadlines and durations only. */
uint64_t tps_now_ms(void);
void tps_sleep_ms(uint32_t ms);

/* ------------------------------------------------------------ files */

/*
 * Replace `path` with `data` atomically: written to "<path>.tmp.<pid>",
 * fsynced, given `mode`, renamed over path, and the directory fsynced. A
 * reader (another agent process included) sees the old or the new file,
 * never a mix. Returns 0 or -errno.
 */
int tps_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* The same, the file given to system user `user` (and its group) before it
 * replaces path, so an engine running as that user never meets a file it
 * cannot read; NULL user: tps_file_write_atomic. -ENOENT (path untouched)
 * when there is no such user. */
int tps_file_write_as(const char *path, const void *data, size_t len, unsigned mode, const char *user);
/* The whole file, NUL-terminated, malloc'd; *len (may be NULL) gets its
 * length. NULL with errno set on failure, EFBIG when longer than max. */
char *tps_file_read(const char *path, size_t max, size_t *len);
/* A new 0600 file in dir holding `data` (a credential for a tool), named
 * "<dir>/.trove-<pid>-XXXXXX" so a dead agent's leftovers can be found;
 * path receives its name. The caller unlinks it. Returns 0 or -errno. */
int tps_file_write_secret(const char *dir, const char *data, char *path, size_t pathlen);
/* The last complete lines of a file, at most max - 1 bytes, trailing
 * newlines removed; "" when unreadable. */
void tps_file_tail(const char *path, char *out, size_t max);
/* Take an exclusive flock on `path` (created 0600), waiting when `wait`.
 * Returns the descriptor that holds it, or -errno (-EWOULDBLOCK when
 * held elsewhere and not waiting). Release with tps_file_unlock(). */
int tps_file_lock(const char *path, bool wait);
void tps_file_unlock(int fd);
/* Remove a directory tree without following symlinks. 0 or -errno. */
int tps_remove_tree(const char *path);
/* True when the directory is missing or holds nothing but lost+found. */
bool tps_dir_empty(const char *path);
/* Give path to system user `user` (and its group), without following a
 * symlink; NULL user: nothing to do. 0 or -errno (-ENOENT: no such user). */
int tps_file_chown(const char *path, const char *user);
/* Remove the entries of dir named "<prefix><pid>-..." whose process no
 * longer runs: the credential files (tps_file_write_secret's ".trove-")
 * and work directories an agent killed mid-operation left behind. A live
 * process keeps its own. Returns how many were removed (a missing dir: 0). */
int tps_remove_stale(const char *dir, const char *prefix);
/* snprintf into a path buffer; false when it did not fit. */
bool tps_path(char *out, size_t outlen, const char *fmt, ...) TROVE_PRINTF(3, 4);

/* ------------------------------------------------------------ engine process */

/* How to start an engine that outlives the call (and the agent). */
struct tps_proc {
    const char *const *argv;   /* argv[0]: a path, or a name looked up in PATH */
    const char *const *env;    /* extra "NAME=value" entries (secrets belong here, not in argv) */
    const char *cwd;           /* NULL = "/" */
    const char *run_as;        /* a system user, or NULL = the agent's */
    const char *log_file;      /* stdout and stderr are appended here (created 0600); NULL = /dev/null */
    const char *pid_file;      /* written (0644, atomically) with the pid once started; NULL = none */
    const char *name;          /* for messages ("mariadbd"); NULL = argv[0] */
};

/*
 * Start the engine detached: in its own session, stdin /dev/null, with no
 * descriptor of the agent's, as run_as. *pid gets its pid. Fails (through
 * host->fail) when the program cannot be found or executed, naming it.
 */
int tps_proc_start(const struct trove_host *host, struct trove_call *call, const struct tps_proc *spec, pid_t *pid);
/* True when pid exists and is not a zombie. */
bool tps_proc_alive(pid_t pid);
/* The live process named in pid_file (its first line), or 0. With `comm`
 * set, the process's name must also start with it (a pid file names a
 * process that may have died and its number been reused). */
pid_t tps_proc_pid(const char *pid_file, const char *comm);

/* A readiness probe: 1 ready, 0 not yet, < 0 never (it called fail()). */
typedef int (*tps_ready_fn)(void *ctx);

/*
 * Wait until `ready` says so, at most timeout_ms. Fails with
 * TROVE_EDATASTORE when the process dies first, TROVE_ETIMEOUT at the
 * deadline (both with the end of log_file in the message), and
 * TROVE_ECANCELLED when the call is cancelled. Reports progress meanwhile.
 */
int tps_proc_wait_ready(const struct trove_host *host, struct trove_call *call, pid_t pid, const char *name,
                        const char *log_file, uint32_t timeout_ms, tps_ready_fn ready, void *ctx);

/*
 * Stop pid: send `sig` (SIGTERM, or SIGINT for PostgreSQL's fast shutdown),
 * wait up to grace_ms, then SIGKILL its process group and wait up to
 * kill_ms more. TROVE_OK once it is gone (a process already gone is fine);
 * the escalation is logged. TROVE_ETIMEOUT if even SIGKILL did not end it.
 */
int tps_proc_stop(const struct trove_host *host, struct trove_call *call, pid_t pid, const char *name, int sig,
                  uint32_t grace_ms, uint32_t kill_ms);

/* ------------------------------------------------------------ guest logs */

/*
 * Serve a guest_log_read request from a plain file: the tail (the last
 * req->max_bytes bytes, starting at a line) or the whole file, written to
 * req->sink. A missing file is an empty log. Fails through host->fail().
 */
int tps_guest_log_from_file(const struct trove_host *host, struct trove_call *call, const char *path,
                            const struct trove_guest_log_request *req);
/* The size of a file for struct trove_guest_log.bytes, or -1. */
int64_t tps_file_size(const char *path);

/* ------------------------------------------------------------ string builder */

/* A growable NUL-terminated string; an allocation failure sticks in `oom`
 * (every later call is then a no-op), so build first and check once. */
struct tps_buf {
    char *data;
    size_t len, cap;
    bool oom;
};

void tps_buf_add(struct tps_buf *b, const char *s);
void tps_buf_addn(struct tps_buf *b, const char *s, size_t n);
void tps_buf_addf(struct tps_buf *b, const char *fmt, ...) TROVE_PRINTF(2, 3);
/* The text so far ("" before the first add); NULL after an allocation failure. */
const char *tps_buf_str(const struct tps_buf *b);
void tps_buf_free(struct tps_buf *b);
/* Zero the memory, then free: for a buffer that held a secret. */
void tps_buf_wipe(struct tps_buf *b);

/* ------------------------------------------------------------ quoting */

/*
 * Quoting where engines share the rules. None of these checks what the
 * engine allows in a name; validate first (tps_name_ok), then quote.
 *   tps_quote_ident(b, name, '"')  "na""me"  SQL standard, PostgreSQL, CQL identifiers
 *   tps_quote_ident(b, name, '`')  `na``me`  MySQL / MariaDB identifiers
 *   tps_quote_literal(b, text)     'it''s'   standard SQL strings (PostgreSQL with
 *                                            standard_conforming_strings, CQL): no backslash escapes
 *   tps_quote_conf(b, text, q)     q...q with q and \ escaped by \: option files, redis.conf,
 *                                  libpq conninfo ('), mongod.conf strings (")
 * Refuse text with control characters before quoting it into a line-based
 * file (tps_has_control): no quoting makes a line break safe there.
 */
void tps_quote_ident(struct tps_buf *b, const char *name, char quote);
void tps_quote_literal(struct tps_buf *b, const char *text);
void tps_quote_conf(struct tps_buf *b, const char *text, char quote);
/* 1..max bytes of [A-Za-z0-9_] or a byte in `extra` (may be NULL), not
 * starting with a digit when `no_leading_digit`. */
bool tps_name_ok(const char *name, size_t max, const char *extra, bool no_leading_digit);
/* True when s holds a byte below 0x20 or 0x7f. */
bool tps_has_control(const char *s);

/* ------------------------------------------------------------ SHA-256 */

struct tps_sha256 {
    uint32_t state[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
};

void tps_sha256_init(struct tps_sha256 *s);
void tps_sha256_update(struct tps_sha256 *s, const void *data, size_t len);
void tps_sha256_final(struct tps_sha256 *s, unsigned char out[32]);
/* SHA-256 of data as 64 lowercase hex digits and a NUL. */
void tps_sha256_hex(const void *data, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif

#endif /* TROVE_PLUGIN_SUPPORT_H */
