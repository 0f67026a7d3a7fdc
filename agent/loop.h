/*
 * loop.h - the agent's main loop: the DEALER to the control plane, hello on
 * every handshake, heartbeats carrying the datastore's health, requests
 * dispatched (short ones inline, long ones to the worker) and a cache of
 * recent replies so a repeated request id is never executed twice.
 */
#ifndef TROVE_LOOP_H
#define TROVE_LOOP_H

#include "agent.h"

/* Serve until a->stopping is set. Returns 0 on a clean stop, -1 on a setup error. */
int loop_run(struct agent *a);

#endif
