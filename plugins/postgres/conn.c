/*
 * conn.c - libpq connections and the query helpers every other file uses,
 * and the environment tools get to connect. Connection parameters go through
 * PQconnectdbParams (no conninfo string to escape); statements take their
 * values as parameters, or as pieces quoted by the support library into a
 * tps_buf: every session pins standard_conforming_strings, the rule
 * tps_quote_literal() follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static _Thread_local char last_sqlstate[6];

const char *pg_conn_sqlstate(void)
{
    return last_sqlstate;
}

/* The first line of libpq's message, without the trailing newline. */
static void one_line(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg ? msg : "unknown error");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
}

PGconn *pg_conn_open_at(struct pg_ctx *ctx, struct trove_call *call, const char *host, int port_number,
                        const char *user, const char *password, const char *dbname, int timeout_s)
{
    char port[16], timeout[16];
    snprintf(port, sizeof(port), "%d", port_number);
    snprintf(timeout, sizeof(timeout), "%lld", timeout_s > 0 ? (long long)timeout_s
                                                             : (long long)ctx->s.connect_timeout);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", "gssencmode", "connect_timeout",
                          "application_name", "client_encoding", "options", NULL};
    const char *vals[] = {host, port, user, password && password[0] ? password : NULL, dbname, ctx->s.sslmode,
                          "disable", timeout, "trove-agent", "UTF8", "-c standard_conforming_strings=on", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    char msg[512];
    one_line(c ? PQerrorMessage(c) : "out of memory", msg, sizeof(msg));
    ctx->host->fail(call, TROVE_EUNAVAIL, "cannot connect to PostgreSQL at %s:%d as \"%s\": %s", host, port_number,
                    user, msg);
    PQfinish(c);
    return NULL;
}

PGconn *pg_conn_open(struct pg_ctx *ctx, struct trove_call *call, const char *dbname)
{
    return pg_conn_open_at(ctx, call, ctx->s.host, (int)ctx->s.port, ctx->s.user, ctx->s.password,
                           dbname ? dbname : ctx->s.database, 0);
}

PGresult *pg_conn_query(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                        const char *const *params)
{
    last_sqlstate[0] = '\0';
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", state ? state : "");
    char msg[768];
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    one_line(primary ? primary : PQerrorMessage(c), msg, sizeof(msg));
    int status = PQstatus(c) == CONNECTION_OK ? TROVE_EDATASTORE : TROVE_EUNAVAIL;
    ctx->host->fail(call, status, "PostgreSQL: %s%s%s%s", msg, state ? " (SQLSTATE " : "", state ? state : "",
                    state ? ")" : "");
    PQclear(r);
    return NULL;
}

int pg_conn_run(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                const char *const *params)
{
    PGresult *r = pg_conn_query(ctx, call, c, sql, n, params);
    if (!r)
        return PQstatus(c) == CONNECTION_OK ? TROVE_EDATASTORE : TROVE_EUNAVAIL;
    PQclear(r);
    return TROVE_OK;
}

int pg_conn_run_buf(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct tps_buf *sql)
{
    const char *text = tps_buf_str(sql);
    int rc = text ? pg_conn_run(ctx, call, c, text, 0, NULL) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(sql);   /* a statement may carry a password verifier */
    return rc;
}

int pg_conn_query_bool(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *sql, int n,
                       const char *const *params, bool *out)
{
    PGresult *r = pg_conn_query(ctx, call, c, sql, n, params);
    if (!r)
        return PQstatus(c) == CONNECTION_OK ? TROVE_EDATASTORE : TROVE_EUNAVAIL;
    *out = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return TROVE_OK;
}

bool pg_tool_env_init(struct pg_ctx *ctx, struct pg_tool_env *env, const char *password)
{
    memset(env, 0, sizeof(*env));
    size_t n = 0;
    snprintf(env->sslmode, sizeof(env->sslmode), "PGSSLMODE=%s", ctx->s.sslmode);
    env->list[n++] = env->sslmode;
    env->list[n++] = "PGGSSENCMODE=disable";
    env->list[n++] = "PGAPPNAME=trove-agent";
    if (password && password[0]) {
        tps_buf_addf(&env->password, "PGPASSWORD=%s", password);
        if (!tps_buf_str(&env->password))
            return false;
        env->list[n++] = tps_buf_str(&env->password);
    }
    env->list[n] = NULL;
    return true;
}

void pg_tool_env_wipe(struct pg_tool_env *env)
{
    tps_buf_wipe(&env->password);
}

void pg_tool_args_init(struct pg_ctx *ctx, struct pg_tool_args *a)
{
    snprintf(a->port, sizeof(a->port), "%lld", (long long)ctx->s.port);
    const char *argv[] = {"-h", ctx->s.host, "-p", a->port, "-U", ctx->s.user, "-w", NULL};
    memcpy(a->argv, argv, sizeof(argv));
}
