/*
 * log.h - leveled logging to stderr (or a file) with timestamps. One process-
 * wide logger. Callers never pass secrets: log_is_secret_key() tells which
 * field names hold one, for the places that print user-supplied keys.
 */
#ifndef TROVE_LOG_H
#define TROVE_LOG_H

#include <stdarg.h>
#include "trove_plugin.h"

void log_set_level(enum trove_log_level level);
enum trove_log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 if unknown. */
int log_level_from_name(const char *name);
/* Prefix every line with this component name ("trove-agent", ...). */
void log_set_ident(const char *ident);

void log_msg(enum trove_log_level level, const char *fmt, ...) TROVE_PRINTF(2, 3);
void log_vmsg(enum trove_log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(TROVE_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(TROVE_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(TROVE_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(TROVE_LOG_DEBUG, __VA_ARGS__)

/* True if a field or setting with this name holds a secret (contains
 * "password", "secret" or "token", case-insensitive). */
bool log_is_secret_key(const char *key);

#endif
