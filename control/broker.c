/*
 * broker.c - routes client requests to agents and everything that answers
 * them back: the reply to the client that asked, every event of a task to
 * the client that started it, and timeouts when an agent stays silent.
 * Frames are forwarded unchanged; only the envelope fields are read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"

#define KEY_MAX (INSTANCE_ID_MAX + 1 + 64)

struct client_address {
    unsigned char rid[ROUTING_ID_MAX];
    size_t rid_len;
};

struct pending {
    struct client_address client;
    char instance[INSTANCE_ID_MAX + 1];
    char id[65];
    char op[65];
    int64_t deadline_ms, timeout_ms;
};

struct task_route {
    struct client_address client;
    int64_t started_ms;
};

struct done_task {
    char instance[INSTANCE_ID_MAX + 1];
    int64_t at_ms;
    struct tv *event;
};

/* Requests and tasks are keyed by instance and id together: ids are the
 * sender's choice, and two agents never share a routing id. */
static size_t make_key(char *key, const char *instance, const char *id)
{
    size_t ilen = strlen(instance), idlen = strlen(id);
    if (ilen > INSTANCE_ID_MAX)
        ilen = INSTANCE_ID_MAX;
    if (idlen > 64)
        idlen = 64;
    memcpy(key, instance, ilen);
    key[ilen] = '\0';
    memcpy(key + ilen + 1, id, idlen);
    return ilen + 1 + idlen;
}

static void set_client(struct client_address *a, const void *rid, size_t rid_len)
{
    a->rid_len = rid_len < ROUTING_ID_MAX ? rid_len : ROUTING_ID_MAX;
    memcpy(a->rid, rid, a->rid_len);
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void broker_forward(struct control *c, const void *rid, size_t rid_len, const char *instance, const char *id,
                    const char *op, int64_t timeout_ms, const void *frame, size_t frame_len)
{
    int64_t now = monotonic_ms();
    struct agent *a = agents_get(c->agent_table, instance);
    if (!a || !agent_connected(a, now)) {
        reply_error(c, rid, rid_len, id, TROVE_EUNAVAIL, "instance %s is not connected", instance);
        return;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        reply_error(c, rid, rid_len, id, TROVE_EINTERNAL, "out of memory");
        return;
    }
    if (send_frame(c->agents, instance, strlen(instance), frame, frame_len) != 0) {
        int e = errno;
        free(p);
        if (e == EHOSTUNREACH) {
            a->gone = true;
            reply_error(c, rid, rid_len, id, TROVE_EUNAVAIL, "instance %s is not connected", instance);
        } else {
            reply_error(c, rid, rid_len, id, TROVE_EUNAVAIL, "instance %s is not accepting requests: %s",
                        instance, zmq_strerror(e));
        }
        return;
    }
    log_debug("request %s %s -> %s", id, op, instance);
    set_client(&p->client, rid, rid_len);
    copy_text(p->instance, sizeof p->instance, instance);
    copy_text(p->id, sizeof p->id, id);
    copy_text(p->op, sizeof p->op, op);
    p->timeout_ms = timeout_ms;
    p->deadline_ms = now + timeout_ms;
    if (p->deadline_ms < c->next_deadline_ms)
        c->next_deadline_ms = p->deadline_ms;
    /* A retried id replaces the earlier entry: the newest asker gets the reply. */
    char key[KEY_MAX];
    if (table_put(c->pending, key, make_key(key, instance, id), p) != 0)
        log_error("out of memory tracking request %s", id);
}

void broker_agent_reply(struct control *c, const char *instance, const struct tv *msg, const void *frame,
                        size_t frame_len)
{
    const char *id = tv_get_str(msg, "id");
    char key[KEY_MAX];
    struct pending *p = id ? table_take(c->pending, key, make_key(key, instance, id)) : NULL;
    if (!p) {
        log_debug("reply %s from %s matches no waiting request (late or unknown)", id ? id : "?", instance);
        return;
    }
    if (send_frame(c->clients, p->client.rid, p->client.rid_len, frame, frame_len) != 0)
        log_debug("client of request %s is gone", id);
    const struct tv *result = tv_get(msg, "result");
    if (tv_get_bool(msg, "ok", false) && result && tv_get_str(result, "task")) {
        struct task_route *r = calloc(1, sizeof *r);
        if (r) {
            r->client = p->client;
            r->started_ms = monotonic_ms();
        }
        if (!r || table_put(c->routes, key, make_key(key, instance, id), r) != 0)
            log_error("out of memory tracking task %s", id);
    }
    free(p);
}

static void task_cache_put(struct task_cache *tc, const char *instance, const char *id, struct tv *event)
{
    struct done_task *d = calloc(1, sizeof *d);
    if (!d) {
        tv_free(event);
        return;
    }
    copy_text(d->instance, sizeof d->instance, instance);
    d->at_ms = monotonic_ms();
    d->event = event;
    bool known = table_get(tc->by_id, id, strlen(id)) != NULL;
    if (table_put(tc->by_id, id, strlen(id), d) != 0 || known)
        return;
    char *slot = tc->ring[tc->next];
    if (slot) {
        table_remove(tc->by_id, slot, strlen(slot));
        free(slot);
    }
    tc->ring[tc->next] = strdup(id);
    tc->next = (tc->next + 1) % TASK_CACHE_SIZE;
}

void broker_agent_event(struct control *c, const char *instance, struct tv *msg, const void *frame,
                        size_t frame_len)
{
    const char *id = tv_get_str(msg, "id");
    const char *event = tv_get_str(msg, "event");
    if (!id || !event || (strcmp(event, "task.progress") != 0 && strcmp(event, "task.done") != 0)) {
        warn_agent_traffic(c, "dropped event from %s: needs an id and event task.progress or task.done",
                           instance);
        tv_free(msg);
        return;
    }
    char key[KEY_MAX];
    size_t key_len = make_key(key, instance, id);
    struct task_route *r = table_get(c->routes, key, key_len);
    if (r && send_frame(c->clients, r->client.rid, r->client.rid_len, frame, frame_len) != 0)
        log_debug("client of task %s is gone", id);
    if (strcmp(event, "task.done") != 0) {
        tv_free(msg);
        return;
    }
    table_remove(c->routes, key, key_len);
    log_info("task %s on %s finished: %s", id, instance, tv_get_bool(msg, "ok", false) ? "ok" : "failed");
    task_cache_put(&c->done, instance, id, msg);
}

struct expiry_walk {
    struct control *c;
    int64_t now, next;
};

static bool expire_one(const void *key, size_t key_len, void *value, void *user)
{
    (void)key;
    (void)key_len;
    struct expiry_walk *w = user;
    struct pending *p = value;
    if (p->deadline_ms > w->now) {
        if (p->deadline_ms < w->next)
            w->next = p->deadline_ms;
        return false;
    }
    reply_error(w->c, p->client.rid, p->client.rid_len, p->id, TROVE_ETIMEOUT,
                "instance %s did not answer %s within %lld ms", p->instance, p->op, (long long)p->timeout_ms);
    return true;
}

void broker_expire(struct control *c, int64_t now)
{
    if (now < c->next_deadline_ms)
        return;
    struct expiry_walk w = {c, now, INT64_MAX};
    table_sweep(c->pending, expire_one, &w);
    c->next_deadline_ms = w.next;
}

static bool cancel_one(const void *key, size_t key_len, void *value, void *user)
{
    (void)key;
    (void)key_len;
    struct pending *p = value;
    reply_error(user, p->client.rid, p->client.rid_len, p->id, TROVE_ECANCELLED,
                "the control plane is shutting down");
    return true;
}

void broker_cancel_all(struct control *c)
{
    table_sweep(c->pending, cancel_one, c);
}

static bool route_expired(const void *key, size_t key_len, void *value, void *user)
{
    (void)key;
    (void)key_len;
    const struct task_route *r = value;
    return *(const int64_t *)user - r->started_ms > TASK_ROUTE_TTL_MS;
}

static bool done_expired(const void *key, size_t key_len, void *value, void *user)
{
    (void)key;
    (void)key_len;
    const struct done_task *d = value;
    return *(const int64_t *)user - d->at_ms > TASK_CACHE_TTL_MS;
}

void broker_housekeeping(struct control *c, int64_t now)
{
    table_sweep(c->routes, route_expired, &now);
    table_sweep(c->done.by_id, done_expired, &now);
}

static void done_task_free(void *p)
{
    struct done_task *d = p;
    tv_free(d->event);
    free(d);
}

int task_cache_init(struct task_cache *tc)
{
    memset(tc, 0, sizeof *tc);
    tc->by_id = table_new(done_task_free);
    return tc->by_id ? 0 : -1;
}

void task_cache_free(struct task_cache *tc)
{
    table_free(tc->by_id);
    for (size_t i = 0; i < TASK_CACHE_SIZE; i++)
        free(tc->ring[i]);
    memset(tc, 0, sizeof *tc);
}

const struct tv *task_cache_get(struct task_cache *tc, const char *id, int64_t now, const char **instance)
{
    struct done_task *d = table_get(tc->by_id, id, strlen(id));
    if (!d || now - d->at_ms > TASK_CACHE_TTL_MS)
        return NULL;
    *instance = d->instance;
    return d->event;
}

struct running_walk {
    const char *id;
    size_t id_len;
    char instance[INSTANCE_ID_MAX + 1];
    bool found;
};

static bool find_running(const void *key, size_t key_len, void *value, void *user)
{
    (void)value;
    struct running_walk *w = user;
    size_t ilen = strlen(key);   /* the key is "instance \0 id" */
    if (!w->found && key_len - ilen - 1 == w->id_len && memcmp((const char *)key + ilen + 1, w->id, w->id_len) == 0) {
        copy_text(w->instance, sizeof w->instance, key);
        w->found = true;
    }
    return false;
}

bool broker_task_running(struct control *c, const char *id, char *instance, size_t instance_cap)
{
    struct running_walk w = {.id = id, .id_len = strlen(id)};
    table_sweep(c->routes, find_running, &w);
    if (w.found)
        copy_text(instance, instance_cap, w.instance);
    return w.found;
}
