/*
 * daemon.c - trove-control's wiring: the state directory and its lock,
 * signals, then each module opened in order and handed what it needs (the
 * loop, the core, the tasks, the agents table), the loop run, and every
 * module closed in reverse. No logic of its own lives here.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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
#include "instances.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "provision.h"
#include "registry.h"
#include "rpc.h"
#include "tasks.h"

#ifndef TROVE_PLUGIN_DIR
#define TROVE_PLUGIN_DIR "/usr/local/lib/trove/plugins"
#endif
#ifndef TROVE_AGENT_BINARY
#define TROVE_AGENT_BINARY "/usr/local/bin/trove-agent"
#endif

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
    struct provision *provision;      /* NULL with provisioner = none */
    struct instances *instances;
    char agent_binary[4096], plugin_dir[4096];
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

/* ------------------------------------------------------------ provisioning */

/* Where trove-agent and the plugins are when the config does not say: beside
 * this program in a build tree (control/ next to agent/ and plugins/), else
 * where they are installed. */
static void default_paths(struct daemon *d)
{
    char exe[4096] = "", path[4200], tree[PATH_MAX], agent[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *dir = dirname(exe);
    snprintf(path, sizeof path, "%s/../plugins", dir);
    bool build_tree = n > 0 && realpath(path, tree);
    snprintf(path, sizeof path, "%s/../agent/trove-agent", dir);
    if (d->cfg->agent_binary)
        snprintf(d->agent_binary, sizeof d->agent_binary, "%s", d->cfg->agent_binary);
    else if (build_tree && realpath(path, agent))
        snprintf(d->agent_binary, sizeof d->agent_binary, "%s", agent);
    else
        snprintf(d->agent_binary, sizeof d->agent_binary, "%s", TROVE_AGENT_BINARY);
    if (d->cfg->plugin_dir)
        snprintf(d->plugin_dir, sizeof d->plugin_dir, "%s", d->cfg->plugin_dir);
    else
        snprintf(d->plugin_dir, sizeof d->plugin_dir, "%s", build_tree ? tree : TROVE_PLUGIN_DIR);
}

/* A registry without flavors gets a few, like a fresh cloud's. */
static int seed_flavors(struct registry *r, char *err, size_t errlen)
{
    static const struct { const char *id, *name; int64_t ram_mb, vcpus; } flavors[] = {
        {"1", "m1.tiny", 512, 1}, {"2", "m1.small", 1024, 1}, {"3", "m1.medium", 2048, 2}, {"4", "m1.large", 4096, 2},
    };
    struct registry_flavor *items = NULL;
    size_t n = 0;
    int rc = registry_flavor_list(r, &(struct registry_query){.limit = 1}, &items, &n, NULL, err, errlen);
    registry_flavors_free(items, n);
    for (size_t i = 0; rc == TROVE_OK && n == 0 && i < sizeof flavors / sizeof flavors[0]; i++) {
        struct registry_flavor f = {.ram_mb = flavors[i].ram_mb, .vcpus = flavors[i].vcpus, .disk_gb = 0};
        snprintf(f.id, sizeof f.id, "%s", flavors[i].id);
        f.name = (char *)flavors[i].name;
        rc = registry_flavor_create(r, &f, err, errlen);
        if (rc == TROVE_OK)
            log_info("added flavor %s (%s, %lld MB)", flavors[i].id, flavors[i].name, (long long)flavors[i].ram_mb);
    }
    return rc;
}

static int open_provisioning(struct daemon *d, char *err, size_t errlen)
{
    const struct control_config *cfg = d->cfg;
    if (strcmp(cfg->provisioner, "none") == 0)
        return 0;
    default_paths(d);
    static const enum provision_volume_mode modes[] = {
        [CONTROL_VOLUME_AUTO] = PROVISION_VOLUME_AUTO, [CONTROL_VOLUME_LOOP] = PROVISION_VOLUME_LOOP,
        [CONTROL_VOLUME_DIRECTORY] = PROVISION_VOLUME_DIRECTORY};
    struct provision_local_config pc = {.instances_dir = cfg->instances_dir, .agent_binary = d->agent_binary,
                                        .plugin_dir = d->plugin_dir, .volume_mode = modes[cfg->volume],
                                        .postgres_os_user = cfg->postgres_os_user};
    char why[400];
    if (!(d->provision = provision_local_open(&pc, why, sizeof why))) {
        snprintf(err, errlen, "provisioner: %s", why);
        return -1;
    }
    struct keys_pair server = {0};
    if (!cfg->plaintext_dev && keys_read_key(cfg->server_key_file, &server, err, errlen) != 0)
        return -1;
    struct instances_config ic = {
        .loop = d->loop, .core = d->core, .tasks = d->tasks, .registry = d->registry, .agents = d->agents,
        .provision = d->provision, .agent_endpoint = cfg->agent_endpoint,
        .server_public_key = cfg->plaintext_dev ? NULL : server.public_z85, .plaintext_dev = cfg->plaintext_dev,
        .heartbeat_ms = (uint32_t)cfg->agent_heartbeat_ms};
    d->instances = instances_new(&ic, err, errlen);
    keys_wipe(&server);
    if (!d->instances)
        return -1;
    int added = 0;
    if (seed_flavors(d->registry, why, sizeof why) != TROVE_OK ||
        instances_discover_versions(d->registry, d->plugin_dir, &added, why, sizeof why) != TROVE_OK) {
        snprintf(err, errlen, "registry: %s", why);
        return -1;
    }
    log_info("local provisioner: instances in %s, agent %s, plugins in %s (%d datastore version(s) found)",
             cfg->instances_dir, d->agent_binary, d->plugin_dir, added);
    return 0;
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
    if (d->instances)
        instances_set_rpc(d->instances, d->rpc);
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
    return (d->api = api_new(&ac, &deps, err, errlen)) ? 0 : -1;
}

static int open_doors(struct daemon *d, char *err, size_t errlen)
{
    if (open_provisioning(d, err, errlen) != 0 || open_agent_door(d, err, errlen) != 0 ||
        open_api(d, err, errlen) != 0)
        return -1;
    d->clients = clients_open(d->zmq_context, d->loop, d->core, d->cfg->client_endpoint,
                              d->cfg->request_timeout_ms, err, errlen);
    if (!d->clients)
        return -1;
    /* Admit the keys of the registry's instances and adopt what runs; then
     * every module that resumes tasks has registered. */
    if (d->instances)
        instances_start(d->instances);
    tasks_resume(d->tasks);
    return 0;
}

static void close_everything(struct daemon *d)
{
    if (d->core)
        core_shutdown(d->core);
    api_free(d->api);
    auth_free(d->auth);
    instances_free(d->instances);
    clients_close(d->clients);
    rpc_close(d->rpc);
    conductor_free(d->conductor);
    core_free(d->core);
    tasks_free(d->tasks);
    agents_free(d->agents);
    if (d->provision)
        d->provision->ops->close(d->provision);
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
