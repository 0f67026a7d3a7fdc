/*
 * header_check.c - compiled alone, as C11 and as C++, with every warning an
 * error: proves trove_plugin.h needs nothing but standard headers, and pins
 * the layout each ABI version promised. Appending a field or slot breaks an
 * assertion below on purpose: bump TROVE_ABI_MINOR and add the new last
 * member for that minor, so a layout change can never ship unversioned.
 */
#include "trove_plugin.h"

#ifdef __cplusplus
#define CHECK(cond, why) static_assert(cond, why)
#define ALIGNOF(t) alignof(t)
#else
#define CHECK(cond, why) _Static_assert(cond, why)
#define ALIGNOF(t) _Alignof(t)
#endif

#define END(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define ROUND(n, a) (((n) + (a) - 1) / (a) * (a))
/* `member` is the last member of `type`. */
#define LAST(type, member) CHECK(sizeof(type) == ROUND(END(type, member), ALIGNOF(type)), \
                                 #type " grew past " #member ": bump TROVE_ABI_MINOR and update header_check.c")

/* The first three fields of the plugin table keep their place in every major. */
CHECK(offsetof(struct trove_plugin, abi_major) == 0, "abi_major moved");
CHECK(offsetof(struct trove_plugin, abi_minor) == 4, "abi_minor moved");
CHECK(offsetof(struct trove_plugin, size) == 8, "size moved");

/* Every growable struct starts with its size. */
CHECK(offsetof(struct trove_user, size) == 0, "size first");
CHECK(offsetof(struct trove_database, size) == 0, "size first");
CHECK(offsetof(struct trove_param, size) == 0, "size first");
CHECK(offsetof(struct trove_health, size) == 0, "size first");
CHECK(offsetof(struct trove_backup_request, size) == 0, "size first");
CHECK(offsetof(struct trove_restore_piece, size) == 0, "size first");
CHECK(offsetof(struct trove_restore_request, size) == 0, "size first");
CHECK(offsetof(struct trove_replication_source, size) == 0, "size first");
CHECK(offsetof(struct trove_member, size) == 0, "size first");
CHECK(offsetof(struct trove_cluster_request, size) == 0, "size first");
CHECK(offsetof(struct trove_guest_log, size) == 0, "size first");
CHECK(offsetof(struct trove_guest_log_request, size) == 0, "size first");
CHECK(offsetof(struct trove_prepare_request, size) == 0, "size first");
CHECK(offsetof(struct trove_open_request, size) == 0, "size first");
CHECK(offsetof(struct trove_exec, size) == 0, "size first");
CHECK(sizeof(struct trove_kv) == 2 * sizeof(const char *), "struct trove_kv is frozen");

#if TROVE_ABI_MAJOR == 2 && TROVE_ABI_MINOR == 0
LAST(struct trove_plugin, guest_log_read);
LAST(struct trove_host, emit_guest_log);
LAST(struct trove_user, n_options);
LAST(struct trove_database, n_options);
LAST(struct trove_param, description);
LAST(struct trove_health, message);
LAST(struct trove_backup_request, sink);
LAST(struct trove_restore_piece, source);
LAST(struct trove_restore_request, for_replica);
LAST(struct trove_replication_source, secret);
LAST(struct trove_member, n_options);
LAST(struct trove_cluster_request, n_options);
LAST(struct trove_guest_log, bytes);
LAST(struct trove_guest_log_request, sink);
LAST(struct trove_prepare_request, restore);
LAST(struct trove_open_request, instance_id);
LAST(struct trove_exec, exit_status);
#else
#error "a new ABI version: list the last member of every struct for it here"
#endif

/* The helper macros compile and mean what they say. */
int header_check_use(const struct trove_plugin *p, const struct trove_host *h, const struct trove_prepare_request *r);
int header_check_use(const struct trove_plugin *p, const struct trove_host *h, const struct trove_prepare_request *r)
{
    int n = 0;
    if (TROVE_PLUGIN_HAS(p, cluster_join))
        n++;
    if (TROVE_HOST_HAS(h, emit_member))
        n++;
    if (r->n_users && TROVE_FIELD_OK(TROVE_AT(struct trove_user, r->users, r->user_size, 0), struct trove_user, name))
        n++;
    return n;
}
