/*
 * registry_sql.c - generic record operations built from column lists:
 * validation of every field before anything is written, statements
 * assembled from constant column names with every value bound, rows parsed
 * back into records, and Trove's (created_at, id) marker paging.
 */
#include "registry_sql.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "value.h"

#define SQL_MAX 4096
#define SQL_PARAMS 48

struct sql {
    char text[SQL_MAX];
    size_t len;
    bool overflow;
    struct registry_param p[SQL_PARAMS];
    int n;
};

static void sql_add(struct sql *s, const char *fmt, ...) TROVE_PRINTF(2, 3);
static void sql_add(struct sql *s, const char *fmt, ...)
{
    if (s->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->text + s->len, SQL_MAX - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= SQL_MAX - s->len)
        s->overflow = true;
    else
        s->len += (size_t)n;
}

/* Append "$k" bound to p. */
static void sql_param(struct sql *s, struct registry_param p)
{
    if (s->n >= SQL_PARAMS) {
        s->overflow = true;
        return;
    }
    s->p[s->n++] = p;
    sql_add(s, "$%d", s->n);
}

static void sql_text(struct sql *s, const char *text)
{
    sql_param(s, (struct registry_param){text ? REG_TEXT : REG_NULL, text, 0});
}

static void sql_int(struct sql *s, int64_t i)
{
    sql_param(s, (struct registry_param){REG_INT, NULL, i});
}

static int sql_run(struct registry *r, struct sql *s, registry_row_fn fn, void *user, int64_t *changes, char *err,
                   size_t errlen)
{
    if (s->overflow) {
        err_set(err, errlen, "registry statement too long");
        return TROVE_EINTERNAL;
    }
    return registry_exec(r, s->text, s->p, s->n, fn, user, changes, err, errlen);
}

/* ---- checks ----------------------------------------------------------- */

const char *shown(const char *id, char buf[80])
{
    size_t i = 0;
    if (!id)
        return "(none)";
    for (; id[i] && i < 64; i++)
        buf[i] = (id[i] >= 0x20 && id[i] != 0x7f) ? id[i] : '?';
    if (id[i])
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

int check_text(const char *noun, const char *what, const char *text, char *err, size_t errlen)
{
    if (text && !tv_utf8_valid(text, strlen(text))) {
        err_set(err, errlen, "%s %s is not valid UTF-8", noun, what);
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

int check_id(const char *noun, const char *what, const char *id, bool required, char *err, size_t errlen)
{
    if (required && (!id || !*id)) {
        err_set(err, errlen, "%s %s is required", noun, what);
        return TROVE_EINVAL;
    }
    if (id && strlen(id) > REGISTRY_ID_MAX) {
        err_set(err, errlen, "%s %s is longer than %d bytes", noun, what, REGISTRY_ID_MAX);
        return TROVE_EINVAL;
    }
    return check_text(noun, what, id, err, errlen);
}

int check_json(const char *noun, const char *what, const char *text, char *err, size_t errlen)
{
    if (!text)
        return TROVE_OK;
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        err_set(err, errlen, "%s %s is not valid JSON: %s", noun, what, jerr.text);
        return TROVE_EINVAL;
    }
    json_decref(j);
    return TROVE_OK;
}

/* A fixed-size field must hold its NUL. */
static int check_fixed(const struct kind *k, const struct column *c, const char *field, size_t size, char *err,
                       size_t errlen)
{
    if (!memchr(field, '\0', size)) {
        err_set(err, errlen, "%s %s is not terminated", k->noun, c->name);
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

static int check_column(const struct kind *k, const struct column *c, const void *rec, char *err, size_t errlen)
{
    const char *field = (const char *)rec + c->offset;
    int status;
    switch (c->type) {
    case COL_ID:
    case COL_REF:
        if ((status = check_fixed(k, c, field, REGISTRY_ID_SIZE, err, errlen)) != TROVE_OK)
            return status;
        return check_id(k->noun, c->name, field, c->type == COL_ID && !(c->flags & F_GEN), err, errlen);
    case COL_WORD:
        if ((status = check_fixed(k, c, field, REGISTRY_WORD_SIZE, err, errlen)) != TROVE_OK)
            return status;
        if (c->valid ? !c->valid(field) : !*field) {
            char buf[80];
            err_set(err, errlen, "%s %s '%s' is not allowed", k->noun, c->name, shown(field, buf));
            return TROVE_EINVAL;
        }
        return TROVE_OK;
    case COL_TEXT:
        return check_text(k->noun, c->name, *(char *const *)field, err, errlen);
    case COL_JSON:
        if ((status = check_text(k->noun, c->name, *(char *const *)field, err, errlen)) != TROVE_OK)
            return status;
        return check_json(k->noun, c->name, *(char *const *)field, err, errlen);
    case COL_INT: {
        int64_t v = *(const int64_t *)field;
        if (c->min < c->max && (v < c->min || v > c->max)) {
            err_set(err, errlen, "%s %s must be between %lld and %lld", k->noun, c->name, (long long)c->min,
                    (long long)c->max);
            return TROVE_EINVAL;
        }
        return TROVE_OK;
    }
    case COL_BOOL:
        return TROVE_OK;
    }
    return TROVE_EINTERNAL;
}

/* Check every column `create` (or `update`) would write. */
static int check_record(const struct kind *k, const void *rec, bool creating, char *err, size_t errlen)
{
    for (size_t i = 0; i < k->ncols; i++) {
        const struct column *c = &k->cols[i];
        if (c->flags & (F_HELPER | F_CREATED | F_UPDATED))
            continue;
        if (!creating && (c->flags & F_FIXED))
            continue;
        int status = check_column(k, c, rec, err, errlen);
        if (status != TROVE_OK)
            return status;
    }
    return TROVE_OK;
}

/* ---- record <-> parameters and rows ------------------------------------ */

static void sql_value(struct sql *s, const struct column *c, const void *rec)
{
    const char *field = (const char *)rec + c->offset;
    switch (c->type) {
    case COL_ID:
    case COL_WORD:
        sql_text(s, field);
        break;
    case COL_REF:
        sql_text(s, *field ? field : NULL);
        break;
    case COL_TEXT:
    case COL_JSON: {
        const char *text = *(char *const *)field;
        sql_text(s, text ? text : c->type == COL_JSON ? "{}" : "");
        break;
    }
    case COL_INT:
        sql_int(s, *(const int64_t *)field);
        break;
    case COL_BOOL:
        sql_int(s, *(const bool *)field ? 1 : 0);
        break;
    }
}

static int parse_column(const struct kind *k, const struct column *c, const char *value, void *rec)
{
    char *field = (char *)rec + c->offset;
    size_t size = c->type == COL_WORD ? REGISTRY_WORD_SIZE : REGISTRY_ID_SIZE;
    switch (c->type) {
    case COL_ID:
    case COL_REF:
    case COL_WORD:
        if (!value)
            value = "";
        if (strlen(value) >= size)
            return TROVE_EINTERNAL;
        memcpy(field, value, strlen(value) + 1);
        return TROVE_OK;
    case COL_TEXT:
    case COL_JSON:
        free(*(char **)field);
        *(char **)field = strdup(value ? value : "");
        return *(char **)field ? TROVE_OK : TROVE_EINTERNAL;
    case COL_INT:
        *(int64_t *)field = value ? strtoll(value, NULL, 10) : 0;
        return TROVE_OK;
    case COL_BOOL:
        *(bool *)field = value && strcmp(value, "0") != 0;
        return TROVE_OK;
    }
    (void)k;
    return TROVE_EINTERNAL;
}

void rec_clear(const struct kind *k, void *rec)
{
    for (size_t i = 0; i < k->ncols; i++) {
        const struct column *c = &k->cols[i];
        if (c->type == COL_TEXT || c->type == COL_JSON) {
            char **field = (char **)((char *)rec + c->offset);
            free(*field);
            *field = NULL;
        }
    }
}

void recs_free(const struct kind *k, void *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rec_clear(k, (char *)items + i * k->size);
    free(items);
}

static int parse_row(const struct kind *k, int ncols, const char *const *values, void *rec, char *err,
                     size_t errlen)
{
    if ((size_t)ncols != k->ncols) {
        err_set(err, errlen, "%s row has %d columns, expected %zu", k->noun, ncols, k->ncols);
        return TROVE_EINTERNAL;
    }
    for (size_t i = 0; i < k->ncols; i++) {
        if (parse_column(k, &k->cols[i], values[i], rec) != TROVE_OK) {
            err_set(err, errlen, "cannot read %s %s (out of memory or longer than its field)", k->noun,
                    k->cols[i].name);
            return TROVE_EINTERNAL;
        }
    }
    return TROVE_OK;
}

static const struct column *col_with(const struct kind *k, unsigned flag)
{
    for (size_t i = 0; i < k->ncols; i++)
        if (k->cols[i].flags & flag)
            return &k->cols[i];
    return NULL;
}

static void sql_columns(struct sql *s, const struct kind *k)
{
    for (size_t i = 0; i < k->ncols; i++)
        sql_add(s, "%s%s", i ? ", " : "", k->cols[i].name);
}

/* Timestamps and generated ids go into the record before it is written. */
static int stamp(struct registry *r, const struct kind *k, void *rec, bool creating, char *err, size_t errlen)
{
    int64_t now = registry_now(r);
    for (size_t i = 0; i < k->ncols; i++) {
        const struct column *c = &k->cols[i];
        char *field = (char *)rec + c->offset;
        if ((c->flags & F_UPDATED) || (creating && (c->flags & F_CREATED)))
            *(int64_t *)field = now;
        if (creating && (c->flags & F_GEN) && !*field && registry_uuid(field) != 0) {
            err_set(err, errlen, "no random bytes for a %s id", k->noun);
            return TROVE_EINTERNAL;
        }
    }
    return TROVE_OK;
}

/* One-line message for a failed write, keeping the engine's reason. */
static int write_failed(const struct kind *k, int status, bool deleting, const char *why, char *err, size_t errlen)
{
    if (status == TROVE_EEXIST)
        err_set(err, errlen, "%s already exists (%s)", k->noun, why);
    else if (status == TROVE_EINVAL && deleting)
        err_set(err, errlen, "%s is still in use (%s)", k->noun, why);
    else if (status == TROVE_EINVAL)
        err_set(err, errlen, "%s refers to something that does not exist or breaks a rule (%s)", k->noun, why);
    else
        err_set(err, errlen, "%s", why);
    return status;
}

/* ---- create / put ----------------------------------------------------- */

static void sql_insert(struct sql *s, const struct kind *k, const void *rec)
{
    sql_add(s, "INSERT INTO %s (", k->table);
    bool first = true;
    for (size_t i = 0; i < k->ncols; i++)
        if (!(k->cols[i].flags & F_HELPER)) {
            sql_add(s, "%s%s", first ? "" : ", ", k->cols[i].name);
            first = false;
        }
    sql_add(s, ") VALUES (");
    first = true;
    for (size_t i = 0; i < k->ncols; i++)
        if (!(k->cols[i].flags & F_HELPER)) {
            sql_add(s, "%s", first ? "" : ", ");
            sql_value(s, &k->cols[i], rec);
            first = false;
        }
    sql_add(s, ")");
}

static int insert(struct registry *r, const struct kind *k, void *rec, bool upsert, char *err, size_t errlen)
{
    int status = check_record(k, rec, true, err, errlen);
    if (status != TROVE_OK)
        return status;
    /* Stamp a copy so a failed create leaves the caller's record as it was. */
    void *copy = malloc(k->size);
    struct sql *s = calloc(1, sizeof *s);
    if (!copy || !s) {
        err_set(err, errlen, "out of memory");
        status = TROVE_EINTERNAL;
        goto out;
    }
    memcpy(copy, rec, k->size);
    if ((status = stamp(r, k, copy, true, err, errlen)) != TROVE_OK)
        goto out;
    sql_insert(s, k, copy);
    if (upsert) {
        sql_add(s, " ON CONFLICT (%s) DO UPDATE SET ", col_with(k, F_KEY)->name);
        bool first = true;
        for (size_t i = 0; i < k->ncols; i++)
            if (!(k->cols[i].flags & (F_KEY | F_FIXED | F_HELPER | F_CREATED))) {
                sql_add(s, "%s%s = excluded.%s", first ? "" : ", ", k->cols[i].name, k->cols[i].name);
                first = false;
            }
    }
    char why[200];
    status = sql_run(r, s, NULL, NULL, NULL, why, sizeof why);
    if (status != TROVE_OK)
        write_failed(k, status, false, why, err, errlen);
    else
        memcpy(rec, copy, k->size);
out:
    free(copy);
    free(s);
    return status;
}

/* Every call runs inside a savepoint when the caller holds a transaction
 * (see registry_atomic_begin); the _unguarded bodies never nest one. */
#define GUARDED(call)                                                          \
    do {                                                                       \
        struct registry_atomic a_;                                             \
        int status_ = registry_atomic_begin(r, &a_, false, err, errlen);       \
        if (status_ == TROVE_OK)                                               \
            status_ = (call);                                                  \
        return registry_atomic_end(r, &a_, status_, err, errlen);              \
    } while (0)

int rec_create(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen)
{
    GUARDED(insert(r, k, rec, false, err, errlen));
}

int rec_put(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen)
{
    GUARDED(insert(r, k, rec, true, err, errlen));
}

/* ---- get -------------------------------------------------------------- */

struct one_row {
    const struct kind *k;
    void *out;
    bool found;
    char *err;
    size_t errlen;
};

static int take_row(void *user, int ncols, const char *const *names, const char *const *values)
{
    (void)names;
    struct one_row *o = user;
    o->found = true;
    return parse_row(o->k, ncols, values, o->out, o->err, o->errlen);
}

static void sql_visible(struct sql *s, const struct kind *k, const char *tenant, bool include_deleted)
{
    const struct column *t = col_with(k, F_TENANT), *d = col_with(k, F_DELETED);
    if (tenant && t) {
        sql_add(s, " AND %s = ", t->name);
        sql_text(s, tenant);
    }
    if (d && !include_deleted)
        sql_add(s, " AND %s = 0", d->name);
}

static int check_tenant_filter(const struct kind *k, const char *tenant, char *err, size_t errlen)
{
    if (tenant && !col_with(k, F_TENANT)) {
        err_set(err, errlen, "%s records belong to no tenant", k->noun);
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

static int get_unguarded(struct registry *r, const struct kind *k, const char *tenant, const char *col,
                         const char *value, void *out, char *err, size_t errlen)
{
    char buf[80];
    int status = check_tenant_filter(k, tenant, err, errlen);
    if (status != TROVE_OK)
        return status;
    struct sql *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    sql_add(s, "SELECT ");
    sql_columns(s, k);
    sql_add(s, " FROM %s WHERE %s = ", k->table, col ? col : col_with(k, F_KEY)->name);
    sql_text(s, value);
    sql_visible(s, k, tenant, false);
    struct one_row o = {k, out, false, err, errlen};
    status = sql_run(r, s, take_row, &o, NULL, err, errlen);
    free(s);
    if (status == TROVE_OK && !o.found) {
        err_set(err, errlen, "%s %s not found", k->noun, shown(value, buf));
        status = TROVE_ENOTFOUND;
    }
    if (status != TROVE_OK)
        rec_clear(k, out);
    return status;
}

/* ---- list ------------------------------------------------------------- */

struct many_rows {
    const struct kind *k;
    char *items;
    size_t n, cap, limit;
    bool more;
    char *err;
    size_t errlen;
};

static int add_row(void *user, int ncols, const char *const *names, const char *const *values)
{
    (void)names;
    struct many_rows *m = user;
    if (m->limit && m->n == m->limit) {
        m->more = true;             /* the one extra row asked for */
        return TROVE_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        char *items = realloc(m->items, cap * m->k->size);
        if (!items) {
            err_set(m->err, m->errlen, "out of memory listing %ss", m->k->noun);
            return TROVE_EINTERNAL;
        }
        m->items = items;
        m->cap = cap;
    }
    void *rec = m->items + m->n * m->k->size;
    memset(rec, 0, m->k->size);
    m->n++;
    return parse_row(m->k, ncols, values, rec, m->err, m->errlen);
}

static const struct column *order_col(const struct kind *k)
{
    return col_with(k, F_CREATED);
}

/* Conditions shared by the marker lookup and the page itself. */
static int sql_filters(struct sql *s, const struct kind *k, const struct registry_query *q,
                       const struct list_filter *f, char *err, size_t errlen)
{
    const struct column *inst = col_with(k, F_INSTANCE), *ds = col_with(k, F_DATASTORE);
    if ((q->instance && !inst) || (q->datastore && !ds)) {
        err_set(err, errlen, "%s records cannot be filtered by %s", k->noun, q->instance ? "instance" : "datastore");
        return TROVE_EINVAL;
    }
    sql_add(s, " WHERE 1 = 1");
    sql_visible(s, k, q->tenant, q->include_deleted);
    if (q->instance) {
        sql_add(s, " AND %s = ", inst->name);
        sql_text(s, q->instance);
    }
    if (q->datastore) {
        sql_add(s, " AND %s = ", ds->name);
        sql_text(s, q->datastore);
    }
    if (f && f->extra_col) {
        sql_add(s, " AND %s = ", f->extra_col);
        sql_text(s, f->extra_value);
    }
    if (f && f->extra_where)
        sql_add(s, " AND %s", f->extra_where);
    return TROVE_OK;
}

/* The marker must be a row this same list would show. */
static int load_marker(struct registry *r, const struct kind *k, const struct registry_query *q,
                       const struct list_filter *f, void *marker, char *err, size_t errlen)
{
    char buf[80];
    struct registry_query mq = *q;
    mq.marker = NULL;
    struct sql *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    sql_add(s, "SELECT ");
    sql_columns(s, k);
    sql_add(s, " FROM %s", k->table);
    int status = sql_filters(s, k, &mq, f, err, errlen);
    if (status == TROVE_OK) {
        sql_add(s, " AND %s = ", col_with(k, F_KEY)->name);
        sql_text(s, q->marker);
        struct one_row o = {k, marker, false, err, errlen};
        status = sql_run(r, s, take_row, &o, NULL, err, errlen);
        if (status == TROVE_OK && !o.found) {
            err_set(err, errlen, "marker %s not found", shown(q->marker, buf));
            status = TROVE_ENOTFOUND;
        }
    }
    free(s);
    return status;
}

/* Trove's paging: the rows after the marker in (created_at, key) order.
 * The parameters point into `marker`, which must outlive the statement. */
static void sql_after(struct registry *r, struct sql *s, const struct kind *k, const void *marker)
{
    const struct column *key = col_with(k, F_KEY), *created = order_col(k);
    if (created) {
        int64_t at = *(const int64_t *)((const char *)marker + created->offset);
        sql_add(s, " AND (%s > ", created->name);
        sql_int(s, at);
        sql_add(s, " OR (%s = ", created->name);
        sql_int(s, at);
        sql_add(s, " AND %s%s > ", key->name, r->ops->collate);
        sql_text(s, (const char *)marker + key->offset);
        sql_add(s, "))");
    } else {
        sql_add(s, " AND %s%s > ", key->name, r->ops->collate);
        sql_text(s, (const char *)marker + key->offset);
    }
}

static int list_unguarded(struct registry *r, const struct kind *k, const struct registry_query *q,
                          const struct list_filter *f, void **items, size_t *n, bool *more, char *err,
                          size_t errlen)
{
    static const struct registry_query all;
    struct many_rows m = {k, NULL, 0, 0, 0, false, err, errlen};
    *items = NULL;
    *n = 0;
    if (more)
        *more = false;
    if (!q)
        q = &all;
    m.limit = q->limit;
    struct sql *s = calloc(1, sizeof *s);
    void *marker = calloc(1, k->size);
    int status = s && marker ? TROVE_OK : TROVE_EINTERNAL;
    if (status != TROVE_OK)
        err_set(err, errlen, "out of memory");
    if (status == TROVE_OK)
        status = check_tenant_filter(k, q->tenant, err, errlen);
    if (status == TROVE_OK) {
        sql_add(s, "SELECT ");
        sql_columns(s, k);
        sql_add(s, " FROM %s", k->table);
        status = sql_filters(s, k, q, f, err, errlen);
    }
    if (status == TROVE_OK && q->marker) {
        status = load_marker(r, k, q, f, marker, err, errlen);
        if (status == TROVE_OK)
            sql_after(r, s, k, marker);
    }
    if (status == TROVE_OK) {
        const struct column *created = order_col(k);
        sql_add(s, " ORDER BY ");
        if (created)
            sql_add(s, "%s, ", created->name);
        sql_add(s, "%s%s", col_with(k, F_KEY)->name, r->ops->collate);
        if (q->limit) {
            sql_add(s, " LIMIT ");
            sql_int(s, q->limit < (size_t)INT64_MAX ? (int64_t)q->limit + 1 : INT64_MAX);
        }
        status = sql_run(r, s, add_row, &m, NULL, err, errlen);
    }
    if (marker)
        rec_clear(k, marker);
    free(marker);
    free(s);
    if (status != TROVE_OK) {
        recs_free(k, m.items, m.n);
        return status;
    }
    *items = m.items;
    *n = m.n;
    if (more)
        *more = m.more;
    return TROVE_OK;
}

/* ---- update / delete -------------------------------------------------- */

static int update_unguarded(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen)
{
    const struct column *key = col_with(k, F_KEY);
    char buf[80];
    int status = check_record(k, rec, false, err, errlen);
    if (status == TROVE_OK)
        status = check_column(k, key, rec, err, errlen);
    if (status != TROVE_OK)
        return status;
    void *copy = malloc(k->size);
    struct sql *s = calloc(1, sizeof *s);
    if (!copy || !s) {
        err_set(err, errlen, "out of memory");
        status = TROVE_EINTERNAL;
        goto out;
    }
    memcpy(copy, rec, k->size);
    stamp(r, k, copy, false, NULL, 0);
    sql_add(s, "UPDATE %s SET ", k->table);
    bool first = true;
    for (size_t i = 0; i < k->ncols; i++) {
        const struct column *c = &k->cols[i];
        if (c->flags & (F_KEY | F_FIXED | F_HELPER | F_CREATED))
            continue;
        sql_add(s, "%s%s = ", first ? "" : ", ", c->name);
        sql_value(s, c, copy);
        first = false;
    }
    sql_add(s, " WHERE %s = ", key->name);
    sql_text(s, (const char *)copy + key->offset);
    sql_visible(s, k, NULL, false);
    int64_t changes = 0;
    char why[200];
    status = sql_run(r, s, NULL, NULL, &changes, why, sizeof why);
    if (status != TROVE_OK) {
        write_failed(k, status, false, why, err, errlen);
    } else if (changes == 0) {
        err_set(err, errlen, "%s %s not found", k->noun, shown((const char *)copy + key->offset, buf));
        status = TROVE_ENOTFOUND;
    } else {
        memcpy(rec, copy, k->size);
    }
out:
    free(copy);
    free(s);
    return status;
}

static int delete_unguarded(struct registry *r, const struct kind *k, const char *tenant, const char *id,
                            char *err, size_t errlen)
{
    char buf[80];
    int status = check_tenant_filter(k, tenant, err, errlen);
    if (status != TROVE_OK)
        return status;
    struct sql *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    sql_add(s, "DELETE FROM %s WHERE %s = ", k->table, col_with(k, F_KEY)->name);
    sql_text(s, id);
    sql_visible(s, k, tenant, false);
    int64_t changes = 0;
    char why[200];
    status = sql_run(r, s, NULL, NULL, &changes, why, sizeof why);
    free(s);
    if (status != TROVE_OK)
        return write_failed(k, status, true, why, err, errlen);
    if (changes == 0) {
        err_set(err, errlen, "%s %s not found", k->noun, shown(id, buf));
        return TROVE_ENOTFOUND;
    }
    return TROVE_OK;
}

int rec_get(struct registry *r, const struct kind *k, const char *tenant, const char *col, const char *value,
            void *out, char *err, size_t errlen)
{
    memset(out, 0, k->size);        /* safe to clear whatever happens */
    GUARDED(get_unguarded(r, k, tenant, col, value, out, err, errlen));
}

int rec_list(struct registry *r, const struct kind *k, const struct registry_query *q,
             const struct list_filter *f, void **items, size_t *n, bool *more, char *err, size_t errlen)
{
    *items = NULL;
    *n = 0;
    if (more)
        *more = false;
    GUARDED(list_unguarded(r, k, q, f, items, n, more, err, errlen));
}

int rec_update(struct registry *r, const struct kind *k, void *rec, char *err, size_t errlen)
{
    GUARDED(update_unguarded(r, k, rec, err, errlen));
}

int rec_delete(struct registry *r, const struct kind *k, const char *tenant, const char *id, char *err,
               size_t errlen)
{
    GUARDED(delete_unguarded(r, k, tenant, id, err, errlen));
}
