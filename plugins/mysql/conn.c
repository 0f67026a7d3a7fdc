/*
 * conn.c - connections to the server as the plugin's admin account, and the
 * query helpers every slot uses, and the option file that hands the tools
 * the same account. One connection per call keeps the loop and worker
 * threads apart. Server errors go back to the caller verbatim.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "mysql_plugin.h"

static bool use_socket(const struct my_ctx *ctx)
{
    struct stat st;
    return ctx->s.socket && *ctx->s.socket && stat(ctx->s.socket, &st) == 0 && S_ISSOCK(st.st_mode);
}

MYSQL *my_conn_try(struct my_ctx *ctx, bool quick, char *msg, size_t msglen, unsigned *err)
{
    MYSQL *conn = mysql_init(NULL);
    if (!conn) {
        snprintf(msg, msglen, "out of memory");
        if (err)
            *err = 0;
        return NULL;
    }
    unsigned timeout = (unsigned)ctx->s.connect_timeout;
    unsigned io_timeout = quick ? (timeout > 5 ? timeout : 5) : 0;
    mysql_optionsv(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (quick) {
        mysql_optionsv(conn, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
        mysql_optionsv(conn, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    }
    mysql_optionsv(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    bool sock = use_socket(ctx);
    if (!mysql_real_connect(conn, sock ? "localhost" : ctx->s.host, ctx->s.admin_user,
                            ctx->s.admin_password ? ctx->s.admin_password : "", NULL,
                            sock ? 0 : (unsigned)ctx->s.port, sock ? ctx->s.socket : NULL, 0)) {
        if (sock)
            snprintf(msg, msglen, "cannot connect to MariaDB at socket %.200s as %s: %s", ctx->s.socket,
                     ctx->s.admin_user, mysql_error(conn));
        else
            snprintf(msg, msglen, "cannot connect to MariaDB at %.200s:%lld as %s: %s", ctx->s.host,
                     (long long)ctx->s.port, ctx->s.admin_user, mysql_error(conn));
        if (err)
            *err = mysql_errno(conn);
        mysql_close(conn);
        return NULL;
    }
    return conn;
}

int my_conn_open(struct my_ctx *ctx, struct trove_call *call, bool quick, MYSQL **out)
{
    char msg[512];
    *out = my_conn_try(ctx, quick, msg, sizeof(msg), NULL);
    if (!*out)
        return ctx->host->fail(call, TROVE_EUNAVAIL, "%s", msg);
    return TROVE_OK;
}

void my_conn_close(MYSQL *conn)
{
    if (conn)
        mysql_close(conn);
}

int my_conn_fail(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *what)
{
    unsigned e = mysql_errno(conn);
    int status = TROVE_EDATASTORE;
    switch (e) {
    case ER_DB_CREATE_EXISTS:
        status = TROVE_EEXIST;
        break;
    case ER_DB_DROP_EXISTS:
    case ER_BAD_DB_ERROR:
    case ER_NONEXISTING_GRANT:
        status = TROVE_ENOTFOUND;
        break;
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
        status = TROVE_EUNAVAIL;
        break;
    default:
        break;
    }
    if (!call)   /* heartbeat paths: no call to record a message in */
        return status;
    return ctx->host->fail(call, status, "%s: MariaDB error %u: %s", what, e, mysql_error(conn));
}

int my_fail_oom(struct my_ctx *ctx, struct trove_call *call)
{
    return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
}

/* The statement's first word, for messages (never the text: it may hold a secret). */
static void statement_verb(const char *sql, char *out, size_t outlen)
{
    size_t n = 0;
    while (sql[n] && n + 1 < outlen && sql[n] != '\'' && (n < 24 || sql[n] != ' '))
        n++;
    while (n > 0 && sql[n - 1] == ' ')
        n--;
    memcpy(out, sql, n);
    out[n] = '\0';
}

int my_conn_exec(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql)
{
    if (mysql_real_query(conn, sql, (unsigned long)strlen(sql)) == 0) {
        MYSQL_RES *res = mysql_store_result(conn);   /* drain anything returned */
        if (res)
            mysql_free_result(res);
        return TROVE_OK;
    }
    char verb[40];
    statement_verb(sql, verb, sizeof(verb));
    return my_conn_fail(ctx, call, conn, verb);
}

int my_conn_exec_buf(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct tps_buf *sql)
{
    const char *text = tps_buf_str(sql);
    return text ? my_conn_exec(ctx, call, conn, text) : my_fail_oom(ctx, call);
}

int my_conn_query(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql, MYSQL_RES **res)
{
    *res = NULL;
    if (mysql_real_query(conn, sql, (unsigned long)strlen(sql)) != 0) {
        char verb[40];
        statement_verb(sql, verb, sizeof(verb));
        return my_conn_fail(ctx, call, conn, verb);
    }
    *res = mysql_store_result(conn);
    if (!*res && mysql_field_count(conn) != 0)
        return my_conn_fail(ctx, call, conn, "reading the result");
    return TROVE_OK;
}

int my_conn_scalar(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *sql, char *out,
                   size_t outlen, bool *is_null)
{
    MYSQL_RES *res;
    int rc = my_conn_query(ctx, call, conn, sql, &res);
    if (rc != TROVE_OK)
        return rc;
    out[0] = '\0';
    if (is_null)
        *is_null = true;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0]) {
        snprintf(out, outlen, "%s", row[0]);
        if (is_null)
            *is_null = false;
    }
    if (res)
        mysql_free_result(res);
    return TROVE_OK;
}

int my_conn_defaults_file(struct my_ctx *ctx, struct trove_call *call, char *path, size_t pathlen)
{
    struct tps_buf f = {0};
    tps_buf_add(&f, "[client]\nuser=\"");
    tps_buf_add(&f, ctx->s.admin_user);
    tps_buf_add(&f, "\"\npassword=");
    tps_quote_conf(&f, ctx->s.admin_password, '"');
    tps_buf_add(&f, "\n");
    if (ctx->s.socket && access(ctx->s.socket, F_OK) == 0)
        tps_buf_addf(&f, "socket=\"%s\"\n", ctx->s.socket);
    else
        tps_buf_addf(&f, "host=%s\nport=%lld\nprotocol=tcp\n", ctx->s.host, (long long)ctx->s.port);
    int rc = TROVE_OK, e;
    if (!tps_buf_str(&f))
        rc = my_fail_oom(ctx, call);
    else if ((rc = my_server_make_dir(ctx, call, ctx->s.run_dir, 0750)) != TROVE_OK)
        ;
    else if ((e = tps_file_write_secret(ctx->s.run_dir, tps_buf_str(&f), path, pathlen)) != 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot write a credentials file in %s: %s", ctx->s.run_dir,
                             strerror(-e));
    tps_buf_wipe(&f);
    return rc;
}
