/*
 * replication.c - streaming replication. A snapshot is a base backup plus a
 * replication account (REPLICATION LOGIN, never superuser, its rights
 * granted to it alone) with its own pg_hba.conf lines and a physical slot;
 * the handshake without a snapshot (repl_credentials) hands out one such
 * account per instance, remembered in the state directory; a standby follows
 * through trove_replication.conf + standby.signal; an old primary follows a
 * new one after pg_rewind. Positions are LSNs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg.h"

#define ACCOUNT_PREFIX "trove_repl_"   /* inside the reserved trove_ prefix (names.c) */
#define HBA_FILE_MAX (1 << 20)

/* The functions pg_rewind reads the source's files through. */
static const char REWIND_FUNCTIONS[] =
    "pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean), "
    "pg_catalog.pg_read_binary_file(text), pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)";

/* ---- the primary side --------------------------------------------------- */

/* A fresh lowercase name: "<prefix><12 random [a-z0-9]>". */
static int random_name(struct pg_ctx *ctx, struct trove_call *call, const char *prefix, char *out, size_t len)
{
    char suffix[13];
    if (ctx->host->random_password(suffix, sizeof(suffix)) != TROVE_OK)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a name");
    for (char *p = suffix; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(out, len, "%s%s", prefix, suffix);
    return TROVE_OK;
}

/* "<verb> <quoted name><rest>" into a fresh buffer. */
static void role_sql(struct tps_buf *b, const char *verb, const char *name, const char *rest)
{
    tps_buf_add(b, verb);
    tps_quote_ident(b, name, '"');
    tps_buf_add(b, rest);
}

/* The account's statements: LOGIN REPLICATION with its password, CONNECT on
 * the maintenance database and EXECUTE on the functions pg_rewind reads
 * through, all granted to this role by its own name (never through a group
 * whose name someone could hold). */
static int account_statements(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name,
                              const char *password, struct tps_buf sql[3])
{
    role_sql(&sql[0], "CREATE ROLE ", name, " WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE ");
    int rc = pg_password_append(ctx, call, c, &sql[0], name, password);
    tps_buf_add(&sql[1], "GRANT CONNECT ON DATABASE ");
    tps_quote_ident(&sql[1], ctx->s.database, '"');
    role_sql(&sql[1], " TO ", name, "");
    tps_buf_addf(&sql[2], "GRANT EXECUTE ON FUNCTION %s TO ", REWIND_FUNCTIONS);
    tps_quote_ident(&sql[2], name, '"');
    return rc;
}

/* The account with everything it may do, in one transaction (READ WRITE: a
 * primary made read-only for a switchover still hands out credentials). A
 * role of that name that already exists makes CREATE ROLE fail: nothing is
 * reused. */
static int create_account(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name,
                          const char *password)
{
    struct tps_buf sql[3] = {{0}};
    int rc = account_statements(ctx, call, c, name, password, sql);
    if (rc == TROVE_OK)
        rc = pg_conn_run(ctx, call, c, "BEGIN READ WRITE", 0, NULL);
    if (rc == TROVE_OK && (rc = pg_conn_run_buf(ctx, call, c, &sql[0])) != TROVE_OK &&
        strcmp(pg_conn_sqlstate(), "42710") == 0)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "role \"%s\" already exists; a replication account is never "
                             "reused", name);
    if (rc == TROVE_OK)
        rc = pg_conn_run_buf(ctx, call, c, &sql[1]);
    if (rc == TROVE_OK)
        rc = pg_conn_run_buf(ctx, call, c, &sql[2]);
    if (rc == TROVE_OK)
        rc = pg_conn_run(ctx, call, c, "COMMIT", 0, NULL);
    else
        PQclear(PQexec(c, "ROLLBACK"));   /* also after a failed BEGIN: harmless */
    for (int i = 0; i < 3; i++)
        tps_buf_wipe(&sql[i]);
    return rc;
}

/* pg_hba.conf's path and text (malloc'd, or NULL: unreadable or too big).
 * No fail(): the cleanup after a failed snapshot uses it too. */
static char *hba_read(PGconn *c, char *path, size_t len)
{
    PGresult *r = PQexec(c, "SELECT current_setting('hba_file')");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    snprintf(path, len, "%s", ok ? PQgetvalue(r, 0, 0) : "pg_hba.conf");
    PQclear(r);
    return ok ? tps_file_read(path, HBA_FILE_MAX, NULL) : NULL;
}

/* The first of the account's pg_hba.conf lines, as hba_add_account writes it. */
static void hba_first_line(struct tps_buf *b, const char *name)
{
    tps_buf_add(b, "host replication ");
    tps_quote_ident(b, name, '"');   /* a pg_hba.conf token that names exactly this role */
}

/* Two lines first in pg_hba.conf for this account alone (streaming, and
 * the maintenance database pg_rewind reads through), password only; then a
 * reload. Nothing to do when they are there already. */
static int hba_add_account(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const char *name)
{
    char path[PG_PATH_MAX];
    char *text = hba_read(c, path, sizeof(path));
    struct tps_buf both = {0}, first = {0};
    int rc = TROVE_OK;
    hba_first_line(&first, name);
    if (!text)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot read %s (or it is larger than %d bytes)", path,
                             HBA_FILE_MAX);
    else if (tps_has_control(ctx->s.database))
        rc = ctx->host->fail(call, TROVE_EINVAL, "the database setting cannot be written to pg_hba.conf");
    if (rc != TROVE_OK || (tps_buf_str(&first) && strstr(text, first.data)))
        goto out;
    tps_buf_addf(&both, "# trove replication account %s: streaming and pg_rewind, password only.\n", name);
    hba_first_line(&both, name);
    tps_buf_add(&both, " all scram-sha-256\nhost ");
    tps_quote_ident(&both, ctx->s.database, '"');
    tps_buf_add(&both, " ");
    tps_quote_ident(&both, name, '"');
    tps_buf_add(&both, " all scram-sha-256\n");
    tps_buf_add(&both, text);
    rc = tps_buf_str(&both) ? pg_file_write(ctx, call, path, both.data)
                            : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = pg_config_reload(ctx, call, c);
out:
    tps_buf_free(&both);
    tps_buf_free(&first);
    free(text);
    return rc;
}

/* Remove every pg_hba.conf line that names the account (the name is
 * generated and unique), then reload. Best effort, for cleanup: logs. */
static void hba_remove_account(struct pg_ctx *ctx, PGconn *c, const char *name)
{
    char path[PG_PATH_MAX];
    char *text = hba_read(c, path, sizeof(path));
    struct tps_buf kept = {0};
    bool changed = false;
    for (char *line = text, *next; text && *line; line = next) {
        next = line + strcspn(line, "\n");
        next += *next == '\n';
        char *hit = strstr(line, name);
        if (hit && hit < next)
            changed = true;
        else
            tps_buf_addn(&kept, line, (size_t)(next - line));
    }
    if (!text || !tps_buf_str(&kept))
        ctx->host->log(TROVE_LOG_WARN, "postgres: cannot read %s to remove the lines of %s", path, name);
    else if (changed && pg_file_store(ctx, path, kept.data) != 0)
        ctx->host->log(TROVE_LOG_WARN, "postgres: cannot remove the lines of %s from %s", name, path);
    else if (changed)
        PQclear(PQexec(c, "SELECT pg_reload_conf()"));
    tps_buf_free(&kept);
    free(text);
}

/* Undo a failed snapshot or handshake: its slot (only if this snapshot made
 * it) would otherwise keep WAL forever, and its role and pg_hba.conf lines
 * go too. The name is passed as a parameter where it can be. */
static void drop_account(struct pg_ctx *ctx, PGconn *c, const char *name, bool slot_created)
{
    const char *p[] = {name};
    if (slot_created)
        PQclear(PQexecParams(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE slot_name = $1", 1, NULL, p, NULL, NULL, 0));
    struct tps_buf drop = {0};
    role_sql(&drop, "DROP OWNED BY ", name, "; ");
    role_sql(&drop, "DROP ROLE IF EXISTS ", name, "");
    if (tps_buf_str(&drop))
        PQclear(PQexec(c, drop.data));
    tps_buf_free(&drop);
    hba_remove_account(ctx, c, name);
}

int pg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct pg_ctx *ctx = self;
    char name[40], password[33];
    int lock = pg_server_lock(ctx, call), rc = TROVE_EINTERNAL;
    if (lock >= 0)
        rc = pg_archiving_ensure(ctx, call);   /* wal_log_hints for a later pg_rewind */
    tps_file_unlock(lock);
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool created = false, slot_created = false;
    if ((rc = random_name(ctx, call, ACCOUNT_PREFIX, name, sizeof(name))) != TROVE_OK)
        goto out;
    if (ctx->host->random_password(password, sizeof(password)) != TROVE_OK) {
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a password");
        goto out;
    }
    if ((rc = create_account(ctx, call, c, name, password)) != TROVE_OK)
        goto out;
    created = true;
    if ((rc = hba_add_account(ctx, call, c, name)) != TROVE_OK)
        goto out;
    /* The slot keeps the WAL the replica needs from before the backup on;
     * creating it fails if one of that name exists. */
    const char *p[] = {name};
    if ((rc = pg_conn_run(ctx, call, c, "SELECT pg_create_physical_replication_slot($1, true)", 1, p)) != TROVE_OK)
        goto out;
    slot_created = true;
    if ((rc = pg_basebackup_stream(ctx, call, req)) != TROVE_OK)
        goto out;
    if ((rc = ctx->host->put(call, "meta", "purpose", "replica-seed")) == TROVE_OK &&
        (rc = ctx->host->put(call, "meta", "slot_name", name)) == TROVE_OK &&
        (rc = ctx->host->put(call, "meta", "replication_user", name)) == TROVE_OK &&
        (rc = ctx->host->set_str(call, "user", name)) == TROVE_OK)
        rc = ctx->host->set_str(call, "password", password);
out:
    if (rc != TROVE_OK && created)
        drop_account(ctx, c, name, slot_created);
    explicit_bzero(password, sizeof(password));
    PQfinish(c);
    return rc;
}

/* ---- the handshake without a snapshot ----------------------------------- */

/* The account repl_credentials hands out, kept in a 0600 file of the state
 * directory ("<name>\n<password>\n") so every call hands out the same one. */
struct account {
    char name[40];
    char password[64];
};

static bool account_load(struct pg_ctx *ctx, struct account *a)
{
    char path[PG_PATH_MAX];
    char *text = tps_file_read(pg_state_path(ctx, "replication-account", path, sizeof(path)), 256, NULL);
    char *nl = text ? strchr(text, '\n') : NULL;
    bool ok = nl && (size_t)(nl - text) < sizeof(a->name) &&
              strncmp(text, ACCOUNT_PREFIX, strlen(ACCOUNT_PREFIX)) == 0;
    if (ok) {
        *nl = '\0';
        nl[1 + strcspn(nl + 1, "\n")] = '\0';
        ok = nl[1] && strlen(nl + 1) < sizeof(a->password);
        snprintf(a->name, sizeof(a->name), "%s", text);
        snprintf(a->password, sizeof(a->password), "%s", ok ? nl + 1 : "");
    }
    if (text)
        explicit_bzero(text, strlen(text));
    free(text);
    return ok;
}

static int account_save(struct pg_ctx *ctx, struct trove_call *call, const struct account *a)
{
    char path[PG_PATH_MAX];
    struct tps_buf text = {0};
    tps_buf_addf(&text, "%s\n%s\n", a->name, a->password);
    pg_state_path(ctx, "replication-account", path, sizeof(path));
    int e = tps_buf_str(&text) ? tps_file_write_atomic(path, text.data, text.len, 0600) : -ENOMEM;
    tps_buf_wipe(&text);
    return e == 0 ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
}

/* The stored account still works here: the role exists as this plugin made
 * it (a server rewound from another primary has that primary's roles). Its
 * password is set again, so a change behind the plugin's back is undone. */
static int account_refresh(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, const struct account *a,
                           bool *usable)
{
    const char *p[] = {a->name};
    int rc = pg_conn_query_bool(ctx, call, c, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 "
                                "AND rolreplication AND rolcanlogin AND NOT rolsuper)", 1, p, usable);
    if (rc != TROVE_OK || !*usable)
        return rc;
    struct tps_buf sql = {0};
    role_sql(&sql, "ALTER ROLE ", a->name, " WITH ");
    rc = pg_password_append(ctx, call, c, &sql, a->name, a->password);
    if (rc == TROVE_OK)
        rc = pg_conn_run(ctx, call, c, "BEGIN READ WRITE", 0, NULL);
    if (rc == TROVE_OK && (rc = pg_conn_run_buf(ctx, call, c, &sql)) == TROVE_OK)
        rc = pg_conn_run(ctx, call, c, "COMMIT", 0, NULL);
    else
        PQclear(PQexec(c, "ROLLBACK"));
    tps_buf_wipe(&sql);
    return rc == TROVE_OK ? hba_add_account(ctx, call, c, a->name) : rc;
}

/* A new account, stored before it is handed out. */
static int account_create(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, struct account *a)
{
    int rc = random_name(ctx, call, ACCOUNT_PREFIX, a->name, sizeof(a->name));
    if (rc == TROVE_OK && ctx->host->random_password(a->password, 33) != TROVE_OK)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot generate a password");
    if (rc != TROVE_OK || (rc = create_account(ctx, call, c, a->name, a->password)) != TROVE_OK)
        return rc;
    if ((rc = hba_add_account(ctx, call, c, a->name)) == TROVE_OK)
        rc = account_save(ctx, call, a);
    if (rc != TROVE_OK)
        drop_account(ctx, c, a->name, false);
    return rc;
}

static int credentials_locked(struct pg_ctx *ctx, struct trove_call *call, PGconn *c)
{
    struct account a;
    memset(&a, 0, sizeof(a));
    bool usable = false;
    int rc = TROVE_OK;
    if (account_load(ctx, &a))
        rc = account_refresh(ctx, call, c, &a, &usable);
    if (rc == TROVE_OK && !usable)
        rc = account_create(ctx, call, c, &a);
    if (rc == TROVE_OK && (rc = ctx->host->set_str(call, "user", a.name)) == TROVE_OK)
        rc = ctx->host->set_str(call, "password", a.password);
    explicit_bzero(&a, sizeof(a));
    return rc;
}

int pg_repl_credentials(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    char path[PG_PATH_MAX];
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool standby = false;
    int rc = pg_conn_query_bool(ctx, call, c, "SELECT pg_is_in_recovery()", 0, NULL, &standby);
    if (rc == TROVE_OK && standby)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this server is a standby: replication credentials come from "
                             "the primary it follows");
    int lock = rc == TROVE_OK ? tps_file_lock(pg_state_path(ctx, "replication.lock", path, sizeof(path)), true) : -1;
    if (rc == TROVE_OK && lock < 0)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-lock));
    if (rc == TROVE_OK)
        rc = credentials_locked(ctx, call, c);
    tps_file_unlock(lock);
    PQfinish(c);
    return rc;
}

/* ---- the standby side --------------------------------------------------- */

static int in_recovery(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, bool *standby)
{
    return pg_conn_query_bool(ctx, call, c, "SELECT pg_is_in_recovery()", 0, NULL, standby);
}

/* Wait for the WAL receiver to stream from the source. */
static int wait_streaming(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = TROVE_ETIMEOUT;
    for (uint64_t deadline = tps_now_ms() + 60000; tps_now_ms() < deadline && rc == TROVE_ETIMEOUT; tps_sleep_ms(100)) {
        bool streaming = false;
        int q = pg_conn_query_bool(ctx, call, c,
                                   "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                                   0, NULL, &streaming);
        if (q != TROVE_OK)
            rc = q;
        else if (streaming)
            rc = TROVE_OK;
        if (ctx->host->cancelled(call))
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for streaming");
    }
    if (rc == TROVE_ETIMEOUT)
        ctx->host->fail(call, TROVE_ETIMEOUT, "the standby did not start streaming from %s:%d within 60 s (see the "
                        "server log: credentials, pg_hba.conf or the slot)", src->host, src->port);
    PQfinish(c);
    return rc;
}

static int write_standby_signal(struct pg_ctx *ctx, struct trove_call *call)
{
    char path[PG_PATH_MAX];
    return pg_file_write(ctx, call, pg_data_path(ctx, "standby.signal", path, sizeof(path)), "");
}

static int check_source(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc == TROVE_OK && (!src || !src->host || !src->host[0] || src->port <= 0 || src->port > 65535 || !src->user ||
                           !src->user[0]))
        rc = ctx->host->fail(call, TROVE_EINVAL, "a source needs host, port and user");
    /* they go into a conninfo, a command line and a configuration file */
    if (rc == TROVE_OK && (tps_has_control(src->host) || tps_has_control(src->user) ||
                           (src->password && tps_has_control(src->password))))
        rc = ctx->host->fail(call, TROVE_EINVAL, "the source's host, user and password must not hold control "
                             "characters");
    return rc;
}

/* A slot on the source for this server: the one a snapshot made for these
 * credentials when it is free, else a new one created with the replication
 * account itself. Without a slot the standby still streams (best effort). */
static void slot_on_source(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src,
                           char *slot, size_t len)
{
    slot[0] = '\0';
    char name[40];
    if (random_name(ctx, call, "trove_standby_", name, sizeof(name)) != TROVE_OK)
        return;
    PGconn *c = pg_conn_open_at(ctx, call, src->host, src->port, src->user, src->password, ctx->s.database, 0);
    const char *mine[] = {src->user};
    PGresult *r = c ? PQexecParams(c, "SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1 "
                                      "AND slot_type = 'physical' AND NOT active", 1, NULL, mine, NULL, NULL, 0)
                    : NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(slot, len, "%s", src->user);
    } else if (c) {
        const char *p[] = {name};
        PQclear(r);
        r = PQexecParams(c, "SELECT pg_create_physical_replication_slot($1, true)", 1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            snprintf(slot, len, "%s", name);
        else
            ctx->host->log(TROVE_LOG_WARN, "postgres: no replication slot on %s: %s", src->host,
                           PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

/* Drop slots left on a former primary: nobody will consume them now. */
static void drop_local_slots(struct pg_ctx *ctx, struct trove_call *call)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (c)
        PQclear(PQexec(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE NOT active AND slot_type = 'physical'"));
    PQfinish(c);
}

/* pg_rewind against the source (no-op when nothing diverged). The server
 * must be stopped; pg_rewind recovers a crashed target itself. */
static int rewind_to(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    struct tps_buf opt = {0};
    struct pg_tool_env env;
    tps_buf_add(&opt, "--source-server=host=");   /* each value quoted by conninfo rules */
    tps_quote_conf(&opt, src->host, '\'');
    tps_buf_addf(&opt, " port=%d user=", (int)src->port);
    tps_quote_conf(&opt, src->user, '\'');
    tps_buf_add(&opt, " dbname=");
    tps_quote_conf(&opt, ctx->s.database, '\'');
    tps_buf_add(&opt, " sslmode=");
    tps_quote_conf(&opt, ctx->s.sslmode, '\'');
    /* Old WAL the rewind needs may be archived already: restore_command
     * (this instance's archive) fetches it for --restore-target-wal. */
    const char *argv[] = {"pg_rewind", "-D", ctx->s.datadir, "--restore-target-wal", tps_buf_str(&opt), NULL};
    ctx->host->progress(call, 30, "rewinding to follow %s:%d", src->host, (int)src->port);
    bool ready = pg_tool_env_init(ctx, &env, src->password) && tps_buf_str(&opt);
    int rc = ready ? pg_conf_write_recovery(ctx, call, ctx->s.wal_archive_dir)
                   : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = pg_tool_run(ctx, call, argv, env.list, NULL, 0);
    pg_tool_env_wipe(&env);
    tps_buf_free(&opt);
    return rc;
}

/* Stop, rewind, become a standby of src, start, stream. */
static int follow(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src,
                  const char *slot)
{
    char own_slot[40] = "";
    if (!slot) {
        slot_on_source(ctx, call, src, own_slot, sizeof(own_slot));
        slot = own_slot;
    }
    int rc = pg_server_stop(ctx, call);
    if (rc == TROVE_OK)
        rc = rewind_to(ctx, call, src);
    /* pg_rewind copied the source's configuration files: write ours again. */
    if (rc == TROVE_OK)
        rc = pg_conf_write_base(ctx, call);
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(ctx, call, NULL);
    if (rc == TROVE_OK)
        rc = pg_conf_write_replication(ctx, call, src, slot);
    if (rc == TROVE_OK)
        rc = write_standby_signal(ctx, call);
    if (rc == TROVE_OK)
        rc = pg_server_start(ctx, call, NULL);
    if (rc == TROVE_OK)
        drop_local_slots(ctx, call);
    return rc == TROVE_OK ? wait_streaming(ctx, call, src) : rc;
}

static int attach_locked(struct pg_ctx *ctx, struct trove_call *call, const struct trove_replication_source *src)
{
    const char *slot = tps_kv_get(src->meta, src->n_meta, "slot_name");
    bool standby = false;
    int rc;
    PGconn *c = pg_server_running(ctx) ? pg_conn_open(ctx, call, NULL) : NULL;
    if (c && (rc = in_recovery(ctx, call, c, &standby)) != TROVE_OK) {
        PQfinish(c);
        return rc;
    }
    if (!c || !standby) {
        /* Not a freshly restored snapshot: follow like a demoted primary. */
        PQfinish(c);
        return follow(ctx, call, src, slot);
    }
    rc = pg_conf_write_replication(ctx, call, src, slot ? slot : "");
    if (rc == TROVE_OK)
        rc = pg_config_reload(ctx, call, c);
    PQfinish(c);
    return rc == TROVE_OK ? wait_streaming(ctx, call, src) : rc;
}

int pg_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct pg_ctx *ctx = self;
    int rc = check_source(ctx, call, src);
    int lock = rc == TROVE_OK ? pg_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        rc = TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = attach_locked(ctx, call, src);
    tps_file_unlock(lock);
    return rc;
}

int pg_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct pg_ctx *ctx = self;
    int rc = check_source(ctx, call, src);
    int lock = rc == TROVE_OK ? pg_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        rc = TROVE_EINTERNAL;
    if (rc == TROVE_OK)
        rc = follow(ctx, call, src, NULL);
    tps_file_unlock(lock);
    return rc;
}

/* ---- promotion, read-only, positions ----------------------------------- */

static int set_read_only(struct pg_ctx *ctx, struct trove_call *call, PGconn *c, bool on)
{
    int rc = pg_conn_run(ctx, call, c,
                         on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                            : "ALTER SYSTEM RESET default_transaction_read_only",
                         0, NULL);
    return rc == TROVE_OK ? pg_config_reload(ctx, call, c) : rc;
}

/* Drop this standby's slot on its source (detach only; best effort). The
 * admin account is the same on both sides of a physical replica. */
static void drop_slot_on_source(struct pg_ctx *ctx, struct trove_call *call, const char *host, int port,
                                const char *slot)
{
    if (!host[0] || !slot[0])
        return;
    PGconn *c = pg_conn_open_at(ctx, call, host, port, ctx->s.user, ctx->s.password, ctx->s.database, 2);
    const char *p[] = {slot};
    for (int i = 0; c && i < 50; i++, tps_sleep_ms(100)) {
        PGresult *r = PQexecParams(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                      "WHERE slot_name = $1 AND NOT active", 1, NULL, p, NULL, NULL, 0);
        bool done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        if (done)
            break;
    }
    PQfinish(c);
}

static int promote(struct pg_ctx *ctx, struct trove_call *call, bool detach)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool standby = false;
    char host[256] = "", slot[64] = "";
    int port = 0;
    int rc = in_recovery(ctx, call, c, &standby);
    PGresult *r = standby ? PQexec(c, "SELECT coalesce(sender_host, ''), coalesce(sender_port, 0), "
                                      "coalesce(slot_name, '') FROM pg_stat_wal_receiver") : NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(host, sizeof(host), "%s", PQgetvalue(r, 0, 0));
        port = atoi(PQgetvalue(r, 0, 1));
        snprintf(slot, sizeof(slot), "%s", PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    bool promoted = false;
    if (rc == TROVE_OK && standby &&
        (rc = pg_conn_query_bool(ctx, call, c, "SELECT pg_promote(true, 120)", 0, NULL, &promoted)) == TROVE_OK &&
        !promoted)
        rc = ctx->host->fail(call, TROVE_ETIMEOUT, "promotion did not finish within 120 s");
    /* A checkpoint records the new timeline in pg_control, which pg_rewind
     * on the old primary reads. */
    if (rc == TROVE_OK && standby)
        rc = pg_conn_run(ctx, call, c, "CHECKPOINT", 0, NULL);
    if (rc == TROVE_OK && ctx->s.datadir[0])
        rc = pg_conf_write_replication(ctx, call, NULL, NULL);
    if (rc == TROVE_OK)
        rc = set_read_only(ctx, call, c, false);
    PQfinish(c);
    if (rc == TROVE_OK && detach && standby)
        drop_slot_on_source(ctx, call, host, port, slot);
    return rc;
}

int pg_repl_detach(void *self, struct trove_call *call)
{
    return promote(self, call, true);
}

int pg_repl_promote(void *self, struct trove_call *call)
{
    return promote(self, call, false);
}

int pg_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = set_read_only(ctx, call, c, read_only);
    PQfinish(c);
    return rc;
}

static const char POSITION_SQL[] =
    "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) "
    "ELSE pg_current_wal_lsn() END::text";

int pg_repl_position(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_conn_query(ctx, call, c, POSITION_SQL, 0, NULL);
    int rc = r ? ctx->host->set_str(call, "position", PQgetvalue(r, 0, 0)) : TROVE_EDATASTORE;
    PQclear(r);
    PQfinish(c);
    return rc;
}

int pg_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct pg_ctx *ctx = self;
    uint64_t target, now = 0;
    if (!pg_lsn_parse(position, &target))
        return ctx->host->fail(call, TROVE_EINVAL, "position \"%s\" is not an LSN (X/Y in hex)",
                               position ? position : "");
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = TROVE_ETIMEOUT;
    char current[32] = "?";
    for (uint64_t deadline = tps_now_ms() + timeout_ms; rc == TROVE_ETIMEOUT;) {
        PGresult *r = pg_conn_query(ctx, call, c, POSITION_SQL, 0, NULL);
        if (!r) {
            rc = TROVE_EDATASTORE;
            break;
        }
        snprintf(current, sizeof(current), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (pg_lsn_parse(current, &now) && now >= target)
            rc = TROVE_OK;
        else if (tps_now_ms() >= deadline)
            break;
        else if (ctx->host->cancelled(call))
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled");
        else
            tps_sleep_ms(20);
    }
    if (rc == TROVE_ETIMEOUT)
        ctx->host->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %s)", position, timeout_ms,
                        current);
    PQfinish(c);
    return rc;
}

int pg_repl_status(void *self, struct trove_call *call)
{
    struct pg_ctx *ctx = self;
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_conn_query(ctx, call, c,
        "SELECT pg_is_in_recovery(), (" "SELECT CASE WHEN pg_is_in_recovery() THEN "
        "  coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) ELSE pg_current_wal_lsn() END)::text, "
        " w.sender_host, w.sender_port, coalesce(w.status, 'stopped'), "
        " CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE '' END, "
        " CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "      ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::bigint, 0) END, "
        " (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots) "
        "FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true",
        0, NULL);
    if (!r) {
        PQfinish(c);
        return TROVE_EDATASTORE;
    }
    bool standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    long replicas = atol(PQgetvalue(r, 0, 7)), slots = atol(PQgetvalue(r, 0, 8));
    const char *role = standby ? "replica" : replicas + slots > 0 ? "primary" : "standalone";
    int rc = ctx->host->set_str(call, "role", role);
    if (rc == TROVE_OK)
        rc = ctx->host->set_str(call, "position", PQgetvalue(r, 0, 1));
    if (rc == TROVE_OK)
        rc = ctx->host->set_int(call, "lag_seconds", atol(PQgetvalue(r, 0, 6)));
    if (rc == TROVE_OK && standby) {
        rc = ctx->host->set_str(call, "source_host", PQgetvalue(r, 0, 2));
        if (rc == TROVE_OK)
            rc = ctx->host->set_int(call, "source_port", atol(PQgetvalue(r, 0, 3)));
        if (rc == TROVE_OK)
            rc = ctx->host->set_str(call, "io_state", PQgetvalue(r, 0, 4));
        if (rc == TROVE_OK)
            rc = ctx->host->set_str(call, "apply_state", strcmp(PQgetvalue(r, 0, 5), "not paused") == 0 ? "running"
                                                                                                   : PQgetvalue(r, 0, 5));
    }
    if (rc == TROVE_OK && !standby)
        rc = ctx->host->set_int(call, "replica_count", replicas);
    PQclear(r);
    PQfinish(c);
    return rc;
}
