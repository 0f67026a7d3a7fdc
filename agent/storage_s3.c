/*
 * storage_s3.c - the S3 driver of scoped storage: one presigned URL per
 * request the guest may make (each part's UploadPart, CompleteMultipart-
 * Upload, AbortMultipartUpload, the record, the GET of the piece). The
 * control plane started the multipart upload; an unfinished one is never an
 * object, and is aborted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_driver.h"
#include "trove_plugin.h"

#define S3_PART_MIN (5u << 20)

struct s3_grant {
    char *piece_get, *record_get, *record_put, *complete, *abort;
    char **parts;
    size_t n_parts;
};

static int s3_parse(struct obj_entry *e, const struct tv *g, char *err, size_t errlen)
{
    struct s3_grant *s = calloc(1, sizeof(*s));
    int rc;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    e->d = s;
    if ((rc = obj_grant_url(g, "record_get", !e->record_json, &s->record_get, err, errlen)) ||
        (rc = obj_grant_url(g, "piece_get", !e->write, &s->piece_get, err, errlen)))
        return rc;
    if (!e->write)
        return TROVE_OK;
    if ((rc = obj_grant_url(g, "record_put", true, &s->record_put, err, errlen)) ||
        (rc = obj_grant_url(g, "complete", true, &s->complete, err, errlen)) ||
        (rc = obj_grant_url(g, "abort", true, &s->abort, err, errlen)))
        return rc;
    const struct tv *parts = tv_get(g, "parts");
    if (!parts || parts->type != TV_ARRAY || parts->u.a.len == 0 || parts->u.a.len > 10000) {
        snprintf(err, errlen, "s3 storage grant for %s needs \"parts\": 1-10000 part URLs", e->id);
        return TROVE_EINVAL;
    }
    if (e->part_size < S3_PART_MIN) {
        snprintf(err, errlen, "s3 storage grant for %s: parts must be at least %u bytes", e->id, S3_PART_MIN);
        return TROVE_EINVAL;
    }
    if (!(s->parts = calloc(parts->u.a.len, sizeof(*s->parts)))) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    for (size_t i = 0; i < parts->u.a.len; i++) {
        if ((rc = obj_url_value(parts->u.a.items[i], "parts", &s->parts[i], err, errlen)))
            return rc;
        s->n_parts = i + 1;
    }
    if (e->max_parts > s->n_parts)
        e->max_parts = (uint32_t)s->n_parts;
    return TROVE_OK;
}

static void s3_release(struct obj_entry *e)
{
    struct s3_grant *s = e->d;
    if (!s)
        return;
    free(s->piece_get);
    free(s->record_get);
    free(s->record_put);
    free(s->complete);
    free(s->abort);
    for (size_t i = 0; i < s->n_parts; i++)
        free(s->parts[i]);
    free(s->parts);
    free(s);
    e->d = NULL;
}

static char *s3_url(const struct obj_entry *e, enum obj_target what, unsigned part, char *err, size_t errlen)
{
    const struct s3_grant *s = e->d;
    const char *url = what == OBJ_PIECE_GET ? s->piece_get
                      : what == OBJ_RECORD_GET ? s->record_get
                      : what == OBJ_RECORD_PUT ? s->record_put
                      : part >= 1 && part <= s->n_parts ? s->parts[part - 1] : NULL;
    if (!url) {
        if (what == OBJ_PART_PUT)
            snprintf(err, errlen, "backup %s was granted %zu parts, not %u", e->id, s->n_parts, part);
        else
            snprintf(err, errlen, "the storage grant for backup %s has no URL for this", e->id);
        return NULL;
    }
    char *copy = strdup(url);
    if (!copy)
        snprintf(err, errlen, "out of memory");
    return copy;
}

static int s3_commit(CURL *h, const struct obj_entry *e, const struct part_result *parts, unsigned n, char *err,
                     size_t errlen)
{
    const struct s3_grant *s = e->d;
    size_t cap = 64 + (size_t)n * 100;
    char *xml = malloc(cap);
    if (!xml) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    size_t k = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < n; i++)
        k += (size_t)snprintf(xml + k, cap - k, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                              parts[i].etag);
    snprintf(xml + k, cap - k, "</CompleteMultipartUpload>");
    const char *headers[] = {"Content-Type: application/xml", NULL};
    int rc = obj_request(h, "POST", s->complete, headers, xml, strlen(xml), 200, err, errlen);
    free(xml);
    return rc;
}

static void s3_abort(CURL *h, const struct obj_entry *e, unsigned started)
{
    const struct s3_grant *s = e->d;
    char err[256];
    (void)started;
    if (s->abort)
        obj_request(h, "DELETE", s->abort, NULL, NULL, 0, 204, err, sizeof(err));
}

const struct obj_driver obj_s3_driver = {
    .kind = "s3",
    .part_ok = 200,
    .parse = s3_parse,
    .release = s3_release,
    .url = s3_url,
    .commit = s3_commit,
    .abort = s3_abort,
};
