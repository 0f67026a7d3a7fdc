/*
 * value.c - the value tree: construction, lookup, copying and freeing.
 * Every node owns its children and its bytes. It must not know any encoding
 * (msgpack, JSON); the codecs build and read trees through this file only.
 */
#include "value.h"

#include <stdlib.h>
#include <string.h>

static struct tv *tv_new(enum tv_type type)
{
    struct tv *v = calloc(1, sizeof(*v));
    if (v)
        v->type = type;
    return v;
}

struct tv *tv_nil(void)
{
    return tv_new(TV_NIL);
}

struct tv *tv_bool(bool b)
{
    struct tv *v = tv_new(TV_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

struct tv *tv_int(int64_t i)
{
    struct tv *v = tv_new(TV_INT);
    if (v)
        v->u.i = i;
    return v;
}

struct tv *tv_float(double f)
{
    struct tv *v = tv_new(TV_FLOAT);
    if (v)
        v->u.f = f;
    return v;
}

/* TV_STR and TV_BIN share one representation: len bytes plus a NUL, so a
 * string can be handed to C code directly. */
static struct tv *tv_bytes(enum tv_type type, const void *p, size_t len)
{
    if (!p && len > 0)
        return NULL;
    if (len == SIZE_MAX)
        return NULL;
    struct tv *v = tv_new(type);
    if (!v)
        return NULL;
    v->u.s.ptr = malloc(len + 1);
    if (!v->u.s.ptr) {
        free(v);
        return NULL;
    }
    if (len > 0)
        memcpy(v->u.s.ptr, p, len);
    v->u.s.ptr[len] = '\0';
    v->u.s.len = len;
    return v;
}

struct tv *tv_str(const char *s)
{
    if (!s)
        return NULL;
    return tv_bytes(TV_STR, s, strlen(s));
}

struct tv *tv_strn(const char *s, size_t len)
{
    return tv_bytes(TV_STR, s, len);
}

struct tv *tv_bin(const void *p, size_t len)
{
    return tv_bytes(TV_BIN, p, len);
}

struct tv *tv_array(void)
{
    return tv_new(TV_ARRAY);
}

struct tv *tv_map(void)
{
    return tv_new(TV_MAP);
}

void tv_free(struct tv *v)
{
    if (!v)
        return;
    switch (v->type) {
    case TV_STR:
    case TV_BIN:
        free(v->u.s.ptr);
        break;
    case TV_ARRAY:
        for (size_t i = 0; i < v->u.a.len; i++)
            tv_free(v->u.a.items[i]);
        free(v->u.a.items);
        break;
    case TV_MAP:
        for (size_t i = 0; i < v->u.m.len; i++) {
            free(v->u.m.items[i].key);
            tv_free(v->u.m.items[i].value);
        }
        free(v->u.m.items);
        break;
    default:
        break;
    }
    free(v);
}

/* Grow a vector of `size`-byte items so one more fits. */
static int grow(void **items, size_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    if (ncap < *cap || ncap > SIZE_MAX / size)
        return -1;
    void *p = realloc(*items, ncap * size);
    if (!p)
        return -1;
    *items = p;
    *cap = ncap;
    return 0;
}

int tv_append(struct tv *array, struct tv *item)
{
    if (!array || array->type != TV_ARRAY || !item)
        goto fail;
    if (grow((void **)&array->u.a.items, &array->u.a.cap, array->u.a.len, sizeof(struct tv *)) < 0)
        goto fail;
    array->u.a.items[array->u.a.len++] = item;
    return 0;
fail:
    tv_free(item);
    return -1;
}

static struct tv_pair *find_pair(const struct tv *map, const char *key)
{
    if (!map || map->type != TV_MAP || !key)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->u.m.len; i++) {
        struct tv_pair *p = &map->u.m.items[i];
        if (p->key_len == klen && memcmp(p->key, key, klen) == 0)
            return p;
    }
    return NULL;
}

int tv_set(struct tv *map, const char *key, struct tv *value)
{
    if (!map || map->type != TV_MAP || !key || !value)
        goto fail;
    struct tv_pair *old = find_pair(map, key);
    if (old) {
        tv_free(old->value);
        old->value = value;
        return 0;
    }
    if (grow((void **)&map->u.m.items, &map->u.m.cap, map->u.m.len, sizeof(struct tv_pair)) < 0)
        goto fail;
    char *k = strdup(key);
    if (!k)
        goto fail;
    map->u.m.items[map->u.m.len++] = (struct tv_pair){ .key = k, .key_len = strlen(k), .value = value };
    return 0;
fail:
    tv_free(value);
    return -1;
}

int tv_set_str(struct tv *map, const char *key, const char *s)
{
    return tv_set(map, key, tv_str(s));
}

int tv_set_int(struct tv *map, const char *key, int64_t i)
{
    return tv_set(map, key, tv_int(i));
}

int tv_set_bool(struct tv *map, const char *key, bool b)
{
    return tv_set(map, key, tv_bool(b));
}

struct tv *tv_get(const struct tv *map, const char *key)
{
    struct tv_pair *p = find_pair(map, key);
    return p ? p->value : NULL;
}

const char *tv_get_str(const struct tv *map, const char *key)
{
    const struct tv *v = tv_get(map, key);
    return v && v->type == TV_STR ? v->u.s.ptr : NULL;
}

int64_t tv_get_int(const struct tv *map, const char *key, int64_t fallback)
{
    const struct tv *v = tv_get(map, key);
    return v && v->type == TV_INT ? v->u.i : fallback;
}

bool tv_get_bool(const struct tv *map, const char *key, bool fallback)
{
    const struct tv *v = tv_get(map, key);
    return v && v->type == TV_BOOL ? v->u.b : fallback;
}

static struct tv *child(struct tv *map, const char *key, enum tv_type type)
{
    if (!map || map->type != TV_MAP || !key)
        return NULL;
    struct tv *v = tv_get(map, key);
    if (v)
        return v->type == type ? v : NULL;
    v = tv_new(type);
    if (!v || tv_set(map, key, v) < 0)
        return NULL;
    return v;
}

struct tv *tv_child_map(struct tv *map, const char *key)
{
    return child(map, key, TV_MAP);
}

struct tv *tv_child_array(struct tv *map, const char *key)
{
    return child(map, key, TV_ARRAY);
}

struct tv *tv_copy(const struct tv *v)
{
    if (!v)
        return NULL;
    struct tv *c = NULL;
    switch (v->type) {
    case TV_NIL:
        return tv_nil();
    case TV_BOOL:
        return tv_bool(v->u.b);
    case TV_INT:
        return tv_int(v->u.i);
    case TV_FLOAT:
        return tv_float(v->u.f);
    case TV_STR:
    case TV_BIN:
        return tv_bytes(v->type, v->u.s.ptr, v->u.s.len);
    case TV_ARRAY:
        c = tv_array();
        if (!c)
            return NULL;
        for (size_t i = 0; i < v->u.a.len; i++) {
            struct tv *item = tv_copy(v->u.a.items[i]);
            if (!item || tv_append(c, item) < 0)
                goto fail;
        }
        return c;
    case TV_MAP:
        /* Keys of the source are unique already: fill the pairs directly
         * rather than through tv_set, whose duplicate search is linear. */
        c = tv_map();
        if (!c)
            return NULL;
        if (v->u.m.len > 0 && !(c->u.m.items = calloc(v->u.m.len, sizeof(struct tv_pair))))
            goto fail;
        c->u.m.cap = v->u.m.len;
        for (size_t i = 0; i < v->u.m.len; i++) {
            const struct tv_pair *src = &v->u.m.items[i];
            struct tv_pair *dst = &c->u.m.items[i];
            dst->key = malloc(src->key_len + 1);
            if (!dst->key)
                goto fail;
            memcpy(dst->key, src->key, src->key_len + 1);
            dst->key_len = src->key_len;
            c->u.m.len++;
            if (!(dst->value = tv_copy(src->value)))
                goto fail;
        }
        return c;
    }
fail:
    tv_free(c);
    return NULL;
}

const char *tv_type_name(enum tv_type t)
{
    switch (t) {
    case TV_NIL: return "nil";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "string";
    case TV_BIN: return "binary";
    case TV_ARRAY: return "array";
    case TV_MAP: return "map";
    }
    return "unknown";
}

bool tv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; min = 0x80; cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; min = 0x800; cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; min = 0x10000; cp = c & 0x07;
        } else {
            return false;   /* continuation byte, overlong lead (c0/c1) or beyond f4 */
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}
