/*
 * conductor.c - what agents say about themselves (hello, heartbeat, bye),
 * checked field by field and kept in the registry. A message with a
 * mistyped field is dropped whole, so the registry never holds a value of
 * the wrong type.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define HEARTBEAT_MS_MIN 100
#define HEARTBEAT_MS_MAX 3600000

struct field_rule {
    const char *key;
    enum tv_type type;
    bool nil_ok;
};

static const struct field_rule hello_rules[] = {
    {"instance", TV_STR, false},      {"agent_version", TV_STR, false}, {"plugin", TV_MAP, false},
    {"abi", TV_MAP, false},           {"capabilities", TV_ARRAY, false}, {"features", TV_ARRAY, false},
    {"heartbeat_ms", TV_INT, false},
};

static const struct field_rule heartbeat_rules[] = {
    {"seq", TV_INT, false},     {"state", TV_STR, false},   {"role", TV_STR, false}, {"term", TV_INT, false},
    {"position", TV_STR, false}, {"message", TV_STR, false}, {"task", TV_STR, true},
};

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

void conductor_hello(struct control *c, const char *instance, const struct tv *msg)
{
    char err[160];
    const char *claimed = tv_get_str(msg, "instance");
    int64_t heartbeat_ms = tv_get_int(msg, "heartbeat_ms", AGENTS_DEFAULT_HEARTBEAT_MS);

    if (check_fields(msg, hello_rules, sizeof hello_rules / sizeof hello_rules[0], err, sizeof err) != 0 ||
        check_string_array(msg, "capabilities", err, sizeof err) != 0 ||
        check_string_array(msg, "features", err, sizeof err) != 0) {
        warn_agent_traffic(c, "dropped hello from %s: %s", instance, err);
        return;
    }
    if (claimed && strcmp(claimed, instance) != 0) {
        warn_agent_traffic(c, "dropped hello from %s: it names instance '%.64s'", instance, claimed);
        return;
    }
    if (heartbeat_ms < HEARTBEAT_MS_MIN || heartbeat_ms > HEARTBEAT_MS_MAX) {
        warn_agent_traffic(c, "dropped hello from %s: heartbeat_ms %lld outside %d..%d", instance,
                           (long long)heartbeat_ms, HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX);
        return;
    }
    struct tv *copy = tv_copy(msg);
    struct agent *a = copy ? agents_alive(c->agent_table, instance, monotonic_ms()) : NULL;
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
}

void conductor_heartbeat(struct control *c, const char *instance, const struct tv *msg)
{
    char err[160];
    if (check_fields(msg, heartbeat_rules, sizeof heartbeat_rules / sizeof heartbeat_rules[0], err,
                     sizeof err) != 0) {
        warn_agent_traffic(c, "dropped heartbeat from %s: %s", instance, err);
        return;
    }
    int64_t now = monotonic_ms();
    struct tv *copy = tv_copy(msg);
    struct agent *a = agents_get(c->agent_table, instance);
    bool was_connected = a && agent_connected(a, now);
    a = copy ? agents_alive(c->agent_table, instance, now) : NULL;
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

void conductor_bye(struct control *c, const char *instance)
{
    struct agent *a = agents_get(c->agent_table, instance);
    if (a) {
        a->gone = true;
        log_info("agent %s said goodbye", instance);
    }
}
