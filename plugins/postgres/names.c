/*
 * names.c - which role and database names the plugin accepts and which
 * objects it protects. The rules are PostgreSQL's own (NAMEDATALEN, the
 * reserved pg_ prefix, reserved role names) plus the plugin's system objects.
 */
#include <string.h>

#include "pg.h"

#define REPLICATION_PREFIX "trove_repl_"

static const char *kind_name(enum pg_object kind)
{
    return kind == PG_ROLE ? "role" : "database";
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

static int check_name(struct pg *pg, struct trove_call *call, enum pg_object kind, const char *name)
{
    const char *what = kind_name(kind);
    if (!name || !name[0])
        return pg->h->fail(call, TROVE_EINVAL, "a %s name is required", what);
    if (strlen(name) > PG_NAME_MAX)
        return pg->h->fail(call, TROVE_EINVAL, "%s name is %zu bytes long; PostgreSQL allows at most %d", what,
                           strlen(name), PG_NAME_MAX);
    if (!valid_utf8((const unsigned char *)name))
        return pg->h->fail(call, TROVE_EINVAL, "%s name is not valid UTF-8", what);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return pg->h->fail(call, TROVE_EINVAL, "%s name contains a control character", what);
    if (strncmp(name, "pg_", 3) == 0)
        return pg->h->fail(call, TROVE_EINVAL, "%s name \"%s\" is reserved: the prefix pg_ belongs to PostgreSQL",
                           what, name);
    if (kind == PG_ROLE && (strcmp(name, "public") == 0 || strcmp(name, "none") == 0))
        return pg->h->fail(call, TROVE_EINVAL, "role name \"%s\" is reserved by PostgreSQL", name);
    return TROVE_OK;
}

bool pg_is_protected(struct pg *pg, enum pg_object kind, const char *name)
{
    if (strncmp(name, "pg_", 3) == 0 || strcmp(name, "postgres") == 0)
        return true;
    if (kind == PG_ROLE)
        return strcmp(name, pg->user) == 0 || strcmp(name, pg->root_user) == 0 ||
               strncmp(name, REPLICATION_PREFIX, strlen(REPLICATION_PREFIX)) == 0;
    return strcmp(name, "template0") == 0 || strcmp(name, "template1") == 0 || strcmp(name, pg->database) == 0;
}

static int check_unprotected(struct pg *pg, struct trove_call *call, enum pg_object kind, const char *name)
{
    if (!pg_is_protected(pg, kind, name))
        return TROVE_OK;
    if (kind == PG_ROLE && strcmp(name, pg->root_user) == 0)
        return pg->h->fail(call, TROVE_ECONFLICT, "role \"%s\" is the root account: manage it with root-enable/disable",
                           name);
    return pg->h->fail(call, TROVE_ECONFLICT, "%s \"%s\" is a system object and cannot be managed through the API",
                       kind_name(kind), name);
}

int pg_check_managed(struct pg *pg, struct trove_call *call, enum pg_object kind, const char *name)
{
    int rc = check_name(pg, call, kind, name);
    return rc == TROVE_OK ? check_unprotected(pg, call, kind, name) : rc;
}

int pg_check_password(struct pg *pg, struct trove_call *call, const char *password)
{
    if (!password)
        return TROVE_OK;
    if (!password[0])
        return pg->h->fail(call, TROVE_EINVAL, "an empty password is not allowed (PostgreSQL treats it as no password)");
    if (strlen(password) >= PG_PASSWORD_MAX)
        return pg->h->fail(call, TROVE_EINVAL, "password is longer than %d bytes", PG_PASSWORD_MAX - 1);
    return TROVE_OK;
}
