/*
 * ops.h - the one catalogue of protocol operations: for each, its wire
 * name, who answers it (an agent or the control plane), the plugin slot it
 * needs, whether it runs as a task, and its argument schema. The agent's
 * dispatch, the control plane's routes, trovectl's verbs and the test of
 * docs/protocol.md all read this list; adding an operation touches it once.
 */
#ifndef TROVE_OPS_H
#define TROVE_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "trove_plugin.h"

/*
 * Argument types. STRINGS is a list of strings (one string is accepted as a
 * one-item list); KV a map of scalars (numbers and bools read as text); LIST
 * a list of maps; MAP any map.
 */
enum ops_type { OPS_STR, OPS_INT, OPS_BOOL, OPS_MAP, OPS_KV, OPS_LIST, OPS_STRINGS };

struct ops_arg {
    const char *name;
    enum ops_type type;
    bool required;
};

enum ops_scope { OPS_SCOPE_AGENT, OPS_SCOPE_CONTROL };

struct ops_def {
    const char *name;            /* wire name, "user.create" */
    enum ops_scope scope;        /* agent ops go to the instance's agent; control ops to a registered handler */
    bool is_long;                /* runs as a task: answers {task, state: running}, then events */
    bool open_args;              /* the handler checks its own arguments (no schema below) */
    const char *slot;            /* the plugin slot it needs (agent ops), NULL when none */
    size_t slot_offset, slot_size;
    const struct ops_arg *args;  /* the schema; n_args entries */
    size_t n_args;
};

/*
 * The catalogue. Each row: X(ident, "wire.name", slot, kind, args)
 *   ident  a C identifier; the agent's handler for it is op_<ident>
 *   slot   SLOT(member of struct trove_plugin) or NO_SLOT
 *   kind   SHORT or LONG (a task)
 *   args   A(name, TYPE, REQ|OPT) ... or nothing; OPEN_ARGS when the handler
 *          checks its own (free-form) arguments
 * Unknown arguments are refused; docs/protocol.md lists every row (a test
 * checks it).
 */
#define TROVE_AGENT_OPS(X)                                                                                      \
    X(ping, "ping", NO_SLOT, SHORT, )                                                                          \
    X(status, "status", SLOT(status), SHORT, )                                                                 \
    X(prepare, "prepare", SLOT(prepare), LONG,                                                                 \
      A(databases, LIST, OPT) A(users, LIST, OPT) A(root_password, STR, OPT) A(overrides, KV, OPT)            \
      A(backup_id, STR, OPT))                                                                                  \
    X(start, "start", SLOT(start), SHORT, )                                                                    \
    X(stop, "stop", SLOT(stop), SHORT, )                                                                       \
    X(restart, "restart", SLOT(restart), LONG, )                                                               \
    X(user_create, "user.create", SLOT(user_create), SHORT,                                                    \
      A(name, STR, REQ) A(host, STR, OPT) A(password, STR, REQ) A(databases, STRINGS, OPT) A(options, KV, OPT)) \
    X(user_delete, "user.delete", SLOT(user_delete), SHORT, A(name, STR, REQ) A(host, STR, OPT))                \
    X(user_list, "user.list", SLOT(user_list), SHORT, A(limit, INT, OPT) A(marker, STR, OPT))                  \
    X(user_show, "user.show", SLOT(user_show), SHORT, A(name, STR, REQ) A(host, STR, OPT))                      \
    X(user_grant, "user.grant", SLOT(user_grant), SHORT,                                                       \
      A(name, STR, REQ) A(host, STR, OPT) A(databases, STRINGS, OPT) A(database, STR, OPT))                    \
    X(user_revoke, "user.revoke", SLOT(user_revoke), SHORT,                                                    \
      A(name, STR, REQ) A(host, STR, OPT) A(databases, STRINGS, OPT) A(database, STR, OPT))                    \
    X(user_access, "user.access", SLOT(user_access), SHORT, A(name, STR, REQ) A(host, STR, OPT))                \
    X(user_password, "user.password", SLOT(user_set_password), SHORT,                                          \
      A(name, STR, REQ) A(host, STR, OPT) A(password, STR, REQ))                                               \
    X(root_enable, "root.enable", SLOT(root_enable), SHORT, A(password, STR, OPT))                             \
    X(root_disable, "root.disable", SLOT(root_disable), SHORT, )                                               \
    X(root_show, "root.show", SLOT(root_show), SHORT, )                                                        \
    X(database_create, "database.create", SLOT(database_create), SHORT,                                        \
      A(name, STR, REQ) A(character_set, STR, OPT) A(collation, STR, OPT) A(owner, STR, OPT)                  \
      A(options, KV, OPT))                                                                                     \
    X(database_delete, "database.delete", SLOT(database_delete), SHORT, A(name, STR, REQ))                     \
    X(database_list, "database.list", SLOT(database_list), SHORT, A(limit, INT, OPT) A(marker, STR, OPT))      \
    X(database_alter, "database.alter", SLOT(database_alter), SHORT,                                          \
      A(name, STR, REQ) A(character_set, STR, OPT) A(collation, STR, OPT) A(owner, STR, OPT)                  \
      A(options, KV, OPT))                                                                                     \
    X(config_schema, "config.schema", SLOT(config_schema), SHORT, )                                            \
    X(config_validate, "config.validate", SLOT(config_schema), SHORT, A(values, KV, REQ))                      \
    X(config_apply, "config.apply", SLOT(config_apply), SHORT, A(values, KV, REQ))                             \
    X(config_reset, "config.reset", SLOT(config_reset), SHORT, )                                               \
    X(config_show, "config.show", SLOT(config_show), SHORT, A(names, STRINGS, OPT))                            \
    X(backup_create, "backup.create", SLOT(backup_create), LONG,                                               \
      A(backup_id, STR, OPT) A(kind, STR, OPT) A(parent, STR, OPT) A(options, KV, OPT) A(storage, MAP, OPT))   \
    X(backup_list, "backup.list", SLOT(backup_create), SHORT, A(storage, MAP, OPT))                            \
    X(backup_show, "backup.show", SLOT(backup_create), SHORT, A(backup_id, STR, REQ) A(storage, MAP, OPT))     \
    X(backup_delete, "backup.delete", SLOT(backup_create), SHORT, A(backup_id, STR, REQ) A(storage, MAP, OPT)) \
    X(backup_restore, "backup.restore", SLOT(backup_restore), LONG, A(backup_id, STR, REQ) A(storage, MAP, OPT)) \
    X(repl_snapshot, "replication.snapshot", SLOT(repl_snapshot), LONG,                                        \
      A(backup_id, STR, OPT) A(options, KV, OPT) A(storage, MAP, OPT))                                         \
    X(repl_attach, "replication.attach", SLOT(repl_attach), LONG,                                              \
      A(source, MAP, REQ) A(snapshot, STR, OPT) A(meta, KV, OPT) A(cluster_secret, STR, OPT))                 \
    X(repl_detach, "replication.detach", SLOT(repl_detach), SHORT, )                                           \
    X(repl_promote, "replication.promote", SLOT(repl_promote), SHORT, )                                        \
    X(repl_demote, "replication.demote", SLOT(repl_demote), LONG,                                              \
      A(source, MAP, REQ) A(meta, KV, OPT) A(cluster_secret, STR, OPT))                                       \
    X(repl_read_only, "replication.read_only", SLOT(repl_set_read_only), SHORT, A(read_only, BOOL, OPT))       \
    X(repl_position, "replication.position", SLOT(repl_position), SHORT, )                                     \
    X(repl_wait, "replication.wait", SLOT(repl_wait), SHORT, A(position, STR, REQ) A(timeout_ms, INT, OPT))    \
    X(repl_status, "replication.status", SLOT(repl_status), SHORT, )                                           \
    X(repl_compare, "replication.compare", SLOT(repl_compare), SHORT, A(a, STR, REQ) A(b, STR, REQ))          \
    X(repl_credentials, "replication.credentials", SLOT(repl_credentials), SHORT, )                            \
    X(cluster_join, "cluster.join", SLOT(cluster_join), LONG,                                                  \
      A(cluster_name, STR, OPT) A(seeds, LIST, OPT) A(user, STR, OPT) A(password, STR, OPT)                   \
      A(cluster_secret, STR, OPT) A(options, KV, OPT))                                                         \
    X(cluster_leave, "cluster.leave", SLOT(cluster_leave), LONG,                                               \
      A(member, MAP, OPT) A(user, STR, OPT) A(password, STR, OPT) A(cluster_secret, STR, OPT)                 \
      A(options, KV, OPT))                                                                                     \
    X(cluster_status, "cluster.status", SLOT(cluster_status), SHORT, )                                        \
    X(log_list, "log.list", SLOT(guest_log_list), SHORT, )                                                     \
    X(log_tail, "log.tail", SLOT(guest_log_read), SHORT, A(name, STR, REQ) A(bytes, INT, OPT))                 \
    X(log_fetch, "log.fetch", SLOT(guest_log_read), LONG, A(name, STR, REQ) A(max_bytes, INT, OPT))

/* Operations the control plane answers itself; their handlers are
 * registered with core_register() (control/core.h). */
#define TROVE_CONTROL_OPS(X)                                                                                    \
    X(control_ping, "control.ping", NO_SLOT, SHORT, )                                                          \
    X(control_instances, "control.instances", NO_SLOT, SHORT, )                                                \
    X(control_instance, "control.instance", NO_SLOT, SHORT, A(instance, STR, REQ))                             \
    X(control_task, "control.task", NO_SLOT, SHORT, A(id, STR, REQ))                                           \
    X(control_tasks, "control.tasks", NO_SLOT, SHORT, A(instance, STR, OPT))                                   \
    X(instance_list, "instance.list", NO_SLOT, SHORT, OPEN_ARGS)                                               \
    X(instance_show, "instance.show", NO_SLOT, SHORT, OPEN_ARGS)                                               \
    X(instance_create, "instance.create", NO_SLOT, LONG, OPEN_ARGS)                                            \
    X(instance_delete, "instance.delete", NO_SLOT, LONG, OPEN_ARGS)                                            \
    X(instance_force_delete, "instance.force_delete", NO_SLOT, LONG, OPEN_ARGS)                                \
    X(instance_restart, "instance.restart", NO_SLOT, LONG, OPEN_ARGS)                                          \
    X(instance_resize_flavor, "instance.resize_flavor", NO_SLOT, LONG, OPEN_ARGS)                              \
    X(instance_resize_volume, "instance.resize_volume", NO_SLOT, LONG, OPEN_ARGS)

/* Identifiers: OPS_ping, OPS_user_create, ..., then OPS_COUNT. */
#define OPS_ENUM_ROW(ident, name, slot, kind, args) OPS_##ident,
enum ops_id { TROVE_AGENT_OPS(OPS_ENUM_ROW) OPS_AGENT_COUNT_, OPS_CONTROL_FIRST_ = OPS_AGENT_COUNT_ - 1,
              TROVE_CONTROL_OPS(OPS_ENUM_ROW) OPS_COUNT };
#undef OPS_ENUM_ROW
#define OPS_AGENT_COUNT ((size_t)OPS_AGENT_COUNT_)

/* Every operation, indexed by enum ops_id. */
extern const struct ops_def ops_catalogue[OPS_COUNT];

/* The operation with this wire name, or NULL. */
const struct ops_def *ops_find(const char *name);
/* Its index in ops_catalogue. */
enum ops_id ops_id_of(const struct ops_def *op);
/* True if the named operation exists and runs as a task. */
bool ops_is_long(const char *name);
/* "string", "integer", ... for messages. */
const char *ops_type_name(enum ops_type t);
/* True if a plugin table (of any minor) sets the op's slot; true for ops
 * without a slot. */
bool ops_plugin_has(const struct trove_plugin *vt, const struct ops_def *op);

struct tv;
/*
 * Check args (a map, or NULL for none) against the op's schema: every
 * required argument present, every present argument known and of its type.
 * An argument whose value is nil counts as absent. Returns 0, or -1 with a
 * one-line reason naming the argument in err.
 */
int ops_check_args(const struct ops_def *op, const struct tv *args, char *err, size_t errlen);

#endif
