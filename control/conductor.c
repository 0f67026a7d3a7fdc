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
#include "log.h"
#include "tasks.h"
#include "timing.h"
#include "value.h"

#define HEARTBEAT_MS_MIN 100
#define HEARTBEAT_MS_MAX 3600000
#define HELLO_TASKS_MAX 256
#define WARN_WINDOW_MS 10000
#define WARN_PER_WINDOW 20

struct conductor {
    struct conductor_config cfg;
    struct log_limit warnings;
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

struct conductor *conductor_new(const struct conductor_config *cfg)
{
    struct conductor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->warnings = (struct log_limit){WARN_WINDOW_MS, WARN_PER_WINDOW, "warnings about agent messages", 0, 0, 0};
    return c;
}

void conductor_free(struct conductor *c)
{
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
