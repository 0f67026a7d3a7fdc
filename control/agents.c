/*
 * agents.c - the in-memory table of agents. Entries are created by the
 * conductor when an authenticated agent speaks and are kept (as
 * disconnected) after it leaves, so `trovectl list` shows what went away.
 */
#include "agents.h"

#include <stdlib.h>
#include <string.h>

#include "table.h"

struct agents {
    struct table *agents;   /* instance id -> struct agent */
    int missed_limit;
};

static void agent_free(void *p)
{
    struct agent *a = p;
    tv_free(a->hello);
    tv_free(a->heartbeat);
    free(a);
}

struct agents *agents_new(void)
{
    struct agents *r = calloc(1, sizeof *r);
    if (r && !(r->agents = table_new(agent_free))) {
        free(r);
        return NULL;
    }
    if (r)
        r->missed_limit = AGENTS_MISSED_HEARTBEATS;
    return r;
}

void agents_set_missed_limit(struct agents *r, int missed)
{
    r->missed_limit = missed < 1 ? 1 : missed > 1000 ? 1000 : missed;
}

struct each_walk {
    void (*fn)(void *ctx, struct agent *a);
    void *ctx;
};

static bool visit(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    struct each_walk *w = user;
    w->fn(w->ctx, value);
    return false;
}

void agents_each(struct agents *r, void (*fn)(void *ctx, struct agent *a), void *ctx)
{
    struct each_walk w = {fn, ctx};
    table_sweep(r->agents, visit, &w);
}

void agents_free(struct agents *r)
{
    if (!r)
        return;
    table_free(r->agents);
    free(r);
}

struct agent *agents_get(struct agents *r, const char *instance)
{
    return table_get(r->agents, instance, strlen(instance));
}

struct agent *agents_alive(struct agents *r, const char *instance, int64_t now)
{
    struct agent *a = agents_get(r, instance);
    if (!a) {
        size_t len = strlen(instance);
        if (len > INSTANCE_ID_MAX || !(a = calloc(1, sizeof *a)))
            return NULL;
        memcpy(a->instance, instance, len + 1);
        a->heartbeat_ms = AGENTS_DEFAULT_HEARTBEAT_MS;
        a->missed_limit = r->missed_limit;
        if (table_put(r->agents, instance, len, a) != 0)
            return NULL;
    }
    a->gone = false;
    a->last_alive_ms = now;
    return a;
}

bool agent_connected(const struct agent *a, int64_t now)
{
    return !a->gone && now - a->last_alive_ms <= a->missed_limit * a->heartbeat_ms;
}

/* Copy field `key` of src (when present) into dst; 0 or -1 on no memory. */
static int copy_field(struct tv *dst, const struct tv *src, const char *key)
{
    const struct tv *v = src ? tv_get(src, key) : NULL;
    if (!v)
        return 0;
    struct tv *copy = tv_copy(v);
    return copy ? tv_set(dst, key, copy) : -1;
}

struct tv *agent_describe(const struct agent *a, int64_t now)
{
    static const char *const hello_fields[] = {"plugin", "abi", "agent_version", "capabilities", "features"};
    static const char *const heartbeat_fields[] = {"seq", "state", "role", "term", "position", "message", "task"};
    struct tv *d = tv_map();
    if (!d)
        return NULL;

    int rc = tv_set_str(d, "instance", a->instance);
    rc |= tv_set_bool(d, "connected", agent_connected(a, now));
    rc |= tv_set_int(d, "heartbeat_ms", a->heartbeat_ms);
    rc |= tv_set_int(d, "last_heartbeat_ms_ago", a->last_heartbeat_ms ? now - a->last_heartbeat_ms : -1);
    for (size_t i = 0; i < sizeof hello_fields / sizeof hello_fields[0]; i++)
        rc |= copy_field(d, a->hello, hello_fields[i]);
    for (size_t i = 0; i < sizeof heartbeat_fields / sizeof heartbeat_fields[0]; i++)
        rc |= copy_field(d, a->heartbeat, heartbeat_fields[i]);
    /* Fields a client may rely on exist even before the first hello/heartbeat. */
    if (!tv_get(d, "capabilities"))
        rc |= tv_child_array(d, "capabilities") ? 0 : -1;
    if (!tv_get(d, "state"))
        rc |= tv_set_str(d, "state", "unknown");
    if (!tv_get(d, "role"))
        rc |= tv_set_str(d, "role", "unknown");
    if (!tv_get(d, "position"))
        rc |= tv_set_str(d, "position", "");
    if (rc != 0) {
        tv_free(d);
        return NULL;
    }
    return d;
}

struct describe_walk {
    const struct agent **list;
    size_t n;
};

static bool collect(const void *key, size_t key_len, void *value, void *user)
{
    (void)key;
    (void)key_len;
    struct describe_walk *w = user;
    w->list[w->n++] = value;
    return false;
}

static int by_instance(const void *x, const void *y)
{
    const struct agent *const *a = x, *const *b = y;
    return strcmp((*a)->instance, (*b)->instance);
}

struct tv *agents_describe(const struct agents *r, int64_t now)
{
    struct describe_walk w = {calloc(table_count(r->agents) + 1, sizeof *w.list), 0};
    struct tv *arr = tv_array();
    if (!w.list || !arr)
        goto fail;
    table_sweep(r->agents, collect, &w);
    qsort(w.list, w.n, sizeof *w.list, by_instance);
    for (size_t i = 0; i < w.n; i++) {
        struct tv *d = agent_describe(w.list[i], now);
        if (!d || tv_append(arr, d) != 0)
            goto fail;
    }
    free(w.list);
    return arr;
fail:
    free(w.list);
    tv_free(arr);
    return NULL;
}
