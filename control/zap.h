/*
 * zap.h - the ZAP (RFC 27) handler that admits agents by their CURVE public
 * key. It answers 200 with the key's instance id as User-Id, or 400. It runs
 * on the daemon's loop thread; libzmq's I/O thread waits for its answer.
 */
#ifndef TROVE_CONTROL_ZAP_H
#define TROVE_CONTROL_ZAP_H

#include <stdint.h>

#include "allowlist.h"
#include "timing.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "trove"

struct zap {
    void *socket;                 /* ZMQ_REP bound to ZAP_ENDPOINT */
    const struct allowlist *allow;
    struct log_limit refusals;    /* warnings about refused handshakes */
};

/* Create the REP socket and bind it. Must run before the agent ROUTER binds,
 * or libzmq admits every client that knows the server key. 0 or -1. */
int zap_start(struct zap *z, void *zmq_context, const struct allowlist *allow);
/* Answer one request waiting on z->socket (call when it polls readable). */
void zap_handle(struct zap *z);
void zap_stop(struct zap *z);

#endif
