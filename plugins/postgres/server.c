/*
 * server.c - the PostgreSQL server process and its files. The postmaster is
 * started and stopped through the support library's supervision (as
 * os_user, detached, its output appended to log_file); readiness and
 * liveness come from postmaster.pid, status from a short connection. Steps
 * that start, stop or replace the server hold a lock in the state directory,
 * because another agent process may try the same at once. The file helpers
 * here run as the agent (root) on behalf of os_user.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

#define KILL_WAIT_MS 10000            /* after SIGKILL, for the process group to go */
#define KILLED_MARK "killed-on-stop"   /* in state_dir: the last stop had to kill */

const char *pg_data_path(struct pg_ctx *ctx, const char *name, char *buf, size_t len)
{
    if (!tps_path(buf, len, "%s/%s", ctx->s.datadir, name))
        buf[0] = '\0';
    return buf;
}

const char *pg_state_path(struct pg_ctx *ctx, const char *name, char *buf, size_t len)
{
    if (!tps_path(buf, len, "%s/%s", ctx->state_dir, name))
        buf[0] = '\0';
    return buf;
}

int pg_datadir_require(struct pg_ctx *ctx, struct trove_call *call)
{
    if (ctx->s.datadir[0])
        return TROVE_OK;
    return ctx->host->fail(call, TROVE_ENOTSUP, "the datadir setting is empty: this server is not managed locally");
}

/* ---- commands and files ------------------------------------------------- */

int pg_cmd_run(struct pg_ctx *ctx, struct trove_call *call, const char *const *argv, const char *const *env,
               struct trove_source *in, struct trove_sink *out)
{
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .env = env, .cwd = "/", .run_as = ctx->s.os_user,
                             .stdin_source = in, .stdout_sink = out};
    return ctx->host->exec(call, &cmd);
}

int pg_tool_run(struct pg_ctx *ctx, struct trove_call *call, const char *const *argv, const char *const *env,
                char *output, size_t output_size)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char prog[PG_PATH_MAX + 64];
    if (n == 0 || !tps_path(prog, sizeof(prog), "%s/%s", ctx->s.bindir, argv[0]))
        return ctx->host->fail(call, TROVE_EINTERNAL, "no tool to run");
    const char **args = calloc(n + 1, sizeof(char *));
    if (!args)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    args[0] = prog;
    for (size_t i = 1; i < n; i++)
        args[i] = argv[i];
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = args, .env = env, .cwd = "/", .run_as = ctx->s.os_user,
                             .output = output, .output_size = output_size};
    int rc = ctx->host->exec(call, &cmd);
    free(args);
    return rc;
}

static bool os_user_exists(struct pg_ctx *ctx)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    return getpwnam_r(ctx->s.os_user, &pw, buf, sizeof(buf), &res) == 0 && res;
}

/* fail() for an error of a file helper: a missing os_user gets its own message. */
static int file_fail(struct pg_ctx *ctx, struct trove_call *call, const char *what, const char *path, int err)
{
    if (err == -ENOENT && !os_user_exists(ctx))
        return ctx->host->fail(call, TROVE_EINVAL, "system user \"%s\" (setting os_user) does not exist",
                               ctx->s.os_user);
    return ctx->host->fail(call, TROVE_EINTERNAL, "cannot %s %s: %s", what, path, strerror(-err));
}

int pg_file_chown(struct pg_ctx *ctx, struct trove_call *call, const char *path)
{
    int e = tps_file_chown(path, ctx->s.os_user);
    return e == 0 ? TROVE_OK : file_fail(ctx, call, "give to the server's user", path, e);
}

int pg_dir_make(struct pg_ctx *ctx, struct trove_call *call, const char *path, int mode)
{
    char tmp[PG_PATH_MAX];
    if (!tps_path(tmp, sizeof(tmp), "%s", path))
        return ctx->host->fail(call, TROVE_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
        return ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", tmp, strerror(errno));
    int rc = pg_file_chown(ctx, call, tmp);
    if (rc == TROVE_OK && chmod(tmp, (mode_t)mode) != 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "chmod %s: %s", tmp, strerror(errno));
    return rc;
}

int pg_file_store(struct pg_ctx *ctx, const char *path, const char *text)
{
    return tps_file_write_as(path, text, strlen(text), 0600, ctx->s.os_user);
}

int pg_file_write(struct pg_ctx *ctx, struct trove_call *call, const char *path, const char *text)
{
    int e = pg_file_store(ctx, path, text);
    return e == 0 ? TROVE_OK : file_fail(ctx, call, "write", path, e);
}

char *pg_file_read(struct pg_ctx *ctx, struct trove_call *call, const char *path, size_t max)
{
    char *text = tps_file_read(path, max, NULL);
    if (!text)
        ctx->host->fail(call, TROVE_EINTERNAL, "cannot read %s: %s", path,
                        errno == EFBIG ? "larger than the plugin reads" : strerror(errno));
    return text;
}

int pg_tree_remove(struct pg_ctx *ctx, struct trove_call *call, const char *path)
{
    int e = tps_remove_tree(path);
    return e == 0 ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot remove %s: %s", path, strerror(-e));
}

/* ---- the postmaster ----------------------------------------------------- */

/* The pid postmaster.pid claims, alive or not (0 when there is none). */
static pid_t claimed_pid(struct pg_ctx *ctx)
{
    char path[PG_PATH_MAX];
    char *text = tps_file_read(pg_data_path(ctx, "postmaster.pid", path, sizeof(path)), 4096, NULL);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid > 0 ? (pid_t)pid : 0;
}

static pid_t postmaster_pid(struct pg_ctx *ctx)
{
    char path[PG_PATH_MAX];
    return ctx->s.datadir[0] ? tps_proc_pid(pg_data_path(ctx, "postmaster.pid", path, sizeof(path)), PG_SERVER_COMM)
                             : 0;
}

bool pg_server_running(struct pg_ctx *ctx)
{
    return postmaster_pid(ctx) > 0;
}

static bool datadir_initialised(struct pg_ctx *ctx)
{
    char path[PG_PATH_MAX];
    return access(pg_data_path(ctx, "PG_VERSION", path, sizeof(path)), F_OK) == 0;
}

int pg_server_lock(struct pg_ctx *ctx, struct trove_call *call)
{
    char path[PG_PATH_MAX];
    int fd = tps_file_lock(pg_state_path(ctx, "server.lock", path, sizeof(path)), true);
    if (fd < 0)
        ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

struct probe {
    struct pg_ctx *ctx;
    pid_t pid;
};

/* What pg_ctl -w waits for: postmaster.pid names the process we started
 * and its status line (the 8th) says it accepts connections, as a primary
 * ("ready") or as a hot standby ("standby"). */
static int probe_ready(void *arg)
{
    struct probe *p = arg;
    char path[PG_PATH_MAX];
    char *text = tps_file_read(pg_data_path(p->ctx, "postmaster.pid", path, sizeof(path)), 4096, NULL);
    if (!text)
        return 0;
    const char *status = text;
    for (int line = 1; line < 8 && status; line++)
        if ((status = strchr(status, '\n')))
            status++;
    bool ready = strtol(text, NULL, 10) == (long)p->pid && status &&
                 (strncmp(status, "ready", 5) == 0 || strncmp(status, "standby", 7) == 0);
    free(text);
    return ready ? 1 : 0;
}

#define ARGS_MAX 32
#define REAP_WAIT_MS 10000

/* A postmaster that died (killed, crashed) leaves postmaster.pid behind, and
 * PostgreSQL refuses to start while that pid exists at all, as a zombie not
 * yet reaped too: wait for the reaping, a while. */
static void wait_reaped(struct pg_ctx *ctx)
{
    pid_t pid = claimed_pid(ctx);
    uint64_t deadline = tps_now_ms() + REAP_WAIT_MS;
    while (pid > 0 && !tps_proc_alive(pid) && kill(pid, 0) == 0 && tps_now_ms() < deadline)
        tps_sleep_ms(50);
}

int pg_server_start(struct pg_ctx *ctx, struct trove_call *call, const char *const *extra)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc != TROVE_OK || pg_server_running(ctx))
        return rc;
    if (!datadir_initialised(ctx))
        return ctx->host->fail(call, TROVE_ECONFLICT, "%s holds no database cluster: run prepare first",
                               ctx->s.datadir);
    char prog[PG_PATH_MAX + 16], port[16], listen[300], mark[PG_PATH_MAX];
    unlink(pg_state_path(ctx, KILLED_MARK, mark, sizeof(mark)));
    wait_reaped(ctx);
    const char *argv[ARGS_MAX];
    size_t n = 0;
    tps_path(prog, sizeof(prog), "%s/postgres", ctx->s.bindir);
    snprintf(port, sizeof(port), "%lld", (long long)ctx->s.port);
    argv[n++] = prog, argv[n++] = "-D", argv[n++] = ctx->s.datadir, argv[n++] = "-p", argv[n++] = port;
    if (ctx->s.listen_addresses[0] && tps_path(listen, sizeof(listen), "listen_addresses=%s", ctx->s.listen_addresses))
        argv[n++] = "-c", argv[n++] = listen;
    if (ctx->s.socket_dir[0])
        argv[n++] = "-k", argv[n++] = ctx->s.socket_dir;
    for (size_t i = 0; extra && extra[i] && n < ARGS_MAX - 1; i++)   /* later options win */
        argv[n++] = extra[i];
    argv[n] = NULL;
    struct tps_proc spec = {.argv = argv, .run_as = ctx->s.os_user, .log_file = ctx->s.log_file,
                            .name = PG_SERVER_COMM};
    struct probe probe = {ctx, 0};
    ctx->host->log(TROVE_LOG_INFO, "postgres: starting the server in %s", ctx->s.datadir);
    if ((rc = tps_proc_start(ctx->host, call, &spec, &probe.pid)) == TROVE_OK)
        rc = tps_proc_wait_ready(ctx->host, call, probe.pid, PG_SERVER_COMM, ctx->s.log_file,
                                 (uint32_t)ctx->s.start_timeout * 1000, probe_ready, &probe);
    return rc;
}

int pg_server_stop(struct pg_ctx *ctx, struct trove_call *call)
{
    int rc = pg_datadir_require(ctx, call);
    pid_t pid = rc == TROVE_OK ? postmaster_pid(ctx) : 0;
    if (rc != TROVE_OK || pid <= 0)
        return rc;
    ctx->host->log(TROVE_LOG_INFO, "postgres: stopping the server in %s (fast shutdown)", ctx->s.datadir);
    /* SIGINT is PostgreSQL's fast shutdown: sessions end, a checkpoint is written. */
    rc = tps_proc_stop(ctx->host, call, pid, PG_SERVER_COMM, SIGINT, (uint32_t)ctx->s.start_timeout * 1000,
                       KILL_WAIT_MS);
    /* Killed after the grace period, the postmaster left its pid file (it
     * stays: it guards the data directory until the next start): remember
     * that this was a stop, not a crash. */
    char path[PG_PATH_MAX];
    if (rc == TROVE_OK && claimed_pid(ctx) > 0)
        tps_file_write_atomic(pg_state_path(ctx, KILLED_MARK, path, sizeof(path)), "killed on stop\n", 15, 0600);
    return rc;
}

int pg_server_restart(struct pg_ctx *ctx, struct trove_call *call)
{
    int rc = pg_server_stop(ctx, call);
    return rc == TROVE_OK ? pg_server_start(ctx, call, NULL) : rc;
}

int pg_start(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = pg_server_start(ctx, call, NULL);
    tps_file_unlock(lock);
    return rc;
}

int pg_stop(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = pg_server_stop(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int pg_restart(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 10, "stopping the server");
    int rc = pg_server_stop(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting the server");
        rc = pg_server_start(ctx, call, NULL);
    }
    tps_file_unlock(lock);
    return rc;
}

/* ---- status ------------------------------------------------------------- */

/* Role, position and timeline of a server that answers. */
static void running_health(PGconn *c, struct trove_health *out)
{
    PGresult *r = PQexec(c,
        "SELECT pg_is_in_recovery(), "
        " CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn())::text "
        "      ELSE pg_current_wal_lsn()::text END, "
        " CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), "
        "        (pg_control_checkpoint()).timeline_id)::bigint "
        "      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END, "
        " (SELECT count(*) FROM pg_stat_replication) + (SELECT count(*) FROM pg_replication_slots)");
    out->state = TROVE_DB_RUNNING;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        bool standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        uint64_t term = 0;
        out->role = standby ? TROVE_ROLE_REPLICA
                  : atol(PQgetvalue(r, 0, 3)) > 0 ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
        snprintf(out->position, sizeof(out->position), "%s", PQgetvalue(r, 0, 1));
        out->term = tps_parse_u64(PQgetvalue(r, 0, 2), &term) ? term : 0;
    } else {
        snprintf(out->message, sizeof(out->message), "status query failed: %s", PQresultErrorMessage(r));
        out->message[strcspn(out->message, "\n")] = '\0';
    }
    PQclear(r);
}

/* The agent zero-fills *out and sets its size; every field written here
 * exists since 2.0. A server that is down is a state, not a failure. */
int pg_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct pg_ctx *ctx = self;
    (void)call;
    char port[16];
    snprintf(port, sizeof(port), "%lld", (long long)ctx->s.port);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", "gssencmode",
                          "connect_timeout", "application_name", NULL};
    const char *vals[] = {ctx->s.host, port, ctx->s.user, ctx->s.password[0] ? ctx->s.password : NULL,
                          ctx->s.database, ctx->s.sslmode, "disable", "2", "trove-agent", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c && PQstatus(c) == CONNECTION_OK) {
        running_health(c, out);
        PQfinish(c);
        return TROVE_OK;
    }
    snprintf(out->message, sizeof(out->message), "%s", c ? PQerrorMessage(c) : "out of memory");
    out->message[strcspn(out->message, "\n")] = '\0';
    PQfinish(c);
    char mark[PG_PATH_MAX];
    bool killed = false;
    if (!ctx->s.datadir[0])
        out->state = TROVE_DB_UNKNOWN;
    else if (!datadir_initialised(ctx))
        out->state = TROVE_DB_NEW;
    else if (pg_server_running(ctx))
        out->state = TROVE_DB_STARTING;
    else if (claimed_pid(ctx) > 0 && access(pg_state_path(ctx, KILLED_MARK, mark, sizeof(mark)), F_OK) == 0)
        out->state = TROVE_DB_STOPPED, killed = true;
    else if (claimed_pid(ctx) > 0)
        out->state = TROVE_DB_CRASHED;
    else
        out->state = TROVE_DB_STOPPED;
    if (out->state == TROVE_DB_CRASHED)
        snprintf(out->message, sizeof(out->message), "the postmaster died (stale postmaster.pid)");
    else if (out->state == TROVE_DB_STOPPED)
        snprintf(out->message, sizeof(out->message), "%s", killed ? "stopped: killed after the grace period, the "
                 "next start recovers" : "the server is not running");
    return TROVE_OK;
}

/* ---- work directories --------------------------------------------------- */

int pg_work_dir(struct pg_ctx *ctx, struct trove_call *call, const char *what, char *dir, size_t len)
{
    tps_remove_stale("/tmp", "trove-pg-");   /* what a killed agent left behind */
    if (!tps_path(dir, len, "/tmp/trove-pg-%ld-%s-XXXXXX", (long)getpid(), what))
        return ctx->host->fail(call, TROVE_EINTERNAL, "work directory name too long");
    if (!mkdtemp(dir))
        return ctx->host->fail(call, TROVE_EINTERNAL, "mkdtemp %s: %s", dir, strerror(errno));
    int rc = pg_file_chown(ctx, call, dir);
    if (rc != TROVE_OK)
        rmdir(dir);
    return rc;
}
