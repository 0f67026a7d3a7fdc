/*
 * databases.c - MongoDB has no command that creates a database: one exists
 * while it holds a collection. database_create therefore creates the empty
 * collection "_trove" in it, so the database is listed, can be granted and
 * backed up before the application writes; it refuses a database that
 * already exists. database_delete is dropDatabase; database_list is
 * listDatabases (names only) without admin, local and config.
 */
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

void mg_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int mg_database_names(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, char ***out)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "listDatabases", 1);
    BSON_APPEND_BOOL(&cmd, "nameOnly", true);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "listDatabases failed");
    bson_destroy(&cmd);
    size_t n = 0, cap = 16;
    char **v = rc == TROVE_OK ? calloc(cap, sizeof(*v)) : NULL;
    if (rc == TROVE_OK && !v)
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    bson_iter_t it, dbs;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &reply, "databases") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &dbs)) {
        while (rc == TROVE_OK && bson_iter_next(&dbs)) {
            bson_iter_t name;
            if (!bson_iter_recurse(&dbs, &name) || !bson_iter_find(&name, "name") || !BSON_ITER_HOLDS_UTF8(&name))
                continue;
            const char *s = bson_iter_utf8(&name, NULL);
            if (mg_system_db(s))
                continue;
            if (n + 1 >= cap) {
                char **bigger = realloc(v, cap * 2 * sizeof(*v));
                if (!bigger) {
                    rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
                    break;
                }
                v = bigger, cap *= 2;
            }
            if (!(v[n++] = strdup(s)))
                rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
            v[n] = NULL;
        }
    }
    bson_destroy(&reply);
    if (rc != TROVE_OK) {
        mg_strv_free(v);
        v = NULL;
    }
    *out = v;
    return rc;
}

static bool listed(char **names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

int mg_database_create_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *name)
{
    char **names;
    int rc = mg_database_names(ctx, call, c, &names);
    if (rc != TROVE_OK)
        return rc;
    if (listed(names, name))
        rc = ctx->host->fail(call, TROVE_EEXIST, "database \"%s\" already exists", name);
    mg_strv_free(names);
    if (rc != TROVE_OK)
        return rc;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&cmd, "create", MG_PLACEHOLDER);
    rc = mg_cmd(ctx, call, c, name, &cmd, &reply, "creating the database failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

int mg_database_create(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    int rc = mg_check_db_name(ctx, call, db->name);
    if (rc == TROVE_OK && (db->character_set || db->collation || db->owner || db->n_options))
        rc = ctx->host->fail(call, TROVE_EINVAL, "MongoDB databases take no character set, collation, owner or "
                                                 "options");
    if (rc == TROVE_OK && (rc = mg_admin_open(ctx, call, &c)) == TROVE_OK) {
        rc = mg_database_create_on(ctx, call, c, db->name);
        mongoc_client_destroy(c);
    }
    return rc;
}

int mg_database_delete(void *self, struct trove_call *call, const struct trove_database *db)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    char **names = NULL;
    int rc = mg_check_db_name(ctx, call, db->name);
    if (rc != TROVE_OK || (rc = mg_admin_open(ctx, call, &c)) != TROVE_OK)
        return rc;
    if ((rc = mg_database_names(ctx, call, c, &names)) == TROVE_OK && !listed(names, db->name))
        rc = ctx->host->fail(call, TROVE_ENOTFOUND, "database \"%s\" does not exist", db->name);
    if (rc == TROVE_OK) {
        bson_t cmd = BSON_INITIALIZER, reply;
        BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
        rc = mg_cmd(ctx, call, c, db->name, &cmd, &reply, "dropDatabase failed");
        bson_destroy(&cmd);
        bson_destroy(&reply);
    }
    mg_strv_free(names);
    mongoc_client_destroy(c);
    return rc;
}

int mg_database_list(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    char **names = NULL;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = mg_database_names(ctx, call, c, &names);
    for (size_t i = 0; rc == TROVE_OK && names[i]; i++) {
        struct trove_database d = {.size = sizeof(d), .name = names[i]};
        rc = ctx->host->emit_database(call, &d);
    }
    mg_strv_free(names);
    mongoc_client_destroy(c);
    return rc;
}
