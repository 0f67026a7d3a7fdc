/*
 * gtid.c - MariaDB GTID lists ("domain-server-seq,..."): parsing and
 * comparison as sets. Within a replication domain sequence numbers grow, so
 * a list holds, per domain, the last transaction applied.
 */
#include <stdlib.h>
#include <string.h>

#include "mysql_plugin.h"

#define GTID_MAX_DOMAINS 256

struct gtid {
    uint32_t domain;
    uint32_t server;
    uint64_t seq;
};

struct gtid_set {
    struct gtid g[GTID_MAX_DOMAINS];
    size_t n;
};

static bool parse_u(const char **s, uint64_t max, uint64_t *out)
{
    const char *c = *s;
    uint64_t v = 0;
    if (*c < '0' || *c > '9')
        return false;
    while (*c >= '0' && *c <= '9') {
        uint64_t d = (uint64_t)(*c - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        c++;
    }
    *s = c;
    *out = v;
    return true;
}

static void skip_space(const char **s)
{
    while (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')
        (*s)++;
}

/* Keep one entry per domain: the highest sequence number. Two entries of one
 * domain with the same number from different servers mean two histories. */
static bool add_gtid(struct gtid_set *set, struct gtid g, bool *conflict)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->g[i].domain != g.domain)
            continue;
        if (set->g[i].seq == g.seq && set->g[i].server != g.server)
            *conflict = true;
        if (g.seq > set->g[i].seq)
            set->g[i] = g;
        return true;
    }
    if (set->n == GTID_MAX_DOMAINS)
        return false;
    set->g[set->n++] = g;
    return true;
}

static bool gtid_parse(const char *s, struct gtid_set *set, bool *conflict)
{
    set->n = 0;
    *conflict = false;
    if (!s)
        return false;
    skip_space(&s);
    if (!*s)
        return true;
    for (;;) {
        uint64_t d, sv, seq;
        skip_space(&s);
        if (!parse_u(&s, UINT32_MAX, &d) || *s++ != '-' || !parse_u(&s, UINT32_MAX, &sv) || *s++ != '-' ||
            !parse_u(&s, UINT64_MAX, &seq))
            return false;
        if (!add_gtid(set, (struct gtid){(uint32_t)d, (uint32_t)sv, seq}, conflict))
            return false;
        skip_space(&s);
        if (!*s)
            return true;
        if (*s++ != ',')
            return false;
    }
}

bool my_gtid_valid(const char *s)
{
    struct gtid_set *set = malloc(sizeof(*set));
    bool conflict;
    bool ok = set && gtid_parse(s, set, &conflict);
    free(set);
    return ok;
}

static const struct gtid *find_domain(const struct gtid_set *set, uint32_t domain)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->g[i].domain == domain)
            return &set->g[i];
    return NULL;
}

/* a vs b per domain: ahead, behind, or the same transaction from two servers. */
static void compare_domains(const struct gtid_set *a, const struct gtid_set *b, bool *a_ahead, bool *b_ahead,
                            bool *fork)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct gtid *o = find_domain(b, a->g[i].domain);
        uint64_t other = o ? o->seq : 0;
        if (a->g[i].seq > other)
            *a_ahead = true;
        else if (a->g[i].seq < other)
            *b_ahead = true;
        else if (o && o->server != a->g[i].server)
            *fork = true;
    }
    for (size_t i = 0; i < b->n; i++)
        if (!find_domain(a, b->g[i].domain) && b->g[i].seq > 0)
            *b_ahead = true;
}

int my_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    (void)self;
    struct gtid_set *sa = malloc(sizeof(*sa)), *sb_ = malloc(sizeof(*sb_));
    bool ca = false, cb = false;
    int rc = TROVE_OK;
    if (!sa || !sb_)
        rc = TROVE_EINTERNAL;
    else if (!gtid_parse(a, sa, &ca) || !gtid_parse(b, sb_, &cb))
        rc = TROVE_EINVAL;
    if (rc == TROVE_OK) {
        bool a_ahead = false, b_ahead = false, fork = ca || cb;
        compare_domains(sa, sb_, &a_ahead, &b_ahead, &fork);
        if (fork || (a_ahead && b_ahead))
            *order = TROVE_ORDER_DIVERGED;
        else if (a_ahead)
            *order = TROVE_ORDER_AFTER;
        else if (b_ahead)
            *order = TROVE_ORDER_BEFORE;
        else
            *order = TROVE_ORDER_EQUAL;
    }
    free(sa);
    free(sb_);
    return rc;
}
