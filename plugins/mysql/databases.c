/*
 * databases.c - tenant databases (schemas): create with a character set and
 * collation checked against the server's own lists, alter them (ALTER
 * DATABASE), delete (with the grants that named it), list. System databases
 * are refused; MariaDB databases have no other settings, so any option is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mysql_plugin.h"

static int check_tenant_database(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    if (!db || !TROVE_FIELD_OK(db, struct trove_database, collation))
        return ctx->host->fail(call, TROVE_EINVAL, "the database request is shorter than ABI 2.0's");
    if (!db->name)
        return ctx->host->fail(call, TROVE_EINVAL, "database name is required");
    int rc = my_name_check_database(ctx, call, db->name);
    if (rc == TROVE_OK && my_name_is_system_database(db->name))
        rc = ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is a system database and cannot be managed through the API",
                             db->name);
    return rc;
}

int my_database_exists(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *name)
{
    struct tps_buf q = {0};
    tps_buf_add(&q, "SELECT 1 FROM information_schema.SCHEMATA WHERE BINARY SCHEMA_NAME = ");
    my_quote_literal(&q, conn, name);
    if (!tps_buf_str(&q)) {
        tps_buf_free(&q);
        return -my_fail_oom(ctx, call);
    }
    char v[8];
    bool null;
    int rc = my_conn_scalar(ctx, call, conn, q.data, v, sizeof(v), &null);
    tps_buf_free(&q);
    if (rc != TROVE_OK)
        return -rc;
    return null ? 0 : 1;
}

/* The forms of a character set and a collation, when given: not empty,
 * plain words (which the server is then asked about). */
static int check_charset_form(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    const char *cs = db->character_set, *co = db->collation;
    if ((cs && !*cs) || (co && !*co))
        return ctx->host->fail(call, TROVE_EINVAL, "%s must not be empty (leave it out for the server's default)",
                               cs && !*cs ? "character set" : "collation");
    if (cs && !tps_name_ok(cs, 64, NULL, false))
        return ctx->host->fail(call, TROVE_EINVAL, "character set \"%s\" is not a valid name", cs);
    if (co && !tps_name_ok(co, 64, NULL, false))
        return ctx->host->fail(call, TROVE_EINVAL, "collation \"%s\" is not a valid name", co);
    return TROVE_OK;
}

/* Options a request carries: MariaDB databases have none, so every one is
 * refused, all named in one message. */
static int refuse_options(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    const struct trove_kv *kv = MY_FIELD(db, struct trove_database, options, NULL);
    size_t n = kv ? MY_FIELD(db, struct trove_database, n_options, 0) : 0;
    if (n == 0)
        return TROVE_OK;
    struct tps_buf names = {0};
    for (size_t i = 0; i < n; i++)
        tps_buf_addf(&names, "%s%s", i ? ", " : "", kv[i].key ? kv[i].key : "");
    int rc = tps_buf_str(&names)
                 ? ctx->host->fail(call, TROVE_EINVAL, "MariaDB databases have no option%s %s; only the character "
                                   "set and the collation can be set", n > 1 ? "s" : "", tps_buf_str(&names))
                 : my_fail_oom(ctx, call);
    tps_buf_free(&names);
    return rc;
}

int my_database_check_new(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    int rc = check_tenant_database(ctx, call, db);
    if (rc == TROVE_OK)
        rc = refuse_options(ctx, call, db);
    if (rc == TROVE_OK)
        rc = check_charset_form(ctx, call, db);
    return rc;
}

/* The character set and collation, when given (NULL: the server's default;
 * check_charset_form has checked their form), exist on this server and
 * belong together. */
static int check_charset(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_database *db)
{
    const char *cs = db->character_set, *co = db->collation;
    char v[80];
    bool null;
    int rc = TROVE_OK;
    struct tps_buf q = {0};
    if (cs) {
        tps_buf_add(&q, "SELECT 1 FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = ");
        my_quote_literal(&q, conn, cs);
        rc = !tps_buf_str(&q) ? my_fail_oom(ctx, call) : my_conn_scalar(ctx, call, conn, q.data, v, sizeof(v), &null);
        if (rc == TROVE_OK && null)
            rc = ctx->host->fail(call, TROVE_EINVAL, "character set \"%s\" is not supported by this server "
                                 "(see SHOW CHARACTER SET)", cs);
    }
    if (rc == TROVE_OK && co) {
        tps_buf_free(&q);
        tps_buf_add(&q, "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ");
        my_quote_literal(&q, conn, co);
        rc = !tps_buf_str(&q) ? my_fail_oom(ctx, call) : my_conn_scalar(ctx, call, conn, q.data, v, sizeof(v), &null);
        if (rc == TROVE_OK && null)
            rc = ctx->host->fail(call, TROVE_EINVAL, "collation \"%s\" is not supported by this server "
                                 "(see SHOW COLLATION)", co);
        else if (rc == TROVE_OK && cs && strcasecmp(v, cs) != 0)
            rc = ctx->host->fail(call, TROVE_EINVAL, "collation \"%s\" belongs to character set \"%s\", not \"%s\"",
                                 co, v, cs);
    }
    tps_buf_free(&q);
    return rc;
}

int my_database_create_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_database *db)
{
    int rc = my_database_check_new(ctx, call, db);
    if (rc == TROVE_OK)
        rc = check_charset(ctx, call, conn, db);
    if (rc != TROVE_OK)
        return rc;
    int e = my_database_exists(ctx, call, conn, db->name);
    if (e < 0)
        return -e;
    if (e > 0)
        return ctx->host->fail(call, TROVE_EEXIST, "database \"%s\" already exists", db->name);
    struct tps_buf q = {0};
    tps_buf_add(&q, "CREATE DATABASE ");
    my_quote_ident(&q, db->name);
    if (db->character_set)   /* plain words the server listed (check_charset) */
        tps_buf_addf(&q, " CHARACTER SET %s", db->character_set);
    if (db->collation)
        tps_buf_addf(&q, " COLLATE %s", db->collation);
    rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    return rc;
}

int my_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = my_database_check_new(ctx, call, db);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_database_create_on(ctx, call, conn, db);
    my_conn_close(conn);
    return rc;
}

/* Revoke the database-level grants that name `name`, so a database created
 * later with the same name does not inherit them. mysql.db.Db holds the grant
 * pattern as a value (a`b stays a`b, a_b is a\_b): it is looked up as a
 * string literal and named in REVOKE as an identifier, each quoted its own way. */
static int revoke_grants_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *name)
{
    char *pattern = my_grant_pattern(name);
    struct tps_buf q = {0};
    tps_buf_add(&q, "SELECT User, Host FROM mysql.db WHERE Db = ");
    if (pattern)
        my_quote_literal(&q, conn, pattern);
    MYSQL_RES *res = NULL;
    int rc = !pattern || !tps_buf_str(&q) ? my_fail_oom(ctx, call) : my_conn_query(ctx, call, conn, q.data, &res);
    tps_buf_free(&q);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || !row[1])
            continue;
        struct tps_buf r = {0};
        tps_buf_add(&r, "REVOKE ALL PRIVILEGES ON ");
        my_quote_ident(&r, pattern);
        tps_buf_add(&r, ".* FROM ");
        my_quote_account(&r, conn, row[0], row[1]);
        rc = my_conn_exec_buf(ctx, call, conn, &r);
        tps_buf_free(&r);
    }
    if (res)
        mysql_free_result(res);
    free(pattern);
    return rc;
}

int my_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_tenant_database(ctx, call, db);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK) {
        int e = my_database_exists(ctx, call, conn, db->name);
        if (e < 0)
            rc = -e;
        else if (e == 0)
            rc = ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db->name);
    }
    if (rc == TROVE_OK) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "DROP DATABASE ");
        my_quote_ident(&q, db->name);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_free(&q);
    }
    if (rc == TROVE_OK)
        rc = revoke_grants_on(ctx, call, conn, db->name);
    my_conn_close(conn);
    return rc;
}

int my_database_list(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_query(ctx, call, conn,
                           "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                           "FROM information_schema.SCHEMATA ORDER BY BINARY SCHEMA_NAME",
                           &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || my_name_is_system_database(row[0]))
            continue;
        struct trove_database d = {.size = sizeof(d), .name = row[0], .character_set = row[1], .collation = row[2]};
        rc = ctx->host->emit_database(call, &d);
    }
    if (res)
        mysql_free_result(res);
    my_conn_close(conn);
    return rc;
}

/* The checks that need no server: a tenant database, no options, no owner,
 * and something to change, in a valid form. */
static int check_alter(struct my_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    int rc = check_tenant_database(ctx, call, db);
    if (rc == TROVE_OK)
        rc = refuse_options(ctx, call, db);
    if (rc == TROVE_OK && MY_FIELD(db, struct trove_database, owner, NULL))
        rc = ctx->host->fail(call, TROVE_EINVAL, "MariaDB databases have no owner; only the character set and the "
                             "collation can be set");
    if (rc == TROVE_OK && !db->character_set && !db->collation)
        rc = ctx->host->fail(call, TROVE_EINVAL, "nothing to change: give a character set, a collation or both");
    if (rc == TROVE_OK)
        rc = check_charset_form(ctx, call, db);
    return rc;
}

int my_database_alter(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_alter(ctx, call, db);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = check_charset(ctx, call, conn, db);
    if (rc == TROVE_OK) {
        int e = my_database_exists(ctx, call, conn, db->name);
        if (e < 0)
            rc = -e;
        else if (e == 0)
            rc = ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db->name);
    }
    if (rc == TROVE_OK) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "ALTER DATABASE ");
        my_quote_ident(&q, db->name);
        if (db->character_set)   /* plain words the server listed (check_charset) */
            tps_buf_addf(&q, " CHARACTER SET %s", db->character_set);
        if (db->collation)
            tps_buf_addf(&q, " COLLATE %s", db->collation);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_free(&q);
    }
    my_conn_close(conn);
    return rc;
}
