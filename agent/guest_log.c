/*
 * guest_log.c - the guest-log operations and their two sinks: a ring that
 * keeps the last N bytes written to it (log.tail), and a file under
 * <state_dir>/logs that hashes what it stores and appears only complete
 * (log.fetch). The plugin decides what to read; this file decides where the
 * bytes go and how many may come.
 */
#include "guest_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "sink.h"

#define TAIL_DEFAULT 16384

/* ------------------------------------------------------------ ring sink */

struct ring_sink {
    struct trove_sink base;
    char *buf;
    size_t cap, len, start;   /* the kept bytes are buf[start..] wrapping, len of them */
    uint64_t offered;
};

static int ring_write(struct trove_sink *sink, const void *data, size_t n)
{
    struct ring_sink *r = (struct ring_sink *)(void *)sink;
    const char *p = data;
    r->offered += n;
    if (n >= r->cap) {   /* only the end of this write survives */
        memcpy(r->buf, p + n - r->cap, r->cap);
        r->start = 0, r->len = r->cap;
        return TROVE_OK;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = (r->start + r->len) % r->cap;
        r->buf[at] = p[i];
        if (r->len < r->cap)
            r->len++;
        else
            r->start = (r->start + 1) % r->cap;
    }
    return TROVE_OK;
}

static const char *ring_error(const struct trove_sink *sink)
{
    (void)sink;
    return "no error";
}

/* The kept bytes in order, NUL-terminated; malloc'd. */
static char *ring_text(const struct ring_sink *r)
{
    char *out = malloc(r->len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < r->len; i++)
        out[i] = r->buf[(r->start + i) % r->cap];
    out[r->len] = '\0';
    return out;
}

/* ------------------------------------------------------------ file sink */

struct file_sink {
    struct trove_sink base;
    int fd;
    uint64_t written, limit;
    EVP_MD_CTX *sha;
    char err[256];
};

static int file_write(struct trove_sink *sink, const void *data, size_t n)
{
    struct file_sink *f = (struct file_sink *)(void *)sink;
    const char *p = data;
    if (f->err[0])
        return TROVE_EINTERNAL;
    if (f->limit && f->written + n > f->limit) {
        snprintf(f->err, sizeof(f->err), "the log is larger than the %llu bytes allowed",
                 (unsigned long long)f->limit);
        return TROVE_EINVAL;
    }
    EVP_DigestUpdate(f->sha, data, n);
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(f->err, sizeof(f->err), "writing the log copy: %s", strerror(errno));
            return TROVE_EINTERNAL;
        }
        p += w, n -= (size_t)w, f->written += (uint64_t)w;
    }
    return TROVE_OK;
}

static const char *file_error(const struct trove_sink *sink)
{
    const struct file_sink *f = (const struct file_sink *)(const void *)sink;
    return f->err[0] ? f->err : "no error";
}

/* ------------------------------------------------------------ helpers */

static int check_name(struct trove_call *call, const char *name)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= TROVE_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
             name[i] == '-';
    return ok ? TROVE_OK
              : call_fail(call, TROVE_EINVAL, "log name \"%s\" is invalid: use 1-%d of [a-z0-9_-]", name,
                          TROVE_NAME_MAX);
}

static int read_log(struct agent *a, struct trove_call *call, const char *name, int32_t mode, uint64_t max,
                    struct trove_sink *sink)
{
    struct trove_guest_log_request req = {.size = sizeof(req), .name = name, .mode = mode, .max_bytes = max,
                                          .sink = sink};
    return a->plugin.vt->guest_log_read(a->plugin.self, call, &req);
}

/* ------------------------------------------------------------ ops */

int guest_log_op_list(struct agent *a, struct trove_call *call, const struct tv *args)
{
    (void)args;
    int rc = a->plugin.vt->guest_log_list(a->plugin.self, call);
    if (rc == TROVE_OK && !tv_child_array(call->result, "logs"))
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
    return rc;
}

int guest_log_op_tail(struct agent *a, struct trove_call *call, const struct tv *args)
{
    const char *name;
    int64_t want;
    int rc;
    if ((rc = arg_str(call, args, "name", true, &name)) || (rc = check_name(call, name)) ||
        (rc = arg_int(call, args, "bytes", 1, TROVE_LOG_TAIL_MAX, TAIL_DEFAULT, &want)))
        return rc;
    struct ring_sink r = {.base = {ring_write, ring_error}, .cap = (size_t)want};
    if (!(r.buf = malloc(r.cap)))
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    rc = read_log(a, call, name, TROVE_GUEST_LOG_TAIL, (uint64_t)want, &r.base);
    char *text = rc == TROVE_OK ? ring_text(&r) : NULL;
    if (rc == TROVE_OK && !text)
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK && (tv_set_str(call->result, "name", name) || tv_set_str(call->result, "data", text) ||
                           tv_set_int(call->result, "bytes", (int64_t)r.len) ||
                           tv_set_bool(call->result, "truncated", r.offered > r.len)))
        rc = call_fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK) {   /* the wire carries UTF-8 only: scrub bytes a log may hold */
        struct tv *data = tv_get(call->result, "data");
        if (data && !tv_utf8_valid(data->u.s.ptr, data->u.s.len))
            for (size_t i = 0; i < data->u.s.len; i++)
                if ((unsigned char)data->u.s.ptr[i] >= 0x80)
                    data->u.s.ptr[i] = '?';
    }
    free(text);
    free(r.buf);
    return rc;
}

static void hex_digest(EVP_MD_CTX *sha, char out[80])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha, md, &len);
    int k = snprintf(out, 80, "sha256:");
    for (unsigned int i = 0; i < len && k + 2 < 80; i++)
        k += snprintf(out + k, 80 - (size_t)k, "%02x", md[i]);
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Keep the newest GUEST_LOG_KEEP copies of `name` (names sort by time). */
static void prune(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    char *found[256];
    size_t n = 0, len = strlen(name);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 256)
        if (!strncmp(e->d_name, name, len) && e->d_name[len] == '-' && strstr(e->d_name, ".log") &&
            !strstr(e->d_name, ".partial") && (found[n] = strdup(e->d_name)))
            n++;
    if (d)
        closedir(d);
    qsort(found, n, sizeof(found[0]), name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i + GUEST_LOG_KEEP < n) {
            char path[4600];
            snprintf(path, sizeof(path), "%s/%s", dir, found[i]);
            unlink(path);
        }
        free(found[i]);
    }
}

static int open_copy(struct agent *a, struct trove_call *call, const char *name, char *dir, size_t dirlen,
                     char *final, size_t finallen, char *partial, size_t partiallen)
{
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
    snprintf(dir, dirlen, "%s/logs", a->state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return call_fail(call, TROVE_EINTERNAL, "cannot create %s: %s", dir, strerror(errno)), -1;
    snprintf(final, finallen, "%s/%s-%s.%03ldZ-%ld.log", dir, name, stamp, ts.tv_nsec / 1000000, (long)getpid());
    snprintf(partial, partiallen, "%s.partial", final);
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        call_fail(call, TROVE_EINTERNAL, "cannot create %s: %s", partial, strerror(errno));
    return fd;
}

int guest_log_op_fetch(struct agent *a, struct trove_call *call, const struct tv *args)
{
    const char *name;
    int64_t limit;
    char dir[4200], final[4400], partial[4420], sum[80];
    int rc;
    if ((rc = arg_str(call, args, "name", true, &name)) || (rc = check_name(call, name)) ||
        (rc = arg_int(call, args, "max_bytes", 1, (int64_t)GUEST_LOG_FETCH_MAX, (int64_t)GUEST_LOG_FETCH_MAX,
                      &limit)))
        return rc;
    struct file_sink f = {.base = {file_write, file_error}, .limit = (uint64_t)limit};
    if (!(f.sha = EVP_MD_CTX_new()) || EVP_DigestInit_ex(f.sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(f.sha);
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    }
    if ((f.fd = open_copy(a, call, name, dir, sizeof(dir), final, sizeof(final), partial, sizeof(partial))) < 0) {
        EVP_MD_CTX_free(f.sha);
        return TROVE_EINTERNAL;
    }
    rc = read_log(a, call, name, TROVE_GUEST_LOG_WHOLE, (uint64_t)limit, &f.base);
    if (rc == TROVE_OK && fsync(f.fd) != 0)
        rc = call_fail(call, TROVE_EINTERNAL, "fsync %s: %s", partial, strerror(errno));
    close(f.fd);
    if (rc == TROVE_OK && rename(partial, final) != 0)
        rc = call_fail(call, TROVE_EINTERNAL, "rename %s: %s", partial, strerror(errno));
    if (rc != TROVE_OK) {
        unlink(partial);
        if (f.err[0] && !call->message[0])
            call_fail(call, rc, "%s", f.err);
        EVP_MD_CTX_free(f.sha);
        return rc;
    }
    hex_digest(f.sha, sum);
    EVP_MD_CTX_free(f.sha);
    prune(dir, name);
    if (tv_set_str(call->result, "name", name) || tv_set_str(call->result, "path", final) ||
        tv_set_int(call->result, "bytes", (int64_t)f.written) || tv_set_str(call->result, "checksum", sum))
        return call_fail(call, TROVE_EINTERNAL, "out of memory");
    return TROVE_OK;
}
