/*
 * replication.c - streaming replication. A snapshot is a base backup plus a
 * replication account (REPLICATION LOGIN, never superuser, its rights
 * granted to it alone) with its own pg_hba.conf lines and a physical slot;
 * a standby follows through trove_replication.conf + standby.signal; an old
 * primary follows a new one after pg_rewind. Positions are LSNs.
 */
#include <ctype.h>
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
static int random_name(struct pg *pg, struct trove_call *call, const char *prefix, char *out, size_t len)
{
    char suffix[13];
    if (pg->h->random_password(suffix, sizeof(suffix)) != TROVE_OK)
        return pg->h->fail(call, TROVE_EINTERNAL, "cannot generate a name");
    for (char *p = suffix; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(out, len, "%s%s", prefix, suffix);
    return TROVE_OK;
}

/* The account with everything it may do, in one transaction: LOGIN
 * REPLICATION, CONNECT on the maintenance database and EXECUTE on the
 * functions pg_rewind reads through, all granted to this role by its own
 * name (never through a group whose name someone could hold). A role of
 * that name that already exists makes CREATE ROLE fail: nothing is reused. */
static int create_account(struct pg *pg, struct trove_call *call, PGconn *c, const char *name, const char *password)
{
    char *role_q = pg_ident(pg, call, c, name);
    char *db_q = role_q ? pg_ident(pg, call, c, pg->database) : NULL;
    char *pw = db_q ? pg_password_clause(pg, call, c, name, password) : NULL;
    char *create = pw ? pg_sql("CREATE ROLE %s WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE %s",
                               role_q, pw) : NULL;
    char *connect = create ? pg_sql("GRANT CONNECT ON DATABASE %s TO %s", db_q, role_q) : NULL;
    char *execute = connect ? pg_sql("GRANT EXECUTE ON FUNCTION %s TO %s", REWIND_FUNCTIONS, role_q) : NULL;
    int rc = !pw        ? TROVE_EDATASTORE   /* quoting or hashing failed and said why */
             : !execute ? pg->h->fail(call, TROVE_EINTERNAL, "out of memory")
                        : pg_run(pg, call, c, "BEGIN", 0, NULL);
    if (rc == TROVE_OK && (rc = pg_run(pg, call, c, create, 0, NULL)) != TROVE_OK &&
        strcmp(pg_last_sqlstate(), "42710") == 0)
        rc = pg->h->fail(call, TROVE_ECONFLICT, "role \"%s\" already exists; a replication account is never reused",
                         name);
    if (rc == TROVE_OK)
        rc = pg_run(pg, call, c, connect, 0, NULL);
    if (rc == TROVE_OK)
        rc = pg_run(pg, call, c, execute, 0, NULL);
    if (rc == TROVE_OK)
        rc = pg_run(pg, call, c, "COMMIT", 0, NULL);
    else if (execute)
        PQclear(PQexec(c, "ROLLBACK"));   /* also after a failed BEGIN: harmless */
    if (create)
        explicit_bzero(create, strlen(create));
    free(execute);
    free(connect);
    free(create);
    free(pw);
    PQfreemem(db_q);
    PQfreemem(role_q);
    return rc;
}

/* A pg_hba.conf token that names exactly `text` (keywords like "all" lose
 * their meaning in quotes); NULL when the text cannot be written there. */
static char *hba_quote(const char *text)
{
    char *out = malloc(strlen(text) * 2 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            free(out);
            return NULL;
        }
        if (*p == '"')
            *o++ = '"';
        *o++ = (char)*p;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* pg_hba.conf's path and text (malloc'd, or NULL: unreadable or too big).
 * No fail(): the cleanup after a failed snapshot uses it too. */
static char *hba_read(PGconn *c, char *path, size_t len)
{
    PGresult *r = PQexec(c, "SELECT current_setting('hba_file')");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    snprintf(path, len, "%s", ok ? PQgetvalue(r, 0, 0) : "pg_hba.conf");
    PQclear(r);
    FILE *f = ok ? fopen(path, "r") : NULL;
    char *text = f ? calloc(1, HBA_FILE_MAX) : NULL;
    size_t n = text ? fread(text, 1, HBA_FILE_MAX - 1, f) : 0;
    if (text && !feof(f)) {
        free(text);
        text = NULL;
    }
    if (f)
        fclose(f);
    if (text)
        text[n] = '\0';
    return text;
}

/* Two lines first in pg_hba.conf for this account alone (streaming, and
 * the maintenance database pg_rewind reads through), password only. */
static int hba_add_account(struct pg *pg, struct trove_call *call, PGconn *c, const char *name)
{
    char path[PG_PATH_MAX];
    char *text = hba_read(c, path, sizeof(path));
    char *db = hba_quote(pg->database);
    char *both = text && db ? pg_sql("# trove replication account %s: streaming and pg_rewind, password only.\n"
                                     "host replication \"%s\" all scram-sha-256\n"
                                     "host %s \"%s\" all scram-sha-256\n%s",
                                     name, name, db, name, text)
                            : NULL;
    int rc;
    if (!text)
        rc = pg->h->fail(call, TROVE_EINTERNAL, "cannot read %s (or it is larger than %d bytes)", path,
                         HBA_FILE_MAX - 1);
    else if (!db)
        rc = pg->h->fail(call, TROVE_EINVAL, "the database setting cannot be written to pg_hba.conf");
    else
        rc = both ? pg_write_file(pg, call, path, both) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = pg_reload_and_wait(pg, call, c);
    free(both);
    free(db);
    free(text);
    return rc;
}

/* Remove every pg_hba.conf line that names the account (the name is
 * generated and unique), then reload. Best effort, for cleanup: logs. */
static void hba_remove_account(struct pg *pg, PGconn *c, const char *name)
{
    char path[PG_PATH_MAX];
    char *text = hba_read(c, path, sizeof(path));
    char *kept = text ? calloc(1, strlen(text) + 1) : NULL, *k = kept;
    bool changed = false;
    for (char *line = text, *next; kept && *line; line = next) {
        next = line + strcspn(line, "\n");
        next += *next == '\n';
        char *hit = strstr(line, name);
        if (hit && hit < next) {
            changed = true;
            continue;
        }
        memcpy(k, line, (size_t)(next - line));
        k += next - line;
    }
    if (!kept)
        pg->h->log(TROVE_LOG_WARN, "postgres: cannot read %s to remove the lines of %s", path, name);
    else if (changed && pg_store_file(pg, path, kept) != 0)
        pg->h->log(TROVE_LOG_WARN, "postgres: cannot remove the lines of %s from %s", name, path);
    else if (changed)
        PQclear(PQexec(c, "SELECT pg_reload_conf()"));
    free(kept);
    free(text);
}

/* Undo a failed snapshot: its slot (only if this snapshot made it) would
 * otherwise keep WAL forever, and its role and pg_hba.conf lines go too.
 * The name is generated ([a-z0-9_]) and passed as a parameter where it can
 * be. */
static void drop_account(struct pg *pg, PGconn *c, const char *name, bool slot_created)
{
    const char *p[] = {name};
    if (slot_created)
        PQclear(PQexecParams(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE slot_name = $1", 1, NULL, p, NULL, NULL, 0));
    char *drop = pg_sql("DROP OWNED BY \"%s\"; DROP ROLE IF EXISTS \"%s\"", name, name);
    if (drop)
        PQclear(PQexec(c, drop));
    free(drop);
    hba_remove_account(pg, c, name);
}

int pg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct pg *pg = self;
    char name[40], password[33];
    int rc = pg_ensure_archiving(pg, call);   /* wal_log_hints for a later pg_rewind */
    if (rc != TROVE_OK)
        return rc;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool created = false, slot_created = false;
    if ((rc = random_name(pg, call, ACCOUNT_PREFIX, name, sizeof(name))) != TROVE_OK)
        goto out;
    if (pg->h->random_password(password, sizeof(password)) != TROVE_OK) {
        rc = pg->h->fail(call, TROVE_EINTERNAL, "cannot generate a password");
        goto out;
    }
    if ((rc = create_account(pg, call, c, name, password)) != TROVE_OK)
        goto out;
    created = true;
    if ((rc = hba_add_account(pg, call, c, name)) != TROVE_OK)
        goto out;
    /* The slot keeps the WAL the replica needs from before the backup on;
     * creating it fails if one of that name exists. */
    const char *p[] = {name};
    if ((rc = pg_run(pg, call, c, "SELECT pg_create_physical_replication_slot($1, true)", 1, p)) != TROVE_OK)
        goto out;
    slot_created = true;
    if ((rc = pg_base_backup(pg, call, req)) != TROVE_OK)
        goto out;
    if ((rc = pg->h->put(call, "meta", "purpose", "replica-seed")) == TROVE_OK &&
        (rc = pg->h->put(call, "meta", "slot_name", name)) == TROVE_OK &&
        (rc = pg->h->put(call, "meta", "replication_user", name)) == TROVE_OK &&
        (rc = pg->h->set_str(call, "user", name)) == TROVE_OK)
        rc = pg->h->set_str(call, "password", password);
out:
    if (rc != TROVE_OK && created)
        drop_account(pg, c, name, slot_created);
    explicit_bzero(password, sizeof(password));
    PQfinish(c);
    return rc;
}

/* ---- the standby side --------------------------------------------------- */

static int in_recovery(struct pg *pg, struct trove_call *call, PGconn *c, bool *standby)
{
    return pg_query_bool(pg, call, c, "SELECT pg_is_in_recovery()", 0, NULL, standby);
}

/* Wait for the WAL receiver to stream from the source. */
static int wait_streaming(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = TROVE_ETIMEOUT;
    for (uint64_t deadline = pg_now_ms() + 60000; pg_now_ms() < deadline && rc == TROVE_ETIMEOUT; pg_sleep_ms(100)) {
        bool streaming = false;
        int q = pg_query_bool(pg, call, c, "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                              0, NULL, &streaming);
        if (q != TROVE_OK)
            rc = q;
        else if (streaming)
            rc = TROVE_OK;
        if (pg->h->cancelled(call))
            rc = pg->h->fail(call, TROVE_ECANCELLED, "cancelled while waiting for streaming");
    }
    if (rc == TROVE_ETIMEOUT)
        pg->h->fail(call, TROVE_ETIMEOUT, "the standby did not start streaming from %s:%d within 60 s (see the "
                    "server log: credentials, pg_hba.conf or the slot)", src->host, src->port);
    PQfinish(c);
    return rc;
}

static int write_standby_signal(struct pg *pg, struct trove_call *call)
{
    char path[PG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/standby.signal", pg->datadir);
    return pg_write_file(pg, call, path, "");
}

static int check_source(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src)
{
    int rc = pg_require_datadir(pg, call);
    if (rc == TROVE_OK && (!src || !src->host || !src->host[0] || src->port <= 0 || src->port > 65535 || !src->user ||
                           !src->user[0]))
        rc = pg->h->fail(call, TROVE_EINVAL, "a source needs host, port and user");
    return rc;
}

/* A slot on the source for this server: the one a snapshot made for these
 * credentials when it is free, else a new one created with the replication
 * account itself. Without a slot the standby still streams (best effort). */
static void slot_on_source(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src,
                           char *slot, size_t len)
{
    slot[0] = '\0';
    char name[40];
    if (random_name(pg, call, "trove_standby_", name, sizeof(name)) != TROVE_OK)
        return;
    PGconn *c = pg_connect_to(pg, call, src->host, src->port, src->user, src->password, pg->database, 0);
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
            pg->h->log(TROVE_LOG_WARN, "postgres: no replication slot on %s: %s", src->host, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

/* Drop slots left on a former primary: nobody will consume them now. */
static void drop_local_slots(struct pg *pg, struct trove_call *call)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (c)
        PQclear(PQexec(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE NOT active AND slot_type = 'physical'"));
    PQfinish(c);
}

/* pg_rewind against the source (no-op when nothing diverged). The server
 * must be stopped; pg_rewind recovers a crashed target itself. */
static int rewind_to(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src)
{
    char *host = pg_conninfo_quote(src->host), *user = pg_conninfo_quote(src->user);
    char *db = pg_conninfo_quote(pg->database);
    char *info = host && user && db ? pg_sql("host=%s port=%d user=%s dbname=%s sslmode=%s", host, src->port, user,
                                             db, pg->sslmode)
                                    : NULL;
    char *opt = info ? pg_sql("--source-server=%s", info) : NULL;
    struct pg_env env;
    pg_env_init(pg, &env, src->password);
    /* Old WAL the rewind needs may be archived already: restore_command
     * (this instance's archive) fetches it for --restore-target-wal. */
    const char *argv[] = {"pg_rewind", "-D", pg->datadir, "--restore-target-wal", opt, NULL};
    pg->h->progress(call, 30, "rewinding to follow %s:%d", src->host, src->port);
    int rc = opt ? pg_conf_write_recovery(pg, call, pg->wal_archive_dir)
                 : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = pg_tool(pg, call, argv, env.list, NULL, 0);
    pg_env_clear(&env);
    free(host);
    free(user);
    free(db);
    free(info);
    free(opt);
    return rc;
}

/* Stop, rewind, become a standby of src, start, stream. */
static int follow(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src, const char *slot)
{
    char own_slot[40] = "";
    if (!slot) {
        slot_on_source(pg, call, src, own_slot, sizeof(own_slot));
        slot = own_slot;
    }
    int rc = pg_server_stop(pg, call, "fast");
    if (rc == TROVE_OK)
        rc = rewind_to(pg, call, src);
    /* pg_rewind copied the source's configuration files: write ours again. */
    if (rc == TROVE_OK)
        rc = pg_conf_write_base(pg, call);
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(pg, call, NULL);
    if (rc == TROVE_OK)
        rc = pg_conf_write_replication(pg, call, src, slot);
    if (rc == TROVE_OK)
        rc = write_standby_signal(pg, call);
    if (rc == TROVE_OK)
        rc = pg_server_start(pg, call, NULL);
    if (rc == TROVE_OK)
        drop_local_slots(pg, call);
    return rc == TROVE_OK ? wait_streaming(pg, call, src) : rc;
}

int pg_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct pg *pg = self;
    int rc = check_source(pg, call, src);
    if (rc != TROVE_OK)
        return rc;
    const char *slot = pg_kv_get(src->meta, src->n_meta, "slot_name");
    bool standby = false;
    PGconn *c = pg_server_running(pg) ? pg_connect(pg, call, NULL) : NULL;
    if (c && (rc = in_recovery(pg, call, c, &standby)) != TROVE_OK) {
        PQfinish(c);
        return rc;
    }
    if (!c || !standby) {
        /* Not a freshly restored snapshot: follow like a demoted primary. */
        PQfinish(c);
        return follow(pg, call, src, slot);
    }
    rc = pg_conf_write_replication(pg, call, src, slot ? slot : "");
    if (rc == TROVE_OK)
        rc = pg_reload_and_wait(pg, call, c);
    PQfinish(c);
    return rc == TROVE_OK ? wait_streaming(pg, call, src) : rc;
}

int pg_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct pg *pg = self;
    int rc = check_source(pg, call, src);
    return rc == TROVE_OK ? follow(pg, call, src, NULL) : rc;
}

/* ---- promotion, read-only, positions ----------------------------------- */

static int set_read_only(struct pg *pg, struct trove_call *call, PGconn *c, bool on)
{
    int rc = pg_run(pg, call, c,
                    on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                       : "ALTER SYSTEM RESET default_transaction_read_only",
                    0, NULL);
    return rc == TROVE_OK ? pg_reload_and_wait(pg, call, c) : rc;
}

/* Drop this standby's slot on its source (detach only; best effort). The
 * admin account is the same on both sides of a physical replica. */
static void drop_slot_on_source(struct pg *pg, struct trove_call *call, const char *host, int port, const char *slot)
{
    if (!host[0] || !slot[0])
        return;
    PGconn *c = pg_connect_to(pg, call, host, port, pg->user, pg->password, pg->database, 2);
    const char *p[] = {slot};
    for (int i = 0; c && i < 50; i++, pg_sleep_ms(100)) {
        PGresult *r = PQexecParams(c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                      "WHERE slot_name = $1 AND NOT active", 1, NULL, p, NULL, NULL, 0);
        bool done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        if (done)
            break;
    }
    PQfinish(c);
}

static int promote(struct pg *pg, struct trove_call *call, bool detach)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    bool standby = false;
    char host[256] = "", slot[64] = "";
    int port = 0;
    int rc = in_recovery(pg, call, c, &standby);
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
        (rc = pg_query_bool(pg, call, c, "SELECT pg_promote(true, 120)", 0, NULL, &promoted)) == TROVE_OK && !promoted)
        rc = pg->h->fail(call, TROVE_ETIMEOUT, "promotion did not finish within 120 s");
    /* A checkpoint records the new timeline in pg_control, which pg_rewind
     * on the old primary reads. */
    if (rc == TROVE_OK && standby)
        rc = pg_run(pg, call, c, "CHECKPOINT", 0, NULL);
    if (rc == TROVE_OK && pg->datadir[0])
        rc = pg_conf_write_replication(pg, call, NULL, NULL);
    if (rc == TROVE_OK)
        rc = set_read_only(pg, call, c, false);
    PQfinish(c);
    if (rc == TROVE_OK && detach && standby)
        drop_slot_on_source(pg, call, host, port, slot);
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
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = set_read_only(pg, call, c, read_only);
    PQfinish(c);
    return rc;
}

static const char POSITION_SQL[] =
    "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) "
    "ELSE pg_current_wal_lsn() END::text";

int pg_repl_position(void *self, struct trove_call *call)
{
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_query(pg, call, c, POSITION_SQL, 0, NULL);
    int rc = r ? pg->h->set_str(call, "position", PQgetvalue(r, 0, 0)) : TROVE_EDATASTORE;
    PQclear(r);
    PQfinish(c);
    return rc;
}

int pg_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct pg *pg = self;
    uint64_t target, now = 0;
    if (!pg_lsn_parse(position, &target))
        return pg->h->fail(call, TROVE_EINVAL, "position \"%s\" is not an LSN (X/Y in hex)", position ? position : "");
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = TROVE_ETIMEOUT;
    char current[32] = "?";
    for (uint64_t deadline = pg_now_ms() + timeout_ms; rc == TROVE_ETIMEOUT;) {
        PGresult *r = pg_query(pg, call, c, POSITION_SQL, 0, NULL);
        if (!r) {
            rc = TROVE_EDATASTORE;
            break;
        }
        snprintf(current, sizeof(current), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (pg_lsn_parse(current, &now) && now >= target)
            rc = TROVE_OK;
        else if (pg_now_ms() >= deadline)
            break;
        else if (pg->h->cancelled(call))
            rc = pg->h->fail(call, TROVE_ECANCELLED, "cancelled");
        else
            pg_sleep_ms(20);
    }
    if (rc == TROVE_ETIMEOUT)
        pg->h->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %s)", position, timeout_ms, current);
    PQfinish(c);
    return rc;
}

int pg_repl_status(void *self, struct trove_call *call)
{
    struct pg *pg = self;
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_query(pg, call, c,
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
    int rc = pg->h->set_str(call, "role", role);
    if (rc == TROVE_OK)
        rc = pg->h->set_str(call, "position", PQgetvalue(r, 0, 1));
    if (rc == TROVE_OK)
        rc = pg->h->set_int(call, "lag_seconds", atol(PQgetvalue(r, 0, 6)));
    if (rc == TROVE_OK && standby) {
        rc = pg->h->set_str(call, "source_host", PQgetvalue(r, 0, 2));
        if (rc == TROVE_OK)
            rc = pg->h->set_int(call, "source_port", atol(PQgetvalue(r, 0, 3)));
        if (rc == TROVE_OK)
            rc = pg->h->set_str(call, "io_state", PQgetvalue(r, 0, 4));
        if (rc == TROVE_OK)
            rc = pg->h->set_str(call, "apply_state", strcmp(PQgetvalue(r, 0, 5), "not paused") == 0 ? "running"
                                                                                                   : PQgetvalue(r, 0, 5));
    }
    if (rc == TROVE_OK && !standby)
        rc = pg->h->set_int(call, "replica_count", replicas);
    PQclear(r);
    PQfinish(c);
    return rc;
}
