/*
 * control_ops.c - control.ping, control.instances, control.instance,
 * control.task and control.tasks: answers from the agents table and the
 * tasks, never from an agent.
 */
#include "control_ops.h"

#include <stdio.h>
#include <string.h>

#include "agents.h"
#include "core.h"
#include "log.h"
#include "tasks.h"
#include "timing.h"
#include "value.h"

/* Reply with {key: value}; takes value. */
static void reply_wrapped(control_reply_fn reply, void *user, const char *key, struct tv *value)
{
    struct tv *map = value ? tv_map() : NULL;
    if (!map || tv_set(map, key, value) != 0) {
        if (!map)
            tv_free(value);
        tv_free(map);
        reply(user, TROVE_EINTERNAL, "out of memory", NULL);
        return;
    }
    reply(user, TROVE_OK, "", map);
    tv_free(map);
}

static void op_ping(void *ctx, struct control_core *core, const struct control_request *req,
                    control_reply_fn reply, void *user)
{
    (void)ctx, (void)core, (void)req;
    reply_wrapped(reply, user, "pong", tv_bool(true));
}

static void op_instances(void *ctx, struct control_core *core, const struct control_request *req,
                         control_reply_fn reply, void *user)
{
    struct control_ops *ops = ctx;
    (void)core, (void)req;
    reply_wrapped(reply, user, "instances", agents_describe(ops->agents, monotonic_ms()));
}

static void op_instance(void *ctx, struct control_core *core, const struct control_request *req,
                        control_reply_fn reply, void *user)
{
    struct control_ops *ops = ctx;
    (void)core;
    const char *instance = tv_get_str(req->args, "instance");
    struct agent *a = agents_get(ops->agents, instance);
    if (!a) {
        char message[160];
        snprintf(message, sizeof message, "no agent for instance %.64s has connected", instance);
        reply(user, TROVE_ENOTFOUND, message, NULL);
        return;
    }
    reply_wrapped(reply, user, "instance", agent_describe(a, monotonic_ms()));
}

/* A task the request's tenant may see (the operator sees all). */
static struct tv *visible_task(struct control_ops *ops, const struct control_request *req, const char *id)
{
    struct tv *d = tasks_describe(ops->tasks, id);
    const char *tenant = tv_get_str(d, "tenant");
    if (d && req->tenant && !req->admin && (!tenant || strcmp(tenant, req->tenant) != 0)) {
        tv_free(d);
        return NULL;
    }
    return d;
}

static void op_task(void *ctx, struct control_core *core, const struct control_request *req,
                    control_reply_fn reply, void *user)
{
    struct control_ops *ops = ctx;
    (void)core;
    const char *id = tv_get_str(req->args, "id");
    struct tv *d = visible_task(ops, req, id);
    if (!d) {
        char message[200];
        snprintf(message, sizeof message, "no task %.64s is known (finished tasks are kept for an hour)", id);
        reply(user, TROVE_ENOTFOUND, message, NULL);
        return;
    }
    /* A finished task answers with its task.done event, plus its state and instance. */
    struct tv *done = tasks_done_event(ops->tasks, id);
    struct tv *result = d;
    if (done && (tv_set_str(done, "state", tv_get_str(d, "state")) |
                 tv_set_str(done, "instance", tv_get_str(d, "instance"))) == 0) {
        result = done;
        done = NULL;
    }
    reply(user, TROVE_OK, "", result);
    tv_free(done);
    tv_free(result == d ? NULL : result);
    tv_free(d);
}

static void op_tasks(void *ctx, struct control_core *core, const struct control_request *req,
                     control_reply_fn reply, void *user)
{
    struct control_ops *ops = ctx;
    (void)core;
    struct tv *all = tasks_list(ops->tasks, tv_get_str(req->args, "instance"));
    struct tv *shown = all ? tv_array() : NULL;
    for (size_t i = 0; shown && i < all->u.a.len; i++) {
        const struct tv *t = all->u.a.items[i];
        const char *tenant = tv_get_str(t, "tenant");
        if (req->tenant && !req->admin && (!tenant || strcmp(tenant, req->tenant) != 0))
            continue;
        if (tv_append(shown, tv_copy(t)) != 0) {
            tv_free(shown);
            shown = NULL;
        }
    }
    tv_free(all);
    reply_wrapped(reply, user, "tasks", shown);
}

int control_ops_register(struct control_core *core, struct control_ops *ops)
{
    static const struct {
        const char *name;
        core_handler_fn fn;
    } handlers[] = {
        {"control.ping", op_ping},     {"control.instances", op_instances}, {"control.instance", op_instance},
        {"control.task", op_task},     {"control.tasks", op_tasks},
    };
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (core_register(core, handlers[i].name, handlers[i].fn, ops) != 0)
            return -1;
    return 0;
}
