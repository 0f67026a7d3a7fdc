/*
 * conn.c - connections to mongod through libmongoc: one client per call
 * (never shared between the agent's threads), credentials set with the
 * mongoc_uri_set_* calls (never pasted into a URI string, so no escaping
 * rule can be got wrong), directConnection to the one member addressed,
 * and short timeouts for the status connection, which is the only one kept
 * between calls (pre-authenticated, so status answers while an fsync lock
 * holds new logins back). Server errors become trove statuses here.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mongodb.h"

#define SOCKET_TIMEOUT_MS 300000   /* commands that wait (stepDown, awaitData) stay well inside it */
#define APP_NAME "trove-mongodb-plugin"

static pthread_once_t prefs_once = PTHREAD_ONCE_INIT;
static mongoc_read_prefs_t *any_member_prefs;

static void prefs_init(void)
{
    any_member_prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY_PREFERRED);
}

const mongoc_read_prefs_t *mg_any_member(void)
{
    pthread_once(&prefs_once, prefs_init);
    return any_member_prefs;
}

int mg_server_code(const bson_error_t *error)
{
    if (error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_QUERY ||
        error->domain == MONGOC_ERROR_WRITE_CONCERN)
        return (int)error->code;
    return 0;
}

static int status_of_server_code(int code)
{
    switch (code) {
    case 2: case 9: case 14: case 31: case 73: case 40414:
        return TROVE_EINVAL;
    case 11: case 26: case 27:
        return TROVE_ENOTFOUND;
    case 48: case 11000: case 51003:
        return TROVE_EEXIST;
    case 10107: case 13435: case 13436: case 189: case 262: case 94: case 95: case 20: case 76: case 125:
    case 103: case 74: case 93:
        return TROVE_ECONFLICT;
    case 50: case 64: case 89:
        return TROVE_ETIMEOUT;
    case 6: case 7: case 91: case 11600: case 11602:
        return TROVE_EUNAVAIL;
    case 59: case 115: case 238:
        return TROVE_ENOTSUP;
    default:
        return TROVE_EDATASTORE;
    }
}

int mg_status_of(const bson_error_t *error)
{
    switch (error->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_STREAM:
        return TROVE_EUNAVAIL;
    case MONGOC_ERROR_CLIENT:
        return error->code == MONGOC_ERROR_CLIENT_AUTHENTICATE ? TROVE_EUNAVAIL : TROVE_EDATASTORE;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_QUERY:
    case MONGOC_ERROR_WRITE_CONCERN:
        return status_of_server_code((int)error->code);
    default:
        return TROVE_EDATASTORE;
    }
}

int mg_fail_error(struct mg_ctx *ctx, struct trove_call *call, const bson_error_t *error, const char *what)
{
    int code = mg_server_code(error);
    if (code)
        return ctx->host->fail(call, mg_status_of(error), "%s: %s (code %d)", what, error->message, code);
    return ctx->host->fail(call, mg_status_of(error), "%s: %s", what, error->message);
}

/* A client for t with the given socket timeout; NULL with *error filled. */
static mongoc_client_t *client_new(struct mg_ctx *ctx, const struct mg_target *t, int32_t socket_timeout_ms,
                                   bson_error_t *error)
{
    const char *host = t->host ? t->host : "127.0.0.1";
    int port = t->port ? t->port : (int)ctx->s.port;
    int32_t timeout = (int32_t)(t->timeout_ms ? t->timeout_ms : (uint32_t)ctx->s.connect_timeout_ms);
    mongoc_uri_t *uri = mongoc_uri_new_for_host_port(host, (uint16_t)port);
    if (!uri) {
        bson_set_error(error, MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG, "\"%s\" is not a valid host",
                       host);
        return NULL;
    }
    mongoc_uri_set_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, true);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, socket_timeout_ms);
    mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_APPNAME, APP_NAME);
    const char *user = NULL, *password = NULL, *source = "admin";
    if (t->login == MG_LOGIN_ADMIN)
        user = ctx->s.admin_user, password = ctx->s.admin_password;
    else if (t->login == MG_LOGIN_USER)
        user = t->user, password = t->password;
    else if (t->login == MG_LOGIN_SYSTEM)
        user = "__system", password = t->password, source = "local";
    /* Users are SCRAM-SHA-256; for __system the driver negotiates what the
     * server offers (saslSupportedMechs), as members do between them. */
    if (user && (!mongoc_uri_set_username(uri, user) || !mongoc_uri_set_password(uri, password ? password : "") ||
                 !mongoc_uri_set_auth_source(uri, source) ||
                 (t->login != MG_LOGIN_SYSTEM && !mongoc_uri_set_auth_mechanism(uri, "SCRAM-SHA-256")))) {
        mongoc_uri_destroy(uri);
        bson_set_error(error, MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
                       "the user name or password is not valid UTF-8");
        return NULL;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, error);
    mongoc_uri_destroy(uri);   /* it wipes the password it held */
    if (client)
        mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

bool mg_cmd_raw(mongoc_client_t *c, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error)
{
    return mongoc_client_command_simple(c, db, cmd, mg_any_member(), reply, error);
}

int mg_cmd(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *db, const bson_t *cmd,
           bson_t *reply, const char *what)
{
    bson_error_t error;
    if (mg_cmd_raw(c, db, cmd, reply, &error))
        return TROVE_OK;
    return mg_fail_error(ctx, call, &error, what);
}

int mg_client_open(struct mg_ctx *ctx, struct trove_call *call, const struct mg_target *t, mongoc_client_t **out)
{
    bson_error_t error;
    const char *host = t->host ? t->host : "127.0.0.1";
    int port = t->port ? t->port : (int)ctx->s.port;
    *out = client_new(ctx, t, SOCKET_TIMEOUT_MS, &error);
    if (!*out)
        return ctx->host->fail(call, TROVE_EINVAL, "cannot connect to %s:%d: %s", host, port, error.message);
    /* Connect and log in now, so a refusal is reported as such. */
    bson_t ping = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&ping, "ping", 1);
    bool ok = mongoc_client_command_simple(*out, "admin", &ping, mg_any_member(), &reply, &error);
    bson_destroy(&ping);
    bson_destroy(&reply);
    if (ok)
        return TROVE_OK;
    mongoc_client_destroy(*out);
    *out = NULL;
    if (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
        return ctx->host->fail(call, TROVE_EUNAVAIL, "mongod at %s:%d refused the login of %s: %s", host, port,
                               t->login == MG_LOGIN_ADMIN ? ctx->s.admin_user
                               : t->login == MG_LOGIN_SYSTEM ? "__system (the keyFile)" : "the given user",
                               error.message);
    return ctx->host->fail(call, TROVE_EUNAVAIL, "cannot reach mongod at %s:%d: %s", host, port, error.message);
}

int mg_admin_open(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t **out)
{
    struct mg_target t = {.login = MG_LOGIN_ADMIN};
    return mg_client_open(ctx, call, &t, out);
}

/* ---- the status connection ------------------------------------------- */

/* Run `name` on the status client into out (initialised: replaced on success). */
static bool status_command(struct mg_ctx *ctx, const char *name, bson_t *out, bson_error_t *error)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, name, 1);
    bool ok = mongoc_client_command_simple(ctx->status_client, "admin", &cmd, mg_any_member(), &reply, error);
    bson_destroy(&cmd);
    if (ok && out) {
        bson_destroy(out);
        bson_copy_to(&reply, out);
    }
    bson_destroy(&reply);
    return ok;
}

static bool status_connect(struct mg_ctx *ctx)
{
    if (ctx->status_client)
        return true;
    bson_error_t error;
    struct mg_target t = {.login = MG_LOGIN_ADMIN, .timeout_ms = (uint32_t)ctx->s.status_timeout_ms};
    ctx->status_client = client_new(ctx, &t, (int32_t)ctx->s.status_timeout_ms, &error);
    return ctx->status_client != NULL;
}

static void status_drop(struct mg_ctx *ctx)
{
    if (ctx->status_client)
        mongoc_client_destroy(ctx->status_client);
    ctx->status_client = NULL;
}

enum mg_reach mg_status_hello(struct mg_ctx *ctx, bson_t *hello, bson_t *rs_status)
{
    enum mg_reach reach = MG_REACH_DOWN;
    bson_error_t error;
    bson_init(hello);
    bson_init(rs_status);
    pthread_mutex_lock(&ctx->status_lock);
    uint64_t started = tps_now_ms();
    /* A kept connection that died with a restart fails at once: then one
     * fresh try. A server that does not answer costs one timeout, no more. */
    for (int attempt = 0; attempt < 2 && reach == MG_REACH_DOWN; attempt++) {
        if (attempt && tps_now_ms() - started >= (uint64_t)ctx->s.status_timeout_ms / 2)
            break;
        if (!status_connect(ctx))
            break;
        if (!status_command(ctx, "hello", hello, &error)) {
            status_drop(ctx);
            if (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
                reach = MG_REACH_REFUSED;
            continue;
        }
        reach = MG_REACH_OK;
        if (mg_bson_str(hello, "setName"))
            status_command(ctx, "replSetGetStatus", rs_status, &error);
    }
    pthread_mutex_unlock(&ctx->status_lock);
    return reach;
}

void mg_status_warm(struct mg_ctx *ctx)
{
    bson_error_t error;
    pthread_mutex_lock(&ctx->status_lock);
    /* Only a process that reports status keeps the connection (the agent's
     * daemon does from its first heartbeat; `trove-agent call` does not). */
    if (ctx->status_client && !status_command(ctx, "ping", NULL, &error)) {
        status_drop(ctx);
        if (status_connect(ctx) && !status_command(ctx, "ping", NULL, &error))
            status_drop(ctx);
    }
    pthread_mutex_unlock(&ctx->status_lock);
}

void mg_status_reset(struct mg_ctx *ctx)
{
    pthread_mutex_lock(&ctx->status_lock);
    status_drop(ctx);
    pthread_mutex_unlock(&ctx->status_lock);
}

/* ---- BSON helpers ----------------------------------------------------- */

static bool find(const bson_t *doc, const char *path, bson_iter_t *out)
{
    bson_iter_t it;
    return doc && bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, out);
}

const char *mg_bson_str(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    return find(doc, path, &it) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

int64_t mg_bson_int(const bson_t *doc, const char *path, int64_t fallback)
{
    bson_iter_t it;
    if (!find(doc, path, &it))
        return fallback;
    if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_DOUBLE(&it) ||
        BSON_ITER_HOLDS_BOOL(&it))
        return bson_iter_as_int64(&it);
    return fallback;
}

bool mg_bson_bool(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    return find(doc, path, &it) && bson_iter_as_bool(&it);
}
