/*
 * config_check.h - validates configuration values against the schema the
 * plugin publishes, naming every violation, before any value is applied.
 */
#ifndef TROVE_CONFIG_CHECK_H
#define TROVE_CONFIG_CHECK_H

#include "agent.h"
#include "host.h"

/* TROVE_OK, or TROVE_EINVAL with every violation listed in the call's message.
 * Runs the plugin's config_validate afterwards when it has one. */
int config_check(struct agent *a, struct trove_call *call, const struct trove_kv *values, size_t n);

#endif
