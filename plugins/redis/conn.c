/*
 * conn.c - connections to the Redis server and the command helpers. Every
 * command goes out in hiredis's argv form with explicit lengths; nothing is
 * ever formatted into a command string. Failure messages name the command,
 * never its arguments (they may be passwords).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "redis_plugin.h"

#define RD_MAX_ARGS 64

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static const char *where(struct rd_ctx *ctx, char *buf, size_t len)
{
    if (ctx->s.socket)
        snprintf(buf, len, "unix:%s", ctx->s.socket);
    else
        snprintf(buf, len, "%s:%d", ctx->s.host, (int)ctx->s.port);
    return buf;
}

static int authenticate(struct rd_conn *conn)
{
    struct rd_ctx *ctx = conn->ctx;
    if (!ctx->s.password)
        return TROVE_OK;
    const char *argv[] = {"AUTH", ctx->s.user, ctx->s.password};
    size_t lens[] = {4, strlen(ctx->s.user), strlen(ctx->s.password)};
    redisReply *r = redisCommandArgv(conn->c, 3, argv, lens);
    if (!r)
        return RD_FAIL(ctx, conn->call, TROVE_EUNAVAIL, "redis connection lost during AUTH: %s", conn->c->errstr);
    int rc = TROVE_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = RD_FAIL(ctx, conn->call, TROVE_EDATASTORE, "authentication as ACL user \"%s\" failed: %s", ctx->s.user,
                     r->str);
    freeReplyObject(r);
    return rc;
}

int rd_conn_open_timeout(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn, int timeout_ms, bool report)
{
    char w[512];
    conn->ctx = ctx;
    conn->call = call;
    struct timeval tv = ms_to_tv(timeout_ms);
    conn->c = ctx->s.socket ? redisConnectUnixWithTimeout(ctx->s.socket, tv)
                          : redisConnectWithTimeout(ctx->s.host, (int)ctx->s.port, tv);
    if (!conn->c || conn->c->err) {
        int rc = report ? RD_FAIL(ctx, call, TROVE_EUNAVAIL, "cannot connect to redis at %s: %s",
                                  where(ctx, w, sizeof(w)), conn->c ? conn->c->errstr : "out of memory")
                        : TROVE_EUNAVAIL;
        rd_conn_close(conn);
        return rc;
    }
    redisSetTimeout(conn->c, ms_to_tv((int)ctx->s.command_timeout_ms));
    int rc = authenticate(conn);
    if (rc != TROVE_OK)
        rd_conn_close(conn);
    return rc;
}

int rd_conn_open(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn)
{
    return rd_conn_open_timeout(ctx, call, conn, (int)ctx->s.connect_timeout_ms, true);
}

void rd_conn_close(struct rd_conn *conn)
{
    if (conn->c)
        redisFree(conn->c);
    conn->c = NULL;
}

int rd_conn_cmd_argv(struct rd_conn *conn, redisReply **out, int argc, const char *const *argv)
{
    size_t lens[RD_MAX_ARGS * 8];
    if (argc <= 0 || argc > (int)(sizeof(lens) / sizeof(lens[0])))
        return RD_FAIL(conn->ctx, conn->call, TROVE_EINTERNAL, "too many command arguments");
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (out)
        *out = NULL;
    redisReply *r = redisCommandArgv(conn->c, argc, (const char **)argv, lens);
    if (!r)
        return RD_FAIL(conn->ctx, conn->call, TROVE_EUNAVAIL, "redis connection failed during %s: %s", argv[0],
                       conn->c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        bool sub = argc > 1 && (strcmp(argv[0], "ACL") == 0 || strcmp(argv[0], "CONFIG") == 0 ||
                                strcmp(argv[0], "CLIENT") == 0);
        int rc = RD_FAIL(conn->ctx, conn->call, TROVE_EDATASTORE, "redis refused %s%s%s: %s", argv[0],
                         sub ? " " : "", sub ? argv[1] : "", r->str);
        freeReplyObject(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        freeReplyObject(r);
    return TROVE_OK;
}

static int collect(va_list ap, const char **argv, int max)
{
    int argc = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (argc == max)
            return -1;
        argv[argc++] = a;
    }
    return argc;
}

int rd_conn_cmd(struct rd_conn *conn, redisReply **out, ...)
{
    const char *argv[RD_MAX_ARGS];
    va_list ap;
    va_start(ap, out);
    int argc = collect(ap, argv, RD_MAX_ARGS);
    va_end(ap);
    if (argc <= 0)
        return RD_FAIL(conn->ctx, conn->call, TROVE_EINTERNAL, "bad command arguments");
    return rd_conn_cmd_argv(conn, out, argc, argv);
}

int rd_conn_cmd_ok(struct rd_conn *conn, ...)
{
    const char *argv[RD_MAX_ARGS];
    va_list ap;
    va_start(ap, conn);
    int argc = collect(ap, argv, RD_MAX_ARGS);
    va_end(ap);
    if (argc <= 0)
        return RD_FAIL(conn->ctx, conn->call, TROVE_EINTERNAL, "bad command arguments");
    return rd_conn_cmd_argv(conn, NULL, argc, argv);
}

int rd_info_get(struct rd_conn *conn, const char *section, const char *field, char *buf, size_t len)
{
    redisReply *r;
    int rc = rd_conn_cmd(conn, &r, "INFO", section, NULL);
    if (rc != TROVE_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        rc = RD_FAIL(conn->ctx, conn->call, TROVE_EDATASTORE, "INFO %s: unexpected reply", section);
    else if (!rd_info_find(r->str, field, buf, len))
        rc = RD_FAIL(conn->ctx, conn->call, TROVE_EDATASTORE, "INFO %s has no field %s", section, field);
    freeReplyObject(r);
    return rc;
}

int rd_config_get(struct rd_conn *conn, const char *name, char *buf, size_t len)
{
    redisReply *r;
    int rc = rd_conn_cmd(conn, &r, "CONFIG", "GET", name, NULL);
    if (rc != TROVE_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[1]->type != REDIS_REPLY_STRING)
        rc = RD_FAIL(conn->ctx, conn->call, TROVE_ENOTFOUND, "redis has no configuration parameter %s", name);
    else
        snprintf(buf, len, "%s", r->element[1]->str);
    freeReplyObject(r);
    return rc;
}

/* ACL changes are saved to the aclfile when the server has one, else into
 * the config file by CONFIG REWRITE (which then holds the users' lines). */
int rd_acl_save(struct rd_conn *conn)
{
    char aclfile[4096];
    int rc = rd_config_get(conn, "aclfile", aclfile, sizeof(aclfile));
    if (rc != TROVE_OK)
        return rc;
    if (aclfile[0])
        return rd_conn_cmd_ok(conn, "ACL", "SAVE", NULL);
    return rd_config_rewrite(conn);
}
