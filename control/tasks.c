/*
 * tasks.c - requests waiting for an agent's reply, and tasks from their
 * start to their outcome: who follows them, which instance they hold, when
 * they must end at the latest. It owns copies of everything it keeps; it
 * sends nothing (the core does) and calls back only on the loop thread.
 */
#include "tasks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "registry.h"
#include "status.h"
#include "table.h"
#include "timing.h"
#include "value.h"
#include "wire.h"

#define HOUSEKEEPING_MS 60000
#define PROGRESS_SAVE_MS 1000             /* progress reaches the registry at most this often per task */
#define KEY_MAX (TASK_ID_MAX + 1 + TASK_ID_MAX)

struct watcher {
    control_event_fn fn;
    void *user;
    struct watcher *next;
};

struct task {
    char id[TASK_ID_MAX + 1];
    char instance[TASK_ID_MAX + 1];   /* "" when none */
    char tenant[TASK_ID_MAX + 1];     /* "" for the operator */
    char op[65];
    char parent[TASK_ID_MAX + 1];     /* the task this one is a step of, "" if none */
    bool by_agent;                    /* run by the instance's agent (else by the control plane) */
    enum task_state state;
    int percent;                      /* -1 unknown */
    char *message;
    struct tv *args;                  /* control tasks: for resuming */
    struct tv *done;                  /* finished: its task.done event */
    int64_t created_at, updated_at;   /* Unix ms */
    int64_t deadline_ms;              /* monotonic; running tasks fail after it */
    int64_t finished_ms;              /* monotonic */
    struct watcher *watchers;
    bool saved;                       /* the registry has a row for it */
    bool outcome_unsaved;             /* finished, but the registry did not take the outcome yet */
    bool from_earlier_run;            /* loaded at start: waiting for tasks_resume or its agent */
    int64_t owner_epoch;              /* the registry row's owner epoch when loaded */
    int64_t progress_saved_ms;        /* monotonic */
};

/* One caller waiting for a reply. */
struct asker {
    control_reply_fn reply;
    control_event_fn on_event;
    void *user;
    struct asker *next;
};

/* A request sent to an agent; a retry of the same id joins the askers. */
struct pending {
    char instance[TASK_ID_MAX + 1];
    char id[TASK_ID_MAX + 1];
    char op[65];
    char tenant[TASK_ID_MAX + 1];
    char parent[TASK_ID_MAX + 1];
    struct asker *askers;
    int64_t deadline_ms, timeout_ms;
};

static void pending_free(void *value)
{
    struct pending *p = value;
    for (struct asker *a = p->askers, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    free(p);
}

/* Answer every asker of p (then free p). */
static void pending_answer(struct pending *p, int status, const char *message, const struct tv *result)
{
    struct asker *a = p->askers;
    p->askers = NULL;
    while (a) {
        struct asker *next = a->next;
        a->reply(a->user, status, message, result);
        free(a);
        a = next;
    }
    pending_free(p);
}

struct resumer {
    tasks_resume_fn fn;
    void *ctx;
};

struct tasks {
    struct tasks_config cfg;
    struct table *by_id;              /* id -> struct task */
    struct table *busy;               /* instance -> struct task * (borrowed): the task holding it */
    struct table *pending;            /* instance \0 id -> struct pending */
    struct table *resumers;           /* op -> struct resumer */
    char *ring[TASKS_FINISHED_KEEP];  /* finished ids, oldest evicted first */
    size_t ring_next;
    struct loop_timer *timer;
    int64_t next_deadline_ms;
    int64_t next_housekeeping_ms;
    tasks_observer_fn observer;       /* outcomes of agent operations */
    void *observer_ctx;
    char owner[REGISTRY_ID_SIZE];     /* this process, for the registry's task rows */
    int64_t epoch;                    /* this process's start (Unix ms) */
};

static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t make_key(char *key, const char *instance, const char *id)
{
    size_t ilen = strnlen(instance, TASK_ID_MAX), idlen = strnlen(id, TASK_ID_MAX);
    memcpy(key, instance, ilen);
    key[ilen] = '\0';
    memcpy(key + ilen + 1, id, idlen);
    return ilen + 1 + idlen;
}

const char *task_state_name(enum task_state s)
{
    return s == TASK_RUNNING ? "running" : s == TASK_COMPLETED ? "completed" : "failed";
}

int task_state_from_name(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "running") == 0)
        return TASK_RUNNING;
    if (strcmp(name, "completed") == 0)
        return TASK_COMPLETED;
    return strcmp(name, "failed") == 0 ? TASK_FAILED : -1;
}

/* ------------------------------------------------------------ lifetime */

static void task_free(void *p)
{
    struct task *t = p;
    for (struct watcher *w = t->watchers, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    free(t->message);
    tv_free(t->args);
    tv_free(t->done);
    free(t);
}

static void arm(struct tasks *t, int64_t deadline_ms)
{
    if (deadline_ms < t->next_deadline_ms) {
        t->next_deadline_ms = deadline_ms;
        loop_timer_arm(t->timer, deadline_ms - monotonic_ms());
    }
}

static void on_timer(void *ctx);
static void load_unfinished(struct tasks *t);
static int outcome_of(const struct tv *msg, const char **message);

struct tasks *tasks_new(const struct tasks_config *cfg)
{
    struct tasks *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cfg = *cfg;
    if (t->cfg.task_deadline_ms <= 0)
        t->cfg.task_deadline_ms = TASKS_DEFAULT_DEADLINE_MS;
    t->by_id = table_new(task_free);
    t->busy = table_new(NULL);
    t->pending = table_new(pending_free);
    t->resumers = table_new(free);
    t->timer = cfg->loop ? loop_timer_new(cfg->loop, on_timer, t) : NULL;
    if (!t->by_id || !t->busy || !t->pending || !t->resumers || !t->timer) {
        tasks_free(t);
        return NULL;
    }
    t->next_deadline_ms = INT64_MAX;
    t->next_housekeeping_ms = monotonic_ms() + HOUSEKEEPING_MS;
    arm(t, t->next_housekeeping_ms);
    t->epoch = wall_ms();
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(t->owner, sizeof t->owner, "%.40s:%ld", host, (long)getpid());
    if (t->cfg.registry)
        load_unfinished(t);
    return t;
}

void tasks_free(struct tasks *t)
{
    if (!t)
        return;
    table_free(t->pending);
    table_free(t->busy);
    table_free(t->by_id);
    table_free(t->resumers);
    for (size_t i = 0; i < TASKS_FINISHED_KEEP; i++)
        free(t->ring[i]);
    loop_timer_free(t->timer);
    free(t);
}

/* ------------------------------------------------------------ events */

static struct tv *event_base(const char *id, const char *name)
{
    struct tv *e = tv_map();
    if (e && (tv_set_int(e, "v", WIRE_PROTOCOL_VERSION) | tv_set_str(e, "type", "event") | tv_set_str(e, "id", id) |
              tv_set_str(e, "event", name)) != 0) {
        tv_free(e);
        return NULL;
    }
    return e;
}

/* A task.done made here: ok with result (borrowed, may be NULL), or an error. */
static struct tv *make_done(const char *id, int status, const char *message, const struct tv *result)
{
    struct tv *e = event_base(id, "task.done");
    if (!e)
        return NULL;
    int rc = tv_set_bool(e, "ok", status == TROVE_OK);
    if (status == TROVE_OK) {
        rc |= tv_set(e, "result", result ? tv_copy(result) : tv_map());
    } else {
        struct tv *error = tv_child_map(e, "error");
        rc |= error ? tv_set_str(error, "code", status_name(status)) | tv_set_str(error, "message", message) : -1;
    }
    if (rc != 0) {
        tv_free(e);
        return NULL;
    }
    return e;
}

static void notify(struct task *task, const struct tv *event)
{
    for (struct watcher *w = task->watchers; w; w = w->next)
        w->fn(w->user, event, false);
}

static int add_watcher(struct task *task, control_event_fn fn, void *user)
{
    struct watcher *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    *w = (struct watcher){fn, user, NULL};
    struct watcher **end = &task->watchers;
    while (*end)
        end = &(*end)->next;
    *end = w;
    return 0;
}

/* Hand every watcher its last event and forget them. */
static void release_watchers(struct task *task, const struct tv *last)
{
    struct watcher *w = task->watchers;
    task->watchers = NULL;
    while (w) {
        struct watcher *next = w->next;
        w->fn(w->user, last, true);
        free(w);
        w = next;
    }
}

/* ------------------------------------------------------------ the registry */

/* "code: message" of a failed task.done, as the registry's error text. */
static void error_text(const struct tv *done, char *out, size_t cap)
{
    const struct tv *error = tv_get(done, "error");
    const char *code = tv_get_str(error, "code"), *message = tv_get_str(error, "message");
    snprintf(out, cap, "%s: %s", code ? code : "internal", message ? message : "(no message)");
}

static void save_new(struct tasks *t, struct task *task, const struct tv *args)
{
    if (!t->cfg.registry)
        return;
    char err[256];
    struct registry_task row = {0};
    copy_text(row.id, sizeof row.id, task->id);
    copy_text(row.tenant_id, sizeof row.tenant_id, task->tenant);
    copy_text(row.instance_id, sizeof row.instance_id, task->instance);
    copy_text(row.kind, sizeof row.kind, task->op);
    copy_text(row.state, sizeof row.state, "RUNNING");
    copy_text(row.owner, sizeof row.owner, t->owner);
    row.owner_epoch = t->epoch;
    char *json = args ? tv_to_json(args, false) : NULL;
    row.args = json;
    row.message = task->message;
    /* An instance the registry does not hold (an agent started by hand) keeps its tasks in memory. */
    int rc = registry_task_create(t->cfg.registry, &row, err, sizeof err);
    task->saved = rc == TROVE_OK;
    if (!task->saved)
        log_debug("task %s stays in memory only: %s", task->id, err);
    free(json);
}

static void save_progress(struct tasks *t, struct task *task, bool force)
{
    int64_t now = monotonic_ms();
    if (!task->saved || (!force && now - task->progress_saved_ms < PROGRESS_SAVE_MS))
        return;
    char err[256];
    task->progress_saved_ms = now;
    if (registry_task_progress(t->cfg.registry, task->id, "RUNNING", task->percent < 0 ? 0 : task->percent,
                               task->message ? task->message : "", err, sizeof err) != TROVE_OK)
        log_debug("task %s: progress not saved: %s", task->id, err);
}

/* Record the outcome; false when the registry could not take it now. */
static bool save_outcome(struct tasks *t, struct task *task)
{
    if (!task->saved)
        return true;
    char err[256], error[600] = "";
    bool ok = task->state == TASK_COMPLETED;
    const struct tv *result = tv_get(task->done, "result");
    char *json = ok && result ? tv_to_json(result, false) : NULL;
    if (!ok)
        error_text(task->done, error, sizeof error);
    int rc = registry_task_finish(t->cfg.registry, task->id, ok ? "COMPLETED" : "FAILED", error, json, err,
                                  sizeof err);
    free(json);
    /* A second finish (another process got there first) changes nothing: recorded. */
    if (rc != TROVE_OK && rc != TROVE_ECONFLICT) {
        log_warn("task %s: the registry did not take its outcome (%s); will try again", task->id, err);
        return false;
    }
    /* Free the instance if this task still holds it (compare-and-set: a
     * module that cleared it already, or a newer task, is left alone). */
    if (task->instance[0])
        registry_instance_set_task(t->cfg.registry, task->instance, task->id, NULL, NULL, 0);
    return true;
}

static int64_t wall_to_deadline(const struct tasks *t, int64_t created_at)
{
    int64_t left = created_at + t->cfg.task_deadline_ms - wall_ms();
    return monotonic_ms() + (left > 0 ? left : 0);
}

static void load_one(struct tasks *t, const struct registry_task *row)
{
    const struct ops_def *def = ops_find(row->kind);
    struct task *task = calloc(1, sizeof *task);
    if (!task)
        return;
    copy_text(task->id, sizeof task->id, row->id);
    copy_text(task->instance, sizeof task->instance, row->instance_id);
    copy_text(task->tenant, sizeof task->tenant, row->tenant_id);
    copy_text(task->op, sizeof task->op, row->kind);
    task->by_agent = !def || def->scope == OPS_SCOPE_AGENT;
    task->state = TASK_RUNNING;
    task->percent = (int)row->progress;
    task->message = row->message && *row->message ? strdup(row->message) : NULL;
    char why[200];
    if (row->args && *row->args && json_to_tv(row->args, &task->args, why, sizeof why) != 0)
        task->args = NULL;
    task->created_at = row->created_at;
    task->updated_at = row->updated_at;
    task->deadline_ms = wall_to_deadline(t, row->created_at);
    task->saved = true;
    task->from_earlier_run = true;
    task->owner_epoch = row->owner_epoch;
    if (table_put(t->by_id, task->id, strlen(task->id), task) != 0)
        return;
    if (task->instance[0])
        table_put(t->busy, task->instance, strlen(task->instance), task);
    arm(t, task->deadline_ms);
}

/* Unfinished tasks of an earlier run, into memory (tasks_resume decides). */
static void load_unfinished(struct tasks *t)
{
    struct registry_task *rows = NULL;
    size_t n = 0;
    char err[256];
    if (registry_tasks_list_unfinished(t->cfg.registry, &rows, &n, err, sizeof err) != TROVE_OK) {
        log_error("cannot read unfinished tasks from the registry: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        load_one(t, &rows[i]);
    if (n)
        log_info("%zu task(s) of an earlier run are unfinished", n);
    registry_tasks_free(rows, n);
}

/* A finished task the registry still has after memory let it go. */
static struct tv *done_from_registry(const struct tasks *t, const char *id, struct tv **describe_out)
{
    struct registry_task row = {0};
    char err[256];
    if (!t->cfg.registry || !id || registry_task_get(t->cfg.registry, NULL, id, &row, err, sizeof err) != TROVE_OK)
        return NULL;
    struct tv *done = NULL, *d = tv_map();
    bool finished = strcmp(row.state, "COMPLETED") == 0 || strcmp(row.state, "FAILED") == 0;
    if (d) {
        tv_set_str(d, "id", row.id);
        tv_set_str(d, "instance", row.instance_id);
        tv_set_str(d, "tenant", row.tenant_id);
        tv_set_str(d, "op", row.kind);
        tv_set_str(d, "state", strcmp(row.state, "COMPLETED") == 0 ? "completed"
                               : strcmp(row.state, "FAILED") == 0  ? "failed"
                                                                   : "running");
        tv_set_int(d, "percent", row.progress);
        tv_set_str(d, "message", row.message);
        tv_set_int(d, "created_at", row.created_at);
        tv_set_int(d, "updated_at", row.updated_at);
    }
    if (finished) {
        struct tv *result = NULL;
        char why[200];
        bool ok = strcmp(row.state, "COMPLETED") == 0;
        if (ok && row.result && json_to_tv(row.result, &result, why, sizeof why) != 0)
            result = NULL;
        /* The error text is "code: message". */
        const char *colon = row.error ? strstr(row.error, ": ") : NULL;
        char code[40] = "internal";
        if (colon && (size_t)(colon - row.error) < sizeof code) {
            snprintf(code, sizeof code, "%.*s", (int)(colon - row.error), row.error);
            if (status_from_name(code) < 0)
                snprintf(code, sizeof code, "internal"), colon = NULL;
        }
        int status = ok ? TROVE_OK : status_from_name(code);
        done = make_done(row.id, status, colon ? colon + 2 : row.error, result);
        if (done)
            tv_set_str(done, "op", row.kind);
        if (d && ok && result)
            tv_set(d, "result", tv_copy(result));
        if (d && !ok && done && tv_get(done, "error"))
            tv_set(d, "error", tv_copy(tv_get(done, "error")));
        tv_free(result);
    }
    registry_task_clear(&row);
    if (describe_out)
        *describe_out = d;
    else
        tv_free(d);
    return done;
}

/* ------------------------------------------------------------ task records */

static struct task *task_get(const struct tasks *t, const char *id)
{
    return id ? table_get(t->by_id, id, strlen(id)) : NULL;
}

static struct task *task_open(struct tasks *t, const char *id, const char *instance, const char *tenant,
                              const char *op, const char *parent, bool by_agent, const struct tv *args)
{
    struct task *task = calloc(1, sizeof *task);
    if (!task)
        return NULL;
    copy_text(task->id, sizeof task->id, id);
    copy_text(task->instance, sizeof task->instance, instance);
    copy_text(task->tenant, sizeof task->tenant, tenant);
    copy_text(task->op, sizeof task->op, op && *op ? op : "?");
    copy_text(task->parent, sizeof task->parent, parent);
    task->by_agent = by_agent;
    task->state = TASK_RUNNING;
    task->percent = -1;
    task->created_at = task->updated_at = wall_ms();
    task->deadline_ms = monotonic_ms() + t->cfg.task_deadline_ms;
    if (table_put(t->by_id, task->id, strlen(task->id), task) != 0)
        return NULL;   /* table_put freed it */
    if (task->instance[0] && !task->parent[0] &&
        table_put(t->busy, task->instance, strlen(task->instance), task) != 0)
        log_error("out of memory marking instance %s busy", task->instance);
    arm(t, task->deadline_ms);
    save_new(t, task, args);
    return task;
}

static void ring_add(struct tasks *t, const char *id)
{
    char *old = t->ring[t->ring_next];
    if (old) {
        struct task *gone = task_get(t, old);
        if (gone && gone->state != TASK_RUNNING)
            table_remove(t->by_id, old, strlen(old));
        free(old);
    }
    t->ring[t->ring_next] = strdup(id);
    t->ring_next = (t->ring_next + 1) % TASKS_FINISHED_KEEP;
}

/* Record the outcome (done is owned; in the registry too) and tell the
 * watchers. False if the task had finished already (done is freed). */
static bool task_close(struct tasks *t, struct task *task, struct tv *done)
{
    if (task->state != TASK_RUNNING || !done) {
        tv_free(done);
        return false;
    }
    bool ok = tv_get_bool(done, "ok", false);
    task->state = ok ? TASK_COMPLETED : TASK_FAILED;
    if (ok)
        task->percent = 100;
    task->done = done;
    task->updated_at = wall_ms();
    task->finished_ms = monotonic_ms();
    if (task->instance[0] && table_get(t->busy, task->instance, strlen(task->instance)) == task)
        table_remove(t->busy, task->instance, strlen(task->instance));
    const struct tv *error = tv_get(done, "error");
    if (ok)
        log_info("task %s (%s) on %s completed", task->id, task->op, task->instance[0] ? task->instance : "-");
    else
        log_info("task %s (%s) on %s failed: %s", task->id, task->op, task->instance[0] ? task->instance : "-",
                 tv_get_str(error, "message") ? tv_get_str(error, "message") : "(no message)");
    task->from_earlier_run = false;
    task->outcome_unsaved = !save_outcome(t, task);
    ring_add(t, task->id);
    release_watchers(task, done);
    if (t->observer && task->by_agent && task->instance[0]) {
        const char *message;
        int status = outcome_of(done, &message);
        t->observer(t->observer_ctx, task->instance, task->op, status, tv_get(done, "result"));
    }
    return true;
}

static void task_fail(struct tasks *t, struct task *task, int status, const char *message)
{
    task_close(t, task, make_done(task->id, status, message, NULL));
}

/* ------------------------------------------------------------ requests in flight */

int tasks_pending_add(struct tasks *t, const char *instance, const char *id, const char *op, const char *tenant,
                      const char *parent_task, int64_t timeout_ms, control_reply_fn reply,
                      control_event_fn on_event, void *user)
{
    struct asker *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    *a = (struct asker){reply, on_event, user, NULL};
    char key[KEY_MAX];
    size_t key_len = make_key(key, instance, id);
    int64_t deadline = monotonic_ms() + timeout_ms;
    /* A retried id joins the request already waiting: every asker gets the reply. */
    struct pending *p = table_get(t->pending, key, key_len);
    if (p) {
        a->next = p->askers;
        p->askers = a;
        if (deadline > p->deadline_ms) {
            p->deadline_ms = deadline;
            p->timeout_ms = timeout_ms;
        }
        return 0;
    }
    if (!(p = calloc(1, sizeof *p))) {
        free(a);
        return -1;
    }
    copy_text(p->instance, sizeof p->instance, instance);
    copy_text(p->id, sizeof p->id, id);
    copy_text(p->op, sizeof p->op, op);
    copy_text(p->tenant, sizeof p->tenant, tenant);
    copy_text(p->parent, sizeof p->parent, parent_task);
    p->askers = a;
    p->timeout_ms = timeout_ms;
    p->deadline_ms = deadline;
    if (table_put(t->pending, key, key_len, p) != 0)
        return -1;   /* table_put freed p and its asker */
    arm(t, p->deadline_ms);
    return 0;
}

void tasks_pending_drop(struct tasks *t, const char *instance, const char *id, void *user)
{
    char key[KEY_MAX];
    size_t key_len = make_key(key, instance, id);
    struct pending *p = table_get(t->pending, key, key_len);
    for (struct asker **a = p ? &p->askers : NULL; a && *a; a = &(*a)->next) {
        if ((*a)->user != user)
            continue;
        struct asker *gone = *a;
        *a = gone->next;
        free(gone);
        break;
    }
    if (p && !p->askers)
        table_remove(t->pending, key, key_len);
}

/* The status and message of a reply or task.done map. */
static int outcome_of(const struct tv *msg, const char **message)
{
    if (tv_get_bool(msg, "ok", false)) {
        *message = "";
        return TROVE_OK;
    }
    const struct tv *error = tv_get(msg, "error");
    const char *code = tv_get_str(error, "code");
    int status = code ? status_from_name(code) : -1;
    *message = tv_get_str(error, "message") ? tv_get_str(error, "message") : "(no message)";
    return status > TROVE_OK ? status : TROVE_EINTERNAL;
}

bool tasks_agent_reply(struct tasks *t, const char *instance, const struct tv *reply)
{
    const char *id = tv_get_str(reply, "id");
    char key[KEY_MAX];
    struct pending *p = id ? table_take(t->pending, key, make_key(key, instance, id)) : NULL;
    if (!p) {
        log_debug("reply %s from %s matches no waiting request (late or unknown)", id ? id : "?", instance);
        return false;
    }
    const char *message;
    int status = outcome_of(reply, &message);
    const struct tv *result = status == TROVE_OK ? tv_get(reply, "result") : NULL;
    if (status == TROVE_OK && control_result_is_task(result)) {
        const char *task_id = tv_get_str(result, "task");
        struct task *task = task_get(t, task_id);
        if (!task || task->state != TASK_RUNNING)
            task = task_open(t, task_id, instance, p->tenant, p->op, p->parent, true, NULL);
        for (struct asker *a = p->askers; a; a = a->next)
            if (!task || (a->on_event && add_watcher(task, a->on_event, a->user) != 0))
                log_error("out of memory following task %s", task_id);
    }
    char op[sizeof p->op];
    copy_text(op, sizeof op, p->op);
    pending_answer(p, status, message, result);
    if (t->observer && !(status == TROVE_OK && control_result_is_task(result)))
        t->observer(t->observer_ctx, instance, op, status, result);
    return true;
}

void tasks_set_observer(struct tasks *t, tasks_observer_fn fn, void *ctx)
{
    t->observer = fn;
    t->observer_ctx = ctx;
}

bool tasks_agent_event(struct tasks *t, const char *instance, const struct tv *event)
{
    const char *id = tv_get_str(event, "id");
    const char *name = tv_get_str(event, "event");
    bool done = name && strcmp(name, "task.done") == 0;
    struct task *task = task_get(t, id);
    if (task && strcmp(task->instance, instance) != 0) {
        log_warn("dropped an event of task %s from %s: the task runs on %s", id, instance, task->instance);
        return false;
    }
    if (!task || (task->state != TASK_RUNNING && !done)) {
        /* Started before this control plane's memory (a restart): adopt it. */
        if (task && !done)
            return false;
        if (!task && !(task = task_open(t, id, instance, NULL, tv_get_str(event, "op"), NULL, true, NULL))) {
            log_error("out of memory recording task %s", id);
            return false;
        }
    }
    if (!done) {
        task->percent = (int)tv_get_int(event, "percent", -1);
        const char *message = tv_get_str(event, "message");
        if (message) {
            free(task->message);
            task->message = strdup(message);
        }
        task->updated_at = wall_ms();
        save_progress(t, task, false);
        notify(task, event);
        return false;
    }
    if (task->state != TASK_RUNNING) {
        log_debug("task %s on %s: task.done again (already recorded)", id, instance);
        if (task->outcome_unsaved)
            task->outcome_unsaved = !save_outcome(t, task);
        return !task->outcome_unsaved;
    }
    struct tv *copy = tv_copy(event);
    if (!copy) {
        log_error("out of memory recording the outcome of task %s", id);
        return false;   /* not acknowledged: the agent sends it again */
    }
    task_close(t, task, copy);
    return !task->outcome_unsaved;
}

/* ------------------------------------------------------------ deadlines */

struct sweep {
    struct tasks *t;
    int64_t now, next;
};

/* Keys of pending requests to answer after a sweep (answering inside one
 * could change the table under it: a reply callback may send again). */
struct key_list {
    char (*keys)[KEY_MAX];
    size_t *lens;
    size_t n, cap;
    bool more;
};

static void key_list_add(struct key_list *k, const void *key, size_t key_len)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        char (*keys)[KEY_MAX] = realloc(k->keys, cap * sizeof *keys);
        if (keys)
            k->keys = keys;
        size_t *lens = realloc(k->lens, cap * sizeof *lens);
        if (lens)
            k->lens = lens;
        if (!keys || !lens) {
            k->more = true;
            return;
        }
        k->cap = cap;
    }
    memcpy(k->keys[k->n], key, key_len);
    k->lens[k->n++] = key_len;
}

struct pending_walk {
    struct sweep *s;
    struct key_list due;
};

static bool find_due(const void *key, size_t key_len, void *value, void *user)
{
    struct pending_walk *w = user;
    const struct pending *p = value;
    if (p->deadline_ms > w->s->now) {
        if (p->deadline_ms < w->s->next)
            w->s->next = p->deadline_ms;
    } else {
        key_list_add(&w->due, key, key_len);
    }
    return false;
}

/* Answer the pending requests in the list with status (message NULL: the
 * timeout message). */
static void answer_listed(struct tasks *t, struct key_list *k, int status, const char *message)
{
    for (size_t i = 0; i < k->n; i++) {
        struct pending *p = table_take(t->pending, k->keys[i], k->lens[i]);
        if (!p)
            continue;
        char text[256];
        if (!message)
            snprintf(text, sizeof text, "instance %s did not answer %s within %lld ms", p->instance, p->op,
                     (long long)p->timeout_ms);
        pending_answer(p, status, message ? message : text, NULL);
    }
    free(k->keys);
    free(k->lens);
}

static void expire_pending(struct tasks *t, struct sweep *s)
{
    struct pending_walk w = {s, {0}};
    table_sweep(t->pending, find_due, &w);
    if (w.due.more)
        s->next = s->now;
    answer_listed(t, &w.due, TROVE_ETIMEOUT, NULL);
}

/* Collect running tasks past their deadline (failing them while sweeping
 * would change the table under the sweep). */
struct overdue {
    struct sweep *s;
    char (*ids)[TASK_ID_MAX + 1];
    size_t n, cap;
};

static bool find_overdue(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    struct overdue *o = user;
    struct task *task = value;
    if (task->state != TASK_RUNNING)
        return false;
    if (task->deadline_ms > o->s->now) {
        if (task->deadline_ms < o->s->next)
            o->s->next = task->deadline_ms;
        return false;
    }
    if (o->n < o->cap)
        copy_text(o->ids[o->n++], TASK_ID_MAX + 1, task->id);
    else
        o->s->next = o->s->now;   /* more next turn */
    return false;
}

static void expire_tasks(struct tasks *t, struct sweep *s)
{
    char ids[64][TASK_ID_MAX + 1];
    struct overdue o = {s, ids, 0, 64};
    table_sweep(t->by_id, find_overdue, &o);
    for (size_t i = 0; i < o.n; i++) {
        struct task *task = task_get(t, ids[i]);
        char message[256];
        snprintf(message, sizeof message, "no outcome within %lld s; the task is considered failed",
                 (long long)(t->cfg.task_deadline_ms / 1000));
        if (task)
            task_fail(t, task, TROVE_ETIMEOUT, message);
    }
}

static bool finished_expired(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    const struct task *task = value;
    return task->state != TASK_RUNNING && *(const int64_t *)user - task->finished_ms > TASKS_FINISHED_TTL_MS;
}

static void on_timer(void *ctx)
{
    struct tasks *t = ctx;
    struct sweep s = {t, monotonic_ms(), INT64_MAX};
    expire_pending(t, &s);
    expire_tasks(t, &s);
    if (s.now >= t->next_housekeeping_ms) {
        table_sweep(t->by_id, finished_expired, &s.now);
        t->next_housekeeping_ms = s.now + HOUSEKEEPING_MS;
    }
    if (t->next_housekeeping_ms < s.next)
        s.next = t->next_housekeeping_ms;
    t->next_deadline_ms = INT64_MAX;
    arm(t, s.next);
}

static bool find_any(const void *key, size_t key_len, void *value, void *user)
{
    (void)value;
    key_list_add(user, key, key_len);
    return false;
}

static bool find_watched(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    const struct task *task = value;
    if (task->watchers)
        key_list_add(user, task->id, strlen(task->id));
    return false;
}

void tasks_cancel_pending(struct tasks *t, const char *why)
{
    struct key_list k = {0};
    table_sweep(t->pending, find_any, &k);
    answer_listed(t, &k, TROVE_ECANCELLED, why);
    struct key_list w = {0};
    table_sweep(t->by_id, find_watched, &w);
    for (size_t i = 0; i < w.n; i++) {
        w.keys[i][w.lens[i]] = '\0';
        struct task *task = task_get(t, w.keys[i]);
        struct tv *last = task ? make_done(task->id, TROVE_ECANCELLED, why, NULL) : NULL;
        if (last)
            release_watchers(task, last);
        tv_free(last);
    }
    free(w.keys);
    free(w.lens);
}

/* ------------------------------------------------------------ control-level tasks */

static int random_id(char out[TASK_ID_MAX + 1])
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

int tasks_begin(struct tasks *t, const char *tenant, const char *instance, const char *op, const struct tv *args,
                char id_out[TASK_ID_MAX + 1], char *err, size_t errlen)
{
    const char *holder = instance ? tasks_running_on(t, instance) : NULL;
    if (holder) {
        struct task *h = task_get(t, holder);
        err_set(err, errlen, "instance %s is busy with task %s (%s); one action at a time", instance, holder,
                h ? h->op : "?");
        return TROVE_ECONFLICT;
    }
    if (random_id(id_out) != 0) {
        err_set(err, errlen, "no randomness for a task id: %s", strerror(errno));
        return TROVE_EINTERNAL;
    }
    struct tv *copy = args ? tv_copy(args) : NULL;
    struct task *task = (!args || copy) ? task_open(t, id_out, instance, tenant, op, NULL, false, args) : NULL;
    if (!task) {
        tv_free(copy);
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    task->args = copy;
    log_info("task %s (%s) on %s started", id_out, op, instance ? instance : "-");
    return TROVE_OK;
}

void tasks_progress(struct tasks *t, const char *id, int percent, const char *message)
{
    struct task *task = task_get(t, id);
    if (!task || task->state != TASK_RUNNING)
        return;
    if (percent >= 0)   /* -1: a sub-step's message; the percent stays */
        task->percent = percent > 100 ? 100 : percent;
    if (message) {
        free(task->message);
        task->message = strdup(message);
    }
    task->updated_at = wall_ms();
    save_progress(t, task, false);
    struct tv *e = event_base(id, "task.progress");
    if (e && (tv_set_int(e, "percent", task->percent) | tv_set_str(e, "message", message ? message : "")) == 0)
        notify(task, e);
    tv_free(e);
}

void tasks_finish(struct tasks *t, const char *id, int status, const char *message, const struct tv *result)
{
    struct task *task = task_get(t, id);
    if (!task || task->state != TASK_RUNNING)
        return;
    struct tv *done = make_done(id, status, message && *message ? message : status_name(status), result);
    if (!done) {
        log_error("out of memory recording the outcome of task %s", id);
        return;
    }
    task_close(t, task, done);
}

int tasks_watch(struct tasks *t, const char *id, control_event_fn on_event, void *user)
{
    struct task *task = task_get(t, id);
    if (!task)
        return -1;
    if (task->state != TASK_RUNNING) {
        on_event(user, task->done, true);
        return 0;
    }
    return add_watcher(task, on_event, user);
}

/* ------------------------------------------------------------ looking */

const char *tasks_running_on(const struct tasks *t, const char *instance)
{
    const struct task *task = instance ? table_get(t->busy, instance, strlen(instance)) : NULL;
    return task ? task->id : NULL;
}

static struct tv *describe(const struct task *task)
{
    struct tv *d = tv_map();
    if (!d)
        return NULL;
    int rc = tv_set_str(d, "id", task->id) | tv_set_str(d, "instance", task->instance) |
             tv_set_str(d, "tenant", task->tenant) | tv_set_str(d, "op", task->op) |
             tv_set_str(d, "state", task_state_name(task->state)) | tv_set_int(d, "percent", task->percent) |
             tv_set_str(d, "message", task->message ? task->message : "") |
             tv_set_int(d, "created_at", task->created_at) | tv_set_int(d, "updated_at", task->updated_at);
    if (task->state == TASK_COMPLETED && tv_get(task->done, "result"))
        rc |= tv_set(d, "result", tv_copy(tv_get(task->done, "result")));
    if (task->state == TASK_FAILED && tv_get(task->done, "error"))
        rc |= tv_set(d, "error", tv_copy(tv_get(task->done, "error")));
    if (rc != 0) {
        tv_free(d);
        return NULL;
    }
    return d;
}

struct tv *tasks_describe(const struct tasks *t, const char *id)
{
    const struct task *task = task_get(t, id);
    if (task)
        return describe(task);
    struct tv *d = NULL;
    tv_free(done_from_registry(t, id, &d));
    return d;
}

struct tv *tasks_done_event(const struct tasks *t, const char *id)
{
    const struct task *task = task_get(t, id);
    if (task)
        return task->done ? tv_copy(task->done) : NULL;
    return done_from_registry(t, id, NULL);
}

struct list_walk {
    const char *instance;
    const struct task **items;
    size_t n, cap;
    bool failed;
};

static bool collect(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    struct list_walk *w = user;
    const struct task *task = value;
    if (w->instance && strcmp(task->instance, w->instance) != 0)
        return false;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        const struct task **grown = realloc(w->items, cap * sizeof *grown);
        if (!grown) {
            w->failed = true;
            return false;
        }
        w->items = grown;
        w->cap = cap;
    }
    w->items[w->n++] = task;
    return false;
}

static int newest_first(const void *x, const void *y)
{
    const struct task *a = *(const struct task *const *)x, *b = *(const struct task *const *)y;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? 1 : -1;
    return strcmp(a->id, b->id);
}

struct tv *tasks_list(const struct tasks *t, const char *instance)
{
    struct list_walk w = {instance, NULL, 0, 0, false};
    struct tv *arr = tv_array();
    table_sweep(t->by_id, collect, &w);
    if (!arr || w.failed)
        goto fail;
    if (w.n > 1)
        qsort(w.items, w.n, sizeof *w.items, newest_first);
    for (size_t i = 0; i < w.n; i++)
        if (tv_append(arr, describe(w.items[i])) != 0)
            goto fail;
    free(w.items);
    return arr;
fail:
    free(w.items);
    tv_free(arr);
    return NULL;
}

/* ------------------------------------------------------------ agents' view */

static bool reported_has(const struct tv *reported, const char *id)
{
    for (size_t i = 0; reported && reported->type == TV_ARRAY && i < reported->u.a.len; i++) {
        const char *rid = tv_get_str(reported->u.a.items[i], "id");
        if (rid && strcmp(rid, id) == 0)
            return true;
    }
    return false;
}

struct forgotten {
    const char *instance;
    const struct tv *reported;
    char ids[16][TASK_ID_MAX + 1];
    size_t n;
};

static bool find_forgotten(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    struct forgotten *f = user;
    const struct task *task = value;
    if (task->state == TASK_RUNNING && task->by_agent && strcmp(task->instance, f->instance) == 0 &&
        !reported_has(f->reported, task->id) && f->n < sizeof f->ids / sizeof f->ids[0])
        copy_text(f->ids[f->n++], TASK_ID_MAX + 1, task->id);
    return false;
}

void tasks_reconcile(struct tasks *t, const char *instance, const struct tv *reported)
{
    struct forgotten f = {.instance = instance, .reported = reported};
    table_sweep(t->by_id, find_forgotten, &f);
    for (size_t i = 0; i < f.n; i++) {
        struct task *task = task_get(t, f.ids[i]);
        char message[256];
        snprintf(message, sizeof message,
                 "the agent of instance %s no longer knows task %s (it restarted while the task ran)", instance,
                 f.ids[i]);
        if (task)
            task_fail(t, task, TROVE_EUNAVAIL, message);
    }
    for (size_t i = 0; reported && reported->type == TV_ARRAY && i < reported->u.a.len; i++) {
        const struct tv *r = reported->u.a.items[i];
        const char *id = tv_get_str(r, "id"), *state = tv_get_str(r, "state");
        if (!id || !state || strcmp(state, "running") != 0 || task_get(t, id))
            continue;
        if (task_open(t, id, instance, NULL, tv_get_str(r, "op"), NULL, true, NULL))
            log_info("task %s (%s) runs on %s: adopted", id, tv_get_str(r, "op") ? tv_get_str(r, "op") : "?",
                     instance);
    }
}

int tasks_set_resumer(struct tasks *t, const char *op, tasks_resume_fn fn, void *ctx)
{
    struct resumer *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    *r = (struct resumer){fn, ctx};
    return table_put(t->resumers, op, strlen(op), r);
}

static bool find_earlier(const void *key, size_t key_len, void *value, void *user)
{
    const struct task *task = value;
    if (task->from_earlier_run && !task->by_agent && task->state == TASK_RUNNING)
        key_list_add(user, key, key_len);
    return false;
}

static int64_t task_claim_epoch(const struct task *task)
{
    return task->owner_epoch;
}

/* Hand one control task of an earlier run to its resumer, or fail it. */
static void resume_one(struct tasks *t, struct task *task)
{
    char err[256];
    struct resumer *r = table_get(t->resumers, task->op, strlen(task->op));
    task->from_earlier_run = false;
    if (r && registry_task_claim(t->cfg.registry, task->id, task_claim_epoch(task), t->owner, t->epoch, err,
                                 sizeof err) != TROVE_OK) {
        log_warn("task %s (%s): not resumed here: %s", task->id, task->op, err);
        return;
    }
    if (!r) {
        task_fail(t, task, TROVE_ECANCELLED, "interrupted by a restart of trove-control");
        return;
    }
    log_info("task %s (%s) on %s: resuming after a restart", task->id, task->op,
             task->instance[0] ? task->instance : "-");
    r->fn(r->ctx, task->id, task->tenant[0] ? task->tenant : NULL, task->instance[0] ? task->instance : NULL,
          task->args);
}

void tasks_resume(struct tasks *t)
{
    struct key_list k = {0};
    table_sweep(t->by_id, find_earlier, &k);
    for (size_t i = 0; i < k.n; i++) {
        k.keys[i][k.lens[i]] = '\0';
        struct task *task = task_get(t, k.keys[i]);
        if (task && task->state == TASK_RUNNING)
            resume_one(t, task);
    }
    free(k.keys);
    free(k.lens);
}
