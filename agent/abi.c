/*
 * abi.c - reads plugin structs within their size and maps unknown enum
 * values to their fallbacks (see abi.h and trove_plugin.h).
 */
#include "abi.h"

#include <stdio.h>
#include <string.h>

int abi_import(void *dst, size_t dst_size, const void *src, size_t need, const char *what, char *err,
               size_t errlen)
{
    uint32_t size;
    if (!src) {
        snprintf(err, errlen, "the plugin passed no %s", what);
        return -1;
    }
    memcpy(&size, src, sizeof(size));
    if (size < need) {
        snprintf(err, errlen, "the plugin passed a %s of size %u, too small to hold its required fields (%zu "
                 "bytes): set .size = sizeof(%s)", what, (unsigned)size, need, what);
        return -1;
    }
    memset(dst, 0, dst_size);
    memcpy(dst, src, size < dst_size ? size : dst_size);
    uint32_t own = (uint32_t)dst_size;
    memcpy(dst, &own, sizeof(own));
    return 0;
}

enum trove_db_state abi_db_state(int32_t v)
{
    return v >= TROVE_DB_UNKNOWN && v <= TROVE_DB_NEW ? (enum trove_db_state)v : TROVE_DB_UNKNOWN;
}

enum trove_role abi_role(int32_t v)
{
    return v >= TROVE_ROLE_UNKNOWN && v <= TROVE_ROLE_REPLICA ? (enum trove_role)v : TROVE_ROLE_UNKNOWN;
}

enum trove_order abi_order(int v)
{
    return v >= TROVE_ORDER_BEFORE && v <= TROVE_ORDER_DIVERGED ? (enum trove_order)v : TROVE_ORDER_DIVERGED;
}

enum trove_member_state abi_member_state(int32_t v)
{
    return v >= TROVE_MEMBER_UNKNOWN && v <= TROVE_MEMBER_DOWN ? (enum trove_member_state)v : TROVE_MEMBER_UNKNOWN;
}

int abi_status(int v)
{
    return v >= TROVE_OK && v <= TROVE_ECHECKSUM ? v : TROVE_EDATASTORE;
}

const char *abi_db_state_name(enum trove_db_state s)
{
    static const char *const names[] = {"unknown", "running", "stopped", "starting", "crashed", "new"};
    return names[abi_db_state(s)];
}

const char *abi_role_name(enum trove_role r)
{
    static const char *const names[] = {"unknown", "standalone", "primary", "replica"};
    return names[abi_role(r)];
}

const char *abi_order_name(enum trove_order o)
{
    switch (abi_order(o)) {
    case TROVE_ORDER_BEFORE: return "before";
    case TROVE_ORDER_EQUAL: return "equal";
    case TROVE_ORDER_AFTER: return "after";
    default: return "diverged";
    }
}

const char *abi_member_state_name(enum trove_member_state s)
{
    static const char *const names[] = {"unknown", "up", "joining", "leaving", "down"};
    return names[abi_member_state(s)];
}

const char *abi_param_type_name(int32_t t)
{
    switch (t) {
    case TROVE_PARAM_INTEGER: return "integer";
    case TROVE_PARAM_FLOAT: return "float";
    case TROVE_PARAM_BOOLEAN: return "boolean";
    case TROVE_PARAM_ENUM: return "enum";
    default: return "string";
    }
}

const char *abi_guest_log_type_name(int32_t t)
{
    return t == TROVE_GUEST_LOG_USER ? "user" : "system";
}
