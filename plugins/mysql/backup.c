/*
 * backup.c - backups and restores. Physical: mariadb-backup --stream=xbstream
 * (full, or incremental from the parent's to_lsn); logical: mariadb-dump.
 * Bytes go straight to the host's sink; credentials reach the tools in a
 * 0600 option file, never argv. Restore extracts and prepares the chain
 * before it touches the data directory, and keeps the old one until the
 * restored server runs.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mysql_plugin.h"

#define PATH_LEN (MY_PATH_MAX + 64)

/* Piece i of a restore chain, indexed by the element size the agent gives. */
static const struct trove_restore_piece *piece(const struct trove_restore_request *req, size_t i)
{
    return TROVE_AT(struct trove_restore_piece, req->pieces, req->piece_size, i);
}

/* binlog_pos = filename 'f', position 'p', GTID of the last change 'g' */
static int binlog_fields(struct my_ctx *ctx, struct trove_call *call, const char *binlog_pos)
{
    static const char *const keys[][2] = {
        {"filename", "binlog_file"}, {"position", "binlog_position"}, {"GTID of the last change", "gtid_position"}};
    for (size_t i = 0; i < 3; i++) {
        char v[TROVE_POSITION_MAX];
        int found = my_backup_binlog_field(binlog_pos, keys[i][0], v, sizeof(v));
        if (found < 0)
            return ctx->host->fail(call, TROVE_EDATASTORE, "mariadb-backup's %s is longer than %zu bytes", keys[i][1],
                                 sizeof(v) - 1);
        if (found > 0)
            ctx->host->put(call, "meta", keys[i][1], v);
    }
    return TROVE_OK;
}

static int record_physical_meta(struct my_ctx *ctx, struct trove_call *call, const char *lsndir, bool incremental)
{
    char path[PATH_LEN], v[TROVE_POSITION_MAX];
    tps_path(path, sizeof(path), "%s/xtrabackup_checkpoints", lsndir);
    char *cp = tps_file_read(path, 65536, NULL);
    tps_path(path, sizeof(path), "%s/xtrabackup_info", lsndir);
    char *info = tps_file_read(path, 65536, NULL);
    int rc = TROVE_OK;
    if (!cp || my_backup_info_value(cp, "to_lsn", v, sizeof(v)) <= 0) {
        rc = ctx->host->fail(call, TROVE_EDATASTORE, "mariadb-backup left no xtrabackup_checkpoints with to_lsn");
        goto out;
    }
    ctx->host->put(call, "meta", "format", "xbstream");
    ctx->host->put(call, "meta", "tool", "mariadb-backup");
    ctx->host->put(call, "meta", "kind", incremental ? "incremental" : "full");
    static const char *const lsn_keys[] = {"backup_type", "from_lsn", "to_lsn", "last_lsn"};
    for (size_t i = 0; i < 4; i++)
        if (my_backup_info_value(cp, lsn_keys[i], v, sizeof(v)) > 0)
            ctx->host->put(call, "meta", lsn_keys[i], v);
    if (info && my_backup_info_value(info, "server_version", v, sizeof(v)) > 0)
        ctx->host->put(call, "meta", "engine_version", v);
    int found = info ? my_backup_info_value(info, "binlog_pos", v, sizeof(v)) : 0;
    if (found < 0) {
        rc = ctx->host->fail(call, TROVE_EDATASTORE, "mariadb-backup's binlog_pos is longer than %zu bytes",
                           sizeof(v) - 1);
        goto out;
    }
    if (found > 0 && (rc = binlog_fields(ctx, call, v)) != TROVE_OK)
        goto out;
    snprintf(v, sizeof(v), "%ld", ctx->s.server_id);
    ctx->host->put(call, "meta", "server_id", v);
out:
    free(cp);
    free(info);
    return rc;
}

static int make_temp_dir(struct my_ctx *ctx, struct trove_call *call, const char *parent, const char *prefix,
                         char *out, size_t outlen)
{
    if (mkdir(parent, 0750) != 0 && errno != EEXIST)
        return ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", parent, strerror(errno));
    if ((size_t)snprintf(out, outlen, "%s/%s%ld-XXXXXX", parent, prefix, (long)getpid()) >= outlen || !mkdtemp(out))
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot create a temporary directory in %s: %s", parent,
                               strerror(errno));
    return TROVE_OK;
}

int my_backup_physical(struct my_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req,
                       bool incremental)
{
    char creds[PATH_LEN] = "", work[PATH_LEN] = "", a_def[PATH_LEN], a_tgt[PATH_LEN], a_lsn[PATH_LEN], a_inc[128];
    const char *from_lsn = NULL;
    if (incremental) {
        const char *fmt = tps_kv_get(req->parent_meta, req->n_parent_meta, "format");
        from_lsn = tps_kv_get(req->parent_meta, req->n_parent_meta, "to_lsn");
        uint64_t lsn;
        if (!fmt || strcmp(fmt, "xbstream") != 0 || !from_lsn || !tps_parse_u64(from_lsn, &lsn))
            return ctx->host->fail(call, TROVE_EINVAL, "an incremental backup needs a physical parent (full or "
                                   "incremental) whose metadata has to_lsn");
    }
    int rc = my_conn_defaults_file(ctx, call, creds, sizeof(creds));
    if (rc == TROVE_OK)
        rc = make_temp_dir(ctx, call, ctx->s.run_dir, "backup-", work, sizeof(work));
    if (rc != TROVE_OK)
        goto out;
    snprintf(a_def, sizeof(a_def), "--defaults-file=%s", creds);
    snprintf(a_tgt, sizeof(a_tgt), "--target-dir=%s/target", work);
    snprintf(a_lsn, sizeof(a_lsn), "--extra-lsndir=%s/lsn", work);
    snprintf(a_inc, sizeof(a_inc), "--incremental-lsn=%s", from_lsn ? from_lsn : "");
    const char *argv[] = {ctx->s.backup_tool, a_def, "--backup", "--stream=xbstream", a_tgt, a_lsn,
                          incremental ? a_inc : NULL, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .stdout_sink = req->sink};
    ctx->host->progress(call, -1, "mariadb-backup %s backup running", incremental ? "incremental" : "full");
    rc = ctx->host->exec(call, &cmd);
    if (rc == TROVE_OK) {
        char lsndir[PATH_LEN];
        snprintf(lsndir, sizeof(lsndir), "%s/lsn", work);
        rc = record_physical_meta(ctx, call, lsndir, incremental);
    }
out:
    if (*creds)
        unlink(creds);
    if (*work)
        tps_remove_tree(work);
    return rc;
}

static int backup_logical(struct my_ctx *ctx, struct trove_call *call, const struct trove_backup_request *req)
{
    char creds[PATH_LEN] = "", a_def[PATH_LEN], version[128] = "";
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_scalar(ctx, call, conn, "SELECT VERSION()", version, sizeof(version), NULL);
    my_conn_close(conn);
    if (rc == TROVE_OK)
        rc = my_conn_defaults_file(ctx, call, creds, sizeof(creds));
    if (rc != TROVE_OK)
        goto out;
    snprintf(a_def, sizeof(a_def), "--defaults-file=%s", creds);
    const char *argv[] = {ctx->s.dump_tool, a_def, "--single-transaction", "--all-databases", "--routines", "--events",
                          "--triggers", "--hex-blob", "--flush-privileges", "--gtid", "--master-data=2", NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .stdout_sink = req->sink};
    ctx->host->progress(call, -1, "mariadb-dump running");
    rc = ctx->host->exec(call, &cmd);
    if (rc == TROVE_OK) {
        ctx->host->put(call, "meta", "format", "sql");
        ctx->host->put(call, "meta", "tool", "mariadb-dump");
        ctx->host->put(call, "meta", "kind", "logical");
        ctx->host->put(call, "meta", "engine_version", version);
    }
out:
    if (*creds)
        unlink(creds);
    return rc;
}

int my_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct my_ctx *ctx = self;
    if (!TROVE_FIELD_OK(req, struct trove_backup_request, sink))
        return ctx->host->fail(call, TROVE_EINVAL, "the backup request is shorter than ABI 2.0's");
    switch (req->kind) {
    case TROVE_BACKUP_FULL:
        return my_backup_physical(ctx, call, req, false);
    case TROVE_BACKUP_INCREMENTAL:
        return my_backup_physical(ctx, call, req, true);
    case TROVE_BACKUP_LOGICAL:
        return backup_logical(ctx, call, req);
    }
    return ctx->host->fail(call, TROVE_ENOTSUP, "backup kind %d is not supported", (int)req->kind);
}

/* ------------------------------------------------------------ restore */

static int check_chain(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    if (!TROVE_FIELD_OK(req, struct trove_restore_request, piece_size))
        return ctx->host->fail(call, TROVE_EINVAL, "the restore request is shorter than ABI 2.0's");
    if (req->n_pieces == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "nothing to restore");
    for (size_t i = 0; i < req->n_pieces; i++)
        if (!TROVE_FIELD_OK(piece(req, i), struct trove_restore_piece, source))
            return ctx->host->fail(call, TROVE_EINVAL, "restore piece %zu is shorter than ABI 2.0's", i);
    if (piece(req, 0)->kind == TROVE_BACKUP_LOGICAL)
        return req->n_pieces == 1 ? TROVE_OK
                                  : ctx->host->fail(call, TROVE_EINVAL, "a logical backup is restored on its own");
    if (piece(req, 0)->kind != TROVE_BACKUP_FULL)
        return ctx->host->fail(call, TROVE_EINVAL, "a restore chain starts with a full backup");
    for (size_t i = 0; i < req->n_pieces; i++) {
        const struct trove_restore_piece *pc = piece(req, i);
        const char *fmt = tps_kv_get(pc->meta, pc->n_meta, "format");
        if (i > 0 && pc->kind != TROVE_BACKUP_INCREMENTAL)
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s: only incrementals may follow the full backup",
                                   pc->id);
        if (fmt && strcmp(fmt, "xbstream") != 0)
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s is not a mariadb-backup stream", pc->id);
        if (i == 0)
            continue;
        const char *from = tps_kv_get(pc->meta, pc->n_meta, "from_lsn");
        const struct trove_restore_piece *before = piece(req, i - 1);
        const char *prev = tps_kv_get(before->meta, before->n_meta, "to_lsn");
        if (from && prev && strcmp(from, prev) != 0)
            return ctx->host->fail(call, TROVE_EINVAL, "backup %s starts at LSN %s but %s ends at LSN %s: the chain "
                                   "is broken", pc->id, from, before->id, prev);
    }
    return TROVE_OK;
}

static int extract_piece(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_piece *pc,
                         const char *dir)
{
    if (mkdir(dir, 0750) != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", dir, strerror(errno));
    const char *argv[] = {ctx->s.mbstream, "-x", "-C", dir, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .stdin_source = pc->source};
    return ctx->host->exec(call, &cmd);
}

static int run_backup_tool(struct my_ctx *ctx, struct trove_call *call, const char *a1, const char *a2,
                           const char *a3)
{
    char defaults[PATH_LEN];
    snprintf(defaults, sizeof(defaults), "--defaults-file=%s", ctx->my_cnf);
    const char *argv[] = {ctx->s.backup_tool, defaults, a1, a2, a3, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv};
    return ctx->host->exec(call, &cmd);
}

/* Extract every piece into work/N and prepare work/0 with the incrementals. */
static int stage_chain(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req,
                       const char *work)
{
    char dir[PATH_LEN], base[PATH_LEN], inc[PATH_LEN];
    int rc = TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < req->n_pieces; i++) {
        ctx->host->progress(call, (int)(10 + 40 * i / req->n_pieces), "extracting backup %s", piece(req, i)->id);
        snprintf(dir, sizeof(dir), "%s/%zu", work, i);
        rc = extract_piece(ctx, call, piece(req, i), dir);
    }
    snprintf(base, sizeof(base), "--target-dir=%s/0", work);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 55, "preparing the full backup");
        rc = run_backup_tool(ctx, call, "--prepare", base, NULL);
    }
    for (size_t i = 1; rc == TROVE_OK && i < req->n_pieces; i++) {
        ctx->host->progress(call, (int)(55 + 20 * i / req->n_pieces), "applying incremental %s", piece(req, i)->id);
        snprintf(inc, sizeof(inc), "--incremental-dir=%s/%zu", work, i);
        rc = run_backup_tool(ctx, call, "--prepare", base, inc);
    }
    return rc;
}

static int chown_tree(struct my_ctx *ctx, struct trove_call *call, const char *path)
{
    const char *user = my_server_tool_user(ctx);
    if (!user)
        return TROVE_OK;
    char owner[300];
    snprintf(owner, sizeof(owner), "%s:", user);
    const char *argv[] = {"chown", "-R", owner, path, NULL};
    struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv};
    return ctx->host->exec(call, &cmd);
}

/* After a physical restore the binary log is empty: continue the backup's
 * GTID history instead of restarting sequence numbers. */
static int continue_gtid(struct my_ctx *ctx, struct trove_call *call, const char *gtid)
{
    if (!gtid || !*gtid || !my_gtid_valid(gtid))
        return TROVE_OK;
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "RESET MASTER");
    struct tps_buf q = {0};
    tps_buf_add(&q, "SET GLOBAL gtid_binlog_state = ");
    my_quote_literal(&q, conn, gtid);
    if (rc == TROVE_OK)
        rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    tps_buf_add(&q, "SET GLOBAL gtid_slave_pos = ");
    my_quote_literal(&q, conn, gtid);
    if (rc == TROVE_OK)
        rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    my_conn_close(conn);
    return rc;
}

/* Swap the prepared copy in; on a failed start put the old data back. */
static int swap_datadir(struct my_ctx *ctx, struct trove_call *call, const char *work, char *old, size_t oldlen)
{
    char target[PATH_LEN];
    snprintf(old, oldlen, "%s.trove-old-%ld", ctx->s.datadir, (long)time(NULL));
    snprintf(target, sizeof(target), "--target-dir=%s/0", work);
    struct stat st;
    bool had_old = lstat(ctx->s.datadir, &st) == 0;
    if (had_old && rename(ctx->s.datadir, old) != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot move %s aside: %s", ctx->s.datadir, strerror(errno));
    if (!had_old)
        old[0] = '\0';
    int rc = TROVE_OK;
    if (mkdir(ctx->s.datadir, 0750) != 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "mkdir %s: %s", ctx->s.datadir, strerror(errno));
    char datadir_arg[PATH_LEN];
    snprintf(datadir_arg, sizeof(datadir_arg), "--datadir=%s", ctx->s.datadir);
    if (rc == TROVE_OK)
        rc = run_backup_tool(ctx, call, "--move-back", target, datadir_arg);
    if (rc == TROVE_OK)
        rc = chown_tree(ctx, call, ctx->s.datadir);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 90, "starting MariaDB on the restored data");
        rc = my_server_start(ctx, call);
    }
    if (rc != TROVE_OK && *old) {   /* keep the failed copy for a post-mortem, bring the old one back */
        char failed[PATH_LEN];
        snprintf(failed, sizeof(failed), "%s.trove-failed-%ld", ctx->s.datadir, (long)time(NULL));
        my_server_stop(ctx, call);
        if (rename(ctx->s.datadir, failed) == 0 && rename(old, ctx->s.datadir) == 0)
            old[0] = '\0';
        ctx->host->log(TROVE_LOG_WARN, "mysql: restored data did not start; kept it in %s and put the old data back",
                       failed);
    }
    return rc;
}

/* An ordinary restore leaves a writable standalone; one for a replica stays
 * read-only until repl_attach makes it follow its source. The role file
 * carries that over restarts. */
static int settle_role(struct my_ctx *ctx, struct trove_call *call, bool for_replica)
{
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, for_replica ? "SET GLOBAL read_only = ON" : "SET GLOBAL read_only = OFF");
    if (rc == TROVE_OK)
        rc = my_role_write(ctx, call, for_replica ? "replica" : "standalone", for_replica);
    my_conn_close(conn);
    return rc;
}

static int restore_physical(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    char parent[PATH_LEN], work[PATH_LEN] = "", old[PATH_LEN] = "";
    snprintf(parent, sizeof(parent), "%s", ctx->s.datadir);
    char *dir = dirname(parent);
    int rc = my_server_need_managed(ctx, call, "physical restore");
    if (rc == TROVE_OK)
        rc = my_server_write_config(ctx, call);
    if (rc == TROVE_OK)
        rc = make_temp_dir(ctx, call, dir, ".trove-restore-", work, sizeof(work));
    if (rc == TROVE_OK)
        rc = stage_chain(ctx, call, req, work);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 80, "stopping MariaDB");
        my_server_mark_restoring(ctx, true);
        rc = my_server_stop(ctx, call);
    }
    if (rc == TROVE_OK)
        rc = swap_datadir(ctx, call, work, old, sizeof(old));
    my_server_mark_restoring(ctx, false);
    if (rc == TROVE_OK) {
        const struct trove_restore_piece *last = piece(req, req->n_pieces - 1);
        rc = continue_gtid(ctx, call, tps_kv_get(last->meta, last->n_meta, "gtid_position"));
    }
    if (rc == TROVE_OK)
        rc = settle_role(ctx, call, MY_FIELD(req, struct trove_restore_request, for_replica, false));
    if (rc == TROVE_OK && *old)
        tps_remove_tree(old);
    if (*work)
        tps_remove_tree(work);
    return rc;
}

/* Drop the tenant databases so the dump's contents replace them. */
static int drop_tenant_databases(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    MYSQL_RES *res = NULL;
    int rc = my_conn_query(ctx, call, conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", &res);
    MYSQL_ROW row;
    while (rc == TROVE_OK && res && (row = mysql_fetch_row(res)) != NULL) {
        if (!row[0] || my_name_is_system_database(row[0]))
            continue;
        struct tps_buf q = {0};
        tps_buf_add(&q, "DROP DATABASE ");
        my_quote_ident(&q, row[0]);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_free(&q);
    }
    if (res)
        mysql_free_result(res);
    return rc;
}

/* The dump replaced the grant tables: give the admin account its password back
 * through the connection opened before the import. */
static int restore_admin(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "::1"};
    int rc = my_conn_exec(ctx, call, conn, "SET SESSION sql_log_bin = 0");
    for (size_t i = 0; rc == TROVE_OK && i < 3; i++) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "CREATE USER IF NOT EXISTS ");
        my_quote_account(&q, conn, ctx->s.admin_user, hosts[i]);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_free(&q);
        tps_buf_add(&q, "ALTER USER ");
        my_quote_account(&q, conn, ctx->s.admin_user, hosts[i]);
        my_password_identified_by(&q, ctx->s.admin_password);
        tps_buf_add(&q, " ACCOUNT UNLOCK");
        if (rc == TROVE_OK)
            rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_wipe(&q);   /* it held a hash */
        tps_buf_add(&q, "GRANT ALL PRIVILEGES ON *.* TO ");
        my_quote_account(&q, conn, ctx->s.admin_user, hosts[i]);
        tps_buf_add(&q, " WITH GRANT OPTION");
        if (rc == TROVE_OK)
            rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_wipe(&q);
    }
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "FLUSH PRIVILEGES");
    my_conn_exec(ctx, call, conn, "SET SESSION sql_log_bin = 1");
    return rc;
}

static int restore_logical(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_piece *pc)
{
    char creds[PATH_LEN] = "", a_def[PATH_LEN];
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_defaults_file(ctx, call, creds, sizeof(creds));
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 10, "dropping the current databases");
        rc = drop_tenant_databases(ctx, call, conn);
    }
    if (rc == TROVE_OK) {
        snprintf(a_def, sizeof(a_def), "--defaults-file=%s", creds);
        const char *argv[] = {ctx->s.client_tool, a_def, "--binary-mode", NULL};
        struct trove_exec cmd = {.size = sizeof(cmd), .argv = argv, .stdin_source = pc->source};
        ctx->host->progress(call, 20, "loading the dump");
        rc = ctx->host->exec(call, &cmd);
    }
    if (conn && rc != TROVE_ECANCELLED) {
        int rc2 = restore_admin(ctx, call, conn);
        if (rc == TROVE_OK)
            rc = rc2;
    }
    if (*creds)
        unlink(creds);
    my_conn_close(conn);
    return rc;
}

int my_backup_restore_locked(struct my_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req)
{
    int rc = check_chain(ctx, call, req);
    if (rc != TROVE_OK)
        return rc;
    if (piece(req, 0)->kind == TROVE_BACKUP_LOGICAL)
        return restore_logical(ctx, call, piece(req, 0));
    return restore_physical(ctx, call, req);
}

int my_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct my_ctx *ctx = self;
    int lock = my_server_lock(ctx, call);
    if (lock < 0)
        return -lock;
    int rc = my_backup_restore_locked(ctx, call, req);
    tps_file_unlock(lock);
    return rc;
}
