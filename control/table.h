/*
 * table.h - a hash table from byte-string keys to owned values, for the
 * control plane's registry, pending requests and task routes. Keys are
 * copied; values are freed with the table's free function when replaced,
 * removed or when the table is freed. Not thread-safe.
 */
#ifndef TROVE_CONTROL_TABLE_H
#define TROVE_CONTROL_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct table;

/* free_value may be NULL when values need no freeing. NULL on no memory. */
struct table *table_new(void (*free_value)(void *value));
void table_free(struct table *t);

size_t table_count(const struct table *t);
void *table_get(const struct table *t, const void *key, size_t key_len);
/* Insert or replace (the old value is freed). On failure (no memory) the
 * value is freed too and -1 is returned. */
int table_put(struct table *t, const void *key, size_t key_len, void *value);
/* Remove and return the value without freeing it; NULL if absent. */
void *table_take(struct table *t, const void *key, size_t key_len);
/* Remove and free; no-op if absent. */
void table_remove(struct table *t, const void *key, size_t key_len);

/* Call visit for every entry; an entry for which visit returns true is
 * removed (and its value freed). The visitor must not change the table. */
void table_sweep(struct table *t, bool (*visit)(const void *key, size_t key_len, void *value, void *user),
                 void *user);

#endif
