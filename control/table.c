/*
 * table.c - separate-chaining hash table (FNV-1a) that doubles when the load
 * passes one entry per bucket. Keys are arbitrary bytes.
 */
#include "table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct table_entry {
    struct table_entry *next;
    uint64_t hash;
    void *value;
    size_t key_len;
    unsigned char key[];
};

struct table {
    struct table_entry **buckets;
    size_t n_buckets, count;
    void (*free_value)(void *value);
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct table *table_new(void (*free_value)(void *value))
{
    struct table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_buckets = 64;
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->free_value = free_value;
    return t;
}

static void free_entry(struct table *t, struct table_entry *e)
{
    if (t->free_value && e->value)
        t->free_value(e->value);
    free(e);
}

void table_free(struct table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct table_entry *e = t->buckets[i];
        while (e) {
            struct table_entry *next = e->next;
            free_entry(t, e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
}

size_t table_count(const struct table *t)
{
    return t->count;
}

static struct table_entry **find(const struct table *t, const void *key, size_t key_len, uint64_t hash)
{
    struct table_entry **link = &t->buckets[hash & (t->n_buckets - 1)];
    for (; *link; link = &(*link)->next) {
        struct table_entry *e = *link;
        if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return link;
    }
    return link;
}

void *table_get(const struct table *t, const void *key, size_t key_len)
{
    struct table_entry *e = *find(t, key, key_len, hash_bytes(key, key_len));
    return e ? e->value : NULL;
}

/* Double the bucket array; on no memory the table just stays denser. */
static void grow(struct table *t)
{
    size_t n = t->n_buckets * 2;
    struct table_entry **buckets = calloc(n, sizeof *buckets);
    if (!buckets)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct table_entry *e = t->buckets[i];
        while (e) {
            struct table_entry *next = e->next;
            e->next = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->n_buckets = n;
}

int table_put(struct table *t, const void *key, size_t key_len, void *value)
{
    uint64_t hash = hash_bytes(key, key_len);
    struct table_entry **link = find(t, key, key_len, hash);
    if (*link) {
        if (t->free_value && (*link)->value && (*link)->value != value)
            t->free_value((*link)->value);
        (*link)->value = value;
        return 0;
    }
    struct table_entry *e = malloc(sizeof *e + key_len + 1);
    if (!e) {
        if (t->free_value && value)
            t->free_value(value);
        return -1;
    }
    e->next = NULL;
    e->hash = hash;
    e->value = value;
    e->key_len = key_len;
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    *link = e;
    if (++t->count > t->n_buckets)
        grow(t);
    return 0;
}

void *table_take(struct table *t, const void *key, size_t key_len)
{
    struct table_entry **link = find(t, key, key_len, hash_bytes(key, key_len));
    struct table_entry *e = *link;
    if (!e)
        return NULL;
    void *value = e->value;
    *link = e->next;
    free(e);
    t->count--;
    return value;
}

void table_remove(struct table *t, const void *key, size_t key_len)
{
    void *value = table_take(t, key, key_len);
    if (value && t->free_value)
        t->free_value(value);
}

void table_sweep(struct table *t, bool (*visit)(const void *key, size_t key_len, void *value, void *user),
                 void *user)
{
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct table_entry **link = &t->buckets[i];
        while (*link) {
            struct table_entry *e = *link;
            if (visit(e->key, e->key_len, e->value, user)) {
                *link = e->next;
                free_entry(t, e);
                t->count--;
            } else {
                link = &e->next;
            }
        }
    }
}
