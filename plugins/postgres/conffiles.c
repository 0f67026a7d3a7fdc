/*
 * conffiles.c - the configuration files the plugin owns in the data
 * directory: trove.conf (archiving, wal_log_hints), trove_replication.conf
 * (primary_conninfo, slot) and trove_recovery.conf (restore_command), all
 * included from postgresql.conf. Operators' overrides live in
 * postgresql.auto.conf (ALTER SYSTEM) and never touch these keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg.h"

static const char INCLUDE_MARK[] = "include_if_exists = 'trove.conf'";
static const char INCLUDES[] =
    "\n# Added by the trove agent: files it owns (edit through the agent, not by hand).\n"
    "include_if_exists = 'trove.conf'\n"
    "include_if_exists = 'trove_replication.conf'\n"
    "include_if_exists = 'trove_recovery.conf'\n";

char *pg_conf_quote(const char *value)
{
    size_t len = strlen(value);
    char *out = malloc(len * 4 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '\'';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '\'' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20 || *p == 0x7F) {
            o += sprintf(o, "\\%03o", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

char *pg_conninfo_quote(const char *value)
{
    size_t len = strlen(value);
    char *out = malloc(len * 2 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '\'';
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, got;
    char chunk[8192];
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *n = realloc(buf, cap);
            if (!n) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = n;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    return buf;
}

/* Make postgresql.conf include the plugin's files (once). */
static int ensure_includes(struct pg *pg, struct trove_call *call)
{
    char path[PG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/postgresql.conf", pg->datadir);
    char *text = read_text(path);
    if (!text)
        return pg->h->fail(call, TROVE_EINTERNAL, "cannot read %s: %s", path, strerror(errno));
    int rc = TROVE_OK;
    if (!strstr(text, INCLUDE_MARK)) {
        char *both = pg_sql("%s%s", text, INCLUDES);
        rc = both ? pg_write_file(pg, call, path, both) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
        free(both);
    }
    free(text);
    return rc;
}

/* Write `text` to datadir/name, or remove the file when text is NULL. */
static int write_owned(struct pg *pg, struct trove_call *call, const char *name, const char *text)
{
    char path[PG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", pg->datadir, name);
    if (text)
        return pg_write_file(pg, call, path, text);
    if (unlink(path) != 0 && errno != ENOENT)
        return pg->h->fail(call, TROVE_EINTERNAL, "unlink %s: %s", path, strerror(errno));
    return TROVE_OK;
}

int pg_conf_write_base(struct pg *pg, struct trove_call *call)
{
    int rc = pg_require_datadir(pg, call);
    if (rc == TROVE_OK)
        rc = pg_make_dir(pg, call, pg->wal_archive_dir, 0700);
    if (rc == TROVE_OK)
        rc = ensure_includes(pg, call);
    if (rc != TROVE_OK)
        return rc;
    /* Copy each finished WAL file once; an existing copy must be identical,
     * so a second cluster can never overwrite another's history. */
    char *command = pg_sql("f=\"%s/%%f\"; if [ -f \"$f\" ]; then cmp -s \"%%p\" \"$f\"; "
                           "else cp \"%%p\" \"$f.tmp\" && mv \"$f.tmp\" \"$f\"; fi",
                           pg->wal_archive_dir);
    char *quoted = command ? pg_conf_quote(command) : NULL;
    char *text = quoted ? pg_sql("# Owned by the trove agent; rewritten on prepare, backup and replication.\n"
                                 "wal_level = replica\n"
                                 "wal_log_hints = on\n"
                                 "archive_mode = on\n"
                                 "archive_command = %s\n",
                                 quoted)
                        : NULL;
    rc = text ? write_owned(pg, call, "trove.conf", text) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    free(text);
    free(quoted);
    free(command);
    return rc;
}

static char *conninfo(struct pg *pg, const struct trove_replication_source *src)
{
    char *host = pg_conninfo_quote(src->host ? src->host : "");
    char *user = pg_conninfo_quote(src->user ? src->user : "");
    char *password = src->password ? pg_conninfo_quote(src->password) : NULL;
    char *info = NULL;
    if (host && user && (password || !src->password))
        info = pg_sql("host=%s port=%d user=%s%s%s sslmode=%s application_name=trove_standby", host, src->port, user,
                      password ? " password=" : "", password ? password : "", pg->sslmode);
    if (password)
        explicit_bzero(password, strlen(password));
    free(host);
    free(user);
    free(password);
    return info;
}

int pg_conf_write_replication(struct pg *pg, struct trove_call *call, const struct trove_replication_source *src,
                              const char *slot)
{
    int rc = pg_require_datadir(pg, call);
    if (rc != TROVE_OK || !src)
        return rc == TROVE_OK ? write_owned(pg, call, "trove_replication.conf", NULL) : rc;
    char *info = conninfo(pg, src);
    char *info_q = info ? pg_conf_quote(info) : NULL;
    char *slot_q = pg_conf_quote(slot ? slot : "");
    char *text = info_q && slot_q ? pg_sql("# Owned by the trove agent: where this standby streams from.\n"
                                           "primary_conninfo = %s\nprimary_slot_name = %s\n",
                                           info_q, slot_q)
                                  : NULL;
    rc = text ? write_owned(pg, call, "trove_replication.conf", text)
              : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    if (info)
        explicit_bzero(info, strlen(info));
    if (info_q)
        explicit_bzero(info_q, strlen(info_q));
    if (text)
        explicit_bzero(text, strlen(text));
    free(info);
    free(info_q);
    free(slot_q);
    free(text);
    return rc;
}

int pg_conf_write_recovery(struct pg *pg, struct trove_call *call, const char *restore_wal_dir)
{
    int rc = pg_require_datadir(pg, call);
    if (rc != TROVE_OK || !restore_wal_dir)
        return rc == TROVE_OK ? write_owned(pg, call, "trove_recovery.conf", NULL) : rc;
    char *command = pg_sql("cp \"%s/%%f\" \"%%p\"", restore_wal_dir);
    char *quoted = command ? pg_conf_quote(command) : NULL;
    char *text = quoted ? pg_sql("# Owned by the trove agent: a restore in progress.\n"
                                 "restore_command = %s\nrecovery_target_timeline = 'current'\n",
                                 quoted)
                        : NULL;
    rc = text ? write_owned(pg, call, "trove_recovery.conf", text) : pg->h->fail(call, TROVE_EINTERNAL, "out of memory");
    free(text);
    free(quoted);
    free(command);
    return rc;
}

/* Whether the running server already has what trove.conf asks for. */
static int archiving_state(struct pg *pg, struct trove_call *call, bool *active, bool *current)
{
    PGconn *c = pg_connect(pg, call, NULL);
    if (!c)
        return TROVE_EUNAVAIL;
    PGresult *r = pg_query(pg, call, c,
                           "SELECT current_setting('archive_mode') <> 'off' AND current_setting('wal_log_hints') = 'on' "
                           "AND current_setting('wal_level') <> 'minimal', "
                           "current_setting('archive_command') LIKE '%' || $1 || '/%'",
                           1, (const char *const[]){pg->wal_archive_dir});
    int rc = r ? TROVE_OK : TROVE_EDATASTORE;
    if (r) {
        *active = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        *current = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    }
    PQclear(r);
    if (rc == TROVE_OK && *active && !*current)
        rc = pg_reload_and_wait(pg, call, c);
    PQfinish(c);
    return rc;
}

int pg_ensure_archiving(struct pg *pg, struct trove_call *call)
{
    if (!pg->datadir[0])
        return TROVE_OK;   /* not managed here: archiving is the operator's business */
    int rc = pg_conf_write_base(pg, call);
    if (rc != TROVE_OK)
        return rc;
    if (!pg_server_running(pg))
        return pg_server_start(pg, call, NULL);
    bool active = false, current = false;
    if ((rc = archiving_state(pg, call, &active, &current)) != TROVE_OK || active)
        return rc;
    pg->h->log(TROVE_LOG_INFO, "postgres: restarting to turn on WAL archiving and wal_log_hints");
    if ((rc = pg_server_stop(pg, call, "fast")) == TROVE_OK)
        rc = pg_server_start(pg, call, NULL);
    return rc;
}
