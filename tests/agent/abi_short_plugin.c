/*
 * abi_short_plugin.c - a 2.x plugin as an older minor would have built it:
 * its table ends after repl_compare (nothing of what came later), and the
 * structs it hands the agent are shorter than the agent's. Every object is
 * exactly its short size, so AddressSanitizer stops the agent if it reads
 * the table or a struct past the size the plugin declared, or writes
 * exit_status into an exec struct that has no room for it.
 */
#include <stdio.h>
#include <string.h>

#include "trove_plugin.h"

/* struct trove_plugin up to and including repl_compare. */
struct short_table {
    uint32_t abi_major, abi_minor, size;
    const char *name, *version;
    uint64_t features;
    int (*open)(const struct trove_host *, const struct trove_open_request *, void **, char *, size_t);
    void (*close)(void *);
    void *prepare;
    int (*start)(void *, struct trove_call *);
    void *stop, *restart;
    int (*status)(void *, struct trove_call *, struct trove_health *);
    int (*user_create)(void *, struct trove_call *, const struct trove_user *);
    void *user_delete;
    int (*user_list)(void *, struct trove_call *);
    void *user_show, *user_grant, *user_revoke, *user_access, *user_set_password;
    void *root_enable, *root_disable, *root_show;
    void *database_create, *database_delete, *database_list;
    int (*config_schema)(void *, struct trove_call *);
    void *config_validate, *config_apply, *config_reset, *config_show;
    void *backup_create, *backup_restore;
    void *repl_snapshot, *repl_attach, *repl_detach, *repl_promote, *repl_demote, *repl_set_read_only;
    void *repl_position, *repl_wait, *repl_status, *repl_compare;
};

/* The leading fields of the agent's structs, as an older minor had them. */
struct short_health { uint32_t size; int32_t state; int32_t role; };
struct short_user { uint32_t size; const char *name; const char *host; };
struct short_param { uint32_t size; const char *name; int32_t type; };
struct short_exec {
    uint32_t size;
    const char *const *argv;
    const char *const *env;
    const char *cwd;
    const char *run_as;
    struct trove_source *stdin_source;
    struct trove_sink *stdout_sink;
    char *output;
    size_t output_size;
    uint32_t timeout_ms;
};

static const struct trove_host *host;

static int short_open(const struct trove_host *h, const struct trove_open_request *req, void **self, char *err,
                      size_t errlen)
{
    (void)req, (void)err, (void)errlen;
    host = h;
    *self = NULL;
    return TROVE_OK;
}

static void short_close(void *self)
{
    (void)self;
}

static int short_start(void *self, struct trove_call *call)
{
    (void)self, (void)call;
    return TROVE_OK;
}

/* Writes only what its own (shorter) struct has. */
static int short_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct short_health *h = (struct short_health *)(void *)out;
    (void)self, (void)call;
    h->state = TROVE_DB_RUNNING;
    h->role = TROVE_ROLE_STANDALONE;
    return TROVE_OK;
}

static int short_user_list(void *self, struct trove_call *call)
{
    struct short_user u = {sizeof(u), "olduser", "%"};
    (void)self;
    return host->emit_user(call, (const struct trove_user *)(const void *)&u);
}

static int short_config_schema(void *self, struct trove_call *call)
{
    struct short_param p = {sizeof(p), "oldparam", TROVE_PARAM_INTEGER};
    (void)self;
    return host->emit_param(call, (const struct trove_param *)(const void *)&p);
}

/* user.create runs `true` through exec with an exec struct lacking exit_status. */
static int short_user_create(void *self, struct trove_call *call, const struct trove_user *user)
{
    static const char *const argv[] = {"true", NULL};
    char out[16];
    struct short_exec cmd = {sizeof(cmd), argv, NULL, NULL, NULL, NULL, NULL, out, sizeof(out), 10000};
    (void)self, (void)user;
    return host->exec(call, (struct trove_exec *)(void *)&cmd);
}

static const struct short_table table = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = 0,
    .size = sizeof(struct short_table),
    .name = "shortminor",
    .version = "2.0.0",
    .open = short_open,
    .close = short_close,
    .start = short_start,
    .status = short_status,
    .user_create = short_user_create,
    .user_list = short_user_list,
    .config_schema = short_config_schema,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return (const struct trove_plugin *)(const void *)&table;
}
