/*
 * api.c - the REST server: libmicrohttpd on the loop thread (epoll, no
 * thread of its own), request bodies and their limit, authentication,
 * routing by path segments, Trove's fault bodies, paging links, and the
 * suspend/resume dance around replies from the core. The resources live in
 * api_instances.c, api_users.c, api_databases.c and api_datastores.c.
 */
#include "api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "core.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "value.h"

/* A body over the limit is read and dropped up to this many bytes so the
 * client gets its 413 on a clean connection; past it the connection is cut. */
#define DISCARD_MAX (1024 * 1024)
#define FAULT_MESSAGE_MAX 1024

/* ------------------------------------------------------------ answering */

static const char *fault_name(unsigned status)
{
    switch (status) {
    case 400: return "badRequest";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "itemNotFound";
    case 405: return "badMethod";
    case 409: return "conflict";
    case 413: return "overLimit";
    case 415: return "badMediaType";
    case 422: return "unprocessableEntity";
    case 501: return "notImplemented";
    case 503: return "serviceUnavailable";
    case 504: return "gatewayTimeout";
    default: return status >= 500 ? "instanceFault" : "badRequest";
    }
}

void api_respond(struct api_request *r, unsigned status, json_t *body)
{
    if (r->answered) {
        json_decref(body);
        return;
    }
    r->answered = true;
    r->status = status;
    if (body) {
        r->resp = json_dumps(body, JSON_COMPACT);   /* jansson keeps insertion order */
        json_decref(body);
        if (!r->resp) {
            r->status = 500;
            log_error("REST: cannot render a response body (out of memory)");
        } else {
            r->resp_len = strlen(r->resp);
        }
    }
}

void api_fault(struct api_request *r, unsigned status, const char *fmt, ...)
{
    char message[FAULT_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* json_pack refuses invalid UTF-8; messages may quote what came from outside */
    if (!tv_utf8_valid(message, strlen(message)))
        snprintf(message, sizeof message, "%s", status >= 500 ? "internal error" : "invalid request");
    json_t *body = json_pack("{s:{s:i,s:s}}", fault_name(status), "code", (int)status, "message", message);
    api_respond(r, status, body);
}

unsigned api_http_status(int trove_status)
{
    switch (trove_status) {
    case TROVE_OK: return 200;
    case TROVE_EINVAL: return 400;
    case TROVE_ENOTFOUND: return 404;
    case TROVE_EEXIST: return 400;        /* Trove: DatabaseAlreadyExists, UserAlreadyExists */
    case TROVE_ENOTSUP: return 501;
    case TROVE_EDATASTORE: return 400;    /* Trove: "User create error: ..." */
    case TROVE_EUNAVAIL: return 422;      /* the instance cannot act now */
    case TROVE_ECONFLICT: return 422;     /* the instance's state or task forbids it */
    case TROVE_ECANCELLED: return 503;
    case TROVE_ETIMEOUT: return 504;
    default: return 500;
    }
}

void api_fault_status(struct api_request *r, int trove_status, const char *message)
{
    unsigned http = api_http_status(trove_status);
    if (http < 400)
        http = 500;
    api_fault(r, http, "%s", message && message[0] ? message : status_name(trove_status));
}

void api_registry_fault(struct api_request *r, int rc, const char *err)
{
    log_error("REST: registry: %s", err && err[0] ? err : status_name(rc));
    if (rc == TROVE_EUNAVAIL)
        api_fault(r, 503, "The registry is not reachable; try again");
    else
        api_fault(r, 500, "Registry error");
}

/* ------------------------------------------------------------ helpers */

void api_time(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&s, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, 32, "%s", "");
}

json_t *api_tv_json(const struct tv *v)
{
    if (!v)
        return json_object();
    char *text = tv_to_json(v, false);
    if (!text)
        return NULL;
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    return j;
}

void api_set_ctx(struct api_request *r, void *ctx, void (*ctx_free)(void *))
{
    if (r->ctx && r->ctx_free && r->ctx != ctx)
        r->ctx_free(r->ctx);
    r->ctx = ctx;
    r->ctx_free = ctx_free;
}

/* The Host header if it looks like a host, else our own address; found
 * once per request. */
static const char *request_host(struct api_request *r)
{
    if (r->host[0])
        return r->host;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    bool ok = h && h[0] && strlen(h) < sizeof r->host;
    for (const char *p = h; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
             *p == '-' || *p == ':' || *p == '[' || *p == ']';
    if (ok)
        snprintf(r->host, sizeof r->host, "%s", h);
    else
        snprintf(r->host, sizeof r->host, "127.0.0.1:%u", (unsigned)r->api->port);
    return r->host;
}

json_t *api_links(struct api_request *r, const char *resource_path, const char *id)
{
    char self[768], bookmark[640];
    const char *host = request_host(r);
    snprintf(self, sizeof self, "http://%s/v1.0/%s/%s/%s", host, r->tenant, resource_path, id);
    snprintf(bookmark, sizeof bookmark, "http://%s/%s/%s", host, resource_path, id);
    json_t *links = json_pack("[{s:s,s:s},{s:s,s:s}]", "href", self, "rel", "self", "href", bookmark, "rel",
                              "bookmark");
    return links ? links : json_array();
}

/* Percent-encode everything but RFC 3986's unreserved characters. */
static void url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

struct query_walk {
    struct api_request *r;
    const char *want;      /* find mode: the key */
    const char *found;
    char *text;            /* rebuild mode: the query without marker */
    size_t len, cap;
};

/* Our unescape callback leaves arguments raw; decode a copy per lookup. */
static enum MHD_Result query_find(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    char *k = strdup(key);
    if (!k)
        return MHD_NO;
    size_t klen = MHD_http_unescape(k);
    bool match = klen == strlen(k) && strcmp(k, w->want) == 0;
    free(k);
    if (!match)
        return MHD_YES;
    w->found = value ? value : "";
    return MHD_NO;
}

const char *api_query(struct api_request *r, const char *key)
{
    struct query_walk w = { .r = r, .want = key };
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_find, &w);
    if (!w.found || r->nqval >= sizeof r->qval / sizeof r->qval[0])
        return NULL;
    char *v = strdup(w.found);
    if (!v)
        return NULL;
    size_t n = MHD_http_unescape(v);
    if (n != strlen(v) || !tv_utf8_valid(v, n))
        v[0] = '\0';      /* %00 or bad UTF-8: treated as empty */
    r->qval[r->nqval++] = v;
    return v;
}

bool api_paging(struct api_request *r, size_t *limit, const char **marker)
{
    const char *l = api_query(r, "limit");
    *limit = r->api->page_size;
    *marker = api_query(r, "marker");
    if (*marker && !(*marker)[0])
        *marker = NULL;
    if (l && l[0]) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(l, &end, 10);
        if (errno || !end || *end || v < 1) {
            api_fault(r, 400, "limit must be a positive integer");
            return false;
        }
        *limit = v > API_PAGE_SIZE_MAX ? API_PAGE_SIZE_MAX : (size_t)v;
    }
    return true;
}

static enum MHD_Result query_rebuild(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    if (strcmp(key, "marker") == 0)
        return MHD_YES;
    size_t need = strlen(key) + (value ? strlen(value) : 0) + 3;
    if (w->len + need >= w->cap) {
        size_t cap = (w->cap + need) * 2;
        char *t = realloc(w->text, cap);
        if (!t)
            return MHD_NO;
        w->text = t;
        w->cap = cap;
    }
    /* still raw (as the client sent it), so safe to paste back */
    w->len += (size_t)snprintf(w->text + w->len, w->cap - w->len, "%s%s%s%s", w->len ? "&" : "", key,
                               value ? "=" : "", value ? value : "");
    return MHD_YES;
}

json_t *api_page(struct api_request *r, const char *name, json_t *collection, const char *next_marker,
                 bool always_links)
{
    json_t *page = json_object();
    if (!page || !collection) {
        json_decref(page);
        json_decref(collection);
        return NULL;
    }
    json_object_set_new(page, name, collection);
    if (!next_marker) {
        if (always_links)
            json_object_set_new(page, "links", json_array());
        return page;
    }
    char marker[3 * 256 + 1];
    const char *host = request_host(r);
    url_encode(next_marker, marker, sizeof marker);
    struct query_walk w = { .r = r };
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_rebuild, &w);
    const char *path = r->uri;
    size_t path_len = strcspn(path, "?");
    char *href = NULL;
    if (asprintf(&href, "http://%s%.*s?%s%smarker=%s", host, (int)path_len, path, w.text ? w.text : "",
                 w.len ? "&" : "", marker) < 0)
        href = NULL;
    free(w.text);
    json_t *links = href ? json_pack("[{s:s,s:s}]", "rel", "next", "href", href) : json_array();
    free(href);
    json_object_set_new(page, "links", links);
    return page;
}

void api_respond_agent_page(struct api_request *r, const char *name, json_t *collection,
                            const struct tv *result)
{
    const char *next = tv_get_str(result, "next_marker");
    json_t *page = api_page(r, name, collection, next && next[0] ? next : NULL, false);
    if (page)
        api_respond(r, 200, page);
    else
        api_fault(r, 500, "out of memory");
}

/* ------------------------------------------------------------ the core */

static void request_free(struct api_request *r);

static void unlink_suspended(struct api_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (r->api->suspended == r)
        r->api->suspended = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void resume(struct api_request *r)
{
    if (!r->suspended)
        return;
    r->suspended = false;
    unlink_suspended(r);
    MHD_resume_connection(r->conn);
    r->api->resumed = true;
    if (r->api->timer)
        loop_timer_arm(r->api->timer, 0);
}

static void on_core_reply(void *user, int status, const char *message, const struct tv *result)
{
    struct api_request *r = user;
    api_reply_fn fn = r->on_reply;
    r->waiting = false;
    r->on_reply = NULL;
    if (!r->conn) {   /* the connection is gone (server stopping): nobody to answer */
        request_free(r);
        return;
    }
    if (fn)
        fn(r, status, message ? message : "", result);
    if (!r->answered && !r->waiting)
        api_fault(r, 500, "the request ended without an answer");
    if (r->answered)
        resume(r);
}

static void submit(struct api_request *r, bool as_operator, const char *instance, const char *op, struct tv *args,
                   api_reply_fn fn)
{
    struct control_request creq = {
        .tenant = as_operator ? NULL : r->who.tenant,
        .admin = as_operator ? true : r->who.admin,
        .instance = instance,
        .op = op,
        .args = args,
        .timeout_ms = r->api->request_timeout_ms,
    };
    if (!r->api->core) {
        tv_free(args);
        api_fault(r, 503, "the control plane is not ready");
        return;
    }
    r->waiting = true;
    r->on_reply = fn;
    int rc = control_submit(r->api->core, &creq, on_core_reply, r);
    tv_free(args);
    if (rc != 0) {
        r->waiting = false;
        r->on_reply = NULL;
        api_fault(r, 503, "the control plane is shutting down");
    }
}

void api_submit(struct api_request *r, const char *instance, const char *op, struct tv *args, api_reply_fn fn)
{
    submit(r, false, instance, op, args, fn);
}

void api_submit_operator(struct api_request *r, const char *instance, const char *op, struct tv *args,
                         api_reply_fn fn)
{
    submit(r, true, instance, op, args, fn);
}

void api_accepted(struct api_request *r, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (status != TROVE_OK)
        api_fault_status(r, status, message);
    else
        api_respond(r, 202, NULL);
}

/* api_submit_each: one op per item, in order, stopping at the first failure. */
struct each {
    char *instance;
    char *op;
    struct tv *list;
    size_t next;
};

static void each_free(void *p)
{
    struct each *e = p;
    free(e->instance);
    free(e->op);
    tv_free(e->list);
    free(e);
}

static void each_step(struct api_request *r, int status, const char *message, const struct tv *result)
{
    (void)result;
    struct each *e = r->ctx;
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    if (e->next >= e->list->u.a.len) {
        api_respond(r, 202, NULL);
        return;
    }
    struct tv *args = e->list->u.a.items[e->next];
    e->list->u.a.items[e->next++] = NULL;
    api_submit(r, e->instance, e->op, args, each_step);
}

void api_submit_each(struct api_request *r, const char *instance, const char *op, struct tv *list)
{
    struct each *e = calloc(1, sizeof *e);
    if (!e || !(e->instance = strdup(instance)) || !(e->op = strdup(op)) || !list || list->type != TV_ARRAY) {
        if (e)
            each_free(e);
        tv_free(list);
        api_fault(r, 500, "out of memory");
        return;
    }
    e->list = list;
    api_set_ctx(r, e, each_free);
    each_step(r, TROVE_OK, "", NULL);
}

/* ------------------------------------------------------------ routing */

static const struct api_route *const route_tables[] = {
    api_instance_routes, api_database_routes, api_user_routes, api_datastore_routes, api_task_routes,
    api_mgmt_routes,
};

static bool pattern_matches(struct api_request *r, const char *pattern, const char **args)
{
    size_t i = 0, nargs = 0;
    const char *p = pattern;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (i >= r->nseg)
            return false;
        if (len == 2 && memcmp(p, "{}", 2) == 0) {
            if (nargs >= API_MAX_ARGS)
                return false;
            args[nargs++] = r->seg[i];
        } else if (strlen(r->seg[i]) != len || memcmp(r->seg[i], p, len) != 0) {
            return false;
        }
        i++;
        p += len;
        if (*p == '/')
            p++;
    }
    return i == r->nseg;
}

/* The route for method and path; with a path known under other methods,
 * r->allow lists them (405). */
static const struct api_route *find_route(struct api_request *r)
{
    char *allow_buf = r->allow;
    const size_t cap = sizeof r->allow;
    const char *args[API_MAX_ARGS] = { 0 };
    allow_buf[0] = '\0';
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
        for (const struct api_route *rt = route_tables[t]; rt->method; rt++) {
            if (!pattern_matches(r, rt->pattern, args))
                continue;
            if (strcmp(rt->method, r->method) == 0) {
                memcpy(r->arg, args, sizeof args);
                return rt;
            }
            if (!strstr(allow_buf, rt->method) && strlen(allow_buf) + strlen(rt->method) + 3 < cap)
                snprintf(allow_buf + strlen(allow_buf), cap - strlen(allow_buf), "%s%s", allow_buf[0] ? ", " : "",
                         rt->method);
        }
    }
    return NULL;
}

/* Split the raw path after "/v1.0/" into decoded segments: tenant first.
 * False for an empty segment, a NUL (%00) or too many segments. */
static bool split_path(struct api_request *r, const char *rest)
{
    const char *p = rest;
    bool first = true;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 0 && p[len] == '\0')
            break;                       /* a trailing slash */
        if (len == 0)
            return false;
        char *s = strndup(p, len);
        if (!s)
            return false;
        size_t n = MHD_http_unescape(s);
        if (n != strlen(s) || n == 0 || !tv_utf8_valid(s, n)) {
            free(s);
            return false;
        }
        if (first) {
            r->tenant = s;
            first = false;
        } else if (r->nseg < API_MAX_SEGMENTS) {
            r->seg[r->nseg++] = s;
        } else {
            free(s);
            return false;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return !first;
}

static void versions_document(struct api_request *r, bool one)
{
    char *href = NULL;
    if (asprintf(&href, "http://%s/v1.0/", request_host(r)) < 0) {
        api_fault(r, 500, "out of memory");
        return;
    }
    json_t *v = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "id", "v1.0", "status", "CURRENT", "updated",
                          "2012-08-01T00:00:00Z", "links", "href", href, "rel", "self");
    free(href);
    if (one)
        api_respond(r, 200, json_pack("{s:o}", "version", v));
    else
        api_respond(r, 200, json_pack("{s:[o]}", "versions", v));
}

static bool authenticate(struct api_request *r)
{
    const char *token = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Auth-Token");
    char why[256];
    switch (auth_authenticate(r->api->auth, token, r->tenant, &r->who, why, sizeof why)) {
    case AUTH_OK:
        return true;
    case AUTH_UNAUTHENTICATED:
        api_fault(r, 401, "%s", why);
        return false;
    case AUTH_FORBIDDEN:
        api_fault(r, 403, "%s", why);
        return false;
    case AUTH_BAD_TENANT:
    default:
        api_fault(r, 404, "%s", why);
        return false;
    }
}

static bool content_type_is_json(struct api_request *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return true;
    size_t len = strcspn(ct, "; \t");
    return len == strlen("application/json") && strncasecmp(ct, "application/json", len) == 0;
}

/* Parse the body for the route; false after answering. */
static bool take_json(struct api_request *r)
{
    const struct api_route *rt = r->route;
    if (r->body_len == 0) {
        if (rt->body == API_BODY_REQUIRED) {
            api_fault(r, 400, "Invalid request body: this request needs a JSON object");
            return false;
        }
        return true;
    }
    if (rt->body == API_BODY_NONE) {
        api_fault(r, 400, "This request takes no body");
        return false;
    }
    if (!content_type_is_json(r)) {
        api_fault(r, 415, "Send the body as application/json");
        return false;
    }
    json_error_t jerr;
    r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r->json) {
        api_fault(r, 400, "Malformed JSON (line %d, column %d): %s", jerr.line, jerr.column, jerr.text);
        return false;
    }
    if (!json_is_object(r->json)) {
        api_fault(r, 400, "Invalid request body: expected a JSON object");
        return false;
    }
    return true;
}

static void serve(struct api_request *r, const char *url)
{
    if (r->too_large) {
        api_fault(r, 413, "Request body exceeds the limit of %zu bytes", r->api->body_limit);
        return;
    }
    bool root = strcmp(url, "/") == 0 || strcmp(url, "") == 0;
    if (root || strcmp(url, "/v1.0") == 0 || strcmp(url, "/v1.0/") == 0) {
        if (strcmp(r->method, "GET") != 0) {
            snprintf(r->allow, sizeof r->allow, "GET");
            api_fault(r, 405, "The method %s is not allowed here (allowed: GET)", r->method);
            return;
        }
        versions_document(r, !root);
        return;
    }
    if (strncmp(url, "/v1.0/", 6) != 0 || !split_path(r, url + 6)) {
        api_fault(r, 404, "The resource could not be found.");
        return;
    }
    if (!authenticate(r))
        return;
    r->route = find_route(r);
    if (!r->route) {
        if (r->allow[0]) {
            api_fault(r, 405, "The method %s is not allowed here (allowed: %s)", r->method, r->allow);
        } else {
            api_fault(r, 404, "The resource could not be found.");
        }
        return;
    }
    if (r->route->admin && !r->who.admin) {
        api_fault(r, 403, "User does not have admin privileges.");
        return;
    }
    if (!take_json(r))
        return;
    r->route->fn(r);
    if (!r->answered && !r->waiting)
        api_fault(r, 500, "the request ended without an answer");
}

/* ------------------------------------------------------------ libmicrohttpd */

static void request_free(struct api_request *r)
{
    if (!r)
        return;
    if (r->ctx && r->ctx_free)
        r->ctx_free(r->ctx);
    for (size_t i = 0; i < r->nseg; i++)
        free(r->seg[i]);
    for (size_t i = 0; i < r->nqval; i++)
        free(r->qval[i]);
    free(r->tenant);
    free(r->uri);
    free(r->body);
    free(r->resp);
    json_decref(r->json);
    free(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct api_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->api = cls;
    if (!(r->uri = strdup(uri ? uri : ""))) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct api_request *r = *con_cls;
    *con_cls = NULL;
    if (!r)
        return;
    if (r->status)
        log_debug("REST %s %s -> %u (tenant %s)", r->method, r->route ? r->route->pattern : "-", r->status,
                  r->who.tenant[0] ? r->who.tenant : "-");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        log_debug("REST request ended early (%d)", (int)toe);
    if (r->suspended)
        unlink_suspended(r);
    if (r->waiting) {      /* the core still holds it: free on its reply */
        r->conn = NULL;
        r->suspended = false;
        return;
    }
    request_free(r);
}

static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("libmicrohttpd: %s", line);
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct api *api = cls;
    (void)addrlen;
    if (!api->loopback_only || is_loopback(addr))
        return MHD_YES;
    log_warn("REST: refused a connection from a non-loopback peer (no-token mode serves loopback only)");
    return MHD_NO;
}

static enum MHD_Result queue(struct api_request *r)
{
    struct MHD_Response *resp;
    if (r->resp) {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->resp = NULL;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (r->resp_len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* First call: headers only. A declared body far over the limit is refused
 * at once (the connection then closes); a smaller excess is drained. */
static enum MHD_Result first_call(struct api_request *r, const char *method)
{
    snprintf(r->method, sizeof r->method, "%s", method);
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (n > DISCARD_MAX) {
            api_fault(r, 413, "Request body exceeds the limit of %zu bytes", r->api->body_limit);
            return queue(r);
        }
    }
    return MHD_YES;
}

static enum MHD_Result take_body(struct api_request *r, const char *data, size_t n)
{
    r->received += n;
    if (r->received > DISCARD_MAX)
        return MHD_NO;
    if (r->too_large || r->body_len + n > r->api->body_limit) {
        r->too_large = true;
        return MHD_YES;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return MHD_NO;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    struct api_request *r = *con_cls;
    if (!r)
        return MHD_NO;      /* no memory when the request line came in */
    if (!r->conn) {
        r->conn = conn;
        return first_call(r, method);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(r, upload_data, n);
    }
    if (!r->answered && !r->started) {
        r->started = true;
        serve(r, url);
    }
    if (r->answered)
        return queue(r);
    if (r->waiting && !r->suspended) {
        r->suspended = true;
        r->next = r->api->suspended;
        if (r->next)
            r->next->prev = r;
        r->api->suspended = r;
        MHD_suspend_connection(conn);
    }
    return MHD_YES;
}

/* ------------------------------------------------------------ lifecycle */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err,
                        size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1]) {
        err_set(err, errlen, "REST listen address '%s': expected ADDRESS:PORT", listen);
        return -1;
    }
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!end || *end || port < 0 || port > 65535) {
        err_set(err, errlen, "REST listen address '%s': bad port", listen);
        return -1;
    }
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    char portbuf[8];
    snprintf(portbuf, sizeof portbuf, "%ld", port);
    if (getaddrinfo(host, portbuf, &hints, &ai) != 0 || !ai) {
        err_set(err, errlen, "REST listen address '%s': the address must be a numeric IPv4 or IPv6 address",
                listen);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* On the loop: serve, then sleep no longer than MHD allows. */
static void rearm(struct api *api)
{
    int64_t t = api_timeout_ms(api);
    if (t < 0)
        loop_timer_disarm(api->timer);
    else
        loop_timer_arm(api->timer, t);
}

static void on_loop_timer(void *ctx)
{
    struct api *api = ctx;
    api_run(api);
    rearm(api);
}

static void on_loop_io(void *ctx, short events)
{
    (void)events;
    on_loop_timer(ctx);
}

static int attach_loop(struct api *api, struct loop *loop, char *err, size_t errlen)
{
    api->loop = loop;
    if (!(api->timer = loop_timer_new(loop, on_loop_timer, api)) ||
        loop_add_fd(loop, api_fd(api), ZMQ_POLLIN, on_loop_io, api) != 0) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    rearm(api);
    return 0;
}

struct api *api_new(const struct api_config *cfg, const struct api_deps *deps, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    const char *listen = cfg && cfg->listen ? cfg->listen : API_DEFAULT_LISTEN;
    if (!deps || !deps->auth || !deps->registry) {
        err_set(err, errlen, "REST API without an auth backend or a registry");
        return NULL;
    }
    if (parse_listen(listen, &ss, &sslen, err, errlen) != 0)
        return NULL;
    bool loopback_only = auth_loopback_only(deps->auth);
    if (loopback_only && !is_loopback((struct sockaddr *)&ss)) {
        err_set(err, errlen, "REST listen address '%s' is not loopback, and the API has no tokens (auth "
                "'%s'): configure a token file to serve other hosts", listen, auth_kind(deps->auth));
        return NULL;
    }
    struct api *api = calloc(1, sizeof *api);
    if (!api) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    api->auth = deps->auth;
    api->core = deps->core;
    api->registry = deps->registry;
    api->loopback_only = loopback_only;
    api->body_limit = cfg && cfg->body_limit ? cfg->body_limit : API_BODY_LIMIT_DEFAULT;
    api->page_size = cfg && cfg->page_size ? cfg->page_size : API_PAGE_SIZE_DEFAULT;
    if (api->page_size > API_PAGE_SIZE_MAX)
        api->page_size = API_PAGE_SIZE_MAX;
    api->request_timeout_ms = cfg ? cfg->request_timeout_ms : 0;
    unsigned max_conn = cfg && cfg->max_connections ? cfg->max_connections : API_MAX_CONNECTIONS_DEFAULT;
    unsigned idle = cfg && cfg->idle_timeout_s ? cfg->idle_timeout_s : API_IDLE_TIMEOUT_S_DEFAULT;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    api->mhd = MHD_start_daemon(flags, 0, on_accept, api, on_request, api,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                MHD_OPTION_CONNECTION_LIMIT, max_conn,
                                MHD_OPTION_CONNECTION_TIMEOUT, idle,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, api,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
                                MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
                                MHD_OPTION_END);
    if (!api->mhd) {
        err_set(err, errlen, "REST API cannot listen on %s (address in use or not available)", listen);
        free(api);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : 0;
    if (deps->loop && attach_loop(api, deps->loop, err, errlen) != 0) {
        api_free(api);
        return NULL;
    }
    if (loopback_only)
        log_warn("!!! REST API on %s WITHOUT TOKENS: every local process may act as any tenant, with the "
                 "admin role; serving loopback peers only. Configure a token file for anything else. !!!",
                 listen);
    log_info("REST API listening on %s (port %u, auth %s, body limit %zu bytes)", listen, (unsigned)api->port,
             auth_kind(api->auth), api->body_limit);
    return api;
}

void api_free(struct api *api)
{
    if (!api)
        return;
    while (api->suspended) {
        struct api_request *r = api->suspended;
        log_warn("REST: a request was still waiting at shutdown; answering 503");
        api_fault(r, 503, "the control plane is shutting down");
        resume(r);
    }
    if (api->loop && api->mhd)
        loop_remove_fd(api->loop, api_fd(api));
    if (api->timer)
        loop_timer_free(api->timer);
    if (api->mhd) {
        MHD_run(api->mhd);
        MHD_stop_daemon(api->mhd);
    }
    api_param_cache_free(api->params);
    free(api);
}

int api_fd(const struct api *api)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int64_t api_timeout_ms(struct api *api)
{
    if (api->resumed)
        return 0;
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (MHD_get_timeout(api->mhd, &t) != MHD_YES)
        return -1;
    return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

void api_run(struct api *api)
{
    api->resumed = false;
    MHD_run(api->mhd);
}

uint16_t api_port(const struct api *api)
{
    return api->port;
}
