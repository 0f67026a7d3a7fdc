/*
 * objhttp.h - one HTTP request to object storage over libcurl: a body sent
 * from memory, a bounded reply kept in memory, the few reply headers object
 * storage speaks through (ETag, Swift's auth headers). Authentication is a
 * Swift token, libcurl's own SigV4 signing, or nothing (a signed URL). It
 * never writes a URL's query (where signatures live) into an error message.
 */
#ifndef TROVE_OBJHTTP_H
#define TROVE_OBJHTTP_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objsign.h"

struct objhttp_auth {
    const char *token;               /* Swift: sent as X-Auth-Token */
    const struct objsign_aws *aws;   /* S3: libcurl signs the request (CURLOPT_AWS_SIGV4) */
};

struct objhttp_req {
    const char *method;              /* GET, HEAD, PUT, POST, DELETE */
    const char *url;
    const char *const *headers;      /* "Name: value" strings, NULL-terminated; may be NULL */
    const void *body;                /* PUT/POST body (sent even when empty) */
    size_t body_len;
    const struct objhttp_auth *auth; /* NULL: the URL carries its own signature */
    size_t max_reply;                /* reply bytes kept (0: 64 KiB); the rest is counted, not kept */
    const atomic_bool *cancel;       /* set: the transfer stops (TROVE_ECANCELLED); may be NULL */
};

struct objhttp_resp {
    long status;
    char *body;                      /* malloc'd, NUL-terminated, at most max_reply bytes */
    size_t body_len;
    bool body_cut;                   /* the reply was longer than max_reply */
    int64_t content_length;          /* Content-Length of the reply, -1 when absent */
    char etag[80];                   /* without quotes */
    char storage_url[1024];          /* X-Storage-Url (tempauth) */
    char token[1024];                /* X-Auth-Token / X-Subject-Token of an auth reply: a secret */
};

/* libcurl's global set-up, once per process, safe from any thread. */
void objhttp_init(void);

/* A new easy handle (NULL when out of memory); reuse it for keep-alive and
 * free it with curl_easy_cleanup. One handle belongs to one thread at a time. */
CURL *objhttp_handle(void);

/* Apply the connection settings every request shares (protocols, time-outs,
 * no signals) to a handle that was reset. */
void objhttp_defaults(CURL *h);

/* Perform rq. TROVE_OK when a reply came (whatever its status: read
 * rs->status); TROVE_EUNAVAIL when none did (connection, time-out), with the
 * reason in err; TROVE_ECANCELLED when rq->cancel was set; TROVE_EINTERNAL
 * when out of memory. rs is reset first; after TROVE_OK free it with
 * objhttp_resp_free (after a failure it holds nothing). */
int objhttp_do(CURL *h, const struct objhttp_req *rq, struct objhttp_resp *rs, char *err, size_t errlen);
void objhttp_resp_free(struct objhttp_resp *rs);

/* The URL without its query, for messages: signatures never reach a log. */
void objhttp_url_for_log(const char *url, char *out, size_t n);

/* A short text for a failed reply: "<METHOD> <url without query>: HTTP <status>: <first line of body>". */
void objhttp_describe(const struct objhttp_req *rq, const struct objhttp_resp *rs, char *out, size_t n);

/* True for statuses worth one more try: 408, 429, 5xx. */
bool objhttp_retryable(long status);

/* Lower-case hex MD5 of data (what Swift and S3 answer as a part's ETag). */
void objhttp_md5_hex(const void *data, size_t len, char out[33]);

#endif
