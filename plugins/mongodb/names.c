/*
 * names.c - MongoDB's rules for names. Names only ever travel inside BSON
 * values (a command's argument, a role's db, the $db of a command), so no
 * character can break out of anything; these checks refuse what mongod
 * would refuse, with a clear message, before anything is sent, and keep
 * the plugin's own accounts and the system databases out of reach.
 */
#include <string.h>
#include <strings.h>

#include "mongodb.h"

/* Database names: 1-63 bytes, none of / \ . space " $ * < > : | ? or NUL
 * (mongod's list; the Windows characters are refused everywhere so a
 * backup restores on any platform). */
int mg_check_db_name(struct mg_ctx *ctx, struct trove_call *call, const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MG_DB_NAME_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "database name must be 1-%d bytes long", MG_DB_NAME_MAX);
    if (strpbrk(name, "/\\. \"$*<>:|?") || tps_has_control(name))
        return ctx->host->fail(call, TROVE_EINVAL,
                               "database name \"%s\" is invalid: MongoDB refuses / \\ . space \" $ * < > : | ? "
                               "and control characters in it", name);
    if (mg_system_db(name))
        return ctx->host->fail(call, TROVE_EINVAL, "database \"%s\" is a system database and cannot be managed",
                               name);
    return TROVE_OK;
}

bool mg_system_db(const char *name)
{
    return !strcasecmp(name, "admin") || !strcasecmp(name, "local") || !strcasecmp(name, "config");
}

bool mg_reserved_user(struct mg_ctx *ctx, const char *name)
{
    return !strcmp(name, ctx->s.admin_user) || !strcmp(name, ctx->s.replication_user) ||
           !strcmp(name, MG_ROOT_USER) || !strcmp(name, "__system");
}

/* User names: mongod takes any non-empty string without NUL; the plugin
 * also refuses control characters (they would garble every listing and
 * log line) and caps the length. */
int mg_check_user_name(struct mg_ctx *ctx, struct trove_call *call, const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MG_NAME_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "user name must be 1-%d bytes long", MG_NAME_MAX);
    if (tps_has_control(name))
        return ctx->host->fail(call, TROVE_EINVAL, "user name must not contain control characters");
    if (mg_reserved_user(ctx, name))
        return ctx->host->fail(call, TROVE_EINVAL, "user \"%s\" is reserved for the agent (root: use root.enable)",
                               name);
    return TROVE_OK;
}
