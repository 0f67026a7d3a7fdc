/*
 * status.h - names of the uniform status codes (enum trove_status in the
 * plugin ABI) as they appear on the wire and in messages.
 */
#ifndef TROVE_STATUS_H
#define TROVE_STATUS_H

#include "trove_plugin.h"

/* "ok", "invalid_argument", ...; "unknown" for values outside the enum. */
const char *status_name(int status);
/* The code for a wire name, or -1 if unknown. */
int status_from_name(const char *name);

#endif
