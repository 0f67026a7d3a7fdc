/*
 * api_test_server.c - the REST API with trove-control's own loop, core,
 * tasks and registry, and no agent socket, for the API's tests. It can seed
 * a registry with datastores, flavors and instance rows (instances that no
 * agent serves), and print a registry dump, so a test can prove that a
 * refused request changed nothing.
 *
 *   api_test_server serve --registry URL [--tokens FILE] [--listen ADDR:PORT]
 *                         [--body-limit N] [--page-size N]
 *       prints "PORT <n>" once listening; stops on SIGTERM or SIGINT
 *   api_test_server seed --registry URL [--instances TENANT:N[:STATUS] ...]
 *   api_test_server dump --registry URL
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "agents.h"
#include "api.h"
#include "auth.h"
#include "core.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "tasks.h"

struct options {
    const char *registry, *tokens, *listen;
    size_t body_limit;
    unsigned page_size;
    const char *instances[8];
    size_t n_instances;
};

static int usage(void)
{
    fprintf(stderr, "usage: api_test_server serve|seed|dump --registry URL [--tokens FILE] [--listen ADDR:PORT]\n"
                    "       [--body-limit N] [--page-size N] [--instances TENANT:N]\n");
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (strcmp(a, "--registry") == 0)
            o->registry = v;
        else if (strcmp(a, "--tokens") == 0)
            o->tokens = v;
        else if (strcmp(a, "--listen") == 0)
            o->listen = v;
        else if (strcmp(a, "--body-limit") == 0)
            o->body_limit = strtoul(v, NULL, 10);
        else if (strcmp(a, "--page-size") == 0)
            o->page_size = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--instances") == 0 && o->n_instances < 8)
            o->instances[o->n_instances++] = v;
        else
            return -1;
        i++;
    }
    return o->registry ? 0 : -1;
}

/* ------------------------------------------------------------ seed */

static int check(int rc, const char *what, const char *err)
{
    if (rc != TROVE_OK)
        fprintf(stderr, "seed: %s: %s\n", what, err);
    return rc;
}

static int seed_catalogue(struct registry *r)
{
    char err[256];
    static const struct { const char *ds, *version, *plugin; bool active, is_default; } versions[] = {
        { "mysql", "10.11", "mysql", true, true },
        { "postgresql", "15", "postgres", true, true },
        { "redis", "7.0", "redis", true, false },
        { "redis", "6.0", "redis", false, false },
    };
    static const struct { const char *id, *name; int64_t ram, vcpus, disk; } flavors[] = {
        { "1", "small", 512, 1, 2 }, { "2", "medium", 1024, 1, 5 }, { "3", "large", 2048, 2, 10 },
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct registry_datastore ds = { 0 };
        if (registry_datastore_get(r, versions[i].ds, &ds, err, sizeof err) != TROVE_OK) {
            registry_datastore_clear(&ds);
            memset(&ds, 0, sizeof ds);
            snprintf(ds.name, sizeof ds.name, "%s", versions[i].ds);
            if (check(registry_datastore_create(r, &ds, err, sizeof err), "datastore", err) != TROVE_OK)
                return -1;
        }
        struct registry_datastore_version v = { 0 };
        snprintf(v.datastore, sizeof v.datastore, "%s", versions[i].ds);
        v.name = (char *)versions[i].version;
        v.plugin = (char *)versions[i].plugin;
        v.engine = (char *)"{}";
        v.active = versions[i].active;
        if (check(registry_datastore_version_create(r, &v, err, sizeof err), "version", err) != TROVE_OK)
            return -1;
        if (versions[i].is_default) {
            snprintf(ds.default_version_id, sizeof ds.default_version_id, "%s", v.id);
            if (check(registry_datastore_update(r, &ds, err, sizeof err), "default version", err) != TROVE_OK)
                return -1;
        }
        registry_datastore_clear(&ds);
    }
    for (size_t i = 0; i < sizeof flavors / sizeof flavors[0]; i++) {
        struct registry_flavor f = { 0 };
        snprintf(f.id, sizeof f.id, "%s", flavors[i].id);
        f.name = (char *)flavors[i].name;
        f.ram_mb = flavors[i].ram;
        f.vcpus = flavors[i].vcpus;
        f.disk_gb = flavors[i].disk;
        if (check(registry_flavor_create(r, &f, err, sizeof err), "flavor", err) != TROVE_OK)
            return -1;
    }
    return 0;
}

/* TENANT:N[:STATUS] instance rows (default ACTIVE), MySQL 10.11, flavor 1,
 * 1 GB, named inst-K. */
static int seed_instances(struct registry *r, const char *spec)
{
    char tenant[REGISTRY_ID_SIZE], err[256];
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof tenant)
        return -1;
    snprintf(tenant, sizeof tenant, "%.*s", (int)(colon - spec), spec);
    char *end = NULL;
    long n = strtol(colon + 1, &end, 10);
    const char *status = end && *end == ':' ? end + 1 : "ACTIVE";
    struct registry_tenant t = { 0 };
    snprintf(t.id, sizeof t.id, "%s", tenant);
    t.name = tenant;
    int rc = registry_tenant_create(r, &t, err, sizeof err);
    if (rc != TROVE_OK && rc != TROVE_EEXIST)
        return check(rc, "tenant", err);
    struct registry_datastore_version v = { 0 };
    if (check(registry_datastore_version_find(r, "mysql", "10.11", &v, err, sizeof err), "version", err) !=
        TROVE_OK)
        return -1;
    for (long i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%ld", status[0] == 'A' ? "inst" : "busy", i);
        struct registry_instance in = { 0 };
        snprintf(in.tenant_id, sizeof in.tenant_id, "%s", tenant);
        in.name = name;
        snprintf(in.status, sizeof in.status, "%s", status);
        in.status_reason = (char *)"";
        snprintf(in.datastore, sizeof in.datastore, "mysql");
        snprintf(in.datastore_version_id, sizeof in.datastore_version_id, "%s", v.id);
        snprintf(in.flavor_id, sizeof in.flavor_id, "1");
        in.volume_size_gb = 1;
        snprintf(in.volume_kind, sizeof in.volume_kind, "loop");
        in.engine_port = 33060 + i;
        in.ports = (char *)"{}";
        in.agent_public_key = (char *)"";
        in.provision = (char *)"{}";
        if (check(registry_instance_create(r, &in, err, sizeof err), "instance", err) != TROVE_OK)
            break;
        printf("INSTANCE %s %s %s\n", tenant, in.id, status);
    }
    registry_datastore_version_clear(&v);
    return 0;
}

/* ------------------------------------------------------------ serve */

struct server {
    struct loop *loop;
    int signal_fd;
};

static void on_signal(void *ctx, short events)
{
    struct server *s = ctx;
    struct signalfd_siginfo si;
    (void)events;
    if (read(s->signal_fd, &si, sizeof si) == (ssize_t)sizeof si)
        loop_stop(s->loop);
}

static int serve(const struct options *o, struct registry *reg)
{
    char err[512];
    int rc = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct server s = { .loop = loop_new(), .signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK) };
    struct agents *agents = agents_new();
    struct tasks *tasks = s.loop ? tasks_new(&(struct tasks_config){ .loop = s.loop, .registry = reg }) : NULL;
    struct control_core *core =
        tasks && agents ? core_new(&(struct core_config){ .tasks = tasks, .agents = agents, .request_timeout_ms = 5000 })
                        : NULL;
    struct auth *auth = o->tokens ? auth_open_tokens(o->tokens, err, sizeof err) : auth_open_none();
    struct api *api = NULL;
    if (!core || !auth || s.signal_fd < 0 || loop_add_fd(s.loop, s.signal_fd, ZMQ_POLLIN, on_signal, &s) != 0) {
        fprintf(stderr, "api_test_server: %s\n", auth ? "setup failed" : err);
        goto out;
    }
    struct api_config cfg = { .listen = o->listen ? o->listen : "127.0.0.1:0", .body_limit = o->body_limit,
                              .page_size = o->page_size };
    api = api_new(&cfg, &(struct api_deps){ .auth = auth, .core = core, .registry = reg, .loop = s.loop }, err,
                  sizeof err);
    if (!api) {
        fprintf(stderr, "api_test_server: %s\n", err);
        goto out;
    }
    printf("PORT %u\n", (unsigned)api_port(api));
    fflush(stdout);
    rc = loop_run(s.loop) == 0 ? 0 : 1;
out:
    if (core)
        core_shutdown(core);
    api_free(api);
    core_free(core);
    tasks_free(tasks);
    agents_free(agents);
    auth_free(auth);
    if (s.signal_fd >= 0)
        close(s.signal_fd);
    loop_free(s.loop);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    char err[512];
    if (argc < 2 || parse(argc, argv, &o) != 0)
        return usage();
    log_set_ident("api_test_server");
    log_set_level(getenv("TROVE_DEBUG") ? TROVE_LOG_DEBUG : TROVE_LOG_INFO);
    struct registry *reg = registry_open(o.registry, err, sizeof err);
    if (!reg) {
        fprintf(stderr, "api_test_server: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[1], "serve") == 0) {
        rc = serve(&o, reg);
    } else if (strcmp(argv[1], "seed") == 0) {
        rc = seed_catalogue(reg) == 0 ? 0 : 1;
        for (size_t i = 0; rc == 0 && i < o.n_instances; i++)
            rc = seed_instances(reg, o.instances[i]) == 0 ? 0 : 1;
    } else if (strcmp(argv[1], "dump") == 0) {
        rc = registry_dump(reg, stdout, err, sizeof err) == TROVE_OK ? 0 : 1;
    } else {
        rc = usage();
    }
    registry_close(reg);
    return rc;
}
