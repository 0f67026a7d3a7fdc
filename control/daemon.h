/*
 * daemon.h - the trove-control daemon's one context and the pieces of its
 * loop: daemon.c owns sockets and the loop, conductor.c agent hello /
 * heartbeat / bye, broker.c routing of requests, replies and task events,
 * ops.c the control.* operations. Single-threaded: everything here runs on
 * the loop thread.
 */
#ifndef TROVE_CONTROL_DAEMON_H
#define TROVE_CONTROL_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents.h"
#include "allowlist.h"
#include "config.h"
#include "table.h"
#include "timing.h"
#include "trove_plugin.h"
#include "value.h"
#include "zap.h"

#define TASK_CACHE_SIZE 1024
#define TASK_CACHE_TTL_MS (3600 * 1000)
#define TASK_ROUTE_TTL_MS (24 * 3600 * 1000)
#define ROUTING_ID_MAX 255

/* Finished tasks, for control.task: the last TASK_CACHE_SIZE, for an hour. */
struct task_cache {
    struct table *by_id;             /* task id -> struct done_task */
    char *ring[TASK_CACHE_SIZE];     /* ids in insertion order, for eviction */
    size_t next;
};

struct control {
    const struct control_config *cfg;
    void *zmq_context;
    void *agents;                    /* ROUTER for agents (CURVE server unless plain text) */
    void *clients;                   /* ROUTER for trovectl / libtrove-control */
    struct zap zap;
    struct allowlist *allow;         /* NULL in plain-text mode */
    struct agents *agent_table;      /* agents heard from (in memory) */
    struct table *pending;           /* instance \0 id -> struct pending (awaiting an agent reply) */
    struct table *routes;            /* instance \0 id -> struct task_route (running tasks) */
    struct task_cache done;
    bool curve;
    int64_t next_deadline_ms;        /* earliest pending deadline (or a later bound) */
    int64_t next_housekeeping_ms;
    struct log_limit agent_warnings; /* about dropped agent traffic */
};

/* Run the daemon until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const struct control_config *cfg);

/* Send [routing id][frame] without blocking. 0, or -1 with errno. */
int send_frame(void *socket, const void *rid, size_t rid_len, const void *frame, size_t len);
/* Encode and send a message; 0 or -1. */
int send_message(void *socket, const void *rid, size_t rid_len, const struct tv *msg);
/* Answer a client with an error reply. */
void reply_error(struct control *c, const void *rid, size_t rid_len, const char *id, int status,
                 const char *fmt, ...) TROVE_PRINTF(6, 7);
/* A warning about agent traffic, at most a few per window. */
void warn_agent_traffic(struct control *c, const char *fmt, ...) TROVE_PRINTF(2, 3);

/* conductor.c: hello, heartbeat and bye from an authenticated agent. */
void conductor_hello(struct control *c, const char *instance, const struct tv *msg);
void conductor_heartbeat(struct control *c, const char *instance, const struct tv *msg);
void conductor_bye(struct control *c, const char *instance);

/* broker.c */
/* Route a checked client request to its agent (the frame goes unchanged). */
void broker_forward(struct control *c, const void *rid, size_t rid_len, const char *instance, const char *id,
                    const char *op, int64_t timeout_ms, const void *frame, size_t frame_len);
void broker_agent_reply(struct control *c, const char *instance, const struct tv *msg, const void *frame,
                        size_t frame_len);
/* Takes ownership of msg. */
void broker_agent_event(struct control *c, const char *instance, struct tv *msg, const void *frame,
                        size_t frame_len);
/* Answer `timeout` for pending requests whose deadline passed. */
void broker_expire(struct control *c, int64_t now);
/* Answer `cancelled` to every pending request (shutdown). */
void broker_cancel_all(struct control *c);
/* Forget task routes older than TASK_ROUTE_TTL_MS and expired finished tasks. */
void broker_housekeeping(struct control *c, int64_t now);
int task_cache_init(struct task_cache *tc);
void task_cache_free(struct task_cache *tc);
/* The task.done event of a finished task (NULL if unknown or expired). */
const struct tv *task_cache_get(struct task_cache *tc, const char *id, int64_t now, const char **instance);
/* True if a task with this id is known to be running (optionally on instance). */
bool broker_task_running(struct control *c, const char *id, char *instance, size_t instance_cap);

/* ops.c: control.* operations asked by a client. */
void ops_handle(struct control *c, const void *rid, size_t rid_len, const struct tv *msg);

#endif
