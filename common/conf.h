/*
 * conf.h - INI configuration files ([section] then key = value; '#' or ';'
 * start a comment line; values may be quoted with "..." to keep leading or
 * trailing spaces). Parsing is strict: a line that is not a section, a
 * key = value pair, a comment or blank is an error naming file and line.
 */
#ifndef TROVE_CONF_H
#define TROVE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include "trove_plugin.h"

struct conf;

/* Load a file. On failure returns NULL and writes "path:line: reason" to err. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
/* Load a secrets file: as conf_load, but refuses a file that is readable or
 * writable by group or others (mode must be 0600 or stricter). */
struct conf *conf_load_secret(const char *path, char *err, size_t errlen);
struct conf *conf_new(void);
void conf_free(struct conf *c);

/* Value of key in section, or NULL. */
const char *conf_get(const struct conf *c, const char *section, const char *key);
const char *conf_get_or(const struct conf *c, const char *section, const char *key, const char *fallback);
/* Integer / boolean parsing with range check; -1 and a message in err on a bad value. */
int conf_get_int(const struct conf *c, const char *section, const char *key, long fallback,
                 long min, long max, long *out, char *err, size_t errlen);
int conf_get_bool(const struct conf *c, const char *section, const char *key, bool fallback,
                  bool *out, char *err, size_t errlen);
/* Set (copying); later sets replace earlier. Returns 0 or -1. */
int conf_set(struct conf *c, const char *section, const char *key, const char *value);
/* Copy every key of `section` from src into dst (overriding). */
int conf_merge_section(struct conf *dst, const struct conf *src, const char *section);

/* The keys of a section as a trove_kv array, valid until the conf changes or
 * is freed. *n receives the count. */
const struct trove_kv *conf_section(const struct conf *c, const char *section, size_t *n);

#endif
