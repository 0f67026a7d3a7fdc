/*
 * logs.c - the guest logs: the server's error log, and the slow query and
 * general logs, written while slow_query_log / general_log are on. All three
 * are plain files at paths the plugin chose (settings, written into my.cnf),
 * never at a path read back from the server, and are served by the support
 * library into the host's sink.
 */
#include <string.h>

#include "mysql_plugin.h"

struct log_def {
    const char *name, *description;
    enum trove_guest_log_type type;
    size_t path;   /* offsetof(struct my_settings, the file's path) */
};

static const struct log_def LOGS[] = {
    {"error", "the server's error log: starts, stops, errors, replication", TROVE_GUEST_LOG_SYSTEM,
     offsetof(struct my_settings, log_error)},
    {"slow_query", "statements slower than long_query_time, while slow_query_log is on", TROVE_GUEST_LOG_USER,
     offsetof(struct my_settings, slow_log)},
    {"general", "every statement the server receives, while general_log is on", TROVE_GUEST_LOG_USER,
     offsetof(struct my_settings, general_log)},
};
#define N_LOGS (sizeof(LOGS) / sizeof(LOGS[0]))

static const char *log_path(const struct my_ctx *ctx, const struct log_def *def)
{
    const char *path;
    memcpy(&path, (const char *)&ctx->s + def->path, sizeof(path));
    return path;
}

int my_guest_log_list(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    for (size_t i = 0; i < N_LOGS; i++) {
        struct trove_guest_log g = {.size = sizeof(g), .name = LOGS[i].name, .type = LOGS[i].type,
                                    .description = LOGS[i].description,
                                    .bytes = tps_file_size(log_path(ctx, &LOGS[i]))};
        if (g.bytes < 0)
            g.bytes = 0;   /* not written yet: an empty log */
        int rc = ctx->host->emit_guest_log(call, &g);
        if (rc != TROVE_OK)
            return rc;
    }
    return TROVE_OK;
}

int my_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct my_ctx *ctx = self;
    if (!TROVE_FIELD_OK(req, struct trove_guest_log_request, sink) || !req->name)
        return ctx->host->fail(call, TROVE_EINVAL, "the log request is shorter than ABI 2.0's");
    for (size_t i = 0; i < N_LOGS; i++)
        if (!strcmp(req->name, LOGS[i].name))
            return tps_guest_log_from_file(ctx->host, call, log_path(ctx, &LOGS[i]), req);
    return ctx->host->fail(call, TROVE_ENOTFOUND, "MariaDB has no log \"%s\" (error, slow_query, general)", req->name);
}
