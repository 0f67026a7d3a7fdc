/*
 * optime.c - replication positions: an optime {ts: Timestamp(secs, inc), t:
 * term} written "term:secs:inc". Optimes order by term first, then by
 * timestamp, as mongod orders them (src/mongo/db/repl/optime.h); a term of
 * -1 (protocol version 0) compares by timestamp alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongodb.h"

void mg_optime_format(const struct mg_optime *o, char *out, size_t len)
{
    snprintf(out, len, "%" PRId64 ":%" PRIu32 ":%" PRIu32, o->term, o->secs, o->inc);
}

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool mg_optime_parse(const char *text, struct mg_optime *o)
{
    if (!text)
        return false;
    const char *c1 = strchr(text, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ':'))
        return false;
    char term[24];
    size_t tl = (size_t)(c1 - text);
    if (tl == 0 || tl >= sizeof(term))
        return false;
    memcpy(term, text, tl);
    term[tl] = '\0';
    int64_t t;
    if (!tps_parse_int(term, -1, INT64_MAX, &t))
        return false;
    o->term = t;
    return parse_u32(c1 + 1, (size_t)(c2 - c1 - 1), &o->secs) && parse_u32(c2 + 1, strlen(c2 + 1), &o->inc);
}

int mg_optime_cmp(const struct mg_optime *a, const struct mg_optime *b)
{
    if (a->term != -1 && b->term != -1 && a->term != b->term)
        return a->term < b->term ? -1 : 1;
    if (a->secs != b->secs)
        return a->secs < b->secs ? -1 : 1;
    if (a->inc != b->inc)
        return a->inc < b->inc ? -1 : 1;
    return 0;
}

bool mg_optime_from(const bson_t *doc, const char *path, struct mg_optime *o)
{
    bson_iter_t it, sub;
    char ts[256], t[256];
    memset(o, 0, sizeof(*o));
    snprintf(ts, sizeof(ts), "%s.ts", path);
    snprintf(t, sizeof(t), "%s.t", path);
    if (!doc || !bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, ts, &sub) ||
        !BSON_ITER_HOLDS_TIMESTAMP(&sub))
        return false;
    bson_iter_timestamp(&sub, &o->secs, &o->inc);
    o->term = mg_bson_int(doc, t, -1);
    return true;
}

/* Pure: no call handle. */
int mg_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    struct mg_optime x, y;
    (void)self;
    if (!mg_optime_parse(a, &x) || !mg_optime_parse(b, &y))
        return TROVE_EINVAL;
    int c = mg_optime_cmp(&x, &y);
    *order = c < 0 ? TROVE_ORDER_BEFORE : c > 0 ? TROVE_ORDER_AFTER : TROVE_ORDER_EQUAL;
    return TROVE_OK;
}
