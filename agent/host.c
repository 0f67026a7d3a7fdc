/*
 * host.c - implements the trove_host services that plugins call: logging,
 * failure messages, progress, cancellation, result builders and random
 * passwords. Streams live in stream.c and exec in exec.c.
 */
#include "host.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "exec.h"
#include "log.h"
#include "status.h"
#include "stream.h"

/* Plugins pass datastore text (names, server messages) that may not be UTF-8
 * (a latin1 server, say). The wire carries UTF-8 only, so text that is not
 * valid UTF-8 has its non-ASCII bytes turned into '?' rather than producing a
 * frame every peer must refuse. */
static void utf8_scrub(char *s, size_t len)
{
    if (tv_utf8_valid(s, len))
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            s[i] = '?';
}

static struct tv *text(const char *s)
{
    struct tv *v = tv_str(s);
    if (v)
        utf8_scrub(v->u.s.ptr, v->u.s.len);
    return v;
}

int call_init(struct trove_call *call, const atomic_bool *stop, progress_fn fn, void *ctx)
{
    memset(call, 0, sizeof(*call));
    call->result = tv_map();
    call->stop = stop;
    call->on_progress = fn;
    call->progress_ctx = ctx;
    return call->result ? 0 : -1;
}

void call_release(struct trove_call *call)
{
    tv_free(call->result);
    call->result = NULL;
}

struct tv *call_take_result(struct trove_call *call)
{
    struct tv *r = call->result;
    call->result = NULL;
    return r;
}

static int call_vfail(struct trove_call *call, int status, const char *fmt, va_list ap)
{
    if (!call)
        return status;
    call->status = status;
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
    utf8_scrub(call->message, strlen(call->message));
    return status;
}

int call_fail(struct trove_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_vfail(call, status, fmt, ap);
    va_end(ap);
    return status;
}

const char *call_message(const struct trove_call *call, int status)
{
    if (call->message[0] && call->status == status)
        return call->message;
    if (call->message[0])
        return call->message;
    return status_name(status);
}

static void host_progress(struct trove_call *call, int percent, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (percent < -1 || percent > 100)
        percent = -1;
    if (call && call->on_progress)
        call->on_progress(call->progress_ctx, percent, msg);
}

static bool host_cancelled(struct trove_call *call)
{
    return call && call->stop && atomic_load(call->stop);
}

static int nomem(void) { return TROVE_EINTERNAL; }

static int set_text(struct tv *map, const char *key, const char *value)
{
    return tv_set(map, key, text(value));
}

static struct tv *strings_to_tv(const char *const *items, size_t n)
{
    struct tv *a = tv_array();
    for (size_t i = 0; a && i < n; i++)
        if (items[i] && tv_append(a, text(items[i])) != 0) {
            tv_free(a);
            return NULL;
        }
    return a;
}

static struct tv *kv_to_tv(const struct trove_kv *kv, size_t n)
{
    struct tv *m = tv_map();
    for (size_t i = 0; m && i < n; i++)
        if (kv[i].key && kv[i].value && set_text(m, kv[i].key, kv[i].value) != 0) {
            tv_free(m);
            return NULL;
        }
    return m;
}

static int append_item(struct trove_call *call, const char *list, struct tv *item)
{
    struct tv *arr;
    if (!item)
        return nomem();
    arr = tv_child_array(call->result, list);
    if (!arr || tv_append(arr, item) != 0)
        return nomem();
    return TROVE_OK;
}

static int host_emit_user(struct trove_call *call, const struct trove_user *u)
{
    struct tv *m = tv_map();
    if (!m || !u->name || set_text(m, "name", u->name) != 0 ||
        (u->host && set_text(m, "host", u->host) != 0) ||
        tv_set(m, "databases", strings_to_tv(u->databases, u->n_databases)) != 0 ||
        (u->n_options && tv_set(m, "options", kv_to_tv(u->options, u->n_options)) != 0)) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "users", m);
}

static int host_emit_database(struct trove_call *call, const struct trove_database *d)
{
    struct tv *m = tv_map();
    if (!m || !d->name || set_text(m, "name", d->name) != 0 ||
        (d->character_set && set_text(m, "character_set", d->character_set) != 0) ||
        (d->collation && set_text(m, "collation", d->collation) != 0) ||
        (d->owner && set_text(m, "owner", d->owner) != 0) ||
        (d->n_options && tv_set(m, "options", kv_to_tv(d->options, d->n_options)) != 0)) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "databases", m);
}

static const char *param_type_name(enum trove_param_type t)
{
    switch (t) {
    case TROVE_PARAM_STRING: return "string";
    case TROVE_PARAM_INTEGER: return "integer";
    case TROVE_PARAM_FLOAT: return "float";
    case TROVE_PARAM_BOOLEAN: return "boolean";
    case TROVE_PARAM_ENUM: return "enum";
    }
    return "string";
}

static int host_emit_param(struct trove_call *call, const struct trove_param *p)
{
    struct tv *m = tv_map();
    int bad = !m || !p->name || set_text(m, "name", p->name) != 0 ||
              set_text(m, "type", param_type_name(p->type)) != 0 ||
              tv_set_bool(m, "dynamic", p->dynamic) != 0;
    if (!bad && p->type == TROVE_PARAM_INTEGER)
        bad = tv_set_int(m, "min", p->min) != 0 || tv_set_int(m, "max", p->max) != 0;
    if (!bad && p->type == TROVE_PARAM_FLOAT)
        bad = tv_set(m, "min", tv_float(p->min_float)) != 0 || tv_set(m, "max", tv_float(p->max_float)) != 0;
    if (!bad && p->type == TROVE_PARAM_ENUM)
        bad = tv_set(m, "allowed", strings_to_tv(p->allowed, p->n_allowed)) != 0;
    if (!bad && p->unit)
        bad = set_text(m, "unit", p->unit) != 0;
    if (!bad && p->default_value)
        bad = set_text(m, "default", p->default_value) != 0;
    if (!bad && p->description)
        bad = set_text(m, "description", p->description) != 0;
    if (bad) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "parameters", m);
}

static int host_set_str(struct trove_call *call, const char *key, const char *value)
{
    return set_text(call->result, key, value ? value : "") == 0 ? TROVE_OK : nomem();
}

static int host_set_int(struct trove_call *call, const char *key, int64_t value)
{
    return tv_set_int(call->result, key, value) == 0 ? TROVE_OK : nomem();
}

static int host_set_bool(struct trove_call *call, const char *key, bool value)
{
    return tv_set_bool(call->result, key, value) == 0 ? TROVE_OK : nomem();
}

static int host_add_str(struct trove_call *call, const char *list, const char *value)
{
    return append_item(call, list, text(value ? value : ""));
}

static int host_put(struct trove_call *call, const char *map, const char *key, const char *value)
{
    struct tv *m = tv_child_map(call->result, map);
    struct tv *k = text(key);   /* keys must be UTF-8 too */
    int rc = m && k && set_text(m, k->u.s.ptr, value ? value : "") == 0 ? TROVE_OK : nomem();
    tv_free(k);
    return rc;
}

static int host_random_password(char *buf, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[256];
    if (!buf || len == 0)
        return TROVE_EINVAL;
    for (size_t i = 0; i + 1 < len;) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            return TROVE_EINTERNAL;
        for (size_t j = 0; j < sizeof(rnd) && i + 1 < len; j++)
            if (rnd[j] < 248)   /* 248 = 4 * 62: rejection keeps the choice uniform */
                buf[i++] = alphabet[rnd[j] % 62];
    }
    buf[len - 1] = '\0';
    return TROVE_OK;
}

static const struct trove_host services = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_host),
    .log = log_msg,
    .fail = call_fail,
    .progress = host_progress,
    .cancelled = host_cancelled,
    .emit_user = host_emit_user,
    .emit_database = host_emit_database,
    .emit_param = host_emit_param,
    .set_str = host_set_str,
    .set_int = host_set_int,
    .set_bool = host_set_bool,
    .add_str = host_add_str,
    .put = host_put,
    .sink_write = stream_sink_write,
    .source_read = stream_source_read,
    .exec = exec_run,
    .random_password = host_random_password,
};

const struct trove_host *host_services(void)
{
    return &services;
}
