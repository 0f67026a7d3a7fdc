/*
 * proto.c - the example datastore's line format and socket helpers (see
 * proto.h). Every length is checked before a byte is trusted.
 */
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool plain_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '%' && c != '-';
}

void kv_encode(struct tps_buf *b, const char *token)
{
    if (!*token) {
        tps_buf_add(b, "-");
        return;
    }
    for (const unsigned char *c = (const unsigned char *)token; *c; c++) {
        if (plain_byte(*c))
            tps_buf_addn(b, (const char *)c, 1);
        else
            tps_buf_addf(b, "%%%02X", *c);
    }
}

void kv_line(struct tps_buf *b, const char *const *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            tps_buf_add(b, " ");
        kv_encode(b, tokens[i]);
    }
    tps_buf_add(b, "\n");
}

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                                                                       : -1;
}

/* Decode one token in place; false on bad encoding. */
static bool decode(char *t)
{
    if (!strcmp(t, "-")) {
        t[0] = '\0';
        return true;
    }
    char *out = t;
    for (char *in = t; *in; in++) {
        if (*in == '-')
            return false;
        if (*in != '%') {
            *out++ = *in;
            continue;
        }
        int hi = hex(in[1]), lo = hi >= 0 ? hex(in[2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0))
            return false;
        *out++ = (char)(hi * 16 + lo);
        in += 2;
    }
    *out = '\0';
    return true;
}

int kv_split(char *line, char **tokens)
{
    int n = 0;
    char *p = line;
    if (!*p)
        return 0;
    for (;;) {
        if (n == KV_TOKENS_MAX)
            return -1;
        char *sp = strchr(p, ' ');
        if (sp)
            *sp = '\0';
        if (!*p || !decode(p))
            return -1;
        tokens[n++] = p;
        if (!sp)
            return n;
        p = sp + 1;
    }
}

static int wait_fd(int fd, short events, unsigned timeout_ms)
{
    struct pollfd pfd = {fd, events, 0};
    for (;;) {
        int r = poll(&pfd, 1, (int)timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        return r == 0 ? -ETIMEDOUT : 0;
    }
}

int kv_dial(const char *host, int port, unsigned timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return -EHOSTUNREACH;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        rc = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, timeout_ms) : -errno;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr))
            rc = -(soerr ? soerr : errno);
    }
    freeaddrinfo(res);
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

int kv_send(int fd, const char *buf, size_t len, unsigned timeout_ms)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, timeout_ms);
            if (rc != 0)
                return rc;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w, len -= (size_t)w;
    }
    return 0;
}

char *kv_read_line(struct kv_reader *r, unsigned timeout_ms)
{
    for (;;) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl) {
            *nl = '\0';
            size_t used = (size_t)(nl - r->buf) + 1;
            char *line = strdup(r->buf);
            memmove(r->buf, nl + 1, r->len - used);
            r->len -= used;
            if (!line)
                errno = ENOMEM;
            return line;
        }
        if (r->len >= KV_LINE_MAX) {
            errno = EMSGSIZE;
            return NULL;
        }
        if (r->cap - r->len < 65536) {
            size_t cap = r->cap ? r->cap * 2 : 65536;
            char *n = realloc(r->buf, cap + 1);
            if (!n) {
                errno = ENOMEM;
                return NULL;
            }
            r->buf = n, r->cap = cap;
        }
        ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (got > 0) {
            r->len += (size_t)got;
            continue;
        }
        if (got == 0) {
            errno = ECONNRESET;
            return NULL;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return NULL;
        int rc = wait_fd(r->fd, POLLIN, timeout_ms);
        if (rc != 0) {
            errno = -rc;
            return NULL;
        }
    }
}

void kv_reader_free(struct kv_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}
