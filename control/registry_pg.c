/*
 * registry_pg.c - the registry on a PostgreSQL database reached by a libpq
 * connection string. Statements go through PQexecParams with text
 * parameters; a dropped connection is re-established before the next
 * statement outside a transaction. Never echoes the connection string.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_backend.h"
#include "status.h"

#define PG_MAX_PARAMS 64

/* The first line of a libpq message, without the "ERROR:  " prefix. */
static void first_line(char *err, size_t errlen, const char *prefix, const char *msg)
{
    if (!msg || !*msg)
        msg = "unknown error";
    size_t len = strcspn(msg, "\n");
    err_set(err, errlen, "%s%.*s", prefix, (int)len, msg);
}

static int status_of_sqlstate(const char *state)
{
    if (!state)
        return TROVE_EUNAVAIL;              /* no server answer: the connection failed */
    if (strcmp(state, "23505") == 0)
        return TROVE_EEXIST;                /* unique_violation */
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return TROVE_EINVAL;                /* integrity / data exceptions */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return TROVE_EUNAVAIL;              /* connection, shutdown, resources, serialization, lock */
    return TROVE_EINTERNAL;
}

/* Reconnect a broken connection when no transaction would be lost. */
static void revive(struct registry *r)
{
    PGconn *conn = r->conn;
    if (PQstatus(conn) == CONNECTION_BAD && !r->user_tx && PQtransactionStatus(conn) != PQTRANS_INTRANS)
        PQreset(conn);
}

static int deliver_rows(PGresult *res, registry_row_fn fn, void *user)
{
    int ncols = PQnfields(res), nrows = PQntuples(res);
    const char *names[PG_MAX_PARAMS], *values[PG_MAX_PARAMS];
    if (ncols > PG_MAX_PARAMS)
        return TROVE_EINTERNAL;
    for (int c = 0; c < ncols; c++)
        names[c] = PQfname(res, c);
    for (int row = 0; row < nrows; row++) {
        for (int c = 0; c < ncols; c++)
            values[c] = PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
        int status = fn(user, ncols, names, values);
        if (status != TROVE_OK)
            return status;
    }
    return TROVE_OK;
}

static int pg_exec(struct registry *r, const char *sql, const struct registry_param *params, int nparams,
                   registry_row_fn fn, void *user, int64_t *changes, char *err, size_t errlen)
{
    const char *values[PG_MAX_PARAMS];
    char ints[PG_MAX_PARAMS][24];
    if (nparams > PG_MAX_PARAMS) {
        err_set(err, errlen, "too many parameters");
        return TROVE_EINTERNAL;
    }
    for (int i = 0; i < nparams; i++) {
        if (params[i].type == REG_INT) {
            snprintf(ints[i], sizeof ints[i], "%" PRId64, params[i].i);
            values[i] = ints[i];
        } else {
            values[i] = params[i].type == REG_TEXT ? params[i].text : NULL;
        }
    }
    revive(r);
    PGresult *res = PQexecParams(r->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int status = TROVE_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        status = status_of_sqlstate(state);
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        first_line(err, errlen, state ? "" : "PostgreSQL connection: ", msg ? msg : PQerrorMessage(r->conn));
    } else if (st == PGRES_TUPLES_OK && fn) {
        status = deliver_rows(res, fn, user);   /* the row function said why */
    } else if (changes) {
        const char *n = PQcmdTuples(res);
        *changes = *n ? strtoll(n, NULL, 10) : 0;
    }
    PQclear(res);
    return status;
}

static void pg_close(struct registry *r)
{
    PQfinish(r->conn);
    r->conn = NULL;
}

static const struct registry_ops pg_ops = {
    .name = "postgresql",
    .collate = " COLLATE \"C\"",
    .begin_sql = "BEGIN",
    .snapshot_sql = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    .schema_lock_sql = "LOCK TABLE schema_version IN SHARE ROW EXCLUSIVE MODE",
    .exec = pg_exec,
    .close = pg_close,
};

/* NOTICEs ("relation already exists, skipping") are not ours to print. */
static void quiet(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res;
}

int registry_pg_connect(struct registry *r, const char *conninfo, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (!conn) {
        err_set(err, errlen, "out of memory connecting to PostgreSQL");
        return -1;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        first_line(err, errlen, "cannot connect to PostgreSQL: ", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeReceiver(conn, quiet, NULL);
    r->ops = &pg_ops;
    r->conn = conn;
    /* Timestamps are integers and text is compared with COLLATE "C", so the
     * session needs nothing else; keep NOTICEs off the server log too. */
    if (registry_exec(r, "SET client_min_messages TO warning", NULL, 0, NULL, NULL, NULL, err, errlen) != TROVE_OK) {
        PQfinish(conn);
        r->conn = NULL;
        return -1;
    }
    return 0;
}
