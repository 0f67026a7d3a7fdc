/*
 * plugin_loader.h - finds, checks and opens the one datastore plugin, only
 * from the configured plugin directory, refusing a wrong ABI major.
 */
#ifndef TROVE_PLUGIN_LOADER_H
#define TROVE_PLUGIN_LOADER_H

#include <stddef.h>
#include "agent.h"

/* dlopen <dir>/<name>.so, check it and call its open() with the settings,
 * h->state_dir and h->instance_id (agent_configure sets both). Returns a
 * trove status; on failure err says why (both ABI numbers on a major
 * mismatch). */
int plugin_load(struct plugin_handle *h, const char *dir, const char *name,
                const struct trove_kv *settings, size_t n_settings, char *err, size_t errlen);
void plugin_unload(struct plugin_handle *h);

#endif
