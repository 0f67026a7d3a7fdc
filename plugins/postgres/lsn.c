/*
 * lsn.c - WAL positions: "X/Y" LSNs parsed and compared as 64-bit numbers
 * (never as strings), and WAL segment file names for a timeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static bool hex_part(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 8)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

bool pg_lsn_parse(const char *text, uint64_t *lsn)
{
    if (!text)
        return false;
    const char *slash = strchr(text, '/');
    uint32_t hi, lo;
    if (!slash || !hex_part(text, (size_t)(slash - text), &hi) || !hex_part(slash + 1, strlen(slash + 1), &lo))
        return false;
    *lsn = (uint64_t)hi << 32 | lo;
    return true;
}

void pg_lsn_format(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}

bool pg_wal_segment_size_valid(uint64_t seg_size)
{
    return seg_size >= (UINT64_C(1) << 20) && seg_size <= (UINT64_C(1) << 30) && (seg_size & (seg_size - 1)) == 0;
}

void pg_wal_segment_format(uint32_t timeline, uint64_t segno, uint64_t seg_size, char *buf, size_t len)
{
    uint64_t per_id = UINT64_C(0x100000000) / seg_size;
    snprintf(buf, len, "%08X%08X%08X", (unsigned)timeline, (unsigned)(segno / per_id), (unsigned)(segno % per_id));
}

int pg_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    (void)self;
    uint64_t x, y;
    if (!pg_lsn_parse(a, &x) || !pg_lsn_parse(b, &y))
        return TROVE_EINVAL;
    *order = x < y ? TROVE_ORDER_BEFORE : x > y ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL;
    return TROVE_OK;
}
