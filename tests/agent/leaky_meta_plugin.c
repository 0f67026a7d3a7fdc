/*
 * leaky_meta_plugin.c - a plugin whose backups try to store a password in
 * their metadata, which is kept in clear: the agent must fail the backup
 * instead of storing it.
 */
#include "trove_plugin.h"

static const struct trove_host *host;

static int leaky_open(const struct trove_host *h, const struct trove_open_request *req, void **self, char *err,
                      size_t errlen)
{
    (void)req, (void)err, (void)errlen;
    host = h;
    *self = NULL;
    return TROVE_OK;
}

static void leaky_close(void *self)
{
    (void)self;
}

static int leaky_status(void *self, struct trove_call *call, struct trove_health *out)
{
    (void)self, (void)call;
    out->state = TROVE_DB_RUNNING;
    return TROVE_OK;
}

static int leaky_backup(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    (void)self;
    int rc = host->sink_write(req->sink, "backup bytes\n", 13);
    if (rc == TROVE_OK)
        rc = host->put(call, "meta", "format", "leaky-1");
    if (rc == TROVE_OK)
        rc = host->put(call, "meta", "admin_password", "hunter2-never-stored");
    return rc;
}

static const struct trove_plugin table = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_plugin),
    .name = "leakymeta",
    .version = "1.0.0",
    .open = leaky_open,
    .close = leaky_close,
    .status = leaky_status,
    .backup_create = leaky_backup,
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &table;
}
