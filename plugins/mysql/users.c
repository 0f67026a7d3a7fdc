/*
 * users.c - tenant accounts ('name'@'host') and their access to databases
 * (GRANT ALL PRIVILEGES ON `db`.*). System accounts are refused; every name
 * is validated, backtick-quoted or escaped, and a password reaches the server
 * only as its hash (password.c).
 */
#include <stdlib.h>
#include <string.h>

#include "mysql_plugin.h"

#define MAX_ACCESS 4096

static int check_account(struct my_ctx *ctx, struct trove_call *call, const struct trove_user *u)
{
    if (!u || !TROVE_FIELD_OK(u, struct trove_user, n_databases))
        return ctx->host->fail(call, TROVE_EINVAL, "the user request is shorter than ABI 2.0's");
    if (!u->name)
        return ctx->host->fail(call, TROVE_EINVAL, "user name is required");
    int rc = my_name_check_user(ctx, call, u->name);
    if (rc == TROVE_OK)
        rc = my_name_check_host(ctx, call, my_user_host(u));
    if (rc == TROVE_OK && my_name_is_system_user(ctx, u->name))
        rc = ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is a system user and cannot be managed through the API",
                             u->name);
    return rc;
}

int my_user_exists(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *user, const char *host)
{
    struct tps_buf q = {0};
    tps_buf_add(&q, "SELECT 1 FROM mysql.user WHERE User = ");
    my_quote_literal(&q, conn, user);
    tps_buf_add(&q, " AND Host = ");
    my_quote_literal(&q, conn, host);
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

/* Fails with ENOTFOUND unless the account exists. */
static int need_account(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int e = my_user_exists(ctx, call, conn, u->name, my_user_host(u));
    if (e < 0)
        return -e;
    if (e == 0)
        return ctx->host->fail(call, TROVE_ENOTFOUND, "user '%s'@'%s' does not exist", u->name, my_user_host(u));
    return TROVE_OK;
}

/* Every database in the request is a valid name and not a system one. */
static int check_access_names(struct my_ctx *ctx, struct trove_call *call, const struct trove_user *u)
{
    for (size_t i = 0; i < u->n_databases; i++) {
        const char *db = u->databases[i];
        int rc = my_name_check_database(ctx, call, db);
        if (rc != TROVE_OK)
            return rc;
        if (my_name_is_system_database(db))
            return ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is a system database; access to it cannot be granted",
                                   db);
    }
    return TROVE_OK;
}

/* ... and every one exists. */
static int check_access_list(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int rc = check_access_names(ctx, call, u);
    for (size_t i = 0; rc == TROVE_OK && i < u->n_databases; i++) {
        const char *db = u->databases[i];
        int e = my_database_exists(ctx, call, conn, db);
        if (e < 0)
            return -e;
        if (e == 0)
            return ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db);
    }
    return rc;
}

int my_user_check_new(struct my_ctx *ctx, struct trove_call *call, const struct trove_user *u)
{
    int rc = check_account(ctx, call, u);
    if (rc == TROVE_OK)
        rc = my_name_check_password(ctx, call, u->password);
    if (rc == TROVE_OK)
        rc = check_access_names(ctx, call, u);
    return rc;
}

static int grant_one(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_user *u,
                     const char *db, bool grant)
{
    struct tps_buf q = {0};
    tps_buf_add(&q, grant ? "GRANT ALL PRIVILEGES ON " : "REVOKE ALL PRIVILEGES ON ");
    my_quote_grant_db(&q, db);
    tps_buf_add(&q, grant ? ".* TO " : ".* FROM ");
    my_quote_account(&q, conn, u->name, my_user_host(u));
    int rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    return rc;
}

static int drop_account(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *name, const char *host)
{
    struct tps_buf q = {0};
    tps_buf_add(&q, "DROP USER ");
    my_quote_account(&q, conn, name, host);
    int rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    return rc;
}

int my_user_create_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int rc = my_user_check_new(ctx, call, u);
    if (rc == TROVE_OK)
        rc = check_access_list(ctx, call, conn, u);
    if (rc != TROVE_OK)
        return rc;
    int e = my_user_exists(ctx, call, conn, u->name, my_user_host(u));
    if (e < 0)
        return -e;
    if (e > 0)
        return ctx->host->fail(call, TROVE_EEXIST, "user '%s'@'%s' already exists", u->name, my_user_host(u));

    struct tps_buf q = {0};
    tps_buf_add(&q, "CREATE USER ");
    my_quote_account(&q, conn, u->name, my_user_host(u));
    my_password_identified_by(&q, u->password);
    rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_wipe(&q);
    if (rc != TROVE_OK)
        return rc;
    for (size_t i = 0; i < u->n_databases && rc == TROVE_OK; i++)
        rc = grant_one(ctx, call, conn, u, u->databases[i], true);
    if (rc != TROVE_OK) {   /* all or nothing: the account goes again, keeping the grant's error */
        struct tps_buf q2 = {0};
        tps_buf_add(&q2, "DROP USER ");
        my_quote_account(&q2, conn, u->name, my_user_host(u));
        if (tps_buf_str(&q2))
            mysql_real_query(conn, q2.data, (unsigned long)q2.len);
        tps_buf_free(&q2);
    }
    return rc;
}

int my_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = my_user_check_new(ctx, call, user);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_user_create_on(ctx, call, conn, user);
    my_conn_close(conn);
    return rc;
}

int my_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK)
        rc = drop_account(ctx, call, conn, user->name, my_user_host(user));
    my_conn_close(conn);
    return rc;
}

/* The databases the account has a database-level grant on (caller frees). */
static int access_list(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *user, const char *host,
                       char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct tps_buf q = {0};
    tps_buf_add(&q, "SELECT Db FROM mysql.db WHERE User = ");
    my_quote_literal(&q, conn, user);
    tps_buf_add(&q, " AND Host = ");
    my_quote_literal(&q, conn, host);
    tps_buf_add(&q, " ORDER BY Db");
    if (!tps_buf_str(&q)) {
        tps_buf_free(&q);
        return my_fail_oom(ctx, call);
    }
    MYSQL_RES *res;
    int rc = my_conn_query(ctx, call, conn, q.data, &res);
    tps_buf_free(&q);
    if (rc != TROVE_OK)
        return rc;
    size_t n = res ? (size_t)mysql_num_rows(res) : 0;
    if (n > MAX_ACCESS)
        n = MAX_ACCESS;
    char **list = calloc(n + 1, sizeof(char *));
    MYSQL_ROW row;
    size_t k = 0;
    while (list && k < n && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || !(list[k] = strdup(row[0])))
            continue;
        my_grant_pattern_unescape(list[k++]);
    }
    if (res)
        mysql_free_result(res);
    if (!list)
        return my_fail_oom(ctx, call);
    *out = list;
    *n_out = k;
    return TROVE_OK;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static int emit_account(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *name, const char *host)
{
    char **dbs;
    size_t n;
    int rc = access_list(ctx, call, conn, name, host, &dbs, &n);
    if (rc != TROVE_OK)
        return rc;
    struct trove_user u = {.size = sizeof(u), .name = name, .host = host, .databases = (const char *const *)dbs,
                           .n_databases = n};
    rc = ctx->host->emit_user(call, &u);
    free_list(dbs, n);
    return rc;
}

int my_user_list(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_query(ctx, call, conn, "SELECT User, Host FROM mysql.user WHERE is_role = 'N' ORDER BY User, Host",
                           &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || !row[1] || !*row[0] || my_name_is_system_user(ctx, row[0]))
            continue;
        rc = emit_account(ctx, call, conn, row[0], row[1]);
    }
    if (res)
        mysql_free_result(res);
    my_conn_close(conn);
    return rc;
}

int my_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK)
        rc = emit_account(ctx, call, conn, user->name, my_user_host(user));
    my_conn_close(conn);
    return rc;
}

int my_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK && user->n_databases == 0)
        rc = ctx->host->fail(call, TROVE_EINVAL, "no databases given to grant access to");
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK)
        rc = check_access_list(ctx, call, conn, user);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = grant_one(ctx, call, conn, user, user->databases[i], true);
    my_conn_close(conn);
    return rc;
}

static bool in_list(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

int my_user_revoke(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    char **have = NULL;
    size_t n_have = 0;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK && user->n_databases == 0)
        rc = ctx->host->fail(call, TROVE_EINVAL, "no databases given to revoke access to");
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = my_name_check_database(ctx, call, user->databases[i]);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK)
        rc = access_list(ctx, call, conn, user->name, my_user_host(user), &have, &n_have);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        if (!in_list(have, n_have, user->databases[i]))
            rc = ctx->host->fail(call, TROVE_ENOTFOUND, "user '%s'@'%s' has no access to database \"%s\"",
                                 user->name, my_user_host(user), user->databases[i]);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = grant_one(ctx, call, conn, user, user->databases[i], false);
    free_list(have, n_have);
    my_conn_close(conn);
    return rc;
}

int my_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    char **have = NULL;
    size_t n_have = 0;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK)
        rc = access_list(ctx, call, conn, user->name, my_user_host(user), &have, &n_have);
    for (size_t i = 0; rc == TROVE_OK && i < n_have; i++) {
        struct trove_database db = {.size = sizeof(db), .name = have[i]};
        rc = ctx->host->emit_database(call, &db);
    }
    free_list(have, n_have);
    my_conn_close(conn);
    return rc;
}

int my_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_account(ctx, call, user);
    if (rc == TROVE_OK)
        rc = my_name_check_password(ctx, call, user->password);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(ctx, call, conn, user);
    if (rc == TROVE_OK) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "ALTER USER ");
        my_quote_account(&q, conn, user->name, my_user_host(user));
        my_password_identified_by(&q, user->password);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_wipe(&q);
    }
    my_conn_close(conn);
    return rc;
}
