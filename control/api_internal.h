/*
 * api_internal.h - what the REST API's files share: the server's state, one
 * request, the route table's shape, and the helpers every resource uses to
 * answer (Trove's fault bodies), to check bodies strictly, to page lists and
 * to submit work to the core. Only control/api*.c include it.
 */
#ifndef TROVE_CONTROL_API_INTERNAL_H
#define TROVE_CONTROL_API_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "auth.h"
#include "trove_plugin.h"

struct MHD_Daemon;
struct MHD_Connection;
struct tv;
struct api_request;
struct api_param_cache;
struct loop_timer;

struct api {
    struct MHD_Daemon *mhd;
    struct auth *auth;
    struct control_core *core;
    struct registry *registry;
    struct loop *loop;                  /* NULL: the caller drives api_run() */
    struct loop_timer *timer;           /* wakes api_run() for MHD's timeouts and resumed requests */
    size_t body_limit;
    unsigned page_size;
    int64_t request_timeout_ms;
    uint16_t port;
    bool loopback_only;
    bool resumed;                       /* a connection was resumed since the last api_run */
    struct api_request *suspended;      /* suspended requests (doubly linked), for api_free */
    struct api_param_cache *params;     /* datastore version id -> parameter schema */
};

#define API_MAX_SEGMENTS 8
#define API_MAX_ARGS 4

/* A request body is JSON; how a route wants it. */
enum api_body_rule { API_BODY_NONE, API_BODY_OPTIONAL, API_BODY_REQUIRED };

typedef void (*api_handler_fn)(struct api_request *r);
/* A reply from the core for this request (see api_submit). */
typedef void (*api_reply_fn)(struct api_request *r, int status, const char *message, const struct tv *result);

struct api_route {
    const char *method;
    const char *pattern;       /* segments after /v1.0/{tenant}/, "{}" matches one */
    api_handler_fn fn;
    enum api_body_rule body;
    bool admin;                /* only for tokens with the admin role */
};

struct api_request {
    struct api *api;
    struct MHD_Connection *conn;
    char method[8];
    char *uri;                          /* the raw request target (path and query) */
    char *seg[API_MAX_SEGMENTS];        /* decoded path segments after /v1.0/{tenant}/ */
    size_t nseg;
    const char *arg[API_MAX_ARGS];      /* the segments the route's "{}" matched */
    char *tenant;                       /* decoded tenant of the URL */
    char host[256];                     /* for links: the Host header, checked (see api_links) */
    char *qval[8];                      /* decoded query values handed out by api_query */
    size_t nqval;
    struct auth_identity who;
    const struct api_route *route;

    /* body */
    char *body;
    size_t body_len, body_cap;
    size_t received;                    /* bytes seen, also past the limit */
    bool too_large;
    json_t *json;                       /* the parsed body (NULL without one) */

    /* the answer */
    bool answered;
    unsigned status;
    char *resp;                         /* JSON text (malloc'd) or NULL for an empty body */
    size_t resp_len;
    char allow[64];                     /* Allow header for 405 */

    /* waiting for the core */
    bool started;                       /* the handler ran */
    bool waiting;                       /* a reply from the core is due */
    bool suspended;
    api_reply_fn on_reply;
    void *ctx;                          /* the handler's state across a reply */
    void (*ctx_free)(void *ctx);
    struct api_request *prev, *next;    /* in api->suspended */
};

/* The routes of each resource (api_instances.c, ...), NULL-terminated by
 * a row with method NULL; api.c walks them in this order. */
extern const struct api_route api_instance_routes[];
extern const struct api_route api_database_routes[];
extern const struct api_route api_user_routes[];
extern const struct api_route api_datastore_routes[];
extern const struct api_route api_task_routes[];
extern const struct api_route api_mgmt_routes[];

/* ---------------------------------------------------------- answering */

/* Answer with a JSON body (stolen; NULL: empty body). Only the first
 * answer counts. */
void api_respond(struct api_request *r, unsigned status, json_t *body);
/* Answer with Trove's fault body {name: {code, message}} for status
 * (400 badRequest, 401 unauthorized, 403 forbidden, 404 itemNotFound,
 * 405 badMethod, 413 overLimit, 415 badMediaType, 422 unprocessableEntity,
 * 500 instanceFault, 501 notImplemented, 503 serviceUnavailable, ...). */
void api_fault(struct api_request *r, unsigned status, const char *fmt, ...) TROVE_PRINTF(3, 4);
/* The HTTP status for an enum trove_status from the core or the registry. */
unsigned api_http_status(int trove_status);
/* api_fault with the status mapped from an enum trove_status. */
void api_fault_status(struct api_request *r, int trove_status, const char *message);

/* ---------------------------------------------------------- links and paging */

/* Trove's links for a resource: [{href, rel: self}, {href, rel: bookmark}]
 * under this request's host and tenant. */
json_t *api_links(struct api_request *r, const char *resource_path, const char *id);
/* The request's query value for key, decoded (NULL if absent). The string
 * lives as long as the request. */
const char *api_query(struct api_request *r, const char *key);
/* Read ?limit= and ?marker=: limit defaults to the page size and is capped
 * at API_PAGE_SIZE_MAX. False after answering 400 for a bad limit. */
bool api_paging(struct api_request *r, size_t *limit, const char **marker);
/* Put `collection` (stolen) under `name` in a new object, with
 * links: [{rel: next, href}] when next_marker is not NULL (Trove: no
 * links key at all for a last page of users or databases; instances
 * always carry it). */
json_t *api_page(struct api_request *r, const char *name, json_t *collection, const char *next_marker,
                 bool always_links);
/* Answer 200 with api_page() of `collection` (stolen), its next marker taken
 * from an agent result's `next_marker` (absent or empty: the last page);
 * 500 when out of memory. */
void api_respond_agent_page(struct api_request *r, const char *name, json_t *collection,
                            const struct tv *result);

/* ---------------------------------------------------------- strict bodies */

/* Each check answers 400 (naming the field by its path) and returns false
 * on the first problem. */
bool api_check_keys(struct api_request *r, json_t *obj, const char *path, const char *const *allowed);
/* The body is {key: {...}} with exactly that one key. */
json_t *api_body_object(struct api_request *r, const char *key);
/* Field accessors: NULL/absent is fine unless required. */
bool api_get_string(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                    const char **out);
bool api_get_object(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                    json_t **out);
bool api_get_array(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                   json_t **out);
bool api_get_bool(struct api_request *r, json_t *obj, const char *path, const char *key, bool *out);
/* A positive integer given as a number or as a string of digits. */
bool api_get_positive(struct api_request *r, json_t *obj, const char *path, const char *key, bool required,
                      int64_t max, int64_t *out);

/* Name rules (docs/api.md); each answers 400 naming `what` on failure. */
enum api_name_kind {
    API_NAME_INSTANCE,   /* 1-255 bytes, printable, no quotes or backslash, contains a letter or digit */
    API_NAME_DATABASE,   /* 1-64 of [A-Za-z0-9_-] */
    API_NAME_USER,       /* 1-64 of [A-Za-z0-9_.-] */
    API_NAME_HOST,       /* 1-60 of [A-Za-z0-9.:%_-] */
    API_NAME_PASSWORD,   /* 1-255 bytes, no control characters */
    API_NAME_CHARSET,    /* 1-64 of [A-Za-z0-9_] */
    API_NAME_REF,        /* ids and datastore names: 1-64 of [A-Za-z0-9_.:-] */
};
bool api_name_ok(enum api_name_kind kind, const char *s);
bool api_check_name(struct api_request *r, enum api_name_kind kind, const char *what, const char *s);

/* ---------------------------------------------------------- the core */

/*
 * Send op (to `instance`'s agent, or a control op when instance is NULL)
 * with args (taken, may be NULL) as the caller's tenant; fn runs once with
 * the reply, possibly before this returns. The request stays open (the
 * connection suspended) until a handler answers.
 */
void api_submit(struct api_request *r, const char *instance, const char *op, struct tv *args, api_reply_fn fn);
/* As api_submit, as the operator (every instance): for what is no
 * tenant's data, such as a datastore version's parameter schema. */
void api_submit_operator(struct api_request *r, const char *instance, const char *op, struct tv *args,
                         api_reply_fn fn);
/* Send op once per item of list (an array of arg maps, taken), in order;
 * answer the first failure, or 202 when all succeeded. Uses the request's
 * ctx. */
void api_submit_each(struct api_request *r, const char *instance, const char *op, struct tv *list);
/* A reply handler for accepted work: 202 without a body, or the fault. */
void api_accepted(struct api_request *r, int status, const char *message, const struct tv *result);
/* Keep handler state across a reply; freed with the request. */
void api_set_ctx(struct api_request *r, void *ctx, void (*ctx_free)(void *));
/* A tv result as a jansson value (new reference; NULL on no memory). */
json_t *api_tv_json(const struct tv *v);

/* ISO 8601 (UTC, seconds) of ms since the epoch, as Trove writes times. */
void api_time(int64_t ms, char out[32]);

/* ---------------------------------------------------------- shared reads */

struct registry_instance;
struct registry_task;
struct registry_datastore;
struct registry_datastore_version;

/* The caller's instance by id, or false after answering 404 (also for
 * another tenant's instance, which is never hinted at). Clear *out with
 * registry_instance_clear either way. */
bool api_load_instance(struct api_request *r, const char *id, struct registry_instance *out);
/* As api_load_instance, and the instance is past its build (422 while NEW
 * or BUILD): for work its agent does. */
bool api_load_ready_instance(struct api_request *r, const char *id, struct registry_instance *out);
/* A task as the API shows it (api_instances.c). */
json_t *api_task_view(const struct registry_task *t);
/* The datastore and version a create names (type and version may be NULL:
 * the only datastore, the datastore's default or only active version).
 * False after answering 400/404. Clear both records either way. */
bool api_resolve_datastore(struct api_request *r, const char *type, const char *version,
                           struct registry_datastore *ds, struct registry_datastore_version *ver);
/* A registry failure other than not-found: logged, answered 500 or 503. */
void api_registry_fault(struct api_request *r, int rc, const char *err);

/* Parameter schema cache (api_datastores.c). */
void api_param_cache_free(struct api_param_cache *c);

#endif
