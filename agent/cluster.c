/*
 * cluster.c - argument checking for cluster membership changes (see
 * cluster.h). Membership itself is the plugin's: this file only builds the
 * request, with every struct sized and every array with its element size.
 */
#include "cluster.h"

#include <stdlib.h>
#include <string.h>

static int arg_member(struct trove_call *call, const struct tv *m, const char *what, struct arena *ar,
                      struct trove_member *out)
{
    int64_t port = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    out->size = sizeof(*out);
    if (!m || m->type != TV_MAP)
        return call_fail(call, TROVE_EINVAL, "%s must be a map with host and port", what);
    if ((rc = arg_str(call, m, "host", true, &out->host)) || (rc = arg_int(call, m, "port", 1, 65535, 0, &port)) ||
        (rc = arg_str(call, m, "id", false, &out->id)) || (rc = arg_str(call, m, "location", false, &out->location)) ||
        (rc = arg_kv(call, m, "options", ar, &out->options, &out->n_options)))
        return rc;
    if (port == 0)
        return call_fail(call, TROVE_EINVAL, "%s needs a port", what);
    out->port = (int32_t)port;
    return TROVE_OK;
}

static int arg_seeds(struct trove_call *call, const struct tv *args, struct arena *ar, struct trove_cluster_request *req)
{
    const struct tv *v = tv_get(args, "seeds");
    if (!v || v->type == TV_NIL)
        return TROVE_OK;
    if (v->type != TV_ARRAY)
        return call_fail(call, TROVE_EINVAL, "argument 'seeds' must be a list of maps with host and port");
    struct trove_member *seeds = arena_keep(ar, calloc(v->u.a.len + 1, sizeof(*seeds)));
    if (!seeds)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; i < v->u.a.len; i++) {
        int rc = arg_member(call, v->u.a.items[i], "each of 'seeds'", ar, &seeds[i]);
        if (rc)
            return rc;
    }
    req->seeds = seeds;
    req->n_seeds = v->u.a.len;
    return TROVE_OK;
}

int cluster_op_change(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar, bool join)
{
    struct trove_cluster_request req = {.size = sizeof(req), .seed_size = sizeof(struct trove_member)};
    int rc;
    if ((rc = arg_str(call, args, "cluster_name", false, &req.cluster_name)) ||
        (rc = arg_str(call, args, "user", false, &req.user)) ||
        (rc = arg_str(call, args, "password", false, &req.password)) ||
        (rc = arg_str(call, args, "cluster_secret", false, &req.secret)) ||
        (rc = arg_kv(call, args, "options", ar, &req.options, &req.n_options)))
        return rc;
    /* The catalogue gives join 'seeds' and leave 'member', never the other. */
    if (join) {
        if ((rc = arg_seeds(call, args, ar, &req)))
            return rc;
        return a->plugin.vt->cluster_join(a->plugin.self, call, &req);
    }
    const struct tv *member = tv_get(args, "member");
    if (member && member->type != TV_NIL) {
        struct trove_member *m = arena_keep(ar, calloc(1, sizeof(*m)));
        if (!m)
            return call_fail(call, TROVE_EINTERNAL, "out of memory");
        if ((rc = arg_member(call, member, "argument 'member'", ar, m)))
            return rc;
        req.member = m;
    }
    return a->plugin.vt->cluster_leave(a->plugin.self, call, &req);
}
