/*
 * exec.c - runs external tools for plugins (backup tools, initdb, ...).
 * argv is executed directly (never through a shell); secrets travel in the
 * environment. Only async-signal-safe calls happen between fork and exec.
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "log.h"
#include "sink.h"
#include "stream.h"

#define STDERR_TAIL TROVE_EXEC_STDERR_MAX
#define CHUNK (256 * 1024)

struct identity {
    bool set;
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int n_groups;
    char home[512];
};

static int resolve_user(struct trove_call *call, const char *name, struct identity *id)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return call_fail(call, TROVE_EINVAL, "system user \"%s\" does not exist", name);
    id->set = true;
    id->uid = pw.pw_uid;
    id->gid = pw.pw_gid;
    id->n_groups = 64;
    if (getgrouplist(name, pw.pw_gid, id->groups, &id->n_groups) < 0)
        id->n_groups = 0;
    snprintf(id->home, sizeof(id->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
    return TROVE_OK;
}

/* Find argv[0] in PATH before forking (execvp may allocate in the child). */
static int resolve_program(struct trove_call *call, const char *prog, char *out, size_t outlen)
{
    if (strchr(prog, '/')) {
        snprintf(out, outlen, "%s", prog);
        return access(out, X_OK) == 0 ? TROVE_OK
                                        : call_fail(call, TROVE_ENOTFOUND, "%s: %s", prog, strerror(errno));
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0 && (size_t)snprintf(out, outlen, "%.*s/%s", (int)len, p, prog) < outlen &&
            access(out, X_OK) == 0)
            return TROVE_OK;
        p += len + (colon ? 1 : 0);
    }
    return call_fail(call, TROVE_ENOTFOUND, "%s: command not found in PATH", prog);
}

static char **build_env(const struct trove_exec *cmd, const struct identity *id)
{
    size_t n = 0;
    while (cmd->env && cmd->env[n])
        n++;
    char **env = calloc(n + 5, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    const char *path = getenv("PATH");
    if (asprintf(&env[k++], "PATH=%s", path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") < 0 ||
        asprintf(&env[k++], "HOME=%s", id->set ? id->home : (getenv("HOME") ? getenv("HOME") : "/")) < 0 ||
        asprintf(&env[k++], "LANG=C.UTF-8") < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!(env[k++] = strdup(cmd->env[i])))
            goto fail;
    return env;
fail:
    for (size_t i = 0; i < n + 5; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

struct child_io {
    int in_fd, out_fd, err_fd;     /* parent's ends; -1 when closed */
    char *in_buf;
    size_t in_len, in_off;
    bool in_eof;
    char err_tail[STDERR_TAIL];
    size_t err_len;
    size_t out_len;                /* bytes stored in cmd->output */
};

static void child_exec(const char *prog, const struct trove_exec *cmd, char **env, const struct identity *id,
                       int in_r, int out_w, int err_w)
{
    sigset_t none;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDWR);
    if (dup2(in_r >= 0 ? in_r : devnull, 0) < 0 || dup2(out_w >= 0 ? out_w : devnull, 1) < 0 || dup2(err_w, 2) < 0)
        _exit(126);
    closefrom(3);
    if (id->set && (setgroups((size_t)id->n_groups, id->groups) != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0))
        _exit(126);
    if (cmd->cwd && chdir(cmd->cwd) != 0)
        _exit(126);
    execve(prog, (char *const *)cmd->argv, env);
    _exit(127);
}

static void keep_tail(struct child_io *io, const char *data, size_t n)
{
    if (n >= STDERR_TAIL - 1) {
        memcpy(io->err_tail, data + n - (STDERR_TAIL - 1), STDERR_TAIL - 1);
        io->err_len = STDERR_TAIL - 1;
        return;
    }
    if (io->err_len + n > STDERR_TAIL - 1) {
        size_t drop = io->err_len + n - (STDERR_TAIL - 1);
        memmove(io->err_tail, io->err_tail + drop, io->err_len - drop);
        io->err_len -= drop;
    }
    memcpy(io->err_tail + io->err_len, data, n);
    io->err_len += n;
}

/* Move bytes for one poll round. Returns TROVE_OK or a stream failure status. */
static int pump(struct trove_call *call, struct trove_exec *cmd, struct child_io *io, struct pollfd *fds, char *buf)
{
    if (io->out_fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = read(io->out_fd, buf, CHUNK);
        if (r > 0) {
            if (cmd->stdout_sink) {
                int rc = sink_write(cmd->stdout_sink, buf, (size_t)r);
                if (rc != TROVE_OK)
                    return call_fail(call, rc, "writing %s output: %s", cmd->argv[0], sink_error(cmd->stdout_sink));
            } else if (cmd->output && cmd->output_size > 1) {
                size_t room = cmd->output_size - 1 - io->out_len;
                size_t n = (size_t)r < room ? (size_t)r : room;
                memcpy(cmd->output + io->out_len, buf, n);
                io->out_len += n;
            }
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(io->out_fd);
            io->out_fd = -1;
        }
    }
    if (io->err_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = read(io->err_fd, buf, CHUNK);
        if (r > 0)
            keep_tail(io, buf, (size_t)r);
        else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(io->err_fd);
            io->err_fd = -1;
        }
    }
    if (io->in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
        if (io->in_off == io->in_len && !io->in_eof) {
            size_t got = 0;
            int rc = stream_source_read(cmd->stdin_source, io->in_buf, CHUNK, &got);
            if (rc != TROVE_OK)
                return call_fail(call, rc, "reading the backup for %s: %s", cmd->argv[0],
                                 stream_source_error(cmd->stdin_source));
            io->in_len = got;
            io->in_off = 0;
            io->in_eof = got == 0;
        }
        if (io->in_off < io->in_len) {
            ssize_t w = write(io->in_fd, io->in_buf + io->in_off, io->in_len - io->in_off);
            if (w > 0)
                io->in_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                io->in_eof = true, io->in_off = io->in_len;   /* child closed its stdin */
        }
        if (io->in_eof && io->in_off == io->in_len) {
            close(io->in_fd);
            io->in_fd = -1;
        }
    }
    return TROVE_OK;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

/* Tell the outcome from the exit status, the stderr tail and why we stopped. */
static int conclude(struct trove_call *call, struct trove_exec *cmd, struct child_io *io, int wstatus, int stop_rc)
{
    cmd->exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    io->err_tail[io->err_len] = '\0';
    while (io->err_len > 0 && (io->err_tail[io->err_len - 1] == '\n' || io->err_tail[io->err_len - 1] == ' '))
        io->err_tail[--io->err_len] = '\0';
    if (io->err_len)
        log_debug("%s stderr: %s", cmd->argv[0], io->err_tail);
    if (stop_rc != TROVE_OK)
        return stop_rc;
    if (cmd->exit_status == 0)
        return TROVE_OK;
    const char *tail = io->err_tail;
    const char *nl = strrchr(tail, '\n');
    if (nl && io->err_len - (size_t)(nl - tail) > 40)
        tail = nl + 1;   /* the last line is usually the reason */
    else if (io->err_len > 600)
        tail += io->err_len - 600;
    if (cmd->exit_status == 127 && !io->err_len)
        return call_fail(call, TROVE_EDATASTORE, "%s could not be executed", cmd->argv[0]);
    return call_fail(call, TROVE_EDATASTORE, "%s exited with status %d%s%s", cmd->argv[0], cmd->exit_status,
                     io->err_len ? ": " : "", tail);
}

int exec_run(struct trove_call *call, struct trove_exec *cmd)
{
    struct identity id = {0};
    char prog[4096];
    char **env = NULL;
    char *buf = NULL;
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    struct child_io io = {.in_fd = -1, .out_fd = -1, .err_fd = -1};
    int rc;
    pid_t pid = -1;

    if (!cmd || !cmd->argv || !cmd->argv[0])
        return call_fail(call, TROVE_EINVAL, "exec: empty command");
    cmd->exit_status = -1;
    if (cmd->output && cmd->output_size)
        cmd->output[0] = '\0';
    if (cmd->run_as && (rc = resolve_user(call, cmd->run_as, &id)) != TROVE_OK)
        return rc;
    if ((rc = resolve_program(call, cmd->argv[0], prog, sizeof(prog))) != TROVE_OK)
        return rc;
    env = build_env(cmd, &id);
    buf = malloc(CHUNK);
    io.in_buf = cmd->stdin_source ? malloc(CHUNK) : NULL;
    if (!env || !buf || (cmd->stdin_source && !io.in_buf)) {
        rc = call_fail(call, TROVE_EINTERNAL, "exec: out of memory");
        goto out;
    }
    bool want_out = cmd->stdout_sink || (cmd->output && cmd->output_size > 1);
    if ((cmd->stdin_source && make_pipe(in_p) != 0) || (want_out && make_pipe(out_p) != 0) || make_pipe(err_p) != 0) {
        rc = call_fail(call, TROVE_EINTERNAL, "exec: pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = call_fail(call, TROVE_EINTERNAL, "exec: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(prog, cmd, env, &id, in_p[0], out_p[1], err_p[1]);
    close(in_p[0]), close(out_p[1]), close(err_p[1]);
    in_p[0] = out_p[1] = err_p[1] = -1;
    io.in_fd = in_p[1], io.out_fd = out_p[0], io.err_fd = err_p[0];
    in_p[1] = out_p[0] = err_p[0] = -1;
    for (int *fd = &io.in_fd; fd <= &io.err_fd; fd++)
        if (*fd >= 0)
            fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);

    uint64_t deadline = cmd->timeout_ms ? now_ms() + cmd->timeout_ms : 0;
    uint64_t exited_at = 0;   /* a daemon the child left behind may hold our pipes */
    int stop_rc = TROVE_OK, wstatus = 0;
    bool reaped = false;
    while (io.out_fd >= 0 || io.err_fd >= 0 || io.in_fd >= 0) {
        struct pollfd fds[3] = {{io.out_fd, POLLIN, 0}, {io.err_fd, POLLIN, 0}, {io.in_fd, POLLOUT, 0}};
        if (poll(fds, 3, 200) < 0 && errno != EINTR) {
            stop_rc = call_fail(call, TROVE_EINTERNAL, "exec: poll: %s", strerror(errno));
            break;
        }
        if ((stop_rc = pump(call, cmd, &io, fds, buf)) != TROVE_OK)
            break;
        if (call && call->stop && atomic_load(call->stop)) {
            stop_rc = call_fail(call, TROVE_ECANCELLED, "%s was stopped: the agent is shutting down", cmd->argv[0]);
            break;
        }
        if (deadline && now_ms() > deadline) {
            stop_rc = call_fail(call, TROVE_ETIMEOUT, "%s did not finish within %u ms", cmd->argv[0], cmd->timeout_ms);
            break;
        }
        if (!reaped && waitpid(pid, &wstatus, WNOHANG) == pid)
            reaped = true, exited_at = now_ms();
        if (reaped && now_ms() > exited_at + 1000)
            break;
    }
    if (stop_rc != TROVE_OK && !reaped)
        kill(-pid, SIGKILL), kill(pid, SIGKILL);
    while (!reaped && waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    if (cmd->output && cmd->output_size)
        cmd->output[io.out_len] = '\0';
    rc = conclude(call, cmd, &io, wstatus, stop_rc);
out:
    for (int *fd = &io.in_fd; fd <= &io.err_fd; fd++)
        if (*fd >= 0)
            close(*fd);
    int *pipes[] = {in_p, out_p, err_p};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (pipes[i][j] >= 0)
                close(pipes[i][j]);
    free(io.in_buf);
    free(buf);
    free_env(env);
    return rc;
}
