/*
 * instances_driver.c - a test program that runs the instance lifecycle
 * (control/instances.h) with the modules it needs, wired as trove-control
 * wires them: the loop, rpc (CURVE, keys admitted at run time), the
 * conductor, the core, tasks, a SQLite registry and the local provisioner.
 * test_instances.py drives it with one JSON request per line on stdin and
 * reads one JSON line per reply or task event on stdout. Not installed.
 *
 *   instances_driver --state-dir D --instances-dir I --agent-binary B --plugin-dir P
 *                    --agent-endpoint tcp://127.0.0.1:PORT [--tenant T] [--flavor ID:RAM_MB]...
 *
 * Requests: {"tag": any, "op": "instance.create", "instance": ID, "tenant": T, "args": {...}}
 * go through control_submit; the driver answers "show" (the registry row),
 * "versions" (datastore versions), "dump" (the registry dump) and "task"
 * ({"id": TASK}: tasks_describe) itself. Tasks are kept in the registry, so
 * a driver killed and started again resumes them.
 * Output: {"tag", "type": "reply", "status", "message", "result"} and
 * {"tag", "type": "event", "last", "event"}; {"type": "ready", ...} once at start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agents.h"
#include "conductor.h"
#include "core.h"
#include "instances.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "provision.h"
#include "registry.h"
#include "rpc.h"
#include "status.h"
#include "tasks.h"
#include "value.h"

struct driver {
    const char *state_dir, *instances_dir, *agent_binary, *plugin_dir, *endpoint, *tenant;
    const char *flavors[8];
    size_t n_flavors;
    void *zmq;
    struct loop *loop;
    struct agents *agents;
    struct tasks *tasks;
    struct control_core *core;
    struct conductor *conductor;
    struct rpc *rpc;
    struct registry *registry;
    struct provision *provision;
    struct instances *instances;
    int signal_fd;
    char line[1 << 16];
    size_t line_len;
};

struct pending {
    struct tv *tag;
};

static void emit(struct tv *doc)
{
    char *text = doc ? tv_to_json(doc, false) : NULL;
    printf("%s\n", text ? text : "{\"type\": \"error\", \"message\": \"out of memory\"}");
    fflush(stdout);
    free(text);
    tv_free(doc);
}

static struct tv *with_tag(const struct tv *tag, const char *type)
{
    struct tv *doc = tv_map();
    if (doc && tag)
        tv_set(doc, "tag", tv_copy(tag));
    if (doc)
        tv_set_str(doc, "type", type);
    return doc;
}

static void on_reply(void *user, int status, const char *message, const struct tv *result)
{
    struct pending *p = user;
    struct tv *doc = with_tag(p->tag, "reply");
    tv_set_str(doc, "status", status_name(status));
    tv_set_str(doc, "message", message ? message : "");
    if (result)
        tv_set(doc, "result", tv_copy(result));
    emit(doc);
    if (status != TROVE_OK || !control_result_is_task(result)) {
        tv_free(p->tag);
        free(p);
    }
}

static void on_event(void *user, const struct tv *event, bool last)
{
    struct pending *p = user;
    struct tv *doc = with_tag(p->tag, "event");
    tv_set_bool(doc, "last", last);
    tv_set(doc, "event", tv_copy(event));
    emit(doc);
    if (last) {
        tv_free(p->tag);
        free(p);
    }
}

/* ------------------------------------------------------------ requests the driver answers */

static void answer_show(struct driver *d, const struct tv *req)
{
    struct registry_instance in = {0};
    char err[256] = "";
    const char *id = tv_get_str(req, "instance");
    struct tv *doc = with_tag(tv_get(req, "tag"), "reply");
    int rc = id ? registry_instance_get(d->registry, NULL, id, &in, err, sizeof err) : TROVE_EINVAL;
    tv_set_str(doc, "status", status_name(rc));
    tv_set_str(doc, "message", err);
    if (rc == TROVE_OK) {
        struct tv *r = tv_child_map(doc, "result");
        tv_set_str(r, "id", in.id);
        tv_set_str(r, "tenant", in.tenant_id);
        tv_set_str(r, "name", in.name);
        tv_set_str(r, "status", in.status);
        tv_set_str(r, "status_reason", in.status_reason);
        tv_set_str(r, "flavor", in.flavor_id);
        tv_set_int(r, "volume_size", in.volume_size_gb);
        tv_set_str(r, "volume_kind", in.volume_kind);
        tv_set_int(r, "engine_port", in.engine_port);
        tv_set_str(r, "agent_public_key", in.agent_public_key);
        tv_set_str(r, "task", in.task_id);
        tv_set_str(r, "provision", in.provision);
    }
    registry_instance_clear(&in);
    emit(doc);
}

static void answer_versions(struct driver *d, const struct tv *req)
{
    struct registry_datastore_version *v = NULL;
    struct registry_query q = {0};
    size_t n = 0;
    char err[256] = "";
    struct tv *doc = with_tag(tv_get(req, "tag"), "reply");
    int rc = registry_datastore_version_list(d->registry, &q, &v, &n, NULL, err, sizeof err);
    tv_set_str(doc, "status", status_name(rc));
    struct tv *list = tv_child_array(tv_child_map(doc, "result"), "versions");
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        struct tv *item = tv_map();
        tv_set_str(item, "id", v[i].id);
        tv_set_str(item, "datastore", v[i].datastore);
        tv_set_str(item, "name", v[i].name);
        tv_set_str(item, "plugin", v[i].plugin);
        tv_set_str(item, "engine", v[i].engine);
        tv_set_bool(item, "active", v[i].active);
        tv_append(list, item);
    }
    registry_datastore_versions_free(v, n);
    emit(doc);
}

static void answer_dump(struct driver *d, const struct tv *req)
{
    char *text = NULL, err[256] = "";
    struct tv *doc = with_tag(tv_get(req, "tag"), "reply");
    int rc = registry_dump_string(d->registry, &text, err, sizeof err);
    tv_set_str(doc, "status", status_name(rc));
    tv_set_str(tv_child_map(doc, "result"), "dump", text ? text : "");
    free(text);
    emit(doc);
}

static void answer_task(struct driver *d, const struct tv *req)
{
    const char *id = tv_get_str(req, "id");
    struct tv *doc = with_tag(tv_get(req, "tag"), "reply");
    struct tv *task = id ? tasks_describe(d->tasks, id) : NULL;
    tv_set_str(doc, "status", status_name(task ? TROVE_OK : TROVE_ENOTFOUND));
    if (task)
        tv_set(doc, "result", task);
    emit(doc);
}

static void handle_line(struct driver *d, const char *text)
{
    struct tv *req = NULL;
    char err[256];
    if (json_to_tv(text, &req, err, sizeof err) != 0 || !req || req->type != TV_MAP) {
        struct tv *doc = with_tag(NULL, "error");
        tv_set_str(doc, "message", err);
        emit(doc);
        tv_free(req);
        return;
    }
    const char *op = tv_get_str(req, "op");
    if (op && strcmp(op, "show") == 0)
        answer_show(d, req);
    else if (op && strcmp(op, "versions") == 0)
        answer_versions(d, req);
    else if (op && strcmp(op, "dump") == 0)
        answer_dump(d, req);
    else if (op && strcmp(op, "task") == 0)
        answer_task(d, req);
    else if (op && strcmp(op, "quit") == 0)
        loop_stop(d->loop);
    else {
        struct pending *p = calloc(1, sizeof *p);
        struct tv *tag = tv_get(req, "tag");
        p->tag = tag ? tv_copy(tag) : NULL;
        struct control_request cr = {
            .tenant = tv_get_str(req, "tenant"),
            .instance = tv_get_str(req, "instance"),
            .op = op,
            .args = tv_get(req, "args"),
            .on_event = on_event,
        };
        control_submit(d->core, &cr, on_reply, p);
    }
    tv_free(req);
}

static void on_stdin(void *ctx, short events)
{
    struct driver *d = ctx;
    (void)events;
    ssize_t n = read(0, d->line + d->line_len, sizeof d->line - 1 - d->line_len);
    if (n <= 0) {
        loop_remove_fd(d->loop, 0);
        loop_stop(d->loop);
        return;
    }
    d->line_len += (size_t)n;
    d->line[d->line_len] = '\0';
    char *start = d->line, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        if (*start)
            handle_line(d, start);
        start = nl + 1;
    }
    d->line_len = strlen(start);
    memmove(d->line, start, d->line_len + 1);
}

static void on_signal(void *ctx, short events)
{
    struct driver *d = ctx;
    struct signalfd_siginfo si;
    (void)events;
    if (read(d->signal_fd, &si, sizeof si) == (ssize_t)sizeof si)
        loop_stop(d->loop);
}

/* ------------------------------------------------------------ setup */

static int seed_registry(struct driver *d, char *err, size_t errlen)
{
    struct registry_tenant t = {0};
    snprintf(t.id, sizeof t.id, "%s", d->tenant);
    t.name = (char *)d->tenant;
    int rc = registry_tenant_create(d->registry, &t, err, errlen);
    for (size_t i = 0; (rc == TROVE_OK || rc == TROVE_EEXIST) && i < d->n_flavors; i++) {
        struct registry_flavor f = {0};
        char id[64];
        long ram = 0;
        if (sscanf(d->flavors[i], "%63[^:]:%ld", id, &ram) != 2) {
            err_set(err, errlen, "--flavor takes ID:RAM_MB");
            return TROVE_EINVAL;
        }
        snprintf(f.id, sizeof f.id, "%s", id);
        f.name = id;
        f.ram_mb = ram;
        f.vcpus = 1;
        rc = registry_flavor_create(d->registry, &f, err, errlen);
    }
    int added = 0;
    if (rc == TROVE_OK || rc == TROVE_EEXIST)   /* a restart finds them made */
        rc = instances_discover_versions(d->registry, d->plugin_dir, &added, err, errlen);
    return rc;
}

static int open_modules(struct driver *d, const char *key_name, const char *server_public, char *err,
                        size_t errlen)
{
    char key_file[700];
    snprintf(key_file, sizeof key_file, "%s.key", key_name);
    d->zmq = zmq_ctx_new();
    d->loop = loop_new();
    d->agents = agents_new();
    d->tasks = d->loop ? tasks_new(&(struct tasks_config){.loop = d->loop, .registry = d->registry}) : NULL;
    d->core = d->tasks ? core_new(&(struct core_config){.tasks = d->tasks, .agents = d->agents,
                                                         .request_timeout_ms = 30000})
                       : NULL;
    d->conductor = d->core ? conductor_new(&(struct conductor_config){.agents = d->agents, .tasks = d->tasks,
                                                                       .core = d->core, .loop = d->loop})
                           : NULL;
    if (!d->zmq || !d->agents || !d->conductor) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    struct provision_local_config pc = {.instances_dir = d->instances_dir, .agent_binary = d->agent_binary,
                                        .plugin_dir = d->plugin_dir};
    if (!(d->provision = provision_local_open(&pc, err, errlen)))
        return -1;
    struct instances_config ic = {.loop = d->loop, .core = d->core, .tasks = d->tasks, .registry = d->registry,
                                  .agents = d->agents, .provision = d->provision, .agent_endpoint = d->endpoint,
                                  .server_public_key = server_public, .heartbeat_ms = 500};
    if (!(d->instances = instances_new(&ic, err, errlen)))
        return -1;
    struct rpc_config rc = {.zmq_context = d->zmq, .loop = d->loop, .endpoint = d->endpoint, .curve = true,
                            .server_key_file = key_file, .on_message = conductor_message,
                            .on_lost = conductor_lost, .ctx = d->conductor};
    if (!(d->rpc = rpc_open(&rc, err, errlen)))
        return -1;
    core_set_rpc(d->core, d->rpc);
    instances_set_rpc(d->instances, d->rpc);
    return 0;
}

static void close_modules(struct driver *d)
{
    if (d->core)
        core_shutdown(d->core);
    instances_free(d->instances);
    rpc_close(d->rpc);
    conductor_free(d->conductor);
    core_free(d->core);
    tasks_free(d->tasks);
    agents_free(d->agents);
    if (d->provision)
        d->provision->ops->close(d->provision);
    registry_close(d->registry);
    if (d->zmq)
        zmq_ctx_term(d->zmq);
    loop_free(d->loop);
}

/* The control plane's key pair in <state_dir>/control.{key,pub}, made once. */
static int server_key(struct driver *d, char *name, size_t cap, struct keys_pair *kp, char *err, size_t errlen)
{
    char path[700];
    snprintf(name, cap, "%s/control", d->state_dir);
    snprintf(path, sizeof path, "%s.key", name);
    if (access(path, F_OK) != 0 && (keys_generate(kp, err, errlen) != 0 || keys_write(name, kp, err, errlen) != 0))
        return -1;
    return keys_read_key(path, kp, err, errlen);
}

static int parse_args(struct driver *d, int argc, char **argv)
{
    d->tenant = "tenant-a";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--state-dir") == 0)
            d->state_dir = v;
        else if (strcmp(k, "--instances-dir") == 0)
            d->instances_dir = v;
        else if (strcmp(k, "--agent-binary") == 0)
            d->agent_binary = v;
        else if (strcmp(k, "--plugin-dir") == 0)
            d->plugin_dir = v;
        else if (strcmp(k, "--agent-endpoint") == 0)
            d->endpoint = v;
        else if (strcmp(k, "--tenant") == 0)
            d->tenant = v;
        else if (strcmp(k, "--flavor") == 0 && d->n_flavors < 8)
            d->flavors[d->n_flavors++] = v;
        else
            return -1;
    }
    return d->state_dir && d->instances_dir && d->agent_binary && d->plugin_dir && d->endpoint ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct driver d;
    struct keys_pair kp;
    char err[600] = "", key_name[600], db[700];
    int status = 1;
    memset(&d, 0, sizeof d);
    log_set_ident("instances-driver");
    if (parse_args(&d, argc, argv) != 0) {
        fprintf(stderr, "usage: instances_driver --state-dir D --instances-dir I --agent-binary B --plugin-dir P "
                        "--agent-endpoint EP [--tenant T] [--flavor ID:RAM_MB]...\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    mkdir(d.state_dir, 0700);
    snprintf(db, sizeof db, "%s/%s", d.state_dir, REGISTRY_SQLITE_FILE);
    if (server_key(&d, key_name, sizeof key_name, &kp, err, sizeof err) != 0 ||
        !(d.registry = registry_open(db, err, sizeof err)) || seed_registry(&d, err, sizeof err) != TROVE_OK ||
        open_modules(&d, key_name, kp.public_z85, err, sizeof err) != 0 ||
        loop_add_fd(d.loop, 0, ZMQ_POLLIN, on_stdin, &d) != 0 ||
        loop_add_fd(d.loop, d.signal_fd, ZMQ_POLLIN, on_signal, &d) != 0) {
        fprintf(stderr, "instances_driver: %s\n", err);
        goto out;
    }
    instances_start(d.instances);
    tasks_resume(d.tasks);
    struct tv *ready = with_tag(NULL, "ready");
    tv_set_str(ready, "server_public_key", kp.public_z85);
    emit(ready);
    status = loop_run(d.loop) == 0 ? 0 : 1;
out:
    keys_wipe(&kp);
    close_modules(&d);
    close(d.signal_fd);
    return status;
}
