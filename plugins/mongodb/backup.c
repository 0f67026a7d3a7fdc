/*
 * backup.c - the three kinds of backup, streamed into the host's sink:
 *   full         the data files: {fsync: 1, lock: true} on one connection,
 *                the dbPath as tar without mongod.lock and diagnostic.data
 *                (which mongod writes even while locked), then fsyncUnlock
 *                on the same connection; a kept status connection is checked
 *                before the lock, so heartbeats keep answering meanwhile.
 *   logical      a mongodump archive (archive.c), consistent through the
 *                oplog slice written while it ran.
 *   incremental  the oplog entries after the parent's end optime, as a
 *                stream of BSON documents (mongodump's oplog.bson).
 * The metadata records the format, the set and the end optime; never a
 * secret.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mongodb.h"

static int put_meta(struct mg_ctx *ctx, struct trove_call *call, const char *key, const char *value)
{
    return ctx->host->put(call, "meta", key, value ? value : "");
}

static int put_optime(struct mg_ctx *ctx, struct trove_call *call, const char *key, const struct mg_optime *o)
{
    char text[96];
    mg_optime_format(o, text, sizeof(text));
    return put_meta(ctx, call, key, text);
}

/* buildInfo version, set name and applied optime of the local server. */
struct where {
    char version[64];
    char set[128];
    struct mg_optime optime;
    bool has_optime;
};

static int locate(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct where *w)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    memset(w, 0, sizeof(*w));
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "buildInfo failed");
    snprintf(w->version, sizeof(w->version), "%s", mg_bson_str(&reply, "version") ? mg_bson_str(&reply, "version") : "");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    if (rc != TROVE_OK)
        return rc;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "replSetGetStatus", 1);
    rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetGetStatus failed");
    if (rc == TROVE_OK) {
        snprintf(w->set, sizeof(w->set), "%s", mg_bson_str(&reply, "set") ? mg_bson_str(&reply, "set") : "");
        w->has_optime = mg_optime_from(&reply, "optimes.appliedOpTime", &w->optime);
    }
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

static int common_meta(struct mg_ctx *ctx, struct trove_call *call, const char *format, const struct where *w,
                       const struct mg_optime *end)
{
    char term[32];
    snprintf(term, sizeof(term), "%" PRId64, end->term);
    int rc = put_meta(ctx, call, "format", format);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "engine_version", w->version);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "set_name", w->set);
    if (rc == TROVE_OK)
        rc = put_optime(ctx, call, "optime", end);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "term", term);
    return rc;
}

/* ---- full: the data files under an fsync lock -------------------------- */

static int fsync_command(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, bool lock)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    if (lock) {
        BSON_APPEND_INT32(&cmd, "fsync", 1);
        BSON_APPEND_BOOL(&cmd, "lock", true);
    } else {
        BSON_APPEND_INT32(&cmd, "fsyncUnlock", 1);
    }
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, lock ? "fsync lock failed" : "fsyncUnlock failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* An fsync lock outlives its connection in mongod: a lock left by a backup
 * whose process died (its marker names a dead pid) is released here. */
static void release_stale_lock(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c)
{
    char path[MG_PATH_MAX];
    mg_state_path(ctx, "fsync-lock", path, sizeof(path));
    char *text = tps_file_read(path, 64, NULL);
    if (!text)
        return;
    long pid = strtol(text, NULL, 10);
    free(text);
    if (pid > 0 && tps_proc_alive((pid_t)pid))
        return;
    ctx->host->log(TROVE_LOG_WARN, "mongodb: releasing the fsync lock left by a backup of process %ld", pid);
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_INT32(&cmd, "fsyncUnlock", 1);
    mg_cmd_raw(c, "admin", &cmd, &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    (void)call;
    unlink(path);
}

int mg_backup_files(struct mg_ctx *ctx, struct trove_call *call, struct trove_sink *sink)
{
    static const char *const skip[] = {"mongod.lock", "diagnostic.data", NULL};
    char marker[MG_PATH_MAX], pid[32];
    struct where w;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    release_stale_lock(ctx, call, c);
    mg_status_warm(ctx);
    mg_state_path(ctx, "fsync-lock", marker, sizeof(marker));
    snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    ctx->host->progress(call, 5, "locking writes (fsync lock)");
    if ((rc = fsync_command(ctx, call, c, true)) != TROVE_OK) {
        mongoc_client_destroy(c);
        return rc;
    }
    tps_file_write_atomic(marker, pid, strlen(pid), 0600);
    uint64_t bytes = 0;
    rc = locate(ctx, call, c, &w);
    if (rc == TROVE_OK && !w.has_optime)
        rc = ctx->host->fail(call, TROVE_EDATASTORE, "the server reports no applied optime");
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 10, "copying the data files of %s", ctx->s.dbpath);
        rc = mg_tar_write(ctx, call, ctx->s.dbpath, skip, sink, &bytes);
    }
    /* Unlock on the very connection that locked, whatever happened. */
    int unlock = TROVE_EDATASTORE;
    for (int attempt = 0; attempt < 3 && unlock != TROVE_OK; attempt++)
        unlock = fsync_command(ctx, call, c, false);
    if (unlock == TROVE_OK)
        unlink(marker);
    mongoc_client_destroy(c);
    if (rc == TROVE_OK)
        rc = unlock;
    if (rc == TROVE_OK)
        rc = common_meta(ctx, call, "mongodb-files-1", &w, &w.optime);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 100, "copied %" PRIu64 " bytes of data files", bytes);
        rc = TROVE_OK;
    }
    return rc;
}

/* ---- logical ---------------------------------------------------------- */

static int backup_logical(struct mg_ctx *ctx, struct trove_call *call, struct trove_sink *sink)
{
    struct where w;
    struct mg_optime end;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = locate(ctx, call, c, &w);
    if (rc == TROVE_OK)
        rc = mg_archive_dump(ctx, call, c, sink, &end);
    mongoc_client_destroy(c);
    return rc == TROVE_OK ? common_meta(ctx, call, "mongodb-archive-1", &w, &end) : rc;
}

/* ---- incremental ------------------------------------------------------ */

struct oplog_copy {
    struct mg_ctx *ctx;
    struct trove_call *call;
    struct trove_sink *sink;
    struct mg_optime from, last;
    bool first, matched;
    uint64_t entries;
};

static int copy_entry(struct oplog_copy *o, const bson_t *doc)
{
    bson_t wrap = BSON_INITIALIZER;
    struct mg_optime op;
    BSON_APPEND_DOCUMENT(&wrap, "e", doc);
    bool ok = mg_optime_from(&wrap, "e", &op);
    bson_destroy(&wrap);
    if (!ok)
        return o->ctx->host->fail(o->call, TROVE_EDATASTORE, "an oplog entry has no optime");
    if (o->first) {   /* the parent's last entry must still be there, unchanged */
        o->first = false;
        o->matched = mg_optime_cmp(&op, &o->from) == 0 && op.term == o->from.term;
        return TROVE_OK;
    }
    o->last = op;
    o->entries++;
    int rc = o->ctx->host->sink_write(o->sink, bson_get_data(doc), doc->len);
    if (rc != TROVE_OK)
        return o->ctx->host->fail(o->call, rc, "writing the backup stream failed");
    return o->ctx->host->cancelled(o->call) ? o->ctx->host->fail(o->call, TROVE_ECANCELLED, "cancelled") : TROVE_OK;
}

static int backup_incremental(struct mg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req)
{
    const char *parent = tps_kv_get(req->parent_meta, req->n_parent_meta, "optime");
    const char *parent_set = tps_kv_get(req->parent_meta, req->n_parent_meta, "set_name");
    struct oplog_copy o = {ctx, call, req->sink, {0, 0, 0}, {0, 0, 0}, true, false, 0};
    struct where w;
    if (!parent || !mg_optime_parse(parent, &o.from))
        return ctx->host->fail(call, TROVE_EINVAL, "the parent backup records no end optime");
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = locate(ctx, call, c, &w)) == TROVE_OK && parent_set && strcmp(parent_set, w.set))
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "the parent backup was taken from replica set %s, this server "
                                                    "is in %s now: take a full backup", parent_set, w.set);
    if (rc == TROVE_OK) {
        bson_t filter = BSON_INITIALIZER, ts, opts = BSON_INITIALIZER, sort;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "ts", &ts);
        BSON_APPEND_TIMESTAMP(&ts, "$gte", o.from.secs, o.from.inc);
        bson_append_document_end(&filter, &ts);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "$natural", 1);
        bson_append_document_end(&opts, &sort);
        BSON_APPEND_INT32(&opts, "batchSize", 1000);
        mongoc_collection_t *coll = mongoc_client_get_collection(c, "local", "oplog.rs");
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, mg_any_member());
        const bson_t *doc;
        ctx->host->progress(call, 10, "copying the oplog since %s", parent);
        while (rc == TROVE_OK && mongoc_cursor_next(cur, &doc)) {
            rc = copy_entry(&o, doc);
            if (rc == TROVE_OK && !o.first && !o.matched)
                break;
        }
        bson_error_t error;
        if (rc == TROVE_OK && mongoc_cursor_error(cur, &error))
            rc = mg_fail_error(ctx, call, &error, "reading the oplog failed");
        mongoc_cursor_destroy(cur);
        mongoc_collection_destroy(coll);
        bson_destroy(&filter);
        bson_destroy(&opts);
    }
    mongoc_client_destroy(c);
    if (rc == TROVE_OK && !o.matched)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "the oplog no longer holds the parent's end optime %s (it rolled "
                                                    "over, or this server's history changed): take a full backup",
                             parent);
    if (rc != TROVE_OK)
        return rc;
    struct mg_optime end = o.entries ? o.last : o.from;
    rc = common_meta(ctx, call, "mongodb-oplog-1", &w, &end);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "parent_optime", parent);
    return rc;
}

int mg_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct mg_ctx *ctx = self;
    switch (req->kind) {
    case TROVE_BACKUP_FULL:
        return mg_backup_files(ctx, call, req->sink);
    case TROVE_BACKUP_LOGICAL:
        return backup_logical(ctx, call, req->sink);
    case TROVE_BACKUP_INCREMENTAL:
        return backup_incremental(ctx, call, req);
    default:   /* a kind from a newer agent */
        return ctx->host->fail(call, TROVE_ENOTSUP, "the mongodb plugin does not know backup kind %d", (int)req->kind);
    }
}
