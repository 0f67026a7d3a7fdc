/*
 * dispatch.c - a handler per protocol op of the catalogue (common/ops.h,
 * which says which slot it needs, whether it is long and its arguments):
 * it builds the ABI structs from the checked arguments and calls the plugin. Results the host owns (pagination, backup records) are
 * shaped here and in backup.c, the same for every datastore.
 */
#include "dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "abi.h"
#include "args.h"
#include "backup.h"
#include "cluster.h"
#include "config_check.h"
#include "guest_log.h"
#include "log.h"
#include "ops.h"

typedef int (*op_fn)(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar);

#define P(a) ((a)->plugin.vt)
#define SELF(a) ((a)->plugin.self)

/* ------------------------------------------------------------ helpers */

static int cmp_named(const void *x, const void *y)
{
    const struct tv *a = *(const struct tv *const *)x, *b = *(const struct tv *const *)y;
    const char *an = tv_get_str(a, "name"), *bn = tv_get_str(b, "name");
    int c = strcmp(an ? an : "", bn ? bn : "");
    if (c)
        return c;
    const char *ah = tv_get_str(a, "host"), *bh = tv_get_str(b, "host");
    return strcmp(ah ? ah : "", bh ? bh : "");
}

/* Sort a list of {name,...} maps and cut a page after `marker`. */
static int paginate(struct trove_call *call, const struct tv *args, const char *list)
{
    int64_t limit;
    const char *marker;
    int rc;
    if ((rc = arg_int(call, args, "limit", 1, 100000, 0, &limit)) || (rc = arg_str(call, args, "marker", false, &marker)))
        return rc;
    struct tv *arr = tv_child_array(call->result, list);
    if (!arr)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    if (arr->u.a.len > 1)
        qsort(arr->u.a.items, arr->u.a.len, sizeof(struct tv *), cmp_named);
    size_t start = 0;
    if (marker)
        while (start < arr->u.a.len && strcmp(tv_get_str(arr->u.a.items[start], "name"), marker) <= 0)
            start++;
    size_t end = limit > 0 && start + (size_t)limit < arr->u.a.len ? start + (size_t)limit : arr->u.a.len;
    for (size_t i = 0; i < arr->u.a.len; i++)
        if (i < start || i >= end)
            tv_free(arr->u.a.items[i]);
    if (end > start)
        memmove(arr->u.a.items, arr->u.a.items + start, (end - start) * sizeof(struct tv *));
    arr->u.a.len = end - start;
    if (end < arr->u.a.len + start && arr->u.a.len > 0)
        tv_set_str(call->result, "next_marker", tv_get_str(arr->u.a.items[arr->u.a.len - 1], "name"));
    return TROVE_OK;
}

/* ------------------------------------------------------------ handlers */

/* pong, and what the agent offers: the same plugin, ABI, capabilities and
 * features as its hello, so `trove-agent call ping` shows them too. */
static int op_ping(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    struct tv *plugin = tv_map(), *abi = tv_map();
    if (!plugin || !abi || tv_set_str(plugin, "name", P(a)->name) || tv_set_str(plugin, "version", P(a)->version) ||
        tv_set_int(abi, "major", P(a)->abi_major) || tv_set_int(abi, "minor", P(a)->abi_minor)) {
        tv_free(plugin), tv_free(abi);
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    }
    /* tv_set takes ownership even when it fails */
    if (tv_set(call->result, "plugin", plugin) | tv_set(call->result, "abi", abi) |
        tv_set_bool(call->result, "pong", true) | tv_set_str(call->result, "instance", a->instance_id) |
        tv_set(call->result, "capabilities", dispatch_capabilities(a)) |
        tv_set(call->result, "features", dispatch_features(a)))
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    return TROVE_OK;
}

static int op_status(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_health *h = arena_keep(ar, calloc(1, sizeof(*h)));
    (void)args;
    if (!h)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    h->size = sizeof(*h);   /* the plugin writes only within it */
    int rc = P(a)->status(SELF(a), call, h);
    if (rc)
        return rc;
    h->position[sizeof(h->position) - 1] = h->message[sizeof(h->message) - 1] = '\0';
    tv_set_str(call->result, "state", abi_db_state_name(abi_db_state(h->state)));
    tv_set_str(call->result, "role", abi_role_name(abi_role(h->role)));
    tv_set_int(call->result, "term", (int64_t)h->term);
    tv_set_str(call->result, "position", h->position);
    tv_set_str(call->result, "message", h->message);
    return TROVE_OK;
}

static int parse_list_of_maps(struct trove_call *call, const struct tv *args, const char *key, const struct tv **out)
{
    const struct tv *v = tv_get(args, key);
    *out = NULL;
    if (!v || v->type == TV_NIL)
        return TROVE_OK;
    if (v->type != TV_ARRAY)
        return call_fail(call, TROVE_EINVAL, "argument '%s' must be a list of maps", key);
    for (size_t i = 0; i < v->u.a.len; i++)
        if (v->u.a.items[i]->type != TV_MAP)
            return call_fail(call, TROVE_EINVAL, "argument '%s' item %zu must be a map", key, i + 1);
    *out = v;
    return TROVE_OK;
}

static int op_prepare(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_prepare_request req = {.size = sizeof(req), .database_size = sizeof(struct trove_database),
                                        .user_size = sizeof(struct trove_user)};
    struct restore_chain chain = {0};
    const struct tv *dbs, *users;
    const char *backup_id;
    int rc;
    if ((rc = parse_list_of_maps(call, args, "databases", &dbs)) || (rc = parse_list_of_maps(call, args, "users", &users)) ||
        (rc = arg_str(call, args, "root_password", false, &req.root_password)) ||
        (rc = arg_kv(call, args, "overrides", ar, &req.overrides, &req.n_overrides)) ||
        (rc = arg_str(call, args, "backup_id", false, &backup_id)))
        return rc;
    size_t nd = dbs ? dbs->u.a.len : 0, nu = users ? users->u.a.len : 0;
    struct trove_database *d = arena_keep(ar, calloc(nd + 1, sizeof(*d)));
    struct trove_user *u = arena_keep(ar, calloc(nu + 1, sizeof(*u)));
    if (!d || !u)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; i < nd; i++)
        if ((rc = arg_database(call, dbs->u.a.items[i], ar, &d[i])))
            return rc;
    for (size_t i = 0; i < nu; i++)
        if ((rc = arg_user(call, users->u.a.items[i], ar, &u[i], true)))
            return rc;
    req.databases = d, req.n_databases = nd, req.users = u, req.n_users = nu;
    if (req.n_overrides && TROVE_PLUGIN_HAS(P(a), config_schema) && (rc = config_check(a, call, req.overrides, req.n_overrides)))
        return rc;
    if (backup_id) {
        if (!TROVE_PLUGIN_HAS(P(a), backup_restore))
            return call_fail(call, TROVE_ENOTSUP, "the %s plugin cannot restore backups", P(a)->name);
        if ((rc = backup_chain_open(a, call, backup_id, &chain)))
            goto out;
        req.restore = &chain.req;
    }
    rc = P(a)->prepare(SELF(a), call, &req);
out:
    if (backup_id)
        backup_chain_close(&chain);
    return rc;
}

static int op_start(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->start(SELF(a), call);
}

static int op_stop(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->stop(SELF(a), call);
}

static int op_restart(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->restart(SELF(a), call);
}

#define USER_OP(fname, slot, need_pw)                                                                \
    static int fname(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar) \
    {                                                                                                \
        struct trove_user u;                                                                         \
        int rc = arg_user(call, args, ar, &u, need_pw);                                              \
        return rc ? rc : P(a)->slot(SELF(a), call, &u);                                              \
    }
USER_OP(op_user_create, user_create, true)
USER_OP(op_user_delete, user_delete, false)
USER_OP(op_user_password, user_set_password, true)

static int op_user_show(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_user u;
    int rc = arg_user(call, args, ar, &u, false);
    if (rc || (rc = P(a)->user_show(SELF(a), call, &u)))
        return rc;
    struct tv *users = tv_get(call->result, "users");
    if (!users || users->type != TV_ARRAY || users->u.a.len == 0)
        return call_fail(call, TROVE_ENOTFOUND, "user %s does not exist", u.name);
    struct tv *fresh = tv_map();
    if (!fresh || tv_set(fresh, "user", tv_copy(users->u.a.items[0]))) {   /* tv_set frees on failure */
        tv_free(fresh);
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    }
    tv_free(call->result);
    call->result = fresh;
    return TROVE_OK;
}

static int op_user_grant_or_revoke(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar,
                                   bool grant)
{
    struct trove_user u;
    int rc = arg_user(call, args, ar, &u, false);
    if (rc)
        return rc;
    if (!u.n_databases) {
        const char *one;
        if ((rc = arg_str(call, args, "database", false, &one)))
            return rc;
        if (!one)
            return call_fail(call, TROVE_EINVAL, "argument 'databases' is required");
        const char **list = arena_keep(ar, calloc(1, sizeof(char *)));
        if (!list)
            return call_fail(call, TROVE_EINTERNAL, "out of memory");
        list[0] = one;
        u.databases = list, u.n_databases = 1;
    }
    return grant ? P(a)->user_grant(SELF(a), call, &u) : P(a)->user_revoke(SELF(a), call, &u);
}

static int op_user_grant(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    return op_user_grant_or_revoke(a, call, args, ar, true);
}

static int op_user_revoke(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    return op_user_grant_or_revoke(a, call, args, ar, false);
}

static int op_user_access(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_user u;
    int rc = arg_user(call, args, ar, &u, false);
    if (rc || (rc = P(a)->user_access(SELF(a), call, &u)))
        return rc;
    tv_child_array(call->result, "databases");
    return TROVE_OK;
}

static int op_user_list(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    int rc = P(a)->user_list(SELF(a), call);
    return rc ? rc : paginate(call, args, "users");
}

static int op_root_enable(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const char *pw;
    (void)ar;
    int rc = arg_str(call, args, "password", false, &pw);
    return rc ? rc : P(a)->root_enable(SELF(a), call, pw);
}

static int op_root_disable(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->root_disable(SELF(a), call);
}

static int op_root_show(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->root_show(SELF(a), call);
}

static int op_database_create(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_database d;
    int rc = arg_database(call, args, ar, &d);
    return rc ? rc : P(a)->database_create(SELF(a), call, &d);
}

static int op_database_delete(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_database d;
    int rc = arg_database(call, args, ar, &d);
    return rc ? rc : P(a)->database_delete(SELF(a), call, &d);
}

static int op_database_alter(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_database d;
    int rc = arg_database(call, args, ar, &d);
    if (rc)
        return rc;
    if (!d.n_options && !d.character_set && !d.collation && !d.owner)
        return call_fail(call, TROVE_EINVAL, "database.alter needs something to change: 'options', "
                         "'character_set', 'collation' or 'owner'");
    return P(a)->database_alter(SELF(a), call, &d);
}

static int op_database_list(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    int rc = P(a)->database_list(SELF(a), call);
    return rc ? rc : paginate(call, args, "databases");
}

static int op_config_schema(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    int rc = P(a)->config_schema(SELF(a), call);
    if (rc == TROVE_OK)
        tv_child_array(call->result, "parameters");
    return rc;
}

static int config_values(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar,
                         const struct trove_kv **kv, size_t *n)
{
    const struct tv *v = tv_get(args, "values");
    if (!v || v->type != TV_MAP)
        return call_fail(call, TROVE_EINVAL, "argument 'values' must be a map of parameter names to values");
    int rc = arg_kv(call, args, "values", ar, kv, n);
    return rc ? rc : config_check(a, call, *kv, *n);
}

static int op_config_validate(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const struct trove_kv *kv;
    size_t n;
    int rc = config_values(a, call, args, ar, &kv, &n);
    if (rc == TROVE_OK)
        tv_set_bool(call->result, "valid", true);
    return rc;
}

static int op_config_apply(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const struct trove_kv *kv;
    size_t n;
    int rc = config_values(a, call, args, ar, &kv, &n);
    if (rc || (rc = P(a)->config_apply(SELF(a), call, kv, n)))
        return rc;
    tv_child_array(call->result, "applied");
    tv_child_array(call->result, "pending_restart");
    return TROVE_OK;
}

static int op_config_reset(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    int rc = P(a)->config_reset(SELF(a), call);
    if (rc == TROVE_OK) {
        tv_child_array(call->result, "applied");
        tv_child_array(call->result, "pending_restart");
    }
    return rc;
}

static int op_config_show(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const char *const *names;
    size_t n;
    int rc = arg_strings(call, args, "names", false, ar, &names, &n);
    if (rc || (rc = P(a)->config_show(SELF(a), call, names, n)))
        return rc;
    tv_child_map(call->result, "values");
    return TROVE_OK;
}

static int op_backup_create(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_create(a, call, args, false);
}

static int op_backup_list(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_list(a, call, args);
}

static int op_backup_show(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_show(a, call, args);
}

static int op_backup_delete(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_delete(a, call, args);
}

static int op_backup_restore(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_restore(a, call, args);
}

/* The result keeps the plugin's "meta" (start position) beside the record. */
static int op_repl_snapshot(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return backup_op_create(a, call, args, true);
}

static int op_repl_attach(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_replication_source src;
    struct restore_chain chain = {0};
    const char *snapshot;
    int rc;
    if ((rc = arg_source(call, args, "source", ar, &src)) || (rc = arg_str(call, args, "snapshot", false, &snapshot)) ||
        (rc = arg_str(call, args, "cluster_secret", false, &src.secret)))
        return rc;
    if (snapshot) {
        if (!TROVE_PLUGIN_HAS(P(a), backup_restore))
            return call_fail(call, TROVE_ENOTSUP, "the %s plugin cannot restore a snapshot", P(a)->name);
        if ((rc = backup_chain_open(a, call, snapshot, &chain)))
            goto out;
        if (call->on_progress)
            call->on_progress(call->progress_ctx, 10, "restoring the snapshot");
        chain.req.for_replica = true;
        if ((rc = P(a)->backup_restore(SELF(a), call, &chain.req)))
            goto out;
        /* The snapshot's metadata (start position) goes to attach unless given explicitly. */
        const struct tv *meta = tv_get(chain.records[chain.n - 1], "meta");
        if (!src.n_meta && meta && meta->type == TV_MAP &&
            (rc = tv_to_kv(call, "snapshot metadata", meta, ar, &src.meta, &src.n_meta)))
            goto out;
    }
    rc = P(a)->repl_attach(SELF(a), call, &src);
out:
    if (snapshot)
        backup_chain_close(&chain);
    return rc;
}

static int op_repl_detach(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->repl_detach(SELF(a), call);
}

static int op_repl_promote(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->repl_promote(SELF(a), call);
}

static int op_repl_demote(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    struct trove_replication_source src;
    int rc = arg_source(call, args, "source", ar, &src);
    if (rc == TROVE_OK)
        rc = arg_str(call, args, "cluster_secret", false, &src.secret);
    return rc ? rc : P(a)->repl_demote(SELF(a), call, &src);
}

static int op_repl_read_only(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    bool ro = true;
    (void)ar;
    int rc = arg_bool(call, args, "read_only", true, &ro);
    return rc ? rc : P(a)->repl_set_read_only(SELF(a), call, ro);
}

static int op_repl_position(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->repl_position(SELF(a), call);
}

static int op_repl_wait(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const char *pos;
    int64_t timeout;
    (void)ar;
    int rc;
    if ((rc = arg_str(call, args, "position", true, &pos)) ||
        (rc = arg_int(call, args, "timeout_ms", 0, 24 * 3600 * 1000, 30000, &timeout)))
        return rc;
    return P(a)->repl_wait(SELF(a), call, pos, (uint32_t)timeout);
}

static int op_repl_status(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    return P(a)->repl_status(SELF(a), call);
}

static int op_repl_compare(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    const char *x, *y;
    enum trove_order order = TROVE_ORDER_EQUAL;
    (void)ar;
    int rc;
    if ((rc = arg_str(call, args, "a", true, &x)) || (rc = arg_str(call, args, "b", true, &y)))
        return rc;
    if ((rc = P(a)->repl_compare(SELF(a), x, y, &order)))
        return call_fail(call, rc, "positions \"%s\" and \"%s\" cannot be compared", x, y);
    tv_set_str(call->result, "order", abi_order_name(abi_order((int)order)));
    return TROVE_OK;
}

static int op_repl_credentials(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    int rc = P(a)->repl_credentials(SELF(a), call);
    if (rc == TROVE_OK && (!tv_get_str(call->result, "user") || !tv_get_str(call->result, "password")))
        return call_fail(call, TROVE_EINTERNAL, "the %s plugin gave no replication user and password",
                         P(a)->name);
    return rc;
}

static int op_cluster_join(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    return cluster_op_change(a, call, args, ar, true);
}

static int op_cluster_leave(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    return cluster_op_change(a, call, args, ar, false);
}

static int op_cluster_status(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)args, (void)ar;
    int rc = P(a)->cluster_status(SELF(a), call);
    if (rc == TROVE_OK)
        tv_child_array(call->result, "members");
    return rc;
}

static int op_log_list(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return guest_log_op_list(a, call, args);
}

static int op_log_tail(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return guest_log_op_tail(a, call, args);
}

static int op_log_fetch(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar)
{
    (void)ar;
    return guest_log_op_fetch(a, call, args);
}

/* ------------------------------------------------------------ the table */

/* The catalogue (common/ops.h) names each op's slot, kind and arguments;
 * here each op gets its handler, op_<ident>. */
#define HANDLER_ROW(ident, name, slot, kind, args) [OPS_##ident] = op_##ident,
static const op_fn handlers[OPS_AGENT_COUNT] = {TROVE_AGENT_OPS(HANDLER_ROW)};
#undef HANDLER_ROW

/* Availability beyond the op's own slot. */
static bool slots_available(const struct trove_plugin *vt, const struct ops_def *op)
{
    switch (ops_id_of(op)) {
    case OPS_config_apply:
        return ops_plugin_has(vt, op) && TROVE_PLUGIN_HAS(vt, config_schema);
    case OPS_backup_list:
    case OPS_backup_show:
    case OPS_backup_delete:
        return TROVE_PLUGIN_HAS(vt, backup_create) || TROVE_PLUGIN_HAS(vt, repl_snapshot);
    case OPS_log_tail:
    case OPS_log_fetch:   /* reading a log means naming one first */
        return ops_plugin_has(vt, op) && TROVE_PLUGIN_HAS(vt, guest_log_list);
    default:
        return ops_plugin_has(vt, op);
    }
}

const struct ops_def *dispatch_find(const char *name)
{
    const struct ops_def *op = ops_find(name);
    return op && op->scope == OPS_SCOPE_AGENT ? op : NULL;
}

bool dispatch_is_long(const struct ops_def *op) { return op->is_long; }
const char *dispatch_name(const struct ops_def *op) { return op->name; }

bool dispatch_available(const struct agent *a, const struct ops_def *op)
{
    return slots_available(a->plugin.vt, op);
}

struct tv *dispatch_capabilities(const struct agent *a)
{
    struct tv *arr = tv_array();
    for (size_t i = 0; arr && i < OPS_AGENT_COUNT; i++)
        if (slots_available(a->plugin.vt, &ops_catalogue[i]))
            tv_append(arr, tv_str(ops_catalogue[i].name));
    return arr;
}

struct tv *dispatch_features(const struct agent *a)
{
    static const struct { uint64_t bit; const char *name; } names[] = {
        {TROVE_FEATURE_BACKUP_INCREMENTAL, "backup.incremental"},
        {TROVE_FEATURE_BACKUP_LOGICAL, "backup.logical"},
        {TROVE_FEATURE_USER_HOST, "user.host"},
        {TROVE_FEATURE_DATABASE_CREATE, "database.create"},
    };
    struct tv *arr = tv_array();
    for (size_t i = 0; arr && i < sizeof(names) / sizeof(names[0]); i++)
        if (a->plugin.vt->features & names[i].bit)
            tv_append(arr, tv_str(names[i].name));
    return arr;
}

/* Long operations exclude each other across agent processes (the daemon
 * and `trove-agent call`): an exclusive, non-blocking flock on a file in the
 * state directory, held for the whole operation. Returns the fd, or -1
 * after fail(). */
static int long_op_lock(struct agent *a, struct trove_call *call, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/long-operation.lock", a->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        call_fail(call, TROVE_EINTERNAL, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        call_fail(call, TROVE_ECONFLICT, "%s: another agent process on this instance is running a long "
                  "operation", name);
        close(fd);
        return -1;
    }
    return fd;
}

int dispatch_run(struct agent *a, const char *name, const struct tv *args, struct trove_call *call)
{
    const struct ops_def *op = dispatch_find(name);
    struct arena ar = {0};
    struct tv *empty = NULL;
    char why[256];
    int rc, lock = -1;
    if (!op)
        return call_fail(call, TROVE_ENOTFOUND, "unknown operation \"%s\"", name);
    if (!slots_available(a->plugin.vt, op))
        return call_fail(call, TROVE_ENOTSUP, "%s is not supported by the %s plugin", name, a->plugin.vt->name);
    if (!args) {
        if (!(empty = tv_map()))
            return call_fail(call, TROVE_EINTERNAL, "out of memory");
        args = empty;
    }
    if (ops_check_args(op, args, why, sizeof(why)) != 0)
        rc = call_fail(call, TROVE_EINVAL, "%s", why);
    else if (op->is_long && (lock = long_op_lock(a, call, name)) < 0)
        rc = call->status;
    else
        rc = abi_status(handlers[ops_id_of(op)](a, call, args, &ar));   /* a newer plugin's unknown status: datastore_error */
    if (rc != TROVE_OK && !call->message[0])
        call_fail(call, rc, "%s failed", name);
    if (lock >= 0)
        close(lock);
    arena_free(&ar);
    tv_free(empty);
    return rc;
}
