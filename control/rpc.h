/*
 * rpc.h - the agent side of trove-control's wire: the ROUTER agents connect
 * to (CURVE server unless plain text), the ZAP handler that admits agent
 * keys (from the allow-list file and admitted at run time), and the
 * per-message User-Id check. It hands checked messages to a callback and
 * sends frames to agents; what the messages mean is the conductor's and
 * the core's business.
 */
#ifndef TROVE_CONTROL_RPC_H
#define TROVE_CONTROL_RPC_H

#include <stdbool.h>
#include <stddef.h>

#include "keys.h"

struct loop;
struct rpc;
struct tv;

/*
 * A message from an authenticated agent whose envelope was checked (and,
 * for replies and events, whose id is 1-64 bytes); msg is borrowed for the
 * call.
 */
typedef void (*rpc_message_fn)(void *ctx, const char *instance, const struct tv *msg);
/* An agent's routing id became unreachable or was claimed by another key. */
typedef void (*rpc_lost_fn)(void *ctx, const char *instance);

struct rpc_config {
    void *zmq_context;
    struct loop *loop;
    const char *endpoint;              /* agent_endpoint */
    bool curve;                        /* false: plain text (loopback development only) */
    const char *server_key_file;       /* curve only */
    const char *allowed_agents_file;   /* curve only; may be NULL: only run-time admitted keys */
    rpc_message_fn on_message;
    rpc_lost_fn on_lost;
    void *ctx;
};

/* Bind ZAP, then the ROUTER. NULL with a reason in err. */
struct rpc *rpc_open(const struct rpc_config *cfg, char *err, size_t errlen);
void rpc_close(struct rpc *r);

/*
 * Admit an agent key at run time (no restart): the key may speak for
 * instance from its next handshake on. A key already admitted for another
 * instance is refused (-1, reason in err); admitting the same pair again is
 * a no-op. Keys from the allow-list file and admitted keys are both
 * honoured; admitted ones live in memory (the caller keeps them, e.g. in the
 * registry, and admits them again after a restart).
 */
int rpc_admit(struct rpc *r, const char *instance, const char *public_z85, char *err, size_t errlen);
/* Revoke every run-time admitted key of an instance: its next handshake is
 * refused, and messages on a connection it already has are dropped from now
 * on. */
void rpc_revoke(struct rpc *r, const char *instance);

/* Send one message to an agent without blocking. 0, or -1 with errno
 * (EHOSTUNREACH: not connected; EAGAIN: its queue is full). */
int rpc_send(struct rpc *r, const char *instance, const struct tv *msg);

#endif
