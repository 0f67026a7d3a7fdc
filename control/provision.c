/*
 * provision.c - what every provisioner backend shares: the engine memory
 * parameters a flavor's memory size stands for, and freeing id lists. The
 * backends live in provision_<kind>.c.
 */
#include "provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define MIB (1024ULL * 1024)

static void param_set(struct provision_params *out, const char *name, unsigned long long value)
{
    snprintf(out->item[out->n].name, sizeof out->item[out->n].name, "%s", name);
    snprintf(out->item[out->n].value, sizeof out->item[out->n].value, "%llu", value);
    out->n++;
}

/*
 * The shares follow common practice for a host that runs one engine:
 * InnoDB's buffer pool half of the memory, PostgreSQL's shared buffers a
 * quarter (the OS page cache does the rest), Redis's data half (a snapshot
 * forks the server, which may need as much again).
 */
int provision_memory_params(const char *plugin, uint32_t ram_mb, struct provision_params *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (ram_mb < 64) {
        err_set(err, errlen, "a flavor needs at least 64 MB of memory, not %u", ram_mb);
        return TROVE_EINVAL;
    }
    if (plugin && strcmp(plugin, "mysql") == 0)
        param_set(out, "innodb_buffer_pool_size", (unsigned long long)(ram_mb / 2) * MIB);
    else if (plugin && strcmp(plugin, "postgres") == 0)
        param_set(out, "shared_buffers", (unsigned long long)(ram_mb / 4) * (MIB / 8192));   /* 8 kB pages */
    else if (plugin && strcmp(plugin, "redis") == 0)
        param_set(out, "maxmemory", (unsigned long long)(ram_mb / 2) * MIB);
    else {
        err_set(err, errlen, "no memory parameters are known for plugin \"%s\"", plugin ? plugin : "");
        return TROVE_ENOTSUP;
    }
    return TROVE_OK;
}

void provision_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}
