/*
 * info.c - what Redis says about replication, read as text: the fields of
 * INFO, and positions ("<replid>:<offset>[,<replid2>:<offset2>]") built from
 * them, parsed and compared. No connection here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_plugin.h"

/* Find "field:value" at a line start in an INFO text; copies the value
 * (without \r, cut to len - 1 bytes) into buf. NULL if absent. */
const char *rd_info_find(const char *info, const char *field, char *buf, size_t len)
{
    size_t fl = strlen(field);
    for (const char *p = info; p && *p;) {
        if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
            const char *v = p + fl + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= len)
                n = len - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static int parse_one(const char *s, size_t n, char *id, uint64_t *off)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || colon - s != 40)
        return -1;
    for (int i = 0; i < 40; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return -1;
    memcpy(id, s, 40);
    id[40] = '\0';
    size_t digits = n - 41;
    if (digits == 0 || digits > 19 || strspn(colon + 1, "0123456789") < digits)
        return -1;
    *off = strtoull(colon + 1, NULL, 10);
    return 0;
}

int rd_pos_parse(const char *s, struct rd_pos *p)
{
    memset(p, 0, sizeof(*p));
    if (!s)
        return -1;
    const char *comma = strchr(s, ',');
    size_t n1 = comma ? (size_t)(comma - s) : strlen(s);
    if (parse_one(s, n1, p->id, &p->off) != 0)
        return -1;
    if (!comma)
        return 0;
    p->has2 = true;
    return parse_one(comma + 1, strlen(comma + 1), p->id2, &p->off2);
}

static enum trove_order cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? TROVE_ORDER_BEFORE : a > b ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL;
}

/* Same id: offsets. a's id is b's previous history: a is behind b if it
 * stopped within that history, else a has writes b never saw. Two positions
 * that each name the other's id as their past belong to no one history. */
enum trove_order rd_pos_compare(const struct rd_pos *a, const struct rd_pos *b)
{
    if (strcmp(a->id, b->id) == 0)
        return cmp_u64(a->off, b->off);
    if (a->has2 && b->has2 && strcmp(a->id, b->id2) == 0 && strcmp(b->id, a->id2) == 0)
        return TROVE_ORDER_DIVERGED;
    if (b->has2 && strcmp(a->id, b->id2) == 0)
        return a->off < b->off2 ? (a->off < b->off ? TROVE_ORDER_BEFORE : TROVE_ORDER_EQUAL) : TROVE_ORDER_DIVERGED;
    if (a->has2 && strcmp(b->id, a->id2) == 0)
        return b->off < a->off2 ? (b->off < a->off ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL) : TROVE_ORDER_DIVERGED;
    return TROVE_ORDER_DIVERGED;
}

void rd_position_from_info(const char *info, char *buf, size_t len)
{
    char id[64] = "", off[32] = "", id2[64] = "", off2[32] = "-1";
    rd_info_find(info, "master_replid", id, sizeof(id));
    rd_info_find(info, "master_repl_offset", off, sizeof(off));
    rd_info_find(info, "master_replid2", id2, sizeof(id2));
    rd_info_find(info, "second_repl_offset", off2, sizeof(off2));
    if (strcmp(off2, "-1") != 0 && strspn(id2, "0") != strlen(id2))
        snprintf(buf, len, "%s:%s,%s:%s", id, off, id2, off2);
    else
        snprintf(buf, len, "%s:%s", id, off);
}
