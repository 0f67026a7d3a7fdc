/*
 * tar.c - the backup stream's container: a ustar writer of regular files
 * into a host sink (names up to 255 bytes through the prefix field), and a
 * strict reader that accepts only regular files and directories, checks
 * every header's checksum, and asks the caller where each file may go. It
 * creates files with O_EXCL | O_NOFOLLOW and never creates links.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cassandra.h"

#define BLOCK 512
#define CHUNK (1u << 20)

static int put(struct cs_tar_out *t, const void *data, size_t len)
{
    int rc = t->ctx->host->sink_write(t->sink, data, len);
    if (rc != TROVE_OK)
        return t->ctx->host->fail(t->call, rc, "writing the backup stream failed");
    t->bytes += len;
    return TROVE_OK;
}

static void octal(char *field, size_t width, uint64_t value)
{
    snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)value);
}

/* Splits name into ustar's prefix (155) and name (100) at a slash. */
static bool split_name(const char *name, char *h)
{
    size_t n = strlen(name);
    if (n <= 100) {
        memcpy(h, name, n);
        return true;
    }
    for (size_t cut = n > 101 ? n - 101 : 0; cut < n && cut <= 155; cut++)
        if (name[cut] == '/' && n - cut - 1 <= 100 && cut > 0) {
            memcpy(h + 345, name, cut);
            memcpy(h, name + cut + 1, n - cut - 1);
            return true;
        }
    return false;
}

static int header(struct cs_tar_out *t, const char *name, uint64_t size)
{
    char h[BLOCK];
    memset(h, 0, sizeof(h));
    if (!split_name(name, h))
        return t->ctx->host->fail(t->call, TROVE_EINTERNAL, "name too long for the backup archive: %s", name);
    octal(h + 100, 8, 0600);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, (uint64_t)time(NULL));
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    return put(t, h, BLOCK);
}

static int pad(struct cs_tar_out *t, uint64_t size)
{
    static const char zeros[BLOCK];
    size_t rest = (size_t)(size % BLOCK);
    return rest ? put(t, zeros, BLOCK - rest) : TROVE_OK;
}

int cs_tar_add_data(struct cs_tar_out *t, const char *name, const void *data, size_t len)
{
    int rc = header(t, name, len);
    if (rc == TROVE_OK && len)
        rc = put(t, data, len);
    return rc == TROVE_OK ? pad(t, len) : rc;
}

int cs_tar_add_file(struct cs_tar_out *t, const char *name, const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EINVAL;
        if (fd >= 0)
            close(fd);
        return t->ctx->host->fail(t->call, TROVE_EDATASTORE, "cannot read %s: %s", path, strerror(e));
    }
    uint64_t size = (uint64_t)st.st_size, left = size;
    char *buf = malloc(CHUNK);
    int rc = buf ? header(t, name, size) : t->ctx->host->fail(t->call, TROVE_EINTERNAL, "out of memory");
    while (rc == TROVE_OK && left > 0) {
        ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (n <= 0) {   /* snapshot files never change: a short file is an error */
            rc = t->ctx->host->fail(t->call, TROVE_EDATASTORE, "%s changed while it was copied", path);
            break;
        }
        rc = put(t, buf, (size_t)n);
        left -= (uint64_t)n;
    }
    free(buf);
    close(fd);
    return rc == TROVE_OK ? pad(t, size) : rc;
}

int cs_tar_finish(struct cs_tar_out *t)
{
    static const char zeros[2 * BLOCK];
    return put(t, zeros, sizeof(zeros));
}

/* ---- reading ---------------------------------------------------------------- */

struct reader {
    struct cs_ctx *ctx;
    struct trove_call *call;
    struct trove_source *src;
    unsigned char buf[65536];
    size_t pos, len;
    bool eof;
};

/* Exactly len bytes into out (NULL: skip them). */
static int take(struct reader *r, void *out, uint64_t len, const char *what)
{
    unsigned char *p = out;
    while (len > 0) {
        if (r->pos == r->len) {
            size_t got = 0;
            int rc = r->eof ? TROVE_OK : r->ctx->host->source_read(r->src, r->buf, sizeof(r->buf), &got);
            if (rc != TROVE_OK)
                return r->ctx->host->fail(r->call, rc, "reading the backup failed");
            if (got == 0) {
                r->eof = true;
                return r->ctx->host->fail(r->call, TROVE_EINVAL, "the backup archive ends inside %s", what);
            }
            r->pos = 0;
            r->len = got;
        }
        size_t n = r->len - r->pos < len ? r->len - r->pos : (size_t)len;
        if (p) {
            memcpy(p, r->buf + r->pos, n);
            p += n;
        }
        r->pos += n;
        len -= n;
    }
    return TROVE_OK;
}

static bool parse_octal(const char *field, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < width && field[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v > (UINT64_MAX >> 3))
            return false;
        v = v * 8 + (uint64_t)(field[i] - '0');
    }
    for (; i < width; i++)
        if (field[i] != '\0' && field[i] != ' ')
            return false;
    *out = v;
    return digits > 0;
}

static bool all_zero(const unsigned char *h)
{
    for (size_t i = 0; i < BLOCK; i++)
        if (h[i])
            return false;
    return true;
}

static bool checksum_ok(const unsigned char *h)
{
    uint64_t want;
    if (!parse_octal((const char *)h + 148, 8, &want))
        return false;
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want;
}

/* prefix/name from a header, NUL-terminated fields only. */
static bool full_name(const unsigned char *h, char *out, size_t len)
{
    const char *name = (const char *)h, *prefix = (const char *)h + 345;
    size_t n = strnlen(name, 100), p = strnlen(prefix, 155);
    if (n == 0 || p + n + 2 > len)
        return false;
    if (p)
        snprintf(out, len, "%.*s/%.*s", (int)p, prefix, (int)n, name);
    else
        snprintf(out, len, "%.*s", (int)n, name);
    return true;
}

static int write_member(struct reader *r, const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot create %s: %s", path, strerror(errno));
    char *buf = malloc(CHUNK);
    int rc = buf ? TROVE_OK : r->ctx->host->fail(r->call, TROVE_EINTERNAL, "out of memory");
    for (uint64_t left = size; rc == TROVE_OK && left > 0;) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        rc = take(r, buf, n, path);
        if (rc == TROVE_OK && write(fd, buf, n) != (ssize_t)n)
            rc = r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(errno));
        left -= n;
    }
    free(buf);
    if (close(fd) != 0 && rc == TROVE_OK)
        rc = r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

int cs_tar_extract(struct cs_ctx *ctx, struct trove_call *call, struct trove_source *src, cs_tar_accept_fn accept,
                   void *arg)
{
    struct reader *r = calloc(1, sizeof(*r));
    if (!r)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    r->ctx = ctx;
    r->call = call;
    r->src = src;
    unsigned char h[BLOCK];
    char name[300];
    int rc;
    while ((rc = take(r, h, BLOCK, "a header")) == TROVE_OK) {
        uint64_t size;
        if (all_zero(h))
            break;   /* the end; what follows is padding */
        if (!checksum_ok(h) || memcmp(h + 257, "ustar", 5) != 0 || !parse_octal((char *)h + 124, 12, &size) ||
            !full_name(h, name, sizeof(name))) {
            rc = ctx->host->fail(call, TROVE_EINVAL, "the backup archive holds a damaged header");
            break;
        }
        char type = (char)h[156];
        if (type == '5' && size == 0)
            continue;
        if (type != '0' && type != '\0') {
            rc = ctx->host->fail(call, TROVE_EINVAL, "the backup archive holds \"%s\", which is not a regular file "
                                                     "(type '%c')", name, type >= ' ' && type < 127 ? type : '?');
            break;
        }
        if (ctx->host->cancelled(call)) {
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while reading the backup");
            break;
        }
        const char *path = NULL;
        if ((rc = accept(arg, name, size, &path)) != TROVE_OK)
            break;
        if ((rc = write_member(r, path, size)) != TROVE_OK)
            break;
        if (size % BLOCK && (rc = take(r, NULL, BLOCK - size % BLOCK, name)) != TROVE_OK)
            break;
    }
    free(r);
    return rc;
}
