/*
 * input.c - secrets and argument texts read from standard input or a file
 * (see input.h). Everything is read whole within a stated bound; nothing is
 * truncated silently, and buffers that held input are wiped before release.
 */
#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define READ_CHUNK 65536

int input_check_password(const char *name, size_t len, char *err, size_t errlen)
{
    if (len <= INPUT_PASSWORD_MAX)
        return 0;
    err_set(err, errlen, "%s is longer than %d bytes", name, INPUT_PASSWORD_MAX);
    return -1;
}

void input_free_secret(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

char *input_read_secret(FILE *in, const char *name, char *err, size_t errlen)
{
    /* Room for the longest secret, the '\r' of a "\r\n" line end, and the NUL. */
    size_t cap = INPUT_PASSWORD_MAX + 2, n = 0;
    char *buf = malloc(cap);
    int c = EOF;
    if (!buf) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    while ((c = getc(in)) != EOF && c != '\n') {
        if (c == '\0') {
            err_set(err, errlen, "%s on standard input contains a NUL byte", name);
            goto fail;
        }
        if (n == cap - 1) {
            input_check_password(name, n + 1, err, errlen);
            goto fail;
        }
        buf[n++] = (char)c;
    }
    if (ferror(in)) {
        err_set(err, errlen, "cannot read %s from standard input: %s", name, strerror(errno));
        goto fail;
    }
    if (c == EOF && n == 0) {
        err_set(err, errlen, "expected %s on standard input", name);
        goto fail;
    }
    if (c == '\n' && n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (input_check_password(name, n, err, errlen) != 0)
        goto fail;
    return buf;
fail:
    explicit_bzero(buf, cap);
    free(buf);
    return NULL;
}

bool input_is_indirect(const char *arg)
{
    return arg && (strcmp(arg, "-") == 0 || arg[0] == '@');
}

/* Grow *buf (which may hold secrets) to at least want bytes: a fresh block,
 * the old one wiped, so no copy is left behind in freed memory. */
static int grow(char **buf, size_t *cap, size_t used, size_t want)
{
    size_t next = *cap ? *cap : READ_CHUNK;
    while (next < want)
        next *= 2;
    char *fresh = malloc(next);
    if (!fresh)
        return -1;
    if (*buf) {
        memcpy(fresh, *buf, used);
        explicit_bzero(*buf, *cap);
        free(*buf);
    }
    *buf = fresh;
    *cap = next;
    return 0;
}

/* All of `in` (named `from` in messages) as text of at most max bytes. */
static char *read_all(FILE *in, const char *from, const char *name, size_t max, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < READ_CHUNK + 1 && grow(&buf, &cap, n, n + READ_CHUNK + 1) != 0) {
            err_set(err, errlen, "out of memory");
            goto fail;
        }
        size_t got = fread(buf + n, 1, READ_CHUNK, in);
        n += got;
        if (n > max) {
            err_set(err, errlen, "%s from %s is longer than %zu bytes", name, from, max);
            goto fail;
        }
        if (got < READ_CHUNK)
            break;
    }
    if (ferror(in)) {
        err_set(err, errlen, "cannot read %s from %s: %s", name, from, strerror(errno));
        goto fail;
    }
    if (memchr(buf, '\0', n)) {
        err_set(err, errlen, "%s from %s contains a NUL byte", name, from);
        goto fail;
    }
    buf[n] = '\0';
    return buf;
fail:
    if (buf)
        explicit_bzero(buf, cap);
    free(buf);
    return NULL;
}

char *input_arg_text(const char *arg, const char *name, size_t max, char *err, size_t errlen)
{
    if (strcmp(arg, "-") == 0)
        return read_all(stdin, "standard input", name, max, err, errlen);
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "re");
        if (!f) {
            err_set(err, errlen, "cannot open %s for %s: %s", arg + 1, name, strerror(errno));
            return NULL;
        }
        char *text = read_all(f, arg + 1, name, max, err, errlen);
        fclose(f);
        return text;
    }
    if (strnlen(arg, max + 1) > max) {
        err_set(err, errlen, "%s is longer than %zu bytes", name, max);
        return NULL;
    }
    char *copy = strdup(arg);
    if (!copy)
        err_set(err, errlen, "out of memory");
    return copy;
}
