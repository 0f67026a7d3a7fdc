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
static int root_exists(struct pg *pg, struct trove_call *call, PGconn *c, bool *exists)
{
    const char *p[] = {pg->root_user};
    PGresult *r = pg_query(pg, call, c, "SELECT rolsuper OR NOT rolcanlogin FROM pg_roles WHERE rolname = $1", 1, p);
    if (!r)
        return TROVE_EDATASTORE;
    *exists = PQntuples(r) == 1;
    bool ours = *exists && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (*exists && !ours)
        return pg->h->fail(call, TROVE_ECONFLICT, "role \"%s\" (the root_user setting) exists but is an ordinary "
                           "login role, not the root account: drop or rename it before root-enable/disable",
                           pg->root_user);
    return TROVE_OK;
}

int pg_root_set(struct pg *pg, struct trove_call *call, const char *password, bool reporting)
{
    char generated[33];
    if (!password) {
        if (pg->h->random_password(generated, sizeof(generated)) != TROVE_OK)
            return pg->h->fail(call, TROVE_EINTERNAL, "cannot generate a password");
        password = generated;
    }
    int rc = pg_check_password(pg, call, password);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    char *role_q = NULL, *pw = NULL, *sql = NULL;
    bool exists = false;
    if ((rc = root_exists(pg, call, c, &exists)) != TROVE_OK)
        goto out;
    role_q = pg_ident(pg, call, c, pg->root_user);
    pw = role_q ? pg_password_clause(pg, call, c, pg->root_user, password) : NULL;
    sql = pw ? pg_sql("%s ROLE %s WITH LOGIN SUPERUSER %s", exists ? "ALTER" : "CREATE", role_q, pw) : NULL;
    rc = sql ? pg_run(pg, call, c, sql, 0, NULL) : pg->h->fail(call, TROVE_EINTERNAL, "cannot build the statement");
    if (rc == TROVE_OK && reporting)
        rc = pg->h->set_str(call, "name", pg->root_user);
    if (rc == TROVE_OK && reporting)
        rc = pg->h->set_str(call, "password", password);
out:
    explicit_bzero(generated, sizeof(generated));
    free(sql);
    free(pw);
    PQfreemem(role_q);
    PQfinish(c);
    return rc;
}

int pg_root_disable(void *self, struct trove_call *call)
{
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool exists = false;
    int rc = root_exists(pg, call, c, &exists);
    if (rc == TROVE_OK && exists) {
        char *role_q = pg_ident(pg, call, c, pg->root_user);
        char *sql = role_q ? pg_sql("ALTER ROLE %s WITH NOLOGIN NOSUPERUSER PASSWORD NULL", role_q) : NULL;
        rc = sql ? pg_run(pg, call, c, sql, 0, NULL) : TROVE_EINTERNAL;
        free(sql);
        PQfreemem(role_q);
    }
    PQfinish(c);
    return rc;
}

int pg_root_show(void *self, struct trove_call *call)
{
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    const char *p[] = {pg->root_user};
    bool enabled = false;
    int rc = pg_query_bool(pg, call, c,
                           "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolsuper AND rolcanlogin)", 1,
                           p, &enabled);
    if (rc == TROVE_OK)
        rc = pg->h->set_bool(call, "enabled", enabled);
    PQfinish(c);
    return rc;
}
