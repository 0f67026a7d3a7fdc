/*
 * root.c - the "root" account: a superuser login role (named by the
 * root_user setting) that root-enable creates or re-enables with a new
 * password and root-disable strips of LOGIN, SUPERUSER and its password.
 * A role of that name that is not such an account is never taken over.
 */
#include <stdlib.h>
#include <string.h>

#include "pg.h"

int pg_root_enable(void *self, struct trove_call *call, const char *password)
{
    return pg_root_set(self, call, password, true);
}

/* Whether the root_user role exists, refusing one that root-enable/disable
 * did not leave behind: an enabled root is a superuser and a disabled one
 * has no LOGIN (which only a superuser can take away). An ordinary login
 * role of that name is someone else's: making it superuser would give the
 * functions and views it owns superuser rights. */
static int root_exists(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, bool *exists)
{
    const char *p[] = {ctx->s.root_user};
    PGresult *r = pg_conn_query(ctx, call, c, "SELECT rolsuper OR NOT rolcanlogin FROM pg_roles WHERE rolname = $1",
                                1, p);
    if (!r)
        return TROVE_EDATASTORE;
    *exists = PQntuples(r) == 1;
    bool ours = *exists && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (*exists && !ours)
        return ctx->host->fail(call, TROVE_ECONFLICT, "role \"%s\" (the root_user setting) exists but is an "
                               "ordinary login role, not the root account: drop or rename it before "
                               "root-enable/disable", ctx->s.root_user);
    return TROVE_OK;
}

int pg_root_set(struct pg_ctx *ctx, struct trove_call *call, const char *password, bool reporting)
{
    char generated[33];
    if (!password) {
        if (ctx->host->random_password(generated, sizeof(generated)) != TROVE_OK)
            return ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a password");
        password = generated;
    }
    int rc = pg_password_check(ctx, call, password);
    PGconn *c = rc == TROVE_OK ? pg_conn_open(ctx, call, NULL) : NULL;
    if (rc == TROVE_OK && !c)
        rc = TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    bool exists = false;
    if (rc != TROVE_OK || (rc = root_exists(ctx, call, c, &exists)) != TROVE_OK)
        goto out;
    tps_buf_add(&sql, exists ? "ALTER ROLE " : "CREATE ROLE ");
    tps_quote_ident(&sql, ctx->s.root_user, '"');
    tps_buf_add(&sql, " WITH LOGIN SUPERUSER ");
    if ((rc = pg_password_append(ctx, call, c, &sql, ctx->s.root_user, password)) == TROVE_OK)
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    if (rc == TROVE_OK && reporting)
        rc = ctx->host->set_str(call, "name", ctx->s.root_user);
    if (rc == TROVE_OK && reporting)
        rc = ctx->host->set_str(call, "password", password);
out:
    explicit_bzero(generated, sizeof(generated));
    tps_buf_wipe(&sql);
    PQfinish(c);
    return rc;
}

int pg_root_disable(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool exists = false;
    int rc = root_exists(ctx, call, c, &exists);
    if (rc == TROVE_OK && exists) {
        struct tps_buf sql = {0};
        tps_buf_add(&sql, "ALTER ROLE ");
        tps_quote_ident(&sql, ctx->s.root_user, '"');
        tps_buf_add(&sql, " WITH NOLOGIN NOSUPERUSER PASSWORD NULL");
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    }
    PQfinish(c);
    return rc;
}

int pg_root_show(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    const char *p[] = {ctx->s.root_user};
    bool enabled = false;
    int rc = pg_conn_query_bool(ctx, call, c,
                                "SELECT EXISTS (SELECT 1 FROM pg_roles "
                                "WHERE rolname = $1 AND rolsuper AND rolcanlogin)",
                                1, p, &enabled);
    if (rc == TROVE_OK)
        rc = ctx->host->set_bool(call, "enabled", enabled);
    PQfinish(c);
    return rc;
}
