/*
 * config.c - the parameters operators tune: server parameters (setParameter)
 * and a few mongod.conf options. Whether a parameter applies live comes from
 * the server (getParameter with showDetails: settableAtRuntime) when it
 * answers, else from the table; options always need a restart. Live values
 * go through setParameter and every override is also persisted in the
 * state file, from which mongod.conf (its setParameter block and options)
 * is generated, so it survives a restart. config_show reads back from the
 * server (getParameter, getCmdLineOpts).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

struct param_def {
    const char *name;
    enum trove_param_type type;
    int64_t min, max;
    double fmin, fmax;
    bool runtime;            /* settable at runtime, when the server does not say */
    bool option;             /* a mongod.conf option (dotted), not a server parameter */
    const char *def;         /* mongod 5.0's default, or NULL when the server computes it */
    const char *unit;
    const char *description;
};

#define INT(n, lo, hi, rt, d, u, text) {n, TROVE_PARAM_INTEGER, lo, hi, 0, 0, rt, false, d, u, text}
#define BOOL(n, rt, d, text) {n, TROVE_PARAM_BOOLEAN, 0, 0, 0, 0, rt, false, d, NULL, text}
#define FLT(n, lo, hi, rt, d, u, text) {n, TROVE_PARAM_FLOAT, 0, 0, lo, hi, rt, false, d, u, text}

static const struct param_def PARAMS[] = {
    INT("cursorTimeoutMillis", 0, INT64_MAX, true, "600000", "ms", "idle cursors are closed after this long"),
    INT("logLevel", 0, 5, true, "0", NULL, "verbosity of the server log"),
    BOOL("quiet", true, "false", "leave connection events out of the server log"),
    BOOL("notablescan", true, "false", "refuse queries that would scan a whole collection"),
    BOOL("diagnosticDataCollectionEnabled", true, "true", "collect diagnostic data (diagnostic.data)"),
    INT("diagnosticDataCollectionPeriodMillis", 100, 86400000, true, "1000", "ms", "diagnostic data interval"),
    INT("scramSHA256IterationCount", 5000, INT32_MAX, true, "15000", NULL, "PBKDF2 rounds of new SCRAM-SHA-256 "
        "credentials"),
    INT("scramIterationCount", 5000, INT32_MAX, true, "10000", NULL, "PBKDF2 rounds of new SCRAM-SHA-1 credentials"),
    INT("transactionLifetimeLimitSeconds", 1, INT32_MAX, true, "60", "seconds", "longest a transaction may run"),
    INT("maxIndexBuildMemoryUsageMegabytes", 50, 1048576, true, "200", "MB", "memory for index builds"),
    BOOL("ttlMonitorEnabled", true, "true", "remove expired documents of TTL indexes"),
    FLT("syncdelay", 0, 31536000, true, "60", "seconds", "interval between checkpoints"),
    INT("wiredTigerConcurrentReadTransactions", 1, 1000000, true, "128", NULL, "concurrent read tickets"),
    INT("wiredTigerConcurrentWriteTransactions", 1, 1000000, true, "128", NULL, "concurrent write tickets"),
    INT("localLogicalSessionTimeoutMinutes", 1, 1440, false, "30", "minutes", "idle sessions expire after this "
        "long"),
    INT("maxSessions", 1, INT32_MAX, false, "1000000", NULL, "most sessions the server caches"),
    INT("ttlMonitorSleepSecs", 1, INT32_MAX, false, "60", "seconds", "interval of the TTL monitor"),
    INT("replWriterThreadCount", 1, 256, false, "16", NULL, "threads a secondary applies the oplog with"),
    {"net.maxIncomingConnections", TROVE_PARAM_INTEGER, 1, 1000000, 0, 0, false, true, "65536", NULL,
     "most simultaneous connections"},
    {"operationProfiling.slowOpThresholdMs", TROVE_PARAM_INTEGER, 0, INT32_MAX, 0, 0, false, true, "100", "ms",
     "operations slower than this are logged"},
    {"storage.wiredTiger.engineConfig.cacheSizeGB", TROVE_PARAM_FLOAT, 0, 0, 0.25, 10000, false, true, NULL, "GB",
     "the storage engine's cache (default: half of memory less 1 GB)"},
};
#define N_PARAMS (sizeof(PARAMS) / sizeof(PARAMS[0]))

static const struct param_def *lookup(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        if (!strcmp(PARAMS[i].name, name))
            return &PARAMS[i];
    return NULL;
}

void mg_config_yaml(const char *name, const char *text, struct tps_buf *out)
{
    const struct param_def *d = lookup(name);
    bool b;
    if (d && d->type == TROVE_PARAM_BOOLEAN && tps_parse_bool(text, &b))
        tps_buf_add(out, b ? "true" : "false");
    else if (d && (d->type == TROVE_PARAM_INTEGER || d->type == TROVE_PARAM_FLOAT) && *text &&
             strspn(text, "0123456789.-+eE") == strlen(text))
        tps_buf_add(out, text);
    else
        tps_quote_conf(out, text, '"');
}

/* A value as the server wants it: numbers as numbers, booleans as bool. */
static void append_typed(bson_t *doc, const struct param_def *d, const char *text)
{
    bool b;
    if (d->type == TROVE_PARAM_INTEGER) {
        long long v = strtoll(text, NULL, 10);
        if (v >= INT32_MIN && v <= INT32_MAX)
            BSON_APPEND_INT32(doc, d->name, (int32_t)v);
        else
            BSON_APPEND_INT64(doc, d->name, v);
    } else if (d->type == TROVE_PARAM_FLOAT) {
        BSON_APPEND_DOUBLE(doc, d->name, strtod(text, NULL));
    } else if (d->type == TROVE_PARAM_BOOLEAN && tps_parse_bool(text, &b)) {
        BSON_APPEND_BOOL(doc, d->name, b);
    } else {
        BSON_APPEND_UTF8(doc, d->name, text);
    }
}

/* The text of a value the server reported. */
static void value_text(const bson_iter_t *it, char *out, size_t len)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        snprintf(out, len, "%" PRId64, bson_iter_as_int64(it));
        break;
    case BSON_TYPE_DOUBLE:
        snprintf(out, len, "%.17g", bson_iter_double(it));
        break;
    case BSON_TYPE_BOOL:
        snprintf(out, len, "%s", bson_iter_bool(it) ? "true" : "false");
        break;
    case BSON_TYPE_UTF8:
        snprintf(out, len, "%s", bson_iter_utf8(it, NULL));
        break;
    default: {
        bson_value_t v;
        bson_value_copy(bson_iter_value((bson_iter_t *)it), &v);
        bson_t wrap = BSON_INITIALIZER;
        bson_append_value(&wrap, "v", 1, &v);
        char *json = bson_as_relaxed_extended_json(&wrap, NULL);
        snprintf(out, len, "%s", json ? json : "");
        bson_free(json);
        bson_destroy(&wrap);
        bson_value_destroy(&v);
    }
    }
}

/* getParameter {showDetails, allParameters} from a running server, or an
 * empty document when it does not answer. */
static void server_details(struct mg_ctx *ctx, mongoc_client_t *c, bson_t *out)
{
    bson_t cmd = BSON_INITIALIZER, arg, reply;
    bson_error_t error;
    (void)ctx;
    bson_init(out);
    if (!c)
        return;
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "getParameter", &arg);
    BSON_APPEND_BOOL(&arg, "showDetails", true);
    BSON_APPEND_BOOL(&arg, "allParameters", true);
    bson_append_document_end(&cmd, &arg);
    if (mg_cmd_raw(c, "admin", &cmd, &reply, &error)) {
        bson_destroy(out);
        bson_copy_to(&reply, out);
    }
    bson_destroy(&cmd);
    bson_destroy(&reply);
}

static bool is_live(const struct param_def *d, const bson_t *details)
{
    if (d->option)
        return false;
    char path[256];
    bson_iter_t it, sub;
    snprintf(path, sizeof(path), "%s.settableAtRuntime", d->name);
    if (bson_iter_init(&it, details) && bson_iter_find_descendant(&it, path, &sub) && BSON_ITER_HOLDS_BOOL(&sub))
        return bson_iter_bool(&sub);
    return d->runtime;
}

/* An admin connection when the server is up (NULL otherwise, quietly). */
static mongoc_client_t *quiet_admin(struct mg_ctx *ctx, struct trove_call *call)
{
    bson_t hello, rs;
    bool up = mg_status_hello(ctx, &hello, &rs) == MG_REACH_OK;
    bson_destroy(&hello);
    bson_destroy(&rs);
    mongoc_client_t *c = NULL;
    if (up && mg_admin_open(ctx, call, &c) != TROVE_OK)
        c = NULL;
    return c;
}

int mg_config_schema(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c = quiet_admin(ctx, call);
    bson_t details;
    server_details(ctx, c, &details);
    if (c)
        mongoc_client_destroy(c);
    int rc = TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < N_PARAMS; i++) {
        const struct param_def *d = &PARAMS[i];
        struct trove_param p = {.size = sizeof(p), .name = d->name, .type = d->type, .min = d->min, .max = d->max,
                                .min_float = d->fmin, .max_float = d->fmax, .dynamic = is_live(d, &details),
                                .unit = d->unit, .default_value = d->def, .description = d->description};
        rc = ctx->host->emit_param(call, &p);
    }
    bson_destroy(&details);
    return rc;
}

static int check_names(struct mg_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct tps_buf unknown = {0};
    for (size_t i = 0; i < n; i++)
        if (!lookup(values[i].key))
            tps_buf_addf(&unknown, "%s%s", unknown.len ? ", " : "", values[i].key);
    int rc = TROVE_OK;
    if (unknown.len)
        rc = ctx->host->fail(call, TROVE_EINVAL, "unknown MongoDB parameters: %s", tps_buf_str(&unknown));
    tps_buf_free(&unknown);
    return rc;
}

/* The value to persist: booleans in one spelling. */
static const char *normal(const struct param_def *d, const char *text)
{
    bool b;
    if (d->type == TROVE_PARAM_BOOLEAN && tps_parse_bool(text, &b))
        return b ? "true" : "false";
    return text;
}

static void doc_set(bson_t *doc, const char *key, const char *value)
{
    bson_t copy = BSON_INITIALIZER;
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), key))
                bson_append_iter(&copy, NULL, 0, &it);
    if (value)
        BSON_APPEND_UTF8(&copy, key, value);
    bson_destroy(doc);
    bson_copy_to(&copy, doc);
    bson_destroy(&copy);
}

int mg_config_stage(struct mg_ctx *ctx, struct trove_call *call, struct mg_state *st, const struct trove_kv *values,
                    size_t n)
{
    int rc = check_names(ctx, call, values, n);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        const struct param_def *d = lookup(values[i].key);
        if (tps_has_control(values[i].value))
            return ctx->host->fail(call, TROVE_EINVAL, "%s: control characters are not allowed", d->name);
        doc_set(d->option ? &st->options : &st->parameters, d->name, normal(d, values[i].value));
    }
    return rc;
}

/* setParameter the values of `names` (texts), in one command: all or nothing. */
static int set_live(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *const *names,
                    const char *const *texts, size_t n)
{
    if (n == 0)
        return TROVE_OK;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "setParameter", 1);
    for (size_t i = 0; i < n; i++)
        append_typed(&cmd, lookup(names[i]), texts[i]);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "setParameter failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* The current server values of names (for rollback and reset). */
static int get_live(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *const *names,
                    size_t n, char (*out)[256])
{
    if (n == 0)
        return TROVE_OK;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "getParameter", 1);
    for (size_t i = 0; i < n; i++)
        BSON_APPEND_INT32(&cmd, names[i], 1);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "getParameter failed");
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &reply, names[i]))
            value_text(&it, out[i], sizeof(out[i]));
        else
            rc = ctx->host->fail(call, TROVE_EDATASTORE, "the server does not report parameter %s", names[i]);
    }
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

struct plan {
    const char **names, **texts;
    char (*before)[256];
    size_t n;
};

/* Put live values back after a failure (its own error is not reported:
 * the failure that caused it is). */
static void roll_back(mongoc_client_t *c, const struct plan *p)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_INT32(&cmd, "setParameter", 1);
    for (size_t i = 0; i < p->n; i++)
        append_typed(&cmd, lookup(p->names[i]), p->before[i]);
    mg_cmd_raw(c, "admin", &cmd, &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
}

static int plan_alloc(struct plan *p, size_t n)
{
    p->n = 0;
    p->names = calloc(n + 1, sizeof(*p->names));
    p->texts = calloc(n + 1, sizeof(*p->texts));
    p->before = calloc(n + 1, sizeof(*p->before));
    return p->names && p->texts && p->before ? 0 : -1;
}

static void plan_free(struct plan *p)
{
    free(p->names);
    free(p->texts);
    free(p->before);
}

static int report(struct mg_ctx *ctx, struct trove_call *call, const char *name, bool live, bool *restart)
{
    if (!live)
        *restart = true;
    return ctx->host->add_str(call, live ? "applied" : "pending_restart", name);
}

int mg_config_set(struct mg_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n, bool rep,
                  bool *restart)
{
    struct mg_state st;
    struct plan live;
    bson_t details;
    *restart = false;
    int rc = check_names(ctx, call, values, n);
    if (rc != TROVE_OK)
        return rc;
    if (plan_alloc(&live, n) != 0) {
        plan_free(&live);
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    }
    mongoc_client_t *c = quiet_admin(ctx, call);
    server_details(ctx, c, &details);
    for (size_t i = 0; i < n; i++) {
        const struct param_def *d = lookup(values[i].key);
        if (c && is_live(d, &details)) {
            live.names[live.n] = d->name;
            live.texts[live.n++] = normal(d, values[i].value);
        }
    }
    if ((rc = mg_state_load(ctx, call, &st)) == TROVE_OK) {
        if ((rc = mg_config_stage(ctx, call, &st, values, n)) == TROVE_OK &&
            (rc = get_live(ctx, call, c, live.names, live.n, live.before)) == TROVE_OK) {
            for (size_t i = 0; i < live.n; i++)   /* what reset goes back to */
                if (!mg_bson_str(&st.originals, live.names[i]))
                    doc_set(&st.originals, live.names[i], live.before[i]);
            if ((rc = set_live(ctx, call, c, live.names, live.texts, live.n)) == TROVE_OK &&
                (rc = mg_state_save(ctx, call, &st)) != TROVE_OK)
                roll_back(c, &live);
        }
        mg_state_free(&st);
    }
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        bool is = false;
        for (size_t j = 0; j < live.n && !is; j++)
            is = !strcmp(live.names[j], values[i].key);
        if (rep)
            rc = report(ctx, call, values[i].key, is, restart);
        else if (!is)
            *restart = true;
    }
    bson_destroy(&details);
    plan_free(&live);
    if (c)
        mongoc_client_destroy(c);
    return rc;
}

int mg_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    struct mg_ctx *ctx = self;
    bool restart;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = mg_config_set(ctx, call, values, n, true, &restart);
    tps_file_unlock(lock);
    return rc;
}

/* Collect the names of one override document. */
static size_t names_of(const bson_t *doc, const char **out, size_t max)
{
    bson_iter_t it;
    size_t n = 0;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it) && n < max)
            if (lookup(bson_iter_key(&it)))
                out[n++] = lookup(bson_iter_key(&it))->name;
    return n;
}

int mg_config_reset(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    struct mg_state st;
    const char *params[N_PARAMS], *options[N_PARAMS], *live[N_PARAMS], *texts[N_PARAMS];
    size_t n_live = 0;
    bson_t details;
    bool restart = false;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = mg_state_load(ctx, call, &st);
    if (rc != TROVE_OK) {
        tps_file_unlock(lock);
        return rc;
    }
    mongoc_client_t *c = quiet_admin(ctx, call);
    server_details(ctx, c, &details);
    size_t np = names_of(&st.parameters, params, N_PARAMS), no = names_of(&st.options, options, N_PARAMS);
    for (size_t i = 0; i < np; i++) {
        const struct param_def *d = lookup(params[i]);
        const char *back = mg_bson_str(&st.originals, d->name);
        back = back ? back : d->def;
        if (c && back && is_live(d, &details)) {
            live[n_live] = d->name;
            texts[n_live++] = back;
        }
    }
    rc = set_live(ctx, call, c, live, texts, n_live);
    bson_reinit(&st.parameters);
    bson_reinit(&st.options);
    bson_reinit(&st.originals);
    if (rc == TROVE_OK)
        rc = mg_state_save(ctx, call, &st);
    for (size_t i = 0; rc == TROVE_OK && i < np; i++) {
        bool is = false;
        for (size_t j = 0; j < n_live && !is; j++)
            is = !strcmp(live[j], params[i]);
        rc = report(ctx, call, params[i], is, &restart);
    }
    for (size_t i = 0; rc == TROVE_OK && i < no; i++)
        rc = report(ctx, call, options[i], false, &restart);
    mg_state_free(&st);
    bson_destroy(&details);
    if (c)
        mongoc_client_destroy(c);
    tps_file_unlock(lock);
    return rc;
}

/* put values[name] for one parameter, from getParameter or getCmdLineOpts. */
static int show_one(struct mg_ctx *ctx, struct trove_call *call, const struct param_def *d, const bson_t *params,
                    const bson_t *opts)
{
    char text[1024], path[300];
    bson_iter_t it, sub;
    text[0] = '\0';
    if (!d->option && bson_iter_init_find(&it, params, d->name))
        value_text(&it, text, sizeof(text));
    else if (d->option) {
        snprintf(path, sizeof(path), "parsed.%s", d->name);
        if (bson_iter_init(&it, opts) && bson_iter_find_descendant(&it, path, &sub))
            value_text(&sub, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "%s", d->def ? d->def : "");
    }
    return ctx->host->put(call, "values", d->name, text);
}

int mg_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct mg_ctx *ctx = self;
    const struct param_def *wanted[N_PARAMS];
    size_t count = 0;
    for (size_t i = 0; i < (n ? n : N_PARAMS) && count < N_PARAMS; i++) {
        const struct param_def *d = n ? lookup(names[i]) : &PARAMS[i];
        if (!d)
            return ctx->host->fail(call, TROVE_EINVAL, "unknown MongoDB parameter: %s", names[i]);
        wanted[count++] = d;
    }
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    bson_t get = BSON_INITIALIZER, opts_cmd = BSON_INITIALIZER, params, opts;
    size_t asked = 0;
    BSON_APPEND_INT32(&get, "getParameter", 1);
    for (size_t i = 0; i < count; i++)
        if (!wanted[i]->option)
            asked++, BSON_APPEND_INT32(&get, wanted[i]->name, 1);
    BSON_APPEND_INT32(&opts_cmd, "getCmdLineOpts", 1);
    if (asked)
        rc = mg_cmd(ctx, call, c, "admin", &get, &params, "getParameter failed");
    else
        bson_init(&params);
    if (rc == TROVE_OK)
        rc = mg_cmd(ctx, call, c, "admin", &opts_cmd, &opts, "getCmdLineOpts failed");
    else
        bson_init(&opts);
    for (size_t i = 0; rc == TROVE_OK && i < count; i++)
        rc = show_one(ctx, call, wanted[i], &params, &opts);
    bson_destroy(&get);
    bson_destroy(&opts_cmd);
    bson_destroy(&params);
    bson_destroy(&opts);
    mongoc_client_destroy(c);
    return rc;
}
