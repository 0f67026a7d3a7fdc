/*
 * abi_major_plugin.c - a plugin built for a different ABI major, so the
 * tests can check that the agent refuses it before calling anything.
 */
#include "trove_plugin.h"

static const struct trove_plugin table = {
    .abi_major = TROVE_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(struct trove_plugin),
    .name = "nextmajor",
    .version = "9.9.9",
};

TROVE_EXPORT const struct trove_plugin *trove_plugin_entry(void)
{
    return &table;
}
