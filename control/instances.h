/*
 * instances.h - the instance lifecycle as control-level tasks: the handlers
 * of instance.create, delete, force_delete, restart, resize_flavor and
 * resize_volume registered with the core, each one task on one instance at
 * a time (the registry's compare-and-set on the instance's task), made of
 * provisioner steps (run off the loop thread) and agent requests (through
 * control_submit). Also the adoption of running instances when the control
 * plane starts, and the discovery of datastore versions from the engines
 * and plugins installed on this host.
 *
 * It owns no socket and no file: the registry keeps the instance, the
 * provisioner the host's side, rpc the admitted keys. Loop thread only, but
 * for the worker threads it starts for provisioner calls, which hand their
 * outcome back with loop_post.
 */
#ifndef TROVE_CONTROL_INSTANCES_H
#define TROVE_CONTROL_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agents;
struct control_core;
struct loop;
struct provision;
struct registry;
struct rpc;
struct tasks;
struct instances;

#define INSTANCES_HELLO_TIMEOUT_MS (60 * 1000L)          /* a new agent must say hello within this */
#define INSTANCES_PREPARE_TIMEOUT_MS (30 * 60 * 1000L)   /* installing the engine, restoring a backup */
#define INSTANCES_RESTART_TIMEOUT_MS (10 * 60 * 1000L)

struct instances_config {
    struct loop *loop;
    struct control_core *core;
    struct tasks *tasks;
    struct registry *registry;
    struct rpc *rpc;                  /* may be set later with instances_set_rpc, before the loop runs */
    struct agents *agents;
    struct provision *provision;
    /* What the agents of this host connect to: the agent endpoint, where a
     * wildcard address (tcp://0.0.0.0:P, tcp://[::]:P, an asterisk) becomes loopback. */
    const char *agent_endpoint;
    const char *server_public_key;    /* the control plane's Z85 public key; NULL with plaintext_dev */
    bool plaintext_dev;
    uint32_t heartbeat_ms;            /* the agents' heartbeat interval; 0: 2000 */
    int64_t hello_timeout_ms;         /* 0: INSTANCES_HELLO_TIMEOUT_MS */
};

/*
 * Register the instance.* handlers with the core and their resumers with
 * tasks (call before tasks_resume). Borrows everything in cfg (strings are
 * copied). NULL with a reason in err.
 *
 * instance.create args (a map; the API checked names and shapes):
 *   name (string), flavor (a flavor id), volume_size (GB, integer),
 *   datastore (name), datastore_version (a version id), and optionally
 *   databases [{name, character_set, collation}], users [{name, password,
 *   host, databases: [names]}], root_password, tenant (when the request has
 *   none: the operator creating for a tenant).
 * Reply: {task, state: "running", instance_id}; the instance row exists
 * (status BUILD) before the reply. The task ends completed with
 * {instance_id} once the engine is prepared (status ACTIVE), or failed
 * (status ERROR with the reason).
 *
 * instance.delete, instance.force_delete, instance.restart: no args.
 * instance.resize_flavor: {flavor}. instance.resize_volume: {size} (GB, larger).
 * Each needs req->instance; refused with TROVE_ECONFLICT while another task
 * holds the instance (force_delete waits for a provisioner call in flight,
 * then takes over: the other task fails, superseded).
 */
struct instances *instances_new(const struct instances_config *cfg, char *err, size_t errlen);
void instances_set_rpc(struct instances *in, struct rpc *rpc);

/*
 * Once rpc is open: admit the agent key of every live instance in the
 * registry (rpc_admit), and adopt each instance on a worker thread (the
 * provisioner keeps a running agent, starts a dead one again). An instance
 * that cannot be adopted shows ERROR with the reason.
 */
void instances_start(struct instances *in);

/* Waits for provisioner calls still in flight, then frees every job (their
 * tasks stay unfinished in the registry, for the next start to resume). */
void instances_free(struct instances *in);

/*
 * Datastore versions from what is installed: MariaDB (mariadbd), each
 * PostgreSQL under /usr/lib/postgresql/<N>/bin, Redis (redis-server),
 * each only when its plugin (<plugin_dir>/<plugin>.so, or a build tree's
 * <plugin_dir>/<plugin>/<plugin>.so) exists. Datastores "mysql",
 * "postgresql", "redis" and versions named by the engine's major.minor
 * ("10.11", "15", "7.0") are created when missing; existing rows are never
 * changed (an operator's disabled version stays disabled). *added (may be
 * NULL) counts the versions created. TROVE_OK or a registry status.
 */
int instances_discover_versions(struct registry *registry, const char *plugin_dir, int *added, char *err,
                                size_t errlen);

#endif
