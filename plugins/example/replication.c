/*
 * replication.c - a copy-based follow: a replica's server copies its
 * source's whole store whenever the source's position (seq, term) differs
 * from its own, as often as sync_interval_ms. The position is the write
 * sequence number; the term grows with every promotion. The replication
 * account's password is kept in the plugin's state directory (0600, under a
 * lock, since another agent process may ask at the same moment), so every
 * replica of this server uses the same credentials.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

static int simple(void *self, struct trove_call *call, const char *cmd, const char *arg)
{
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, cmd, arg, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

/* ROLE: OK role seq term source_host source_port link read_only */
static int role(struct ex_ctx *ctx, struct trove_call *call, struct ex_row *out)
{
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, out, "ROLE", (char *)NULL);
        ex_conn_close(&c);
    }
    if (rc == TROVE_OK && out->n < 8) {
        ex_row_free(out);
        rc = ctx->host->fail(call, TROVE_EDATASTORE, "the server's ROLE reply is malformed");
    }
    return rc;
}

int ex_repl_credentials(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    char path[1200], lock_path[1200], password[33];
    tps_path(path, sizeof(path), "%s/replication.password", ctx->state_dir);
    tps_path(lock_path, sizeof(lock_path), "%s/replication.lock", ctx->state_dir);
    int lock = tps_file_lock(lock_path, true);
    if (lock < 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", lock_path, strerror(-lock));
    char *kept = tps_file_read(path, sizeof(password) - 1, NULL);
    int rc = TROVE_OK;
    if (kept) {
        snprintf(password, sizeof(password), "%s", kept);
        explicit_bzero(kept, strlen(kept));
        free(kept);
    } else if ((rc = ctx->host->random_password(password, sizeof(password))) == TROVE_OK) {
        int e = tps_file_write_atomic(path, password, strlen(password), 0600);
        if (e != 0)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    }
    struct ex_conn c;
    if (rc == TROVE_OK && (rc = ex_conn_open(ctx, call, &c)) == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "USER.CREATE", ctx->s.replication_user, password, "replication",
                         (char *)NULL);
        if (rc == TROVE_EEXIST)   /* make sure it has the password kept here */
            rc = ex_conn_cmd(&c, NULL, NULL, NULL, "USER.PASSWORD", ctx->s.replication_user, password, (char *)NULL);
        ex_conn_close(&c);
    }
    tps_file_unlock(lock);
    if (rc == TROVE_OK && (rc = ctx->host->set_str(call, "user", ctx->s.replication_user)) == TROVE_OK)
        rc = ctx->host->set_str(call, "password", password);
    explicit_bzero(password, sizeof(password));
    return rc;
}

int ex_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    int rc = ex_repl_credentials(self, call);
    return rc == TROVE_OK ? ex_backup_create(self, call, req) : rc;
}

/* Wait until the server has reached its source at least once. */
static int wait_linked(struct ex_ctx *ctx, struct trove_call *call)
{
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.start_timeout * 1000;
    for (;;) {
        struct ex_row r;
        int rc = role(ctx, call, &r);
        bool up = rc == TROVE_OK && !strcmp(r.col[6], "up");
        if (rc == TROVE_OK)
            ex_row_free(&r);
        if (rc != TROVE_OK || up)
            return rc;
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for the source");
        if (tps_now_ms() > deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "the server did not reach its source within %lld s "
                                   "(see its log for why)", (long long)ctx->s.start_timeout);
        tps_sleep_ms(50);
    }
}

/* Tell the server to follow src (it connects on its own, in the background). */
static int point_at(struct ex_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    char port[16];
    if (!src->host || !*src->host || src->port < 1 || !src->user || !src->password)
        return ctx->host->fail(call, TROVE_EINVAL, "a source needs host, port, user and password");
    snprintf(port, sizeof(port), "%d", (int)src->port);
    struct ex_conn c;
    int rc = ex_conn_open(ctx, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "REPLICATE", src->host, port, src->user, src->password, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

static int follow(struct ex_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    int rc = point_at(ctx, call, src);
    return rc == TROVE_OK ? wait_linked(ctx, call) : rc;
}

int ex_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
#ifdef EXAMPLE_BROKEN_REPLICATION
    /* A deliberately broken build for trove-plugin-check's own tests: it
     * points the server at a port where nothing listens and reports
     * success, so the replica says "replica" but never sees a write. */
    struct trove_replication_source wrong = *src;
    wrong.port = 1;
    return point_at(self, call, &wrong);
#else
    return follow(self, call, src);
#endif
}

int ex_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    int rc = simple(self, call, "READONLY", "on");
    return rc == TROVE_OK ? follow(self, call, src) : rc;
}

int ex_repl_detach(void *self, struct trove_call *call)
{
    return simple(self, call, "PROMOTE", NULL);
}

int ex_repl_promote(void *self, struct trove_call *call)
{
    return simple(self, call, "PROMOTE", NULL);
}

int ex_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    return simple(self, call, "READONLY", read_only ? "on" : "off");
}

int ex_repl_position(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct ex_row r;
    int rc = role(ctx, call, &r);
    if (rc == TROVE_OK) {
        rc = ctx->host->set_str(call, "position", r.col[2]);
        ex_row_free(&r);
    }
    return rc;
}

int ex_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct ex_ctx *ctx = self;
    int64_t want, have = -1;
    if (!tps_parse_int(position, 0, INT64_MAX, &want))
        return ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is not a position of this datastore", position);
    uint64_t deadline = tps_now_ms() + timeout_ms;
    for (;;) {
        struct ex_row r;
        int rc = role(ctx, call, &r);
        if (rc != TROVE_OK)
            return rc;
        tps_parse_int(r.col[2], 0, INT64_MAX, &have);
        ex_row_free(&r);
        if (have >= want)
            return TROVE_OK;
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for position %s", position);
        if (tps_now_ms() >= deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %lld)", position,
                                   timeout_ms, (long long)have);
        tps_sleep_ms(20);
    }
}

int ex_repl_status(void *self, struct trove_call *call)
{
    struct ex_ctx *ctx = self;
    struct ex_row r;
    int rc = role(ctx, call, &r);
    if (rc != TROVE_OK)
        return rc;
    const struct trove_host *h = ctx->host;
    if ((rc = h->set_str(call, "role", r.col[1])) == TROVE_OK && (rc = h->set_str(call, "position", r.col[2])) == 0 &&
        (rc = h->set_str(call, "source_host", r.col[4])) == TROVE_OK &&
        (rc = h->set_int(call, "source_port", strtoll(r.col[5], NULL, 10))) == TROVE_OK &&
        !strcmp(r.col[1], "replica"))
        rc = h->set_str(call, "io_state", !strcmp(r.col[6], "up") ? "connected" : "disconnected");
    ex_row_free(&r);
    return rc;
}

/* Positions are write sequence numbers: plain integers. No call handle: pure. */
int ex_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    int64_t x, y;
    (void)self;
    if (!tps_parse_int(a, 0, INT64_MAX, &x) || !tps_parse_int(b, 0, INT64_MAX, &y))
        return TROVE_EINVAL;
    *order = x < y ? TROVE_ORDER_BEFORE : x > y ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL;
    return TROVE_OK;
}
