/*
 * status.h - names of the uniform status codes (enum trove_status in the
 * plugin ABI) as they appear on the wire and in messages, and the one way
 * common code fills a caller's error buffer.
 */
#ifndef TROVE_STATUS_H
#define TROVE_STATUS_H

#include "trove_plugin.h"

/* "ok", "invalid_argument", ...; "unknown" for values outside the enum. */
const char *status_name(int status);
/* The code for a wire name, or -1 if unknown. */
int status_from_name(const char *name);

/* printf into a caller-owned error buffer; does nothing if err is NULL or errlen 0. */
void err_set(char *err, size_t errlen, const char *fmt, ...) TROVE_PRINTF(3, 4);

#endif
