/*
 * worker.c - the long-operation thread: runs dispatch_run, turns host
 * progress calls into task.progress events and the outcome into task.done.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "dispatch.h"
#include "host.h"
#include "log.h"
#include "status.h"
#include "wire.h"

struct progress_ctx {
    void *pair;
    const char *id;
};

static void send_event(void *pair, struct tv *ev)
{
    char *buf = NULL;
    size_t len = 0;
    if (ev && wire_encode(ev, &buf, &len) == 0)
        zmq_send(pair, buf, len, 0);
    free(buf);
    tv_free(ev);
}

static struct tv *event_new(const char *id, const char *name)
{
    struct tv *ev = tv_map();
    if (ev && (tv_set_int(ev, "v", WIRE_PROTOCOL_VERSION) || tv_set_str(ev, "type", "event") ||
               tv_set_str(ev, "id", id) || tv_set_str(ev, "event", name))) {
        tv_free(ev);
        return NULL;
    }
    return ev;
}

static void on_progress(void *ctx, int percent, const char *message)
{
    struct progress_ctx *pc = ctx;
    struct tv *ev = event_new(pc->id, "task.progress");
    if (ev && (tv_set_int(ev, "percent", percent) || tv_set_str(ev, "message", message))) {
        tv_free(ev);
        return;
    }
    send_event(pc->pair, ev);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    void *pair = zmq_socket(w->zctx, ZMQ_PAIR);
    struct progress_ctx pc = {pair, w->id};
    struct trove_call call;
    if (!pair || zmq_connect(pair, WORKER_ENDPOINT) != 0) {
        log_error("worker: cannot connect to the loop: %s", zmq_strerror(zmq_errno()));
        if (pair)
            zmq_close(pair);
        return NULL;
    }
    int rc = call_init(&call, &w->agent->stopping, on_progress, &pc);
    if (rc == 0)
        rc = dispatch_run(w->agent, w->op, w->args, &call);
    else
        rc = TROVE_EINTERNAL;
    log_info("task %s (%s) finished: %s", w->id, w->op, status_name(rc));
    struct tv *ev = event_new(w->id, "task.done");
    if (ev) {
        tv_set_bool(ev, "ok", rc == TROVE_OK);
        if (rc == TROVE_OK) {
            tv_set(ev, "result", call_take_result(&call));
        } else {
            struct tv *err = tv_map();
            tv_set_str(err, "code", status_name(rc));
            tv_set_str(err, "message", call_message(&call, rc));
            tv_set(ev, "error", err);
        }
    }
    send_event(pair, ev);
    call_release(&call);
    int linger = 1000;
    zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(pair);
    return NULL;
}

int worker_start(struct worker *w, const char *id, const char *op, struct tv *args)
{
    snprintf(w->id, sizeof(w->id), "%s", id);
    snprintf(w->op, sizeof(w->op), "%s", op);
    w->args = args;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        tv_free(args);
        w->args = NULL;
        return -1;
    }
    w->running = true;
    return 0;
}

void worker_join(struct worker *w)
{
    if (!w->running)
        return;
    pthread_join(w->thread, NULL);
    w->running = false;
    tv_free(w->args);
    w->args = NULL;
}
