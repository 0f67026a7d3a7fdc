/*
 * databases.c - databases with owner, encoding and locale, and the settings
 * ALTER DATABASE changes (owner, connection limit, whether connections are
 * allowed). A database created here loses PUBLIC's CONNECT and TEMPORARY, so
 * only its owner and roles granted access can reach it. System databases are
 * never touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

int pg_database_exists(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name, bool *exists)
{
    const char *p[] = {name};
    return pg_conn_query_bool(ctx, call, c, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", 1, p,
                              exists);
}

/* db->options, for a struct of any size (it exists since 2.0). */
static const struct trove_kv *options_of(const struct trove_database *db, size_t *n)
{
    bool ok = TROVE_FIELD_OK(db, struct trove_database, n_options);
    *n = ok ? db->n_options : 0;
    return ok ? db->options : NULL;
}

static bool locale_text(const char *s)
{
    if (!s[0] || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("._-@", *s)))
            return false;
    return true;
}

/* The options ALTER DATABASE can set, parsed and checked. */
struct db_options {
    bool has_limit, has_allow;
    int64_t connection_limit;
    bool allow_connections;
};

static int parse_options(struct pg_ctx *ctx, struct trove_call *call, const struct trove_database *db,
                         struct db_options *o)
{
    size_t n;
    const struct trove_kv *kv = options_of(db, &n);
    struct tps_buf unknown = {0};
    size_t n_unknown = 0;
    int rc = TROVE_OK;
    for (size_t i = 0; i < n && rc == TROVE_OK; i++) {
        const char *k = kv[i].key ? kv[i].key : "", *v = kv[i].value ? kv[i].value : "";
        if (strcmp(k, "connection_limit") == 0) {
            o->has_limit = true;
            if (!tps_parse_int(v, -1, INT32_MAX, &o->connection_limit))
                rc = ctx->host->fail(call, TROVE_EINVAL, "option connection_limit must be an integer from -1 (no "
                                     "limit) to %d", INT32_MAX);
        } else if (strcmp(k, "allow_connections") == 0) {
            o->has_allow = true;
            if (!tps_parse_bool(v, &o->allow_connections))
                rc = ctx->host->fail(call, TROVE_EINVAL, "option allow_connections must be true or false");
        } else {
            tps_buf_addf(&unknown, "%s%s", n_unknown++ ? ", " : "", k);
        }
    }
    if (rc == TROVE_OK && n_unknown)
        rc = ctx->host->fail(call, TROVE_EINVAL, "unknown database option%s for PostgreSQL: %s (known: "
                             "connection_limit, allow_connections)", n_unknown > 1 ? "s" : "",
                             tps_buf_str(&unknown) ? unknown.data : "(out of memory)");
    tps_buf_free(&unknown);
    return rc;
}

/* An owner the API may name: a managed role that exists. */
static int check_owner(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *owner)
{
    bool exists = false;
    int rc = pg_name_check(ctx, call, PG_ROLE, owner);
    if (rc == TROVE_OK)
        rc = pg_role_exists(ctx, call, c, owner, &exists);
    if (rc == TROVE_OK && !exists)
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "owner \"%s\" does not exist", owner);
    return rc;
}

static int check_create(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const struct trove_database *db,
                        struct db_options *o)
{
    bool ok = false;
    int rc;
    if (db->owner && (rc = check_owner(ctx, call, c, db->owner)) != TROVE_OK)
        return rc;
    if (db->character_set) {
        const char *p[] = {db->character_set};
        if ((rc = pg_conn_query_bool(ctx, call, c, "SELECT pg_char_to_encoding($1) >= 0", 1, p, &ok)) != TROVE_OK)
            return rc;
        if (!ok)
            return ctx->host->fail(call, TROVE_EINVAL, "unknown encoding \"%s\"", db->character_set);
    }
    if (db->collation && !locale_text(db->collation))
        return ctx->host->fail(call, TROVE_EINVAL, "locale must be 1-63 letters, digits or ._-@");
    if ((rc = parse_options(ctx, call, db, o)) != TROVE_OK)
        return rc;
    if ((rc = pg_database_exists(ctx, call, c, db->name, &ok)) != TROVE_OK)
        return rc;
    if (ok)
        return ctx->host->fail(call, TROVE_EEXIST, "database \"%s\" already exists", db->name);
    return TROVE_OK;
}

/* CREATE DATABASE ... with each optional clause quoted. */
static void create_sql(struct tps_buf *b, const struct trove_database *db, const struct db_options *o)
{
    tps_buf_add(b, "CREATE DATABASE ");
    tps_quote_ident(b, db->name, '"');
    if (db->owner) {
        tps_buf_add(b, " OWNER ");
        tps_quote_ident(b, db->owner, '"');
    }
    if (db->character_set) {
        tps_buf_add(b, " ENCODING ");
        tps_quote_literal(b, db->character_set);
    }
    if (db->collation) {
        tps_buf_add(b, " LOCALE ");
        tps_quote_literal(b, db->collation);
    }
    if (db->character_set || db->collation)
        tps_buf_add(b, " TEMPLATE template0");
    if (o->has_limit)
        tps_buf_addf(b, " CONNECTION LIMIT %lld", (long long)o->connection_limit);
    if (o->has_allow)
        tps_buf_add(b, o->allow_connections ? " ALLOW_CONNECTIONS true" : " ALLOW_CONNECTIONS false");
}

/* "<verb> <quoted name><rest>", for the statements on one database. */
static void on_database(struct tps_buf *b, const char *verb, const char *name, const char *rest)
{
    tps_buf_add(b, verb);
    tps_quote_ident(b, name, '"');
    tps_buf_add(b, rest);
}

int pg_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct pg_ctx *ctx = self;
    int rc = pg_name_check(ctx, call, PG_DATABASE, db->name);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0}, revoke = {0}, drop = {0};
    struct db_options o = {0};
    if ((rc = check_create(ctx, call, c, db, &o)) != TROVE_OK)
        goto out;
    create_sql(&sql, db, &o);
    on_database(&revoke, "REVOKE CONNECT, TEMPORARY ON DATABASE ", db->name, " FROM PUBLIC");
    on_database(&drop, "DROP DATABASE ", db->name, "");
    if (!tps_buf_str(&revoke) || !tps_buf_str(&drop)) {
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    /* CREATE DATABASE cannot run inside a transaction: one statement each. */
    if ((rc = pg_conn_run_buf(ctx, call, c, &sql)) != TROVE_OK)
        goto out;
    if ((rc = pg_conn_run_buf(ctx, call, c, &revoke)) != TROVE_OK)
        PQclear(PQexec(c, tps_buf_str(&drop)));
out:
    tps_buf_free(&sql);
    tps_buf_free(&revoke);
    tps_buf_free(&drop);
    PQfinish(c);
    return rc;
}

static int need_database(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    bool exists = false;
    int rc = pg_database_exists(ctx, call, c, name, &exists);
    if (rc == TROVE_OK && !exists)
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", name);
    return rc;
}

int pg_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct pg_ctx *ctx = self;
    int rc = pg_name_check(ctx, call, PG_DATABASE, db->name);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    if ((rc = need_database(ctx, call, c, db->name)) == TROVE_OK) {
        on_database(&sql, "DROP DATABASE ", db->name, " WITH (FORCE)");
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    }
    PQfinish(c);
    return rc;
}

int pg_database_list(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_conn_query(ctx, call, c,
                                "SELECT datname, pg_encoding_to_char(encoding), datcollate, pg_get_userbyid(datdba), "
                                " datconnlimit::text, CASE WHEN datallowconn THEN 'true' ELSE 'false' END "
                                "FROM pg_database WHERE NOT datistemplate ORDER BY datname",
                                0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        if (pg_name_reserved(ctx, PG_DATABASE, PQgetvalue(r, i, 0)))
            continue;
        const struct trove_kv options[] = {{"connection_limit", PQgetvalue(r, i, 4)},
                                           {"allow_connections", PQgetvalue(r, i, 5)}};
        struct trove_database d = {.size = sizeof(d), .name = PQgetvalue(r, i, 0),
                                   .character_set = PQgetvalue(r, i, 1), .collation = PQgetvalue(r, i, 2),
                                   .owner = PQgetvalue(r, i, 3), .options = options, .n_options = 2};
        rc = ctx->host->emit_database(call, &d);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* ---- database_alter ----------------------------------------------------- */

/* What cannot change refuses the request before anything changes. */
static int check_alter(struct pg_ctx *ctx, struct trove_call *call, const struct trove_database *db,
                       struct db_options *o)
{
    int rc = pg_name_check(ctx, call, PG_DATABASE, db->name);
    if (rc != TROVE_OK)
        return rc;
    if (db->character_set || db->collation)
        return ctx->host->fail(call, TROVE_EINVAL, "PostgreSQL cannot change the %s of an existing database",
                               db->character_set && db->collation ? "encoding and locale"
                               : db->character_set                ? "encoding (character_set)"
                                                                  : "locale (collation)");
    if ((rc = parse_options(ctx, call, db, o)) != TROVE_OK)
        return rc;
    if (!db->owner && !o->has_limit && !o->has_allow)
        return ctx->host->fail(call, TROVE_EINVAL, "nothing to change: give an owner or options");
    return TROVE_OK;
}

/* One transaction: every change, or none. */
static int alter_all(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const struct trove_database *db,
                     const struct db_options *o)
{
    struct tps_buf sql = {0};
    int rc = pg_conn_run(ctx, call, c, "BEGIN", 0, NULL);
    if (rc == TROVE_OK && db->owner) {
        on_database(&sql, "ALTER DATABASE ", db->name, " OWNER TO ");
        tps_quote_ident(&sql, db->owner, '"');
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    }
    if (rc == TROVE_OK && o->has_limit) {
        on_database(&sql, "ALTER DATABASE ", db->name, "");
        tps_buf_addf(&sql, " CONNECTION LIMIT %lld", (long long)o->connection_limit);
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    }
    if (rc == TROVE_OK && o->has_allow) {
        on_database(&sql, "ALTER DATABASE ", db->name, o->allow_connections ? " ALLOW_CONNECTIONS true"
                                                                            : " ALLOW_CONNECTIONS false");
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    }
    if (rc == TROVE_OK)
        return pg_conn_run(ctx, call, c, "COMMIT", 0, NULL);
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

int pg_database_alter(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct pg_ctx *ctx = self;
    struct db_options o = {0};
    int rc = check_alter(ctx, call, db, &o);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    if ((rc = need_database(ctx, call, c, db->name)) == TROVE_OK && db->owner)
        rc = check_owner(ctx, call, c, db->owner);
    if (rc == TROVE_OK)
        rc = alter_all(ctx, call, c, db, &o);
    PQfinish(c);
    return rc;
}
