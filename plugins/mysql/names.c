/*
 * names.c - MySQL/MariaDB name rules for users, hosts, databases and
 * passwords, and the list of system objects the API must not touch.
 * Validation only: quoting happens where statements are built (quote.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mysql_plugin.h"

#define USER_NAME_MAX 80      /* characters */
#define HOST_MAX 255          /* characters (mysql.user.Host is CHAR(255)) */
#define DATABASE_NAME_MAX 64  /* characters */
#define PASSWORD_MAX 512      /* bytes */

struct utf8_info {
    size_t chars;
    bool valid;
    bool supplementary;   /* U+10000 and above: not storable in the utf8mb3 system tables */
    bool control;         /* C0/C1 control characters, DEL */
};

static struct utf8_info utf8_scan(const char *s)
{
    struct utf8_info in = {0, true, false, false};
    const unsigned char *c = (const unsigned char *)s;
    while (*c) {
        uint32_t cp;
        int extra;
        if (*c < 0x80)
            cp = *c, extra = 0;
        else if ((*c & 0xE0) == 0xC0)
            cp = *c & 0x1F, extra = 1;
        else if ((*c & 0xF0) == 0xE0)
            cp = *c & 0x0F, extra = 2;
        else if ((*c & 0xF8) == 0xF0)
            cp = *c & 0x07, extra = 3;
        else {
            in.valid = false;
            return in;
        }
        c++;
        for (int i = 0; i < extra; i++, c++) {
            if ((*c & 0xC0) != 0x80) {
                in.valid = false;
                return in;
            }
            cp = (cp << 6) | (*c & 0x3F);
        }
        static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            in.valid = false;
            return in;
        }
        if (cp >= 0x10000)
            in.supplementary = true;
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
            in.control = true;
        in.chars++;
    }
    return in;
}

/* Rules shared by user and database names. */
static int check_text_name(struct my_ctx *ctx, struct trove_call *call, const char *what, const char *name,
                           size_t max_chars)
{
    if (!name || !*name)
        return ctx->host->fail(call, TROVE_EINVAL, "%s name must not be empty", what);
    struct utf8_info in = utf8_scan(name);
    if (!in.valid)
        return ctx->host->fail(call, TROVE_EINVAL, "%s name is not valid UTF-8", what);
    if (in.chars > max_chars)
        return ctx->host->fail(call, TROVE_EINVAL, "%s name is %zu characters long; MariaDB allows at most %zu", what,
                               in.chars, max_chars);
    if (in.control)
        return ctx->host->fail(call, TROVE_EINVAL, "%s name must not contain control characters", what);
    if (in.supplementary)
        return ctx->host->fail(call, TROVE_EINVAL,
                               "%s name must not contain characters outside the Basic Multilingual Plane "
                               "(MariaDB stores names as utf8mb3)", what);
    size_t len = strlen(name);
    if (name[len - 1] == ' ' || name[0] == ' ')
        return ctx->host->fail(call, TROVE_EINVAL, "%s name must not start or end with a space", what);
    return TROVE_OK;
}

int my_name_check_user(struct my_ctx *ctx, struct trove_call *call, const char *name)
{
    return check_text_name(ctx, call, "user", name, USER_NAME_MAX);
}

int my_name_check_host(struct my_ctx *ctx, struct trove_call *call, const char *host)
{
    if (!host || !*host)
        return ctx->host->fail(call, TROVE_EINVAL, "host must not be empty (use %% for any host)");
    size_t n = strlen(host);
    if (n > HOST_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "host is %zu characters long; MariaDB allows at most %d", n,
                               HOST_MAX);
    for (const char *c = host; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  strchr(".-_%:/", *c) != NULL;
        if (!ok)
            return ctx->host->fail(call, TROVE_EINVAL,
                                   "host may contain only letters, digits and . - _ %% : / (a name, an address, "
                                   "a netmask or a %% pattern)");
    }
    return TROVE_OK;
}

int my_name_check_source_host(struct my_ctx *ctx, struct trove_call *call, const char *host)
{
    if (!host || !*host)
        return ctx->host->fail(call, TROVE_EINVAL, "source host must not be empty");
    if (strlen(host) > HOST_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "source host is too long");
    for (const char *c = host; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  strchr(".-_:", *c) != NULL;
        if (!ok)
            return ctx->host->fail(call, TROVE_EINVAL, "source host must be a host name or an IP address");
    }
    return TROVE_OK;
}

int my_name_check_database(struct my_ctx *ctx, struct trove_call *call, const char *name)
{
    int rc = check_text_name(ctx, call, "database", name, DATABASE_NAME_MAX);
    if (rc != TROVE_OK)
        return rc;
    if (strpbrk(name, "/\\."))
        return ctx->host->fail(call, TROVE_EINVAL, "database name must not contain '/', '\\' or '.'");
    if (strncasecmp(name, "#mysql50#", 9) == 0)
        return ctx->host->fail(call, TROVE_EINVAL, "database name must not start with #mysql50#");
    return TROVE_OK;
}

int my_name_check_password(struct my_ctx *ctx, struct trove_call *call, const char *password)
{
    if (!password || !*password)
        return ctx->host->fail(call, TROVE_EINVAL, "password must not be empty");
    if (strlen(password) > PASSWORD_MAX)
        return ctx->host->fail(call, TROVE_EINVAL, "password is longer than %d bytes", PASSWORD_MAX);
    if (!utf8_scan(password).valid)
        return ctx->host->fail(call, TROVE_EINVAL, "password is not valid UTF-8");
    return TROVE_OK;
}

/* The protected names, as docs/plugins/mysql.md lists them under "Protected
 * names" (tests/mysql/test_users.py reads both tables and checks they agree).
 * MariaDB compares user names case-sensitively; the keywords that name no
 * account, and database names, are refused in any case. */
enum name_match { MATCH_EXACT, MATCH_ANY_CASE };

struct protected_name {
    const char *name;
    enum name_match match;
};

static const struct protected_name PROTECTED_USERS[] = {
    {"root", MATCH_EXACT},
    {"mariadb.sys", MATCH_EXACT},
    {"mysql", MATCH_EXACT},
    {"PUBLIC", MATCH_ANY_CASE},
    {"NONE", MATCH_ANY_CASE},
    {"CURRENT_USER", MATCH_ANY_CASE},
};

static const struct protected_name PROTECTED_DATABASES[] = {
    {"mysql", MATCH_ANY_CASE},
    {"information_schema", MATCH_ANY_CASE},
    {"performance_schema", MATCH_ANY_CASE},
    {"sys", MATCH_ANY_CASE},
    {"lost+found", MATCH_ANY_CASE},
};

static bool in_table(const struct protected_name *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        bool same = table[i].match == MATCH_EXACT ? strcmp(name, table[i].name) == 0
                                                  : strcasecmp(name, table[i].name) == 0;
        if (same)
            return true;
    }
    return false;
}

/* Also the admin account, and the replication accounts: replication_user
 * alone or followed by '_' and anything (snapshot's <prefix>_<random>). */
bool my_name_is_system_user(const struct my_ctx *ctx, const char *name)
{
    if (in_table(PROTECTED_USERS, sizeof(PROTECTED_USERS) / sizeof(PROTECTED_USERS[0]), name))
        return true;
    if (ctx->s.admin_user && strcmp(name, ctx->s.admin_user) == 0)
        return true;
    size_t n = strlen(ctx->s.replication_user);
    return strncmp(name, ctx->s.replication_user, n) == 0 && (name[n] == '\0' || name[n] == '_');
}

bool my_name_is_system_database(const char *name)
{
    return in_table(PROTECTED_DATABASES, sizeof(PROTECTED_DATABASES) / sizeof(PROTECTED_DATABASES[0]), name);
}

const char *my_user_host(const struct trove_user *u)
{
    return u->host ? u->host : "%";
}
