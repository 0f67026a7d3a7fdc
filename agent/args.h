/*
 * args.h - typed extraction of request arguments into plugin ABI structs.
 * Every error names the argument and what was expected; nothing is
 * trusted until checked. Allocations go to an arena freed after the call.
 */
#ifndef TROVE_ARGS_H
#define TROVE_ARGS_H

#include "host.h"
#include "trove_plugin.h"
#include "value.h"

struct arena {
    void **ptrs;
    size_t n, cap;
};

void *arena_keep(struct arena *ar, void *p);   /* NULL stays NULL; frees p if it cannot track it */
void arena_free(struct arena *ar);

/* Optional string: *out = NULL when absent. A secret (a key named like a
 * password) longer than INPUT_PASSWORD_MAX is refused. */
int arg_str(struct trove_call *call, const struct tv *args, const char *key, bool required, const char **out);
/* Optional bool / int with fallback. */
int arg_bool(struct trove_call *call, const struct tv *args, const char *key, bool required, bool *out);
int arg_int(struct trove_call *call, const struct tv *args, const char *key, int64_t min, int64_t max,
            int64_t fallback, int64_t *out);
/* Array of strings (a single string is accepted as a one-item list). */
int arg_strings(struct trove_call *call, const struct tv *args, const char *key, bool required, struct arena *ar,
                const char *const **out, size_t *n);
/* Map of scalars -> key/value strings (numbers and bools are rendered as text). */
int arg_kv(struct trove_call *call, const struct tv *args, const char *key, struct arena *ar,
           const struct trove_kv **out, size_t *n);
/* Convert a map value (already known to be a map) to key/value strings. */
int tv_to_kv(struct trove_call *call, const char *what, const struct tv *map, struct arena *ar,
             const struct trove_kv **out, size_t *n);
int arg_user(struct trove_call *call, const struct tv *args, struct arena *ar, struct trove_user *u,
             bool need_password);
int arg_database(struct trove_call *call, const struct tv *args, struct arena *ar, struct trove_database *d);
int arg_source(struct trove_call *call, const struct tv *args, const char *key, struct arena *ar,
               struct trove_replication_source *src);

#endif
