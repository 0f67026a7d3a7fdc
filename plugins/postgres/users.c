/*
 * users.c - login roles and their access to databases. Access is the
 * CONNECT, CREATE and TEMPORARY privileges on a database; a role's access
 * is read back from the databases' ACLs. Reserved roles are never touched,
 * and a role that still owns objects is not deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* (role, database) pairs: every login role with each database it may
 * CONNECT to by an explicit grant or as owner (PUBLIC grants excluded). */
static const char *const ACCESS_SQL =
    "SELECT r.rolname, x.datname FROM pg_roles r "
    "LEFT JOIN LATERAL (SELECT d.datname FROM pg_database d, "
    "  aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
    "  WHERE NOT d.datistemplate AND a.grantee = r.oid AND a.privilege_type = 'CONNECT') x ON true "
    "WHERE r.rolcanlogin AND ($1::text IS NULL OR r.rolname = $1) "
    "ORDER BY r.rolname, x.datname";

int pg_role_exists(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, bool *exists)
{
    const char *p[] = {name};
    return pg_conn_query_bool(ctx, call, c, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", 1, p,
                              exists);
}

int pg_password_append(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct tps_buf *b, const char *role,
                       const char *password)
{
    if (!password) {
        tps_buf_add(b, "PASSWORD NULL");
        return TROVE_OK;
    }
    /* Hashed here, always SCRAM-SHA-256: the statement (which the server may
     * log) carries only the salted verifier. The server's password_encryption
     * is not asked: md5 would make a password-equivalent hash that the
     * scram-sha-256 lines of pg_hba.conf refuse anyway. */
    char *verifier = PQencryptPasswordConn(c, password, role, "scram-sha-256");
    if (!verifier)
        return ctx->host->fail(call, TROVE_EDATASTORE, "cannot hash the password: %s", PQerrorMessage(c));
    tps_buf_add(b, "PASSWORD ");
    tps_quote_literal(b, verifier);
    explicit_bzero(verifier, strlen(verifier));
    PQfreemem(verifier);
    return TROVE_OK;
}

static int check_user_request(struct pg_ctx *ctx, struct trove_call *call, const struct trove_user *user)
{
    int rc = pg_name_check(ctx, call, PG_ROLE, user->name);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = pg_name_check(ctx, call, PG_DATABASE, user->databases[i]);
    return rc;
}

/* GRANT or REVOKE the access privileges on one database (which must exist). */
static int change_access(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *role, const char *db,
                         bool grant)
{
    bool exists = false;
    int rc = pg_database_exists(ctx, call, c, db, &exists);
    if (rc != TROVE_OK)
        return rc;
    if (!exists)
        return ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db);
    struct tps_buf sql = {0};
    tps_buf_add(&sql, grant ? "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE " : "REVOKE ALL ON DATABASE ");
    tps_quote_ident(&sql, db, '"');
    tps_buf_add(&sql, grant ? " TO " : " FROM ");
    tps_quote_ident(&sql, role, '"');
    return pg_conn_run_buf(ctx, call, c, &sql);
}

/* Change access to every database of the request (inside the caller's transaction). */
static int change_all_access(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const struct trove_user *user,
                             bool grant)
{
    int rc = TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = change_access(ctx, call, c, user->name, user->databases[i], grant);
    return rc;
}

static int need_role(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    bool exists = false;
    int rc = pg_role_exists(ctx, call, c, name, &exists);
    if (rc == TROVE_OK && !exists)
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "user \"%s\" does not exist", name);
    return rc;
}

static int finish_tx(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, int rc)
{
    if (rc == TROVE_OK)
        return pg_conn_run(ctx, call, c, "COMMIT", 0, NULL);
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

static int check_new_password(struct pg_ctx *ctx, struct trove_call *call, const struct trove_user *user)
{
    int rc = check_user_request(ctx, call, user);
    if (rc == TROVE_OK && !user->password)
        rc = ctx->host->fail(call, TROVE_EINVAL, "a password is required");
    return rc == TROVE_OK ? pg_password_check(ctx, call, user->password) : rc;
}

int pg_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct pg_ctx *ctx = self;
    int rc = check_new_password(ctx, call, user);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    bool exists = false;
    if ((rc = pg_role_exists(ctx, call, c, user->name, &exists)) != TROVE_OK)
        goto out;
    if (exists) {
        rc = ctx->host->fail(call, TROVE_EEXIST, "user \"%s\" already exists", user->name);
        goto out;
    }
    tps_buf_add(&sql, "CREATE ROLE ");
    tps_quote_ident(&sql, user->name, '"');
    tps_buf_add(&sql, " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION ");
    if ((rc = pg_password_append(ctx, call, c, &sql, user->name, user->password)) != TROVE_OK)
        goto out;
    if ((rc = pg_conn_run(ctx, call, c, "BEGIN", 0, NULL)) != TROVE_OK)
        goto out;
    rc = pg_conn_run_buf(ctx, call, c, &sql);
    if (rc == TROVE_OK)
        rc = change_all_access(ctx, call, c, user, true);
    rc = finish_tx(ctx, call, c, rc);
out:
    tps_buf_wipe(&sql);
    PQfinish(c);
    return rc;
}

/* Databases where the role still owns something (a database it owns counts
 * as its own name), comma-separated in *where; "" when it owns nothing. */
static int owned_where(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, char *where,
                       size_t len)
{
    const char *p[] = {name};
    PGresult *r = pg_conn_query(ctx, call, c,
                                "SELECT string_agg(DISTINCT coalesce(d.datname, o.datname, 'shared objects'), ', ') "
                                "FROM pg_shdepend s "
                                "JOIN pg_roles r ON r.oid = s.refobjid AND r.rolname = $1 "
                                "LEFT JOIN pg_database d ON d.oid = s.dbid "
                                "LEFT JOIN pg_database o ON s.dbid = 0 AND s.classid = 'pg_database'::regclass "
                                "  AND o.oid = s.objid "
                                "WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype = 'o'",
                                1, p);
    if (!r)
        return TROVE_EDATASTORE;
    snprintf(where, len, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return TROVE_OK;
}

/* Privileges granted to the role, in every database, are revoked (DROP
 * OWNED BY drops nothing else once the role owns nothing). */
static int revoke_everywhere(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    PGresult *dbs = pg_conn_query(ctx, call, c, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1", 0,
                                  NULL);
    if (!dbs)
        return TROVE_EDATASTORE;
    struct tps_buf sql = {0};
    tps_buf_add(&sql, "DROP OWNED BY ");
    tps_quote_ident(&sql, name, '"');
    int rc = tps_buf_str(&sql) ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (int i = 0; rc == TROVE_OK && i < PQntuples(dbs); i++) {
        PGconn *dc = pg_conn_open(ctx, call, PQgetvalue(dbs, i, 0));
        if (!dc) {
            rc = TROVE_EUNAVAIL;
            break;
        }
        PGresult *r = PQexec(dc, tps_buf_str(&sql));
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = ctx->host->fail(call, TROVE_EDATASTORE, "PostgreSQL (database %s): %s", PQgetvalue(dbs, i, 0),
                                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(r);
        PQfinish(dc);
    }
    tps_buf_free(&sql);
    PQclear(dbs);
    return rc;
}

/* A role that owns objects is not deleted: handing them to the admin would
 * make a SECURITY DEFINER function or a view the role wrote run with
 * superuser rights, for anyone its owner let call it. */
static int drop_dependents(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    char where[1024];
    int rc = owned_where(ctx, call, c, name, where, sizeof(where));
    if (rc == TROVE_OK && where[0])
        return ctx->host->fail(call, TROVE_ECONFLICT, "user \"%s\" still owns objects (in %s): drop them, or delete "
                               "the databases it owns, first", name, where);
    return rc == TROVE_OK ? revoke_everywhere(ctx, call, c, name) : rc;
}

int pg_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct pg_ctx *ctx = self;
    int rc = pg_name_check(ctx, call, PG_ROLE, user->name);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    tps_buf_add(&sql, "DROP ROLE ");
    tps_quote_ident(&sql, user->name, '"');
    if ((rc = need_role(ctx, call, c, user->name)) != TROVE_OK)
        goto out;
    if (!tps_buf_str(&sql)) {
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    rc = pg_conn_run(ctx, call, c, tps_buf_str(&sql), 0, NULL);
    if (rc == TROVE_EDATASTORE && strcmp(pg_conn_sqlstate(), "2BP01") == 0) {
        rc = drop_dependents(ctx, call, c, user->name);
        if (rc == TROVE_OK)
            rc = pg_conn_run(ctx, call, c, tps_buf_str(&sql), 0, NULL);
    }
out:
    tps_buf_free(&sql);
    PQfinish(c);
    return rc;
}

/* Emit users from ACCESS_SQL rows, one per role, skipping system objects. */
static int emit_access_rows(struct pg_ctx *ctx, struct trove_call *call, PGresult *r)
{
    int n = PQntuples(r), rc = TROVE_OK;
    const char **dbs = calloc((size_t)n + 1, sizeof(char *));
    if (!dbs)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (int i = 0; i < n && rc == TROVE_OK;) {
        const char *name = PQgetvalue(r, i, 0);
        size_t k = 0;
        int j = i;
        for (; j < n && strcmp(PQgetvalue(r, j, 0), name) == 0; j++)
            if (!PQgetisnull(r, j, 1) && !pg_name_reserved(ctx, PG_DATABASE, PQgetvalue(r, j, 1)))
                dbs[k++] = PQgetvalue(r, j, 1);
        if (!pg_name_reserved(ctx, PG_ROLE, name)) {
            struct trove_user u = {.size = sizeof(u), .name = name, .databases = dbs, .n_databases = k};
            rc = ctx->host->emit_user(call, &u);
        }
        i = j;
    }
    free(dbs);
    return rc;
}

int pg_user_list(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    const char *p[] = {NULL};
    PGresult *r = pg_conn_query(ctx, call, c, ACCESS_SQL, 1, p);
    int rc = r ? emit_access_rows(ctx, call, r) : TROVE_EDATASTORE;
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* The role's ACCESS_SQL rows, or NULL after fail() (ENOTFOUND if absent). */
static PGresult *access_of(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, int *rc)
{
    const char *p[] = {name};
    PGresult *r = pg_conn_query(ctx, call, c, ACCESS_SQL, 1, p);
    if (!r) {
        *rc = TROVE_EDATASTORE;
        return NULL;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        *rc = ctx->host->fail(call, TROVE_ENOTFOUND, "user \"%s\" does not exist", name);
        return NULL;
    }
    *rc = TROVE_OK;
    return r;
}

int pg_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct pg_ctx *ctx = self;
    int rc = check_user_request(ctx, call, user);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = access_of(ctx, call, c, user->name, &rc);
    if (r)
        rc = emit_access_rows(ctx, call, r);
    PQclear(r);
    PQfinish(c);
    return rc;
}

int pg_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct pg_ctx *ctx = self;
    int rc = check_user_request(ctx, call, user);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = access_of(ctx, call, c, user->name, &rc);
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        const char *db = PQgetvalue(r, i, 1);
        if (PQgetisnull(r, i, 1) || pg_name_reserved(ctx, PG_DATABASE, db))
            continue;
        struct trove_database d = {.size = sizeof(d), .name = db};
        rc = ctx->host->emit_database(call, &d);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int grant_or_revoke(struct pg_ctx *ctx, struct trove_call *call, const struct trove_user *user, bool grant)
{
    int rc = check_user_request(ctx, call, user);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    if ((rc = need_role(ctx, call, c, user->name)) == TROVE_OK &&
        (rc = pg_conn_run(ctx, call, c, "BEGIN", 0, NULL)) == TROVE_OK)
        rc = finish_tx(ctx, call, c, change_all_access(ctx, call, c, user, grant));
    PQfinish(c);
    return rc;
}

int pg_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, true);
}

int pg_user_revoke(void *self, struct trove_call *call, const struct trove_user *user)
{
    return grant_or_revoke(self, call, user, false);
}

int pg_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct pg_ctx *ctx = self;
    int rc = check_new_password(ctx, call, user);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    if ((rc = need_role(ctx, call, c, user->name)) != TROVE_OK)
        goto out;
    tps_buf_add(&sql, "ALTER ROLE ");
    tps_quote_ident(&sql, user->name, '"');
    tps_buf_add(&sql, " WITH ");
    if ((rc = pg_password_append(ctx, call, c, &sql, user->name, user->password)) == TROVE_OK)
        rc = pg_conn_run_buf(ctx, call, c, &sql);
out:
    tps_buf_wipe(&sql);
    PQfinish(c);
    return rc;
}
