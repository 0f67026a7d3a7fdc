/*
 * config.c - the cassandra.yaml settings operators tune. Overrides live in
 * state_dir/overrides ("name=value" lines, written atomically under a lock)
 * and in every generated cassandra.yaml. Settings with a nodetool setter
 * apply to the running node through the host's exec service (nothing secret
 * on argv) and are dynamic; the rest wait for a restart. config_show reads
 * the effective values from system_views.settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cassandra.h"

#define OVERRIDES "overrides"
#define OVERRIDES_MAX (64 * 1024)

struct cs_param {
    struct trove_param p;
    const char *setter;       /* nodetool command, or NULL: restart only */
    const char *setter_arg;   /* first argument of the setter (settimeout's type), or NULL */
};

#define SZ sizeof(struct trove_param)
#define INT(n, lo, hi, dflt, u, d, set, arg) \
    {{.size = SZ, .name = n, .type = TROVE_PARAM_INTEGER, .min = lo, .max = hi, .dynamic = set != NULL, \
      .unit = u, .default_value = dflt, .description = d}, set, arg}
#define BOOL(n, dflt, d) {{.size = SZ, .name = n, .type = TROVE_PARAM_BOOLEAN, .default_value = dflt, \
                           .description = d}, NULL, NULL}
#define ENUM(n, values, dflt, d) {{.size = SZ, .name = n, .type = TROVE_PARAM_ENUM, .allowed = values, \
                                   .n_allowed = sizeof(values) / sizeof(values[0]), .default_value = dflt, \
                                   .description = d}, NULL, NULL}

static const char *const COMPRESSION[] = {"all", "dc", "none"};
static const char *const DISK_POLICY[] = {"die", "stop_paranoid", "stop", "best_effort", "ignore"};
static const char *const COMMIT_POLICY[] = {"die", "stop", "stop_commit", "ignore"};

/* Limits and defaults as Cassandra 4.0 documents them in cassandra.yaml. */
static const struct cs_param PARAMS[] = {
    INT("compaction_throughput_mb_per_sec", 0, 65536, "64", "MB/s", "compaction throughput cap (0: none)",
        "setcompactionthroughput", NULL),
    INT("stream_throughput_outbound_megabits_per_sec", 0, 1000000, "200", "Mb/s",
        "outbound streaming cap (0: none)", "setstreamthroughput", NULL),
    INT("inter_dc_stream_throughput_outbound_megabits_per_sec", 0, 1000000, "200", "Mb/s",
        "outbound streaming cap between data centers (0: none)", "setinterdcstreamthroughput", NULL),
    INT("concurrent_compactors", 1, 128, NULL, NULL, "compactions running at once", "setconcurrentcompactors",
        NULL),
    INT("read_request_timeout_in_ms", 1, 86400000, "5000", "ms", "how long a coordinator waits for a read",
        "settimeout", "read"),
    INT("range_request_timeout_in_ms", 1, 86400000, "10000", "ms", "how long a coordinator waits for a range read",
        "settimeout", "range"),
    INT("write_request_timeout_in_ms", 1, 86400000, "2000", "ms", "how long a coordinator waits for a write",
        "settimeout", "write"),
    INT("counter_write_request_timeout_in_ms", 1, 86400000, "5000", "ms", "the same for counter writes",
        "settimeout", "counterwrite"),
    INT("cas_contention_timeout_in_ms", 1, 86400000, "1000", "ms", "how long a lightweight transaction retries",
        "settimeout", "cascontention"),
    INT("truncate_request_timeout_in_ms", 1, 86400000, "60000", "ms", "how long a TRUNCATE may take",
        "settimeout", "truncate"),
    INT("request_timeout_in_ms", 1, 86400000, "10000", "ms", "the default timeout of other operations",
        "settimeout", "misc"),
    INT("hinted_handoff_throttle_in_kb", 0, 1048576, "1024", "KB/s", "hint delivery cap per thread",
        "sethintedhandoffthrottlekb", NULL),
    INT("batchlog_replay_throttle_in_kb", 0, 1048576, "1024", "KB/s", "batchlog replay cap",
        "setbatchlogreplaythrottle", NULL),
    INT("concurrent_reads", 2, 1024, "32", NULL, "read threads", NULL, NULL),
    INT("concurrent_writes", 2, 1024, "32", NULL, "write threads", NULL, NULL),
    INT("concurrent_counter_writes", 2, 1024, "32", NULL, "counter write threads", NULL, NULL),
    INT("memtable_heap_space_in_mb", 1, 1048576, NULL, "MB", "heap for memtables", NULL, NULL),
    INT("memtable_offheap_space_in_mb", 1, 1048576, NULL, "MB", "off-heap memory for memtables", NULL, NULL),
    INT("memtable_flush_writers", 1, 64, NULL, NULL, "memtable flush threads per data directory", NULL, NULL),
    INT("commitlog_segment_size_in_mb", 1, 2047, "32", "MB", "commit log segment size", NULL, NULL),
    INT("commitlog_total_space_in_mb", 1, 1048576, NULL, "MB", "commit log space before flushing", NULL, NULL),
    INT("key_cache_size_in_mb", 0, 1048576, NULL, "MB", "key cache size", NULL, NULL),
    INT("row_cache_size_in_mb", 0, 1048576, "0", "MB", "row cache size (0: off)", NULL, NULL),
    INT("counter_cache_size_in_mb", 0, 1048576, NULL, "MB", "counter cache size", NULL, NULL),
    INT("tombstone_warn_threshold", 1, 2147483647, "1000", NULL, "tombstones a read scans before a warning",
        NULL, NULL),
    INT("tombstone_failure_threshold", 1, 2147483647, "100000", NULL, "tombstones a read scans before failing",
        NULL, NULL),
    INT("batch_size_warn_threshold_in_kb", 1, 1048576, "5", "KB", "batch size that logs a warning", NULL, NULL),
    INT("batch_size_fail_threshold_in_kb", 1, 1048576, "50", "KB", "batch size that fails", NULL, NULL),
    INT("column_index_size_in_kb", 1, 1048576, "64", "KB", "granularity of the row index", NULL, NULL),
    INT("compaction_large_partition_warning_threshold_mb", 1, 1048576, "100", "MB",
        "partition size that logs a warning in compaction", NULL, NULL),
    INT("gc_warn_threshold_in_ms", 1, 86400000, "1000", "ms", "GC pause that logs a warning", NULL, NULL),
    INT("slow_query_log_timeout_in_ms", 1, 86400000, "500", "ms", "query time that logs a slow query", NULL, NULL),
    INT("native_transport_max_threads", 1, 4096, "128", NULL, "native transport request threads", NULL, NULL),
    INT("native_transport_max_frame_size_in_mb", 1, 256, "16", "MB", "largest CQL frame accepted", NULL, NULL),
    INT("max_hints_delivery_threads", 1, 128, "2", NULL, "hint delivery threads", NULL, NULL),
    INT("max_hint_window_in_ms", 0, 2147483647, "10800000", "ms", "how long hints are kept for a dead node",
        NULL, NULL),
    INT("phi_convict_threshold", 5, 16, "8", NULL, "failure detector sensitivity", NULL, NULL),
    BOOL("hinted_handoff_enabled", "true", "store hints for nodes that are down"),
    BOOL("auto_snapshot", "true", "snapshot a table before TRUNCATE or DROP"),
    BOOL("incremental_backups", "false", "hard-link each flushed SSTable into backups/"),
    BOOL("snapshot_before_compaction", "false", "snapshot before each compaction"),
    BOOL("trickle_fsync", "false", "fsync sequential writes in small steps"),
    BOOL("enable_user_defined_functions", "false", "allow Java user-defined functions"),
    BOOL("enable_materialized_views", "false", "allow materialized views (experimental)"),
    ENUM("internode_compression", COMPRESSION, "dc", "compress traffic between nodes"),
    ENUM("disk_failure_policy", DISK_POLICY, "stop", "what a data disk failure does"),
    ENUM("commit_failure_policy", COMMIT_POLICY, "stop", "what a commit log failure does"),
};
#define N_PARAMS (sizeof(PARAMS) / sizeof(PARAMS[0]))

static const struct cs_param *find(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        if (!strcmp(PARAMS[i].p.name, name))
            return &PARAMS[i];
    return NULL;
}

/* The value as cassandra.yaml and nodetool spell it (booleans true/false,
 * enum values as the schema lists them). NULL when it does not fit. */
static const char *canonical(const struct cs_param *p, const char *value, char *buf, size_t len)
{
    bool b;
    int64_t i;
    switch (p->p.type) {
    case TROVE_PARAM_BOOLEAN:
        return tps_parse_bool(value, &b) ? (b ? "true" : "false") : NULL;
    case TROVE_PARAM_INTEGER:
        if (!tps_parse_int(value, p->p.min, p->p.max, &i))
            return NULL;
        snprintf(buf, len, "%lld", (long long)i);
        return buf;
    case TROVE_PARAM_ENUM:
        for (size_t k = 0; k < p->p.n_allowed; k++)
            if (!strcasecmp(value, p->p.allowed[k]))
                return p->p.allowed[k];
        return NULL;
    default:
        return NULL;
    }
}

int cs_config_schema(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    for (size_t i = 0; i < N_PARAMS; i++) {
        int rc = ctx->host->emit_param(call, &PARAMS[i].p);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

/* ---- the overrides file ------------------------------------------------- */

struct overrides {
    char *value[N_PARAMS];    /* canonical values, NULL = not overridden */
};

static void overrides_free(struct overrides *o)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        free(o->value[i]);
    memset(o, 0, sizeof(*o));
}

static int overrides_set(struct overrides *o, const struct cs_param *p, const char *value)
{
    size_t i = (size_t)(p - PARAMS);
    char buf[32];
    const char *v = value ? canonical(p, value, buf, sizeof(buf)) : NULL;
    free(o->value[i]);
    o->value[i] = v ? strdup(v) : NULL;
    return v && !o->value[i] ? -ENOMEM : 0;
}

/* Unknown or malformed lines (a parameter dropped from the schema) are skipped. */
static int overrides_load(struct cs_ctx *ctx, struct overrides *o)
{
    char path[CS_PATH_MAX + 64];
    memset(o, 0, sizeof(*o));
    char *text = tps_file_read(cs_state_path(ctx, OVERRIDES, path, sizeof(path)), OVERRIDES_MAX, NULL);
    if (!text)
        return errno == ENOENT ? 0 : -errno;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const struct cs_param *p = find(line);
        if (p && overrides_set(o, p, eq + 1) != 0) {
            free(text);
            overrides_free(o);
            return -ENOMEM;
        }
    }
    free(text);
    return 0;
}

static int overrides_save(struct cs_ctx *ctx, struct trove_call *call, const struct overrides *o)
{
    char path[CS_PATH_MAX + 64];
    struct tps_buf b = {0};
    for (size_t i = 0; i < N_PARAMS; i++)
        if (o->value[i])
            tps_buf_addf(&b, "%s=%s\n", PARAMS[i].p.name, o->value[i]);
    const char *text = tps_buf_str(&b);
    cs_state_path(ctx, OVERRIDES, path, sizeof(path));
    int e = text ? tps_file_write_atomic(path, text, b.len, 0600) : -ENOMEM;
    tps_buf_free(&b);
    return e == 0 ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
}

static int config_lock(struct cs_ctx *ctx, struct trove_call *call)
{
    char path[CS_PATH_MAX + 64];
    int fd = tps_file_lock(cs_state_path(ctx, "config.lock", path, sizeof(path)), true);
    if (fd < 0)
        ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

int cs_config_yaml(struct cs_ctx *ctx, struct trove_call *call, struct tps_buf *b)
{
    struct overrides o;
    int e = overrides_load(ctx, &o);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot read the configuration overrides: %s", strerror(-e));
    bool first = true;
    for (size_t i = 0; i < N_PARAMS; i++)
        if (o.value[i]) {
            if (first)
                tps_buf_add(b, "# configuration overrides (config.apply)\n");
            first = false;
            tps_buf_addf(b, "%s: %s\n", PARAMS[i].p.name, o.value[i]);
        }
    overrides_free(&o);
    return TROVE_OK;
}

/* Checks every value against the schema; unknown names are refused, all named. */
static int check_values(struct cs_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct tps_buf unknown = {0};
    int rc = TROVE_OK;
    for (size_t i = 0; i < n; i++) {
        const struct cs_param *p = find(values[i].key);
        char buf[32];
        if (!p)
            tps_buf_addf(&unknown, "%s%s", unknown.len ? ", " : "", values[i].key);
        else if (rc == TROVE_OK && !canonical(p, values[i].value, buf, sizeof(buf)))
            rc = ctx->host->fail(call, TROVE_EINVAL, "%s: \"%s\" is not a valid value", p->p.name, values[i].value);
    }
    if (unknown.len)
        rc = ctx->host->fail(call, TROVE_EINVAL, "unknown parameters: %s", tps_buf_str(&unknown));
    tps_buf_free(&unknown);
    return rc;
}

int cs_config_store(struct cs_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct overrides o;
    int rc = check_values(ctx, call, values, n);
    if (rc != TROVE_OK)
        return rc;
    int lock = config_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int e = overrides_load(ctx, &o);
    for (size_t i = 0; e == 0 && i < n; i++)
        e = overrides_set(&o, find(values[i].key), values[i].value);
    rc = e == 0 ? overrides_save(ctx, call, &o)
                : ctx->host->fail(call, TROVE_EINTERNAL, "cannot read the overrides: %s", strerror(-e));
    overrides_free(&o);
    tps_file_unlock(lock);
    return rc;
}

/* ---- validate: rules across parameters ----------------------------------- */

static int64_t effective_int(const struct overrides *o, const struct trove_kv *values, size_t n, const char *name)
{
    const struct cs_param *p = find(name);
    const char *v = o->value[p - PARAMS] ? o->value[p - PARAMS] : p->p.default_value;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(values[i].key, name))
            v = values[i].value;
    int64_t out = 0;
    tps_parse_int(v, INT64_MIN, INT64_MAX, &out);
    return out;
}

int cs_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct cs_ctx *ctx = self;
    struct overrides o;
    int rc = check_values(ctx, call, values, n);
    if (rc != TROVE_OK)
        return rc;
    if (overrides_load(ctx, &o) != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot read the configuration overrides");
    static const char *const pairs[][2] = {{"tombstone_warn_threshold", "tombstone_failure_threshold"},
                                           {"batch_size_warn_threshold_in_kb", "batch_size_fail_threshold_in_kb"}};
    struct tps_buf why = {0};
    for (size_t i = 0; i < 2; i++)
        if (effective_int(&o, values, n, pairs[i][0]) > effective_int(&o, values, n, pairs[i][1]))
            tps_buf_addf(&why, "%s%s must not exceed %s", why.len ? "; " : "", pairs[i][0], pairs[i][1]);
    overrides_free(&o);
    if (why.len)
        rc = ctx->host->fail(call, TROVE_EINVAL, "%s", tps_buf_str(&why));
    tps_buf_free(&why);
    return rc;
}

/* ---- live values ----------------------------------------------------------- */

static int run_setter(struct cs_ctx *ctx, struct trove_call *call, const struct cs_param *p, const char *value)
{
    const char *args[4] = {p->setter, p->setter_arg ? p->setter_arg : value, p->setter_arg ? value : NULL, NULL};
    return cs_nodetool(ctx, call, args, NULL, 0, 60000);
}

/* Effective values from system_views.settings, by schema index. */
static int read_settings(struct cs_conn *c, char *values[N_PARAMS])
{
    struct cql_result *res = NULL;
    int rc = cs_query(c, "reading system_views.settings", "SELECT name, value FROM system_views.settings", NULL, 0,
                      &res, false);
    for (size_t r = 0; rc == TROVE_OK && r < res->rows.nrows; r++) {
        const char *name = cql_value_text(cql_cell_by_name(res, r, "name"));
        const char *value = cql_value_text(cql_cell_by_name(res, r, "value"));
        const struct cs_param *p = name ? find(name) : NULL;
        if (p && value && !values[p - PARAMS] && !(values[p - PARAMS] = strdup(value)))
            rc = c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    }
    cql_result_free(res);
    return rc;
}

static void free_values(char *values[N_PARAMS])
{
    for (size_t i = 0; i < N_PARAMS; i++)
        free(values[i]);
}

/*
 * Sets dynamic values live, all or nothing: when a setter fails, the ones
 * already set go back to what the node reported before. *live says whether
 * the node answered (otherwise everything waits for the next start).
 */
static int set_live(struct cs_ctx *ctx, struct trove_call *call, const struct cs_param *const *ps,
                    const char *const *vals, size_t n, bool *live)
{
    struct cs_conn c;
    char *before[N_PARAMS] = {0};
    *live = false;
    size_t dynamic = 0;
    for (size_t i = 0; i < n; i++)
        dynamic += ps[i]->setter != NULL;
    if (dynamic == 0 || cs_conn_open(ctx, call, &c) != TROVE_OK)
        return TROVE_OK;   /* nothing live to set, or the node is down: the yaml carries it */
    *live = true;
    int rc = read_settings(&c, before);
    cs_conn_close(&c);
    size_t done = 0;
    for (; rc == TROVE_OK && done < n; done++)
        if (ps[done]->setter)
            rc = run_setter(ctx, call, ps[done], vals[done]);
    if (rc != TROVE_OK)
        for (size_t i = 0; i + 1 < done; i++)
            if (ps[i]->setter && before[ps[i] - PARAMS])
                run_setter(ctx, call, ps[i], before[ps[i] - PARAMS]);
    free_values(before);
    return rc;
}

static int report(struct cs_ctx *ctx, struct trove_call *call, const struct cs_param *p, bool live)
{
    return ctx->host->add_str(call, p->setter && live ? "applied" : "pending_restart", p->p.name);
}

int cs_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct cs_ctx *ctx = self;
    int rc = cs_config_validate(ctx, call, values, n);
    if (rc != TROVE_OK)
        return rc;
    const struct cs_param **ps = calloc(n + 1, sizeof(*ps));
    const char **vals = calloc(n + 1, sizeof(*vals));
    char (*bufs)[32] = calloc(n + 1, sizeof(*bufs));
    if (!ps || !vals || !bufs)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        ps[i] = find(values[i].key);
        vals[i] = canonical(ps[i], values[i].value, bufs[i], sizeof(bufs[i]));
    }
    int lock = rc == TROVE_OK ? config_lock(ctx, call) : -1;
    bool live = false;
    if (rc == TROVE_OK && lock < 0)
        rc = TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = set_live(ctx, call, ps, vals, n, &live);
    tps_file_unlock(lock);
    if (rc == TROVE_OK)
        rc = cs_config_store(ctx, call, values, n);
    if (rc == TROVE_OK)
        rc = cs_yaml_write(ctx, call);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++)
        rc = report(ctx, call, ps[i], live);
    free(ps);
    free(vals);
    free(bufs);
    return rc;
}

int cs_config_reset(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    struct overrides o;
    const struct cs_param *ps[N_PARAMS];
    const char *vals[N_PARAMS];
    size_t n = 0;
    int lock = config_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    if (overrides_load(ctx, &o) != 0) {
        tps_file_unlock(lock);
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot read the configuration overrides");
    }
    /* Live values go back to the defaults this plugin writes (Cassandra's own). */
    for (size_t i = 0; i < N_PARAMS; i++)
        if (o.value[i] && PARAMS[i].setter && PARAMS[i].p.default_value) {
            ps[n] = &PARAMS[i];
            vals[n++] = PARAMS[i].p.default_value;
        }
    bool live = false;
    int rc = set_live(ctx, call, ps, vals, n, &live);
    struct overrides none = {0};
    if (rc == TROVE_OK)
        rc = overrides_save(ctx, call, &none);
    tps_file_unlock(lock);
    if (rc == TROVE_OK)
        rc = cs_yaml_write(ctx, call);
    for (size_t i = 0; rc == TROVE_OK && i < N_PARAMS; i++)
        if (o.value[i])
            rc = report(ctx, call, &PARAMS[i], live && PARAMS[i].p.default_value);
    overrides_free(&o);
    return rc;
}

int cs_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    char *values[N_PARAMS] = {0};
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = read_settings(&c, values);
    cs_conn_close(&c);
    for (size_t i = 0; rc == TROVE_OK && i < N_PARAMS; i++) {
        bool wanted = n == 0;
        for (size_t k = 0; k < n && !wanted; k++)
            wanted = !strcmp(names[k], PARAMS[i].p.name);
        if (wanted && values[i])
            rc = ctx->host->put(call, "values", PARAMS[i].p.name, values[i]);
    }
    free_values(values);
    return rc;
}
