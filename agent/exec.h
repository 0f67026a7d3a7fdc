/*
 * exec.h - the host's exec service: runs a command without a shell, wires
 * its stdin/stdout to backup sources/sinks or a buffer, captures the stderr
 * tail, enforces timeouts and cancellation.
 */
#ifndef TROVE_EXEC_H
#define TROVE_EXEC_H

#include "trove_plugin.h"

/* Run `cmd`, an agent-sized struct (host.c imports the plugin's within its
 * size and copies exit_status back). */
int exec_run(struct trove_call *call, struct trove_exec *cmd);

#endif
