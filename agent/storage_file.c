/*
 * storage_file.c - backup storage on a local directory: <id>.zst pieces
 * written as <id>.zst.partial and renamed into place after fsync, <id>.json
 * records replaced by write-to-temp + fsync + rename.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trove_plugin.h"

struct file_storage {
    struct storage base;
    char *dir;
    int dir_fd;
};

#define WRITEBACK_STEP (8u << 20)

struct storage_writer {
    struct file_storage *fs;
    int fd;
    uint64_t written, flushed;   /* writeback is started behind the writer, so commit's fsync is short */
    char partial[4096];
    char final[4096];
};

struct storage_reader {
    int fd;
};

static int fail_errno(char *err, size_t errlen, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    return e == ENOENT ? TROVE_ENOTFOUND : e == ENOSPC ? TROVE_EUNAVAIL : TROVE_EINTERNAL;
}

static void piece_path(struct file_storage *fs, const char *id, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/%s%s", fs->dir, id, suffix);
}

static int fw_open_write(struct storage *s, const char *id, struct storage_writer **out, char *err, size_t errlen)
{
    struct file_storage *fs = (struct file_storage *)s;
    struct storage_writer *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    w->fs = fs;
    piece_path(fs, id, ".zst.partial", w->partial, sizeof(w->partial));
    piece_path(fs, id, ".zst", w->final, sizeof(w->final));
    if (access(w->final, F_OK) == 0) {
        snprintf(err, errlen, "backup piece %s already exists", w->final);
        free(w);
        return TROVE_EEXIST;
    }
    w->fd = open(w->partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int rc = fail_errno(err, errlen, "cannot create", w->partial);
        free(w);
        return rc;
    }
    *out = w;
    return TROVE_OK;
}

static int fw_write(struct storage_writer *w, const void *data, size_t len, char *err, size_t errlen)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(err, errlen, "cannot write", w->partial);
        }
        p += n;
        len -= (size_t)n;
        w->written += (uint64_t)n;
    }
    if (w->written - w->flushed >= WRITEBACK_STEP) {
        sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->written - w->flushed), SYNC_FILE_RANGE_WRITE);
        w->flushed = w->written;
    }
    return TROVE_OK;
}

static int fw_commit(struct storage_writer *w, char *err, size_t errlen)
{
    int rc = TROVE_OK;
    if (fsync(w->fd) != 0)
        rc = fail_errno(err, errlen, "cannot fsync", w->partial);
    if (close(w->fd) != 0 && rc == TROVE_OK)
        rc = fail_errno(err, errlen, "cannot close", w->partial);
    if (rc == TROVE_OK && rename(w->partial, w->final) != 0)
        rc = fail_errno(err, errlen, "cannot rename", w->partial);
    if (rc == TROVE_OK)
        fsync(w->fs->dir_fd);
    else
        unlink(w->partial);
    free(w);
    return rc;
}

static void fw_abort(struct storage_writer *w)
{
    close(w->fd);
    unlink(w->partial);
    free(w);
}

static int fr_open_read(struct storage *s, const char *id, struct storage_reader **out, char *err, size_t errlen)
{
    char path[4096];
    piece_path((struct file_storage *)s, id, ".zst", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(err, errlen, "cannot open", path);
    struct storage_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    r->fd = fd;
    *out = r;
    return TROVE_OK;
}

static int fr_read(struct storage_reader *r, void *buf, size_t cap, size_t *got, char *err, size_t errlen)
{
    ssize_t n;
    do
        n = read(r->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        snprintf(err, errlen, "cannot read backup piece: %s", strerror(errno));
        return TROVE_EINTERNAL;
    }
    *got = (size_t)n;
    return TROVE_OK;
}

static void fr_close(struct storage_reader *r)
{
    close(r->fd);
    free(r);
}

static int f_put_record(struct storage *s, const char *id, const char *json, char *err, size_t errlen)
{
    struct file_storage *fs = (struct file_storage *)s;
    char tmp[4096], path[4096];
    piece_path(fs, id, ".json.tmp", tmp, sizeof(tmp));
    piece_path(fs, id, ".json", path, sizeof(path));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_errno(err, errlen, "cannot create", tmp);
    size_t len = strlen(json);
    int rc = TROVE_OK;
    if (write(fd, json, len) != (ssize_t)len || fsync(fd) != 0)
        rc = fail_errno(err, errlen, "cannot write", tmp);
    close(fd);
    if (rc == TROVE_OK && rename(tmp, path) != 0)
        rc = fail_errno(err, errlen, "cannot rename", tmp);
    if (rc != TROVE_OK)
        unlink(tmp);
    else
        fsync(fs->dir_fd);
    return rc;
}

static int f_get_record(struct storage *s, const char *id, char **json, char *err, size_t errlen)
{
    char path[4096];
    piece_path((struct file_storage *)s, id, ".json", path, sizeof(path));
    FILE *f = fopen(path, "re");
    if (!f)
        return fail_errno(err, errlen, "cannot open", path);
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    buf[n] = '\0';
    *json = buf;
    return TROVE_OK;
}

static int f_list(struct storage *s, char ***ids, size_t *n, char *err, size_t errlen)
{
    struct file_storage *fs = (struct file_storage *)s;
    DIR *d = opendir(fs->dir);
    if (!d)
        return fail_errno(err, errlen, "cannot list", fs->dir);
    char **out = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(out, cap * sizeof(*out));
            if (!grown)
                break;
            out = grown;
        }
        out[count] = strndup(e->d_name, len - 5);
        if (out[count])
            count++;
    }
    closedir(d);
    *ids = out;
    *n = count;
    return TROVE_OK;
}

static int f_remove(struct storage *s, const char *id, char *err, size_t errlen)
{
    struct file_storage *fs = (struct file_storage *)s;
    char path[4096];
    const char *suffixes[] = {".zst", ".zst.partial", ".json"};
    for (size_t i = 0; i < 3; i++) {
        piece_path(fs, id, suffixes[i], path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT)
            return fail_errno(err, errlen, "cannot remove", path);
    }
    return TROVE_OK;
}

static void f_close(struct storage *s)
{
    struct file_storage *fs = (struct file_storage *)s;
    if (!fs)
        return;
    close(fs->dir_fd);
    free(fs->dir);
    free(fs);
}

static const struct storage_ops file_ops = {
    .kind = "file",
    .open_write = fw_open_write, .write = fw_write, .commit = fw_commit, .abort = fw_abort,
    .open_read = fr_open_read, .read = fr_read, .close_read = fr_close,
    .put_record = f_put_record, .get_record = f_get_record, .list = f_list, .remove = f_remove,
    .close = f_close,
};

struct storage *storage_file_open(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create backup directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct file_storage *fs = calloc(1, sizeof(*fs));
    if (!fs || !(fs->dir = strdup(dir))) {
        free(fs);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fs->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->dir_fd < 0) {
        snprintf(err, errlen, "cannot open backup directory %s: %s", dir, strerror(errno));
        free(fs->dir);
        free(fs);
        return NULL;
    }
    fs->base.ops = &file_ops;
    return &fs->base;
}
