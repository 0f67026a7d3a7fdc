/*
 * worker.h - runs one long operation at a time on its own thread. Progress
 * and completion travel back to the loop as encoded event frames over an
 * inproc PAIR socket, because only the loop thread may touch the DEALER.
 */
#ifndef TROVE_WORKER_H
#define TROVE_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include "agent.h"
#include "value.h"

#define WORKER_ENDPOINT "inproc://trove-agent-worker"

struct worker {
    struct agent *agent;
    void *zctx;
    pthread_t thread;
    bool running;
    char id[65];
    char op[65];
    struct tv *args;     /* owned by the worker while running */
};

/* Start op `op` with args (ownership taken) under request id `id`. */
int worker_start(struct worker *w, const char *id, const char *op, struct tv *args);
/* Join a finished worker thread (after its task.done event arrived). */
void worker_join(struct worker *w);

#endif
