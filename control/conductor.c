/*
 * conductor.c - hello, heartbeat and bye, checked field by field and kept
 * in the agents table; replies and task events handed to the core. A
 * message with a mistyped field is dropped whole, so nothing downstream
 * holds a value of the wrong type.
 */
#include "conductor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "core.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "table.h"
#include "tasks.h"
#include "timing.h"
#include "value.h"

#define HEARTBEAT_MS_MIN 100
#define HEARTBEAT_MS_MAX 3600000
#define HELLO_TASKS_MAX 256
#define WARN_WINDOW_MS 10000
#define WARN_PER_WINDOW 20
#define WATCH_MS 1000                /* how often silent agents are looked for */
#define REFRESH_MS 30000             /* a status is checked against the registry at least this often */
#define STARTUP_GRACE_MIN_MS 40000   /* agents reconnect with a backoff of up to 32 s */
#define REASON_MAX 300

/* What the conductor last saw and wrote for one instance. */
struct seen {
    int64_t epoch, seq;              /* the newest heartbeat applied */
    bool checked, in_registry;       /* whether the registry holds the instance */
    char status[REGISTRY_WORD_SIZE]; /* the status last written ("" none) */
    char reason[REASON_MAX];
    bool silent;                     /* marked ERROR for silence; cleared by the next heartbeat */
    int64_t written_ms;              /* monotonic: when the registry was last read or written */
};

struct conductor {
    struct conductor_config cfg;
    struct log_limit warnings;
    struct table *seen;              /* instance -> struct seen */
    struct loop_timer *watch;
    int64_t started_ms;
    bool startup_checked;
};

struct field_rule {
    const char *key;
    enum tv_type type;
    bool nil_ok;
};

static const struct field_rule hello_rules[] = {
    {"instance", TV_STR, false},      {"agent_version", TV_STR, false}, {"plugin", TV_MAP, false},
    {"abi", TV_MAP, false},           {"capabilities", TV_ARRAY, false}, {"features", TV_ARRAY, false},
    {"heartbeat_ms", TV_INT, false},  {"epoch", TV_INT, false},         {"tasks", TV_ARRAY, false},
};

static const struct field_rule heartbeat_rules[] = {
    {"seq", TV_INT, false},      {"state", TV_STR, false},   {"role", TV_STR, false}, {"term", TV_INT, false},
    {"position", TV_STR, false}, {"message", TV_STR, false}, {"task", TV_STR, true},  {"epoch", TV_INT, false},
};

static const struct field_rule hello_task_rules[] = {
    {"id", TV_STR, false}, {"op", TV_STR, false}, {"state", TV_STR, false},
};

static void on_watch(void *ctx);
static void on_outcome(void *ctx, const char *instance, const char *op, int status, const struct tv *result);

struct conductor *conductor_new(const struct conductor_config *cfg)
{
    struct conductor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (c->cfg.heartbeat_miss < 1)
        c->cfg.heartbeat_miss = AGENTS_MISSED_HEARTBEATS;
    c->warnings = (struct log_limit){WARN_WINDOW_MS, WARN_PER_WINDOW, "warnings about agent messages", 0, 0, 0};
    c->started_ms = monotonic_ms();
    c->seen = table_new(free);
    if (!c->seen || (cfg->registry && cfg->loop && !(c->watch = loop_timer_new(cfg->loop, on_watch, c)))) {
        conductor_free(c);
        return NULL;
    }
    agents_set_missed_limit(cfg->agents, (int)c->cfg.heartbeat_miss);
    if (cfg->registry)
        tasks_set_observer(cfg->tasks, on_outcome, c);
    if (c->watch)
        loop_timer_arm(c->watch, WATCH_MS);
    return c;
}

void conductor_free(struct conductor *c)
{
    if (!c)
        return;
    table_free(c->seen);
    loop_timer_free(c->watch);
    free(c);
}

static void warn(struct conductor *c, const char *fmt, ...) TROVE_PRINTF(2, 3);

static void warn(struct conductor *c, const char *fmt, ...)
{
    if (!log_limit_allow(&c->warnings))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(TROVE_LOG_WARN, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ checks */

/* Check the types of the fields that are present; -1 naming the first bad one. */
static int check_fields(const struct tv *msg, const struct field_rule *rules, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct tv *v = tv_get(msg, rules[i].key);
        if (!v || v->type == rules[i].type || (rules[i].nil_ok && v->type == TV_NIL))
            continue;
        snprintf(err, errlen, "field '%s' is %s, expected %s", rules[i].key, tv_type_name(v->type),
                 tv_type_name(rules[i].type));
        return -1;
    }
    return 0;
}

static int check_string_array(const struct tv *msg, const char *key, char *err, size_t errlen)
{
    const struct tv *arr = tv_get(msg, key);
    for (size_t i = 0; arr && i < arr->u.a.len; i++) {
        if (arr->u.a.items[i]->type != TV_STR) {
            snprintf(err, errlen, "'%s' must hold only strings", key);
            return -1;
        }
    }
    return 0;
}

/* hello.tasks: at most HELLO_TASKS_MAX maps {id, op, state}, all strings. */
static int check_hello_tasks(const struct tv *msg, char *err, size_t errlen)
{
    const struct tv *arr = tv_get(msg, "tasks");
    if (arr && arr->u.a.len > HELLO_TASKS_MAX) {
        snprintf(err, errlen, "'tasks' lists %zu tasks (at most %d)", arr->u.a.len, HELLO_TASKS_MAX);
        return -1;
    }
    for (size_t i = 0; arr && i < arr->u.a.len; i++) {
        const struct tv *t = arr->u.a.items[i];
        char why[120];
        if (t->type != TV_MAP || !tv_get_str(t, "id") || !tv_get_str(t, "state") ||
            check_fields(t, hello_task_rules, sizeof hello_task_rules / sizeof hello_task_rules[0], why,
                         sizeof why) != 0) {
            snprintf(err, errlen, "'tasks' item %zu must be a map {id, op, state} of strings", i + 1);
            return -1;
        }
    }
    return 0;
}


/* ------------------------------------------------------------ instance status */

static struct seen *seen_of(struct conductor *c, const char *instance)
{
    struct seen *s = table_get(c->seen, instance, strlen(instance));
    if (!s && (s = calloc(1, sizeof *s)) && table_put(c->seen, instance, strlen(instance), s) != 0)
        s = NULL;
    return s;
}

/*
 * The status a heartbeat shows, by Trove's names: the engine's state, and
 * BACKUP while the agent runs a backup. NULL: no opinion (the engine is
 * starting).
 */
static const char *status_from_heartbeat(struct conductor *c, const struct tv *hb, char *reason, size_t cap)
{
    const char *state = tv_get_str(hb, "state"), *message = tv_get_str(hb, "message");
    const char *task = tv_get_str(hb, "task");
    reason[0] = '\0';
    if (!message)
        message = "";
    if (task) {
        struct tv *d = tasks_describe(c->cfg.tasks, task);
        const char *op = tv_get_str(d, "op");
        bool backup = op && (strcmp(op, "backup.create") == 0 || strcmp(op, "replication.snapshot") == 0);
        tv_free(d);
        if (backup)
            return "BACKUP";
    }
    if (!state || strcmp(state, "unknown") == 0) {
        snprintf(reason, cap, "the agent cannot tell the engine's state%s%s", *message ? ": " : "", message);
        return "ERROR";
    }
    if (strcmp(state, "running") == 0)
        return "ACTIVE";
    if (strcmp(state, "stopped") == 0 || strcmp(state, "crashed") == 0) {
        snprintf(reason, cap, "the engine %s%s%s", strcmp(state, "crashed") == 0 ? "crashed" : "is stopped",
                 *message ? ": " : "", message);
        return "SHUTDOWN";
    }
    if (strcmp(state, "new") == 0)
        return "BUILD";
    return NULL;
}

/*
 * Whether `want` may replace the instance's current status: a task owns the
 * status while it runs; RESTART_REQUIRED stays until a restart; an ERROR
 * somebody else set is cleared only by a running engine.
 */
static bool may_replace(const struct seen *s, const struct registry_instance *in, const char *want)
{
    if (in->task_id[0])
        return false;
    if (strcmp(in->status, want) == 0 && strcmp(in->status_reason, s->reason) == 0)
        return false;
    if (strcmp(in->status, "RESTART_REQUIRED") == 0 && strcmp(want, "ACTIVE") == 0)
        return false;
    if (strcmp(in->status, "ERROR") == 0 && !s->silent && strcmp(s->status, "ERROR") != 0 &&
        strcmp(want, "ACTIVE") != 0)
        return false;
    return true;
}

/* Read the instance (NULL when the registry does not hold it); caller clears. */
static bool load_instance(struct conductor *c, const char *instance, struct seen *s, struct registry_instance *in)
{
    char err[256];
    memset(in, 0, sizeof *in);
    int rc = registry_instance_get(c->cfg.registry, NULL, instance, in, err, sizeof err);
    s->checked = true;
    s->in_registry = rc == TROVE_OK;
    if (rc != TROVE_OK && rc != TROVE_ENOTFOUND)
        log_warn("cannot read instance %s from the registry: %s", instance, err);
    return rc == TROVE_OK;
}

/* Apply one heartbeat to the registry: the status and its (epoch, seq), when
 * the status changes. A heartbeat that says what was last seen costs nothing;
 * every REFRESH_MS it costs one read, to notice a status somebody else wrote,
 * and a write only if the status must change. Recording (epoch, seq) with
 * each status change is enough for ordering: a heartbeat older than the last
 * change is refused by the registry, and one between two changes carries the
 * status already written. */
static void heartbeat_status(struct conductor *c, const char *instance, struct seen *s, const struct tv *hb,
                             int64_t epoch, int64_t seq)
{
    char reason[REASON_MAX], err[256];
    const char *want = status_from_heartbeat(c, hb, reason, sizeof reason);
    int64_t now = monotonic_ms();
    bool changed = s->silent || (want && (strcmp(want, s->status) != 0 || strcmp(reason, s->reason) != 0));
    if (!changed && now - s->written_ms < REFRESH_MS)
        return;
    struct registry_instance in;
    if (!load_instance(c, instance, s, &in))
        return;
    const char *status = want && may_replace(s, &in, want) ? want : NULL;
    if (!status && !s->silent) {   /* the registry shows it already, or a task owns the status */
        snprintf(s->status, sizeof s->status, "%s", in.status);
        snprintf(s->reason, sizeof s->reason, "%s", in.status_reason);
        s->written_ms = now;
        registry_instance_clear(&in);
        return;
    }
    bool applied = false;
    int rc = registry_instance_apply_heartbeat(c->cfg.registry, instance, epoch, seq, status, status ? reason : NULL,
                                               &applied, err, sizeof err);
    if (rc != TROVE_OK)
        log_warn("instance %s: heartbeat not recorded: %s", instance, err);
    if (rc == TROVE_OK && applied && status) {
        if (strcmp(in.status, status) != 0)
            log_info("instance %s: %s -> %s%s%s", instance, in.status, status, reason[0] ? ": " : "", reason);
        snprintf(s->status, sizeof s->status, "%s", status);
        snprintf(s->reason, sizeof s->reason, "%s", reason);
    } else if (rc == TROVE_OK) {
        snprintf(s->status, sizeof s->status, "%s", in.status);
        snprintf(s->reason, sizeof s->reason, "%s", in.status_reason);
    }
    s->silent = false;
    s->written_ms = now;
    registry_instance_clear(&in);
}

/* Mark an instance ERROR because its agent went quiet (unless a task holds it). */
static void mark_silent(struct conductor *c, const char *instance, struct seen *s, const char *reason)
{
    char err[256];
    struct registry_instance in;
    if (!load_instance(c, instance, s, &in))
        return;
    if (!in.task_id[0] && strcmp(in.status, "ERROR") != 0 &&
        registry_instance_set_status(c->cfg.registry, instance, in.status, "ERROR", reason, err, sizeof err) ==
            TROVE_OK) {
        log_warn("instance %s: %s -> ERROR: %s", instance, in.status, reason);
        snprintf(s->status, sizeof s->status, "ERROR");
        snprintf(s->reason, sizeof s->reason, "%s", reason);
        s->silent = true;
        s->written_ms = monotonic_ms();
    }
    registry_instance_clear(&in);
}

static void watch_agent(void *ctx, struct agent *a)
{
    struct conductor *c = ctx;
    int64_t now = monotonic_ms();
    struct seen *s = table_get(c->seen, a->instance, strlen(a->instance));
    if (!s || s->silent || (s->checked && !s->in_registry) || agent_connected(a, now))
        return;
    char reason[REASON_MAX];
    if (a->gone)
        snprintf(reason, sizeof reason, "the agent disconnected (it stopped, or its connection was refused)");
    else
        snprintf(reason, sizeof reason, "the agent has sent no heartbeat for %lld s (%d intervals of %lld ms)",
                 (long long)((now - a->last_alive_ms) / 1000), a->missed_limit, (long long)a->heartbeat_ms);
    mark_silent(c, a->instance, s, reason);
}

/* Once, after the grace a restarted control plane gives agents to come
 * back: instances whose agent never spoke show ERROR. */
static void check_unheard(struct conductor *c)
{
    static const char *const quiet_ok[] = {"ERROR", "FAILED", "NEW", "DELETED"};
    struct registry_query q = {.limit = 500};
    char marker[REGISTRY_ID_SIZE] = "", err[256], reason[REASON_MAX];
    snprintf(reason, sizeof reason, "no agent has connected since trove-control started %lld s ago",
             (long long)((monotonic_ms() - c->started_ms) / 1000));
    for (bool more = true; more;) {
        struct registry_instance *items = NULL;
        size_t n = 0;
        q.marker = marker[0] ? marker : NULL;
        if (registry_instance_list(c->cfg.registry, &q, &items, &n, &more, err, sizeof err) != TROVE_OK) {
            log_warn("cannot list instances: %s", err);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            bool skip = items[i].task_id[0] || agents_get(c->cfg.agents, items[i].id);
            for (size_t k = 0; !skip && k < sizeof quiet_ok / sizeof quiet_ok[0]; k++)
                skip = strcmp(items[i].status, quiet_ok[k]) == 0;
            struct seen *s = skip ? NULL : seen_of(c, items[i].id);
            if (s)
                mark_silent(c, items[i].id, s, reason);
        }
        if (n)
            snprintf(marker, sizeof marker, "%s", items[n - 1].id);
        registry_instances_free(items, n);
        more = more && n > 0;
    }
}

static void on_watch(void *ctx)
{
    struct conductor *c = ctx;
    agents_each(c->cfg.agents, watch_agent, c);
    int64_t grace = c->cfg.heartbeat_miss * c->cfg.agent_heartbeat_ms;
    if (grace < STARTUP_GRACE_MIN_MS)
        grace = STARTUP_GRACE_MIN_MS;
    if (!c->startup_checked && monotonic_ms() - c->started_ms >= grace) {
        c->startup_checked = true;
        check_unheard(c);
    }
    loop_timer_arm(c->watch, WATCH_MS);
}

/* Statuses that follow from what was done: config.apply (or reset) with
 * settings that need a restart -> RESTART_REQUIRED; a completed restart (or
 * start) clears it. */
static void on_outcome(void *ctx, const char *instance, const char *op, int status, const struct tv *result)
{
    struct conductor *c = ctx;
    const struct tv *pending = tv_get(result, "pending_restart");
    bool needs_restart = status == TROVE_OK && (strcmp(op, "config.apply") == 0 || strcmp(op, "config.reset") == 0) &&
                         pending && pending->type == TV_ARRAY && pending->u.a.len > 0;
    bool restarted = status == TROVE_OK && (strcmp(op, "restart") == 0 || strcmp(op, "start") == 0);
    if (!needs_restart && !restarted)
        return;
    struct seen *s = seen_of(c, instance);
    struct registry_instance in;
    if (!s || !load_instance(c, instance, s, &in))
        return;
    char err[256];
    const char *from = needs_restart ? in.status : "RESTART_REQUIRED";
    const char *to = needs_restart ? "RESTART_REQUIRED" : "ACTIVE";
    const char *reason = needs_restart ? "settings were applied that take effect after a restart" : "";
    if (strcmp(in.status, from) == 0 && strcmp(in.status, to) != 0 && (!needs_restart || !in.task_id[0]) &&
        registry_instance_set_status(c->cfg.registry, instance, from, to, reason, err, sizeof err) == TROVE_OK) {
        log_info("instance %s: %s -> %s", instance, from, to);
        snprintf(s->status, sizeof s->status, "%s", to);
        snprintf(s->reason, sizeof s->reason, "%s", reason);
        s->written_ms = monotonic_ms();
    }
    registry_instance_clear(&in);
}

/* The agent's hello, kept in the registry's agents table. */
static void save_hello(struct conductor *c, const char *instance, const struct tv *msg)
{
    struct registry_agent row = {0}, old = {0};
    char err[256];
    snprintf(row.instance_id, sizeof row.instance_id, "%s", instance);
    bool had = registry_agent_get(c->cfg.registry, instance, &old, err, sizeof err) == TROVE_OK;
    row.public_key = had ? old.public_key : NULL;
    row.hello = tv_to_json(msg, false);
    if (row.hello && registry_agent_put(c->cfg.registry, &row, err, sizeof err) != TROVE_OK)
        log_warn("instance %s: hello not recorded: %s", instance, err);
    free(row.hello);
    if (had)
        registry_agent_clear(&old);
}

/* ------------------------------------------------------------ hello, heartbeat, bye */

static void on_hello(struct conductor *c, const char *instance, const struct tv *msg)
{
    char err[160];
    const char *claimed = tv_get_str(msg, "instance");
    int64_t heartbeat_ms = tv_get_int(msg, "heartbeat_ms", AGENTS_DEFAULT_HEARTBEAT_MS);

    if (check_fields(msg, hello_rules, sizeof hello_rules / sizeof hello_rules[0], err, sizeof err) != 0 ||
        check_string_array(msg, "capabilities", err, sizeof err) != 0 ||
        check_string_array(msg, "features", err, sizeof err) != 0 || check_hello_tasks(msg, err, sizeof err) != 0) {
        warn(c, "dropped hello from %s: %s", instance, err);
        return;
    }
    if (claimed && strcmp(claimed, instance) != 0) {
        warn(c, "dropped hello from %s: it names instance '%.64s'", instance, claimed);
        return;
    }
    if (heartbeat_ms < HEARTBEAT_MS_MIN || heartbeat_ms > HEARTBEAT_MS_MAX) {
        warn(c, "dropped hello from %s: heartbeat_ms %lld outside %d..%d", instance, (long long)heartbeat_ms,
             HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX);
        return;
    }
    struct tv *copy = tv_copy(msg);
    struct agent *a = copy ? agents_alive(c->cfg.agents, instance, monotonic_ms()) : NULL;
    if (!a) {
        tv_free(copy);
        log_error("out of memory recording hello from %s", instance);
        return;
    }
    bool was_known = a->hello != NULL;
    tv_free(a->hello);
    a->hello = copy;
    a->heartbeat_ms = heartbeat_ms;
    const struct tv *plugin = tv_get(msg, "plugin");
    log_info("agent %s %s (plugin %s %s, agent %s)", instance, was_known ? "reconnected" : "connected",
             plugin && tv_get_str(plugin, "name") ? tv_get_str(plugin, "name") : "?",
             plugin && tv_get_str(plugin, "version") ? tv_get_str(plugin, "version") : "?",
             tv_get_str(msg, "agent_version") ? tv_get_str(msg, "agent_version") : "?");
    /* An agent that predates task reporting sends no list: nothing to reconcile. */
    if (tv_get(msg, "tasks"))
        tasks_reconcile(c->cfg.tasks, instance, tv_get(msg, "tasks"));
    if (c->cfg.registry) {
        struct seen *s = seen_of(c, instance);
        if (s)
            s->checked = false;   /* the instance may have been created since */
        save_hello(c, instance, msg);
    }
}

static void on_heartbeat(struct conductor *c, const char *instance, const struct tv *msg)
{
    char err[160];
    if (check_fields(msg, heartbeat_rules, sizeof heartbeat_rules / sizeof heartbeat_rules[0], err, sizeof err) !=
        0) {
        warn(c, "dropped heartbeat from %s: %s", instance, err);
        return;
    }
    int64_t now = monotonic_ms();
    int64_t epoch = tv_get_int(msg, "epoch", 0), seq = tv_get_int(msg, "seq", 0);
    struct seen *s = seen_of(c, instance);
    if (s && c->cfg.registry && !s->checked) {
        struct registry_instance in;
        if (load_instance(c, instance, s, &in)) {
            s->epoch = in.hb_epoch;
            s->seq = in.hb_seq;
            snprintf(s->status, sizeof s->status, "%s", in.status);
            snprintf(s->reason, sizeof s->reason, "%s", in.status_reason);
            registry_instance_clear(&in);
        }
    }
    /* Older than what was already applied (epoch first): a late or replayed
     * heartbeat. An agent that sends no epoch predates the rule. */
    if (s && tv_get(msg, "epoch") && (epoch < s->epoch || (epoch == s->epoch && seq <= s->seq))) {
        log_debug("ignored heartbeat (%lld, %lld) from %s: not newer than (%lld, %lld)", (long long)epoch,
                  (long long)seq, instance, (long long)s->epoch, (long long)s->seq);
        return;
    }
    struct tv *copy = tv_copy(msg);
    struct agent *a = agents_get(c->cfg.agents, instance);
    bool was_connected = a && agent_connected(a, now);
    a = copy ? agents_alive(c->cfg.agents, instance, now) : NULL;
    if (!a) {
        tv_free(copy);
        log_error("out of memory recording a heartbeat from %s", instance);
        return;
    }
    if (!was_connected)
        log_info("agent %s is sending heartbeats%s", instance, a->hello ? "" : " (no hello seen yet)");
    tv_free(a->heartbeat);
    a->heartbeat = copy;
    a->last_heartbeat_ms = now;
    if (!s)
        return;
    s->epoch = epoch;
    s->seq = seq;
    if (c->cfg.registry && s->in_registry)
        heartbeat_status(c, instance, s, msg, epoch, seq);
}

static void on_bye(struct conductor *c, const char *instance)
{
    struct agent *a = agents_get(c->cfg.agents, instance);
    if (a) {
        a->gone = true;
        log_info("agent %s said goodbye", instance);
    }
}

void conductor_lost(void *conductor, const char *instance)
{
    struct conductor *c = conductor;
    struct agent *a = agents_get(c->cfg.agents, instance);
    if (a)
        a->gone = true;
}

void conductor_message(void *conductor, const char *instance, const struct tv *msg)
{
    struct conductor *c = conductor;
    const char *type = tv_get_str(msg, "type");
    if (strcmp(type, "hello") == 0)
        on_hello(c, instance, msg);
    else if (strcmp(type, "heartbeat") == 0)
        on_heartbeat(c, instance, msg);
    else if (strcmp(type, "bye") == 0)
        on_bye(c, instance);
    else if (strcmp(type, "reply") == 0 || strcmp(type, "event") == 0)
        core_agent_message(c->cfg.core, instance, msg);
    else
        warn(c, "dropped a message of type '%.32s' from %s", type, instance);
}
