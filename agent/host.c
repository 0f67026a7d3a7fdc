/*
 * host.c - implements the trove_host services that plugins call: logging,
 * failure messages, progress, cancellation, result builders, random
 * passwords, and the doors to sinks and exec. Every struct a plugin hands
 * in is read only within its size (abi.c). Streams live in stream.c and
 * guest_log.c, exec in exec.c.
 */
#include "host.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "abi.h"
#include "exec.h"
#include "log.h"
#include "sink.h"
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

int call_vfail(struct trove_call *call, int status, const char *fmt, va_list ap)
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

static void host_log(enum trove_log_level level, const char *fmt, ...)
{
    va_list ap;
    if ((int)level < TROVE_LOG_ERROR || (int)level > TROVE_LOG_DEBUG)
        level = TROVE_LOG_INFO;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

static int host_fail(struct trove_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_vfail(call, status, fmt, ap);
    va_end(ap);
    return status;
}

static void host_progress(struct trove_call *call, int percent, const char *fmt, ...)
{
    char msg[TROVE_PROGRESS_MAX];
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

/* Copy a plugin's struct within its size; a bad size fails the call. */
#define IMPORT(call, dst, src, type, required)                                              \
    do {                                                                                    \
        char why_[256];                                                                     \
        if (ABI_IMPORT((dst), (src), type, required, why_, sizeof(why_)) != 0)              \
            return call_fail((call), TROVE_EINVAL, "%s", why_);                              \
    } while (0)

static int host_emit_user(struct trove_call *call, const struct trove_user *in)
{
    struct trove_user u;
    IMPORT(call, &u, in, struct trove_user, name);
    struct tv *m = tv_map();
    if (!u.name) {
        tv_free(m);
        return call_fail(call, TROVE_EINVAL, "the plugin emitted a user without a name");
    }
    if (!m || set_text(m, "name", u.name) != 0 || (u.host && set_text(m, "host", u.host) != 0) ||
        tv_set(m, "databases", strings_to_tv(u.databases, u.n_databases)) != 0 ||
        (u.n_options && tv_set(m, "options", kv_to_tv(u.options, u.n_options)) != 0)) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "users", m);
}

static int host_emit_database(struct trove_call *call, const struct trove_database *in)
{
    struct trove_database d;
    IMPORT(call, &d, in, struct trove_database, name);
    struct tv *m = tv_map();
    if (!d.name) {
        tv_free(m);
        return call_fail(call, TROVE_EINVAL, "the plugin emitted a database without a name");
    }
    if (!m || set_text(m, "name", d.name) != 0 ||
        (d.character_set && set_text(m, "character_set", d.character_set) != 0) ||
        (d.collation && set_text(m, "collation", d.collation) != 0) ||
        (d.owner && set_text(m, "owner", d.owner) != 0) ||
        (d.n_options && tv_set(m, "options", kv_to_tv(d.options, d.n_options)) != 0)) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "databases", m);
}

static int host_emit_param(struct trove_call *call, const struct trove_param *in)
{
    struct trove_param p;
    IMPORT(call, &p, in, struct trove_param, name);
    if (!p.name)
        return call_fail(call, TROVE_EINVAL, "the plugin emitted a parameter without a name");
    struct tv *m = tv_map();
    const char *type = abi_param_type_name(p.type);   /* unknown types are strings */
    int bad = !m || set_text(m, "name", p.name) != 0 || set_text(m, "type", type) != 0 ||
              tv_set_bool(m, "dynamic", p.dynamic) != 0;
    if (!bad && !strcmp(type, "integer"))
        bad = tv_set_int(m, "min", p.min) != 0 || tv_set_int(m, "max", p.max) != 0;
    if (!bad && !strcmp(type, "float"))
        bad = tv_set(m, "min", tv_float(p.min_float)) != 0 || tv_set(m, "max", tv_float(p.max_float)) != 0;
    if (!bad && !strcmp(type, "enum"))
        bad = tv_set(m, "allowed", strings_to_tv(p.allowed, p.n_allowed)) != 0;
    if (!bad && p.unit)
        bad = set_text(m, "unit", p.unit) != 0;
    if (!bad && p.default_value)
        bad = set_text(m, "default", p.default_value) != 0;
    if (!bad && p.description)
        bad = set_text(m, "description", p.description) != 0;
    if (bad) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "parameters", m);
}

static int host_emit_member(struct trove_call *call, const struct trove_member *in)
{
    struct trove_member mb;
    IMPORT(call, &mb, in, struct trove_member, host);
    if (!mb.host && !mb.id)
        return call_fail(call, TROVE_EINVAL, "the plugin emitted a cluster member without a host or an id");
    struct tv *m = tv_map();
    if (!m || (mb.id && set_text(m, "id", mb.id) != 0) || (mb.host && set_text(m, "host", mb.host) != 0) ||
        tv_set_int(m, "port", mb.port) != 0 ||
        set_text(m, "state", abi_member_state_name(abi_member_state(mb.state))) != 0 ||
        set_text(m, "role", abi_role_name(abi_role(mb.role))) != 0 || tv_set_bool(m, "self", mb.self) != 0 ||
        (mb.location && set_text(m, "location", mb.location) != 0) ||
        (mb.n_options && tv_set(m, "options", kv_to_tv(mb.options, mb.n_options)) != 0)) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "members", m);
}

static int host_emit_guest_log(struct trove_call *call, const struct trove_guest_log *in)
{
    struct trove_guest_log g;
    IMPORT(call, &g, in, struct trove_guest_log, name);
    if (!g.name || !*g.name)
        return call_fail(call, TROVE_EINVAL, "the plugin emitted a guest log without a name");
    struct tv *m = tv_map();
    if (!m || set_text(m, "name", g.name) != 0 || set_text(m, "type", abi_guest_log_type_name(g.type)) != 0 ||
        (g.description && set_text(m, "description", g.description) != 0) ||
        tv_set_int(m, "bytes", g.bytes >= 0 ? g.bytes : -1) != 0) {
        tv_free(m);
        return nomem();
    }
    return append_item(call, "logs", m);
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

int sink_write(struct trove_sink *sink, const void *data, size_t len)
{
    return sink && sink->write ? sink->write(sink, data, len) : TROVE_EINVAL;
}

const char *sink_error(const struct trove_sink *sink)
{
    return sink && sink->error ? sink->error(sink) : "no sink";
}

/* The plugin's struct trove_exec is read within its size, and exit_status
 * written back only if the plugin's struct holds it. */
static int host_exec(struct trove_call *call, struct trove_exec *in)
{
    struct trove_exec cmd;
    IMPORT(call, &cmd, in, struct trove_exec, argv);
    int rc = exec_run(call, &cmd);
    if (TROVE_FIELD_OK(in, struct trove_exec, exit_status))
        in->exit_status = cmd.exit_status;
    return rc;
}

static const struct trove_host services = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_host),
    .log = host_log,
    .fail = host_fail,
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
    .sink_write = sink_write,
    .source_read = stream_source_read,
    .exec = host_exec,
    .random_password = host_random_password,
    .emit_member = host_emit_member,
    .emit_guest_log = host_emit_guest_log,
};

const struct trove_host *host_services(void)
{
    return &services;
}
