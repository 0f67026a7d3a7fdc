/*
 * prepare.c - brings a fresh instance to a working state: initdb when the
 * data directory is empty (or a restore), the plugin's configuration files,
 * start, PUBLIC's CONNECT removed from the system databases, overrides, the
 * root password, then the initial databases and users. The server lock is
 * held throughout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg.h"

static bool initialised(struct pg_ctx *ctx)
{
    char path[PG_PATH_MAX];
    return access(pg_data_path(ctx, "PG_VERSION", path, sizeof(path)), F_OK) == 0;
}

/* initdb as os_user; the admin password reaches it in a 0600 file that is
 * removed afterwards (never on the command line). */
static int run_initdb(struct pg_ctx *ctx, struct trove_call *call)
{
    if (!ctx->s.password[0])
        return ctx->host->fail(call, TROVE_EINVAL, "the password setting is required to initialise a new cluster");
    char dir[PG_PATH_MAX], pwfile[PG_PATH_MAX + 16], pwopt[PG_PATH_MAX + 32], locale[80];
    int rc = pg_dir_make(ctx, call, ctx->s.datadir, 0700);
    if (rc != TROVE_OK || (rc = pg_work_dir(ctx, call, "initdb", dir, sizeof(dir))) != TROVE_OK)
        return rc;
    struct tps_buf text = {0};
    tps_buf_addf(&text, "%s\n", ctx->s.password);
    tps_path(pwfile, sizeof(pwfile), "%s/pw", dir);
    tps_path(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
    rc = tps_buf_str(&text) ? pg_file_write(ctx, call, pwfile, text.data)
                            : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK) {
        snprintf(locale, sizeof(locale), "--locale=%s", ctx->s.initdb_locale);
        const char *argv[] = {"initdb", "-D", ctx->s.datadir, "-U", ctx->s.user, "--auth-local=scram-sha-256",
                              "--auth-host=scram-sha-256", pwopt, "-E", ctx->s.initdb_encoding, locale, NULL};
        ctx->host->progress(call, -1, "initialising the cluster in %s", ctx->s.datadir);
        rc = pg_tool_run(ctx, call, argv, NULL, NULL, 0);
    }
    tps_buf_wipe(&text);
    tps_remove_tree(dir);
    return rc;
}

/* PUBLIC keeps no CONNECT on the maintenance and template databases, so a
 * user reaches only the databases it was granted. */
static int harden(struct pg_ctx *ctx, struct trove_call *call)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    struct tps_buf sql = {0};
    tps_buf_add(&sql, "REVOKE CONNECT, TEMPORARY ON DATABASE ");
    tps_quote_ident(&sql, ctx->s.database, '"');
    tps_buf_add(&sql, ", template1 FROM PUBLIC");
    int rc = pg_conn_run_buf(ctx, call, c, &sql);
    PQfinish(c);
    return rc;
}

static int pending_restart(struct pg_ctx *ctx, struct trove_call *call, bool *pending)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    int rc = pg_conn_query_bool(ctx, call, c, "SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings", 0,
                                NULL, pending);
    PQfinish(c);
    return rc;
}

static int apply_overrides(struct pg_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    if (req->n_overrides == 0)
        return TROVE_OK;
    bool pending = false;
    int rc = pg_config_set(ctx, call, req->overrides, req->n_overrides, false);
    if (rc == TROVE_OK)
        rc = pending_restart(ctx, call, &pending);
    if (rc == TROVE_OK && pending)
        rc = pg_server_restart(ctx, call);
    return rc;
}

/* Databases, then users; the arrays are indexed by their element size. */
static int create_objects(struct pg_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = TROVE_OK;
    if (req->n_databases || req->n_users)
        ctx->host->progress(call, 80, "creating databases and users");
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++)
        rc = pg_database_create(ctx, call, TROVE_AT(struct trove_database, req->databases, req->database_size, i));
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = pg_user_create(ctx, call, TROVE_AT(struct trove_user, req->users, req->user_size, i));
    return rc;
}

static int prepare_locked(struct pg_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    int rc = TROVE_OK;
    if (req->restore)
        rc = pg_restore_run(ctx, call, req->restore);
    else if (!initialised(ctx))
        rc = run_initdb(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting the server");
        rc = pg_archiving_ensure(ctx, call);
    }
    if (rc == TROVE_OK)
        rc = harden(ctx, call);
    if (rc == TROVE_OK)
        rc = apply_overrides(ctx, call, req);
    if (rc == TROVE_OK && req->root_password)
        rc = pg_root_set(ctx, call, req->root_password, false);
    return rc == TROVE_OK ? create_objects(ctx, call, req) : rc;
}

int pg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct pg_ctx *ctx = self;
    int rc = pg_datadir_require(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    int lock = pg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    rc = prepare_locked(ctx, call, req);
    tps_file_unlock(lock);
    return rc;
}
