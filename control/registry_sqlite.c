/*
 * registry_sqlite.c - the registry on a SQLite file: WAL journal, foreign
 * keys on, a busy timeout instead of instant "database is locked", and a
 * small cache of prepared statements (the same few run for every
 * heartbeat). It only runs statements; the schema and the records live in
 * the shared code.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry_backend.h"
#include "status.h"

#define SQLITE_BUSY_MS 5000
#define STMT_CACHE 32

struct sqlite_conn {
    sqlite3 *db;
    struct {
        char *sql;                /* translated text, the cache key */
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    unsigned next;                /* the slot replaced next (round robin) */
};

static int status_of(sqlite3 *db, int rc)
{
    switch (sqlite3_extended_errcode(db)) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return TROVE_EEXIST;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return TROVE_EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        return TROVE_EUNAVAIL;
    default:
        return TROVE_EINTERNAL;
    }
}

/* $N -> ?N (SQLite numbers ?N explicitly; $N would be a named parameter
 * numbered by first appearance). The shared SQL has no quoted '$'. */
static char *translate(const char *sql)
{
    char *out = strdup(sql);
    if (!out)
        return NULL;
    bool quoted = false;
    for (char *p = out; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        else if (*p == '$' && !quoted && p[1] >= '0' && p[1] <= '9')
            *p = '?';
    }
    return out;
}

static int bind_all(sqlite3_stmt *st, const struct registry_param *params, int n)
{
    for (int i = 0; i < n; i++) {
        int rc;
        if (params[i].type == REG_NULL)
            rc = sqlite3_bind_null(st, i + 1);
        else if (params[i].type == REG_INT)
            rc = sqlite3_bind_int64(st, i + 1, params[i].i);
        else
            rc = sqlite3_bind_text(st, i + 1, params[i].text, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Step through the rows, handing each to fn. */
static int step_rows(sqlite3_stmt *st, registry_row_fn fn, void *user, int *fn_status)
{
    int ncols = sqlite3_column_count(st);
    const char *names[64], *values[64];
    if (ncols > 64)
        return SQLITE_TOOBIG;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            return rc;
        if (!fn)
            continue;
        for (int i = 0; i < ncols; i++) {
            names[i] = sqlite3_column_name(st, i);
            values[i] = (const char *)sqlite3_column_text(st, i);   /* NULL for SQL NULL */
        }
        if ((*fn_status = fn(user, ncols, names, values)) != TROVE_OK)
            return SQLITE_ABORT;
    }
}

/* A ready statement for sql (translated), from the cache or freshly
 * prepared into it. NULL with the engine's code in *rc. */
static sqlite3_stmt *statement(struct sqlite_conn *c, const char *sql, int *rc)
{
    for (unsigned i = 0; i < STMT_CACHE; i++)
        if (c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0) {
            sqlite3_clear_bindings(c->cache[i].stmt);
            return c->cache[i].stmt;
        }
    char *text = translate(sql);
    sqlite3_stmt *st = NULL;
    if (!text) {
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    if ((*rc = sqlite3_prepare_v2(c->db, text, -1, &st, NULL)) != SQLITE_OK) {
        free(text);
        return NULL;
    }
    unsigned slot = c->next++ % STMT_CACHE;
    sqlite3_finalize(c->cache[slot].stmt);
    free(c->cache[slot].sql);
    c->cache[slot].sql = strdup(sql);
    c->cache[slot].stmt = c->cache[slot].sql ? st : NULL;
    if (!c->cache[slot].sql)
        sqlite3_finalize(st), st = NULL, *rc = SQLITE_NOMEM;
    free(text);
    return st;
}

static int sqlite_exec(struct registry *r, const char *sql, const struct registry_param *params, int nparams,
                       registry_row_fn fn, void *user, int64_t *changes, char *err, size_t errlen)
{
    struct sqlite_conn *c = r->conn;
    int status = TROVE_OK, fn_status = TROVE_OK, rc = SQLITE_OK;
    sqlite3_stmt *st = statement(c, sql, &rc);
    if (st)
        rc = bind_all(st, params, nparams);
    if (rc == SQLITE_OK)
        rc = step_rows(st, fn, user, &fn_status);
    if (fn_status != TROVE_OK) {
        status = fn_status;     /* the row function said why */
    } else if (rc != SQLITE_DONE) {
        status = status_of(c->db, rc);
        err_set(err, errlen, "%s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(c->db));
    } else if (changes) {
        *changes = sqlite3_changes(c->db);
    }
    /* A statement left mid-way would hold its read snapshot open. */
    if (st)
        sqlite3_reset(st);
    return status;
}

static void sqlite_close(struct registry *r)
{
    struct sqlite_conn *c = r->conn;
    for (unsigned i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    free(c);
    r->conn = NULL;
}

static const struct registry_ops sqlite_ops = {
    .name = "sqlite",
    .collate = "",               /* BINARY: bytewise */
    .begin_sql = "BEGIN IMMEDIATE",
    .snapshot_sql = NULL,
    .schema_lock_sql = NULL,
    .exec = sqlite_exec,
    .close = sqlite_close,
};

/* The file exists with mode 0600 before SQLite opens it (its -wal and -shm
 * files copy that mode). */
static int create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err_set(err, errlen, "cannot open registry file %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int wal_mode(void *user, int ncols, char **values, char **names)
{
    (void)names;
    *(bool *)user = ncols == 1 && values[0] && strcmp(values[0], "wal") == 0;
    return 0;
}

static int pragma(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    err_set(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

int registry_sqlite_connect(struct registry *r, const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (!*path) {
        err_set(err, errlen, "empty registry path");
        return -1;
    }
    if (create_private(path, err, errlen) != 0)
        return -1;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        err_set(err, errlen, "cannot open registry file %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
    /* WAL with synchronous=NORMAL: a crash of the process loses nothing
     * committed; only a power loss may lose the last commits. */
    bool wal = false;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", wal_mode, &wal, NULL) != SQLITE_OK || !wal) {
        err_set(err, errlen, "cannot put registry file %s in WAL mode: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (pragma(db, "PRAGMA synchronous=NORMAL", err, errlen) != 0 ||
        pragma(db, "PRAGMA foreign_keys=ON", err, errlen) != 0)
        goto fail;
    struct sqlite_conn *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    c->db = db;
    r->ops = &sqlite_ops;
    r->conn = c;
    return 0;
fail:
    sqlite3_close(db);
    return -1;
}
