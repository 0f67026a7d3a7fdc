/*
 * abi_future_plugin.c - a 2.x plugin built against a newer minor than the
 * agent's: its table and structs are longer, and it sends enum values the
 * agent does not know. The agent must ignore what lies past its own sizes,
 * map the unknown values to their documented fallbacks, and the plugin must
 * find the agent's (shorter) request structs and host table by their sizes.
 */
#include <string.h>

#include "trove_plugin.h"

/* The agent's table plus two slots a later minor appended. */
struct future_table {
    struct trove_plugin known;
    int (*later_slot_a)(void *, struct trove_call *);
    int (*later_slot_b)(void *, struct trove_call *);
};

/* A later minor's user: one more field after the ones the agent knows. */
struct future_user {
    struct trove_user known;
    const char *later_field;
};

/* A later minor's host table: one more service. */
struct future_host {
    struct trove_host known;
    int (*later_service)(struct trove_call *);
};

static const struct trove_host *host;

static int future_open(const struct trove_host *h, const struct trove_open_request *req, void **self, char *err,
                       size_t errlen)
{
    (void)req, (void)err, (void)errlen;
    host = h;
    *self = NULL;
    return TROVE_OK;
}

static void future_close(void *self)
{
    (void)self;
}

/* States, roles and statuses from the future. */
static int future_status(void *self, struct trove_call *call, struct trove_health *out)
{
    (void)self, (void)call;
    out->state = 42;
    out->role = 77;
    return TROVE_OK;
}

static int future_repl_compare(void *self, const char *a, const char *b, enum trove_order *order)
{
    (void)self, (void)a, (void)b;
    *order = (enum trove_order)9;
    return TROVE_OK;
}

/* Reports what it could see of the agent's struct and host table. */
static int future_user_grant(void *self, struct trove_call *call, const struct trove_user *user)
{
    const struct future_user *fu = (const struct future_user *)(const void *)user;
    const struct future_host *fh = (const struct future_host *)(const void *)host;
    (void)self;
    bool later_field = TROVE_FIELD_OK(&fu->known, struct future_user, later_field) && fu->later_field;
    bool later_service = host->size >= offsetof(struct future_host, later_service) + sizeof(fh->later_service);
    int rc = host->set_bool(call, "saw_later_field", later_field);
    if (rc == TROVE_OK)
        rc = host->set_bool(call, "saw_later_service", later_service);
    if (rc == TROVE_OK)
        rc = host->set_bool(call, "has_emit_member", TROVE_HOST_HAS(host, emit_member));
    if (rc == TROVE_OK)
        rc = host->set_int(call, "databases_seen", (int64_t)user->n_databases);
    return rc;
}

/* Emits a user with a field the agent does not know. */
static int future_user_show(void *self, struct trove_call *call, const struct trove_user *user)
{
    struct future_user out = {{sizeof(out), user->name, NULL, NULL, NULL, 0, NULL, 0}, "not for the agent"};
    (void)self;
    return host->emit_user(call, &out.known);
}

/* A status a later minor added. */
static int future_user_delete(void *self, struct trove_call *call, const struct trove_user *user)
{
    (void)self, (void)user;
    return host->fail(call, 23, "a failure code from the future");
}

/* A parameter of a type from the future. */
static int future_config_schema(void *self, struct trove_call *call)
{
    struct trove_param p = {.size = sizeof(p), .name = "futureparam", .type = 99};
    (void)self;
    return host->emit_param(call, &p);
}

/* A struct whose size was never set. */
static int future_database_list(void *self, struct trove_call *call)
{
    struct trove_database d;
    memset(&d, 0, sizeof(d));
    d.name = "nosize";
    (void)self;
    return host->emit_database(call, &d);
}

static int later(void *self, struct trove_call *call)
{
    (void)self, (void)call;
    return TROVE_OK;
}

static const struct future_table table = {
    .known = {
        .abi_major = TROVE_ABI_MAJOR,
        .abi_minor = TROVE_ABI_MINOR + 1,
        .size = sizeof(struct future_table),
        .name = "futureminor",
        .version = "2.9.0",
        .open = future_open,
        .close = future_close,
        .status = future_status,
        .user_show = future_user_show,
        .user_grant = future_user_grant,
        .user_delete = future_user_delete,
        .database_list = future_database_list,
        .config_schema = future_config_schema,
        .repl_compare = future_repl_compare,
    },
    .later_slot_a = later,
    .later_slot_b = later,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &table.known;
}
