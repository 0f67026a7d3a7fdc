/*
 * conn.c - CQL connections for one call: log in (the admin role, or another
 * login for ring checks), run statements with bound values, and turn CQL
 * failures into the ABI's statuses with a message that names what failed.
 * A statement that carried a password is never logged, and the server's
 * answer to it is withheld from messages (a server may quote the statement).
 */
#include <stdio.h>
#include <string.h>

#include "cassandra.h"

int cs_status_of(enum cql_status status)
{
    switch (status) {
    case CQL_OK:
        return TROVE_OK;
    case CQL_ERR_ARG:
    case CQL_ERR_SYNTAX:
    case CQL_ERR_INVALID:
    case CQL_ERR_CONFIG:
        return TROVE_EINVAL;
    case CQL_ERR_NOMEM:
    case CQL_ERR_UNPREPARED:
        return TROVE_EINTERNAL;
    case CQL_ERR_CONNECT:
    case CQL_ERR_IO:
    case CQL_ERR_UNAVAILABLE:
    case CQL_ERR_OVERLOADED:
    case CQL_ERR_BOOTSTRAPPING:
        return TROVE_EUNAVAIL;
    case CQL_ERR_TIMEOUT:
    case CQL_ERR_WRITE_TIMEOUT:
    case CQL_ERR_READ_TIMEOUT:
        return TROVE_ETIMEOUT;
    case CQL_ERR_ALREADY_EXISTS:
        return TROVE_EEXIST;
    case CQL_ERR_DECODE:
    case CQL_ERR_AUTH_REQUIRED:
    case CQL_ERR_SERVER:
    case CQL_ERR_PROTOCOL:
    case CQL_ERR_AUTH:
    case CQL_ERR_TRUNCATE:
    case CQL_ERR_READ_FAILURE:
    case CQL_ERR_FUNCTION_FAILURE:
    case CQL_ERR_WRITE_FAILURE:
    case CQL_ERR_UNAUTHORIZED:
        return TROVE_EDATASTORE;
    }
    return TROVE_EDATASTORE;
}

int cs_fail_cql(struct cs_ctx *ctx, struct trove_call *call, const char *where, const struct cql_error *err,
                const char *what, bool secret)
{
    int status = cs_status_of(err->status);
    const char *name = cql_status_name(err->status);
    if (err->status == CQL_ERR_DECODE)
        return ctx->host->fail(call, status, "%s: Cassandra at %s sent a frame the client refuses: %s", what, where,
                               err->message);
    if (!cql_status_is_server(err->status))
        return ctx->host->fail(call, status, "%s: Cassandra at %s: %s (%s)", what, where, err->message, name);
    if (secret)
        return ctx->host->fail(call, status, "%s: the server refused it (%s, code 0x%04x; its message is withheld "
                                             "because the statement carried a password)", what, name,
                               (unsigned)err->code);
    return ctx->host->fail(call, status, "%s: %s (%s)", what, err->message, name);
}

enum cql_status cs_conn_open_as(struct cs_ctx *ctx, struct trove_call *call, const struct cs_login *login,
                                struct cs_conn *c, struct cql_error *err)
{
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->call = call;
    const char *host = login->host ? login->host : ctx->rpc_address;
    int port = login->port ? login->port : (int)ctx->s.native_port;
    snprintf(c->where, sizeof(c->where), "%.250s:%d", host, port);
    struct cql_conn_options o = {
        .host = host,
        .port = (uint16_t)port,
        .username = login->user,
        .password = login->password,
        .connect_timeout_ms = login->connect_timeout_ms ? login->connect_timeout_ms : (int)ctx->s.connect_timeout_ms,
        .request_timeout_ms = login->request_timeout_ms ? login->request_timeout_ms : (int)ctx->s.request_timeout_ms,
    };
    struct cql_error local;
    return cql_connect(&o, &c->cql, err ? err : &local);
}

int cs_conn_open(struct cs_ctx *ctx, struct trove_call *call, struct cs_conn *c)
{
    struct cs_login login = {.user = ctx->s.admin_user, .password = ctx->s.admin_password};
    struct cql_error err;
    if (cs_conn_open_as(ctx, call, &login, c, &err) == CQL_OK)
        return TROVE_OK;
    if (err.status == CQL_ERR_AUTH)
        return ctx->host->fail(call, TROVE_EDATASTORE, "Cassandra at %s refused the admin role \"%s\": %s", c->where,
                               ctx->s.admin_user, err.message);
    return cs_fail_cql(ctx, call, c->where, &err, "connecting", false);
}

void cs_conn_close(struct cs_conn *c)
{
    cql_close(c->cql);
    c->cql = NULL;
}

enum cql_status cs_query_raw(struct cs_conn *c, const char *cql, const struct cql_param *params, size_t n,
                             struct cql_result **out)
{
    struct cql_query_opts opts = {.consistency = CQL_ONE};
    struct cql_result *res = NULL;
    enum cql_status st = cql_query(c->cql, cql, params, n, &opts, &res);
    if (out)
        *out = res;
    else
        cql_result_free(res);
    return st;
}

int cs_query(struct cs_conn *c, const char *what, const char *cql, const struct cql_param *params, size_t n,
             struct cql_result **out, bool secret)
{
    if (!cql)
        return c->ctx->host->fail(c->call, TROVE_EINTERNAL, "%s: out of memory building the statement", what);
    enum cql_status st = cs_query_raw(c, cql, params, n, out);
    if (st == CQL_OK)
        return TROVE_OK;
    return cs_fail_cql(c->ctx, c->call, c->where, cql_last_error(c->cql), what, secret);
}
