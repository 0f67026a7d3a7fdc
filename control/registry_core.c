/*
 * registry_core.c - opening a registry (which engine a URL names), its
 * clock, transactions and savepoints, UUIDs, and the deterministic dump.
 * Records are registry_records.c's; the schema is registry_schema.c's.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "registry_backend.h"
#include "status.h"

#define SAVEPOINT "registry_call"

static int64_t wall_clock_ms(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A libpq keyword/value string starts with `word=` (spaces allowed before '='). */
static bool is_pg_keywords(const char *url)
{
    const char *p = url;
    while (*p == ' ')
        p++;
    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    while (*p == ' ')
        p++;
    return *p == '=';
}

static int connect_url(struct registry *r, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0 || is_pg_keywords(url))
        return registry_pg_connect(r, url, err, errlen);
    if (strncmp(url, "sqlite:", 7) == 0)
        url += 7;
    return registry_sqlite_connect(r, url, err, errlen);
}

struct registry *registry_open(const char *url, char *err, size_t errlen)
{
    if (!url) {
        err_set(err, errlen, "no registry URL");
        return NULL;
    }
    struct registry *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    r->now_ms = wall_clock_ms;
    if (connect_url(r, url, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    char why[256];
    if (registry_migrate(r, why, sizeof why) != TROVE_OK) {
        err_set(err, errlen, "%s registry: %s", r->ops->name, why);
        registry_close(r);
        return NULL;
    }
    return r;
}

void registry_close(struct registry *r)
{
    if (!r)
        return;
    if (r->user_tx)
        registry_rollback(r);
    r->ops->close(r);
    free(r);
}

const char *registry_backend(const struct registry *r)
{
    return r->ops->name;
}

int registry_schema_version(struct registry *r)
{
    return r->version;
}

void registry_set_clock(struct registry *r, int64_t (*now_ms)(void *user), void *user)
{
    r->now_ms = now_ms ? now_ms : wall_clock_ms;
    r->clock_user = now_ms ? user : NULL;
}

int64_t registry_now(struct registry *r)
{
    return r->now_ms(r->clock_user);
}

int registry_exec(struct registry *r, const char *sql, const struct registry_param *params, int nparams,
                  registry_row_fn fn, void *user, int64_t *changes, char *err, size_t errlen)
{
    return r->ops->exec(r, sql, params, nparams, fn, user, changes, err, errlen);
}

static int simple(struct registry *r, const char *sql, char *err, size_t errlen)
{
    return registry_exec(r, sql, NULL, 0, NULL, NULL, NULL, err, errlen);
}

int registry_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

/* ---- transactions ----------------------------------------------------- */

int registry_begin(struct registry *r, char *err, size_t errlen)
{
    if (r->user_tx) {
        err_set(err, errlen, "a registry transaction is already open");
        return TROVE_ECONFLICT;
    }
    int status = simple(r, r->ops->begin_sql, err, errlen);
    if (status == TROVE_OK)
        r->user_tx = true;
    return status;
}

int registry_commit(struct registry *r, char *err, size_t errlen)
{
    if (!r->user_tx) {
        err_set(err, errlen, "no registry transaction is open");
        return TROVE_ECONFLICT;
    }
    r->user_tx = false;
    int status = simple(r, "COMMIT", err, errlen);
    if (status != TROVE_OK)
        simple(r, "ROLLBACK", NULL, 0);
    return status;
}

void registry_rollback(struct registry *r)
{
    if (!r->user_tx)
        return;
    r->user_tx = false;
    simple(r, "ROLLBACK", NULL, 0);
}

int registry_atomic_begin(struct registry *r, struct registry_atomic *a, bool multi, char *err, size_t errlen)
{
    a->tx = a->savepoint = false;
    if (r->user_tx) {
        a->savepoint = true;
        return simple(r, "SAVEPOINT " SAVEPOINT, err, errlen);
    }
    if (!multi)
        return TROVE_OK;
    a->tx = true;
    return simple(r, r->ops->begin_sql, err, errlen);
}

int registry_atomic_end(struct registry *r, struct registry_atomic *a, int status, char *err, size_t errlen)
{
    if (a->savepoint) {
        if (status != TROVE_OK)
            simple(r, "ROLLBACK TO SAVEPOINT " SAVEPOINT, NULL, 0);
        int released = simple(r, "RELEASE SAVEPOINT " SAVEPOINT, status == TROVE_OK ? err : NULL, errlen);
        return status == TROVE_OK ? released : status;
    }
    if (!a->tx)
        return status;
    if (status != TROVE_OK) {
        simple(r, "ROLLBACK", NULL, 0);
        return status;
    }
    status = simple(r, "COMMIT", err, errlen);
    if (status != TROVE_OK)
        simple(r, "ROLLBACK", NULL, 0);
    return status;
}

/* ---- dump ------------------------------------------------------------- */

static void put_escaped(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\t': fputs("\\t", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

struct dump_ctx {
    FILE *out;
    const char *table;
};

static int dump_row(void *user, int ncols, const char *const *names, const char *const *values)
{
    struct dump_ctx *d = user;
    fputs(d->table, d->out);
    for (int i = 0; i < ncols; i++) {
        fprintf(d->out, "\t%s=", names[i]);
        if (values[i])
            put_escaped(d->out, values[i]);
        else
            fputs("NULL", d->out);
    }
    fputc('\n', d->out);
    return TROVE_OK;
}

static int dump_table(struct registry *r, const struct registry_dump_table *t, FILE *out, char *err,
                      size_t errlen)
{
    char sql[256];
    int len = snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY ", t->columns, t->table);
    for (int i = 0; t->order[i] && len < (int)sizeof sql; i++)
        len += snprintf(sql + len, sizeof sql - (size_t)len, "%s%s%s", i ? ", " : "", t->order[i],
                        t->order_text[i] ? r->ops->collate : "");
    if (len >= (int)sizeof sql) {
        err_set(err, errlen, "dump query for %s too long", t->table);
        return TROVE_EINTERNAL;
    }
    struct dump_ctx d = {out, t->table};
    return registry_exec(r, sql, NULL, 0, dump_row, &d, NULL, err, errlen);
}

int registry_dump(struct registry *r, FILE *out, char *err, size_t errlen)
{
    struct registry_atomic a;
    int status = registry_atomic_begin(r, &a, true, err, errlen);
    if (status == TROVE_OK && a.tx && r->ops->snapshot_sql)      /* every table from one snapshot */
        status = simple(r, r->ops->snapshot_sql, err, errlen);
    for (size_t i = 0; i < registry_dump_table_count && status == TROVE_OK; i++)
        status = dump_table(r, &registry_dump_tables[i], out, err, errlen);
    status = registry_atomic_end(r, &a, status, err, errlen);
    if (status == TROVE_OK && (fflush(out) != 0 || ferror(out))) {
        err_set(err, errlen, "cannot write the registry dump");
        status = TROVE_EINTERNAL;
    }
    return status;
}

int registry_dump_string(struct registry *r, char **text, char *err, size_t errlen)
{
    size_t size = 0;
    *text = NULL;
    FILE *out = open_memstream(text, &size);
    if (!out) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    int status = registry_dump(r, out, err, errlen);
    if (fclose(out) != 0 && status == TROVE_OK) {
        err_set(err, errlen, "out of memory");
        status = TROVE_EINTERNAL;
    }
    if (status != TROVE_OK) {
        free(*text);
        *text = NULL;
    }
    return status;
}
