/*
 * allowlist.c - parses the allow-list file into a table from public key to
 * instance id. Parsing is strict: a line that is not a comment, blank or a
 * valid pair stops the load, so a typo never silently drops an agent.
 */
#include "allowlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "table.h"

struct allowlist {
    struct table *by_key;   /* Z85 public key -> char *instance */
};

bool instance_id_is_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > INSTANCE_ID_MAX || s[0] == '#')
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

static const char *next_token(char **p, size_t *len)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    char *start = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    *len = (size_t)(s - start);
    *p = s;
    return *len ? start : NULL;
}

/* One non-comment line: "<instance> <key> [# comment]". */
static int parse_line(struct allowlist *al, char *line, char *reason, size_t rlen)
{
    char *p = line;
    size_t ilen, klen, rest_len;
    const char *instance = next_token(&p, &ilen);
    const char *key = next_token(&p, &klen);
    const char *rest = next_token(&p, &rest_len);

    if (!key) {
        snprintf(reason, rlen, "expected '<instance-id> <public-key>'");
        return -1;
    }
    if (rest && rest[0] != '#') {
        snprintf(reason, rlen, "unexpected text after the public key");
        return -1;
    }
    if (!instance_id_is_valid(instance, ilen)) {
        snprintf(reason, rlen, "invalid instance id (1-%d printable characters, no spaces)", INSTANCE_ID_MAX);
        return -1;
    }
    char keybuf[KEYS_Z85_LEN + 1] = {0};
    if (klen == KEYS_Z85_LEN)
        memcpy(keybuf, key, klen);
    if (!keys_is_z85(keybuf)) {
        snprintf(reason, rlen, "invalid public key (expected 40 Z85 characters)");
        return -1;
    }
    if (table_get(al->by_key, keybuf, KEYS_Z85_LEN)) {
        snprintf(reason, rlen, "public key listed twice (a key speaks for one instance)");
        return -1;
    }
    char *copy = strndup(instance, ilen);
    if (!copy || table_put(al->by_key, keybuf, KEYS_Z85_LEN, copy) != 0) {
        snprintf(reason, rlen, "out of memory");
        return -1;
    }
    return 0;
}

struct allowlist *allowlist_load(const char *path, char *err, size_t errlen)
{
    struct allowlist *al = NULL;
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    struct stat st;
    FILE *f = fopen(path, "re");

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(err, errlen, "%s: writable by group or others; refusing an allow-list anyone may edit", path);
        goto fail;
    }
    al = calloc(1, sizeof *al);
    if (!al || !(al->by_key = table_new(free))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char reason[160];
        if (parse_line(al, p, reason, sizeof reason) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, reason);
            goto fail;
        }
    }
    free(line);
    fclose(f);
    return al;
fail:
    free(line);
    fclose(f);
    allowlist_free(al);
    return NULL;
}

void allowlist_free(struct allowlist *al)
{
    if (!al)
        return;
    table_free(al->by_key);
    free(al);
}

size_t allowlist_count(const struct allowlist *al)
{
    return table_count(al->by_key);
}

const char *allowlist_instance_for_key(const struct allowlist *al, const char *public_z85)
{
    return table_get(al->by_key, public_z85, strlen(public_z85));
}
