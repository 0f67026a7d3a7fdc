/*
 * storage_swift.c - the Swift driver of scoped storage: TempURLs with one
 * signature per method for the prefix "<backup id>/". Segments are plain
 * objects the guest PUTs; the static large object manifest is written by
 * the control plane when it seals the backup (tempurl passes no
 * multipart-manifest=put, so a guest can never point a manifest at objects
 * outside its own backup). The guest leaves a draft of it instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_store.h"
#include "json.h"
#include "objsign.h"
#include "storage_driver.h"
#include "trove_plugin.h"

struct swift_grant {
    char *account_url;          /* http://host:port/v1/AUTH_account */
    char *container;
    char *prefix;               /* "<...><backup id>/" */
    long long expires;
    char *sig_get, *sig_put, *sig_delete;
};

static int bad(char *err, size_t errlen, const char *id, const char *what)
{
    snprintf(err, errlen, "swift storage grant for %s: %s", id, what);
    return TROVE_EINVAL;
}

static bool safe(const char *s, const char *extra)
{
    size_t n = strlen(s);
    const char *base = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    for (size_t i = 0; i < n; i++)
        if (!strchr(base, s[i]) && !strchr(extra, s[i]))
            return false;
    return n > 0 && n < 512 && !strstr(s, "..");
}

static int sig_field(const struct tv *g, const char *key, bool required, char **out, const char *id, char *err,
                     size_t errlen)
{
    const char *v = tv_get_str(g, key);
    *out = NULL;
    if (!v)
        return required ? bad(err, errlen, id, "a signature is missing") : TROVE_OK;
    if (!safe(v, ":=") || strlen(v) > 200)
        return bad(err, errlen, id, "a signature is malformed");
    if (!(*out = strdup(v))) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    return TROVE_OK;
}

static int swift_parse(struct obj_entry *e, const struct tv *g, char *err, size_t errlen)
{
    struct swift_grant *s = calloc(1, sizeof(*s));
    const char *container = tv_get_str(g, "container"), *prefix = tv_get_str(g, "prefix");
    int rc;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    e->d = s;
    if ((rc = obj_grant_url(g, "account_url", true, &s->account_url, err, errlen)))
        return rc;
    if (!container || !safe(container, ""))
        return bad(err, errlen, e->id, "\"container\" is missing or malformed");
    size_t plen = prefix ? strlen(prefix) : 0, ilen = strlen(e->id);
    /* The prefix ends with "<id>/": a grant for one backup never covers another's names. */
    if (!prefix || !safe(prefix, "/") || prefix[0] == '/' || plen < ilen + 1 || prefix[plen - 1] != '/' ||
        strncmp(prefix + plen - 1 - ilen, e->id, ilen) || (plen > ilen + 1 && prefix[plen - 2 - ilen] != '/'))
        return bad(err, errlen, e->id, "\"prefix\" must end with the backup id and '/'");
    const struct tv *exp = tv_get(g, "temp_url_expires");
    if (!exp || exp->type != TV_INT || exp->u.i <= 0)
        return bad(err, errlen, e->id, "\"temp_url_expires\" must be a positive integer");
    s->expires = exp->u.i;
    if (!(s->container = strdup(container)) || !(s->prefix = strdup(prefix))) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    if ((rc = sig_field(g, "sig_get", true, &s->sig_get, e->id, err, errlen)) ||
        (rc = sig_field(g, "sig_put", e->write, &s->sig_put, e->id, err, errlen)) ||
        (rc = sig_field(g, "sig_delete", false, &s->sig_delete, e->id, err, errlen)))
        return rc;
    return TROVE_OK;
}

static void swift_release(struct obj_entry *e)
{
    struct swift_grant *s = e->d;
    if (!s)
        return;
    free(s->account_url);
    free(s->container);
    free(s->prefix);
    free(s->sig_get);
    free(s->sig_put);
    free(s->sig_delete);
    free(s);
    e->d = NULL;
}

/* <account>/<container>/<prefix><leaf>?temp_url_sig=..&temp_url_expires=..&temp_url_prefix=.. */
static char *object_url(const struct swift_grant *s, const char *leaf, const char *sig, char *err, size_t errlen)
{
    char *url = NULL, *esig = objsign_uri_encode(sig, false), *epre = objsign_uri_encode(s->prefix, false);
    if (!esig || !epre ||
        asprintf(&url, "%s/%s/%s%s?temp_url_sig=%s&temp_url_expires=%lld&temp_url_prefix=%s", s->account_url,
                 s->container, s->prefix, leaf, esig, s->expires, epre) < 0) {
        url = NULL;
        snprintf(err, errlen, "out of memory");
    }
    free(esig);
    free(epre);
    return url;
}

static char *swift_url(const struct obj_entry *e, enum obj_target what, unsigned part, char *err, size_t errlen)
{
    const struct swift_grant *s = e->d;
    char leaf[64];
    switch (what) {
    case OBJ_PIECE_GET:
        return object_url(s, BSTORE_PIECE, s->sig_get, err, errlen);
    case OBJ_RECORD_GET:
        return object_url(s, BSTORE_RECORD, s->sig_get, err, errlen);
    case OBJ_RECORD_PUT:
    case OBJ_PART_PUT:
        if (!s->sig_put) {
            snprintf(err, errlen, "this request may only read backup %s", e->id);
            return NULL;
        }
        if (what == OBJ_RECORD_PUT)
            return object_url(s, BSTORE_RECORD, s->sig_put, err, errlen);
        if (part < 1 || part > e->max_parts) {
            snprintf(err, errlen, "backup %s was granted %u segments, not %u", e->id, e->max_parts, part);
            return NULL;
        }
        snprintf(leaf, sizeof(leaf), BSTORE_SEGMENT_FMT, part);
        return object_url(s, leaf, s->sig_put, err, errlen);
    }
    return NULL;
}

/* The draft: exactly the SLO manifest the control plane will check and write. */
static int swift_commit(CURL *h, const struct obj_entry *e, const struct part_result *parts, unsigned n, char *err,
                        size_t errlen)
{
    const struct swift_grant *s = e->d;
    struct tv *list = tv_array();
    char *json = NULL, *url = NULL;
    int rc = TROVE_EINTERNAL;
    snprintf(err, errlen, "out of memory");
    for (unsigned i = 0; list && i < n; i++) {
        char path[1200], leaf[64];
        snprintf(leaf, sizeof(leaf), BSTORE_SEGMENT_FMT, i + 1);
        snprintf(path, sizeof(path), "/%s/%s%s", s->container, s->prefix, leaf);
        struct tv *seg = tv_map();
        if (!seg || tv_set_str(seg, "path", path) || tv_set_str(seg, "etag", parts[i].etag) ||
            tv_set_int(seg, "size_bytes", (int64_t)parts[i].size)) {
            tv_free(seg);
            goto out;
        }
        if (tv_append(list, seg))
            goto out;
    }
    if (!list || !(json = tv_to_json(list, false)) || !(url = object_url(s, BSTORE_DRAFT, s->sig_put, err, errlen)))
        goto out;
    const char *headers[] = {"Content-Type: application/json", NULL};
    rc = obj_request(h, "PUT", url, headers, json, strlen(json), 201, err, errlen);
out:
    tv_free(list);
    free(json);
    free(url);
    return rc;
}

static void delete_object(CURL *h, const struct swift_grant *s, const char *leaf)
{
    char err[256];
    char *url = object_url(s, leaf, s->sig_delete, err, sizeof(err));
    if (url)
        obj_request(h, "DELETE", url, NULL, NULL, 0, 204, err, sizeof(err));
    free(url);
}

/* Without a DELETE signature the control plane's removal does it all. */
static void swift_abort(CURL *h, const struct obj_entry *e, unsigned started)
{
    const struct swift_grant *s = e->d;
    char leaf[64];
    if (!s->sig_delete)
        return;
    delete_object(h, s, BSTORE_DRAFT);
    for (unsigned i = 1; i <= started && i <= e->max_parts; i++) {
        snprintf(leaf, sizeof(leaf), BSTORE_SEGMENT_FMT, i);
        delete_object(h, s, leaf);
    }
}

const struct obj_driver obj_swift_driver = {
    .kind = "swift",
    .part_ok = 201,
    .parse = swift_parse,
    .release = swift_release,
    .url = swift_url,
    .commit = swift_commit,
    .abort = swift_abort,
};
