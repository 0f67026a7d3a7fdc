/*
 * conffiles.c - the configuration files the plugin owns in the data
 * directory: trove.conf (archiving, wal_log_hints), trove_replication.conf
 * (primary_conninfo, slot) and trove_recovery.conf (restore_command), all
 * included from postgresql.conf and written atomically for os_user.
 * Operators' overrides live in postgresql.auto.conf (ALTER SYSTEM) and never
 * touch these keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg.h"

#define CONF_MAX (1 << 20)

static const char INCLUDE_MARK[] = "include_if_exists = 'trove.conf'";
static const char INCLUDES[] =
    "\n# Added by the trove agent: files it owns (edit through the agent, not by hand).\n"
    "include_if_exists = 'trove.conf'\n"
    "include_if_exists = 'trove_replication.conf'\n"
    "include_if_exists = 'trove_recovery.conf'\n";

/* Make postgresql.conf include the plugin's files (once). */
static int ensure_includes(struct pg_ctx *ctx, struct trove_call *call)
{
    char path[PG_PATH_MAX];
    char *text = pg_file_read(ctx, call, pg_data_path(ctx, "postgresql.conf", path, sizeof(path)), CONF_MAX);
    if (!text)
        return TROVE_EINTERNAL;
    int rc = TROVE_OK;
    if (!strstr(text, INCLUDE_MARK)) {
        struct tps_buf both = {0};
        tps_buf_add(&both, text);
        tps_buf_add(&both, INCLUDES);
        rc = tps_buf_str(&both) ? pg_file_write(ctx, call, path, both.data)
                                : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        tps_buf_free(&both);
    }
    free(text);
    return rc;
}

/* Write `text` (a built buffer, wiped and freed here: it may hold a
 * password) to datadir/name; remove the file when text is NULL. */
static int write_owned(struct pg_ctx *ctx, struct trove_call *call, const char *name, struct tps_buf *text)
{
    char path[PG_PATH_MAX];
    pg_data_path(ctx, name, path, sizeof(path));
    int rc = TROVE_OK;
    if (!text) {
        if (unlink(path) != 0 && errno != ENOENT)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "unlink %s: %s", path, strerror(errno));
        return rc;
    }
    rc = tps_buf_str(text) ? pg_file_write(ctx, call, path, text->data)
                           : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(text);
    return rc;
}

/* `key = '<value>'` on a line of its own, quoted by postgresql.conf's
 * rules (backslash escapes the quote and itself). Values with line breaks
 * or other control characters never get here (checked by the callers). */
static void conf_line(struct tps_buf *b, const char *key, const char *value)
{
    tps_buf_addf(b, "%s = ", key);
    tps_quote_conf(b, value, '\'');
    tps_buf_add(b, "\n");
}

int pg_conf_write_base(struct pg_ctx *ctx, struct trove_call *call)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc == TROVE_OK)
        rc = pg_dir_make(ctx, call, ctx->s.wal_archive_dir, 0700);
    if (rc == TROVE_OK)
        rc = ensure_includes(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    /* Copy each finished WAL file once; an existing copy must be identical,
     * so a second cluster can never overwrite another's history. The
     * archive's path is checked at open() (no quotes, spaces or shell syntax). */
    struct tps_buf command = {0}, text = {0};
    tps_buf_addf(&command, "f=\"%s/%%f\"; if [ -f \"$f\" ]; then cmp -s \"%%p\" \"$f\"; "
                           "else cp \"%%p\" \"$f.tmp\" && mv \"$f.tmp\" \"$f\"; fi",
                 ctx->s.wal_archive_dir);
    tps_buf_add(&text, "# Owned by the trove agent; rewritten on prepare, backup and replication.\n"
                       "wal_level = replica\n"
                       "wal_log_hints = on\n"
                       "archive_mode = on\n");
    conf_line(&text, "archive_command", tps_buf_str(&command) ? command.data : "");
    if (command.oom)
        text.oom = true;
    tps_buf_free(&command);
    return write_owned(ctx, call, "trove.conf", &text);
}

/* primary_conninfo's value: each value quoted by conninfo rules. */
static void conninfo(struct pg_ctx *ctx, struct tps_buf *b, const struct trove_replication_source *src)
{
    tps_buf_add(b, "host=");
    tps_quote_conf(b, src->host, '\'');
    tps_buf_addf(b, " port=%d user=", (int)src->port);
    tps_quote_conf(b, src->user, '\'');
    if (src->password) {
        tps_buf_add(b, " password=");
        tps_quote_conf(b, src->password, '\'');
    }
    tps_buf_add(b, " sslmode=");
    tps_quote_conf(b, ctx->s.sslmode, '\'');
    tps_buf_add(b, " application_name=trove_standby");
}

int pg_conf_write_replication(struct pg_ctx *ctx, struct trove_call *call,
                              const struct trove_replication_source *src, const char *slot)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc != TROVE_OK || !src)
        return rc == TROVE_OK ? write_owned(ctx, call, "trove_replication.conf", NULL) : rc;
    if (tps_has_control(src->host) || tps_has_control(src->user) || (src->password && tps_has_control(src->password)) ||
        tps_has_control(slot ? slot : ""))
        return ctx->host->fail(call, TROVE_EINVAL, "the source's host, user and password must not hold control "
                               "characters");
    struct tps_buf info = {0}, text = {0};
    conninfo(ctx, &info, src);
    tps_buf_add(&text, "# Owned by the trove agent: where this standby streams from.\n");
    conf_line(&text, "primary_conninfo", tps_buf_str(&info) ? info.data : "");
    conf_line(&text, "primary_slot_name", slot ? slot : "");
    if (info.oom)
        text.oom = true;
    tps_buf_wipe(&info);
    return write_owned(ctx, call, "trove_replication.conf", &text);
}

int pg_conf_write_recovery(struct pg_ctx *ctx, struct trove_call *call, const char *restore_wal_dir)
{
    int rc = pg_datadir_require(ctx, call);
    if (rc != TROVE_OK || !restore_wal_dir)
        return rc == TROVE_OK ? write_owned(ctx, call, "trove_recovery.conf", NULL) : rc;
    struct tps_buf command = {0}, text = {0};
    tps_buf_addf(&command, "cp \"%s/%%f\" \"%%p\"", restore_wal_dir);   /* a path checked at open() or made here */
    tps_buf_add(&text, "# Owned by the trove agent: a restore in progress.\n");
    conf_line(&text, "restore_command", tps_buf_str(&command) ? command.data : "");
    tps_buf_add(&text, "recovery_target_timeline = 'current'\n");
    if (command.oom)
        text.oom = true;
    tps_buf_free(&command);
    return write_owned(ctx, call, "trove_recovery.conf", &text);
}

/* Whether the running server already has what trove.conf asks for. */
static int archiving_state(struct pg_ctx *ctx, struct trove_call *call, bool *active, bool *current)
{
    PGconn *c = pg_conn_open(ctx, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    const char *p[] = {ctx->s.wal_archive_dir};
    PGresult *r = pg_conn_query(ctx, call, c,
                                "SELECT current_setting('archive_mode') <> 'off' "
                                "AND current_setting('wal_log_hints') = 'on' "
                                "AND current_setting('wal_level') <> 'minimal', "
                                "current_setting('archive_command') LIKE '%' || $1 || '/%'",
                                1, p);
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    if (r) {
        *active = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        *current = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    }
    PQclear(r);
    if (rc == TROVE_OK && *active && !*current)
        rc = pg_config_reload(ctx, call, c);
    PQfinish(c);
    return rc;
}

int pg_archiving_ensure(struct pg_ctx *ctx, struct trove_call *call)
{
    if (!ctx->s.datadir[0])
        return TROVE_OK;   /* not managed here: archiving is the operator's business */
    int rc = pg_conf_write_base(ctx, call);
    if (rc != TROVE_OK)
        return rc;
    if (!pg_server_running(ctx))
        return pg_server_start(ctx, call, NULL);
    bool active = false, current = false;
    if ((rc = archiving_state(ctx, call, &active, &current)) != TROVE_OK || active)
        return rc;
    ctx->host->log(TROVE_LOG_INFO, "postgres: restarting to turn on WAL archiving and wal_log_hints");
    return pg_server_restart(ctx, call);
}
