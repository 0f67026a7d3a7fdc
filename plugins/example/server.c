/*
 * server.c - the server process: prepare (initialise the data directory,
 * start, restore, create databases, users and root), start and stop through
 * the support library's supervision, restart, and status from a short
 * connection plus the pid file and a "stopped on purpose" marker in the
 * plugin's state directory. Steps that stop or replace the server hold a
 * lock there, because another agent process may try the same at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

const char *ex_data_path(struct ex_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->s.datadir, name);
    return buf;
}

static const char *state_path(struct ex_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->state_dir, name);
    return buf;
}

int ex_server_lock(struct ex_ctx *ctx, struct trove_call *call)
{
    char path[1200];
    int fd = tps_file_lock(state_path(ctx, "server.lock", path, sizeof(path)), true);
    if (fd < 0)
        ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

bool ex_server_initialised(struct ex_ctx *ctx)
{
    char path[1200];
    return access(ex_data_path(ctx, "store", path, sizeof(path)), F_OK) == 0;
}

static pid_t server_pid(struct ex_ctx *ctx)
{
    char path[1200];
    return tps_proc_pid(ex_data_path(ctx, "kvd.pid", path, sizeof(path)), EX_SERVER_COMM);
}

static void mark_stopped(struct ex_ctx *ctx, bool stopped)
{
    char path[1200];
    state_path(ctx, "stopped", path, sizeof(path));
    if (stopped)
        tps_file_write_atomic(path, "stopped on purpose\n", 19, 0600);
    else
        unlink(path);
}

/* The admin account travels to the server in its environment, never argv. */
struct admin_env {
    char user[256];
    struct tps_buf password;
    const char *list[3];
};

static void admin_env_init(struct ex_ctx *ctx, struct admin_env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->user, sizeof(e->user), "KVD_ADMIN_USER=%s", ctx->s.admin_user);
    tps_buf_addf(&e->password, "KVD_ADMIN_PASSWORD=%s", ctx->s.admin_password);
    e->list[0] = e->user;
    e->list[1] = tps_buf_str(&e->password);
}

int ex_server_init(struct ex_ctx *ctx, struct trove_call *call)
{
    struct admin_env env;
    admin_env_init(ctx, &env);
    const char *argv[] = {ctx->s.kvd, "--datadir", ctx->s.datadir, "--init", NULL};
    char out[512];
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .env = env.list, .run_as = ctx->s.run_as,
                             .output = out, .output_size = sizeof(out), .timeout_ms = 60000};
    int rc = env.list[1] ? ctx->host->exec(call, &cmd) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(&env.password);
    return rc;
}

static int probe_ready(void *arg)
{
    struct ex_ctx *ctx = arg;
    struct ex_conn c;
    if (ex_conn_open_quiet(ctx, &c, 300) != TROVE_OK)
        return 0;
    bool up = kv_send(c.fd, "PING\n", 5, 300) == 0;
    char *line = up ? kv_read_line(&c.in, 1000) : NULL;
    up = line && !strncmp(line, "OK", 2);
    free(line);
    ex_conn_close(&c);
    return up ? 1 : 0;
}

int ex_server_start(struct ex_ctx *ctx, struct trove_call *call)
{
    char log[1200], port[16];
    mark_stopped(ctx, false);
    if (server_pid(ctx) > 0 || probe_ready(ctx))
        return TROVE_OK;
    if (!ex_server_initialised(ctx))
        return ctx->host->fail(call, TROVE_ECONFLICT, "%s holds no data: run prepare first", ctx->s.datadir);
    snprintf(port, sizeof(port), "%lld", (long long)ctx->s.port);
    const char *argv[] = {ctx->s.kvd, "--datadir", ctx->s.datadir, "--port", port, "--bind", ctx->s.host, NULL};
    struct admin_env env;
    admin_env_init(ctx, &env);
    struct tps_proc spec = {.argv = argv, .env = env.list, .run_as = ctx->s.run_as, .name = "kvd",
                            .log_file = ex_data_path(ctx, "kvd.log", log, sizeof(log))};
    pid_t pid = 0;
    int rc = env.list[1] ? tps_proc_start(ctx->host, call, &spec, &pid)
                         : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(&env.password);
    if (rc == TROVE_OK)
        rc = tps_proc_wait_ready(ctx->host, call, pid, "kvd", log, (uint32_t)ctx->s.start_timeout * 1000,
                                 probe_ready, ctx);
    return rc;
}

int ex_server_stop(struct ex_ctx *ctx, struct trove_call *call)
{
    mark_stopped(ctx, true);
    pid_t pid = server_pid(ctx);
    if (pid <= 0)
        return TROVE_OK;
    ctx->host->log(TROVE_LOG_INFO, "example: stopping kvd (pid %ld)", (long)pid);
    return tps_proc_stop(ctx->host, call, pid, "kvd", SIGTERM, (uint32_t)ctx->s.stop_timeout * 1000, 5000);
}

int ex_start(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    int lock = ex_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = ex_server_start(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int ex_stop(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    int lock = ex_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = ex_server_stop(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int ex_restart(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    int lock = ex_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 10, "stopping kvd");
    int rc = ex_server_stop(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting kvd");
        rc = ex_server_start(ctx, call);
    }
    tps_file_unlock(lock);
    return rc;
}

/* Role, term and position of a server that answers. */
static int running_health(struct ex_ctx *ctx, struct trove_call *call, struct trove_health *out)
{
    struct ex_conn c;
    struct ex_row role;
    if (ex_conn_open_quiet(ctx, &c, 1000) != TROVE_OK)
        return -1;
    c.call = call;
    if (ex_conn_cmd(&c, NULL, NULL, NULL, "AUTH", ctx->s.admin_user, ctx->s.admin_password, (char *)NULL)) {
        ex_conn_close(&c);
        return -1;
    }
    int rc = ex_conn_cmd(&c, NULL, NULL, &role, "ROLE", (char *)NULL);
    ex_conn_close(&c);
    if (rc != TROVE_OK || role.n < 4) {
        ex_row_free(&role);
        return -1;
    }
    out->state = TROVE_DB_RUNNING;
    out->role = !strcmp(role.col[1], "replica") ? TROVE_ROLE_REPLICA
              : !strcmp(role.col[1], "primary") ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
    snprintf(out->position, sizeof(out->position), "%s", role.col[2]);
    out->term = strtoull(role.col[3], NULL, 10);
    ex_row_free(&role);
    return 0;
}

/* The agent zero-fills *out and sets its size; every field written here
 * exists since 2.0, so no TROVE_FIELD_OK test is needed (a field added in a
 * later minor would need one). A server that is down is a state. */
int ex_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct ex_ctx *ctx = self;
    char path[1200];
    if (running_health(ctx, call, out) == 0)
        return TROVE_OK;
    if (server_pid(ctx) > 0) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "kvd is running but not answering yet");
    } else if (!ex_server_initialised(ctx)) {
        out->state = TROVE_DB_NEW;
        snprintf(out->message, sizeof(out->message), "not prepared: %s holds no data", ctx->s.datadir);
    } else if (access(state_path(ctx, "stopped", path, sizeof(path)), F_OK) == 0) {
        out->state = TROVE_DB_STOPPED;
        snprintf(out->message, sizeof(out->message), "stopped");
    } else {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "kvd is not running");
    }
    return TROVE_OK;
}

static int prepare_objects(struct ex_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    ctx->host->progress(call, 70, "creating databases and users");
    if (req->root_password)
        rc = ex_root_enable_on(&c, req->root_password, false);
    /* Arrays of growable structs are indexed by their element size. */
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = ex_database_create_on(&c, TROVE_AT(struct trove_database, req->databases, req->database_size, i));
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = ex_user_create_on(&c, TROVE_AT(struct trove_user, req->users, req->user_size, i));
    ex_conn_close(&c);
    return rc;
}

int ex_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct ex_ctx *ctx = self;
    int rc = TROVE_OK;
    if (!ex_server_initialised(ctx)) {
        ctx->host->progress(call, 10, "initialising %s", ctx->s.datadir);
        rc = ex_server_init(ctx, call);
    }
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 40, "starting kvd");
        rc = ex_start(ctx, call);
    }
    if (rc == TROVE_OK && req->restore)
        rc = ex_backup_restore(ctx, call, req->restore);
    bool restart = false;
    if (rc == TROVE_OK && req->n_overrides)
        rc = ex_config_set(ctx, call, req->overrides, req->n_overrides, false, &restart);
    if (rc == TROVE_OK && restart)
        rc = ex_restart(ctx, call);
    if (rc == TROVE_OK)
        rc = prepare_objects(ctx, call, req);
    if (rc == TROVE_OK)
        ctx->host->progress(call, 100, "prepared");
    return rc;
}
