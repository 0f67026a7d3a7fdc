/*
 * logs.c - the guest logs: the server log, the file the postmaster's
 * output is appended to (log_file): starts, stops, errors, and the
 * statements the logging parameters ask for (log_min_duration_statement for
 * slow ones). Served from the file by the support library.
 */
#include <string.h>

#include "pg.h"

#define SERVER_LOG "server"

int pg_guest_log_list(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    if (!ctx->s.log_file[0])
        return TROVE_OK;   /* a server not managed here writes its log elsewhere */
    struct trove_guest_log g = {.size = sizeof(g), .name = SERVER_LOG, .type = TROVE_GUEST_LOG_SYSTEM,
                                .description = "the server log: starts, stops, errors, and statements slower than "
                                               "log_min_duration_statement",
                                .bytes = tps_file_size(ctx->s.log_file)};
    if (g.bytes < 0)
        g.bytes = 0;   /* not written yet: an empty log */
    return ctx->host->emit_guest_log(call, &g);
}

int pg_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct pg_ctx *ctx = self;
    if (!ctx->s.log_file[0] || strcmp(req->name, SERVER_LOG) != 0)
        return ctx->host->fail(call, TROVE_ENOTFOUND, "the postgres plugin has no log \"%s\"%s", req->name,
                               ctx->s.log_file[0] ? " (its one log is \"server\")" : "");
    return tps_guest_log_from_file(ctx->host, call, ctx->s.log_file, req);
}
