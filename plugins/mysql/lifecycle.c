/*
 * lifecycle.c - how the plugin runs mariadbd: it writes its own option file
 * (run_dir/my.cnf, including the overrides and role files), starts the server
 * detached with a pid file, stops it with SIGTERM and waits, and reports its
 * state from a connection, the pid file and a "stopped on purpose" marker.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mysql_plugin.h"

#define ADMIN_HOSTS_N 3
static const char *const ADMIN_HOSTS[ADMIN_HOSTS_N] = {"localhost", "127.0.0.1", "::1"};

int need_managed(struct my_plugin *p, struct trove_call *call, const char *what)
{
    if (p->s.manage_server)
        return TROVE_OK;
    return p->host->fail(call, TROVE_ENOTSUP,
                         "%s: this agent does not manage the MariaDB server (manage_server = false); "
                         "the operator's service manager does", what);
}

const char *tool_user(struct my_plugin *p)
{
    return geteuid() == 0 && strcmp(p->s.server_user, "root") != 0 ? p->s.server_user : NULL;
}

/* chown path to the server's system user when the agent runs as root. */
static int give_to_server(struct my_plugin *p, struct trove_call *call, const char *path)
{
    const char *user = tool_user(p);
    if (!user)
        return TROVE_OK;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return p->host->fail(call, TROVE_EINVAL, "server_user \"%s\" does not exist", user);
    if (chown(path, pw.pw_uid, pw.pw_gid) != 0)
        return p->host->fail(call, TROVE_EINTERNAL, "chown %s: %s", path, strerror(errno));
    return TROVE_OK;
}

static int make_dir(struct my_plugin *p, struct trove_call *call, const char *path, unsigned mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return p->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", path, strerror(errno));
    return give_to_server(p, call, path);
}

static char *marker_path(struct my_plugin *p)
{
    char *s = NULL;
    return asprintf(&s, "%s/stopped", p->s.run_dir) < 0 ? NULL : s;
}

static void set_stopped_marker(struct my_plugin *p, bool stopped)
{
    char *m = marker_path(p);
    if (!m)
        return;
    if (stopped) {
        int fd = open(m, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    } else {
        unlink(m);
    }
    free(m);
}

static bool stopped_on_purpose(struct my_plugin *p)
{
    char *m = marker_path(p);
    bool r = m && path_exists(m);
    free(m);
    return r;
}

/* A live (not zombie) process whose name is the server's. */
static bool process_is_server(struct my_plugin *p, long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren[1] != ' ')
        return false;
    char state = close_paren[2];
    if (state == 'Z' || state == 'X')
        return false;
    *close_paren = '\0';
    const char *comm = open_paren + 1;
    const char *base = strrchr(p->s.mariadbd, '/');
    base = base ? base + 1 : p->s.mariadbd;
    return strncmp(comm, base, 15) == 0 || strcmp(comm, "mariadbd") == 0 || strcmp(comm, "mysqld") == 0;
}

long server_pid(struct my_plugin *p)
{
    char *s = read_file(p->s.pid_file, 64, NULL);
    if (!s)
        return 0;
    int64_t pid = 0;
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    bool ok = parse_i64(s, &pid) && pid > 1;
    free(s);
    return ok && process_is_server(p, (long)pid) ? (long)pid : 0;
}

int client_defaults_file(struct my_plugin *p, struct trove_call *call, char *path, size_t pathlen)
{
    struct sb f = {0};
    sb_add(&f, "[client]\nuser=\"");
    sb_add(&f, p->s.admin_user);
    sb_add(&f, "\"\npassword=\"");
    for (const char *c = p->s.admin_password; *c; c++) {
        if (*c == '\\' || *c == '"')
            sb_add(&f, "\\");
        sb_addn(&f, c, 1);
    }
    sb_add(&f, "\"\n");
    if (p->s.socket && path_exists(p->s.socket))
        sb_addf(&f, "socket=\"%s\"\n", p->s.socket);
    else
        sb_addf(&f, "host=%s\nport=%d\nprotocol=tcp\n", p->s.host, p->s.port);
    int rc = TROVE_OK;
    if (f.oom)
        rc = my_oom(p, call);
    else if (make_dir(p, call, p->s.run_dir, 0750) != TROVE_OK)
        rc = TROVE_EINTERNAL;
    else if (write_secret_file(p->s.run_dir, f.buf, path, pathlen) != 0)
        rc = p->host->fail(call, TROVE_EINTERNAL, "cannot write a credentials file in %s", p->s.run_dir);
    sb_wipe(&f);
    return rc;
}

/* ------------------------------------------------------------ option files */

static int ensure_file(struct my_plugin *p, struct trove_call *call, const char *path, const char *initial)
{
    if (path_exists(path))
        return TROVE_OK;
    int e = write_file_atomic(path, initial, strlen(initial), 0644);
    if (e != 0)
        return p->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    return TROVE_OK;
}

/* run_dir/my.cnf: everything the server needs, then the overrides and role. */
int server_write_config(struct my_plugin *p, struct trove_call *call)
{
    struct my_settings *s = &p->s;
    /* Its own tmpdir: servers sharing /tmp collide on temporary table files. */
    char tmpdir[4200];
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", s->run_dir);
    int rc = make_dir(p, call, s->run_dir, 0750);
    if (rc == TROVE_OK)
        rc = make_dir(p, call, tmpdir, 0700);
    if (rc == TROVE_OK)
        rc = ensure_file(p, call, s->overrides_file, "[mariadbd]\n");
    if (rc == TROVE_OK)
        rc = ensure_file(p, call, s->role_file, "[mariadbd]\n");
    if (rc != TROVE_OK)
        return rc;
    struct sb f = {0};
    sb_add(&f, "# Written by the trove mysql plugin before every start; change the agent's settings instead.\n");
    sb_add(&f, "[mariadbd]\n");
    sb_addf(&f, "datadir=\"%s\"\nsocket=\"%s\"\nport=%d\nbind-address=%s\n", s->datadir, s->socket ? s->socket : "",
            s->port, s->bind_address);
    sb_addf(&f, "pid-file=\"%s\"\nlog-error=\"%s\"\nuser=%s\nserver-id=%ld\n", s->pid_file, s->log_error,
            s->server_user, s->server_id);
    sb_addf(&f, "tmpdir=\"%s\"\n", tmpdir);
    sb_addf(&f, "log-bin=%s\nrelay-log=mariadb-relay-bin\nbinlog-format=ROW\nlog-slave-updates=ON\n", s->log_bin);
    sb_add(&f, "skip-name-resolve\n");
    sb_addf(&f, "!include %s\n!include %s\n", s->overrides_file, s->role_file);
    if (f.oom) {
        sb_free(&f);
        return my_oom(p, call);
    }
    int e = write_file_atomic(s->my_cnf, f.buf, f.len, 0644);
    sb_free(&f);
    if (e != 0)
        return p->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", s->my_cnf, strerror(-e));
    return TROVE_OK;
}

/* An init file run by the server at start, without binary logging: it makes
 * sure the admin account exists with the configured password (after a fresh
 * install, or a restore from another instance's backup). */
static int write_init_file(struct my_plugin *p, struct trove_call *call, char *path, size_t pathlen)
{
    struct sb f = {0};
    sb_add(&f, "SET SESSION sql_log_bin = 0;\nSET SESSION sql_mode = '';\n");
    for (int i = 0; i < ADMIN_HOSTS_N; i++) {
        struct sb acct = {0};
        sb_literal_offline(&acct, p->s.admin_user);
        sb_add(&acct, "@");
        sb_literal_offline(&acct, ADMIN_HOSTS[i]);
        sb_addf(&f, "CREATE USER IF NOT EXISTS %s;\n", acct.buf ? acct.buf : "");
        sb_addf(&f, "ALTER USER %s", acct.buf ? acct.buf : "");
        sb_identified_by(&f, p->s.admin_password);
        sb_add(&f, " ACCOUNT UNLOCK;\n");
        sb_addf(&f, "GRANT ALL PRIVILEGES ON *.* TO %s WITH GRANT OPTION;\n", acct.buf ? acct.buf : "");
        if (acct.oom)
            f.oom = true;
        sb_free(&acct);
    }
    int rc = TROVE_OK;
    if (f.oom)
        rc = my_oom(p, call);
    else if (write_secret_file(p->s.run_dir, f.buf, path, pathlen) != 0)
        rc = p->host->fail(call, TROVE_EINTERNAL, "cannot write the init file in %s", p->s.run_dir);
    else if ((rc = give_to_server(p, call, path)) != TROVE_OK)
        unlink(path);
    sb_wipe(&f);
    return rc;
}

int role_write(struct my_plugin *p, struct trove_call *call, const char *role, bool read_only)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "# Written by the trove mysql plugin.\n# trove-role: %s\n[mariadbd]\nread_only=%s\n",
                     role, read_only ? "ON" : "OFF");
    int rc = make_dir(p, call, p->s.run_dir, 0750);
    if (rc != TROVE_OK)
        return rc;
    int e = write_file_atomic(p->s.role_file, buf, (size_t)n, 0644);
    if (e != 0)
        return p->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", p->s.role_file, strerror(-e));
    return TROVE_OK;
}

void role_read(struct my_plugin *p, char *role, size_t rolelen)
{
    role[0] = '\0';
    char *s = read_file(p->s.role_file, 4096, NULL);
    const char *tag = s ? strstr(s, "# trove-role: ") : NULL;
    if (tag) {
        tag += strlen("# trove-role: ");
        size_t n = strcspn(tag, "\n");
        snprintf(role, rolelen, "%.*s", (int)n, tag);
    }
    free(s);
}

/* ------------------------------------------------------------ start / stop */

/* The [ERROR] lines the server logged since offset `from` (or its last line). */
static void server_errors_since(struct my_plugin *p, off_t from, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t len = 0;
    char *log = read_file(p->s.log_error, 4 << 20, &len);
    if (!log)
        return;
    const char *start = (off_t)len > from ? log + from : log + len;
    if (len - (size_t)(start - log) > 16384)
        start = log + len - 16384;
    size_t used = 0;
    for (const char *line = start; *line;) {
        size_t n = strcspn(line, "\n");
        if (memmem(line, n, "[ERROR]", 7) && used + n + 3 < outlen) {
            used += (size_t)snprintf(out + used, outlen - used, "%s%.*s", used ? "; " : "", (int)n, line);
        }
        line += n + (line[n] ? 1 : 0);
    }
    if (!used) {
        file_tail(p->s.log_error, out, outlen > 300 ? 300 : outlen);
    }
    free(log);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static int launch(struct my_plugin *p, struct trove_call *call, const char *init_file)
{
    char defaults[4200], init[4200];
    snprintf(defaults, sizeof(defaults), "--defaults-file=%s", p->s.my_cnf);
    path_printf(init, sizeof(init), "--init-file=%s", init_file);
    /* setsid -f detaches mariadbd into its own session so it outlives the call;
     * its stdout/stderr go to the error log, never to the agent's pipes. */
    const char *argv[] = {"/bin/sh", "-c", "log=$1; shift; exec setsid -f \"$@\" </dev/null >>\"$log\" 2>&1",
                          "sh", p->s.log_error, p->s.mariadbd, defaults, init, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .timeout_ms = 30000};
    return p->host->exec(call, &cmd);
}

/* Poll until the admin can connect; fail early if the server died. */
static int wait_ready(struct my_plugin *p, struct trove_call *call, off_t log_from)
{
    uint64_t deadline = mono_ms() + (uint64_t)p->s.start_timeout * 1000;
    uint64_t started = mono_ms();
    char msg[512];
    unsigned err = 0;
    for (;;) {
        MYSQL *conn = my_try_connect(p, true, msg, sizeof(msg), &err);
        if (conn) {
            my_close(conn);
            return TROVE_OK;
        }
        if (p->host->cancelled(call))
            return p->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for MariaDB to start");
        bool alive = server_pid(p) != 0;
        if (!alive && mono_ms() - started > 3000) {
            char errors[1024];
            sleep_ms(200);
            server_errors_since(p, log_from, errors, sizeof(errors));
            return p->host->fail(call, TROVE_EDATASTORE, "mariadbd exited during start: %s",
                                 *errors ? errors : "see the error log");
        }
        if (mono_ms() > deadline)
            return p->host->fail(call, TROVE_ETIMEOUT, "MariaDB did not accept connections within %u s: %s",
                                 p->s.start_timeout, msg);
        sleep_ms(100);
    }
}

int server_start(struct my_plugin *p, struct trove_call *call)
{
    int rc = need_managed(p, call, "start");
    if (rc != TROVE_OK)
        return rc;
    set_stopped_marker(p, false);
    if (server_pid(p) != 0)
        return wait_ready(p, call, file_size(p->s.log_error));
    if (dir_is_empty_or_missing(p->s.datadir))
        return p->host->fail(call, TROVE_ECONFLICT, "the data directory %s is empty: run prepare first",
                             p->s.datadir);
    char init[4200];
    rc = server_write_config(p, call);
    if (rc == TROVE_OK)
        rc = write_init_file(p, call, init, sizeof(init));
    if (rc != TROVE_OK)
        return rc;
    unlink(p->s.pid_file);   /* stale: the process is gone (checked above) */
    off_t log_from = file_size(p->s.log_error);
    p->host->log(TROVE_LOG_INFO, "mysql: starting mariadbd (datadir %s, port %d)", p->s.datadir, p->s.port);
    rc = launch(p, call, init);
    if (rc == TROVE_OK)
        rc = wait_ready(p, call, log_from);
    unlink(init);
    return rc;
}

int server_stop(struct my_plugin *p, struct trove_call *call)
{
    int rc = need_managed(p, call, "stop");
    if (rc != TROVE_OK)
        return rc;
    set_stopped_marker(p, true);
    long pid = server_pid(p);
    if (pid == 0)
        return TROVE_OK;
    p->host->log(TROVE_LOG_INFO, "mysql: stopping mariadbd (pid %ld)", pid);
    if (kill((pid_t)pid, SIGTERM) != 0 && errno != ESRCH)
        return p->host->fail(call, TROVE_EINTERNAL, "kill %ld: %s", pid, strerror(errno));
    uint64_t deadline = mono_ms() + (uint64_t)p->s.stop_timeout * 1000;
    while (process_is_server(p, pid)) {
        if (mono_ms() > deadline)
            return p->host->fail(call, TROVE_ETIMEOUT, "mariadbd (pid %ld) still running %u s after SIGTERM", pid,
                                 p->s.stop_timeout);
        sleep_ms(50);
    }
    return TROVE_OK;
}

int my_start(void *self, struct trove_call *call)
{
    return server_start(self, call);
}

int my_stop(void *self, struct trove_call *call)
{
    return server_stop(self, call);
}

int my_restart(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    int rc = server_stop(p, call);
    if (rc == TROVE_OK)
        rc = server_start(p, call);
    return rc;
}

/* ------------------------------------------------------------ status */

static char *restoring_path(struct my_plugin *p)
{
    char *s = NULL;
    return asprintf(&s, "%s/restoring", p->s.run_dir) < 0 ? NULL : s;
}

void mark_restoring(struct my_plugin *p, bool on)
{
    char *m = restoring_path(p);
    if (!m)
        return;
    if (on) {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        write_file_atomic(m, pid, (size_t)n, 0644);
    } else {
        unlink(m);
    }
    free(m);
}

/* A restore by a live agent process is under way. */
static bool restoring(struct my_plugin *p)
{
    char *m = restoring_path(p);
    char *text = m ? read_file(m, 32, NULL) : NULL;
    int64_t pid = 0;
    char proc[64];
    if (text)
        text[strcspn(text, "\n")] = '\0';
    bool live = text && parse_i64(text, &pid) && pid > 0 &&
                snprintf(proc, sizeof(proc), "/proc/%lld", (long long)pid) > 0 && path_exists(proc);
    free(text);
    free(m);
    return live;
}

static void health_down(struct my_plugin *p, struct trove_health *out, const char *msg, unsigned err)
{
    if (err == 1045 || err == 1044) {   /* the server answers but refuses the admin */
        out->state = TROVE_DB_UNKNOWN;
        snprintf(out->message, sizeof(out->message), "%.200s", msg);
        return;
    }
    if (!p->s.manage_server) {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "%.200s", msg);
        return;
    }
    long pid = server_pid(p);
    if (restoring(p)) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "restoring a backup");
    } else if (pid != 0) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "mariadbd (pid %ld) is not accepting connections yet", pid);
    } else if (dir_is_empty_or_missing(p->s.datadir)) {
        out->state = TROVE_DB_NEW;
        snprintf(out->message, sizeof(out->message), "not prepared: %s is empty", p->s.datadir);
    } else if (stopped_on_purpose(p)) {
        out->state = TROVE_DB_STOPPED;
        snprintf(out->message, sizeof(out->message), "stopped");
    } else {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "mariadbd is not running: %.200s", msg);
    }
}

int my_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct my_plugin *p = self;
    (void)call;
    out->role = TROVE_ROLE_UNKNOWN;
    char msg[512];
    unsigned err = 0;
    MYSQL *conn = my_try_connect(p, true, msg, sizeof(msg), &err);
    if (!conn) {
        health_down(p, out, msg, err);
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
        repl_health(p, conn, out);
    }
    my_close(conn);
    return TROVE_OK;
}

/* ------------------------------------------------------------ prepare */

static int install_datadir(struct my_plugin *p, struct trove_call *call)
{
    char defaults[4200], datadir[4200];
    snprintf(defaults, sizeof(defaults), "--defaults-file=%s", p->s.my_cnf);
    snprintf(datadir, sizeof(datadir), "--datadir=%s", p->s.datadir);
    const char *argv[] = {p->s.install_db, defaults, datadir, "--auth-root-authentication-method=normal",
                          "--skip-test-db", NULL};
    char out[512];
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .output = out, .output_size = sizeof(out), .timeout_ms = 600000};
    p->host->progress(call, 10, "initialising the data directory");
    return p->host->exec(call, &cmd);
}

static int prepare_objects(struct my_plugin *p, struct trove_call *call, const struct trove_prepare_request *req)
{
    MYSQL *conn = NULL;
    int rc = my_connect(p, call, false, &conn);
    if (rc != TROVE_OK)
        return rc;
    p->host->progress(call, 70, "setting up root, databases and users");
    if (req->root_password) {
        rc = root_enable_on(p, call, conn, req->root_password, false);
    } else {
        rc = root_disable_on(p, call, conn);
    }
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = databases_create_on(p, call, conn, &req->databases[i]);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = users_create_on(p, call, conn, &req->users[i]);
    my_close(conn);
    return rc;
}

/* Everything in the request that can be judged without a server, so bad
 * input is refused before the data directory is installed. */
static int prepare_check(struct my_plugin *p, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = req->root_password ? check_password(p, call, req->root_password) : TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = databases_check_new(p, call, &req->databases[i]);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = users_check_new(p, call, &req->users[i]);
    return rc;
}

int my_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct my_plugin *p = self;
    int rc = need_managed(p, call, "prepare");
    if (rc == TROVE_OK)
        rc = prepare_check(p, call, req);
    if (rc == TROVE_OK)
        rc = make_dir(p, call, p->s.run_dir, 0750);
    if (rc == TROVE_OK && req->n_overrides)
        rc = config_write_overrides(p, call, req->overrides, req->n_overrides);
    if (rc != TROVE_OK)
        return rc;
    bool physical = req->restore && req->restore->n_pieces > 0 &&
                    req->restore->pieces[0].kind != TROVE_BACKUP_LOGICAL;
    if (!physical && dir_is_empty_or_missing(p->s.datadir)) {
        rc = server_write_config(p, call);
        if (rc == TROVE_OK)
            rc = install_datadir(p, call);
    }
    if (rc == TROVE_OK && !physical) {
        p->host->progress(call, 40, "starting MariaDB");
        rc = server_start(p, call);
    }
    if (rc == TROVE_OK && req->restore)
        rc = my_backup_restore(p, call, req->restore);
    if (rc == TROVE_OK)
        rc = prepare_objects(p, call, req);
    if (rc == TROVE_OK)
        p->host->progress(call, 100, "prepared");
    return rc;
}
