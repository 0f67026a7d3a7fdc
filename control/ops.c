/*
 * ops.c - the operations the control plane answers itself (control.*):
 * ping, the instance list, one instance, and the outcome of a task.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "wire.h"

static void reply_ok(struct control *c, const void *rid, size_t rid_len, const char *id, struct tv *result)
{
    struct tv *reply = result ? wire_reply_ok(id, result) : NULL;
    if (!reply || send_message(c->clients, rid, rid_len, reply) != 0)
        log_debug("could not answer control request %s", id);
    tv_free(reply);
}

/* {key: value}; takes value, NULL (value freed) on no memory. */
static struct tv *wrap(const char *key, struct tv *value)
{
    struct tv *map = value ? tv_map() : NULL;
    if (!map) {
        tv_free(value);
        return NULL;
    }
    if (tv_set(map, key, value) != 0) {
        tv_free(map);
        return NULL;
    }
    return map;
}

static struct tv *op_ping(struct control *c, const struct tv *args, char *err, size_t errlen, int *status)
{
    (void)c, (void)args, (void)err, (void)errlen, (void)status;
    return wrap("pong", tv_bool(true));
}

static struct tv *op_instances(struct control *c, const struct tv *args, char *err, size_t errlen, int *status)
{
    (void)args, (void)err, (void)errlen, (void)status;
    return wrap("instances", agents_describe(c->agent_table, monotonic_ms()));
}

static struct tv *op_instance(struct control *c, const struct tv *args, char *err, size_t errlen, int *status)
{
    const char *instance = tv_get_str(args, "instance");
    if (!instance) {
        *status = TROVE_EINVAL;
        snprintf(err, errlen, "args.instance (string) is required");
        return NULL;
    }
    struct agent *a = agents_get(c->agent_table, instance);
    if (!a) {
        *status = TROVE_ENOTFOUND;
        snprintf(err, errlen, "no agent for instance %.64s has connected", instance);
        return NULL;
    }
    return wrap("instance", agent_describe(a, monotonic_ms()));
}

static struct tv *op_task(struct control *c, const struct tv *args, char *err, size_t errlen, int *status)
{
    const char *id = tv_get_str(args, "id");
    if (!id) {
        *status = TROVE_EINVAL;
        snprintf(err, errlen, "args.id (string) is required");
        return NULL;
    }
    const char *instance = NULL;
    const struct tv *done = task_cache_get(&c->done, id, monotonic_ms(), &instance);
    if (done)
        return tv_copy(done);
    char running_on[INSTANCE_ID_MAX + 1];
    if (broker_task_running(c, id, running_on, sizeof running_on)) {
        struct tv *r = tv_map();
        if (r && (tv_set_str(r, "id", id) | tv_set_str(r, "instance", running_on) |
                  tv_set_str(r, "state", "running")) != 0) {
            tv_free(r);
            return NULL;
        }
        return r;
    }
    *status = TROVE_ENOTFOUND;
    snprintf(err, errlen, "no task %.64s is known (finished tasks are kept for an hour)", id);
    return NULL;
}

static const struct {
    const char *name;
    struct tv *(*run)(struct control *c, const struct tv *args, char *err, size_t errlen, int *status);
} control_ops[] = {
    {"control.ping", op_ping},
    {"control.instances", op_instances},
    {"control.instance", op_instance},
    {"control.task", op_task},
};

void ops_handle(struct control *c, const void *rid, size_t rid_len, const struct tv *msg)
{
    const char *id = tv_get_str(msg, "id");
    const char *op = tv_get_str(msg, "op");
    const struct tv *args = tv_get(msg, "args");
    struct tv *empty = NULL;

    if (!args)
        args = empty = tv_map();
    for (size_t i = 0; args && i < sizeof control_ops / sizeof control_ops[0]; i++) {
        if (strcmp(op, control_ops[i].name) != 0)
            continue;
        char err[200] = "";
        int status = TROVE_EINTERNAL;
        struct tv *result = control_ops[i].run(c, args, err, sizeof err, &status);
        if (result)
            reply_ok(c, rid, rid_len, id, result);
        else
            reply_error(c, rid, rid_len, id, status, "%s", err[0] ? err : "out of memory");
        tv_free(empty);
        return;
    }
    if (args)
        reply_error(c, rid, rid_len, id, TROVE_ENOTFOUND, "unknown control operation %.64s", op);
    else
        reply_error(c, rid, rid_len, id, TROVE_EINTERNAL, "out of memory");
    tv_free(empty);
}
