/*
 * logs.c - the guest log: mongod's own log file (systemLog.path), served by
 * the support library into the host's sink. mongod writes it as one JSON
 * document per line.
 */
#include <string.h>

#include "mongodb.h"

#define LOG_NAME "mongod"

int mg_guest_log_list(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    struct trove_guest_log g = {.size = sizeof(g), .name = LOG_NAME, .type = TROVE_GUEST_LOG_SYSTEM,
                                .description = "the mongod server log (systemLog.path)",
                                .bytes = tps_file_size(mg_log_path(ctx, path, sizeof(path)))};
    if (g.bytes < 0)
        g.bytes = 0;   /* not written yet: an empty log */
    return ctx->host->emit_guest_log(call, &g);
}

int mg_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    if (strcmp(req->name, LOG_NAME))
        return ctx->host->fail(call, TROVE_ENOTFOUND, "the mongodb plugin has no log \"%s\"", req->name);
    return tps_guest_log_from_file(ctx->host, call, mg_log_path(ctx, path, sizeof(path)), req);
}
