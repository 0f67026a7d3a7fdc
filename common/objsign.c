/*
 * objsign.c - Swift TempURL and AWS SigV4 signing (see objsign.h). Builds
 * strings and HMACs only; it never sends a request and never logs a key.
 */
#include "objsign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string; on allocation failure it stays failed and yields NULL. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static char *sb_take(struct sbuf *b)
{
    if (b->failed || !b->p) {
        free(b->p);
        return b->failed ? NULL : strdup("");
    }
    return b->p;
}

static void hex(const unsigned char *md, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

char *objsign_uri_encode(const char *s, bool keep_slash)
{
    struct sbuf b = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            sb_addn(&b, (const char *)p, 1);
        } else {
            char esc[4];
            snprintf(esc, sizeof(esc), "%%%02X", *p);
            sb_addn(&b, esc, 3);
        }
    }
    return sb_take(&b);
}

void objsign_sha256_hex(const void *data, size_t len, char out[OBJSIGN_SHA256_HEX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    hex(md, sizeof(md), out);
}

static void hmac256(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n);
}

/* ---------------------------------------------------------- Swift TempURL */

int objsign_tempurl(const char *digest, const char *key, const char *method, int64_t expires, const char *path,
                    bool prefix, char *out, size_t outlen)
{
    const EVP_MD *md = !strcmp(digest, "sha1") ? EVP_sha1() : !strcmp(digest, "sha256") ? EVP_sha256()
                       : !strcmp(digest, "sha512") ? EVP_sha512() : NULL;
    if (!md)
        return -1;
    struct sbuf body = {0};
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)expires);
    sb_add(&body, method);
    sb_add(&body, "\n");
    sb_add(&body, num);
    sb_add(&body, "\n");
    if (prefix)
        sb_add(&body, "prefix:");
    sb_add(&body, path);
    char *text = sb_take(&body);
    if (!text)
        return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(md, key, (int)strlen(key), (const unsigned char *)text, strlen(text), mac, &n);
    free(text);
    if (md == EVP_sha512()) {
        /* Swift wants "sha512:" + URL-safe base64 (padding kept). */
        unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
        int len = EVP_EncodeBlock(b64, mac, (int)n);
        if ((size_t)len + 8 > outlen)
            return -1;
        for (int i = 0; i < len; i++)
            b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
        snprintf(out, outlen, "sha512:%s", (const char *)b64);
        return 0;
    }
    if (2 * (size_t)n + 1 > outlen)
        return -1;
    hex(mac, n, out);
    return 0;
}

/* ------------------------------------------------------- AWS SigV4 core */

struct enc_kv {
    char *name, *value;
};

static int enc_kv_cmp(const void *a, const void *b)
{
    const struct enc_kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* "a=1&b=2": names and values encoded, sorted by encoded name then value. */
static char *canonical_query(const struct objsign_kv *q, size_t n)
{
    struct enc_kv *e = calloc(n ? n : 1, sizeof(*e));
    struct sbuf b = {0};
    bool ok = e != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        e[i].name = objsign_uri_encode(q[i].name, false);
        e[i].value = objsign_uri_encode(q[i].value ? q[i].value : "", false);
        ok = e[i].name && e[i].value;
    }
    if (ok) {
        qsort(e, n, sizeof(*e), enc_kv_cmp);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_add(&b, "&");
            sb_add(&b, e[i].name);
            sb_add(&b, "=");
            sb_add(&b, e[i].value);
        }
    }
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].name);
        free(e[i].value);
    }
    free(e);
    if (!ok) {
        free(b.p);
        return NULL;
    }
    return sb_take(&b);
}

static int kv_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct objsign_kv *)a)->name, ((const struct objsign_kv *)b)->name);
}

char *objsign_sigv4_canonical(const struct objsign_request *r)
{
    struct sbuf b = {0};
    char *uri = objsign_uri_encode(r->path && r->path[0] ? r->path : "/", true);
    char *query = canonical_query(r->query, r->n_query);
    struct objsign_kv *h = malloc((r->n_headers ? r->n_headers : 1) * sizeof(*h));
    if (!uri || !query || !h) {
        free(uri);
        free(query);
        free(h);
        return NULL;
    }
    if (r->n_headers)
        memcpy(h, r->headers, r->n_headers * sizeof(*h));
    qsort(h, r->n_headers, sizeof(*h), kv_name_cmp);
    sb_add(&b, r->method);
    sb_add(&b, "\n");
    sb_add(&b, uri);
    sb_add(&b, "\n");
    sb_add(&b, query);
    sb_add(&b, "\n");
    for (size_t i = 0; i < r->n_headers; i++) {
        sb_add(&b, h[i].name);
        sb_add(&b, ":");
        sb_add(&b, h[i].value);
        sb_add(&b, "\n");
    }
    sb_add(&b, "\n");
    for (size_t i = 0; i < r->n_headers; i++) {
        if (i)
            sb_add(&b, ";");
        sb_add(&b, h[i].name);
    }
    sb_add(&b, "\n");
    sb_add(&b, r->payload_hash);
    free(uri);
    free(query);
    free(h);
    return sb_take(&b);
}

static void scope_of(const struct objsign_aws *k, const char *amz_date, char *out, size_t n)
{
    snprintf(out, n, "%.8s/%s/%s/aws4_request", amz_date, k->region, k->service);
}

char *objsign_sigv4_string_to_sign(const struct objsign_aws *k, const char *amz_date, const char *canonical)
{
    char scope[256], digest[OBJSIGN_SHA256_HEX];
    struct sbuf b = {0};
    scope_of(k, amz_date, scope, sizeof(scope));
    objsign_sha256_hex(canonical, strlen(canonical), digest);
    sb_add(&b, "AWS4-HMAC-SHA256\n");
    sb_add(&b, amz_date);
    sb_add(&b, "\n");
    sb_add(&b, scope);
    sb_add(&b, "\n");
    sb_add(&b, digest);
    return sb_take(&b);
}

void objsign_sigv4_key(const char *secret, const char *date8, const char *region, const char *service,
                       unsigned char out[32])
{
    size_t n = strlen(secret) + 5;
    char *k0 = malloc(n);
    unsigned char k1[32], k2[32], k3[32];
    char day[9];
    snprintf(day, sizeof(day), "%.8s", date8);
    if (!k0) {
        memset(out, 0, 32);
        return;
    }
    snprintf(k0, n, "AWS4%s", secret);
    hmac256(k0, strlen(k0), day, k1);
    hmac256(k1, 32, region, k2);
    hmac256(k2, 32, service, k3);
    hmac256(k3, 32, "aws4_request", out);
    OPENSSL_cleanse(k0, n);
    OPENSSL_cleanse(k1, sizeof(k1));
    free(k0);
}

void objsign_sigv4_signature(const struct objsign_aws *k, const char *amz_date, const char *string_to_sign,
                             char out[OBJSIGN_SHA256_HEX])
{
    unsigned char key[32], mac[32];
    objsign_sigv4_key(k->secret_key, amz_date, k->region, k->service, key);
    hmac256(key, sizeof(key), string_to_sign, mac);
    OPENSSL_cleanse(key, sizeof(key));
    hex(mac, sizeof(mac), out);
}

void objsign_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* "host[:port]" of "scheme://host[:port][/...]" into out. */
static int host_of(const char *base, char *out, size_t n)
{
    const char *p = strstr(base, "://");
    if (!p)
        return -1;
    p += 3;
    size_t len = strcspn(p, "/?#");
    if (len == 0 || len >= n)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

char *objsign_s3_presign(const struct objsign_aws *k, const char *method, const char *base, const char *path,
                         const struct objsign_kv *extra, size_t n_extra, time_t now, unsigned expires_s, char *err,
                         size_t errlen)
{
    char host[256], amz_date[17], scope[256], credential[512], expires[16], sig[OBJSIGN_SHA256_HEX];
    if (host_of(base, host, sizeof(host)) != 0) {
        snprintf(err, errlen, "endpoint \"%s\" is not scheme://host[:port]", base);
        return NULL;
    }
    if (expires_s < 1 || expires_s > 604800) {
        snprintf(err, errlen, "a presigned URL lives 1 to 604800 seconds, not %u", expires_s);
        return NULL;
    }
    objsign_amz_date(now, amz_date);
    scope_of(k, amz_date, scope, sizeof(scope));
    snprintf(credential, sizeof(credential), "%s/%s", k->access_key, scope);
    snprintf(expires, sizeof(expires), "%u", expires_s);
    struct objsign_kv *q = calloc(n_extra + 5, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (n_extra)
        memcpy(q, extra, n_extra * sizeof(*q));
    q[n_extra] = (struct objsign_kv){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
    q[n_extra + 1] = (struct objsign_kv){"X-Amz-Credential", credential};
    q[n_extra + 2] = (struct objsign_kv){"X-Amz-Date", amz_date};
    q[n_extra + 3] = (struct objsign_kv){"X-Amz-Expires", expires};
    q[n_extra + 4] = (struct objsign_kv){"X-Amz-SignedHeaders", "host"};
    const struct objsign_kv hdr = {"host", host};
    const struct objsign_request r = {method, path, q, n_extra + 5, &hdr, 1, "UNSIGNED-PAYLOAD"};
    char *canonical = objsign_sigv4_canonical(&r);
    char *sts = canonical ? objsign_sigv4_string_to_sign(k, amz_date, canonical) : NULL;
    char *query = canonical_query(q, n_extra + 5);
    char *uri = objsign_uri_encode(path && path[0] ? path : "/", true);
    char *url = NULL;
    if (sts && query && uri) {
        struct sbuf b = {0};
        objsign_sigv4_signature(k, amz_date, sts, sig);
        sb_add(&b, base);
        sb_add(&b, uri);
        sb_add(&b, "?");
        sb_add(&b, query);
        sb_add(&b, "&X-Amz-Signature=");
        sb_add(&b, sig);
        url = sb_take(&b);
    }
    if (!url)
        snprintf(err, errlen, "out of memory");
    free(canonical);
    free(sts);
    free(query);
    free(uri);
    free(q);
    return url;
}
