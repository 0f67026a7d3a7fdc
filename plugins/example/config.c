/*
 * config.c - the configuration schema and how values reach the server:
 * CONFIG.SET, which says whether a value applies live or at the next
 * start (the server keeps its own config file, so the plugin never writes
 * it). Booleans arrive in any of the ABI's spellings and go to the server
 * as 1/0.
 */
#include <stdio.h>
#include <string.h>

#include "example.h"

static const struct trove_param PARAMS[] = {
    {.size = sizeof(struct trove_param), .name = "max_value_bytes", .type = TROVE_PARAM_INTEGER, .min = 1,
     .max = 1048576, .dynamic = true, .unit = "bytes", .default_value = "65536",
     .description = "the longest value a PUT may store"},
    {.size = sizeof(struct trove_param), .name = "sync_interval_ms", .type = TROVE_PARAM_INTEGER, .min = 10,
     .max = 60000, .dynamic = true, .unit = "ms", .default_value = "100",
     .description = "how often a replica copies its source"},
    {.size = sizeof(struct trove_param), .name = "log_writes", .type = TROVE_PARAM_BOOLEAN, .dynamic = true,
     .default_value = "off", .description = "record every write in the writes log"},
    {.size = sizeof(struct trove_param), .name = "listen_backlog", .type = TROVE_PARAM_INTEGER, .min = 1,
     .max = 4096, .dynamic = false, .default_value = "64", .description = "pending connections the server queues"},
};
#define N_PARAMS (sizeof(PARAMS) / sizeof(PARAMS[0]))

static const struct trove_param *find(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        if (!strcmp(PARAMS[i].name, name))
            return &PARAMS[i];
    return NULL;
}

int ex_config_schema(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    for (size_t i = 0; i < N_PARAMS; i++) {
        int rc = ctx->host->emit_param(call, &PARAMS[i]);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

/* The server's spelling of a (schema-checked) value. */
static const char *server_value(const struct trove_param *p, const char *v)
{
    bool b;
    if (p->type == TROVE_PARAM_BOOLEAN && tps_parse_bool(v, &b))
        return b ? "1" : "0";
    return v;
}

int ex_config_set(struct ex_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n,
                  bool report, bool *restart)
{
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    *restart = false;
    /* The agent checked names, types and ranges against the schema, and so
     * does the server: a failure part-way is a lost connection. */
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        const struct trove_param *p = find(values[i].key);
        struct ex_row ok;
        if (!p) {
            rc = ctx->host->fail(call, TROVE_EINVAL, "unknown parameter %s", values[i].key);
            break;
        }
        rc = ex_conn_cmd(&c, NULL, NULL, &ok, "CONFIG.SET", p->name, server_value(p, values[i].value), (char *)NULL);
        if (rc != TROVE_OK)
            break;
        bool live = ok.n > 1 && !strcmp(ok.col[1], "live");
        ex_row_free(&ok);
        *restart = *restart || !live;
        if (report)
            rc = ctx->host->add_str(call, live ? "applied" : "pending_restart", p->name);
    }
    ex_conn_close(&c);
    return rc;
}

int ex_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n)
{
    bool restart;
    return ex_config_set(self, call, values, n, true, &restart);
}

int ex_config_reset(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = ex_conn_cmd(&c, NULL, NULL, NULL, "CONFIG.RESET", (char *)NULL);
    ex_conn_close(&c);
    for (size_t i = 0; rc == TROVE_OK && i < N_PARAMS; i++)
        rc = ctx->host->add_str(call, PARAMS[i].dynamic ? "applied" : "pending_restart", PARAMS[i].name);
    return rc;
}

struct show_ctx {
    struct ex_ctx *ctx;
    struct trove_call *call;
    const char *const *names;
    size_t n;
};

static int show_row(void *arg, const struct ex_row *row)
{
    struct show_ctx *s = arg;
    const struct trove_param *p = row->n >= 2 ? find(row->col[0]) : NULL;
    bool wanted = s->n == 0;
    for (size_t i = 0; i < s->n && !wanted; i++)
        wanted = !strcmp(s->names[i], row->col[0]);
    if (!p || !wanted)
        return TROVE_OK;
    const char *v = p->type == TROVE_PARAM_BOOLEAN ? (strcmp(row->col[1], "0") ? "on" : "off") : row->col[1];
    return s->ctx->host->put(s->call, "values", p->name, v);
}

int ex_config_show(void *self, struct trove_call *call, const char *const *names, size_t n)
{
    struct show_ctx s = {self, call, names, n};
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, show_row, &s, NULL, "CONFIG.LIST", (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}
