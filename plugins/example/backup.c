/*
 * backup.c - backups are the server's DUMP (its store file, line for line)
 * streamed into the host's sink as it arrives; the metadata records the
 * format and the position. A restore reads the piece back, checks its
 * format, and puts it in place of the store with the server stopped. An
 * ordinary restore starts a new history (term + 1), so positions of the
 * restored server never compare with its source's; a restore for a replica
 * keeps the source's history and leaves the server read-only for
 * repl_attach.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define FORMAT "kvstore-1"
#define RESTORE_MAX (1024u * 1024 * 1024)

struct dump_ctx {
    struct ex_ctx *ctx;
    struct trove_call *call;
    struct trove_sink *sink;
};

/* One row of the dump, encoded again, straight into the sink. */
static int dump_row(void *arg, const struct ex_row *row)
{
    struct dump_ctx *d = arg;
    struct tps_buf b = {0};
    kv_line(&b, (const char *const *)row->col, (size_t)row->n);
    int rc = tps_buf_str(&b) ? d->ctx->host->sink_write(d->sink, b.data, b.len) : TROVE_EINTERNAL;
    tps_buf_free(&b);
    if (rc == TROVE_OK && d->ctx->host->cancelled(d->call))
        rc = d->ctx->host->fail(d->call, TROVE_ECANCELLED, "cancelled while copying the store");
    return rc;
}

int ex_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct ex_ctx *ctx = self;
    if (req->kind != TROVE_BACKUP_FULL)   /* also the answer for a kind from a newer agent */
        return ctx->host->fail(call, TROVE_ENOTSUP, "the example datastore makes full backups only");
    struct dump_ctx d = {ctx, call, req->sink};
    struct ex_conn c;
    struct ex_row ok;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    ctx->host->progress(call, 10, "copying the store");
    rc = ex_conn_cmd(&c, dump_row, &d, &ok, "DUMP", (char *)NULL);
    ex_conn_close(&c);
    if (rc != TROVE_OK)
        return rc;
    const char *seq = ok.n > 2 ? ok.col[1] : "0", *term = ok.n > 2 ? ok.col[2] : "0";
    if ((rc = ctx->host->put(call, "meta", "format", FORMAT)) == TROVE_OK &&
        (rc = ctx->host->put(call, "meta", "seq", seq)) == TROVE_OK)
        rc = ctx->host->put(call, "meta", "term", term);
    ex_row_free(&ok);
    return rc;
}

/* The whole piece, bounded. */
static int read_piece(struct ex_ctx *ctx, struct trove_call *call, const struct trove_restore_piece *pc,
                      struct tps_buf *out)
{
    char chunk[65536];
    size_t got = 0;
    int rc;
    while ((rc = ctx->host->source_read(pc->source, chunk, sizeof(chunk), &got)) == TROVE_OK && got > 0) {
        if (out->len + got > RESTORE_MAX)
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s is larger than %u bytes", pc->id, RESTORE_MAX);
        tps_buf_addn(out, chunk, got);
    }
    if (rc == TROVE_OK && !tps_buf_str(out))
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    return rc;
}

#ifdef EXAMPLE_BROKEN_RESTORE
#define LOSE_LAST_ROW 1   /* a deliberately broken build, for trove-plugin-check's own tests */
#else
#define LOSE_LAST_ROW 0
#endif

/* The store to install: the piece, with a new term unless for a replica. */
static int store_from_piece(struct ex_ctx *ctx, struct trove_call *call, const struct tps_buf *piece, bool for_replica,
                            struct tps_buf *store)
{
    const char *text = tps_buf_str(piece);
    if (!text || strncmp(text, "kvstore 1\n", 10) != 0)
        return ctx->host->fail(call, TROVE_EINVAL, "the backup is not in the %s format", FORMAT);
    size_t rows = 0, seen = 0;
    for (const char *p = text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0))
        rows += !strncmp(p, "kv ", 3);
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        bool row = !strncmp(p, "kv ", 3);
        seen += row;
        if (!for_replica && !strncmp(p, "term ", 5)) {
            tps_buf_addf(store, "term %llu\n", strtoull(p + 5, NULL, 10) + 1);
        } else if (!(LOSE_LAST_ROW && row && seen == rows)) {
            tps_buf_addn(store, p, len);
            tps_buf_add(store, "\n");
        }
        p += len + (p[len] ? 1 : 0);
    }
    return tps_buf_str(store) ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
}

static int install(struct ex_ctx *ctx, struct trove_call *call, const struct tps_buf *store, bool for_replica)
{
    char path[1200];
    const char *replication = for_replica ? "read_only 1\n" : "read_only 0\n";
    int rc = ex_server_stop(ctx, call);
    if (rc == TROVE_OK && !ex_server_initialised(ctx))
        rc = ex_server_init(ctx, call);
    struct { const char *name; const char *text; size_t len; } files[] = {
        {"store", store->data, store->len}, {"replication", replication, strlen(replication)}};
    for (size_t i = 0; rc == TROVE_OK && i < 2; i++) {
        int e = tps_file_write_atomic(ex_data_path(ctx, files[i].name, path, sizeof(path)), files[i].text,
                                      files[i].len, 0600);
        if (e == 0)
            e = tps_file_chown(path, ctx->s.run_as);
        if (e != 0)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    }
    return rc == TROVE_OK ? ex_server_start(ctx, call) : rc;
}

int ex_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct ex_ctx *ctx = self;
    if (req->n_pieces != 1)
        return ctx->host->fail(call, TROVE_EINVAL, "the example datastore restores one full backup, not %zu pieces",
                               req->n_pieces);
    /* Pieces are indexed by their element size, never with []. */
    const struct trove_restore_piece *pc = TROVE_AT(struct trove_restore_piece, req->pieces, req->piece_size, 0);
    if (pc->kind != TROVE_BACKUP_FULL)
        return ctx->host->fail(call, TROVE_ENOTSUP, "backup %s is not a full backup", pc->id);
    struct tps_buf piece = {0}, store = {0};
    ctx->host->progress(call, 10, "reading backup %s", pc->id);
    int rc = read_piece(ctx, call, pc, &piece);
    if (rc == TROVE_OK)
        rc = store_from_piece(ctx, call, &piece, req->for_replica, &store);
    if (rc == TROVE_OK) {
        int lock = ex_server_lock(ctx, call);
        ctx->host->progress(call, 50, "installing backup %s", pc->id);
        rc = lock >= 0 ? install(ctx, call, &store, req->for_replica) : TROVE_EINTERNAL;
        tps_file_unlock(lock);
    }
    tps_buf_free(&piece);
    tps_buf_free(&store);
    return rc;
}
