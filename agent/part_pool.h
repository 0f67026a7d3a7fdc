/*
 * part_pool.h - parallel part uploads for the object-storage drivers: the
 * writer fills fixed-size parts, a few threads upload them (each with its own
 * connection), check each reply's ETag against the part's MD5, and retry a
 * part the store failed to take. Memory is bounded: threads + 1 part buffers.
 */
#ifndef TROVE_PART_POOL_H
#define TROVE_PART_POOL_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct part_result {
    char etag[33];      /* MD5 of the part, lower-case hex: what the store answered */
    uint64_t size;
};

/* Upload part `number` (1-based) of len bytes on handle h, stopping when
 * *cancel is set. Fills etag (the store's ETag, without quotes). Returns
 * TROVE_OK; TROVE_EUNAVAIL for a failure worth another try; any other code
 * is final. */
typedef int (*part_put_fn)(void *ctx, CURL *h, unsigned number, const void *data, size_t len,
                           const atomic_bool *cancel, char etag[80], char *err, size_t errlen);

struct part_pool;

/* threads 1..16; part_size > 0; at most max_parts parts. ctx is passed to
 * put and must outlive the pool. NULL with a reason in err. */
struct part_pool *part_pool_open(unsigned threads, size_t part_size, unsigned max_parts, part_put_fn put, void *ctx,
                                 char *err, size_t errlen);

/* Append bytes; full parts go to the threads. Blocks while every buffer is
 * in flight. Returns the first failure of any part once one happened. */
int part_pool_write(struct part_pool *p, const void *data, size_t len, char *err, size_t errlen);

/* Send the last part and wait for every part. TROVE_OK when all were stored
 * and their ETags matched; an empty piece is refused. */
int part_pool_finish(struct part_pool *p, char *err, size_t errlen);

/* After a successful finish: the parts in order (owned by the pool). */
const struct part_result *part_pool_results(const struct part_pool *p, unsigned *n);

/* Parts handed to the threads so far (some may be stored, even after a failure). */
unsigned part_pool_started(const struct part_pool *p);

/* Stop (parts not yet sent are dropped, transfers under way are cut), join
 * the threads and free. Safe after finish and on a NULL pool. */
void part_pool_close(struct part_pool *p);

#endif
