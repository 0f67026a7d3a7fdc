/*
 * mongodb_stream.c - the MongoDB plugin's full backup alone: loads
 * mongodb.so with a minimal host whose sink writes the bytes to a file (or
 * discards them) with no compression or checksum, runs backup_create once
 * and prints "<bytes> <seconds>". bench/mongodb_backup.sh compares it with
 * tar over the same data directory, to tell the plugin's own cost from the
 * agent's pipeline.
 *
 * usage: mongodb-stream-bench PLUGIN.so STATE_DIR OUTPUT|- KEY=VALUE...
 *        (the [datastore] settings; admin_password from $MONGODB_ADMIN_PASSWORD)
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trove_plugin.h"

struct trove_sink {
    int fd;            /* -1: discard */
    uint64_t bytes;
};

struct trove_call {
    char message[TROVE_FAIL_MAX];
};

static void h_log(enum trove_log_level level, const char *fmt, ...)
{
    if (level > TROVE_LOG_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int h_fail(struct trove_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
    va_end(ap);
    return status;
}

static void h_progress(struct trove_call *call, int percent, const char *fmt, ...)
{
    (void)call, (void)percent, (void)fmt;
}

static bool h_cancelled(struct trove_call *call)
{
    (void)call;
    return false;
}

static int h_ok_user(struct trove_call *c, const struct trove_user *u) { (void)c, (void)u; return TROVE_OK; }
static int h_ok_db(struct trove_call *c, const struct trove_database *d) { (void)c, (void)d; return TROVE_OK; }
static int h_ok_param(struct trove_call *c, const struct trove_param *p) { (void)c, (void)p; return TROVE_OK; }
static int h_ok_str(struct trove_call *c, const char *k, const char *v) { (void)c, (void)k, (void)v; return TROVE_OK; }
static int h_ok_int(struct trove_call *c, const char *k, int64_t v) { (void)c, (void)k, (void)v; return TROVE_OK; }
static int h_ok_bool(struct trove_call *c, const char *k, bool v) { (void)c, (void)k, (void)v; return TROVE_OK; }
static int h_ok_put(struct trove_call *c, const char *m, const char *k, const char *v)
{
    (void)c, (void)m, (void)k, (void)v;
    return TROVE_OK;
}
static int h_ok_member(struct trove_call *c, const struct trove_member *m) { (void)c, (void)m; return TROVE_OK; }
static int h_ok_log(struct trove_call *c, const struct trove_guest_log *l) { (void)c, (void)l; return TROVE_OK; }

static int h_sink_write(struct trove_sink *sink, const void *data, size_t len)
{
    sink->bytes += len;
    for (const char *p = data; sink->fd >= 0 && len > 0;) {
        ssize_t w = write(sink->fd, p, len);
        if (w <= 0)
            return TROVE_EINTERNAL;
        p += w, len -= (size_t)w;
    }
    return TROVE_OK;
}

static int h_source_read(struct trove_source *s, void *buf, size_t cap, size_t *got)
{
    (void)s, (void)buf, (void)cap;
    *got = 0;
    return TROVE_OK;
}

static int h_exec(struct trove_call *call, struct trove_exec *cmd)
{
    (void)cmd;
    return h_fail(call, TROVE_ENOTSUP, "exec is not offered by this bench host");
}

static int h_random(char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        buf[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rand() % 36];
    buf[len - 1] = '\0';
    return TROVE_OK;
}

static const struct trove_host HOST = {
    .abi_major = TROVE_ABI_MAJOR, .abi_minor = TROVE_ABI_MINOR, .size = sizeof(struct trove_host),
    .log = h_log, .fail = h_fail, .progress = h_progress, .cancelled = h_cancelled,
    .emit_user = h_ok_user, .emit_database = h_ok_db, .emit_param = h_ok_param, .set_str = h_ok_str,
    .set_int = h_ok_int, .set_bool = h_ok_bool, .add_str = h_ok_str, .put = h_ok_put,
    .sink_write = h_sink_write, .source_read = h_source_read, .exec = h_exec, .random_password = h_random,
    .emit_member = h_ok_member, .emit_guest_log = h_ok_log,
};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PLUGIN.so STATE_DIR OUTPUT|- KEY=VALUE...\n", argv[0]);
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    trove_plugin_entry_fn entry = so ? (trove_plugin_entry_fn)dlsym(so, TROVE_PLUGIN_ENTRY) : NULL;
    if (!entry) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    const struct trove_plugin *p = entry();
    struct trove_kv kv[64];
    size_t n = 0;
    for (int i = 4; i < argc && n < 63; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        kv[n++] = (struct trove_kv){argv[i], eq + 1};
    }
    if (getenv("MONGODB_ADMIN_PASSWORD"))
        kv[n++] = (struct trove_kv){"admin_password", getenv("MONGODB_ADMIN_PASSWORD")};
    struct trove_open_request req = {.size = sizeof(req), .settings = kv, .n_settings = n, .state_dir = argv[2],
                                     .instance_id = "bench"};
    void *self = NULL;
    char err[512];
    if (p->open(&HOST, &req, &self, err, sizeof(err)) != TROVE_OK) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    struct trove_sink sink = {.fd = strcmp(argv[3], "-") ? open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1};
    struct trove_call call = {{0}};
    struct trove_backup_request breq = {.size = sizeof(breq), .id = "bench", .kind = TROVE_BACKUP_FULL,
                                        .sink = &sink};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = p->backup_create(self, &call, &breq);
    if (rc == TROVE_OK && sink.fd >= 0 && fsync(sink.fd) != 0)
        rc = TROVE_EINTERNAL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (sink.fd >= 0)
        close(sink.fd);
    p->close(self);
    if (rc != TROVE_OK) {
        fprintf(stderr, "backup_create: %d: %s\n", rc, call.message);
        return 1;
    }
    printf("%llu %.6f\n", (unsigned long long)sink.bytes,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
