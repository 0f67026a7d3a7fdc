/*
 * backup.c - full backups as RDB snapshots taken over the replication
 * protocol (PSYNC ? -1 as a replica would, with REPLCONF rdb-only): no file
 * on the server's disk when diskless sync is on, and the snapshot's exact
 * replication id and offset come with it. The bytes go unchanged to the
 * host's sink; their RDB CRC-64 is checked on the way. Restore checks the
 * same CRC into a temp file, stops the server, installs the file as
 * dbfilename, and starts it (AOF off during the load, rebuilt after).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "redis_plugin.h"

#define CHUNK (256 * 1024)
#define EOF_MARK_LEN 40
#define CRC_LEN 8

/* Redis's CRC-64 (Jones: reflected, init 0, no final xor), the RDB
 * trailer, computed slice-by-8. */
struct rd_crc64 {
    uint64_t t[8][256];
};

static void crc64_init(struct rd_crc64 *crc)
{
    const uint64_t poly = UINT64_C(0x95ac9329ac4bc9b5);
    for (int n = 0; n < 256; n++) {
        uint64_t c = (uint64_t)n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? poly ^ (c >> 1) : c >> 1;
        crc->t[0][n] = c;
    }
    for (int n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc->t[k][n] = (crc->t[k - 1][n] >> 8) ^ crc->t[0][crc->t[k - 1][n] & 0xff];
}

static uint64_t crc64_update(const struct rd_crc64 *crc, uint64_t v, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint64_t w = 0;
        for (int i = 7; i >= 0; i--)
            w = (w << 8) | p[i];
        v ^= w;
        v = crc->t[7][v & 0xff] ^ crc->t[6][(v >> 8) & 0xff] ^ crc->t[5][(v >> 16) & 0xff] ^
            crc->t[4][(v >> 24) & 0xff] ^ crc->t[3][(v >> 32) & 0xff] ^ crc->t[2][(v >> 40) & 0xff] ^
            crc->t[1][(v >> 48) & 0xff] ^ crc->t[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        v = crc->t[0][(v ^ *p++) & 0xff] ^ (v >> 8);
    return v;
}

/* An RDB stream being checked: header, CRC-64, trailer held back. */
struct rdb_check {
    struct rd_crc64 *crc;
    uint64_t v;
    uint64_t size;
    unsigned char header[9];
    size_t header_len;
};

static void check_bytes(struct rdb_check *k, const unsigned char *p, size_t n)
{
    while (k->header_len < sizeof(k->header) && n > 0 && k->size == k->header_len) {
        k->header[k->header_len++] = *p;
        k->v = crc64_update(k->crc, k->v, p, 1);
        p++, n--, k->size++;
    }
    k->v = crc64_update(k->crc, k->v, p, n);
    k->size += n;
}

/* Final verdict given the 8 trailer bytes. 0 trailer = rdbchecksum off. */
static const char *check_end(const struct rdb_check *k, const unsigned char trailer[CRC_LEN], char *crc_hex)
{
    uint64_t t = 0;
    for (int i = CRC_LEN - 1; i >= 0; i--)
        t = (t << 8) | trailer[i];
    if (k->header_len < 9 || memcmp(k->header, "REDIS", 5) != 0)
        return "not an RDB file (no REDIS header)";
    if (t != 0 && t != k->v)
        return "RDB checksum mismatch";
    snprintf(crc_hex, 17, "%016" PRIx64, t);
    return NULL;
}

/* ------------------------------------------------------------ backup */

struct fetch {
    struct rd_conn conn;
    struct trove_sink *sink;
    struct rdb_check check;
    uint64_t last_data_ms;
    uint64_t last_report;
};

/* Wait until the socket is readable: 1 ready, or a status. */
static int wait_readable(struct fetch *f)
{
    struct rd_ctx *ctx = f->conn.ctx;
    for (;;) {
        struct pollfd pfd = {.fd = f->conn.c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, 1000);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return RD_FAIL(ctx, f->conn.call, TROVE_EINTERNAL, "poll: %s", strerror(errno));
        if (ctx->host->cancelled(f->conn.call))
            return RD_FAIL(ctx, f->conn.call, TROVE_ECANCELLED, "backup cancelled");
        if (tps_now_ms() - f->last_data_ms > (uint64_t)ctx->s.sync_timeout * 1000)
            return RD_FAIL(ctx, f->conn.call, TROVE_ETIMEOUT, "redis sent nothing for %lld s during the snapshot",
                           (long long)ctx->s.sync_timeout);
    }
}

static int read_some(struct fetch *f, void *buf, size_t cap, size_t *got)
{
    int rc = wait_readable(f);
    if (rc != 1)
        return rc;
    ssize_t n = read(f->conn.c->fd, buf, cap);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return *got = 0, TROVE_OK;
    if (n <= 0)
        return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "redis closed the connection during the "
                       "snapshot%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
    f->last_data_ms = tps_now_ms();
    *got = (size_t)n;
    return TROVE_OK;
}

/* One protocol line without \r\n; empty keepalive lines are skipped. */
static int read_line(struct fetch *f, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char ch;
        size_t got = 0;
        int rc = read_some(f, &ch, 1, &got);
        if (rc != TROVE_OK)
            return rc;
        if (!got)
            continue;
        if (ch == '\n') {
            if (n && line[n - 1] == '\r')
                n--;
            if (n == 0)
                continue;   /* keepalive while the server prepares the RDB */
            line[n] = '\0';
            return TROVE_OK;
        }
        if (n + 1 >= cap)
            return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "unexpected reply from redis during sync");
        line[n++] = ch;
    }
}

/* Pass n bytes on (checked, to the sink). */
static int emit(struct fetch *f, const unsigned char *p, size_t n, bool check)
{
    if (!n)
        return TROVE_OK;
    if (check)
        check_bytes(&f->check, p, n);
    int rc = f->conn.ctx->host->sink_write(f->sink, p, n);
    if (rc != TROVE_OK)
        return RD_FAIL(f->conn.ctx, f->conn.call, rc, "writing the backup failed");
    if (f->check.size - f->last_report >= 64u << 20) {
        f->last_report = f->check.size;
        f->conn.ctx->host->progress(f->conn.call, -1, "%" PRIu64 " MB received", f->check.size >> 20);
    }
    return TROVE_OK;
}

/* Stream the payload, holding back `keep` bytes (trailer, and EOF mark).
 * len >= 0: exactly len bytes. len < 0: until the 40-byte `mark`. */
static int stream_payload(struct fetch *f, long long len, const char *mark, unsigned char *tail)
{
    const size_t keep = CRC_LEN + (len < 0 ? EOF_MARK_LEN : 0);
    unsigned char *buf = malloc(CHUNK + keep);
    size_t held = 0;
    unsigned long long left = len < 0 ? 0 : (unsigned long long)len;
    int rc = buf ? TROVE_OK : RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EINTERNAL, "out of memory");
    while (rc == TROVE_OK) {
        if (len >= 0 && left == 0)
            break;
        if (len < 0 && held >= keep && memcmp(buf + held - EOF_MARK_LEN, mark, EOF_MARK_LEN) == 0)
            break;
        size_t cap = CHUNK, got = 0;
        if (len >= 0 && left < cap)
            cap = (size_t)left;
        if ((rc = read_some(f, buf + held, cap, &got)) != TROVE_OK)
            break;
        left -= got;
        held += got;
        if (held > keep) {
            rc = emit(f, buf, held - keep, true);
            memmove(buf, buf + held - keep, keep);
            held = keep;
        }
    }
    if (rc == TROVE_OK && held < keep)
        rc = RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "RDB payload from redis too short");
    if (rc == TROVE_OK)
        memcpy(tail, buf, CRC_LEN);
    free(buf);
    return rc;
}

static int send_psync(struct fetch *f)
{
    const char *argv[] = {"PSYNC", "?", "-1"};
    size_t lens[] = {5, 1, 2};
    int done = 0;
    if (redisAppendCommandArgv(f->conn.c, 3, argv, lens) != REDIS_OK)
        return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EINTERNAL, "out of memory");
    while (!done)
        if (redisBufferWrite(f->conn.c, &done) != REDIS_OK)
            return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EUNAVAIL, "sending PSYNC: %s", f->conn.c->errstr);
    return TROVE_OK;
}

/* "+FULLRESYNC <replid> <offset>" then "$<len>" or "$EOF:<mark>". */
static int handshake(struct fetch *f, char *replid, size_t idlen, char *offset, size_t offlen, long long *len,
                     char *mark)
{
    char line[256];
    int rc = send_psync(f);
    if (rc == TROVE_OK)
        rc = read_line(f, line, sizeof(line));
    if (rc != TROVE_OK)
        return rc;
    if (line[0] == '-')
        return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "redis refused PSYNC: %s", line + 1);
    if (sscanf(line, "+FULLRESYNC %40s %20s", replid, offset) != 2 || strlen(replid) + 1 > idlen ||
        strlen(offset) + 1 > offlen)
        return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "unexpected PSYNC reply from redis");
    if ((rc = read_line(f, line, sizeof(line))) != TROVE_OK)
        return rc;
    if (strncmp(line, "$EOF:", 5) == 0 && strlen(line) == 5 + EOF_MARK_LEN) {
        memcpy(mark, line + 5, EOF_MARK_LEN);
        *len = -1;
        return TROVE_OK;
    }
    char *end;
    *len = line[0] == '$' ? strtoll(line + 1, &end, 10) : -1;
    if (line[0] != '$' || *end || *len < 9 + CRC_LEN)
        return RD_FAIL(f->conn.ctx, f->conn.call, TROVE_EDATASTORE, "unexpected RDB header from redis");
    return TROVE_OK;
}

static int put_meta(struct rd_ctx *ctx, struct trove_call *call, const char *key, const char *value)
{
    return ctx->host->put(call, "meta", key, value);
}

static int record(struct fetch *f, const char *replid, const char *offset, const char *crc_hex)
{
    struct rd_ctx *ctx = f->conn.ctx;
    struct trove_call *call = f->conn.call;
    char version[64] = "", size[32], pos[128], rdbv[8];
    snprintf(size, sizeof(size), "%" PRIu64, f->check.size + CRC_LEN);
    snprintf(pos, sizeof(pos), "%s:%s", replid, offset);
    snprintf(rdbv, sizeof(rdbv), "%.4s", (const char *)f->check.header + 5);
    rd_info_get(&f->conn, "server", "redis_version", version, sizeof(version));
    int rc = put_meta(ctx, call, "format", "rdb");
    rc = rc ? rc : put_meta(ctx, call, "rdb_version", rdbv);
    rc = rc ? rc : put_meta(ctx, call, "redis_version", version);
    rc = rc ? rc : put_meta(ctx, call, "repl_id", replid);
    rc = rc ? rc : put_meta(ctx, call, "repl_offset", offset);
    rc = rc ? rc : put_meta(ctx, call, "position", pos);
    rc = rc ? rc : put_meta(ctx, call, "rdb_size", size);
    rc = rc ? rc : put_meta(ctx, call, "rdb_crc64", crc_hex);
    return rc;
}

int rd_rdb_fetch(struct rd_ctx *ctx, struct trove_call *call, struct trove_sink *sink)
{
    struct fetch f = {.sink = sink, .last_data_ms = tps_now_ms()};
    struct rd_crc64 *crc = malloc(sizeof(*crc));
    char replid[64], offset[32], mark[EOF_MARK_LEN], crc_hex[17];
    unsigned char tail[CRC_LEN];
    long long len = 0;
    int rc = crc ? rd_conn_open(ctx, call, &f.conn) : RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    if (rc != TROVE_OK)
        goto out;
    crc64_init(crc);
    f.check.crc = crc;
    /* rdb-only (Redis 7): the server ends the connection after the RDB. */
    if ((rc = rd_conn_cmd_ok(&f.conn, "REPLCONF", "capa", "eof", "capa", "psync2", NULL)) != TROVE_OK)
        goto out;
    if (rd_conn_cmd_ok(&f.conn, "REPLCONF", "rdb-only", "1", NULL) != TROVE_OK)
        ctx->host->log(TROVE_LOG_INFO, "redis: REPLCONF rdb-only not supported; reading the RDB only");
    ctx->host->progress(call, -1, "waiting for redis to produce the RDB");
    if ((rc = handshake(&f, replid, sizeof(replid), offset, sizeof(offset), &len, mark)) != TROVE_OK ||
        (rc = stream_payload(&f, len, mark, tail)) != TROVE_OK)
        goto out;
    const char *bad = check_end(&f.check, tail, crc_hex);
    if (bad) {
        rc = RD_FAIL(ctx, call, TROVE_EDATASTORE, "the snapshot from redis is damaged: %s", bad);
        goto out;
    }
    if ((rc = emit(&f, tail, CRC_LEN, false)) == TROVE_OK)
        rc = record(&f, replid, offset, crc_hex);
out:
    rd_conn_close(&f.conn);
    free(crc);
    return rc;
}

int rd_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct rd_ctx *ctx = self;
    if (RD_FIELD(req, struct trove_backup_request, kind, -1) != TROVE_BACKUP_FULL)
        return RD_FAIL(ctx, call, TROVE_ENOTSUP, "Redis backups are full RDB snapshots only (no incremental or "
                       "logical backups)");
    return rd_rdb_fetch(ctx, call, RD_FIELD(req, struct trove_backup_request, sink, NULL));
}

/* ------------------------------------------------------------ restore */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Copy the backup into `path`, checking the RDB header and CRC-64. */
static int receive(struct rd_ctx *ctx, struct trove_call *call, struct trove_source *src, const char *path)
{
    struct rdb_check k = {.crc = malloc(sizeof(struct rd_crc64))};
    unsigned char *buf = malloc(CHUNK + CRC_LEN);
    size_t held = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = k.crc && buf ? TROVE_OK : RD_FAIL(ctx, call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK && fd < 0)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot create %s: %s", path, strerror(errno));
    if (rc == TROVE_OK)
        crc64_init(k.crc);
    for (size_t got = 1; rc == TROVE_OK && got > 0;) {
        if ((rc = ctx->host->source_read(src, buf + held, CHUNK, &got)) != TROVE_OK) {
            rc = RD_FAIL(ctx, call, rc, "reading the backup failed");
            break;
        }
        held += got;
        if (held > CRC_LEN) {
            check_bytes(&k, buf, held - CRC_LEN);
            if (write_all(fd, buf, held - CRC_LEN) != 0)
                rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "writing %s: %s", path, strerror(errno));
            memmove(buf, buf + held - CRC_LEN, CRC_LEN);
            held = CRC_LEN;
        }
    }
    char crc_hex[17];
    const char *bad = rc == TROVE_OK ? (held < CRC_LEN ? "the backup is empty" : check_end(&k, buf, crc_hex)) : NULL;
    if (bad)
        rc = RD_FAIL(ctx, call, TROVE_ECHECKSUM, "refusing to restore: %s", bad);
    if (rc == TROVE_OK && (write_all(fd, buf, CRC_LEN) != 0 || fsync(fd) != 0))
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "writing %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc != TROVE_OK)
        unlink(path);
    free(buf);
    free(k.crc);
    return rc;
}

/* The one piece of a restore: a full RDB backup, or NULL after fail(). */
static const struct trove_restore_piece *check_request(struct rd_ctx *ctx, struct trove_call *call,
                                                       const struct trove_restore_request *req)
{
    if (rd_require_managed(ctx, call, "restore") != TROVE_OK)
        return NULL;
    if (strlen(ctx->s.dir) + strlen(ctx->s.dbfilename) > 3800)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "dir and dbfilename are too long"), NULL;
    const struct trove_restore_piece *pieces = RD_FIELD(req, struct trove_restore_request, pieces, NULL);
    size_t n = pieces ? RD_FIELD(req, struct trove_restore_request, n_pieces, 0) : 0;
    const struct trove_restore_piece *pc =
        n ? TROVE_AT(struct trove_restore_piece, pieces, RD_FIELD(req, struct trove_restore_request, piece_size, 0), 0)
          : NULL;
    if (n != 1 || RD_FIELD(pc, struct trove_restore_piece, kind, -1) != TROVE_BACKUP_FULL ||
        !RD_FIELD(pc, struct trove_restore_piece, source, NULL))
        return RD_FAIL(ctx, call, TROVE_EINVAL, "a Redis restore takes exactly one full RDB backup"), NULL;
    const struct trove_kv *meta = RD_FIELD(pc, struct trove_restore_piece, meta, NULL);
    size_t n_meta = meta ? RD_FIELD(pc, struct trove_restore_piece, n_meta, 0) : 0;
    const char *format = tps_kv_get(meta, n_meta, "format");
    if (format && strcmp(format, "rdb") != 0)
        return RD_FAIL(ctx, call, TROVE_EINVAL, "backup %s is not an RDB snapshot",
                       RD_FIELD(pc, struct trove_restore_piece, id, "(unnamed)")), NULL;
    return pc;
}

/* Whether AOF is on, and its directory, from the server or the config file. */
static void aof_settings(struct rd_ctx *ctx, struct trove_call *call, bool *aof, char *dirname, size_t len)
{
    struct rd_conn conn = {0};
    char v[16] = "no";
    snprintf(dirname, len, "appendonlydir");
    if (rd_conn_open_timeout(ctx, call, &conn, (int)ctx->s.connect_timeout_ms, false) == TROVE_OK) {
        rd_config_get(&conn, "appendonly", v, sizeof(v));
        rd_config_get(&conn, "appenddirname", dirname, len);
        rd_conn_close(&conn);
    } else {
        rd_config_file_get(ctx->s.config_file, "appendonly", v, sizeof(v));
        rd_config_file_get(ctx->s.config_file, "appenddirname", dirname, len);
    }
    *aof = strcmp(v, "yes") == 0;
}

/* The old AOF would be loaded instead of the RDB: move it aside first. */
static int move_aof_aside(struct rd_ctx *ctx, struct trove_call *call, const char *dirname, char *aside, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", ctx->s.dir, dirname);
    snprintf(aside, len, "%s/%s.before-restore-%ld", ctx->s.dir, dirname, (long)time(NULL));
    if (rename(path, aside) != 0 && errno != ENOENT)
        return RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot move %s aside: %s", path, strerror(errno));
    return TROVE_OK;
}

/* After a load with AOF off: turn it on (a rewrite from the data) and wait. */
static int rebuild_aof(struct rd_ctx *ctx, struct trove_call *call)
{
    struct rd_conn conn = {0};
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd_ok(&conn, "CONFIG", "SET", "appendonly", "yes", NULL);
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.start_timeout * 1000;
    for (char a[16] = "1", b[16] = "1"; rc == TROVE_OK && (strcmp(a, "0") || strcmp(b, "0"));) {
        if (tps_now_ms() > deadline)
            rc = RD_FAIL(ctx, call, TROVE_ETIMEOUT, "AOF rewrite after restore did not finish");
        else if ((rc = rd_info_get(&conn, "persistence", "aof_rewrite_in_progress", a, sizeof(a))) == TROVE_OK &&
                 (rc = rd_info_get(&conn, "persistence", "aof_rewrite_scheduled", b, sizeof(b))) == TROVE_OK)
            tps_sleep_ms(50);
    }
    rd_conn_close(&conn);
    return rc;
}

static void remove_tree(struct rd_ctx *ctx, const char *path)
{
    int e = tps_remove_tree(path);
    if (e != 0)
        ctx->host->log(TROVE_LOG_WARN, "redis: could not remove %s after the restore: %s", path, strerror(-e));
}

static int report_keys(struct rd_ctx *ctx, struct trove_call *call)
{
    struct rd_conn conn = {0};
    redisReply *r = NULL;
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_conn_cmd(&conn, &r, "INFO", "keyspace", NULL);
    long long keys = 0;
    for (const char *p = r && r->str ? strstr(r->str, "keys=") : NULL; p; p = strstr(p + 5, "keys="))
        keys += strtoll(p + 5, NULL, 10);
    if (rc == TROVE_OK)
        rc = ctx->host->set_int(call, "keys", keys);
    freeReplyObject(r);
    rd_conn_close(&conn);
    return rc;
}

/* A restore for a replica: repl_attach comes next, and writes before it
 * would be lost to the full sync, so the server refuses them until then. */
static int hold_for_replica(struct rd_ctx *ctx, struct trove_call *call)
{
    struct rd_conn conn = {0};
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc == TROVE_OK)
        rc = rd_repl_primary_read_only(&conn, true);
    if (rc == TROVE_OK)
        rc = rd_config_rewrite(&conn);
    rd_conn_close(&conn);
    return rc;
}

int rd_restore_install(struct rd_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    char tmp[4200], target[4096], aofdir[256], aside[4096] = "";
    bool aof = false;
    const struct trove_restore_piece *piece = check_request(ctx, call, req);
    if (!piece)
        return TROVE_EINVAL;
    snprintf(target, sizeof(target), "%s/%s", ctx->s.dir, ctx->s.dbfilename);
    snprintf(tmp, sizeof(tmp), "%s.restore", target);
    ctx->host->progress(call, 5, "receiving the RDB");
    int rc = receive(ctx, call, piece->source, tmp);
    if (rc != TROVE_OK)
        return rc;
    aof_settings(ctx, call, &aof, aofdir, sizeof(aofdir));
    ctx->host->progress(call, 50, "stopping redis-server");
    if ((rc = rd_server_stop(ctx, call, RD_SHUTDOWN_NOSAVE)) == TROVE_OK && aof)
        rc = move_aof_aside(ctx, call, aofdir, aside, sizeof(aside));
    if (rc == TROVE_OK && rename(tmp, target) != 0)
        rc = RD_FAIL(ctx, call, TROVE_EINTERNAL, "cannot install %s: %s", target, strerror(errno));
    static const char *const aof_off[] = {"--appendonly", "no", NULL};
    ctx->host->progress(call, 60, "starting redis-server on the restored data");
    if (rc == TROVE_OK)
        rc = rd_server_start(ctx, call, aof ? aof_off : NULL);
    if (rc == TROVE_OK && aof && (rc = rebuild_aof(ctx, call)) == TROVE_OK && aside[0])
        remove_tree(ctx, aside);
    unlink(tmp);
    if (rc == TROVE_OK && RD_FIELD(req, struct trove_restore_request, for_replica, false))
        rc = hold_for_replica(ctx, call);
    return rc == TROVE_OK ? report_keys(ctx, call) : rc;
}

int rd_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct rd_ctx *ctx = self;
    int lock = rd_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = rd_restore_install(ctx, call, req);
    tps_file_unlock(lock);
    return rc;
}
