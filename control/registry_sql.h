/*
 * registry_sql.h - inside the registry: records described as column lists
 * (name, type, place in the C struct, role), and the generic create / get /
 * list / update / delete built from them, so each kind of record is a table
 * of columns rather than its own SQL. Column names come only from these
 * constant descriptions; values always travel as parameters.
 */
#ifndef TROVE_CONTROL_REGISTRY_SQL_H
#define TROVE_CONTROL_REGISTRY_SQL_H

#include <stddef.h>

#include "registry_backend.h"

enum col_type {
    COL_ID,      /* char[REGISTRY_ID_SIZE], required (non-empty) */
    COL_REF,     /* char[REGISTRY_ID_SIZE], optional: "" <-> SQL NULL */
    COL_WORD,    /* char[REGISTRY_WORD_SIZE] */
    COL_TEXT,    /* char *, NULL stores "" */
    COL_JSON,    /* char *, valid JSON, NULL stores "{}" */
    COL_INT,     /* int64_t */
    COL_BOOL,    /* bool, stored 0/1 */
};

enum col_flag {
    F_KEY = 1 << 0,       /* primary key: get/update/delete by it */
    F_GEN = 1 << 1,       /* COL_ID: a UUID is generated when empty */
    F_FIXED = 1 << 2,     /* written by create only */
    F_HELPER = 1 << 3,    /* never written by create/update (column default / helpers) */
    F_CREATED = 1 << 4,   /* set to now by create */
    F_UPDATED = 1 << 5,   /* set to now by create and update */
    F_TENANT = 1 << 6,    /* the tenant filter column */
    F_INSTANCE = 1 << 7,  /* the query's instance filter column */
    F_DATASTORE = 1 << 8, /* the query's datastore filter column */
    F_DELETED = 1 << 9,   /* soft-delete flag: hidden unless asked for */
};

struct column {
    const char *name;
    enum col_type type;
    size_t offset;
    unsigned flags;
    bool (*valid)(const char *word);   /* COL_WORD: allowed values (NULL: non-empty) */
    int64_t min, max;                  /* COL_INT: allowed range when min < max */
};

struct kind {
    const char *noun;                  /* "instance", in messages */
    const char *table;
    const struct column *cols;
    size_t ncols;
    size_t size;                       /* sizeof the record */
};

/* Listing filters beyond a registry_query. */
struct list_filter {
    const char *extra_col;             /* an equality filter on this column... */
    const char *extra_value;           /* ...against this value */
    const char *extra_where;           /* a constant condition ("state IN ('NEW', 'RUNNING')") */
};

int rec_create(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen);
/* Insert, or on a key collision update every non-fixed column. */
int rec_put(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen);
/* Read the row whose `col` equals value (col NULL: the key), within tenant. */
int rec_get(struct registry *r, const struct kind *k, const char *tenant, const char *col, const char *value,
            void *out, char *err, size_t errlen);
int rec_list(struct registry *r, const struct kind *k, const struct registry_query *q,
             const struct list_filter *f, void **items, size_t *n, bool *more, char *err, size_t errlen);
int rec_update(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen);
int rec_delete(struct registry *r, const struct kind *k, const char *tenant, const char *id, char *err,
               size_t errlen);
void rec_clear(const struct kind *k, void *rec);
void recs_free(const struct kind *k, void *items, size_t n);

/* Checks shared with the helpers. */
int check_id(const char *noun, const char *what, const char *id, bool required, char *err, size_t errlen);
int check_text(const char *noun, const char *what, const char *text, char *err, size_t errlen);
int check_json(const char *noun, const char *what, const char *text, char *err, size_t errlen);
/* An id as it may appear in a one-line message: printable, at most 64 bytes. */
const char *shown(const char *id, char buf[80]);

#endif
