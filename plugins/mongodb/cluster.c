/*
 * cluster.c - replica set membership through the cluster slots. Without
 * seeds, cluster_join makes this member a one-member set of the given name
 * (re-initiating it when its name changes) with the cluster secret as its
 * keyFile; with seeds, it joins the seeds' set the way repl_attach does.
 * cluster_leave removes this member (or a dead `member`) through the
 * primary. cluster_status lists replSetGetStatus's members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

static bool set_name_ok(const char *name)
{
    return tps_name_ok(name, 64, "-.", false);
}

/* Forming a set of this member alone under `name`. */
static int form(struct mg_ctx *ctx, struct trove_call *call, const char *name, const char *secret)
{
    mongoc_client_t *c;
    bson_t cmd = BSON_INITIALIZER, st;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK) {
        bson_destroy(&cmd);
        return rc;
    }
    bson_error_t error;
    BSON_APPEND_INT32(&cmd, "replSetGetStatus", 1);
    bool member = mg_cmd_raw(c, "admin", &cmd, &st, &error);
    bson_destroy(&cmd);
    mongoc_client_destroy(c);
    int others = 0;
    bson_iter_t it, arr;
    if (member && bson_iter_init_find(&it, &st, "members") && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            others++;
    const char *set = member ? mg_bson_str(&st, "set") : NULL;
    bool same = set && !strcmp(set, name);
    if (others > 1)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this member already belongs to replica set %s with %d members: "
                                                    "leave it first", set ? set : "?", others);
    bson_destroy(&st);
    if (rc != TROVE_OK)
        return rc;
    char *current = mg_keyfile_read(ctx, call), *wanted = secret ? mg_keyfile_text(secret) : NULL;
    bool new_key = secret && (!current || !wanted || strcmp(current, wanted));
    mg_secret_free(current);
    mg_secret_free(wanted);
    if (same && !new_key)
        return TROVE_OK;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 20, "forming replica set %s", name);
    if (new_key && (rc = mg_server_stop(ctx, call)) == TROVE_OK)
        rc = mg_keyfile_write(ctx, call, secret);
    if (rc == TROVE_OK && same)
        rc = mg_server_start(ctx, call);
    else if (rc == TROVE_OK)
        rc = mg_replset_reset(ctx, call, name);
    tps_file_unlock(lock);
    return rc;
}

int mg_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct mg_ctx *ctx = self;
    const char *name = req->cluster_name ? req->cluster_name : ctx->default_set;
    if (!set_name_ok(name))
        return ctx->host->fail(call, TROVE_EINVAL, "replica set name \"%s\" is invalid: use 1-64 of [A-Za-z0-9_.-]",
                               name);
    if (req->n_options)
        return ctx->host->fail(call, TROVE_EINVAL, "the mongodb plugin takes no cluster options");
    if (req->n_seeds == 0)
        return form(ctx, call, name, req->secret);
    int rc = TROVE_EINVAL;
    for (size_t i = 0; i < req->n_seeds; i++) {
        const struct trove_member *seed = TROVE_AT(struct trove_member, req->seeds, req->seed_size, i);
        if (!seed->host || seed->port < 1 || seed->port > 65535) {
            rc = ctx->host->fail(call, TROVE_EINVAL, "a seed needs host and port");
            continue;
        }
        struct mg_join j = {seed->host, (int)seed->port, req->user, req->password, req->secret,
                            req->cluster_name ? name : NULL};
        rc = mg_replset_join(ctx, call, &j);
        if (rc == TROVE_OK || rc == TROVE_ECONFLICT)   /* a refusal is the set's answer: no other seed differs */
            break;
    }
    return rc;
}

/* Remove another member (a dead one) through this member's primary. */
static int remove_member(struct mg_ctx *ctx, struct trove_call *call, const struct trove_member *m)
{
    char host[600];
    snprintf(host, sizeof(host), "%s:%d", m->host ? m->host : "", (int)m->port);
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "replSetGetConfig", 1);
    rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetGetConfig failed");
    bson_destroy(&cmd);
    bson_t config = BSON_INITIALIZER, members;
    bson_iter_t it, cfg, arr;
    bool found = false;
    uint32_t n = 0;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &reply, "config") && bson_iter_recurse(&it, &cfg)) {
        while (bson_iter_next(&cfg)) {
            const char *k = bson_iter_key(&cfg);
            if (!strcmp(k, "version")) {
                BSON_APPEND_INT64(&config, "version", bson_iter_as_int64(&cfg) + 1);
            } else if (!strcmp(k, "members") && bson_iter_recurse(&cfg, &arr)) {
                BSON_APPEND_ARRAY_BEGIN(&config, "members", &members);
                while (bson_iter_next(&arr)) {
                    const uint8_t *data;
                    uint32_t len;
                    bson_t md;
                    bson_iter_document(&arr, &len, &data);
                    if (!bson_init_static(&md, data, len))
                        continue;
                    if (mg_bson_str(&md, "host") && !strcmp(mg_bson_str(&md, "host"), host)) {
                        found = true;
                        continue;
                    }
                    char key[16];
                    const char *kk;
                    bson_uint32_to_string(n++, &kk, key, sizeof(key));
                    BSON_APPEND_DOCUMENT(&members, kk, &md);
                }
                bson_append_array_end(&config, &members);
            } else {
                bson_append_iter(&config, NULL, 0, &cfg);
            }
        }
    }
    bson_destroy(&reply);
    if (rc == TROVE_OK && !found)
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "%s is not a member of this replica set", host);
    if (rc == TROVE_OK) {
        bson_init(&cmd);
        BSON_APPEND_DOCUMENT(&cmd, "replSetReconfig", &config);
        rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetReconfig failed (run it on the primary)");
        bson_destroy(&cmd);
        bson_destroy(&reply);
    }
    bson_destroy(&config);
    mongoc_client_destroy(c);
    return rc;
}

int mg_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct mg_ctx *ctx = self;
    char self_host[600], other[600];
    if (!req->member)
        return mg_replset_leave(ctx, call);
    snprintf(self_host, sizeof(self_host), "%s:%lld", ctx->s.host, (long long)ctx->s.port);
    snprintf(other, sizeof(other), "%s:%d", req->member->host ? req->member->host : "", (int)req->member->port);
    if (!strcmp(self_host, other))
        return mg_replset_leave(ctx, call);
    return remove_member(ctx, call, req->member);
}

static int emit_one(struct mg_ctx *ctx, struct trove_call *call, const bson_t *m)
{
    const char *name = mg_bson_str(m, "name");
    const char *colon = name ? strrchr(name, ':') : NULL;
    int64_t port = 0;
    char host[512], id[32];
    if (!colon || (size_t)(colon - name) >= sizeof(host) || !tps_parse_int(colon + 1, 1, 65535, &port))
        return TROVE_OK;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - name), name);
    snprintf(id, sizeof(id), "%lld", (long long)mg_bson_int(m, "_id", 0));
    int64_t state = mg_bson_int(m, "state", -1);
    bool healthy = mg_bson_int(m, "health", 0) != 0;
    struct trove_member out = {.size = sizeof(out), .id = id, .host = host, .port = (int32_t)port,
                               .self = mg_bson_bool(m, "self")};
    out.state = !healthy ? TROVE_MEMBER_DOWN
              : state == 1 || state == 2 ? TROVE_MEMBER_UP
              : state == 0 || state == 3 || state == 5 ? TROVE_MEMBER_JOINING
              : state == 10 ? TROVE_MEMBER_LEAVING : TROVE_MEMBER_UNKNOWN;
    out.role = state == 1 ? TROVE_ROLE_PRIMARY : state == 2 ? TROVE_ROLE_REPLICA : TROVE_ROLE_UNKNOWN;
    return ctx->host->emit_member(call, &out);
}

int mg_cluster_status(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    bson_t cmd = BSON_INITIALIZER, st;
    BSON_APPEND_INT32(&cmd, "replSetGetStatus", 1);
    rc = mg_cmd(ctx, call, c, "admin", &cmd, &st, "replSetGetStatus failed");
    bson_destroy(&cmd);
    mongoc_client_destroy(c);
    bson_iter_t it, arr;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &st, "members") && bson_iter_recurse(&it, &arr))
        while (rc == TROVE_OK && bson_iter_next(&arr)) {
            const uint8_t *data;
            uint32_t len;
            bson_t m;
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
                continue;
            bson_iter_document(&arr, &len, &data);
            if (bson_init_static(&m, data, len))
                rc = emit_one(ctx, call, &m);
        }
    if (rc == TROVE_OK)
        rc = ctx->host->set_str(call, "cluster_name", mg_bson_str(&st, "set") ? mg_bson_str(&st, "set") : "");
    bson_destroy(&st);
    return rc;
}
