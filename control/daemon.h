/*
 * daemon.h - trove-control's process: it wires the modules together and
 * runs their one loop. Nothing else includes this header; modules reach
 * each other only through the interfaces they are handed here.
 */
#ifndef TROVE_CONTROL_DAEMON_H
#define TROVE_CONTROL_DAEMON_H

#include "config.h"

/* Run the daemon until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const struct control_config *cfg);

#endif
