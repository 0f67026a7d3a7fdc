/*
 * names.c - which names the plugin lets through, and how they reach CQL.
 * Keyspaces follow Cassandra's own rule (\w+, at most 48) and the system*
 * ones are protected. Role names are stored literally: any UTF-8 without
 * control characters, up to CS_ROLE_NAME_MAX bytes, always double-quoted
 * with " doubled; the plugin's own roles are refused to users. Literals are
 * single-quoted with ' doubled (CQL has no backslash escapes).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cassandra.h"

bool cs_keyspace_is_system(const char *name)
{
    return strncasecmp(name, "system", 6) == 0;
}

int cs_check_keyspace(struct cs_ctx *ctx, struct trove_call *call, const char *name)
{
    if (!name || !cql_valid_keyspace_name(name))
        return ctx->host->fail(call, TROVE_EINVAL, "keyspace name \"%.80s%s\" is invalid: use 1-48 of [A-Za-z0-9_]",
                               name ? name : "", name && strlen(name) > 80 ? "..." : "");
    if (cs_keyspace_is_system(name))
        return ctx->host->fail(call, TROVE_EINVAL, "keyspace \"%s\" is reserved: names starting with \"system\" "
                                                   "belong to Cassandra", name);
    return TROVE_OK;
}

bool cs_role_protected(const struct cs_ctx *ctx, const char *name)
{
    return !strcasecmp(name, ctx->s.admin_user) || !strcasecmp(name, ctx->s.root_user) ||
           !strcasecmp(name, ctx->s.cluster_role) || !strcasecmp(name, CS_DEFAULT_SUPERUSER) ||
           !strncasecmp(name, "trove_", 6);
}

static bool utf8_ok(const char *s)
{
    char *q = cql_quote_literal(s);
    free(q);
    return q != NULL;
}

int cs_check_role(struct cs_ctx *ctx, struct trove_call *call, const char *name)
{
    if (!name || !*name)
        return ctx->host->fail(call, TROVE_EINVAL, "a role name must not be empty");
    if (strlen(name) > CS_ROLE_NAME_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "role name is %zu bytes long; at most %d are allowed",
                               strlen(name), CS_ROLE_NAME_MAX);
    if (tps_has_control(name))
        return ctx->host->fail(call, TROVE_EINVAL, "a role name must not hold control characters");
    if (!utf8_ok(name))
        return ctx->host->fail(call, TROVE_EINVAL, "a role name must be UTF-8");
    if (cs_role_protected(ctx, name))
        return ctx->host->fail(call, TROVE_EINVAL, "role \"%s\" is reserved for the plugin and Cassandra "
                                                   "(names starting with trove_, cassandra, the admin, root and "
                                                   "cluster roles)", name);
    return TROVE_OK;
}

static bool add_quoted(struct tps_buf *b, char *quoted)
{
    if (!quoted)
        return false;
    tps_buf_add(b, quoted);
    explicit_bzero(quoted, strlen(quoted));   /* a literal may be a password */
    free(quoted);
    return tps_buf_str(b) != NULL;
}

bool cs_add_ident(struct tps_buf *b, const char *name)
{
    return add_quoted(b, cql_quote_identifier(name));
}

bool cs_add_literal(struct tps_buf *b, const char *text)
{
    return add_quoted(b, cql_quote_literal(text));
}

bool cs_label_ok(const char *text, bool spaces)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > 64 || text[0] == ' ' || text[n - 1] == ' ')
        return false;
    const char *allowed = spaces ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.- "
                                 : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    return strspn(text, allowed) == n;
}
