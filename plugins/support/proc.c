/*
 * proc.c - supervising an engine process: start it detached (double fork,
 * its own session, its output in a log file, no descriptor of the agent's),
 * find it again from a pid file, wait until it is ready, stop it with
 * escalation. Between fork and exec only async-signal-safe calls run: the
 * agent is multithreaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trove_plugin_support.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct identity {
    bool set;
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int n_groups;
    char home[512];
};

static const char *proc_name(const struct tps_proc *spec)
{
    return spec->name ? spec->name : spec->argv[0];
}

static int resolve_user(const struct trove_host *h, struct trove_call *call, const char *name, struct identity *id)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return h->fail(call, TROVE_EINVAL, "system user \"%s\" does not exist", name);
    id->set = true;
    id->uid = pw.pw_uid;
    id->gid = pw.pw_gid;
    id->n_groups = 64;
    if (getgrouplist(name, pw.pw_gid, id->groups, &id->n_groups) < 0)
        id->n_groups = 0;
    snprintf(id->home, sizeof(id->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
    return TROVE_OK;
}

static int resolve_program(const struct trove_host *h, struct trove_call *call, const char *prog, char *out,
                           size_t outlen)
{
    if (strchr(prog, '/')) {
        snprintf(out, outlen, "%s", prog);
        return access(out, X_OK) == 0 ? TROVE_OK : h->fail(call, TROVE_ENOTFOUND, "%s: %s", prog, strerror(errno));
    }
    const char *path = getenv("PATH");
    for (const char *p = path && *path ? path : DEFAULT_PATH; *p;) {
        size_t len = strcspn(p, ":");
        if (len > 0 && tps_path(out, outlen, "%.*s/%s", (int)len, p, prog) && access(out, X_OK) == 0)
            return TROVE_OK;
        p += len + (p[len] ? 1 : 0);
    }
    return h->fail(call, TROVE_ENOTFOUND, "%s: command not found in PATH", prog);
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++) {
        explicit_bzero(env[i], strlen(env[i]));   /* entries may hold secrets */
        free(env[i]);
    }
    free(env);
}

static char **build_env(const struct tps_proc *spec, const struct identity *id)
{
    size_t n = 0;
    while (spec->env && spec->env[n])
        n++;
    char **env = calloc(n + 4, sizeof(char *));
    const char *path = getenv("PATH"), *home = id->set ? id->home : getenv("HOME");
    if (!env || asprintf(&env[0], "PATH=%s", path ? path : DEFAULT_PATH) < 0 ||
        asprintf(&env[1], "HOME=%s", home ? home : "/") < 0 || !(env[2] = strdup("LANG=C.UTF-8")))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!(env[3 + i] = strdup(spec->env[i])))
            goto fail;
    return env;
fail:
    free_env(env);
    return NULL;
}

/* The grandchild: becomes the engine. Only async-signal-safe calls. */
static void become_engine(const char *prog, const struct tps_proc *spec, char **env, const struct identity *id,
                          int log_fd, int status_w)
{
    int e = 0;
    sigset_t none;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(log_fd >= 0 ? log_fd : devnull, 1) < 0 ||
        dup2(log_fd >= 0 ? log_fd : devnull, 2) < 0)
        e = errno;
    if (!e && id->set && (setgroups((size_t)id->n_groups, id->groups) != 0 || setgid(id->gid) != 0 ||
                          setuid(id->uid) != 0))
        e = errno;
    if (!e && chdir(spec->cwd ? spec->cwd : "/") != 0)
        e = errno;
    /* Keep only the status pipe, as fd 3, close-on-exec; close the rest. */
    if (status_w != 3 && (dup2(status_w, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) != 0))
        _exit(126);
    closefrom(4);
    if (!e) {
        execve(prog, (char *const *)spec->argv, env);
        e = errno;
    }
    (void)!write(3, &e, sizeof(e));
    _exit(127);
}

/* fork twice so the engine is nobody's child: it outlives the agent, and no
 * zombie is left behind. The middle child reports the engine's pid; a
 * close-on-exec pipe reports an exec failure (EOF means exec succeeded). */
static int spawn(const char *prog, const struct tps_proc *spec, char **env, const struct identity *id, int log_fd,
                 pid_t *pid, int *exec_errno)
{
    int pid_pipe[2], status_pipe[2];
    if (pipe2(pid_pipe, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(status_pipe, O_CLOEXEC) != 0) {
        int e = errno;
        close(pid_pipe[0]), close(pid_pipe[1]);
        return -e;
    }
    pid_t middle = fork();
    if (middle == 0) {
        pid_t engine = fork();
        if (engine == 0)
            become_engine(prog, spec, env, id, log_fd, status_pipe[1]);
        (void)!write(pid_pipe[1], &engine, sizeof(engine));
        _exit(engine > 0 ? 0 : 1);
    }
    close(pid_pipe[1]), close(status_pipe[1]);
    int rc = 0;
    *pid = 0;
    *exec_errno = 0;
    if (middle < 0)
        rc = -errno;
    else {
        while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
            ;
        if (read(pid_pipe[0], pid, sizeof(*pid)) != (ssize_t)sizeof(*pid) || *pid <= 0)
            rc = -EAGAIN;
        else if (read(status_pipe[0], exec_errno, sizeof(*exec_errno)) > 0 && *exec_errno == 0)
            *exec_errno = EIO;
    }
    close(pid_pipe[0]), close(status_pipe[0]);
    return rc;
}

static int open_log(const struct trove_host *h, struct trove_call *call, const struct tps_proc *spec,
                    const struct identity *id, int *fd)
{
    *fd = -1;
    if (!spec->log_file)
        return TROVE_OK;
    *fd = open(spec->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return h->fail(call, TROVE_EINTERNAL, "cannot open %s: %s", spec->log_file, strerror(errno));
    if (id->set && fchown(*fd, id->uid, id->gid) != 0) {
        close(*fd);
        *fd = -1;
        return h->fail(call, TROVE_EINTERNAL, "cannot give %s to the engine's user: %s", spec->log_file,
                       strerror(errno));
    }
    return TROVE_OK;
}

int tps_proc_start(const struct trove_host *h, struct trove_call *call, const struct tps_proc *spec, pid_t *pid)
{
    struct identity id = {0};
    char prog[4096];
    char **env = NULL;
    int log_fd = -1, exec_errno = 0, rc;
    *pid = 0;
    if (!spec->argv || !spec->argv[0])
        return h->fail(call, TROVE_EINVAL, "no command to start");
    if ((spec->run_as && (rc = resolve_user(h, call, spec->run_as, &id)) != TROVE_OK) ||
        (rc = resolve_program(h, call, spec->argv[0], prog, sizeof(prog))) != TROVE_OK ||
        (rc = open_log(h, call, spec, &id, &log_fd)) != TROVE_OK)
        return rc;
    if (!(env = build_env(spec, &id))) {
        rc = h->fail(call, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    int e = spawn(prog, spec, env, &id, log_fd, pid, &exec_errno);
    if (e != 0)
        rc = h->fail(call, TROVE_EINTERNAL, "cannot start %s: %s", proc_name(spec), strerror(-e));
    else if (exec_errno)
        rc = h->fail(call, TROVE_EDATASTORE, "cannot start %s: %s", proc_name(spec), strerror(exec_errno));
    if (rc == TROVE_OK && spec->pid_file) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%ld\n", (long)*pid);
        if ((e = tps_file_write_atomic(spec->pid_file, text, (size_t)n, 0644)) != 0)
            h->log(TROVE_LOG_WARN, "%s started (pid %ld) but %s could not be written: %s", proc_name(spec),
                   (long)*pid, spec->pid_file, strerror(-e));
    }
    if (rc == TROVE_OK)
        h->log(TROVE_LOG_INFO, "started %s (pid %ld)", proc_name(spec), (long)*pid);
out:
    if (log_fd >= 0)
        close(log_fd);
    free_env(env);
    return rc;
}

/* The state letter and name from /proc/<pid>/stat; false when gone. */
static bool proc_stat(pid_t pid, char *state, char *comm, size_t commlen)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
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
    *state = close_paren[2];
    snprintf(comm, commlen, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    return true;
}

bool tps_proc_alive(pid_t pid)
{
    char state, comm[64];
    if (pid <= 0)
        return false;
    if (!proc_stat(pid, &state, comm, sizeof(comm)))
        return kill(pid, 0) == 0 || errno == EPERM;
    return state != 'Z' && state != 'X';
}

pid_t tps_proc_pid(const char *pid_file, const char *comm)
{
    char *text = tps_file_read(pid_file, 4096, NULL);   /* PostgreSQL's postmaster.pid has 8 lines */
    int64_t pid = 0;
    if (text)
        text[strcspn(text, "\n")] = '\0';
    bool ok = text && tps_parse_int(text, 2, INT32_MAX, &pid);
    free(text);
    if (!ok || !tps_proc_alive((pid_t)pid))
        return 0;
    char state, name[64];
    if (comm && (!proc_stat((pid_t)pid, &state, name, sizeof(name)) || strncmp(name, comm, 15) != 0))
        return 0;
    return (pid_t)pid;
}

/* The end of the log, on one line, for a message. */
static void log_tail_line(const char *log_file, char *out, size_t max)
{
    out[0] = '\0';
    if (!log_file)
        return;
    tps_file_tail(log_file, out, max);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int tps_proc_wait_ready(const struct trove_host *h, struct trove_call *call, pid_t pid, const char *name,
                        const char *log_file, uint32_t timeout_ms, tps_ready_fn ready, void *ctx)
{
    uint64_t start = tps_now_ms(), next_report = start + 2000;
    char tail[400];
    for (;;) {
        int r = ready(ctx);
        if (r > 0)
            return TROVE_OK;
        if (r < 0)
            return TROVE_EDATASTORE;
        if (h->cancelled(call))
            return h->fail(call, TROVE_ECANCELLED, "cancelled while waiting for %s to start", name);
        if (!tps_proc_alive(pid) && ready(ctx) <= 0) {
            log_tail_line(log_file, tail, sizeof(tail));
            return h->fail(call, TROVE_EDATASTORE, "%s exited during start%s%s", name, tail[0] ? "; its log ends: " : "",
                           tail);
        }
        uint64_t now = tps_now_ms();
        if (now - start >= timeout_ms) {
            log_tail_line(log_file, tail, sizeof(tail));
            return h->fail(call, TROVE_ETIMEOUT, "%s was not ready after %u ms%s%s", name, timeout_ms,
                           tail[0] ? "; its log ends: " : "", tail);
        }
        if (now >= next_report) {
            h->progress(call, -1, "waiting for %s to accept connections", name);
            next_report = now + 2000;
        }
        tps_sleep_ms(50);
    }
}

static bool wait_gone(pid_t pid, uint32_t ms)
{
    uint64_t deadline = tps_now_ms() + ms;
    while (tps_proc_alive(pid)) {
        if (tps_now_ms() >= deadline)
            return false;
        tps_sleep_ms(20);
    }
    return true;
}

int tps_proc_stop(const struct trove_host *h, struct trove_call *call, pid_t pid, const char *name, int sig,
                  uint32_t grace_ms, uint32_t kill_ms)
{
    if (pid <= 0 || !tps_proc_alive(pid))
        return TROVE_OK;
    if (kill(pid, sig) != 0 && errno != ESRCH)
        return h->fail(call, TROVE_EINTERNAL, "cannot signal %s (pid %ld): %s", name, (long)pid, strerror(errno));
    if (wait_gone(pid, grace_ms))
        return TROVE_OK;
    h->log(TROVE_LOG_WARN, "%s (pid %ld) still running %u ms after signal %d; killing it", name, (long)pid, grace_ms,
           sig);
    if (kill(-pid, SIGKILL) != 0)   /* its session's process group, when it leads one */
        kill(pid, SIGKILL);
    if (wait_gone(pid, kill_ms))
        return TROVE_OK;
    return h->fail(call, TROVE_ETIMEOUT, "%s (pid %ld) did not exit even after SIGKILL", name, (long)pid);
}
