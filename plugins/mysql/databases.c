/*
 * databases.c - tenant databases (schemas): create with a character set and
 * collation checked against the server's own lists, delete (with the grants
 * that named it), list. System databases are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mysql_plugin.h"

static int check_tenant_database(struct my_plugin *p, struct trove_call *call, const struct trove_database *db)
{
    if (!db || !db->name)
        return p->host->fail(call, TROVE_EINVAL, "database name is required");
    int rc = check_database_name(p, call, db->name);
    if (rc == TROVE_OK && is_system_database(db->name))
        rc = p->host->fail(call, TROVE_EINVAL, "\"%s\" is a system database and cannot be managed through the API",
                           db->name);
    return rc;
}

int database_exists(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *name)
{
    struct sb q = {0};
    sb_add(&q, "SELECT 1 FROM information_schema.SCHEMATA WHERE BINARY SCHEMA_NAME = ");
    sb_literal(&q, conn, name);
    if (q.oom) {
        sb_free(&q);
        return -my_oom(p, call);
    }
    char v[8];
    bool null;
    int rc = my_scalar(p, call, conn, q.buf, v, sizeof(v), &null);
    sb_free(&q);
    if (rc != TROVE_OK)
        return -rc;
    return null ? 0 : 1;
}

static bool plain_word(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

int databases_check_new(struct my_plugin *p, struct trove_call *call, const struct trove_database *db)
{
    int rc = check_tenant_database(p, call, db);
    if (rc != TROVE_OK)
        return rc;
    const char *cs = db->character_set, *co = db->collation;
    if ((cs && !*cs) || (co && !*co))
        return p->host->fail(call, TROVE_EINVAL, "%s must not be empty (leave it out for the server's default)",
                             cs && !*cs ? "character set" : "collation");
    if (cs && !plain_word(cs))
        return p->host->fail(call, TROVE_EINVAL, "character set \"%s\" is not a valid name", cs);
    if (co && !plain_word(co))
        return p->host->fail(call, TROVE_EINVAL, "collation \"%s\" is not a valid name", co);
    return TROVE_OK;
}

/* The character set and collation, when given (NULL: the server's default;
 * databases_check_new has checked their form), exist on this server and
 * belong together. */
static int check_charset(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_database *db)
{
    const char *cs = db->character_set, *co = db->collation;
    char v[80];
    bool null;
    int rc = TROVE_OK;
    struct sb q = {0};
    if (cs) {
        sb_add(&q, "SELECT 1 FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = ");
        sb_literal(&q, conn, cs);
        rc = q.oom ? my_oom(p, call) : my_scalar(p, call, conn, q.buf, v, sizeof(v), &null);
        if (rc == TROVE_OK && null)
            rc = p->host->fail(call, TROVE_EINVAL, "character set \"%s\" is not supported by this server "
                               "(see SHOW CHARACTER SET)", cs);
    }
    if (rc == TROVE_OK && co) {
        q.len = 0;
        sb_add(&q, "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ");
        sb_literal(&q, conn, co);
        rc = q.oom ? my_oom(p, call) : my_scalar(p, call, conn, q.buf, v, sizeof(v), &null);
        if (rc == TROVE_OK && null)
            rc = p->host->fail(call, TROVE_EINVAL, "collation \"%s\" is not supported by this server "
                               "(see SHOW COLLATION)", co);
        else if (rc == TROVE_OK && cs && strcasecmp(v, cs) != 0)
            rc = p->host->fail(call, TROVE_EINVAL, "collation \"%s\" belongs to character set \"%s\", not \"%s\"",
                               co, v, cs);
    }
    sb_free(&q);
    return rc;
}

int databases_create_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_database *db)
{
    int rc = databases_check_new(p, call, db);
    if (rc == TROVE_OK)
        rc = check_charset(p, call, conn, db);
    if (rc != TROVE_OK)
        return rc;
    int e = database_exists(p, call, conn, db->name);
    if (e < 0)
        return -e;
    if (e > 0)
        return p->host->fail(call, TROVE_EEXIST, "database \"%s\" already exists", db->name);
    struct sb q = {0};
    sb_add(&q, "CREATE DATABASE ");
    sb_ident(&q, db->name);
    if (db->character_set)   /* plain words the server listed (check_charset) */
        sb_addf(&q, " CHARACTER SET %s", db->character_set);
    if (db->collation)
        sb_addf(&q, " COLLATE %s", db->collation);
    rc = my_exec_sb(p, call, conn, &q);
    sb_free(&q);
    return rc;
}

int my_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = databases_check_new(p, call, db);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = databases_create_on(p, call, conn, db);
    my_close(conn);
    return rc;
}

/* Revoke the database-level grants that name `name`, so a database created
 * later with the same name does not inherit them. mysql.db.Db holds the grant
 * pattern as a value (a`b stays a`b, a_b is a\_b): it is looked up as a
 * string literal and named in REVOKE as an identifier, each quoted its own way. */
static int revoke_grants_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *name)
{
    char *pattern = grant_pattern(name);
    struct sb q = {0};
    sb_add(&q, "SELECT User, Host FROM mysql.db WHERE Db = ");
    if (pattern)
        sb_literal(&q, conn, pattern);
    MYSQL_RES *res = NULL;
    int rc = !pattern || q.oom ? my_oom(p, call) : my_query(p, call, conn, q.buf, &res);
    sb_free(&q);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || !row[1])
            continue;
        struct sb r = {0};
        sb_add(&r, "REVOKE ALL PRIVILEGES ON ");
        sb_ident(&r, pattern);
        sb_add(&r, ".* FROM ");
        sb_account(&r, conn, row[0], row[1]);
        rc = my_exec_sb(p, call, conn, &r);
        sb_free(&r);
    }
    if (res)
        mysql_free_result(res);
    free(pattern);
    return rc;
}

int my_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_tenant_database(p, call, db);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK) {
        int e = database_exists(p, call, conn, db->name);
        if (e < 0)
            rc = -e;
        else if (e == 0)
            rc = p->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db->name);
    }
    if (rc == TROVE_OK) {
        struct sb q = {0};
        sb_add(&q, "DROP DATABASE ");
        sb_ident(&q, db->name);
        rc = my_exec_sb(p, call, conn, &q);
        sb_free(&q);
    }
    if (rc == TROVE_OK)
        rc = revoke_grants_on(p, call, conn, db->name);
    my_close(conn);
    return rc;
}

int my_database_list(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_query(p, call, conn,
                      "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                      "FROM information_schema.SCHEMATA ORDER BY BINARY SCHEMA_NAME",
                      &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || is_system_database(row[0]))
            continue;
        struct trove_database d = {.size = sizeof(d), .name = row[0], .character_set = row[1], .collation = row[2]};
        rc = p->host->emit_database(call, &d);
    }
    if (res)
        mysql_free_result(res);
    my_close(conn);
    return rc;
}
