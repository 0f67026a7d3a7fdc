/*
 * backup_storage.c - one backup stream written the agent's way (zstd level 1
 * with its worker thread, SHA-256 of the stored bytes) into a backup storage:
 * the local directory driver, or Swift / S3 through a request's signed URLs
 * (the scope JSON on standard input). Prints one JSON line with the time.
 * Driven by bench/swift_backup.sh, which compares the two in one run.
 *
 *   backup-storage-bench file DIR ID MB
 *   backup-storage-bench scope ID MB < scope.json
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "input.h"
#include "json.h"
#include "storage.h"
#include "storage_object.h"
#include "stream.h"

#define BLOCK (8u << 20)
#define WRITE (1u << 20)

/* Database-like bytes: random hex text compresses about 2:1 at level 1. */
static unsigned char *make_block(void)
{
    static const char hexdig[] = "0123456789abcdef";
    unsigned char *b = malloc(BLOCK);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; b && i < BLOCK; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (i % 64 == 63) ? '\n' : (unsigned char)hexdig[x & 15];
    }
    return b;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(struct storage *st, const char *id, uint64_t mb)
{
    char err[1024];
    atomic_bool stop;
    atomic_init(&stop, false);
    unsigned char *block = make_block();
    double t0 = now();
    struct trove_sink *sink = block ? stream_sink_open(st, id, 1, &stop, err, sizeof(err)) : NULL;
    if (!sink) {
        fprintf(stderr, "cannot open %s: %s\n", id, block ? err : "out of memory");
        free(block);
        return 1;
    }
    uint64_t total = mb << 20;
    int rc = 0;
    for (uint64_t done = 0; done < total && rc == 0; done += WRITE)
        rc = stream_sink_write(sink, block + done % BLOCK, WRITE);
    struct stream_totals t;
    if (rc != 0) {
        fprintf(stderr, "write: %s\n", stream_sink_error(sink));
        stream_sink_abort(sink);
    } else if ((rc = stream_sink_finish(sink, &t, err, sizeof(err))) != 0) {
        fprintf(stderr, "finish: %s\n", err);
    } else {
        printf("{\"seconds\": %.3f, \"raw_size\": %llu, \"stored_size\": %llu, \"checksum\": \"%s\"}\n",
               now() - t0, (unsigned long long)t.raw_bytes, (unsigned long long)t.stored_bytes, t.checksum);
    }
    free(block);
    return rc != 0;
}

int main(int argc, char **argv)
{
    char err[1024];
    struct storage *st = NULL;
    const char *id, *mb;
    if (argc == 5 && !strcmp(argv[1], "file")) {
        st = storage_file_open(argv[2], err, sizeof(err));
        id = argv[3];
        mb = argv[4];
    } else if (argc == 4 && !strcmp(argv[1], "scope")) {
        char *text = input_arg_text("-", "scope", 16u << 20, err, sizeof(err));
        struct tv *doc = NULL;
        if (text && json_to_tv(text, &doc, err, sizeof(err)) == 0)
            st = storage_object_open(tv_get(doc, "storage") ? tv_get(doc, "storage") : doc, err, sizeof(err));
        free(text);
        tv_free(doc);
        id = argv[2];
        mb = argv[3];
    } else {
        fprintf(stderr, "usage: %s file DIR ID MB | scope ID MB < scope.json\n", argv[0]);
        return 2;
    }
    if (!st) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = run(st, id, strtoull(mb, NULL, 10));
    st->ops->close(st);
    return rc;
}
