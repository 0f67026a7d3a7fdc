/*
 * conf.c - strict INI files: sections, key = value, comment lines and blank
 * lines, nothing else. A mistake is reported with file and line rather than
 * guessed around. There are no inline comments: in `port = 1 # x` the value
 * is "1 # x", which then fails as an integer. Quoted values keep their
 * spaces and know two escapes, \" and \\. This file reads files; it never
 * decides what a setting means.
 */
#include "conf.h"
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "value.h"

#define CONF_MAX_FILE (1024 * 1024)
#define CONF_MAX_LINE (64 * 1024)

struct conf_section {
    char *name;
    struct trove_kv *kv;   /* key and value strings are owned (malloc'd) */
    size_t len, cap;
};

struct conf {
    struct conf_section *sections;
    size_t len, cap;
};


/* ----------------------------------------------------------------- store */

struct conf *conf_new(void)
{
    return calloc(1, sizeof(struct conf));
}

void conf_free(struct conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->len; i++) {
        struct conf_section *s = &c->sections[i];
        for (size_t k = 0; k < s->len; k++) {
            free((char *)s->kv[k].key);
            free((char *)s->kv[k].value);
        }
        free(s->kv);
        free(s->name);
    }
    free(c->sections);
    free(c);
}

static struct conf_section *find_section(const struct conf *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->len; i++)
        if (strcmp(c->sections[i].name, name) == 0)
            return &c->sections[i];
    return NULL;
}

static struct trove_kv *find_key(const struct conf_section *s, const char *key)
{
    if (!s || !key)
        return NULL;
    for (size_t i = 0; i < s->len; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return &s->kv[i];
    return NULL;
}

static int grow(void **items, size_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > SIZE_MAX / size)
        return -1;
    void *p = realloc(*items, ncap * size);
    if (!p)
        return -1;
    *items = p;
    *cap = ncap;
    return 0;
}

static struct conf_section *add_section(struct conf *c, const char *name)
{
    struct conf_section *s = find_section(c, name);
    if (s)
        return s;
    if (grow((void **)&c->sections, &c->cap, c->len, sizeof(*c->sections)) < 0)
        return NULL;
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    s = &c->sections[c->len++];
    *s = (struct conf_section){ .name = copy };
    return s;
}

int conf_set(struct conf *c, const char *section, const char *key, const char *value)
{
    if (!c || !section || !key || !value)
        return -1;
    struct conf_section *s = add_section(c, section);
    if (!s)
        return -1;
    char *v = strdup(value);
    if (!v)
        return -1;
    struct trove_kv *kv = find_key(s, key);
    if (kv) {
        free((char *)kv->value);
        kv->value = v;
        return 0;
    }
    char *k = strdup(key);
    if (!k || grow((void **)&s->kv, &s->cap, s->len, sizeof(*s->kv)) < 0) {
        free(k);
        free(v);
        return -1;
    }
    s->kv[s->len++] = (struct trove_kv){ .key = k, .value = v };
    return 0;
}

int conf_merge_section(struct conf *dst, const struct conf *src, const char *section)
{
    if (!dst || !section)
        return -1;
    const struct conf_section *s = find_section(src, section);
    if (!s)
        return 0;
    for (size_t i = 0; i < s->len; i++)
        if (conf_set(dst, section, s->kv[i].key, s->kv[i].value) < 0)
            return -1;
    return 0;
}

const struct trove_kv *conf_section(const struct conf *c, const char *section, size_t *n)
{
    const struct conf_section *s = find_section(c, section);
    if (n)
        *n = s ? s->len : 0;
    return s && s->len ? s->kv : NULL;
}

const char *conf_get(const struct conf *c, const char *section, const char *key)
{
    const struct trove_kv *kv = find_key(find_section(c, section), key);
    return kv ? kv->value : NULL;
}

const char *conf_get_or(const struct conf *c, const char *section, const char *key,
                        const char *fallback)
{
    const char *v = conf_get(c, section, key);
    return v ? v : fallback;
}

int conf_get_int(const struct conf *c, const char *section, const char *key, long fallback,
                 long min, long max, long *out, char *err, size_t errlen)
{
    if (!out)
        return -1;
    const char *v = conf_get(c, section, key);
    if (!v) {
        *out = fallback;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || isspace((unsigned char)*v) || *end || end == v) {
        err_set(err, errlen, "[%s] %s: \"%s\" is not an integer", section, key, v);
        return -1;
    }
    if (errno == ERANGE || n < min || n > max) {
        err_set(err, errlen, "[%s] %s: %s is outside %ld..%ld", section, key, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

int conf_get_bool(const struct conf *c, const char *section, const char *key, bool fallback,
                  bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    if (!out)
        return -1;
    const char *v = conf_get(c, section, key);
    if (!v) {
        *out = fallback;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    err_set(err, errlen, "[%s] %s: \"%s\" is not a boolean (use true or false)", section, key, v);
    return -1;
}

/* ---------------------------------------------------------------- parser */

struct parser {
    struct conf *c;
    const char *path;
    unsigned line;
    char section[256];   /* "" before the first section header */
    char *err;
    size_t errlen;
};

static void parse_err(struct parser *p, const char *fmt, ...) TROVE_PRINTF(2, 3);

static void parse_err(struct parser *p, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    err_set(p->err, p->errlen, "%s:%u: %s", p->path, p->line, reason);
}

static bool is_name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.';
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int parse_section(struct parser *p, char *s)
{
    size_t n = strlen(s);
    if (s[n - 1] != ']') {
        parse_err(p, "section header does not end with ']'");
        return -1;
    }
    s[n - 1] = '\0';
    char *name = trim(s + 1);
    if (!*name) {
        parse_err(p, "empty section name");
        return -1;
    }
    for (const char *q = name; *q; q++) {
        if (!is_name_char(*q)) {
            parse_err(p, "invalid character '%c' in section name", *q);
            return -1;
        }
    }
    if (strlen(name) >= sizeof(p->section)) {
        parse_err(p, "section name too long");
        return -1;
    }
    if (!add_section(p->c, name)) {
        parse_err(p, "out of memory");
        return -1;
    }
    snprintf(p->section, sizeof(p->section), "%s", name);
    return 0;
}

/* Unquote "..." in place: \" and \\ are the only escapes, nothing may follow
 * the closing quote. */
static int unquote(struct parser *p, char *v)
{
    char *w = v;
    for (char *r = v + 1; *r; r++) {
        if (*r == '\\') {
            r++;
            if (*r != '"' && *r != '\\') {
                parse_err(p, "unknown escape in quoted value (only \\\" and \\\\ are allowed)");
                return -1;
            }
            *w++ = *r;
        } else if (*r == '"') {
            if (r[1] != '\0') {
                parse_err(p, "text after the closing quote");
                return -1;
            }
            *w = '\0';
            return 0;
        } else {
            *w++ = *r;
        }
    }
    parse_err(p, "unterminated quoted value");
    return -1;
}

static int parse_pair(struct parser *p, char *s)
{
    char *eq = strchr(s, '=');
    if (!eq) {
        parse_err(p, "expected '[section]' or 'key = value'");
        return -1;
    }
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!*key) {
        parse_err(p, "missing key before '='");
        return -1;
    }
    for (const char *q = key; *q; q++) {
        if (!is_name_char(*q)) {
            parse_err(p, "invalid character '%c' in key \"%s\"", *q, key);
            return -1;
        }
    }
    if (!p->section[0]) {
        parse_err(p, "key \"%s\" appears before any [section]", key);
        return -1;
    }
    if (*value == '"' && unquote(p, value) < 0)
        return -1;
    if (find_key(find_section(p->c, p->section), key)) {
        parse_err(p, "duplicate key \"%s\" in [%s]", key, p->section);
        return -1;
    }
    if (conf_set(p->c, p->section, key, value) < 0) {
        parse_err(p, "out of memory");
        return -1;
    }
    return 0;
}

static int parse_line(struct parser *p, char *line, size_t len)
{
    if (memchr(line, '\0', len)) {
        parse_err(p, "NUL byte in line");
        return -1;
    }
    if (!tv_utf8_valid(line, len)) {
        parse_err(p, "invalid UTF-8");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            parse_err(p, "control character 0x%02x in line", ch);
            return -1;
        }
    }
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[')
        return parse_section(p, s);
    return parse_pair(p, s);
}

static struct conf *parse_stream(FILE *f, const char *path, char *err, size_t errlen)
{
    struct parser p = { .c = conf_new(), .path = path, .err = err, .errlen = errlen };
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    if (!p.c) {
        err_set(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    errno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        p.line++;
        total += (size_t)n;
        if (total > CONF_MAX_FILE) {
            parse_err(&p, "file larger than %d bytes", CONF_MAX_FILE);
            goto fail;
        }
        if (n > CONF_MAX_LINE) {
            parse_err(&p, "line longer than %d bytes", CONF_MAX_LINE);
            goto fail;
        }
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (parse_line(&p, line, len) < 0)
            goto fail;
    }
    if (ferror(f)) {
        err_set(err, errlen, "%s: read failed: %s", path, strerror(errno ? errno : EIO));
        goto fail;
    }
    free(line);
    return p.c;
fail:
    free(line);
    conf_free(p.c);
    return NULL;
}

static struct conf *load(const char *path, bool secret, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path) {
        err_set(err, errlen, "(null): no path given");
        return NULL;
    }
    /* Check the file we opened, not the name: no race between stat and open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err_set(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        err_set(err, errlen,
                "%s: mode %04o gives group or others access; a secrets file must be 0600",
                path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct conf *c = parse_stream(f, path, err, errlen);
    fclose(f);
    return c;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
    return load(path, false, err, errlen);
}

struct conf *conf_load_secret(const char *path, char *err, size_t errlen)
{
    return load(path, true, err, errlen);
}
