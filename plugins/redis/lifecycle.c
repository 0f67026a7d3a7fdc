/*
 * lifecycle.c - the redis-server process: prepare (write the plugin-owned
 * config file, restore, start, users, root), start (redis-server <config>
 * --daemonize yes --pidfile <pid_file>), stop (SHUTDOWN SAVE|NOSAVE, then
 * SIGTERM as a fallback), restart and status. "<config_file>.stopped" marks a
 * server stopped on purpose, so a server that vanished otherwise is CRASHED.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "redis_plugin.h"

int rd_require_managed(struct rd_ctx *ctx, struct trove_call *call, const char *what)
{
    if (!ctx->config_file || !ctx->dir)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "%s needs the config_file setting (the plugin controls the server "
                       "through the config file it owns)", what);
    return TROVE_OK;
}

static pid_t read_pid(struct rd_ctx *ctx)
{
    char *text = ctx->pid_file ? rd_read_file(ctx->pid_file, 64) : NULL;
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid > 1 ? (pid_t)pid : 0;
}

/* Alive and not a zombie (a daemon's parent may never reap it here). */
static bool pid_alive(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return false;
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

static char *marker_path(struct rd_ctx *ctx)
{
    return rd_path_with_suffix(ctx->config_file, ".stopped");
}

static void set_marker(struct rd_ctx *ctx, bool stopped)
{
    char *p = marker_path(ctx);
    if (p && stopped)
        rd_write_file(p, "stopped on purpose\n", 19, 0600);
    else if (p)
        unlink(p);
    free(p);
}

/* The last line of the server log, for a failed start. */
static void log_tail(struct rd_ctx *ctx, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = ctx->log_file ? fopen(ctx->log_file, "re") : NULL;
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f))
        if (line[0] != '\n')
            snprintf(buf, len, "%s", line);
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* 1 ready, 0 not yet (down or loading), <0 a failure that waiting won't fix. */
static int probe_ready(struct rd_ctx *ctx, struct trove_call *call)
{
    struct rd_conn conn = {0};
    int rc = rd_connect_timeout(ctx, call, &conn, 500, false);
    if (rc == TROVE_EUNAVAIL)
        return 0;
    if (rc != TROVE_OK)
        return -1;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = redisCommandArgv(conn.c, 1, argv, lens);
    int ready = r && r->type == REDIS_REPLY_STATUS ? 1 : 0;   /* -LOADING: not yet */
    freeReplyObject(r);
    rd_disconnect(&conn);
    return ready;
}

static int wait_ready(struct rd_ctx *ctx, struct trove_call *call)
{
    int64_t deadline = rd_now_ms() + (int64_t)ctx->start_timeout_s * 1000;
    int64_t started = rd_now_ms();
    char tail[512];
    for (;;) {
        int ready = probe_ready(ctx, call);
        if (ready < 0)
            return TROVE_EDATASTORE;   /* message set by the connection */
        if (ready > 0)
            return TROVE_OK;
        if (ctx->h->cancelled(call))
            return RD_FAIL(ctx, call, TROVE_ECANCELLED, "cancelled while waiting for redis-server to start");
        if (rd_now_ms() - started > 1000 && !pid_alive(read_pid(ctx))) {
            log_tail(ctx, tail, sizeof(tail));
            return RD_FAIL(ctx, call, TROVE_EDATASTORE, "redis-server exited during start%s%s", tail[0] ? ": " : "",
                           tail);
        }
        if (rd_now_ms() > deadline)
            return RD_FAIL(ctx, call, TROVE_ETIMEOUT, "redis-server not ready after %d s", ctx->start_timeout_s);
        ctx->h->progress(call, -1, "waiting for redis-server to accept commands");
        rd_msleep(100);
    }
}

int rd_server_start(struct rd_ctx *ctx, struct trove_call *call, const char *const *extra_args)
{
    int rc = rd_require_managed(ctx, call, "start");
    if (rc != TROVE_OK)
        return rc;
    if (probe_ready(ctx, call) > 0 && !extra_args)
        return set_marker(ctx, false), TROVE_OK;
    if (!rd_file_exists(ctx->config_file))
        return RD_FAIL(ctx, call, TROVE_ECONFLICT, "%s does not exist: the instance was never prepared",
                       ctx->config_file);
    const char *argv[24] = {ctx->server_bin, ctx->config_file, "--daemonize", "yes", "--pidfile", ctx->pid_file};
    int argc = 6;
    for (int i = 0; extra_args && extra_args[i] && argc < 23; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .run_as = ctx->run_as, .timeout_ms = 60000};
    set_marker(ctx, false);
    if ((rc = ctx->h->exec(call, &cmd)) != TROVE_OK)
        return rc;
    if ((rc = wait_ready(ctx, call)) == TROVE_OK)
        rd_config_pending_clear(ctx);
    return rc;
}

static int wait_gone(struct rd_ctx *ctx, struct trove_call *call, pid_t pid)
{
    int64_t deadline = rd_now_ms() + (int64_t)ctx->stop_timeout_s * 1000;
    while (pid_alive(pid) || (pid <= 0 && probe_ready(ctx, call) > 0)) {
        if (rd_now_ms() > deadline)
            return RD_FAIL(ctx, call, TROVE_ETIMEOUT, "redis-server still running %d s after shutdown",
                           ctx->stop_timeout_s);
        rd_msleep(20);
    }
    return TROVE_OK;
}

/* SHUTDOWN answers nothing when it works: the connection just closes. */
static int shutdown_server(struct rd_conn *conn, enum rd_shutdown mode)
{
    const char *argv[2] = {"SHUTDOWN", mode == RD_SHUTDOWN_SAVE ? "SAVE" : "NOSAVE"};
    size_t lens[2] = {8, strlen(argv[1])};
    redisReply *r = redisCommandArgv(conn->c, mode == RD_SHUTDOWN_DEFAULT ? 1 : 2, argv, lens);
    if (!r)
        return TROVE_OK;
    int rc = r->type == REDIS_REPLY_ERROR ? RD_FAIL(conn->ctx, conn->call, TROVE_EDATASTORE,
                                                    "redis refused SHUTDOWN: %s", r->str)
                                          : TROVE_OK;
    freeReplyObject(r);
    return rc;
}

int rd_server_stop(struct rd_ctx *ctx, struct trove_call *call, enum rd_shutdown mode)
{
    struct rd_conn conn = {0};
    pid_t pid = read_pid(ctx);
    int rc = rd_connect_timeout(ctx, call, &conn, ctx->connect_timeout_ms, false);
    if (rc == TROVE_OK) {
        /* Refused while a first AOF is being written or a save fails: retry
         * until stop_timeout, then report the server's reason. */
        int64_t deadline = rd_now_ms() + (int64_t)ctx->stop_timeout_s * 1000;
        while ((rc = shutdown_server(&conn, mode)) == TROVE_EDATASTORE && rd_now_ms() < deadline &&
               !ctx->h->cancelled(call))
            rd_msleep(200);
        rd_disconnect(&conn);
        if (rc != TROVE_OK)
            return rc;
    } else if (pid_alive(pid)) {
        ctx->h->log(TROVE_LOG_WARN, "redis: cannot talk to redis-server (pid %d), sending SIGTERM", (int)pid);
        kill(pid, SIGTERM);
    }
    if ((rc = wait_gone(ctx, call, pid)) == TROVE_OK)
        set_marker(ctx, true);
    return rc;
}

int rd_start(void *self, struct trove_call *call)
{
    return rd_server_start(self, call, NULL);
}

int rd_stop(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int rc = rd_require_managed(ctx, call, "stop");
    return rc == TROVE_OK ? rd_server_stop(ctx, call, ctx->shutdown) : rc;
}

int rd_restart(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int rc = rd_require_managed(ctx, call, "restart");
    if (rc == TROVE_OK)
        rc = rd_server_stop(ctx, call, ctx->shutdown);
    return rc == TROVE_OK ? rd_server_start(ctx, call, NULL) : rc;
}

/* ------------------------------------------------------------ status */

static void health_from_info(const char *info, struct trove_health *out)
{
    char v[128], id[64], off[32];
    out->state = rd_info_lookup(info, "loading", v, sizeof(v)) && strcmp(v, "1") == 0 ? TROVE_DB_STARTING
                                                                                       : TROVE_DB_RUNNING;
    if (out->state == TROVE_DB_STARTING)
        snprintf(out->message, sizeof(out->message), "loading the dataset");
    if (rd_info_lookup(info, "role", v, sizeof(v)) && strcmp(v, "slave") == 0)
        out->role = TROVE_ROLE_REPLICA;
    else if (rd_info_lookup(info, "connected_slaves", v, sizeof(v)))
        out->role = strtol(v, NULL, 10) > 0 ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
    if (rd_info_lookup(info, "master_replid", id, sizeof(id)) &&
        rd_info_lookup(info, "master_repl_offset", off, sizeof(off)))
        snprintf(out->position, sizeof(out->position), "%s:%s", id, off);
}

static void status_down(struct rd_ctx *ctx, struct trove_health *out, const char *why)
{
    char *marker = ctx->config_file ? marker_path(ctx) : NULL;
    if (ctx->config_file && !rd_file_exists(ctx->config_file))
        out->state = TROVE_DB_NEW, snprintf(out->message, sizeof(out->message), "not prepared yet");
    else if (marker && rd_file_exists(marker))
        out->state = TROVE_DB_STOPPED, snprintf(out->message, sizeof(out->message), "stopped");
    else
        out->state = TROVE_DB_CRASHED, snprintf(out->message, sizeof(out->message), "redis-server is down: %s", why);
    free(marker);
}

int rd_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    out->term = 0;   /* Redis has no term or epoch outside cluster mode */
    int timeout = ctx->connect_timeout_ms < 1000 ? ctx->connect_timeout_ms : 1000;
    int rc = rd_connect_timeout(ctx, call, &conn, timeout, false);
    if (rc == TROVE_EUNAVAIL) {
        status_down(ctx, out, "not reachable");
        return TROVE_OK;
    }
    if (rc != TROVE_OK) {
        out->state = TROVE_DB_UNKNOWN;
        snprintf(out->message, sizeof(out->message), "running, but the agent cannot log in");
        return TROVE_OK;
    }
    struct timeval quick = {.tv_sec = 2};   /* the heartbeat must not wait on a busy server */
    redisSetTimeout(conn.c, quick);
    const char *argv[] = {"INFO", "replication", "persistence"};
    size_t lens[] = {4, 11, 11};
    r = redisCommandArgv(conn.c, 3, argv, lens);
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        health_from_info(r->str, out);
    else
        out->state = TROVE_DB_UNKNOWN, snprintf(out->message, sizeof(out->message), "INFO failed: %s",
                                                r && r->str ? r->str : conn.c->errstr);
    freeReplyObject(r);
    rd_disconnect(&conn);
    return TROVE_OK;
}

/* ------------------------------------------------------------ prepare */

static int admin_lines(struct rd_ctx *ctx, struct trove_call *call, char *out, size_t len)
{
    char hash[65];
    if (!ctx->password || !rd_valid_password(ctx->password))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "prepare needs the admin password (setting \"password\", 1-512 "
                       "characters without control characters)");
    if (rd_sha256_hex(ctx->password, hash) != 0)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "SHA-256 failed");
    if (strcmp(ctx->user, "default") == 0)
        snprintf(out, len, "user default on #%s ~* &* +@all\n", hash);
    else
        snprintf(out, len, "user default off resetpass -@all\nuser %s on #%s ~* &* +@all\n", ctx->user, hash);
    return TROVE_OK;
}

static int write_base_config(struct rd_ctx *ctx, struct trove_call *call)
{
    char users[512], text[16384];
    int rc = admin_lines(ctx, call, users, sizeof(users));
    if (rc != TROVE_OK)
        return rc;
    char *bind = rd_config_quote(ctx->bind), *dir = rd_config_quote(ctx->dir),
         *db = rd_config_quote(ctx->dbfilename), *pid = rd_config_quote(ctx->pid_file),
         *log = rd_config_quote(ctx->log_file), *sock = ctx->socket ? rd_config_quote(ctx->socket) : NULL;
    if (!bind || !dir || !db || !pid || !log || (ctx->socket && !sock))
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    int n = rc ? 0 : snprintf(text, sizeof(text),
                     "# Written by the trove-agent redis plugin, which owns this file; CONFIG REWRITE keeps it.\n"
                     "bind %s\nport %d\n%s%s%sdir %s\ndbfilename %s\npidfile %s\nlogfile %s\ndaemonize yes\n%s",
                     bind, ctx->port, sock ? "unixsocket " : "", sock ? sock : "", sock ? "\nunixsocketperm 700\n" : "",
                     dir, db, pid, log, users);
    if (rc == TROVE_OK && (n <= 0 || (size_t)n >= sizeof(text)))
        rc = RD_FAIL(ctx, call, TROVE_EINVAL, "settings too long for the config file");
    if (rc == TROVE_OK && rd_write_file(ctx->config_file, text, (size_t)n, 0600) != 0)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot write %s: %s", ctx->config_file, strerror(errno));
    memset(text, 0, sizeof(text));
    free(bind), free(dir), free(db), free(pid), free(log), free(sock);
    return rc;
}

static int check_prepare(struct rd_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = rd_require_managed(ctx, call, "prepare");
    if (rc != TROVE_OK)
        return rc;
    for (size_t i = 0; i < req->n_databases; i++) {
        const char *name = req->databases[i].name ? req->databases[i].name : "";
        if (!*name || strspn(name, "0123456789") != strlen(name) || strlen(name) > 9)
            return RD_FAIL(ctx, call, TROVE_EINVAL, "Redis databases are numbered (0, 1, ...) and cannot be "
                           "created by name");
    }
    if (probe_ready(ctx, call) > 0)
        return RD_FAIL(ctx, call, TROVE_ECONFLICT, "redis-server is already running: prepare is for a new instance");
    if (mkdir(ctx->dir, 0700) != 0 && errno != EEXIST)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot create %s: %s", ctx->dir, strerror(errno));
    return TROVE_OK;
}

int rd_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct rd_ctx *ctx = self;
    int rc = check_prepare(ctx, call, req);
    if (rc == TROVE_OK)
        rc = write_base_config(ctx, call);
    if (rc == TROVE_OK)
        rc = rd_config_write_overrides(ctx, call, req->overrides, req->n_overrides);
    if (rc == TROVE_OK && req->restore) {
        ctx->h->progress(call, 10, "restoring the backup");
        rc = rd_restore_install(ctx, call, req->restore);   /* starts the server */
    } else if (rc == TROVE_OK) {
        ctx->h->progress(call, 50, "starting redis-server");
        rc = rd_server_start(ctx, call, NULL);
    }
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = rd_user_create(ctx, call, &req->users[i]);
    if (rc == TROVE_OK && req->root_password)
        rc = rd_root_enable(ctx, call, req->root_password);
    if (rc == TROVE_OK)
        ctx->h->progress(call, 100, "prepared");
    return rc;
}
