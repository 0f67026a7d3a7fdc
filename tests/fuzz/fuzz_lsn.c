/*
 * fuzz_lsn.c - PostgreSQL WAL positions (plugins/postgres/lsn.c): "X/Y"
 * LSNs as the server prints them, compared as numbers, and the WAL segment
 * names made from them. Two texts split at a NUL byte. An accepted LSN is
 * hex halves of 1-8 digits around one slash; formatting then parsing gives
 * the same number; a comparison reversed is its mirror image; a segment
 * name is 24 hex digits naming the timeline, LSN high half and segment.
 */
#include "fuzz_util.h"

#include <ctype.h>
#include <inttypes.h>

#include "pg.h"

static void check_shape(const char *s)
{
    const char *slash = strchr(s, '/');
    FUZZ_CHECK(slash && !strchr(slash + 1, '/'), "accepted \"%s\"", s);
    size_t hi = (size_t)(slash - s), lo = strlen(slash + 1);
    FUZZ_CHECK(hi >= 1 && hi <= 8 && lo >= 1 && lo <= 8, "accepted \"%s\"", s);
    for (const char *p = s; *p; p++)
        FUZZ_CHECK(p == slash || isxdigit((unsigned char)*p), "accepted \"%s\"", s);
}

static void check_segment_name(uint64_t lsn, unsigned shift, uint32_t timeline)
{
    uint64_t seg_size = UINT64_C(1) << (20 + shift % 11);
    FUZZ_CHECK(pg_wal_segment_size_valid(seg_size), "%" PRIu64 " refused", seg_size);
    char name[64], want[64];
    pg_wal_segment_format(timeline, lsn / seg_size, seg_size, name, sizeof(name));
    snprintf(want, sizeof(want), "%08X%08X%08X", (unsigned)timeline, (unsigned)(lsn >> 32),
             (unsigned)((lsn & 0xFFFFFFFFu) / seg_size));
    FUZZ_CHECK(strcmp(name, want) == 0, "segment of %" PRIx64 " at %" PRIu64 ": %s, not %s", lsn, seg_size, name,
               want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a, *b;
    fuzz_split(data, size, &a, &b);
    uint64_t x = 0, y = 0;
    bool va = pg_lsn_parse(a, &x), vb = pg_lsn_parse(b, &y);
    if (va) {
        check_shape(a);
        char text[32];
        uint64_t again = 0;
        pg_lsn_format(x, text, sizeof(text));
        FUZZ_CHECK(pg_lsn_parse(text, &again) && again == x, "%s does not read back", text);
        uint32_t timeline = size >= 4 ? (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | data[2] << 8 | data[3] : 1;
        check_segment_name(x, size ? data[size - 1] : 0, timeline);
    }
    enum trove_order ab, ba;
    int rc = pg_repl_compare(NULL, a, b, &ab);
    FUZZ_CHECK((rc == TROVE_OK) == (va && vb), "compare and parse disagree");
    if (rc == TROVE_OK) {
        FUZZ_CHECK(pg_repl_compare(NULL, b, a, &ba) == TROVE_OK, "reversed compare refused");
        enum trove_order want = x < y ? TROVE_ORDER_BEFORE : x > y ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL;
        FUZZ_CHECK(ab == want, "%s vs %s", a, b);
        FUZZ_CHECK(ba == (want == TROVE_ORDER_BEFORE ? TROVE_ORDER_AFTER
                          : want == TROVE_ORDER_AFTER ? TROVE_ORDER_BEFORE : want), "reversed %s vs %s", a, b);
    }
    /* Any 64-bit size the check lets through must be usable. */
    if (size >= 8) {
        uint64_t seg = 0;
        memcpy(&seg, data + size - 8, 8);
        if (pg_wal_segment_size_valid(seg)) {
            char name[64];
            pg_wal_segment_format(1, x / seg, seg, name, sizeof(name));
        }
    }
    free(a);
    free(b);
    return 0;
}
