/*
 * databases.c - databases are keyspaces. Create (SimpleStrategy with factor
 * 1 unless options say otherwise), delete, list (system* keyspaces hidden
 * and protected), and alter replication and durable_writes. Options:
 *   class               SimpleStrategy | NetworkTopologyStrategy
 *   replication_factor  every data center's factor (the only one for Simple)
 *   dc.<name>           one data center's factor (NetworkTopologyStrategy)
 *   durable_writes      boolean
 * Lookups bind the name; DDL takes no markers, so names are checked first
 * and quoted, and replication values are quoted as literals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cassandra.h"

#define SIMPLE "SimpleStrategy"
#define NTS "NetworkTopologyStrategy"
#define LOCATOR "org.apache.cassandra.locator."
#define DCS_MAX 64

struct replication {
    bool set;                      /* a replication option was given (or read) */
    char cls[32];                  /* SIMPLE or NTS, "" = keep */
    char rf[16];                   /* "" = none */
    size_t n_dcs;
    char dc[DCS_MAX][80];
    char dc_rf[DCS_MAX][16];
    int durable;                   /* -1 keep, 0, 1 */
};

static const char *short_class(const char *cls)
{
    if (!strncmp(cls, LOCATOR, strlen(LOCATOR)))
        cls += strlen(LOCATOR);
    return !strcmp(cls, SIMPLE) ? SIMPLE : !strcmp(cls, NTS) ? NTS : NULL;
}

static void put_dc(struct replication *r, const char *dc, const char *rf)
{
    for (size_t i = 0; i < r->n_dcs; i++)
        if (!strcmp(r->dc[i], dc)) {
            snprintf(r->dc_rf[i], sizeof(r->dc_rf[i]), "%s", rf);
            return;
        }
    if (r->n_dcs < DCS_MAX) {
        snprintf(r->dc[r->n_dcs], sizeof(r->dc[0]), "%s", dc);
        snprintf(r->dc_rf[r->n_dcs++], sizeof(r->dc_rf[0]), "%s", rf);
    }
}

static int factor(struct cs_ctx *ctx, struct trove_call *call, const char *key, const char *value, int64_t min,
                  char *out, size_t len)
{
    int64_t v;
    if (!tps_parse_int(value, min, 100, &v))
        return ctx->host->fail(call, TROVE_EINVAL, "option %s must be a whole number from %lld to 100, not \"%s\"",
                               key, (long long)min, value);
    snprintf(out, len, "%lld", (long long)v);
    return TROVE_OK;
}

/* The options of a request, checked; unknown ones are refused, all named. */
static int parse_options(struct cs_ctx *ctx, struct trove_call *call, const struct trove_database *db,
                         struct replication *r)
{
    memset(r, 0, sizeof(*r));
    r->durable = -1;
    struct tps_buf unknown = {0};
    int rc = TROVE_OK;
    for (size_t i = 0; rc == TROVE_OK && i < db->n_options; i++) {
        const char *k = db->options[i].key, *v = db->options[i].value;
        bool b;
        if (!strcmp(k, "class")) {
            const char *cls = short_class(v);
            if (!cls)
                rc = ctx->host->fail(call, TROVE_EINVAL, "class must be %s or %s, not \"%s\"", SIMPLE, NTS, v);
            else
                snprintf(r->cls, sizeof(r->cls), "%s", cls), r->set = true;
        } else if (!strcmp(k, "replication_factor")) {
            rc = factor(ctx, call, k, v, 1, r->rf, sizeof(r->rf));
            r->set = true;
        } else if (!strncmp(k, "dc.", 3)) {
            char rf[16];
            if (!cs_label_ok(k + 3, false))
                rc = ctx->host->fail(call, TROVE_EINVAL, "data center name \"%s\" is invalid: use 1-64 of "
                                                         "[A-Za-z0-9_.-]", k + 3);
            else if (r->n_dcs >= DCS_MAX)
                rc = ctx->host->fail(call, TROVE_EINVAL, "at most %d data centers", DCS_MAX);
            else if ((rc = factor(ctx, call, k, v, 0, rf, sizeof(rf))) == TROVE_OK)
                put_dc(r, k + 3, rf), r->set = true;
        } else if (!strcmp(k, "durable_writes")) {
            if (tps_parse_bool(v, &b))
                r->durable = b;
            else
                rc = ctx->host->fail(call, TROVE_EINVAL, "durable_writes must be a boolean, not \"%s\"", v);
        } else {
            tps_buf_addf(&unknown, "%s%s", unknown.len ? ", " : "", k);
        }
    }
    if (rc == TROVE_OK && unknown.len)
        rc = ctx->host->fail(call, TROVE_EINVAL, "unknown keyspace options: %s (known: class, replication_factor, "
                                                 "dc.<data center>, durable_writes)", tps_buf_str(&unknown));
    tps_buf_free(&unknown);
    return rc;
}

static int check_replication(struct cs_ctx *ctx, struct trove_call *call, const struct replication *r)
{
    if (!strcmp(r->cls, SIMPLE) && r->n_dcs)
        return ctx->host->fail(call, TROVE_EINVAL, "%s takes replication_factor only, not dc.<name> factors", SIMPLE);
    if (!strcmp(r->cls, SIMPLE) && !r->rf[0])
        return ctx->host->fail(call, TROVE_EINVAL, "%s needs replication_factor", SIMPLE);
    if (!strcmp(r->cls, NTS) && !r->rf[0] && !r->n_dcs)
        return ctx->host->fail(call, TROVE_EINVAL, "%s needs replication_factor or dc.<name> factors", NTS);
    return TROVE_OK;
}

static bool add_entry(struct tps_buf *b, const char *k, const char *v, bool *first)
{
    tps_buf_add(b, *first ? "" : ", ");
    *first = false;
    return cs_add_literal(b, k) && (tps_buf_add(b, ": "), cs_add_literal(b, v));
}

/* " WITH replication = {...} AND durable_writes = ..." (either part optional). */
static bool add_properties(struct tps_buf *b, const struct replication *r)
{
    bool ok = true, first = true;
    tps_buf_add(b, " WITH ");
    if (r->set) {
        tps_buf_add(b, "replication = {");
        ok = add_entry(b, "class", r->cls, &first);
        if (r->rf[0])
            ok = ok && add_entry(b, "replication_factor", r->rf, &first);
        for (size_t i = 0; ok && i < r->n_dcs; i++)
            ok = add_entry(b, r->dc[i], r->dc_rf[i], &first);
        tps_buf_add(b, "}");
    }
    if (r->durable >= 0)
        tps_buf_addf(b, "%sdurable_writes = %s", r->set ? " AND " : "", r->durable ? "true" : "false");
    return ok && tps_buf_str(b);
}

int cs_keyspace_exists(struct cs_conn *c, const char *name, bool *exists)
{
    struct cql_param p = cql_param_text(name);
    struct cql_result *res = NULL;
    int rc = cs_query(c, "looking up the keyspace",
                      "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", &p, 1, &res, false);
    if (rc == TROVE_OK)
        *exists = res->rows.nrows > 0;
    cql_result_free(res);
    return rc;
}

static int check_plain(struct cs_ctx *ctx, struct trove_call *call, const struct trove_database *db)
{
    const char *what = db->character_set ? "character_set" : db->collation ? "collation" : db->owner ? "owner" : NULL;
    return what ? ctx->host->fail(call, TROVE_EINVAL, "Cassandra keyspaces have no %s", what) : TROVE_OK;
}

int cs_database_create_on(struct cs_conn *c, const struct trove_database *db)
{
    struct cs_ctx *ctx = c->ctx;
    struct replication r;
    bool exists = false;
    int rc = cs_check_keyspace(ctx, c->call, db->name);
    if (rc == TROVE_OK)
        rc = check_plain(ctx, c->call, db);
    if (rc == TROVE_OK)
        rc = parse_options(ctx, c->call, db, &r);
    if (rc != TROVE_OK)
        return rc;
    if (!r.cls[0])
        snprintf(r.cls, sizeof(r.cls), "%s", r.n_dcs ? NTS : SIMPLE);
    if (!strcmp(r.cls, SIMPLE) && !r.rf[0])
        snprintf(r.rf, sizeof(r.rf), "1");
    r.set = true;
    if ((rc = check_replication(ctx, c->call, &r)) == TROVE_OK)
        rc = cs_keyspace_exists(c, db->name, &exists);
    if (rc == TROVE_OK && exists)
        return ctx->host->fail(c->call, TROVE_EEXIST, "keyspace \"%s\" already exists", db->name);
    if (rc != TROVE_OK)
        return rc;
    struct tps_buf b = {0};
    tps_buf_add(&b, "CREATE KEYSPACE ");
    bool ok = cs_add_ident(&b, db->name) && add_properties(&b, &r);
    rc = ok ? cs_query(c, "CREATE KEYSPACE", tps_buf_str(&b), NULL, 0, NULL, false)
            : ctx->host->fail(c->call, TROVE_EINVAL, "option values must be UTF-8");
    tps_buf_free(&b);
    return rc;
}

int cs_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct cs_conn c;
    int rc = cs_check_keyspace(self, call, db->name);
    if (rc == TROVE_OK)
        rc = cs_conn_open(self, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_database_create_on(&c, db);
    cs_conn_close(&c);
    return rc;
}

/* Checks the name and opens a connection to an existing user keyspace. */
static int open_keyspace(struct cs_ctx *ctx, struct trove_call *call, const char *name, struct cs_conn *c)
{
    bool exists = false;
    int rc = cs_check_keyspace(ctx, call, name);
    if (rc == TROVE_OK)
        rc = cs_conn_open(ctx, call, c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_keyspace_exists(c, name, &exists);
    if (rc == TROVE_OK && !exists)
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "keyspace \"%s\" does not exist", name);
    if (rc != TROVE_OK)
        cs_conn_close(c);
    return rc;
}

int cs_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct cs_conn c;
    int rc = open_keyspace(self, call, db->name, &c);
    if (rc != TROVE_OK)
        return rc;
    struct tps_buf b = {0};
    tps_buf_add(&b, "DROP KEYSPACE IF EXISTS ");
    rc = cs_add_ident(&b, db->name) ? cs_query(&c, "DROP KEYSPACE", tps_buf_str(&b), NULL, 0, NULL, false)
                                    : c.ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_free(&b);
    cs_conn_close(&c);
    return rc;
}

/* ---- reading keyspaces ------------------------------------------------- */

/* A replication map cell into r (class shortened). */
static void read_replication(const struct cql_value *map, struct replication *r)
{
    memset(r, 0, sizeof(*r));
    r->durable = -1;
    r->set = true;
    for (size_t i = 0; map && map->kind == CQL_VALUE_MAP && i < map->u.map.count; i++) {
        const char *k = cql_value_text(&map->u.map.keys[i]), *v = cql_value_text(&map->u.map.values[i]);
        if (!k || !v)
            continue;
        if (!strcmp(k, "class"))
            snprintf(r->cls, sizeof(r->cls), "%s", short_class(v) ? short_class(v) : v);
        else if (!strcmp(k, "replication_factor"))
            snprintf(r->rf, sizeof(r->rf), "%s", v);
        else
            put_dc(r, k, v);
    }
}

static int emit_keyspace(struct cs_conn *c, const char *name, const struct replication *r)
{
    struct trove_kv opts[DCS_MAX + 3];
    char keys[DCS_MAX][90];
    size_t n = 0;
    opts[n++] = (struct trove_kv){"class", r->cls};
    if (r->rf[0])
        opts[n++] = (struct trove_kv){"replication_factor", r->rf};
    for (size_t i = 0; i < r->n_dcs; i++) {
        snprintf(keys[i], sizeof(keys[i]), "dc.%s", r->dc[i]);
        opts[n++] = (struct trove_kv){keys[i], r->dc_rf[i]};
    }
    opts[n++] = (struct trove_kv){"durable_writes", r->durable ? "true" : "false"};
    struct trove_database d = {.size = sizeof(d), .name = name, .options = opts, .n_options = n};
    return c->ctx->host->emit_database(c->call, &d);
}

static int read_keyspaces(struct cs_conn *c, const char *name, struct cql_result **res)
{
    struct cql_param p = cql_param_text(name);
    return cs_query(c, "reading keyspaces",
                    name ? "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces "
                           "WHERE keyspace_name = ?"
                         : "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces",
                    name ? &p : NULL, name ? 1 : 0, res, false);
}

static void row_replication(const struct cql_result *res, size_t row, struct replication *r)
{
    read_replication(cql_cell_by_name(res, row, "replication"), r);
    const struct cql_value *d = cql_cell_by_name(res, row, "durable_writes");
    r->durable = !(d && d->kind == CQL_VALUE_BOOL && !d->u.b);
}

int cs_database_list(void *self, struct trove_call *call)
{
    struct cs_conn c;
    struct cql_result *res = NULL;
    int rc = cs_conn_open(self, call, &c);
    if (rc == TROVE_OK)
        rc = read_keyspaces(&c, NULL, &res);
    for (size_t i = 0; rc == TROVE_OK && i < res->rows.nrows; i++) {
        const char *name = cql_value_text(cql_cell_by_name(res, i, "keyspace_name"));
        if (!name || cs_keyspace_is_system(name))
            continue;
        struct replication r;
        row_replication(res, i, &r);
        rc = emit_keyspace(&c, name, &r);
    }
    cql_result_free(res);
    if (c.cql)
        cs_conn_close(&c);
    return rc;
}

/* The replication to set: what was given, over what is when the class stays. */
static void merge(const struct replication *now, const struct replication *given, struct replication *out)
{
    *out = *given;
    if (!given->set)
        return;
    if (!out->cls[0])
        snprintf(out->cls, sizeof(out->cls), "%s", now->cls);
    if (strcmp(out->cls, now->cls))
        return;                        /* a new class starts afresh */
    if (!strcmp(out->cls, SIMPLE)) {
        if (!out->rf[0])
            snprintf(out->rf, sizeof(out->rf), "%s", now->rf);
        return;
    }
    if (given->rf[0])
        return;                        /* one factor for every data center, then the dc.<name> ones */
    out->n_dcs = 0;
    for (size_t i = 0; i < now->n_dcs; i++)
        put_dc(out, now->dc[i], now->dc_rf[i]);
    for (size_t i = 0; i < given->n_dcs; i++)
        put_dc(out, given->dc[i], given->dc_rf[i]);
}

int cs_database_alter(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct cs_ctx *ctx = self;
    struct replication given, now, want;
    struct cql_result *res = NULL;
    struct cs_conn c;
    int rc = cs_check_keyspace(ctx, call, db->name);
    if (rc == TROVE_OK)
        rc = check_plain(ctx, call, db);
    if (rc == TROVE_OK)
        rc = parse_options(ctx, call, db, &given);
    if (rc == TROVE_OK && !given.set && given.durable < 0)
        rc = ctx->host->fail(call, TROVE_EINVAL, "nothing to change: give replication options or durable_writes");
    if (rc == TROVE_OK)
        rc = open_keyspace(ctx, call, db->name, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = read_keyspaces(&c, db->name, &res);
    if (rc == TROVE_OK) {
        row_replication(res, 0, &now);
        merge(&now, &given, &want);
        if (want.set)
            rc = check_replication(ctx, call, &want);
    }
    if (rc == TROVE_OK) {
        struct tps_buf b = {0};
        tps_buf_add(&b, "ALTER KEYSPACE ");
        bool ok = cs_add_ident(&b, db->name) && add_properties(&b, &want);
        rc = ok ? cs_query(&c, "ALTER KEYSPACE", tps_buf_str(&b), NULL, 0, NULL, false)
                : ctx->host->fail(call, TROVE_EINVAL, "option values must be UTF-8");
        tps_buf_free(&b);
    }
    cql_result_free(res);
    cs_conn_close(&c);
    return rc;
}

/* ---- for backups --------------------------------------------------------- */

void cs_keyspaces_free(struct cs_keyspace *ks, size_t n)
{
    for (size_t i = 0; ks && i < n; i++) {
        free(ks[i].name);
        free(ks[i].cql);
    }
    free(ks);
}

int cs_keyspaces_list(struct cs_conn *c, struct cs_keyspace **out, size_t *n)
{
    struct cql_result *res = NULL;
    *out = NULL;
    *n = 0;
    int rc = read_keyspaces(c, NULL, &res);
    struct cs_keyspace *ks = rc == TROVE_OK ? calloc(res->rows.nrows + 1, sizeof(*ks)) : NULL;
    if (rc == TROVE_OK && !ks)
        rc = c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    size_t k = 0;
    for (size_t i = 0; rc == TROVE_OK && i < res->rows.nrows; i++) {
        const char *name = cql_value_text(cql_cell_by_name(res, i, "keyspace_name"));
        if (!name || cs_keyspace_is_system(name) || !cql_valid_keyspace_name(name))
            continue;
        struct replication r;
        struct tps_buf b = {0};
        row_replication(res, i, &r);
        tps_buf_add(&b, "CREATE KEYSPACE ");
        bool ok = cs_add_ident(&b, name) && add_properties(&b, &r);
        tps_buf_add(&b, ";\n");
        ks[k].name = strdup(name);
        ks[k].cql = ok && tps_buf_str(&b) ? strdup(b.data) : NULL;
        tps_buf_free(&b);
        if (!ks[k++].cql || !ks[k - 1].name)
            rc = c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
    }
    cql_result_free(res);
    if (rc != TROVE_OK) {
        cs_keyspaces_free(ks, k);
        return rc;
    }
    *out = ks;
    *n = k;
    return TROVE_OK;
}
