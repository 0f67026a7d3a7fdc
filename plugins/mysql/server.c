/*
 * server.c - how the plugin runs mariadbd: it writes its own option file
 * (run_dir/my.cnf, including the overrides and role files), starts the
 * server detached and stops it through the support library's supervision,
 * and reports its state from a connection, the pid file and a "stopped on
 * purpose" marker. Steps that start, stop or replace the server hold a lock
 * in the state directory: another agent process may try the same at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mysql_plugin.h"

#define ADMIN_HOSTS_N 3
static const char *const ADMIN_HOSTS[ADMIN_HOSTS_N] = {"localhost", "127.0.0.1", "::1"};
#define KILL_WAIT_MS 5000   /* after SIGKILL, how long until a server that is still there is an error */

int my_server_need_managed(struct my_ctx *ctx, struct trove_call *call, const char *what)
{
    if (ctx->s.manage_server)
        return TROVE_OK;
    return ctx->host->fail(call, TROVE_ENOTSUP,
                           "%s: this agent does not manage the MariaDB server (manage_server = false); "
                           "the operator's service manager does", what);
}

const char *my_server_tool_user(struct my_ctx *ctx)
{
    return geteuid() == 0 && strcmp(ctx->s.server_user, "root") != 0 ? ctx->s.server_user : NULL;
}

/* chown path to the server's system user when the agent runs as root. */
static int give_to_server(struct my_ctx *ctx, struct trove_call *call, const char *path)
{
    const char *user = my_server_tool_user(ctx);
    int e = tps_file_chown(path, user);
    if (e == -ENOENT && user)
        return ctx->host->fail(call, TROVE_EINVAL, "server_user \"%s\" does not exist", user);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "chown %s: %s", path, strerror(-e));
    return TROVE_OK;
}

int my_server_make_dir(struct my_ctx *ctx, struct trove_call *call, const char *path, unsigned mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", path, strerror(errno));
    return give_to_server(ctx, call, path);
}

int my_server_lock(struct my_ctx *ctx, struct trove_call *call)
{
    char path[MY_PATH_MAX];
    tps_path(path, sizeof(path), "%s/server.lock", ctx->state_dir);
    int fd = tps_file_lock(path, false);
    if (fd == -EWOULDBLOCK)
        return -ctx->host->fail(call, TROVE_ECONFLICT, "another operation is starting, stopping or restoring "
                                "the MariaDB server; try again when it is done");
    if (fd < 0)
        return -ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

/* ------------------------------------------------------------ markers */

static const char *run_path(struct my_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->s.run_dir, name);
    return buf;
}

static void set_stopped_marker(struct my_ctx *ctx, bool stopped)
{
    char path[MY_PATH_MAX];
    run_path(ctx, "stopped", path, sizeof(path));
    if (stopped)
        tps_file_write_atomic(path, "stopped on purpose\n", 19, 0644);
    else
        unlink(path);
}

static bool stopped_on_purpose(struct my_ctx *ctx)
{
    char path[MY_PATH_MAX];
    return access(run_path(ctx, "stopped", path, sizeof(path)), F_OK) == 0;
}

void my_server_mark_restoring(struct my_ctx *ctx, bool on)
{
    char path[MY_PATH_MAX], pid[32];
    run_path(ctx, "restoring", path, sizeof(path));
    if (!on) {
        unlink(path);
        return;
    }
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    tps_file_write_atomic(path, pid, (size_t)n, 0644);
}

/* A restore by a live agent process is under way (the marker holds its pid). */
static bool restoring(struct my_ctx *ctx)
{
    char path[MY_PATH_MAX];
    char *text = tps_file_read(run_path(ctx, "restoring", path, sizeof(path)), 32, NULL);
    int64_t pid = 0;
    if (text)
        text[strcspn(text, "\n")] = '\0';
    bool live = text && tps_parse_int(text, 1, INT32_MAX, &pid) && tps_proc_alive((pid_t)pid);
    free(text);
    return live;
}

/* The pid file names a live process whose name is the server's: the
 * configured binary's, or MariaDB's own names for it. */
pid_t my_server_pid(struct my_ctx *ctx)
{
    const char *base = strrchr(ctx->s.mariadbd, '/');
    base = base ? base + 1 : ctx->s.mariadbd;
    const char *names[] = {base, "mariadbd", "mysqld"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        pid_t pid = tps_proc_pid(ctx->s.pid_file, names[i]);
        if (pid > 1)
            return pid;
    }
    return 0;
}

/* ------------------------------------------------------------ option files */

static int ensure_file(struct my_ctx *ctx, struct trove_call *call, const char *path, const char *initial)
{
    if (access(path, F_OK) == 0)
        return TROVE_OK;
    int e = tps_file_write_atomic(path, initial, strlen(initial), 0644);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    return TROVE_OK;
}

static void config_text(struct my_ctx *ctx, struct tps_buf *f, const char *tmpdir)
{
    const struct my_settings *s = &ctx->s;
    tps_buf_add(f, "# Written by the trove mysql plugin before every start; change the agent's settings instead.\n");
    tps_buf_add(f, "[mariadbd]\n");
    tps_buf_addf(f, "datadir=\"%s\"\nsocket=\"%s\"\nport=%lld\nbind-address=%s\n", s->datadir,
                 s->socket ? s->socket : "", (long long)s->port, s->bind_address);
    tps_buf_addf(f, "pid-file=\"%s\"\nlog-error=\"%s\"\nuser=%s\nserver-id=%lld\n", s->pid_file, s->log_error,
                 s->server_user, (long long)s->server_id);
    tps_buf_addf(f, "slow-query-log-file=\"%s\"\ngeneral-log-file=\"%s\"\n", s->slow_log, s->general_log);
    tps_buf_addf(f, "tmpdir=\"%s\"\n", tmpdir);
    tps_buf_addf(f, "log-bin=%s\nrelay-log=mariadb-relay-bin\nbinlog-format=ROW\nlog-slave-updates=ON\n", s->log_bin);
    tps_buf_add(f, "skip-name-resolve\n");
    tps_buf_addf(f, "!include %s\n!include %s\n", s->overrides_file, ctx->role_file);
}

/* run_dir/my.cnf: everything the server needs, then the overrides and role. */
int my_server_write_config(struct my_ctx *ctx, struct trove_call *call)
{
    /* Its own tmpdir: servers sharing /tmp collide on temporary table files. */
    char tmpdir[MY_PATH_MAX];
    run_path(ctx, "tmp", tmpdir, sizeof(tmpdir));
    int rc = my_server_make_dir(ctx, call, ctx->s.run_dir, 0750);
    if (rc == TROVE_OK)
        rc = my_server_make_dir(ctx, call, tmpdir, 0700);
    if (rc == TROVE_OK)
        rc = ensure_file(ctx, call, ctx->s.overrides_file, "[mariadbd]\n");
    if (rc == TROVE_OK)
        rc = ensure_file(ctx, call, ctx->role_file, "[mariadbd]\n");
    if (rc != TROVE_OK)
        return rc;
    struct tps_buf f = {0};
    config_text(ctx, &f, tmpdir);
    if (!tps_buf_str(&f)) {
        tps_buf_free(&f);
        return my_fail_oom(ctx, call);
    }
    int e = tps_file_write_atomic(ctx->my_cnf, f.data, f.len, 0644);
    tps_buf_free(&f);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", ctx->my_cnf, strerror(-e));
    return TROVE_OK;
}

/* An init file run by the server at start, without binary logging: it makes
 * sure the admin account exists with the configured password (after a fresh
 * install, or a restore from another instance's backup). */
static int write_init_file(struct my_ctx *ctx, struct trove_call *call, char *path, size_t pathlen)
{
    struct tps_buf f = {0};
    tps_buf_add(&f, "SET SESSION sql_log_bin = 0;\nSET SESSION sql_mode = '';\n");
    for (int i = 0; i < ADMIN_HOSTS_N; i++) {
        struct tps_buf acct = {0};
        my_quote_literal_offline(&acct, ctx->s.admin_user);
        tps_buf_add(&acct, "@");
        my_quote_literal_offline(&acct, ADMIN_HOSTS[i]);
        const char *a = tps_buf_str(&acct);
        if (!a)
            f.oom = true;
        tps_buf_addf(&f, "CREATE USER IF NOT EXISTS %s;\n", a ? a : "");
        tps_buf_addf(&f, "ALTER USER %s", a ? a : "");
        my_password_identified_by(&f, ctx->s.admin_password);
        tps_buf_add(&f, " ACCOUNT UNLOCK;\n");
        tps_buf_addf(&f, "GRANT ALL PRIVILEGES ON *.* TO %s WITH GRANT OPTION;\n", a ? a : "");
        tps_buf_free(&acct);
    }
    int rc = TROVE_OK, e;
    if (!tps_buf_str(&f))
        rc = my_fail_oom(ctx, call);
    else if ((e = tps_file_write_secret(ctx->s.run_dir, tps_buf_str(&f), path, pathlen)) != 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot write the init file in %s: %s", ctx->s.run_dir,
                             strerror(-e));
    else if ((rc = give_to_server(ctx, call, path)) != TROVE_OK)
        unlink(path);
    tps_buf_wipe(&f);
    return rc;
}

int my_role_write(struct my_ctx *ctx, struct trove_call *call, const char *role, bool read_only)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "# Written by the trove mysql plugin.\n# trove-role: %s\n[mariadbd]\nread_only=%s\n", role,
                     read_only ? "ON" : "OFF");
    int rc = my_server_make_dir(ctx, call, ctx->s.run_dir, 0750);
    if (rc != TROVE_OK)
        return rc;
    int e = tps_file_write_atomic(ctx->role_file, buf, (size_t)n, 0644);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", ctx->role_file, strerror(-e));
    return TROVE_OK;
}

void my_role_read(struct my_ctx *ctx, char *role, size_t rolelen)
{
    role[0] = '\0';
    char *s = tps_file_read(ctx->role_file, 4096, NULL);
    const char *tag = s ? strstr(s, "# trove-role: ") : NULL;
    if (tag) {
        tag += strlen("# trove-role: ");
        snprintf(role, rolelen, "%.*s", (int)strcspn(tag, "\n"), tag);
    }
    free(s);
}

/* ------------------------------------------------------------ start / stop */

/* Ready once the admin account can log in. */
static int probe_ready(void *arg)
{
    char msg[512];
    MYSQL *conn = my_conn_try(arg, true, msg, sizeof(msg), NULL);
    my_conn_close(conn);
    return conn ? 1 : 0;
}

static int wait_ready(struct my_ctx *ctx, struct trove_call *call, pid_t pid)
{
    return tps_proc_wait_ready(ctx->host, call, pid, "mariadbd", ctx->s.log_error,
                               (uint32_t)ctx->s.start_timeout * 1000, probe_ready, ctx);
}

/* The error log exists and belongs to the server's user, which appends to it
 * after dropping root (its stdout and stderr go there too). */
static int prepare_error_log(struct my_ctx *ctx, struct trove_call *call)
{
    int fd = open(ctx->s.log_error, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot open %s: %s", ctx->s.log_error, strerror(errno));
    close(fd);
    return give_to_server(ctx, call, ctx->s.log_error);
}

static int launch(struct my_ctx *ctx, struct trove_call *call, const char *init_file)
{
    char defaults[MY_PATH_MAX + 32], init[MY_PATH_MAX + 32];
    tps_path(defaults, sizeof(defaults), "--defaults-file=%s", ctx->my_cnf);
    tps_path(init, sizeof(init), "--init-file=%s", init_file);
    const char *argv[] = {ctx->s.mariadbd, defaults, init, NULL};
    /* mariadbd writes its own pid file (my.cnf's pid-file). */
    struct tps_proc spec = {.argv = argv, .log_file = ctx->s.log_error, .name = "mariadbd"};
    pid_t pid = 0;
    int rc = prepare_error_log(ctx, call);
    if (rc == TROVE_OK)
        rc = tps_proc_start(ctx->host, call, &spec, &pid);
    if (rc == TROVE_OK)
        rc = wait_ready(ctx, call, pid);
    return rc;
}

int my_server_start(struct my_ctx *ctx, struct trove_call *call)
{
    int rc = my_server_need_managed(ctx, call, "start");
    if (rc != TROVE_OK)
        return rc;
    set_stopped_marker(ctx, false);
    pid_t running = my_server_pid(ctx);
    if (running != 0)
        return wait_ready(ctx, call, running);
    if (tps_dir_empty(ctx->s.datadir))
        return ctx->host->fail(call, TROVE_ECONFLICT, "the data directory %s is empty: run prepare first",
                               ctx->s.datadir);
    char init[MY_PATH_MAX];
    rc = my_server_write_config(ctx, call);
    if (rc == TROVE_OK)
        rc = write_init_file(ctx, call, init, sizeof(init));
    if (rc != TROVE_OK)
        return rc;
    unlink(ctx->s.pid_file);   /* stale: the process is gone (checked above) */
    ctx->host->log(TROVE_LOG_INFO, "mysql: starting mariadbd (datadir %s, port %lld)", ctx->s.datadir,
                   (long long)ctx->s.port);
    rc = launch(ctx, call, init);
    unlink(init);
    return rc;
}

int my_server_stop(struct my_ctx *ctx, struct trove_call *call)
{
    int rc = my_server_need_managed(ctx, call, "stop");
    if (rc != TROVE_OK)
        return rc;
    set_stopped_marker(ctx, true);
    pid_t pid = my_server_pid(ctx);
    if (pid == 0)
        return TROVE_OK;
    ctx->host->log(TROVE_LOG_INFO, "mysql: stopping mariadbd (pid %ld)", (long)pid);
    return tps_proc_stop(ctx->host, call, pid, "mariadbd", SIGTERM, (uint32_t)ctx->s.stop_timeout * 1000,
                         KILL_WAIT_MS);
}

int my_start(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    int lock = my_server_lock(ctx, call);
    if (lock < 0)
        return -lock;
    int rc = my_server_start(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int my_stop(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    int lock = my_server_lock(ctx, call);
    if (lock < 0)
        return -lock;
    int rc = my_server_stop(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int my_restart(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    int lock = my_server_lock(ctx, call);
    if (lock < 0)
        return -lock;
    ctx->host->progress(call, 10, "stopping MariaDB");
    int rc = my_server_stop(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting MariaDB");
        rc = my_server_start(ctx, call);
    }
    tps_file_unlock(lock);
    return rc;
}

/* ------------------------------------------------------------ status */

static void health_down(struct my_ctx *ctx, struct trove_health *out, const char *msg, unsigned err)
{
    if (err == 1045 || err == 1044) {   /* the server answers but refuses the admin */
        out->state = TROVE_DB_UNKNOWN;
        snprintf(out->message, sizeof(out->message), "%.200s", msg);
        return;
    }
    if (!ctx->s.manage_server) {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "%.200s", msg);
        return;
    }
    pid_t pid = my_server_pid(ctx);
    if (restoring(ctx)) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "restoring a backup");
    } else if (pid != 0) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "mariadbd (pid %ld) is not accepting connections yet",
                 (long)pid);
    } else if (tps_dir_empty(ctx->s.datadir)) {
        out->state = TROVE_DB_NEW;
        snprintf(out->message, sizeof(out->message), "not prepared: %s is empty", ctx->s.datadir);
    } else if (stopped_on_purpose(ctx)) {
        out->state = TROVE_DB_STOPPED;
        snprintf(out->message, sizeof(out->message), "stopped");
    } else {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "mariadbd is not running: %.200s", msg);
    }
}

/* The agent zero-fills *out and sets its size; every field written here
 * exists since 2.0, so none needs a TROVE_FIELD_OK test. A server that is
 * down is a state, not a failure. */
int my_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct my_ctx *ctx = self;
    (void)call;
    out->role = TROVE_ROLE_UNKNOWN;
    char msg[512];
    unsigned err = 0;
    MYSQL *conn = my_conn_try(ctx, true, msg, sizeof(msg), &err);
    if (!conn) {
        health_down(ctx, out, msg, err);
        return TROVE_OK;
    }
    if (mysql_query(conn, "SELECT 1") != 0) {
        out->state = TROVE_DB_UNKNOWN;
        snprintf(out->message, sizeof(out->message), "SELECT 1 failed: %s", mysql_error(conn));
    } else {
        MYSQL_RES *res = mysql_store_result(conn);
        if (res)
            mysql_free_result(res);
        out->state = TROVE_DB_RUNNING;
        my_repl_health(ctx, conn, out);
    }
    my_conn_close(conn);
    return TROVE_OK;
}

/* ------------------------------------------------------------ prepare */

static int install_datadir(struct my_ctx *ctx, struct trove_call *call)
{
    char defaults[MY_PATH_MAX + 32], datadir[MY_PATH_MAX + 32];
    tps_path(defaults, sizeof(defaults), "--defaults-file=%s", ctx->my_cnf);
    tps_path(datadir, sizeof(datadir), "--datadir=%s", ctx->s.datadir);
    const char *argv[] = {ctx->s.install_db, defaults, datadir, "--auth-root-authentication-method=normal",
                          "--skip-test-db", NULL};
    char out[512];
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .output = out, .output_size = sizeof(out),
                             .timeout_ms = 600000};
    ctx->host->progress(call, 10, "initialising the data directory");
    return ctx->host->exec(call, &cmd);
}

/* The request's arrays, indexed by the element size the agent gives. */
static const struct trove_database *prepare_database(const struct trove_prepare_request *req, size_t i)
{
    return TROVE_AT(struct trove_database, req->databases, req->database_size, i);
}

static const struct trove_user *prepare_user(const struct trove_prepare_request *req, size_t i)
{
    return TROVE_AT(struct trove_user, req->users, req->user_size, i);
}

static int prepare_objects(struct my_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc != TROVE_OK)
        return rc;
    ctx->host->progress(call, 70, "setting up root, databases and users");
    if (req->root_password)
        rc = my_root_enable_on(ctx, call, conn, req->root_password, false);
    else
        rc = my_root_disable_on(ctx, call, conn);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = my_database_create_on(ctx, call, conn, prepare_database(req, i));
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = my_user_create_on(ctx, call, conn, prepare_user(req, i));
    my_conn_close(conn);
    return rc;
}

/* Everything in the request that can be judged without a server, so bad
 * input is refused before the data directory is installed. */
static int prepare_check(struct my_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    if (!TROVE_FIELD_OK(req, struct trove_prepare_request, restore))
        return ctx->host->fail(call, TROVE_EINVAL, "the prepare request is shorter than ABI 2.0's");
    int rc = req->root_password ? my_name_check_password(ctx, call, req->root_password) : TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = my_database_check_new(ctx, call, prepare_database(req, i));
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = my_user_check_new(ctx, call, prepare_user(req, i));
    return rc;
}

/* A physical backup replaces the data directory instead of an install; a
 * logical one is loaded into a freshly installed server. */
static bool restores_physical(const struct trove_prepare_request *req)
{
    const struct trove_restore_request *r = req->restore;
    if (!r || r->n_pieces == 0)
        return false;
    const struct trove_restore_piece *first = TROVE_AT(struct trove_restore_piece, r->pieces, r->piece_size, 0);
    return first->kind != TROVE_BACKUP_LOGICAL;
}

static int prepare_locked(struct my_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = my_server_make_dir(ctx, call, ctx->s.run_dir, 0750);
    if (rc == TROVE_OK && req->n_overrides)
        rc = my_config_write_overrides(ctx, call, req->overrides, req->n_overrides);
    if (rc != TROVE_OK)
        return rc;
    bool physical = restores_physical(req);
    if (!physical && tps_dir_empty(ctx->s.datadir)) {
        rc = my_server_write_config(ctx, call);
        if (rc == TROVE_OK)
            rc = install_datadir(ctx, call);
    }
    if (rc == TROVE_OK && !physical) {
        ctx->host->progress(call, 40, "starting MariaDB");
        rc = my_server_start(ctx, call);
    }
    if (rc == TROVE_OK && req->restore)
        rc = my_backup_restore_locked(ctx, call, req->restore);
    if (rc == TROVE_OK)
        rc = prepare_objects(ctx, call, req);
    return rc;
}

int my_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct my_ctx *ctx = self;
    int rc = my_server_need_managed(ctx, call, "prepare");
    if (rc == TROVE_OK)
        rc = prepare_check(ctx, call, req);
    if (rc != TROVE_OK)
        return rc;
    int lock = my_server_lock(ctx, call);
    if (lock < 0)
        return -lock;
    rc = prepare_locked(ctx, call, req);
    tps_file_unlock(lock);
    if (rc == TROVE_OK)
        ctx->host->progress(call, 100, "prepared");
    return rc;
}
