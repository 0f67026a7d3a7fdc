/*
 * core.h - the control plane's transport-neutral entry. Every door (the
 * client socket, the REST API, modules that need an agent to do something)
 * submits a request here and gets exactly one reply through a callback.
 * Agent operations of the catalogue (common/ops.h) go to the instance's
 * agent through rpc; control operations go to the handler a module
 * registered for them. Everything runs on the loop thread.
 */
#ifndef TROVE_CONTROL_CORE_H
#define TROVE_CONTROL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trove_plugin.h"

struct tv;
struct control_core;
struct rpc;
struct tasks;
struct agents;

/*
 * The reply: status is an enum trove_status; message is "" on success and a
 * one-line reason otherwise; result is the result map on success (borrowed
 * for the call, may be NULL). For a long operation the result is
 * {task: <id>, state: "running"} and the outcome follows as events.
 * Runs exactly once, on the loop thread, possibly before control_submit
 * returns.
 */
typedef void (*control_reply_fn)(void *user, int status, const char *message, const struct tv *result);

/*
 * Task events for a request whose reply named a task (see
 * control_result_is_task): the whole event message ({id, event,
 * percent/message, or ok/result/error}), borrowed for the call. last is
 * true for the task.done (a real one, or one the control plane made when
 * the task failed without an outcome: deadline, lost agent, shutdown);
 * nothing follows it. Same user pointer as the reply.
 */
typedef void (*control_event_fn)(void *user, const struct tv *event, bool last);

struct control_request {
    const char *tenant;        /* NULL: the operator (client socket, internal): every instance */
    bool admin;                /* the tenant holds the admin role */
    const char *instance;      /* the instance an agent op goes to; may be NULL for control ops */
    const char *op;            /* a name from the catalogue */
    const struct tv *args;     /* a map or NULL; borrowed for the call */
    int64_t timeout_ms;        /* 0: the configured request timeout */
    /* Optional. */
    const char *id;            /* request id, 1-64 bytes (idempotency key); NULL: the core makes one */
    control_event_fn on_event; /* NULL: the caller does not follow task events */
    const char *task;          /* the running task this request is a step of: exempt from the
                                  one-task-per-instance rule (NULL: none) */
};

/* Ids the core makes: 32 hex digits. */
#define CONTROL_ID_MAX 64

/*
 * Submit a request. The reply callback runs exactly once (unless this
 * returns -1). Failures that are the request's own (unknown op, bad args,
 * instance not connected or not the tenant's) come through the reply as a
 * status, not as -1. Returns 0, or -1 only when reply is NULL or the core
 * is shutting down (nothing is called then).
 *
 * Routing: a control op of the catalogue goes to its registered handler
 * (args checked against its schema first). Any other op needs an instance
 * and goes to that instance's agent, which checks the arguments (an op the
 * catalogue does not know is forwarded too for the operator, tenant NULL,
 * so a newer agent stays reachable; a tenant may only use catalogue ops).
 * A long agent op is refused with TROVE_ECONFLICT while another task runs
 * on the instance, unless req->task names that task.
 */
int control_submit(struct control_core *core, const struct control_request *req, control_reply_fn reply,
                   void *user);

/* True if a successful reply's result names a running task ({task, state}). */
bool control_result_is_task(const struct tv *result);

/*
 * A control operation's handler. It must arrange for reply(user, ...) to run
 * exactly once, now or later on the loop thread; req and its strings are
 * borrowed for the call only. args were checked against the catalogue's
 * schema (unless the op has OPEN_ARGS). A handler that starts a task
 * replies {task, state: "running"} (tasks_begin) and, if req->on_event is
 * set, passes it and user to tasks_watch.
 */
typedef void (*core_handler_fn)(void *ctx, struct control_core *core, const struct control_request *req,
                                control_reply_fn reply, void *user);

/* Register the handler for a control op. -1 if op is not a control op of
 * the catalogue, already has a handler, or memory runs out. */
int core_register(struct control_core *core, const char *op, core_handler_fn fn, void *ctx);

/*
 * Who may reach which instance. Called for every request naming an
 * instance when the tenant is not NULL: TROVE_OK, or a status (TROVE_ENOTFOUND
 * for an instance of another tenant, never a hint that it exists) with a
 * message in err. Without one, the registry decides (a tenant reaches its
 * own live instances, an admin every live one); without a registry either,
 * every instance is reachable.
 */
typedef int (*core_access_fn)(void *ctx, const char *tenant, bool admin, const char *instance, char *err,
                              size_t errlen);
void core_set_access(struct control_core *core, core_access_fn fn, void *ctx);

struct core_config {
    struct rpc *rpc;                  /* the agent socket (or later, core_set_rpc) */
    struct tasks *tasks;              /* requests in flight and tasks */
    struct agents *agents;            /* who is connected */
    struct registry *registry;        /* whose instance is whose; may be NULL */
    int64_t request_timeout_ms;       /* default for timeout_ms 0 */
};

/* NULL on no memory. The core borrows everything in cfg. */
struct control_core *core_new(const struct core_config *cfg);
/* rpc's messages reach the core through the conductor, so the core exists
 * before rpc opens: hand it rpc here, before the loop runs. */
void core_set_rpc(struct control_core *core, struct rpc *rpc);
/* Answer `cancelled` to every request still waiting, then refuse new ones. */
void core_shutdown(struct control_core *core);
void core_free(struct control_core *core);

/*
 * An authenticated message from an agent that is a reply or an event
 * (rpc has checked its envelope and identity): matched to the request or
 * task it answers. A task.done is acknowledged to the agent once recorded.
 */
void core_agent_message(struct control_core *core, const char *instance, const struct tv *msg);

#endif
