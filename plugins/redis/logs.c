/*
 * logs.c - the guest logs: the server log (the file redis-server writes,
 * served by the support library) and the slow log (SLOWLOG GET, one line per
 * entry, oldest first). Neither holds a password: Redis redacts the
 * arguments of AUTH, ACL SETUSER and CONFIG SET masterauth in its slow log,
 * and the plugin sends passwords only as hashes anyway.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "redis_plugin.h"

#define SLOWLOG_LINE_MIN 16   /* no entry formats shorter: what a tail of n bytes needs at most */
#define SLOWLOG_TAIL_ENTRIES_MAX 100000

int rd_guest_log_list(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    int rc = TROVE_OK;
    if (ctx->s.log_file) {
        int64_t bytes = tps_file_size(ctx->s.log_file);
        struct trove_guest_log server = {.size = sizeof(server), .name = "server", .type = TROVE_GUEST_LOG_SYSTEM,
                                         .description = "what redis-server reports: starts, stops, replication, "
                                                        "persistence, warnings",
                                         .bytes = bytes < 0 ? 0 : bytes};   /* not written yet: empty */
        rc = ctx->host->emit_guest_log(call, &server);
    }
    struct trove_guest_log slow = {.size = sizeof(slow), .name = "slowlog", .type = TROVE_GUEST_LOG_USER,
                                   .description = "commands slower than slowlog-log-slower-than (SLOWLOG GET), "
                                                  "oldest first",
                                   .bytes = -1};   /* formatted on reading */
    return rc == TROVE_OK ? ctx->host->emit_guest_log(call, &slow) : rc;
}

/* One argument, in double quotes, with everything but printable ASCII
 * escaped, so a key or value never breaks the line. */
static void add_arg(struct tps_buf *b, const char *s, size_t len)
{
    tps_buf_add(b, " \"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            tps_buf_addf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            tps_buf_addf(b, "\\x%02x", c);
        else
            tps_buf_addn(b, s + i, 1);
    }
    tps_buf_add(b, "\"");
}

static const char *str_of(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len ? r->str : "-";
}

/* "<id> <time UTC> <duration>us <client> <client name> "arg" ..." from one
 * entry: [id, unix time, microseconds, [args], client address, client name]. */
static void add_entry(struct tps_buf *b, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 || e->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    char when[32] = "-";
    time_t t = (time_t)e->element[1]->integer;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    tps_buf_addf(b, "%lld %s %lldus %s %s", (long long)e->element[0]->integer, when,
                 (long long)e->element[2]->integer, e->elements > 4 ? str_of(e->element[4]) : "-",
                 e->elements > 5 ? str_of(e->element[5]) : "-");
    const redisReply *args = e->element[3];
    for (size_t i = 0; args->type == REDIS_REPLY_ARRAY && i < args->elements; i++)
        if (args->element[i]->type == REDIS_REPLY_STRING || args->element[i]->type == REDIS_REPLY_STATUS)
            add_arg(b, args->element[i]->str, args->element[i]->len);
    tps_buf_add(b, "\n");
}

/* SLOWLOG GET answers newest first; the log reads oldest first. */
static int slowlog_text(struct rd_ctx *ctx, struct trove_call *call, long long count, struct tps_buf *out)
{
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    char n[32];
    snprintf(n, sizeof(n), "%lld", count);
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd(&conn, &r, "SLOWLOG", "GET", n, NULL);
    for (size_t i = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0; rc == TROVE_OK && i > 0; i--)
        add_entry(out, r->element[i - 1]);
    if (rc == TROVE_OK && !tps_buf_str(out))
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

/* The last max_bytes of text, starting after a line break when the cut
 * falls inside a line. */
static const char *tail_of(const struct tps_buf *b, uint64_t max_bytes)
{
    if (b->len <= max_bytes)
        return b->data;
    const char *start = b->data + b->len - max_bytes;
    const char *nl = start[-1] == '\n' ? start - 1 : memchr(start, '\n', max_bytes);
    return nl && nl + 1 < b->data + b->len ? nl + 1 : start;
}

static int read_slowlog(struct rd_ctx *ctx, struct trove_call *call, const struct trove_guest_log_request *req)
{
    int32_t mode = RD_FIELD(req, struct trove_guest_log_request, mode, -1);
    uint64_t max_bytes = RD_FIELD(req, struct trove_guest_log_request, max_bytes, 0);
    struct trove_sink *sink = RD_FIELD(req, struct trove_guest_log_request, sink, NULL);
    if (mode != TROVE_GUEST_LOG_TAIL && mode != TROVE_GUEST_LOG_WHOLE)
        return RD_FAIL(ctx, call, TROVE_ENOTSUP, "log read mode %d is not supported", (int)mode);
    /* A tail asks only for the newest entries that can fill it. */
    long long count = -1;
    if (mode == TROVE_GUEST_LOG_TAIL)
        count = max_bytes / SLOWLOG_LINE_MIN + 1 < SLOWLOG_TAIL_ENTRIES_MAX
                    ? (long long)(max_bytes / SLOWLOG_LINE_MIN + 1) : SLOWLOG_TAIL_ENTRIES_MAX;
    struct tps_buf text = {0};
    int rc = slowlog_text(ctx, call, count, &text);
    if (rc == TROVE_OK && text.len > 0) {
        const char *from = mode == TROVE_GUEST_LOG_TAIL ? tail_of(&text, max_bytes) : text.data;
        rc = ctx->host->sink_write(sink, from, text.len - (size_t)(from - text.data));   /* a refusal says why */
    }
    tps_buf_free(&text);
    return rc;
}

int rd_guest_log_read(void *self, struct trove_call *call, const struct trove_guest_log_request *req)
{
    struct rd_ctx *ctx = self;
    const char *name = RD_FIELD(req, struct trove_guest_log_request, name, NULL);
    if (name && !strcmp(name, "server") && ctx->s.log_file)
        return tps_guest_log_from_file(ctx->host, call, ctx->s.log_file, req);
    if (name && !strcmp(name, "slowlog"))
        return read_slowlog(ctx, call, req);
    return RD_FAIL(ctx, call, TROVE_ENOTFOUND, "the redis plugin has no log \"%s\"%s", name ? name : "",
                   name && !strcmp(name, "server") ? " (no log_file or dir setting)" : "");
}
