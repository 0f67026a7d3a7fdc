/*
 * cluster.c - cluster membership: a node forms a cluster of itself or
 * joins one through a seed, leaves it, or removes a dead member; status
 * lists every member the node knows with whether it answers. Members prove
 * they belong with the cluster's shared secret, which the server keeps in a
 * 0600 file of its data directory (never in a backup: the store holds
 * data only). Data is not spread across members: the example shows the
 * membership contract, not sharding.
 */
#include <stdio.h>
#include <string.h>

#include "example.h"

#define DEFAULT_CLUSTER "example"

int ex_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct ex_ctx *ctx = self;
    const char *name = req->cluster_name ? req->cluster_name : DEFAULT_CLUSTER;
    if (!req->secret || !*req->secret)
        return ctx->host->fail(call, TROVE_EINVAL, "joining a cluster needs its shared secret");
    if (!tps_name_ok(name, 64, "-", false))
        return ctx->host->fail(call, TROVE_EINVAL, "cluster name \"%s\" is invalid: use 1-64 of [A-Za-z0-9_-]", name);
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    if (req->n_seeds == 0) {
        ctx->host->progress(call, 50, "forming cluster %s", name);
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "CLUSTER.FORM", name, req->secret, (char *)NULL);
    }
    /* Seeds are indexed by their element size; the first that admits us wins. */
    for (size_t i = 0; i < req->n_seeds; i++) {
        const struct trove_member *seed = TROVE_AT(struct trove_member, req->seeds, req->seed_size, i);
        char port[16];
        snprintf(port, sizeof(port), "%d", (int)seed->port);
        ctx->host->progress(call, 50, "joining cluster %s through %s:%s", name, seed->host, port);
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "CLUSTER.JOIN", name, req->secret, seed->host, port, (char *)NULL);
        if (rc == TROVE_OK || rc == TROVE_EEXIST)
            break;
    }
    ex_conn_close(&c);
    return rc;
}

int ex_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    char port[16];
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    if (!req->member) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "CLUSTER.LEAVE", (char *)NULL);
    } else {
        snprintf(port, sizeof(port), "%d", (int)req->member->port);
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "CLUSTER.REMOVE", req->member->host, port, (char *)NULL);
    }
    ex_conn_close(&c);
    return rc;
}

struct status_ctx {
    struct ex_ctx *ctx;
    struct trove_call *call;
};

/* ROW host port up|down self */
static int member_row(void *arg, const struct ex_row *row)
{
    struct status_ctx *s = arg;
    int64_t port = 0;
    if (row->n < 4 || !tps_parse_int(row->col[1], 1, 65535, &port))
        return TROVE_OK;
    struct trove_member m = {.size = sizeof(m), .host = row->col[0], .port = (int32_t)port,
                             .state = !strcmp(row->col[2], "up") ? TROVE_MEMBER_UP : TROVE_MEMBER_DOWN,
                             .role = TROVE_ROLE_STANDALONE, .self = !strcmp(row->col[3], "1")};
    return s->ctx->host->emit_member(s->call, &m);
}

int ex_cluster_status(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct status_ctx s = {ctx, call};
    struct ex_conn c;
    struct ex_row ok;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = ex_conn_cmd(&c, member_row, &s, &ok, "CLUSTER.STATUS", (char *)NULL);
    ex_conn_close(&c);
    if (rc == TROVE_OK) {
        rc = ctx->host->set_str(call, "cluster_name", ok.n > 1 ? ok.col[1] : "");
        ex_row_free(&ok);
    }
    return rc;
}
