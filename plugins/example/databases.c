/*
 * databases.c - databases and their one engine-specific setting, max_keys
 * (how many keys a database may hold; 0 = no limit), which database_alter
 * changes and database_list shows with the current key count. Options the
 * plugin does not know are refused, naming them, before anything changes.
 */
#include <stdio.h>
#include <string.h>

#include "example.h"

static int check_name(struct ex_ctx *ctx, struct trove_call *call, const char *name)
{
    if (!tps_name_ok(name, 64, "-", false))
        return ctx->host->fail(call, TROVE_EINVAL, "database name \"%s\" is invalid: use 1-64 of [A-Za-z0-9_-]",
                               name);
    return TROVE_OK;
}

/* The value of max_keys in the options (NULL when absent); unknown keys fail. */
static int read_options(struct ex_ctx *ctx, struct trove_call *call, const struct trove_database *db,
                        const char **max_keys)
{
    int64_t v;
    *max_keys = NULL;
    for (size_t i = 0; i < db->n_options; i++) {
        if (strcmp(db->options[i].key, "max_keys") != 0)
            return ctx->host->fail(call, TROVE_EINVAL, "unknown database option \"%s\" (the example datastore "
                                   "knows max_keys)", db->options[i].key);
        if (!tps_parse_int(db->options[i].value, 0, INT32_MAX, &v))
            return ctx->host->fail(call, TROVE_EINVAL, "max_keys must be an integer in 0..2147483647");
        *max_keys = db->options[i].value;
    }
    return TROVE_OK;
}

int ex_database_create_on(struct ex_conn *c, const struct trove_database *db)
{
    const char *max_keys;
    int rc = check_name(c->ctx, c->call, db->name);
    if (rc == TROVE_OK)
        rc = read_options(c->ctx, c->call, db, &max_keys);
    if (rc == TROVE_OK)
        rc = ex_conn_cmd(c, NULL, NULL, NULL, "DB.CREATE", db->name, (char *)NULL);
    if (rc == TROVE_OK && max_keys)
        rc = ex_conn_cmd(c, NULL, NULL, NULL, "DB.ALTER", db->name, "max_keys", max_keys, (char *)NULL);
    return rc;
}

int ex_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_database_create_on(&c, db);
        ex_conn_close(&c);
    }
    return rc;
}

int ex_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct ex_conn c;
    int rc = check_name(self, call, db->name);
    if (rc == TROVE_OK && (rc = ex_conn_open(self, call, &c)) == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "DB.DROP", db->name, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

int ex_database_alter(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct ex_ctx *ctx = self;
    struct ex_conn c;
    const char *max_keys;
    int rc = check_name(ctx, call, db->name);
    if (rc == TROVE_OK && (db->character_set || db->collation || db->owner))
        rc = ctx->host->fail(call, TROVE_EINVAL, "the example datastore has no character sets, collations or owners");
    if (rc == TROVE_OK)
        rc = read_options(ctx, call, db, &max_keys);
    if (rc == TROVE_OK && !max_keys)
        rc = ctx->host->fail(call, TROVE_EINVAL, "nothing to change: the example datastore's option is max_keys");
    if (rc == TROVE_OK && (rc = ex_conn_open(self, call, &c)) == TROVE_OK) {
        rc = ex_conn_cmd(&c, NULL, NULL, NULL, "DB.ALTER", db->name, "max_keys", max_keys, (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}

struct list_ctx {
    struct ex_ctx *ctx;
    struct trove_call *call;
};

static int list_row(void *arg, const struct ex_row *row)
{
    struct list_ctx *l = arg;
    if (row->n < 3)
        return TROVE_OK;
    const struct trove_kv options[] = {{"max_keys", row->col[1]}, {"keys", row->col[2]}};
    struct trove_database db = {.size = sizeof(db), .name = row->col[0], .options = options, .n_options = 2};
    return l->ctx->host->emit_database(l->call, &db);
}

int ex_database_list(void *self, struct trove_call *call)
{
    struct list_ctx l = {self, call};
    struct ex_conn c;
    int rc = ex_conn_open(self, call, &c);
    if (rc == TROVE_OK) {
        rc = ex_conn_cmd(&c, list_row, &l, NULL, "DB.LIST", (char *)NULL);
        ex_conn_close(&c);
    }
    return rc;
}
