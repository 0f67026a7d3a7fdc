/*
 * keys.h - CURVE key files shared by trove-control and trove-agent, and the
 * rule for when plain text is allowed. It reads and writes files and checks
 * Z85 text; it never configures sockets.
 *
 * NAME.key (mode 0600, refused when group or others may read or write it):
 *
 *     # trove CURVE key pair; keep secret
 *     [curve]
 *     public-key = "<40 Z85 characters>"
 *     secret-key = "<40 Z85 characters>"
 *
 * NAME.pub: one line holding the 40-character Z85 public key, so it can be
 * pasted into an allow-list line (`<instance-id> <public-key>`) or pinned by
 * an agent as its server key.
 */
#ifndef TROVE_KEYS_H
#define TROVE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEYS_Z85_LEN 40   /* a 32-byte CURVE key in Z85 text */

struct keys_pair {
    char public_z85[KEYS_Z85_LEN + 1];
    char secret_z85[KEYS_Z85_LEN + 1];   /* a secret: wipe with keys_wipe() when done */
};

/* True if s is exactly 40 characters of valid Z85. */
bool keys_is_z85(const char *s);

/* A fresh key pair from libzmq. Returns 0, or -1 with a reason in err
 * (libzmq built without CURVE). */
int keys_generate(struct keys_pair *kp, char *err, size_t errlen);

/*
 * Write NAME.key (0600) and NAME.pub (0644), where `name` is a path without
 * the suffix. Existing files are never overwritten: -1 with a reason in err.
 * A half-written pair is removed again.
 */
int keys_write(const char *name, const struct keys_pair *kp, char *err, size_t errlen);

/* Read a .key file. Refuses a file that group or others may read or write, a
 * missing or malformed key, and a public key that does not belong to the
 * secret key. Returns 0, or -1 with "path: reason" in err. */
int keys_read_key(const char *path, struct keys_pair *kp, char *err, size_t errlen);

/* Read a .pub file (one Z85 key, surrounding whitespace ignored) into
 * out[KEYS_Z85_LEN + 1]. Returns 0, or -1 with "path: reason" in err. */
int keys_read_pub(const char *path, char *out, char *err, size_t errlen);

/* Overwrite the secret half of a pair so it does not linger in memory. */
void keys_wipe(struct keys_pair *kp);

/*
 * The plain-text rule of the protocol: true if a ZeroMQ endpoint stays on
 * this machine (ipc://, inproc://, or tcp:// on 127.0.0.1, [::1] or
 * localhost). Plain text is refused for every other endpoint.
 */
bool keys_endpoint_is_local(const char *endpoint);

#endif
