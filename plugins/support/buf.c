/*
 * buf.c - the string builder and the quoting rules engines share. Quoting
 * only escapes; whether a name is allowed is checked before (tps_name_ok).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trove_plugin_support.h"

static bool reserve(struct tps_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *n = malloc(cap);   /* not realloc: a buffer that held a secret must not be left behind unzeroed */
    if (!n) {
        b->oom = true;
        return false;
    }
    if (b->data) {
        memcpy(n, b->data, b->len + 1);
        explicit_bzero(b->data, b->cap);
        free(b->data);
    }
    b->data = n;
    b->cap = cap;
    return true;
}

void tps_buf_addn(struct tps_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tps_buf_add(struct tps_buf *b, const char *s)
{
    tps_buf_addn(b, s, strlen(s));
}

void tps_buf_addf(struct tps_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *tps_buf_str(const struct tps_buf *b)
{
    return b->oom ? NULL : b->data ? b->data : "";
}

void tps_buf_free(struct tps_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void tps_buf_wipe(struct tps_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    tps_buf_free(b);
}

/* q, with every q inside doubled */
void tps_quote_ident(struct tps_buf *b, const char *name, char quote)
{
    tps_buf_addn(b, &quote, 1);
    for (const char *c = name; *c; c++) {
        if (*c == quote)
            tps_buf_addn(b, &quote, 1);
        tps_buf_addn(b, c, 1);
    }
    tps_buf_addn(b, &quote, 1);
}

void tps_quote_literal(struct tps_buf *b, const char *text)
{
    tps_quote_ident(b, text, '\'');
}

void tps_quote_conf(struct tps_buf *b, const char *text, char quote)
{
    tps_buf_addn(b, &quote, 1);
    for (const char *c = text; *c; c++) {
        if (*c == quote || *c == '\\')
            tps_buf_add(b, "\\");
        tps_buf_addn(b, c, 1);
    }
    tps_buf_addn(b, &quote, 1);
}

bool tps_name_ok(const char *name, size_t max, const char *extra, bool no_leading_digit)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > max || (no_leading_digit && name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  (extra && c && strchr(extra, c));
        if (!ok)
            return false;
    }
    return true;
}

bool tps_has_control(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return true;
    return false;
}
