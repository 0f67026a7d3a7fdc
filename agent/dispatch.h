/*
 * dispatch.h - protocol ops (the catalogue of common/ops.h) to plugin
 * slots: argument checking, conversion to ABI structs, uniform "not
 * supported" for NULL slots, and which ops are long (run on the worker).
 */
#ifndef TROVE_DISPATCH_H
#define TROVE_DISPATCH_H

#include "agent.h"
#include "host.h"

struct ops_def;

/* NULL if no op has that name. */
const struct ops_def *dispatch_find(const char *name);
bool dispatch_is_long(const struct ops_def *op);
const char *dispatch_name(const struct ops_def *op);
/* Whether the loaded plugin implements the op. */
bool dispatch_available(const struct agent *a, const struct ops_def *op);
/* Names of available ops / feature names, as arrays for hello. */
struct tv *dispatch_capabilities(const struct agent *a);
struct tv *dispatch_features(const struct agent *a);

/*
 * Run an op by name: unknown op -> not_found, NULL slot -> not_supported,
 * bad args -> invalid_argument. The result is in call->result, the message
 * in call->message. `args` may be NULL (treated as an empty map).
 */
int dispatch_run(struct agent *a, const char *op, const struct tv *args, struct trove_call *call);

#endif
