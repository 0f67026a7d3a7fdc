/*
 * json.h - conversion between the value tree and JSON text, for the CLI's
 * --json output and for arguments given on a command line. Bounded: depth
 * and size limits as in wire.h.
 */
#ifndef TROVE_JSON_H
#define TROVE_JSON_H

#include "value.h"

/* Parse JSON text into a tree; -1 with a reason in err on failure. */
int json_to_tv(const char *text, struct tv **out, char *err, size_t errlen);
/* Render a tree as JSON (malloc'd, caller frees); pretty adds indentation.
 * Binary values become base64 strings. NULL on no memory. */
char *tv_to_json(const struct tv *v, bool pretty);

#endif
