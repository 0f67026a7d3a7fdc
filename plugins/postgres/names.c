/*
 * names.c - which role and database names the plugin accepts. PostgreSQL's
 * syntax rules (NAMEDATALEN, UTF-8, no control characters) are checked here;
 * every reserved name, PostgreSQL's and the plugin's own, is in RESERVED.
 */
#include <stddef.h>
#include <string.h>

#include "pg.h"

enum reserved_match {
    MATCH_NAME,     /* exactly `text` */
    MATCH_PREFIX,   /* any name starting with `text` */
    MATCH_SETTING,  /* exactly the value of the setting `text` (a struct pg_settings field) */
};

struct reserved {
    enum pg_object kind;
    enum reserved_match match;
    const char *text;
    size_t setting;     /* MATCH_SETTING: offsetof(struct pg_settings, field) */
    int status;         /* TROVE_EINVAL: PostgreSQL's rule; TROVE_ECONFLICT: an object in use */
    const char *why;
};

#define RESERVE_NAME(kind, name, status, why) {kind, MATCH_NAME, name, 0, status, why}
#define RESERVE_PREFIX(kind, prefix, status, why) {kind, MATCH_PREFIX, prefix, 0, status, why}
#define RESERVE_SETTING(kind, field, status, why) \
    {kind, MATCH_SETTING, #field, offsetof(struct pg_settings, field), status, why}

/* The one list of reserved names. Every door that takes a role or database
 * name checks it here, listings hide what it matches, and the plugin names
 * its own roles inside it (trove_repl_<random> under "trove_"), so no
 * tenant can claim one first. docs/plugins/postgres.md repeats this table;
 * tests/postgres/test_reserved.py holds the two together. */
static const struct reserved RESERVED[] = {
    RESERVE_PREFIX(PG_ROLE, "pg_", TROVE_EINVAL, "the prefix pg_ belongs to PostgreSQL"),
    RESERVE_NAME(PG_ROLE, "public", TROVE_EINVAL, "PostgreSQL's name for every role"),
    RESERVE_NAME(PG_ROLE, "none", TROVE_EINVAL, "reserved by PostgreSQL"),
    RESERVE_NAME(PG_ROLE, "postgres", TROVE_ECONFLICT, "the bootstrap superuser"),
    RESERVE_SETTING(PG_ROLE, user, TROVE_ECONFLICT, "the agent's admin role"),
    RESERVE_SETTING(PG_ROLE, root_user, TROVE_ECONFLICT, "the root account: manage it with root-enable/disable"),
    RESERVE_PREFIX(PG_ROLE, "trove_", TROVE_ECONFLICT, "the prefix trove_ belongs to the plugin's own roles"),
    RESERVE_PREFIX(PG_DATABASE, "pg_", TROVE_EINVAL, "the prefix pg_ belongs to PostgreSQL"),
    RESERVE_NAME(PG_DATABASE, "postgres", TROVE_ECONFLICT, "a system database"),
    RESERVE_NAME(PG_DATABASE, "template0", TROVE_ECONFLICT, "a system database"),
    RESERVE_NAME(PG_DATABASE, "template1", TROVE_ECONFLICT, "a system database"),
    RESERVE_SETTING(PG_DATABASE, database, TROVE_ECONFLICT, "the agent's maintenance database"),
};

static const char *kind_name(enum pg_object kind)
{
    return kind == PG_ROLE ? "role" : "database";
}

static bool reserved_matches(struct pg_ctx *ctx, const struct reserved *r, const char *name)
{
    switch (r->match) {
    case MATCH_NAME:
        return strcmp(name, r->text) == 0;
    case MATCH_PREFIX:
        return strncmp(name, r->text, strlen(r->text)) == 0;
    case MATCH_SETTING: {
        const char *value;
        memcpy(&value, (const char *)&ctx->s + r->setting, sizeof(value));
        return value && strcmp(name, value) == 0;
    }
    }
    return false;
}

/* The first RESERVED entry that covers `name`, or NULL. */
static const struct reserved *reserved_entry(struct pg_ctx *ctx, enum pg_object kind, const char *name)
{
    for (size_t i = 0; i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++)
        if (RESERVED[i].kind == kind && reserved_matches(ctx, &RESERVED[i], name))
            return &RESERVED[i];
    return NULL;
}

bool pg_name_reserved(struct pg_ctx *ctx, enum pg_object kind, const char *name)
{
    return reserved_entry(ctx, kind, name) != NULL;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2) || (c == 0xF4 && s[1] > 0x8F) || c > 0xF4)
            return false;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90))
            return false;
        for (int i = 1; i <= n; i++)
            if ((s[i] & 0xC0) != 0x80)
                return false;
        s += n + 1;
    }
    return true;
}

static int check_syntax(struct pg_ctx *ctx, struct trove_call *call, enum pg_object kind, const char *name)
{
    const char *what = kind_name(kind);
    if (!name || !name[0])
        return ctx->host->fail(call, TROVE_EINVAL, "a %s name is required", what);
    if (strlen(name) > PG_NAME_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "%s name is %zu bytes long; PostgreSQL allows at most %d", what,
                               strlen(name), PG_NAME_MAX);
    if (!valid_utf8((const unsigned char *)name))
        return ctx->host->fail(call, TROVE_EINVAL, "%s name is not valid UTF-8", what);
    if (tps_has_control(name))
        return ctx->host->fail(call, TROVE_EINVAL, "%s name contains a control character", what);
    return TROVE_OK;
}

int pg_name_check(struct pg_ctx *ctx, struct trove_call *call, enum pg_object kind, const char *name)
{
    int rc = check_syntax(ctx, call, kind, name);
    if (rc != TROVE_OK)
        return rc;
    const struct reserved *r = reserved_entry(ctx, kind, name);
    if (!r)
        return TROVE_OK;
    return ctx->host->fail(call, r->status, "%s name \"%s\" is reserved (%s) and cannot be managed through the API",
                           kind_name(kind), name, r->why);
}

int pg_password_check(struct pg_ctx *ctx, struct trove_call *call, const char *password)
{
    if (!password)
        return TROVE_OK;
    if (!password[0])
        return ctx->host->fail(call, TROVE_EINVAL,
                               "an empty password is not allowed (PostgreSQL treats it as no password)");
    if (strlen(password) >= PG_PASSWORD_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "password is longer than %d bytes", PG_PASSWORD_MAX - 1);
    return TROVE_OK;
}
