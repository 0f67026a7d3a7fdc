/*
 * json.c - JSON text <-> value trees, through jansson. Parsing applies the
 * wire limits (text size, nesting depth, string length, no NUL, unique keys)
 * so a tree from JSON is as trustworthy as one from a frame. Rendering never
 * fails on content: bytes become base64, invalid UTF-8 becomes U+FFFD and
 * non-finite floats become null. No file or socket I/O here.
 */
#include "json.h"
#include "status.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trove_plugin.h"
#include "wire.h"


/* ------------------------------------------------------------ JSON -> tv */

/* A \u0000 escape is valid JSON, but no string here may hold a NUL: it would
 * end the text early for every C consumer (plugins, databases). */
#define NUL_IN_STRING "strings must not contain NUL (\\u0000)"
#define NUL_IN_KEY "object keys must not contain NUL (\\u0000)"

struct parse {
    char *err;
    size_t errlen;
};

static struct tv *from_json(struct parse *ps, json_t *j, unsigned depth);

static struct tv *from_string(struct parse *ps, const char *s, size_t len)
{
    if (len > WIRE_MAX_STRING) {
        err_set(ps->err, ps->errlen, "string of %zu bytes exceeds limit of %u", len,
                WIRE_MAX_STRING);
        return NULL;
    }
    if (memchr(s, '\0', len)) {
        err_set(ps->err, ps->errlen, NUL_IN_STRING);
        return NULL;
    }
    struct tv *v = tv_strn(s, len);
    if (!v)
        err_set(ps->err, ps->errlen, "out of memory");
    return v;
}

/* jansson has refused duplicate keys (JSON_REJECT_DUPLICATES), so pairs are
 * filled directly: tv_set's duplicate search would make a big object cost
 * quadratic time. */
static struct tv *from_object(struct parse *ps, json_t *j, unsigned depth)
{
    size_t n = json_object_size(j);
    struct tv *m = tv_map();
    if (!m || (n > 0 && !(m->u.m.items = calloc(n, sizeof(struct tv_pair)))))
        goto oom;
    m->u.m.cap = n;
    for (void *it = json_object_iter(j); it && m->u.m.len < n; it = json_object_iter_next(j, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        if (strlen(key) != klen) {
            err_set(ps->err, ps->errlen, NUL_IN_KEY);
            goto fail;
        }
        if (klen > WIRE_MAX_STRING) {
            err_set(ps->err, ps->errlen, "object key of %zu bytes exceeds limit of %u", klen,
                    WIRE_MAX_STRING);
            goto fail;
        }
        struct tv_pair *pair = &m->u.m.items[m->u.m.len];
        if (!(pair->key = strdup(key)))
            goto oom;
        pair->key_len = klen;
        m->u.m.len++;   /* the map owns the key now; tv_free releases it */
        if (!(pair->value = from_json(ps, json_object_iter_value(it), depth)))
            goto fail;
    }
    return m;
oom:
    err_set(ps->err, ps->errlen, "out of memory");
fail:
    tv_free(m);
    return NULL;
}

static struct tv *from_array(struct parse *ps, json_t *j, unsigned depth)
{
    struct tv *a = tv_array();
    if (!a)
        goto oom;
    for (size_t i = 0; i < json_array_size(j); i++) {
        struct tv *item = from_json(ps, json_array_get(j, i), depth);
        if (!item)
            goto fail;
        if (tv_append(a, item) < 0)
            goto oom;
    }
    return a;
oom:
    err_set(ps->err, ps->errlen, "out of memory");
fail:
    tv_free(a);
    return NULL;
}

static struct tv *from_json(struct parse *ps, json_t *j, unsigned depth)
{
    struct tv *v = NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= WIRE_MAX_DEPTH) {
            err_set(ps->err, ps->errlen, "nesting deeper than %u levels", WIRE_MAX_DEPTH);
            return NULL;
        }
        return json_is_object(j) ? from_object(ps, j, depth + 1) : from_array(ps, j, depth + 1);
    case JSON_STRING:
        return from_string(ps, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        v = tv_int((int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        v = tv_float(json_real_value(j));
        break;
    case JSON_TRUE:
        v = tv_bool(true);
        break;
    case JSON_FALSE:
        v = tv_bool(false);
        break;
    case JSON_NULL:
        v = tv_nil();
        break;
    }
    if (!v)
        err_set(ps->err, ps->errlen, "out of memory");
    return v;
}

/* Why jansson refused the text, in this project's words. jansson's own text
 * quotes the input near the fault ("invalid escape near '\"s3cr\\q'"), and
 * the input may be a password read from a file to keep it out of argv, so
 * only the kind of fault and its position are reported. */
static const char *fault_name(enum json_error_code code)
{
    switch (code) {
    case json_error_out_of_memory: return "out of memory";
    case json_error_stack_overflow: return "nesting too deep";
    case json_error_invalid_utf8: return "invalid UTF-8";
    case json_error_premature_end_of_input: return "the text ends before the value does";
    case json_error_end_of_input_expected: return "text after the value";
    case json_error_duplicate_key: return "duplicate object key";
    case json_error_numeric_overflow: return "number too big";
    default: return "syntax error";
    }
}

static void parse_failure(const json_error_t *jerr, char *err, size_t errlen)
{
    enum json_error_code code = json_error_code(jerr);
    if (code == json_error_null_character)
        err_set(err, errlen, NUL_IN_STRING " (line %d column %d)", jerr->line, jerr->column);
    else if (code == json_error_null_byte_in_key)
        err_set(err, errlen, NUL_IN_KEY " (line %d column %d)", jerr->line, jerr->column);
    else
        err_set(err, errlen, "invalid JSON at line %d column %d: %s", jerr->line, jerr->column, fault_name(code));
}

int json_to_tv(const char *text, struct tv **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return -1;
    *out = NULL;
    if (!text) {
        err_set(err, errlen, "no JSON text");
        return -1;
    }
    size_t len = strnlen(text, (size_t)WIRE_MAX_FRAME + 1);
    if (len > WIRE_MAX_FRAME) {
        err_set(err, errlen, "JSON text exceeds limit of %u bytes", WIRE_MAX_FRAME);
        return -1;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        parse_failure(&jerr, err, errlen);
        return -1;
    }
    struct parse ps = { .err = err, .errlen = errlen };
    struct tv *v = from_json(&ps, j, 0);
    json_decref(j);
    if (!v)
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ tv -> JSON */

static char *base64(const unsigned char *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t n = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned w = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[n++] = tab[w >> 18];
        out[n++] = tab[(w >> 12) & 63];
        out[n++] = tab[(w >> 6) & 63];
        out[n++] = tab[w & 63];
    }
    if (i < len) {
        unsigned w = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        out[n++] = tab[w >> 18];
        out[n++] = tab[(w >> 12) & 63];
        out[n++] = i + 1 < len ? tab[(w >> 6) & 63] : '=';
        out[n++] = '=';
    }
    out[n] = '\0';
    return out;
}

/* A copy of s with every byte that is not part of valid UTF-8 replaced by
 * U+FFFD, so text from outside never makes rendering fail. */
static char *utf8_sanitize(const char *s, size_t len, size_t *outlen)
{
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t step = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xc2 && c <= 0xf4)
            step = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + step <= len && tv_utf8_valid(s + i, step)) {
            memcpy(out + n, s + i, step);
            n += step;
            i += step;
        } else {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
        }
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

static json_t *text_json(const char *s, size_t len)
{
    if (tv_utf8_valid(s, len))
        return json_stringn(s, len);
    size_t n;
    char *clean = utf8_sanitize(s, len, &n);
    if (!clean)
        return NULL;
    json_t *j = json_stringn(clean, n);
    free(clean);
    return j;
}

static json_t *to_json(const struct tv *v)
{
    json_t *j = NULL;
    switch (v->type) {
    case TV_NIL:
        return json_null();
    case TV_BOOL:
        return json_boolean(v->u.b);
    case TV_INT:
        return json_integer((json_int_t)v->u.i);
    case TV_FLOAT:
        return isfinite(v->u.f) ? json_real(v->u.f) : json_null();
    case TV_STR:
        return text_json(v->u.s.ptr, v->u.s.len);
    case TV_BIN: {
        char *b = base64((const unsigned char *)v->u.s.ptr, v->u.s.len);
        if (!b)
            return NULL;
        j = json_string(b);
        free(b);
        return j;
    }
    case TV_ARRAY:
        j = json_array();
        if (!j)
            return NULL;
        for (size_t i = 0; i < v->u.a.len; i++) {
            json_t *item = to_json(v->u.a.items[i]);
            if (!item || json_array_append_new(j, item) < 0)
                goto fail;
        }
        return j;
    case TV_MAP:
        j = json_object();
        if (!j)
            return NULL;
        for (size_t i = 0; i < v->u.m.len; i++) {
            const struct tv_pair *p = &v->u.m.items[i];
            json_t *item = to_json(p->value);
            if (!item)
                goto fail;
            int rc;
            if (tv_utf8_valid(p->key, p->key_len)) {
                rc = json_object_setn_new(j, p->key, p->key_len, item);
            } else {
                size_t n;
                char *clean = utf8_sanitize(p->key, p->key_len, &n);
                if (!clean) {
                    json_decref(item);
                    goto fail;
                }
                rc = json_object_setn_new(j, clean, n, item);
                free(clean);
            }
            if (rc < 0)
                goto fail;
        }
        return j;
    }
fail:
    json_decref(j);
    return NULL;
}

char *tv_to_json(const struct tv *v, bool pretty)
{
    if (!v)
        return NULL;
    json_t *j = to_json(v);
    if (!j)
        return NULL;
    size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    char *text = json_dumps(j, flags);
    json_decref(j);
    return text;
}
