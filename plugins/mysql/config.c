/*
 * config.c - the configuration parameters operators may set, with MariaDB
 * 10.11's own types, limits and dynamic flags; apply (SET GLOBAL, all or
 * nothing), persist in the overrides option file the server reads at start,
 * reset, and show the effective values read back with SHOW GLOBAL VARIABLES.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mysql_plugin.h"

#define I TROVE_PARAM_INTEGER
#define F TROVE_PARAM_FLOAT
#define B TROVE_PARAM_BOOLEAN
#define E TROVE_PARAM_ENUM
#define S TROVE_PARAM_STRING
#define BIG INT64_MAX   /* the server's limit is 2^64-1; the schema's integers stop at 2^63-1 */
#define ENUMS(...) (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)
#define NOENUM NULL, 0

/* Limits and dynamic flags as MariaDB 10.11 reports them in
 * information_schema.SYSTEM_VARIABLES (NUMERIC_MIN_VALUE, NUMERIC_MAX_VALUE,
 * ENUM_VALUE_LIST, READ_ONLY). */
static const struct trove_param PARAMS[] = {
    {sizeof(struct trove_param), "max_connections", I, 10, 100000, 0, 0, NOENUM, true, NULL, "151", "simultaneous client connections allowed"},
    {sizeof(struct trove_param), "innodb_buffer_pool_size", I, 2097152, BIG, 0, 0, NOENUM, true, "bytes", "134217728", "InnoDB data and index cache"},
    {sizeof(struct trove_param), "wait_timeout", I, 1, 31536000, 0, 0, NOENUM, true, "seconds", "28800", "idle time before a connection is closed"},
    {sizeof(struct trove_param), "interactive_timeout", I, 1, 31536000, 0, 0, NOENUM, true, "seconds", "28800", "idle time for interactive clients"},
    {sizeof(struct trove_param), "long_query_time", F, 0, 0, 0, 31536000, NOENUM, true, "seconds", "10", "queries slower than this go to the slow log"},
    {sizeof(struct trove_param), "slow_query_log", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "log slow queries"},
    {sizeof(struct trove_param), "max_allowed_packet", I, 1024, 1073741824, 0, 0, NOENUM, true, "bytes", "16777216", "largest packet or row"},
    {sizeof(struct trove_param), "table_open_cache", I, 10, 1048576, 0, 0, NOENUM, true, NULL, "2000", "cached open tables"},
    {sizeof(struct trove_param), "table_definition_cache", I, 400, 2097152, 0, 0, NOENUM, true, NULL, "400", "cached table definitions"},
    {sizeof(struct trove_param), "thread_cache_size", I, 0, 16384, 0, 0, NOENUM, true, NULL, "256", "threads kept for reuse"},
    {sizeof(struct trove_param), "tmp_table_size", I, 0, BIG, 0, 0, NOENUM, true, "bytes", "16777216", "largest in-memory temporary table"},
    {sizeof(struct trove_param), "max_heap_table_size", I, 16384, BIG, 0, 0, NOENUM, true, "bytes", "16777216", "largest MEMORY table"},
    {sizeof(struct trove_param), "sort_buffer_size", I, 1024, BIG, 0, 0, NOENUM, true, "bytes", "2097152", "per-sort buffer"},
    {sizeof(struct trove_param), "join_buffer_size", I, 128, BIG, 0, 0, NOENUM, true, "bytes", "262144", "per-join buffer"},
    {sizeof(struct trove_param), "read_buffer_size", I, 8192, 2147483647, 0, 0, NOENUM, true, "bytes", "131072", "sequential scan buffer"},
    {sizeof(struct trove_param), "read_rnd_buffer_size", I, 1, 2147483647, 0, 0, NOENUM, true, "bytes", "262144", "sorted read buffer"},
    {sizeof(struct trove_param), "key_buffer_size", I, 8, BIG, 0, 0, NOENUM, true, "bytes", "134217728", "MyISAM index cache"},
    {sizeof(struct trove_param), "innodb_log_file_size", I, 4194304, BIG, 0, 0, NOENUM, true, "bytes", "100663296", "redo log size (resizable live in 10.11)"},
    {sizeof(struct trove_param), "innodb_log_buffer_size", I, 2097152, 2147479552, 0, 0, NOENUM, false, "bytes", "16777216", "redo log buffer"},
    {sizeof(struct trove_param), "innodb_flush_log_at_trx_commit", I, 0, 3, 0, 0, NOENUM, true, NULL, "1", "commit durability (1 = flush at each commit)"},
    {sizeof(struct trove_param), "sync_binlog", I, 0, 4294967295LL, 0, 0, NOENUM, true, NULL, "0", "fsync the binary log every N commits"},
    {sizeof(struct trove_param), "innodb_flush_method", E, 0, 0, 0, 0, ENUMS("fsync", "O_DSYNC", "littlesync", "nosync", "O_DIRECT", "O_DIRECT_NO_FSYNC"), false, NULL, "O_DIRECT", "how InnoDB flushes data files"},
    {sizeof(struct trove_param), "innodb_io_capacity", I, 100, 4294967295LL, 0, 0, NOENUM, true, "IOPS", "200", "background I/O rate"},
    {sizeof(struct trove_param), "innodb_io_capacity_max", I, 100, 4294967295LL, 0, 0, NOENUM, true, "IOPS", "4294967295", "maximum background I/O rate"},
    {sizeof(struct trove_param), "innodb_read_io_threads", I, 1, 64, 0, 0, NOENUM, true, NULL, "4", "InnoDB read I/O threads"},
    {sizeof(struct trove_param), "innodb_write_io_threads", I, 2, 64, 0, 0, NOENUM, true, NULL, "4", "InnoDB write I/O threads"},
    {sizeof(struct trove_param), "innodb_file_per_table", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "one tablespace file per table"},
    {sizeof(struct trove_param), "innodb_lock_wait_timeout", I, 0, 100000000, 0, 0, NOENUM, true, "seconds", "50", "row lock wait before rollback"},
    {sizeof(struct trove_param), "innodb_autoinc_lock_mode", I, 0, 2, 0, 0, NOENUM, false, NULL, "1", "AUTO_INCREMENT locking mode"},
    {sizeof(struct trove_param), "innodb_purge_threads", I, 1, 32, 0, 0, NOENUM, true, NULL, "4", "undo purge tasks"},
    {sizeof(struct trove_param), "innodb_strict_mode", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "errors instead of warnings for bad table options"},
    {sizeof(struct trove_param), "innodb_adaptive_hash_index", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "InnoDB adaptive hash index"},
    {sizeof(struct trove_param), "innodb_open_files", I, 0, BIG, 0, 0, NOENUM, false, NULL, "0", "files InnoDB keeps open (0 = automatic)"},
    {sizeof(struct trove_param), "innodb_print_all_deadlocks", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "log every deadlock"},
    {sizeof(struct trove_param), "innodb_ft_min_token_size", I, 1, 16, 0, 0, NOENUM, false, "characters", "3", "shortest word indexed by InnoDB FULLTEXT"},
    {sizeof(struct trove_param), "innodb_ft_max_token_size", I, 10, 84, 0, 0, NOENUM, false, "characters", "84", "longest word indexed by InnoDB FULLTEXT"},
    {sizeof(struct trove_param), "innodb_sort_buffer_size", I, 65536, 67108864, 0, 0, NOENUM, false, "bytes", "1048576", "index build sort buffer"},
    {sizeof(struct trove_param), "innodb_doublewrite", B, 0, 0, 0, 0, NOENUM, false, NULL, "ON", "doublewrite buffer"},
    {sizeof(struct trove_param), "innodb_max_dirty_pages_pct", F, 0, 0, 0, 99.999, NOENUM, true, "percent", "90", "dirty pages allowed in the buffer pool"},
    {sizeof(struct trove_param), "innodb_deadlock_detect", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "deadlock detection"},
    {sizeof(struct trove_param), "innodb_buffer_pool_dump_at_shutdown", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "save the buffer pool's page list at shutdown"},
    {sizeof(struct trove_param), "max_binlog_size", I, 4096, 1073741824, 0, 0, NOENUM, true, "bytes", "1073741824", "binary log rotation size"},
    {sizeof(struct trove_param), "binlog_cache_size", I, 4096, BIG, 0, 0, NOENUM, true, "bytes", "32768", "per-transaction binary log cache"},
    {sizeof(struct trove_param), "max_binlog_cache_size", I, 4096, BIG, 0, 0, NOENUM, true, "bytes", "18446744073709547520", "largest transaction in the binary log cache"},
    {sizeof(struct trove_param), "binlog_expire_logs_seconds", I, 0, 8553600, 0, 0, NOENUM, true, "seconds", "0", "purge binary logs older than this (0 = never)"},
    {sizeof(struct trove_param), "binlog_format", E, 0, 0, 0, 0, ENUMS("ROW", "MIXED", "STATEMENT"), true, NULL, "ROW", "binary log format"},
    {sizeof(struct trove_param), "net_read_timeout", I, 1, 31536000, 0, 0, NOENUM, true, "seconds", "30", "wait for more data from a client"},
    {sizeof(struct trove_param), "net_write_timeout", I, 1, 31536000, 0, 0, NOENUM, true, "seconds", "60", "wait for a write to a client"},
    {sizeof(struct trove_param), "connect_timeout", I, 2, 31536000, 0, 0, NOENUM, true, "seconds", "10", "wait for a connect packet"},
    {sizeof(struct trove_param), "max_connect_errors", I, 1, 4294967295LL, 0, 0, NOENUM, true, NULL, "100", "interrupted connections before a host is blocked"},
    {sizeof(struct trove_param), "back_log", I, 0, 65535, 0, 0, NOENUM, false, NULL, "150", "queued connection requests"},
    {sizeof(struct trove_param), "open_files_limit", I, 0, 4294967295LL, 0, 0, NOENUM, false, NULL, "0", "file descriptors reserved (0 = automatic)"},
    {sizeof(struct trove_param), "table_open_cache_instances", I, 1, 64, 0, 0, NOENUM, false, NULL, "8", "table cache partitions"},
    {sizeof(struct trove_param), "performance_schema", B, 0, 0, 0, 0, NOENUM, false, NULL, "OFF", "enable the Performance Schema"},
    {sizeof(struct trove_param), "query_cache_type", E, 0, 0, 0, 0, ENUMS("OFF", "ON", "DEMAND"), true, NULL, "OFF", "query cache mode"},
    {sizeof(struct trove_param), "query_cache_size", I, 0, BIG, 0, 0, NOENUM, true, "bytes", "1048576", "query cache memory"},
    {sizeof(struct trove_param), "query_cache_limit", I, 0, 4294967295LL, 0, 0, NOENUM, true, "bytes", "1048576", "largest cached result"},
    {sizeof(struct trove_param), "character_set_server", S, 0, 0, 0, 0, NOENUM, true, NULL, "latin1", "default character set"},
    {sizeof(struct trove_param), "collation_server", S, 0, 0, 0, 0, NOENUM, true, NULL, "latin1_swedish_ci", "default collation"},
    {sizeof(struct trove_param), "sql_mode", S, 0, 0, 0, 0, NOENUM, true, NULL, "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION", "SQL mode flags, comma separated"},
    {sizeof(struct trove_param), "event_scheduler", E, 0, 0, 0, 0, ENUMS("OFF", "ON"), true, NULL, "OFF", "run scheduled events"},
    {sizeof(struct trove_param), "group_concat_max_len", I, 4, 1073741824, 0, 0, NOENUM, true, "bytes", "1048576", "longest GROUP_CONCAT() result"},
    {sizeof(struct trove_param), "default_storage_engine", E, 0, 0, 0, 0, ENUMS("InnoDB", "Aria", "MyISAM", "MEMORY"), true, NULL, "InnoDB", "engine for new tables"},
    {sizeof(struct trove_param), "tx_isolation", E, 0, 0, 0, 0, ENUMS("READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"), true, NULL, "REPEATABLE-READ", "default transaction isolation level"},
    {sizeof(struct trove_param), "log_queries_not_using_indexes", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "log queries without an index to the slow log"},
    {sizeof(struct trove_param), "general_log", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "log every statement"},
    {sizeof(struct trove_param), "slave_parallel_threads", I, 0, 16383, 0, 0, NOENUM, true, NULL, "0", "parallel replication workers (replication must be stopped to change)"},
    {sizeof(struct trove_param), "slave_net_timeout", I, 1, 31536000, 0, 0, NOENUM, true, "seconds", "60", "replica's wait for data from its source"},
    {sizeof(struct trove_param), "max_prepared_stmt_count", I, 0, 4294967295LL, 0, 0, NOENUM, true, NULL, "16382", "prepared statements allowed"},
    {sizeof(struct trove_param), "local_infile", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "allow LOAD DATA LOCAL INFILE"},
    {sizeof(struct trove_param), "max_statement_time", F, 0, 0, 0, 31536000, NOENUM, true, "seconds", "0", "abort queries running longer (0 = never)"},
    {sizeof(struct trove_param), "lock_wait_timeout", I, 0, 31536000, 0, 0, NOENUM, true, "seconds", "86400", "metadata lock wait"},
    {sizeof(struct trove_param), "log_bin_trust_function_creators", B, 0, 0, 0, 0, NOENUM, true, NULL, "OFF", "allow non-deterministic stored functions with binary logging"},
    {sizeof(struct trove_param), "max_sp_recursion_depth", I, 0, 255, 0, 0, NOENUM, true, NULL, "0", "stored procedure recursion depth"},
    {sizeof(struct trove_param), "explicit_defaults_for_timestamp", B, 0, 0, 0, 0, NOENUM, true, NULL, "ON", "standard TIMESTAMP defaults"},
};
#define N_PARAMS (sizeof(PARAMS) / sizeof(PARAMS[0]))

static const struct trove_param *find_param(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        if (strcasecmp(PARAMS[i].name, name) == 0)
            return &PARAMS[i];
    return NULL;
}

int my_config_schema(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    for (size_t i = 0; i < N_PARAMS; i++) {
        int rc = ctx->host->emit_param(call, &PARAMS[i]);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

/* ------------------------------------------------------------ values */

static bool float_value(const char *v, double *out)
{
    if (!*v || strspn(v, "0123456789.eE+-") != strlen(v))
        return false;
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return !errno && !*end && isfinite(*out);
}

/* Check one value against its schema entry; on success write its canonical
 * text (ON/OFF, the enum's own spelling, the number) into canon. */
static int check_value(struct my_ctx *ctx, struct trove_call *call, const struct trove_param *prm, const char *v,
                       char *canon, size_t canonlen)
{
    int64_t i;
    double d;
    bool b;
    switch (prm->type) {
    case TROVE_PARAM_INTEGER:
        if (!tps_parse_int(v, prm->min, prm->max, &i))
            return ctx->host->fail(call, TROVE_EINVAL, "%s: \"%s\" is not an integer in [%lld, %lld]", prm->name, v,
                                   (long long)prm->min, (long long)prm->max);
        snprintf(canon, canonlen, "%lld", (long long)i);
        return TROVE_OK;
    case TROVE_PARAM_FLOAT:
        if (!float_value(v, &d) || d < prm->min_float || d > prm->max_float)
            return ctx->host->fail(call, TROVE_EINVAL, "%s: \"%s\" is not a number in [%g, %g]", prm->name, v,
                                   prm->min_float, prm->max_float);
        snprintf(canon, canonlen, "%s", v);
        return TROVE_OK;
    case TROVE_PARAM_BOOLEAN:
        if (!tps_parse_bool(v, &b))
            return ctx->host->fail(call, TROVE_EINVAL, "%s: \"%s\" is not ON or OFF", prm->name, v);
        snprintf(canon, canonlen, "%s", b ? "ON" : "OFF");
        return TROVE_OK;
    case TROVE_PARAM_ENUM:
        for (size_t k = 0; k < prm->n_allowed; k++)
            if (strcasecmp(v, prm->allowed[k]) == 0)
                return snprintf(canon, canonlen, "%s", prm->allowed[k]), TROVE_OK;
        return ctx->host->fail(call, TROVE_EINVAL, "%s: \"%s\" is not one of the allowed values", prm->name, v);
    case TROVE_PARAM_STRING:
        if (strlen(v) >= canonlen || strpbrk(v, "\"\\\n\r'`;"))
            return ctx->host->fail(call, TROVE_EINVAL, "%s: value must be shorter than %zu bytes and contain no "
                                   "quotes, backslashes, semicolons or line breaks", prm->name, canonlen);
        snprintf(canon, canonlen, "%s", v);
        return TROVE_OK;
    }
    return ctx->host->fail(call, TROVE_EINTERNAL, "%s: unknown parameter type", prm->name);
}

/* ------------------------------------------------------------ overrides file */

struct overrides {
    char **names, **values;
    size_t n;
};

static void overrides_free(struct overrides *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->names[i]);
        free(o->values[i]);
    }
    free(o->names);
    free(o->values);
    memset(o, 0, sizeof(*o));
}

static int overrides_set(struct overrides *o, const char *name, const char *value)
{
    for (size_t i = 0; i < o->n; i++) {
        if (strcasecmp(o->names[i], name) == 0) {
            char *v = strdup(value);
            if (!v)
                return -1;
            free(o->values[i]);
            o->values[i] = v;
            return 0;
        }
    }
    char **nn = realloc(o->names, (o->n + 1) * sizeof(char *));
    if (nn)
        o->names = nn;
    char **nv = realloc(o->values, (o->n + 1) * sizeof(char *));
    if (nv)
        o->values = nv;
    if (!nn || !nv)
        return -1;
    o->names[o->n] = strdup(name);
    o->values[o->n] = strdup(value);
    if (!o->names[o->n] || !o->values[o->n]) {
        free(o->names[o->n]);
        free(o->values[o->n]);
        return -1;
    }
    o->n++;
    return 0;
}

static const char *overrides_get(const struct overrides *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcasecmp(o->names[i], name) == 0)
            return o->values[i];
    return NULL;
}

/* The file is ours: "[mariadbd]" then name="value" lines, comments with '#'. */
static int overrides_load(struct my_ctx *ctx, struct trove_call *call, struct overrides *o)
{
    memset(o, 0, sizeof(*o));
    char *text = tps_file_read(ctx->s.overrides_file, 1 << 20, NULL);
    if (!text)
        return errno == ENOENT ? TROVE_OK
                               : ctx->host->fail(call, TROVE_EINTERNAL, "cannot read %s: %s", ctx->s.overrides_file,
                                                 strerror(errno));
    int rc = TROVE_OK;
    for (char *line = strtok(text, "\n"); line && rc == TROVE_OK; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (line[0] == '#' || line[0] == '[' || !eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t vn = strlen(v);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"')
            v[vn - 1] = '\0', v++;
        if (overrides_set(o, line, v) != 0)
            rc = my_fail_oom(ctx, call);
    }
    free(text);
    return rc;
}

static int overrides_save(struct my_ctx *ctx, struct trove_call *call, const struct overrides *o)
{
    struct tps_buf f = {0};
    tps_buf_add(&f, "# Configuration overrides set through the agent (config.apply); read by mariadbd at start.\n");
    tps_buf_add(&f, "[mariadbd]\n");
    for (size_t i = 0; i < o->n; i++)
        tps_buf_addf(&f, "%s=\"%s\"\n", o->names[i], o->values[i]);
    if (!tps_buf_str(&f)) {
        tps_buf_free(&f);
        return my_fail_oom(ctx, call);
    }
    int e = tps_file_write_atomic(ctx->s.overrides_file, f.data, f.len, 0644);
    tps_buf_free(&f);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", ctx->s.overrides_file, strerror(-e));
    return TROVE_OK;
}

/* ------------------------------------------------------------ validate */

static const char *effective(const struct trove_kv *values, size_t n, const struct overrides *o, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(values[i].key, name) == 0)
            return values[i].value;
    const char *v = overrides_get(o, name);
    if (v)
        return v;
    const struct trove_param *prm = find_param(name);
    return prm ? prm->default_value : NULL;
}

static bool touches(const struct trove_kv *values, size_t n, const char *a, const char *b)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(values[i].key, a) || !strcasecmp(values[i].key, b))
            return true;
    return false;
}

/* Rules between parameters: lo must not exceed hi. */
static const char *const PAIRS[][2] = {
    {"innodb_ft_min_token_size", "innodb_ft_max_token_size"},
    {"innodb_io_capacity", "innodb_io_capacity_max"},
    {"binlog_cache_size", "max_binlog_cache_size"},
    {"query_cache_limit", "query_cache_size"},
};

static int check_all(struct my_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n,
                     const struct overrides *o)
{
    struct tps_buf errs = {0};
    char canon[512];
    for (size_t i = 0; i < n; i++) {
        const struct trove_param *prm = values[i].key ? find_param(values[i].key) : NULL;
        if (!prm)
            tps_buf_addf(&errs, "%s%s: not a configurable parameter", errs.len ? "; " : "", values[i].key);
        else if (!values[i].value || check_value(ctx, call, prm, values[i].value, canon, sizeof(canon)) != TROVE_OK)
            tps_buf_addf(&errs, "%s%s: %s", errs.len ? "; " : "", prm->name,
                         values[i].value ? "invalid value" : "missing value");
    }
    for (size_t k = 0; k < sizeof(PAIRS) / sizeof(PAIRS[0]); k++) {
        if (!touches(values, n, PAIRS[k][0], PAIRS[k][1]))
            continue;
        const char *lo = effective(values, n, o, PAIRS[k][0]), *hi = effective(values, n, o, PAIRS[k][1]);
        uint64_t a, b;
        if (lo && hi && tps_parse_u64(lo, &a) && tps_parse_u64(hi, &b) && a > b)
            tps_buf_addf(&errs, "%s%s (%s) must not exceed %s (%s)", errs.len ? "; " : "", PAIRS[k][0], lo,
                         PAIRS[k][1], hi);
    }
    int rc = TROVE_OK;
    if (!tps_buf_str(&errs))
        rc = my_fail_oom(ctx, call);
    else if (errs.len)
        rc = ctx->host->fail(call, TROVE_EINVAL, "%s", errs.data);
    tps_buf_free(&errs);
    return rc;
}

int my_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct my_ctx *ctx = self;
    struct overrides o;
    int rc = overrides_load(ctx, call, &o);
    if (rc == TROVE_OK)
        rc = check_all(ctx, call, values, n, &o);
    overrides_free(&o);
    return rc;
}

/* ------------------------------------------------------------ apply */

/* SET GLOBAL name = value, the value typed as the parameter wants it. */
static int set_global(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_param *prm,
                      const char *canon)
{
    struct tps_buf q = {0};
    tps_buf_addf(&q, "SET GLOBAL %s = ", prm->name);
    if (!canon)
        tps_buf_add(&q, "DEFAULT");
    else if (prm->type == TROVE_PARAM_STRING || prm->type == TROVE_PARAM_ENUM)
        my_quote_literal(&q, conn, canon);
    else
        tps_buf_add(&q, canon);
    int rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    return rc;
}

struct undo {
    const struct trove_param *prm;
    char old[512];
};

/* Put back the values SET GLOBAL changed, newest first. */
static void roll_back(struct my_ctx *ctx, MYSQL *conn, struct undo *u, size_t n)
{
    while (n-- > 0) {
        struct tps_buf q = {0};
        tps_buf_addf(&q, "SET GLOBAL %s = ", u[n].prm->name);
        if (u[n].prm->type == TROVE_PARAM_STRING || u[n].prm->type == TROVE_PARAM_ENUM)
            my_quote_literal(&q, conn, u[n].old);
        else
            tps_buf_add(&q, u[n].old);
        if (tps_buf_str(&q) && mysql_real_query(conn, q.data, (unsigned long)q.len) != 0)
            ctx->host->log(TROVE_LOG_WARN, "mysql: rolling back %s failed: %s", u[n].prm->name, mysql_error(conn));
        tps_buf_free(&q);
    }
}

/* Apply every dynamic value live; all or nothing. canon[i] NULL = DEFAULT. */
static int apply_live(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_param **prms,
                      char **canon, size_t n, struct undo *undo, size_t *n_undo)
{
    *n_undo = 0;
    for (size_t i = 0; i < n; i++) {
        if (!prms[i]->dynamic)
            continue;
        char sql[128];
        bool null;
        snprintf(sql, sizeof(sql), "SELECT @@GLOBAL.%s", prms[i]->name);
        int rc = my_conn_scalar(ctx, call, conn, sql, undo[*n_undo].old, sizeof(undo[*n_undo].old), &null);
        if (rc == TROVE_OK)
            rc = set_global(ctx, call, conn, prms[i], canon[i]);
        if (rc != TROVE_OK) {
            roll_back(ctx, conn, undo, *n_undo);
            *n_undo = 0;
            return rc;
        }
        undo[(*n_undo)++].prm = prms[i];
    }
    return TROVE_OK;
}

static int report(struct my_ctx *ctx, struct trove_call *call, const struct trove_param **prms, size_t n, bool live)
{
    int rc = TROVE_OK;
    for (size_t i = 0; i < n && rc == TROVE_OK; i++)
        rc = ctx->host->add_str(call, prms[i]->dynamic && live ? "applied" : "pending_restart", prms[i]->name);
    return rc;
}

static void free_canon(char **canon, size_t n)
{
    for (size_t i = 0; canon && i < n; i++)
        free(canon[i]);
    free(canon);
}

/* Apply (values) or reset (values NULL: every current override back to DEFAULT). */
static int apply_or_reset(struct my_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct overrides o;
    MYSQL *conn = NULL;
    int rc = overrides_load(ctx, call, &o);
    if (rc == TROVE_OK && values)
        rc = check_all(ctx, call, values, n, &o);
    size_t count = values ? n : o.n;
    const struct trove_param **prms = calloc(count + 1, sizeof(*prms));
    char **canon = calloc(count + 1, sizeof(char *));
    struct undo *undo = calloc(count + 1, sizeof(*undo));
    if (rc == TROVE_OK && (!prms || !canon || !undo))
        rc = my_fail_oom(ctx, call);
    for (size_t i = 0; rc == TROVE_OK && i < count; i++) {
        prms[i] = find_param(values ? values[i].key : o.names[i]);
        if (!prms[i])   /* an old override the schema no longer has: just drop it */
            continue;
        if (values && !(canon[i] = malloc(512)))
            rc = my_fail_oom(ctx, call);
        if (values && rc == TROVE_OK)
            rc = check_value(ctx, call, prms[i], values[i].value, canon[i], 512);
    }
    size_t k = 0;   /* compact out unknown old names */
    for (size_t i = 0; rc == TROVE_OK && i < count; i++)
        if (prms[i]) {
            prms[k] = prms[i];
            canon[k] = canon[i];
            if (k != i)
                canon[i] = NULL;
            k++;
        }
    count = rc == TROVE_OK ? k : count;

    char msg[512];
    unsigned err = 0;
    conn = rc == TROVE_OK ? my_conn_try(ctx, false, msg, sizeof(msg), &err) : NULL;
    /* Only a server that is down gets values for its next start; one that
     * refuses the admin, or that the agent does not run, is an error. */
    if (rc == TROVE_OK && !conn && (err == 1045 || err == 1044 || !ctx->s.manage_server || my_server_pid(ctx) != 0))
        rc = ctx->host->fail(call, TROVE_EUNAVAIL, "%s", msg);
    size_t n_undo = 0;
    if (rc == TROVE_OK && conn)
        rc = apply_live(ctx, call, conn, prms, canon, count, undo, &n_undo);
    if (rc == TROVE_OK) {
        struct overrides next = {0};
        for (size_t i = 0; values && i < o.n && rc == TROVE_OK; i++)
            if (overrides_set(&next, o.names[i], o.values[i]) != 0)
                rc = my_fail_oom(ctx, call);
        for (size_t i = 0; values && i < count && rc == TROVE_OK; i++)
            if (overrides_set(&next, prms[i]->name, canon[i]) != 0)
                rc = my_fail_oom(ctx, call);
        if (rc == TROVE_OK)
            rc = overrides_save(ctx, call, &next);
        overrides_free(&next);
        if (rc != TROVE_OK && conn)
            roll_back(ctx, conn, undo, n_undo);
    }
    if (rc == TROVE_OK)
        rc = report(ctx, call, prms, count, conn != NULL);
    my_conn_close(conn);
    overrides_free(&o);
    free_canon(canon, values ? n + 1 : count + 1);
    free(prms);
    free(undo);
    return rc;
}

int my_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct my_ctx *ctx = self;
    if (n == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "no configuration values given");
    return apply_or_reset(ctx, call, values, n);
}

int my_config_reset(void *self, struct trove_call *call)
{
    return apply_or_reset(self, call, NULL, 0);
}

int my_config_write_overrides(struct my_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct overrides o;
    char canon[512];
    int rc = overrides_load(ctx, call, &o);
    if (rc == TROVE_OK)
        rc = check_all(ctx, call, values, n, &o);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        const struct trove_param *prm = find_param(values[i].key);
        rc = check_value(ctx, call, prm, values[i].value, canon, sizeof(canon));
        if (rc == TROVE_OK && overrides_set(&o, prm->name, canon) != 0)
            rc = my_fail_oom(ctx, call);
    }
    if (rc == TROVE_OK)
        rc = overrides_save(ctx, call, &o);
    overrides_free(&o);
    return rc;
}

/* ------------------------------------------------------------ show */

static bool wanted(const char *name, const char *const *names, size_t n)
{
    if (n == 0)
        return find_param(name) != NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], name) == 0)
            return true;
    return false;
}

int my_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct my_ctx *ctx = self;
    for (size_t i = 0; i < n; i++)
        if (!names[i] || !find_param(names[i]))
            return ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is not a configurable parameter",
                                   names[i] ? names[i] : "");
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_query(ctx, call, conn, "SHOW GLOBAL VARIABLES", &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL)
        if (row[0] && wanted(row[0], names, n))
            rc = ctx->host->put(call, "values", find_param(row[0])->name, row[1] ? row[1] : "");
    if (res)
        mysql_free_result(res);
    my_conn_close(conn);
    return rc;
}
