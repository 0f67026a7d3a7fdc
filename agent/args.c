/*
 * args.c - request argument checking and conversion (see args.h).
 */
#include "args.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "log.h"

void *arena_keep(struct arena *ar, void *p)
{
    if (!p)
        return NULL;
    if (ar->n == ar->cap) {
        size_t cap = ar->cap ? ar->cap * 2 : 16;
        void **grown = realloc(ar->ptrs, cap * sizeof(*grown));
        if (!grown) {
            free(p);
            return NULL;
        }
        ar->ptrs = grown;
        ar->cap = cap;
    }
    ar->ptrs[ar->n++] = p;
    return p;
}

void arena_free(struct arena *ar)
{
    for (size_t i = 0; i < ar->n; i++)
        free(ar->ptrs[i]);
    free(ar->ptrs);
    memset(ar, 0, sizeof(*ar));
}

static int bad(struct trove_call *call, const char *key, const char *want, const struct tv *v)
{
    return call_fail(call, TROVE_EINVAL, "argument '%s' must be %s, not %s", key, want, tv_type_name(v->type));
}

int arg_str(struct trove_call *call, const struct tv *args, const char *key, bool required, const char **out)
{
    const struct tv *v = tv_get(args, key);
    *out = NULL;
    if (!v || v->type == TV_NIL)
        return required ? call_fail(call, TROVE_EINVAL, "argument '%s' is required", key) : TROVE_OK;
    if (v->type != TV_STR)
        return bad(call, key, "a string", v);
    if (required && v->u.s.len == 0)
        return call_fail(call, TROVE_EINVAL, "argument '%s' must not be empty", key);
    char why[128];
    if (log_is_secret_key(key) && input_check_password(key, v->u.s.len, why, sizeof(why)) != 0)
        return call_fail(call, TROVE_EINVAL, "%s", why);
    *out = v->u.s.ptr;
    return TROVE_OK;
}

int arg_bool(struct trove_call *call, const struct tv *args, const char *key, bool required, bool *out)
{
    const struct tv *v = tv_get(args, key);
    if (!v || v->type == TV_NIL)
        return required ? call_fail(call, TROVE_EINVAL, "argument '%s' is required", key) : TROVE_OK;
    if (v->type != TV_BOOL)
        return bad(call, key, "a boolean", v);
    *out = v->u.b;
    return TROVE_OK;
}

int arg_int(struct trove_call *call, const struct tv *args, const char *key, int64_t min, int64_t max,
            int64_t fallback, int64_t *out)
{
    const struct tv *v = tv_get(args, key);
    *out = fallback;
    if (!v || v->type == TV_NIL)
        return TROVE_OK;
    if (v->type != TV_INT)
        return bad(call, key, "an integer", v);
    if (v->u.i < min || v->u.i > max)
        return call_fail(call, TROVE_EINVAL, "argument '%s' must be between %" PRId64 " and %" PRId64, key, min, max);
    *out = v->u.i;
    return TROVE_OK;
}

int arg_strings(struct trove_call *call, const struct tv *args, const char *key, bool required, struct arena *ar,
                const char *const **out, size_t *n)
{
    const struct tv *v = tv_get(args, key);
    *out = NULL;
    *n = 0;
    if (!v || v->type == TV_NIL)
        return required ? call_fail(call, TROVE_EINVAL, "argument '%s' is required", key) : TROVE_OK;
    if (v->type == TV_STR) {
        const char **one = arena_keep(ar, malloc(sizeof(char *)));
        if (!one)
            return call_fail(call, TROVE_EINTERNAL, "out of memory");
        one[0] = v->u.s.ptr;
        *out = one;
        *n = 1;
        return TROVE_OK;
    }
    if (v->type != TV_ARRAY)
        return bad(call, key, "a list of strings", v);
    const char **items = arena_keep(ar, calloc(v->u.a.len + 1, sizeof(char *)));
    if (!items)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; i < v->u.a.len; i++) {
        const struct tv *it = v->u.a.items[i];
        if (it->type != TV_STR)
            return call_fail(call, TROVE_EINVAL, "argument '%s' item %zu must be a string, not %s", key, i + 1,
                             tv_type_name(it->type));
        items[i] = it->u.s.ptr;
    }
    if (required && v->u.a.len == 0)
        return call_fail(call, TROVE_EINVAL, "argument '%s' must not be empty", key);
    *out = items;
    *n = v->u.a.len;
    return TROVE_OK;
}

/* Render a scalar as text; NULL for containers. */
static char *scalar_text(const struct tv *v)
{
    char buf[64];
    switch (v->type) {
    case TV_STR: return strdup(v->u.s.ptr);
    case TV_INT: snprintf(buf, sizeof(buf), "%" PRId64, v->u.i); return strdup(buf);
    case TV_FLOAT: snprintf(buf, sizeof(buf), "%.17g", v->u.f); return strdup(buf);
    case TV_BOOL: return strdup(v->u.b ? "true" : "false");
    default: return NULL;
    }
}

int tv_to_kv(struct trove_call *call, const char *what, const struct tv *map, struct arena *ar,
             const struct trove_kv **out, size_t *n)
{
    struct trove_kv *kv = arena_keep(ar, calloc(map->u.m.len + 1, sizeof(*kv)));
    if (!kv)
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; i < map->u.m.len; i++) {
        const struct tv_pair *p = &map->u.m.items[i];
        if (p->value->type == TV_NIL || p->value->type == TV_ARRAY || p->value->type == TV_MAP ||
            p->value->type == TV_BIN)
            return call_fail(call, TROVE_EINVAL, "%s '%s' must be a string, number or boolean, not %s", what, p->key,
                             tv_type_name(p->value->type));
        kv[i].key = p->key;
        kv[i].value = arena_keep(ar, scalar_text(p->value));
        if (!kv[i].value)
            return call_fail(call, TROVE_EINTERNAL, "out of memory");
    }
    *out = kv;
    *n = map->u.m.len;
    return TROVE_OK;
}

int arg_kv(struct trove_call *call, const struct tv *args, const char *key, struct arena *ar,
           const struct trove_kv **out, size_t *n)
{
    const struct tv *v = tv_get(args, key);
    *out = NULL;
    *n = 0;
    if (!v || v->type == TV_NIL)
        return TROVE_OK;
    if (v->type != TV_MAP)
        return bad(call, key, "a map", v);
    char what[96];
    snprintf(what, sizeof(what), "argument '%s' entry", key);
    return tv_to_kv(call, what, v, ar, out, n);
}

int arg_user(struct trove_call *call, const struct tv *args, struct arena *ar, struct trove_user *u, bool need_password)
{
    int rc;
    memset(u, 0, sizeof(*u));
    u->size = sizeof(*u);
    if ((rc = arg_str(call, args, "name", true, &u->name)) ||
        (rc = arg_str(call, args, "host", false, &u->host)) ||
        (rc = arg_str(call, args, "password", need_password, &u->password)) ||
        (rc = arg_strings(call, args, "databases", false, ar, &u->databases, &u->n_databases)) ||
        (rc = arg_kv(call, args, "options", ar, &u->options, &u->n_options)))
        return rc;
    return TROVE_OK;
}

int arg_database(struct trove_call *call, const struct tv *args, struct arena *ar, struct trove_database *d)
{
    int rc;
    memset(d, 0, sizeof(*d));
    d->size = sizeof(*d);
    if ((rc = arg_str(call, args, "name", true, &d->name)) ||
        (rc = arg_str(call, args, "character_set", false, &d->character_set)) ||
        (rc = arg_str(call, args, "collation", false, &d->collation)) ||
        (rc = arg_str(call, args, "owner", false, &d->owner)) ||
        (rc = arg_kv(call, args, "options", ar, &d->options, &d->n_options)))
        return rc;
    return TROVE_OK;
}

int arg_source(struct trove_call *call, const struct tv *args, const char *key, struct arena *ar,
               struct trove_replication_source *src)
{
    const struct tv *s = tv_get(args, key);
    int64_t port = 0;
    int rc;
    memset(src, 0, sizeof(*src));
    src->size = sizeof(*src);
    if (!s || s->type != TV_MAP)
        return call_fail(call, TROVE_EINVAL, "argument '%s' must be a map with host, port, user and password", key);
    if ((rc = arg_str(call, s, "host", true, &src->host)) ||
        (rc = arg_int(call, s, "port", 1, 65535, 0, &port)) ||
        (rc = arg_str(call, s, "user", false, &src->user)) ||
        (rc = arg_str(call, s, "password", false, &src->password)) ||
        (rc = arg_kv(call, args, "meta", ar, &src->meta, &src->n_meta)))
        return rc;
    if (port == 0)
        return call_fail(call, TROVE_EINVAL, "argument '%s.port' is required", key);
    src->port = (int)port;
    return TROVE_OK;
}
