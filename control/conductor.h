/*
 * conductor.h - what agents say about themselves and their work: hello,
 * heartbeats and bye update the agents table (and, with a registry, the
 * instance's status under Trove's names: ACTIVE, SHUTDOWN when the engine
 * is down, BACKUP, ERROR when the agent goes silent for heartbeat_miss
 * intervals, with the reason); replies and task events go on to the core.
 * A heartbeat not newer than the last one applied, by (epoch, seq), is
 * ignored. At hello it reconciles the tasks the control plane believes run
 * on the instance with the ones the agent reports. Loop thread only.
 */
#ifndef TROVE_CONTROL_CONDUCTOR_H
#define TROVE_CONTROL_CONDUCTOR_H

#include <stdint.h>

struct agents;
struct control_core;
struct loop;
struct registry;
struct tasks;
struct tv;
struct conductor;

struct conductor_config {
    struct agents *agents;
    struct tasks *tasks;
    struct control_core *core;
    struct loop *loop;
    struct registry *registry;    /* NULL: no instance statuses are written */
    int heartbeat_miss;           /* intervals without a heartbeat before an agent counts as silent */
    int64_t agent_heartbeat_ms;   /* the interval of agents this control plane starts (startup grace) */
};

/* NULL on no memory. Borrows everything in cfg. */
struct conductor *conductor_new(const struct conductor_config *cfg);
void conductor_free(struct conductor *c);

/* Every checked message from an authenticated agent (rpc_message_fn). */
void conductor_message(void *conductor, const char *instance, const struct tv *msg);
/* An instance's routing id became unreachable or was claimed by another
 * key (rpc_lost_fn): it counts as disconnected until its agent speaks. */
void conductor_lost(void *conductor, const char *instance);

#endif
