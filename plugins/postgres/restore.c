/*
 * restore.c - replaces the server's data with a backup chain. Physical: the
 * base tar is extracted beside the data directory and swapped in, the
 * chain's WAL goes to a restore directory read by restore_command, and
 * archive recovery runs on a private socket until it reaches the end of the
 * WAL and promotes. A replica seed instead starts as a standby. Logical:
 * pg_dumpall's SQL is replayed with psql.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

static int check_chain(struct pg *pg, struct trove_call *call, const struct trove_restore_request *req)
{
    if (req->n_pieces == 0)
        return pg->h->fail(call, TROVE_EINVAL, "empty backup chain");
    const struct trove_restore_piece *p = req->pieces;
    if (p[0].kind == TROVE_BACKUP_LOGICAL)
        return req->n_pieces == 1 ? TROVE_OK : pg->h->fail(call, TROVE_EINVAL, "a logical backup has no increments");
    if (p[0].kind != TROVE_BACKUP_FULL)
        return pg->h->fail(call, TROVE_EINVAL, "a chain starts with a full backup");
    for (size_t i = 1; i < req->n_pieces; i++) {
        uint64_t prev_end, start;
        const char *a = pg_kv_get(p[i - 1].meta, p[i - 1].n_meta, "system_identifier");
        const char *b = pg_kv_get(p[i].meta, p[i].n_meta, "system_identifier");
        if (p[i].kind != TROVE_BACKUP_INCREMENTAL || !a || !b || strcmp(a, b) != 0 ||
            !pg_lsn_parse(pg_kv_get(p[i - 1].meta, p[i - 1].n_meta, "end_lsn"), &prev_end) ||
            !pg_lsn_parse(pg_kv_get(p[i].meta, p[i].n_meta, "start_lsn"), &start) || start > prev_end)
            return pg->h->fail(call, TROVE_EINVAL, "backup %s does not continue %s", p[i].id, p[i - 1].id);
    }
    return TROVE_OK;
}

static int extract(struct pg *pg, struct trove_call *call, struct trove_source *src, const char *dir)
{
    const char *argv[] = {"tar", "-xf", "-", "-C", dir, NULL};
    return pg_exec(pg, call, argv, NULL, src, NULL);
}

static int copy_file(struct pg *pg, struct trove_call *call, const char *from, const char *to)
{
    FILE *f = fopen(from, "r");
    if (!f)
        return pg->h->fail(call, TROVE_EINTERNAL, "open %s: %s", from, strerror(errno));
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    (void)n;
    int rc = buf ? pg_write_file(pg, call, to, buf) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    free(buf);
    return rc;
}

/* Timeline history files of this instance's archive, so the restored server
 * picks a timeline id no earlier history has used. */
static int copy_histories(struct pg *pg, struct trove_call *call, const char *dest)
{
    DIR *d = opendir(pg->wal_archive_dir);
    int rc = TROVE_OK;
    for (struct dirent *e; d && rc == TROVE_OK && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n != 16 || strcmp(e->d_name + 8, ".history") != 0)
            continue;
        char from[PG_PATH_MAX + 32], to[PG_PATH_MAX + 32];
        snprintf(from, sizeof(from), "%s/%s", pg->wal_archive_dir, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", dest, e->d_name);
        if (access(to, F_OK) != 0)
            rc = copy_file(pg, call, from, to);
    }
    if (d)
        closedir(d);
    return rc;
}

static int remove_in(struct pg *pg, struct trove_call *call, const char *dir, const char *name)
{
    char path[PG_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        return pg->h->fail(call, TROVE_EINTERNAL, "unlink %s: %s", path, strerror(errno));
    return TROVE_OK;
}

/* Unpack the base backup (and the chain's WAL) next to the data directory. */
static int unpack(struct pg *pg, struct trove_call *call, const struct trove_restore_request *req,
                  const char *staging, const char *waldir)
{
    int rc = pg_remove_tree(pg, call, staging);
    if (rc == TROVE_OK)
        rc = pg_remove_tree(pg, call, waldir);
    if (rc == TROVE_OK)
        rc = pg_make_dir(pg, call, staging, 0700);
    if (rc == TROVE_OK)
        rc = pg_make_dir(pg, call, waldir, 0700);
    pg->h->progress(call, 10, "extracting the base backup %s", req->pieces[0].id);
    if (rc == TROVE_OK)
        rc = extract(pg, call, req->pieces[0].source, staging);
    for (size_t i = 1; rc == TROVE_OK && i < req->n_pieces; i++) {
        pg->h->progress(call, 10 + (int)(40 * i / req->n_pieces), "extracting WAL of %s", req->pieces[i].id);
        rc = extract(pg, call, req->pieces[i].source, waldir);
    }
    if (rc == TROVE_OK)
        rc = copy_histories(pg, call, waldir);
    const char *stale[] = {"standby.signal", "recovery.signal", "trove_replication.conf", "trove_recovery.conf",
                           "postmaster.pid", "postmaster.opts"};
    for (size_t i = 0; rc == TROVE_OK && i < sizeof(stale) / sizeof(stale[0]); i++)
        rc = remove_in(pg, call, staging, stale[i]);
    return rc;
}

/* datadir -> old, staging -> datadir. */
static int swap_in(struct pg *pg, struct trove_call *call, const char *staging, const char *old)
{
    int rc = pg_remove_tree(pg, call, old);
    if (rc != TROVE_OK)
        return rc;
    if (rename(pg->datadir, old) != 0 && errno != ENOENT)
        return pg->h->fail(call, TROVE_EINTERNAL, "rename %s: %s", pg->datadir, strerror(errno));
    if (rename(staging, pg->datadir) != 0) {
        rc = pg->h->fail(call, TROVE_EINTERNAL, "rename %s: %s", staging, strerror(errno));
        rename(old, pg->datadir);
    }
    return rc;
}

static int wait_recovery_done(struct pg *pg, struct trove_call *call, PGconn *c)
{
    uint64_t deadline = pg_now_ms() + (uint64_t)pg->start_timeout * 30000;
    for (;;) {
        bool in_recovery = true;
        int rc = pg_query_bool(pg, call, c, "SELECT pg_is_in_recovery()", 0, NULL, &in_recovery);
        if (rc != TROVE_OK || !in_recovery)
            return rc;
        if (pg->h->cancelled(call))
            return pg->h->fail(call, TROVE_ECANCELLED, "cancelled during recovery");
        if (pg_now_ms() > deadline)
            return pg->h->fail(call, TROVE_ETIMEOUT, "recovery did not finish in time");
        pg_sleep_ms(100);
    }
}

/* The restored cluster keeps the source's admin password: set ours. */
static int reset_admin_password(struct pg *pg, struct trove_call *call, PGconn *c)
{
    if (!pg->password[0])
        return TROVE_OK;
    char *role = pg_ident(pg, call, c, pg->user);
    char *pw = role ? pg_password_clause(pg, call, c, pg->user, pg->password) : NULL;
    char *sql = pw ? pg_sql("ALTER ROLE %s WITH %s", role, pw) : NULL;
    int rc = sql ? pg_run(pg, call, c, sql, 0, NULL) : TROVE_EDATASTORE;
    free(sql);
    free(pw);
    PQfreemem(role);
    return rc;
}

/* Archive recovery with no client but us: no TCP, a private socket and a
 * private hba file that trusts local connections. */
static int recover(struct pg *pg, struct trove_call *call, const char *waldir)
{
    char priv[] = "/tmp/trove-restore-XXXXXX", hba[64], opts[256];
    if (!mkdtemp(priv))
        return pg->h->fail(call, TROVE_EINTERNAL, "mkdtemp: %s", strerror(errno));
    snprintf(hba, sizeof(hba), "%s/hba.conf", priv);
    snprintf(opts, sizeof(opts), "-c listen_addresses= -k %s -c hba_file=%s", priv, hba);
    char signal[PG_PATH_MAX];
    snprintf(signal, sizeof(signal), "%s/recovery.signal", pg->datadir);
    PGconn *c = NULL;
    int rc = pg_chown(pg, call, priv);
    if (rc == TROVE_OK)
        rc = pg_write_file(pg, call, hba, "local all all trust\n");
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(pg, call, waldir);
    if (rc == TROVE_OK)
        rc = pg_write_file(pg, call, signal, "");
    pg->h->progress(call, 60, "replaying WAL");
    if (rc == TROVE_OK)
        rc = pg_server_start(pg, call, opts);
    if (rc == TROVE_OK && !(c = pg_connect_to(pg, call, priv, pg->port, pg->user, NULL, pg->database, 0)))
        rc = TROVE_EUNAVAIL;
    if (rc == TROVE_OK)
        rc = wait_recovery_done(pg, call, c);
    if (rc == TROVE_OK)
        rc = reset_admin_password(pg, call, c);
    PQfinish(c);
    int stop = pg_server_stop(pg, call, "fast");
    if (rc == TROVE_OK)
        rc = stop;
    if (rc == TROVE_OK)
        rc = pg_conf_write_recovery(pg, call, NULL);
    unlink(hba);
    rmdir(priv);
    return rc;
}

static int physical(struct pg *pg, struct trove_call *call, const struct trove_restore_request *req)
{
    char staging[PG_PATH_MAX], waldir[PG_PATH_MAX], old[PG_PATH_MAX], signal[PG_PATH_MAX];
    snprintf(staging, sizeof(staging), "%s.restoring", pg->datadir);
    snprintf(waldir, sizeof(waldir), "%s.restore-wal", pg->datadir);
    snprintf(old, sizeof(old), "%s.old", pg->datadir);
    snprintf(signal, sizeof(signal), "%s/standby.signal", pg->datadir);
    const char *purpose = pg_kv_get(req->pieces[0].meta, req->pieces[0].n_meta, "purpose");
    bool seed = req->n_pieces == 1 && purpose && strcmp(purpose, "replica-seed") == 0;
    int rc = pg_server_stop(pg, call, "fast");
    if (rc == TROVE_OK)
        rc = unpack(pg, call, req, staging, waldir);
    if (rc == TROVE_OK)
        rc = swap_in(pg, call, staging, old);
    if (rc != TROVE_OK) {
        pg_remove_tree(pg, call, staging);
        pg_remove_tree(pg, call, waldir);
        return rc;
    }
    rc = pg_conf_write_base(pg, call);
    if (rc == TROVE_OK && seed)
        rc = pg_write_file(pg, call, signal, "");   /* a standby, waiting for repl_attach */
    else if (rc == TROVE_OK)
        rc = recover(pg, call, waldir);
    pg->h->progress(call, 90, "starting the server");
    if (rc == TROVE_OK)
        rc = pg_server_start(pg, call, NULL);
    if (rc == TROVE_OK) {
        pg_remove_tree(pg, call, waldir);
        pg_remove_tree(pg, call, old);
    } else {
        pg->h->log(TROVE_LOG_ERROR, "postgres: restore failed; the previous data directory is kept in %s", old);
    }
    return rc;
}

/* Logical: drop what the dump recreates, replay it, keep our password. */
static int pre_clean(struct pg *pg, struct trove_call *call, PGconn *c)
{
    PGresult *r = pg_query(pg, call, c,
        "SELECT 'DROP DATABASE ' || quote_ident(datname) || ' WITH (FORCE)' FROM pg_database "
        "WHERE NOT datistemplate AND datname <> current_database() "
        "UNION ALL SELECT format('REASSIGN OWNED BY %1$I TO CURRENT_USER; DROP OWNED BY %1$I; DROP ROLE %1$I', rolname) "
        "FROM pg_roles WHERE rolname !~ '^pg_' AND oid <> 10 AND rolname <> current_user",
        0, NULL);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    for (int i = 0; r && rc == TROVE_OK && i < PQntuples(r); i++) {
        PGresult *x = PQexec(c, PQgetvalue(r, i, 0));
        if (PQresultStatus(x) != PGRES_COMMAND_OK)
            rc = pg->h->fail(call, TROVE_EDATASTORE, "PostgreSQL: %s", PQresultErrorField(x, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(x);
    }
    PQclear(r);
    return rc;
}

/* Copy the dump to `path`, turning "CREATE ROLE x;" for roles that exist
 * here (the admin, the bootstrap superuser) into comments: pg_dumpall
 * emits them for every role, and they would stop the replay. The admin's
 * own ALTER ROLE goes too, or its password would change under us. */
static int spool(struct pg *pg, struct trove_call *call, struct trove_source *src, const char *path, PGresult *skip)
{
    const char *admin_alter = PQgetvalue(skip, 0, 1);
    FILE *out = fopen(path, "w");
    char *buf = malloc(1 << 16), *line = NULL;
    size_t line_len = 0, line_cap = 0, got = 0;
    int rc = out && buf ? TROVE_OK : pg->h->fail(call, TROVE_EINTERNAL, "cannot spool the dump to %s", path);
    while (rc == TROVE_OK && (rc = pg->h->source_read(src, buf, 1 << 16, &got)) == TROVE_OK && got > 0) {
        for (size_t i = 0; i < got && rc == TROVE_OK; i++) {
            if (line_len + 2 > line_cap) {
                char *n = realloc(line, line_cap = line_cap * 2 + 256);
                if (!n) {
                    rc = pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
                    break;
                }
                line = n;
            }
            line[line_len++] = buf[i];
            if (buf[i] != '\n')
                continue;
            line[line_len - 1] = '\0';
            bool drop = false;
            for (int k = 0; !drop && k < PQntuples(skip); k++)
                drop = strcmp(line, PQgetvalue(skip, k, 0)) == 0;
            drop = drop || strncmp(line, admin_alter, strlen(admin_alter)) == 0;
            fprintf(out, "%s%s\n", drop ? "-- exists here: " : "", line);
            line_len = 0;
        }
    }
    if (rc == TROVE_OK && line_len)
        fwrite(line, 1, line_len, out);
    if (out && fclose(out) != 0 && rc == TROVE_OK)
        rc = pg->h->fail(call, TROVE_EINTERNAL, "write %s failed", path);
    free(line);
    free(buf);
    return rc == TROVE_OK ? pg_chown(pg, call, path) : rc;
}

static int replay(struct pg *pg, struct trove_call *call, const char *path)
{
    struct pg_env env;
    struct pg_conn_args ca;
    pg_env_init(pg, &env, pg->password);
    pg_conn_args_init(pg, &ca);
    char prog[PG_PATH_MAX + 16];
    snprintf(prog, sizeof(prog), "%s/psql", pg->bindir);
    const char *argv[] = {prog, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg->database, "-f", path,
                          ca.argv[0], ca.argv[1], ca.argv[2], ca.argv[3], ca.argv[4], ca.argv[5], ca.argv[6], NULL};
    pg->h->progress(call, 40, "replaying the SQL dump");
    int rc = pg_exec(pg, call, argv, env.list, NULL, NULL);
    pg_env_clear(&env);
    return rc;
}

static int logical(struct pg *pg, struct trove_call *call, const struct trove_restore_request *req)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    char dir[] = "/tmp/trove-dump-XXXXXX", path[64];
    PGresult *skip = NULL;
    int rc = pre_clean(pg, call, c);
    if (rc == TROVE_OK && !(skip = pg_query(pg, call, c,
                                            "SELECT 'CREATE ROLE ' || quote_ident(rolname) || ';', "
                                            "'ALTER ROLE ' || quote_ident(current_user) || ' WITH ' FROM pg_roles",
                                            0,
                                            NULL)))
        rc = TROVE_EDATASTORE;
    if (rc == TROVE_OK && !mkdtemp(dir))
        rc = pg->h->fail(call, TROVE_EINTERNAL, "mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/dump.sql", dir);
    pg->h->progress(call, 20, "receiving the SQL dump");
    if (rc == TROVE_OK && (rc = pg_chown(pg, call, dir)) == TROVE_OK)
        rc = spool(pg, call, req->pieces[0].source, path, skip);
    if (rc == TROVE_OK)
        rc = replay(pg, call, path);
    /* This session stays authenticated even if the dump changed our password. */
    if (rc == TROVE_OK)
        rc = reset_admin_password(pg, call, c);
    unlink(path);
    rmdir(dir);
    PQclear(skip);
    PQfinish(c);
    return rc;
}

int pg_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct pg *pg = self;
    int rc = check_chain(pg, call, req);
    if (rc != TROVE_OK)
        return rc;
    if (req->pieces[0].kind == TROVE_BACKUP_LOGICAL)
        return logical(pg, call, req);
    if ((rc = pg_require_datadir(pg, call)) != TROVE_OK)
        return rc;
    return physical(pg, call, req);
}
