/*
 * users.c - ACL users and root. A user's "databases" are its key patterns
 * (ACL ~pattern); extra rules come only from the whitelist in check_rule().
 * Protected users (default, the agent's admin, root, replication) are refused.
 * Passwords go to Redis only as SHA-256 hashes (rd_password_rule). Every
 * change is persisted (ACL SAVE or CONFIG REWRITE, see rd_persist_acl).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_plugin.h"

#define MAX_PATTERNS 256
#define MAX_RULES 64
/* What an application user may do unless its rules say otherwise: every
 * command except administration and the ones that reach past key patterns
 * (FLUSHALL, KEYS, CONFIG, DEBUG, ...). */
static const char *const default_rules[] = {"+@all", "-@admin", "-@dangerous"};
#define N_DEFAULT_RULES 3

struct argv_buf {
    const char *argv[MAX_PATTERNS + MAX_RULES + 16];
    char *owned[MAX_PATTERNS + MAX_RULES + 16];
    int argc, n_owned;
};

static int push(struct argv_buf *b, const char *a)
{
    if (b->argc >= (int)(sizeof(b->argv) / sizeof(b->argv[0])))
        return -1;
    b->argv[b->argc++] = a;
    return 0;
}

static int push_owned(struct argv_buf *b, const char *prefix, const char *s)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s", prefix, s) < 0)
        return -1;
    if (push(b, p) != 0) {
        free(p);
        return -1;
    }
    b->owned[b->n_owned++] = p;
    return 0;
}

static void argv_free(struct argv_buf *b)
{
    for (int i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    b->n_owned = b->argc = 0;
}

/* The protected users: Redis's built-in "default" and the three the plugin
 * relies on, named by settings (user, root_user, replication_user). The user
 * API never creates, changes, shows or deletes them, and user.list leaves
 * them out. docs/plugins/redis.md lists the same; tests/redis checks both. */
bool rd_user_is_system(struct rd_ctx *ctx, const char *name)
{
    const char *const protected_users[] = {"default", ctx->s.user, ctx->s.root_user, ctx->s.replication_user};
    for (size_t i = 0; i < sizeof(protected_users) / sizeof(protected_users[0]); i++)
        if (strcmp(name, protected_users[i]) == 0)
            return true;
    return false;
}

static int check_name(struct rd_ctx *ctx, struct trove_call *call, const struct trove_user *u)
{
    if (!u || !u->name || !*u->name)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "a user name is required");
    if (!rd_user_name_ok(u->name))
        return RD_FAIL(ctx, call, TROVE_EINVAL,
                       "invalid ACL user name: use 1-64 characters, a letter, digit or '_' first, then letters, "
                       "digits and _ . : @ -");
    if (rd_user_is_system(ctx, u->name))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "\"%s\" is a system user and cannot be managed through the API",
                       u->name);
    return TROVE_OK;
}

static int check_patterns(struct rd_ctx *ctx, struct trove_call *call, const struct trove_user *u, bool required)
{
    if (required && u->n_databases == 0)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "at least one key pattern is required");
    if (u->n_databases > MAX_PATTERNS)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "at most %d key patterns", MAX_PATTERNS);
    for (size_t i = 0; i < u->n_databases; i++)
        if (!rd_pattern_ok(u->databases[i]))
            return RD_FAIL(ctx, call, TROVE_EINVAL,
                           "invalid key pattern #%zu: use 1-256 printable ASCII characters without spaces or "
                           "quotes, not starting with one of ~ %% & + - @ < > # !",
                           i + 1);
    return TROVE_OK;
}

static bool all_of(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define CMDCHARS LOWER "0123456789_-"

/* True if command `cmd` ("get", "config", "config|set") is in one of the
 * server's admin/dangerous lists, itself or through a subcommand. */
static bool listed(const redisReply *list, const char *cmd)
{
    size_t n = strlen(cmd);
    const char *bar = strchr(cmd, '|');
    for (size_t i = 0; list && i < list->elements; i++) {
        const char *e = list->element[i]->str;
        if (!e)
            continue;
        if (strcmp(e, cmd) == 0 || (strncmp(e, cmd, n) == 0 && e[n] == '|'))
            return true;
        if (bar && strncmp(e, cmd, (size_t)(bar - cmd)) == 0 && e[bar - cmd] == '\0')
            return true;
    }
    return false;
}

static bool check_rule(const char *r, const redisReply *admin, const redisReply *dangerous, const char **why)
{
    *why = "not an allowed rule form";
    if (!strcmp(r, "allkeys") || !strcmp(r, "allchannels") || !strcmp(r, "resetchannels") ||
        !strcmp(r, "nocommands"))
        return true;
    if (r[0] == '-' && r[1] == '@')
        return all_of(r + 2, LOWER);
    if (r[0] == '+' && r[1] == '@') {
        if (!strcmp(r + 2, "all") || !strcmp(r + 2, "admin") || !strcmp(r + 2, "dangerous"))
            return *why = "grants administrative commands", false;
        return all_of(r + 2, LOWER);
    }
    if (r[0] == '-' || r[0] == '+') {
        const char *bar = strchr(r + 1, '|');
        if (!all_of(r + 1, CMDCHARS "|") || r[1] == '|' || (bar && (strchr(bar + 1, '|') || !bar[1])))
            return false;
        if (r[0] == '+' && (listed(admin, r + 1) || listed(dangerous, r + 1)))
            return *why = "grants an administrative or dangerous command", false;
        return true;
    }
    if (r[0] == '~' || r[0] == '&')
        return rd_pattern_ok(r + 1);
    if (!strncmp(r, "%R~", 3) || !strncmp(r, "%W~", 3))
        return rd_pattern_ok(r + 3);
    if (!strncmp(r, "%RW~", 4))
        return rd_pattern_ok(r + 4);
    return false;
}

static int category_list(struct rd_conn *conn, const char *cat, redisReply **out)
{
    return rd_conn_cmd(conn, out, "ACL", "CAT", cat, NULL);
}

/* Append the whitelisted rules of option "rules" (space-separated) to b. */
static int add_rules(struct rd_conn *conn, const struct trove_user *u, struct argv_buf *b, char **copy)
{
    struct rd_ctx *ctx = conn->ctx;
    const char *rules = NULL;
    for (size_t i = 0; i < u->n_options; i++) {
        if (u->options[i].key && strcmp(u->options[i].key, "rules") == 0)
            rules = u->options[i].value;
        else if (u->options[i].key)
            return RD_FAIL(ctx, conn->call, TROVE_EINVAL, "unknown user option \"%s\" (Redis knows only \"rules\")",
                           u->options[i].key);
    }
    if (!rules || !*rules)
        return TROVE_OK;
    redisReply *admin = NULL, *dangerous = NULL;
    int rc = category_list(conn, "admin", &admin);
    if (rc == TROVE_OK)
        rc = category_list(conn, "dangerous", &dangerous);
    if (rc == TROVE_OK && !(*copy = strdup(rules)))
        rc = RD_FAIL(ctx, conn->call, TROVE_EINTERNAL, "out of memory");
    int n = 0;
    char *save = NULL;
    for (char *t = rc == TROVE_OK ? strtok_r(*copy, " \t", &save) : NULL; t; t = strtok_r(NULL, " \t", &save)) {
        const char *why = "";
        if (++n > MAX_RULES) {
            rc = RD_FAIL(ctx, conn->call, TROVE_EINVAL, "at most %d rules", MAX_RULES);
            break;
        }
        if (strlen(t) > 300 || !check_rule(t, admin, dangerous, &why)) {
            rc = RD_FAIL(ctx, conn->call, TROVE_EINVAL, "rule #%d refused: %s (allowed: +@category, -@category, "
                         "+command, -command, ~pattern, %%R~pattern, %%W~pattern, %%RW~pattern, &channel, allkeys, "
                         "allchannels, resetchannels, nocommands)", n, why);
            break;
        }
        if (push(b, t) != 0) {
            rc = RD_FAIL(ctx, conn->call, TROVE_EINVAL, "too many rules");
            break;
        }
    }
    freeReplyObject(admin);
    freeReplyObject(dangerous);
    return rc;
}

/* ACL GETUSER: *out is the reply, or NULL when the user does not exist. */
static int get_user(struct rd_conn *conn, const char *name, redisReply **out)
{
    int rc = rd_conn_cmd(conn, out, "ACL", "GETUSER", name, NULL);
    if (rc == TROVE_OK && (*out)->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(*out);
        *out = NULL;
    }
    return rc;
}

static const redisReply *user_field(const redisReply *u, const char *name)
{
    for (size_t i = 0; u && i + 1 < u->elements; i += 2)
        if (u->element[i]->str && strcmp(u->element[i]->str, name) == 0)
            return u->element[i + 1];
    return NULL;
}

/* The user's key permissions as rule tokens ("~app:*", "%R~x"), copied into
 * one buffer: *tokens points into *store. Redis 7 answers a string, 6 an array. */
static int key_tokens(const redisReply *u, char **store, const char **tokens, size_t max, size_t *n)
{
    const redisReply *k = user_field(u, "keys");
    *n = 0;
    *store = NULL;
    if (!k)
        return 0;
    if (k->type == REDIS_REPLY_ARRAY) {
        size_t total = 1;
        for (size_t i = 0; i < k->elements; i++)
            total += strlen(k->element[i]->str ? k->element[i]->str : "") + 2;
        char *s = *store = malloc(total), *o = s;
        if (!s)
            return -1;
        for (size_t i = 0; i < k->elements && *n < max; i++) {
            tokens[(*n)++] = o;
            o += sprintf(o, "~%s", k->element[i]->str ? k->element[i]->str : "") + 1;
        }
        return 0;
    }
    if (!k->str || !(*store = strdup(k->str)))
        return k->str ? -1 : 0;
    char *save = NULL;
    for (char *t = strtok_r(*store, " ", &save); t && *n < max; t = strtok_r(NULL, " ", &save))
        tokens[(*n)++] = t;
    return 0;
}

/* How a key token reads as a "database": plain pattern for ~pattern. */
static const char *token_database(const char *t)
{
    return t[0] == '~' ? t + 1 : t;
}

static int emit_with_patterns(struct rd_conn *conn, const char *name, const redisReply *u, bool as_databases)
{
    struct rd_ctx *ctx = conn->ctx;
    const char *tokens[MAX_PATTERNS * 2];
    const char *dbs[MAX_PATTERNS * 2];
    char *store;
    size_t n;
    if (key_tokens(u, &store, tokens, sizeof(tokens) / sizeof(tokens[0]), &n) != 0)
        return RD_FAIL(ctx, conn->call, TROVE_EINTERNAL, "out of memory");
    int rc = TROVE_OK;
    for (size_t i = 0; i < n; i++)
        dbs[i] = token_database(tokens[i]);
    if (as_databases) {
        for (size_t i = 0; i < n && rc == TROVE_OK; i++) {
            struct trove_database d = {.size = sizeof(d), .name = dbs[i]};
            rc = ctx->host->emit_database(conn->call, &d);
        }
    } else {
        struct trove_user out = {.size = sizeof(out), .name = name, .databases = dbs, .n_databases = n};
        rc = ctx->host->emit_user(conn->call, &out);
    }
    free(store);
    return rc;
}

/* Connect, check the name, and (when must_exist) that the user exists. */
static int begin(struct rd_ctx *ctx, struct trove_call *call, const struct trove_user *u, struct rd_conn *conn,
                 bool must_exist, redisReply **user)
{
    int rc = check_name(ctx, call, u);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = rd_conn_open(ctx, call, conn)) != TROVE_OK)
        return rc;
    redisReply *r = NULL;
    rc = get_user(conn, u->name, &r);
    if (rc == TROVE_OK && must_exist && !r)
        rc = RD_FAIL(ctx, call, TROVE_ENOTFOUND, "ACL user \"%s\" does not exist", u->name);
    else if (rc == TROVE_OK && !must_exist && r)
        rc = RD_FAIL(ctx, call, TROVE_EEXIST, "ACL user \"%s\" already exists", u->name);
    if (rc == TROVE_OK && user)
        *user = r;
    else
        freeReplyObject(r);
    if (rc != TROVE_OK)
        rd_conn_close(conn);
    return rc;
}

int rd_user_create(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct rd_ctx *ctx = self;
    struct trove_user user = rd_user_in(in);
    const struct trove_user *u = &user;
    struct rd_conn conn = {0};
    struct argv_buf b = {0};
    char *rules_copy = NULL;
    int rc = check_name(ctx, call, u);
    if (rc == TROVE_OK && !rd_password_ok(u->password))
        rc = RD_FAIL(ctx, call, TROVE_EINVAL, "a password of 1-512 characters without control characters is required");
    if (rc == TROVE_OK)
        rc = check_patterns(ctx, call, u, false);
    if (rc != TROVE_OK || (rc = begin(ctx, call, u, &conn, false, NULL)) != TROVE_OK)
        return rc;
    char rule[RD_PASSWORD_RULE_SIZE];
    push(&b, "ACL"), push(&b, "SETUSER"), push(&b, u->name), push(&b, "reset"), push(&b, "on");
    int bad = push(&b, rule);
    for (size_t i = 0; i < u->n_databases; i++)
        bad |= push_owned(&b, "~", u->databases[i]);
    for (int i = 0; i < N_DEFAULT_RULES; i++)
        bad |= push(&b, default_rules[i]);
    rd_password_rule(u->password, rule);
    if (bad)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = add_rules(&conn, u, &b, &rules_copy);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd_argv(&conn, NULL, b.argc, b.argv);
    if (rc == TROVE_OK && (rc = rd_acl_save(&conn)) != TROVE_OK)
        rd_conn_cmd_ok(&conn, "ACL", "DELUSER", u->name, NULL);   /* not persisted: undo */
    argv_free(&b);
    explicit_bzero(rule, sizeof(rule));
    free(rules_copy);
    rd_conn_close(&conn);
    return rc;
}

int rd_user_delete(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct rd_ctx *ctx = self;
    struct trove_user user = rd_user_in(in);
    const struct trove_user *u = &user;
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    int rc = begin(ctx, call, u, &conn, true, NULL);
    if (rc != TROVE_OK)
        return rc;
    rc = rd_conn_cmd(&conn, &r, "ACL", "DELUSER", u->name, NULL);
    if (rc == TROVE_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        rc = RD_FAIL(ctx, call, TROVE_ENOTFOUND, "ACL user \"%s\" does not exist", u->name);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

int rd_user_list(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    redisReply *names = NULL;
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc != TROVE_OK)
        return rc;
    rc = rd_conn_cmd(&conn, &names, "ACL", "USERS", NULL);
    for (size_t i = 0; rc == TROVE_OK && names->type == REDIS_REPLY_ARRAY && i < names->elements; i++) {
        const char *name = names->element[i]->str;
        redisReply *u = NULL;
        if (!name || rd_user_is_system(ctx, name))
            continue;
        rc = get_user(&conn, name, &u);
        if (rc == TROVE_OK && u)   /* deleted meanwhile: skip */
            rc = emit_with_patterns(&conn, name, u, false);
        freeReplyObject(u);
    }
    freeReplyObject(names);
    rd_conn_close(&conn);
    return rc;
}

static int show_or_access(struct rd_ctx *ctx, struct trove_call *call, const struct trove_user *u, bool access)
{
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    int rc = begin(ctx, call, u, &conn, true, &r);
    if (rc != TROVE_OK)
        return rc;
    rc = emit_with_patterns(&conn, u->name, r, access);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

int rd_user_show(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct trove_user u = rd_user_in(in);
    return show_or_access(self, call, &u, false);
}

int rd_user_access(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct trove_user u = rd_user_in(in);
    return show_or_access(self, call, &u, true);
}

int rd_user_grant(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct rd_ctx *ctx = self;
    struct trove_user user = rd_user_in(in);
    const struct trove_user *u = &user;
    struct rd_conn conn = {0};
    struct argv_buf b = {0};
    int rc = check_name(ctx, call, u);
    if (rc != TROVE_OK || (rc = check_patterns(ctx, call, u, true)) != TROVE_OK ||
        (rc = begin(ctx, call, u, &conn, true, NULL)) != TROVE_OK)
        return rc;
    int bad = push(&b, "ACL") | push(&b, "SETUSER") | push(&b, u->name);
    for (size_t i = 0; i < u->n_databases; i++)
        bad |= push_owned(&b, "~", u->databases[i]);
    rc = bad ? RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory") : rd_conn_cmd_argv(&conn, NULL, b.argc, b.argv);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    argv_free(&b);
    rd_conn_close(&conn);
    return rc;
}

static bool revoked(const struct trove_user *u, const char *token)
{
    for (size_t i = 0; i < u->n_databases; i++)
        if (strcmp(token_database(token), u->databases[i]) == 0)
            return true;
    return false;
}

/* Revoke: rebuild the key permissions without the revoked patterns
 * (resetkeys, then the rest), in one atomic ACL SETUSER. */
int rd_user_revoke(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct rd_ctx *ctx = self;
    struct trove_user user = rd_user_in(in);
    const struct trove_user *u = &user;
    struct rd_conn conn = {0};
    struct argv_buf b = {0};
    redisReply *r = NULL;
    char *store = NULL;
    const char *tokens[MAX_PATTERNS * 2];
    size_t n = 0;
    int rc = check_name(ctx, call, u);
    if (rc != TROVE_OK || (rc = check_patterns(ctx, call, u, true)) != TROVE_OK ||
        (rc = begin(ctx, call, u, &conn, true, &r)) != TROVE_OK)
        return rc;
    if (key_tokens(r, &store, tokens, sizeof(tokens) / sizeof(tokens[0]), &n) != 0)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; rc == TROVE_OK && i < u->n_databases; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(token_database(tokens[j]), u->databases[i]) == 0;
        if (!found)
            rc = RD_FAIL(ctx, call, TROVE_ENOTFOUND, "ACL user \"%s\" has no access to key pattern \"%s\"", u->name,
                         u->databases[i]);
    }
    if (rc == TROVE_OK) {
        push(&b, "ACL"), push(&b, "SETUSER"), push(&b, u->name), push(&b, "resetkeys");
        for (size_t j = 0; j < n; j++)
            if (!revoked(u, tokens[j]))
                push(&b, tokens[j]);
        rc = rd_conn_cmd_argv(&conn, NULL, b.argc, b.argv);
    }
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    free(store);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

int rd_user_set_password(void *self, struct trove_call *call, const struct trove_user *in)
{
    struct rd_ctx *ctx = self;
    struct trove_user user = rd_user_in(in);
    const struct trove_user *u = &user;
    struct rd_conn conn = {0};
    struct argv_buf b = {0};
    int rc = check_name(ctx, call, u);
    if (rc == TROVE_OK && !rd_password_ok(u->password))
        rc = RD_FAIL(ctx, call, TROVE_EINVAL, "a password of 1-512 characters without control characters is required");
    if (rc != TROVE_OK || (rc = begin(ctx, call, u, &conn, true, NULL)) != TROVE_OK)
        return rc;
    char rule[RD_PASSWORD_RULE_SIZE];
    push(&b, "ACL"), push(&b, "SETUSER"), push(&b, u->name), push(&b, "resetpass");
    rd_password_rule(u->password, rule);
    rc = push(&b, rule) != 0 ? RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory")
                             : rd_conn_cmd_argv(&conn, NULL, b.argc, b.argv);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    argv_free(&b);
    explicit_bzero(rule, sizeof(rule));
    rd_conn_close(&conn);
    return rc;
}

/* Root is a dedicated ACL user (setting root_user, default "root") with every
 * command and key; disable deletes it. The agent's admin user is never touched. */
int rd_root_enable(void *self, struct trove_call *call, const char *password)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    char generated[33], rule[RD_PASSWORD_RULE_SIZE] = "";
    if (!password) {
        if (ctx->host->random_password(generated, sizeof(generated)) != TROVE_OK)
            return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot generate a password");
        password = generated;
    } else if (!rd_password_ok(password)) {
        return RD_FAIL(ctx, call, TROVE_EINVAL, "a password of 1-512 characters without control characters is required");
    }
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc != TROVE_OK)
        goto out;
    rd_password_rule(password, rule);
    rc = rd_conn_cmd_ok(&conn, "ACL", "SETUSER", ctx->s.root_user, "reset", "on", rule, "~*", "&*", "+@all", NULL);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    if (rc == TROVE_OK && (ctx->host->set_str(call, "name", ctx->s.root_user) != TROVE_OK ||
                           ctx->host->set_str(call, "password", password) != TROVE_OK))
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
out:
    explicit_bzero(rule, sizeof(rule));
    explicit_bzero(generated, sizeof(generated));
    rd_conn_close(&conn);
    return rc;
}

int rd_root_disable(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc != TROVE_OK)
        return rc;
    rc = rd_conn_cmd_ok(&conn, "ACL", "DELUSER", ctx->s.root_user, NULL);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    rd_conn_close(&conn);
    return rc;
}

int rd_root_show(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc != TROVE_OK)
        return rc;
    rc = get_user(&conn, ctx->s.root_user, &r);
    bool on = false;
    const redisReply *flags = r ? user_field(r, "flags") : NULL;
    for (size_t i = 0; flags && i < flags->elements; i++)
        on = on || (flags->element[i]->str && strcmp(flags->element[i]->str, "on") == 0);
    if (rc == TROVE_OK)
        rc = ctx->host->set_bool(call, "enabled", on);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}
