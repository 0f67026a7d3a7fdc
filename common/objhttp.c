/*
 * objhttp.c - single HTTP requests to Swift or S3 over libcurl (objhttp.h).
 * Streaming reads of whole pieces live with the agent's drivers; this file
 * keeps every reply in bounded memory.
 */
#include "objhttp.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trove_plugin.h"

#define DEFAULT_MAX_REPLY (64u * 1024)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void objhttp_init(void)
{
    pthread_once(&init_once, init_curl);
}

void objhttp_defaults(CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
    /* A transfer that moves nothing for a minute is dead, however large it is. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
}

CURL *objhttp_handle(void)
{
    objhttp_init();
    return curl_easy_init();
}

struct upload {
    const char *p;
    size_t left;
};

static size_t read_body(char *buf, size_t size, size_t n, void *ctx)
{
    struct upload *u = ctx;
    size_t k = size * n < u->left ? size * n : u->left;
    memcpy(buf, u->p, k);
    u->p += k;
    u->left -= k;
    return k;
}

struct reply {
    struct objhttp_resp *rs;
    size_t max;
    bool oom;
};

static size_t write_body(char *data, size_t size, size_t n, void *ctx)
{
    struct reply *r = ctx;
    size_t len = size * n;
    struct objhttp_resp *rs = r->rs;
    size_t keep = rs->body_len < r->max ? r->max - rs->body_len : 0;
    if (keep > len)
        keep = len;
    if (keep < len)
        rs->body_cut = true;
    if (keep) {
        char *grown = realloc(rs->body, rs->body_len + keep + 1);
        if (!grown) {
            r->oom = true;
            return 0;
        }
        rs->body = grown;
        memcpy(rs->body + rs->body_len, data, keep);
        rs->body_len += keep;
        rs->body[rs->body_len] = '\0';
    }
    return len;
}

/* Copy a header's value (trimmed, quotes removed for ETag) when its name matches. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t outlen, bool unquote)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (unquote && end - v >= 2 && *v == '"' && end[-1] == '"') {
        v++;
        end--;
    }
    size_t k = (size_t)(end - v) < outlen - 1 ? (size_t)(end - v) : outlen - 1;
    memcpy(out, v, k);
    out[k] = '\0';
    return true;
}

static size_t write_header(char *line, size_t size, size_t n, void *ctx)
{
    struct objhttp_resp *rs = ctx;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {   /* a new reply (after a 1xx): forget the last */
        rs->etag[0] = rs->storage_url[0] = rs->token[0] = '\0';
        return len;
    }
    if (!header_value(line, len, "ETag", rs->etag, sizeof(rs->etag), true) &&
        !header_value(line, len, "X-Storage-Url", rs->storage_url, sizeof(rs->storage_url), false) &&
        !header_value(line, len, "X-Auth-Token", rs->token, sizeof(rs->token), false))
        header_value(line, len, "X-Subject-Token", rs->token, sizeof(rs->token), false);
    return len;
}

void objhttp_url_for_log(const char *url, char *out, size_t n)
{
    size_t len = strcspn(url, "?#");
    if (len >= n)
        len = n - 1;
    memcpy(out, url, len);
    out[len] = '\0';
}

static struct curl_slist *build_headers(const struct objhttp_req *rq, bool *oom)
{
    struct curl_slist *list = NULL, *next;
    char line[1200];
    *oom = false;
#define ADD(s)                                  \
    do {                                        \
        if (!(next = curl_slist_append(list, s))) \
            goto fail;                          \
        list = next;                            \
    } while (0)
    /* No 100-continue round trip before each part. (Not with libcurl's SigV4:
     * it would sign the empty header that is then never sent.) */
    if (!rq->auth || !rq->auth->aws)
        ADD("Expect:");
    for (const char *const *h = rq->headers; h && *h; h++)
        ADD(*h);
    if (rq->auth && rq->auth->token) {
        if ((size_t)snprintf(line, sizeof(line), "X-Auth-Token: %s", rq->auth->token) >= sizeof(line))
            goto fail;
        ADD(line);
    }
    if (rq->auth && rq->auth->aws) {
        /* libcurl signs this header's value as the payload hash. */
        char sha[OBJSIGN_SHA256_HEX];
        objsign_sha256_hex(rq->body ? rq->body : "", rq->body ? rq->body_len : 0, sha);
        snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
        ADD(line);
    }
#undef ADD
    return list;
fail:
    curl_slist_free_all(list);
    *oom = true;
    return NULL;
}

static void set_method(CURL *h, const struct objhttp_req *rq, struct upload *up)
{
    const char *m = rq->method;
    if (!strcmp(m, "PUT")) {
        *up = (struct upload){rq->body ? rq->body : "", rq->body ? rq->body_len : 0};
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, up);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->left);
    } else if (!strcmp(m, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->body_len : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
    } else if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
}

static int check_cancel(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load((const atomic_bool *)ctx) ? 1 : 0;
}

static void set_auth(CURL *h, const struct objhttp_auth *auth)
{
    if (!auth || !auth->aws)
        return;
    char provider[300];
    snprintf(provider, sizeof(provider), "aws:amz:%s:%s", auth->aws->region, auth->aws->service);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, provider);
    curl_easy_setopt(h, CURLOPT_USERNAME, auth->aws->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, auth->aws->secret_key);
}

int objhttp_do(CURL *h, const struct objhttp_req *rq, struct objhttp_resp *rs, char *err, size_t errlen)
{
    struct upload up = {0};
    struct reply rp = {rs, rq->max_reply ? rq->max_reply : DEFAULT_MAX_REPLY, false};
    char where[512], curl_err[CURL_ERROR_SIZE] = "";
    bool oom;
    memset(rs, 0, sizeof(*rs));
    objhttp_url_for_log(rq->url, where, sizeof(where));
    struct curl_slist *headers = build_headers(rq, &oom);
    if (oom) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    curl_easy_reset(h);
    objhttp_defaults(h);
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, write_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    set_method(h, rq, &up);
    set_auth(h, rq->auth);
    if (rq->cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, check_cancel);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)rq->cancel);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_off_t length = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    rs->content_length = (int64_t)length;
    /* Nothing of this request (its headers, its credentials) stays on the handle. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    curl_slist_free_all(headers);
    if (rp.oom || cc != CURLE_OK)
        objhttp_resp_free(rs);   /* no reply to read: nothing is left to free */
    if (rp.oom) {
        snprintf(err, errlen, "out of memory reading the reply of %s %s", rq->method, where);
        return TROVE_EINTERNAL;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(err, errlen, "%s %s: cancelled", rq->method, where);
        return TROVE_ECANCELLED;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", rq->method, where, curl_err[0] ? curl_err : curl_easy_strerror(cc));
        return TROVE_EUNAVAIL;
    }
    return TROVE_OK;
}

void objhttp_resp_free(struct objhttp_resp *rs)
{
    free(rs->body);
    rs->body = NULL;
    rs->body_len = 0;
    memset(rs->token, 0, sizeof(rs->token));
}

void objhttp_describe(const struct objhttp_req *rq, const struct objhttp_resp *rs, char *out, size_t n)
{
    char where[512], first[200] = "";
    objhttp_url_for_log(rq->url, where, sizeof(where));
    if (rs->body) {
        /* S3 errors are XML: the <Code> and <Message> say more than the first line. */
        const char *code = strstr(rs->body, "<Code>"), *msg = strstr(rs->body, "<Message>");
        if (code && msg)
            snprintf(first, sizeof(first), "%.*s: %.*s", (int)strcspn(code + 6, "<"), code + 6,
                     (int)strcspn(msg + 9, "<"), msg + 9);
        else
            snprintf(first, sizeof(first), "%.*s", (int)strcspn(rs->body, "\r\n"), rs->body);
    }
    snprintf(out, n, "%s %s: HTTP %ld%s%s", rq->method, where, rs->status, first[0] ? ": " : "", first);
}

bool objhttp_retryable(long status)
{
    return status == 408 || status == 429 || status >= 500;
}

void objhttp_md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
    for (unsigned int i = 0; i < n && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}
