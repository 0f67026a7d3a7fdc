/*
 * logs.c - the guest logs: Cassandra's system.log (always listed), and
 * debug.log and gc.log when the node writes them. All are plain files in
 * log_dir, served by the support library into the host's sink.
 */
#include <string.h>
#include <unistd.h>

#include "cassandra.h"

static const struct {
    const char *name, *file, *description;
    bool always;
} LOGS[] = {
    {"system", "system.log", "the node's log: starts, stops, ring changes, errors", true},
    {"debug", "debug.log", "the node's debug log (compaction, flushes, schema)", false},
    {"gc", "gc.log", "the JVM's garbage collection log", false},
};
#define N_LOGS (sizeof(LOGS) / sizeof(LOGS[0]))

static const char *log_path(struct cs_ctx *ctx, size_t i, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->s.log_dir, LOGS[i].file);
    return buf;
}

int cs_guest_log_list(void *self, struct trove_call *call)
{
    struct cs_ctx *ctx = self;
    char path[CS_PATH_MAX + 32];
    for (size_t i = 0; i < N_LOGS; i++) {
        int64_t bytes = tps_file_size(log_path(ctx, i, path, sizeof(path)));
        if (bytes < 0 && !LOGS[i].always)
            continue;
        struct trove_guest_log g = {.size = sizeof(g), .name = LOGS[i].name, .type = TROVE_GUEST_LOG_SYSTEM,
                                    .description = LOGS[i].description, .bytes = bytes < 0 ? 0 : bytes};
        int rc = ctx->host->emit_guest_log(call, &g);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

int cs_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct cs_ctx *ctx = self;
    char path[CS_PATH_MAX + 32];
    if (req->mode != TROVE_GUEST_LOG_TAIL && req->mode != TROVE_GUEST_LOG_WHOLE)
        return ctx->host->fail(call, TROVE_ENOTSUP, "unknown log read mode %d", (int)req->mode);
    for (size_t i = 0; i < N_LOGS; i++)
        if (!strcmp(req->name, LOGS[i].name))
            return tps_guest_log_from_file(ctx->host, call, log_path(ctx, i, path, sizeof(path)), req);
    return ctx->host->fail(call, TROVE_ENOTFOUND, "Cassandra has no log \"%s\" (logs: system, debug, gc)", req->name);
}
