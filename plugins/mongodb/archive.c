/*
 * archive.c - logical backups in the archive format of mongodump
 * (mongo-tools common/archive/spec.md), so a stock mongorestore --archive
 * --oplogReplay reads them: the magic number, a header, one metadata
 * document per namespace (options and indexes as canonical Extended JSON),
 * a terminator, then each collection's documents in a segment closed by an
 * EOF header carrying the CRC-64 (ECMA, as Go's hash/crc64) of its
 * documents. Users are the documents of admin.system.users; the namespace
 * "" / "oplog" holds the oplog entries written while the dump ran, replayed
 * with applyOps on restore to make the copy consistent. Also here: reading
 * BSON from a host source, and replaying oplog streams (incrementals).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mongodb.h"

#define MAGIC UINT32_C(0x8199e26d)
#define TERMINATOR UINT32_C(0xffffffff)
#define DOC_MAX (16u * 1024 * 1024 + 16 * 1024)
#define BATCH_DOCS 1000
#define BATCH_BYTES (8u * 1024 * 1024)
#define MAX_NAMESPACES 100000

/* ---- CRC-64 (ECMA-182 polynomial, reflected, as Go's crc64.ECMA) ------- */

static uint64_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ UINT64_C(0xC96C5795D7870F42) : c >> 1;
        crc_table[i] = c;
    }
}

static uint64_t crc64(uint64_t crc, const uint8_t *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n--)
        crc = crc_table[(uint8_t)crc ^ *p++] ^ (crc >> 8);
    return ~crc;
}

/* ---- reading BSON from a source --------------------------------------- */

int mg_source_read_full(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, void *buf,
                        size_t len, bool *eof, const char *piece)
{
    size_t have = 0;
    *eof = false;
    while (have < len) {
        size_t got = 0;
        int rc = ctx->host->source_read(source, (char *)buf + have, len - have, &got);
        if (rc != TROVE_OK)
            return ctx->host->fail(call, rc, "reading backup %s failed", piece);
        if (got == 0) {
            if (have == 0) {
                *eof = true;
                return TROVE_OK;
            }
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s ends in the middle of a record", piece);
        }
        have += got;
    }
    return TROVE_OK;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One document, or a terminator (*term) where `allow_term`. */
static int read_block(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, uint8_t **doc,
                      uint32_t *len, bool *eof, bool *term, const char *piece)
{
    uint8_t head[4];
    *doc = NULL;
    if (term)
        *term = false;
    int rc = mg_source_read_full(ctx, call, source, head, 4, eof, piece);
    if (rc != TROVE_OK || *eof)
        return rc;
    uint32_t n = le32(head);
    if (n == TERMINATOR && term) {
        *term = true;
        return TROVE_OK;
    }
    if (n < 5 || n > DOC_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "backup %s holds a record of %u bytes: it is damaged", piece, n);
    uint8_t *buf = malloc(n);
    if (!buf)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    memcpy(buf, head, 4);
    bool early = false;
    rc = mg_source_read_full(ctx, call, source, buf + 4, n - 4, &early, piece);
    if (rc == TROVE_OK && early)
        rc = ctx->host->fail(call, TROVE_EINVAL, "backup %s ends in the middle of a record", piece);
    bson_t b;
    size_t offset;
    if (rc == TROVE_OK && (!bson_init_static(&b, buf, n) || !bson_validate(&b, BSON_VALIDATE_NONE, &offset)))
        rc = ctx->host->fail(call, TROVE_EINVAL, "backup %s holds a malformed BSON document", piece);
    if (rc != TROVE_OK) {
        free(buf);
        return rc;
    }
    *doc = buf;
    *len = n;
    return TROVE_OK;
}

int mg_source_read_doc(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, uint8_t **doc,
                       uint32_t *len, bool *eof, const char *piece)
{
    return read_block(ctx, call, source, doc, len, eof, NULL, piece);
}

/* ---- applyOps --------------------------------------------------------- */

int mg_apply_ops(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const bson_t *ops)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_ARRAY(&cmd, "applyOps", ops);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replaying the oplog (applyOps) failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* Entries that change user data: not no-ops, nothing in local or config. */
static bool replayable(const bson_t *entry)
{
    const char *op = mg_bson_str(entry, "op"), *ns = mg_bson_str(entry, "ns");
    if (!op || !ns || !strcmp(op, "n"))
        return false;
    return strncmp(ns, "local.", 6) && strncmp(ns, "config.", 7);
}

struct ops_batch {
    bson_t ops;
    uint32_t n;
    size_t bytes;
};

static int ops_flush(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct ops_batch *b)
{
    int rc = b->n ? mg_apply_ops(ctx, call, c, &b->ops) : TROVE_OK;
    bson_reinit(&b->ops);
    b->n = 0, b->bytes = 0;
    return rc;
}

static int ops_add(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct ops_batch *b,
                   const bson_t *entry)
{
    if (!replayable(entry))
        return TROVE_OK;
    if (b->n && (b->n >= BATCH_DOCS || b->bytes + entry->len > BATCH_BYTES)) {
        int rc = ops_flush(ctx, call, c, b);
        if (rc != TROVE_OK)
            return rc;
    }
    char key[16];
    const char *k;
    bson_uint32_to_string(b->n++, &k, key, sizeof(key));
    BSON_APPEND_DOCUMENT(&b->ops, k, entry);
    b->bytes += entry->len;
    return TROVE_OK;
}

int mg_oplog_replay(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_source *source,
                    const char *piece)
{
    struct ops_batch b = {.n = 0};
    bson_init(&b.ops);
    int rc = TROVE_OK;
    for (;;) {
        uint8_t *doc;
        uint32_t len;
        bool eof;
        if ((rc = mg_source_read_doc(ctx, call, source, &doc, &len, &eof, piece)) != TROVE_OK || eof)
            break;
        bson_t entry;
        bson_init_static(&entry, doc, len);
        if (!mg_bson_str(&entry, "op") || !mg_bson_str(&entry, "ns"))
            rc = ctx->host->fail(call, TROVE_EINVAL, "backup %s holds a record that is not an oplog entry", piece);
        else
            rc = ops_add(ctx, call, c, &b, &entry);
        free(doc);
        if (rc != TROVE_OK)
            break;
    }
    if (rc == TROVE_OK)
        rc = ops_flush(ctx, call, c, &b);
    bson_destroy(&b.ops);
    return rc;
}

/* ---- writing an archive ----------------------------------------------- */

struct out {
    struct mg_ctx *ctx;
    struct trove_call *call;
    struct trove_sink *sink;
    struct tps_buf buf;
};

static int out_flush(struct out *o)
{
    if (!tps_buf_str(&o->buf))
        return o->ctx->host->fail(o->call, TROVE_EINTERNAL, "out of memory");
    int rc = o->buf.len ? o->ctx->host->sink_write(o->sink, o->buf.data, o->buf.len) : TROVE_OK;
    o->buf.len = 0;
    if (o->buf.data)
        o->buf.data[0] = '\0';
    if (rc != TROVE_OK)
        return o->ctx->host->fail(o->call, rc, "writing the backup stream failed");
    if (o->ctx->host->cancelled(o->call))
        return o->ctx->host->fail(o->call, TROVE_ECANCELLED, "cancelled while writing the archive");
    return TROVE_OK;
}

static int out_put(struct out *o, const void *data, size_t len)
{
    tps_buf_addn(&o->buf, data, len);
    if (!tps_buf_str(&o->buf) || o->buf.len >= (1u << 20))
        return out_flush(o);
    return TROVE_OK;
}

static int out_doc(struct out *o, const bson_t *doc)
{
    return out_put(o, bson_get_data(doc), doc->len);
}

static int out_u32(struct out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return out_put(o, b, 4);
}

/* One namespace to dump: its prelude metadata. */
struct ns {
    char *db, *coll;
    char *metadata;     /* canonical Extended JSON, or NULL (the oplog) */
    int64_t size;
};

struct ns_list {
    struct ns *v;
    size_t n, cap;
};

static void ns_free(struct ns_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].db);
        free(l->v[i].coll);
        bson_free(l->v[i].metadata);
    }
    free(l->v);
}

static int ns_add(struct mg_ctx *ctx, struct trove_call *call, struct ns_list *l, const char *db, const char *coll,
                  char *metadata, int64_t size)
{
    if (l->n == l->cap) {
        struct ns *bigger = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 32) * sizeof(*bigger));
        if (!bigger) {
            bson_free(metadata);
            return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        }
        l->v = bigger;
    }
    struct ns *n = &l->v[l->n++];
    n->db = strdup(db);
    n->coll = strdup(coll);
    n->metadata = metadata;
    n->size = size;
    return n->db && n->coll ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
}

/* Every document of a cursor reply's firstBatch and later batches. */
typedef int (*each_fn)(void *arg, const bson_t *doc);

static int each_doc(struct mg_ctx *ctx, struct trove_call *call, mongoc_cursor_t *cursor, each_fn fn, void *arg,
                    const char *what)
{
    const bson_t *doc;
    int rc = TROVE_OK;
    while (rc == TROVE_OK && mongoc_cursor_next(cursor, &doc))
        rc = fn(arg, doc);
    bson_error_t error;
    if (rc == TROVE_OK && mongoc_cursor_error(cursor, &error))
        rc = mg_fail_error(ctx, call, &error, what);
    mongoc_cursor_destroy(cursor);
    return rc;
}

static int collect_indexes(void *arg, const bson_t *doc)
{
    bson_t *arr = arg;
    char key[16];
    const char *k;
    bson_uint32_to_string(bson_count_keys(arr), &k, key, sizeof(key));
    return BSON_APPEND_DOCUMENT(arr, k, doc) ? TROVE_OK : TROVE_EINTERNAL;
}

static void uuid_hex(const bson_t *entry, char *out)
{
    bson_iter_t it, sub;
    out[0] = '\0';
    if (bson_iter_init(&it, entry) && bson_iter_find_descendant(&it, "info.uuid", &sub) &&
        BSON_ITER_HOLDS_BINARY(&sub)) {
        const uint8_t *data;
        uint32_t len;
        bson_subtype_t st;
        bson_iter_binary(&sub, &st, &len, &data);
        for (uint32_t i = 0; i < len && i < 16; i++)
            sprintf(out + 2 * i, "%02x", data[i]);
    }
}

/* mongodump's metadata.json of one collection. */
static int collection_metadata(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *db,
                               const bson_t *entry, char **json)
{
    const char *name = mg_bson_str(entry, "name");
    bson_t meta = BSON_INITIALIZER, options, indexes;
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    char uuid[33];
    BSON_APPEND_DOCUMENT_BEGIN(&meta, "options", &options);
    if (bson_iter_init_find(&it, entry, "options") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_t opt;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&opt, data, len))
            bson_concat(&options, &opt);
    }
    bson_append_document_end(&meta, &options);
    BSON_APPEND_ARRAY_BEGIN(&meta, "indexes", &indexes);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, name);
    int rc = each_doc(ctx, call, mongoc_collection_find_indexes_with_opts(coll, NULL), collect_indexes, &indexes,
                      "listIndexes failed");
    mongoc_collection_destroy(coll);
    bson_append_array_end(&meta, &indexes);
    uuid_hex(entry, uuid);
    BSON_APPEND_UTF8(&meta, "uuid", uuid);
    BSON_APPEND_UTF8(&meta, "collectionName", name);
    BSON_APPEND_UTF8(&meta, "type", "collection");
    *json = rc == TROVE_OK ? bson_as_canonical_extended_json(&meta, NULL) : NULL;
    bson_destroy(&meta);
    if (rc == TROVE_OK && !*json)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    return rc;
}

/* Collections worth dumping: user collections, and admin.system.users. */
static bool dumped(const char *db, const char *name)
{
    if (!strncmp(name, "system.", 7))
        return !strcmp(db, "admin") && !strcmp(name, "system.users");
    return true;
}

struct listing {
    struct mg_ctx *ctx;
    struct trove_call *call;
    mongoc_client_t *c;
    const char *db;
    struct ns_list *list;
};

static int add_collection(void *arg, const bson_t *entry)
{
    struct listing *l = arg;
    const char *name = mg_bson_str(entry, "name"), *type = mg_bson_str(entry, "type");
    if (!name || (type && strcmp(type, "collection")) || !dumped(l->db, name))
        return TROVE_OK;
    char *json = NULL;
    int rc = collection_metadata(l->ctx, l->call, l->c, l->db, entry, &json);
    return rc == TROVE_OK ? ns_add(l->ctx, l->call, l->list, l->db, name, json, 0) : rc;
}

static int list_namespaces(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct ns_list *list)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "listDatabases", 1);
    BSON_APPEND_BOOL(&cmd, "nameOnly", true);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "listDatabases failed");
    bson_destroy(&cmd);
    bson_iter_t it, dbs;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &reply, "databases") && bson_iter_recurse(&it, &dbs)) {
        while (rc == TROVE_OK && bson_iter_next(&dbs)) {
            bson_iter_t name;
            if (!bson_iter_recurse(&dbs, &name) || !bson_iter_find(&name, "name") || !BSON_ITER_HOLDS_UTF8(&name))
                continue;
            const char *db = bson_iter_utf8(&name, NULL);
            if (!strcmp(db, "local") || !strcmp(db, "config"))
                continue;
            struct listing l = {ctx, call, c, db, list};
            mongoc_database_t *d = mongoc_client_get_database(c, db);
            rc = each_doc(ctx, call, mongoc_database_find_collections_with_opts(d, NULL), add_collection, &l,
                          "listCollections failed");
            mongoc_database_destroy(d);
        }
    }
    bson_destroy(&reply);
    return rc;
}

/* The newest oplog entry's optime; false (and *o zero) without an oplog. */
static int last_optime(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct mg_optime *o,
                       bool *found)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "$natural", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "local", "oplog.rs");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, mg_any_member());
    const bson_t *doc;
    *found = false;
    memset(o, 0, sizeof(*o));
    if (mongoc_cursor_next(cur, &doc)) {
        bson_t wrap = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&wrap, "e", doc);
        *found = mg_optime_from(&wrap, "e", o);
        bson_destroy(&wrap);
    }
    bson_error_t error;
    int rc = TROVE_OK;
    if (mongoc_cursor_error(cur, &error) && mg_server_code(&error) != 26)
        rc = mg_fail_error(ctx, call, &error, "reading the oplog failed");
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static int write_prelude(struct out *o, const struct ns_list *list, const char *server_version)
{
    bson_t header = BSON_INITIALIZER;
    BSON_APPEND_INT32(&header, "concurrent_collections", 1);
    BSON_APPEND_UTF8(&header, "version", "0.1");
    BSON_APPEND_UTF8(&header, "server_version", server_version);
    BSON_APPEND_UTF8(&header, "tool_version", "trove-mongodb-plugin " MG_VERSION);
    int rc = out_u32(o, MAGIC);
    if (rc == TROVE_OK)
        rc = out_doc(o, &header);
    bson_destroy(&header);
    for (size_t i = 0; rc == TROVE_OK && i < list->n; i++) {
        bson_t m = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&m, "db", list->v[i].db);
        BSON_APPEND_UTF8(&m, "collection", list->v[i].coll);
        BSON_APPEND_UTF8(&m, "metadata", list->v[i].metadata ? list->v[i].metadata : "");
        BSON_APPEND_INT32(&m, "size", (int32_t)list->v[i].size);
        BSON_APPEND_UTF8(&m, "type", list->v[i].metadata ? "collection" : "");
        rc = out_doc(o, &m);
        bson_destroy(&m);
    }
    return rc == TROVE_OK ? out_u32(o, TERMINATOR) : rc;
}

static int ns_header(struct out *o, const char *db, const char *coll, bool eof, uint64_t crc)
{
    bson_t h = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&h, "db", db);
    BSON_APPEND_UTF8(&h, "collection", coll);
    BSON_APPEND_BOOL(&h, "EOF", eof);
    BSON_APPEND_INT64(&h, "CRC", (int64_t)crc);
    int rc = out_doc(o, &h);
    bson_destroy(&h);
    return rc;
}

struct segment {
    struct out *o;
    const char *db, *coll;
    uint64_t crc, docs;
};

static int segment_doc(void *arg, const bson_t *doc)
{
    struct segment *s = arg;
    int rc = TROVE_OK;
    if (s->docs++ == 0)
        rc = ns_header(s->o, s->db, s->coll, false, 0);
    s->crc = crc64(s->crc, bson_get_data(doc), doc->len);
    return rc == TROVE_OK ? out_doc(s->o, doc) : rc;
}

static int segment_end(struct segment *s)
{
    int rc = s->docs ? out_u32(s->o, TERMINATOR) : TROVE_OK;
    if (rc == TROVE_OK)
        rc = ns_header(s->o, s->db, s->coll, true, s->crc);
    return rc == TROVE_OK ? out_u32(s->o, TERMINATOR) : rc;
}

static int dump_collection(struct out *o, mongoc_client_t *c, const struct ns *n)
{
    struct segment s = {o, n->db, n->coll, 0, 0};
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_INT32(&opts, "batchSize", 1000);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, n->db, n->coll);
    int rc = each_doc(o->ctx, o->call, mongoc_collection_find_with_opts(coll, &filter, &opts, mg_any_member()),
                      segment_doc, &s, "reading a collection failed");
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc == TROVE_OK ? segment_end(&s) : rc;
}

static int dump_oplog(struct out *o, mongoc_client_t *c, const struct mg_optime *from, const struct mg_optime *to)
{
    struct segment s = {o, "", "oplog", 0, 0};
    bson_t filter = BSON_INITIALIZER, ts, opts = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "ts", &ts);
    BSON_APPEND_TIMESTAMP(&ts, "$gt", from->secs, from->inc);
    BSON_APPEND_TIMESTAMP(&ts, "$lte", to->secs, to->inc);
    bson_append_document_end(&filter, &ts);
    BSON_APPEND_INT32(&opts, "batchSize", 1000);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "local", "oplog.rs");
    int rc = each_doc(o->ctx, o->call, mongoc_collection_find_with_opts(coll, &filter, &opts, mg_any_member()),
                      segment_doc, &s, "reading the oplog failed");
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc == TROVE_OK ? segment_end(&s) : rc;
}

int mg_archive_dump(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_sink *sink,
                    struct mg_optime *end)
{
    struct out o = {ctx, call, sink, {0}};
    struct ns_list list = {0};
    struct mg_optime start;
    bool has_oplog = false, has_end = false;
    bson_t cmd = BSON_INITIALIZER, info;
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &info, "buildInfo failed");
    bson_destroy(&cmd);
    const char *version = mg_bson_str(&info, "version");
    if (rc == TROVE_OK)
        rc = last_optime(ctx, call, c, &start, &has_oplog);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 10, "listing collections");
        rc = list_namespaces(ctx, call, c, &list);
    }
    if (rc == TROVE_OK && has_oplog)
        rc = ns_add(ctx, call, &list, "", "oplog", NULL, 0);
    if (rc == TROVE_OK)
        rc = write_prelude(&o, &list, version ? version : "");
    for (size_t i = 0; rc == TROVE_OK && i < list.n; i++) {
        if (!list.v[i].metadata)
            continue;
        ctx->host->progress(call, 10 + (int)(80 * i / (list.n ? list.n : 1)), "dumping %s.%s", list.v[i].db,
                            list.v[i].coll);
        rc = dump_collection(&o, c, &list.v[i]);
    }
    if (rc == TROVE_OK && has_oplog && (rc = last_optime(ctx, call, c, end, &has_end)) == TROVE_OK)
        rc = dump_oplog(&o, c, &start, end);
    if (rc == TROVE_OK)
        rc = out_flush(&o);
    if (!has_oplog)
        memset(end, 0, sizeof(*end));
    tps_buf_free(&o.buf);
    ns_free(&list);
    bson_destroy(&info);
    return rc;
}

/* ---- loading an archive ----------------------------------------------- */

struct loader {
    struct mg_ctx *ctx;
    struct trove_call *call;
    mongoc_client_t *c;
    const char *piece;
    struct ns_list list;          /* from the prelude */
    uint64_t *crc;                /* per namespace */
    bool *closed;
    mongoc_bulk_operation_t *bulk;
    size_t bulk_ns, bulk_docs;
    size_t bulk_bytes;
    int spool;                    /* the oplog slice, replayed last */
    char spool_path[MG_PATH_MAX];
};

static int damaged(struct loader *l, const char *why)
{
    return l->ctx->host->fail(l->call, TROVE_EINVAL, "backup %s is not a usable mongodump archive: %s", l->piece, why);
}

static int bulk_flush(struct loader *l)
{
    if (!l->bulk)
        return TROVE_OK;
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_bulk_operation_execute(l->bulk, &reply, &error) != 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(l->bulk);
    l->bulk = NULL;
    l->bulk_docs = l->bulk_bytes = 0;
    return ok ? TROVE_OK : mg_fail_error(l->ctx, l->call, &error, "restoring documents failed");
}

static int bulk_add(struct loader *l, size_t ns, const bson_t *doc)
{
    if (l->bulk && (l->bulk_ns != ns || l->bulk_docs >= 10000 || l->bulk_bytes >= 32u * 1024 * 1024)) {
        int rc = bulk_flush(l);
        if (rc != TROVE_OK)
            return rc;
    }
    if (!l->bulk) {
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        mongoc_collection_t *coll = mongoc_client_get_collection(l->c, l->list.v[ns].db, l->list.v[ns].coll);
        l->bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
        mongoc_collection_destroy(coll);
        bson_destroy(&opts);
        l->bulk_ns = ns;
    }
    bson_error_t error;
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "validate", false);   /* "$" and "." in field names are the server's business */
    bool ok = mongoc_bulk_operation_insert_with_opts(l->bulk, doc, &opts, &error);
    bson_destroy(&opts);
    if (!ok)
        return damaged(l, error.message);
    l->bulk_docs++;
    l->bulk_bytes += doc->len;
    return TROVE_OK;
}

static size_t find_ns(const struct loader *l, const char *db, const char *coll)
{
    for (size_t i = 0; i < l->list.n; i++)
        if (!strcmp(l->list.v[i].db, db) && !strcmp(l->list.v[i].coll, coll))
            return i;
    return SIZE_MAX;
}

/* create + createIndexes for one namespace of the prelude. */
static int create_collection(struct loader *l, const struct ns *n)
{
    bson_t meta, cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    bson_iter_t it, sub;
    if (!strncmp(n->coll, "system.", 7) || !*n->db)
        return TROVE_OK;   /* users are inserted; the oplog is replayed */
    if (!bson_init_from_json(&meta, n->metadata, -1, &error))
        return damaged(l, "collection metadata is not Extended JSON");
    BSON_APPEND_UTF8(&cmd, "create", n->coll);
    if (bson_iter_init_find(&it, &meta, "options") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub))
        while (bson_iter_next(&sub))
            bson_append_iter(&cmd, NULL, 0, &sub);
    int rc = mg_cmd(l->ctx, l->call, l->c, n->db, &cmd, &reply, "creating a collection failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    bson_t indexes = BSON_INITIALIZER;
    uint32_t count = 0;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &meta, "indexes") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            bson_iter_t f;
            bson_t spec = BSON_INITIALIZER;
            bool id = false;
            if (!BSON_ITER_HOLDS_DOCUMENT(&sub) || !bson_iter_recurse(&sub, &f))
                continue;
            while (bson_iter_next(&f)) {
                if (!strcmp(bson_iter_key(&f), "ns"))
                    continue;   /* servers since 4.4 refuse it */
                if (!strcmp(bson_iter_key(&f), "name") && BSON_ITER_HOLDS_UTF8(&f) &&
                    !strcmp(bson_iter_utf8(&f, NULL), "_id_"))
                    id = true;
                bson_append_iter(&spec, NULL, 0, &f);
            }
            char key[16];
            const char *k;
            if (!id) {
                bson_uint32_to_string(count++, &k, key, sizeof(key));
                BSON_APPEND_DOCUMENT(&indexes, k, &spec);
            }
            bson_destroy(&spec);
        }
    }
    if (rc == TROVE_OK && count) {
        bson_init(&cmd);
        BSON_APPEND_UTF8(&cmd, "createIndexes", n->coll);
        BSON_APPEND_ARRAY(&cmd, "indexes", &indexes);
        rc = mg_cmd(l->ctx, l->call, l->c, n->db, &cmd, &reply, "creating indexes failed");
        bson_destroy(&cmd);
        bson_destroy(&reply);
    }
    bson_destroy(&indexes);
    bson_destroy(&meta);
    return rc;
}

static int read_prelude(struct loader *l, struct trove_source *source)
{
    uint8_t magic[4], *doc;
    uint32_t len;
    bool eof, term;
    int rc = mg_source_read_full(l->ctx, l->call, source, magic, 4, &eof, l->piece);
    if (rc != TROVE_OK)
        return rc;
    if (eof || le32(magic) != MAGIC)
        return damaged(l, "it does not start with the archive's magic number");
    if ((rc = read_block(l->ctx, l->call, source, &doc, &len, &eof, NULL, l->piece)) != TROVE_OK)
        return rc;
    if (eof)
        return damaged(l, "it has no header");
    bson_t h;
    bson_init_static(&h, doc, len);
    const char *version = mg_bson_str(&h, "version");
    bool ok = version && !strcmp(version, "0.1");
    free(doc);
    if (!ok)
        return damaged(l, "its format version is not 0.1");
    for (;;) {
        if ((rc = read_block(l->ctx, l->call, source, &doc, &len, &eof, &term, l->piece)) != TROVE_OK)
            return rc;
        if (eof)
            return damaged(l, "the prelude is not terminated");
        if (term)
            break;
        bson_t m;
        bson_init_static(&m, doc, len);
        const char *db = mg_bson_str(&m, "db"), *coll = mg_bson_str(&m, "collection");
        const char *meta = mg_bson_str(&m, "metadata");
        if (!db || !coll || l->list.n >= MAX_NAMESPACES)
            rc = damaged(l, "a prelude entry names no namespace");
        else
            rc = ns_add(l->ctx, l->call, &l->list, db, coll, meta && *meta ? bson_strdup(meta) : NULL, 0);
        free(doc);
        if (rc != TROVE_OK)
            return rc;
    }
    l->crc = calloc(l->list.n + 1, sizeof(*l->crc));
    l->closed = calloc(l->list.n + 1, sizeof(*l->closed));
    if (!l->crc || !l->closed)
        return l->ctx->host->fail(l->call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; rc == TROVE_OK && i < l->list.n; i++)
        if (l->list.v[i].metadata && strcmp(l->list.v[i].db, "local") && strcmp(l->list.v[i].db, "config"))
            rc = create_collection(l, &l->list.v[i]);
    return rc;
}

/* The plugin's own accounts are never restored over the target's. */
static bool own_account(struct loader *l, size_t ns, const bson_t *doc)
{
    if (strcmp(l->list.v[ns].db, "admin") || strcmp(l->list.v[ns].coll, "system.users"))
        return false;
    const char *user = mg_bson_str(doc, "user"), *db = mg_bson_str(doc, "db");
    return user && db && !strcmp(db, "admin") &&
           (!strcmp(user, l->ctx->s.admin_user) || !strcmp(user, l->ctx->s.replication_user));
}

static int spool_write(struct loader *l, const uint8_t *doc, uint32_t len)
{
    if (l->spool < 0) {
        tps_path(l->spool_path, sizeof(l->spool_path), "%s/.trove-%ld-oplog", l->ctx->s.config_dir, (long)getpid());
        l->spool = open(l->spool_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (l->spool < 0)
            return l->ctx->host->fail(l->call, TROVE_EINTERNAL, "cannot create %s: %s", l->spool_path,
                                      strerror(errno));
    }
    for (uint32_t off = 0; off < len;) {
        ssize_t w = write(l->spool, doc + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return l->ctx->host->fail(l->call, TROVE_EINTERNAL, "cannot write %s: %s", l->spool_path,
                                      strerror(errno));
        off += (uint32_t)w;
    }
    return TROVE_OK;
}

/* One segment's documents (after its header), up to the terminator. */
static int read_segment(struct loader *l, struct trove_source *source, size_t ns)
{
    bool oplog = !*l->list.v[ns].db;
    bool skip = !oplog && (!strcmp(l->list.v[ns].db, "local") || !strcmp(l->list.v[ns].db, "config") ||
                           (!strncmp(l->list.v[ns].coll, "system.", 7) &&
                            strcmp(l->list.v[ns].coll, "system.users")));
    for (;;) {
        uint8_t *doc;
        uint32_t len;
        bool eof, term;
        int rc = read_block(l->ctx, l->call, source, &doc, &len, &eof, &term, l->piece);
        if (rc != TROVE_OK)
            return rc;
        if (eof)
            return damaged(l, "a segment is not terminated");
        if (term)
            return TROVE_OK;
        bson_t b;
        bson_init_static(&b, doc, len);
        l->crc[ns] = crc64(l->crc[ns], doc, len);
        if (oplog)
            rc = spool_write(l, doc, len);
        else if (!skip && !own_account(l, ns, &b))
            rc = bulk_add(l, ns, &b);
        free(doc);
        if (rc != TROVE_OK)
            return rc;
    }
}

static int replay_spool(struct loader *l)
{
    if (l->spool < 0)
        return TROVE_OK;
    struct ops_batch b = {.n = 0};
    bson_init(&b.ops);
    int rc = TROVE_OK;
    bson_reader_t *reader = lseek(l->spool, 0, SEEK_SET) == 0 ? bson_reader_new_from_fd(l->spool, false) : NULL;
    if (!reader)
        rc = l->ctx->host->fail(l->call, TROVE_EINTERNAL, "cannot read back the oplog slice");
    const bson_t *entry;
    bool eof = false;
    while (rc == TROVE_OK && (entry = bson_reader_read(reader, &eof)))
        rc = ops_add(l->ctx, l->call, l->c, &b, entry);
    if (rc == TROVE_OK && !eof)
        rc = l->ctx->host->fail(l->call, TROVE_EINTERNAL, "the spooled oplog slice is damaged");
    if (rc == TROVE_OK)
        rc = ops_flush(l->ctx, l->call, l->c, &b);
    if (reader)
        bson_reader_destroy(reader);
    bson_destroy(&b.ops);
    return rc;
}

static int read_segments(struct loader *l, struct trove_source *source)
{
    for (;;) {
        uint8_t *doc;
        uint32_t len;
        bool eof;
        int rc = read_block(l->ctx, l->call, source, &doc, &len, &eof, NULL, l->piece);
        if (rc != TROVE_OK)
            return rc;
        if (eof)
            break;
        bson_t h;
        bson_init_static(&h, doc, len);
        const char *db = mg_bson_str(&h, "db"), *coll = mg_bson_str(&h, "collection");
        size_t ns = db && coll ? find_ns(l, db, coll) : SIZE_MAX;
        bool is_eof = mg_bson_bool(&h, "EOF");
        uint64_t crc = (uint64_t)mg_bson_int(&h, "CRC", 0);
        free(doc);
        if (ns == SIZE_MAX)
            return damaged(l, "a segment names a namespace missing from the prelude");
        if (l->closed[ns])
            return damaged(l, "a namespace continues after its end");
        if (!is_eof) {
            if ((rc = read_segment(l, source, ns)) != TROVE_OK)
                return rc;
            continue;
        }
        if (crc != l->crc[ns])
            return damaged(l, "the CRC of a namespace does not match its documents");
        l->closed[ns] = true;
        bool term;
        if ((rc = read_block(l->ctx, l->call, source, &doc, &len, &eof, &term, l->piece)) != TROVE_OK)
            return rc;
        free(doc);
        if (eof || !term)
            return damaged(l, "an end of namespace is not terminated");
        if (l->ctx->host->cancelled(l->call))
            return l->ctx->host->fail(l->call, TROVE_ECANCELLED, "cancelled while restoring backup %s", l->piece);
    }
    for (size_t i = 0; i < l->list.n; i++)
        if (!l->closed[i])
            return damaged(l, "the archive ends before every namespace is complete");
    return TROVE_OK;
}

int mg_archive_load(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct trove_source *source,
                    const char *piece)
{
    struct loader l = {.ctx = ctx, .call = call, .c = c, .piece = piece, .spool = -1};
    int rc = read_prelude(&l, source);
    if (rc == TROVE_OK)
        rc = read_segments(&l, source);
    if (rc == TROVE_OK)
        rc = bulk_flush(&l);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, -1, "replaying the oplog slice of backup %s", piece);
        rc = replay_spool(&l);
    }
    if (l.bulk)
        mongoc_bulk_operation_destroy(l.bulk);
    if (l.spool >= 0) {
        close(l.spool);
        unlink(l.spool_path);
    }
    ns_free(&l.list);
    free(l.crc);
    free(l.closed);
    return rc;
}
