/*
 * stream.h - backup byte streams: a sink compresses (zstd) what a plugin
 * writes, hashes the stored bytes (SHA-256) and writes them to storage; a
 * source reads a stored piece back, hashes and decompresses it, and fails
 * with TROVE_ECHECKSUM at the end if the bytes do not match the record.
 */
#ifndef TROVE_STREAM_H
#define TROVE_STREAM_H

#include <stdatomic.h>
#include <stdint.h>
#include "storage.h"
#include "trove_plugin.h"

#define CHECKSUM_TEXT_MAX 80   /* "sha256:" + 64 hex + NUL */

struct stream_totals {
    uint64_t raw_bytes;      /* what the plugin wrote */
    uint64_t stored_bytes;   /* after compression */
    char checksum[CHECKSUM_TEXT_MAX];
};

struct trove_sink *stream_sink_open(struct storage *st, const char *id, int level, const atomic_bool *stop,
                                    char *err, size_t errlen);
int stream_sink_write(struct trove_sink *sink, const void *data, size_t len);
/* Flush, commit to storage and free; totals filled on success. */
int stream_sink_finish(struct trove_sink *sink, struct stream_totals *totals, char *err, size_t errlen);
/* Discard everything written and free. */
void stream_sink_abort(struct trove_sink *sink);
const char *stream_sink_error(const struct trove_sink *sink);

struct trove_source *stream_source_open(struct storage *st, const char *id, const char *checksum,
                                        const atomic_bool *stop, char *err, size_t errlen);
int stream_source_read(struct trove_source *src, void *buf, size_t cap, size_t *got);
void stream_source_close(struct trove_source *src);
const char *stream_source_error(const struct trove_source *src);

/* Read a whole stored piece and compare its SHA-256 with `checksum`
 * (TROVE_ECHECKSUM with both values in err when they differ). */
int stream_verify(struct storage *st, const char *id, const char *checksum, char *err, size_t errlen);

#endif
