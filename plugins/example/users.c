/*
 * users.c - users, their grants and root. A user is an account on the
 * server with a list of databases it may use; the plugin's own accounts
 * (admin_user, replication_user) and root are not the tenant's, so the user
 * operations neither list nor touch them. Names and passwords go to the
 * server as encoded tokens (conn.c): a hostile name is stored literally.
 */
#include <stdlib.h>
#include <string.h>

#include "example.h"

static bool is_system(struct ex_ctx *ctx, const char *name)
{
    return !strcmp(name, ctx->s.admin_user) || !strcmp(name, ctx->s.replication_user) ||
           !strcmp(name, EX_ROOT_USER);
}

static int check_user(struct ex_ctx *ctx, struct trove_call *call, const struct trove_user *u, bool need_password)
{
    if (!*u->name || strlen(u->name) > 64 || tps_has_control(u->name))
        return ctx->host->fail(call, TROVE_EINVAL, "a user name is 1-64 bytes without control characters");
    if (is_system(ctx, u->name))
        return ctx->host->fail(call, TROVE_EINVAL, "user %s is reserved for the agent", u->name);
    if (need_password && (!u->password || !*u->password))
        return ctx->host->fail(call, TROVE_EINVAL, "a password is required");
    return TROVE_OK;
}

/* Open a connection and check the user in one step. */
static int begin(void *self, struct trove_call *call, const struct trove_user *u, bool need_password,
                 struct ex_conn *c)
{
    struct ex_ctx *ctx = self;
    memset(c, 0, sizeof(*c));
    c->fd = -1;   /* closing is safe whatever happens below */
    int rc = check_user(ctx, call, u, need_password);
    return rc == TROVE_OK ? ex_conn_open(ctx, call, c) : rc;
}

int ex_user_create_on(struct ex_conn *c, const struct trove_user *u)
{
    int rc = check_user(c->ctx, c->call, u, true);
    if (rc == TROVE_OK)
        rc = ex_conn_cmd(c, NULL, NULL, NULL, "USER.CREATE", u->name, u->password, (char *)NULL);
    bool created = rc == TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < u->n_databases; i++)
        rc = ex_conn_cmd(c, NULL, NULL, NULL, "GRANT", u->name, u->databases[i], (char *)NULL);
    if (rc != TROVE_OK && created)   /* all or nothing: a grant failed, so the user goes too */
        ex_conn_cmd(c, NULL, NULL, NULL, "USER.DROP", u->name, (char *)NULL);
    return rc;
}

int ex_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct ex_conn c;
    int rc = begin(self, call, user, true, &c);
    if (rc == TROVE_OK) {
        rc = ex_user_create_on(&c, user);
        ex_conn_close(&c);
    }
    return rc;
}

int ex_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct ex_conn c;
    int rc = begin(self, call, user, false, &c);
    if (rc != TROVE_OK)
        return rc;
#ifndef EXAMPLE_BROKEN_USER_DELETE
    rc = ex_conn_cmd(&c, NULL, NULL, NULL, "USER.DROP", user->name, (char *)NULL);
#else
    /* A deliberately broken build for trove-plugin-check's own tests: the
     * user is reported deleted but can still log in. */
#endif
    ex_conn_close(&c);
    return rc;
}

/* "a,b,c" -> emit as the databases of one user */
static int emit_user(struct ex_ctx *ctx, struct trove_call *call, const char *name, const char *dbs)
{
    char *copy = strdup(dbs);
    const char *list[256];
    size_t n = 0;
    if (!copy)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (char *save = NULL, *d = strtok_r(copy, ",", &save); d && n < 256; d = strtok_r(NULL, ",", &save))
        list[n++] = d;
    struct trove_user u = {.size = sizeof(u), .name = name, .databases = list, .n_databases = n};
    int rc = ctx->host->emit_user(call, &u);
    free(copy);
    return rc;
}

struct list_ctx {
    struct ex_ctx *ctx;
    struct trove_call *call;
};

static int list_row(void *arg, const struct ex_row *row)
{
    struct list_ctx *l = arg;
    if (row->n < 3 || is_system(l->ctx, row->col[0]))
        return TROVE_OK;
    return emit_user(l->ctx, l->call, row->col[0], row->col[2]);
}

int ex_user_list(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    struct list_ctx l = {ctx, call};
    int rc = ex_conn_open(ctx, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, list_row, &l, NULL, "USER.LIST", (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

/* USER.SHOW into *row (col: OK name role dbs); system users count as missing. */
static int show(struct ex_conn *c, const char *name, struct ex_row *row)
{
    int rc = ex_conn_cmd(c, NULL, NULL, row, "USER.SHOW", name, (char *)NULL);
    if (rc == TROVE_OK && row->n < 4) {
        ex_row_free(row);
        rc = c->ctx->host->fail(c->call, TROVE_EDATASTORE, "the server's USER.SHOW reply is malformed");
    }
    return rc;
}

int ex_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct ex_conn c;
    struct ex_row row;
    int rc = begin(self, call, user, false, &c);
    if (rc == TROVE_OK && (rc = show(&c, user->name, &row)) == TROVE_OK) {
        rc = emit_user(self, call, row.col[1], row.col[3]);
        ex_row_free(&row);
    }
    ex_conn_close(&c);
    return rc;
}

static int grant_or_revoke(void *self, struct trove_call *call, const struct trove_user *user, const char *cmd)
{
    struct ex_conn c;
    int rc = begin(self, call, user, false, &c);
    if (rc != TROVE_OK)
        return rc;
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, cmd, user->name, user->databases[i], (char *)NULL);
    ex_conn_close(&c);
    return rc;
}

int ex_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, "GRANT");
}

int ex_user_revoke(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, "REVOKE");
}

int ex_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    struct ex_row row;
    int rc = begin(self, call, user, false, &c);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = show(&c, user->name, &row)) == TROVE_OK) {
        char *save = NULL;
        for (char *d = strtok_r(row.col[3], ",", &save); d && rc == TROVE_OK; d = strtok_r(NULL, ",", &save)) {
            struct trove_database db = {.size = sizeof(db), .name = d};
            rc = ctx->host->emit_database(call, &db);
        }
        ex_row_free(&row);
    }
    ex_conn_close(&c);
    return rc;
}

int ex_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct ex_conn c;
    int rc = begin(self, call, user, true, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "USER.PASSWORD", user->name, user->password, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

int ex_root_enable_on(struct ex_conn *c, const char *password, bool report)
{
    const struct trove_host *h = c->ctx->host;
    char generated[33];
    if (!password) {
        if (h->random_password(generated, sizeof(generated)) != TROVE_OK)
            return h->fail(c->call, TROVE_EINTERNAL, "no random password");
        password = generated;
    }
    int rc = ex_conn_cmd(c, NULL, NULL, NULL, "USER.CREATE", EX_ROOT_USER, password, "admin", (char *)NULL);
    if (rc == TROVE_EEXIST)
        rc = ex_conn_cmd(c, NULL, NULL, NULL, "USER.PASSWORD", EX_ROOT_USER, password, (char *)NULL);
    if (rc == TROVE_OK && report && (rc = h->set_str(c->call, "name", EX_ROOT_USER)) == TROVE_OK)
        rc = h->set_str(c->call, "password", password);
    explicit_bzero(generated, sizeof(generated));
    return rc;
}

int ex_root_enable(void *self, struct trove_call *call, const char *password)
{
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_root_enable_on(&c, password, true);
        ex_conn_close(&c);
    }
    return rc;
}

int ex_root_disable(void *self, struct trove_call *call)
{
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "USER.DROP", EX_ROOT_USER, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc == TROVE_ENOTFOUND ? TROVE_OK : rc;
}

int ex_root_show(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    struct ex_row row;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = show(&c, EX_ROOT_USER, &row);
    bool enabled = rc == TROVE_OK && !strcmp(row.col[2], "admin");
    if (rc == TROVE_OK)
        ex_row_free(&row);
    ex_conn_close(&c);
    if (rc != TROVE_OK && rc != TROVE_ENOTFOUND)
        return rc;
    return ctx->host->set_bool(call, "enabled", enabled);
}
