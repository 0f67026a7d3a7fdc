/*
 * restore.c - bring a backup chain back. The host has verified every
 * piece's checksum before this runs. Everything is first rebuilt in a new
 * directory beside the dbPath, on a side instance (a standalone mongod on a
 * private port, logged in as __system): the data files extracted, or the
 * archive loaded; the incrementals' oplog entries replayed with applyOps;
 * for an ordinary restore the old replica set state (local) dropped and the
 * plugin's admin account set to this instance's password. Only then is the
 * live server stopped and the directories swapped; it starts again, as a
 * new one-member set (ordinary) or as a copy of its source waiting to be
 * added to the source's set (for a replica). A stream that turns out bad
 * fails before the live server is touched; a failure after the swap puts
 * the old directory back.
 */
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mongodb.h"

#define FORMAT_FILES "mongodb-files-1"
#define FORMAT_ARCHIVE "mongodb-archive-1"
#define FORMAT_OPLOG "mongodb-oplog-1"

static const struct trove_restore_piece *piece_at(const struct trove_restore_request *req, size_t i)
{
    return TROVE_AT(struct trove_restore_piece, req->pieces, req->piece_size, i);
}

static const char *meta(const struct trove_restore_piece *p, const char *key)
{
    return tps_kv_get(p->meta, p->n_meta, key);
}

/* The chain: a full or logical backup, then incrementals that continue it. */
static int check_chain(struct mg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    if (req->n_pieces == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "nothing to restore");
    const struct trove_restore_piece *base = piece_at(req, 0);
    const char *format = meta(base, "format");
    if (base->kind == TROVE_BACKUP_INCREMENTAL || !format ||
        (strcmp(format, FORMAT_FILES) && strcmp(format, FORMAT_ARCHIVE)))
        return ctx->host->fail(call, TROVE_EINVAL, "backup %s is not a full or logical backup of this plugin",
                               base->id);
    if (req->for_replica && (req->n_pieces != 1 || strcmp(format, FORMAT_FILES)))
        return ctx->host->fail(call, TROVE_EINVAL, "a replica starts from one full backup of its source, not %s",
                               base->id);
    for (size_t i = 1; i < req->n_pieces; i++) {
        const struct trove_restore_piece *p = piece_at(req, i), *prev = piece_at(req, i - 1);
        const char *from = meta(p, "parent_optime"), *end = meta(prev, "optime");
        if (p->kind != TROVE_BACKUP_INCREMENTAL || !meta(p, "format") || strcmp(meta(p, "format"), FORMAT_OPLOG))
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s is not an incremental backup of this plugin", p->id);
        if (!from || !end || strcmp(from, end))
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s does not continue backup %s (it starts at %s, "
                                                       "that one ends at %s)", p->id, prev->id, from ? from : "?",
                                   end ? end : "?");
    }
    return TROVE_OK;
}

/* "<dbpath>.restore-<pid>-<what>": tps_remove_stale() finds those of dead agents. */
static void side_dir(struct mg_ctx *ctx, const char *what, char *out, size_t len)
{
    tps_path(out, len, "%s.restore-%ld-%s", ctx->s.dbpath, (long)getpid(), what);
}

/* A restore killed between its two renames left the data only in its
 * "-old" directory: put it back before anything else. */
static void recover_moved_data(struct mg_ctx *ctx)
{
    char pattern[MG_PATH_MAX];
    glob_t g;
    if (access(ctx->s.dbpath, F_OK) == 0)
        return;
    tps_path(pattern, sizeof(pattern), "%s.restore-*-old", ctx->s.dbpath);
    if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0 && rename(g.gl_pathv[0], ctx->s.dbpath) == 0)
        ctx->host->log(TROVE_LOG_WARN, "mongodb: put back %s, left by an interrupted restore", g.gl_pathv[0]);
    globfree(&g);
}

static void remove_stale(struct mg_ctx *ctx)
{
    recover_moved_data(ctx);
    char copy[MG_PATH_MAX], prefix[MG_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", ctx->s.dbpath);
    char *dir = dirname(copy);
    snprintf(prefix, sizeof(prefix), "%s", ctx->s.dbpath + strlen(dir) + (strcmp(dir, "/") ? 1 : 0));
    size_t n = strlen(prefix);
    snprintf(prefix + n, sizeof(prefix) - n, ".restore-");
    tps_remove_stale(dir, prefix);
}

/* Build the restored data set in `staging` on a side instance. */
static int rebuild(struct mg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req,
                   const char *staging)
{
    const struct trove_restore_piece *base = piece_at(req, 0);
    bool files = !strcmp(meta(base, "format"), FORMAT_FILES);
    int rc = TROVE_OK;
    if (mkdir(staging, 0700) != 0 || tps_file_chown(staging, ctx->s.run_as) != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot create %s: %s", staging, strerror(errno));
    if (files) {
        ctx->host->progress(call, 10, "extracting the data files of backup %s", base->id);
        rc = mg_tar_extract(ctx, call, base->source, staging, base->id);
    }
    struct mg_side side;
    if (rc != TROVE_OK || (rc = mg_side_start(ctx, call, staging, &side)) != TROVE_OK)
        return rc;
    if (!files) {
        ctx->host->progress(call, 20, "loading the archive of backup %s", base->id);
        rc = mg_archive_load(ctx, call, side.client, base->source, base->id);
    }
    for (size_t i = 1; rc == TROVE_OK && i < req->n_pieces; i++) {
        const struct trove_restore_piece *p = piece_at(req, i);
        ctx->host->progress(call, 50, "replaying the oplog of backup %s", p->id);
        rc = mg_oplog_replay(ctx, call, side.client, p->source, p->id);
    }
    if (rc == TROVE_OK && !req->for_replica) {
        bson_t cmd = BSON_INITIALIZER, reply;
        BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
        rc = mg_cmd(ctx, call, side.client, "local", &cmd, &reply, "dropping the backup's replica set state failed");
        bson_destroy(&cmd);
        bson_destroy(&reply);
        if (rc == TROVE_OK)
            rc = mg_admin_ensure(ctx, call, side.client);
    }
    int stop = mg_side_stop(ctx, call, &side);
    return rc == TROVE_OK ? stop : rc;
}

static int set_state(struct mg_ctx *ctx, struct trove_call *call, const char *set)
{
    struct mg_state st;
    int rc = mg_state_load(ctx, call, &st);
    if (rc == TROVE_OK) {
        snprintf(st.set, sizeof(st.set), "%s", set);
        rc = mg_state_save(ctx, call, &st);
        mg_state_free(&st);
    }
    return rc;
}

/* Start the swapped-in data: as a new one-member set, or (for a replica)
 * under its source's set name, waiting for the source to add it. */
static int bring_up(struct mg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req,
                    const char *own_set)
{
    const char *set = req->for_replica ? meta(piece_at(req, 0), "set_name") : own_set;
    if (!set || !*set)
        return ctx->host->fail(call, TROVE_EINVAL, "backup %s records no replica set name", piece_at(req, 0)->id);
    int rc = set_state(ctx, call, set);
    if (rc == TROVE_OK)
        rc = mg_server_start(ctx, call);
    if (rc == TROVE_OK && !req->for_replica) {
        mongoc_client_t *c;
        if ((rc = mg_admin_open(ctx, call, &c)) == TROVE_OK) {
            rc = mg_replset_initiate(ctx, call, c, set);
            mongoc_client_destroy(c);
        }
    }
    return rc;
}

/* Stop the server, swap the directories, start; undo on failure. */
static int swap_in(struct mg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req,
                   const char *staging)
{
    char old[MG_PATH_MAX];
    struct mg_state st;
    side_dir(ctx, "old", old, sizeof(old));
    int rc = mg_state_load(ctx, call, &st);
    if (rc != TROVE_OK)
        return rc;
    char own_set[sizeof(st.set)];
    snprintf(own_set, sizeof(own_set), "%s", st.set);
    mg_state_free(&st);
    ctx->host->progress(call, 70, "stopping mongod to put the restored data in place");
    if ((rc = mg_server_stop(ctx, call)) != TROVE_OK)
        return rc;
    bool had_data = access(ctx->s.dbpath, F_OK) == 0;
    if (had_data && rename(ctx->s.dbpath, old) != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot move %s aside: %s", ctx->s.dbpath, strerror(errno));
    if (rename(staging, ctx->s.dbpath) != 0) {
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot move the restored data to %s: %s", ctx->s.dbpath,
                             strerror(errno));
        if (had_data)
            rename(old, ctx->s.dbpath);
        mg_server_start(ctx, call);
        return rc;
    }
    ctx->host->progress(call, 80, "starting mongod on the restored data");
    rc = bring_up(ctx, call, req, own_set);
    if (rc == TROVE_OK) {
        if (had_data)
            tps_remove_tree(old);
        return rc;
    }
    /* Put the old data back; the failure above is what the caller hears. */
    ctx->host->log(TROVE_LOG_WARN, "mongodb: restore failed after the swap; putting the previous data back");
    mg_server_stop(ctx, call);
    tps_remove_tree(staging);
    if (rename(ctx->s.dbpath, staging) == 0 && had_data && rename(old, ctx->s.dbpath) == 0) {
        tps_remove_tree(staging);
        set_state(ctx, call, own_set);
        mg_server_start(ctx, call);
    }
    return rc;
}

int mg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct mg_ctx *ctx = self;
    char staging[MG_PATH_MAX];
    int rc = check_chain(ctx, call, req);
    if (rc != TROVE_OK)
        return rc;
    remove_stale(ctx);
    side_dir(ctx, "data", staging, sizeof(staging));
    rc = rebuild(ctx, call, req, staging);
    if (rc == TROVE_OK) {
        int lock = mg_server_lock(ctx, call);
        rc = lock >= 0 ? swap_in(ctx, call, req, staging) : TROVE_EINTERNAL;
        if (lock >= 0)
            tps_file_unlock(lock);
    }
    if (access(staging, F_OK) == 0)
        tps_remove_tree(staging);
    if (rc == TROVE_OK)
        ctx->host->progress(call, 100, "restored");
    return rc;
}
