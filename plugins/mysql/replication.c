/*
 * replication.c - MariaDB GTID replication: snapshot (a full backup plus a
 * replication account), attach/demote (CHANGE MASTER ... MASTER_USE_GTID =
 * slave_pos), detach, promote (after the relay log is applied), read-only,
 * positions (@@gtid_binlog_pos / @@gtid_current_pos) and waiting for one.
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

static int read_slave_status(struct my_plugin *p, struct trove_call *call, MYSQL *conn, struct slave_status *st)
{
    memset(st, 0, sizeof(*st));
    MYSQL_RES *res = NULL;
    int rc = my_query(p, call, conn, "SHOW SLAVE STATUS", &res);
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
static int position_of(struct my_plugin *p, struct trove_call *call, MYSQL *conn, bool replica, char *out,
                       size_t outlen)
{
    return my_scalar(p, call, conn, replica ? "SELECT @@GLOBAL.gtid_current_pos" : "SELECT @@GLOBAL.gtid_binlog_pos",
                     out, outlen, NULL);
}

/* primary: has replicas reading its binary log, or was promoted. */
static enum trove_role unreplicated_role(struct my_plugin *p, MYSQL *conn)
{
    char role[32];
    role_read(p, role, sizeof(role));
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

void repl_health(struct my_plugin *p, MYSQL *conn, struct trove_health *out)
{
    struct slave_status st;
    if (read_slave_status(p, NULL, conn, &st) != TROVE_OK) {
        out->role = TROVE_ROLE_UNKNOWN;
        return;
    }
    out->role = st.configured ? TROVE_ROLE_REPLICA : unreplicated_role(p, conn);
    out->term = 0;
    position_of(p, NULL, conn, st.configured, out->position, sizeof(out->position));
}

/* ------------------------------------------------------------ snapshot */

static int create_replication_account(struct my_plugin *p, struct trove_call *call, MYSQL *conn, char *name,
                                      size_t namelen, char *password, size_t pwlen)
{
    char suffix[9];
    if (p->host->random_password(suffix, sizeof(suffix)) != TROVE_OK ||
        p->host->random_password(password, pwlen) != TROVE_OK)
        return p->host->fail(call, TROVE_EINTERNAL, "cannot generate replication credentials");
    snprintf(name, namelen, "%s_%s", p->s.replication_user, suffix);
    struct sb q = {0};
    sb_add(&q, "CREATE USER ");
    sb_account(&q, conn, name, "%");
    sb_identified_by(&q, password);
    int rc = my_exec_sb(p, call, conn, &q);
    sb_wipe(&q);
    if (rc != TROVE_OK)
        return rc;
    sb_add(&q, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ");
    sb_account(&q, conn, name, "%");
    rc = my_exec_sb(p, call, conn, &q);
    sb_free(&q);
    return rc;
}

int my_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct my_plugin *p = self;
    char name[128] = "", password[REPL_PASSWORD_LEN + 1];
    MYSQL *conn = NULL;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)   /* before the backup, so replicas of this snapshot have the account too */
        rc = create_replication_account(p, call, conn, name, sizeof(name), password, sizeof(password));
    if (rc == TROVE_OK)
        rc = backup_physical(p, call, req, false);
    if (rc == TROVE_OK)
        rc = p->host->set_str(call, "user", name);
    if (rc == TROVE_OK)
        rc = p->host->set_str(call, "password", password);
    if (rc != TROVE_OK && *name && conn) {
        struct sb q = {0};
        sb_add(&q, "DROP USER IF EXISTS ");
        sb_account(&q, conn, name, "%");
        if (!q.oom)
            mysql_real_query(conn, q.buf, (unsigned long)q.len);
        sb_free(&q);
    }
    explicit_bzero(password, sizeof(password));
    my_close(conn);
    return rc;
}

/* ------------------------------------------------------------ attach */

static int check_source(struct my_plugin *p, struct trove_call *call, const struct trove_replication_source *src)
{
    if (!src)
        return p->host->fail(call, TROVE_EINVAL, "a replication source is required");
    int rc = check_server_host(p, call, src->host);
    if (rc == TROVE_OK && (src->port < 1 || src->port > 65535))
        rc = p->host->fail(call, TROVE_EINVAL, "source port must be 1..65535");
    if (rc == TROVE_OK)
        rc = check_user_name(p, call, src->user);
    if (rc == TROVE_OK)
        rc = check_password(p, call, src->password);
    return rc;
}

static const char *meta_value(const struct trove_replication_source *src, const char *key)
{
    for (size_t i = 0; i < src->n_meta; i++)
        if (src->meta[i].key && strcmp(src->meta[i].key, key) == 0)
            return src->meta[i].value;
    return NULL;
}

/* MASTER_PASSWORD must reach the server in clear: the replica logs in to its
 * source with it. CHANGE MASTER is never binary-logged; the session also keeps
 * it out of the general and slow logs (the server still stores the password
 * in master.info, see docs/plugins/mysql.md). */
static int change_master(struct my_plugin *p, struct trove_call *call, MYSQL *conn,
                         const struct trove_replication_source *src)
{
    int rc = my_exec(p, call, conn, "SET SESSION sql_log_off = ON, SESSION log_slow_query = OFF");
    if (rc != TROVE_OK)
        return rc;
    struct sb q = {0};
    sb_add(&q, "CHANGE MASTER TO MASTER_HOST = ");
    sb_literal(&q, conn, src->host);
    sb_addf(&q, ", MASTER_PORT = %d, MASTER_USER = ", src->port);
    sb_literal(&q, conn, src->user);
    sb_add(&q, ", MASTER_PASSWORD = ");
    sb_literal(&q, conn, src->password);
    sb_add(&q, ", MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5");
    rc = my_exec_sb(p, call, conn, &q);
    sb_wipe(&q);
    static const char logs_back[] = "SET SESSION sql_log_off = DEFAULT, SESSION log_slow_query = DEFAULT";
    if (rc == TROVE_OK)
        return my_exec(p, call, conn, logs_back);
    if (mysql_query(conn, logs_back) != 0)   /* keep CHANGE MASTER's error */
        p->host->log(TROVE_LOG_WARN, "mysql: %s: %s", logs_back, mysql_error(conn));
    return rc;
}

/* Until both threads run; a connection or apply error fails the call. */
static int wait_replicating(struct my_plugin *p, struct trove_call *call, MYSQL *conn)
{
    uint64_t start = mono_ms();
    struct slave_status st;
    for (;;) {
        int rc = read_slave_status(p, call, conn, &st);
        if (rc != TROVE_OK)
            return rc;
        if (!strcmp(st.io_running, "Yes") && !strcmp(st.sql_running, "Yes"))
            return TROVE_OK;
        if (strcmp(st.sql_errno, "0") != 0 && *st.sql_errno)
            return p->host->fail(call, TROVE_EDATASTORE, "replication stopped applying: error %s: %s", st.sql_errno,
                                 st.sql_error);
        bool io_failed = *st.io_errno && strcmp(st.io_errno, "0") != 0;
        if (io_failed && (strcmp(st.io_running, "No") == 0 || mono_ms() - start > 3000))
            return p->host->fail(call, TROVE_EDATASTORE, "replica cannot read from its source: error %s: %s",
                                 st.io_errno, st.io_error);
        if (mono_ms() - start > ATTACH_WAIT_MS)
            return p->host->fail(call, TROVE_ETIMEOUT, "replication did not start within %d s (io: %s, sql: %s)",
                                 ATTACH_WAIT_MS / 1000, st.io_running, st.sql_running);
        if (p->host->cancelled(call))
            return p->host->fail(call, TROVE_ECANCELLED, "cancelled");
        sleep_ms(100);
    }
}

/* Follow src from gtid_slave_pos; start_pos, when given, replaces it first. */
static int follow(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const struct trove_replication_source *src,
                  const char *start_pos)
{
    int rc = my_exec(p, call, conn, "STOP SLAVE");
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, "RESET SLAVE ALL");
    if (rc == TROVE_OK && start_pos) {
        struct sb q = {0};
        sb_add(&q, "SET GLOBAL gtid_slave_pos = ");
        sb_literal(&q, conn, start_pos);
        rc = my_exec_sb(p, call, conn, &q);
        sb_free(&q);
    }
    if (rc == TROVE_OK)
        rc = change_master(p, call, conn, src);
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, "SET GLOBAL read_only = ON");
    if (rc == TROVE_OK)
        rc = role_write(p, call, "replica", true);
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, "START SLAVE");
    if (rc == TROVE_OK)
        rc = wait_replicating(p, call, conn);
    return rc;
}

/* A failed attach leaves a standalone, writable server (best effort: the
 * call keeps the attach's error). */
static void unfollow(struct my_plugin *p, struct trove_call *call, MYSQL *conn)
{
    static const char *const undo[] = {"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"};
    for (size_t i = 0; i < 3; i++)
        if (mysql_query(conn, undo[i]) != 0)
            p->host->log(TROVE_LOG_WARN, "mysql: undoing a failed attach: %s: %s", undo[i], mysql_error(conn));
    if (role_write(p, call, "standalone", false) != TROVE_OK)
        p->host->log(TROVE_LOG_WARN, "mysql: cannot rewrite %s", p->s.role_file);
}

int my_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = check_source(p, call, src);
    const char *pos = rc == TROVE_OK ? meta_value(src, "gtid_position") : NULL;
    if (pos && !gtid_valid(pos))
        rc = p->host->fail(call, TROVE_EINVAL, "the snapshot's gtid_position \"%s\" is not a GTID list", pos);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK && (rc = follow(p, call, conn, src, pos)) != TROVE_OK)
        unfollow(p, call, conn);
    my_close(conn);
    return rc;
}

/* ------------------------------------------------------------ detach / promote */

static int become_writable(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *role)
{
    int rc = my_exec(p, call, conn, "STOP SLAVE");
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, "RESET SLAVE ALL");
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, "SET GLOBAL read_only = OFF");
    if (rc == TROVE_OK)
        rc = role_write(p, call, role, false);
    return rc;
}

int my_repl_detach(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = become_writable(p, call, conn, "standalone");
    my_close(conn);
    return rc;
}

/* Stop receiving, then wait until everything received has been applied. */
static int drain_relay_log(struct my_plugin *p, struct trove_call *call, MYSQL *conn)
{
    struct slave_status st;
    int rc = my_exec(p, call, conn, "STOP SLAVE IO_THREAD");
    if (rc == TROVE_OK)
        rc = read_slave_status(p, call, conn, &st);
    if (rc != TROVE_OK || !*st.gtid_io_pos)
        return rc;
    if (strcmp(st.sql_running, "Yes") != 0)
        return p->host->fail(call, TROVE_ECONFLICT, "cannot promote: the replica is not applying (%s%s%s); "
                             "received transactions would be lost", st.sql_running, *st.sql_error ? ": " : "",
                             st.sql_error);
    struct sb q = {0};
    sb_add(&q, "SELECT MASTER_GTID_WAIT(");
    sb_literal(&q, conn, st.gtid_io_pos);
    sb_addf(&q, ", %d)", PROMOTE_WAIT_S);
    char v[16];
    rc = q.oom ? my_oom(p, call) : my_scalar(p, call, conn, q.buf, v, sizeof(v), NULL);
    sb_free(&q);
    if (rc == TROVE_OK && strcmp(v, "0") != 0)
        rc = p->host->fail(call, TROVE_ETIMEOUT, "the relay log was not applied within %d s", PROMOTE_WAIT_S);
    return rc;
}

int my_repl_promote(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(p, call, conn, &st);
    if (rc == TROVE_OK && st.configured)
        rc = drain_relay_log(p, call, conn);
    if (rc == TROVE_OK)
        rc = become_writable(p, call, conn, "primary");
    my_close(conn);
    return rc;
}

int my_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    char pos[TROVE_POSITION_MAX];
    int rc = check_source(p, call, src);
    if (rc == TROVE_OK)
        rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)   /* no new writes from here on */
        rc = my_exec(p, call, conn, "SET GLOBAL read_only = ON");
    /* A former primary's history is in its binary log: continue from all of it. */
    if (rc == TROVE_OK)
        rc = my_scalar(p, call, conn, "SELECT @@GLOBAL.gtid_current_pos", pos, sizeof(pos), NULL);
    if (rc == TROVE_OK)
        rc = follow(p, call, conn, src, pos);
    my_close(conn);
    return rc;
}

int my_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    char role[32];
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = my_exec(p, call, conn, read_only ? "SET GLOBAL read_only = ON" : "SET GLOBAL read_only = OFF");
    role_read(p, role, sizeof(role));
    if (rc == TROVE_OK)
        rc = role_write(p, call, *role ? role : "standalone", read_only);
    my_close(conn);
    return rc;
}

/* ------------------------------------------------------------ positions */

int my_repl_position(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    char pos[TROVE_POSITION_MAX];
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(p, call, conn, &st);
    if (rc == TROVE_OK)
        rc = position_of(p, call, conn, st.configured, pos, sizeof(pos));
    if (rc == TROVE_OK)
        rc = p->host->set_str(call, "position", pos);
    my_close(conn);
    return rc;
}

/* A server that does not replicate reaches a position only by its own writes. */
static int wait_own_position(struct my_plugin *p, struct trove_call *call, MYSQL *conn, const char *position,
                             uint32_t timeout_ms)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    char pos[TROVE_POSITION_MAX];
    for (;;) {
        enum trove_order order;
        int rc = position_of(p, call, conn, false, pos, sizeof(pos));
        if (rc != TROVE_OK)
            return rc;
        if (my_repl_compare(p, pos, position, &order) == TROVE_OK &&
            (order == TROVE_ORDER_EQUAL || order == TROVE_ORDER_AFTER))
            return TROVE_OK;
        if (mono_ms() >= deadline)
            return p->host->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %s)", position,
                                 timeout_ms, pos);
        sleep_ms(100);
    }
}

int my_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct my_plugin *p = self;
    if (!position || !gtid_valid(position))
        return p->host->fail(call, TROVE_EINVAL, "\"%s\" is not a GTID position (domain-server-seq,...)",
                             position ? position : "");
    MYSQL *conn = NULL;
    struct slave_status st;
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(p, call, conn, &st);
    if (rc == TROVE_OK && !st.configured)
        rc = wait_own_position(p, call, conn, position, timeout_ms);
    else if (rc == TROVE_OK) {
        struct sb q = {0};
        char v[16];
        bool null;
        sb_add(&q, "SELECT MASTER_GTID_WAIT(");
        sb_literal(&q, conn, position);
        sb_addf(&q, ", %u.%03u)", timeout_ms / 1000, timeout_ms % 1000);
        rc = q.oom ? my_oom(p, call) : my_scalar(p, call, conn, q.buf, v, sizeof(v), &null);
        sb_free(&q);
        if (rc == TROVE_OK && (null || strcmp(v, "0") != 0))
            rc = p->host->fail(call, TROVE_ETIMEOUT, "position %s not applied within %u ms", position, timeout_ms);
    }
    my_close(conn);
    return rc;
}

int my_repl_status(void *self, struct trove_call *call)
{
    struct my_plugin *p = self;
    MYSQL *conn = NULL;
    struct slave_status st;
    char pos[TROVE_POSITION_MAX];
    int rc = my_connect(p, call, false, &conn);
    if (rc == TROVE_OK)
        rc = read_slave_status(p, call, conn, &st);
    if (rc == TROVE_OK)
        rc = position_of(p, call, conn, st.configured, pos, sizeof(pos));
    if (rc != TROVE_OK) {
        my_close(conn);
        return rc;
    }
    enum trove_role role = st.configured ? TROVE_ROLE_REPLICA : unreplicated_role(p, conn);
    static const char *const names[] = {"unknown", "standalone", "primary", "replica"};
    p->host->set_str(call, "role", names[role]);
    p->host->set_str(call, "position", pos);
    if (st.configured) {
        int64_t port = 0, lag = -1;
        parse_i64(st.port, &port);
        parse_i64(st.lag, &lag);   /* NULL (not applying) stays -1 */
        p->host->set_str(call, "source_host", st.host);
        p->host->set_int(call, "source_port", port);
        p->host->set_int(call, "lag_seconds", lag);
        p->host->set_str(call, "io_state", st.io_running);
        p->host->set_str(call, "apply_state", st.sql_running);
        p->host->set_str(call, "io_detail", st.io_state);
        p->host->set_str(call, "apply_detail", st.sql_state);
        if (*st.io_error || *st.sql_error)
            p->host->set_str(call, "last_error", *st.sql_error ? st.sql_error : st.io_error);
    }
    my_close(conn);
    return TROVE_OK;
}
