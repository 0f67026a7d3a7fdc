/*
 * zap.h - the ZAP (RFC 27) handler that admits agents by their CURVE public
 * key. It answers 200 with the key's instance id as User-Id, or 400; which
 * key speaks for which instance is the caller's lookup. It runs on the
 * daemon's loop thread; libzmq's I/O thread waits for its answer.
 */
#ifndef TROVE_CONTROL_ZAP_H
#define TROVE_CONTROL_ZAP_H

#include <stdint.h>

#include "timing.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "trove"

/* The instance id a Z85 public key may speak for, or NULL to refuse it. */
typedef const char *(*zap_lookup_fn)(void *ctx, const char *public_z85);

struct zap {
    void *socket;                 /* ZMQ_REP bound to ZAP_ENDPOINT */
    zap_lookup_fn lookup;
    void *lookup_ctx;
    struct log_limit refusals;    /* warnings about refused handshakes */
};

/* Create the REP socket and bind it. Must run before the agent ROUTER binds,
 * or libzmq admits every client that knows the server key. 0 or -1. */
int zap_start(struct zap *z, void *zmq_context, zap_lookup_fn lookup, void *lookup_ctx);
/* Answer one request waiting on z->socket (call when it polls readable). */
void zap_handle(struct zap *z);
void zap_stop(struct zap *z);

#endif
