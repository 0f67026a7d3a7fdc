/*
 * abi.h - the agent's side of the growth rules in trove_plugin.h: reading
 * structs a plugin hands over only within their `size`, and mapping enum
 * values from a newer plugin to their documented fallbacks. Everything the
 * agent takes from a plugin passes through here.
 */
#ifndef TROVE_ABI_H
#define TROVE_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "trove_plugin.h"

/*
 * Copy the struct at `src` (a plugin's, with a leading uint32_t size) into
 * `dst` (the agent's, dst_size bytes): min(size, dst_size) bytes are copied,
 * the rest of dst is zeroed, and dst's size becomes dst_size. Returns 0, or
 * -1 when src's size does not cover `need` bytes (the size was never set, or
 * a required leading field is missing); `what` names the struct for the
 * message written into err.
 */
int abi_import(void *dst, size_t dst_size, const void *src, size_t need, const char *what, char *err,
               size_t errlen);

/* Import a plugin's struct `type` whose fields up to and including
 * `required` must be present. */
#define ABI_IMPORT(dst, src, type, required, err, errlen)                                              \
    abi_import((dst), sizeof(type), (src), offsetof(type, required) + sizeof(((type *)0)->required), #type, \
               (err), (errlen))

/* Enum values from a plugin, mapped to what this agent knows (fallbacks as
 * documented in trove_plugin.h). */
enum trove_db_state abi_db_state(int32_t v);
enum trove_role abi_role(int32_t v);
enum trove_order abi_order(int v);
enum trove_member_state abi_member_state(int32_t v);
int abi_status(int v);

/* Names as they travel on the wire. */
const char *abi_db_state_name(enum trove_db_state s);
const char *abi_role_name(enum trove_role r);
const char *abi_order_name(enum trove_order o);
const char *abi_member_state_name(enum trove_member_state s);
const char *abi_param_type_name(int32_t t);
const char *abi_guest_log_type_name(int32_t t);

#endif
