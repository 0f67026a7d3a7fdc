/*
 * guest_log.h - log.list, log.tail and log.fetch: where a plugin's guest-log
 * bytes go. A tail comes back inline, bounded by TROVE_LOG_TAIL_MAX; a whole
 * log goes to a file under <state_dir>/logs and only its path, size and
 * checksum travel, so bulk bytes never ride the control socket.
 */
#ifndef TROVE_GUEST_LOG_H
#define TROVE_GUEST_LOG_H

#include "agent.h"
#include "host.h"

#define GUEST_LOG_FETCH_MAX (1024ull * 1024 * 1024)   /* bytes one log.fetch may copy */
#define GUEST_LOG_KEEP 4                              /* fetched copies kept per log */

int guest_log_op_list(struct agent *a, struct trove_call *call, const struct tv *args);
int guest_log_op_tail(struct agent *a, struct trove_call *call, const struct tv *args);
int guest_log_op_fetch(struct agent *a, struct trove_call *call, const struct tv *args);

#endif
