/*
 * loop.h - the agent's main loop: the DEALER to the control plane, hello on
 * every handshake, heartbeats carrying the datastore's health, requests
 * dispatched (short ones inline, long ones to the worker) and a cache of
 * recent replies so a repeated request id is never executed twice.
 */
#ifndef TROVE_LOOP_H
#define TROVE_LOOP_H

#include "agent.h"
#include "keys.h"

/* Serve until a->stopping is set. Returns 0 on a clean stop, -1 on a setup error. */
int loop_run(struct agent *a);
/* The control plane's public key (server, KEYS_Z85_LEN + 1 bytes) and this
 * agent's key pair from [curve]; the caller wipes *me either way. */
int loop_read_keys(const struct agent *a, char *server, struct keys_pair *me, char *err, size_t errlen);
/* 0 when the link's security settings are usable: plain text only on a local
 * endpoint, else both keys readable (read, checked and wiped). */
int loop_check_security(const struct agent *a, char *err, size_t errlen);

#endif
