/*
 * wire.h - the msgpack codec for protocol messages. Strict and bounded: a
 * frame is checked for size, nesting depth, claimed element counts against
 * the bytes that remain, key types and UTF-8 before anything is trusted.
 * It does not touch sockets.
 */
#ifndef TROVE_WIRE_H
#define TROVE_WIRE_H

#include "value.h"

#define WIRE_PROTOCOL_VERSION 1
#define WIRE_MAX_FRAME (16u * 1024 * 1024)   /* also set as ZMQ_MAXMSGSIZE */
#define WIRE_MAX_DEPTH 16
#define WIRE_MAX_STRING (1u * 1024 * 1024)

struct wire_limits {
    size_t max_frame;
    unsigned max_depth;
    size_t max_string;
};
extern const struct wire_limits wire_default_limits;

/*
 * Decode one msgpack object that must fill the whole buffer. On success
 * returns 0 and sets *out (caller frees with tv_free). On failure returns -1,
 * leaves *out NULL and writes a one-line reason into err ("truncated frame",
 * "nesting deeper than 16", "map key is not a string", "trailing bytes", ...).
 */
int wire_decode(const void *buf, size_t len, const struct wire_limits *lim,
                struct tv **out, char *err, size_t errlen);

/* Encode v into a malloc'd buffer (*buf, *len). Returns 0, or -1 on no memory. */
int wire_encode(const struct tv *v, char **buf, size_t *len);

/*
 * Message envelope checks. A message is a map with "v" (int, must equal
 * WIRE_PROTOCOL_VERSION) and "type" (string). Requests also need "id" (string,
 * 1..64 bytes) and "op" (string, 1..64 bytes); "args", when present, must be a
 * map. An ack needs "id" (1..64 bytes). Returns 0, or -1 with a reason in err.
 */
int wire_check_envelope(const struct tv *msg, char *err, size_t errlen);

/* Builders for the common message shapes; return NULL when out of memory. */
struct tv *wire_request(const char *id, const char *op, struct tv *args /* owned, may be NULL */);
struct tv *wire_reply_ok(const char *id, struct tv *result /* owned, may be NULL */);
struct tv *wire_reply_error(const char *id, int status, const char *message);

#endif
