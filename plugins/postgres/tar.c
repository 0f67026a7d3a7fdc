/*
 * tar.c - a minimal ustar writer for incremental backups: regular files
 * from one directory (archived WAL segments), streamed into the host's sink
 * in 1 MiB chunks. Extraction is left to the system's tar.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

#define BLOCK PG_TAR_BLOCK
#define CHUNK (1 << 20)

static int put(struct pg_ctx *ctx, struct trove_call *call, struct trove_sink *sink, const void *data, size_t len)
{
    int rc = ctx->host->sink_write(sink, data, len);
    return rc == TROVE_OK ? rc : ctx->host->fail(call, rc, "writing the backup stream failed");
}

static void octal(char *field, size_t width, uint64_t value)
{
    /* width - 1 digits and a NUL, as ustar readers expect */
    snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)value);
}

int pg_tar_header(char h[PG_TAR_BLOCK], const char *name, uint64_t size, int64_t mtime)
{
    if (!name || !*name || strlen(name) >= 100 || size > PG_TAR_MAX_SIZE)
        return -1;
    /* A time before 1970 or past the 11 octal digits is clamped, never wrapped. */
    uint64_t when = mtime < 0 ? 0 : (uint64_t)mtime > PG_TAR_MAX_SIZE ? PG_TAR_MAX_SIZE : (uint64_t)mtime;
    memset(h, 0, BLOCK);
    memcpy(h, name, strlen(name));
    octal(h + 100, 8, 0600);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, when);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

int pg_tar_add(struct pg_ctx *ctx, struct trove_call *call, struct trove_sink *sink, const char *dir,
               const char *name)
{
    char path[PG_PATH_MAX + 128], h[BLOCK];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (strlen(name) >= 100)
        return ctx->host->fail(call, TROVE_EINTERNAL, "file name too long for the archive: %s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return ctx->host->fail(call, err == ENOENT ? TROVE_ECONFLICT : TROVE_EINTERNAL, "%s: %s", path, strerror(err));
    }
    char *buf = malloc(CHUNK);
    int rc = buf ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK && pg_tar_header(h, name, (uint64_t)st.st_size, (int64_t)st.st_mtime) != 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "%s: %lld bytes do not fit a ustar header", path, (long long)st.st_size);
    if (rc == TROVE_OK)
        rc = put(ctx, call, sink, h, BLOCK);
    uint64_t left = (uint64_t)st.st_size;
    while (rc == TROVE_OK && left > 0) {
        ssize_t r = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "read %s: %s", path, r < 0 ? strerror(errno) : "file shrank");
            break;
        }
        rc = put(ctx, call, sink, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    size_t pad = (size_t)((BLOCK - st.st_size % BLOCK) % BLOCK);
    if (rc == TROVE_OK && pad) {
        memset(h, 0, BLOCK);
        rc = put(ctx, call, sink, h, pad);
    }
    free(buf);
    close(fd);
    return rc;
}

int pg_tar_finish(struct pg_ctx *ctx, struct trove_call *call, struct trove_sink *sink)
{
    char zeros[2 * BLOCK];
    memset(zeros, 0, sizeof(zeros));
    return put(ctx, call, sink, zeros, sizeof(zeros));
}
