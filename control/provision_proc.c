/*
 * provision_proc.c - processes for the local provisioner: running a tool and
 * collecting its output, starting a process detached so it outlives
 * trove-control, pid files, and stopping a process that is not our child.
 * No shell is ever involved: every argv goes to exec as it is.
 */
#include "provision_proc.h"
#include "provision_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Keep the last outlen-1 bytes read from fd in out. */
static void read_tail(int fd, char *out, size_t outlen)
{
    char buf[4096];
    size_t have = 0;
    ssize_t n;
    if (out && outlen)
        out[0] = '\0';
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!out || outlen < 2)
            continue;
        size_t cap = outlen - 1, add = (size_t)n;
        const char *src = buf;
        if (add >= cap) {
            src += add - cap;
            add = cap;
            have = 0;
        } else if (have + add > cap) {
            size_t drop = have + add - cap;
            memmove(out, out + drop, have - drop);
            have -= drop;
        }
        memcpy(out + have, src, add);
        have += add;
        out[have] = '\0';
    }
    /* One line for messages: the output's line breaks become spaces. */
    for (size_t i = 0; out && i < have; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
}

int proc_run(const char *const argv[], char *out, size_t outlen)
{
    int pipefd[2], status = 0, rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    pid_t pid;
    if (out && outlen)
        out[0] = '\0';
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    close(pipefd[1]);
    if (e != 0) {
        if (out)
            snprintf(out, outlen, "cannot run %s: %s", argv[0], strerror(e));
        goto out;
    }
    read_tail(pipefd[0], out, outlen);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            goto out;
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
out:
    close(pipefd[0]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

/* The grandchild, between fork and exec: only async-signal-safe calls. */
static void detached_child(const char *const argv[], const char *cwd, int logfd, int errfd)
{
    struct sigaction dfl;
    sigset_t none;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nullfd = open("/dev/null", O_RDONLY);
    if (nullfd < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 || chdir(cwd) != 0)
        goto fail;
    umask(077);
    /* Nothing of the parent's (sockets, the lock file) may leak into a
     * process that outlives it. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (int fd = 3; fd < 65536; fd++)
            if (fd != errfd)
                close(fd);
    execve(argv[0], (char *const *)argv, environ);
fail:;
    int e = errno;
    ssize_t w = write(errfd, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* The child between the two forks: a new session, then the grandchild. */
static void detach_middle(const char *const argv[], const char *cwd, int logfd, int pidfd, int errfd)
{
    if (setsid() < 0)
        _exit(126);
    pid_t pid = fork();
    if (pid < 0)
        _exit(126);
    if (pid == 0)
        detached_child(argv, cwd, logfd, errfd);
    ssize_t w = write(pidfd, &pid, sizeof pid);
    _exit(w == (ssize_t)sizeof pid ? 0 : 126);
}

int proc_spawn_detached(const char *const argv[], const char *cwd, const char *log, pid_t *pid_out, char *err,
                        size_t errlen)
{
    int pidpipe[2] = {-1, -1}, errpipe[2] = {-1, -1}, rc = TROVE_EINTERNAL, status = 0;
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    pid_t pid = 0, middle;
    if (logfd < 0) {
        err_set(err, errlen, "cannot open %s: %s", log, strerror(errno));
        return TROVE_EINTERNAL;
    }
    if (pipe2(pidpipe, O_CLOEXEC) != 0 || pipe2(errpipe, O_CLOEXEC) != 0) {
        err_set(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    if ((middle = fork()) < 0) {
        err_set(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (middle == 0)
        detach_middle(argv, cwd, logfd, pidpipe[1], errpipe[1]);
    close(pidpipe[1]);
    close(errpipe[1]);
    pidpipe[1] = errpipe[1] = -1;
    while (waitpid(middle, &status, 0) < 0 && errno == EINTR)
        ;
    if (read(pidpipe[0], &pid, sizeof pid) != (ssize_t)sizeof pid || pid <= 0) {
        err_set(err, errlen, "cannot start %s: fork failed in the detached child", argv[0]);
        goto out;
    }
    int child_errno = 0;
    ssize_t n;
    while ((n = read(errpipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof child_errno) {
        err_set(err, errlen, "cannot start %s: %s", argv[0], strerror(child_errno));
        goto out;
    }
    *pid_out = pid;
    rc = TROVE_OK;
out:
    for (int i = 0; i < 2; i++) {
        if (pidpipe[i] >= 0)
            close(pidpipe[i]);
        if (errpipe[i] >= 0)
            close(errpipe[i]);
    }
    close(logfd);
    return rc;
}

pid_t proc_read_pid_file(const char *path)
{
    char line[32] = "";
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    char *end = NULL;
    errno = 0;
    long pid = strtol(line, &end, 10);
    if (errno || end == line || pid <= 1 || pid > INT_MAX || (*end && *end != '\n'))
        return 0;
    return (pid_t)pid;
}

int proc_write_pid_file(const char *path, pid_t pid, char *err, size_t errlen)
{
    char tmp[LOCAL_PATH + 8], text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)pid);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int rc = file_write_new(tmp, 0644, text, (size_t)len, err, errlen);
    if (rc == TROVE_OK && rename(tmp, path) != 0) {
        err_set(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        rc = TROVE_EINTERNAL;
    }
    return rc;
}

/* The state letter of /proc/<pid>/stat, or 0 when there is no such process. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

bool proc_alive(pid_t pid)
{
    if (pid <= 1)
        return false;
    char st = proc_state(pid);
    return st && st != 'Z' && st != 'X';
}

bool proc_comm_is(pid_t pid, const char *const names[])
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    if (!fgets(comm, sizeof comm, f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    for (size_t i = 0; names[i]; i++)
        if (strcmp(comm, names[i]) == 0)
            return true;
    return false;
}

bool proc_cmdline_has(pid_t pid, const char *arg)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1)
        if (strcmp(buf + off, arg) == 0)
            return true;
    return false;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Wait until the process is gone (or a zombie: it is not our child, so its
 * parent reaps it, if anyone does). */
static bool wait_gone(pid_t pid, int timeout_ms)
{
    for (int waited = 0; proc_alive(pid); waited += 20) {
        if (waited >= timeout_ms)
            return false;
        /* A child of ours (a test that started it directly) must be reaped. */
        waitpid(pid, NULL, WNOHANG);
        sleep_ms(20);
    }
    return true;
}

int proc_terminate(pid_t pid, int sig, int timeout_ms)
{
    if (!proc_alive(pid))
        return 0;
    if (kill(pid, sig) != 0 && errno == ESRCH)
        return 0;
    if (wait_gone(pid, timeout_ms))
        return 0;
    kill(pid, SIGKILL);
    return wait_gone(pid, 10000) ? 0 : -1;
}

/* True if the link at path (an fd, cwd or root) points under dir. */
static bool link_under(const char *link, const char *dir, size_t dirlen)
{
    char target[LOCAL_PATH];
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strncmp(target, dir, dirlen) == 0 && (target[dirlen] == '\0' || target[dirlen] == '/');
}

static bool pid_holds(const char *pid, const char *dir, size_t dirlen)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/cwd", pid);
    if (link_under(path, dir, dirlen))
        return true;
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    DIR *d = opendir(path);
    bool held = false;
    struct dirent *e;
    while (d && !held && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char fdpath[600];
        snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
        held = link_under(fdpath, dir, dirlen);
    }
    if (d)
        closedir(d);
    return held;
}

void proc_holders(const char *path, char *out, size_t outlen)
{
    size_t len = 0, dirlen = strlen(path);
    DIR *d = opendir("/proc");
    struct dirent *e;
    out[0] = '\0';
    while (d && (e = readdir(d)) && len + 80 < outlen) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || !pid_holds(e->d_name, path, dirlen))
            continue;
        char commpath[300], comm[64] = "?";
        snprintf(commpath, sizeof commpath, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(commpath, "re");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                strcpy(comm, "?");
            fclose(f);
        }
        comm[strcspn(comm, "\n")] = '\0';
        len += (size_t)snprintf(out + len, outlen - len, "%s%s (%s)", len ? ", " : "", e->d_name, comm);
    }
    if (d)
        closedir(d);
}
