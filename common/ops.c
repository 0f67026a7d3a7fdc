/*
 * ops.c - the catalogue of common/ops.h expanded into tables, and the one
 * argument check every door runs before an operation sees its arguments.
 */
#include "ops.h"

#include <string.h>

#include "status.h"
#include "value.h"

/* ------------------------------------------------------------ the tables */

#define A(n, t, r) {#n, OPS_##t, r},
#define REQ true
#define OPT false
#define OPEN_ARGS
#define ARGS_ROW(ident, name, slot, kind, args) \
    static const struct ops_arg args_##ident[] = {args{NULL, OPS_STR, false}};
TROVE_AGENT_OPS(ARGS_ROW)
TROVE_CONTROL_OPS(ARGS_ROW)
#undef ARGS_ROW
#undef OPEN_ARGS
#undef A

/* Rows whose args column is OPEN_ARGS expand to a flag instead of a schema. */
#define A(n, t, r) +0
#define OPEN_ARGS +1
#define OPEN_ROW(ident, name, slot, kind, args) static const bool open_##ident = (0 args) != 0;
TROVE_AGENT_OPS(OPEN_ROW)
TROVE_CONTROL_OPS(OPEN_ROW)
#undef OPEN_ROW
#undef OPEN_ARGS
#undef A

#define SLOT(member) #member, offsetof(struct trove_plugin, member), sizeof(((struct trove_plugin *)0)->member)
#define NO_SLOT NULL, 0, 0
#define SHORT false
#define LONG true
/* The slot goes last: SLOT() expands to three initializers. */
#define ROW(scope, ident, name, kind, ...)                                                               \
    [OPS_##ident] = {name, scope, kind, open_##ident, __VA_ARGS__, args_##ident,                         \
                     sizeof args_##ident / sizeof args_##ident[0] - 1},
#define AGENT_ROW(ident, name, slot, kind, args) ROW(OPS_SCOPE_AGENT, ident, name, kind, slot)
#define CONTROL_ROW(ident, name, slot, kind, args) ROW(OPS_SCOPE_CONTROL, ident, name, kind, slot)

const struct ops_def ops_catalogue[OPS_COUNT] = {
    TROVE_AGENT_OPS(AGENT_ROW)
    TROVE_CONTROL_OPS(CONTROL_ROW)
};

#undef CONTROL_ROW
#undef AGENT_ROW
#undef ROW
#undef LONG
#undef SHORT
#undef NO_SLOT
#undef SLOT
#undef OPT
#undef REQ

/* ------------------------------------------------------------ lookups */

const struct ops_def *ops_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < OPS_COUNT; i++)
        if (strcmp(ops_catalogue[i].name, name) == 0)
            return &ops_catalogue[i];
    return NULL;
}

enum ops_id ops_id_of(const struct ops_def *op)
{
    return (enum ops_id)(op - ops_catalogue);
}

bool ops_is_long(const char *name)
{
    const struct ops_def *op = ops_find(name);
    return op && op->is_long;
}

const char *ops_type_name(enum ops_type t)
{
    switch (t) {
    case OPS_STR: return "a string";
    case OPS_INT: return "an integer";
    case OPS_BOOL: return "a boolean";
    case OPS_MAP: return "a map";
    case OPS_KV: return "a map of names to values";
    case OPS_LIST: return "a list of maps";
    case OPS_STRINGS: return "a list of strings";
    }
    return "?";
}

bool ops_plugin_has(const struct trove_plugin *vt, const struct ops_def *op)
{
    if (!op->slot)
        return true;
    if (vt->size < op->slot_offset + op->slot_size)
        return false;
    void (*fn)(void) = NULL;
    memcpy(&fn, (const char *)vt + op->slot_offset, sizeof fn < op->slot_size ? sizeof fn : op->slot_size);
    return fn != NULL;
}

/* ------------------------------------------------------------ checking */

static bool scalar(const struct tv *v)
{
    return v->type == TV_STR || v->type == TV_INT || v->type == TV_FLOAT || v->type == TV_BOOL ||
           v->type == TV_NIL;
}

/* Whether v has type t; on a bad item of a container, *item is its 1-based index. */
static bool has_type(const struct tv *v, enum ops_type t, size_t *item)
{
    *item = 0;
    switch (t) {
    case OPS_STR: return v->type == TV_STR;
    case OPS_INT: return v->type == TV_INT;
    case OPS_BOOL: return v->type == TV_BOOL;
    case OPS_MAP: return v->type == TV_MAP;
    case OPS_KV:
        if (v->type != TV_MAP)
            return false;
        for (size_t i = 0; i < v->u.m.len; i++)
            if (!scalar(v->u.m.items[i].value))
                return (*item = i + 1), false;
        return true;
    case OPS_LIST:
    case OPS_STRINGS:
        if (t == OPS_STRINGS && v->type == TV_STR)
            return true;
        if (v->type != TV_ARRAY)
            return false;
        for (size_t i = 0; i < v->u.a.len; i++)
            if (v->u.a.items[i]->type != (t == OPS_LIST ? TV_MAP : TV_STR))
                return (*item = i + 1), false;
        return true;
    }
    return false;
}

static const struct ops_arg *find_arg(const struct ops_def *op, const char *name)
{
    for (size_t i = 0; i < op->n_args; i++)
        if (strcmp(op->args[i].name, name) == 0)
            return &op->args[i];
    return NULL;
}

int ops_check_args(const struct ops_def *op, const struct tv *args, char *err, size_t errlen)
{
    if (args && args->type != TV_MAP) {
        err_set(err, errlen, "args must be a map, not %s", tv_type_name(args->type));
        return -1;
    }
    if (op->open_args)
        return 0;
    for (size_t i = 0; args && i < args->u.m.len; i++) {
        const struct tv_pair *p = &args->u.m.items[i];
        const struct ops_arg *a = find_arg(op, p->key);
        size_t item;
        if (!a) {
            err_set(err, errlen, "%s takes no argument '%.64s'", op->name, p->key);
            return -1;
        }
        if (p->value->type == TV_NIL || has_type(p->value, a->type, &item))
            continue;
        if (item)
            err_set(err, errlen, "argument '%s' item %zu must be %s", a->name, item,
                    a->type == OPS_KV ? "a string, number or boolean" : a->type == OPS_LIST ? "a map" : "a string");
        else
            err_set(err, errlen, "argument '%s' must be %s, not %s", a->name, ops_type_name(a->type),
                    tv_type_name(p->value->type));
        return -1;
    }
    for (size_t i = 0; i < op->n_args; i++) {
        const struct tv *v = op->args[i].required ? tv_get(args, op->args[i].name) : NULL;
        if (op->args[i].required && (!v || v->type == TV_NIL)) {
            err_set(err, errlen, "argument '%s' is required", op->args[i].name);
            return -1;
        }
    }
    return 0;
}
