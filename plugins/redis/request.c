/*
 * request.c - reading what the agent hands in. A struct the agent passes is
 * read only within its size (TROVE_FIELD_OK): fields beyond it count as
 * absent, so an agent built against an older header never has bytes read
 * past its struct. Arrays of growable structs are indexed by their element
 * size (TROVE_AT) where they are walked.
 */
#include "redis_plugin.h"

struct trove_user rd_user_in(const struct trove_user *in)
{
    struct trove_user u = {.size = sizeof(u)};
    if (!in)
        return u;
    u.name = RD_FIELD(in, struct trove_user, name, NULL);
    u.host = RD_FIELD(in, struct trove_user, host, NULL);
    u.password = RD_FIELD(in, struct trove_user, password, NULL);
    u.databases = RD_FIELD(in, struct trove_user, databases, NULL);
    u.n_databases = u.databases ? RD_FIELD(in, struct trove_user, n_databases, 0) : 0;
    u.options = RD_FIELD(in, struct trove_user, options, NULL);
    u.n_options = u.options ? RD_FIELD(in, struct trove_user, n_options, 0) : 0;
    return u;
}

/* meta and secret stay out: Redis needs neither (it syncs a follower
 * itself, and has no cluster secret). */
struct trove_replication_source rd_source_in(const struct trove_replication_source *in)
{
    struct trove_replication_source src = {.size = sizeof(src)};
    if (!in)
        return src;
    src.host = RD_FIELD(in, struct trove_replication_source, host, NULL);
    src.port = RD_FIELD(in, struct trove_replication_source, port, 0);
    src.user = RD_FIELD(in, struct trove_replication_source, user, NULL);
    src.password = RD_FIELD(in, struct trove_replication_source, password, NULL);
    return src;
}
