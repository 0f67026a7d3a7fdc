/*
 * core.c - control_submit: checks a request once for every door, then
 * hands a control op to its registered handler or sends an agent op to the
 * instance's agent and leaves the waiting to tasks. Replies and events from
 * agents come back through core_agent_message. No sockets of its own.
 */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agents.h"
#include "allowlist.h"
#include "log.h"
#include "ops.h"
#include "registry.h"
#include "rpc.h"
#include "status.h"
#include "tasks.h"
#include "timing.h"
#include "value.h"
#include "wire.h"

#define REQUEST_TIMEOUT_MAX_MS 86400000L

struct handler {
    core_handler_fn fn;
    void *ctx;
};

struct control_core {
    struct core_config cfg;
    struct handler handlers[OPS_COUNT];   /* by enum ops_id; control ops only */
    core_access_fn access;
    void *access_ctx;
    bool shutting_down;
};

struct control_core *core_new(const struct core_config *cfg)
{
    struct control_core *core = calloc(1, sizeof *core);
    if (core)
        core->cfg = *cfg;
    return core;
}

void core_set_rpc(struct control_core *core, struct rpc *rpc)
{
    core->cfg.rpc = rpc;
}

void core_shutdown(struct control_core *core)
{
    if (core->shutting_down)
        return;
    core->shutting_down = true;
    tasks_cancel_pending(core->cfg.tasks, "the control plane is shutting down");
}

void core_free(struct control_core *core)
{
    free(core);
}

int core_register(struct control_core *core, const char *op, core_handler_fn fn, void *ctx)
{
    const struct ops_def *def = ops_find(op);
    if (!def || def->scope != OPS_SCOPE_CONTROL || !fn) {
        log_error("cannot register a handler for %s: not a control operation of the catalogue", op ? op : "?");
        return -1;
    }
    struct handler *h = &core->handlers[ops_id_of(def)];
    if (h->fn) {
        log_error("operation %s already has a handler", op);
        return -1;
    }
    *h = (struct handler){fn, ctx};
    return 0;
}

void core_set_access(struct control_core *core, core_access_fn fn, void *ctx)
{
    core->access = fn;
    core->access_ctx = ctx;
}

bool control_result_is_task(const struct tv *result)
{
    return result && tv_get_str(result, "task") && tv_get_str(result, "state") &&
           strcmp(tv_get_str(result, "state"), "running") == 0;
}

/* ------------------------------------------------------------ helpers */

static void fail(control_reply_fn reply, void *user, int status, const char *fmt, ...) TROVE_PRINTF(4, 5);

static void fail(control_reply_fn reply, void *user, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    reply(user, status, message, NULL);
}

static bool id_is_usable(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n >= 1 && n <= CONTROL_ID_MAX;
}

static int make_id(char out[33])
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0)
            got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* Whether the request's tenant may reach its instance: TROVE_OK or a status. */
static int check_access(struct control_core *core, const struct control_request *req, char *err, size_t errlen)
{
    if (!req->tenant || !req->instance)
        return TROVE_OK;
    if (core->access)
        return core->access(core->access_ctx, req->tenant, req->admin, req->instance, err, errlen);
    if (!core->cfg.registry)
        return TROVE_OK;
    struct registry_instance in = {0};
    char why[256];
    int rc = registry_instance_get(core->cfg.registry, req->admin ? NULL : req->tenant, req->instance, &in, why,
                                   sizeof why);
    registry_instance_clear(&in);
    if (rc == TROVE_ENOTFOUND)
        snprintf(err, errlen, "no instance %.64s", req->instance);
    else if (rc != TROVE_OK)
        snprintf(err, errlen, "%s", why);
    return rc;
}

/* ------------------------------------------------------------ routes */

static void run_control_op(struct control_core *core, const struct ops_def *def, const struct control_request *req,
                           control_reply_fn reply, void *user)
{
    char err[256] = "";
    struct handler *h = &core->handlers[ops_id_of(def)];
    if (!h->fn) {
        fail(reply, user, TROVE_ENOTSUP, "operation %s is not available on this control plane", def->name);
        return;
    }
    if (ops_check_args(def, req->args, err, sizeof err) != 0) {
        fail(reply, user, TROVE_EINVAL, "%s", err);
        return;
    }
    int status = check_access(core, req, err, sizeof err);
    if (status != TROVE_OK) {
        fail(reply, user, status, "%s", err[0] ? err : status_name(status));
        return;
    }
    h->fn(h->ctx, core, req, reply, user);
}

static struct tv *agent_request(const char *id, const struct control_request *req, int64_t timeout_ms)
{
    struct tv *args = req->args ? tv_copy(req->args) : NULL;
    if (req->args && !args)
        return NULL;
    struct tv *msg = wire_request(id, req->op, args);
    if (msg && tv_set_int(msg, "timeout_ms", timeout_ms) != 0) {
        tv_free(msg);
        return NULL;
    }
    return msg;
}

static void send_to_agent(struct control_core *core, const struct ops_def *def, const struct control_request *req,
                          const char *id, control_reply_fn reply, void *user)
{
    char err[256] = "";
    const char *instance = req->instance;
    int64_t timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : core->cfg.request_timeout_ms;
    if (timeout_ms > REQUEST_TIMEOUT_MAX_MS)
        timeout_ms = REQUEST_TIMEOUT_MAX_MS;

    int status = check_access(core, req, err, sizeof err);
    if (status != TROVE_OK) {
        fail(reply, user, status, "%s", err[0] ? err : status_name(status));
        return;
    }
    struct agent *a = agents_get(core->cfg.agents, instance);
    if (!a || !agent_connected(a, monotonic_ms())) {
        fail(reply, user, TROVE_EUNAVAIL, "instance %s is not connected", instance);
        return;
    }
    const char *holder = def && def->is_long ? tasks_running_on(core->cfg.tasks, instance) : NULL;
    if (holder && (!req->task || strcmp(req->task, holder) != 0)) {
        fail(reply, user, TROVE_ECONFLICT, "instance %s is busy with task %s; one action at a time", instance,
             holder);
        return;
    }
    struct tv *msg = agent_request(id, req, timeout_ms);
    if (!msg || tasks_pending_add(core->cfg.tasks, instance, id, req->op, req->tenant, req->task, timeout_ms, reply,
                                  req->on_event, user) != 0) {
        tv_free(msg);
        fail(reply, user, TROVE_EINTERNAL, "out of memory");
        return;
    }
    if (!core->cfg.rpc || rpc_send(core->cfg.rpc, instance, msg) != 0) {
        int e = core->cfg.rpc ? errno : EHOSTUNREACH;
        tasks_pending_drop(core->cfg.tasks, instance, id, user);
        if (e == EHOSTUNREACH)
            fail(reply, user, TROVE_EUNAVAIL, "instance %s is not connected", instance);
        else
            fail(reply, user, TROVE_EUNAVAIL, "instance %s is not accepting requests: %s", instance, strerror(e));
    } else {
        log_debug("request %s %s -> %s", id, req->op, instance);
    }
    tv_free(msg);
}

int control_submit(struct control_core *core, const struct control_request *req, control_reply_fn reply,
                   void *user)
{
    if (!reply || core->shutting_down)
        return -1;
    if (!req || !req->op || !*req->op || strlen(req->op) > 64) {
        fail(reply, user, TROVE_EINVAL, "a request needs an op of 1-64 bytes");
        return 0;
    }
    char made[33];
    const char *id = req->id;
    if (id && !id_is_usable(id)) {
        fail(reply, user, TROVE_EINVAL, "id must be 1-%d bytes without NUL", CONTROL_ID_MAX);
        return 0;
    }
    if (!id) {
        if (make_id(made) != 0) {
            fail(reply, user, TROVE_EINTERNAL, "no randomness for a request id");
            return 0;
        }
        id = made;
    }
    if (req->args && req->args->type != TV_MAP) {
        fail(reply, user, TROVE_EINVAL, "args must be a map, not %s", tv_type_name(req->args->type));
        return 0;
    }
    const struct ops_def *def = ops_find(req->op);
    if (def && def->scope == OPS_SCOPE_CONTROL) {
        run_control_op(core, def, req, reply, user);
    } else if (!def && strncmp(req->op, "control.", 8) == 0) {
        fail(reply, user, TROVE_ENOTFOUND, "unknown control operation %.64s", req->op);
    } else if (!def && req->tenant) {
        fail(reply, user, TROVE_ENOTFOUND, "unknown operation %.64s", req->op);
    } else if (!req->instance) {
        fail(reply, user, TROVE_EINVAL, "operation %.64s needs an instance", req->op);
    } else if (!instance_id_is_valid(req->instance, strlen(req->instance))) {
        fail(reply, user, TROVE_EINVAL, "instance must be 1-%d printable characters", INSTANCE_ID_MAX);
    } else {
        send_to_agent(core, def, req, id, reply, user);
    }
    return 0;
}

/* ------------------------------------------------------------ from agents */

static void acknowledge(struct control_core *core, const char *instance, const char *id)
{
    struct tv *ack = tv_map();
    if (!ack || (tv_set_int(ack, "v", WIRE_PROTOCOL_VERSION) | tv_set_str(ack, "type", "ack") |
                 tv_set_str(ack, "id", id)) != 0 ||
        rpc_send(core->cfg.rpc, instance, ack) != 0)
        log_debug("could not acknowledge task %s to %s (it will send the outcome again)", id, instance);
    tv_free(ack);
}

void core_agent_message(struct control_core *core, const char *instance, const struct tv *msg)
{
    const char *type = tv_get_str(msg, "type");
    if (type && strcmp(type, "reply") == 0) {
        tasks_agent_reply(core->cfg.tasks, instance, msg);
        return;
    }
    const char *event = tv_get_str(msg, "event");
    if (!type || strcmp(type, "event") != 0 || !event ||
        (strcmp(event, "task.progress") != 0 && strcmp(event, "task.done") != 0)) {
        log_debug("dropped a message from %s: an event must be task.progress or task.done", instance);
        return;
    }
    if (tasks_agent_event(core->cfg.tasks, instance, msg))
        acknowledge(core, instance, tv_get_str(msg, "id"));
}
