/*
 * status.c - the wire names of enum trove_status. The table is the protocol:
 * names and numbers never change, new codes are only appended.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
    [TROVE_OK] = "ok",
    [TROVE_EINVAL] = "invalid_argument",
    [TROVE_ENOTFOUND] = "not_found",
    [TROVE_EEXIST] = "already_exists",
    [TROVE_ENOTSUP] = "not_supported",
    [TROVE_EDATASTORE] = "datastore_error",
    [TROVE_EUNAVAIL] = "unavailable",
    [TROVE_ECANCELLED] = "cancelled",
    [TROVE_EINTERNAL] = "internal",
    [TROVE_ETIMEOUT] = "timeout",
    [TROVE_ECONFLICT] = "failed_precondition",
    [TROVE_ECHECKSUM] = "checksum_mismatch",
};

#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

const char *status_name(int status)
{
    if (status < 0 || (size_t)status >= N_STATUS || !status_names[status])
        return "unknown";
    return status_names[status];
}

int status_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_names[i] && strcmp(status_names[i], name) == 0)
            return (int)i;
    return -1;
}

void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
