/*
 * server.c - the PostgreSQL server process: start/stop/restart with pg_ctl
 * as the os_user, status from a short connection plus postmaster.pid, and
 * the file helpers (directories, 0600 files) that run as root for os_user.
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

#include "pg.h"

int pg_require_datadir(struct pg *pg, struct trove_call *call)
{
    if (pg->datadir[0])
        return TROVE_OK;
    return pg->h->fail(call, TROVE_ENOTSUP, "the datadir setting is empty: this server is not managed locally");
}

int pg_exec(struct pg *pg, struct trove_call *call, const char *const *argv, const char *const *env,
            struct trove_source *in, struct trove_sink *out)
{
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .env = env, .cwd = "/", .run_as = pg->os_user,
                             .stdin_source = in, .stdout_sink = out};
    return pg->h->exec(call, &cmd);
}

int pg_tool(struct pg *pg, struct trove_call *call, const char *const *argv, const char *const *env,
            char *output, size_t output_size)
{
    size_t n = 0;
    while (argv[n])
        n++;
    if (n == 0)
        return pg->h->fail(call, TROVE_EINTERNAL, "empty command");
    const char **args = calloc(n + 1, sizeof(char *));
    char prog[PG_PATH_MAX + 64];
    if (!args)
        return pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    snprintf(prog, sizeof(prog), "%s/%s", pg->bindir, argv[0]);
    args[0] = prog;
    for (size_t i = 1; i < n; i++)
        args[i] = argv[i];
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = args, .env = env, .cwd = "/", .run_as = pg->os_user,
                             .output = output, .output_size = output_size};
    int rc = pg->h->exec(call, &cmd);
    free(args);
    return rc;
}

static int os_ids(struct pg *pg, struct trove_call *call, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(pg->os_user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return pg->h->fail(call, TROVE_EINVAL, "system user \"%s\" (setting os_user) does not exist", pg->os_user);
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return TROVE_OK;
}

int pg_chown(struct pg *pg, struct trove_call *call, const char *path)
{
    uid_t uid;
    gid_t gid;
    int rc = os_ids(pg, call, &uid, &gid);
    if (rc == TROVE_OK && lchown(path, uid, gid) != 0)
        rc = pg->h->fail(call, TROVE_EINTERNAL, "chown %s: %s", path, strerror(errno));
    return rc;
}

int pg_make_dir(struct pg *pg, struct trove_call *call, const char *path, int mode)
{
    char tmp[PG_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return pg->h->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
        return pg->h->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", tmp, strerror(errno));
    int rc = pg_chown(pg, call, tmp);
    if (rc == TROVE_OK && chmod(tmp, (mode_t)mode) != 0)
        rc = pg->h->fail(call, TROVE_EINTERNAL, "chmod %s: %s", tmp, strerror(errno));
    return rc;
}

int pg_store_file(struct pg *pg, const char *path, const char *text)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(pg->os_user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return ENOENT;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    size_t len = strlen(text), off = 0;
    int err = 0;
    while (off < len && !err) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            err = errno;
        off += w > 0 ? (size_t)w : 0;
    }
    if (!err && (fchmod(fd, 0600) != 0 || fchown(fd, pw.pw_uid, pw.pw_gid) != 0))
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    return err;
}

int pg_write_file(struct pg *pg, struct trove_call *call, const char *path, const char *text)
{
    uid_t uid;
    gid_t gid;
    int rc = os_ids(pg, call, &uid, &gid);   /* a missing os_user gets its own message */
    int err = rc == TROVE_OK ? pg_store_file(pg, path, text) : 0;
    return err ? pg->h->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(err)) : rc;
}

int pg_remove_tree(struct pg *pg, struct trove_call *call, const char *path)
{
    if (access(path, F_OK) != 0)
        return TROVE_OK;
    const char *argv[] = {"rm", "-rf", "--", path, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .cwd = "/"};
    return pg->h->exec(call, &cmd);
}

/* The postmaster's pid from postmaster.pid, or 0. */
static pid_t postmaster_pid(struct pg *pg)
{
    char path[PG_PATH_MAX + 32], line[32] = "";
    snprintf(path, sizeof(path), "%s/postmaster.pid", pg->datadir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    long pid = strtol(line, NULL, 10);
    return pid > 0 ? (pid_t)pid : 0;
}

bool pg_server_running(struct pg *pg)
{
    pid_t pid = pg->datadir[0] ? postmaster_pid(pg) : 0;
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static bool datadir_initialised(struct pg *pg)
{
    char path[PG_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/PG_VERSION", pg->datadir);
    return access(path, F_OK) == 0;
}

/* The last lines of the server log, to say why a start failed. */
static void log_tail(struct pg *pg, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(pg->log_file, "r");
    if (!f)
        return;
    long want = (long)len - 1;
    if (fseek(f, -want, SEEK_END) != 0)
        rewind(f);
    size_t got = fread(buf, 1, len - 1, f);
    buf[got] = '\0';
    fclose(f);
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

int pg_server_start(struct pg *pg, struct trove_call *call, const char *extra_opts)
{
    int rc = pg_require_datadir(pg, call);
    if (rc != TROVE_OK || pg_server_running(pg))
        return rc;
    if (!datadir_initialised(pg))
        return pg->h->fail(call, TROVE_ECONFLICT, "%s holds no database cluster: run prepare first", pg->datadir);
    int fd = open(pg->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return pg->h->fail(call, TROVE_EINTERNAL, "open %s: %s", pg->log_file, strerror(errno));
    close(fd);
    if ((rc = pg_chown(pg, call, pg->log_file)) != TROVE_OK)
        return rc;
    char opts[2048], timeout[16];
    int n = snprintf(opts, sizeof(opts), "-p %d", pg->port);
    if (pg->listen_addresses[0] && !(extra_opts && strstr(extra_opts, "listen_addresses")))
        n += snprintf(opts + n, sizeof(opts) - (size_t)n, " -c listen_addresses=%s", pg->listen_addresses);
    if (pg->socket_dir[0] && !(extra_opts && strstr(extra_opts, "-k ")))
        n += snprintf(opts + n, sizeof(opts) - (size_t)n, " -k %s", pg->socket_dir);
    if (extra_opts)
        snprintf(opts + n, sizeof(opts) - (size_t)n, " %s", extra_opts);
    snprintf(timeout, sizeof(timeout), "%d", pg->start_timeout);
    const char *argv[] = {"pg_ctl", "start", "-w", "-t", timeout, "-D", pg->datadir, "-l", pg->log_file,
                          "-o", opts, NULL};
    pg->h->log(TROVE_LOG_INFO, "postgres: starting the server in %s", pg->datadir);
    rc = pg_tool(pg, call, argv, NULL, NULL, 0);
    if (rc != TROVE_OK) {
        char tail[400];
        log_tail(pg, tail, sizeof(tail));
        rc = pg->h->fail(call, TROVE_EDATASTORE, "the server did not start; server log ends: %s", tail);
    }
    return rc;
}

int pg_server_stop(struct pg *pg, struct trove_call *call, const char *mode)
{
    int rc = pg_require_datadir(pg, call);
    if (rc != TROVE_OK || !pg_server_running(pg))
        return rc;
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", pg->start_timeout);
    const char *argv[] = {"pg_ctl", "stop", "-w", "-t", timeout, "-D", pg->datadir, "-m", mode, NULL};
    pg->h->log(TROVE_LOG_INFO, "postgres: stopping the server in %s (%s)", pg->datadir, mode);
    return pg_tool(pg, call, argv, NULL, NULL, 0);
}

int pg_start(void *self, struct trove_call *call)
{
    return pg_server_start(self, call, NULL);
}

int pg_stop(void *self, struct trove_call *call)
{
    return pg_server_stop(self, call, "fast");
}

int pg_restart(void *self, struct trove_call *call)
{
    int rc = pg_server_stop(self, call, "fast");
    return rc == TROVE_OK ? pg_server_start(self, call, NULL) : rc;
}

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
        out->role = standby ? TROVE_ROLE_REPLICA
                  : atol(PQgetvalue(r, 0, 3)) > 0 ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
        snprintf(out->position, sizeof(out->position), "%s", PQgetvalue(r, 0, 1));
        out->term = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
    } else {
        snprintf(out->message, sizeof(out->message), "status query failed: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
}

int pg_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct pg *pg = self;
    (void)call;
    char port[16];
    snprintf(port, sizeof(port), "%d", pg->port);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", "gssencmode",
                          "connect_timeout", "application_name", NULL};
    const char *vals[] = {pg->host, port, pg->user, pg->password[0] ? pg->password : NULL, pg->database,
                          pg->sslmode, "disable", "2", "trove-agent", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c && PQstatus(c) == CONNECTION_OK) {
        running_health(c, out);
        PQfinish(c);
        return TROVE_OK;
    }
    snprintf(out->message, sizeof(out->message), "%s", c ? PQerrorMessage(c) : "out of memory");
    out->message[strcspn(out->message, "\n")] = '\0';
    PQfinish(c);
    if (!pg->datadir[0])
        out->state = TROVE_DB_UNKNOWN;
    else if (!datadir_initialised(pg))
        out->state = TROVE_DB_NEW;
    else if (pg_server_running(pg))
        out->state = TROVE_DB_STARTING;
    else if (postmaster_pid(pg) > 0)
        out->state = TROVE_DB_CRASHED;
    else
        out->state = TROVE_DB_STOPPED;
    if (out->state == TROVE_DB_CRASHED)
        snprintf(out->message, sizeof(out->message), "the postmaster died (stale postmaster.pid)");
    else if (out->state == TROVE_DB_STOPPED)
        snprintf(out->message, sizeof(out->message), "the server is not running");
    return TROVE_OK;
}
