/*
 * stream.c - the compression and checksum pipeline between plugins and
 * backup storage. Plugins only ever see their datastore's native bytes.
 */
#include "stream.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "sink.h"

#define SRC_CHUNK (1 << 20)

/* A backup sink; `base` first, so a struct trove_sink * is one of these. */
struct backup_sink {
    struct trove_sink base;
    struct storage *st;
    struct storage_writer *w;
    ZSTD_CCtx *z;
    EVP_MD_CTX *sha;
    char *out;
    size_t out_cap;
    uint64_t raw, stored;
    const atomic_bool *stop;
    int status;
    char err[512];
};

struct trove_source {
    struct storage *st;
    struct storage_reader *r;
    ZSTD_DCtx *z;
    EVP_MD_CTX *sha;
    char *in;
    ZSTD_inBuffer zin;
    bool file_eof, frame_done;
    char expected[CHECKSUM_TEXT_MAX];
    const atomic_bool *stop;
    int status;
    char err[512];
};

static void hex_digest(EVP_MD_CTX *sha, char out[CHECKSUM_TEXT_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha, md, &len);
    int k = snprintf(out, CHECKSUM_TEXT_MAX, "sha256:");
    for (unsigned int i = 0; i < len && k + 2 < CHECKSUM_TEXT_MAX; i++)
        k += snprintf(out + k, CHECKSUM_TEXT_MAX - (size_t)k, "%02x", md[i]);
}

static EVP_MD_CTX *sha_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    return c;
}

static struct backup_sink *backup_sink(struct trove_sink *sink)
{
    return (struct backup_sink *)(void *)sink;
}

static void sink_free(struct backup_sink *s)
{
    ZSTD_freeCCtx(s->z);
    EVP_MD_CTX_free(s->sha);
    free(s->out);
    free(s);
}

struct trove_sink *stream_sink_open(struct storage *st, const char *id, int level, const atomic_bool *stop,
                                    char *err, size_t errlen)
{
    struct backup_sink *s = calloc(1, sizeof(*s));
    if (!s || !(s->z = ZSTD_createCCtx()) || !(s->sha = sha_new()) ||
        !(s->out = malloc(s->out_cap = ZSTD_CStreamOutSize()))) {
        snprintf(err, errlen, "out of memory");
        if (s)
            sink_free(s);
        return NULL;
    }
    s->base.write = stream_sink_write;
    s->base.error = stream_sink_error;
    s->st = st;
    s->stop = stop;
    ZSTD_CCtx_setParameter(s->z, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(s->z, ZSTD_c_checksumFlag, 1);
    /* One worker thread: the plugin's tool keeps producing while we compress. */
    ZSTD_CCtx_setParameter(s->z, ZSTD_c_nbWorkers, 1);
    if (st->ops->open_write(st, id, &s->w, err, errlen) != TROVE_OK) {
        sink_free(s);
        return NULL;
    }
    return &s->base;
}

static int sink_fail(struct backup_sink *s, int status, const char *what)
{
    if (s->status == TROVE_OK) {
        s->status = status;
        snprintf(s->err, sizeof(s->err), "%s", what);
    }
    return s->status;
}

static int sink_push(struct backup_sink *s, const void *data, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->out, s->out_cap, 0};
        size_t left = ZSTD_compressStream2(s->z, &out, &in, mode);
        if (ZSTD_isError(left))
            return sink_fail(s, TROVE_EINTERNAL, ZSTD_getErrorName(left));
        if (out.pos) {
            char err[256];
            int rc = s->st->ops->write(s->w, s->out, out.pos, err, sizeof(err));
            if (rc != TROVE_OK)
                return sink_fail(s, rc, err);
            EVP_DigestUpdate(s->sha, s->out, out.pos);
            s->stored += out.pos;
        }
        bool done = mode == ZSTD_e_continue ? in.pos == in.size : left == 0;
        if (done)
            return TROVE_OK;
    }
}

int stream_sink_write(struct trove_sink *sink, const void *data, size_t len)
{
    struct backup_sink *s = backup_sink(sink);
    if (!s)
        return TROVE_EINVAL;
    if (s->status != TROVE_OK)
        return s->status;
    if (s->stop && atomic_load(s->stop))
        return sink_fail(s, TROVE_ECANCELLED, "the agent is shutting down");
    s->raw += len;
    return sink_push(s, data, len, ZSTD_e_continue);
}

int stream_sink_finish(struct trove_sink *sink, struct stream_totals *t, char *err, size_t errlen)
{
    struct backup_sink *s = backup_sink(sink);
    int rc = s->status == TROVE_OK ? sink_push(s, NULL, 0, ZSTD_e_end) : s->status;
    if (rc != TROVE_OK) {
        snprintf(err, errlen, "%s", s->err);
        stream_sink_abort(sink);
        return rc;
    }
    rc = s->st->ops->commit(s->w, err, errlen);
    s->w = NULL;
    if (rc == TROVE_OK) {
        t->raw_bytes = s->raw;
        t->stored_bytes = s->stored;
        hex_digest(s->sha, t->checksum);
    }
    sink_free(s);
    return rc;
}

void stream_sink_abort(struct trove_sink *sink)
{
    struct backup_sink *s = backup_sink(sink);
    if (!s)
        return;
    if (s->w)
        s->st->ops->abort(s->w);
    sink_free(s);
}

const char *stream_sink_error(const struct trove_sink *sink)
{
    const struct backup_sink *s = (const struct backup_sink *)(const void *)sink;
    return s && s->err[0] ? s->err : "no error";
}

/* ------------------------------------------------------------- sources */

struct trove_source *stream_source_open(struct storage *st, const char *id, const char *checksum,
                                        const atomic_bool *stop, char *err, size_t errlen)
{
    struct trove_source *s = calloc(1, sizeof(*s));
    if (!s || !(s->z = ZSTD_createDCtx()) || !(s->sha = sha_new()) || !(s->in = malloc(SRC_CHUNK))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->st = st;
    s->stop = stop;
    snprintf(s->expected, sizeof(s->expected), "%s", checksum ? checksum : "");
    s->zin = (ZSTD_inBuffer){s->in, 0, 0};
    if (st->ops->open_read(st, id, &s->r, err, errlen) != TROVE_OK)
        goto fail;
    return s;
fail:
    if (s) {
        ZSTD_freeDCtx(s->z);
        EVP_MD_CTX_free(s->sha);
        free(s->in);
        free(s);
    }
    return NULL;
}

static int source_fail(struct trove_source *s, int status, const char *fmt, const char *arg)
{
    if (s->status == TROVE_OK) {
        s->status = status;
        snprintf(s->err, sizeof(s->err), fmt, arg);
    }
    return s->status;
}

/* Refill the compressed input; at end of file, check the checksum. */
static int source_refill(struct trove_source *s)
{
    size_t got = 0;
    char err[256];
    if (s->st->ops->read(s->r, s->in, SRC_CHUNK, &got, err, sizeof(err)) != TROVE_OK)
        return source_fail(s, TROVE_EINTERNAL, "%s", err);
    if (got == 0) {
        char actual[CHECKSUM_TEXT_MAX];
        s->file_eof = true;
        hex_digest(s->sha, actual);
        if (s->expected[0] && strcmp(actual, s->expected) != 0)
            return source_fail(s, TROVE_ECHECKSUM, "backup piece checksum mismatch: stored bytes hash to %s",
                               actual);
        return TROVE_OK;
    }
    EVP_DigestUpdate(s->sha, s->in, got);
    s->zin = (ZSTD_inBuffer){s->in, got, 0};
    return TROVE_OK;
}

int stream_source_read(struct trove_source *s, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    if (!s)
        return TROVE_EINVAL;
    if (s->status != TROVE_OK)
        return s->status;
    if (s->stop && atomic_load(s->stop))
        return source_fail(s, TROVE_ECANCELLED, "%s", "the agent is shutting down");
    ZSTD_outBuffer out = {buf, cap, 0};
    while (out.pos == 0 && cap > 0) {
        if (s->zin.pos == s->zin.size) {
            if (s->file_eof || source_refill(s) != TROVE_OK)
                break;
            if (s->file_eof)
                break;
        }
        size_t r = ZSTD_decompressStream(s->z, &out, &s->zin);
        if (ZSTD_isError(r))
            return source_fail(s, TROVE_ECHECKSUM, "backup piece is corrupt: %s", ZSTD_getErrorName(r));
        s->frame_done = r == 0;
    }
    if (s->status != TROVE_OK)
        return s->status;
    if (out.pos == 0 && s->file_eof && !s->frame_done)
        return source_fail(s, TROVE_ECHECKSUM, "%s", "backup piece is truncated");
    *got = out.pos;
    return TROVE_OK;
}

void stream_source_close(struct trove_source *s)
{
    if (!s)
        return;
    if (s->r)
        s->st->ops->close_read(s->r);
    ZSTD_freeDCtx(s->z);
    EVP_MD_CTX_free(s->sha);
    free(s->in);
    free(s);
}

const char *stream_source_error(const struct trove_source *s)
{
    return s && s->err[0] ? s->err : "no error";
}

int stream_verify(struct storage *st, const char *id, const char *checksum, char *err, size_t errlen)
{
    struct storage_reader *r = NULL;
    int rc = st->ops->open_read(st, id, &r, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    EVP_MD_CTX *sha = sha_new();
    char *buf = malloc(SRC_CHUNK);
    size_t got = 0;
    if (!sha || !buf) {
        snprintf(err, errlen, "out of memory");
        rc = TROVE_EINTERNAL;
        goto out;
    }
    while ((rc = st->ops->read(r, buf, SRC_CHUNK, &got, err, errlen)) == TROVE_OK && got > 0)
        EVP_DigestUpdate(sha, buf, got);
    if (rc == TROVE_OK) {
        char actual[CHECKSUM_TEXT_MAX];
        hex_digest(sha, actual);
        if (strcmp(actual, checksum) != 0) {
            snprintf(err, errlen, "backup %s failed verification: its record says %s but the stored bytes hash to %s",
                     id, checksum, actual);
            rc = TROVE_ECHECKSUM;
        }
    }
out:
    EVP_MD_CTX_free(sha);
    free(buf);
    st->ops->close_read(r);
    return rc;
}
