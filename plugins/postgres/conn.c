/*
 * conn.c - libpq connections and the query helpers every other file uses.
 * Connection parameters go through PQconnectdbParams (no conninfo string to
 * escape); statements take their values as parameters or quoted pieces.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

static _Thread_local char last_sqlstate[6];

const char *pg_last_sqlstate(void)
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

PGconn *pg_connect_to(struct pg *pg, struct trove_call *call, const char *host, int port_number, const char *user,
                      const char *password, const char *dbname, int timeout_s)
{
    char port[16], timeout[16];
    snprintf(port, sizeof(port), "%d", port_number);
    snprintf(timeout, sizeof(timeout), "%d", timeout_s > 0 ? timeout_s : pg->connect_timeout);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", "gssencmode",
                          "connect_timeout", "application_name", "client_encoding", NULL};
    const char *vals[] = {host, port, user, password && password[0] ? password : NULL, dbname, pg->sslmode,
                          "disable", timeout, "trove-agent", "UTF8", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    char msg[512];
    one_line(c ? PQerrorMessage(c) : "out of memory", msg, sizeof(msg));
    pg->h->fail(call, TROVE_EUNAVAIL, "cannot connect to PostgreSQL at %s:%d as \"%s\": %s", host, port_number,
                user, msg);
    PQfinish(c);
    return NULL;
}

PGconn *pg_connect(struct pg *pg, struct trove_call *call, const char *dbname)
{
    return pg_connect_to(pg, call, pg->host, pg->port, pg->user, pg->password, dbname ? dbname : pg->database, 0);
}

PGresult *pg_query(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n,
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
    pg->h->fail(call, status, "PostgreSQL: %s%s%s%s", msg, state ? " (SQLSTATE " : "", state ? state : "",
                state ? ")" : "");
    PQclear(r);
    return NULL;
}

int pg_run(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = pg_query(pg, call, c, sql, n, params);
    if (!r)
        return PQstatus(c) == CONNECTION_OK ? TROVE_EDATASTORE : TROVE_EUNAVAIL;
    PQclear(r);
    return TROVE_OK;
}

int pg_query_bool(struct pg *pg, struct trove_call *call, PGconn *c, const char *sql, int n,
                  const char *const *params, bool *out)
{
    PGresult *r = pg_query(pg, call, c, sql, n, params);
    if (!r)
        return PQstatus(c) == CONNECTION_OK ? TROVE_EDATASTORE : TROVE_EUNAVAIL;
    *out = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return TROVE_OK;
}

char *pg_ident(struct pg *pg, struct trove_call *call, PGconn *c, const char *name)
{
    char *q = PQescapeIdentifier(c, name, strlen(name));
    if (!q) {
        char msg[256];
        one_line(PQerrorMessage(c), msg, sizeof(msg));
        pg->h->fail(call, TROVE_EINVAL, "cannot quote the name: %s", msg);
    }
    return q;
}

char *pg_literal(struct pg *pg, struct trove_call *call, PGconn *c, const char *value)
{
    char *q = PQescapeLiteral(c, value, strlen(value));
    if (!q) {
        char msg[256];
        one_line(PQerrorMessage(c), msg, sizeof(msg));
        pg->h->fail(call, TROVE_EINVAL, "cannot quote the value: %s", msg);
    }
    return q;
}

/* Only "%s" is expanded: the pieces are quoted identifiers and literals. */
char *pg_sql(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

uint64_t pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pg_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void pg_env_init(struct pg *pg, struct pg_env *env, const char *password)
{
    memset(env, 0, sizeof(*env));
    size_t n = 0;
    snprintf(env->sslmode, sizeof(env->sslmode), "PGSSLMODE=%s", pg->sslmode);
    env->list[n++] = env->sslmode;
    env->list[n++] = "PGGSSENCMODE=disable";
    env->list[n++] = "PGAPPNAME=trove-agent";
    if (password && password[0]) {
        snprintf(env->password, sizeof(env->password), "PGPASSWORD=%s", password);
        env->list[n++] = env->password;
    }
    env->list[n] = NULL;
}

void pg_env_clear(struct pg_env *env)
{
    explicit_bzero(env->password, sizeof(env->password));
}

void pg_conn_args_init(struct pg *pg, struct pg_conn_args *a)
{
    snprintf(a->port, sizeof(a->port), "%d", pg->port);
    const char *argv[] = {"-h", pg->host, "-p", a->port, "-U", pg->user, "-w", NULL};
    memcpy(a->argv, argv, sizeof(argv));
}
