/*
 * names.c - what the plugin lets through to Redis and its config file: ACL
 * user names, key patterns, passwords, source hosts; and the password rule
 * that sends only a SHA-256 hash. Pure functions: no connection, no file.
 */
#include <ctype.h>
#include <string.h>

#include "redis_plugin.h"

/* A letter, digit or '_' first, so neither Redis nor its config file can
 * read the name as a rule such as ">pw", "~keys", "+@all". */
bool rd_user_name_ok(const char *name)
{
    return tps_name_ok(name, 64, ".:@-", false) && !strchr(".:@-", name[0]);
}

/* What a user's "databases" are: not starting with a rule prefix, and
 * without spaces or quotes (the config file's parser would split or
 * unquote them). */
bool rd_pattern_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > 256 || strchr("~%&+-@<>#!", p[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'')
            return false;
    }
    return true;
}

/* Only their SHA-256 hash is sent to Redis (rd_password_rule); the admin's
 * AUTH and a replica's masterauth are the only cleartext passwords the
 * server receives. */
bool rd_password_ok(const char *pw)
{
    size_t n = pw ? strlen(pw) : 0;
    return n > 0 && n <= 512 && !tps_has_control(pw);
}

bool rd_host_ok(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n > 253 || host[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-:_", host[i]))
            return false;
    return true;
}

/* Sending "#<hash>" instead of ">password" keeps the cleartext off the
 * connection, and so out of everything Redis records about a command (slow
 * log, MONITOR, a crash report's dump of the command being run). */
void rd_password_rule(const char *password, char out[RD_PASSWORD_RULE_SIZE])
{
    out[0] = '#';
    tps_sha256_hex(password, strlen(password), out + 1);
}
