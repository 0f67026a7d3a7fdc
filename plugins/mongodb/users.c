/*
 * users.c - users live in the admin database and authenticate with
 * SCRAM-SHA-256; access to a database is the readWrite role on it; root is
 * a user named "root" with the root role. Every name and password travels
 * as a BSON value of createUser / updateUser / grantRolesToUser /
 * revokeRolesFromUser / dropUser / usersInfo. The plugin's own accounts
 * (admin_user, replication_user) and root are never touched by user_*.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

#define MAX_ROLES 1024

static void append_mechanisms(bson_t *cmd)
{
    bson_t mechs;
    BSON_APPEND_ARRAY_BEGIN(cmd, "mechanisms", &mechs);
    BSON_APPEND_UTF8(&mechs, "0", "SCRAM-SHA-256");
    bson_append_array_end(cmd, &mechs);
}

/* [{role: readWrite, db}] for each database, after checking every name. */
static int read_write_roles(struct mg_ctx *ctx, struct trove_call *call, const struct trove_user *user, bson_t *roles)
{
    bson_init(roles);
    for (size_t i = 0; i < user->n_databases; i++) {
        int rc = mg_check_db_name(ctx, call, user->databases[i]);
        if (rc != TROVE_OK)
            return rc;
        char key[16];
        const char *k;
        bson_t role;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
        BSON_APPEND_DOCUMENT_BEGIN(roles, k, &role);
        BSON_APPEND_UTF8(&role, "role", "readWrite");
        BSON_APPEND_UTF8(&role, "db", user->databases[i]);
        bson_append_document_end(roles, &role);
    }
    return TROVE_OK;
}

int mg_user_upsert(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *name,
                   const char *password, const bson_t *roles)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_UTF8(&cmd, "createUser", name);
    BSON_APPEND_UTF8(&cmd, "pwd", password);
    BSON_APPEND_ARRAY(&cmd, "roles", roles);
    append_mechanisms(&cmd);
    bool ok = mg_cmd_raw(c, "admin", &cmd, &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    if (ok)
        return TROVE_OK;
    if (mg_server_code(&error) != 51003)
        return mg_fail_error(ctx, call, &error, "createUser failed");
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "updateUser", name);
    BSON_APPEND_UTF8(&cmd, "pwd", password);
    BSON_APPEND_ARRAY(&cmd, "roles", roles);
    append_mechanisms(&cmd);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "updateUser failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

int mg_user_create_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const struct trove_user *user)
{
    int rc = mg_check_user_name(ctx, call, user->name);
    if (rc != TROVE_OK)
        return rc;
    if (!user->password || !*user->password)
        return ctx->host->fail(call, TROVE_EINVAL, "a password is required to create a user");
    bson_t roles, cmd = BSON_INITIALIZER, reply;
    if ((rc = read_write_roles(ctx, call, user, &roles)) == TROVE_OK) {
        BSON_APPEND_UTF8(&cmd, "createUser", user->name);
        BSON_APPEND_UTF8(&cmd, "pwd", user->password);
        BSON_APPEND_ARRAY(&cmd, "roles", &roles);
        append_mechanisms(&cmd);
        rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "createUser failed");
        bson_destroy(&reply);
    }
    bson_destroy(&cmd);
    bson_destroy(&roles);
    return rc;
}

/* Run one command on admin through a fresh admin connection. */
static int admin_command(struct mg_ctx *ctx, struct trove_call *call, const bson_t *cmd, bson_t *reply,
                         const char *what)
{
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK) {
        bson_init(reply);
        return rc;
    }
    rc = mg_cmd(ctx, call, c, "admin", cmd, reply, what);
    mongoc_client_destroy(c);
    return rc;
}

int mg_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    int rc = mg_check_user_name(ctx, call, user->name);
    if (rc == TROVE_OK && (rc = mg_admin_open(ctx, call, &c)) == TROVE_OK) {
        rc = mg_user_create_on(ctx, call, c, user);
        mongoc_client_destroy(c);
    }
    return rc;
}

int mg_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    int rc = mg_check_user_name(ctx, call, user->name);
    if (rc != TROVE_OK)
        return rc;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&cmd, "dropUser", user->name);
    rc = admin_command(ctx, call, &cmd, &reply, "dropUser failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* A usersInfo entry as a trove user: its readWrite databases. */
struct user_view {
    const char *name;
    const char *dbs[MAX_ROLES];
    size_t n;
};

static bool view_of(const bson_iter_t *entry, struct user_view *v)
{
    bson_iter_t it, roles, role;
    memset(v, 0, sizeof(*v));
    if (!BSON_ITER_HOLDS_DOCUMENT(entry) || !bson_iter_recurse(entry, &it))
        return false;
    const char *db = NULL;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "user") && BSON_ITER_HOLDS_UTF8(&it))
            v->name = bson_iter_utf8(&it, NULL);
        else if (!strcmp(k, "db") && BSON_ITER_HOLDS_UTF8(&it))
            db = bson_iter_utf8(&it, NULL);
        else if (!strcmp(k, "roles") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &roles)) {
            while (bson_iter_next(&roles) && v->n < MAX_ROLES) {
                const char *name = NULL, *rdb = NULL;
                if (!BSON_ITER_HOLDS_DOCUMENT(&roles) || !bson_iter_recurse(&roles, &role))
                    continue;
                while (bson_iter_next(&role)) {
                    if (!strcmp(bson_iter_key(&role), "role") && BSON_ITER_HOLDS_UTF8(&role))
                        name = bson_iter_utf8(&role, NULL);
                    else if (!strcmp(bson_iter_key(&role), "db") && BSON_ITER_HOLDS_UTF8(&role))
                        rdb = bson_iter_utf8(&role, NULL);
                }
                if (name && rdb && !strcmp(name, "readWrite"))
                    v->dbs[v->n++] = rdb;
            }
        }
    }
    return v->name && db && !strcmp(db, "admin");
}

static int emit_view(struct mg_ctx *ctx, struct trove_call *call, const struct user_view *v)
{
    struct trove_user u = {.size = sizeof(u), .name = v->name, .databases = v->dbs, .n_databases = v->n};
    return ctx->host->emit_user(call, &u);
}

/* usersInfo for one user (or every user when name is NULL) into *reply. */
static int users_info(struct mg_ctx *ctx, struct trove_call *call, const char *name, bson_t *reply)
{
    bson_t cmd = BSON_INITIALIZER, arg;
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "usersInfo", &arg);
    if (name) {
        BSON_APPEND_UTF8(&arg, "user", name);
        BSON_APPEND_UTF8(&arg, "db", "admin");
    } else {
        BSON_APPEND_BOOL(&arg, "forAllDBs", true);
    }
    bson_append_document_end(&cmd, &arg);
    int rc = admin_command(ctx, call, &cmd, reply, "usersInfo failed");
    bson_destroy(&cmd);
    return rc;
}

/* The one user `name` of a usersInfo reply; ENOTFOUND when absent. */
static int find_user(struct mg_ctx *ctx, struct trove_call *call, const bson_t *reply, const char *name,
                     struct user_view *v)
{
    bson_iter_t it, users;
    if (bson_iter_init_find(&it, reply, "users") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &users))
        while (bson_iter_next(&users))
            if (view_of(&users, v) && !strcmp(v->name, name))
                return TROVE_OK;
    return ctx->host->fail(call, TROVE_ENOTFOUND, "user \"%s\" does not exist", name);
}

int mg_user_list(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    bson_t reply;
    int rc = users_info(ctx, call, NULL, &reply);
    bson_iter_t it, users;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &reply, "users") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &users)) {
        struct user_view *v = malloc(sizeof(*v));
        if (!v)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        while (rc == TROVE_OK && bson_iter_next(&users))
            if (view_of(&users, v) && !mg_reserved_user(ctx, v->name))
                rc = emit_view(ctx, call, v);
        free(v);
    }
    bson_destroy(&reply);
    return rc;
}

/* The checked user's view, read into *reply (kept alive for the view). */
static int show(struct mg_ctx *ctx, struct trove_call *call, const char *name, bson_t *reply, struct user_view *v)
{
    int rc = mg_check_user_name(ctx, call, name);
    if (rc != TROVE_OK) {
        bson_init(reply);
        return rc;
    }
    rc = users_info(ctx, call, name, reply);
    return rc == TROVE_OK ? find_user(ctx, call, reply, name, v) : rc;
}

int mg_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    bson_t reply;
    struct user_view *v = malloc(sizeof(*v));
    int rc = v ? show(ctx, call, user->name, &reply, v) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    if (rc == TROVE_OK)
        rc = emit_view(ctx, call, v);
    if (v)
        bson_destroy(&reply);
    free(v);
    return rc;
}

int mg_user_access(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    bson_t reply;
    struct user_view *v = malloc(sizeof(*v));
    int rc = v ? show(ctx, call, user->name, &reply, v) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; rc == TROVE_OK && i < v->n; i++) {
        struct trove_database d = {.size = sizeof(d), .name = v->dbs[i]};
        rc = ctx->host->emit_database(call, &d);
    }
    if (v)
        bson_destroy(&reply);
    free(v);
    return rc;
}

static int change_roles(struct mg_ctx *ctx, struct trove_call *call, const struct trove_user *user, bool grant)
{
    int rc = mg_check_user_name(ctx, call, user->name);
    if (rc != TROVE_OK)
        return rc;
    if (user->n_databases == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "name at least one database");
    bson_t roles, cmd = BSON_INITIALIZER, reply;
    if ((rc = read_write_roles(ctx, call, user, &roles)) == TROVE_OK) {
        BSON_APPEND_UTF8(&cmd, grant ? "grantRolesToUser" : "revokeRolesFromUser", user->name);
        BSON_APPEND_ARRAY(&cmd, "roles", &roles);
        rc = admin_command(ctx, call, &cmd, &reply, grant ? "grantRolesToUser failed" : "revokeRolesFromUser failed");
        bson_destroy(&reply);
    }
    bson_destroy(&cmd);
    bson_destroy(&roles);
    return rc;
}

int mg_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    return change_roles(self, call, user, true);
}

/* Revoking access the user does not have is not_found, naming it. */
int mg_user_revoke(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    bson_t reply;
    struct user_view *v = malloc(sizeof(*v));
    int rc = v ? show(ctx, call, user->name, &reply, v) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    for (size_t i = 0; rc == TROVE_OK && i < user->n_databases; i++) {
        bool has = false;
        for (size_t j = 0; j < v->n && !has; j++)
            has = !strcmp(v->dbs[j], user->databases[i]);
        if (!has)
            rc = ctx->host->fail(call, TROVE_ENOTFOUND, "user \"%s\" has no access to database \"%s\"", user->name,
                                 user->databases[i]);
    }
    if (v)
        bson_destroy(&reply);
    free(v);
    return rc == TROVE_OK ? change_roles(ctx, call, user, false) : rc;
}

int mg_user_set_password(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct mg_ctx *ctx = self;
    int rc = mg_check_user_name(ctx, call, user->name);
    if (rc != TROVE_OK)
        return rc;
    if (!user->password || !*user->password)
        return ctx->host->fail(call, TROVE_EINVAL, "a new password is required");
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&cmd, "updateUser", user->name);
    BSON_APPEND_UTF8(&cmd, "pwd", user->password);
    append_mechanisms(&cmd);
    rc = admin_command(ctx, call, &cmd, &reply, "updateUser failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

/* ---- root ------------------------------------------------------------- */

int mg_root_enable_on(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *password,
                      bool report)
{
    char generated[33];
    int rc = TROVE_OK;
    if (!password || !*password) {
        if ((rc = ctx->host->random_password(generated, sizeof(generated))) != TROVE_OK)
            return ctx->host->fail(call, rc, "cannot generate a password");
        password = generated;
    }
    bson_t roles = BSON_INITIALIZER, role;
    BSON_APPEND_DOCUMENT_BEGIN(&roles, "0", &role);
    BSON_APPEND_UTF8(&role, "role", "root");
    BSON_APPEND_UTF8(&role, "db", "admin");
    bson_append_document_end(&roles, &role);
    rc = mg_user_upsert(ctx, call, c, MG_ROOT_USER, password, &roles);
    bson_destroy(&roles);
    if (rc == TROVE_OK && report && (rc = ctx->host->set_str(call, "name", MG_ROOT_USER)) == TROVE_OK)
        rc = ctx->host->set_str(call, "password", password);
    explicit_bzero(generated, sizeof(generated));
    return rc;
}

int mg_root_enable(void *self, struct trove_call *call, const char *password)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc == TROVE_OK) {
        rc = mg_root_enable_on(ctx, call, c, password, true);
        mongoc_client_destroy(c);
    }
    return rc;
}

int mg_root_disable(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_UTF8(&cmd, "dropUser", MG_ROOT_USER);
    if (!mg_cmd_raw(c, "admin", &cmd, &reply, &error) && mg_server_code(&error) != 11)   /* already gone: fine */
        rc = mg_fail_error(ctx, call, &error, "dropUser failed");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    mongoc_client_destroy(c);
    return rc;
}

int mg_root_show(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    bson_t reply;
    struct user_view *v = malloc(sizeof(*v));
    int rc = v ? users_info(ctx, call, MG_ROOT_USER, &reply) : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    bool enabled = false;
    bson_iter_t it, users;
    if (rc == TROVE_OK && bson_iter_init_find(&it, &reply, "users") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &users))
        while (bson_iter_next(&users))
            enabled = enabled || (view_of(&users, v) && !strcmp(v->name, MG_ROOT_USER));
    if (v)
        bson_destroy(&reply);
    free(v);
    return rc == TROVE_OK ? ctx->host->set_bool(call, "enabled", enabled) : rc;
}
