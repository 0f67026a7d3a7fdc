/*
 * trovectl_rest.c - trovectl as a tenant uses it: Trove-like verbs over the
 * REST API (docs/api.md) with libcurl, names resolved to ids as the Trove
 * CLI does, --wait following long work with progress on stderr, --json, and
 * one line on stderr on failure. The operator's ZeroMQ path (--endpoint)
 * stays in trovectl.c and trovectl_verbs.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "input.h"
#include "json.h"
#include "ops.h"
#include "trove_plugin.h"
#include "trovectl.h"

#ifndef TROVE_VERSION
#define TROVE_VERSION "unknown"
#endif

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_URL "http://127.0.0.1:8779"
#define DEFAULT_TENANT "default"
#define REQUEST_TIMEOUT_S 60
#define WAIT_TIMEOUT_S 3600
#define RESPONSE_MAX (64L * 1024 * 1024)
#define ID_MAX 64

struct rest {
    char base[1024];          /* http://host:port/v1.0/TENANT, no trailing slash */
    char *token;              /* $TROVE_TOKEN or --token-file; never from argv */
    bool json, wait;
    long timeout_s;           /* 0: the verb's default */
    const char *verb;
    CURL *curl;
};

struct rest_verb {
    const char *name;
    const char *usage;
    const char *summary;
    int min_pos, max_pos;     /* max -1: no limit */
    const char *options;      /* "flag", "name=" (a value), "name=*" (repeatable) */
    const char *op;           /* the catalogue operation (common/ops.h) the verb asks for, NULL when it is
                                 none; --wait follows the verbs whose operation runs as a task */
    int (*run)(struct rest *rs, const struct cli_args *a);
};

/* ------------------------------------------------------------ failure and output */

static const char *code_for_http(long status)
{
    switch (status) {
    case 400: case 413: case 415: return "invalid_argument";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "invalid_argument";
    case 409: case 422: return "failed_precondition";
    case 501: return "not_supported";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return "internal";
    }
}

static int fail(const struct rest *rs, int exit_code, const char *code, const char *fmt, ...) TROVE_PRINTF(4, 5);

static int fail(const struct rest *rs, int exit_code, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    for (char *p = message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "trovectl: %s: %s\n", code, message);
    if (rs && rs->json) {
        json_t *out = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message", message);
        char *text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(out);
    }
    return exit_code;
}

#define USAGE(rs, ...) fail(rs, EXIT_USAGE, "usage", __VA_ARGS__)

/* doc as indented JSON (NULL: {}); doc stays the caller's. */
static int print_json(json_t *doc)
{
    json_t *empty = doc ? NULL : json_object();
    char *text = json_dumps(doc ? doc : empty, JSON_INDENT(2));
    json_decref(empty);
    if (!text)
        return fail(NULL, EXIT_FAILED, "internal", "out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* {key: list} as JSON. */
static int print_json_list(const char *key, json_t *list)
{
    json_t *doc = json_pack("{s:O}", key, list);
    int rc = doc ? print_json(doc) : fail(NULL, EXIT_FAILED, "internal", "out of memory");
    json_decref(doc);
    return rc;
}

/* A JSON value as one cell of text. */
static void cell_text(json_t *v, char *out, size_t cap)
{
    out[0] = '\0';
    if (!v || json_is_null(v)) {
        snprintf(out, cap, "-");
    } else if (json_is_string(v)) {
        snprintf(out, cap, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(out, cap, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        size_t i, used = 0;
        json_t *item;
        json_array_foreach(v, i, item) {
            char one[256];
            json_t *name = json_is_object(item) ? json_object_get(item, "name") : NULL;
            cell_text(name ? name : item, one, sizeof one);
            if (used < cap)
                used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", one);
        }
    } else {
        char *text = json_dumps(v, JSON_COMPACT);
        snprintf(out, cap, "%s", text ? text : "{...}");
        free(text);
    }
}

/* A value at a dotted path ("datastore.type"). */
static json_t *at(json_t *obj, const char *path)
{
    char key[64];
    while (obj && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), path);
        obj = json_is_object(obj) ? json_object_get(obj, key) : NULL;
        path += n + (path[n] == '.');
    }
    return obj;
}

struct column {
    const char *header, *path;
};

/* An aligned table of the objects in list. */
static void print_table(json_t *list, const struct column *cols, size_t ncols)
{
    size_t rows = json_array_size(list), width[16] = { 0 };
    char(*cells)[256] = calloc(rows * ncols + 1, sizeof *cells);
    if (!cells || ncols > 16)
        return;
    for (size_t c = 0; c < ncols; c++)
        width[c] = strlen(cols[c].header);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < ncols; c++) {
            cell_text(at(json_array_get(list, r), cols[c].path), cells[r * ncols + c], 256);
            size_t len = strlen(cells[r * ncols + c]);
            if (len > width[c])
                width[c] = len;
        }
    for (size_t c = 0; c < ncols; c++)
        printf("%-*s%s", (int)width[c], cols[c].header, c + 1 < ncols ? "  " : "\n");
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < ncols; c++)
            printf("%-*s%s", (int)width[c], cells[r * ncols + c], c + 1 < ncols ? "  " : "\n");
    free(cells);
}

/* "key: value" lines (common printer), without links; secrets masked unless reveal. */
static void print_object(json_t *obj, bool reveal)
{
    json_t *copy = json_deep_copy(obj);
    if (!copy)
        return;
    json_object_del(copy, "links");
    const char *key;
    json_t *v;
    json_object_foreach(copy, key, v) {
        if (json_is_object(v))
            json_object_del(v, "links");
    }
    char *text = json_dumps(copy, JSON_COMPACT);
    struct tv *tv = NULL;
    char err[128];
    if (text && json_to_tv(text, &tv, err, sizeof err) == 0)
        print_kv(tv, reveal);
    tv_free(tv);
    free(text);
    json_decref(copy);
}

/* ------------------------------------------------------------ HTTP */

struct buffer {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct buffer *b = user;
    size_t n = size * nmemb;
    if (b->len + n > RESPONSE_MAX) {
        b->too_big = true;
        return 0;
    }
    char *d = realloc(b->data, b->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->len += n;
    d[b->len] = '\0';
    b->data = d;
    return n;
}

/* A path segment, percent-encoded (malloc'd via curl). */
static char *seg(struct rest *rs, const char *s)
{
    return curl_easy_escape(rs->curl, s, 0);
}

/*
 * One request: path is under the tenant ("/instances/..."). On a 2xx answer
 * *out (may be NULL) gets the parsed body (NULL when empty) and 0 is
 * returned; on anything else the failure is printed (one line) and the exit
 * code returned. *status (may be NULL) gets the HTTP status (0 if none).
 */
static int http(struct rest *rs, const char *method, const char *path, json_t *body, json_t **out, long *status)
{
    struct buffer b = { 0 };
    char url[2048], *text = NULL, header[512];
    struct curl_slist *headers = NULL;
    long code = 0, timeout = rs->timeout_s ? rs->timeout_s : REQUEST_TIMEOUT_S;
    int rc = EXIT_FAILED;
    if (out)
        *out = NULL;
    snprintf(url, sizeof url, "%s%s", rs->base, path);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        text = json_dumps(body, JSON_COMPACT);
    }
    if (rs->token) {
        snprintf(header, sizeof header, "X-Auth-Token: %s", rs->token);
        headers = curl_slist_append(headers, header);
        memset(header, 0, sizeof header);
    }
    curl_easy_reset(rs->curl);
    curl_easy_setopt(rs->curl, CURLOPT_URL, url);
    curl_easy_setopt(rs->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(rs->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(rs->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(rs->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(rs->curl, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(rs->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(rs->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(rs->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (text)
        curl_easy_setopt(rs->curl, CURLOPT_POSTFIELDS, text);
    CURLcode cc = curl_easy_perform(rs->curl);
    curl_slist_free_all(headers);
    if (cc != CURLE_OK) {
        rc = fail(rs, EXIT_FAILED, cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "unavailable",
                  "cannot reach the REST API at %s: %s%s", rs->base,
                  b.too_big ? "the answer is too large" : curl_easy_strerror(cc),
                  cc == CURLE_COULDNT_CONNECT ? " (is trove-control running? --url or $TROVE_URL)" : "");
        goto out;
    }
    curl_easy_getinfo(rs->curl, CURLINFO_RESPONSE_CODE, &code);
    json_t *doc = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    if (code >= 200 && code < 300) {
        if (b.len && !doc) {
            rc = fail(rs, EXIT_FAILED, "internal", "the REST API answered %ld with a body that is not JSON", code);
            goto out;
        }
        if (out)
            *out = doc;
        else
            json_decref(doc);
        rc = 0;
        goto out;
    }
    /* Trove's fault body: {"name": {"code": N, "message": "..."}} */
    const char *message = NULL;
    if (json_is_object(doc) && json_object_size(doc) == 1) {
        json_t *fault = json_object_iter_value(json_object_iter(doc));
        message = json_string_value(json_object_get(fault, "message"));
    }
    if (!status || code != 404)
        rc = fail(rs, EXIT_FAILED, code_for_http(code), "%s (HTTP %ld)", message ? message : "request refused",
                  code);
    json_decref(doc);
out:
    if (status)
        *status = code;
    free(text);
    free(b.data);
    return rc;
}

static int get(struct rest *rs, const char *path, json_t **out)
{
    return http(rs, "GET", path, NULL, out, NULL);
}

/* Every page of a list (following the marker of each next link). */
static int get_all(struct rest *rs, const char *path, const char *key, json_t **out)
{
    json_t *all = json_array();
    char url[2048], marker[512] = "";
    *out = NULL;
    for (int page = 0; all && page < 100000; page++) {
        json_t *doc = NULL;
        if (marker[0]) {
            char *m = seg(rs, marker);
            snprintf(url, sizeof url, "%s%slimit=1000&marker=%s", path, strchr(path, '?') ? "&" : "?", m ? m : "");
            curl_free(m);
        } else {
            snprintf(url, sizeof url, "%s%slimit=1000", path, strchr(path, '?') ? "&" : "?");
        }
        int rc = get(rs, url, &doc);
        if (rc != 0) {
            json_decref(all);
            return rc;
        }
        json_array_extend(all, json_object_get(doc, key));
        marker[0] = '\0';
        size_t i;
        json_t *link;
        json_array_foreach(json_object_get(doc, "links"), i, link) {
            const char *rel = json_string_value(json_object_get(link, "rel"));
            const char *href = json_string_value(json_object_get(link, "href"));
            const char *m = href && rel && strcmp(rel, "next") == 0 ? strstr(href, "marker=") : NULL;
            if (m) {
                int n = 0;
                char *raw = strndup(m + 7, strcspn(m + 7, "&"));
                char *dec = raw ? curl_easy_unescape(rs->curl, raw, 0, &n) : NULL;
                snprintf(marker, sizeof marker, "%s", dec ? dec : "");
                curl_free(dec);
                free(raw);
            }
        }
        json_decref(doc);
        if (!marker[0]) {
            *out = all;
            return 0;
        }
    }
    json_decref(all);
    return fail(rs, EXIT_FAILED, "internal", "out of memory");
}

/* ------------------------------------------------------------ names to ids */

/* As the Trove CLI: an id first, then a unique name among all of them. */
static int resolve(struct rest *rs, const char *what, const char *collection, const char *key,
                   const char *name_or_id, char id[ID_MAX + 1])
{
    char path[1024];
    json_t *doc = NULL, *all = NULL;
    long status = 0;
    char *s = seg(rs, name_or_id);
    snprintf(path, sizeof path, "/%s/%s", collection, s ? s : "");
    curl_free(s);
    int rc = http(rs, "GET", path, NULL, &doc, &status);
    if (rc == 0) {
        json_t *idv = at(doc, key);
        snprintf(id, ID_MAX + 1, "%s", json_string_value(at(idv, "id")) ? json_string_value(at(idv, "id"))
                                                                         : json_string_value(at(idv, "str_id")));
        json_decref(doc);
        return 0;
    }
    if (status != 404)
        return rc;
    snprintf(path, sizeof path, "/%s", collection);
    rc = strcmp(collection, "instances") == 0 ? get_all(rs, path, collection, &all) : get(rs, path, &doc);
    if (rc != 0)
        return rc;
    if (!all) {
        all = json_incref(json_object_get(doc, collection));
        json_decref(doc);
    }
    size_t i, found = 0;
    json_t *item;
    json_array_foreach(all, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (name && strcmp(name, name_or_id) == 0) {
            json_t *idv = json_object_get(item, "str_id") ? json_object_get(item, "str_id") : json_object_get(item, "id");
            snprintf(id, ID_MAX + 1, "%s", json_string_value(idv) ? json_string_value(idv) : "");
            found++;
        }
    }
    json_decref(all);
    if (found == 1)
        return 0;
    if (found == 0)
        return fail(rs, EXIT_FAILED, "not_found", "No %s with a name or ID of '%s' exists.", what, name_or_id);
    return fail(rs, EXIT_FAILED, "invalid_argument", "More than one %s exists with the name '%s'; use its ID.", what,
                name_or_id);
}

static int resolve_instance(struct rest *rs, const char *name_or_id, char id[ID_MAX + 1])
{
    return resolve(rs, "instance", "instances", "instance", name_or_id, id);
}

static int resolve_flavor(struct rest *rs, const char *name_or_id, char id[ID_MAX + 1])
{
    return resolve(rs, "flavor", "flavors", "flavor", name_or_id, id);
}

/* ------------------------------------------------------------ waiting */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec;
}

/* A progress line when what is shown changes. */
static void progress(struct rest *rs, char *last, size_t cap, const char *status, json_t *task)
{
    char line[512];
    const char *message = json_string_value(json_object_get(task, "message"));
    if (task)
        snprintf(line, sizeof line, "%s %3lld%% %s", status, (long long)json_integer_value(json_object_get(task, "progress")),
                 message ? message : "");
    else
        snprintf(line, sizeof line, "%s", status);
    if (strcmp(line, last) != 0 && !rs->json)
        fprintf(stderr, "trovectl: %s: %s\n", rs->verb, line);
    snprintf(last, cap, "%s", line);
}

/* The instance settled: the task it ran (if one was seen) must have
 * completed; then *final is the instance's view. */
static int task_outcome(struct rest *rs, const char *id, const char *task_id, const char *path, json_t **final)
{
    if (task_id[0]) {
        json_t *t = NULL;
        char tpath[128];
        snprintf(tpath, sizeof tpath, "/tasks/%s", task_id);
        int rc = get(rs, tpath, &t);
        const char *state = json_string_value(at(t, "task.state"));
        if (rc == 0 && state && strcmp(state, "FAILED") == 0) {
            const char *why = json_string_value(at(t, "task.error"));
            rc = fail(rs, EXIT_FAILED, "failed", "%s on instance %s failed: %s",
                      json_string_value(at(t, "task.kind")) ? json_string_value(at(t, "task.kind")) : "the task", id,
                      why && why[0] ? why : "no reason given");
        }
        json_decref(t);
        if (rc != 0)
            return rc;
    }
    return get(rs, path, final);
}

/*
 * Follow an instance until its work ends: gone (gone_ok: deleting), or no
 * task any more and a settled status. ACTIVE/HEALTHY (or SHUTDOWN after a
 * task that does not start the engine) is success; ERROR or FAILED, or the
 * task failing, is failure with the reason. *final gets the last view.
 */
static int wait_instance(struct rest *rs, const char *id, bool gone_ok, json_t **final)
{
    char path[256], last[512] = "", task_id[ID_MAX + 1] = "";
    long deadline = now_s() + (rs->timeout_s ? rs->timeout_s : WAIT_TIMEOUT_S);
    *final = NULL;
    snprintf(path, sizeof path, "/instances/%s", id);
    for (long pause = 300;; pause = pause < 2000 ? pause * 2 : 2000) {
        json_t *doc = NULL;
        long status = 0;
        int rc = http(rs, "GET", path, NULL, &doc, &status);
        if (rc != 0 && status == 404 && gone_ok) {
            progress(rs, last, sizeof last, "deleted", NULL);
            return 0;
        }
        if (rc != 0)
            return status == 404 ? fail(rs, EXIT_FAILED, "not_found", "instance %s disappeared", id) : rc;
        json_t *inst = json_object_get(doc, "instance");
        char st_buf[64];
        snprintf(st_buf, sizeof st_buf, "%s", json_string_value(json_object_get(inst, "status")) ?
                                                  json_string_value(json_object_get(inst, "status")) : "?");
        const char *st = st_buf;   /* outlives doc */
        json_t *task = json_object_get(inst, "task");
        if (task)
            snprintf(task_id, sizeof task_id, "%s", json_string_value(json_object_get(task, "id")));
        progress(rs, last, sizeof last, st, task);
        bool failed = strcmp(st, "ERROR") == 0 || strcmp(st, "FAILED") == 0;
        bool settled = !task && strcmp(st, "?") != 0 && strcmp(st, "BUILD") != 0 && strcmp(st, "NEW") != 0 &&
                       strcmp(st, "REBOOT") != 0 && strcmp(st, "RESIZE") != 0;
        if (failed && !task) {
            const char *why = json_string_value(at(inst, "fault.message"));
            char reason[512];
            snprintf(reason, sizeof reason, "%s", why ? why : "no reason given");
            if (!why && task_id[0]) {     /* the task says why */
                json_t *t = NULL;
                char tpath[128];
                snprintf(tpath, sizeof tpath, "/tasks/%s", task_id);
                if (get(rs, tpath, &t) == 0 && json_string_value(at(t, "task.error")))
                    snprintf(reason, sizeof reason, "%s", json_string_value(at(t, "task.error")));
                json_decref(t);
            }
            json_decref(doc);
            return fail(rs, EXIT_FAILED, "failed", "instance %s is %s: %s", id, st, reason);
        }
        if (settled && !gone_ok) {
            json_decref(doc);
            return task_outcome(rs, id, task_id, path, final);
        }
        json_decref(doc);
        if (now_s() >= deadline)
            return fail(rs, EXIT_FAILED, "timeout", "instance %s is still %s after %lds (it goes on; trovectl show %s)",
                        id, st, rs->timeout_s ? rs->timeout_s : WAIT_TIMEOUT_S, id);
        sleep_ms(pause);
    }
}

/* After accepted work (202): wait if asked, then print the instance. */
static int finish_action(struct rest *rs, const char *id, bool gone_ok)
{
    if (!rs->wait)
        return rs->json ? print_json(NULL) : 0;
    json_t *final = NULL;
    int rc = wait_instance(rs, id, gone_ok, &final);
    if (rc == 0 && final) {
        if (rs->json)
            print_json(final);
        else
            printf("%s: %s\n", id, json_string_value(at(final, "instance.status")));
    } else if (rc == 0 && rs->json) {
        print_json(NULL);
    }
    json_decref(final);
    return rc;
}

/* ------------------------------------------------------------ instances */

static const struct column instance_columns[] = {
    { "ID", "id" }, { "Name", "name" }, { "Datastore", "datastore.type" }, { "Version", "datastore.version" },
    { "Status", "status" }, { "Flavor", "flavor.id" }, { "Size", "volume.size" },
};

static int run_list(struct rest *rs, const struct cli_args *a)
{
    json_t *list = NULL, *doc = NULL;
    const char *limit = cli_opt(a, "limit"), *marker = cli_opt(a, "marker");
    int rc;
    if (limit || marker) {
        char path[1024];
        char *m = marker ? seg(rs, marker) : NULL;
        snprintf(path, sizeof path, "/instances?%s%s%s%s", limit ? "limit=" : "", limit ? limit : "",
                 limit && m ? "&" : "", m ? "marker=" : "");
        if (m)
            strncat(path, m, sizeof path - strlen(path) - 1);
        curl_free(m);
        rc = get(rs, path, &doc);
        list = rc == 0 ? json_incref(json_object_get(doc, "instances")) : NULL;
    } else {
        rc = get_all(rs, "/instances", "instances", &list);
    }
    if (rc == 0) {
        if (rs->json)
            doc ? print_json(doc) : print_json_list("instances", list);
        else
            print_table(list, instance_columns, sizeof instance_columns / sizeof instance_columns[0]);
    }
    json_decref(list);
    json_decref(doc);
    return rc;
}

static int run_show(struct rest *rs, const struct cli_args *a)
{
    char id[ID_MAX + 1], path[256];
    json_t *doc = NULL;
    int rc = resolve_instance(rs, a->pos[0], id);
    snprintf(path, sizeof path, "/instances/%s", id);
    if (rc == 0 && (rc = get(rs, path, &doc)) == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(json_object_get(doc, "instance"), false);
    }
    json_decref(doc);
    return rc;
}

/* A secret named `what`: the value given, or for "-" one line read whole
 * from standard input; empty or over the password limit is refused. Returns
 * malloc'd text to release with input_free_secret, or NULL after reporting
 * the usage error. */
static char *take_secret(struct rest *rs, const char *value, const char *what)
{
    char err[256];
    char *secret = strcmp(value, "-") == 0 ? input_read_secret(stdin, what, err, sizeof err) : strdup(value);
    if (!secret) {
        USAGE(rs, "%s", strcmp(value, "-") == 0 ? err : "out of memory");
        return NULL;
    }
    if (!secret[0]) {
        USAGE(rs, "%s is empty", what);
        input_free_secret(secret);
        return NULL;
    }
    if (input_check_password(what, strlen(secret), err, sizeof err) != 0) {
        USAGE(rs, "%s", err);
        input_free_secret(secret);
        return NULL;
    }
    return secret;
}

/* A user given as NAME or NAME@HOST. */
static json_t *user_object(const char *spec, const char *password, json_t *databases)
{
    const char *at_sign = strrchr(spec, '@');
    json_t *u = json_object();
    if (!u)
        return NULL;
    if (at_sign && at_sign != spec && at_sign[1]) {
        json_object_set_new(u, "name", json_stringn(spec, (size_t)(at_sign - spec)));
        json_object_set_new(u, "host", json_string(at_sign + 1));
    } else {
        json_object_set_new(u, "name", json_string(spec));
    }
    json_object_set_new(u, "password", json_string(password));
    if (databases)
        json_object_set(u, "databases", databases);
    return u;
}

static int build_create(struct rest *rs, const struct cli_args *a, const char *flavor, json_t **out)
{
    const char *size = cli_opt(a, "size");
    char *end = NULL;
    long gb = size ? strtol(size, &end, 10) : 0;
    if (!size || !end || *end || gb < 1)
        return USAGE(rs, "create needs --size GB (a positive whole number)");
    json_t *inst = json_pack("{s:s,s:s,s:{s:I}}", "name", a->pos[0], "flavorRef", flavor, "volume", "size",
                             (json_int_t)gb);
    json_t *dbs = json_array(), *users = json_array();
    if (!inst || !dbs || !users)
        goto nomem;
    for (int i = 0; i < a->n_opts; i++)
        if (strcmp(a->opts[i].name, "database") == 0)
            json_array_append_new(dbs, json_pack("{s:s}", "name", a->opts[i].value));
    for (int i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].name, "user") != 0)
            continue;
        char what[160];
        snprintf(what, sizeof what, "the password of user %.100s", a->opts[i].value);
        char *password = take_secret(rs, "-", what);
        if (!password) {
            json_decref(inst);
            json_decref(dbs);
            json_decref(users);
            return EXIT_USAGE;
        }
        json_array_append_new(users, user_object(a->opts[i].value, password, dbs));
        input_free_secret(password);
    }
    const char *ds = cli_opt(a, "datastore"), *ver = cli_opt(a, "datastore-version");
    if (ds || ver) {
        json_t *d = json_object();
        if (ds)
            json_object_set_new(d, "type", json_string(ds));
        if (ver)
            json_object_set_new(d, "version", json_string(ver));
        json_object_set_new(inst, "datastore", d);
    }
    if (json_array_size(dbs))
        json_object_set(inst, "databases", dbs);
    if (json_array_size(users))
        json_object_set(inst, "users", users);
    json_decref(dbs);
    json_decref(users);
    *out = json_pack("{s:o}", "instance", inst);
    return *out ? 0 : fail(rs, EXIT_FAILED, "internal", "out of memory");
nomem:
    json_decref(inst);
    json_decref(dbs);
    json_decref(users);
    return fail(rs, EXIT_FAILED, "internal", "out of memory");
}

static int run_create(struct rest *rs, const struct cli_args *a)
{
    char flavor[ID_MAX + 1];
    json_t *body = NULL, *doc = NULL;
    int rc = resolve_flavor(rs, a->pos[1], flavor);
    if (rc != 0 || (rc = build_create(rs, a, flavor, &body)) != 0)
        return rc;
    rc = http(rs, "POST", "/instances", body, &doc, NULL);
    json_decref(body);
    if (rc != 0)
        return rc;
    const char *id = json_string_value(at(doc, "instance.id"));
    if (!id) {
        json_decref(doc);
        return fail(rs, EXIT_FAILED, "internal", "the REST API accepted the instance without naming it");
    }
    if (!rs->wait) {
        if (rs->json)
            print_json(doc);
        else
            printf("%s: %s\n", id, json_string_value(at(doc, "instance.status")));
        json_decref(doc);
        return 0;
    }
    char saved[ID_MAX + 1];
    snprintf(saved, sizeof saved, "%s", id);
    json_decref(doc);
    return finish_action(rs, saved, false);
}

/* POST /instances/{id}/action with body (stolen), then wait if asked. */
static int action(struct rest *rs, const char *name_or_id, json_t *body)
{
    char id[ID_MAX + 1], path[256];
    int rc = resolve_instance(rs, name_or_id, id);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    snprintf(path, sizeof path, "/instances/%s/action", id);
    rc = http(rs, "POST", path, body, NULL, NULL);
    json_decref(body);
    return rc != 0 ? rc : finish_action(rs, id, false);
}

static int run_restart(struct rest *rs, const struct cli_args *a)
{
    return action(rs, a->pos[0], json_pack("{s:{}}", "restart"));
}

static int run_resize_flavor(struct rest *rs, const struct cli_args *a)
{
    char flavor[ID_MAX + 1];
    int rc = resolve_flavor(rs, a->pos[1], flavor);
    return rc != 0 ? rc : action(rs, a->pos[0], json_pack("{s:{s:s}}", "resize", "flavorRef", flavor));
}

static int run_resize_volume(struct rest *rs, const struct cli_args *a)
{
    char *end = NULL;
    long gb = strtol(a->pos[1], &end, 10);
    if (!end || *end || gb < 1)
        return USAGE(rs, "resize-volume INSTANCE SIZE: SIZE is a positive whole number of GB");
    return action(rs, a->pos[0], json_pack("{s:{s:{s:I}}}", "resize", "volume", "size", (json_int_t)gb));
}

static int run_reset_status(struct rest *rs, const struct cli_args *a)
{
    char id[ID_MAX + 1], path[256];
    int rc = resolve_instance(rs, a->pos[0], id);
    snprintf(path, sizeof path, "/instances/%s/action", id);
    if (rc == 0) {
        json_t *body = json_pack("{s:{}}", "reset_status");
        rc = http(rs, "POST", path, body, NULL, NULL);
        json_decref(body);
    }
    return rc == 0 && rs->json ? print_json(NULL) : rc;
}

static int run_delete(struct rest *rs, const struct cli_args *a)
{
    char id[ID_MAX + 1], path[256];
    int rc = resolve_instance(rs, a->pos[0], id);
    if (rc != 0)
        return rc;
    if (cli_opt(a, "force")) {   /* as the Trove CLI: reset the status, then delete */
        json_t *body = json_pack("{s:{}}", "reset_status");
        snprintf(path, sizeof path, "/instances/%s/action", id);
        rc = http(rs, "POST", path, body, NULL, NULL);
        json_decref(body);
        if (rc != 0)
            return rc;
    }
    snprintf(path, sizeof path, "/instances/%s", id);
    rc = http(rs, "DELETE", path, NULL, NULL, NULL);
    return rc != 0 ? rc : finish_action(rs, id, true);
}

/* ------------------------------------------------------------ databases, users, root */

/* /instances/{id}/rest... with the instance resolved. */
static int instance_path(struct rest *rs, const char *name_or_id, const char *rest, char *path, size_t cap)
{
    char id[ID_MAX + 1];
    int rc = resolve_instance(rs, name_or_id, id);
    if (rc == 0)
        snprintf(path, cap, "/instances/%s%s", id, rest);
    return rc;
}

/* "/users/NAME[@HOST]" encoded as troveclient does. */
static void user_path(struct rest *rs, const char *name, const char *host, char *out, size_t cap)
{
    char spec[512];
    snprintf(spec, sizeof spec, "%s%s%s", name, host ? "@" : "", host ? host : "");
    char *e = seg(rs, spec);
    snprintf(out, cap, "/users/%s", e ? e : "");
    curl_free(e);
}

static int send_and_report(struct rest *rs, const char *method, const char *path, json_t *body)
{
    int rc = http(rs, method, path, body, NULL, NULL);
    json_decref(body);
    return rc == 0 && rs->json ? print_json(NULL) : rc;
}

static int run_database_create(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    int rc = instance_path(rs, a->pos[0], "/databases", path, sizeof path);
    if (rc != 0)
        return rc;
    json_t *db = json_pack("{s:s}", "name", a->pos[1]);
    if (cli_opt(a, "character-set"))
        json_object_set_new(db, "character_set", json_string(cli_opt(a, "character-set")));
    if (cli_opt(a, "collate"))
        json_object_set_new(db, "collate", json_string(cli_opt(a, "collate")));
    return send_and_report(rs, "POST", path, json_pack("{s:[o]}", "databases", db));
}

static int run_database_delete(struct rest *rs, const struct cli_args *a)
{
    char path[512], *e = seg(rs, a->pos[1]), rest[320];
    snprintf(rest, sizeof rest, "/databases/%s", e ? e : "");
    curl_free(e);
    int rc = instance_path(rs, a->pos[0], rest, path, sizeof path);
    return rc != 0 ? rc : send_and_report(rs, "DELETE", path, NULL);
}

static int list_under(struct rest *rs, const struct cli_args *a, const char *rest, const char *key,
                      const struct column *cols, size_t ncols)
{
    char path[512];
    json_t *list = NULL;
    int rc = instance_path(rs, a->pos[0], rest, path, sizeof path);
    if (rc == 0 && (rc = get_all(rs, path, key, &list)) == 0) {
        if (rs->json)
            print_json_list(key, list);
        else
            print_table(list, cols, ncols);
    }
    json_decref(list);
    return rc;
}

static int run_database_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "Name", "name" } };
    return list_under(rs, a, "/databases", "databases", cols, 1);
}

static int run_user_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "Name", "name" }, { "Host", "host" }, { "Databases", "databases" } };
    return list_under(rs, a, "/users", "users", cols, 3);
}

static int run_user_create(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    int rc = instance_path(rs, a->pos[0], "/users", path, sizeof path);
    if (rc != 0)
        return rc;
    char *password = take_secret(rs, a->pos[2], "password");
    if (!password)
        return EXIT_USAGE;
    json_t *dbs = json_array();
    for (int i = 3; i < a->n_pos; i++)
        json_array_append_new(dbs, json_pack("{s:s}", "name", a->pos[i]));
    const char *host = cli_opt(a, "host");
    json_t *u = json_pack("{s:s,s:s,s:o}", "name", a->pos[1], "password", password, "databases", dbs);
    input_free_secret(password);
    if (u && host)
        json_object_set_new(u, "host", json_string(host));
    return send_and_report(rs, "POST", path, json_pack("{s:[o]}", "users", u));
}

static int user_route(struct rest *rs, const struct cli_args *a, const char *suffix, char *path, size_t cap)
{
    char up[512], rest[600];
    user_path(rs, a->pos[1], cli_opt(a, "host"), up, sizeof up);
    snprintf(rest, sizeof rest, "%s%s", up, suffix);
    return instance_path(rs, a->pos[0], rest, path, cap);
}

static int run_user_show(struct rest *rs, const struct cli_args *a)
{
    char path[1024];
    json_t *doc = NULL;
    int rc = user_route(rs, a, "", path, sizeof path);
    if (rc == 0 && (rc = get(rs, path, &doc)) == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(json_object_get(doc, "user"), false);
    }
    json_decref(doc);
    return rc;
}

static int run_user_delete(struct rest *rs, const struct cli_args *a)
{
    char path[1024];
    int rc = user_route(rs, a, "", path, sizeof path);
    return rc != 0 ? rc : send_and_report(rs, "DELETE", path, NULL);
}

static int run_user_access(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "Name", "name" } };
    char path[1024];
    json_t *doc = NULL;
    int rc = user_route(rs, a, "/databases", path, sizeof path);
    if (rc == 0 && (rc = get(rs, path, &doc)) == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_table(json_object_get(doc, "databases"), cols, 1);
    }
    json_decref(doc);
    return rc;
}

static int run_user_grant(struct rest *rs, const struct cli_args *a)
{
    char path[1024];
    int rc = user_route(rs, a, "/databases", path, sizeof path);
    if (rc != 0)
        return rc;
    json_t *dbs = json_array();
    for (int i = 2; i < a->n_pos; i++)
        json_array_append_new(dbs, json_pack("{s:s}", "name", a->pos[i]));
    return send_and_report(rs, "PUT", path, json_pack("{s:o}", "databases", dbs));
}

static int run_user_revoke(struct rest *rs, const struct cli_args *a)
{
    char base[1024];
    int rc = user_route(rs, a, "/databases/", base, sizeof base);
    for (int i = 2; rc == 0 && i < a->n_pos; i++) {
        char path[1400], *e = seg(rs, a->pos[i]);
        snprintf(path, sizeof path, "%s%s", base, e ? e : "");
        curl_free(e);
        rc = http(rs, "DELETE", path, NULL, NULL, NULL);
    }
    return rc == 0 && rs->json ? print_json(NULL) : rc;
}

static int run_user_password(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    int rc = instance_path(rs, a->pos[0], "/users", path, sizeof path);
    if (rc != 0)
        return rc;
    char *secret = take_secret(rs, a->pos[2], "password");
    if (!secret)
        return EXIT_USAGE;
    json_t *u = json_pack("{s:s,s:s}", "name", a->pos[1], "password", secret);
    input_free_secret(secret);
    if (u && cli_opt(a, "host"))
        json_object_set_new(u, "host", json_string(cli_opt(a, "host")));
    return send_and_report(rs, "PUT", path, json_pack("{s:[o]}", "users", u));
}

static int run_root_enable(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    json_t *body = NULL, *doc = NULL;
    int rc = instance_path(rs, a->pos[0], "/root", path, sizeof path);
    if (rc != 0)
        return rc;
    if (cli_opt(a, "password")) {
        char *secret = take_secret(rs, cli_opt(a, "password"), "password");
        if (!secret)
            return EXIT_USAGE;
        body = json_pack("{s:s}", "password", secret);
        input_free_secret(secret);
    }
    rc = http(rs, "POST", path, body, &doc, NULL);
    json_decref(body);
    if (rc == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(json_object_get(doc, "user"), true);
    }
    json_decref(doc);
    return rc;
}

static int run_root_show(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    json_t *doc = NULL;
    int rc = instance_path(rs, a->pos[0], "/root", path, sizeof path);
    if (rc == 0 && (rc = get(rs, path, &doc)) == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(doc, false);
    }
    json_decref(doc);
    return rc;
}

static int run_root_disable(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    int rc = instance_path(rs, a->pos[0], "/root", path, sizeof path);
    return rc != 0 ? rc : send_and_report(rs, "DELETE", path, NULL);
}

/* ------------------------------------------------------------ catalogue */

/* GET path; print key's list as a table, or the document with --json. */
static int show_list(struct rest *rs, const char *path, const char *key, const struct column *cols, size_t ncols)
{
    json_t *doc = NULL;
    int rc = get(rs, path, &doc);
    if (rc == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_table(json_object_get(doc, key), cols, ncols);
    }
    json_decref(doc);
    return rc;
}

static int show_one(struct rest *rs, const char *path, const char *key)
{
    json_t *doc = NULL;
    int rc = get(rs, path, &doc);
    if (rc == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(key ? json_object_get(doc, key) : doc, false);
    }
    json_decref(doc);
    return rc;
}

/* A path from a format whose %s are filled by encoded arguments. */
static void enc_path(struct rest *rs, char *out, size_t cap, const char *fmt, const char *a1, const char *a2,
                     const char *a3)
{
    char *e1 = a1 ? seg(rs, a1) : NULL, *e2 = a2 ? seg(rs, a2) : NULL, *e3 = a3 ? seg(rs, a3) : NULL;
    snprintf(out, cap, fmt, e1 ? e1 : "", e2 ? e2 : "", e3 ? e3 : "");
    curl_free(e1);
    curl_free(e2);
    curl_free(e3);
}

static int run_datastore_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "ID", "id" }, { "Name", "name" }, { "Versions", "versions" } };
    (void)a;
    return show_list(rs, "/datastores", "datastores", cols, 3);
}

static int run_datastore_show(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    enc_path(rs, path, sizeof path, "/datastores/%s%s%s", a->pos[0], NULL, NULL);
    return show_one(rs, path, "datastore");
}

static int run_version_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "ID", "id" }, { "Name", "name" }, { "Active", "active" } };
    char path[512];
    enc_path(rs, path, sizeof path, "/datastores/%s/versions%s%s", a->pos[0], NULL, NULL);
    return show_list(rs, path, "versions", cols, 3);
}

static int run_version_show(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    enc_path(rs, path, sizeof path, "/datastores/%s/versions/%s%s", a->pos[0], a->pos[1], NULL);
    return show_one(rs, path, "version");
}

static int run_flavor_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "ID", "str_id" }, { "Name", "name" }, { "RAM", "ram" },
                                          { "vCPUs", "vcpus" }, { "Disk", "disk" } };
    (void)a;
    return show_list(rs, "/flavors", "flavors", cols, 5);
}

static int run_flavor_show(struct rest *rs, const struct cli_args *a)
{
    char id[ID_MAX + 1], path[256];
    int rc = resolve_flavor(rs, a->pos[0], id);
    if (rc != 0)
        return rc;
    enc_path(rs, path, sizeof path, "/flavors/%s%s%s", id, NULL, NULL);
    return show_one(rs, path, "flavor");
}

static int run_parameter_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "Name", "name" }, { "Type", "type" }, { "Min", "min" }, { "Max", "max" },
                                          { "Restart Required", "restart_required" } };
    char path[512];
    enc_path(rs, path, sizeof path, "/datastores/%s/versions/%s/parameters%s", a->pos[0], a->pos[1], NULL);
    return show_list(rs, path, "configuration-parameters", cols, 5);
}

static int run_parameter_show(struct rest *rs, const struct cli_args *a)
{
    char path[768];
    enc_path(rs, path, sizeof path, "/datastores/%s/versions/%s/parameters/%s", a->pos[0], a->pos[1], a->pos[2]);
    return show_one(rs, path, NULL);
}

static int run_task_list(struct rest *rs, const struct cli_args *a)
{
    static const struct column cols[] = { { "ID", "id" }, { "Instance", "instance_id" }, { "Kind", "kind" },
                                          { "State", "state" }, { "Progress", "progress" }, { "Error", "error" } };
    char path[512] = "/tasks", id[ID_MAX + 1];
    json_t *list = NULL;
    int rc = 0;
    if (a->n_pos > 0) {
        if ((rc = resolve_instance(rs, a->pos[0], id)) != 0)
            return rc;
        snprintf(path, sizeof path, "/tasks?instance_id=%s", id);
    }
    if ((rc = get_all(rs, path, "tasks", &list)) == 0) {
        if (rs->json)
            print_json_list("tasks", list);
        else
            print_table(list, cols, 6);
    }
    json_decref(list);
    return rc;
}

static int run_task_show(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    enc_path(rs, path, sizeof path, "/tasks/%s%s%s", a->pos[0], NULL, NULL);
    return show_one(rs, path, "task");
}

/* ------------------------------------------------------------ admin */

static int run_version_create(struct rest *rs, const struct cli_args *a)
{
    json_t *v = json_pack("{s:s,s:s,s:s,s:b,s:b}", "name", a->pos[1], "datastore_name", a->pos[0],
                          "datastore_manager", a->pos[2], "active", !cli_opt(a, "inactive"), "default",
                          cli_opt(a, "default") != NULL);
    const char *bindir = cli_opt(a, "engine-bindir"), *binary = cli_opt(a, "engine-binary");
    if (bindir && binary) {
        json_decref(v);
        return USAGE(rs, "give --engine-bindir or --engine-binary, not both");
    }
    if (v && (bindir || binary))
        json_object_set_new(v, "engine", json_pack("{s:s}", bindir ? "bindir" : "binary", bindir ? bindir : binary));
    return send_and_report(rs, "POST", "/mgmt/datastore-versions", json_pack("{s:o}", "version", v));
}

static int run_version_update(struct rest *rs, const struct cli_args *a)
{
    char path[512];
    json_t *body = json_object();
    if (cli_opt(a, "enable") && cli_opt(a, "disable")) {
        json_decref(body);
        return USAGE(rs, "give --enable or --disable, not both");
    }
    if (cli_opt(a, "enable") || cli_opt(a, "disable"))
        json_object_set_new(body, "active", json_boolean(cli_opt(a, "enable") != NULL));
    if (cli_opt(a, "default"))
        json_object_set_new(body, "default", json_true());
    if (cli_opt(a, "engine-bindir"))
        json_object_set_new(body, "engine", json_pack("{s:s}", "bindir", cli_opt(a, "engine-bindir")));
    if (json_object_size(body) == 0) {
        json_decref(body);
        return USAGE(rs, "nothing to change (--enable, --disable, --default, --engine-bindir DIR)");
    }
    enc_path(rs, path, sizeof path, "/mgmt/datastore-versions/%s%s%s", a->pos[0], NULL, NULL);
    return send_and_report(rs, "PATCH", path, body);
}

static int run_flavor_create(struct rest *rs, const struct cli_args *a)
{
    char *e1 = NULL, *e2 = NULL;
    long ram = strtol(a->pos[1], &e1, 10), vcpus = strtol(a->pos[2], &e2, 10);
    long disk = cli_opt(a, "disk") ? atol(cli_opt(a, "disk")) : 0;
    if (*e1 || *e2 || ram < 1 || vcpus < 1 || disk < 0)
        return USAGE(rs, "flavor-create NAME RAM_MB VCPUS [--disk GB] [--id ID]");
    json_t *f = json_pack("{s:s,s:I,s:I,s:I,s:s}", "name", a->pos[0], "ram", (json_int_t)ram, "vcpu",
                          (json_int_t)vcpus, "disk", (json_int_t)disk, "flavor_id",
                          cli_opt(a, "id") ? cli_opt(a, "id") : "auto");
    json_t *doc = NULL, *body = json_pack("{s:o}", "flavor", f);
    int rc = http(rs, "POST", "/mgmt/flavors", body, &doc, NULL);
    json_decref(body);
    if (rc == 0) {
        if (rs->json)
            print_json(doc);
        else
            print_object(json_object_get(doc, "flavor"), false);
    }
    json_decref(doc);
    return rc;
}

static int run_flavor_delete(struct rest *rs, const struct cli_args *a)
{
    char id[ID_MAX + 1], path[256];
    int rc = resolve_flavor(rs, a->pos[0], id);
    if (rc != 0)
        return rc;
    enc_path(rs, path, sizeof path, "/mgmt/flavors/%s%s%s", id, NULL, NULL);
    return send_and_report(rs, "DELETE", path, NULL);
}

/* ------------------------------------------------------------ the table */

#define HOST "host="

static const struct rest_verb rest_verbs[] = {
    { "list", "[--limit N] [--marker ID]", "list instances", 0, 0, "limit= marker=", "instance.list", run_list },
    { "show", "INSTANCE", "show an instance", 1, 1, "", "instance.show", run_show },
    { "create",
      "NAME FLAVOR --size GB [--datastore D] [--datastore-version V] [--database DB]... [--user NAME[@HOST]]...",
      "create an instance (each --user's password is read from stdin, one line each; users get every --database)",
      2, 2, "size= datastore= datastore-version= database=* user=*", "instance.create", run_create },
    { "delete", "INSTANCE [--force]", "delete an instance (--force: also one whose agent is gone)", 1, 1, "force",
      "instance.delete", run_delete },
    { "restart", "INSTANCE", "restart the database engine", 1, 1, "", "instance.restart", run_restart },
    { "resize-flavor", "INSTANCE FLAVOR", "move to another flavor (memory settings), then restart", 2, 2, "",
      "instance.resize_flavor", run_resize_flavor },
    { "resize-volume", "INSTANCE SIZE", "grow the volume to SIZE GB", 2, 2, "", "instance.resize_volume",
      run_resize_volume },
    { "reset-status", "INSTANCE", "mark an instance ERROR (a delete then forces)", 1, 1, "", NULL,
      run_reset_status },

    { "database-create", "INSTANCE NAME [--character-set X] [--collate Y]", "create a database", 2, 2,
      "character-set= collate=", "database.create", run_database_create },
    { "database-list", "INSTANCE", "list databases", 1, 1, "", "database.list", run_database_list },
    { "database-delete", "INSTANCE NAME", "delete a database", 2, 2, "", "database.delete", run_database_delete },

    { "user-create", "INSTANCE NAME PASSWORD [DB...] [--host H]",
      "create a user with access to DBs (PASSWORD - reads it from stdin)", 3, -1, HOST, "user.create",
      run_user_create },
    { "user-list", "INSTANCE", "list users", 1, 1, "", "user.list", run_user_list },
    { "user-show", "INSTANCE NAME [--host H]", "show a user", 2, 2, HOST, "user.show", run_user_show },
    { "user-delete", "INSTANCE NAME [--host H]", "delete a user", 2, 2, HOST, "user.delete", run_user_delete },
    { "user-grant-access", "INSTANCE NAME DB [DB...] [--host H]", "grant access to databases", 3, -1, HOST,
      "user.grant", run_user_grant },
    { "user-revoke-access", "INSTANCE NAME DB [DB...] [--host H]", "revoke access to databases", 3, -1, HOST,
      "user.revoke", run_user_revoke },
    { "user-show-access", "INSTANCE NAME [--host H]", "the databases a user may access", 2, 2, HOST,
      "user.access", run_user_access },
    { "user-change-password", "INSTANCE NAME PASSWORD [--host H]",
      "change a user's password (PASSWORD - reads it from stdin)", 3, 3, HOST, "user.password", run_user_password },

    { "root-enable", "INSTANCE [--password -]", "enable root; prints its password", 1, 1, "password=",
      "root.enable", run_root_enable },
    { "root-show", "INSTANCE", "whether root was ever enabled", 1, 1, "", "root.show", run_root_show },
    { "root-disable", "INSTANCE", "disable root", 1, 1, "", "root.disable", run_root_disable },

    { "datastore-list", "", "list datastores and their versions", 0, 0, "", NULL, run_datastore_list },
    { "datastore-show", "DATASTORE", "show a datastore", 1, 1, "", NULL, run_datastore_show },
    { "datastore-version-list", "DATASTORE", "list a datastore's versions", 1, 1, "", NULL, run_version_list },
    { "datastore-version-show", "DATASTORE VERSION", "show a datastore version", 2, 2, "", NULL, run_version_show },
    { "flavor-list", "", "list flavors", 0, 0, "", NULL, run_flavor_list },
    { "flavor-show", "FLAVOR", "show a flavor", 1, 1, "", NULL, run_flavor_show },
    { "configuration-parameter-list", "DATASTORE VERSION", "the parameters of a datastore version", 2, 2, "",
      "config.schema", run_parameter_list },
    { "configuration-parameter-show", "DATASTORE VERSION NAME", "one parameter", 3, 3, "", "config.schema",
      run_parameter_show },
    { "task-list", "[INSTANCE]", "long operations and their outcome", 0, 1, "", NULL, run_task_list },
    { "task-show", "TASK", "one long operation", 1, 1, "", NULL, run_task_show },

    { "datastore-version-create",
      "DATASTORE VERSION PLUGIN [--engine-bindir DIR | --engine-binary PATH] [--inactive] [--default]",
      "(admin) add a datastore version", 3, 3, "engine-bindir= engine-binary= inactive default",
      NULL, run_version_create },
    { "datastore-version-update", "VERSION_ID [--enable | --disable] [--default] [--engine-bindir DIR]",
      "(admin) enable, disable or make default", 1, 1, "enable disable default engine-bindir=",
      NULL, run_version_update },
    { "flavor-create", "NAME RAM_MB VCPUS [--disk GB] [--id ID]", "(admin) add a flavor", 3, 3, "disk= id=",
      NULL, run_flavor_create },
    { "flavor-delete", "FLAVOR", "(admin) delete a flavor", 1, 1, "", NULL, run_flavor_delete },
};

/* --wait follows the verbs whose operation runs as a task. */
static bool waits(const struct rest_verb *v)
{
    return v->op && ops_is_long(v->op);
}

bool rest_verb_at(size_t i, const char **name, const char **op, bool *waits_for_task)
{
    if (i >= sizeof rest_verbs / sizeof rest_verbs[0])
        return false;
    *name = rest_verbs[i].name;
    *op = rest_verbs[i].op;
    *waits_for_task = waits(&rest_verbs[i]);
    return true;
}

static const struct rest_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof rest_verbs / sizeof rest_verbs[0]; i++)
        if (strcmp(rest_verbs[i].name, name) == 0)
            return &rest_verbs[i];
    return NULL;
}

static void help(FILE *out, const struct rest_verb *only)
{
    if (only) {
        fprintf(out, "usage: trovectl [OPTIONS] %s %s%s\n\n%s.\n", only->name, only->usage,
                waits(only) ? " [--wait]" : "", only->summary);
        return;
    }
    fprintf(out,
            "usage: trovectl [--url URL] [--tenant T] [--token-file F] [--json] [--wait] [--timeout S] VERB [ARGS...]\n"
            "\n"
            "  --url URL        the REST API (default $TROVE_URL, else " DEFAULT_URL ")\n"
            "  --tenant T       the tenant (default $TROVE_TENANT, else " DEFAULT_TENANT ")\n"
            "  --token-file F   read the token from F (default $TROVE_TOKEN; none in no-token mode)\n"
            "  --json           print the answer (or the error) as JSON on stdout\n"
            "  --wait           for create, delete, restart, resize-*: follow the work until it ends\n"
            "  --timeout S      give up after S seconds (requests: %d, --wait: %d)\n"
            "\n"
            "INSTANCE and FLAVOR are names or ids (a name must be unique).\n"
            "Verbs:\n",
            REQUEST_TIMEOUT_S, WAIT_TIMEOUT_S);
    for (size_t i = 0; i < sizeof rest_verbs / sizeof rest_verbs[0]; i++)
        fprintf(out, "  %-30s %s\n", rest_verbs[i].name, rest_verbs[i].summary);
    fprintf(out, "\nThe operator's path to the agents themselves: trovectl --endpoint EP help.\n"
                 "Exit status: 0 success, 1 the operation failed, 2 the command line is wrong.\n");
}

/* ------------------------------------------------------------ command line */

struct globals {
    const char *url, *tenant, *token_file;
};

/* A global option at argv[*i]: 1 taken, 0 not global, -1 bad. */
static int take_global(int argc, char **argv, int *i, struct rest *rs, struct globals *g)
{
    const char *arg = argv[*i];
    static const char *const valued[] = { "--url", "--tenant", "--token-file", "--timeout" };
    if (strcmp(arg, "--json") == 0 || strcmp(arg, "--wait") == 0) {
        *(arg[2] == 'j' ? &rs->json : &rs->wait) = true;
        return 1;
    }
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        size_t len = strlen(valued[k]);
        if (strncmp(arg, valued[k], len) != 0 || (arg[len] && arg[len] != '='))
            continue;
        const char *v = arg[len] == '=' ? arg + len + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v) {
            fail(rs, EXIT_USAGE, "usage", "%s needs a value", valued[k]);
            return -1;
        }
        if (k == 0)
            g->url = v;
        else if (k == 1)
            g->tenant = v;
        else if (k == 2)
            g->token_file = v;
        else {
            char *end = NULL;
            rs->timeout_s = strtol(v, &end, 10);
            if (!end || *end || rs->timeout_s < 1 || rs->timeout_s > 86400) {
                fail(rs, EXIT_USAGE, "usage", "--timeout must be whole seconds from 1 to 86400");
                return -1;
            }
        }
        return 1;
    }
    return 0;
}

/* 0 flag, 1 value, -1 unknown. */
static int option_kind(const char *spec, const char *name, size_t len)
{
    for (const char *p = spec; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, "= ");
        if (n == len && strncmp(p, name, len) == 0)
            return p[n] == '=' ? 1 : 0;
        p += strcspn(p, " ");
    }
    return -1;
}

static int parse_args(int argc, char **argv, int first, const struct rest_verb *v, struct cli_args *a, struct rest *rs,
                      struct globals *g)
{
    bool done = false;
    memset(a, 0, sizeof *a);
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (!done && strcmp(arg, "--") == 0) {
            done = true;
            continue;
        }
        if (done || strncmp(arg, "--", 2) != 0) {
            if (a->n_pos == CLI_MAX_ARGS)
                return USAGE(rs, "too many arguments");
            a->pos[a->n_pos++] = arg;
            continue;
        }
        int gl = take_global(argc, argv, &i, rs, g);
        if (gl < 0)
            return EXIT_USAGE;
        if (gl > 0)
            continue;
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int kind = option_kind(v->options, name, len);
        if (kind < 0)
            return USAGE(rs, "%s does not take --%.*s (trovectl help %s)", v->name, (int)len, name, v->name);
        const char *value = "";
        if (kind == 1) {
            value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value)
                return USAGE(rs, "--%.*s needs a value", (int)len, name);
        } else if (eq) {
            return USAGE(rs, "--%.*s takes no value", (int)len, name);
        }
        if (a->n_opts == CLI_MAX_ARGS)
            return USAGE(rs, "too many options");
        a->opts[a->n_opts].name = strndup(name, len);
        a->opts[a->n_opts++].value = value;
    }
    if (a->n_pos < v->min_pos || (v->max_pos >= 0 && a->n_pos > v->max_pos))
        return USAGE(rs, "%s %s", v->name, v->usage[0] ? v->usage : "takes no arguments");
    if (rs->wait && !waits(v))
        return USAGE(rs, "%s does not take --wait", v->name);
    return 0;
}

static int read_token(struct rest *rs, const char *file)
{
    const char *env = getenv("TROVE_TOKEN");
    char buf[512];
    if (!file) {
        if (env && *env && !(rs->token = strdup(env)))
            return fail(rs, EXIT_FAILED, "internal", "out of memory");
        return 0;
    }
    FILE *f = fopen(file, "re");
    if (!f)
        return fail(rs, EXIT_USAGE, "usage", "--token-file %s: %s", file, strerror(errno));
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    buf[ok ? strcspn(buf, "\r\n") : 0] = '\0';
    if (!buf[0])
        return fail(rs, EXIT_USAGE, "usage", "--token-file %s holds no token on its first line", file);
    rs->token = strdup(buf);
    memset(buf, 0, sizeof buf);
    return rs->token ? 0 : fail(rs, EXIT_FAILED, "internal", "out of memory");
}

/* base = URL (already /v1.0/TENANT when it names one, as OS_ENDPOINT) or URL/v1.0/TENANT. */
static int set_base(struct rest *rs, const struct globals *g)
{
    const char *url = g->url ? g->url : getenv("TROVE_URL");
    const char *tenant = g->tenant ? g->tenant : getenv("TROVE_TENANT");
    if (!url || !*url)
        url = DEFAULT_URL;
    if (!tenant || !*tenant)
        tenant = DEFAULT_TENANT;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return USAGE(rs, "--url must start with http:// or https://");
    size_t len = strlen(url);
    while (len && url[len - 1] == '/')
        len--;
    char *t = seg(rs, tenant);
    if (strstr(url, "/v1.0/"))
        snprintf(rs->base, sizeof rs->base, "%.*s", (int)len, url);
    else
        snprintf(rs->base, sizeof rs->base, "%.*s/v1.0/%s", (int)len, url, t ? t : "");
    curl_free(t);
    return 0;
}

int trovectl_rest_main(int argc, char **argv)
{
    struct rest rs = { 0 };
    struct globals g = { 0 };
    struct cli_args a = { 0 };
    int i = 1, rc = EXIT_USAGE;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(rs.curl = curl_easy_init()))
        return fail(NULL, EXIT_FAILED, "internal", "cannot start libcurl");
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            help(stdout, NULL);
            rc = 0;
            goto out;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("trovectl %s\n", TROVE_VERSION);
            rc = 0;
            goto out;
        }
        int gl = take_global(argc, argv, &i, &rs, &g);
        if (gl <= 0) {
            if (gl == 0)
                USAGE(&rs, "unknown option %s (trovectl --help)", argv[i]);
            goto out;
        }
    }
    if (i >= argc) {
        USAGE(&rs, "no verb given (trovectl --help lists them)");
        goto out;
    }
    rs.verb = argv[i++];
    if (strcmp(rs.verb, "help") == 0) {
        const struct rest_verb *v = i < argc ? find_verb(argv[i]) : NULL;
        if (i < argc && !v) {
            USAGE(&rs, "unknown verb '%s' (trovectl --help lists them)", argv[i]);
            goto out;
        }
        help(stdout, v);
        rc = 0;
        goto out;
    }
    const struct rest_verb *v = find_verb(rs.verb);
    if (!v) {
        USAGE(&rs, "unknown verb '%s' (trovectl --help lists them; agent verbs need --endpoint)", rs.verb);
        goto out;
    }
    if ((rc = parse_args(argc, argv, i, v, &a, &rs, &g)) != 0 || (rc = set_base(&rs, &g)) != 0 ||
        (rc = read_token(&rs, g.token_file)) != 0)
        goto out;
    rc = v->run(&rs, &a);
    if (rc == 0 && fflush(stdout) != 0)
        rc = fail(&rs, EXIT_FAILED, "internal", "cannot write the output: %s", strerror(errno));
out:
    for (int k = 0; k < a.n_opts; k++)
        free((char *)a.opts[k].name);
    if (rs.token) {
        memset(rs.token, 0, strlen(rs.token));
        free(rs.token);
    }
    curl_easy_cleanup(rs.curl);
    curl_global_cleanup();
    return rc;
}
