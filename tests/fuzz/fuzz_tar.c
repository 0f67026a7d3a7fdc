/*
 * fuzz_tar.c - the ustar headers the PostgreSQL plugin writes around WAL
 * segments in incremental backups (plugins/postgres/tar.c), read back by an
 * independent reader, as the system's tar will read them at restore. Input:
 * 8 bytes of size, 8 of mtime, then the name. A header is refused exactly
 * when the name is empty or too long or the size does not fit; an accepted
 * one carries the magic, a correct checksum, the whole name, the size, and
 * the mtime clamped into range.
 */
#include "fuzz_util.h"

#include <inttypes.h>

#include "pg.h"

static uint64_t read_octal(const char *field, size_t digits)
{
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        FUZZ_CHECK(field[i] >= '0' && field[i] <= '7', "non-octal digit in a numeric field");
        v = v << 3 | (uint64_t)(field[i] - '0');
    }
    FUZZ_CHECK(field[digits] == '\0' || field[digits] == ' ', "numeric field not terminated");
    return v;
}

static void check_header(const unsigned char *h, const char *name, uint64_t size, int64_t mtime)
{
    FUZZ_CHECK(memcmp(h + 257, "ustar\0" "00", 8) == 0, "no ustar magic");
    FUZZ_CHECK(h[156] == '0', "not a regular file");
    unsigned sum = 0;
    for (int i = 0; i < PG_TAR_BLOCK; i++)
        sum += i >= 148 && i < 156 ? ' ' : h[i];
    FUZZ_CHECK(read_octal((const char *)h + 148, 6) == sum, "bad checksum");
    FUZZ_CHECK(strnlen((const char *)h, 100) == strlen(name) && memcmp(h, name, strlen(name)) == 0, "name");
    FUZZ_CHECK(read_octal((const char *)h + 124, 11) == size, "size %" PRIu64, size);
    uint64_t want = mtime < 0 ? 0 : (uint64_t)mtime > PG_TAR_MAX_SIZE ? PG_TAR_MAX_SIZE : (uint64_t)mtime;
    FUZZ_CHECK(read_octal((const char *)h + 136, 11) == want, "mtime %" PRId64, mtime);
    FUZZ_CHECK(read_octal((const char *)h + 100, 7) == 0600, "mode");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    uint64_t fsize;
    int64_t mtime;
    memcpy(&fsize, data, 8);
    memcpy(&mtime, data + 8, 8);
    /* Sizes spread over the whole range and near the 8 GiB limit. */
    if (fsize & 1)
        fsize = PG_TAR_MAX_SIZE - 4 + (fsize >> 1) % 8;
    char *name = fuzz_text(data + 16, size - 16);
    unsigned char h[PG_TAR_BLOCK];
    memset(h, 0xAA, sizeof(h));
    int rc = pg_tar_header((char *)h, name, fsize, mtime);
    bool fits = *name && strlen(name) < 100 && fsize <= PG_TAR_MAX_SIZE;
    FUZZ_CHECK((rc == 0) == fits, "name of %zu bytes, size %" PRIu64 ": rc %d", strlen(name), fsize, rc);
    if (rc == 0)
        check_header(h, name, fsize, mtime);
    free(name);
    return 0;
}
