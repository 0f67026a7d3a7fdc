/*
 * loop.c - one zmq_poll over every watched socket and descriptor, timers
 * kept in a small array (there are a handful), and an eventfd through which
 * other threads post work. Watches added or removed from a callback take
 * effect on the next turn; a removed watch is never called again.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "timing.h"

#define LOOP_MAX_WAIT_MS 1000

struct watch {
    void *socket;    /* or NULL for a descriptor */
    int fd;
    short events;
    loop_io_fn fn;
    void *ctx;
    bool removed;
};

struct loop_timer {
    struct loop *loop;
    loop_timer_fn fn;
    void *ctx;
    int64_t at_ms;   /* 0: disarmed */
};

struct posted {
    loop_timer_fn fn;
    void *ctx;
    struct posted *next;
};

struct prepare {
    loop_prepare_fn fn;
    void *ctx;
};

struct loop {
    struct prepare *prepares;
    size_t n_prepares;
    struct watch *watches;
    size_t n_watches, cap_watches;
    struct loop_timer **timers;
    size_t n_timers, cap_timers;
    bool stopping;
    int wake_fd;                  /* eventfd: posted work is waiting */
    pthread_mutex_t post_lock;
    struct posted *posted_head, *posted_tail;
};

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->post_lock, NULL);
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_timers; i++)
        free(l->timers[i]);
    for (struct posted *p = l->posted_head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    pthread_mutex_destroy(&l->post_lock);
    close(l->wake_fd);
    free(l->timers);
    free(l->watches);
    free(l->prepares);
    free(l);
}

/* ------------------------------------------------------------ watches */

static int add_watch(struct loop *l, void *socket, int fd, short events, loop_io_fn fn, void *ctx)
{
    if (l->n_watches == l->cap_watches) {
        size_t cap = l->cap_watches ? l->cap_watches * 2 : 8;
        struct watch *grown = realloc(l->watches, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->watches = grown;
        l->cap_watches = cap;
    }
    l->watches[l->n_watches++] = (struct watch){socket, fd, events, fn, ctx, false};
    return 0;
}

int loop_add_socket(struct loop *l, void *socket, short events, loop_io_fn fn, void *ctx)
{
    return add_watch(l, socket, -1, events, fn, ctx);
}

int loop_add_fd(struct loop *l, int fd, short events, loop_io_fn fn, void *ctx)
{
    return add_watch(l, NULL, fd, events, fn, ctx);
}

static void mark_removed(struct loop *l, void *socket, int fd)
{
    for (size_t i = 0; i < l->n_watches; i++)
        if (l->watches[i].socket == socket && (socket || l->watches[i].fd == fd))
            l->watches[i].removed = true;
}

void loop_remove_socket(struct loop *l, void *socket)
{
    if (socket)
        mark_removed(l, socket, -1);
}

void loop_remove_fd(struct loop *l, int fd)
{
    mark_removed(l, NULL, fd);
}

static void compact_watches(struct loop *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n_watches; i++)
        if (!l->watches[i].removed)
            l->watches[kept++] = l->watches[i];
    l->n_watches = kept;
}

int loop_add_prepare(struct loop *l, loop_prepare_fn fn, void *ctx)
{
    struct prepare *grown = realloc(l->prepares, (l->n_prepares + 1) * sizeof *grown);
    if (!grown)
        return -1;
    l->prepares = grown;
    l->prepares[l->n_prepares++] = (struct prepare){fn, ctx};
    return 0;
}

/* ------------------------------------------------------------ timers */

struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn fn, void *ctx)
{
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 8;
        struct loop_timer **grown = realloc(l->timers, cap * sizeof *grown);
        if (!grown)
            return NULL;
        l->timers = grown;
        l->cap_timers = cap;
    }
    struct loop_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    *t = (struct loop_timer){l, fn, ctx, 0};
    l->timers[l->n_timers++] = t;
    return t;
}

void loop_timer_arm(struct loop_timer *t, int64_t delay_ms)
{
    int64_t at = monotonic_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->at_ms = at > 0 ? at : 1;
}

void loop_timer_disarm(struct loop_timer *t)
{
    t->at_ms = 0;
}

bool loop_timer_armed(const struct loop_timer *t)
{
    return t->at_ms != 0;
}

void loop_timer_free(struct loop_timer *t)
{
    if (!t)
        return;
    struct loop *l = t->loop;
    for (size_t i = 0; i < l->n_timers; i++) {
        if (l->timers[i] == t) {
            l->timers[i] = l->timers[--l->n_timers];
            break;
        }
    }
    free(t);
}

/* Fire due timers one at a time: a callback may arm, disarm or free any timer. */
static void run_timers(struct loop *l)
{
    int64_t now = monotonic_ms();
    for (bool fired = true; fired;) {
        fired = false;
        for (size_t i = 0; i < l->n_timers; i++) {
            struct loop_timer *t = l->timers[i];
            if (t->at_ms && t->at_ms <= now) {
                t->at_ms = 0;
                t->fn(t->ctx);
                fired = true;
                break;
            }
        }
    }
}

static long next_wait_ms(const struct loop *l)
{
    int64_t now = monotonic_ms(), wait = LOOP_MAX_WAIT_MS;
    for (size_t i = 0; i < l->n_timers; i++)
        if (l->timers[i]->at_ms && l->timers[i]->at_ms - now < wait)
            wait = l->timers[i]->at_ms - now;
    return wait < 0 ? 0 : (long)wait;
}

/* ------------------------------------------------------------ posting */

int loop_post(struct loop *l, loop_timer_fn fn, void *ctx)
{
    struct posted *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->fn = fn;
    p->ctx = ctx;
    pthread_mutex_lock(&l->post_lock);
    if (l->posted_tail)
        l->posted_tail->next = p;
    else
        l->posted_head = p;
    l->posted_tail = p;
    pthread_mutex_unlock(&l->post_lock);
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("cannot wake the loop: %s", strerror(errno));
    return 0;
}

static void run_posted(struct loop *l)
{
    uint64_t count;
    if (read(l->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&l->post_lock);
    struct posted *p = l->posted_head;
    l->posted_head = l->posted_tail = NULL;
    pthread_mutex_unlock(&l->post_lock);
    while (p) {
        struct posted *next = p->next;
        p->fn(p->ctx);
        free(p);
        p = next;
    }
}

/* ------------------------------------------------------------ running */

void loop_stop(struct loop *l)
{
    l->stopping = true;
}

static int poll_once(struct loop *l)
{
    for (size_t i = 0; i < l->n_prepares; i++)
        l->prepares[i].fn(l->prepares[i].ctx);
    size_t n = l->n_watches;
    zmq_pollitem_t *items = calloc(n + 1, sizeof *items);
    struct watch *snapshot = calloc(n + 1, sizeof *snapshot);
    int rc = -1;
    if (!items || !snapshot) {
        log_error("out of memory in the event loop");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        snapshot[i] = l->watches[i];
        items[i] = (zmq_pollitem_t){l->watches[i].socket, l->watches[i].fd, l->watches[i].events, 0};
    }
    items[n] = (zmq_pollitem_t){NULL, l->wake_fd, ZMQ_POLLIN, 0};
    if (zmq_poll(items, (int)n + 1, next_wait_ms(l)) < 0) {
        rc = errno == EINTR ? 0 : -1;
        if (rc)
            log_error("poll failed: %s", zmq_strerror(errno));
        goto out;
    }
    if (items[n].revents & ZMQ_POLLIN)
        run_posted(l);
    for (size_t i = 0; i < n && !l->stopping; i++) {
        if (!items[i].revents)
            continue;
        /* Skip a watch removed by an earlier callback of this turn. */
        bool live = false;
        for (size_t k = 0; k < l->n_watches && !live; k++)
            live = !l->watches[k].removed && l->watches[k].fn == snapshot[i].fn &&
                   l->watches[k].ctx == snapshot[i].ctx && l->watches[k].socket == snapshot[i].socket &&
                   l->watches[k].fd == snapshot[i].fd;
        if (live)
            snapshot[i].fn(snapshot[i].ctx, items[i].revents);
    }
    rc = 0;
out:
    free(items);
    free(snapshot);
    return rc;
}

int loop_run(struct loop *l)
{
    l->stopping = false;
    while (!l->stopping) {
        if (poll_once(l) != 0)
            return -1;
        compact_watches(l);
        if (!l->stopping)
            run_timers(l);
    }
    return 0;
}
