/*
 * users.c - users are Cassandra roles WITH LOGIN and a PASSWORD; access to a
 * database is ALL PERMISSIONS ON KEYSPACE; root is a SUPERUSER role. Lookups
 * bind the role name as a value; CREATE/ALTER ROLE and GRANT take no bind
 * markers, so names are checked, then quoted as identifiers and passwords as
 * literals. Statements that carry a password are never logged and the
 * server's answer to them is withheld from messages.
 */
#include <stdlib.h>
#include <string.h>

#include "cassandra.h"

#define PASSWORD_MAX 1024

int cs_role_get(struct cs_conn *c, const char *name, bool *exists, bool *login, bool *super)
{
    struct cql_param p = cql_param_text(name);
    struct cql_result *res = NULL;
    int rc = cs_query(c, "reading the role", "SELECT can_login, is_superuser FROM system_auth.roles WHERE role = ?",
                      &p, 1, &res, false);
    if (rc != TROVE_OK)
        return rc;
    *exists = res->rows.nrows > 0;
    const struct cql_value *l = cql_cell_by_name(res, 0, "can_login");
    const struct cql_value *s = cql_cell_by_name(res, 0, "is_superuser");
    if (login)
        *login = l && l->kind == CQL_VALUE_BOOL && l->u.b;
    if (super)
        *super = s && s->kind == CQL_VALUE_BOOL && s->u.b;
    cql_result_free(res);
    return TROVE_OK;
}

int cs_role_put(struct cs_conn *c, const char *name, const char *password, bool login, bool super, bool exists)
{
    struct tps_buf b = {0};
    tps_buf_add(&b, exists ? "ALTER ROLE " : "CREATE ROLE ");
    bool ok = cs_add_ident(&b, name);
    tps_buf_add(&b, " WITH PASSWORD = ");
    ok = ok && cs_add_literal(&b, password);
    tps_buf_addf(&b, " AND LOGIN = %s AND SUPERUSER = %s", login ? "true" : "false", super ? "true" : "false");
    int rc = ok ? cs_query(c, exists ? "ALTER ROLE" : "CREATE ROLE", tps_buf_str(&b), NULL, 0, NULL, true)
                : c->ctx->host->fail(c->call, TROVE_EINVAL, "the role name and password must be UTF-8");
    tps_buf_wipe(&b);
    return rc;
}

static int check_password(struct cs_ctx *ctx, struct trove_call *call, const char *password)
{
    if (!password || !*password)
        return ctx->host->fail(call, TROVE_EINVAL, "a password is required and must not be empty");
    if (strlen(password) > PASSWORD_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "the password is longer than %d bytes", PASSWORD_MAX);
    char *q = cql_quote_literal(password);
    if (!q)
        return ctx->host->fail(call, TROVE_EINVAL, "the password must be UTF-8");
    explicit_bzero(q, strlen(q));
    free(q);
    return TROVE_OK;
}

/* Every keyspace named is valid, not a system one, and exists. */
static int check_keyspaces(struct cs_conn *c, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool exists = false;
        int rc = cs_check_keyspace(c->ctx, c->call, names[i]);
        if (rc == TROVE_OK)
            rc = cs_keyspace_exists(c, names[i], &exists);
        if (rc != TROVE_OK)
            return rc;
        if (!exists)
            return c->ctx->host->fail(c->call, TROVE_ENOTFOUND, "keyspace \"%s\" does not exist", names[i]);
    }
    return TROVE_OK;
}

/* GRANT or REVOKE ALL PERMISSIONS ON KEYSPACE "ks" TO/FROM "role". */
static int permissions(struct cs_conn *c, const char *role, const char *keyspace, bool grant)
{
    struct tps_buf b = {0};
    tps_buf_add(&b, grant ? "GRANT ALL PERMISSIONS ON KEYSPACE " : "REVOKE ALL PERMISSIONS ON KEYSPACE ");
    bool ok = cs_add_ident(&b, keyspace);
    tps_buf_add(&b, grant ? " TO " : " FROM ");
    ok = ok && cs_add_ident(&b, role);
    int rc = ok ? cs_query(c, grant ? "GRANT" : "REVOKE", tps_buf_str(&b), NULL, 0, NULL, false)
                : c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    tps_buf_free(&b);
    return rc;
}

static int drop_role(struct cs_conn *c, const char *name, bool if_exists)
{
    struct tps_buf b = {0};
    tps_buf_add(&b, if_exists ? "DROP ROLE IF EXISTS " : "DROP ROLE ");
    int rc = cs_add_ident(&b, name) ? cs_query(c, "DROP ROLE", tps_buf_str(&b), NULL, 0, NULL, false)
                                    : c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    tps_buf_free(&b);
    return rc;
}

static int check_user(struct cs_ctx *ctx, struct trove_call *call, const struct trove_user *u)
{
    int rc = cs_check_role(ctx, call, u->name);
    if (rc == TROVE_OK && u->n_options)
        rc = ctx->host->fail(call, TROVE_EINVAL, "Cassandra roles take no options (got \"%s\")", u->options[0].key);
    return rc;
}

int cs_user_create_on(struct cs_conn *c, const struct trove_user *user)
{
    struct cs_ctx *ctx = c->ctx;
    bool exists = false;
    int rc = check_user(ctx, c->call, user);
    if (rc == TROVE_OK)
        rc = check_password(ctx, c->call, user->password);
    if (rc == TROVE_OK)
        rc = check_keyspaces(c, user->databases, user->n_databases);
    if (rc == TROVE_OK)
        rc = cs_role_get(c, user->name, &exists, NULL, NULL);
    if (rc == TROVE_OK && exists)
        return ctx->host->fail(c->call, TROVE_EEXIST, "role \"%s\" already exists", user->name);
    if (rc == TROVE_OK)
        rc = cs_role_put(c, user->name, user->password, true, false, false);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++) {
        rc = permissions(c, user->name, user->databases[i], true);
        if (rc != TROVE_OK)   /* all or nothing: the message of the failed grant stays */
            drop_role(c, user->name, true);
    }
    return rc;
}

/* Opens the admin connection and checks that the role exists as a user. */
static int open_user(struct cs_ctx *ctx, struct trove_call *call, const struct trove_user *u, struct cs_conn *c)
{
    bool exists = false, login = false;
    int rc = check_user(ctx, call, u);
    if (rc == TROVE_OK)
        rc = cs_conn_open(ctx, call, c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_role_get(c, u->name, &exists, &login, NULL);
    if (rc == TROVE_OK && !(exists && login))
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "user \"%s\" does not exist", u->name);
    if (rc != TROVE_OK)
        cs_conn_close(c);
    return rc;
}

int cs_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    int rc = check_user(ctx, call, user);
    if (rc == TROVE_OK)
        rc = check_password(ctx, call, user->password);
    if (rc == TROVE_OK)
        rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_user_create_on(&c, user);
    cs_conn_close(&c);
    return rc;
}

int cs_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct cs_conn c;
    int rc = open_user(self, call, user, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = drop_role(&c, user->name, false);
    cs_conn_close(&c);
    return rc;
}

/* ---- listing ------------------------------------------------------------ */

/* "<keyspace ks>" -> ks (names are \w+, so nothing else can close the bracket). */
static const char *keyspace_of(const char *resource, char *out, size_t len)
{
    static const char prefix[] = "<keyspace ";
    size_t n = resource ? strlen(resource) : 0;
    if (n <= sizeof(prefix) || strncmp(resource, prefix, sizeof(prefix) - 1) || resource[n - 1] != '>')
        return NULL;
    size_t k = n - sizeof(prefix);
    if (k >= len)
        return NULL;
    memcpy(out, resource + sizeof(prefix) - 1, k);
    out[k] = '\0';
    return cql_valid_keyspace_name(out) ? out : NULL;
}

/* The keyspaces (in order, once each) a permissions result grants `role`. */
static size_t keyspaces_of(const struct cql_result *perms, const char *role, const char **out, size_t max,
                           char (*store)[64])
{
    size_t n = 0;
    for (size_t r = 0; perms && r < perms->rows.nrows && n < max; r++) {
        const char *who = cql_value_text(cql_cell_by_name(perms, r, "role"));
        const char *ks = keyspace_of(cql_value_text(cql_cell_by_name(perms, r, "resource")), store[n], 64);
        if (!who || !ks || strcmp(who, role))
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = !strcmp(out[i], ks);
        if (!seen)
            out[n++] = ks;
    }
    return n;
}

#define ACCESS_MAX 1024

/* LIST ALL PERMISSIONS [OF "role" NORECURSIVE] */
static int list_permissions(struct cs_conn *c, const char *role, struct cql_result **out)
{
    struct tps_buf b = {0};
    tps_buf_add(&b, "LIST ALL PERMISSIONS");
    bool ok = true;
    if (role) {
        tps_buf_add(&b, " OF ");
        ok = cs_add_ident(&b, role);
        tps_buf_add(&b, " NORECURSIVE");
    }
    int rc = ok ? cs_query(c, "LIST PERMISSIONS", tps_buf_str(&b), NULL, 0, out, false)
                : c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    tps_buf_free(&b);
    return rc;
}

static int emit_user(struct cs_conn *c, const char *name, const struct cql_result *perms)
{
    const char **dbs = calloc(ACCESS_MAX, sizeof(*dbs));
    char (*store)[64] = calloc(ACCESS_MAX, sizeof(*store));
    int rc = TROVE_EINTERNAL;
    if (dbs && store) {
        size_t n = keyspaces_of(perms, name, dbs, ACCESS_MAX, store);
        struct trove_user u = {.size = sizeof(u), .name = name, .databases = dbs, .n_databases = n};
        rc = c->ctx->host->emit_user(c->call, &u);
    } else {
        c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    }
    free(dbs);
    free(store);
    return rc;
}

int cs_user_list(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    struct cql_result *roles = NULL, *perms = NULL;
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_query(&c, "LIST ROLES", "LIST ROLES", NULL, 0, &roles, false);
    if (rc == TROVE_OK)
        rc = list_permissions(&c, NULL, &perms);
    for (size_t r = 0; rc == TROVE_OK && r < roles->rows.nrows; r++) {
        const char *name = cql_value_text(cql_cell_by_name(roles, r, "role"));
        const struct cql_value *login = cql_cell_by_name(roles, r, "login");
        if (!name || !login || login->kind != CQL_VALUE_BOOL || !login->u.b || cs_role_protected(ctx, name))
            continue;
        rc = emit_user(&c, name, perms);
    }
    cql_result_free(roles);
    cql_result_free(perms);
    cs_conn_close(&c);
    return rc;
}

int cs_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct cs_conn c;
    struct cql_result *perms = NULL;
    int rc = open_user(self, call, user, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = list_permissions(&c, user->name, &perms);
    if (rc == TROVE_OK)
        rc = emit_user(&c, user->name, perms);
    cql_result_free(perms);
    cs_conn_close(&c);
    return rc;
}

int cs_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct cs_conn c;
    struct cql_result *perms = NULL;
    int rc = open_user(self, call, user, &c);
    if (rc != TROVE_OK)
        return rc;
    const char **dbs = calloc(ACCESS_MAX, sizeof(*dbs));
    char (*store)[64] = calloc(ACCESS_MAX, sizeof(*store));
    if (!dbs || !store)
        rc = c.ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = list_permissions(&c, user->name, &perms);
    size_t n = rc == TROVE_OK ? keyspaces_of(perms, user->name, dbs, ACCESS_MAX, store) : 0;
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        struct trove_database d = {.size = sizeof(d), .name = dbs[i]};
        rc = c.ctx->host->emit_database(call, &d);
    }
    free(dbs);
    free(store);
    cql_result_free(perms);
    cs_conn_close(&c);
    return rc;
}

static int grant_or_revoke(struct cs_ctx *ctx, struct trove_call *call, const struct trove_user *user, bool grant)
{
    struct cs_conn c;
    if (user->n_databases == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "name at least one keyspace");
    for (size_t i = 0; i < user->n_databases; i++)
        if (cs_check_keyspace(ctx, call, user->databases[i]) != TROVE_OK)
            return TROVE_EINVAL;
    int rc = open_user(ctx, call, user, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = check_keyspaces(&c, user->databases, user->n_databases);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = permissions(&c, user->name, user->databases[i], grant);
    cs_conn_close(&c);
    return rc;
}

int cs_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, true);
}

int cs_user_revoke(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, false);
}

int cs_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    int rc = check_password(ctx, call, user->password);
    if (rc == TROVE_OK)
        rc = open_user(ctx, call, user, &c);
    if (rc != TROVE_OK)
        return rc;
    struct tps_buf b = {0};
    tps_buf_add(&b, "ALTER ROLE ");
    bool ok = cs_add_ident(&b, user->name);
    tps_buf_add(&b, " WITH PASSWORD = ");
    ok = ok && cs_add_literal(&b, user->password);
    rc = ok ? cs_query(&c, "ALTER ROLE", tps_buf_str(&b), NULL, 0, NULL, true)
            : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(&b);
    cs_conn_close(&c);
    return rc;
}

/* ---- root --------------------------------------------------------------- */

int cs_root_enable_on(struct cs_conn *c, const char *password, bool report)
{
    struct cs_ctx *ctx = c->ctx;
    char generated[33];
    bool exists = false;
    int rc = TROVE_OK;
    if (!password) {
        rc = ctx->host->random_password(generated, sizeof(generated));
        password = generated;
    }
    if (rc == TROVE_OK)
        rc = check_password(ctx, c->call, password);
    if (rc == TROVE_OK)
        rc = cs_role_get(c, ctx->s.root_user, &exists, NULL, NULL);
    if (rc == TROVE_OK)
        rc = cs_role_put(c, ctx->s.root_user, password, true, true, exists);
    if (rc == TROVE_OK && report && (rc = ctx->host->set_str(c->call, "name", ctx->s.root_user)) == TROVE_OK)
        rc = ctx->host->set_str(c->call, "password", password);
    explicit_bzero(generated, sizeof(generated));
    return rc;
}

int cs_root_enable(void *self, struct trove_call *call, const char *password)
{
    struct cs_conn c;
    int rc = cs_conn_open(self, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_root_enable_on(&c, password, true);
    cs_conn_close(&c);
    return rc;
}

int cs_root_disable(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = drop_role(&c, ctx->s.root_user, true);
    cs_conn_close(&c);
    return rc;
}

int cs_root_show(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    struct cs_conn c;
    bool exists = false, login = false, super = false;
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_role_get(&c, ctx->s.root_user, &exists, &login, &super);
    cs_conn_close(&c);
    return rc == TROVE_OK ? ctx->host->set_bool(call, "enabled", exists && login && super) : rc;
}
