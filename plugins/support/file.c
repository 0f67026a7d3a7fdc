/*
 * file.c - files the way plugins must write them (trove_plugin.h, the
 * cross-process rule): replaced atomically, secrets in 0600 files named with
 * the pid, locks with flock, trees removed without following symlinks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trove_plugin_support.h"

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        data += w, len -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so a rename survives a crash. */
static void sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int tps_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, data, len);
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    else
        sync_parent(path);
    return rc;
}

char *tps_file_read(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = 0;
    int e = 0;
    while (buf && n <= max) {
        char extra;
        ssize_t r = n < max ? read(fd, buf + n, max - n) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            e = errno;
        if (r <= 0)
            break;
        if (n == max) {
            e = EFBIG;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!buf || e) {
        free(buf);
        errno = buf ? e : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tps_file_write_secret(const char *dir, const char *data, char *path, size_t pathlen)
{
    if ((size_t)snprintf(path, pathlen, "%s/.trove-%ld-XXXXXX", dir, (long)getpid()) >= pathlen)
        return -ENAMETOOLONG;
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, 0600) != 0 ? -errno : write_all(fd, data, strlen(data));
    close(fd);
    if (rc != 0)
        unlink(path);
    return rc;
}

void tps_file_tail(const char *path, char *out, size_t max)
{
    if (max == 0)
        return;
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || max < 2) {
        if (fd >= 0)
            close(fd);
        return;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)(max - 1) ? end - (off_t)(max - 1) : 0;
    ssize_t r = pread(fd, out, max - 1, start);
    close(fd);
    if (r <= 0)
        return;
    out[r] = '\0';
    while (r > 0 && (out[r - 1] == '\n' || out[r - 1] == '\r' || out[r - 1] == ' '))
        out[--r] = '\0';
    char *nl = start > 0 ? strchr(out, '\n') : NULL;   /* the first line may be cut */
    if (nl)
        memmove(out, nl + 1, strlen(nl + 1) + 1);
}

int tps_file_lock(const char *path, bool wait)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void tps_file_unlock(int fd)
{
    if (fd >= 0)
        close(fd);   /* closing the last descriptor releases the flock */
}

static int remove_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0)
        return 0;
    if (errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = remove_at(dirfd(d), e->d_name);
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0)
        rc = -errno;
    return rc;
}

int tps_remove_tree(const char *path)
{
    return remove_at(AT_FDCWD, path);
}

bool tps_dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "lost+found");
    closedir(d);
    return empty;
}

bool tps_path(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < outlen;
}

int tps_file_chown(const char *path, const char *user)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (!user)
        return 0;
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    return lchown(path, pw.pw_uid, pw.pw_gid) == 0 ? 0 : -errno;
}

int64_t tps_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* "<prefix><pid>-..." with a pid that no longer runs. */
static bool stale_entry(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] < '1' || name[n] > '9')
        return false;
    char *end;
    errno = 0;
    long pid = strtol(name + n, &end, 10);
    if (errno || *end != '-' || pid <= 0)
        return false;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/%ld", pid);
    return access(proc, F_OK) != 0 && errno == ENOENT;
}

int tps_remove_stale(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (stale_entry(e->d_name, prefix) && remove_at(dirfd(d), e->d_name) == 0)
            removed++;
    closedir(d);
    return removed;
}

int tps_file_write_as(const char *path, const void *data, size_t len, unsigned mode, const char *user)
{
    struct passwd pw, *res = NULL;
    char buf[4096], tmp[4096];
    if (user && (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res))
        return -ENOENT;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, data, len);
    if (rc == 0 && user && fchown(fd, pw.pw_uid, pw.pw_gid) != 0)   /* before the rename: never seen as ours */
        rc = -errno;
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    else
        sync_parent(path);
    return rc;
}
