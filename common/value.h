/*
 * value.h - the in-memory value tree that the wire codec decodes into and
 * encodes from (nil, bool, int, float, string, binary, array, map with string
 * keys). It owns its memory; it knows nothing of msgpack, JSON or sockets.
 */
#ifndef TROVE_VALUE_H
#define TROVE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tv_type { TV_NIL, TV_BOOL, TV_INT, TV_FLOAT, TV_STR, TV_BIN, TV_ARRAY, TV_MAP };

struct tv;

/* A map entry: key is a NUL-terminated string (may not contain NUL). */
struct tv_pair {
    char *key;
    size_t key_len;
    struct tv *value;
};

struct tv {
    enum tv_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *ptr; size_t len; } s;      /* TV_STR / TV_BIN; ptr is NUL-terminated */
        struct { struct tv **items; size_t len, cap; } a;
        struct { struct tv_pair *items; size_t len, cap; } m;
    } u;
};

/* Constructors return NULL when out of memory. Strings are copied. */
struct tv *tv_nil(void);
struct tv *tv_bool(bool b);
struct tv *tv_int(int64_t i);
struct tv *tv_float(double f);
struct tv *tv_str(const char *s);
struct tv *tv_strn(const char *s, size_t len);
struct tv *tv_bin(const void *p, size_t len);
struct tv *tv_array(void);
struct tv *tv_map(void);
void tv_free(struct tv *v);
struct tv *tv_copy(const struct tv *v);

/* Append / set take ownership of `item` even on failure (it is freed). Return 0 or -1. */
int tv_append(struct tv *array, struct tv *item);
/* Sets key (replacing an existing entry with the same key). */
int tv_set(struct tv *map, const char *key, struct tv *value);
int tv_set_str(struct tv *map, const char *key, const char *s);
int tv_set_int(struct tv *map, const char *key, int64_t i);
int tv_set_bool(struct tv *map, const char *key, bool b);

/* Lookup in a map; NULL if `map` is not a map or has no such key. */
struct tv *tv_get(const struct tv *map, const char *key);
/* Typed lookups: NULL / fallback when absent or of another type. */
const char *tv_get_str(const struct tv *map, const char *key);
int64_t tv_get_int(const struct tv *map, const char *key, int64_t fallback);
bool tv_get_bool(const struct tv *map, const char *key, bool fallback);
/* Get or create a child map / array under key. NULL on type clash or no memory. */
struct tv *tv_child_map(struct tv *map, const char *key);
struct tv *tv_child_array(struct tv *map, const char *key);

const char *tv_type_name(enum tv_type t);

/* True if s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). NUL bytes are valid UTF-8; callers that
 * forbid them check separately. */
bool tv_utf8_valid(const char *s, size_t len);

#endif
