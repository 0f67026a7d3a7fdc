/*
 * restore.c - replaces the server's data with a backup chain. Physical: the
 * base tar is extracted beside the data directory and swapped in, the
 * chain's WAL goes to a restore directory read by restore_command, and
 * archive recovery runs on a private socket until it reaches the end of the
 * WAL and promotes. A restore for a replica instead starts as a standby.
 * Logical: pg_dumpall's SQL is replayed with psql. The server lock is held
 * throughout.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

#define DUMP_LINE_MAX (64u << 20)   /* one line of a dump (a COPY row, say) */

static const struct trove_restore_piece *piece(const struct trove_restore_request *req, size_t i)
{
    return TROVE_AT(struct trove_restore_piece, req->pieces, req->piece_size, i);
}

static const char *piece_meta(const struct trove_restore_request *req, size_t i, const char *key)
{
    return tps_kv_get(piece(req, i)->meta, piece(req, i)->n_meta, key);
}

/* req->for_replica, for a request of any size (it exists since 2.0). */
static bool for_replica(const struct trove_restore_request *req)
{
    return TROVE_FIELD_OK(req, struct trove_restore_request, for_replica) && req->for_replica;
}

static int check_chain(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    if (req->n_pieces == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "empty backup chain");
    int32_t kind = piece(req, 0)->kind;
    if (kind == TROVE_BACKUP_LOGICAL && for_replica(req))
        return ctx->host->fail(call, TROVE_ENOTSUP, "a logical backup cannot seed a replica: use a replication "
                               "snapshot");
    if (kind == TROVE_BACKUP_LOGICAL)
        return req->n_pieces == 1 ? TROVE_OK
                                  : ctx->host->fail(call, TROVE_EINVAL, "a logical backup has no increments");
    if (kind != TROVE_BACKUP_FULL)
        return ctx->host->fail(call, kind == TROVE_BACKUP_INCREMENTAL ? TROVE_EINVAL : TROVE_ENOTSUP,
                               "a chain starts with a full backup");
    if (for_replica(req) && req->n_pieces > 1)
        return ctx->host->fail(call, TROVE_ENOTSUP, "a replica is seeded from one full backup, not a chain");
    for (size_t i = 1; i < req->n_pieces; i++) {
        uint64_t prev_end, start;
        const char *a = piece_meta(req, i - 1, "system_identifier"), *b = piece_meta(req, i, "system_identifier");
        if (piece(req, i)->kind != TROVE_BACKUP_INCREMENTAL || !a || !b || strcmp(a, b) != 0 ||
            !pg_lsn_parse(piece_meta(req, i - 1, "end_lsn"), &prev_end) ||
            !pg_lsn_parse(piece_meta(req, i, "start_lsn"), &start) || start > prev_end)
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s does not continue %s", piece(req, i)->id,
                                   piece(req, i - 1)->id);
    }
    return TROVE_OK;
}

static int extract(struct pg_ctx *ctx, struct trove_call *call, struct trove_source *src, const char *dir)
{
    const char *argv[] = {"tar", "-xf", "-", "-C", dir, NULL};
    return pg_cmd_run(ctx, call, argv, NULL, src, NULL);
}

static int copy_file(struct pg_ctx *ctx, struct trove_call *call, const char *from, const char *to)
{
    char *text = pg_file_read(ctx, call, from, 1 << 16);   /* a timeline history file */
    if (!text)
        return TROVE_EINTERNAL;
    int rc = pg_file_write(ctx, call, to, text);
    free(text);
    return rc;
}

/* Timeline history files of this instance's archive, so the restored server
 * picks a timeline id no earlier history has used. */
static int copy_histories(struct pg_ctx *ctx, struct trove_call *call, const char *dest)
{
    DIR *d = opendir(ctx->s.wal_archive_dir);
    int rc = TROVE_OK;
    for (struct dirent *e; d && rc == TROVE_OK && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n != 16 || strcmp(e->d_name + 8, ".history") != 0)
            continue;
        char from[PG_PATH_MAX + 32], to[PG_PATH_MAX + 32];
        tps_path(from, sizeof(from), "%s/%s", ctx->s.wal_archive_dir, e->d_name);
        tps_path(to, sizeof(to), "%s/%s", dest, e->d_name);
        if (access(to, F_OK) != 0)
            rc = copy_file(ctx, call, from, to);
    }
    if (d)
        closedir(d);
    return rc;
}

static int remove_in(struct pg_ctx *ctx, struct trove_call *call, const char *dir, const char *name)
{
    char path[PG_PATH_MAX + 64];
    tps_path(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        return ctx->host->fail(call, TROVE_EINTERNAL, "unlink %s: %s", path, strerror(errno));
    return TROVE_OK;
}

/* Unpack the base backup (and the chain's WAL) next to the data directory. */
static int unpack(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req,
                  const char *staging, const char *waldir)
{
    int rc = pg_tree_remove(ctx, call, staging);
    if (rc == TROVE_OK)
        rc = pg_tree_remove(ctx, call, waldir);
    if (rc == TROVE_OK)
        rc = pg_dir_make(ctx, call, staging, 0700);
    if (rc == TROVE_OK)
        rc = pg_dir_make(ctx, call, waldir, 0700);
    ctx->host->progress(call, 10, "extracting the base backup %s", piece(req, 0)->id);
    if (rc == TROVE_OK)
        rc = extract(ctx, call, piece(req, 0)->source, staging);
    for (size_t i = 1; rc == TROVE_OK && i < req->n_pieces; i++) {
        ctx->host->progress(call, 10 + (int)(40 * i / req->n_pieces), "extracting WAL of %s", piece(req, i)->id);
        rc = extract(ctx, call, piece(req, i)->source, waldir);
    }
    if (rc == TROVE_OK)
        rc = copy_histories(ctx, call, waldir);
    const char *stale[] = {"standby.signal", "recovery.signal", "trove_replication.conf", "trove_recovery.conf",
                           "postmaster.pid", "postmaster.opts"};
    for (size_t i = 0; rc == TROVE_OK && i < sizeof(stale) / sizeof(stale[0]); i++)
        rc = remove_in(ctx, call, staging, stale[i]);
    return rc;
}

/* datadir -> old, staging -> datadir. */
static int swap_in(struct pg_ctx *ctx, struct trove_call *call, const char *staging, const char *old)
{
    int rc = pg_tree_remove(ctx, call, old);
    if (rc != TROVE_OK)
        return rc;
    if (rename(ctx->s.datadir, old) != 0 && errno != ENOENT)
        return ctx->host->fail(call, TROVE_EINTERNAL, "rename %s: %s", ctx->s.datadir, strerror(errno));
    if (rename(staging, ctx->s.datadir) != 0) {
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "rename %s: %s", staging, strerror(errno));
        rename(old, ctx->s.datadir);
    }
    return rc;
}

static int wait_recovery_done(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.start_timeout * 30000;
    for (;;) {
        bool in_recovery = true;
        int rc = pg_conn_query_bool(ctx, call, c, "SELECT pg_is_in_recovery()", 0, NULL, &in_recovery);
        if (rc != TROVE_OK || !in_recovery)
            return rc;
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled during recovery");
        if (tps_now_ms() > deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "recovery did not finish in time");
        tps_sleep_ms(100);
    }
}

/* The restored cluster keeps the source's admin password: set ours. */
static int reset_admin_password(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    if (!ctx->s.password[0])
        return TROVE_OK;
    struct tps_buf sql = {0};
    tps_buf_add(&sql, "ALTER ROLE ");
    tps_quote_ident(&sql, ctx->s.user, '"');
    tps_buf_add(&sql, " WITH ");
    int rc = pg_password_append(ctx, call, c, &sql, ctx->s.user, ctx->s.password);
    if (rc == TROVE_OK)
        rc = pg_conn_run_buf(ctx, call, c, &sql);
    tps_buf_wipe(&sql);
    return rc;
}

/* Archive recovery with no client but us: no TCP, a private socket and a
 * private hba file that trusts local connections. */
static int recover(struct pg_ctx *ctx, struct trove_call *call, const char *waldir)
{
    char priv[PG_PATH_MAX], hba[PG_PATH_MAX + 16], hba_opt[PG_PATH_MAX + 32], signal[PG_PATH_MAX];
    int rc = pg_work_dir(ctx, call, "restore", priv, sizeof(priv));
    if (rc != TROVE_OK)
        return rc;
    tps_path(hba, sizeof(hba), "%s/hba.conf", priv);
    tps_path(hba_opt, sizeof(hba_opt), "hba_file=%s", hba);
    const char *opts[] = {"-c", "listen_addresses=", "-k", priv, "-c", hba_opt, NULL};
    PGconn *c = NULL;
    rc = pg_file_write(ctx, call, hba, "local all all trust\n");
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(ctx, call, waldir);
    if (rc == TROVE_OK)
        rc = pg_file_write(ctx, call, pg_data_path(ctx, "recovery.signal", signal, sizeof(signal)), "");
    ctx->host->progress(call, 60, "replaying WAL");
    if (rc == TROVE_OK)
        rc = pg_server_start(ctx, call, opts);
    if (rc == TROVE_OK &&
        !(c = pg_conn_open_at(ctx, call, priv, (int)ctx->s.port, ctx->s.user, NULL, ctx->s.database, 0)))
        rc = TROVE_EUNAVAIL;
    if (rc == TROVE_OK)
        rc = wait_recovery_done(ctx, call, c);
    if (rc == TROVE_OK)
        rc = reset_admin_password(ctx, call, c);
    PQfinish(c);
    int stop = pg_server_stop(ctx, call);
    if (rc == TROVE_OK)
        rc = stop;
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(ctx, call, NULL);
    tps_remove_tree(priv);
    return rc;
}

static int physical(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    char staging[PG_PATH_MAX], waldir[PG_PATH_MAX], old[PG_PATH_MAX], signal[PG_PATH_MAX];
    tps_path(staging, sizeof(staging), "%s.restoring", ctx->s.datadir);
    tps_path(waldir, sizeof(waldir), "%s.restore-wal", ctx->s.datadir);
    tps_path(old, sizeof(old), "%s.old", ctx->s.datadir);
    int rc = pg_server_stop(ctx, call);
    if (rc == TROVE_OK)
        rc = unpack(ctx, call, req, staging, waldir);
    if (rc == TROVE_OK)
        rc = swap_in(ctx, call, staging, old);
    if (rc != TROVE_OK) {
        tps_remove_tree(staging);
        tps_remove_tree(waldir);
        return rc;
    }
    rc = pg_conf_write_base(ctx, call);
    if (rc == TROVE_OK && for_replica(req))   /* a standby, waiting for repl_attach */
        rc = pg_file_write(ctx, call, pg_data_path(ctx, "standby.signal", signal, sizeof(signal)), "");
    else if (rc == TROVE_OK)
        rc = recover(ctx, call, waldir);
    ctx->host->progress(call, 90, "starting the server");
    if (rc == TROVE_OK)
        rc = pg_server_start(ctx, call, NULL);
    if (rc == TROVE_OK) {
        tps_remove_tree(waldir);
        tps_remove_tree(old);
    } else {
        ctx->host->log(TROVE_LOG_ERROR, "postgres: restore failed; the previous data directory is kept in %s", old);
    }
    return rc;
}

/* Logical: drop what the dump recreates, replay it, keep our password. */
static int pre_clean(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    PGresult *r = pg_conn_query(ctx, call, c,
        "SELECT 'DROP DATABASE ' || quote_ident(datname) || ' WITH (FORCE)' FROM pg_database "
        "WHERE NOT datistemplate AND datname <> current_database() "
        "UNION ALL SELECT format('REASSIGN OWNED BY %1$I TO CURRENT_USER; DROP OWNED BY %1$I; DROP ROLE %1$I', rolname) "
        "FROM pg_roles WHERE rolname !~ '^pg_' AND oid <> 10 AND rolname <> current_user",
        0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        PGresult *x = PQexec(c, PQgetvalue(r, i, 0));
        if (PQresultStatus(x) != PGRES_COMMAND_OK)
            rc = ctx->host->fail(call, TROVE_EDATASTORE, "PostgreSQL: %s",
                                 PQresultErrorField(x, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(x);
    }
    PQclear(r);
    return rc;
}

/* Whether a line of the dump recreates something that must stay as it is
 * here: a "CREATE ROLE x;" of a role that exists (the admin, the bootstrap
 * superuser), or the admin's own ALTER ROLE (its password would change). */
static bool kept_here(const char *line, PGresult *skip)
{
    const char *admin_alter = PQgetvalue(skip, 0, 1);
    for (int k = 0; k < PQntuples(skip); k++)
        if (strcmp(line, PQgetvalue(skip, k, 0)) == 0)
            return true;
    return strncmp(line, admin_alter, strlen(admin_alter)) == 0;
}

/* One whole line of the dump to `out`, commented out when kept_here(). */
static int spool_line(struct pg_ctx *ctx, struct trove_call *call, FILE *out, struct tps_buf *line, PGresult *skip)
{
    const char *text = tps_buf_str(line);
    if (!text || line->len > DUMP_LINE_MAX)
        return ctx->host->fail(call, TROVE_EINTERNAL, "a line of the dump is too long (or out of memory)");
    fprintf(out, "%s%s\n", kept_here(text, skip) ? "-- exists here: " : "", text);
    if (line->data) {   /* empty again, keeping the storage */
        line->len = 0;
        line->data[0] = '\0';
    }
    return TROVE_OK;
}

/* Copy the dump to `path`, the lines kept_here() names turned into
 * comments: pg_dumpall emits CREATE ROLE for every role, and those would
 * stop the replay. */
static int spool(struct pg_ctx *ctx, struct trove_call *call, struct trove_source *src, const char *path,
                 PGresult *skip)
{
    FILE *out = fopen(path, "w");
    char *buf = malloc(1 << 16);
    struct tps_buf line = {0};
    size_t got = 0;
    int rc = out && buf ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot spool the dump to %s", path);
    while (rc == TROVE_OK && (rc = ctx->host->source_read(src, buf, 1 << 16, &got)) == TROVE_OK && got > 0) {
        size_t start = 0;
        for (size_t i = 0; i < got && rc == TROVE_OK; i++) {
            if (buf[i] != '\n')
                continue;
            tps_buf_addn(&line, buf + start, i - start);
            start = i + 1;
            rc = spool_line(ctx, call, out, &line, skip);
        }
        if (rc == TROVE_OK && start < got)
            tps_buf_addn(&line, buf + start, got - start);
        if (rc == TROVE_OK && line.len > DUMP_LINE_MAX)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "a line of the dump is longer than %u bytes", DUMP_LINE_MAX);
    }
    if (rc == TROVE_OK && line.len)
        fwrite(line.data, 1, line.len, out);
    if (out && fclose(out) != 0 && rc == TROVE_OK)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "write %s failed", path);
    tps_buf_free(&line);
    free(buf);
    return rc == TROVE_OK ? pg_file_chown(ctx, call, path) : rc;
}

static int replay(struct pg_ctx *ctx, struct trove_call *call, const char *path)
{
    struct pg_tool_env env;
    struct pg_tool_args ta;
    char prog[PG_PATH_MAX + 16];
    if (!pg_tool_env_init(ctx, &env, ctx->s.password)) {
        pg_tool_env_wipe(&env);
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    }
    pg_tool_args_init(ctx, &ta);
    tps_path(prog, sizeof(prog), "%s/psql", ctx->s.bindir);
    const char *argv[] = {prog, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", ctx->s.database, "-f", path,
                          ta.argv[0], ta.argv[1], ta.argv[2], ta.argv[3], ta.argv[4], ta.argv[5], ta.argv[6], NULL};
    ctx->host->progress(call, 40, "replaying the SQL dump");
    int rc = pg_cmd_run(ctx, call, argv, env.list, NULL, NULL);
    pg_tool_env_wipe(&env);
    return rc;
}

static int logical(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    char dir[PG_PATH_MAX] = "", path[PG_PATH_MAX + 16];
    PGresult *skip = NULL;
    int rc = pre_clean(ctx, call, c);
    if (rc == TROVE_OK && !(skip = pg_conn_query(ctx, call, c,
                                                 "SELECT 'CREATE ROLE ' || quote_ident(rolname) || ';', "
                                                 "'ALTER ROLE ' || quote_ident(current_user) || ' WITH ' "
                                                 "FROM pg_roles",
                                                 0, NULL)))
        rc = TROVE_EDATASTORE;
    if (rc == TROVE_OK)
        rc = pg_work_dir(ctx, call, "dump", dir, sizeof(dir));
    tps_path(path, sizeof(path), "%s/dump.sql", dir);
    ctx->host->progress(call, 20, "receiving the SQL dump");
    if (rc == TROVE_OK)
        rc = spool(ctx, call, piece(req, 0)->source, path, skip);
    if (rc == TROVE_OK)
        rc = replay(ctx, call, path);
    /* This session stays authenticated even if the dump changed our password. */
    if (rc == TROVE_OK)
        rc = reset_admin_password(ctx, call, c);
    if (dir[0])
        tps_remove_tree(dir);
    PQclear(skip);
    PQfinish(c);
    return rc;
}

int pg_restore_run(struct pg_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    int rc = check_chain(ctx, call, req);
    if (rc != TROVE_OK)
        return rc;
    if (piece(req, 0)->kind == TROVE_BACKUP_LOGICAL)
        return logical(ctx, call, req);
    if ((rc = pg_datadir_require(ctx, call)) != TROVE_OK)
        return rc;
    return physical(ctx, call, req);
}

int pg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct pg_ctx *ctx = self;
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = pg_restore_run(ctx, call, req);
    tps_file_unlock(lock);
    return rc;
}
