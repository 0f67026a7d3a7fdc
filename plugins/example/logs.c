/*
 * logs.c - the guest logs: the server's own log (what it prints) and the
 * writes log (every write, while log_writes is on). Both are plain files in
 * the data directory, served by the support library into the host's sink.
 */
#include <string.h>

#include "example.h"

static const struct {
    const char *name, *file, *description;
    enum trove_guest_log_type type;
} LOGS[] = {
    {"server", "kvd.log", "what the server reports: starts, stops, replication, cluster", TROVE_GUEST_LOG_SYSTEM},
    {"writes", "writes.log", "every write, while the log_writes parameter is on", TROVE_GUEST_LOG_USER},
};
#define N_LOGS (sizeof(LOGS) / sizeof(LOGS[0]))

int ex_guest_log_list(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    char path[1200];
    for (size_t i = 0; i < N_LOGS; i++) {
        struct trove_guest_log g = {.size = sizeof(g), .name = LOGS[i].name, .type = LOGS[i].type,
                                    .description = LOGS[i].description,
                                    .bytes = tps_file_size(ex_data_path(ctx, LOGS[i].file, path, sizeof(path)))};
        if (g.bytes < 0)
            g.bytes = 0;   /* not written yet: an empty log */
        int rc = ctx->host->emit_guest_log(call, &g);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

int ex_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct ex_ctx *ctx = self;
    char path[1200];
    for (size_t i = 0; i < N_LOGS; i++)
        if (!strcmp(req->name, LOGS[i].name))
            return tps_guest_log_from_file(ctx->host, call, ex_data_path(ctx, LOGS[i].file, path, sizeof(path)), req);
    return ctx->host->fail(call, TROVE_ENOTFOUND, "the example datastore has no log \"%s\"", req->name);
}
