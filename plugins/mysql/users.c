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

static int check_account(struct my_plugin *p, struct trove_call *call, const struct trove_user *u)
{
    if (!u || !u->name)
        return p->host->fail(call, TROVE_EINVAL, "user name is required");
    int rc = check_user_name(p, call, u->name);
    if (rc == TROVE_OK)
        rc = check_host(p, call, user_host(u));
    if (rc == TROVE_OK && is_system_user(p, u->name))
        rc = p->host->fail(call, TROVE_EINVAL, "\"%s\" is a system user and cannot be managed through the API",
                           u->name);
    return rc;
}

int account_exists(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *user, const char *host)
{
    struct sb q = {0};
    sb_add(&q, "SELECT 1 FROM mysql.user WHERE User = ");
    sb_literal(&q, conn, user);
    sb_add(&q, " AND Host = ");
    sb_literal(&q, conn, host);
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

/* Fails with ENOTFOUND unless the account exists. */
static int need_account(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int e = account_exists(p, call, conn, u->name, user_host(u));
    if (e < 0)
        return -e;
    if (e == 0)
        return p->host->fail(call, TROVE_ENOTFOUND, "user '%s'@'%s' does not exist", u->name, user_host(u));
    return TROVE_OK;
}

/* Every database in the request is a valid name and not a system one. */
static int check_access_names(struct my_plugin *p, struct trove_call *call, const struct trove_user *u)
{
    for (size_t i = 0; i < u->n_databases; i++) {
        const char *db = u->databases[i];
        int rc = check_database_name(p, call, db);
        if (rc != TROVE_OK)
            return rc;
        if (is_system_database(db))
            return p->host->fail(call, TROVE_EINVAL, "\"%s\" is a system database; access to it cannot be granted",
                                 db);
    }
    return TROVE_OK;
}

/* ... and every one exists. */
static int check_access_list(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int rc = check_access_names(p, call, u);
    for (size_t i = 0; rc == TROVE_OK && i < u->n_databases; i++) {
        const char *db = u->databases[i];
        int e = database_exists(p, call, conn, db);
        if (e < 0)
            return -e;
        if (e == 0)
            return p->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db);
    }
    return rc;
}

int users_check_new(struct my_plugin *p, struct trove_call *call, const struct trove_user *u)
{
    int rc = check_account(p, call, u);
    if (rc == TROVE_OK)
        rc = check_password(p, call, u->password);
    if (rc == TROVE_OK)
        rc = check_access_names(p, call, u);
    return rc;
}

static int grant_one(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_user *u,
                     const char *db, bool grant)
{
    struct sb q = {0};
    sb_add(&q, grant ? "GRANT ALL PRIVILEGES ON " : "REVOKE ALL PRIVILEGES ON ");
    sb_grant_db(&q, db);
    sb_add(&q, grant ? ".* TO " : ".* FROM ");
    sb_account(&q, conn, u->name, user_host(u));
    int rc = my_exec_sb(p, call, conn, &q);
    sb_free(&q);
    return rc;
}

static int drop_account(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *name, const char *host)
{
    struct sb q = {0};
    sb_add(&q, "DROP USER ");
    sb_account(&q, conn, name, host);
    int rc = my_exec_sb(p, call, conn, &q);
    sb_free(&q);
    return rc;
}

int users_create_on(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_user *u)
{
    int rc = users_check_new(p, call, u);
    if (rc == TROVE_OK)
        rc = check_access_list(p, call, conn, u);
    if (rc != TROVE_OK)
        return rc;
    int e = account_exists(p, call, conn, u->name, user_host(u));
    if (e < 0)
        return -e;
    if (e > 0)
        return p->host->fail(call, TROVE_EEXIST, "user '%s'@'%s' already exists", u->name, user_host(u));

    struct sb q = {0};
    sb_add(&q, "CREATE USER ");
    sb_account(&q, conn, u->name, user_host(u));
    sb_identified_by(&q, u->password);
    rc = my_exec_sb(p, call, conn, &q);
    sb_wipe(&q);
    if (rc != TROVE_OK)
        return rc;
    for (size_t i = 0; i < u->n_databases && rc == TROVE_OK; i++)
        rc = grant_one(p, call, conn, u, u->databases[i], true);
    if (rc != TROVE_OK) {   /* all or nothing: the account goes again, keeping the grant's error */
        struct sb q2 = {0};
        sb_add(&q2, "DROP USER ");
        sb_account(&q2, conn, u->name, user_host(u));
        if (!q2.oom)
            mysql_real_query(conn, q2.buf, (unsigned long)q2.len);
        sb_free(&q2);
    }
    return rc;
}

int my_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = users_check_new(p, call, user);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = users_create_on(p, call, conn, user);
    my_close(conn);
    return rc;
}

int my_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK)
        rc = drop_account(p, call, conn, user->name, user_host(user));
    my_close(conn);
    return rc;
}

/* The databases the account has a database-level grant on (caller frees). */
static int access_list(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *user, const char *host,
                       char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct sb q = {0};
    sb_add(&q, "SELECT Db FROM mysql.db WHERE User = ");
    sb_literal(&q, conn, user);
    sb_add(&q, " AND Host = ");
    sb_literal(&q, conn, host);
    sb_add(&q, " ORDER BY Db");
    if (q.oom) {
        sb_free(&q);
        return my_oom(p, call);
    }
    MYSQL_RES *res;
    int rc = my_query(p, call, conn, q.buf, &res);
    sb_free(&q);
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
        grant_pattern_to_name(list[k++]);
    }
    if (res)
        mysql_free_result(res);
    if (!list)
        return my_oom(p, call);
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

static int emit_account(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *name, const char *host)
{
    char **dbs;
    size_t n;
    int rc = access_list(p, call, conn, name, host, &dbs, &n);
    if (rc != TROVE_OK)
        return rc;
    struct trove_user u = {.size = sizeof(u), .name = name, .host = host, .databases = (const char *const *)dbs, .n_databases = n};
    rc = p->host->emit_user(call, &u);
    free_list(dbs, n);
    return rc;
}

int my_user_list(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    MYSQL_RES *res = NULL;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_query(p, call, conn, "SELECT User, Host FROM mysql.user WHERE is_role = 'N' ORDER BY User, Host",
                      &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || !row[1] || !*row[0] || is_system_user(p, row[0]))
            continue;
        rc = emit_account(p, call, conn, row[0], row[1]);
    }
    if (res)
        mysql_free_result(res);
    my_close(conn);
    return rc;
}

int my_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK)
        rc = emit_account(p, call, conn, user->name, user_host(user));
    my_close(conn);
    return rc;
}

int my_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK && user->n_databases == 0)
        rc = p->host->fail(call, TROVE_EINVAL, "no databases given to grant access to");
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK)
        rc = check_access_list(p, call, conn, user);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = grant_one(p, call, conn, user, user->databases[i], true);
    my_close(conn);
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
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    char **have = NULL;
    size_t n_have = 0;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK && user->n_databases == 0)
        rc = p->host->fail(call, TROVE_EINVAL, "no databases given to revoke access to");
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = check_database_name(p, call, user->databases[i]);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK)
        rc = access_list(p, call, conn, user->name, user_host(user), &have, &n_have);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        if (!in_list(have, n_have, user->databases[i]))
            rc = p->host->fail(call, TROVE_ENOTFOUND, "user '%s'@'%s' has no access to database \"%s\"",
                               user->name, user_host(user), user->databases[i]);
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++)
        rc = grant_one(p, call, conn, user, user->databases[i], false);
    free_list(have, n_have);
    my_close(conn);
    return rc;
}

int my_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    char **have = NULL;
    size_t n_have = 0;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK)
        rc = access_list(p, call, conn, user->name, user_host(user), &have, &n_have);
    for (size_t i = 0; rc == TROVE_OK && i < n_have; i++) {
        struct trove_database db = {.size = sizeof(db), .name = have[i]};
        rc = p->host->emit_database(call, &db);
    }
    free_list(have, n_have);
    my_close(conn);
    return rc;
}

int my_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_account(p, call, user);
    if (rc == TROVE_OK)
        rc = check_password(p, call, user->password);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = need_account(p, call, conn, user);
    if (rc == TROVE_OK) {
        struct sb q = {0};
        sb_add(&q, "ALTER USER ");
        sb_account(&q, conn, user->name, user_host(user));
        sb_identified_by(&q, user->password);
        rc = my_exec_sb(p, call, conn, &q);
        sb_wipe(&q);
    }
    my_close(conn);
    return rc;
}
