/*
 * prepare.c - brings a fresh instance to a working state: initdb when the
 * data directory is empty (or a restore), the plugin's configuration files,
 * start, PUBLIC's CONNECT removed from the system databases, overrides, the
 * root password, then the initial databases and users.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg.h"

static bool initialised(struct pg *pg)
{
    char path[PG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/PG_VERSION", pg->datadir);
    return access(path, F_OK) == 0;
}

/* initdb as os_user; the admin password reaches it in a 0600 file that is
 * removed afterwards (never on the command line). */
static int run_initdb(struct pg *pg, struct trove_call *call)
{
    if (!pg->password[0])
        return pg->h->fail(call, TROVE_EINVAL, "the password setting is required to initialise a new cluster");
    char dir[] = "/tmp/trove-initdb-XXXXXX", pwfile[64], pwopt[80];
    int rc = pg_make_dir(pg, call, pg->datadir, 0700);
    if (rc != TROVE_OK)
        return rc;
    if (!mkdtemp(dir))
        return pg->h->fail(call, TROVE_EINTERNAL, "mkdtemp: %s", strerror(errno));
    snprintf(pwfile, sizeof(pwfile), "%s/pw", dir);
    snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
    char *text = pg_sql("%s\n", pg->password);
    if ((rc = pg_chown(pg, call, dir)) == TROVE_OK)
        rc = text ? pg_write_file(pg, call, pwfile, text) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK) {
        char locale[80];
        snprintf(locale, sizeof(locale), "--locale=%s", pg->initdb_locale);
        const char *argv[] = {"initdb", "-D", pg->datadir, "-U", pg->user, "--auth-local=scram-sha-256",
                              "--auth-host=scram-sha-256", pwopt, "-E", pg->initdb_encoding, locale, NULL};
        pg->h->progress(call, -1, "initialising the cluster in %s", pg->datadir);
        rc = pg_tool(pg, call, argv, NULL, NULL, 0);
    }
    if (text)
        explicit_bzero(text, strlen(text));
    free(text);
    unlink(pwfile);
    rmdir(dir);
    return rc;
}

/* PUBLIC keeps no CONNECT on the maintenance and template databases, so a
 * user reaches only the databases it was granted. */
static int harden(struct pg *pg, struct trove_call *call)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    char *maint = pg_ident(pg, call, c, pg->database);
    char *sql = maint ? pg_sql("REVOKE CONNECT, TEMPORARY ON DATABASE %s, template1 FROM PUBLIC", maint)
                      : NULL;
    int rc = sql ? pg_run(pg, call, c, sql, 0, NULL) : TROVE_EINVAL;
    free(sql);
    PQfreemem(maint);
    PQfinish(c);
    return rc;
}

static int pending_restart(struct pg *pg, struct trove_call *call, bool *pending)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = pg_query_bool(pg, call, c, "SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings", 0, NULL,
                           pending);
    PQfinish(c);
    return rc;
}

static int apply_overrides(struct pg *pg, struct trove_call *call, const struct trove_prepare_request *req)
{
    if (req->n_overrides == 0)
        return TROVE_OK;
    bool pending = false;
    int rc = pg_config_set(pg, call, req->overrides, req->n_overrides, false);
    if (rc == TROVE_OK)
        rc = pending_restart(pg, call, &pending);
    if (rc == TROVE_OK && pending)
        rc = pg_restart(pg, call);
    return rc;
}

int pg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct pg *pg = self;
    int rc = pg_require_datadir(pg, call);
    if (rc != TROVE_OK)
        return rc;
    if (req->restore)
        rc = pg_backup_restore(pg, call, req->restore);
    else if (!initialised(pg))
        rc = run_initdb(pg, call);
    if (rc == TROVE_OK)
        rc = pg_ensure_archiving(pg, call);
    if (rc == TROVE_OK)
        rc = harden(pg, call);
    if (rc == TROVE_OK)
        rc = apply_overrides(pg, call, req);
    if (rc == TROVE_OK && req->root_password)
        rc = pg_root_set(pg, call, req->root_password, false);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = pg_database_create(pg, call, &req->databases[i]);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = pg_user_create(pg, call, &req->users[i]);
    return rc;
}
