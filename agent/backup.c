/*
 * backup.c - backup.create/list/show/delete/restore and the snapshot half of
 * replication: records, chains, verification. Bytes flow through stream.c.
 */
#include "backup.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "storage.h"
#include "storage_object.h"
#include "stream.h"

#define MAX_CHAIN 64

/* Where this call's backups live: the storage its request granted
 * (storage_object.h), or the agent's own. */
static struct storage *store(struct agent *a, const struct trove_call *call)
{
    return call->storage ? call->storage : a->storage;
}

static int check_id(struct trove_call *call, const char *id)
{
    if (!agent_name_ok(id))
        return call_fail(call, TROVE_EINVAL, "backup id \"%s\" is invalid: use 1-64 letters, digits, '-', '_', '.', not starting with '-' or '.'",
                         id);
    return TROVE_OK;
}

static void new_id(char out[33])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memset(r, 0, sizeof(r));
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static void iso_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *kind_name(enum trove_backup_kind k)
{
    return k == TROVE_BACKUP_INCREMENTAL ? "incremental" : k == TROVE_BACKUP_LOGICAL ? "logical" : "full";
}

static int kind_parse(const char *s, enum trove_backup_kind *k)
{
    if (!s || !strcmp(s, "full"))
        *k = TROVE_BACKUP_FULL;
    else if (!strcmp(s, "incremental"))
        *k = TROVE_BACKUP_INCREMENTAL;
    else if (!strcmp(s, "logical"))
        *k = TROVE_BACKUP_LOGICAL;
    else
        return -1;
    return 0;
}

static int record_load(struct agent *a, struct trove_call *call, const char *id, struct tv **out)
{
    char err[512], *json = NULL;
    *out = NULL;
    int rc = store(a, call)->ops->get_record(store(a, call), id, &json, err, sizeof(err));
    if (rc == TROVE_ENOTFOUND)
        return call_fail(call, rc, "backup %s does not exist", id);
    if (rc != TROVE_OK)
        return call_fail(call, rc, "%s", err);
    rc = json_to_tv(json, out, err, sizeof(err));
    free(json);
    if (rc != 0 || (*out)->type != TV_MAP) {
        tv_free(*out);
        *out = NULL;
        return call_fail(call, TROVE_EINTERNAL, "backup record %s is unreadable: %s", id, err);
    }
    return TROVE_OK;
}

static int record_store(struct agent *a, struct trove_call *call, const char *id, const struct tv *rec)
{
    char err[512];
    char *json = tv_to_json(rec, true);
    if (!json)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    int rc = store(a, call)->ops->put_record(store(a, call), id, json, err, sizeof(err));
    free(json);
    return rc == TROVE_OK ? rc : call_fail(call, rc, "cannot save backup record %s: %s", id, err);
}

static struct tv *record_new(struct agent *a, const char *id, const char *parent, enum trove_backup_kind kind)
{
    char now[32];
    struct tv *r = tv_map();
    iso_now(now);
    if (!r || tv_set_str(r, "id", id) || tv_set(r, "parent", parent ? tv_str(parent) : tv_nil()) ||
        tv_set_str(r, "kind", kind_name(kind)) || tv_set_str(r, "state", "running") ||
        tv_set_str(r, "instance", a->instance_id) || tv_set_str(r, "datastore", a->plugin.vt->name) ||
        tv_set_str(r, "plugin_version", a->plugin.vt->version) || tv_set_str(r, "created_at", now) ||
        tv_set_int(r, "pid", getpid())) {
        tv_free(r);
        return NULL;
    }
    return r;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Records are stored in clear: a plugin that puts a secret into the
 * metadata fails the backup instead of leaking it (trove_plugin.h, SECRETS). */
static int meta_check(struct agent *a, struct trove_call *call)
{
    const struct tv *meta = tv_get(call->result, "meta");
    for (size_t i = 0; meta && meta->type == TV_MAP && i < meta->u.m.len; i++) {
        const char *key = meta->u.m.items[i].key;
        if (ends_with(key, "password") || ends_with(key, "secret"))
            return call_fail(call, TROVE_EINTERNAL, "the %s plugin put \"%s\" into the backup metadata, which is "
                             "stored in clear; secrets never go there", a->plugin.vt->name, key);
    }
    return TROVE_OK;
}

/* Move the plugin's "meta" map from the call result into the record. */
static int record_finish(struct tv *rec, struct trove_call *call, const struct stream_totals *t)
{
    char now[32];
    struct tv *meta = tv_get(call->result, "meta");
    iso_now(now);
    return tv_set(rec, "meta", meta ? tv_copy(meta) : tv_map()) || tv_set_str(rec, "state", "complete") ||
           tv_set_int(rec, "size", (int64_t)t->raw_bytes) || tv_set_int(rec, "stored_size", (int64_t)t->stored_bytes) ||
           tv_set_str(rec, "checksum", t->checksum) || tv_set_str(rec, "completed_at", now);
}

static void progress_line(struct trove_call *call, int pct, const char *msg)
{
    if (call->on_progress)
        call->on_progress(call->progress_ctx, pct, msg);
}

struct create_plan {
    const char *id;
    const char *parent;
    enum trove_backup_kind kind;
    struct tv *parent_rec;
    struct trove_backup_request req;
    struct arena ar;
};

static int plan_create(struct agent *a, struct trove_call *call, const struct tv *args, bool snapshot,
                       struct create_plan *p, char idbuf[33])
{
    const char *kind = NULL;
    int rc;
    if ((rc = arg_str(call, args, "backup_id", false, &p->id)) || (rc = arg_str(call, args, "kind", false, &kind)) ||
        (rc = arg_str(call, args, "parent", false, &p->parent)) ||
        (rc = arg_kv(call, args, "options", &p->ar, &p->req.options, &p->req.n_options)))
        return rc;
    if (kind_parse(kind, &p->kind) != 0)
        return call_fail(call, TROVE_EINVAL, "argument 'kind' must be full, incremental or logical, not \"%s\"", kind);
    if (snapshot)
        p->kind = TROVE_BACKUP_FULL;
    uint64_t need = p->kind == TROVE_BACKUP_INCREMENTAL ? TROVE_FEATURE_BACKUP_INCREMENTAL
                    : p->kind == TROVE_BACKUP_LOGICAL  ? TROVE_FEATURE_BACKUP_LOGICAL : 0;
    if (need && !(a->plugin.vt->features & need))
        return call_fail(call, TROVE_ENOTSUP, "the %s plugin does not support %s backups", a->plugin.vt->name,
                         kind_name(p->kind));
    if (!p->id) {
        new_id(idbuf);
        p->id = idbuf;
    }
    if ((rc = check_id(call, p->id)))
        return rc;
    if (p->kind == TROVE_BACKUP_INCREMENTAL) {
        if (!p->parent)
            return call_fail(call, TROVE_EINVAL, "an incremental backup needs argument 'parent'");
        if ((rc = check_id(call, p->parent)) || (rc = record_load(a, call, p->parent, &p->parent_rec)))
            return rc;
        const char *state = tv_get_str(p->parent_rec, "state");
        const char *pkind = tv_get_str(p->parent_rec, "kind");
        if (!state || strcmp(state, "complete") != 0)
            return call_fail(call, TROVE_ECONFLICT, "parent backup %s is not complete (state %s)", p->parent,
                             state ? state : "unknown");
        if (pkind && !strcmp(pkind, "logical"))
            return call_fail(call, TROVE_EINVAL, "an incremental backup cannot follow logical backup %s", p->parent);
        const struct tv *meta = tv_get(p->parent_rec, "meta");
        if (meta && meta->type == TV_MAP &&
            (rc = tv_to_kv(call, "parent metadata", meta, &p->ar, &p->req.parent_meta, &p->req.n_parent_meta)))
            return rc;
    } else if (p->parent) {
        return call_fail(call, TROVE_EINVAL, "only incremental backups take a 'parent'");
    }
    char err[256], *existing = NULL;
    if (store(a, call)->ops->get_record(store(a, call), p->id, &existing, err, sizeof(err)) == TROVE_OK) {
        free(existing);
        return call_fail(call, TROVE_EEXIST, "backup %s already exists", p->id);
    }
    p->req.size = sizeof(p->req);
    p->req.id = p->id;
    p->req.kind = p->kind;
    return TROVE_OK;
}

static int op_create_in(struct agent *a, struct trove_call *call, const struct tv *args, bool snapshot)
{
    struct create_plan p = {0};
    struct tv *rec = NULL;
    struct trove_sink *sink = NULL;
    struct stream_totals totals = {0};
    char idbuf[33], err[512];
    int rc = plan_create(a, call, args, snapshot, &p, idbuf);
    if (rc)
        goto out;
    if (!(rec = record_new(a, p.id, p.parent, p.kind))) {
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    if ((rc = record_store(a, call, p.id, rec)))
        goto out;
    sink = stream_sink_open(store(a, call), p.id, a->compression_level, &a->stopping, err, sizeof(err));
    if (!sink) {
        rc = call_fail(call, TROVE_EINTERNAL, "cannot open backup %s for writing: %s", p.id, err);
        goto failed;
    }
    p.req.sink = sink;
    progress_line(call, 0, snapshot ? "replication snapshot started" : "backup started");
    log_info("%s %s (%s) started", snapshot ? "snapshot" : "backup", p.id, kind_name(p.kind));
    rc = snapshot ? a->plugin.vt->repl_snapshot(a->plugin.self, call, &p.req)
                  : a->plugin.vt->backup_create(a->plugin.self, call, &p.req);
    if (rc == TROVE_OK && atomic_load(&a->stopping))
        rc = call_fail(call, TROVE_ECANCELLED, "the agent is shutting down");
    if (rc == TROVE_OK)
        rc = meta_check(a, call);
    if (rc != TROVE_OK) {
        stream_sink_abort(sink);
        goto failed;
    }
    rc = stream_sink_finish(sink, &totals, err, sizeof(err));
    if (rc != TROVE_OK) {
        call_fail(call, rc, "backup %s could not be stored: %s", p.id, err);
        goto failed;
    }
    if (record_finish(rec, call, &totals)) {
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
        goto failed;
    }
    if ((rc = record_store(a, call, p.id, rec)))
        goto failed_removed;
    log_info("backup %s complete: %llu bytes, %llu stored, %s", p.id, (unsigned long long)totals.raw_bytes,
             (unsigned long long)totals.stored_bytes, totals.checksum);
    progress_line(call, 100, "backup complete");
    tv_set(call->result, "backup", tv_copy(rec));
    goto out;
failed_removed:
    store(a, call)->ops->remove(store(a, call), p.id, err, sizeof(err));
failed:
    /* Keep the record, marked failed, so the failure is visible; no piece remains. */
    tv_set_str(rec, "state", "failed");
    tv_set_str(rec, "error", call_message(call, rc));
    {
        struct trove_call tmp;
        if (call_init(&tmp, NULL, NULL, NULL) == 0) {
            tmp.storage = call->storage;
            record_store(a, &tmp, p.id, rec);
            call_release(&tmp);
        }
    }
    log_warn("backup %s failed: %s", p.id, call_message(call, rc));
out:
    tv_free(rec);
    tv_free(p.parent_rec);
    arena_free(&p.ar);
    return rc;
}

static int load_all(struct agent *a, struct trove_call *call, struct tv **out)
{
    char **ids = NULL, err[512];
    size_t n = 0;
    int rc = store(a, call)->ops->list(store(a, call), &ids, &n, err, sizeof(err));
    if (rc != TROVE_OK)
        return call_fail(call, rc, "%s", err);
    struct tv *list = tv_array();
    for (size_t i = 0; i < n; i++) {
        struct tv *rec = NULL;
        struct trove_call tmp;
        if (list && agent_name_ok(ids[i]) && call_init(&tmp, NULL, NULL, NULL) == 0) {
            tmp.storage = call->storage;
            if (record_load(a, &tmp, ids[i], &rec) == TROVE_OK)
                tv_append(list, rec);
            call_release(&tmp);
        }
        free(ids[i]);
    }
    free(ids);
    if (!list)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    *out = list;
    return TROVE_OK;
}

static int op_list_in(struct agent *a, struct trove_call *call, const struct tv *args)
{
    struct tv *list = NULL;
    (void)args;
    int rc = load_all(a, call, &list);
    if (rc == TROVE_OK && tv_set(call->result, "backups", list))
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
    return rc;
}

static int op_show_in(struct agent *a, struct trove_call *call, const struct tv *args)
{
    const char *id;
    struct tv *rec = NULL;
    int rc;
    if ((rc = arg_str(call, args, "backup_id", true, &id)) || (rc = check_id(call, id)) ||
        (rc = record_load(a, call, id, &rec)))
        return rc;
    tv_set(call->result, "backup", rec);
    return TROVE_OK;
}

static int op_delete_in(struct agent *a, struct trove_call *call, const struct tv *args)
{
    const char *id;
    struct tv *rec = NULL, *all = NULL;
    char err[512];
    int rc;
    if ((rc = arg_str(call, args, "backup_id", true, &id)) || (rc = check_id(call, id)) ||
        (rc = record_load(a, call, id, &rec)) || (rc = load_all(a, call, &all)))
        goto out;
    for (size_t i = 0; i < all->u.a.len; i++) {
        const char *parent = tv_get_str(all->u.a.items[i], "parent");
        if (parent && !strcmp(parent, id)) {
            rc = call_fail(call, TROVE_ECONFLICT, "backup %s is the parent of %s; delete that first", id,
                           tv_get_str(all->u.a.items[i], "id"));
            goto out;
        }
    }
    const char *state = tv_get_str(rec, "state");
    const char *owner = tv_get_str(rec, "instance");
    if (state && !strcmp(state, "running") && owner && !strcmp(owner, a->instance_id) &&
        kill((pid_t)tv_get_int(rec, "pid", 0), 0) == 0) {
        rc = call_fail(call, TROVE_ECONFLICT, "backup %s is still running", id);
        goto out;
    }
    rc = store(a, call)->ops->remove(store(a, call), id, err, sizeof(err));
    if (rc != TROVE_OK)
        call_fail(call, rc, "%s", err);
out:
    tv_free(rec);
    tv_free(all);
    return rc;
}

void backup_chain_close(struct restore_chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->pieces && c->pieces[i].source)
            stream_source_close(c->pieces[i].source);
        if (c->records)
            tv_free(c->records[i]);
    }
    free(c->pieces);
    free(c->records);
    arena_free(&c->ar);
    memset(c, 0, sizeof(*c));
}

/* Walk parents from `id` back to the full backup; records[0] is the full one. */
static int chain_collect(struct agent *a, struct trove_call *call, const char *id, struct restore_chain *c)
{
    struct tv *stack[MAX_CHAIN];
    size_t n = 0;
    int rc = TROVE_OK;
    const char *cur = id;
    while (cur) {
        if (n == MAX_CHAIN) {
            rc = call_fail(call, TROVE_EINVAL, "backup chain of %s is longer than %d pieces", id, MAX_CHAIN);
            break;
        }
        if ((rc = check_id(call, cur)) || (rc = record_load(a, call, cur, &stack[n])))
            break;
        const char *state = tv_get_str(stack[n], "state");
        if (!state || strcmp(state, "complete") != 0) {
            rc = call_fail(call, TROVE_ECONFLICT, "backup %s is not complete (state %s); it cannot be restored", cur,
                           state ? state : "unknown");
            n++;
            break;
        }
        cur = tv_get_str(stack[n], "parent");
        n++;
    }
    c->records = calloc(n ? n : 1, sizeof(*c->records));
    c->pieces = calloc(n ? n : 1, sizeof(*c->pieces));
    if (!c->records || !c->pieces) {
        for (size_t i = 0; i < n; i++)
            tv_free(stack[i]);
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        c->records[i] = stack[n - 1 - i];
    c->n = n;
    return rc;
}

int backup_chain_open(struct agent *a, struct trove_call *call, const char *id, struct restore_chain *c)
{
    char err[512];
    int rc;
    memset(c, 0, sizeof(*c));
    if ((rc = chain_collect(a, call, id, c)))
        return rc;
    /* Verify every piece before anything is handed to the plugin. */
    for (size_t i = 0; i < c->n; i++) {
        const char *pid = tv_get_str(c->records[i], "id");
        const char *sum = tv_get_str(c->records[i], "checksum");
        progress_line(call, -1, "verifying backup checksums");
        if (!sum)
            return call_fail(call, TROVE_ECHECKSUM, "backup %s has no checksum", pid);
        if ((rc = stream_verify(store(a, call), pid, sum, err, sizeof(err))))
            return call_fail(call, rc, "%s", err);
    }
    for (size_t i = 0; i < c->n; i++) {
        struct trove_restore_piece *p = &c->pieces[i];
        const struct tv *meta = tv_get(c->records[i], "meta");
        p->size = sizeof(*p);
        p->id = tv_get_str(c->records[i], "id");
        enum trove_backup_kind kind = TROVE_BACKUP_FULL;
        kind_parse(tv_get_str(c->records[i], "kind"), &kind);
        p->kind = kind;
        if (meta && meta->type == TV_MAP && (rc = tv_to_kv(call, "backup metadata", meta, &c->ar, &p->meta, &p->n_meta)))
            return rc;
        p->source = stream_source_open(store(a, call), p->id, tv_get_str(c->records[i], "checksum"), &a->stopping, err,
                                       sizeof(err));
        if (!p->source)
            return call_fail(call, TROVE_EINTERNAL, "cannot open backup %s: %s", p->id, err);
    }
    c->req.size = sizeof(c->req);
    c->req.pieces = c->pieces;
    c->req.n_pieces = c->n;
    c->req.piece_size = sizeof(*c->pieces);
    return TROVE_OK;
}

static int op_restore_in(struct agent *a, struct trove_call *call, const struct tv *args)
{
    const char *id;
    struct restore_chain chain;
    int rc = arg_str(call, args, "backup_id", true, &id);
    if (rc)
        return rc;
    rc = backup_chain_open(a, call, id, &chain);
    if (rc == TROVE_OK) {
        progress_line(call, 5, "checksums verified; restoring");
        rc = a->plugin.vt->backup_restore(a->plugin.self, call, &chain.req);
    }
    if (rc == TROVE_OK) {
        for (size_t i = 0; i < chain.n; i++)
            tv_append(tv_child_array(call->result, "restored"), tv_str(chain.pieces[i].id));
        progress_line(call, 100, "restore complete");
    }
    backup_chain_close(&chain);
    return rc;
}

void backup_recover_interrupted(struct agent *a)
{
    struct trove_call call;
    struct tv *all = NULL;
    char err[256];
    if (call_init(&call, NULL, NULL, NULL) != 0)
        return;
    if (load_all(a, &call, &all) == TROVE_OK) {
        for (size_t i = 0; i < all->u.a.len; i++) {
            struct tv *rec = all->u.a.items[i];
            const char *state = tv_get_str(rec, "state"), *owner = tv_get_str(rec, "instance");
            const char *id = tv_get_str(rec, "id");
            pid_t pid = (pid_t)tv_get_int(rec, "pid", 0);
            if (!state || strcmp(state, "running") || !owner || strcmp(owner, a->instance_id) || !id)
                continue;
            if (pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM))
                continue;   /* its writer is alive (a `call` beside the daemon) */
            char piece[128];
            snprintf(piece, sizeof(piece), "%s", id);
            a->storage->ops->remove(a->storage, piece, err, sizeof(err));
            tv_set_str(rec, "state", "failed");
            tv_set_str(rec, "error", "interrupted: the agent stopped before the backup completed");
            record_store(a, &call, piece, rec);
            log_warn("backup %s was interrupted by an agent stop; marked failed", piece);
        }
    }
    tv_free(all);
    call_release(&call);
}

/* ------------------------------------------------ the request's storage */

/* Each backup operation works on the storage its request granted, when it
 * carries a "storage" argument (signed URLs), or else on the agent's own. */
int backup_op_create(struct agent *a, struct trove_call *call, const struct tv *args, bool snapshot)
{
    int rc = storage_scope_attach(call, args);
    if (rc == TROVE_OK)
        rc = op_create_in(a, call, args, snapshot);
    storage_scope_detach(call);
    return rc;
}

typedef int (*backup_op_fn)(struct agent *a, struct trove_call *call, const struct tv *args);

static int with_storage(struct agent *a, struct trove_call *call, const struct tv *args, backup_op_fn op)
{
    int rc = storage_scope_attach(call, args);
    if (rc == TROVE_OK)
        rc = op(a, call, args);
    storage_scope_detach(call);
    return rc;
}

int backup_op_list(struct agent *a, struct trove_call *call, const struct tv *args)
{
    return with_storage(a, call, args, op_list_in);
}

int backup_op_show(struct agent *a, struct trove_call *call, const struct tv *args)
{
    return with_storage(a, call, args, op_show_in);
}

int backup_op_delete(struct agent *a, struct trove_call *call, const struct tv *args)
{
    return with_storage(a, call, args, op_delete_in);
}

int backup_op_restore(struct agent *a, struct trove_call *call, const struct tv *args)
{
    return with_storage(a, call, args, op_restore_in);
}
