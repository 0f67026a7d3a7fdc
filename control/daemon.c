/*
 * daemon.c - trove-control's wiring: the state directory and its lock,
 * signals, then each module opened in order and handed what it needs (the
 * loop, the core, the tasks, the agents table), the loop run, and every
 * module closed in reverse. No logic of its own lives here.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agents.h"
#include "api.h"
#include "auth.h"
#include "clients.h"
#include "conductor.h"
#include "control_ops.h"
#include "core.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "rpc.h"
#include "tasks.h"

/* Everything the daemon opened, so it can close it in reverse. */
struct daemon {
    const struct control_config *cfg;
    int lock_fd, signal_fd;
    void *zmq_context;
    struct loop *loop;
    struct registry *registry;
    struct agents *agents;
    struct tasks *tasks;
    struct control_core *core;
    struct control_ops control_ops;
    struct conductor *conductor;
    struct rpc *rpc;
    struct clients *clients;
    struct auth *auth;
    struct api *api;
};

/* ------------------------------------------------------------ the state directory */

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state_dir %s is not a directory", dir);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "state_dir %s is open to group or others (mode %03o); it must be 0700", dir,
                 (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

/* One daemon per state directory: the client socket lives there. */
static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/trove-control.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "another trove-control is running with state_dir %s", dir);
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ signals */

/* SIGTERM and SIGINT arrive on a descriptor the loop polls. Blocked before
 * libzmq starts its threads, so they inherit the mask. */
static int open_signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void on_signal(void *ctx, short events)
{
    struct daemon *d = ctx;
    struct signalfd_siginfo si;
    (void)events;
    if (read(d->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        log_info("stopping on signal %u", si.ssi_signo);
        loop_stop(d->loop);
    }
}

/* ------------------------------------------------------------ wiring */

static int open_core(struct daemon *d, char *err, size_t errlen)
{
    const struct control_config *cfg = d->cfg;
    char why[400];
    if (!(d->registry = registry_open(cfg->registry, why, sizeof why))) {
        snprintf(err, errlen, "registry: %s", why);
        return -1;
    }
    log_info("registry: %s, schema version %d", registry_backend(d->registry),
             registry_schema_version(d->registry));
    d->zmq_context = zmq_ctx_new();
    d->loop = loop_new();
    d->agents = agents_new();
    if (!d->zmq_context || !d->loop || !d->agents)
        goto nomem;
    d->tasks = tasks_new(&(struct tasks_config){.loop = d->loop, .registry = d->registry,
                                               .task_deadline_ms = cfg->task_deadline_ms});
    if (!d->tasks)
        goto nomem;
    /* The core needs rpc and rpc's messages need the conductor, which needs
     * the core: open the core first and hand it rpc once it exists. */
    d->core = core_new(&(struct core_config){.tasks = d->tasks, .agents = d->agents, .registry = d->registry,
                                             .request_timeout_ms = cfg->request_timeout_ms});
    if (!d->core)
        goto nomem;
    d->control_ops = (struct control_ops){d->agents, d->tasks};
    if (control_ops_register(d->core, &d->control_ops) != 0)
        goto nomem;
    d->conductor = conductor_new(&(struct conductor_config){
        .agents = d->agents, .tasks = d->tasks, .core = d->core, .loop = d->loop, .registry = d->registry,
        .heartbeat_miss = (int)cfg->heartbeat_miss, .agent_heartbeat_ms = cfg->agent_heartbeat_ms});
    if (!d->conductor || loop_add_fd(d->loop, d->signal_fd, ZMQ_POLLIN, on_signal, d) != 0)
        goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int open_agent_door(struct daemon *d, char *err, size_t errlen)
{
    const struct control_config *cfg = d->cfg;
    struct rpc_config rc = {
        .zmq_context = d->zmq_context,
        .loop = d->loop,
        .endpoint = cfg->agent_endpoint,
        .curve = !cfg->plaintext_dev,
        .server_key_file = cfg->server_key_file,
        .allowed_agents_file = cfg->allowed_agents_file,
        .on_message = conductor_message,
        .on_lost = conductor_lost,
        .ctx = d->conductor,
    };
    if (!(d->rpc = rpc_open(&rc, err, errlen)))
        return -1;
    core_set_rpc(d->core, d->rpc);
    return 0;
}

/* The REST API and its tokens (api_listen = off: none). */
static int open_api(struct daemon *d, char *err, size_t errlen)
{
    const struct control_config *cfg = d->cfg;
    if (!cfg->api_listen)
        return 0;
    d->auth = cfg->api_token_file ? auth_open_tokens(cfg->api_token_file, err, errlen) : auth_open_none();
    if (!d->auth) {
        if (!cfg->api_token_file)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct api_config ac = {.listen = cfg->api_listen, .request_timeout_ms = cfg->request_timeout_ms};
    struct api_deps deps = {.auth = d->auth, .core = d->core, .registry = d->registry, .loop = d->loop};
    if (!(d->api = api_new(&ac, &deps, err, errlen)))
        return -1;
    log_info("REST API on %s (port %u, %s)", cfg->api_listen, (unsigned)api_port(d->api),
             cfg->api_token_file ? "tokens" : "no tokens");
    return 0;
}

static int open_doors(struct daemon *d, char *err, size_t errlen)
{
    if (open_agent_door(d, err, errlen) != 0 || open_api(d, err, errlen) != 0)
        return -1;
    d->clients = clients_open(d->zmq_context, d->loop, d->core, d->cfg->client_endpoint,
                              d->cfg->request_timeout_ms, err, errlen);
    if (!d->clients)
        return -1;
    /* Every module that resumes tasks has registered by now. */
    tasks_resume(d->tasks);
    return 0;
}

static void close_everything(struct daemon *d)
{
    if (d->core)
        core_shutdown(d->core);
    api_free(d->api);
    auth_free(d->auth);
    clients_close(d->clients);
    rpc_close(d->rpc);
    conductor_free(d->conductor);
    core_free(d->core);
    tasks_free(d->tasks);
    agents_free(d->agents);
    if (d->zmq_context)
        zmq_ctx_term(d->zmq_context);
    loop_free(d->loop);
    registry_close(d->registry);
}

int daemon_run(const struct control_config *cfg)
{
    struct daemon d = {.cfg = cfg, .lock_fd = -1};
    char err[512] = "";
    int rc = 1;

    umask(077);
    d.signal_fd = open_signal_fd();
    if (d.signal_fd < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return 1;
    }
    if (cfg->plaintext_dev)
        log_warn("PLAIN TEXT MODE (plaintext_dev = true): agent traffic on %s is neither encrypted nor "
                 "authenticated. For development on one machine only.",
                 cfg->agent_endpoint);
    if (make_state_dir(cfg->state_dir, err, sizeof err) != 0 ||
        (d.lock_fd = lock_state_dir(cfg->state_dir, err, sizeof err)) < 0 || open_core(&d, err, sizeof err) != 0 ||
        open_doors(&d, err, sizeof err) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("listening for agents on %s (%s), clients on %s", cfg->agent_endpoint,
             cfg->plaintext_dev ? "PLAIN TEXT" : "CURVE", cfg->client_endpoint);
    rc = loop_run(d.loop) == 0 ? 0 : 1;
out:
    close_everything(&d);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    close(d.signal_fd);
    return rc;
}
