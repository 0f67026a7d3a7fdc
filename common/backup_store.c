/*
 * backup_store.c - the control plane's side of backup storage (see
 * backup_store.h): credentials, container set-up, signed scopes, sealing
 * Swift manifests, removal. It moves no backup bytes itself.
 */
#include "backup_store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "objhttp.h"
#include "objsign.h"
#include "trove_plugin.h"

#define LIST_REPLY_MAX (4u << 20)
#define DRAFT_MAX (2u << 20)

enum bstore_driver { BSTORE_SWIFT, BSTORE_S3 };

struct bstore {
    enum bstore_driver driver;
    char *container, *prefix;
    char *auth_url, *user, *key, *storage_url, *token;
    char *tempurl_key, *tempurl_digest;
    char *endpoint, *region, *access_key, *secret_key;
    struct objsign_aws aws;
    uint32_t part_size, max_parts, ttl, upload_threads;
    pthread_mutex_t lock;   /* one request at a time on `curl` */
    CURL *curl;
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

bool bstore_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-')
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Container, bucket and prefix names stay within characters that need no
 * escaping in a URL path, so what is signed is what is sent. */
static bool name_ok(const char *s, bool slashes)
{
    size_t n = strlen(s);
    return n < 256 && strspn(s, slashes ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/"
                                        : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n &&
           !strstr(s, "..") && !strstr(s, "//") && s[0] != '/';
}

/* ------------------------------------------------------------ configuration */

static const char *const config_keys[] = {
    "driver", "container", "prefix", "auth_url", "user", "key", "storage_url", "token", "tempurl_key",
    "tempurl_digest", "endpoint", "region", "access_key", "secret_key", "part_size", "max_parts", "url_ttl",
    "upload_threads", NULL};

int bstore_config_load(const struct conf *c, const char *section, struct bstore_config *out, char *err,
                       size_t errlen)
{
    size_t n = 0;
    const struct trove_kv *kv = conf_section(c, section, &n);
    long part = BSTORE_PART_DEFAULT, parts = BSTORE_PARTS_DEFAULT, ttl = BSTORE_TTL_DEFAULT, threads = 4;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (config_keys[k] && strcmp(config_keys[k], kv[i].key) != 0)
            k++;
        if (!config_keys[k])
            return fail(err, errlen, TROVE_EINVAL, "[%s] has no setting \"%s\"", section, kv[i].key);
    }
#define GET(field, key) out->field = conf_get(c, section, key)
    GET(driver, "driver");
    GET(container, "container");
    GET(prefix, "prefix");
    GET(auth_url, "auth_url");
    GET(user, "user");
    GET(key, "key");
    GET(storage_url, "storage_url");
    GET(token, "token");
    GET(tempurl_key, "tempurl_key");
    GET(tempurl_digest, "tempurl_digest");
    GET(endpoint, "endpoint");
    GET(region, "region");
    GET(access_key, "access_key");
    GET(secret_key, "secret_key");
#undef GET
    if (conf_get_int(c, section, "part_size", part, BSTORE_PART_MIN, BSTORE_PART_MAX, &part, err, errlen) ||
        conf_get_int(c, section, "max_parts", parts, 1, BSTORE_PARTS_MAX, &parts, err, errlen) ||
        conf_get_int(c, section, "url_ttl", ttl, 10, BSTORE_TTL_MAX, &ttl, err, errlen) ||
        conf_get_int(c, section, "upload_threads", threads, 1, 16, &threads, err, errlen))
        return TROVE_EINVAL;
    out->part_size = (uint32_t)part;
    out->max_parts = (uint32_t)parts;
    out->ttl = (uint32_t)ttl;
    out->upload_threads = (uint32_t)threads;
    return TROVE_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void bstore_close(struct bstore *bs)
{
    if (!bs)
        return;
    if (bs->curl)
        curl_easy_cleanup(bs->curl);
    pthread_mutex_destroy(&bs->lock);
    free(bs->container);
    free(bs->prefix);
    free(bs->auth_url);
    free(bs->user);
    wipe_free(bs->key);
    free(bs->storage_url);
    wipe_free(bs->token);
    wipe_free(bs->tempurl_key);
    free(bs->tempurl_digest);
    free(bs->endpoint);
    free(bs->region);
    free(bs->access_key);
    wipe_free(bs->secret_key);
    free(bs);
}

static int check_config(const struct bstore_config *cfg, enum bstore_driver *d, char *err, size_t errlen)
{
    if (!cfg->driver || (strcmp(cfg->driver, "swift") && strcmp(cfg->driver, "s3")))
        return fail(err, errlen, TROVE_EINVAL, "backup storage driver must be swift or s3, not \"%s\"",
                    cfg->driver ? cfg->driver : "(missing)");
    *d = !strcmp(cfg->driver, "swift") ? BSTORE_SWIFT : BSTORE_S3;
    if (!cfg->container || !name_ok(cfg->container, false) || strlen(cfg->container) < 3)
        return fail(err, errlen, TROVE_EINVAL, "backup storage needs a container (bucket) of 3-255 letters, digits, "
                    "'.', '_' or '-'");
    if (cfg->prefix && cfg->prefix[0] &&
        (!name_ok(cfg->prefix, true) || cfg->prefix[strlen(cfg->prefix) - 1] != '/'))
        return fail(err, errlen, TROVE_EINVAL, "backup storage prefix must be a relative path ending in '/'");
    if (cfg->part_size < BSTORE_PART_MIN || cfg->part_size > BSTORE_PART_MAX || cfg->max_parts < 1 ||
        cfg->max_parts > BSTORE_PARTS_MAX || cfg->ttl < 10 || cfg->ttl > BSTORE_TTL_MAX ||
        cfg->upload_threads < 1 || cfg->upload_threads > 16)
        return fail(err, errlen, TROVE_EINVAL, "backup storage part_size, max_parts, url_ttl or upload_threads out "
                    "of range");
    if (*d == BSTORE_SWIFT) {
        bool tempauth = cfg->auth_url && cfg->user && cfg->key;
        bool preissued = cfg->storage_url && cfg->token;
        if (!tempauth && !preissued)
            return fail(err, errlen, TROVE_EINVAL, "swift backup storage needs auth_url, user and key, or "
                        "storage_url and token");
        if (!cfg->tempurl_key || strlen(cfg->tempurl_key) < 16)
            return fail(err, errlen, TROVE_EINVAL, "swift backup storage needs a tempurl_key of 16 or more "
                        "characters (guests get TempURLs signed with it)");
        const char *dg = cfg->tempurl_digest ? cfg->tempurl_digest : "sha256";
        if (strcmp(dg, "sha1") && strcmp(dg, "sha256") && strcmp(dg, "sha512"))
            return fail(err, errlen, TROVE_EINVAL, "tempurl_digest must be sha256, sha512 or sha1");
    } else if (!cfg->endpoint || !cfg->access_key || !cfg->secret_key) {
        return fail(err, errlen, TROVE_EINVAL, "s3 backup storage needs endpoint, access_key and secret_key");
    } else if (strncmp(cfg->endpoint, "http://", 7) && strncmp(cfg->endpoint, "https://", 8)) {
        return fail(err, errlen, TROVE_EINVAL, "s3 endpoint must start with http:// or https://");
    }
    return TROVE_OK;
}

struct bstore *bstore_open(const struct bstore_config *cfg, char *err, size_t errlen)
{
    enum bstore_driver d = BSTORE_SWIFT;
    if (check_config(cfg, &d, err, errlen) != TROVE_OK)
        return NULL;
    struct bstore *bs = calloc(1, sizeof(*bs));
    if (!bs) {
        fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&bs->lock, NULL);
    bs->driver = d;
    bs->container = strdup(cfg->container);
    bs->prefix = strdup(cfg->prefix ? cfg->prefix : "");
    bs->auth_url = dup_or_null(cfg->auth_url);
    bs->user = dup_or_null(cfg->user);
    bs->key = dup_or_null(cfg->key);
    bs->storage_url = dup_or_null(cfg->storage_url);
    bs->token = dup_or_null(cfg->token);
    bs->tempurl_key = dup_or_null(cfg->tempurl_key);
    bs->tempurl_digest = strdup(cfg->tempurl_digest ? cfg->tempurl_digest : "sha256");
    bs->endpoint = dup_or_null(cfg->endpoint);
    bs->region = strdup(cfg->region ? cfg->region : "us-east-1");
    bs->access_key = dup_or_null(cfg->access_key);
    bs->secret_key = dup_or_null(cfg->secret_key);
    bs->part_size = cfg->part_size;
    bs->max_parts = cfg->max_parts;
    bs->ttl = cfg->ttl;
    bs->upload_threads = cfg->upload_threads;
    bs->aws = (struct objsign_aws){bs->access_key, bs->secret_key, bs->region, "s3"};
    bs->curl = objhttp_handle();
    if (!bs->container || !bs->prefix || !bs->tempurl_digest || !bs->region || !bs->curl) {
        bstore_close(bs);
        fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        return NULL;
    }
    if (bs->endpoint) {
        size_t n = strlen(bs->endpoint);
        while (n > 0 && bs->endpoint[n - 1] == '/')
            bs->endpoint[--n] = '\0';
    }
    return bs;
}

/* ------------------------------------------------------------ requests */

/* Names of the objects of one backup. */
static void object_name(const struct bstore *bs, const char *id, const char *leaf, char *out, size_t n)
{
    snprintf(out, n, "%s%s/%s", bs->prefix, id, leaf);
}

static int swift_login(struct bstore *bs, char *err, size_t errlen)
{
    char user[600], key[1200];
    struct objhttp_resp rs;
    if (!bs->auth_url)
        return fail(err, errlen, TROVE_EUNAVAIL, "the swift token was refused and no auth_url is set to get another");
    snprintf(user, sizeof(user), "X-Auth-User: %s", bs->user);
    snprintf(key, sizeof(key), "X-Auth-Key: %s", bs->key);
    const char *headers[] = {user, key, NULL};
    const struct objhttp_req rq = {"GET", bs->auth_url, headers, NULL, 0, NULL, 0, NULL};
    int rc = objhttp_do(bs->curl, &rq, &rs, err, errlen);
    memset(key, 0, sizeof(key));
    if (rc == TROVE_OK && (rs.status != 200 || !rs.token[0] || !rs.storage_url[0])) {
        char what[400];
        objhttp_describe(&rq, &rs, what, sizeof(what));
        rc = fail(err, errlen, rs.status == 401 || rs.status == 403 ? TROVE_EINVAL : TROVE_EUNAVAIL,
                  "swift authentication failed: %s", what);
    }
    if (rc == TROVE_OK) {
        wipe_free(bs->token);
        free(bs->storage_url);
        bs->token = strdup(rs.token);
        bs->storage_url = strdup(rs.storage_url);
        if (!bs->token || !bs->storage_url)
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    objhttp_resp_free(&rs);
    return rc;
}

/* A request to <storage_url>/<container>[/<object>][?query] with the token;
 * one fresh login when the token was refused. */
static int swift_call(struct bstore *bs, const char *method, const char *object, const char *query,
                      const char *const *headers, const void *body, size_t len, size_t max_reply,
                      struct objhttp_resp *rs, char *err, size_t errlen)
{
    int rc = TROVE_OK;
    if (!bs->token && (rc = swift_login(bs, err, errlen)))
        return rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *url = NULL;
        if (asprintf(&url, "%s/%s%s%s%s%s", bs->storage_url, bs->container, object ? "/" : "", object ? object : "",
                     query ? "?" : "", query ? query : "") < 0)
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        const struct objhttp_auth auth = {bs->token, NULL};
        const struct objhttp_req rq = {method, url, headers, body, len, &auth, max_reply, NULL};
        rc = objhttp_do(bs->curl, &rq, rs, err, errlen);
        free(url);
        if (rc != TROVE_OK || rs->status != 401 || attempt == 1 || !bs->auth_url)
            return rc;
        objhttp_resp_free(rs);
        if ((rc = swift_login(bs, err, errlen)))
            return rc;
    }
    return rc;
}

/* A request to <endpoint>/<bucket>[/<key>][?query], signed by libcurl.
 * query must be in canonical form already: names sorted, values encoded. */
static int s3_call(struct bstore *bs, const char *method, const char *key, const char *query, const void *body,
                   size_t len, size_t max_reply, struct objhttp_resp *rs, char *err, size_t errlen)
{
    char *url = NULL;
    if (asprintf(&url, "%s/%s%s%s%s%s", bs->endpoint, bs->container, key ? "/" : "", key ? key : "",
                 query ? "?" : "", query ? query : "") < 0)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    const struct objhttp_auth auth = {NULL, &bs->aws};
    const char *headers[] = {"Content-Type: application/octet-stream", NULL};
    const struct objhttp_req rq = {method, url, body ? headers : NULL, body, len, &auth, max_reply, NULL};
    int rc = objhttp_do(bs->curl, &rq, rs, err, errlen);
    free(url);
    return rc;
}

/* A reply with an unexpected status as an error (reply freed). */
static int reply_error(const char *method, const char *what, struct objhttp_resp *rs, char *err, size_t errlen)
{
    char first[200] = "";
    if (rs->body) {
        const char *code = strstr(rs->body, "<Code>");
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(code ? code + 6 : rs->body, "<\r\n"),
                 code ? code + 6 : rs->body);
    }
    int rc = rs->status == 404 ? TROVE_ENOTFOUND
             : rs->status == 401 || rs->status == 403 ? TROVE_EINVAL
             : objhttp_retryable(rs->status) ? TROVE_EUNAVAIL : TROVE_EINTERNAL;
    fail(err, errlen, rc, "%s %s: HTTP %ld%s%s", method, what, rs->status, first[0] ? ": " : "", first);
    objhttp_resp_free(rs);
    return rc;
}

/* ------------------------------------------------------------ XML bits */

/* The next <tag>text</tag> at or after *pos: text copied (entities of
 * S3's replies decoded) into out; *pos moves past it. false when none. */
static bool xml_next(const char **pos, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = *pos ? strstr(*pos, open) : NULL;
    const char *b = a ? strstr(a, close) : NULL;
    if (!b)
        return false;
    a += strlen(open);
    size_t k = 0;
    for (const char *p = a; p < b && k + 1 < n; p++) {
        static const struct { const char *ent; char c; } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        char c = *p;
        for (size_t e = 0; c == '&' && e < sizeof(ents) / sizeof(ents[0]); e++)
            if (!strncmp(p, ents[e].ent, strlen(ents[e].ent))) {
                c = ents[e].c;
                p += strlen(ents[e].ent) - 1;
                break;
            }
        out[k++] = c;
    }
    out[k] = '\0';
    *pos = b + strlen(close);
    return true;
}

/* ------------------------------------------------------------ set-up */

static int swift_setup(struct bstore *bs, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    char keyh[600];
    int rc = swift_call(bs, "PUT", NULL, NULL, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    if (rs.status != 201 && rs.status != 202)
        return reply_error("PUT", bs->container, &rs, err, errlen);
    objhttp_resp_free(&rs);
    snprintf(keyh, sizeof(keyh), "X-Container-Meta-Temp-URL-Key: %s", bs->tempurl_key);
    const char *headers[] = {keyh, NULL};
    rc = swift_call(bs, "POST", NULL, NULL, headers, NULL, 0, 0, &rs, err, errlen);
    memset(keyh, 0, sizeof(keyh));
    if (rc)
        return rc;
    if (rs.status != 204 && rs.status != 202)
        return reply_error("POST", bs->container, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

static int s3_setup(struct bstore *bs, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    int rc = s3_call(bs, "PUT", NULL, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    /* 409 BucketAlreadyOwnedByYou: it is there, and ours. */
    if (rs.status != 200 && !(rs.status == 409 && rs.body && strstr(rs.body, "BucketAlreadyOwnedByYou")))
        return reply_error("PUT", bs->container, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

int bstore_setup(struct bstore *bs, char *err, size_t errlen)
{
    pthread_mutex_lock(&bs->lock);
    int rc = bs->driver == BSTORE_SWIFT ? swift_setup(bs, err, errlen) : s3_setup(bs, err, errlen);
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

/* ------------------------------------------------------------ scopes */

/* The part size for a piece of up to max_size bytes: the configured size,
 * grown (in whole MiB) when max_parts parts would not hold it. */
static int plan_parts(const struct bstore *bs, uint64_t max_size, uint32_t *part, uint32_t *parts, char *err,
                      size_t errlen)
{
    uint64_t size = bs->part_size;
    if (max_size == 0) {
        *part = bs->part_size;
        *parts = bs->max_parts;
        return TROVE_OK;
    }
    if ((max_size + size - 1) / size > bs->max_parts) {
        uint64_t mib = 1u << 20;
        size = ((max_size + bs->max_parts - 1) / bs->max_parts + mib - 1) / mib * mib;
    }
    if (size > BSTORE_PART_MAX)
        return fail(err, errlen, TROVE_EINVAL, "a piece of %llu bytes needs parts over %u bytes with max_parts %u",
                    (unsigned long long)max_size, BSTORE_PART_MAX, bs->max_parts);
    *part = (uint32_t)size;
    *parts = (uint32_t)((max_size + size - 1) / size);
    return TROVE_OK;
}

static int tempurl_sig(struct bstore *bs, const char *method, int64_t expires, const char *path, char *out)
{
    return objsign_tempurl(bs->tempurl_digest, bs->tempurl_key, method, expires, path, true, out, OBJSIGN_TEMPURL_MAX);
}

static int swift_grant(struct bstore *bs, const struct bstore_grant *g, int64_t expires, struct tv *e, char *err,
                       size_t errlen)
{
    char prefix[400], path[2048], sig[OBJSIGN_TEMPURL_MAX];
    int rc;
    if (!bs->token && (rc = swift_login(bs, err, errlen)))
        return rc;
    const char *v1 = strstr(bs->storage_url, "/v1/");
    if (!v1)
        return fail(err, errlen, TROVE_EINVAL, "swift storage URL has no /v1/ account path");
    snprintf(prefix, sizeof(prefix), "%s%s/", bs->prefix, g->backup_id);
    snprintf(path, sizeof(path), "%s/%s/%s", v1, bs->container, prefix);
    if (tv_set_str(e, "account_url", bs->storage_url) || tv_set_str(e, "container", bs->container) ||
        tv_set_str(e, "prefix", prefix) || tv_set_int(e, "temp_url_expires", expires))
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    const char *methods[] = {"GET", "PUT", "DELETE"};
    const char *keys[] = {"sig_get", "sig_put", "sig_delete"};
    for (int i = 0; i < (g->write ? 3 : 1); i++) {
        if (tempurl_sig(bs, methods[i], expires, path, sig) != 0)
            return fail(err, errlen, TROVE_EINTERNAL, "cannot sign a TempURL with digest %s", bs->tempurl_digest);
        if (tv_set_str(e, keys[i], sig))
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    return TROVE_OK;
}

static int presign_into(struct bstore *bs, struct tv *dst, const char *field, const char *method, const char *key,
                        const struct objsign_kv *q, size_t nq, time_t now, uint32_t ttl, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof(path), "/%s/%s", bs->container, key);
    char *url = objsign_s3_presign(&bs->aws, method, bs->endpoint, path, q, nq, now, ttl, err, errlen);
    if (!url)
        return TROVE_EINVAL;
    int bad = field ? tv_set_str(dst, field, url) : tv_append(dst, tv_str(url));
    free(url);
    return bad ? fail(err, errlen, TROVE_EINTERNAL, "out of memory") : TROVE_OK;
}

static int s3_start_upload(struct bstore *bs, const char *key, char *upload_id, size_t n, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    int rc = s3_call(bs, "POST", key, "uploads=", NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    const char *pos = rs.body;
    if (rs.status != 200 || !xml_next(&pos, "UploadId", upload_id, n) || !upload_id[0])
        return reply_error("POST (create multipart upload)", key, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

static int s3_grant(struct bstore *bs, const struct bstore_grant *g, time_t now, uint32_t ttl, uint32_t parts,
                    struct tv *e, char *err, size_t errlen)
{
    char piece[400], record[400], upload[512], num[16];
    int rc;
    object_name(bs, g->backup_id, BSTORE_PIECE, piece, sizeof(piece));
    object_name(bs, g->backup_id, BSTORE_RECORD, record, sizeof(record));
    if ((rc = presign_into(bs, e, "record_get", "GET", record, NULL, 0, now, ttl, err, errlen)))
        return rc;
    if (!g->write)
        return presign_into(bs, e, "piece_get", "GET", piece, NULL, 0, now, ttl, err, errlen);
    if ((rc = presign_into(bs, e, "record_put", "PUT", record, NULL, 0, now, ttl, err, errlen)) ||
        (rc = s3_start_upload(bs, piece, upload, sizeof(upload), err, errlen)))
        return rc;
    const struct objsign_kv up = {"uploadId", upload};
    struct tv *list = tv_child_array(e, "parts");
    if (!list)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    for (uint32_t i = 1; i <= parts; i++) {
        snprintf(num, sizeof(num), "%u", i);
        const struct objsign_kv q[] = {{"partNumber", num}, up};
        if ((rc = presign_into(bs, list, NULL, "PUT", piece, q, 2, now, ttl, err, errlen)))
            return rc;
    }
    if ((rc = presign_into(bs, e, "complete", "POST", piece, &up, 1, now, ttl, err, errlen)) ||
        (rc = presign_into(bs, e, "abort", "DELETE", piece, &up, 1, now, ttl, err, errlen)))
        return rc;
    return TROVE_OK;
}

static int one_grant(struct bstore *bs, const struct bstore_grant *g, time_t now, uint32_t ttl, struct tv *e,
                     char *err, size_t errlen)
{
    uint32_t part = bs->part_size, parts = bs->max_parts;
    int rc;
    if (!g->backup_id || !bstore_id_ok(g->backup_id))
        return fail(err, errlen, TROVE_EINVAL, "backup id \"%s\" is invalid", g->backup_id ? g->backup_id : "");
    if (g->write && (rc = plan_parts(bs, g->max_size, &part, &parts, err, errlen)))
        return rc;
    if (tv_set_str(e, "id", g->backup_id) || tv_set_str(e, "access", g->write ? "write" : "read") ||
        (g->write && (tv_set_int(e, "part_size", part) || tv_set_int(e, "max_parts", parts))) ||
        (!g->write && g->record && tv_set(e, "record", tv_copy(g->record))))
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    return bs->driver == BSTORE_SWIFT ? swift_grant(bs, g, (int64_t)now + ttl, e, err, errlen)
                                      : s3_grant(bs, g, now, ttl, parts, e, err, errlen);
}

int bstore_scope(struct bstore *bs, const struct bstore_grant *grants, size_t n, uint32_t ttl, struct tv **out,
                 char *err, size_t errlen)
{
    time_t now = time(NULL);
    int rc = TROVE_OK;
    *out = NULL;
    if (ttl == 0)
        ttl = bs->ttl;
    if (ttl > BSTORE_TTL_MAX)
        return fail(err, errlen, TROVE_EINVAL, "signed URLs live at most %u seconds", BSTORE_TTL_MAX);
    struct tv *scope = tv_map();
    struct tv *list = scope ? tv_child_array(scope, "backups") : NULL;
    if (!list || tv_set_str(scope, "driver", bs->driver == BSTORE_SWIFT ? "swift" : "s3") ||
        tv_set_int(scope, "expires", (int64_t)now + ttl) || tv_set_int(scope, "upload_threads", bs->upload_threads)) {
        tv_free(scope);
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    pthread_mutex_lock(&bs->lock);
    for (size_t i = 0; i < n && rc == TROVE_OK; i++) {
        struct tv *e = tv_map();
        if (!e) {
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
            break;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(grants[i].backup_id ? grants[i].backup_id : "", grants[j].backup_id ? grants[j].backup_id : ""))
                rc = fail(err, errlen, TROVE_EINVAL, "backup %s is granted twice", grants[i].backup_id);
        if (rc == TROVE_OK)
            rc = one_grant(bs, &grants[i], now, ttl, e, err, errlen);
        if (tv_append(list, e) && rc == TROVE_OK)
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    pthread_mutex_unlock(&bs->lock);
    if (rc != TROVE_OK) {
        tv_free(scope);
        return rc;
    }
    *out = scope;
    return TROVE_OK;
}

/* ------------------------------------------------------------ sealing */

static bool hex32(const char *s)
{
    return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* Check the guest's draft and rebuild the manifest from the checked fields
 * only: segment i must be "/<container>/<prefix><id>/piece.seg/<i>". */
static int manifest_from_draft(struct bstore *bs, const char *id, const char *draft, uint64_t stored_size,
                               char **manifest, char *err, size_t errlen)
{
    struct tv *doc = NULL, *out = tv_array();
    int rc = TROVE_OK;
    uint64_t total = 0;
    if (!out)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    if (json_to_tv(draft, &doc, err, errlen) != 0 || doc->type != TV_ARRAY || doc->u.a.len == 0 ||
        doc->u.a.len > bs->max_parts) {
        rc = fail(err, errlen, TROVE_ECHECKSUM, "the draft manifest of backup %s is not a list of 1-%u segments",
                  id, bs->max_parts);
        goto out;
    }
    for (size_t i = 0; i < doc->u.a.len; i++) {
        const struct tv *seg = doc->u.a.items[i];
        char want[1024], leaf[64];
        snprintf(leaf, sizeof(leaf), BSTORE_SEGMENT_FMT, (unsigned)(i + 1));
        snprintf(want, sizeof(want), "/%s/%s%s/%s", bs->container, bs->prefix, id, leaf);
        const char *path = tv_get_str(seg, "path"), *etag = tv_get_str(seg, "etag");
        int64_t size = tv_get_int(seg, "size_bytes", -1);
        if (!path || strcmp(path, want) != 0 || !hex32(etag) || size <= 0 || size > BSTORE_PART_MAX) {
            rc = fail(err, errlen, TROVE_ECHECKSUM, "segment %zu of backup %s's draft manifest is not %s with an "
                      "MD5 ETag and a size", i + 1, id, want);
            goto out;
        }
        total += (uint64_t)size;
        struct tv *m = tv_map();
        if (!m || tv_set_str(m, "path", want) || tv_set_str(m, "etag", etag) || tv_set_int(m, "size_bytes", size)) {
            tv_free(m);
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
            goto out;
        }
        if (tv_append(out, m)) {
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
            goto out;
        }
    }
    if (stored_size && total != stored_size) {
        rc = fail(err, errlen, TROVE_ECHECKSUM, "backup %s's segments hold %llu bytes, its record says %llu", id,
                  (unsigned long long)total, (unsigned long long)stored_size);
        goto out;
    }
    if (!(*manifest = tv_to_json(out, false)))
        rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
out:
    tv_free(doc);
    tv_free(out);
    return rc;
}

static int swift_seal(struct bstore *bs, const char *id, uint64_t stored_size, char *err, size_t errlen)
{
    char draft[400], piece[400];
    struct objhttp_resp rs;
    char *manifest = NULL;
    object_name(bs, id, BSTORE_DRAFT, draft, sizeof(draft));
    object_name(bs, id, BSTORE_PIECE, piece, sizeof(piece));
    int rc = swift_call(bs, "GET", draft, NULL, NULL, NULL, 0, DRAFT_MAX, &rs, err, errlen);
    if (rc)
        return rc;
    if (rs.status == 404) {
        objhttp_resp_free(&rs);
        return fail(err, errlen, TROVE_ENOTFOUND, "backup %s has no draft manifest: the upload did not finish", id);
    }
    if (rs.status != 200 || rs.body_cut || !rs.body)
        return reply_error("GET", draft, &rs, err, errlen);
    rc = manifest_from_draft(bs, id, rs.body, stored_size, &manifest, err, errlen);
    objhttp_resp_free(&rs);
    if (rc)
        return rc;
    /* Swift checks every segment's size and ETag against the manifest. */
    rc = swift_call(bs, "PUT", piece, "multipart-manifest=put", NULL, manifest, strlen(manifest), 0, &rs, err,
                    errlen);
    free(manifest);
    if (rc)
        return rc;
    if (rs.status != 201) {
        rc = reply_error("PUT (SLO manifest)", piece, &rs, err, errlen);
        return rc == TROVE_EINTERNAL ? TROVE_ECHECKSUM : rc;
    }
    objhttp_resp_free(&rs);
    rc = swift_call(bs, "DELETE", draft, NULL, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc == TROVE_OK)
        objhttp_resp_free(&rs);
    return TROVE_OK;
}

static int s3_seal(struct bstore *bs, const char *id, uint64_t stored_size, char *err, size_t errlen)
{
    char piece[400];
    struct objhttp_resp rs;
    object_name(bs, id, BSTORE_PIECE, piece, sizeof(piece));
    int rc = s3_call(bs, "HEAD", piece, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    if (rs.status == 404) {
        objhttp_resp_free(&rs);
        return fail(err, errlen, TROVE_ENOTFOUND, "backup %s was never completed", id);
    }
    if (rs.status != 200)
        return reply_error("HEAD", piece, &rs, err, errlen);
    if (stored_size && rs.content_length != (int64_t)stored_size)
        rc = fail(err, errlen, TROVE_ECHECKSUM, "backup %s holds %lld bytes, its record says %llu", id,
                  (long long)rs.content_length, (unsigned long long)stored_size);
    objhttp_resp_free(&rs);
    return rc;
}

int bstore_seal(struct bstore *bs, const char *id, uint64_t stored_size, char *err, size_t errlen)
{
    if (!bstore_id_ok(id))
        return fail(err, errlen, TROVE_EINVAL, "backup id \"%s\" is invalid", id);
    pthread_mutex_lock(&bs->lock);
    int rc = bs->driver == BSTORE_SWIFT ? swift_seal(bs, id, stored_size, err, errlen)
                                        : s3_seal(bs, id, stored_size, err, errlen);
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

/* ------------------------------------------------------------ listing and removal */

/* Names of the objects under `prefix`, after `marker`, one page. */
typedef int (*name_fn)(struct bstore *bs, const char *name, void *ctx, char *err, size_t errlen);

static int swift_each(struct bstore *bs, const char *prefix, name_fn fn, void *ctx, char *err, size_t errlen)
{
    char *marker = strdup("");
    int rc = marker ? TROVE_OK : TROVE_EINTERNAL;
    while (rc == TROVE_OK) {
        char *p = objsign_uri_encode(prefix, false), *m = objsign_uri_encode(marker, false), *query = NULL;
        struct objhttp_resp rs;
        struct tv *list = NULL;
        if (!p || !m || asprintf(&query, "format=json&prefix=%s&marker=%s", p, m) < 0)
            rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        free(p);
        free(m);
        if (rc == TROVE_OK)
            rc = swift_call(bs, "GET", NULL, query, NULL, NULL, 0, LIST_REPLY_MAX, &rs, err, errlen);
        free(query);
        if (rc)
            break;
        if (rs.status == 204 || rs.status == 404) {
            objhttp_resp_free(&rs);
            break;
        }
        if (rs.status != 200 || rs.body_cut || json_to_tv(rs.body ? rs.body : "", &list, err, errlen) != 0 ||
            list->type != TV_ARRAY) {
            tv_free(list);
            rc = rs.status != 200 ? reply_error("GET (list)", bs->container, &rs, err, errlen)
                                  : fail(err, errlen, TROVE_EUNAVAIL, "unreadable container listing");
            if (rs.status == 200)
                objhttp_resp_free(&rs);
            break;
        }
        objhttp_resp_free(&rs);
        size_t n = list->u.a.len;
        for (size_t i = 0; i < n && rc == TROVE_OK; i++) {
            const char *name = tv_get_str(list->u.a.items[i], "name");
            if (!name)
                continue;
            rc = fn(bs, name, ctx, err, errlen);
            free(marker);
            if (!(marker = strdup(name)))
                rc = fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        }
        tv_free(list);
        if (n == 0)
            break;
    }
    free(marker);
    return rc;
}

static int swift_delete_one(struct bstore *bs, const char *name, void *ctx, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    (void)ctx;
    int rc = swift_call(bs, "DELETE", name, NULL, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    if (rs.status != 204 && rs.status != 404)
        return reply_error("DELETE", name, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

/* S3 listings: keys (or uploads) under prefix, page by page. */
static int s3_each(struct bstore *bs, const char *prefix, bool uploads, name_fn fn, void *ctx, char *err,
                   size_t errlen)
{
    char token[1024] = "", key_marker[1024] = "", upload_marker[1024] = "";
    int rc = TROVE_OK;
    for (;;) {
        char *p = objsign_uri_encode(prefix, false), *t = objsign_uri_encode(token, false), *query = NULL;
        char *km = objsign_uri_encode(key_marker, false), *um = objsign_uri_encode(upload_marker, false);
        struct objhttp_resp rs;
        int bad = !p || !t || !km || !um;
        if (!bad && uploads)
            bad = asprintf(&query, "key-marker=%s&prefix=%s&upload-id-marker=%s&uploads=", km, p, um) < 0;
        else if (!bad)
            bad = asprintf(&query, "%s%s%slist-type=2&prefix=%s", token[0] ? "continuation-token=" : "", t,
                           token[0] ? "&" : "", p) < 0;
        free(p);
        free(t);
        free(km);
        free(um);
        if (bad) {
            free(query);
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        }
        rc = s3_call(bs, "GET", NULL, query, NULL, 0, LIST_REPLY_MAX, &rs, err, errlen);
        free(query);
        if (rc)
            return rc;
        if (rs.status != 200 || rs.body_cut)
            return reply_error("GET (list)", bs->container, &rs, err, errlen);
        const char *pos = rs.body;
        char key[8192], id[1024], more[16] = "false";
        while (rc == TROVE_OK && xml_next(&pos, uploads ? "Upload" : "Contents", key, sizeof(key))) {
            const char *inner = key;
            char name[1024];
            if (!xml_next(&inner, "Key", name, sizeof(name)))
                continue;
            if (uploads) {
                if (!xml_next(&inner, "UploadId", id, sizeof(id)))
                    continue;
                char both[2100];
                snprintf(both, sizeof(both), "%s\n%s", name, id);
                rc = fn(bs, both, ctx, err, errlen);
            } else {
                rc = fn(bs, name, ctx, err, errlen);
            }
        }
        const char *p2 = rs.body;
        xml_next(&p2, "IsTruncated", more, sizeof(more));
        p2 = rs.body;
        if (uploads) {
            xml_next(&p2, "NextKeyMarker", key_marker, sizeof(key_marker));
            p2 = rs.body;
            xml_next(&p2, "NextUploadIdMarker", upload_marker, sizeof(upload_marker));
        } else {
            token[0] = '\0';
            xml_next(&p2, "NextContinuationToken", token, sizeof(token));
        }
        objhttp_resp_free(&rs);
        if (rc || strcmp(more, "true") != 0 || (!uploads && !token[0]))
            return rc;
    }
}

static int s3_delete_one(struct bstore *bs, const char *name, void *ctx, char *err, size_t errlen)
{
    struct objhttp_resp rs;
    (void)ctx;
    int rc = s3_call(bs, "DELETE", name, NULL, NULL, 0, 0, &rs, err, errlen);
    if (rc)
        return rc;
    if (rs.status != 204 && rs.status != 200 && rs.status != 404)
        return reply_error("DELETE", name, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

static int s3_abort_one(struct bstore *bs, const char *key_and_id, void *ctx, char *err, size_t errlen)
{
    char key[1024], *q = NULL;
    struct objhttp_resp rs;
    (void)ctx;
    const char *nl = strchr(key_and_id, '\n');
    if (!nl)
        return TROVE_OK;
    snprintf(key, sizeof(key), "%.*s", (int)(nl - key_and_id), key_and_id);
    char *id = objsign_uri_encode(nl + 1, false);
    if (!id || asprintf(&q, "uploadId=%s", id) < 0) {
        free(id);
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    }
    free(id);
    int rc = s3_call(bs, "DELETE", key, q, NULL, 0, 0, &rs, err, errlen);
    free(q);
    if (rc)
        return rc;
    if (rs.status != 204 && rs.status != 404)
        return reply_error("DELETE (abort multipart upload)", key, &rs, err, errlen);
    objhttp_resp_free(&rs);
    return TROVE_OK;
}

int bstore_remove(struct bstore *bs, const char *id, char *err, size_t errlen)
{
    char prefix[400];
    int rc;
    if (!bstore_id_ok(id))
        return fail(err, errlen, TROVE_EINVAL, "backup id \"%s\" is invalid", id);
    snprintf(prefix, sizeof(prefix), "%s%s/", bs->prefix, id);
    pthread_mutex_lock(&bs->lock);
    if (bs->driver == BSTORE_SWIFT) {
        rc = swift_each(bs, prefix, swift_delete_one, NULL, err, errlen);
    } else {
        rc = s3_each(bs, prefix, true, s3_abort_one, NULL, err, errlen);
        if (rc == TROVE_OK)
            rc = s3_each(bs, prefix, false, s3_delete_one, NULL, err, errlen);
    }
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

struct id_list {
    char **ids;
    size_t n, cap;
};

/* "<prefix><id>/record.json" -> id */
static int collect_record(struct bstore *bs, const char *name, void *ctx, char *err, size_t errlen)
{
    struct id_list *l = ctx;
    size_t plen = strlen(bs->prefix), len = strlen(name), rlen = strlen("/" BSTORE_RECORD);
    if (len <= plen + rlen || strncmp(name, bs->prefix, plen) || strcmp(name + len - rlen, "/" BSTORE_RECORD))
        return TROVE_OK;
    char *id = strndup(name + plen, len - plen - rlen);
    if (!id)
        return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
    if (!bstore_id_ok(id)) {
        free(id);
        return TROVE_OK;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->ids, cap * sizeof(*grown));
        if (!grown) {
            free(id);
            return fail(err, errlen, TROVE_EINTERNAL, "out of memory");
        }
        l->ids = grown;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return TROVE_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bstore_list(struct bstore *bs, char ***ids, size_t *n, char *err, size_t errlen)
{
    struct id_list l = {0};
    pthread_mutex_lock(&bs->lock);
    int rc = bs->driver == BSTORE_SWIFT ? swift_each(bs, bs->prefix, collect_record, &l, err, errlen)
                                        : s3_each(bs, bs->prefix, false, collect_record, &l, err, errlen);
    pthread_mutex_unlock(&bs->lock);
    if (rc != TROVE_OK) {
        for (size_t i = 0; i < l.n; i++)
            free(l.ids[i]);
        free(l.ids);
        return rc;
    }
    if (l.n)
        qsort(l.ids, l.n, sizeof(*l.ids), cmp_str);
    *ids = l.ids;
    *n = l.n;
    return TROVE_OK;
}
