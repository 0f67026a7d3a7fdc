/*
 * tv_testutil.h - helpers shared by the unit tests: deep equality of value
 * trees and small constructors that abort the test on no memory.
 */
#ifndef TV_TESTUTIL_H
#define TV_TESTUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"

static inline bool tv_equal(const struct tv *a, const struct tv *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case TV_NIL:
        return true;
    case TV_BOOL:
        return a->u.b == b->u.b;
    case TV_INT:
        return a->u.i == b->u.i;
    case TV_FLOAT:
        if (isnan(a->u.f))
            return isnan(b->u.f);
        return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case TV_STR:
    case TV_BIN:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0 &&
               a->u.s.ptr[a->u.s.len] == '\0' && b->u.s.ptr[b->u.s.len] == '\0';
    case TV_ARRAY:
        if (a->u.a.len != b->u.a.len)
            return false;
        for (size_t i = 0; i < a->u.a.len; i++)
            if (!tv_equal(a->u.a.items[i], b->u.a.items[i]))
                return false;
        return true;
    case TV_MAP:
        if (a->u.m.len != b->u.m.len)
            return false;
        for (size_t i = 0; i < a->u.m.len; i++) {
            const struct tv_pair *p = &a->u.m.items[i], *q = &b->u.m.items[i];
            if (p->key_len != q->key_len || strcmp(p->key, q->key) != 0 ||
                !tv_equal(p->value, q->value))
                return false;
        }
        return true;
    }
    return false;
}

/* Append a pair the caller knows is new: tv_set searches for the key first,
 * which makes building maps of 65536 keys slow in a test. */
static inline int tv_test_map_add(struct tv *map, const char *key, struct tv *value)
{
    if (map->u.m.len == map->u.m.cap) {
        size_t cap = map->u.m.cap ? map->u.m.cap * 2 : 16;
        struct tv_pair *p = realloc(map->u.m.items, cap * sizeof(*p));
        if (!p)
            return -1;
        map->u.m.items = p;
        map->u.m.cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return -1;
    map->u.m.items[map->u.m.len++] = (struct tv_pair){ k, strlen(k), value };
    return 0;
}

#endif
