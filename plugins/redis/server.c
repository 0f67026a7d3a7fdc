/*
 * server.c - the redis-server process: prepare (write the plugin-owned
 * config file, restore, start, users, root), start and stop through the
 * support library's supervision (redis-server in the foreground, detached,
 * its output in the log file; SHUTDOWN first, signals only when it does not
 * end), restart, and status. A marker in the state directory says the server
 * was stopped on purpose, so a server that vanished otherwise is CRASHED.
 * Steps that start, stop or replace the server hold a lock there, because
 * another agent process may try the same at once.
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

#define KILL_GRACE_MS 5000   /* after SIGTERM, before SIGKILL; and after SIGKILL */

int rd_server_lock(struct rd_ctx *ctx, struct trove_call *call)
{
    char path[RD_PATH_MAX];
    int fd = tps_file_lock(rd_state_path(ctx, "server.lock", path, sizeof(path)), true);
    if (fd < 0)
        RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

static void mark_stopped(struct rd_ctx *ctx, bool stopped)
{
    char path[RD_PATH_MAX];
    rd_state_path(ctx, "stopped", path, sizeof(path));
    if (stopped)
        tps_file_write_atomic(path, "stopped on purpose\n", 19, 0600);
    else
        unlink(path);
}

/* The live server named in the pid file Redis writes. Its process name is
 * redis-server, or the binary's own name when redis_server names another. */
static pid_t server_pid(struct rd_ctx *ctx)
{
    if (!ctx->s.pid_file)
        return 0;
    pid_t pid = tps_proc_pid(ctx->s.pid_file, RD_SERVER_COMM);
    const char *base = strrchr(ctx->s.redis_server, '/');
    base = base ? base + 1 : ctx->s.redis_server;
    if (pid == 0 && strcmp(base, RD_SERVER_COMM) != 0)
        pid = tps_proc_pid(ctx->s.pid_file, base);
    return pid;
}

struct probe {
    struct rd_ctx *ctx;
    struct trove_call *call;
};

/* 1 ready, 0 not yet (down or loading), <0 a failure that waiting won't
 * fix (a refused login; fail() was called). */
static int probe_ready(void *arg)
{
    struct probe *p = arg;
    struct rd_conn conn = {0};
    int rc = rd_conn_open_timeout(p->ctx, p->call, &conn, 500, false);
    if (rc == TROVE_EUNAVAIL)
        return 0;
    if (rc != TROVE_OK)
        return -1;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = redisCommandArgv(conn.c, 1, argv, lens);
    int ready = r && r->type == REDIS_REPLY_STATUS ? 1 : 0;   /* -LOADING: not yet */
    freeReplyObject(r);
    rd_conn_close(&conn);
    return ready;
}

static bool answers(struct rd_ctx *ctx, struct trove_call *call)
{
    struct probe p = {ctx, call};
    return probe_ready(&p) > 0;
}

int rd_server_start(struct rd_ctx *ctx, struct trove_call *call, const char *const *extra_args)
{
    int rc = rd_require_managed(ctx, call, "start");
    if (rc != TROVE_OK)
        return rc;
    if (!extra_args && answers(ctx, call))
        return mark_stopped(ctx, false), TROVE_OK;
    if (access(ctx->s.config_file, F_OK) != 0)
        return RD_FAIL(ctx, call, TROVE_ECONFLICT, "%s does not exist: the instance was never prepared",
                       ctx->s.config_file);
    /* In the foreground: the support library detaches it and knows its pid
     * from the start; Redis still writes the pid file for later calls. */
    const char *argv[24] = {ctx->s.redis_server, ctx->s.config_file, "--daemonize", "no", "--pidfile",
                            ctx->s.pid_file};
    int argc = 6;
    for (int i = 0; extra_args && extra_args[i] && argc < 23; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    struct tps_proc spec = {.argv = argv, .run_as = ctx->s.run_as, .log_file = ctx->s.log_file,
                            .name = RD_SERVER_COMM};
    pid_t pid = 0;
    mark_stopped(ctx, false);
    if ((rc = tps_proc_start(ctx->host, call, &spec, &pid)) != TROVE_OK)
        return rc;
    struct probe p = {ctx, call};
    rc = tps_proc_wait_ready(ctx->host, call, pid, RD_SERVER_COMM, ctx->s.log_file,
                             (uint32_t)ctx->s.start_timeout * 1000, probe_ready, &p);
    if (rc == TROVE_OK)
        rd_config_pending_clear(ctx);
    return rc;
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

/* Ask the server to shut down. Refused while a first AOF is being written
 * or a save fails: retry until stop_timeout, then report the server's
 * reason (nothing is killed then: its data would be lost). TROVE_EUNAVAIL
 * when it cannot be reached. */
static int ask_shutdown(struct rd_ctx *ctx, struct trove_call *call, enum rd_shutdown mode)
{
    struct rd_conn conn = {0};
    int rc = rd_conn_open_timeout(ctx, call, &conn, (int)ctx->s.connect_timeout_ms, false);
    if (rc != TROVE_OK)
        return TROVE_EUNAVAIL;   /* down, or the agent cannot log in: signals decide */
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.stop_timeout * 1000;
    while ((rc = shutdown_server(&conn, mode)) == TROVE_EDATASTORE && tps_now_ms() < deadline &&
           !ctx->host->cancelled(call))
        tps_sleep_ms(200);
    rd_conn_close(&conn);
    return rc;
}

/* After SHUTDOWN: the process gets stop_timeout to exit on its own, then
 * SIGTERM, then SIGKILL (the support library escalates and logs it). */
static int wait_exit(struct rd_ctx *ctx, struct trove_call *call, pid_t pid)
{
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.stop_timeout * 1000;
    while (tps_proc_alive(pid) && tps_now_ms() < deadline)
        tps_sleep_ms(20);
    return tps_proc_stop(ctx->host, call, pid, RD_SERVER_COMM, SIGTERM, KILL_GRACE_MS, KILL_GRACE_MS);
}

/* No pid to watch: wait until the server no longer answers. */
static int wait_silent(struct rd_ctx *ctx, struct trove_call *call)
{
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.stop_timeout * 1000;
    while (answers(ctx, call))
        if (tps_now_ms() > deadline)
            return RD_FAIL(ctx, call, TROVE_ETIMEOUT, "redis-server still answers %lld s after SHUTDOWN",
                           (long long)ctx->s.stop_timeout);
        else
            tps_sleep_ms(20);
    return TROVE_OK;
}

int rd_server_stop(struct rd_ctx *ctx, struct trove_call *call, enum rd_shutdown mode)
{
    pid_t pid = server_pid(ctx);
    int rc = ask_shutdown(ctx, call, mode);
    if (rc == TROVE_OK)
        rc = pid > 0 ? wait_exit(ctx, call, pid) : wait_silent(ctx, call);
    else if (rc == TROVE_EUNAVAIL && pid > 0) {
        ctx->host->log(TROVE_LOG_WARN, "redis: cannot talk to redis-server (pid %ld), sending SIGTERM", (long)pid);
        rc = tps_proc_stop(ctx->host, call, pid, RD_SERVER_COMM, SIGTERM, (uint32_t)ctx->s.stop_timeout * 1000,
                           KILL_GRACE_MS);
    } else if (rc == TROVE_EUNAVAIL)
        rc = TROVE_OK;   /* not running */
    if (rc == TROVE_OK)
        mark_stopped(ctx, true);
    return rc;
}

int rd_start(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int lock = rd_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = rd_server_start(ctx, call, NULL);
    tps_file_unlock(lock);
    return rc;
}

int rd_stop(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int rc = rd_require_managed(ctx, call, "stop");
    int lock = rc == TROVE_OK ? rd_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        return TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = rd_server_stop(ctx, call, ctx->shutdown);
    tps_file_unlock(lock);
    return rc;
}

int rd_restart(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int rc = rd_require_managed(ctx, call, "restart");
    int lock = rc == TROVE_OK ? rd_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        return TROVE_EINTERNAL;
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 10, "stopping redis-server");
        rc = rd_server_stop(ctx, call, ctx->shutdown);
    }
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting redis-server");
        rc = rd_server_start(ctx, call, NULL);
    }
    tps_file_unlock(lock);
    return rc;
}

/* ------------------------------------------------------------ status */

static void health_from_info(const char *info, struct trove_health *out)
{
    char v[128], id[64], off[32];
    out->state = rd_info_find(info, "loading", v, sizeof(v)) && strcmp(v, "1") == 0 ? TROVE_DB_STARTING
                                                                                    : TROVE_DB_RUNNING;
    if (out->state == TROVE_DB_STARTING)
        snprintf(out->message, sizeof(out->message), "loading the dataset");
    if (rd_info_find(info, "role", v, sizeof(v)) && strcmp(v, "slave") == 0)
        out->role = TROVE_ROLE_REPLICA;
    else if (rd_info_find(info, "connected_slaves", v, sizeof(v)))
        out->role = strtol(v, NULL, 10) > 0 ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
    if (rd_info_find(info, "master_replid", id, sizeof(id)) && rd_info_find(info, "master_repl_offset", off, sizeof(off)))
        snprintf(out->position, sizeof(out->position), "%s:%s", id, off);
}

static void status_down(struct rd_ctx *ctx, struct trove_health *out)
{
    char marker[RD_PATH_MAX];
    rd_state_path(ctx, "stopped", marker, sizeof(marker));
    if (server_pid(ctx) > 0)
        out->state = TROVE_DB_STARTING, snprintf(out->message, sizeof(out->message),
                                                 "redis-server is running but not answering yet");
    else if (ctx->s.config_file && access(ctx->s.config_file, F_OK) != 0)
        out->state = TROVE_DB_NEW, snprintf(out->message, sizeof(out->message), "not prepared yet");
    else if (access(marker, F_OK) == 0)
        out->state = TROVE_DB_STOPPED, snprintf(out->message, sizeof(out->message), "stopped");
    else
        out->state = TROVE_DB_CRASHED, snprintf(out->message, sizeof(out->message),
                                                "redis-server is down: not reachable");
}

/* The agent zero-fills *out and sets its size; every field written here
 * exists since 2.0, so no TROVE_FIELD_OK test is needed (a field added in a
 * later minor would need one). A server that is down is a state. */
int rd_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    out->term = 0;   /* Redis has no term or epoch outside cluster mode */
    int timeout = ctx->s.connect_timeout_ms < 1000 ? (int)ctx->s.connect_timeout_ms : 1000;
    int rc = rd_conn_open_timeout(ctx, call, &conn, timeout, false);
    if (rc == TROVE_EUNAVAIL) {
        status_down(ctx, out);
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
    redisReply *r = redisCommandArgv(conn.c, 3, argv, lens);
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        health_from_info(r->str, out);
    else
        out->state = TROVE_DB_UNKNOWN, snprintf(out->message, sizeof(out->message), "INFO failed: %s",
                                                r && r->str ? r->str : conn.c->errstr);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return TROVE_OK;
}

/* ------------------------------------------------------------ prepare */

/* The admin user as a config line; the password only as its hash. */
static int admin_lines(struct rd_ctx *ctx, struct trove_call *call, struct tps_buf *b)
{
    char rule[RD_PASSWORD_RULE_SIZE];
    if (!rd_password_ok(ctx->s.password))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "prepare needs the admin password (setting \"password\", 1-512 "
                       "characters without control characters)");
    rd_password_rule(ctx->s.password, rule);
    if (strcmp(ctx->s.user, "default") == 0)
        tps_buf_addf(b, "user default on %s ~* &* +@all\n", rule);
    else
        tps_buf_addf(b, "user default off resetpass -@all\nuser %s on %s ~* &* +@all\n", ctx->s.user, rule);
    return TROVE_OK;
}

static int write_base_config(struct rd_ctx *ctx, struct trove_call *call)
{
    struct tps_buf b = {0};
    tps_buf_add(&b, "# Written by the trove-agent redis plugin, which owns this file; CONFIG REWRITE keeps it.\n");
    rd_config_line(&b, "bind", ctx->s.bind);
    tps_buf_addf(&b, "port %lld\n", (long long)ctx->s.port);
    if (ctx->s.socket) {
        rd_config_line(&b, "unixsocket", ctx->s.socket);
        tps_buf_add(&b, "unixsocketperm 700\n");
    }
    rd_config_line(&b, "dir", ctx->s.dir);
    rd_config_line(&b, "dbfilename", ctx->s.dbfilename);
    rd_config_line(&b, "pidfile", ctx->s.pid_file);
    rd_config_line(&b, "logfile", ctx->s.log_file);
    tps_buf_add(&b, "daemonize no\n");   /* the plugin supervises it in the foreground */
    int rc = admin_lines(ctx, call, &b);
    int e = 0;
    if (rc == TROVE_OK && !tps_buf_str(&b))
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    else if (rc == TROVE_OK && (e = tps_file_write_atomic(ctx->s.config_file, b.data, b.len, 0600)) != 0)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot write %s: %s", ctx->s.config_file, strerror(-e));
    tps_buf_wipe(&b);
    return rc;
}

static bool numbered(const char *name)
{
    return name && *name && strlen(name) <= 9 && strspn(name, "0123456789") == strlen(name);
}

static int check_prepare(struct rd_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = rd_require_managed(ctx, call, "prepare");
    if (rc != TROVE_OK)
        return rc;
    const struct trove_database *dbs = RD_FIELD(req, struct trove_prepare_request, databases, NULL);
    size_t n_dbs = dbs ? RD_FIELD(req, struct trove_prepare_request, n_databases, 0) : 0;
    size_t db_size = RD_FIELD(req, struct trove_prepare_request, database_size, 0);
    for (size_t i = 0; i < n_dbs; i++) {
        const struct trove_database *db = TROVE_AT(struct trove_database, dbs, db_size, i);
        if (!numbered(RD_FIELD(db, struct trove_database, name, NULL)))
            return RD_FAIL(ctx, call, TROVE_EINVAL, "Redis databases are numbered (0, 1, ...) and cannot be "
                           "created by name");
    }
    if (answers(ctx, call))
        return RD_FAIL(ctx, call, TROVE_ECONFLICT, "redis-server is already running: prepare is for a new instance");
    if (mkdir(ctx->s.dir, 0700) != 0 && errno != EEXIST)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot create %s: %s", ctx->s.dir, strerror(errno));
    if (ctx->s.run_as && (rc = tps_file_chown(ctx->s.dir, ctx->s.run_as)) != 0)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot give %s to %s: %s", ctx->s.dir, ctx->s.run_as,
                       strerror(-rc));
    return TROVE_OK;
}

/* Users and root, once the server runs. */
static int prepare_users(struct rd_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    const struct trove_user *users = RD_FIELD(req, struct trove_prepare_request, users, NULL);
    size_t n_users = users ? RD_FIELD(req, struct trove_prepare_request, n_users, 0) : 0;
    size_t user_size = RD_FIELD(req, struct trove_prepare_request, user_size, 0);
    const char *root_password = RD_FIELD(req, struct trove_prepare_request, root_password, NULL);
    int rc = TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < n_users; i++)
        rc = rd_user_create(ctx, call, TROVE_AT(struct trove_user, users, user_size, i));
    if (rc == TROVE_OK && root_password)
        rc = rd_root_enable(ctx, call, root_password);
    return rc;
}

static int prepare_locked(struct rd_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    const struct trove_kv *overrides = RD_FIELD(req, struct trove_prepare_request, overrides, NULL);
    size_t n_overrides = overrides ? RD_FIELD(req, struct trove_prepare_request, n_overrides, 0) : 0;
    const struct trove_restore_request *restore = RD_FIELD(req, struct trove_prepare_request, restore, NULL);
    int rc = check_prepare(ctx, call, req);
    if (rc == TROVE_OK)
        rc = write_base_config(ctx, call);
    if (rc == TROVE_OK)
        rc = rd_config_write_overrides(ctx, call, overrides, n_overrides);
    if (rc == TROVE_OK && restore) {
        ctx->host->progress(call, 10, "restoring the backup");
        rc = rd_restore_install(ctx, call, restore);   /* starts the server */
    } else if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting redis-server");
        rc = rd_server_start(ctx, call, NULL);
    }
    return rc;
}

int rd_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct rd_ctx *ctx = self;
    int rc = rd_require_managed(ctx, call, "prepare");
    int lock = rc == TROVE_OK ? rd_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        return TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = prepare_locked(ctx, call, req);
    tps_file_unlock(lock);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 80, "creating users");
        rc = prepare_users(ctx, call, req);
    }
    if (rc == TROVE_OK)
        ctx->host->progress(call, 100, "prepared");
    return rc;
}
