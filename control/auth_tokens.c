/*
 * auth_tokens.c - the token file backend of auth.h. Tokens are kept only as
 * SHA-256 digests and every lookup compares the digest with every entry in
 * constant time, so neither memory dumps nor timing reveal a token. Parsing
 * is strict: one bad line refuses the file.
 */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

#define DIGEST_LEN 32
#define TOKENS_MAX 4096

struct token_entry {
    unsigned char digest[DIGEST_LEN];   /* SHA-256 of the token */
    char tenant[AUTH_TENANT_MAX + 1];
    bool admin;
};

struct tokens {
    struct token_entry *items;
    size_t n, cap;
};

/* Every entry is compared (no early exit), so the time taken does not
 * depend on which entry, if any, matches. */
static const struct token_entry *find(const struct tokens *t, const unsigned char d[DIGEST_LEN])
{
    const struct token_entry *hit = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(t->items[i].digest, d, DIGEST_LEN) == 0)
            hit = &t->items[i];
    return hit;
}

static int digest(const char *token, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) != 1 || n != DIGEST_LEN)
        return -1;
    return 0;
}

static bool token_is_valid(const char *s, size_t len)
{
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

static const char *next_word(char **p, size_t *len)
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

/* One non-comment line: "TOKEN TENANT [admin] [# comment]". */
static int parse_line(struct tokens *t, char *line, char *reason, size_t rlen)
{
    char *p = line;
    size_t tok_len, ten_len, role_len, rest_len;
    const char *token = next_word(&p, &tok_len);
    const char *tenant = next_word(&p, &ten_len);
    const char *role = next_word(&p, &role_len);
    const char *rest = role && role[0] != '#' ? next_word(&p, &rest_len) : NULL;

    if (!tenant) {
        err_set(reason, rlen, "expected 'TOKEN TENANT [admin]'");
        return -1;
    }
    if (!token_is_valid(token, tok_len)) {
        err_set(reason, rlen, "invalid token (%d-%d printable characters without spaces)", AUTH_TOKEN_MIN,
                AUTH_TOKEN_MAX);
        return -1;
    }
    if (t->n >= TOKENS_MAX) {
        err_set(reason, rlen, "more than %d tokens", TOKENS_MAX);
        return -1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct token_entry *items = realloc(t->items, cap * sizeof *items);
        if (!items) {
            err_set(reason, rlen, "out of memory");
            return -1;
        }
        t->items = items;
        t->cap = cap;
    }
    struct token_entry *e = &t->items[t->n];
    memset(e, 0, sizeof *e);
    if (ten_len <= AUTH_TENANT_MAX)
        memcpy(e->tenant, tenant, ten_len);
    if (ten_len > AUTH_TENANT_MAX || !auth_tenant_is_valid(e->tenant)) {
        err_set(reason, rlen, "invalid tenant id (1-%d characters of A-Z a-z 0-9 _ . -)", AUTH_TENANT_MAX);
        return -1;
    }
    if (role && role[0] != '#') {
        if (role_len != 5 || memcmp(role, "admin", 5) != 0 || (rest && rest[0] != '#')) {
            err_set(reason, rlen, "unexpected text after the tenant (only 'admin' may follow)");
            return -1;
        }
        e->admin = true;
    }
    if (digest(token, tok_len, e->digest) != 0) {
        err_set(reason, rlen, "cannot hash the token");
        return -1;
    }
    if (find(t, e->digest)) {
        err_set(reason, rlen, "token listed twice (a token speaks for one tenant)");
        return -1;
    }
    t->n++;
    return 0;
}

static int check_file(FILE *f, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        err_set(err, errlen, "%s: writable by group or others; refusing a token file anyone may edit", path);
        return -1;
    }
    if (st.st_mode & S_IROTH) {
        err_set(err, errlen, "%s: readable by others; tokens are secrets (chmod 600)", path);
        return -1;
    }
    return 0;
}

static void tokens_free(void *state)
{
    struct tokens *t = state;
    if (!t)
        return;
    if (t->items)
        OPENSSL_cleanse(t->items, t->cap * sizeof *t->items);
    free(t->items);
    free(t);
}

static int load(struct tokens *t, FILE *f, const char *path, char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (memchr(line, '\0', (size_t)n)) {
            err_set(err, errlen, "%s:%u: NUL byte in line", path, lineno);
            rc = -1;
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char reason[160];
        if (parse_line(t, p, reason, sizeof reason) != 0) {
            err_set(err, errlen, "%s:%u: %s", path, lineno, reason);
            rc = -1;
        }
    }
    if (line)
        OPENSSL_cleanse(line, cap);
    free(line);
    return rc;
}

static enum auth_verdict tokens_authenticate(void *state, const char *token, const char *url_tenant,
                                             struct auth_identity *who, char *why, size_t whylen)
{
    struct tokens *t = state;
    unsigned char d[DIGEST_LEN];
    if (!token || !token[0]) {
        err_set(why, whylen, "authentication required: send a token in X-Auth-Token");
        return AUTH_UNAUTHENTICATED;
    }
    size_t len = strnlen(token, AUTH_TOKEN_MAX + 1);
    const struct token_entry *e = NULL;
    if (token_is_valid(token, len) && digest(token, len, d) == 0)
        e = find(t, d);
    if (!e) {
        err_set(why, whylen, "the token is not valid");
        return AUTH_UNAUTHENTICATED;
    }
    if (strcmp(e->tenant, url_tenant) != 0) {
        err_set(why, whylen, "User with tenant id %s cannot access this resource.", e->tenant);
        return AUTH_FORBIDDEN;
    }
    snprintf(who->tenant, sizeof who->tenant, "%s", e->tenant);
    who->admin = e->admin;
    return AUTH_OK;
}

static const struct auth_ops tokens_ops = {
    .kind = "tokens",
    .authenticate = tokens_authenticate,
    .loopback_only = NULL,
    .free = tokens_free,
};

struct auth *auth_open_tokens(const char *path, char *err, size_t errlen)
{
    struct tokens *t = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (check_file(f, path, err, errlen) != 0)
        goto fail;
    t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    if (load(t, f, path, err, errlen) != 0)
        goto fail;
    if (t->n == 0) {
        err_set(err, errlen, "%s: no tokens (an empty token file would lock everyone out)", path);
        goto fail;
    }
    fclose(f);
    struct auth *a = auth_new(&tokens_ops, t);
    if (!a)
        err_set(err, errlen, "out of memory");
    return a;
fail:
    fclose(f);
    tokens_free(t);
    return NULL;
}
