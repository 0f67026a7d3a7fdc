/*
 * replication.c - REPLICAOF replication. A position is "<replid>:<offset>"
 * (master_replid, master_repl_offset), followed by ",<replid2>:<offset2>"
 * when the server also carries an earlier history (after a promotion), so
 * that positions compare across a failover. A read-only primary is one whose
 * min-replicas-to-write is set out of reach (writes fail with NOREPLICAS);
 * the operator's value waits in the state directory ("readonly") until it
 * is lifted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_plugin.h"

#define UNREACHABLE_REPLICAS "2147483647"

int rd_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    (void)self;
    struct rd_pos pa, pb;
    if (rd_pos_parse(a, &pa) != 0 || rd_pos_parse(b, &pb) != 0)
        return TROVE_EINVAL;
    *order = rd_pos_compare(&pa, &pb);
    return TROVE_OK;
}

static int info_replication(struct rd_conn *conn, redisReply **r)
{
    int rc = rd_conn_cmd(conn, r, "INFO", "replication", NULL);
    if (rc == TROVE_OK && (*r)->type != REDIS_REPLY_STRING && (*r)->type != REDIS_REPLY_STATUS) {
        freeReplyObject(*r);
        *r = NULL;
        rc = RD_FAIL(conn->ctx, conn->call, TROVE_EDATASTORE, "INFO replication: unexpected reply");
    }
    return rc;
}

int rd_position_read(struct rd_conn *conn, char *buf, size_t len)
{
    redisReply *r;
    int rc = info_replication(conn, &r);
    if (rc == TROVE_OK)
        rd_position_from_info(r->str, buf, len);
    freeReplyObject(r);
    return rc;
}

int rd_repl_position(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    char pos[256];
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK && (rc = rd_position_read(&conn, pos, sizeof(pos))) == TROVE_OK)
        rc = ctx->host->set_str(call, "position", pos);
    rd_conn_close(&conn);
    return rc;
}

int rd_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    struct rd_pos target, mine;
    char pos[256] = "";
    if (rd_pos_parse(position, &target) != 0)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "not a Redis position (\"<replid>:<offset>\")");
    int rc = rd_conn_open(ctx, call, &conn);
    uint64_t deadline = tps_now_ms() + timeout_ms;
    while (rc == TROVE_OK) {
        if ((rc = rd_position_read(&conn, pos, sizeof(pos))) != TROVE_OK)
            break;
        enum trove_order o = rd_pos_parse(pos, &mine) == 0 ? rd_pos_compare(&mine, &target) : TROVE_ORDER_DIVERGED;
        if (o == TROVE_ORDER_EQUAL || o == TROVE_ORDER_AFTER)
            break;
        if (ctx->host->cancelled(call))
            rc = RD_FAIL(ctx, call, TROVE_ECANCELLED, "cancelled");
        else if (tps_now_ms() >= deadline)
            rc = RD_FAIL(ctx, call, TROVE_ETIMEOUT, "position %s not reached within %u ms (now at %s)", position,
                         timeout_ms, pos);
        else
            tps_sleep_ms(20);
    }
    rd_conn_close(&conn);
    return rc;
}

int rd_repl_status(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    char v[256], pos[256], host[256] = "", port[16] = "0", link[32] = "", sync[8] = "0", io[32] = "0";
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = info_replication(&conn, &r);
    if (rc != TROVE_OK)
        goto out;
    const char *info = r->str;
    rd_position_from_info(info, pos, sizeof(pos));
    bool replica = rd_info_find(info, "role", v, sizeof(v)) && strcmp(v, "slave") == 0;
    const struct trove_host *h = ctx->host;
    if (replica) {
        rd_info_find(info, "master_host", host, sizeof(host));
        rd_info_find(info, "master_port", port, sizeof(port));
        rd_info_find(info, "master_link_status", link, sizeof(link));
        rd_info_find(info, "master_sync_in_progress", sync, sizeof(sync));
        if (!rd_info_find(info, "master_last_io_seconds_ago", io, sizeof(io)) || strcmp(link, "up") != 0)
            rd_info_find(info, "master_link_down_since_seconds", io, sizeof(io));
        rc = h->set_str(call, "role", "replica");
        rc = rc ? rc : h->set_str(call, "source_host", host);
        rc = rc ? rc : h->set_int(call, "source_port", strtol(port, NULL, 10));
        rc = rc ? rc : h->set_str(call, "io_state", link);
        rc = rc ? rc : h->set_str(call, "apply_state", strcmp(sync, "1") == 0 ? "syncing" : "streaming");
        rc = rc ? rc : h->set_int(call, "lag_seconds", strtoll(io, NULL, 10) < 0 ? 0 : strtoll(io, NULL, 10));
    } else {
        rd_info_find(info, "connected_slaves", v, sizeof(v));
        long replicas = strtol(v, NULL, 10);
        rc = h->set_str(call, "role", replicas > 0 ? "primary" : "standalone");
        rc = rc ? rc : h->set_int(call, "replicas", replicas);
        rc = rc ? rc : h->set_int(call, "lag_seconds", 0);
    }
    rc = rc ? rc : h->set_str(call, "position", pos);
out:
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

/* ------------------------------------------------ read-only primaries */

/* Put the operator's min-replicas-to-write back, if a read-only state holds it. */
static int lift_primary_read_only(struct rd_conn *conn, const char *path)
{
    char *saved = tps_file_read(path, 32, NULL);
    int rc = TROVE_OK;
    if (saved) {
        saved[strcspn(saved, "\n")] = '\0';
        rc = rd_conn_cmd_ok(conn, "CONFIG", "SET", "min-replicas-to-write", saved, NULL);
        if (rc == TROVE_OK)
            unlink(path);
    }
    free(saved);
    return rc;
}

static int primary_read_only(struct rd_conn *conn, const char *path)
{
    struct rd_ctx *ctx = conn->ctx;
    char cur[32];
    if (access(path, F_OK) == 0)
        return TROVE_OK;   /* already read-only */
    int rc = rd_config_get(conn, "min-replicas-to-write", cur, sizeof(cur));
    int e = 0;
    if (rc == TROVE_OK && (strcat(cur, "\n"), e = tps_file_write_atomic(path, cur, strlen(cur), 0600)) != 0)
        rc = RD_FAIL(ctx, conn->call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    if (rc == TROVE_OK && (rc = rd_conn_cmd_ok(conn, "CONFIG", "SET", "min-replicas-to-write", UNREACHABLE_REPLICAS,
                                               NULL)) != TROVE_OK)
        unlink(path);
    return rc;
}

/* The operator's value waits in "<state_dir>/readonly"; a lock keeps two
 * agent processes from saving the plugin's own value as the operator's. */
int rd_repl_primary_read_only(struct rd_conn *conn, bool read_only)
{
    char path[RD_PATH_MAX], lock_path[RD_PATH_MAX];
    rd_state_path(conn->ctx, "readonly", path, sizeof(path));
    int lock = tps_file_lock(rd_state_path(conn->ctx, "replication.lock", lock_path, sizeof(lock_path)), true);
    if (lock < 0)
        return RD_FAIL(conn->ctx, conn->call, TROVE_EINTERNAL, "cannot lock %s: %s", lock_path, strerror(-lock));
    int rc = read_only ? primary_read_only(conn, path) : lift_primary_read_only(conn, path);
    tps_file_unlock(lock);
    return rc;
}

int rd_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    char role[32];
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_info_get(&conn, "replication", "role", role, sizeof(role));
    if (rc == TROVE_OK && strcmp(role, "slave") == 0)
        rc = rd_conn_cmd_ok(&conn, "CONFIG", "SET", "replica-read-only", read_only ? "yes" : "no", NULL);
    else if (rc == TROVE_OK)
        rc = rd_repl_primary_read_only(&conn, read_only);
    if (rc == TROVE_OK)
        rc = rd_config_rewrite(&conn);
    rd_conn_close(&conn);
    return rc;
}

/* ------------------------------------------------ attach, detach, ... */

static int check_source(struct rd_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    if (!rd_host_ok(src->host))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "the source needs a valid host name or address");
    if (src->port < 1 || src->port > 65535)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "the source port must be in 1-65535");
    if (src->user && *src->user && !rd_user_name_ok(src->user) && strcmp(src->user, "default") != 0)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "invalid replication user name");
    if (src->password && *src->password && !rd_password_ok(src->password))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "invalid replication password");
    return TROVE_OK;
}

static int wait_link_up(struct rd_conn *conn)
{
    struct rd_ctx *ctx = conn->ctx;
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.sync_timeout * 1000;
    char link[32] = "";
    int rc;
    while ((rc = rd_info_get(conn, "replication", "master_link_status", link, sizeof(link))) == TROVE_OK &&
           strcmp(link, "up") != 0) {
        if (ctx->host->cancelled(conn->call))
            return RD_FAIL(ctx, conn->call, TROVE_ECANCELLED, "cancelled while waiting for the first sync");
        if (tps_now_ms() > deadline)
            return RD_FAIL(ctx, conn->call, TROVE_ETIMEOUT, "the replica did not complete its sync with the source "
                           "within %lld s (check the source address and the replication credentials; the server log "
                           "says more)", (long long)ctx->s.sync_timeout);
        ctx->host->progress(conn->call, -1, "waiting for the sync with the source");
        tps_sleep_ms(100);
    }
    return rc;
}

/* Follow src: credentials, REPLICAOF, read-only, persisted, synced. */
static int follow(struct rd_ctx *ctx, struct trove_call *call, const struct trove_replication_source *in)
{
    struct rd_conn conn = {0};
    struct trove_replication_source source = rd_source_in(in);
    const struct trove_replication_source *src = &source;
    char port[16];
    int rc = check_source(ctx, call, src);
    if (rc != TROVE_OK || (rc = rd_conn_open(ctx, call, &conn)) != TROVE_OK)
        return rc;
    snprintf(port, sizeof(port), "%d", (int)src->port);
    rc = rd_conn_cmd_ok(&conn, "CONFIG", "SET", "masteruser", src->user ? src->user : "", "masterauth",
                   src->password ? src->password : "", "replica-read-only", "yes", NULL);
    if (rc == TROVE_OK)
        rc = rd_repl_primary_read_only(&conn, false);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd_ok(&conn, "REPLICAOF", src->host, port, NULL);
    if (rc == TROVE_OK)
        rc = rd_config_rewrite(&conn);
    if (rc == TROVE_OK)
        rc = wait_link_up(&conn);
    rd_conn_close(&conn);
    return rc;
}

int rd_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    return follow(self, call, src);
}

int rd_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    return follow(self, call, src);
}

/* REPLICAOF NO ONE keeps every write the replica has and makes it writable. */
static int stand_alone(struct rd_ctx *ctx, struct trove_call *call)
{
    struct rd_conn conn = {0};
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd_ok(&conn, "REPLICAOF", "NO", "ONE", NULL);
    if (rc == TROVE_OK)
        rc = rd_repl_primary_read_only(&conn, false);
    if (rc == TROVE_OK)
        rc = rd_config_rewrite(&conn);
    rd_conn_close(&conn);
    return rc;
}

int rd_repl_detach(void *self, struct trove_call *call)
{
    return stand_alone(self, call);
}

int rd_repl_promote(void *self, struct trove_call *call)
{
    return stand_alone(self, call);
}

/* The replication account replicas use: an ACL user allowed only PSYNC,
 * SYNC, REPLCONF and PING, given one more fresh password (sent as its
 * hash), so replicas given an earlier one keep theirs. */
static int replication_account(struct rd_ctx *ctx, struct trove_call *call, char password[33])
{
    struct rd_conn conn = {0};
    char rule[RD_PASSWORD_RULE_SIZE];
    if (ctx->host->random_password(password, 33) != TROVE_OK)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot generate a password");
    rd_password_rule(password, rule);
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd_ok(&conn, "ACL", "SETUSER", ctx->s.replication_user, "on", rule, "resetkeys", "resetchannels",
                            "-@all", "+psync", "+sync", "+replconf", "+ping", NULL);
    if (rc == TROVE_OK)
        rc = rd_acl_save(&conn);
    rd_conn_close(&conn);
    explicit_bzero(rule, sizeof(rule));
    return rc;
}

static int report_account(struct rd_ctx *ctx, struct trove_call *call, const char *password)
{
    if (ctx->host->set_str(call, "user", ctx->s.replication_user) != TROVE_OK ||
        ctx->host->set_str(call, "password", password) != TROVE_OK)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    return TROVE_OK;
}

/* A snapshot is an RDB backup plus the replication account. */
int rd_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct rd_ctx *ctx = self;
    char password[33];
    int rc = replication_account(ctx, call, password);
    if (rc == TROVE_OK)
        rc = rd_rdb_fetch(ctx, call, RD_FIELD(req, struct trove_backup_request, sink, NULL));
    if (rc == TROVE_OK)
        rc = report_account(ctx, call, password);
    explicit_bzero(password, sizeof(password));
    return rc;
}

/* The account without the data: a server told to follow this one (demote)
 * syncs itself, so no snapshot is needed. */
int rd_repl_credentials(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    char password[33];
    int rc = replication_account(ctx, call, password);
    if (rc == TROVE_OK)
        rc = report_account(ctx, call, password);
    explicit_bzero(password, sizeof(password));
    return rc;
}
