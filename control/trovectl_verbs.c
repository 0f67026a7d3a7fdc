/*
 * trovectl_verbs.c - every trovectl verb: its protocol operation, its
 * arguments and how they become the request's args map. Names follow the
 * Trove CLI; docs/protocol.md defines the operations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "json.h"
#include "trovectl.h"
#include "wire.h"

#define USAGE(...) (snprintf(err, errlen, __VA_ARGS__), -1)
#define NOMEM() USAGE("out of memory")

const char *cli_opt(const struct cli_args *a, const char *name)
{
    const char *value = NULL;
    for (int i = 0; i < a->n_opts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            value = a->opts[i].value;
    return value;
}

/* ------------------------------------------------------------ helpers */

static int set_opt_str(struct tv *args, const struct cli_args *a, const char *option, const char *key)
{
    const char *v = cli_opt(a, option);
    return v ? tv_set_str(args, key, v) : 0;
}

static int parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "k=v" into map[k] = v (as a string). */
static int put_pair(struct tv *map, const char *pair, const char *what, char *err, size_t errlen)
{
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair)
        return USAGE("%s '%s' is not NAME=VALUE", what, pair);
    char *key = strndup(pair, (size_t)(eq - pair));
    int rc = key ? tv_set_str(map, key, eq + 1) : -1;
    free(key);
    return rc == 0 ? 0 : NOMEM();
}

/* Every --option=k=v of a repeatable option into a child map. */
static int put_repeated_pairs(struct tv *args, const struct cli_args *a, const char *option, const char *key,
                              char *err, size_t errlen)
{
    struct tv *map = NULL;
    for (int i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].name, option) != 0)
            continue;
        if (!map && !(map = tv_child_map(args, key)))
            return NOMEM();
        char what[40];
        snprintf(what, sizeof what, "--%s", option);
        if (put_pair(map, a->opts[i].value, what, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Positional arguments from `first` on as an array of strings under key. */
static int put_names(struct tv *args, const struct cli_args *a, int first, const char *key, char *err,
                     size_t errlen)
{
    struct tv *arr = tv_child_array(args, key);
    if (!arr)
        return NOMEM();
    for (int i = first; i < a->n_pos; i++)
        if (tv_append(arr, tv_str(a->pos[i])) != 0)
            return NOMEM();
    return 0;
}

static int put_user(struct tv *args, const struct cli_args *a, char *err, size_t errlen)
{
    if (tv_set_str(args, "name", a->pos[1]) != 0 || set_opt_str(args, a, "host", "host") != 0)
        return NOMEM();
    return 0;
}

/* A secret argument under key: the value itself, or for "-" one line read
 * from standard input (whole, or refused). Either way within the agent's
 * password limit, so what is sent is exactly what was given. */
static int put_secret(struct tv *args, const char *key, const char *value, char *err, size_t errlen)
{
    char *from_stdin = NULL;
    if (strcmp(value, "-") == 0 && !(from_stdin = input_read_secret(stdin, key, err, errlen)))
        return -1;
    const char *secret = from_stdin ? from_stdin : value;
    int rc = input_check_password(key, strlen(secret), err, errlen);
    if (rc == 0 && tv_set_str(args, key, secret) != 0)
        rc = NOMEM();
    input_free_secret(from_stdin);
    return rc;
}

/* ------------------------------------------------------------ builders */

static int build_show(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return tv_set_str(args, "instance", a->pos[0]) == 0 ? 0 : NOMEM();
}

static int build_paging(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    const char *limit = cli_opt(a, "limit");
    long n;
    if (limit && parse_int(limit, 1, 100000, &n) != 0)
        return USAGE("--limit must be a number from 1 to 100000");
    if ((limit && tv_set_int(args, "limit", n) != 0) || set_opt_str(args, a, "marker", "marker") != 0)
        return NOMEM();
    return 0;
}

static int build_name(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return tv_set_str(args, "name", a->pos[1]) == 0 ? 0 : NOMEM();
}

static int build_database_create(const struct cli_args *a, struct tv *args, const char **op, char *err,
                                 size_t errlen)
{
    if (build_name(a, args, op, err, errlen) != 0 || set_opt_str(args, a, "character-set", "character_set") != 0 ||
        set_opt_str(args, a, "collation", "collation") != 0 || set_opt_str(args, a, "owner", "owner") != 0)
        return NOMEM();
    return 0;
}

static int build_user(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return put_user(args, a, err, errlen);
}

static int build_user_create(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    if (put_user(args, a, err, errlen) != 0 || put_secret(args, "password", a->pos[2], err, errlen) != 0)
        return -1;
    const char *dbs = cli_opt(a, "databases");
    if (dbs) {
        struct tv *arr = tv_child_array(args, "databases");
        char *copy = strdup(dbs), *save = NULL;
        if (!arr || !copy) {
            free(copy);
            return NOMEM();
        }
        int rc = 0;
        for (char *db = strtok_r(copy, ",", &save); db && rc == 0; db = strtok_r(NULL, ",", &save))
            rc = tv_append(arr, tv_str(db));
        free(copy);
        if (rc != 0)
            return NOMEM();
        if (arr->u.a.len == 0)
            return USAGE("--databases needs at least one name (a,b,c)");
    }
    return put_repeated_pairs(args, a, "option", "options", err, errlen);
}

static int build_user_databases(const struct cli_args *a, struct tv *args, const char **op, char *err,
                                size_t errlen)
{
    (void)op;
    if (put_user(args, a, err, errlen) != 0)
        return -1;
    return put_names(args, a, 2, "databases", err, errlen);
}

static int build_user_password(const struct cli_args *a, struct tv *args, const char **op, char *err,
                               size_t errlen)
{
    (void)op;
    if (put_user(args, a, err, errlen) != 0)
        return -1;
    return put_secret(args, "password", a->pos[2], err, errlen);
}

static int build_root_enable(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    const char *password = cli_opt(a, "password");
    return password ? put_secret(args, "password", password, err, errlen) : 0;
}

static int build_config_values(const struct cli_args *a, struct tv *args, const char **op, char *err,
                               size_t errlen)
{
    (void)op;
    struct tv *values = tv_child_map(args, "values");
    if (!values)
        return NOMEM();
    for (int i = 1; i < a->n_pos; i++)
        if (put_pair(values, a->pos[i], "setting", err, errlen) != 0)
            return -1;
    return 0;
}

static int build_config_names(const struct cli_args *a, struct tv *args, const char **op, char *err,
                              size_t errlen)
{
    (void)op;
    return a->n_pos > 1 ? put_names(args, a, 1, "names", err, errlen) : 0;
}

static int build_backup_create(const struct cli_args *a, struct tv *args, const char **op, char *err,
                               size_t errlen)
{
    (void)op;
    bool incremental = cli_opt(a, "incremental") != NULL, logical = cli_opt(a, "logical") != NULL;
    const char *parent = cli_opt(a, "parent");
    if (incremental && logical)
        return USAGE("--incremental and --logical exclude each other");
    if (incremental != (parent != NULL))
        return USAGE("--incremental needs --parent ID, and --parent needs --incremental");
    const char *kind = incremental ? "incremental" : logical ? "logical" : "full";
    if (tv_set_str(args, "kind", kind) != 0 || set_opt_str(args, a, "parent", "parent") != 0 ||
        set_opt_str(args, a, "id", "backup_id") != 0)
        return NOMEM();
    return 0;
}

static int build_backup_id(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return tv_set_str(args, "backup_id", a->pos[1]) == 0 ? 0 : NOMEM();
}

static int build_snapshot(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return set_opt_str(args, a, "id", "backup_id") == 0 ? 0 : NOMEM();
}

/* Parse a JSON object argument into *out: the text itself, or with "-" all
 * of standard input, with "@FILE" the whole file (both keep secrets in the
 * arguments off the command line). */
static int json_object(const char *arg, const char *what, struct tv **out, char *err, size_t errlen)
{
    char why[200];
    char *text = input_arg_text(arg, what, WIRE_MAX_FRAME, why, sizeof why);
    if (!text)
        return USAGE("%s", why);
    int rc = json_to_tv(text, out, why, sizeof why);
    input_free_secret(text);
    if (rc != 0)
        return USAGE("%s: %s", what, why);
    if ((*out)->type != TV_MAP) {
        tv_free(*out);
        *out = NULL;
        return USAGE("%s must be a JSON object", what);
    }
    return 0;
}

/* Copy every entry of src into dst, then free src. */
static int merge_into(struct tv *dst, struct tv *src, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < src->u.m.len && rc == 0; i++)
        rc = tv_set(dst, src->u.m.items[i].key, tv_copy(src->u.m.items[i].value));
    tv_free(src);
    return rc == 0 ? 0 : NOMEM();
}

static int build_prepare(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    const char *json = cli_opt(a, "json-args");
    struct tv *parsed = NULL;
    if (!json)
        return 0;
    if (json_object(json, "--json-args", &parsed, err, errlen) != 0)
        return -1;
    return merge_into(args, parsed, err, errlen);
}

static int put_source(struct tv *args, const struct cli_args *a, char *err, size_t errlen)
{
    static const char *const required[] = {"source-host", "source-port", "source-user", "source-password"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!cli_opt(a, required[i]))
            return USAGE("--%s is required", required[i]);
    long port;
    if (parse_int(cli_opt(a, "source-port"), 1, 65535, &port) != 0)
        return USAGE("--source-port must be a port number (1-65535)");
    struct tv *source = tv_child_map(args, "source");
    if (!source || tv_set_str(source, "host", cli_opt(a, "source-host")) != 0 ||
        tv_set_int(source, "port", port) != 0 || tv_set_str(source, "user", cli_opt(a, "source-user")) != 0)
        return NOMEM();
    return put_secret(source, "password", cli_opt(a, "source-password"), err, errlen);
}

static int build_attach(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    if (put_source(args, a, err, errlen) != 0)
        return -1;
    if (set_opt_str(args, a, "snapshot", "snapshot") != 0)
        return NOMEM();
    return put_repeated_pairs(args, a, "meta", "meta", err, errlen);
}

static int build_demote(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    return put_source(args, a, err, errlen);
}

static int build_read_only(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    const char *v = a->pos[1];
    bool on = strcmp(v, "on") == 0 || strcmp(v, "true") == 0;
    if (!on && strcmp(v, "off") != 0 && strcmp(v, "false") != 0)
        return USAGE("replication-read-only takes on or off, not '%s'", v);
    return tv_set_bool(args, "read_only", on) == 0 ? 0 : NOMEM();
}

#define DEFAULT_WAIT_SECONDS 60

static int build_wait(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    (void)op;
    const char *wait = cli_opt(a, "wait-timeout");
    long seconds = DEFAULT_WAIT_SECONDS;
    if (wait && parse_int(wait, 0, 86400, &seconds) != 0)
        return USAGE("--wait-timeout must be seconds from 0 to 86400");
    if (tv_set_str(args, "position", a->pos[1]) != 0 || tv_set_int(args, "timeout_ms", seconds * 1000) != 0)
        return NOMEM();
    return 0;
}

static int build_call(const struct cli_args *a, struct tv *args, const char **op, char *err, size_t errlen)
{
    *op = a->pos[1];
    if (strlen(*op) > 64)
        return USAGE("OP must be at most 64 characters");
    if (a->n_pos < 3)
        return 0;
    struct tv *parsed = NULL;
    if (json_object(a->pos[2], "JSON-ARGS", &parsed, err, errlen) != 0)
        return -1;
    return merge_into(args, parsed, err, errlen);
}

/* ------------------------------------------------------------ the table */

#define USER_HOST "host="
#define SOURCE_OPTS "source-host= source-port= source-user= source-password="

static const struct verb verbs[] = {
    {"ping", "ping", "INSTANCE", "check that the instance's agent answers", 1, 1, "", NULL, print_ping},
    {"status", "status", "INSTANCE", "the datastore's state, role and position", 1, 1, "", NULL,
     print_result_kv},
    {"list", "control.instances", "", "the instances the control plane knows", 0, 0, "", NULL,
     print_instances},
    {"show", "control.instance", "INSTANCE", "an instance's agent, plugin and capabilities", 1, 1, "",
     build_show, print_instance},

    {"database-create", "database.create", "INSTANCE NAME [--character-set X] [--collation Y] [--owner O]",
     "create a database", 2, 2, "character-set= collation= owner=", build_database_create, NULL},
    {"database-list", "database.list", "INSTANCE [--limit N] [--marker M]", "list databases", 1, 1,
     "limit= marker=", build_paging, print_databases},
    {"database-delete", "database.delete", "INSTANCE NAME", "delete a database", 2, 2, "", build_name, NULL},

    {"user-create", "user.create",
     "INSTANCE NAME PASSWORD [--host H] [--databases a,b] [--option k=v]...",
     "create a user (PASSWORD - reads it from stdin)", 3, 3, USER_HOST " databases= option=*",
     build_user_create, NULL},
    {"user-list", "user.list", "INSTANCE [--limit N] [--marker M]", "list users", 1, 1, "limit= marker=",
     build_paging, print_users},
    {"user-show", "user.show", "INSTANCE NAME [--host H]", "show a user", 2, 2, USER_HOST, build_user,
     print_user},
    {"user-delete", "user.delete", "INSTANCE NAME [--host H]", "delete a user", 2, 2, USER_HOST,
     build_user, NULL},
    {"user-grant-access", "user.grant", "INSTANCE NAME DB [DB...] [--host H]", "grant access to databases", 3,
     -1, USER_HOST, build_user_databases, NULL},
    {"user-revoke-access", "user.revoke", "INSTANCE NAME DB [DB...] [--host H]", "revoke access to databases",
     3, -1, USER_HOST, build_user_databases, NULL},
    {"user-show-access", "user.access", "INSTANCE NAME [--host H]", "the databases a user may access", 2, 2,
     USER_HOST, build_user, print_access},
    {"user-change-password", "user.password", "INSTANCE NAME PASSWORD [--host H]",
     "change a user's password (PASSWORD - reads it from stdin)", 3, 3, USER_HOST, build_user_password,
     NULL},

    {"root-enable", "root.enable", "INSTANCE [--password P]", "enable root; prints its password", 1, 1,
     "password=", build_root_enable, print_result_kv_secrets},
    {"root-show", "root.show", "INSTANCE", "whether root is enabled", 1, 1, "", NULL, print_result_kv},
    {"root-disable", "root.disable", "INSTANCE", "disable root", 1, 1, "", NULL, NULL},

    {"configuration-schema", "config.schema", "INSTANCE", "the parameters that can be set", 1, 1, "",
     NULL, print_schema},
    {"configuration-validate", "config.validate", "INSTANCE NAME=VALUE...", "check settings without applying",
     2, -1, "", build_config_values, print_result_kv},
    {"configuration-apply", "config.apply", "INSTANCE NAME=VALUE...", "apply settings", 2, -1, "",
     build_config_values, print_result_kv},
    {"configuration-reset", "config.reset", "INSTANCE", "reset settings to defaults", 1, 1, "", NULL,
     print_result_kv},
    {"configuration-show", "config.show", "INSTANCE [NAME...]", "effective values", 1, -1, "",
     build_config_names, print_config_values},

    {"backup-create", "backup.create", "INSTANCE [--incremental --parent ID] [--logical] [--id ID]",
     "take a backup", 1, 1, "incremental parent= logical id=", build_backup_create, print_backup},
    {"backup-list", "backup.list", "INSTANCE", "list backups", 1, 1, "", NULL, print_backups},
    {"backup-show", "backup.show", "INSTANCE BACKUP_ID", "show a backup", 2, 2, "", build_backup_id,
     print_backup},
    {"backup-delete", "backup.delete", "INSTANCE BACKUP_ID", "delete a backup", 2, 2, "",
     build_backup_id, NULL},
    {"restore", "backup.restore", "INSTANCE BACKUP_ID", "restore a backup (and its parents)", 2, 2, "",
     build_backup_id, print_result_kv},

    {"prepare", "prepare", "INSTANCE [--json-args JSON|-|@FILE]", "bring a new instance to a working state", 1, 1,
     "json-args=", build_prepare, print_result_kv},
    {"start", "start", "INSTANCE", "start the database server", 1, 1, "", NULL, NULL},
    {"stop", "stop", "INSTANCE", "stop the database server", 1, 1, "", NULL, NULL},
    {"restart", "restart", "INSTANCE", "restart the database server", 1, 1, "", NULL, NULL},

    {"replication-snapshot", "replication.snapshot", "INSTANCE [--id ID]",
     "snapshot for a new replica; prints its replication credentials", 1, 1, "id=", build_snapshot,
     print_result_kv_secrets},
    {"replica-attach", "replication.attach",
     "INSTANCE --source-host H --source-port P --source-user U --source-password W [--snapshot ID] [--meta k=v]...",
     "make the instance a replica of a source", 1, 1, SOURCE_OPTS " snapshot= meta=*", build_attach,
     print_result_kv},
    {"replica-detach", "replication.detach", "INSTANCE", "make a replica a standalone server", 1, 1, "",
     NULL, NULL},
    {"promote-to-replica-source", "replication.promote", "INSTANCE", "promote a replica to primary", 1, 1, "", NULL, NULL},
    {"promote", "replication.promote", "INSTANCE", "same as promote-to-replica-source", 1, 1, "", NULL,
     NULL},
    {"replica-demote", "replication.demote", "INSTANCE --source-host H --source-port P --source-user U --source-password W",
     "make a primary follow a new source", 1, 1, SOURCE_OPTS, build_demote, print_result_kv},
    {"replication-read-only", "replication.read_only", "INSTANCE on|off", "set read-only", 2, 2, "",
     build_read_only, NULL},
    {"replication-position", "replication.position", "INSTANCE", "the current replication position", 1, 1, "", NULL, print_result_kv},
    {"replication-wait", "replication.wait", "INSTANCE POSITION [--wait-timeout S]",
     "wait until the instance has applied POSITION (default 60 s)", 2, 2, "wait-timeout=", build_wait,
     NULL},
    {"replication-status", "replication.status", "INSTANCE", "role, lag and replication threads", 1, 1, "", NULL, print_result_kv},

    {"call", NULL, "INSTANCE OP [JSON-ARGS|-|@FILE]",
     "send any operation; JSON-ARGS as - or @FILE reads stdin or a file", 2, 3, "",
     build_call, print_result_kv},
};

const struct verb *verb_find(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

const struct verb *verb_at(size_t i)
{
    return i < sizeof verbs / sizeof verbs[0] ? &verbs[i] : NULL;
}

bool verb_has_instance(const struct verb *v)
{
    return v->min_pos > 0 && (!v->op || strncmp(v->op, "control.", 8) != 0);
}
