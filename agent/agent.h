/*
 * agent.h - the agent's one context struct and the pieces that share it:
 * settings, the loaded plugin, backup storage and the stop flag. Nothing
 * global outside this struct; sockets belong to loop.c alone.
 */
#ifndef TROVE_AGENT_H
#define TROVE_AGENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "trove_plugin.h"

#define AGENT_VERSION "0.1.0"

struct storage;

struct plugin_handle {
    void *dl;
    const struct trove_plugin *vt;   /* &table once loaded */
    /* The plugin's table as this agent sees it: copied within the size the
     * plugin declared, so slots of a newer agent that an older plugin lacks
     * are NULL, and a newer plugin's extra slots are not read at all. */
    struct trove_plugin table;
    uint32_t declared_size;          /* the plugin's own sizeof(struct trove_plugin) */
    void *self;
    /* Set by agent_configure before plugin_load: passed to open(). */
    char state_dir[4096];            /* <state_dir>/plugin, mode 0700 */
    const char *instance_id;
};

struct agent {
    struct conf *conf;             /* agent.conf with secrets merged into [datastore] */
    const char *instance_id;
    const char *state_dir;
    const char *control_endpoint;
    uint32_t heartbeat_ms;
    bool plaintext_dev;
    struct plugin_handle plugin;
    struct storage *storage;
    int compression_level;
    atomic_bool stopping;          /* set by SIGTERM/SIGINT; long ops see it as cancellation */
};

/* Load config (and secrets) from path into a; error text in err. */
int agent_configure(struct agent *a, const char *path, char *err, size_t errlen);
void agent_release(struct agent *a);
const char *agent_plugin_dir(const struct agent *a);
/* Instance and backup ids: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'
 * (they become file names and must never look like options or paths). */
bool agent_name_ok(const char *id);

#endif
