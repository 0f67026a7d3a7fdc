/*
 * tar.c - a data directory as a POSIX tar stream (ustar, with pax records
 * for long names and files of 8 GiB or more), written straight into the
 * host's sink in 1 MiB chunks, and read back into an empty directory. The
 * reader is strict: regular files and directories only, relative names
 * without "..", checked header checksums and a complete end of archive, so
 * a stream that is not what this writer made is refused before the server
 * is touched. `tar -tvf` lists what it writes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mongodb.h"

#define BLOCK 512
#define CHUNK (1u << 20)
#define NAME_MAX_LEN 1024
#define PAX_MAX (64u * 1024)
#define OCTAL_SIZE_MAX UINT64_C(077777777777)

struct writer {
    struct mg_ctx *ctx;
    struct trove_call *call;
    struct trove_sink *sink;
    char *buf;
    size_t used;
    uint64_t total;
};

static int flush(struct writer *w)
{
    if (w->used == 0)
        return TROVE_OK;
    int rc = w->ctx->host->sink_write(w->sink, w->buf, w->used);
    w->total += w->used;
    w->used = 0;
    if (rc != TROVE_OK)
        return w->ctx->host->fail(w->call, rc, "writing the backup stream failed");
    if (w->ctx->host->cancelled(w->call))
        return w->ctx->host->fail(w->call, TROVE_ECANCELLED, "cancelled while copying the data files");
    return TROVE_OK;
}

static int put(struct writer *w, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        size_t n = CHUNK - w->used < len ? CHUNK - w->used : len;
        memcpy(w->buf + w->used, p, n);
        w->used += n, p += n, len -= n;
        if (w->used == CHUNK) {
            int rc = flush(w);
            if (rc != TROVE_OK)
                return rc;
        }
    }
    return TROVE_OK;
}

static int pad(struct writer *w, uint64_t len)
{
    static const char zero[BLOCK];
    size_t rest = (size_t)(len % BLOCK);
    return rest ? put(w, zero, BLOCK - rest) : TROVE_OK;
}

/* width - 1 octal digits and a NUL; callers keep value within them. */
static void octal(char *field, size_t width, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%0*" PRIo64, (int)width - 1, value);
    memcpy(field, text + strlen(text) - (width - 1), width - 1);
    field[width - 1] = '\0';
}

static void header(char *h, const char *name, char type, uint64_t size, unsigned mode, time_t mtime)
{
    memset(h, 0, BLOCK);
    snprintf(h, 100, "%s", name);
    octal(h + 100, 8, mode & 07777);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size > OCTAL_SIZE_MAX ? 0 : size);
    octal(h + 136, 12, (uint64_t)(mtime > 0 ? mtime : 0));
    h[156] = type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* "<len> key=value\n", where len counts the whole record. */
static void pax_record(struct tps_buf *b, const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3, len = body + 1;
    while (snprintf(NULL, 0, "%zu", len) + body != len)
        len++;
    tps_buf_addf(b, "%zu %s=%s\n", len, key, value);
}

static int entry(struct writer *w, const char *name, char type, uint64_t size, const struct stat *st)
{
    char h[BLOCK];
    if (strlen(name) >= 100 || size > OCTAL_SIZE_MAX) {
        struct tps_buf pax = {0};
        char num[32];
        if (strlen(name) >= 100)
            pax_record(&pax, "path", name);
        if (size > OCTAL_SIZE_MAX) {
            snprintf(num, sizeof(num), "%" PRIu64, size);
            pax_record(&pax, "size", num);
        }
        if (!tps_buf_str(&pax))
            return w->ctx->host->fail(w->call, TROVE_EINTERNAL, "out of memory");
        header(h, "././@PaxHeader", 'x', pax.len, 0644, st->st_mtime);
        int rc = put(w, h, BLOCK);
        if (rc == TROVE_OK && (rc = put(w, pax.data, pax.len)) == TROVE_OK)
            rc = pad(w, pax.len);
        tps_buf_free(&pax);
        if (rc != TROVE_OK)
            return rc;
    }
    header(h, name, type, size, st->st_mode, st->st_mtime);
    return put(w, h, BLOCK);
}

static int file_body(struct writer *w, int fd, const char *path, uint64_t size)
{
    uint64_t left = size;
    while (left > 0) {
        if (w->used == CHUNK) {
            int rc = flush(w);
            if (rc != TROVE_OK)
                return rc;
        }
        size_t want = CHUNK - w->used < left ? CHUNK - w->used : (size_t)left;
        ssize_t n = read(fd, w->buf + w->used, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "%s changed while it was copied: %s", path,
                                      n < 0 ? strerror(errno) : "it shrank");
        w->used += (size_t)n;
        left -= (uint64_t)n;
    }
    return pad(w, size);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool skipped(const char *name, const char *const *skip)
{
    for (size_t i = 0; skip && skip[i]; i++)
        if (!strcmp(name, skip[i]))
            return true;
    return false;
}

static int walk(struct writer *w, const char *root, const char *rel, const char *const *skip, int depth);

static int one(struct writer *w, const char *root, const char *rel, const char *const *skip, int depth)
{
    char path[MG_PATH_MAX];
    struct stat st;
    if (!tps_path(path, sizeof(path), "%s/%s", root, rel) || strlen(rel) >= NAME_MAX_LEN)
        return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "a path under %s is too long", root);
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? TROVE_OK   /* a temporary file went away */
                               : w->ctx->host->fail(w->call, TROVE_EDATASTORE, "cannot read %s: %s", path,
                                                    strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char name[NAME_MAX_LEN + 2];
        snprintf(name, sizeof(name), "%s/", rel);
        int rc = entry(w, name, '5', 0, &st);
        return rc == TROVE_OK ? walk(w, root, rel, skip, depth + 1) : rc;
    }
    if (!S_ISREG(st.st_mode))
        return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "%s is neither a file nor a directory", path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "cannot open %s: %s", path, strerror(errno));
    int rc = entry(w, rel, '0', (uint64_t)st.st_size, &st);
    if (rc == TROVE_OK)
        rc = file_body(w, fd, path, (uint64_t)st.st_size);
    close(fd);
    return rc;
}

static int walk(struct writer *w, const char *root, const char *rel, const char *const *skip, int depth)
{
    char path[MG_PATH_MAX];
    if (depth > 32)
        return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "%s nests directories too deeply", root);
    tps_path(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return w->ctx->host->fail(w->call, TROVE_EDATASTORE, "cannot read %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = TROVE_OK;
    for (struct dirent *e; rc == TROVE_OK && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (!*rel && skipped(e->d_name, skip)))
            continue;
        if (n == cap) {
            char **bigger = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
            if (!bigger) {
                rc = w->ctx->host->fail(w->call, TROVE_EINTERNAL, "out of memory");
                break;
            }
            names = bigger;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = w->ctx->host->fail(w->call, TROVE_EINTERNAL, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof(*names), compare_names);
    for (size_t i = 0; i < n; i++) {
        char child[MG_PATH_MAX];
        if (rc == TROVE_OK) {
            snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", names[i]);
            rc = one(w, root, child, skip, depth);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int mg_tar_write(struct mg_ctx *ctx, struct trove_call *call, const char *dir, const char *const *skip,
                 struct trove_sink *sink, uint64_t *bytes)
{
    static const char end[2 * BLOCK];
    struct writer w = {ctx, call, sink, malloc(CHUNK), 0, 0};
    if (!w.buf)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    int rc = walk(&w, dir, "", skip, 0);
    if (rc == TROVE_OK && (rc = put(&w, end, sizeof(end))) == TROVE_OK)
        rc = flush(&w);
    free(w.buf);
    if (bytes)
        *bytes = w.total;
    return rc;
}

/* ---- reading ---------------------------------------------------------- */

struct reader {
    struct mg_ctx *ctx;
    struct trove_call *call;
    struct trove_source *source;
    const char *piece;
    const char *dir;
    char *buf;
};

static int bad(struct reader *r, const char *why)
{
    return r->ctx->host->fail(r->call, TROVE_EINVAL, "backup %s is not a data directory stream of this plugin: %s",
                              r->piece, why);
}

static int read_exact(struct reader *r, void *buf, size_t len)
{
    bool eof = false;
    int rc = mg_source_read_full(r->ctx, r->call, r->source, buf, len, &eof, r->piece);
    return rc == TROVE_OK && eof ? bad(r, "it ends early") : rc;
}

static bool parse_number(const char *field, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if ((unsigned char)field[0] & 0x80) {   /* base-256 (GNU) */
        for (i = 1; i < width; i++) {
            if (v >> 56)
                return false;
            v = v << 8 | (unsigned char)field[i];
        }
        *out = v;
        return !(field[0] & 0x40);
    }
    while (i < width && field[i] == ' ')
        i++;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++)
        v = v << 3 | (uint64_t)(field[i] - '0');
    for (; i < width; i++)
        if (field[i] != ' ' && field[i] != '\0')
            return false;
    *out = v;
    return true;
}

static bool checksum_ok(const char *h)
{
    uint64_t want;
    if (!parse_number(h + 148, 8, &want))
        return false;
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
    return sum == want;
}

/* A safe relative name: no leading '/', no "." or ".." component. */
static bool name_ok(char *name)
{
    while (!strncmp(name, "./", 2))
        memmove(name, name + 2, strlen(name + 2) + 1);
    size_t len = strlen(name);
    while (len > 0 && name[len - 1] == '/')
        name[--len] = '\0';
    if (len == 0 || name[0] == '/' || tps_has_control(name))
        return false;
    int depth = 0;
    for (const char *p = name; *p; depth++) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && !strncmp(p, "..", 2)))
            return false;
        p += n + (p[n] == '/');
    }
    return depth <= 32;
}

static int skip_bytes(struct reader *r, uint64_t len)
{
    while (len > 0) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        int rc = read_exact(r, r->buf, n);
        if (rc != TROVE_OK)
            return rc;
        len -= n;
    }
    return TROVE_OK;
}

/* Read a pax header's records for path and size. */
static int read_pax(struct reader *r, uint64_t size, char *path, size_t pathlen, uint64_t *psize, bool *has_size)
{
    if (size > PAX_MAX)
        return bad(r, "an oversized pax header");
    size_t padded = (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
    int rc = read_exact(r, r->buf, padded);
    if (rc != TROVE_OK)
        return rc;
    size_t off = 0;
    while (off < size) {
        char *rec = r->buf + off, *space = memchr(rec, ' ', (size_t)(size - off));
        unsigned long len = strtoul(rec, NULL, 10);
        if (!space || len == 0 || len > size - off || rec[len - 1] != '\n')
            return bad(r, "a malformed pax record");
        char *kv = space + 1, *eq = memchr(kv, '=', (size_t)(rec + len - kv));
        if (!eq)
            return bad(r, "a malformed pax record");
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(rec + len - 1 - eq - 1);
        if (klen == 4 && !strncmp(kv, "path", 4)) {
            if (vlen >= pathlen)
                return bad(r, "a name that is too long");
            memcpy(path, eq + 1, vlen);
            path[vlen] = '\0';
        } else if (klen == 4 && !strncmp(kv, "size", 4)) {
            char num[32];
            if (vlen == 0 || vlen >= sizeof(num))
                return bad(r, "a malformed pax size");
            memcpy(num, eq + 1, vlen);
            num[vlen] = '\0';
            if (!tps_parse_u64(num, psize))
                return bad(r, "a malformed pax size");
            *has_size = true;
        }
        off += len;
    }
    return TROVE_OK;
}

static int write_file(struct reader *r, const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? bad(r, "a name that appears twice")
                               : r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot create %s: %s", path,
                                                    strerror(errno));
    int rc = TROVE_OK;
    uint64_t left = size;
    while (rc == TROVE_OK && left > 0) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        if ((rc = read_exact(r, r->buf, n)) != TROVE_OK)
            break;
        for (size_t off = 0; off < n;) {
            ssize_t w = write(fd, r->buf + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(errno));
                break;
            }
            off += (size_t)w;
        }
        left -= n;
    }
    if (rc == TROVE_OK && fsync(fd) != 0)
        rc = r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    if (rc == TROVE_OK && size % BLOCK)
        rc = skip_bytes(r, BLOCK - size % BLOCK);
    if (rc == TROVE_OK && tps_file_chown(path, r->ctx->s.run_as) != 0)
        rc = r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot give %s to %s", path, r->ctx->s.run_as);
    return rc;
}

/* Directories named in the stream, and the parents of its files. */
static int make_parents(struct reader *r, const char *rel, bool self)
{
    char path[MG_PATH_MAX];
    size_t len = strlen(rel);
    for (size_t i = 0; i <= len; i++) {
        if (rel[i] != '/' && (rel[i] != '\0' || !self))
            continue;
        tps_path(path, sizeof(path), "%s/%.*s", r->dir, (int)i, rel);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot create %s: %s", path, strerror(errno));
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            return bad(r, "a name used both as a file and a directory");
        if (tps_file_chown(path, r->ctx->s.run_as) != 0)
            return r->ctx->host->fail(r->call, TROVE_EINTERNAL, "cannot give %s to %s", path, r->ctx->s.run_as);
    }
    return TROVE_OK;
}

static int next_member(struct reader *r, bool *done)
{
    char h[BLOCK], name[NAME_MAX_LEN + 1], path[MG_PATH_MAX];
    uint64_t size = 0, pax_size = 0;
    bool has_pax_size = false;
    name[0] = '\0';
    for (;;) {
        int rc = read_exact(r, h, BLOCK);
        if (rc != TROVE_OK)
            return rc;
        static const char zero[BLOCK];
        if (!memcmp(h, zero, BLOCK)) {   /* the end: a second zero block must follow */
            if ((rc = read_exact(r, h, BLOCK)) != TROVE_OK)
                return rc;
            *done = true;
            return memcmp(h, zero, BLOCK) ? bad(r, "data after a single end block") : TROVE_OK;
        }
        if (!checksum_ok(h))
            return bad(r, "a header checksum does not match");
        if (!parse_number(h + 124, 12, &size))
            return bad(r, "a malformed size");
        char type = h[156];
        if (type == 'x') {
            if ((rc = read_pax(r, size, name, sizeof(name), &pax_size, &has_pax_size)) != TROVE_OK)
                return rc;
            continue;
        }
        if (type == 'g') {
            if ((rc = skip_bytes(r, (size + BLOCK - 1) / BLOCK * BLOCK)) != TROVE_OK)
                return rc;
            continue;
        }
        if (!name[0]) {
            if (!memcmp(h + 257, "ustar", 5) && h[345])
                snprintf(name, sizeof(name), "%.155s/%.100s", h + 345, h);
            else
                snprintf(name, sizeof(name), "%.100s", h);
        }
        if (has_pax_size)
            size = pax_size;
        if (!name_ok(name))
            return bad(r, "an absolute name or one with \"..\"");
        if (!tps_path(path, sizeof(path), "%s/%s", r->dir, name))
            return bad(r, "a name that is too long");
        if (type == '5')
            return make_parents(r, name, true);
        if (type != '0' && type != '\0')
            return bad(r, "a member that is neither a file nor a directory");
        if ((rc = make_parents(r, name, false)) != TROVE_OK)
            return rc;
        return write_file(r, path, size);
    }
}

int mg_tar_extract(struct mg_ctx *ctx, struct trove_call *call, struct trove_source *source, const char *dir,
                   const char *piece)
{
    struct reader r = {ctx, call, source, piece, dir, malloc(CHUNK)};
    if (!r.buf)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    bool done = false;
    int rc = TROVE_OK;
    while (rc == TROVE_OK && !done) {
        rc = next_member(&r, &done);
        if (rc == TROVE_OK && ctx->host->cancelled(call))
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while extracting backup %s", piece);
    }
    free(r.buf);
    return rc;
}
