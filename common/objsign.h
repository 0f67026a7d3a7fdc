/*
 * objsign.h - signatures for object storage: Swift TempURL (object or
 * prefix scope) and AWS Signature Version 4, both header and query-string
 * ("presigned URL") forms. Pure functions: no network, no clock (callers pass
 * the time), no global state; every result is checked against published
 * vectors in tests/storage/test_objsign.c.
 */
#ifndef TROVE_OBJSIGN_H
#define TROVE_OBJSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define OBJSIGN_SHA256_HEX 65   /* 64 hex digits + NUL */
#define OBJSIGN_TEMPURL_MAX 100 /* "sha512:" + 88 base64 + NUL fits */

/* A query parameter or header: name and value, both unencoded. */
struct objsign_kv {
    const char *name;
    const char *value;
};

/* Percent-encode s as SigV4 wants: A-Z a-z 0-9 - . _ ~ stay, every other
 * byte becomes %XX (upper case); '/' stays when keep_slash (paths).
 * Returns a malloc'd string, NULL when out of memory. */
char *objsign_uri_encode(const char *s, bool keep_slash);

/* Lower-case hex SHA-256 of data. */
void objsign_sha256_hex(const void *data, size_t len, char out[OBJSIGN_SHA256_HEX]);

/* ---------------------------------------------------------- Swift TempURL */

/* The signature Swift's tempurl middleware checks: HMAC over
 * "METHOD\nEXPIRES\nPATH" with the container's (or account's) key, where PATH
 * is "/v1/AUTH_acct/container/object", or "prefix:/v1/AUTH_acct/container/pre"
 * when prefix is true (then the URL must carry temp_url_prefix=pre).
 * digest: "sha1" and "sha256" give hex; "sha512" gives "sha512:" + URL-safe
 * base64, as Swift requires. 0, or -1 for an unknown digest or a short buffer. */
int objsign_tempurl(const char *digest, const char *key, const char *method, int64_t expires, const char *path,
                    bool prefix, char *out, size_t outlen);

/* ------------------------------------------------------- AWS SigV4 core */

struct objsign_aws {
    const char *access_key;
    const char *secret_key;
    const char *region;     /* "us-east-1" */
    const char *service;    /* "s3" */
};

/* A request as SigV4 canonicalises it. path is unencoded ("/bucket/key"),
 * each segment is encoded once (S3 rules). headers: lower-case names,
 * values already trimmed, sorted by name is not required. payload_hash is
 * hex SHA-256 of the body or "UNSIGNED-PAYLOAD". */
struct objsign_request {
    const char *method;
    const char *path;
    const struct objsign_kv *query;
    size_t n_query;
    const struct objsign_kv *headers;
    size_t n_headers;
    const char *payload_hash;
};

/* The canonical request text (malloc'd; NULL when out of memory). */
char *objsign_sigv4_canonical(const struct objsign_request *r);
/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical>" (malloc'd). */
char *objsign_sigv4_string_to_sign(const struct objsign_aws *k, const char *amz_date, const char *canonical);
/* kSigning = HMAC chain over date (YYYYMMDD), region, service, "aws4_request". */
void objsign_sigv4_key(const char *secret, const char *date8, const char *region, const char *service,
                       unsigned char out[32]);
/* Hex signature of string_to_sign with the key derived for amz_date's day. */
void objsign_sigv4_signature(const struct objsign_aws *k, const char *amz_date, const char *string_to_sign,
                             char out[OBJSIGN_SHA256_HEX]);
/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void objsign_amz_date(time_t t, char out[17]);

/* A presigned URL: base ("http://host:port", no trailing slash) + path +
 * '?' + the sorted, encoded query with the X-Amz-* parameters added, signed
 * over the Host header alone and UNSIGNED-PAYLOAD. extra: the request's own
 * query parameters (partNumber, uploadId, ...), unencoded. expires_s is
 * 1..604800. Returns a malloc'd URL, or NULL with a reason in err. */
char *objsign_s3_presign(const struct objsign_aws *k, const char *method, const char *base, const char *path,
                         const struct objsign_kv *extra, size_t n_extra, time_t now, unsigned expires_s, char *err,
                         size_t errlen);

#endif
