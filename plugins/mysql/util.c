/*
 * util.c - small helpers of the MySQL plugin: a string builder that quotes
 * identifiers and literals, files written atomically or with mode 0600, and
 * time. No SQL is run here and nothing is logged.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mysql_plugin.h"

static void sb_reserve(struct sb *b, size_t more)
{
    if (b->oom)
        return;
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *n = realloc(b->buf, cap);
    if (!n) {
        b->oom = true;
        return;
    }
    b->buf = n;
    b->cap = cap;
}

void sb_addn(struct sb *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

void sb_add(struct sb *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

void sb_addf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_ident(struct sb *b, const char *name)
{
    sb_add(b, "`");
    for (const char *c = name; *c; c++)
        sb_addn(b, *c == '`' ? "``" : c, *c == '`' ? 2 : 1);
    sb_add(b, "`");
}

char *grant_pattern(const char *name)
{
    size_t n = 0;
    for (const char *c = name; *c; c++)
        n += (*c == '_' || *c == '%' || *c == '\\') ? 2 : 1;
    char *out = malloc(n + 1), *w = out;
    for (const char *c = name; out && *c; c++) {
        if (*c == '_' || *c == '%' || *c == '\\')
            *w++ = '\\';
        *w++ = *c;
    }
    if (out)
        *w = '\0';
    return out;
}

void grant_pattern_to_name(char *pattern)
{
    char *w = pattern;
    for (char *r = pattern; *r; r++) {
        if (r[0] == '\\' && (r[1] == '_' || r[1] == '%' || r[1] == '\\'))
            r++;
        *w++ = *r;
    }
    *w = '\0';
}

void sb_grant_db(struct sb *b, const char *name)
{
    char *pattern = grant_pattern(name);
    if (!pattern) {
        b->oom = true;
        return;
    }
    sb_ident(b, pattern);
    free(pattern);
}

void sb_literal(struct sb *b, MYSQL *conn, const char *s)
{
    size_t n = strlen(s);
    sb_reserve(b, 2 * n + 3);
    if (b->oom)
        return;
    b->buf[b->len++] = '\'';
    b->len += mysql_real_escape_string(conn, b->buf + b->len, s, (unsigned long)n);
    b->buf[b->len++] = '\'';
    b->buf[b->len] = '\0';
}

void sb_literal_offline(struct sb *b, const char *s)
{
    sb_add(b, "'");
    for (const char *c = s; *c; c++) {
        switch (*c) {
        case '\'': sb_add(b, "\\'"); break;
        case '\\': sb_add(b, "\\\\"); break;
        case '\n': sb_add(b, "\\n"); break;
        case '\r': sb_add(b, "\\r"); break;
        case '\032': sb_add(b, "\\Z"); break;
        default: sb_addn(b, c, 1);
        }
    }
    sb_add(b, "'");
}

void sb_account(struct sb *b, MYSQL *conn, const char *user, const char *host)
{
    sb_literal(b, conn, user);
    sb_add(b, "@");
    sb_literal(b, conn, host);
}

void sb_free(struct sb *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

void sb_wipe(struct sb *b)
{
    if (b->buf)
        explicit_bzero(b->buf, b->cap);
    sb_free(b);
}

char *my_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void my_wipe_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

int write_file_atomic(const char *path, const char *data, size_t len, unsigned mode)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

char *read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = 0;
    while (buf && n < max) {
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool dir_is_empty_or_missing(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "lost+found")) {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

int write_secret_file(const char *dir, const char *data, char *path, size_t pathlen)
{
    if ((size_t)snprintf(path, pathlen, "%s/.trove-%ld-XXXXXX", dir, (long)getpid()) >= pathlen)
        return -ENAMETOOLONG;
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t len = strlen(data), off = 0;
    if (fchmod(fd, 0600) != 0)
        rc = -errno;
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            off += (size_t)w;
    }
    close(fd);
    if (rc != 0)
        unlink(path);
    return rc;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int remove_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return errno == ENOENT ? 0 : -errno;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
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

int remove_tree(const char *path)
{
    return remove_at(AT_FDCWD, path);
}

void file_tail(const char *path, char *out, size_t max)
{
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
    while (r > 0 && (out[r - 1] == '\n' || out[r - 1] == ' '))
        out[--r] = '\0';
    char *nl = start > 0 ? strchr(out, '\n') : NULL;
    if (nl)
        memmove(out, nl + 1, strlen(nl + 1) + 1);
}

bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool path_printf(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < outlen;
}

/* "<prefix><pid>-..." with a pid that no longer runs. */
static bool stale_entry(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return false;
    char *end;
    long pid = strtol(name + n, &end, 10);
    if (end == name + n || *end != '-' || pid <= 0)
        return false;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/%ld", pid);
    return !path_exists(proc);
}

int remove_stale_temporaries(const char *dir, const char *const *prefixes, size_t n_prefixes)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        for (size_t i = 0; i < n_prefixes; i++)
            if (stale_entry(e->d_name, prefixes[i]) && remove_at(dirfd(d), e->d_name) == 0) {
                removed++;
                break;
            }
    closedir(d);
    return removed;
}
