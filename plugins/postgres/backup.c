/*
 * backup.c - backups. Full: pg_basebackup's single tar (-Ft -X fetch) to the
 * host's sink. Incremental: a tar of the WAL segments archived since the
 * parent's end LSN, closed by a checkpoint and pg_switch_wal(). Logical:
 * pg_dumpall's SQL. Metadata records LSNs, timeline and the server identity.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

/* What the server says about itself, for metadata and chain checks. */
struct facts {
    char version[16];
    char system_id[32];
    uint64_t seg_size;
    bool standby;
    char lsn[32];          /* current (primary) or replayed (standby) */
    uint32_t timeline;
};

static int read_facts(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct facts *f)
{
    PGresult *r = pg_conn_query(ctx, call, c,
        "SELECT current_setting('server_version_num'), (SELECT system_identifier FROM pg_control_system())::text, "
        " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), pg_is_in_recovery(), "
        " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text, "
        " CASE WHEN pg_is_in_recovery() THEN (pg_control_checkpoint()).timeline_id::bigint "
        "      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END",
        0, NULL);
    if (!r)
        return TROVE_EDATASTORE;
    snprintf(f->version, sizeof(f->version), "%s", PQgetvalue(r, 0, 0));
    snprintf(f->system_id, sizeof(f->system_id), "%s", PQgetvalue(r, 0, 1));
    uint64_t timeline = 0;
    bool ok = tps_parse_u64(PQgetvalue(r, 0, 2), &f->seg_size) && tps_parse_u64(PQgetvalue(r, 0, 5), &timeline) &&
              timeline <= UINT32_MAX;
    f->standby = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    snprintf(f->lsn, sizeof(f->lsn), "%s", PQgetvalue(r, 0, 4));
    f->timeline = (uint32_t)timeline;
    PQclear(r);
    if (!ok || !pg_wal_segment_size_valid(f->seg_size))
        return ctx->host->fail(call, TROVE_EDATASTORE, "unexpected wal_segment_size or timeline");
    return TROVE_OK;
}

static int put_meta(struct pg_ctx *ctx, struct trove_call *call, const char *key, const char *value)
{
    return ctx->host->put(call, "meta", key, value);
}

static int put_facts(struct pg_ctx *ctx, struct trove_call *call, const struct facts *f, const char *format)
{
    char seg[24], tli[16];
    snprintf(seg, sizeof(seg), "%llu", (unsigned long long)f->seg_size);
    snprintf(tli, sizeof(tli), "%u", f->timeline);
    int rc = put_meta(ctx, call, "format", format);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "server_version", f->version);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "system_identifier", f->system_id);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "wal_segment_size", seg);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "timeline", tli);
    return rc;
}

/* The value after "<key>: " in a backup history file, up to a space. */
static bool history_field(const char *text, const char *key, char *out, size_t len)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "%s: ", key);
    const char *p = strstr(text, needle);
    if (!p)
        return false;
    p += strlen(needle);
    size_t n = strcspn(p, " \n");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
    return true;
}

static bool history_matches(const char *text, const char *label)
{
    char want[160];
    snprintf(want, sizeof(want), "LABEL: %s\n", label);
    return strstr(text, want) != NULL;
}

/* The backup history file the server wrote for `label`: in pg_wal while it
 * waits to be archived, else in the WAL archive. NULL if not found. */
static char *find_history(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *label)
{
    PGresult *r = pg_conn_query(ctx, call, c,
                                "SELECT pg_read_file('pg_wal/' || name) FROM pg_ls_waldir() "
                                "WHERE name LIKE '%.backup' ORDER BY modification DESC",
                                0, NULL);
    for (int i = 0; r && i < PQntuples(r); i++)
        if (history_matches(PQgetvalue(r, i, 0), label)) {
            char *text = strdup(PQgetvalue(r, i, 0));
            PQclear(r);
            return text;
        }
    PQclear(r);
    DIR *d = ctx->s.wal_archive_dir[0] ? opendir(ctx->s.wal_archive_dir) : NULL;
    char *found = NULL;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 7, ".backup") != 0)
            continue;
        char path[PG_PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", ctx->s.wal_archive_dir, e->d_name);
        char *text = tps_file_read(path, 1 << 16, NULL);
        if (text && history_matches(text, label))
            found = text;
        else
            free(text);
    }
    if (d)
        closedir(d);
    return found;
}

/* start/end/checkpoint LSNs from the history file; without one (a backup
 * taken on a standby) the position read before the backup is a safe lower
 * bound for the end: an incremental then starts early, never late. */
static int put_positions(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *label, const char *before)
{
    char *text = find_history(ctx, call, c, label);
    char start[32] = "", stop[32] = "", checkpoint[32] = "";
    if (text) {
        history_field(text, "START WAL LOCATION", start, sizeof(start));
        history_field(text, "STOP WAL LOCATION", stop, sizeof(stop));
        history_field(text, "CHECKPOINT LOCATION", checkpoint, sizeof(checkpoint));
        free(text);
    }
    uint64_t v;
    int rc = put_meta(ctx, call, "start_lsn", pg_lsn_parse(start, &v) ? start : before);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "end_lsn", pg_lsn_parse(stop, &v) ? stop : before);
    if (rc == TROVE_OK && pg_lsn_parse(checkpoint, &v))
        rc = put_meta(ctx, call, "checkpoint_lsn", checkpoint);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "end_lsn_exact", pg_lsn_parse(stop, &v) ? "true" : "false");
    return rc;
}

int pg_basebackup_stream(struct pg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req)
{
    char label[128];
    snprintf(label, sizeof(label), "trove %.100s", req->id ? req->id : "backup");
    for (char *p = label; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(" -_.", *p)))
            *p = '_';
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct facts before;
    struct pg_tool_env env;
    struct pg_tool_args ta;
    int rc = read_facts(ctx, call, c, &before);
    if (rc != TROVE_OK)
        goto out;
    if (!pg_tool_env_init(ctx, &env, ctx->s.password)) {
        pg_tool_env_wipe(&env);
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    pg_tool_args_init(ctx, &ta);
    char prog[PG_PATH_MAX + 32];
    tps_path(prog, sizeof(prog), "%s/pg_basebackup", ctx->s.bindir);
    const char *argv[] = {prog, "-D", "-", "-Ft", "-X", "fetch", "--no-manifest", "-c", "fast", "-l", label,
                          ta.argv[0], ta.argv[1], ta.argv[2], ta.argv[3], ta.argv[4], ta.argv[5], ta.argv[6], NULL};
    ctx->host->progress(call, -1, "streaming the base backup");
    rc = pg_cmd_run(ctx, call, argv, env.list, NULL, req->sink);
    pg_tool_env_wipe(&env);
    struct facts after;
    if (rc == TROVE_OK)
        rc = read_facts(ctx, call, c, &after);
    if (rc == TROVE_OK)
        rc = put_facts(ctx, call, &after, "pg_basebackup-tar");
    if (rc == TROVE_OK)
        rc = put_positions(ctx, call, c, label, before.lsn);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "label", label);
out:
    PQfinish(c);
    return rc;
}

/* Wait until the archiver has stored `segment`; report its failures. */
static int wait_archived(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *segment)
{
    char path[PG_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", ctx->s.wal_archive_dir, segment);
    for (uint64_t deadline = tps_now_ms() + 120000; tps_now_ms() < deadline; tps_sleep_ms(50)) {
        if (access(path, F_OK) == 0)
            return TROVE_OK;
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for WAL archiving");
    }
    PGresult *r = PQexec(c, "SELECT coalesce(last_failed_wal, '-') FROM pg_stat_archiver");
    int rc = ctx->host->fail(call, TROVE_ETIMEOUT, "WAL segment %s was not archived within 120 s (last failure: %s)",
                             segment, PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
    PQclear(r);
    return rc;
}

/* Checks that this server continues the parent's history; *from = its end. */
static int check_parent(struct pg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req,
                        const struct facts *f, uint64_t *from)
{
    const struct trove_kv *m = req->parent_meta;
    size_t n = req->n_parent_meta;
    const char *sysid = tps_kv_get(m, n, "system_identifier"), *tli = tps_kv_get(m, n, "timeline");
    if (!pg_lsn_parse(tps_kv_get(m, n, "end_lsn"), from) || !sysid || !tli)
        return ctx->host->fail(call, TROVE_EINVAL,
                               "the parent backup has no end_lsn/timeline/system_identifier metadata");
    if (strcmp(sysid, f->system_id) != 0)
        return ctx->host->fail(call, TROVE_ECONFLICT, "the parent backup comes from another cluster (system id %s, "
                               "this one is %s)", sysid, f->system_id);
    uint64_t parent_tli = 0;
    if (!tps_parse_u64(tli, &parent_tli) || parent_tli != f->timeline)
        return ctx->host->fail(call, TROVE_ECONFLICT, "the timeline changed since the parent backup (%s -> %u, a "
                               "promotion or restore): take a full backup", tli, f->timeline);
    if (f->standby)
        return ctx->host->fail(call, TROVE_ECONFLICT,
                               "incremental backups are taken on the primary (WAL is archived there)");
    return TROVE_OK;
}

static int incremental(struct pg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct facts f;
    uint64_t from = 0, end = 0;
    PGresult *r = NULL;
    if ((rc = read_facts(ctx, call, c, &f)) != TROVE_OK || (rc = check_parent(ctx, call, req, &f, &from)) != TROVE_OK)
        goto out;
    if ((rc = pg_conn_run(ctx, call, c, "CHECKPOINT", 0, NULL)) != TROVE_OK)
        goto out;
    if (!(r = pg_conn_query(ctx, call, c, "SELECT pg_switch_wal()::text", 0, NULL))) {
        rc = TROVE_EDATASTORE;
        goto out;
    }
    pg_lsn_parse(PQgetvalue(r, 0, 0), &end);
    char first[32], last[32], name[32], end_text[32];
    pg_wal_segment_format(f.timeline, from / f.seg_size, f.seg_size, first, sizeof(first));
    pg_wal_segment_format(f.timeline, (end - 1) / f.seg_size, f.seg_size, last, sizeof(last));
    ctx->host->progress(call, -1, "waiting for WAL %s to be archived", last);
    if ((rc = wait_archived(ctx, call, c, last)) != TROVE_OK)
        goto out;
    for (uint64_t seg = from / f.seg_size; rc == TROVE_OK && seg <= (end - 1) / f.seg_size; seg++) {
        pg_wal_segment_format(f.timeline, seg, f.seg_size, name, sizeof(name));
        rc = pg_tar_add(ctx, call, req->sink, ctx->s.wal_archive_dir, name);
        if (rc == TROVE_ECONFLICT)
            rc = ctx->host->fail(call, TROVE_ECONFLICT, "WAL segment %s is missing from the archive: WAL archiving "
                                 "was not running since the parent backup; take a full backup", name);
    }
    snprintf(name, sizeof(name), "%08X.history", f.timeline);
    char hist[PG_PATH_MAX + 64];
    snprintf(hist, sizeof(hist), "%s/%s", ctx->s.wal_archive_dir, name);
    if (rc == TROVE_OK && f.timeline > 1 && access(hist, F_OK) == 0)
        rc = pg_tar_add(ctx, call, req->sink, ctx->s.wal_archive_dir, name);
    if (rc == TROVE_OK)
        rc = pg_tar_finish(ctx, call, req->sink);
    pg_lsn_format(end, end_text, sizeof(end_text));
    if (rc == TROVE_OK)
        rc = put_facts(ctx, call, &f, "wal-tar");
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "start_lsn", tps_kv_get(req->parent_meta, req->n_parent_meta, "end_lsn"));
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "end_lsn", end_text);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "first_segment", first);
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "last_segment", last);
out:
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int logical(struct pg_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct facts f;
    int rc = read_facts(ctx, call, c, &f);
    PQfinish(c);
    if (rc != TROVE_OK)
        return rc;
    struct pg_tool_env env;
    struct pg_tool_args ta;
    if (!pg_tool_env_init(ctx, &env, ctx->s.password)) {
        pg_tool_env_wipe(&env);
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    }
    pg_tool_args_init(ctx, &ta);
    char prog[PG_PATH_MAX + 32];
    tps_path(prog, sizeof(prog), "%s/pg_dumpall", ctx->s.bindir);
    const char *argv[] = {prog, "-l", ctx->s.database, ta.argv[0], ta.argv[1], ta.argv[2], ta.argv[3], ta.argv[4],
                          ta.argv[5], ta.argv[6], NULL};
    ctx->host->progress(call, -1, "dumping every database with pg_dumpall");
    rc = pg_cmd_run(ctx, call, argv, env.list, NULL, req->sink);
    pg_tool_env_wipe(&env);
    if (rc == TROVE_OK)
        rc = put_facts(ctx, call, &f, "pg_dumpall-sql");
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, "end_lsn", f.lsn);
    return rc;
}

/* Archiving on (it may restart the server), under the server lock. */
static int archiving_locked(struct pg_ctx *ctx, struct trove_call *call)
{
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = pg_archiving_ensure(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int pg_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct pg_ctx *ctx = self;
    int rc;
    switch (req->kind) {
    case TROVE_BACKUP_FULL:
        /* Archiving must run from now on, or no incremental can follow. */
        rc = archiving_locked(ctx, call);
        return rc == TROVE_OK ? pg_basebackup_stream(ctx, call, req) : rc;
    case TROVE_BACKUP_INCREMENTAL:
        return incremental(ctx, call, req);
    case TROVE_BACKUP_LOGICAL:
        return logical(ctx, call, req);
    }
    return ctx->host->fail(call, TROVE_ENOTSUP, "backup kind %d is not supported", (int)req->kind);
}
