/*
 * provision_engine.c - what the local provisioner knows of each plugin's
 * engine: where its files go on the volume, the agent settings that put them
 * there, its pid file and how to stop it when the agent cannot. The engine
 * itself is installed, started and configured by the agent's plugin.
 */
#include "provision_local.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "status.h"

static const char *const mysql_names[] = {"mariadbd", "mysqld", NULL};
static const char *const postgres_names[] = {"postgres", NULL};
static const char *const redis_names[] = {"redis-server", NULL};

static const struct engine_kind kinds[] = {
    {"mysql", "run/mysqld.pid", mysql_names, SIGTERM, false},
    /* SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients). */
    {"postgres", "data/postmaster.pid", postgres_names, SIGINT, true},
    {"redis", "redis.pid", redis_names, SIGTERM, false},
};

const struct engine_kind *engine_kind_find(const char *plugin)
{
    for (size_t i = 0; plugin && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].plugin, plugin) == 0)
            return &kinds[i];
    return NULL;
}

const char *engine_password_key(const struct engine_kind *k)
{
    return strcmp(k->plugin, "mysql") == 0 ? "admin_password" : "password";
}

static int make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        err_set(err, errlen, "mkdir %s: %s", path, strerror(errno));
        return TROVE_EINTERNAL;
    }
    if (chown(path, uid, gid) != 0 || chmod(path, mode) != 0) {
        err_set(err, errlen, "cannot set the owner or mode of %s: %s", path, strerror(errno));
        return TROVE_EINTERNAL;
    }
    return TROVE_OK;
}

int engine_prepare_volume(const struct engine_kind *k, const struct engine_setup *s, char *err, size_t errlen)
{
    char run[LOCAL_PATH + 8];
    snprintf(run, sizeof run, "%s/run", s->lp->vol);
    if (!k->drops_root)
        return make_dir(run, 0750, 0, 0, err, errlen);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(s->pg_os_user, &pw, buf, sizeof buf, &res) != 0 || !res) {
        err_set(err, errlen, "system user \"%s\" (the PostgreSQL server's os_user) does not exist", s->pg_os_user);
        return TROVE_EINVAL;
    }
    /* The socket directory; the plugin makes the data directory itself. */
    return make_dir(run, 0700, pw.pw_uid, pw.pw_gid, err, errlen);
}

/* Write "key = value" lines from a NULL-terminated list of pairs; a NULL
 * or empty value is skipped (the plugin's default applies). */
static int put_pairs(FILE *f, const char *const pairs[], char *err, size_t errlen)
{
    for (size_t i = 0; pairs[i]; i += 2) {
        if (!pairs[i + 1] || !pairs[i + 1][0])
            continue;
        if (ini_put(f, pairs[i], pairs[i + 1]) != 0) {
            err_set(err, errlen, "setting %s holds a line break", pairs[i]);
            return TROVE_EINVAL;
        }
    }
    return TROVE_OK;
}

static int mysql_settings(const struct engine_setup *s, FILE *f, char *err, size_t errlen)
{
    char port[8], socket[LOCAL_PATH + 32], datadir[LOCAL_PATH + 8], run[LOCAL_PATH + 8];
    snprintf(port, sizeof port, "%u", s->rec->port);
    snprintf(socket, sizeof socket, "%s/run/mysqld.sock", s->lp->vol);
    snprintf(datadir, sizeof datadir, "%s/data", s->lp->vol);
    snprintf(run, sizeof run, "%s/run", s->lp->vol);
    if (strlen(socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        err_set(err, errlen, "the server socket %s is too long for a unix socket: use a shorter instances_dir",
                socket);
        return TROVE_EINVAL;
    }
    /* The port is unique on this host, so it also makes a unique server id. */
    const char *pairs[] = {"host", "127.0.0.1", "port", port, "socket", socket, "datadir", datadir,
                           "run_dir", run, "server_user", "root", "server_id", port,
                           "mariadbd", s->rec->engine_binary, NULL};
    return put_pairs(f, pairs, err, errlen);
}

static int postgres_settings(const struct engine_setup *s, FILE *f, char *err, size_t errlen)
{
    char port[8], run[LOCAL_PATH + 8], datadir[LOCAL_PATH + 8], archive[LOCAL_PATH + 16], log[LOCAL_PATH + 16];
    snprintf(port, sizeof port, "%u", s->rec->port);
    snprintf(run, sizeof run, "%s/run", s->lp->vol);
    snprintf(datadir, sizeof datadir, "%s/data", s->lp->vol);
    snprintf(archive, sizeof archive, "%s/wal-archive", s->lp->vol);
    snprintf(log, sizeof log, "%s/server.log", s->lp->vol);
    if (strlen(run) + sizeof "/.s.PGSQL.65535.lock" > sizeof(((struct sockaddr_un *)0)->sun_path)) {
        err_set(err, errlen, "the socket directory %s is too long for a unix socket: use a shorter instances_dir",
                run);
        return TROVE_EINVAL;
    }
    const char *pairs[] = {"host", "127.0.0.1", "port", port, "socket_dir", run, "datadir", datadir,
                           "wal_archive_dir", archive, "log_file", log, "os_user", s->pg_os_user,
                           "sslmode", "disable", "bindir", s->rec->engine_bindir, NULL};
    return put_pairs(f, pairs, err, errlen);
}

static int redis_settings(const struct engine_setup *s, FILE *f, char *err, size_t errlen)
{
    char port[8], conf[LOCAL_PATH + 16], dir[LOCAL_PATH + 8], pid[LOCAL_PATH + 16], log[LOCAL_PATH + 16];
    snprintf(port, sizeof port, "%u", s->rec->port);
    snprintf(conf, sizeof conf, "%s/redis.conf", s->lp->vol);
    snprintf(dir, sizeof dir, "%s/data", s->lp->vol);
    snprintf(pid, sizeof pid, "%s/redis.pid", s->lp->vol);
    snprintf(log, sizeof log, "%s/redis.log", s->lp->vol);
    const char *pairs[] = {"host", "127.0.0.1", "port", port, "config_file", conf, "dir", dir, "pid_file", pid,
                           "log_file", log, "redis_server", s->rec->engine_binary, NULL};
    return put_pairs(f, pairs, err, errlen);
}

int engine_write_settings(const struct engine_kind *k, const struct engine_setup *s, FILE *f, char *err,
                          size_t errlen)
{
    if (strcmp(k->plugin, "mysql") == 0)
        return mysql_settings(s, f, err, errlen);
    if (strcmp(k->plugin, "postgres") == 0)
        return postgres_settings(s, f, err, errlen);
    return redis_settings(s, f, err, errlen);
}

pid_t engine_pid(const struct engine_kind *k, const char *vol)
{
    char path[LOCAL_PATH + 32];
    snprintf(path, sizeof path, "%s/%s", vol, k->pid_file);
    pid_t pid = proc_read_pid_file(path);
    /* A stale pid file may name a recycled pid: only the engine counts. */
    return pid && proc_alive(pid) && proc_comm_is(pid, k->process_names) ? pid : 0;
}

int engine_stop(const struct engine_kind *k, const char *vol, int timeout_ms, char *err, size_t errlen)
{
    pid_t pid = engine_pid(k, vol);
    if (!pid)
        return TROVE_OK;
    if (proc_terminate(pid, k->stop_signal, timeout_ms) != 0) {
        err_set(err, errlen, "the %s server (pid %ld) survived SIGKILL", k->plugin, (long)pid);
        return TROVE_EINTERNAL;
    }
    return TROVE_OK;
}
