/*
 * storage_object.c - the storage interface over signed object-storage URLs
 * (storage_object.h): parses a request's scope, writes pieces in parallel
 * parts, streams pieces back, reads and writes records. Which URL and which
 * commit belong to the drivers (storage_swift.c, storage_s3.c).
 */
#include "storage_object.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "json.h"
#include "objhttp.h"
#include "storage_driver.h"
#include "trove_plugin.h"

#define MAX_GRANTS 64
#define RECORD_MAX (1u << 20)
#define READ_BUFFER (4u << 20)
#define URL_MAX 8192
#define DEFAULT_THREADS 4
#define MIB (1u << 20)

struct obj_storage {
    struct storage base;
    struct obj_entry *entries;
    size_t n;
    CURL *h;                    /* records, commits: one thread at a time, as backup.c uses a storage */
};

struct storage_writer {
    struct obj_storage *os;
    struct obj_entry *e;
    struct part_pool *pool;
};

struct storage_reader {
    CURLM *m;
    CURL *h;
    char *url;
    char where[512];
    char *buf;
    size_t len, off;
    bool paused, done, added;
    CURLcode result;
    long status;
    char errbody[300];
    size_t errbody_len;
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) TROVE_PRINTF(4, 5);

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* ------------------------------------------------------------ shared with drivers */

int obj_grant_url(const struct tv *grant, const char *key, bool required, char **out, char *err, size_t errlen)
{
    const struct tv *v = tv_get(grant, key);
    *out = NULL;
    if (!v)
        return required ? fail(err, errlen, TROVE_EINVAL, "storage grant lacks \"%s\"", key) : TROVE_OK;
    return obj_url_value(v, key, out, err, errlen);
}

int obj_url_value(const struct tv *v, const char *key, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (v->type != TV_STR || v->u.s.len > URL_MAX || strlen(v->u.s.ptr) != v->u.s.len ||
        (strncmp(v->u.s.ptr, "http://", 7) && strncmp(v->u.s.ptr, "https://", 8)) ||
        strpbrk(v->u.s.ptr, " \r\n\t"))
        return fail(err, errlen, TROVE_EINVAL, "storage grant \"%s\" must be an http(s) URL", key);
    if (!(*out = strdup(v->u.s.ptr)))
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    return TROVE_OK;
}

static int status_code(long status)
{
    return status == 404 ? TROVE_ENOTFOUND
           : status == 401 || status == 403 ? TROVE_EINVAL
           : objhttp_retryable(status) ? TROVE_EUNAVAIL : TROVE_EINTERNAL;
}

static int reply_error(const struct objhttp_req *rq, const struct objhttp_resp *rs, char *err, size_t errlen)
{
    char what[700];
    objhttp_describe(rq, rs, what, sizeof(what));
    if (rs->status == 401 || rs->status == 403)
        return fail(err, errlen, TROVE_EINVAL, "%s (the signed URL expired or does not cover this object)", what);
    return fail(err, errlen, status_code(rs->status), "%s", what);
}

int obj_request(CURL *h, const char *method, const char *url, const char *const *headers, const void *body,
                size_t len, long ok_status, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    const struct objhttp_req rq = {method, url, headers, body, len, NULL, 0, NULL};
    int rc = objhttp_do(h, &rq, &rs, err, errlen);
    if (rc == TROVE_OK && rs.status != ok_status && !(ok_status == 200 && rs.status == 204)) {
        rc = reply_error(&rq, &rs, err, errlen);
    } else if (rc == TROVE_OK && rs.body && strstr(rs.body, "<Error>")) {
        /* S3 may answer 200 to a CompleteMultipartUpload and put the failure in the body. */
        char what[700];
        objhttp_describe(&rq, &rs, what, sizeof(what));
        rc = fail(err, errlen, TROVE_EUNAVAIL, "%s", what);
    }
    objhttp_resp_free(&rs);
    return rc;
}

/* ------------------------------------------------------------ scope parsing */

static struct obj_entry *find(struct obj_storage *os, const char *id, char *err, size_t errlen)
{
    for (size_t i = 0; i < os->n; i++)
        if (!strcmp(os->entries[i].id, id))
            return &os->entries[i];
    fail(err, errlen, TROVE_ENOTFOUND, "backup %s is not among the backups this request's storage grants", id);
    return NULL;
}

static int grant_int(const struct tv *g, const char *key, int64_t min, int64_t max, int64_t fallback, uint32_t *out,
                     char *err, size_t errlen)
{
    const struct tv *v = tv_get(g, key);
    if (!v) {
        *out = (uint32_t)fallback;
        return TROVE_OK;
    }
    if (v->type != TV_INT || v->u.i < min || v->u.i > max)
        return fail(err, errlen, TROVE_EINVAL, "storage grant \"%s\" must be an integer from %lld to %lld", key,
                    (long long)min, (long long)max);
    *out = (uint32_t)v->u.i;
    return TROVE_OK;
}

static int parse_grant(struct obj_entry *e, const struct tv *g, const struct obj_driver *drv, uint32_t threads,
                       char *err, size_t errlen)
{
    const char *id = tv_get_str(g, "id"), *access = tv_get_str(g, "access");
    const struct tv *record = tv_get(g, "record");
    int rc;
    if (g->type != TV_MAP || !id || !agent_name_ok(id))
        return fail(err, errlen, TROVE_EINVAL, "each storage grant needs a valid backup \"id\"");
    if (!access || (strcmp(access, "write") && strcmp(access, "read")))
        return fail(err, errlen, TROVE_EINVAL, "storage grant for %s: \"access\" must be write or read", id);
    e->drv = drv;
    e->threads = threads;
    e->write = !strcmp(access, "write");
    if (!(e->id = strdup(id)))
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    if ((rc = grant_int(g, "part_size", MIB, 512 * MIB, 16 * MIB, &e->part_size, err, errlen)) ||
        (rc = grant_int(g, "max_parts", 1, 10000, 1000, &e->max_parts, err, errlen)))
        return rc;
    if (record) {
        if (record->type != TV_MAP || e->write)
            return fail(err, errlen, TROVE_EINVAL, "storage grant for %s: \"record\" must be a map, on a read grant",
                        id);
        if (!(e->record_json = tv_to_json(record, false)))
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    return drv->parse(e, g, err, errlen);
}

static void entries_free(struct obj_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (entries[i].drv)
            entries[i].drv->release(&entries[i]);
        free(entries[i].id);
        free(entries[i].record_json);
    }
    free(entries);
}

static const struct storage_ops object_ops;

struct storage *storage_object_open(const struct tv *scope, char *err, size_t errlen)
{
    const char *driver = tv_get_str(scope, "driver");
    const struct tv *list = tv_get(scope, "backups");
    const struct obj_driver *drv = !driver ? NULL : !strcmp(driver, "swift") ? &obj_swift_driver
                                   : !strcmp(driver, "s3") ? &obj_s3_driver : NULL;
    uint32_t threads = DEFAULT_THREADS;
    if (!scope || scope->type != TV_MAP || !drv) {
        fail(err, errlen, TROVE_EINVAL, "argument 'storage' must be a map whose \"driver\" is swift or s3");
        return NULL;
    }
    if (!list || list->type != TV_ARRAY || list->u.a.len == 0 || list->u.a.len > MAX_GRANTS) {
        fail(err, errlen, TROVE_EINVAL, "argument 'storage' needs \"backups\": a list of 1-%d grants", MAX_GRANTS);
        return NULL;
    }
    if (grant_int(scope, "upload_threads", 1, 16, DEFAULT_THREADS, &threads, err, errlen))
        return NULL;
    struct obj_storage *os = calloc(1, sizeof(*os));
    if (!os || !(os->entries = calloc(list->u.a.len, sizeof(*os->entries))) || !(os->h = objhttp_handle())) {
        fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        goto fail;
    }
    os->base.ops = &object_ops;
    for (size_t i = 0; i < list->u.a.len; i++) {
        os->n = i + 1;
        if (parse_grant(&os->entries[i], list->u.a.items[i], drv, threads, err, errlen) != TROVE_OK)
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(os->entries[j].id, os->entries[i].id)) {
                fail(err, errlen, TROVE_EINVAL, "backup %s is granted twice", os->entries[i].id);
                goto fail;
            }
    }
    return &os->base;
fail:
    if (os) {
        entries_free(os->entries, os->n);
        if (os->h)
            curl_easy_cleanup(os->h);
        free(os);
    }
    return NULL;
}

/* ------------------------------------------------------------ writing */

static int put_part(void *ctx, CURL *h, unsigned number, const void *data, size_t len, const atomic_bool *cancel,
                    char etag[80], char *err, size_t errlen)
{
    const struct obj_entry *e = ctx;
    char *url = e->drv->url(e, OBJ_PART_PUT, number, err, errlen);
    if (!url)
        return TROVE_EINVAL;
    struct objhttp_resp rs;
    const struct objhttp_req rq = {"PUT", url, NULL, data, len, NULL, 0, cancel};
    int rc = objhttp_do(h, &rq, &rs, err, errlen);
    if (rc == TROVE_OK && rs.status != e->drv->part_ok)
        rc = reply_error(&rq, &rs, err, errlen);
    if (rc == TROVE_OK)
        snprintf(etag, 80, "%s", rs.etag);
    objhttp_resp_free(&rs);
    free(url);
    return rc;
}

static int ow_open_write(struct storage *s, const char *id, struct storage_writer **out, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    struct obj_entry *e = find(os, id, err, errlen);
    if (!e)
        return TROVE_ENOTFOUND;
    if (!e->write)
        return fail(err, errlen, TROVE_EINVAL, "this request may only read backup %s", id);
    if (e->opened)
        return fail(err, errlen, TROVE_EEXIST, "backup %s was already written through this grant", id);
    struct storage_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    w->os = os;
    w->e = e;
    if (!(w->pool = part_pool_open(e->threads, e->part_size, e->max_parts, put_part, e, err, errlen))) {
        free(w);
        return TROVE_EINTERNAL;
    }
    e->opened = true;
    *out = w;
    return TROVE_OK;
}

static int ow_write(struct storage_writer *w, const void *data, size_t len, char *err, size_t errlen)
{
    return part_pool_write(w->pool, data, len, err, errlen);
}

static void ow_abort(struct storage_writer *w)
{
    w->e->started = part_pool_started(w->pool);
    part_pool_close(w->pool);
    w->e->drv->abort(w->os->h, w->e, w->e->started);
    free(w);
}

static int ow_commit(struct storage_writer *w, char *err, size_t errlen)
{
    int rc = part_pool_finish(w->pool, err, errlen);
    w->e->started = part_pool_started(w->pool);
    if (rc == TROVE_OK) {
        unsigned n = 0;
        const struct part_result *parts = part_pool_results(w->pool, &n);
        rc = w->e->drv->commit(w->os->h, w->e, parts, n, err, errlen);
    }
    if (rc != TROVE_OK) {
        ow_abort(w);
        return rc;
    }
    part_pool_close(w->pool);
    free(w);
    return TROVE_OK;
}

/* ------------------------------------------------------------ reading */

static size_t reader_take(char *data, size_t size, size_t n, void *ctx)
{
    struct storage_reader *r = ctx;
    size_t len = size * n;
    if (r->status == 0)
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status != 200) {
        size_t k = sizeof(r->errbody) - 1 - r->errbody_len;
        k = k < len ? k : len;
        memcpy(r->errbody + r->errbody_len, data, k);
        r->errbody_len += k;
        r->errbody[r->errbody_len] = '\0';
        return len;
    }
    if (r->off > 0 && r->off == r->len)
        r->off = r->len = 0;
    if (r->len + len > READ_BUFFER) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;   /* curl keeps these bytes and offers them again */
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return len;
}

static void reader_free(struct storage_reader *r)
{
    if (r->m && r->h && r->added)
        curl_multi_remove_handle(r->m, r->h);
    if (r->h)
        curl_easy_cleanup(r->h);
    if (r->m)
        curl_multi_cleanup(r->m);
    free(r->url);
    free(r->buf);
    free(r);
}

static int or_open_read(struct storage *s, const char *id, struct storage_reader **out, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    struct obj_entry *e = find(os, id, err, errlen);
    if (!e)
        return TROVE_ENOTFOUND;
    struct storage_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    if (!(r->url = e->drv->url(e, OBJ_PIECE_GET, 0, err, errlen))) {
        free(r);
        return TROVE_EINVAL;
    }
    objhttp_url_for_log(r->url, r->where, sizeof(r->where));
    if (!(r->buf = malloc(READ_BUFFER)) || !(r->m = curl_multi_init()) || !(r->h = objhttp_handle())) {
        reader_free(r);
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    objhttp_defaults(r->h);
    curl_easy_setopt(r->h, CURLOPT_URL, r->url);
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, reader_take);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    if (curl_multi_add_handle(r->m, r->h) != CURLM_OK) {
        reader_free(r);
        return fail(err, errlen, TROVE_EINTERNAL, "cannot start reading %s", r->where);
    }
    r->added = true;
    *out = r;
    return TROVE_OK;
}

/* Drive the transfer until bytes arrive or it ends. */
static void reader_pump(struct storage_reader *r)
{
    int running = 0;
    curl_multi_perform(r->m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(r->m, &left)))
        if (msg->msg == CURLMSG_DONE) {
            r->done = true;
            r->result = msg->data.result;
            curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
        }
    if (!r->done && r->off == r->len)
        curl_multi_poll(r->m, NULL, 0, 1000, NULL);
}

static int reader_end(struct storage_reader *r, char *err, size_t errlen)
{
    if (r->status != 200 && r->status != 0) {
        const char *body = r->errbody;
        const char *code = strstr(body, "<Code>");
        int rc = status_code(r->status);
        if (r->status == 404)
            return fail(err, errlen, rc, "backup piece %s does not exist", r->where);
        if (r->status == 409)   /* Swift: a segment of the manifest is missing or changed */
            return fail(err, errlen, TROVE_ECHECKSUM, "backup piece %s cannot be served whole (HTTP 409: %.*s)",
                        r->where, (int)strcspn(body, "\r\n"), body);
        return fail(err, errlen, rc, "GET %s: HTTP %ld: %.*s%s", r->where, r->status,
                    (int)strcspn(code ? code + 6 : body, "<\r\n"), code ? code + 6 : body,
                    rc == TROVE_EINVAL ? " (the signed URL expired or does not cover this object)" : "");
    }
    if (r->result != CURLE_OK)
        return fail(err, errlen, TROVE_EUNAVAIL, "GET %s broke off: %s", r->where, curl_easy_strerror(r->result));
    return TROVE_OK;
}

static int or_read(struct storage_reader *r, void *buf, size_t cap, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    for (;;) {
        if (r->off < r->len) {
            size_t k = r->len - r->off < cap ? r->len - r->off : cap;
            memcpy(buf, r->buf + r->off, k);
            r->off += k;
            if (r->off == r->len) {
                r->off = r->len = 0;
                if (r->paused) {
                    r->paused = false;
                    curl_easy_pause(r->h, CURLPAUSE_CONT);
                }
            }
            *got = k;
            return TROVE_OK;
        }
        if (r->done)
            return reader_end(r, err, errlen);
        reader_pump(r);
        if (r->done && r->status != 200)
            return reader_end(r, err, errlen);
    }
}

static void or_close(struct storage_reader *r)
{
    reader_free(r);
}

/* ------------------------------------------------------------ records */

static int o_put_record(struct storage *s, const char *id, const char *json, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    struct obj_entry *e = find(os, id, err, errlen);
    if (!e)
        return TROVE_ENOTFOUND;
    if (!e->write)
        return fail(err, errlen, TROVE_EINVAL, "this request may only read backup %s", id);
    char *url = e->drv->url(e, OBJ_RECORD_PUT, 0, err, errlen);
    if (!url)
        return TROVE_EINVAL;
    const char *headers[] = {"Content-Type: application/json", NULL};
    int rc = obj_request(os->h, "PUT", url, headers, json, strlen(json), e->drv->part_ok, err, errlen);
    free(url);
    return rc;
}

static int o_get_record(struct storage *s, const char *id, char **json, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    struct obj_entry *e = find(os, id, err, errlen);
    if (!e)
        return TROVE_ENOTFOUND;
    if (e->record_json) {   /* the control plane's word, not what sits in the store */
        *json = strdup(e->record_json);
        return *json ? TROVE_OK : fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    char *url = e->drv->url(e, OBJ_RECORD_GET, 0, err, errlen);
    if (!url)
        return TROVE_EINVAL;
    struct objhttp_resp rs;
    const struct objhttp_req rq = {"GET", url, NULL, NULL, 0, NULL, RECORD_MAX, NULL};
    int rc = objhttp_do(os->h, &rq, &rs, err, errlen);
    if (rc == TROVE_OK && rs.status == 404)
        rc = fail(err, errlen, TROVE_ENOTFOUND, "backup %s has no record", id);
    else if (rc == TROVE_OK && rs.status != 200)
        rc = reply_error(&rq, &rs, err, errlen);
    else if (rc == TROVE_OK && rs.body_cut)
        rc = fail(err, errlen, TROVE_EINVAL, "the record of backup %s is larger than %u bytes", id, RECORD_MAX);
    if (rc == TROVE_OK) {
        *json = rs.body ? rs.body : strdup("");
        rs.body = NULL;
        if (!*json)
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    objhttp_resp_free(&rs);
    free(url);
    return rc;
}

static int o_list(struct storage *s, char ***ids, size_t *n, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    char **out = calloc(os->n ? os->n : 1, sizeof(*out));
    if (!out)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; i < os->n; i++)
        if (!(out[i] = strdup(os->entries[i].id))) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        }
    *ids = out;
    *n = os->n;
    return TROVE_OK;
}

/* Undo this request's own upload as far as its grant allows; removing a
 * stored backup is the control plane's (bstore_remove). */
static int o_remove(struct storage *s, const char *id, char *err, size_t errlen)
{
    struct obj_storage *os = (struct obj_storage *)s;
    struct obj_entry *e = find(os, id, err, errlen);
    if (!e)
        return TROVE_ENOTFOUND;
    if (!e->write)
        return fail(err, errlen, TROVE_ENOTSUP, "backup %s is in object storage: the control plane removes it", id);
    e->drv->abort(os->h, e, e->started);
    return TROVE_OK;
}

static void o_close(struct storage *s)
{
    struct obj_storage *os = (struct obj_storage *)s;
    if (!os)
        return;
    entries_free(os->entries, os->n);
    curl_easy_cleanup(os->h);
    free(os);
}

static const struct storage_ops object_ops = {
    .kind = "object",
    .open_write = ow_open_write, .write = ow_write, .commit = ow_commit, .abort = ow_abort,
    .open_read = or_open_read, .read = or_read, .close_read = or_close,
    .put_record = o_put_record, .get_record = o_get_record, .list = o_list, .remove = o_remove,
    .close = o_close,
};

/* ------------------------------------------------------------ per-call scope */

int storage_scope_attach(struct trove_call *call, const struct tv *args)
{
    const struct tv *scope = tv_get(args, "storage");
    char err[512];
    call->storage = NULL;
    if (!scope)
        return TROVE_OK;
    if (!(call->storage = storage_object_open(scope, err, sizeof(err))))
        return call_fail(call, TROVE_EINVAL, "%s", err);
    return TROVE_OK;
}

void storage_scope_detach(struct trove_call *call)
{
    if (call->storage)
        call->storage->ops->close(call->storage);
    call->storage = NULL;
}
