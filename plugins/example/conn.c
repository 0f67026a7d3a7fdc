/*
 * conn.c - the plugin's connection to the server: one per call (so the two
 * agent threads never share one), logged in as the admin, with every token
 * encoded by proto.c, so no name, password or value is ever pasted into a
 * command line unescaped. Server errors become failures with its message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

#define REPLY_TIMEOUT_MS 60000

/* The server's error codes, as trove statuses. */
static int status_of(const char *code)
{
    static const struct { const char *code; int status; } map[] = {
        {"invalid", TROVE_EINVAL}, {"notfound", TROVE_ENOTFOUND}, {"exists", TROVE_EEXIST},
        {"readonly", TROVE_ECONFLICT}, {"auth", TROVE_EDATASTORE}, {"denied", TROVE_EDATASTORE},
        {"limit", TROVE_EDATASTORE},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i].code, code))
            return map[i].status;
    return TROVE_EDATASTORE;
}

void ex_row_free(struct ex_row *row)
{
    free(row->line);
    memset(row, 0, sizeof(*row));
}

/* Read one reply line into row; TROVE_OK or a failure. */
static int read_row(struct ex_conn *c, struct ex_row *row)
{
    memset(row, 0, sizeof(*row));
    row->line = kv_read_line(&c->in, REPLY_TIMEOUT_MS);
    if (!row->line)
        return c->ctx->host->fail(c->call, TROVE_EUNAVAIL, "the server stopped answering: %s", strerror(errno));
    row->n = kv_split(row->line, row->col);
    if (row->n <= 0) {
        ex_row_free(row);
        return c->ctx->host->fail(c->call, TROVE_EDATASTORE, "the server sent a malformed reply");
    }
    return TROVE_OK;
}

static int send_tokens(struct ex_conn *c, va_list ap)
{
    const char *tok[KV_TOKENS_MAX];
    size_t n = 0;
    for (const char *t = va_arg(ap, const char *); t; t = va_arg(ap, const char *))
        if (n < KV_TOKENS_MAX)
            tok[n++] = t;
    struct tps_buf b = {0};
    kv_line(&b, tok, n);
    int rc = !tps_buf_str(&b) ? c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory")
             : kv_send(c->fd, b.data, b.len, REPLY_TIMEOUT_MS) != 0
                 ? c->ctx->host->fail(c->call, TROVE_EUNAVAIL, "cannot send to the server")
                 : TROVE_OK;
    tps_buf_wipe(&b);   /* it may have held a password */
    return rc;
}

int ex_conn_cmd(struct ex_conn *c, ex_row_fn each, void *arg, struct ex_row *ok, ...)
{
    va_list ap;
    va_start(ap, ok);
    int rc = send_tokens(c, ap);
    va_end(ap);
    while (rc == TROVE_OK) {
        struct ex_row row;
        if ((rc = read_row(c, &row)) != TROVE_OK)
            break;
        const char *kind = row.col[0];
        if (!strcmp(kind, "ROW")) {
            if (each) {   /* the callback sees the row without its "ROW" token */
                struct ex_row shifted = row;
                memmove(shifted.col, row.col + 1, sizeof(row.col) - sizeof(row.col[0]));
                shifted.n--;
                rc = each(arg, &shifted);
            }
            ex_row_free(&row);
            continue;
        }
        if (!strcmp(kind, "OK")) {
            if (ok)
                *ok = row;
            else
                ex_row_free(&row);
            return TROVE_OK;
        }
        rc = c->ctx->host->fail(c->call, status_of(row.n > 1 ? row.col[1] : ""), "%s",
                                row.n > 2 ? row.col[2] : "the server refused");
        ex_row_free(&row);
        return rc;
    }
    return rc;
}

int ex_conn_open_quiet(struct ex_ctx *ctx, struct ex_conn *c, unsigned timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->fd = kv_dial(ctx->s.host, (int)ctx->s.port, timeout_ms);
    c->in.fd = c->fd;
    return c->fd >= 0 ? TROVE_OK : TROVE_EUNAVAIL;
}

int ex_conn_open(struct ex_ctx *ctx, struct trove_call *call, struct ex_conn *c)
{
    if (ex_conn_open_quiet(ctx, c, (unsigned)ctx->s.connect_timeout_ms) != TROVE_OK)
        return ctx->host->fail(call, TROVE_EUNAVAIL, "cannot connect to the server at %s:%lld: %s", ctx->s.host,
                               (long long)ctx->s.port, strerror(-c->fd));
    c->call = call;
    int rc = ex_conn_cmd(c, NULL, NULL, NULL, "AUTH", ctx->s.admin_user, ctx->s.admin_password, (char *)NULL);
    if (rc != TROVE_OK) {
        ex_conn_close(c);
        return ctx->host->fail(call, TROVE_EUNAVAIL, "the server refused the admin login (%s)", ctx->s.admin_user);
    }
    return TROVE_OK;
}

void ex_conn_close(struct ex_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kv_reader_free(&c->in);
}
