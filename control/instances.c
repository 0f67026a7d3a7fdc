/*
 * instances.c - the instance lifecycle: each instance.* operation is a job
 * that owns one task and walks its steps: registry writes (loop thread),
 * provisioner calls (a worker thread each, handed back with loop_post) and
 * agent requests (control_submit, with the job's task as parent). A job
 * ends by recording the outcome in three places: the instance's status, the
 * instance's task slot (released), and the task. It never touches a socket
 * or a file itself.
 */
#include "instances.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "core.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "provision.h"
#include "registry.h"
#include "rpc.h"
#include "status.h"
#include "tasks.h"
#include "timing.h"
#include "value.h"

#define POLL_AGENT_MS 50

enum job_kind { JOB_CREATE, JOB_DELETE, JOB_FORCE_DELETE, JOB_RESTART, JOB_RESIZE_FLAVOR, JOB_RESIZE_VOLUME };

static const char *const job_ops[] = {"instance.create", "instance.delete", "instance.force_delete",
                                      "instance.restart", "instance.resize_flavor", "instance.resize_volume"};

struct job;
typedef int (*job_work_fn)(struct job *job);          /* on a worker thread: provisioner calls only */
typedef void (*job_step_fn)(struct job *job);         /* on the loop thread */
typedef void (*job_agent_fn)(struct job *job, int status, const char *message, const struct tv *result);

struct job {
    struct instances *in;
    struct job *next;
    enum job_kind kind;
    char task[TASK_ID_MAX + 1];
    char instance[REGISTRY_ID_SIZE];
    bool superseded;            /* a force delete took the instance over: stop at the next step */
    bool in_thread;             /* a provisioner call runs on a worker thread */
    bool at_agent;              /* an agent request is in flight (its callback will come) */
    bool resumed;               /* picked up after a restart of trove-control */
    job_step_fn resume_next;    /* what a resumed job does once its agent is back */
    /* create */
    struct provision_request preq;
    char plugin[32], datastore[REGISTRY_ID_SIZE], engine_bindir[256], engine_binary[256];
    struct tv *prepare;         /* prepare's args; holds passwords, never persisted */
    /* resize */
    char flavor[REGISTRY_ID_SIZE];
    uint32_t ram_mb, volume_gb;
    /* a provisioner call */
    job_work_fn work;
    job_step_fn then;
    int rc;
    char err[512];
    struct provision_instance pi;
    struct provision_params params;
    /* waiting for the agent's hello */
    struct loop_timer *timer;
    int64_t deadline_ms;
    job_step_fn on_connected;
    /* an agent request */
    job_agent_fn on_agent;
};

struct instances {
    struct instances_config cfg;
    char endpoint[256];
    char server_key[KEYS_Z85_LEN + 1];
    struct job *jobs;
    pthread_mutex_t mu;          /* guards threads */
    pthread_cond_t idle;
    int threads;                 /* worker threads in flight */
};

/* ------------------------------------------------------------ jobs */

static struct job *job_new(struct instances *in, enum job_kind kind, const char *instance)
{
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->in = in;
    job->kind = kind;
    snprintf(job->instance, sizeof job->instance, "%s", instance);
    job->next = in->jobs;
    in->jobs = job;
    return job;
}

static void job_free(struct job *job)
{
    struct instances *in = job->in;
    for (struct job **p = &in->jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    if (job->timer)
        loop_timer_free(job->timer);
    tv_free(job->prepare);
    free(job);
}

static struct job *job_on(struct instances *in, const char *instance, const struct job *except)
{
    for (struct job *j = in->jobs; j; j = j->next)
        if (j != except && !j->superseded && strcmp(j->instance, instance) == 0)
            return j;
    return NULL;
}

static void set_status(struct job *job, const char *expected, const char *status, const char *reason)
{
    char err[256];
    int rc = registry_instance_set_status(job->in->cfg.registry, job->instance, expected, status, reason, err,
                                          sizeof err);
    if (rc != TROVE_OK && rc != TROVE_ECONFLICT)
        log_warn("instance %s: cannot record status %s: %s", job->instance, status, err);
}

/* The outcome: the instance's status (NULL: keep), its task slot released,
 * the task finished. Frees the job. */
static void job_finish(struct job *job, int status, const char *message, const struct tv *result,
                       const char *instance_status, const char *reason)
{
    char err[256];
    if (instance_status)
        set_status(job, NULL, instance_status, reason);
    if (registry_instance_set_task(job->in->cfg.registry, job->instance, job->task, NULL, err, sizeof err) !=
            TROVE_OK &&
        job->kind != JOB_DELETE && job->kind != JOB_FORCE_DELETE)
        log_debug("instance %s: releasing task %s: %s", job->instance, job->task, err);
    tasks_finish(job->in->cfg.tasks, job->task, status, message, result);
    log_info("instance %s: %s %s%s%s", job->instance, job_ops[job->kind], status == TROVE_OK ? "completed" : "failed",
             status == TROVE_OK ? "" : ": ", status == TROVE_OK ? "" : message);
    job_free(job);
}

static void job_fail(struct job *job, int status, const char *instance_status, const char *fmt, ...)
    TROVE_PRINTF(4, 5);
static void job_fail(struct job *job, int status, const char *instance_status, const char *fmt, ...)
{
    char message[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    job_finish(job, status, message, NULL, instance_status, message);
}

/* A superseded job stops here: a force delete finished its task already. */
static bool job_stopped(struct job *job)
{
    if (!job->superseded)
        return false;
    job_free(job);
    return true;
}

/* ------------------------------------------------------------ provisioner calls off the loop */

static void job_back(void *ctx)
{
    struct job *job = ctx;
    job->in_thread = false;
    if (!job_stopped(job))
        job->then(job);
}

static void *job_thread(void *ctx)
{
    struct job *job = ctx;
    struct instances *in = job->in;
    job->rc = job->work(job);
    if (loop_post(in->cfg.loop, job_back, job) != 0)
        log_error("instance %s: cannot hand a provisioner result back to the loop (out of memory)", job->instance);
    pthread_mutex_lock(&in->mu);
    in->threads--;
    pthread_cond_broadcast(&in->idle);
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

/* Run work(job) on a worker thread, then then(job) on the loop. */
static void job_offload(struct job *job, job_work_fn work, job_step_fn then)
{
    struct instances *in = job->in;
    pthread_t thread;
    pthread_attr_t attr;
    job->work = work;
    job->then = then;
    job->err[0] = '\0';
    job->in_thread = true;
    pthread_mutex_lock(&in->mu);
    in->threads++;
    pthread_mutex_unlock(&in->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&thread, &attr, job_thread, job);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        pthread_mutex_lock(&in->mu);
        in->threads--;
        pthread_mutex_unlock(&in->mu);
        job->in_thread = false;
        job->rc = TROVE_EINTERNAL;
        snprintf(job->err, sizeof job->err, "cannot start a worker thread: %s", strerror(e));
        then(job);
    }
}

/* ------------------------------------------------------------ agent requests */

static void agent_reply(void *user, int status, const char *message, const struct tv *result)
{
    struct job *job = user;
    if (status == TROVE_OK && control_result_is_task(result))
        return;   /* a long operation: its task.done follows as an event */
    job->at_agent = false;
    if (!job_stopped(job))
        job->on_agent(job, status, message, result);
}

static void agent_event(void *user, const struct tv *event, bool last)
{
    struct job *job = user;
    if (!last) {
        const char *message = tv_get_str(event, "message");
        if (!job->superseded && message && *message)
            tasks_progress(job->in->cfg.tasks, job->task, -1, message);
        return;
    }
    job->at_agent = false;
    if (job_stopped(job))
        return;
    if (tv_get_bool(event, "ok", false)) {
        job->on_agent(job, TROVE_OK, "", tv_get(event, "result"));
        return;
    }
    const struct tv *error = tv_get(event, "error");
    const char *code = tv_get_str(error, "code"), *message = tv_get_str(error, "message");
    int status = code ? status_from_name(code) : -1;
    job->on_agent(job, status > 0 ? status : TROVE_EINTERNAL, message ? message : "the task failed", NULL);
}

/* Send op to the instance's agent as a step of the job's task; on_agent
 * runs once with the outcome (for a long op, when its task ends). args is
 * borrowed. */
static void job_agent(struct job *job, const char *op, const struct tv *args, int64_t timeout_ms, job_agent_fn fn)
{
    struct control_request req = {
        .instance = job->instance,
        .op = op,
        .args = args,
        .timeout_ms = timeout_ms,
        .on_event = agent_event,
        .task = job->task,
    };
    job->on_agent = fn;
    job->at_agent = true;
    if (control_submit(job->in->cfg.core, &req, agent_reply, job) != 0) {
        job->at_agent = false;
        fn(job, TROVE_ECANCELLED, "the control plane is shutting down", NULL);
    }
}

/* The control plane is stopping: leave the job where it is (its task stays
 * unfinished for the next start to resume). True if it did. */
static bool shutting_down(struct job *job, int status)
{
    if (status != TROVE_ECANCELLED)
        return false;
    log_info("instance %s: %s interrupted by shutdown", job->instance, job_ops[job->kind]);
    return true;
}

/* ------------------------------------------------------------ waiting for the agent */

static bool agent_ready(struct instances *in, const char *instance)
{
    struct agent *a = agents_get(in->cfg.agents, instance);
    return a && a->hello && agent_connected(a, monotonic_ms());
}

static void agent_poll(void *ctx)
{
    struct job *job = ctx;
    if (job_stopped(job))
        return;
    if (agent_ready(job->in, job->instance)) {
        job->on_connected(job);
        return;
    }
    if (monotonic_ms() >= job->deadline_ms) {
        job_fail(job, TROVE_ETIMEOUT, "ERROR", "the instance's agent did not connect within %lld s",
                 (long long)(job->in->cfg.hello_timeout_ms / 1000));
        return;
    }
    loop_timer_arm(job->timer, POLL_AGENT_MS);
}

static void job_wait_agent(struct job *job, job_step_fn then)
{
    job->on_connected = then;
    job->deadline_ms = monotonic_ms() + job->in->cfg.hello_timeout_ms;
    if (!job->timer && !(job->timer = loop_timer_new(job->in->cfg.loop, agent_poll, job))) {
        job_fail(job, TROVE_EINTERNAL, "ERROR", "out of memory");
        return;
    }
    loop_timer_arm(job->timer, 0);
}

/* ------------------------------------------------------------ provisioner steps (worker threads) */

static struct provision *prov(struct job *job)
{
    return job->in->cfg.provision;
}

static int work_create(struct job *job)
{
    return prov(job)->ops->create(prov(job), &job->preq, &job->pi, job->err, sizeof job->err);
}

static int work_start(struct job *job)
{
    return prov(job)->ops->start(prov(job), job->instance, &job->pi, job->err, sizeof job->err);
}

static int work_destroy(struct job *job)
{
    struct provision *p = prov(job);
    if (job->kind == JOB_FORCE_DELETE || job->resumed)
        return p->ops->force_destroy(p, job->instance, job->err, sizeof job->err);
    int rc = p->ops->destroy(p, job->instance, job->err, sizeof job->err);
    return rc == TROVE_ENOTFOUND ? TROVE_OK : rc;   /* nothing of it on this host: nothing to remove */
}

static int work_apply_flavor(struct job *job)
{
    return prov(job)->ops->apply_flavor(prov(job), job->instance, job->ram_mb, &job->params, job->err,
                                        sizeof job->err);
}

/* Idempotent, so a resumed resize does not grow twice. */
static int work_resize_volume(struct job *job)
{
    struct provision *p = prov(job);
    int rc = p->ops->describe(p, job->instance, &job->pi, job->err, sizeof job->err);
    if (rc == TROVE_OK && job->pi.volume_gb < job->volume_gb)
        rc = p->ops->resize_volume(p, job->instance, job->volume_gb, &job->pi, job->err, sizeof job->err);
    return rc;
}

/* ------------------------------------------------------------ registry helpers */

/* Read-modify-write of the instance row (loop thread: the only writer of
 * these fields). */
static int update_row(struct job *job, void (*edit)(struct job *, struct registry_instance *), char *err,
                      size_t errlen)
{
    struct registry_instance row = {0};
    struct registry *r = job->in->cfg.registry;
    int rc = registry_instance_get(r, NULL, job->instance, &row, err, errlen);
    if (rc == TROVE_OK) {
        edit(job, &row);
        rc = registry_instance_update(r, &row, err, errlen);
    }
    registry_instance_clear(&row);
    return rc;
}

/* Strings of a row filled by get are malloc'd: replace one. */
static void replace_text(char **field, const char *text)
{
    char *copy = strdup(text);
    if (copy) {
        free(*field);
        *field = copy;
    }
}

static void edit_provisioned(struct job *job, struct registry_instance *row)
{
    struct tv *p = tv_map();
    char *json = NULL;
    row->engine_port = job->pi.port;
    snprintf(row->volume_kind, sizeof row->volume_kind, "%s", job->pi.volume_kind);
    replace_text(&row->agent_public_key, job->pi.agent_public_key);
    if (p && (tv_set_str(p, "backend", job->pi.backend) | tv_set_str(p, "host", job->pi.host) |
              tv_set_str(p, "dir", job->pi.dir) | tv_set_str(p, "volume_path", job->pi.volume_path) |
              tv_set_str(p, "agent_config", job->pi.agent_config) | tv_set_str(p, "agent_log", job->pi.agent_log)) ==
                 0 &&
        (json = tv_to_json(p, false)))
        replace_text(&row->provision, json);
    free(json);
    tv_free(p);
}

static void edit_flavor(struct job *job, struct registry_instance *row)
{
    snprintf(row->flavor_id, sizeof row->flavor_id, "%s", job->flavor);
}

static void edit_volume(struct job *job, struct registry_instance *row)
{
    row->volume_size_gb = job->volume_gb;
}

/* ------------------------------------------------------------ instance.create */

static void create_prepared(struct job *job, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (shutting_down(job, status))
        return;
    if (status != TROVE_OK) {
        job_fail(job, status, "ERROR", "preparing the engine failed: %s", message);
        return;
    }
    struct tv *out = tv_map();
    if (out)
        tv_set_str(out, "instance_id", job->instance);
    job_finish(job, TROVE_OK, "", out, "ACTIVE", "");
    tv_free(out);
}

static void create_prepare(struct job *job)
{
    struct tv *overrides = tv_child_map(job->prepare, "overrides");
    for (size_t i = 0; overrides && i < job->pi.params.n; i++)
        if (tv_set_str(overrides, job->pi.params.item[i].name, job->pi.params.item[i].value) != 0)
            overrides = NULL;
    if (!overrides) {
        job_fail(job, TROVE_EINTERNAL, "ERROR", "out of memory");
        return;
    }
    tasks_progress(job->in->cfg.tasks, job->task, 50, "preparing the engine");
    job_agent(job, "prepare", job->prepare, INSTANCES_PREPARE_TIMEOUT_MS, create_prepared);
}

static void create_started(struct job *job)
{
    if (job->rc != TROVE_OK) {
        job_fail(job, job->rc, "ERROR", "starting the agent failed: %s", job->err);
        return;
    }
    tasks_progress(job->in->cfg.tasks, job->task, 40, "waiting for the agent to connect");
    job_wait_agent(job, create_prepare);
}

static void create_provisioned(struct job *job)
{
    char err[512] = "";
    if (job->rc != TROVE_OK) {
        job_fail(job, job->rc, "ERROR", "provisioning failed: %s", job->err);
        return;
    }
    int rc = update_row(job, edit_provisioned, err, sizeof err);
    if (rc == TROVE_OK && !job->in->cfg.plaintext_dev && job->in->cfg.rpc &&
        rpc_admit(job->in->cfg.rpc, job->instance, job->pi.agent_public_key, err, sizeof err) != 0)
        rc = TROVE_EINTERNAL;
    if (rc != TROVE_OK) {
        job_fail(job, rc, "ERROR", "recording the provisioned instance failed: %s", err);
        return;
    }
    tasks_progress(job->in->cfg.tasks, job->task, 30, "starting the agent");
    job_offload(job, work_start, create_started);
}

/* What create reads from its args, borrowed from them. */
struct create_args {
    const char *tenant, *name, *flavor, *datastore, *version, *root_password;
    int64_t volume_gb;
    const struct tv *databases, *users;
};

static int create_read_args(const struct control_request *req, struct create_args *a, char *err, size_t errlen)
{
    const struct tv *args = req->args;
    memset(a, 0, sizeof *a);
    a->tenant = req->tenant ? req->tenant : tv_get_str(args, "tenant");
    a->name = tv_get_str(args, "name");
    a->flavor = tv_get_str(args, "flavor");
    a->datastore = tv_get_str(args, "datastore");
    a->version = tv_get_str(args, "datastore_version");
    a->root_password = tv_get_str(args, "root_password");
    a->volume_gb = tv_get_int(args, "volume_size", 0);
    a->databases = tv_get(args, "databases");
    a->users = tv_get(args, "users");
    if (!a->tenant || !*a->tenant)
        err_set(err, errlen, "instance.create needs a tenant");
    else if (!a->name || !a->flavor || !a->datastore || !a->version)
        err_set(err, errlen, "instance.create needs name, flavor, datastore and datastore_version (strings)");
    else if (a->volume_gb < 1 || a->volume_gb > PROVISION_VOLUME_GB_MAX)
        err_set(err, errlen, "volume_size must be an integer of 1-%d GB", PROVISION_VOLUME_GB_MAX);
    else if ((a->databases && a->databases->type != TV_ARRAY) || (a->users && a->users->type != TV_ARRAY))
        err_set(err, errlen, "databases and users must be lists");
    else
        return TROVE_OK;
    return TROVE_EINVAL;
}

/* The datastore version's engine ({"bindir": ..., "binary": ...}) into the job. */
static void read_engine(struct job *job, const char *engine_json)
{
    struct tv *engine = NULL;
    char err[200];
    if (engine_json && *engine_json && json_to_tv(engine_json, &engine, err, sizeof err) == 0) {
        const char *bindir = tv_get_str(engine, "bindir"), *binary = tv_get_str(engine, "binary");
        snprintf(job->engine_bindir, sizeof job->engine_bindir, "%s", bindir ? bindir : "");
        snprintf(job->engine_binary, sizeof job->engine_binary, "%s", binary ? binary : "");
    }
    tv_free(engine);
}

static int create_lookup(struct instances *in, const struct create_args *a, struct job *job, char *err,
                         size_t errlen)
{
    struct registry_flavor flavor = {0};
    struct registry_datastore_version version = {0};
    struct registry *r = in->cfg.registry;
    int rc = registry_flavor_get(r, a->flavor, &flavor, err, errlen);
    if (rc == TROVE_OK)
        rc = registry_datastore_version_get(r, a->version, &version, err, errlen);
    if (rc == TROVE_OK && strcmp(version.datastore, a->datastore) != 0) {
        err_set(err, errlen, "datastore version %s belongs to %s, not %s", a->version, version.datastore,
                a->datastore);
        rc = TROVE_EINVAL;
    } else if (rc == TROVE_OK && !version.active) {
        err_set(err, errlen, "datastore version %s of %s is not active", version.name, version.datastore);
        rc = TROVE_EINVAL;
    } else if (rc == TROVE_OK && (flavor.ram_mb < 64 || flavor.ram_mb > UINT32_MAX)) {
        err_set(err, errlen, "flavor %s has %lld MB of memory; at least 64 are needed", a->flavor,
                (long long)flavor.ram_mb);
        rc = TROVE_EINVAL;
    }
    if (rc == TROVE_OK) {
        job->ram_mb = (uint32_t)flavor.ram_mb;
        job->volume_gb = (uint32_t)a->volume_gb;
        snprintf(job->plugin, sizeof job->plugin, "%s", version.plugin);
        snprintf(job->datastore, sizeof job->datastore, "%s", a->datastore);
        snprintf(job->flavor, sizeof job->flavor, "%s", a->flavor);
        read_engine(job, version.engine);
    }
    registry_flavor_clear(&flavor);
    registry_datastore_version_clear(&version);
    return rc;
}

/* prepare's args (with the passwords) and the task's args (without them:
 * tasks are persisted). */
static int create_split_args(const struct create_args *a, struct tv **prepare, struct tv **public_args)
{
    struct tv *p = tv_map(), *pub = tv_map(), *users = NULL;
    int bad = !p || !pub;
    if (!bad && a->databases)
        bad |= tv_set(p, "databases", tv_copy(a->databases)) | tv_set(pub, "databases", tv_copy(a->databases));
    if (!bad && a->users) {
        bad |= tv_set(p, "users", tv_copy(a->users));
        bad |= !(users = tv_child_array(pub, "users"));
        for (size_t i = 0; !bad && i < a->users->u.a.len; i++) {
            const struct tv *u = a->users->u.a.items[i];
            struct tv *copy = tv_map();
            const char *name = tv_get_str(u, "name"), *host = tv_get_str(u, "host");
            bad |= !copy || tv_set_str(copy, "name", name ? name : "") != 0 ||
                   (host && tv_set_str(copy, "host", host) != 0) || tv_append(users, copy) != 0;
        }
    }
    if (!bad && a->root_password)
        bad |= tv_set_str(p, "root_password", a->root_password) | tv_set_bool(pub, "root_password_given", true);
    if (!bad)
        bad |= tv_set_str(pub, "name", a->name) | tv_set_str(pub, "flavor", a->flavor) |
               tv_set_str(pub, "datastore", a->datastore) | tv_set_str(pub, "datastore_version", a->version) |
               tv_set_int(pub, "volume_size", a->volume_gb) | tv_set_str(pub, "tenant", a->tenant);
    if (bad) {
        tv_free(p);
        tv_free(pub);
        return TROVE_EINTERNAL;
    }
    *prepare = p;
    *public_args = pub;
    return TROVE_OK;
}

static int create_row(struct instances *in, const struct create_args *a, struct job *job, char *id_out, char *err,
                      size_t errlen)
{
    struct registry_instance row = {0};
    snprintf(row.tenant_id, sizeof row.tenant_id, "%s", a->tenant);
    row.name = (char *)a->name;
    snprintf(row.status, sizeof row.status, "BUILD");
    snprintf(row.datastore, sizeof row.datastore, "%s", a->datastore);
    snprintf(row.datastore_version_id, sizeof row.datastore_version_id, "%s", a->version);
    snprintf(row.flavor_id, sizeof row.flavor_id, "%s", a->flavor);
    row.volume_size_gb = job->volume_gb;
    int rc = registry_instance_create(in->cfg.registry, &row, err, errlen);
    if (rc == TROVE_OK)
        snprintf(id_out, REGISTRY_ID_SIZE, "%s", row.id);
    return rc;
}

/* The task's reply, and its events to a caller that follows them. */
static void reply_task(struct job *job, const struct control_request *req, control_reply_fn reply, void *user)
{
    struct tv *result = tv_map();
    if (!result || (tv_set_str(result, "task", job->task) | tv_set_str(result, "state", "running") |
                    tv_set_str(result, "instance_id", job->instance)) != 0) {
        tv_free(result);
        reply(user, TROVE_EINTERNAL, "out of memory", NULL);
        return;
    }
    reply(user, TROVE_OK, "", result);
    tv_free(result);
    if (req->on_event)
        tasks_watch(job->in->cfg.tasks, job->task, req->on_event, user);
}

static void fill_request(struct instances *in, struct job *job)
{
    job->preq = (struct provision_request){
        .instance_id = job->instance,
        .datastore = job->datastore,
        .plugin = job->plugin,
        .engine_bindir = job->engine_bindir[0] ? job->engine_bindir : NULL,
        .engine_binary = job->engine_binary[0] ? job->engine_binary : NULL,
        .ram_mb = job->ram_mb,
        .volume_gb = job->volume_gb,
        .control_endpoint = in->endpoint,
        .server_public_key = in->cfg.plaintext_dev ? NULL : in->server_key,
        .plaintext_dev = in->cfg.plaintext_dev,
        .heartbeat_ms = in->cfg.heartbeat_ms,
        .no_start = true,
    };
}

static void on_create(void *ctx, struct control_core *core, const struct control_request *req,
                      control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct create_args a;
    struct tv *public_args = NULL;
    char err[512] = "", id[REGISTRY_ID_SIZE] = "";
    (void)core;
    struct job *job = job_new(in, JOB_CREATE, "");
    int rc = job ? create_read_args(req, &a, err, sizeof err) : TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = create_lookup(in, &a, job, err, sizeof err);
    if (rc == TROVE_OK && create_split_args(&a, &job->prepare, &public_args) != TROVE_OK) {
        err_set(err, sizeof err, "out of memory");
        rc = TROVE_EINTERNAL;
    }
    if (rc == TROVE_OK)
        rc = create_row(in, &a, job, id, err, sizeof err);
    if (rc == TROVE_OK) {
        snprintf(job->instance, sizeof job->instance, "%s", id);
        rc = tasks_begin(in->cfg.tasks, a.tenant, id, "instance.create", public_args, job->task, err, sizeof err);
        if (rc == TROVE_OK)
            rc = registry_instance_set_task(in->cfg.registry, id, NULL, job->task, err, sizeof err);
        if (rc != TROVE_OK) {
            if (job->task[0])
                tasks_finish(in->cfg.tasks, job->task, rc, err, NULL);
            registry_instance_mark_deleted(in->cfg.registry, NULL, id, NULL, 0);
        }
    }
    tv_free(public_args);
    if (rc != TROVE_OK) {
        if (job)
            job_free(job);
        reply(user, rc, err[0] ? err : "out of memory", NULL);
        return;
    }
    log_info("instance %s: create (%s, %u MB, %u GB) as task %s", id, job->plugin, job->ram_mb, job->volume_gb,
             job->task);
    reply_task(job, req, reply, user);
    fill_request(in, job);
    tasks_progress(in->cfg.tasks, job->task, 5, "provisioning");
    job_offload(job, work_create, create_provisioned);
}

/* ------------------------------------------------------------ actions on an existing instance */

/* Open a task on the instance and take its slot in the registry. */
static int begin_action(struct instances *in, const struct control_request *req, enum job_kind kind,
                        const struct tv *args, struct job **out, char *err, size_t errlen)
{
    struct registry_instance row = {0};
    struct job *job = NULL;
    if (!req->instance) {
        err_set(err, errlen, "%s needs an instance", job_ops[kind]);
        return TROVE_EINVAL;
    }
    int rc = registry_instance_get(in->cfg.registry, req->tenant, req->instance, &row, err, errlen);
    if (rc == TROVE_OK && row.task_id[0]) {
        err_set(err, errlen, "instance %s is busy with task %s; one action at a time", row.id, row.task_id);
        rc = TROVE_ECONFLICT;
    }
    if (rc == TROVE_OK && !(job = job_new(in, kind, row.id))) {
        err_set(err, errlen, "out of memory");
        rc = TROVE_EINTERNAL;
    }
    if (rc == TROVE_OK)
        rc = tasks_begin(in->cfg.tasks, row.tenant_id, row.id, job_ops[kind], args, job->task, err, errlen);
    if (rc == TROVE_OK) {
        rc = registry_instance_set_task(in->cfg.registry, row.id, NULL, job->task, err, errlen);
        if (rc != TROVE_OK)
            tasks_finish(in->cfg.tasks, job->task, rc, err, NULL);
    }
    registry_instance_clear(&row);
    if (rc != TROVE_OK && job)
        job_free(job);
    *out = rc == TROVE_OK ? job : NULL;
    return rc;
}

/* -- delete and force delete */

static void destroyed(struct job *job)
{
    char err[256];
    if (job->rc != TROVE_OK) {
        job_fail(job, job->rc, "ERROR", "%s failed: %s", job->kind == JOB_DELETE ? "delete" : "force delete",
                 job->err);
        return;
    }
    int rc = registry_instance_mark_deleted(job->in->cfg.registry, NULL, job->instance, err, sizeof err);
    if (rc != TROVE_OK && rc != TROVE_ENOTFOUND)
        log_warn("instance %s: removed from the host but not from the registry: %s", job->instance, err);
    job_finish(job, TROVE_OK, "", NULL, NULL, NULL);
}

static void start_destroy(struct job *job)
{
    if (job->in->cfg.rpc)
        rpc_revoke(job->in->cfg.rpc, job->instance);
    tasks_progress(job->in->cfg.tasks, job->task, 10, "removing the instance");
    job_offload(job, work_destroy, destroyed);
}

/* A force delete waits for a provisioner call on the instance to return
 * (the job it superseded frees itself then). */
static bool thread_on(struct instances *in, const char *instance, const struct job *except)
{
    for (struct job *j = in->jobs; j; j = j->next)
        if (j != except && j->in_thread && strcmp(j->instance, instance) == 0)
            return true;
    return false;
}

static void force_wait(void *ctx)
{
    struct job *job = ctx;
    if (thread_on(job->in, job->instance, job))
        loop_timer_arm(job->timer, POLL_AGENT_MS);
    else
        start_destroy(job);
}

/* Whatever holds the instance gives way: its job stops at its next step
 * (freed now when nothing of it is in flight), its task fails. */
static void supersede(struct instances *in, const char *instance, const struct job *force)
{
    const char *why = "superseded by a force delete of the instance";
    struct job *other;
    while ((other = job_on(in, instance, force))) {
        other->superseded = true;
        tasks_finish(in->cfg.tasks, other->task, TROVE_ECANCELLED, why, NULL);
        if (!other->in_thread && !other->at_agent)
            job_free(other);
    }
    const char *holder = tasks_running_on(in->cfg.tasks, instance);
    if (holder)
        tasks_finish(in->cfg.tasks, holder, TROVE_ECANCELLED, why, NULL);
}

static int begin_force(struct instances *in, const struct control_request *req, struct job **out, char *err,
                       size_t errlen)
{
    struct registry_instance row = {0};
    struct job *job = NULL;
    if (!req->instance) {
        err_set(err, errlen, "instance.force_delete needs an instance");
        return TROVE_EINVAL;
    }
    int rc = registry_instance_get(in->cfg.registry, req->tenant, req->instance, &row, err, errlen);
    if (rc == TROVE_OK && !(job = job_new(in, JOB_FORCE_DELETE, row.id))) {
        err_set(err, errlen, "out of memory");
        rc = TROVE_EINTERNAL;
    }
    if (rc == TROVE_OK) {
        supersede(in, row.id, job);
        rc = tasks_begin(in->cfg.tasks, row.tenant_id, row.id, "instance.force_delete", NULL, job->task, err, errlen);
    }
    if (rc == TROVE_OK) {
        rc = registry_instance_set_task(in->cfg.registry, row.id, row.task_id[0] ? row.task_id : NULL, job->task,
                                        err, errlen);
        if (rc != TROVE_OK)
            tasks_finish(in->cfg.tasks, job->task, rc, err, NULL);
    }
    registry_instance_clear(&row);
    if (rc != TROVE_OK && job)
        job_free(job);
    *out = rc == TROVE_OK ? job : NULL;
    return rc;
}

static void on_delete(void *ctx, struct control_core *core, const struct control_request *req,
                      control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct job *job;
    char err[512] = "";
    (void)core;
    int rc = begin_action(in, req, JOB_DELETE, NULL, &job, err, sizeof err);
    if (rc != TROVE_OK) {
        reply(user, rc, err, NULL);
        return;
    }
    reply_task(job, req, reply, user);
    start_destroy(job);
}

static void on_force_delete(void *ctx, struct control_core *core, const struct control_request *req,
                            control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct job *job;
    char err[512] = "";
    (void)core;
    int rc = begin_force(in, req, &job, err, sizeof err);
    if (rc != TROVE_OK) {
        reply(user, rc, err, NULL);
        return;
    }
    reply_task(job, req, reply, user);
    if (!(job->timer = loop_timer_new(in->cfg.loop, force_wait, job))) {
        job_fail(job, TROVE_EINTERNAL, NULL, "out of memory");
        return;
    }
    force_wait(job);
}

/* -- restart */

static void restarted(struct job *job, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (shutting_down(job, status))
        return;
    if (status != TROVE_OK)
        job_fail(job, status, "ERROR", "restart failed: %s", message);
    else
        job_finish(job, TROVE_OK, "", NULL, "ACTIVE", "");
}

static void restart_engine(struct job *job)
{
    tasks_progress(job->in->cfg.tasks, job->task, 50, "restarting the engine");
    job_agent(job, "restart", NULL, INSTANCES_RESTART_TIMEOUT_MS, restarted);
}

static void restart_agent_started(struct job *job)
{
    if (job->rc != TROVE_OK) {
        job_fail(job, job->rc, "ERROR", "restart failed: the agent did not start: %s", job->err);
        return;
    }
    job_wait_agent(job, restart_engine);
}

/* An agent that does not run is started first (the engine restarts through it). */
static void restart_begin(struct job *job)
{
    set_status(job, NULL, "REBOOT", "");
    if (agent_ready(job->in, job->instance))
        restart_engine(job);
    else
        job_offload(job, work_start, restart_agent_started);
}

static void on_restart(void *ctx, struct control_core *core, const struct control_request *req,
                       control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct job *job;
    char err[512] = "";
    (void)core;
    int rc = begin_action(in, req, JOB_RESTART, NULL, &job, err, sizeof err);
    if (rc != TROVE_OK) {
        reply(user, rc, err, NULL);
        return;
    }
    reply_task(job, req, reply, user);
    restart_begin(job);
}

/* -- resize flavor: memory parameters through the agent, then a restart */

static void flavor_restarted(struct job *job, int status, const char *message, const struct tv *result)
{
    char err[256];
    (void)result;
    if (shutting_down(job, status))
        return;
    if (status != TROVE_OK) {
        job_fail(job, status, "ERROR", "the engine did not restart with the new flavor: %s", message);
        return;
    }
    if (update_row(job, edit_flavor, err, sizeof err) != TROVE_OK)
        log_warn("instance %s: the new flavor is applied but not recorded: %s", job->instance, err);
    job_finish(job, TROVE_OK, "", NULL, "ACTIVE", "");
}

static void flavor_applied(struct job *job, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (shutting_down(job, status))
        return;
    if (status != TROVE_OK) {
        job_fail(job, status, "ACTIVE", "the flavor's memory settings were refused: %s", message);
        return;
    }
    tasks_progress(job->in->cfg.tasks, job->task, 60, "restarting the engine");
    job_agent(job, "restart", NULL, INSTANCES_RESTART_TIMEOUT_MS, flavor_restarted);
}

static void flavor_params(struct job *job)
{
    struct tv *args = tv_map(), *values = args ? tv_child_map(args, "values") : NULL;
    if (job->rc != TROVE_OK) {
        tv_free(args);
        job_fail(job, job->rc, "ACTIVE", "resize failed: %s", job->err);
        return;
    }
    for (size_t i = 0; values && i < job->params.n; i++)
        if (tv_set_str(values, job->params.item[i].name, job->params.item[i].value) != 0)
            values = NULL;
    if (!values) {
        tv_free(args);
        job_fail(job, TROVE_EINTERNAL, "ACTIVE", "out of memory");
        return;
    }
    tasks_progress(job->in->cfg.tasks, job->task, 30, "applying the flavor's memory settings");
    job_agent(job, "config.apply", args, 0, flavor_applied);
    tv_free(args);
}

static void flavor_connected(struct job *job)
{
    job_offload(job, work_apply_flavor, flavor_params);
}

static int read_flavor(struct instances *in, const struct tv *args, struct job *job, char *err, size_t errlen)
{
    struct registry_flavor f = {0};
    const char *id = tv_get_str(args, "flavor");
    if (!id) {
        err_set(err, errlen, "instance.resize_flavor needs flavor (a flavor id)");
        return TROVE_EINVAL;
    }
    int rc = registry_flavor_get(in->cfg.registry, id, &f, err, errlen);
    if (rc == TROVE_OK && (f.ram_mb < 64 || f.ram_mb > UINT32_MAX)) {
        err_set(err, errlen, "flavor %s has %lld MB of memory; at least 64 are needed", id, (long long)f.ram_mb);
        rc = TROVE_EINVAL;
    }
    if (rc == TROVE_OK) {
        job->ram_mb = (uint32_t)f.ram_mb;
        snprintf(job->flavor, sizeof job->flavor, "%s", f.id);
    }
    registry_flavor_clear(&f);
    return rc;
}

static void on_resize_flavor(void *ctx, struct control_core *core, const struct control_request *req,
                             control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct job probe = {0}, *job = NULL;
    char err[512] = "";
    (void)core;
    int rc = read_flavor(in, req->args, &probe, err, sizeof err);
    if (rc == TROVE_OK)
        rc = begin_action(in, req, JOB_RESIZE_FLAVOR, req->args, &job, err, sizeof err);
    if (rc != TROVE_OK) {
        reply(user, rc, err, NULL);
        return;
    }
    job->ram_mb = probe.ram_mb;
    snprintf(job->flavor, sizeof job->flavor, "%s", probe.flavor);
    reply_task(job, req, reply, user);
    set_status(job, NULL, "RESIZE", "");
    job_wait_agent(job, flavor_connected);
}

/* -- resize volume: the engine stopped through the agent, the volume grown
 * offline by the provisioner, the engine started again */

static void volume_started(struct job *job, int status, const char *message, const struct tv *result)
{
    char err[256];
    (void)result;
    if (shutting_down(job, status))
        return;
    if (job->rc == TROVE_OK && update_row(job, edit_volume, err, sizeof err) != TROVE_OK)
        log_warn("instance %s: the volume grew but its size is not recorded: %s", job->instance, err);
    if (job->rc != TROVE_OK)
        job_fail(job, job->rc, status == TROVE_OK ? "ACTIVE" : "ERROR", "resizing the volume failed: %s%s%s",
                 job->err, status == TROVE_OK ? "" : "; the engine did not start again: ",
                 status == TROVE_OK ? "" : message);
    else if (status != TROVE_OK)
        job_fail(job, status, "ERROR", "the volume grew to %u GB but the engine did not start again: %s",
                 job->volume_gb, message);
    else
        job_finish(job, TROVE_OK, "", NULL, "ACTIVE", "");
}

static void volume_start_engine(struct job *job)
{
    tasks_progress(job->in->cfg.tasks, job->task, 80, "starting the engine");
    job_agent(job, "start", NULL, 0, volume_started);
}

static void volume_grown(struct job *job)
{
    job_wait_agent(job, volume_start_engine);
}

static void volume_stopped(struct job *job, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (shutting_down(job, status))
        return;
    if (status != TROVE_OK)   /* the provisioner stops the engine by its pid then */
        log_warn("instance %s: stopping the engine through the agent failed (%s)", job->instance, message);
    tasks_progress(job->in->cfg.tasks, job->task, 30, "growing the volume");
    job_offload(job, work_resize_volume, volume_grown);
}

static void volume_begin(struct job *job)
{
    set_status(job, NULL, "RESIZE", "");
    tasks_progress(job->in->cfg.tasks, job->task, 10, "stopping the engine");
    job_agent(job, "stop", NULL, 0, volume_stopped);
}

static int read_size(struct instances *in, const struct control_request *req, uint32_t *gb, char *err,
                     size_t errlen)
{
    struct registry_instance row = {0};
    int64_t size = tv_get_int(req->args, "size", 0);
    if (size < 1 || size > PROVISION_VOLUME_GB_MAX) {
        err_set(err, errlen, "instance.resize_volume needs size, an integer of 1-%d GB", PROVISION_VOLUME_GB_MAX);
        return TROVE_EINVAL;
    }
    int rc = req->instance ? registry_instance_get(in->cfg.registry, req->tenant, req->instance, &row, err, errlen)
                           : TROVE_EINVAL;
    if (rc == TROVE_EINVAL && !req->instance)
        err_set(err, errlen, "instance.resize_volume needs an instance");
    if (rc == TROVE_OK && size <= row.volume_size_gb) {
        err_set(err, errlen, "a volume can only grow: the new size %lld GB is not larger than %lld GB",
                (long long)size, (long long)row.volume_size_gb);
        rc = TROVE_EINVAL;
    }
    registry_instance_clear(&row);
    *gb = (uint32_t)size;
    return rc;
}

static void on_resize_volume(void *ctx, struct control_core *core, const struct control_request *req,
                             control_reply_fn reply, void *user)
{
    struct instances *in = ctx;
    struct job *job = NULL;
    uint32_t gb = 0;
    char err[512] = "";
    (void)core;
    int rc = read_size(in, req, &gb, err, sizeof err);
    if (rc == TROVE_OK)
        rc = begin_action(in, req, JOB_RESIZE_VOLUME, req->args, &job, err, sizeof err);
    if (rc != TROVE_OK) {
        reply(user, rc, err, NULL);
        return;
    }
    job->volume_gb = gb;
    reply_task(job, req, reply, user);
    volume_begin(job);
}

/* ------------------------------------------------------------ resuming after a restart */

static struct job *resume_job(struct instances *in, enum job_kind kind, const char *task, const char *instance)
{
    struct job *job = instance ? job_new(in, kind, instance) : NULL;
    if (!job) {
        tasks_finish(in->cfg.tasks, task, TROVE_EINTERNAL,
                     instance ? "out of memory resuming the task" : "a resumed task names no instance", NULL);
        return NULL;
    }
    snprintf(job->task, sizeof job->task, "%s", task);
    job->resumed = true;
    log_info("instance %s: resuming %s (task %s) after a restart", instance, job_ops[kind], task);
    return job;
}

/* A resumed job brings its instance back first (mount, agent started if
 * dead: what adoption does for instances without a task), then waits for
 * the agent's hello and goes on with next. */
static void resume_started(struct job *job)
{
    if (job->rc != TROVE_OK) {
        job_fail(job, job->rc, "ERROR", "cannot resume %s after a restart of trove-control: %s", job_ops[job->kind],
                 job->err);
        return;
    }
    job_wait_agent(job, job->resume_next);
}

static void resume_via_agent(struct job *job, job_step_fn next)
{
    job->resume_next = next;
    job_offload(job, work_start, resume_started);
}

/* A create interrupted by a restart: done if the engine runs, else failed
 * (the users' passwords were not kept, so prepare cannot be sent again). */
static void resume_create_status(struct job *job, int status, const char *message, const struct tv *result)
{
    const char *state = tv_get_str(result, "state");
    if (shutting_down(job, status))
        return;
    if (status == TROVE_OK && state && strcmp(state, "running") == 0) {
        job_finish(job, TROVE_OK, "", NULL, "ACTIVE", "");
        return;
    }
    job_fail(job, TROVE_EINTERNAL, "ERROR",
             "trove-control restarted while the engine was being prepared (the agent reports %s); the requested "
             "users' passwords are not kept across a restart: delete the instance and create it again",
             status == TROVE_OK ? (state ? state : "no state") : message);
}

static void resume_create_connected(struct job *job)
{
    job_agent(job, "status", NULL, 0, resume_create_status);
}

static void resume_create(void *ctx, const char *task, const char *tenant, const char *instance,
                          const struct tv *args)
{
    struct instances *in = ctx;
    struct registry_instance row = {0};
    char err[256];
    (void)tenant;
    (void)args;
    struct job *job = resume_job(in, JOB_CREATE, task, instance);
    if (!job)
        return;
    int rc = registry_instance_get(in->cfg.registry, NULL, instance, &row, err, sizeof err);
    bool provisioned = rc == TROVE_OK && row.agent_public_key && row.agent_public_key[0];
    registry_instance_clear(&row);
    if (rc != TROVE_OK)
        job_fail(job, rc, NULL, "the instance is gone: %s", err);
    else if (!provisioned)
        job_fail(job, TROVE_EINTERNAL, "ERROR", "trove-control restarted before the instance was provisioned");
    else
        resume_via_agent(job, resume_create_connected);
}

static void resume_delete(void *ctx, const char *task, const char *tenant, const char *instance,
                          const struct tv *args)
{
    (void)tenant;
    (void)args;
    struct job *job = resume_job(ctx, JOB_DELETE, task, instance);
    if (job)
        start_destroy(job);   /* resumed: the forced way, whatever state the first attempt left */
}

static void resume_force_delete(void *ctx, const char *task, const char *tenant, const char *instance,
                                const struct tv *args)
{
    (void)tenant;
    (void)args;
    struct job *job = resume_job(ctx, JOB_FORCE_DELETE, task, instance);
    if (job)
        start_destroy(job);
}

static void resume_restart(void *ctx, const char *task, const char *tenant, const char *instance,
                           const struct tv *args)
{
    (void)tenant;
    (void)args;
    struct job *job = resume_job(ctx, JOB_RESTART, task, instance);
    if (job)
        resume_via_agent(job, restart_engine);
}

static void resume_resize_flavor(void *ctx, const char *task, const char *tenant, const char *instance,
                                 const struct tv *args)
{
    struct instances *in = ctx;
    char err[256];
    (void)tenant;
    struct job *job = resume_job(in, JOB_RESIZE_FLAVOR, task, instance);
    if (!job)
        return;
    if (read_flavor(in, args, job, err, sizeof err) != TROVE_OK)
        job_fail(job, TROVE_EINVAL, "ACTIVE", "cannot resume the resize: %s", err);
    else
        resume_via_agent(job, flavor_connected);
}

static void resume_resize_volume(void *ctx, const char *task, const char *tenant, const char *instance,
                                 const struct tv *args)
{
    (void)tenant;
    struct job *job = resume_job(ctx, JOB_RESIZE_VOLUME, task, instance);
    int64_t size = tv_get_int(args, "size", 0);
    if (!job)
        return;
    if (size < 1 || size > PROVISION_VOLUME_GB_MAX) {
        job_fail(job, TROVE_EINVAL, "ERROR", "cannot resume the resize: its size is missing");
        return;
    }
    job->volume_gb = (uint32_t)size;
    resume_via_agent(job, volume_begin);
}

/* ------------------------------------------------------------ adoption at start */

struct adoption {
    struct instances *in;
    size_t n;
    char (*ids)[REGISTRY_ID_SIZE];
    int *rc;
    char (*err)[300];
};

static void adoption_free(struct adoption *a)
{
    free(a->ids);
    free(a->rc);
    free(a->err);
    free(a);
}

/* On the loop: an instance the provisioner cannot bring back shows ERROR
 * (unless a task on it is being resumed, which decides its status). */
static void adoption_done(void *ctx)
{
    struct adoption *a = ctx;
    struct registry_instance row = {0};
    char err[256];
    for (size_t i = 0; i < a->n; i++) {
        if (a->rc[i] == TROVE_OK)
            continue;
        log_warn("instance %s: cannot adopt: %s", a->ids[i], a->err[i]);
        if (registry_instance_get(a->in->cfg.registry, NULL, a->ids[i], &row, err, sizeof err) == TROVE_OK &&
            !row.task_id[0])
            registry_instance_set_status(a->in->cfg.registry, a->ids[i], NULL, "ERROR", a->err[i], NULL, 0);
        registry_instance_clear(&row);
    }
    adoption_free(a);
}

static void *adoption_thread(void *ctx)
{
    struct adoption *a = ctx;
    struct instances *in = a->in;
    struct provision *p = in->cfg.provision;
    struct provision_instance pi;
    for (size_t i = 0; i < a->n; i++)
        a->rc[i] = p->ops->adopt(p, a->ids[i], &pi, a->err[i], sizeof a->err[i]);
    if (loop_post(in->cfg.loop, adoption_done, a) != 0)
        adoption_free(a);
    pthread_mutex_lock(&in->mu);
    in->threads--;
    pthread_cond_broadcast(&in->idle);
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

/* Admit the key of each live instance; collect those to adopt: the ones no
 * task holds (a resumed task brings its instance back itself, so two
 * threads never work on one instance). */
static struct adoption *admit_all(struct instances *in)
{
    struct registry_instance *rows = NULL;
    struct registry_query q = {0};
    size_t n = 0;
    char err[256];
    if (registry_instance_list(in->cfg.registry, &q, &rows, &n, NULL, err, sizeof err) != TROVE_OK) {
        log_error("cannot list instances to adopt: %s", err);
        return NULL;
    }
    struct adoption *a = calloc(1, sizeof *a);
    if (a)
        a->in = in;
    if (a && n) {
        a->ids = calloc(n, sizeof *a->ids);
        a->rc = calloc(n, sizeof *a->rc);
        a->err = calloc(n, sizeof *a->err);
    }
    for (size_t i = 0; a && (!n || (a->ids && a->rc && a->err)) && i < n; i++) {
        if (!rows[i].agent_public_key[0])
            continue;
        if (!in->cfg.plaintext_dev && in->cfg.rpc &&
            rpc_admit(in->cfg.rpc, rows[i].id, rows[i].agent_public_key, err, sizeof err) != 0)
            log_warn("instance %s: cannot admit its agent key: %s", rows[i].id, err);
        if (!rows[i].task_id[0])   /* the task's resumer brings the instance back itself */
            snprintf(a->ids[a->n++], REGISTRY_ID_SIZE, "%s", rows[i].id);
    }
    registry_instances_free(rows, n);
    if (a && n && (!a->ids || !a->rc || !a->err)) {
        log_error("out of memory adopting instances");
        adoption_free(a);
        return NULL;
    }
    return a;
}

void instances_start(struct instances *in)
{
    struct adoption *a = admit_all(in);
    pthread_t thread;
    pthread_attr_t attr;
    if (!a)
        return;
    if (a->n == 0) {
        adoption_free(a);
        return;
    }
    log_info("adopting %zu instance(s)", a->n);
    pthread_mutex_lock(&in->mu);
    in->threads++;
    pthread_mutex_unlock(&in->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, adoption_thread, a) != 0) {
        log_error("cannot start a thread to adopt instances");
        pthread_mutex_lock(&in->mu);
        in->threads--;
        pthread_mutex_unlock(&in->mu);
        adoption_free(a);
    }
    pthread_attr_destroy(&attr);
}

/* ------------------------------------------------------------ setup */

/* Agents on this host reach a wildcard bind address on loopback. */
static void local_endpoint(const char *endpoint, char *out, size_t cap)
{
    static const struct { const char *prefix, *local; } wild[] = {
        {"tcp://0.0.0.0:", "tcp://127.0.0.1:"}, {"tcp://*:", "tcp://127.0.0.1:"}, {"tcp://[::]:", "tcp://[::1]:"}};
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        size_t n = strlen(wild[i].prefix);
        if (strncmp(endpoint, wild[i].prefix, n) == 0) {
            snprintf(out, cap, "%s%s", wild[i].local, endpoint + n);
            return;
        }
    }
    snprintf(out, cap, "%s", endpoint);
}

struct instances *instances_new(const struct instances_config *cfg, char *err, size_t errlen)
{
    static const struct {
        const char *op;
        core_handler_fn handler;
        tasks_resume_fn resume;
    } ops[] = {
        {"instance.create", on_create, resume_create},
        {"instance.delete", on_delete, resume_delete},
        {"instance.force_delete", on_force_delete, resume_force_delete},
        {"instance.restart", on_restart, resume_restart},
        {"instance.resize_flavor", on_resize_flavor, resume_resize_flavor},
        {"instance.resize_volume", on_resize_volume, resume_resize_volume},
    };
    if (!cfg->agent_endpoint || strlen(cfg->agent_endpoint) >= 250 || !cfg->registry || !cfg->provision ||
        !cfg->core || !cfg->tasks || !cfg->loop || !cfg->agents) {
        err_set(err, errlen, "instances: missing or overlong configuration");
        return NULL;
    }
    if (!cfg->plaintext_dev && !keys_is_z85(cfg->server_public_key)) {
        err_set(err, errlen, "instances: the control plane's public key is missing or malformed");
        return NULL;
    }
    struct instances *in = calloc(1, sizeof *in);
    if (!in) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    in->cfg = *cfg;
    if (!in->cfg.hello_timeout_ms)
        in->cfg.hello_timeout_ms = INSTANCES_HELLO_TIMEOUT_MS;
    local_endpoint(cfg->agent_endpoint, in->endpoint, sizeof in->endpoint);
    snprintf(in->server_key, sizeof in->server_key, "%s", cfg->plaintext_dev ? "" : cfg->server_public_key);
    in->cfg.agent_endpoint = in->endpoint;
    in->cfg.server_public_key = in->server_key;
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->idle, NULL);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (core_register(cfg->core, ops[i].op, ops[i].handler, in) != 0 ||
            tasks_set_resumer(cfg->tasks, ops[i].op, ops[i].resume, in) != 0) {
            err_set(err, errlen, "cannot register %s", ops[i].op);
            instances_free(in);
            return NULL;
        }
    }
    return in;
}

void instances_set_rpc(struct instances *in, struct rpc *rpc)
{
    in->cfg.rpc = rpc;
}

void instances_free(struct instances *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    while (in->threads > 0)
        pthread_cond_wait(&in->idle, &in->mu);
    pthread_mutex_unlock(&in->mu);
    while (in->jobs)
        job_free(in->jobs);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->idle);
    free(in);
}
