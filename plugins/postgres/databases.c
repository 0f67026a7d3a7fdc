/*
 * databases.c - databases with owner, encoding and locale. A database
 * created here loses PUBLIC's CONNECT and TEMPORARY, so only its owner and
 * roles granted access can reach it. System databases are never touched.
 */
#include <stdlib.h>
#include <string.h>

#include "pg.h"

int pg_database_exists(struct pg *pg, struct trove_call *call, PGconn *c, const char *name, bool *exists)
{
    const char *p[] = {name};
    return pg_query_bool(pg, call, c, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", 1, p, exists);
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

static int check_create(struct pg *pg, struct trove_call *call, PGconn *c, const struct trove_database *db)
{
    bool ok = false;
    int rc;
    if (db->owner) {
        if ((rc = pg_check_managed(pg, call, PG_ROLE, db->owner)) != TROVE_OK ||
            (rc = pg_role_exists(pg, call, c, db->owner, &ok)) != TROVE_OK)
            return rc;
        if (!ok)
            return pg->h->fail(call, TROVE_ENOTFOUND, "owner \"%s\" does not exist", db->owner);
    }
    if (db->character_set) {
        const char *p[] = {db->character_set};
        if ((rc = pg_query_bool(pg, call, c, "SELECT pg_char_to_encoding($1) >= 0", 1, p, &ok)) != TROVE_OK)
            return rc;
        if (!ok)
            return pg->h->fail(call, TROVE_EINVAL, "unknown encoding \"%s\"", db->character_set);
    }
    if (db->collation && !locale_text(db->collation))
        return pg->h->fail(call, TROVE_EINVAL, "locale must be 1-63 letters, digits or ._-@");
    if ((rc = pg_database_exists(pg, call, c, db->name, &ok)) != TROVE_OK)
        return rc;
    if (ok)
        return pg->h->fail(call, TROVE_EEXIST, "database \"%s\" already exists", db->name);
    return TROVE_OK;
}

/* CREATE DATABASE ... with each optional clause quoted. */
static char *create_sql(struct pg *pg, struct trove_call *call, PGconn *c, const struct trove_database *db)
{
    char *name = pg_ident(pg, call, c, db->name);
    char *owner = db->owner ? pg_ident(pg, call, c, db->owner) : NULL;
    char *enc = db->character_set ? pg_literal(pg, call, c, db->character_set) : NULL;
    char *loc = db->collation ? pg_literal(pg, call, c, db->collation) : NULL;
    char *sql = NULL;
    if (name && (!db->owner || owner) && (!db->character_set || enc) && (!db->collation || loc))
        sql = pg_sql("CREATE DATABASE %s%s%s%s%s%s%s%s", name, owner ? " OWNER " : "", owner ? owner : "",
                     enc ? " ENCODING " : "", enc ? enc : "", loc ? " LOCALE " : "", loc ? loc : "",
                     enc || loc ? " TEMPLATE template0" : "");
    PQfreemem(name);
    PQfreemem(owner);
    PQfreemem(enc);
    PQfreemem(loc);
    return sql;
}

int pg_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct pg *pg = self;
    int rc = pg_check_managed(pg, call, PG_DATABASE, db->name);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    char *sql = NULL, *revoke = NULL, *drop = NULL, *name = NULL;
    if ((rc = check_create(pg, call, c, db)) != TROVE_OK)
        goto out;
    sql = create_sql(pg, call, c, db);
    name = pg_ident(pg, call, c, db->name);
    revoke = name ? pg_sql("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC", name) : NULL;
    drop = name ? pg_sql("DROP DATABASE %s", name) : NULL;
    if (!sql || !revoke || !drop) {
        rc = pg->h->fail(call, TROVE_EINTERNAL, "cannot build the statement");
        goto out;
    }
    /* CREATE DATABASE cannot run inside a transaction: one statement each. */
    if ((rc = pg_run(pg, call, c, sql, 0, NULL)) != TROVE_OK)
        goto out;
    if ((rc = pg_run(pg, call, c, revoke, 0, NULL)) != TROVE_OK)
        PQclear(PQexec(c, drop));
out:
    free(sql);
    free(revoke);
    free(drop);
    PQfreemem(name);
    PQfinish(c);
    return rc;
}

int pg_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct pg *pg = self;
    int rc = pg_check_managed(pg, call, PG_DATABASE, db->name);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool exists = false;
    char *name = NULL, *sql = NULL;
    if ((rc = pg_database_exists(pg, call, c, db->name, &exists)) != TROVE_OK)
        goto out;
    if (!exists) {
        rc = pg->h->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db->name);
        goto out;
    }
    name = pg_ident(pg, call, c, db->name);
    sql = name ? pg_sql("DROP DATABASE %s WITH (FORCE)", name) : NULL;
    rc = sql ? pg_run(pg, call, c, sql, 0, NULL) : pg->h->fail(call, TROVE_EINTERNAL, "cannot build the statement");
out:
    free(sql);
    PQfreemem(name);
    PQfinish(c);
    return rc;
}

int pg_database_list(void *self, struct trove_call *call)
{
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_query(pg, call, c,
                           "SELECT datname, pg_encoding_to_char(encoding), datcollate, pg_get_userbyid(datdba) "
                           "FROM pg_database WHERE NOT datistemplate ORDER BY datname",
                           0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        if (pg_is_protected(pg, PG_DATABASE, PQgetvalue(r, i, 0)))
            continue;
        struct trove_database d = {.size = sizeof(d), .name = PQgetvalue(r, i, 0),
                                   .character_set = PQgetvalue(r, i, 1),
                                   .collation = PQgetvalue(r, i, 2),
                                   .owner = PQgetvalue(r, i, 3)};
        rc = pg->h->emit_database(call, &d);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
