/*
 * proto.h - the wire format of the example datastore (kvd), shared by the
 * server, its command-line client and the plugin: one request or reply per
 * line, tokens separated by single spaces, each token percent-encoded, so a
 * name or value can never break out of its token. Nothing here is part of
 * the plugin ABI; it is the "engine" a plugin talks to.
 */
#ifndef EXAMPLE_PROTO_H
#define EXAMPLE_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "trove_plugin_support.h"

#define KV_LINE_MAX (4u * 1024 * 1024)   /* longest line either side accepts */
#define KV_TOKENS_MAX 16                 /* most tokens in one line */

/*
 * Token encoding: every byte outside 0x21..0x7e, and '%' and '-', becomes
 * %XX; the empty string is the single token "-". So "a b" is a%20b and
 * "x-y" is x%2Dy.
 */
void kv_encode(struct tps_buf *b, const char *token);
/* Append tokens, space-separated and encoded, then '\n'. */
void kv_line(struct tps_buf *b, const char *const *tokens, size_t n);

/* Split a line (without its '\n') in place into at most KV_TOKENS_MAX
 * decoded tokens. Returns how many, or -1 when a token is badly encoded,
 * decodes to a NUL, or there are too many. */
int kv_split(char *line, char **tokens);

/* A buffered line reader over a socket. */
struct kv_reader {
    int fd;
    char *buf;
    size_t len, cap;
};

/* Connect to host:port within timeout_ms. Returns the socket or -errno. */
int kv_dial(const char *host, int port, unsigned timeout_ms);
/* Write all of buf, waiting at most timeout_ms. 0 or -errno. */
int kv_send(int fd, const char *buf, size_t len, unsigned timeout_ms);
/* The next line, without its '\n', malloc'd (the caller frees it), within
 * timeout_ms; NULL with errno on timeout (ETIMEDOUT), a closed connection
 * (ECONNRESET), a line over KV_LINE_MAX (EMSGSIZE). The socket must be
 * non-blocking. */
char *kv_read_line(struct kv_reader *r, unsigned timeout_ms);
void kv_reader_free(struct kv_reader *r);

#endif
