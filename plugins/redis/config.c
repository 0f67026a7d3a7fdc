/*
 * config.c - the configuration parameters operators may set: the schema,
 * validation, apply (live ones with one atomic CONFIG SET + CONFIG REWRITE,
 * restart ones written into the plugin-owned config file and reported
 * pending), reset to defaults, and show. The pending restart values live in
 * the state directory ("pending") until the next start, and are written back
 * into the config file after every CONFIG REWRITE (which would overwrite them).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redis_plugin.h"

static const char *const policies[] = {"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                                       "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"};
static const char *const fsyncs[] = {"always", "everysec", "no"};
static const char *const loglevels[] = {"debug", "verbose", "notice", "warning"};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define INT(nm, lo, hi, dyn, un, def, desc) \
    {.size = sizeof(struct trove_param), .name = nm, .type = TROVE_PARAM_INTEGER, .min = lo, .max = hi, .dynamic = dyn, .unit = un, \
     .default_value = def, .description = desc}
#define BOOL(nm, dyn, def, desc) \
    {.size = sizeof(struct trove_param), .name = nm, .type = TROVE_PARAM_BOOLEAN, .dynamic = dyn, .default_value = def, .description = desc}
#define ENUM(nm, list, def, desc) \
    {.size = sizeof(struct trove_param), .name = nm, .type = TROVE_PARAM_ENUM, .allowed = list, .n_allowed = N(list), .dynamic = true, \
     .default_value = def, .description = desc}
#define STR(nm, def, desc) \
    {.size = sizeof(struct trove_param), .name = nm, .type = TROVE_PARAM_STRING, .dynamic = true, .default_value = def, .description = desc}

/* Ranges are Redis 7.0's own (src/config.c). Not offered: replica-read-only
 * and min-replicas-to-write (the replication slots own them), paths, ports
 * and anything that would break the agent's access. */
static const struct trove_param schema[] = {
    INT("maxmemory", 0, INT64_MAX, true, "bytes", "0", "memory limit for data; 0 = no limit"),
    ENUM("maxmemory-policy", policies, "noeviction", "what to evict when maxmemory is reached"),
    INT("maxmemory-samples", 1, 64, true, NULL, "5", "keys sampled per eviction"),
    INT("maxmemory-eviction-tenacity", 0, 100, true, NULL, "10", "how hard eviction works per command"),
    BOOL("appendonly", true, "off", "append-only file persistence"),
    ENUM("appendfsync", fsyncs, "everysec", "when the AOF is fsynced"),
    BOOL("no-appendfsync-on-rewrite", true, "off", "skip fsync while a rewrite or save runs"),
    INT("auto-aof-rewrite-percentage", 0, INT_MAX, true, "percent", "100", "AOF growth that triggers a rewrite"),
    INT("auto-aof-rewrite-min-size", 0, INT64_MAX, true, "bytes", "67108864", "smallest AOF that is rewritten"),
    BOOL("aof-use-rdb-preamble", true, "on", "AOF rewrites start with an RDB snapshot"),
    STR("save", "3600 1 300 100 60 10000", "RDB save points: pairs of \"<seconds> <changes>\", or \"\" for none"),
    BOOL("stop-writes-on-bgsave-error", true, "on", "refuse writes after a failed background save"),
    BOOL("rdbcompression", true, "on", "LZF-compress strings in RDB files"),
    BOOL("rdbchecksum", false, "on", "CRC64 checksum at the end of RDB files"),
    INT("timeout", 0, INT_MAX, true, "seconds", "0", "close idle client connections after this; 0 = never"),
    INT("tcp-keepalive", 0, INT_MAX, true, "seconds", "300", "TCP keepalive interval for clients"),
    INT("databases", 1, INT_MAX, false, NULL, "16", "number of numbered databases"),
    INT("maxclients", 1, 1000000, true, NULL, "10000", "maximum simultaneous clients (capped by the open files limit)"),
    INT("hz", 1, 500, true, "Hz", "10", "frequency of background tasks"),
    BOOL("dynamic-hz", true, "on", "scale hz with the number of clients"),
    INT("slowlog-log-slower-than", -1, INT64_MAX, true, "microseconds", "10000", "log commands slower than this; -1 = off"),
    INT("slowlog-max-len", 0, LONG_MAX, true, NULL, "128", "entries kept in the slow log"),
    INT("latency-monitor-threshold", 0, INT64_MAX, true, "ms", "0", "latency monitor threshold; 0 = off"),
    STR("notify-keyspace-events", "", "keyspace notification classes (K E g $ l s h z x e t m d n A), \"\" = off"),
    BOOL("lazyfree-lazy-eviction", true, "off", "free evicted keys in the background"),
    BOOL("lazyfree-lazy-expire", true, "off", "free expired keys in the background"),
    BOOL("lazyfree-lazy-server-del", true, "off", "free implicitly deleted keys in the background"),
    BOOL("lazyfree-lazy-user-del", true, "off", "DEL behaves like UNLINK"),
    BOOL("lazyfree-lazy-user-flush", true, "off", "FLUSHDB/FLUSHALL default to ASYNC"),
    BOOL("replica-lazy-flush", true, "off", "replicas flush their data in the background before a full sync"),
    BOOL("activedefrag", true, "off", "active memory defragmentation"),
    INT("active-defrag-threshold-lower", 0, 1000, true, "percent", "10", "fragmentation that starts defrag"),
    INT("active-defrag-threshold-upper", 0, 1000, true, "percent", "100", "fragmentation for maximum effort"),
    INT("active-defrag-cycle-min", 1, 99, true, "percent", "1", "minimal CPU effort for defrag"),
    INT("active-defrag-cycle-max", 1, 99, true, "percent", "25", "maximal CPU effort for defrag"),
    INT("repl-backlog-size", 1, INT64_MAX, true, "bytes", "1048576", "replication backlog for partial resyncs"),
    INT("repl-backlog-ttl", 0, INT_MAX, true, "seconds", "3600", "free the backlog after this long without replicas"),
    INT("repl-timeout", 1, INT_MAX, true, "seconds", "60", "replication timeout"),
    BOOL("repl-diskless-sync", true, "on", "send full syncs to replicas straight from memory"),
    INT("repl-diskless-sync-delay", 0, INT_MAX, true, "seconds", "5", "wait for more replicas before a diskless sync"),
    INT("min-replicas-max-lag", 0, INT_MAX, true, "seconds", "10", "lag after which a replica no longer counts"),
    BOOL("replica-serve-stale-data", true, "on", "replicas answer while their link is down"),
    INT("busy-reply-threshold", 0, INT64_MAX, true, "ms", "5000", "scripts running longer get BUSY replies"),
    ENUM("loglevel", loglevels, "notice", "server log verbosity"),
    INT("lfu-log-factor", 0, INT_MAX, true, NULL, "10", "LFU counter logarithm factor"),
    INT("lfu-decay-time", 0, INT_MAX, true, "minutes", "1", "LFU counter decay period"),
    BOOL("activerehashing", true, "on", "incremental rehashing of the main dictionaries"),
    INT("hash-max-listpack-entries", 0, INT64_MAX, true, NULL, "512", "hashes up to this many fields stay compact"),
    INT("hash-max-listpack-value", 0, INT64_MAX, true, "bytes", "64", "hashes with values up to this size stay compact"),
    INT("zset-max-listpack-entries", 0, INT64_MAX, true, NULL, "128", "sorted sets up to this size stay compact"),
    INT("set-max-intset-entries", 0, INT64_MAX, true, NULL, "512", "integer sets up to this size stay compact"),
    INT("list-max-listpack-size", -5, INT_MAX, true, NULL, "-2", "list node size (negative: -1..-5 = 4..64 KB)"),
    INT("io-threads", 1, 128, false, NULL, "1", "I/O threads"),
    BOOL("io-threads-do-reads", false, "off", "I/O threads also read and parse"),
    INT("tcp-backlog", 0, INT_MAX, false, NULL, "511", "listen() backlog"),
};

static const struct trove_param *find_param(const char *name)
{
    for (size_t i = 0; i < N(schema); i++)
        if (strcasecmp(schema[i].name, name) == 0)
            return &schema[i];
    return NULL;
}

int rd_config_schema(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    for (size_t i = 0; i < N(schema); i++) {
        int rc = ctx->host->emit_param(call, &schema[i]);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

/* The value as CONFIG SET and the config file take it ("yes"/"no", lower case). */
static int redis_value(const struct trove_param *p, const char *in, char *out, size_t len)
{
    bool b;
    if (p->type == TROVE_PARAM_BOOLEAN) {
        if (!tps_parse_bool(in, &b))
            return -1;
        snprintf(out, len, "%s", b ? "yes" : "no");
        return 0;
    }
    if (strlen(in) >= len)
        return -1;
    for (size_t i = 0; in[i]; i++)
        out[i] = p->type == TROVE_PARAM_ENUM ? (char)tolower((unsigned char)in[i]) : in[i];
    out[strlen(in)] = '\0';
    return 0;
}

static bool valid_save(const char *v)
{
    int count = 0;
    for (const char *p = v; *p;) {
        p += strspn(p, " ");
        if (!*p)
            break;
        size_t n = strspn(p, "0123456789");
        if (n == 0 || n > 9 || (p[n] && p[n] != ' '))
            return false;
        p += n;
        count++;
    }
    return count % 2 == 0 && count <= 32;
}

static bool valid_int(const struct trove_param *p, const char *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return *v && !*end && !errno && x >= p->min && x <= p->max;
}

static bool valid_enum(const struct trove_param *p, const char *v)
{
    for (size_t i = 0; i < p->n_allowed; i++)
        if (strcasecmp(p->allowed[i], v) == 0)
            return true;
    return false;
}

static const char *value_of(const struct trove_kv *values, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(values[i].key, name) == 0)
            return values[i].value;
    return NULL;
}

/* One check per rule; collects every violation into msg. */
static void check_value(const struct trove_kv *kv, char *msg, size_t len)
{
    const struct trove_param *p = find_param(kv->key);
    const char *v = kv->value ? kv->value : "";
    const char *why = NULL;
    bool b;
    if (!p)
        why = "is not a parameter this plugin manages";
    else if (p->type == TROVE_PARAM_INTEGER && !valid_int(p, v))
        why = "must be an integer in range";
    else if (p->type == TROVE_PARAM_BOOLEAN && !tps_parse_bool(v, &b))
        why = "must be on/off, true/false, yes/no or 1/0";
    else if (p->type == TROVE_PARAM_ENUM && !valid_enum(p, v))
        why = "is not one of the allowed values";
    else if (!strcmp(p->name, "save") && !valid_save(v))
        why = "must be \"\" or pairs of \"<seconds> <changes>\"";
    else if (!strcmp(p->name, "notify-keyspace-events") && strspn(v, "KEg$lshzxetmdnA") != strlen(v))
        why = "may only contain the classes K E g $ l s h z x e t m d n A";
    if (why) {
        size_t used = strlen(msg);
        snprintf(msg + used, len - used, "%s%s %s", used ? "; " : "", kv->key ? kv->key : "(null)", why);
    }
}

static void check_pair(const struct trove_kv *values, size_t n, const char *lo, const char *hi, char *msg, size_t len)
{
    const char *a = value_of(values, n, lo), *b = value_of(values, n, hi);
    if (a && b && strtoll(a, NULL, 10) > strtoll(b, NULL, 10)) {
        size_t used = strlen(msg);
        snprintf(msg + used, len - used, "%s%s must not exceed %s", used ? "; " : "", lo, hi);
    }
}

static int validate(struct rd_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    char msg[2048] = "";
    for (size_t i = 0; i < n; i++)
        check_value(&values[i], msg, sizeof(msg));
    check_pair(values, n, "active-defrag-threshold-lower", "active-defrag-threshold-upper", msg, sizeof(msg));
    check_pair(values, n, "active-defrag-cycle-min", "active-defrag-cycle-max", msg, sizeof(msg));
    if (msg[0])
        return RD_FAIL(ctx, call, TROVE_EINVAL, "invalid configuration: %s", msg);
    return TROVE_OK;
}

int rd_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    return validate(self, call, values, n);
}

/* ------------------------------------------------ pending restart values */

/* Held around every edit of the config file and of the pending store, so
 * that two agent processes (and CONFIG REWRITE between them) never lose a
 * staged value. Taken once per step, never nested. */
static int config_lock(struct rd_ctx *ctx)
{
    char path[RD_PATH_MAX];
    return tps_file_lock(rd_state_path(ctx, "config.lock", path, sizeof(path)), true);
}

static const char *pending_path(struct rd_ctx *ctx, char *buf, size_t len)
{
    return rd_state_path(ctx, "pending", buf, len);
}

/* Write every pending "name value" line of the store into the config file
 * (the caller holds the config lock). 0 or -errno. */
static int pending_patch_locked(struct rd_ctx *ctx)
{
    char path[RD_PATH_MAX];
    char *text = ctx->s.config_file ? tps_file_read(pending_path(ctx, path, sizeof(path)), 1 << 16, NULL) : NULL;
    int rc = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        rc = rd_config_file_set(ctx->s.config_file, line, sp + 1);
    }
    free(text);
    return rc;
}

/* Add name=value (Redis form) to the store, replacing an older entry. */
static int pending_add(struct rd_ctx *ctx, const char *name, const char *value)
{
    char path[RD_PATH_MAX];
    int lock = config_lock(ctx);
    if (lock < 0)
        return lock;
    char *old = tps_file_read(pending_path(ctx, path, sizeof(path)), 1 << 16, NULL);
    struct tps_buf out = {0};
    char *save = NULL;
    size_t nl = strlen(name);
    for (char *line = old ? strtok_r(old, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
        if (!(strncmp(line, name, nl) == 0 && line[nl] == ' '))
            tps_buf_addf(&out, "%s\n", line);
    tps_buf_addf(&out, "%s %s\n", name, value);
    int rc = tps_buf_str(&out) ? tps_file_write_atomic(path, out.data, out.len, 0600) : -ENOMEM;
    tps_buf_free(&out);
    free(old);
    tps_file_unlock(lock);
    return rc;
}

void rd_config_pending_clear(struct rd_ctx *ctx)
{
    char path[RD_PATH_MAX];
    int lock = config_lock(ctx);
    unlink(pending_path(ctx, path, sizeof(path)));
    tps_file_unlock(lock);
}

/* CONFIG REWRITE writes the running values over the file, including over
 * restart-only values staged for the next start: put those back after. */
int rd_config_rewrite(struct rd_conn *conn)
{
    struct rd_ctx *ctx = conn->ctx;
    int lock = config_lock(ctx);
    if (lock < 0)
        return RD_FAIL(ctx, conn->call, TROVE_EINTERNAL, "cannot lock the configuration: %s", strerror(-lock));
    int rc = rd_conn_cmd_ok(conn, "CONFIG", "REWRITE", NULL);
    if (rc == TROVE_OK && ctx->s.config_file)
        chmod(ctx->s.config_file, 0600);   /* Redis rewrites it 0644; it holds masterauth */
    int e = rc == TROVE_OK ? pending_patch_locked(ctx) : 0;
    if (e != 0)
        rc = RD_FAIL(ctx, conn->call, TROVE_EINTERNAL, "cannot write staged parameters into %s: %s",
                     ctx->s.config_file, strerror(-e));
    tps_file_unlock(lock);
    return rc;
}

/* ------------------------------------------------------------ apply */

struct setv {
    const char *argv[2 + 2 * N(schema)];
    char vals[N(schema)][512];
    int argc;
};

/* CONFIG SET of every live value in one atomic command (Redis 7). */
static int set_live(struct rd_conn *conn, struct setv *s)
{
    return s->argc > 2 ? rd_conn_cmd_argv(conn, NULL, s->argc, s->argv) : TROVE_OK;
}

/* Collect the live pairs of `values` (new) and their current values (old). */
static int split_values(struct rd_conn *conn, const struct trove_kv *values, size_t n, struct setv *nw,
                        struct setv *old, const struct trove_param **restart, size_t *n_restart)
{
    nw->argc = old->argc = 2;
    nw->argv[0] = old->argv[0] = "CONFIG";
    nw->argv[1] = old->argv[1] = "SET";
    *n_restart = 0;
    for (size_t i = 0; i < n; i++) {
        const struct trove_param *p = find_param(values[i].key);
        if (!p->dynamic) {
            restart[(*n_restart)++] = p;
            continue;
        }
        int k = (nw->argc - 2) / 2;
        if (redis_value(p, values[i].value, nw->vals[k], sizeof(nw->vals[k])) != 0)
            return RD_FAIL(conn->ctx, conn->call, TROVE_EINVAL, "%s: value too long", p->name);
        int rc = rd_config_get(conn, p->name, old->vals[k], sizeof(old->vals[k]));
        if (rc != TROVE_OK)
            return rc;
        nw->argv[nw->argc++] = p->name, nw->argv[nw->argc++] = nw->vals[k];
        old->argv[old->argc++] = p->name, old->argv[old->argc++] = old->vals[k];
    }
    return TROVE_OK;
}

static int stage_restart(struct rd_conn *conn, const struct trove_kv *values, size_t n,
                         const struct trove_param *const *restart, size_t n_restart)
{
    for (size_t i = 0; i < n_restart; i++) {
        char v[512];
        if (redis_value(restart[i], value_of(values, n, restart[i]->name), v, sizeof(v)) != 0 ||
            pending_add(conn->ctx, restart[i]->name, v) != 0)
            return RD_FAIL(conn->ctx, conn->call, TROVE_EINTERNAL, "cannot record %s for the next restart",
                           restart[i]->name);
    }
    return TROVE_OK;
}

static int report(struct rd_ctx *ctx, struct trove_call *call, const struct setv *live,
                  const struct trove_param *const *restart, size_t n_restart)
{
    int rc = TROVE_OK;
    for (int i = 2; i < live->argc && rc == TROVE_OK; i += 2)
        rc = ctx->host->add_str(call, "applied", live->argv[i]);
    for (size_t i = 0; i < n_restart && rc == TROVE_OK; i++)
        rc = ctx->host->add_str(call, "pending_restart", restart[i]->name);
    return rc;
}

/* Apply values already checked by validate(). On any failure the live values
 * are set back and the file rewritten, so nothing changes. */
static int apply_checked(struct rd_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct rd_conn conn = {0};
    struct setv *nw = calloc(1, sizeof(*nw)), *old = calloc(1, sizeof(*old));
    const struct trove_param *restart[N(schema)];
    size_t n_restart = 0;
    int rc = nw && old ? TROVE_OK : RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = split_values(&conn, values, n, nw, old, restart, &n_restart);
    if (rc == TROVE_OK && n_restart && !ctx->s.config_file)
        rc = RD_FAIL(ctx, call, TROVE_EINVAL, "%s needs a restart, and this server has no config_file setting",
                     restart[0]->name);
    if (rc == TROVE_OK && (rc = set_live(&conn, nw)) == TROVE_OK) {
        if ((rc = stage_restart(&conn, values, n, restart, n_restart)) == TROVE_OK)
            rc = rd_config_rewrite(&conn);
        if (rc != TROVE_OK) {   /* undo: old values back, and the file as it was */
            set_live(&conn, old);
            rd_config_rewrite(&conn);
        }
    }
    if (rc == TROVE_OK)
        rc = report(ctx, call, nw, restart, n_restart);
    rd_conn_close(&conn);
    free(nw);
    free(old);
    return rc;
}

int rd_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct rd_ctx *ctx = self;
    if (n == 0)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "no parameters to apply");
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (values[i].key && values[j].key && strcasecmp(values[i].key, values[j].key) == 0)
                return RD_FAIL(ctx, call, TROVE_EINVAL, "parameter %s given twice", values[i].key);
    int rc = validate(ctx, call, values, n);
    return rc == TROVE_OK ? apply_checked(ctx, call, values, n) : rc;
}

/* Does the server's value equal the parameter's default? */
static bool is_default(const struct trove_param *p, const char *current)
{
    char want[512];
    return redis_value(p, p->default_value, want, sizeof(want)) == 0 && strcmp(want, current) == 0;
}

/* A restart-only value written for the next start leaves the config file. */
static void drop_staged(struct rd_ctx *ctx, const char *name)
{
    int lock = config_lock(ctx);
    rd_config_file_set(ctx->s.config_file, name, NULL);
    tps_file_unlock(lock);
}

/* Every parameter whose current value differs from its default goes back. */
int rd_config_reset(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    struct trove_kv kv[N(schema)];
    size_t n = 0;
    int rc = rd_conn_open(ctx, call, &conn);
    for (size_t i = 0; rc == TROVE_OK && i < N(schema); i++) {
        char cur[512];
        if ((rc = rd_config_get(&conn, schema[i].name, cur, sizeof(cur))) != TROVE_OK)
            break;
        if (!schema[i].dynamic && ctx->s.config_file)
            drop_staged(ctx, schema[i].name);
        if (!is_default(&schema[i], cur))
            kv[n++] = (struct trove_kv){schema[i].name, schema[i].default_value};
    }
    if (rc == TROVE_OK && ctx->s.config_file)
        rd_config_pending_clear(ctx);
    rd_conn_close(&conn);
    if (rc != TROVE_OK || n == 0)
        return rc;
    return apply_checked(ctx, call, kv, n);
}

int rd_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    for (size_t i = 0; i < n; i++)
        if (!find_param(names[i]))
            return RD_FAIL(ctx, call, TROVE_ENOTFOUND, "%s is not a parameter this plugin manages", names[i]);
    int rc = rd_conn_open(ctx, call, &conn);
    size_t count = n ? n : N(schema);
    for (size_t i = 0; rc == TROVE_OK && i < count; i++) {
        const char *name = n ? find_param(names[i])->name : schema[i].name;
        char v[4096];
        if ((rc = rd_config_get(&conn, name, v, sizeof(v))) == TROVE_OK)
            rc = ctx->host->put(call, "values", name, v);
    }
    rd_conn_close(&conn);
    return rc;
}

/* prepare: every override straight into the config file, before the first start. */
int rd_config_write_overrides(struct rd_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    int rc = n ? validate(ctx, call, values, n) : TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        char v[512];
        const struct trove_param *p = find_param(values[i].key);
        if (redis_value(p, values[i].value, v, sizeof(v)) != 0 || rd_config_file_set(ctx->s.config_file, p->name, v))
            rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot write %s into %s", p->name, ctx->s.config_file);
    }
    return rc;
}
