/*
 * wire.c - msgpack frames <-> value trees, and the message envelope.
 * The decoder is a direct reader of the msgpack format, not msgpack-c's
 * unpacker: msgpack_unpack_next reserves memory for the element counts a
 * frame merely claims, so five bytes could make it allocate gigabytes. Here
 * every count and length is checked against the bytes that remain before
 * anything is allocated. Encoding uses msgpack-c's packer. No sockets here.
 */
#include "wire.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

const struct wire_limits wire_default_limits = {
    .max_frame = WIRE_MAX_FRAME,
    .max_depth = WIRE_MAX_DEPTH,
    .max_string = WIRE_MAX_STRING,
};

#define ID_MAX 64
#define OP_MAX 64

/* ---------------------------------------------------------------- errors */


/* A key quoted into an error message: printable ASCII only, cut at 32. */
static void printable_key(char *dst, size_t dstlen, const char *key, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < dstlen; i++) {
        if (i == 32) {
            memcpy(dst + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char c = (unsigned char)key[i];
        dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[n] = '\0';
}

/* --------------------------------------------------------------- decoder */

struct reader {
    const unsigned char *p;
    const unsigned char *end;
    const struct wire_limits *lim;
    char *err;
    size_t errlen;
};

static size_t remaining(const struct reader *r)
{
    return (size_t)(r->end - r->p);
}

/* Read an n-byte big-endian unsigned integer; -1 if the frame ends first. */
static int read_be(struct reader *r, size_t n, uint64_t *out)
{
    if (remaining(r) < n) {
        err_set(r->err, r->errlen, "truncated frame");
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[i];
    r->p += n;
    *out = v;
    return 0;
}

static int read_len(struct reader *r, size_t n, size_t *out)
{
    uint64_t v;
    if (read_be(r, n, &v) < 0)
        return -1;
    *out = (size_t)v;   /* n <= 4, so it fits */
    return 0;
}

static struct tv *decode_value(struct reader *r, unsigned depth);

/* str or bin of `len` bytes at the cursor. */
static struct tv *decode_bytes(struct reader *r, size_t len, bool is_str)
{
    if (len > r->lim->max_string) {
        err_set(r->err, r->errlen, "%s of %zu bytes exceeds limit of %zu",
                is_str ? "string" : "binary", len, r->lim->max_string);
        return NULL;
    }
    if (remaining(r) < len) {
        err_set(r->err, r->errlen, "truncated frame");
        return NULL;
    }
    const char *s = (const char *)r->p;
    if (is_str) {
        if (memchr(s, '\0', len)) {
            err_set(r->err, r->errlen, "string contains a NUL byte");
            return NULL;
        }
        if (!tv_utf8_valid(s, len)) {
            err_set(r->err, r->errlen, "invalid UTF-8 in string");
            return NULL;
        }
    }
    struct tv *v = is_str ? tv_strn(s, len) : tv_bin(s, len);
    if (!v) {
        err_set(r->err, r->errlen, "out of memory");
        return NULL;
    }
    r->p += len;
    return v;
}

/*
 * Make room for one more of `size`-byte items in a container that claims
 * `claimed` in all. Room grows by doubling as items actually arrive, never
 * to the claim at once: the claim passed the bytes-remaining check, but each
 * nesting level could still reserve pointers for every byte that remains,
 * so a large frame of nested claims would reserve many times its own size.
 */
static int reserve_one(struct reader *r, void **items, size_t *cap, size_t len, size_t claimed,
                       size_t size)
{
    if (len < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > claimed)
        ncap = claimed;
    void *p = realloc(*items, ncap * size);   /* claimed <= frame bytes: no overflow */
    if (!p) {
        err_set(r->err, r->errlen, "out of memory");
        return -1;
    }
    *items = p;
    *cap = ncap;
    return 0;
}

static struct tv *decode_array(struct reader *r, size_t n, unsigned depth)
{
    /* Every element takes at least one byte. */
    if (n > remaining(r)) {
        err_set(r->err, r->errlen, "truncated frame: array of %zu elements in %zu bytes", n,
                remaining(r));
        return NULL;
    }
    struct tv *a = tv_array();
    if (!a) {
        err_set(r->err, r->errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (reserve_one(r, (void **)&a->u.a.items, &a->u.a.cap, a->u.a.len, n,
                        sizeof(struct tv *)) < 0)
            goto fail;
        struct tv *item = decode_value(r, depth);
        if (!item)
            goto fail;
        a->u.a.items[a->u.a.len++] = item;
    }
    return a;
fail:
    tv_free(a);
    return NULL;
}

static int compare_pairs(const void *x, const void *y)
{
    const struct tv_pair *a = *(const struct tv_pair *const *)x;
    const struct tv_pair *b = *(const struct tv_pair *const *)y;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return memcmp(a->key, b->key, a->key_len);
}

/* A map with a repeated key means different things to different readers
 * (first wins or last wins), so it is refused. Sorting keeps big maps fast. */
static int check_unique_keys(struct reader *r, const struct tv *m)
{
    size_t n = m->u.m.len;
    if (n < 2)
        return 0;
    const struct tv_pair **sorted = malloc(n * sizeof(*sorted));
    if (!sorted) {
        err_set(r->err, r->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &m->u.m.items[i];
    qsort(sorted, n, sizeof(*sorted), compare_pairs);
    int rc = 0;
    for (size_t i = 1; i < n; i++) {
        if (compare_pairs(&sorted[i - 1], &sorted[i]) == 0) {
            char shown[40];
            printable_key(shown, sizeof(shown), sorted[i]->key, sorted[i]->key_len);
            err_set(r->err, r->errlen, "duplicate map key \"%s\"", shown);
            rc = -1;
            break;
        }
    }
    free(sorted);
    return rc;
}

static int decode_key(struct reader *r, struct tv_pair *pair)
{
    if (remaining(r) == 0) {
        err_set(r->err, r->errlen, "truncated frame");
        return -1;
    }
    unsigned char b = *r->p;
    size_t len;
    if (b >= 0xa0 && b <= 0xbf) {
        r->p++;
        len = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        r->p++;
        if (read_len(r, (size_t)1 << (b - 0xd9), &len) < 0)
            return -1;
    } else {
        err_set(r->err, r->errlen, "map key is not a string");
        return -1;
    }
    if (len > r->lim->max_string) {
        err_set(r->err, r->errlen, "map key of %zu bytes exceeds limit of %zu", len,
                r->lim->max_string);
        return -1;
    }
    if (remaining(r) < len) {
        err_set(r->err, r->errlen, "truncated frame");
        return -1;
    }
    const char *s = (const char *)r->p;
    if (memchr(s, '\0', len)) {
        err_set(r->err, r->errlen, "map key contains a NUL byte");
        return -1;
    }
    if (!tv_utf8_valid(s, len)) {
        err_set(r->err, r->errlen, "invalid UTF-8 in map key");
        return -1;
    }
    pair->key = malloc(len + 1);
    if (!pair->key) {
        err_set(r->err, r->errlen, "out of memory");
        return -1;
    }
    memcpy(pair->key, s, len);
    pair->key[len] = '\0';
    pair->key_len = len;
    r->p += len;
    return 0;
}

static struct tv *decode_map(struct reader *r, size_t n, unsigned depth)
{
    /* Every entry takes at least two bytes: a fixstr key and a value. */
    if (n > remaining(r) / 2) {
        err_set(r->err, r->errlen, "truncated frame: map of %zu entries in %zu bytes", n,
                remaining(r));
        return NULL;
    }
    struct tv *m = tv_map();
    if (!m) {
        err_set(r->err, r->errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (reserve_one(r, (void **)&m->u.m.items, &m->u.m.cap, m->u.m.len, n,
                        sizeof(struct tv_pair)) < 0)
            goto fail;
        struct tv_pair *pair = &m->u.m.items[i];
        *pair = (struct tv_pair){ 0 };
        if (decode_key(r, pair) < 0)
            goto fail;
        m->u.m.len++;   /* the pair now owns its key; tv_free releases it */
        pair->value = decode_value(r, depth);
        if (!pair->value)
            goto fail;
    }
    if (check_unique_keys(r, m) < 0)
        goto fail;
    return m;
fail:
    tv_free(m);
    return NULL;
}

static struct tv *decode_int(struct reader *r, size_t n, bool is_signed)
{
    uint64_t u;
    if (read_be(r, n, &u) < 0)
        return NULL;
    int64_t i;
    if (is_signed) {
        /* Sign-extend from n bytes. */
        unsigned shift = (unsigned)(64 - 8 * n);
        i = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    } else {
        if (u > INT64_MAX) {
            err_set(r->err, r->errlen, "integer %" PRIu64 " exceeds the int64 range", u);
            return NULL;
        }
        i = (int64_t)u;
    }
    return tv_int(i);
}

static struct tv *decode_float(struct reader *r, size_t n)
{
    uint64_t u;
    if (read_be(r, n, &u) < 0)
        return NULL;
    double d;
    if (n == 4) {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, sizeof(f));
        d = f;
    } else {
        memcpy(&d, &u, sizeof(d));
    }
    return tv_float(d);
}

static struct tv *decode_value(struct reader *r, unsigned depth)
{
    if (remaining(r) == 0) {
        err_set(r->err, r->errlen, "truncated frame");
        return NULL;
    }
    unsigned char b = *r->p++;
    struct tv *v = NULL;
    size_t n;

    if (b <= 0x7f)
        return tv_int(b);
    if (b >= 0xe0)
        return tv_int((int8_t)b);
    if (b >= 0xa0 && b <= 0xbf)
        return decode_bytes(r, b & 0x1f, true);

    bool is_container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
    if (is_container && depth >= r->lim->max_depth) {
        err_set(r->err, r->errlen, "nesting deeper than %u levels", r->lim->max_depth);
        return NULL;
    }

    switch (b) {
    case 0xc0: v = tv_nil(); break;
    case 0xc2: v = tv_bool(false); break;
    case 0xc3: v = tv_bool(true); break;
    case 0xc4: case 0xc5: case 0xc6:
        if (read_len(r, (size_t)1 << (b - 0xc4), &n) < 0)
            return NULL;
        return decode_bytes(r, n, false);
    case 0xd9: case 0xda: case 0xdb:
        if (read_len(r, (size_t)1 << (b - 0xd9), &n) < 0)
            return NULL;
        return decode_bytes(r, n, true);
    case 0xca: return decode_float(r, 4);
    case 0xcb: return decode_float(r, 8);
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        return decode_int(r, (size_t)1 << (b - 0xcc), false);
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return decode_int(r, (size_t)1 << (b - 0xd0), true);
    case 0xdc: case 0xdd:
        if (read_len(r, (size_t)2 << (b - 0xdc), &n) < 0)
            return NULL;
        return decode_array(r, n, depth + 1);
    case 0xde: case 0xdf:
        if (read_len(r, (size_t)2 << (b - 0xde), &n) < 0)
            return NULL;
        return decode_map(r, n, depth + 1);
    case 0xc7: case 0xc8: case 0xc9:
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        err_set(r->err, r->errlen, "extension types are not allowed");
        return NULL;
    case 0xc1:
        err_set(r->err, r->errlen, "invalid type byte 0xc1");
        return NULL;
    default:
        if (b <= 0x8f)
            return decode_map(r, b & 0x0f, depth + 1);
        return decode_array(r, b & 0x0f, depth + 1);
    }
    if (!v)
        err_set(r->err, r->errlen, "out of memory");
    return v;
}

int wire_decode(const void *buf, size_t len, const struct wire_limits *lim, struct tv **out,
                char *err, size_t errlen)
{
    if (!lim)
        lim = &wire_default_limits;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return -1;
    *out = NULL;
    if (len > lim->max_frame) {
        err_set(err, errlen, "frame of %zu bytes exceeds limit of %zu", len, lim->max_frame);
        return -1;
    }
    if (len == 0 || !buf) {
        err_set(err, errlen, "empty frame");
        return -1;
    }
    struct reader r = {
        .p = buf, .end = (const unsigned char *)buf + len, .lim = lim, .err = err, .errlen = errlen,
    };
    struct tv *v = decode_value(&r, 0);
    if (!v) {
        if (err && errlen && !err[0])
            err_set(err, errlen, "out of memory");
        return -1;
    }
    if (r.p != r.end) {
        err_set(err, errlen, "trailing bytes after message (%zu)", remaining(&r));
        tv_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* --------------------------------------------------------------- encoder */

static int encode_value(msgpack_packer *pk, const struct tv *v)
{
    switch (v->type) {
    case TV_NIL:
        return msgpack_pack_nil(pk);
    case TV_BOOL:
        return v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case TV_INT:
        return msgpack_pack_int64(pk, v->u.i);
    case TV_FLOAT:
        return msgpack_pack_double(pk, v->u.f);
    case TV_STR:
        if (msgpack_pack_str(pk, v->u.s.len) < 0)
            return -1;
        return msgpack_pack_str_body(pk, v->u.s.ptr, v->u.s.len);
    case TV_BIN:
        if (msgpack_pack_bin(pk, v->u.s.len) < 0)
            return -1;
        return msgpack_pack_bin_body(pk, v->u.s.ptr, v->u.s.len);
    case TV_ARRAY:
        if (msgpack_pack_array(pk, v->u.a.len) < 0)
            return -1;
        for (size_t i = 0; i < v->u.a.len; i++)
            if (encode_value(pk, v->u.a.items[i]) < 0)
                return -1;
        return 0;
    case TV_MAP:
        if (msgpack_pack_map(pk, v->u.m.len) < 0)
            return -1;
        for (size_t i = 0; i < v->u.m.len; i++) {
            const struct tv_pair *p = &v->u.m.items[i];
            if (msgpack_pack_str(pk, p->key_len) < 0 ||
                msgpack_pack_str_body(pk, p->key, p->key_len) < 0 ||
                encode_value(pk, p->value) < 0)
                return -1;
        }
        return 0;
    }
    return -1;
}

int wire_encode(const struct tv *v, char **buf, size_t *len)
{
    if (!v || !buf || !len)
        return -1;
    *buf = NULL;
    *len = 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (encode_value(&pk, v) < 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    /* sbuffer memory comes from malloc/realloc, so the caller frees it with free(). */
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return 0;
}

/* -------------------------------------------------------------- envelope */

/* A required string field of `min`..`max` bytes. */
static int check_str(const struct tv *msg, const char *key, size_t min, size_t max, char *err,
                     size_t errlen)
{
    const struct tv *f = tv_get(msg, key);
    if (!f) {
        err_set(err, errlen, "missing field \"%s\"", key);
        return -1;
    }
    if (f->type != TV_STR) {
        err_set(err, errlen, "field \"%s\" is %s, not a string", key, tv_type_name(f->type));
        return -1;
    }
    if (f->u.s.len < min || f->u.s.len > max) {
        err_set(err, errlen, "field \"%s\" must be %zu to %zu bytes, not %zu", key, min, max,
                f->u.s.len);
        return -1;
    }
    return 0;
}

static int check_type(const struct tv *msg, const char *key, enum tv_type type, bool required,
                      char *err, size_t errlen)
{
    const struct tv *f = tv_get(msg, key);
    if (!f) {
        if (!required)
            return 0;
        err_set(err, errlen, "missing field \"%s\"", key);
        return -1;
    }
    if (f->type != type) {
        err_set(err, errlen, "field \"%s\" is %s, not %s", key, tv_type_name(f->type),
                tv_type_name(type));
        return -1;
    }
    return 0;
}

static int check_reply(const struct tv *msg, char *err, size_t errlen)
{
    /* A reply to an undecodable frame carries id "". */
    if (check_str(msg, "id", 0, ID_MAX, err, errlen) < 0 ||
        check_type(msg, "ok", TV_BOOL, true, err, errlen) < 0)
        return -1;
    if (tv_get_bool(msg, "ok", false))
        return check_type(msg, "result", TV_MAP, false, err, errlen);
    if (check_type(msg, "error", TV_MAP, true, err, errlen) < 0)
        return -1;
    const struct tv *e = tv_get(msg, "error");
    if (check_str(e, "code", 1, SIZE_MAX, err, errlen) < 0 ||
        check_str(e, "message", 0, SIZE_MAX, err, errlen) < 0) {
        /* Name the nesting so the reason is not mistaken for a top-level field. */
        char inner[200];
        snprintf(inner, sizeof(inner), "%s", err ? err : "");
        err_set(err, errlen, "error: %s", inner);
        return -1;
    }
    return 0;
}

int wire_check_envelope(const struct tv *msg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!msg || msg->type != TV_MAP) {
        err_set(err, errlen, "message is %s, not a map", msg ? tv_type_name(msg->type) : "missing");
        return -1;
    }
    if (check_type(msg, "v", TV_INT, true, err, errlen) < 0)
        return -1;
    int64_t v = tv_get_int(msg, "v", 0);
    if (v != WIRE_PROTOCOL_VERSION) {
        err_set(err, errlen, "unsupported protocol version %" PRId64 " (this side speaks %d)", v,
                WIRE_PROTOCOL_VERSION);
        return -1;
    }
    if (check_str(msg, "type", 1, OP_MAX, err, errlen) < 0)
        return -1;
    const char *type = tv_get_str(msg, "type");
    if (strcmp(type, "request") == 0) {
        if (check_str(msg, "id", 1, ID_MAX, err, errlen) < 0 ||
            check_str(msg, "op", 1, OP_MAX, err, errlen) < 0 ||
            check_type(msg, "args", TV_MAP, false, err, errlen) < 0)
            return -1;
        return 0;
    }
    if (strcmp(type, "reply") == 0)
        return check_reply(msg, err, errlen);
    if (strcmp(type, "event") == 0) {
        if (check_str(msg, "id", 1, ID_MAX, err, errlen) < 0 ||
            check_str(msg, "event", 1, OP_MAX, err, errlen) < 0)
            return -1;
        return 0;
    }
    if (strcmp(type, "ack") == 0)
        return check_str(msg, "id", 1, ID_MAX, err, errlen) < 0 ? -1 : 0;
    if (strcmp(type, "hello") == 0 || strcmp(type, "heartbeat") == 0 || strcmp(type, "bye") == 0)
        return 0;
    char shown[40];
    printable_key(shown, sizeof(shown), type, strlen(type));
    err_set(err, errlen, "unknown message type \"%s\"", shown);
    return -1;
}

/* -------------------------------------------------------------- builders */

static struct tv *envelope(const char *type, const char *id)
{
    struct tv *m = tv_map();
    if (!m)
        return NULL;
    if (tv_set_int(m, "v", WIRE_PROTOCOL_VERSION) < 0 || tv_set_str(m, "type", type) < 0 ||
        tv_set_str(m, "id", id ? id : "") < 0) {
        tv_free(m);
        return NULL;
    }
    return m;
}

struct tv *wire_request(const char *id, const char *op, struct tv *args)
{
    struct tv *m = envelope("request", id);
    if (!m || tv_set_str(m, "op", op ? op : "") < 0)
        goto fail;
    if (!args)
        args = tv_map();
    if (tv_set(m, "args", args) < 0) {
        args = NULL;   /* tv_set freed it */
        goto fail;
    }
    return m;
fail:
    tv_free(args);
    tv_free(m);
    return NULL;
}

struct tv *wire_reply_ok(const char *id, struct tv *result)
{
    struct tv *m = envelope("reply", id);
    if (!m || tv_set_bool(m, "ok", true) < 0)
        goto fail;
    if (!result)
        result = tv_map();
    if (tv_set(m, "result", result) < 0) {
        result = NULL;
        goto fail;
    }
    return m;
fail:
    tv_free(result);
    tv_free(m);
    return NULL;
}

struct tv *wire_reply_error(const char *id, int status, const char *message)
{
    struct tv *m = envelope("reply", id);
    if (!m || tv_set_bool(m, "ok", false) < 0)
        goto fail;
    struct tv *e = tv_child_map(m, "error");
    if (!e || tv_set_str(e, "code", status_name(status)) < 0 ||
        tv_set_str(e, "message", message ? message : "") < 0)
        goto fail;
    return m;
fail:
    tv_free(m);
    return NULL;
}
