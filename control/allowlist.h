/*
 * allowlist.h - the agents the control plane admits: one line per agent,
 * `<instance-id> <public-key-z85>`, '#' starting a comment. Used by the ZAP
 * handler at handshake time. It does not touch sockets.
 */
#ifndef TROVE_CONTROL_ALLOWLIST_H
#define TROVE_CONTROL_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>

#define INSTANCE_ID_MAX 64

struct allowlist;

/* Load a file. A key listed twice, a bad key or instance id, or a file that
 * group or others may write is an error ("path:line: reason" in err). */
struct allowlist *allowlist_load(const char *path, char *err, size_t errlen);
void allowlist_free(struct allowlist *al);
size_t allowlist_count(const struct allowlist *al);
/* The instance id a Z85 public key may speak for, or NULL. */
const char *allowlist_instance_for_key(const struct allowlist *al, const char *public_z85);

/* Instance ids are 1-64 bytes of printable ASCII without spaces ('#' may not
 * come first). They name ZeroMQ routing ids and allow-list entries. */
bool instance_id_is_valid(const char *s, size_t len);

#endif
