/*
 * replication.c - MariaDB GTID replication: the replication account
 * (credentials alone, or with a snapshot: a full backup), attach/demote
 * (CHANGE MASTER ... MASTER_USE_GTID = slave_pos), detach, promote (after
 * the relay log is applied), read-only, positions (@@gtid_binlog_pos /
 * @@gtid_current_pos) and waiting for one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_plugin.h"

#define REPL_PASSWORD_LEN 32
#define ATTACH_WAIT_MS 30000
#define PROMOTE_WAIT_S 300

/* The fields of SHOW SLAVE STATUS this file reads. */
struct slave_status {
    bool configured;
    char io_running[32], sql_running[32], io_state[256], sql_state[256];
    char host[256], port[16], lag[32];
    char io_errno[16], io_error[512], sql_errno[16], sql_error[512];
    char gtid_io_pos[TROVE_POSITION_MAX];
};

static void copy_field(MYSQL_RES *res, MYSQL_ROW row, const char *name, char *out, size_t outlen)
{
    unsigned n = mysql_num_fields(res);
    MYSQL_FIELD *f = mysql_fetch_fields(res);
    out[0] = '\0';
    for (unsigned i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0 && row[i]) {
            snprintf(out, outlen, "%s", row[i]);
            return;
        }
}

static int read_slave_status(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, struct slave_status *st)
{
    memset(st, 0, sizeof(*st));
    MYSQL_RES *res = NULL;
    int rc = my_conn_query(ctx, call, conn, "SHOW SLAVE STATUS", &res);
    MYSQL_ROW row = rc == TROVE_OK && res ? mysql_fetch_row(res) : NULL;
    if (row) {
        st->configured = true;
        copy_field(res, row, "Slave_IO_Running", st->io_running, sizeof(st->io_running));
        copy_field(res, row, "Slave_SQL_Running", st->sql_running, sizeof(st->sql_running));
        copy_field(res, row, "Slave_IO_State", st->io_state, sizeof(st->io_state));
        copy_field(res, row, "Slave_SQL_Running_State", st->sql_state, sizeof(st->sql_state));
        copy_field(res, row, "Master_Host", st->host, sizeof(st->host));
        copy_field(res, row, "Master_Port", st->port, sizeof(st->port));
        copy_field(res, row, "Seconds_Behind_Master", st->lag, sizeof(st->lag));
        copy_field(res, row, "Last_IO_Errno", st->io_errno, sizeof(st->io_errno));
        copy_field(res, row, "Last_IO_Error", st->io_error, sizeof(st->io_error));
        copy_field(res, row, "Last_SQL_Errno", st->sql_errno, sizeof(st->sql_errno));
        copy_field(res, row, "Last_SQL_Error", st->sql_error, sizeof(st->sql_error));
        copy_field(res, row, "Gtid_IO_Pos", st->gtid_io_pos, sizeof(st->gtid_io_pos));
    }
    if (res)
        mysql_free_result(res);
    return rc;
}

/* Where a replica must get to have every write: for a replica what it has
 * applied (gtid_current_pos), for a primary what it has logged. */
static int position_of(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, bool replica, char *out,
                       size_t outlen)
{
    return my_conn_scalar(ctx, call, conn, replica ? "SELECT @@GLOBAL.gtid_current_pos" : "SELECT @@GLOBAL.gtid_binlog_pos",
                          out, outlen, NULL);
}

/* primary: has replicas reading its binary log, or was promoted. */
static enum trove_role unreplicated_role(struct my_ctx *ctx, MYSQL *conn)
{
    char role[32];
    my_role_read(ctx, role, sizeof(role));
    if (strcmp(role, "primary") == 0)
        return TROVE_ROLE_PRIMARY;
    if (mysql_query(conn, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'") ==
        0) {
        MYSQL_RES *res = mysql_store_result(conn);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        bool has = row && row[0] && strcmp(row[0], "0") != 0;
        if (res)
            mysql_free_result(res);
        if (has)
            return TROVE_ROLE_PRIMARY;
    }
    return TROVE_ROLE_STANDALONE;
}

void my_repl_health(struct my_ctx *ctx, MYSQL *conn, struct trove_health *out)
{
    struct slave_status st;
    if (read_slave_status(ctx, NULL, conn, &st) != TROVE_OK) {
        out->role = TROVE_ROLE_UNKNOWN;
        return;
    }
    out->role = st.configured ? TROVE_ROLE_REPLICA : unreplicated_role(ctx, conn);
    out->term = 0;
    position_of(ctx, NULL, conn, st.configured, out->position, sizeof(out->position));
}

/* ------------------------------------------------------------ snapshot */

/* The replication account: "<replication_user>_<8 random>" at '%', its name
 * and password kept in state_dir/replication.account (0600) so that every
 * snapshot and every credentials handshake of this instance hand out the
 * same account, also from another agent process. */
struct repl_account {
    char name[128];
    char password[REPL_PASSWORD_LEN + 1];
};

static bool account_ok(struct my_ctx *ctx, const struct repl_account *a)
{
    size_t n = strlen(ctx->s.replication_user);
    return !strncmp(a->name, ctx->s.replication_user, n) && a->name[n] == '_' &&
           tps_name_ok(a->name + n + 1, 8, NULL, false) && strlen(a->name + n + 1) == 8 &&
           tps_name_ok(a->password, REPL_PASSWORD_LEN, NULL, false) && strlen(a->password) == REPL_PASSWORD_LEN;
}

/* The kept account, or a new one written to the file. */
static int account_load(struct my_ctx *ctx, struct trove_call *call, const char *path, struct repl_account *a)
{
    char *text = tps_file_read(path, 1024, NULL);
    bool kept = text && sscanf(text, "%127s %32s", a->name, a->password) == 2 && account_ok(ctx, a);
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    if (kept)
        return TROVE_OK;
    char suffix[9], line[256];
    if (ctx->host->random_password(suffix, sizeof(suffix)) != TROVE_OK ||
        ctx->host->random_password(a->password, sizeof(a->password)) != TROVE_OK)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate replication credentials");
    snprintf(a->name, sizeof(a->name), "%s_%s", ctx->s.replication_user, suffix);
    int n = snprintf(line, sizeof(line), "%s %s\n", a->name, a->password);
    int e = tps_file_write_atomic(path, line, (size_t)n, 0600);
    explicit_bzero(line, sizeof(line));
    return e == 0 ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
}

/* Make the server's account match the kept one: create it (*created), or
 * give it the kept password again. Only the password's hash travels. */
static int account_apply(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct repl_account *a,
                         bool *created)
{
    int e = my_user_exists(ctx, call, conn, a->name, "%");
    if (e < 0)
        return -e;
    *created = e == 0;
    struct tps_buf q = {0};
    tps_buf_add(&q, *created ? "CREATE USER " : "ALTER USER ");
    my_quote_account(&q, conn, a->name, "%");
    my_password_identified_by(&q, a->password);
    int rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_wipe(&q);
    if (rc != TROVE_OK)
        return rc;
    tps_buf_add(&q, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ");
    my_quote_account(&q, conn, a->name, "%");
    rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_free(&q);
    return rc;
}

static int replication_account(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, struct repl_account *a,
                               bool *created)
{
    char path[MY_PATH_MAX], lock_path[MY_PATH_MAX];
    tps_path(path, sizeof(path), "%s/replication.account", ctx->state_dir);
    tps_path(lock_path, sizeof(lock_path), "%s/replication.lock", ctx->state_dir);
    *created = false;
    int lock = tps_file_lock(lock_path, true);
    if (lock < 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", lock_path, strerror(-lock));
    int rc = account_load(ctx, call, path, a);
    if (rc == TROVE_OK)
        rc = account_apply(ctx, call, conn, a, created);
    tps_file_unlock(lock);
    return rc;
}

static int report_account(struct my_ctx *ctx, struct trove_call *call, const struct repl_account *a)
{
    int rc = ctx->host->set_str(call, "user", a->name);
    return rc == TROVE_OK ? ctx->host->set_str(call, "password", a->password) : rc;
}

int my_repl_credentials(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    struct repl_account a = {0};
    bool created;
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = replication_account(ctx, call, conn, &a, &created);
    if (rc == TROVE_OK)
        rc = report_account(ctx, call, &a);
    explicit_bzero(&a, sizeof(a));
    my_conn_close(conn);
    return rc;
}

int my_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct my_ctx *ctx = self;
    struct repl_account a = {0};
    bool created = false;
    MYSQL *conn = NULL;
    int rc = TROVE_FIELD_OK(req, struct trove_backup_request, sink)
                 ? my_conn_open(ctx, call, false, &conn)
                 : ctx->host->fail(call, TROVE_EINVAL, "the backup request is shorter than ABI 2.0's");
    if (rc == TROVE_OK)   /* before the backup, so replicas of this snapshot have the account too */
        rc = replication_account(ctx, call, conn, &a, &created);
    if (rc == TROVE_OK)
        rc = my_backup_physical(ctx, call, req, false);
    if (rc == TROVE_OK)
        rc = report_account(ctx, call, &a);
    if (rc != TROVE_OK && created) {   /* an account this call made goes again; the file makes it anew */
        struct tps_buf q = {0};
        tps_buf_add(&q, "DROP USER IF EXISTS ");
        my_quote_account(&q, conn, a.name, "%");
        if (tps_buf_str(&q))
            mysql_real_query(conn, q.data, (unsigned long)q.len);
        tps_buf_free(&q);
    }
    explicit_bzero(&a, sizeof(a));
    my_conn_close(conn);
    return rc;
}

/* ------------------------------------------------------------ attach */

static int check_source(struct my_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    if (!src)
        return ctx->host->fail(call, TROVE_EINVAL, "a replication source is required");
    if (!TROVE_FIELD_OK(src, struct trove_replication_source, n_meta))
        return ctx->host->fail(call, TROVE_EINVAL, "the replication source is shorter than ABI 2.0's");
    int rc = my_name_check_source_host(ctx, call, src->host);
    if (rc == TROVE_OK && (src->port < 1 || src->port > 65535))
        rc = ctx->host->fail(call, TROVE_EINVAL, "source port must be 1..65535");
    if (rc == TROVE_OK)
        rc = my_name_check_user(ctx, call, src->user);
    if (rc == TROVE_OK)
        rc = my_name_check_password(ctx, call, src->password);
    return rc;
}

/* MASTER_PASSWORD must reach the server in clear: the replica logs in to its
 * source with it. CHANGE MASTER is never binary-logged; the session also keeps
 * it out of the general and slow logs (the server still stores the password
 * in master.info, see docs/plugins/mysql.md). */
static int change_master(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn,
                         const struct trove_replication_source *src)
{
    int rc = my_conn_exec(ctx, call, conn, "SET SESSION sql_log_off = ON, SESSION log_slow_query = OFF");
    if (rc != TROVE_OK)
        return rc;
    struct tps_buf q = {0};
    tps_buf_add(&q, "CHANGE MASTER TO MASTER_HOST = ");
    my_quote_literal(&q, conn, src->host);
    tps_buf_addf(&q, ", MASTER_PORT = %d, MASTER_USER = ", src->port);
    my_quote_literal(&q, conn, src->user);
    tps_buf_add(&q, ", MASTER_PASSWORD = ");
    my_quote_literal(&q, conn, src->password);
    tps_buf_add(&q, ", MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5");
    rc = my_conn_exec_buf(ctx, call, conn, &q);
    tps_buf_wipe(&q);
    static const char logs_back[] = "SET SESSION sql_log_off = DEFAULT, SESSION log_slow_query = DEFAULT";
    if (rc == TROVE_OK)
        return my_conn_exec(ctx, call, conn, logs_back);
    if (mysql_query(conn, logs_back) != 0)   /* keep CHANGE MASTER's error */
        ctx->host->log(TROVE_LOG_WARN, "mysql: %s: %s", logs_back, mysql_error(conn));
    return rc;
}

/* Until both threads run; a connection or apply error fails the call. */
static int wait_replicating(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    uint64_t start = tps_now_ms();
    struct slave_status st;
    for (;;) {
        int rc = read_slave_status(ctx, call, conn, &st);
        if (rc != TROVE_OK)
            return rc;
        if (!strcmp(st.io_running, "Yes") && !strcmp(st.sql_running, "Yes"))
            return TROVE_OK;
        if (strcmp(st.sql_errno, "0") != 0 && *st.sql_errno)
            return ctx->host->fail(call, TROVE_EDATASTORE, "replication stopped applying: error %s: %s", st.sql_errno,
                                   st.sql_error);
        bool io_failed = *st.io_errno && strcmp(st.io_errno, "0") != 0;
        if (io_failed && (strcmp(st.io_running, "No") == 0 || tps_now_ms() - start > 3000))
            return ctx->host->fail(call, TROVE_EDATASTORE, "replica cannot read from its source: error %s: %s",
                                   st.io_errno, st.io_error);
        if (tps_now_ms() - start > ATTACH_WAIT_MS)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "replication did not start within %d s (io: %s, sql: %s)",
                                   ATTACH_WAIT_MS / 1000, st.io_running, st.sql_running);
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled");
        tps_sleep_ms(100);
    }
}

/* Follow src from gtid_slave_pos; start_pos, when given, replaces it first. */
static int follow(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const struct trove_replication_source *src,
                  const char *start_pos)
{
    int rc = my_conn_exec(ctx, call, conn, "STOP SLAVE");
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "RESET SLAVE ALL");
    if (rc == TROVE_OK && start_pos) {
        struct tps_buf q = {0};
        tps_buf_add(&q, "SET GLOBAL gtid_slave_pos = ");
        my_quote_literal(&q, conn, start_pos);
        rc = my_conn_exec_buf(ctx, call, conn, &q);
        tps_buf_free(&q);
    }
    if (rc == TROVE_OK)
        rc = change_master(ctx, call, conn, src);
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "SET GLOBAL read_only = ON");
    if (rc == TROVE_OK)
        rc = my_role_write(ctx, call, "replica", true);
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "START SLAVE");
    if (rc == TROVE_OK)
        rc = wait_replicating(ctx, call, conn);
    return rc;
}

/* A failed attach leaves a standalone, writable server (best effort: the
 * call keeps the attach's error). */
static void unfollow(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    static const char *const undo[] = {"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"};
    for (size_t i = 0; i < 3; i++)
        if (mysql_query(conn, undo[i]) != 0)
            ctx->host->log(TROVE_LOG_WARN, "mysql: undoing a failed attach: %s: %s", undo[i], mysql_error(conn));
    if (my_role_write(ctx, call, "standalone", false) != TROVE_OK)
        ctx->host->log(TROVE_LOG_WARN, "mysql: cannot rewrite %s", ctx->role_file);
}

int my_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = check_source(ctx, call, src);
    const char *pos = rc == TROVE_OK ? tps_kv_get(src->meta, src->n_meta, "gtid_position") : NULL;
    if (pos && !my_gtid_valid(pos))
        rc = ctx->host->fail(call, TROVE_EINVAL, "the snapshot's gtid_position \"%s\" is not a GTID list", pos);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK && (rc = follow(ctx, call, conn, src, pos)) != TROVE_OK)
        unfollow(ctx, call, conn);
    my_conn_close(conn);
    return rc;
}

/* ------------------------------------------------------------ detach / promote */

static int become_writable(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *role)
{
    int rc = my_conn_exec(ctx, call, conn, "STOP SLAVE");
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "RESET SLAVE ALL");
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, "SET GLOBAL read_only = OFF");
    if (rc == TROVE_OK)
        rc = my_role_write(ctx, call, role, false);
    return rc;
}

int my_repl_detach(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = become_writable(ctx, call, conn, "standalone");
    my_conn_close(conn);
    return rc;
}

/* Stop receiving, then wait until everything received has been applied. */
static int drain_relay_log(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn)
{
    struct slave_status st;
    int rc = my_conn_exec(ctx, call, conn, "STOP SLAVE IO_THREAD");
    if (rc == TROVE_OK)
        rc = read_slave_status(ctx, call, conn, &st);
    if (rc != TROVE_OK || !*st.gtid_io_pos)
        return rc;
    if (strcmp(st.sql_running, "Yes") != 0)
        return ctx->host->fail(call, TROVE_ECONFLICT, "cannot promote: the replica is not applying (%s%s%s); "
                               "received transactions would be lost", st.sql_running, *st.sql_error ? ": " : "",
                               st.sql_error);
    struct tps_buf q = {0};
    tps_buf_add(&q, "SELECT MASTER_GTID_WAIT(");
    my_quote_literal(&q, conn, st.gtid_io_pos);
    tps_buf_addf(&q, ", %d)", PROMOTE_WAIT_S);
    char v[16];
    rc = !tps_buf_str(&q) ? my_fail_oom(ctx, call) : my_conn_scalar(ctx, call, conn, q.data, v, sizeof(v), NULL);
    tps_buf_free(&q);
    if (rc == TROVE_OK && strcmp(v, "0") != 0)
        rc = ctx->host->fail(call, TROVE_ETIMEOUT, "the relay log was not applied within %d s", PROMOTE_WAIT_S);
    return rc;
}

int my_repl_promote(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(ctx, call, conn, &st);
    if (rc == TROVE_OK && st.configured)
        rc = drain_relay_log(ctx, call, conn);
    if (rc == TROVE_OK)
        rc = become_writable(ctx, call, conn, "primary");
    my_conn_close(conn);
    return rc;
}

int my_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    char pos[TROVE_POSITION_MAX];
    int rc = check_source(ctx, call, src);
    if (rc == TROVE_OK)
        rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)   /* no new writes from here on */
        rc = my_conn_exec(ctx, call, conn, "SET GLOBAL read_only = ON");
    /* A former primary's history is in its binary log: continue from all of it. */
    if (rc == TROVE_OK)
        rc = my_conn_scalar(ctx, call, conn, "SELECT @@GLOBAL.gtid_current_pos", pos, sizeof(pos), NULL);
    if (rc == TROVE_OK)
        rc = follow(ctx, call, conn, src, pos);
    my_conn_close(conn);
    return rc;
}

int my_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    char role[32];
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_conn_exec(ctx, call, conn, read_only ? "SET GLOBAL read_only = ON" : "SET GLOBAL read_only = OFF");
    my_role_read(ctx, role, sizeof(role));
    if (rc == TROVE_OK)
        rc = my_role_write(ctx, call, *role ? role : "standalone", read_only);
    my_conn_close(conn);
    return rc;
}

/* ------------------------------------------------------------ positions */

int my_repl_position(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    char pos[TROVE_POSITION_MAX];
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(ctx, call, conn, &st);
    if (rc == TROVE_OK)
        rc = position_of(ctx, call, conn, st.configured, pos, sizeof(pos));
    if (rc == TROVE_OK)
        rc = ctx->host->set_str(call, "position", pos);
    my_conn_close(conn);
    return rc;
}

/* A server that does not replicate reaches a position only by its own writes. */
static int wait_own_position(struct my_ctx *ctx, struct trove_call *call, MYSQL *conn, const char *position,
                             uint32_t timeout_ms)
{
    uint64_t deadline = tps_now_ms() + timeout_ms;
    char pos[TROVE_POSITION_MAX];
    for (;;) {
        enum trove_order order;
        int rc = position_of(ctx, call, conn, false, pos, sizeof(pos));
        if (rc != TROVE_OK)
            return rc;
        if (my_repl_compare(ctx, pos, position, &order) == TROVE_OK &&
            (order == TROVE_ORDER_EQUAL || order == TROVE_ORDER_AFTER))
            return TROVE_OK;
        if (tps_now_ms() >= deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %s)", position,
                                   timeout_ms, pos);
        tps_sleep_ms(100);
    }
}

int my_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct my_ctx *ctx = self;
    if (!position || !my_gtid_valid(position))
        return ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is not a GTID position (domain-server-seq,...)",
                               position ? position : "");
    MYSQL *conn = NULL;
    struct slave_status st;
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(ctx, call, conn, &st);
    if (rc == TROVE_OK && !st.configured)
        rc = wait_own_position(ctx, call, conn, position, timeout_ms);
    else if (rc == TROVE_OK) {
        struct tps_buf q = {0};
        char v[16];
        bool null;
        tps_buf_add(&q, "SELECT MASTER_GTID_WAIT(");
        my_quote_literal(&q, conn, position);
        tps_buf_addf(&q, ", %u.%03u)", timeout_ms / 1000, timeout_ms % 1000);
        rc = !tps_buf_str(&q) ? my_fail_oom(ctx, call) : my_conn_scalar(ctx, call, conn, q.data, v, sizeof(v), &null);
        tps_buf_free(&q);
        if (rc == TROVE_OK && (null || strcmp(v, "0") != 0))
            rc = ctx->host->fail(call, TROVE_ETIMEOUT, "position %s not applied within %u ms", position, timeout_ms);
    }
    my_conn_close(conn);
    return rc;
}

int my_repl_status(void *self, struct trove_call *call)
{
    struct my_ctx *ctx = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    char pos[TROVE_POSITION_MAX];
    int rc = my_conn_open(ctx, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(ctx, call, conn, &st);
    if (rc == TROVE_OK)
        rc = position_of(ctx, call, conn, st.configured, pos, sizeof(pos));
    if (rc != TROVE_OK) {
        my_conn_close(conn);
        return rc;
    }
    enum trove_role role = st.configured ? TROVE_ROLE_REPLICA : unreplicated_role(ctx, conn);
    static const char *const names[] = {"unknown", "standalone", "primary", "replica"};
    ctx->host->set_str(call, "role", names[role]);
    ctx->host->set_str(call, "position", pos);
    if (st.configured) {
        int64_t port = 0, lag = -1;
        tps_parse_int(st.port, 0, 65535, &port);
        tps_parse_int(st.lag, 0, INT64_MAX, &lag);   /* NULL (not applying) stays -1 */
        ctx->host->set_str(call, "source_host", st.host);
        ctx->host->set_int(call, "source_port", port);
        ctx->host->set_int(call, "lag_seconds", lag);
        ctx->host->set_str(call, "io_state", st.io_running);
        ctx->host->set_str(call, "apply_state", st.sql_running);
        ctx->host->set_str(call, "io_detail", st.io_state);
        ctx->host->set_str(call, "apply_detail", st.sql_state);
        if (*st.io_error || *st.sql_error)
            ctx->host->set_str(call, "last_error", *st.sql_error ? st.sql_error : st.io_error);
    }
    my_conn_close(conn);
    return TROVE_OK;
}
