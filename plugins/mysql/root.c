/*
 * root.c - the datastore superuser: 'root' at every host it exists on, plus
 * 'root'@'%' while enabled. Disabling drops root@% and locks the local root
 * accounts with a random password; the plugin's admin account is untouched.
 */
#include <string.h>

#include <mysqld_error.h>

#include "mysql_plugin.h"

#define ROOT_PASSWORD_LEN 24

static int root_hosts(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, MYSQL_RES **res)
{
    return my_conn_query(ctx, call, conn, "SELECT Host FROM mysql.user WHERE User = 'root' AND is_role = 'N'", res);
}

static int refuse_if_admin_is_root(struct my_ctx *ctx, struct trove_call *call)
{
    if (strcmp(ctx->s.admin_user, "root") == 0)
        return ctx->host->fail(call, TROVE_ECONFLICT,
                               "the plugin's admin account is root itself (admin_user = root); "
                               "root cannot be enabled or disabled through the API");
    return TROVE_OK;
}

/* An account the server did not load (root@<hostname> under
 * skip-name-resolve) cannot be altered; it cannot log in either, and it must
 * not come back with an empty password if name resolution is turned on. */
static int drop_unloaded_root(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *host)
{
    struct tps_buf q = {0};
    tps_buf_add(&q, "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host = ");
    my_quote_literal(&q, conn, host);
    int rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    if (rc == TROVE_OK)
        ctx->host->log(TROVE_LOG_INFO, "mysql: removed the unusable account root@%s", host);
    return rc;
}

/* ALTER USER 'root'@host IDENTIFIED BY PASSWORD hash ACCOUNT {UN}LOCK for every root account. */
static int set_root_accounts(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *password,
                             bool lock, bool *has_any_host)
{
    MYSQL_RES *res = NULL;
    int rc = root_hosts(ctx, call, conn, &res);
    MYSQL_ROW row;
    *has_any_host = false;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0])
            continue;
        if (strcmp(row[0], "%") == 0)
            *has_any_host = true;
        struct tps_buf q = {0};
        tps_buf_add(&q, "ALTER USER ");
        my_quote_account(&q, conn, "root", row[0]);
        my_password_identified_by(&q, password);
        tps_buf_add(&q, lock ? " ACCOUNT LOCK" : " ACCOUNT UNLOCK");
        if (!tps_buf_str(&q))
            rc = my_fail_oom(ctx, call);
        else if (mysql_real_query(conn, q.data, (unsigned long)q.len) != 0)
            rc = mysql_errno(conn) == ER_CANNOT_USER ? drop_unloaded_root(ctx, call, conn, row[0])
                                                     : my_conn_fail(ctx, call, conn, "ALTER USER root");
        tps_buf_wipe(&q);
    }
    if (res)
        mysql_free_result(res);
    return rc;
}

int my_root_enable_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *password, bool report)
{
    char generated[ROOT_PASSWORD_LEN + 1];
    int rc = refuse_if_admin_is_root(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    if (!password) {
        if (ctx->host->random_password(generated, sizeof(generated)) != TROVE_OK)
            return ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a root password");
        password = generated;
    } else if ((rc = my_name_check_password(ctx, call, password)) != TROVE_OK) {
        return rc;
    }
    bool has_any;
    rc = set_root_accounts(ctx, call, conn, password, false, &has_any);
    if (rc == TROVE_OK && !has_any) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "CREATE USER 'root'@'%'");
        my_password_identified_by(&q, password);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_wipe(&q);
    }
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION");
    if (rc == TROVE_OK && report)
        rc = ctx->host->set_str(call, "name", "root");
    if (rc == TROVE_OK && report)
        rc = ctx->host->set_str(call, "password", password);
    explicit_bzero(generated, sizeof(generated));
    return rc;
}

int my_root_disable_on(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    char scrambled[ROOT_PASSWORD_LEN + 1];
    int rc = refuse_if_admin_is_root(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    if (ctx->host->random_password(scrambled, sizeof(scrambled)) != TROVE_OK)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a password");
    rc = my_conn_exec(ctx, call, conn, "DROP USER IF EXISTS 'root'@'%'");
    bool has_any;
    if (rc == TROVE_OK)
        rc = set_root_accounts(ctx, call, conn, scrambled, true, &has_any);
    explicit_bzero(scrambled, sizeof(scrambled));
    return rc;
}

int my_root_enable(void *self, struct trove_call *call, const char *password)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_root_enable_on(ctx, call, conn, password, true);
    my_conn_close(conn);
    return rc;
}

int my_root_disable(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_root_disable_on(ctx, call, conn);
    my_conn_close(conn);
    return rc;
}

int my_root_show(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    char v[32];
    bool null;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_scalar(ctx, call, conn,
                            "SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'root' "
                            "AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), 0) = 0",
                            v, sizeof(v), &null);
    if (rc == TROVE_OK)
        rc = ctx->host->set_bool(call, "enabled", !null && strcmp(v, "0") != 0);
    my_conn_close(conn);
    return rc;
}
