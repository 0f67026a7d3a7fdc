/*
 * quote.c - quoting for MariaDB statements, built with the support
 * library's string builder: identifiers in backticks, string literals
 * escaped by the client library (or by MariaDB's rules without a
 * connection), accounts, and database names as grant patterns. Whether a
 * name is allowed is names.c's business; nothing here runs SQL.
 */
#include <stdlib.h>
#include <string.h>

#include "mysql_plugin.h"

void my_quote_ident(struct tps_buf *b, const char *name)
{
    tps_quote_ident(b, name, '`');
}

void my_quote_literal(struct tps_buf *b, MYSQL *conn, const char *s)
{
    size_t n = strlen(s);
    char *escaped = malloc(2 * n + 1);   /* mysql_real_escape_string's worst case */
    if (!escaped) {
        b->oom = true;
        return;
    }
    unsigned long len = mysql_real_escape_string(conn, escaped, s, (unsigned long)n);
    tps_buf_add(b, "'");
    tps_buf_addn(b, escaped, len);
    tps_buf_add(b, "'");
    explicit_bzero(escaped, 2 * n + 1);   /* it may have been a password */
    free(escaped);
}

void my_quote_literal_offline(struct tps_buf *b, const char *s)
{
    tps_buf_add(b, "'");
    for (const char *c = s; *c; c++) {
        switch (*c) {
        case '\'': tps_buf_add(b, "\\'"); break;
        case '\\': tps_buf_add(b, "\\\\"); break;
        case '\n': tps_buf_add(b, "\\n"); break;
        case '\r': tps_buf_add(b, "\\r"); break;
        case '\032': tps_buf_add(b, "\\Z"); break;
        default: tps_buf_addn(b, c, 1);
        }
    }
    tps_buf_add(b, "'");
}

void my_quote_account(struct tps_buf *b, MYSQL *conn, const char *user, const char *host)
{
    my_quote_literal(b, conn, user);
    tps_buf_add(b, "@");
    my_quote_literal(b, conn, host);
}

static bool grant_wildcard(char c)
{
    return c == '_' || c == '%' || c == '\\';
}

char *my_grant_pattern(const char *name)
{
    size_t n = 0;
    for (const char *c = name; *c; c++)
        n += grant_wildcard(*c) ? 2 : 1;
    char *out = malloc(n + 1), *w = out;
    for (const char *c = name; out && *c; c++) {
        if (grant_wildcard(*c))
            *w++ = '\\';
        *w++ = *c;
    }
    if (out)
        *w = '\0';
    return out;
}

void my_grant_pattern_unescape(char *pattern)
{
    char *w = pattern;
    for (char *r = pattern; *r; r++) {
        if (r[0] == '\\' && grant_wildcard(r[1]))
            r++;
        *w++ = *r;
    }
    *w = '\0';
}

void my_quote_grant_db(struct tps_buf *b, const char *name)
{
    char *pattern = my_grant_pattern(name);
    if (!pattern) {
        b->oom = true;
        return;
    }
    my_quote_ident(b, pattern);
    free(pattern);
}
