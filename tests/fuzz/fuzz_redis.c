/*
 * fuzz_redis.c - what Redis says about replication (plugins/redis/info.c):
 * INFO text and the positions read from it. The input is INFO text, then
 * after a NUL byte a position text. Field lookup stays inside its buffer
 * and never returns a line end; a position built from well-formed replid
 * and offset fields parses; positions compare equal to themselves, and a
 * comparison reversed is its mirror image.
 */
#include "fuzz_util.h"

#include "redis_plugin.h"

static const char *const fields[] = {
    "role", "master_replid", "master_repl_offset", "master_replid2", "second_repl_offset",
    "master_host", "master_port", "master_link_status", "connected_slaves",
};

static enum trove_order mirror(enum trove_order o)
{
    return o == TROVE_ORDER_BEFORE ? TROVE_ORDER_AFTER : o == TROVE_ORDER_AFTER ? TROVE_ORDER_BEFORE : o;
}

static bool is_replid(const char *s)
{
    return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

static bool is_offset(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 19 && strspn(s, "0123456789") == n;
}

static void check_lookups(const char *info, size_t buflen)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char *buf = malloc(buflen);   /* exact size, so ASan sees an overrun */
        if (!buf)
            abort();
        if (rd_info_find(info, fields[i], buf, buflen)) {
            FUZZ_CHECK(strlen(buf) < buflen, "value overran its buffer");
            FUZZ_CHECK(!strpbrk(buf, "\r\n"), "value of %s holds a line end", fields[i]);
        }
        free(buf);
    }
}

/* A position made from well-formed fields must parse and equal itself. */
static void check_position(const char *info)
{
    char pos[256], id[64] = "", off[32] = "";
    rd_position_from_info(info, pos, sizeof(pos));
    if (!rd_info_find(info, "master_replid", id, sizeof(id)) ||
        !rd_info_find(info, "master_repl_offset", off, sizeof(off)) || !is_replid(id) || !is_offset(off))
        return;
    char id2[64] = "", off2[32] = "";
    bool two = rd_info_find(info, "master_replid2", id2, sizeof(id2)) &&
               rd_info_find(info, "second_repl_offset", off2, sizeof(off2)) && strcmp(off2, "-1") != 0 &&
               strspn(id2, "0") != strlen(id2);
    if (two && (!is_replid(id2) || !is_offset(off2)))
        return;
    struct rd_pos p;
    FUZZ_CHECK(rd_pos_parse(pos, &p) == 0, "position \"%s\" from well-formed INFO does not parse", pos);
    FUZZ_CHECK(p.has2 == two, "position \"%s\": second history %d, expected %d", pos, p.has2, two);
    FUZZ_CHECK(rd_pos_compare(&p, &p) == TROVE_ORDER_EQUAL, "position \"%s\" differs from itself", pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *info, *text;
    fuzz_split(data, size, &info, &text);
    check_lookups(info, size ? (size_t)data[0] % 48 + 1 : 1);
    check_position(info);

    char pos[256];
    rd_position_from_info(info, pos, sizeof(pos));
    struct rd_pos a, b;
    if (rd_pos_parse(text, &a) == 0) {
        FUZZ_CHECK(rd_pos_compare(&a, &a) == TROVE_ORDER_EQUAL, "\"%s\" differs from itself", text);
        if (rd_pos_parse(pos, &b) == 0)
            FUZZ_CHECK(rd_pos_compare(&b, &a) == mirror(rd_pos_compare(&a, &b)), "\"%s\" vs \"%s\" is not mirrored",
                       text, pos);
    }
    free(info);
    free(text);
    return 0;
}
