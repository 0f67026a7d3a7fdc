/*
 * agents.h - the agents this control plane has heard from: their hello
 * (plugin, ABI, capabilities), their last heartbeat (state, role, position)
 * and when they were last alive. In memory only; it owns copies of the
 * messages it keeps and never touches sockets.
 */
#ifndef TROVE_CONTROL_AGENTS_H
#define TROVE_CONTROL_AGENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "allowlist.h"
#include "value.h"

#define AGENTS_DEFAULT_HEARTBEAT_MS 5000
#define AGENTS_MISSED_HEARTBEATS 3   /* default: stale after this many intervals without one */

struct agent {
    char instance[INSTANCE_ID_MAX + 1];
    bool gone;                  /* said bye, became unroutable, or its id was taken over */
    int64_t last_alive_ms;      /* last hello or heartbeat (monotonic clock) */
    int64_t last_heartbeat_ms;  /* 0 = none yet */
    int64_t heartbeat_ms;       /* the agent's announced interval */
    int missed_limit;           /* intervals without a heartbeat before it counts as disconnected */
    struct tv *hello;           /* last hello message, or NULL */
    struct tv *heartbeat;       /* last heartbeat message, or NULL */
};

struct agents;

struct agents *agents_new(void);
void agents_free(struct agents *r);
/* How many heartbeat intervals an agent may miss before it counts as
 * disconnected (1-1000; default AGENTS_MISSED_HEARTBEATS), for agents
 * heard from after this call. */
void agents_set_missed_limit(struct agents *r, int missed);
/* Call fn for every agent (fn must not add or remove agents). */
void agents_each(struct agents *r, void (*fn)(void *ctx, struct agent *a), void *ctx);
/* The agent, or NULL if never heard from. */
struct agent *agents_get(struct agents *r, const char *instance);
/* Get or create the agent and mark it alive at `now`. NULL on no memory. */
struct agent *agents_alive(struct agents *r, const char *instance, int64_t now);

/* Connected: alive within missed_limit intervals and not gone.
 * Requests are routed only to connected agents. */
bool agent_connected(const struct agent *a, int64_t now);

/* {instance, connected, plugin, abi, agent_version, capabilities, features,
 *  heartbeat_ms, seq, state, role, term, position, message, task,
 *  last_heartbeat_ms_ago}; NULL on no memory. */
struct tv *agent_describe(const struct agent *a, int64_t now);
/* An array of agent_describe() maps sorted by instance id; NULL on no memory. */
struct tv *agents_describe(const struct agents *r, int64_t now);

#endif
