/*
 * cluster.h - cluster.join and cluster.leave: arguments checked and turned
 * into a struct trove_cluster_request. The cluster secret passes through to
 * the plugin and is never logged, stored or echoed by the agent.
 */
#ifndef TROVE_CLUSTER_H
#define TROVE_CLUSTER_H

#include "agent.h"
#include "args.h"

/* join = true: cluster.join (seeds), false: cluster.leave (member). */
int cluster_op_change(struct agent *a, struct trove_call *call, const struct tv *args, struct arena *ar, bool join);

#endif
