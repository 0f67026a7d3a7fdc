/*
 * guest_log.c - serving a guest_log_read request from a plain log file:
 * the tail from a line start, or the whole file, into the host's sink.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "trove_plugin_support.h"

#define CHUNK 65536

/* Where a tail of `want` bytes starts: after the first newline inside the
 * window, so the first line is whole (unless the window has none). */
static off_t tail_start(int fd, off_t end, uint64_t want)
{
    if ((uint64_t)end <= want)
        return 0;
    off_t start = end - (off_t)want;
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf), start - 1);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            return start - 1 + i + 1;
    return start;
}

int tps_guest_log_from_file(const struct trove_host *host, struct trove_call *call, const char *path,
                            const struct trove_guest_log_request *req)
{
    if (req->mode != TROVE_GUEST_LOG_TAIL && req->mode != TROVE_GUEST_LOG_WHOLE)
        return host->fail(call, TROVE_ENOTSUP, "log read mode %d is not supported", (int)req->mode);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TROVE_OK   /* not written yet: an empty log */
                               : host->fail(call, TROVE_EINTERNAL, "cannot open %s: %s", path, strerror(errno));
    off_t end = lseek(fd, 0, SEEK_END);
    off_t at = req->mode == TROVE_GUEST_LOG_TAIL ? tail_start(fd, end, req->max_bytes) : 0;
    char buf[CHUNK];
    int rc = TROVE_OK;
    while (rc == TROVE_OK && at < end) {
        size_t want = (size_t)(end - at) < sizeof(buf) ? (size_t)(end - at) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                rc = host->fail(call, TROVE_EINTERNAL, "reading %s: %s", path, strerror(errno));
            break;
        }
        rc = host->sink_write(req->sink, buf, (size_t)n);   /* a refusal is returned as it is: the host says why */
        at += n;
        if (rc == TROVE_OK && host->cancelled(call))
            rc = host->fail(call, TROVE_ECANCELLED, "cancelled while reading %s", path);
    }
    close(fd);
    return rc;
}
