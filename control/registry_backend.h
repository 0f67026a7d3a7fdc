/*
 * registry_backend.h - inside the registry: the ops table each database
 * engine implements (registry_sqlite.c, registry_pg.c), the shared handle,
 * and the helpers the record code and migrations build on. Only registry_*.c
 * include it. SQL is written once with $1..$n placeholders; values always
 * travel as bound parameters.
 */
#ifndef TROVE_CONTROL_REGISTRY_BACKEND_H
#define TROVE_CONTROL_REGISTRY_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* One bound parameter. Text is borrowed for the duration of the call. */
struct registry_param {
    enum { REG_NULL, REG_TEXT, REG_INT } type;
    const char *text;
    int64_t i;
};

/* Called once per result row: values[i] is the column's text (integers as
 * decimal) or NULL for SQL NULL. Non-zero stops the statement and becomes
 * its result (a trove_status); exec then leaves err alone, so the function
 * reports its own reason through `user`. */
typedef int (*registry_row_fn)(void *user, int ncols, const char *const *names, const char *const *values);

struct registry_ops {
    const char *name;             /* "sqlite" / "postgresql" */
    /* Appended to a text column in ORDER BY and comparisons so rows sort
     * bytewise on every engine. */
    const char *collate;
    const char *begin_sql;        /* starts a write transaction */
    /* Run right after begin_sql so every read of the transaction sees one
     * snapshot; NULL when the engine already does (SQLite). */
    const char *snapshot_sql;
    /* Run inside the migration transaction to keep two openers from
     * migrating at once; NULL when begin_sql already excludes them. */
    const char *schema_lock_sql;
    /* Run one statement. fn may be NULL; *changes (may be NULL) gets the
     * rows changed by INSERT/UPDATE/DELETE. Returns a trove_status with one
     * line in err on failure. */
    int (*exec)(struct registry *r, const char *sql, const struct registry_param *params, int nparams,
                registry_row_fn fn, void *user, int64_t *changes, char *err, size_t errlen);
    void (*close)(struct registry *r);
};

struct registry {
    const struct registry_ops *ops;
    void *conn;                   /* the engine's handle */
    bool user_tx;                 /* registry_begin() is open */
    int version;                  /* schema version after open */
    int64_t (*now_ms)(void *user);
    void *clock_user;
};

/* Backends: fill r->ops and r->conn, or return non-zero with err set. */
int registry_sqlite_connect(struct registry *r, const char *path, char *err, size_t errlen);
int registry_pg_connect(struct registry *r, const char *conninfo, char *err, size_t errlen);

/* registry_schema.c: create or migrate the schema; sets r->version. */
int registry_migrate(struct registry *r, char *err, size_t errlen);
/* The dump's tables in order: SELECT list and ORDER BY columns. */
struct registry_dump_table {
    const char *table;
    const char *columns;          /* "*" or a column list */
    const char *order[3];         /* key columns, NULL-terminated */
    bool order_text[3];           /* which of them are text */
};
extern const struct registry_dump_table registry_dump_tables[];
extern const size_t registry_dump_table_count;

/* registry_core.c */
int registry_exec(struct registry *r, const char *sql, const struct registry_param *params, int nparams,
                  registry_row_fn fn, void *user, int64_t *changes, char *err, size_t errlen);
int64_t registry_now(struct registry *r);
/* A random UUID v4 into out (37 bytes). 0 or -1. */
int registry_uuid(char out[37]);
/* Make one public call atomic. Inside registry_begin() this is a savepoint,
 * so a failed call leaves the caller's transaction usable on every engine
 * (PostgreSQL otherwise aborts it). Outside, `multi` calls (several
 * statements) get their own transaction and single statements run as they
 * are. end() commits when status is TROVE_OK, else rolls back, and returns
 * the status (a failed commit replaces TROVE_OK). */
struct registry_atomic {
    bool tx, savepoint;
};
int registry_atomic_begin(struct registry *r, struct registry_atomic *a, bool multi, char *err, size_t errlen);
int registry_atomic_end(struct registry *r, struct registry_atomic *a, int status, char *err, size_t errlen);

#endif
