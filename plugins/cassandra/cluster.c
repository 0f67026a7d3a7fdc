/*
 * cluster.c - ring membership. Forming (no seeds) names the ring (the
 * rename procedure: UPDATE system.local, flush, restart) and sets the
 * membership role's password to the cluster secret. Joining proves the
 * secret by logging in to a seed as that role before anything changes, then
 * stops this node, empties it, writes the seeds, data center and rack, and
 * starts it to bootstrap, waiting until nodetool says UN. Leaving is
 * nodetool decommission (or removenode for a dead member). The secret is
 * kept only as that role's password in the ring (system_auth), never here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cassandra.h"

#define MEMBERSHIP "cluster.conf"
#define STATUS_OUT 65536

/* ---- the membership file ------------------------------------------------------ */

static bool seeds_ok(const char *s)
{
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:-,") == strlen(s);
}

void cs_membership_load(struct cs_ctx *ctx, struct cs_membership *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->cluster_name, sizeof(m->cluster_name), "%s", ctx->s.cluster_name);
    snprintf(m->dc, sizeof(m->dc), "%s", ctx->s.dc ? ctx->s.dc : "");
    snprintf(m->rack, sizeof(m->rack), "%s", ctx->s.rack ? ctx->s.rack : "");
    m->auto_bootstrap = true;
    char path[CS_PATH_MAX + 64];
    char *text = tps_file_read(cs_state_path(ctx, MEMBERSHIP, path, sizeof(path)), 8192, NULL);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *v = strchr(line, '=');
        if (!v)
            continue;
        *v++ = '\0';
        bool b;
        if (!strcmp(line, "cluster_name") && cs_label_ok(v, true))
            snprintf(m->cluster_name, sizeof(m->cluster_name), "%s", v);
        else if (!strcmp(line, "seeds") && seeds_ok(v))
            snprintf(m->seeds, sizeof(m->seeds), "%s", v);
        else if (!strcmp(line, "dc") && (!*v || cs_label_ok(v, false)))
            snprintf(m->dc, sizeof(m->dc), "%s", v);
        else if (!strcmp(line, "rack") && (!*v || cs_label_ok(v, false)))
            snprintf(m->rack, sizeof(m->rack), "%s", v);
        else if (!strcmp(line, "auto_bootstrap") && tps_parse_bool(v, &b))
            m->auto_bootstrap = b;
    }
    free(text);
}

int cs_membership_save(struct cs_ctx *ctx, struct trove_call *call, const struct cs_membership *m)
{
    char path[CS_PATH_MAX + 64];
    struct tps_buf b = {0};
    tps_buf_addf(&b, "cluster_name=%s\nseeds=%s\ndc=%s\nrack=%s\nauto_bootstrap=%s\n", m->cluster_name, m->seeds, m->dc,
                 m->rack, m->auto_bootstrap ? "true" : "false");
    cs_state_path(ctx, MEMBERSHIP, path, sizeof(path));
    int e = tps_buf_str(&b) ? tps_file_write_atomic(path, b.data, b.len, 0600) : -ENOMEM;
    tps_buf_free(&b);
    return e == 0 ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
}

/* ---- requests ----------------------------------------------------------------- */

struct join_args {
    const char *name;          /* NULL: the ring's (or the node's) */
    const char *dc, *rack;     /* NULL: keep */
    int auto_bootstrap;        /* -1: default (true) */
};

static int parse_join(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                      struct join_args *a)
{
    memset(a, 0, sizeof(*a));
    a->auto_bootstrap = -1;
    a->name = req->cluster_name;
    if (a->name && !cs_label_ok(a->name, true))
        return ctx->host->fail(call, TROVE_EINVAL, "cluster name \"%.80s\" is invalid: use 1-64 of letters, digits, "
                                                   "spaces and _ . -", a->name);
    if (!req->secret || !*req->secret)
        return ctx->host->fail(call, TROVE_EINVAL, "joining a ring needs its cluster secret");
    char *q = cql_quote_literal(req->secret);
    if (!q || strlen(req->secret) > 1024) {
        free(q);
        return ctx->host->fail(call, TROVE_EINVAL, "the cluster secret must be UTF-8 of at most 1024 bytes");
    }
    explicit_bzero(q, strlen(q));
    free(q);
    for (size_t i = 0; i < req->n_options; i++) {
        const char *k = req->options[i].key, *v = req->options[i].value;
        bool b;
        if (!strcmp(k, "dc") || !strcmp(k, "rack")) {
            if (!cs_label_ok(v, false))
                return ctx->host->fail(call, TROVE_EINVAL, "%s \"%s\" is invalid: use 1-64 of [A-Za-z0-9_.-]", k, v);
            *(!strcmp(k, "dc") ? &a->dc : &a->rack) = v;
        } else if (!strcmp(k, "auto_bootstrap")) {
            if (!tps_parse_bool(v, &b))
                return ctx->host->fail(call, TROVE_EINVAL, "auto_bootstrap must be a boolean, not \"%s\"", v);
            a->auto_bootstrap = b;
        } else {
            return ctx->host->fail(call, TROVE_EINVAL, "unknown cluster option \"%s\" (known: dc, rack, "
                                                       "auto_bootstrap)", k);
        }
    }
    if (!a->dc != !a->rack)
        return ctx->host->fail(call, TROVE_EINVAL, "dc and rack go together: give both or neither");
    for (size_t i = 0; i < req->n_seeds; i++) {
        const struct trove_member *s = TROVE_AT(struct trove_member, req->seeds, req->seed_size, i);
        if (!s->host || !*s->host || strlen(s->host) > 200 || !seeds_ok(s->host) || strchr(s->host, ','))
            return ctx->host->fail(call, TROVE_EINVAL, "seed host \"%.80s\" is not an address or host name",
                                   s->host ? s->host : "");
    }
    return TROVE_OK;
}

/* The node's own row of system.local. */
struct local_info {
    char cluster_name[128];
    char dc[80];
    char rack[80];
    char host_id[40];
    char rpc_address[64];
};

static void uuid_text(const struct cql_value *v, char *out, size_t len)
{
    out[0] = '\0';
    if (!v || v->kind != CQL_VALUE_UUID || len < 37)
        return;
    const uint8_t *u = v->u.uuid;
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* An inet cell as text (IPv4 dotted; IPv6 as hex groups). */
static void inet_text(const struct cql_value *v, char *out, size_t len)
{
    out[0] = '\0';
    if (!v || v->kind != CQL_VALUE_BYTES)
        return;
    const uint8_t *b = v->u.bytes.ptr;
    if (v->u.bytes.len == 4) {
        snprintf(out, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    } else if (v->u.bytes.len == 16) {
        size_t k = 0;
        for (int i = 0; i < 8 && k < len; i++)
            k += (size_t)snprintf(out + k, len - k, "%s%x", i ? ":" : "", (unsigned)(b[2 * i] << 8 | b[2 * i + 1]));
    }
}

static void text_of(const struct cql_result *r, size_t row, const char *col, char *out, size_t len)
{
    const char *t = cql_value_text(cql_cell_by_name(r, row, col));
    snprintf(out, len, "%s", t ? t : "");
}

static int read_local(struct cs_conn *c, struct local_info *li)
{
    struct cql_param key = cql_param_text("local");
    struct cql_result *res = NULL;
    memset(li, 0, sizeof(*li));
    int rc = cs_query(c, "reading system.local", "SELECT cluster_name, data_center, rack, host_id, rpc_address "
                      "FROM system.local WHERE key = ?", &key, 1, &res, false);
    if (rc == TROVE_OK && res->rows.nrows == 1) {
        text_of(res, 0, "cluster_name", li->cluster_name, sizeof(li->cluster_name));
        text_of(res, 0, "data_center", li->dc, sizeof(li->dc));
        text_of(res, 0, "rack", li->rack, sizeof(li->rack));
        uuid_text(cql_cell_by_name(res, 0, "host_id"), li->host_id, sizeof(li->host_id));
        inet_text(cql_cell_by_name(res, 0, "rpc_address"), li->rpc_address, sizeof(li->rpc_address));
    } else if (rc == TROVE_OK) {
        rc = c->ctx->host->fail(c->call, TROVE_EDATASTORE, "system.local has no row for this node");
    }
    cql_result_free(res);
    return rc;
}

/* system.peers_v2 (4.0), or system.peers where the server has no peers_v2. */
static int read_peers(struct cs_conn *c, struct cql_result **res, bool *v2)
{
    *v2 = true;
    enum cql_status st = cs_query_raw(c, "SELECT peer, native_address, native_port, host_id, data_center, rack "
                                         "FROM system.peers_v2", NULL, 0, res);
    if (st == CQL_ERR_INVALID) {
        *v2 = false;
        return cs_query(c, "reading system.peers", "SELECT peer, rpc_address, host_id, data_center, rack "
                        "FROM system.peers", NULL, 0, res, false);
    }
    return st == CQL_OK ? TROVE_OK
                        : cs_fail_cql(c->ctx, c->call, c->where, cql_last_error(c->cql), "reading peers", false);
}

/* ---- forming ------------------------------------------------------------------------ */

static int rename_ring(struct cs_ctx *ctx, struct trove_call *call, struct cs_conn *c, const char *name)
{
    struct cql_param p[2] = {cql_param_text(name), cql_param_text("local")};
    int rc = cs_query(c, "renaming the cluster", "UPDATE system.local SET cluster_name = ? WHERE key = ?", p, 2, NULL,
                      false);
    const char *flush[] = {"flush", "system", NULL};
    if (rc == TROVE_OK)
        rc = cs_nodetool(ctx, call, flush, NULL, 0, 120000);
    return rc;
}

static int form(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                const struct join_args *a)
{
    struct cs_conn c;
    struct local_info li;
    struct cql_result *peers = NULL;
    bool v2, exists = false;
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = read_local(&c, &li)) == TROVE_OK)
        rc = read_peers(&c, &peers, &v2);
    if (rc == TROVE_OK && peers->rows.nrows > 0)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this node is in a ring with %zu other node(s): a ring of its own "
                                                    "is formed only by a node alone", peers->rows.nrows);
    if (rc == TROVE_OK && a->dc && (strcmp(a->dc, li.dc) || strcmp(a->rack, li.rack)))
        rc = ctx->host->fail(call, TROVE_EINVAL, "a node keeps its data center and rack (%s/%s) once it holds data",
                             li.dc, li.rack);
    cql_result_free(peers);
    ctx->host->progress(call, 30, "setting the ring's membership secret");
    if (rc == TROVE_OK)
        rc = cs_role_get(&c, ctx->s.cluster_role, &exists, NULL, NULL);
    if (rc == TROVE_OK)
        rc = cs_role_put(&c, ctx->s.cluster_role, req->secret, true, false, exists);
    bool rename = rc == TROVE_OK && a->name && strcmp(a->name, li.cluster_name);
    if (rename) {
        ctx->host->progress(call, 50, "renaming the ring from \"%s\" to \"%s\"", li.cluster_name, a->name);
        rc = rename_ring(ctx, call, &c, a->name);
    }
    cs_conn_close(&c);
    if (rc != TROVE_OK)
        return rc;
    struct cs_membership m;
    cs_membership_load(ctx, &m);
    snprintf(m.cluster_name, sizeof(m.cluster_name), "%s", a->name ? a->name : li.cluster_name);
    m.seeds[0] = '\0';
    rc = cs_membership_save(ctx, call, &m);
    if (rc != TROVE_OK)
        return rc;
    if (!rename)
        return cs_yaml_write(ctx, call);
    int lock = cs_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 60, "restarting under the new name");
    rc = cs_server_stop(ctx, call);
    if (rc == TROVE_OK)
        rc = cs_server_start(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

/* ---- joining ------------------------------------------------------------------------ */

/* Logs in to the first seed that answers, as the membership role with the secret. */
static int reach_seed(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                      struct cs_conn *c, const struct trove_member **which)
{
    struct cql_error err = {0};
    char last[600] = "no seed given";
    for (size_t i = 0; i < req->n_seeds; i++) {
        const struct trove_member *s = TROVE_AT(struct trove_member, req->seeds, req->seed_size, i);
        struct cs_login login = {.host = s->host, .port = s->port, .user = ctx->s.cluster_role,
                                 .password = req->secret};
        ctx->host->progress(call, 5, "checking the cluster secret at seed %s:%d", s->host, (int)s->port);
        enum cql_status st = cs_conn_open_as(ctx, call, &login, c, &err);
        if (st == CQL_OK) {
            *which = s;
            return TROVE_OK;
        }
        if (st == CQL_ERR_AUTH)
            return ctx->host->fail(call, TROVE_EINVAL, "seed %s refused the cluster secret (as role \"%s\"): nothing "
                                                       "was changed", c->where, ctx->s.cluster_role);
        snprintf(last, sizeof(last), "%.280s: %.300s", c->where, err.message);
    }
    return ctx->host->fail(call, TROVE_EUNAVAIL, "no seed answered (last: %s)", last);
}

/* This node's admin role must log in on the ring it joins (roles are ring-wide). */
static int check_admin_on_ring(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                               const struct trove_member *seed)
{
    struct cs_conn c;
    struct cql_error err;
    struct cs_login admin = {.host = seed->host, .port = seed->port, .user = ctx->s.admin_user,
                             .password = ctx->s.admin_password};
    enum cql_status st = cs_conn_open_as(ctx, call, &admin, &c, &err);
    if (st == CQL_OK)
        return cs_conn_close(&c), TROVE_OK;
    if (st != CQL_ERR_AUTH)
        return cs_fail_cql(ctx, call, c.where, &err, "checking the admin role on the seed", false);
    if (!req->user || !req->password)
        return ctx->host->fail(call, TROVE_ECONFLICT, "the ring refuses this node's admin role \"%s\": roles are "
                                                      "shared by a ring, so give the user and password of a ring "
                                                      "superuser to create it, or configure the same admin_user and "
                                                      "admin_password on every node", ctx->s.admin_user);
    struct cs_login super = {.host = seed->host, .port = seed->port, .user = req->user, .password = req->password};
    bool exists = false;
    if ((st = cs_conn_open_as(ctx, call, &super, &c, &err)) != CQL_OK)
        return cs_fail_cql(ctx, call, c.where, &err, "logging in to the seed as the given user", false);
    int rc = cs_role_get(&c, ctx->s.admin_user, &exists, NULL, NULL);
    if (rc == TROVE_OK && exists)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "the ring has a role \"%s\" with another password; this node's "
                                                    "agent could not log in", ctx->s.admin_user);
    if (rc == TROVE_OK)
        rc = cs_role_put(&c, ctx->s.admin_user, ctx->s.admin_password, true, true, false);
    cs_conn_close(&c);
    return rc;
}

/* A node joins empty: refuse one that holds keyspaces of its own. */
static int check_empty(struct cs_ctx *ctx, struct trove_call *call)
{
    if (cs_marked(ctx, "left"))
        return TROVE_OK;   /* decommissioned: its data lives on in the ring it left */
    struct cs_conn c;
    struct cs_keyspace *ks = NULL;
    size_t n = 0;
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK && cs_server_pid(ctx) <= 0 && !tps_dir_empty(ctx->s.data_dir) &&
        (rc = cs_server_start(ctx, call)) == TROVE_OK)
        rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return tps_dir_empty(ctx->s.data_dir) ? TROVE_OK : rc;
    rc = cs_keyspaces_list(&c, &ks, &n);
    cs_conn_close(&c);
    if (rc == TROVE_OK && n > 0)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this node holds %zu keyspace(s) (%s%s): a node joins a ring "
                                                    "empty, so back them up and delete them first", n, ks[0].name,
                             n > 1 ? ", ..." : "");
    cs_keyspaces_free(ks, n);
    return rc;
}

/* Address -> "UN"/"DN"/... from nodetool status; NULL when unknown. */
static const char *state_of(const char *status, const char *address, char *out)
{
    if (!status)
        return NULL;
    for (const char *line = status; *line;) {
        size_t len = strcspn(line, "\n");
        char state[4], addr[80];
        char copy[256];
        snprintf(copy, sizeof(copy), "%.*s", (int)(len < 255 ? len : 255), line);
        if (sscanf(copy, "%3s %79s", state, addr) == 2 && strlen(state) == 2 && strchr("UD", state[0]) &&
            !strcmp(addr, address)) {
            memcpy(out, state, 3);
            return out;
        }
        line += len + (line[len] ? 1 : 0);
    }
    return NULL;
}

/* Until nodetool status says this node is Up and Normal. */
static int wait_normal(struct cs_ctx *ctx, struct trove_call *call)
{
    char *out = malloc(STATUS_OUT);
    char state[4];
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.start_timeout * 1000;
    int rc = out ? TROVE_ETIMEOUT : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    const char *status[] = {"status", NULL};
    while (rc == TROVE_ETIMEOUT && tps_now_ms() < deadline) {
        if (ctx->host->cancelled(call)) {
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for the node to join");
            break;
        }
        const char *st = cs_nodetool(ctx, call, status, out, STATUS_OUT, 30000) == TROVE_OK
                             ? state_of(out, ctx->s.listen_address, state) : NULL;
        if (st && !strcmp(st, "UN"))
            rc = TROVE_OK;
        else
            tps_sleep_ms(500);
    }
    free(out);
    if (rc == TROVE_ETIMEOUT)
        rc = ctx->host->fail(call, TROVE_ETIMEOUT, "the node did not reach Up/Normal within %lld s",
                             (long long)ctx->s.start_timeout);
    return rc;
}

static int rejoin(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                  const struct join_args *a, const char *ring_name)
{
    struct cs_membership m;
    cs_membership_load(ctx, &m);
    snprintf(m.cluster_name, sizeof(m.cluster_name), "%s", ring_name);
    m.seeds[0] = '\0';
    for (size_t i = 0; i < req->n_seeds; i++) {
        const struct trove_member *s = TROVE_AT(struct trove_member, req->seeds, req->seed_size, i);
        size_t len = strlen(m.seeds);
        snprintf(m.seeds + len, sizeof(m.seeds) - len, "%s%s", len ? "," : "", s->host);
    }
    if (a->dc) {
        snprintf(m.dc, sizeof(m.dc), "%s", a->dc);
        snprintf(m.rack, sizeof(m.rack), "%s", a->rack);
    }
    m.auto_bootstrap = a->auto_bootstrap != 0;
    ctx->host->progress(call, 30, "stopping and emptying this node");
    int rc = cs_server_stop(ctx, call);
    if (rc == TROVE_OK)
        rc = cs_server_wipe(ctx, call);
    if (rc == TROVE_OK)
        rc = cs_membership_save(ctx, call, &m);
    if (rc != TROVE_OK)
        return rc;
    cs_mark(ctx, "left", false);
    ctx->host->progress(call, 50, "starting to join ring \"%s\" through %s", m.cluster_name, m.seeds);
    rc = cs_server_start(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 80, "waiting until this node is Up and Normal");
        rc = wait_normal(ctx, call);
    }
    return rc;
}

/* Whether the seed already counts this node among its peers (a join repeated). */
static int seed_knows_me(struct cs_conn *c, bool *known)
{
    struct cql_result *peers = NULL;
    bool v2;
    *known = false;
    int rc = read_peers(c, &peers, &v2);
    for (size_t r = 0; rc == TROVE_OK && r < peers->rows.nrows; r++) {
        char peer[64];
        inet_text(cql_cell_by_name(peers, r, "peer"), peer, sizeof(peer));
        *known = *known || !strcmp(peer, c->ctx->s.listen_address);
    }
    cql_result_free(peers);
    return rc;
}

static int join(struct cs_ctx *ctx, struct trove_call *call, const struct trove_cluster_request *req,
                const struct join_args *a)
{
    struct cs_conn c;
    struct local_info seed_info;
    const struct trove_member *seed = NULL;
    bool member = false;
    int rc = reach_seed(ctx, call, req, &c, &seed);
    if (rc != TROVE_OK)
        return rc;
    rc = read_local(&c, &seed_info);
    if (rc == TROVE_OK)
        rc = seed_knows_me(&c, &member);
    cs_conn_close(&c);
    if (rc == TROVE_OK && a->name && strcmp(a->name, seed_info.cluster_name))
        rc = ctx->host->fail(call, TROVE_EINVAL, "the seed belongs to ring \"%s\", not \"%s\"", seed_info.cluster_name,
                             a->name);
    if (rc == TROVE_OK && member && !cs_marked(ctx, "left") && cs_conn_open(ctx, call, &c) == TROVE_OK) {
        cs_conn_close(&c);   /* already a member, and running: nothing to do */
        ctx->host->progress(call, 100, "already a member of ring \"%s\"", seed_info.cluster_name);
        return TROVE_OK;
    }
    if (rc == TROVE_OK)
        rc = check_admin_on_ring(ctx, call, req, seed);
    int lock = rc == TROVE_OK ? cs_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        rc = TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = check_empty(ctx, call);
    if (rc == TROVE_OK)
        rc = rejoin(ctx, call, req, a, seed_info.cluster_name);
    tps_file_unlock(lock);
    return rc;
}

int cs_cluster_join(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct cs_ctx *ctx = self;
    struct join_args a;
    int rc = parse_join(ctx, call, req, &a);
    if (rc != TROVE_OK)
        return rc;
    return req->n_seeds ? join(ctx, call, req, &a) : form(ctx, call, req, &a);
}

/* ---- leaving ------------------------------------------------------------------------ */

static int remove_member(struct cs_ctx *ctx, struct trove_call *call, const struct trove_member *member)
{
    char id[40] = "";
    if (member->id) {
        if (strlen(member->id) != 36 || strspn(member->id, "0123456789abcdef-") != 36)
            return ctx->host->fail(call, TROVE_EINVAL, "member id \"%.60s\" is not a host id", member->id);
        snprintf(id, sizeof(id), "%s", member->id);
    } else {
        struct cs_conn c;
        struct cql_result *peers = NULL;
        bool v2;
        int rc = cs_conn_open(ctx, call, &c);
        if (rc == TROVE_OK)
            rc = read_peers(&c, &peers, &v2);
        for (size_t r = 0; rc == TROVE_OK && r < peers->rows.nrows && !id[0]; r++) {
            char peer[64], rpc[64];
            inet_text(cql_cell_by_name(peers, r, "peer"), peer, sizeof(peer));
            inet_text(cql_cell_by_name(peers, r, v2 ? "native_address" : "rpc_address"), rpc, sizeof(rpc));
            if (!strcmp(peer, member->host) || !strcmp(rpc, member->host))
                uuid_text(cql_cell_by_name(peers, r, "host_id"), id, sizeof(id));
        }
        cql_result_free(peers);
        if (c.cql)
            cs_conn_close(&c);
        if (rc != TROVE_OK)
            return rc;
        if (!id[0])
            return ctx->host->fail(call, TROVE_ENOTFOUND, "no member of this ring is at %s", member->host);
    }
    ctx->host->progress(call, 20, "nodetool removenode %s", id);
    const char *args[] = {"removenode", id, NULL};
    return cs_nodetool(ctx, call, args, NULL, 0, 3600u * 1000);
}

int cs_cluster_leave(void *self, struct trove_call *call, const struct trove_cluster_request *req)
{
    struct cs_ctx *ctx = self;
    if (req->member) {
        if (!req->member->host || !strcmp(req->member->host, ctx->rpc_address) ||
            !strcmp(req->member->host, ctx->s.listen_address))
            return ctx->host->fail(call, TROVE_EINVAL, "to take this node out of the ring, leave without a member");
        return remove_member(ctx, call, req->member);
    }
    int lock = cs_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 10, "nodetool decommission: streaming this node's data to the ring");
    const char *args[] = {"decommission", NULL};
    int rc = cs_nodetool(ctx, call, args, NULL, 0, 3600u * 1000);
    if (rc == TROVE_OK) {
        cs_mark(ctx, "left", true);
        ctx->host->progress(call, 90, "stopping the decommissioned node");
        rc = cs_server_stop(ctx, call);
    }
    tps_file_unlock(lock);
    return rc;
}

/* ---- status ------------------------------------------------------------------------- */

static int32_t member_state(const char *s, bool self)
{
    if (!s)
        return self ? TROVE_MEMBER_UP : TROVE_MEMBER_UNKNOWN;
    if (s[0] == 'D')
        return TROVE_MEMBER_DOWN;
    return s[1] == 'J' ? TROVE_MEMBER_JOINING : s[1] == 'L' ? TROVE_MEMBER_LEAVING : TROVE_MEMBER_UP;
}

static int emit(struct cs_ctx *ctx, struct trove_call *call, const char *id, const char *host, int port,
                const char *dc, const char *rack, const char *state, bool self)
{
    char location[170];
    snprintf(location, sizeof(location), "%s/%s", dc, rack);
    struct trove_member m = {.size = sizeof(m), .id = id[0] ? id : NULL, .host = host, .port = port,
                             .state = member_state(state, self), .role = TROVE_ROLE_STANDALONE, .self = self,
                             .location = dc[0] ? location : NULL};
    return ctx->host->emit_member(call, &m);
}

int cs_cluster_status(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    struct local_info li;
    struct cql_result *peers = NULL;
    bool v2 = false;
    char state[4];
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = read_local(&c, &li)) == TROVE_OK)
        rc = read_peers(&c, &peers, &v2);
    cs_conn_close(&c);
    char *status = malloc(STATUS_OUT);
    const char *args[] = {"status", NULL};
    if (status && (rc != TROVE_OK || cs_nodetool(ctx, call, args, status, STATUS_OUT, 30000) != TROVE_OK)) {
        free(status);   /* states stay unknown; the members are still listed */
        status = NULL;
    }
    if (rc == TROVE_OK)
        rc = emit(ctx, call, li.host_id, li.rpc_address[0] ? li.rpc_address : ctx->rpc_address,
                  (int)ctx->s.native_port, li.dc, li.rack, state_of(status, ctx->s.listen_address, state), true);
    for (size_t r = 0; rc == TROVE_OK && r < peers->rows.nrows; r++) {
        char peer[64], rpc[64], id[40], dc[80], rack[80];
        inet_text(cql_cell_by_name(peers, r, "peer"), peer, sizeof(peer));
        inet_text(cql_cell_by_name(peers, r, v2 ? "native_address" : "rpc_address"), rpc, sizeof(rpc));
        uuid_text(cql_cell_by_name(peers, r, "host_id"), id, sizeof(id));
        text_of(peers, r, "data_center", dc, sizeof(dc));
        text_of(peers, r, "rack", rack, sizeof(rack));
        const struct cql_value *np = v2 ? cql_cell_by_name(peers, r, "native_port") : NULL;
        int port = np && np->kind == CQL_VALUE_INT ? (int)np->u.i : (int)ctx->s.native_port;
        rc = emit(ctx, call, id, rpc[0] ? rpc : peer, port, dc, rack, state_of(status, peer, state), false);
    }
    free(status);
    cql_result_free(peers);
    return rc == TROVE_OK ? ctx->host->set_str(call, "cluster_name", li.cluster_name) : rc;
}
