/*
 * timing.h - the daemon's clock and its limit on repeated log lines, so a
 * peer that misbehaves in a loop cannot flood the log. No sockets here.
 */
#ifndef TROVE_CONTROL_TIMING_H
#define TROVE_CONTROL_TIMING_H

#include <stdbool.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock. */
int64_t monotonic_ms(void);

/* At most per_window lines per window_ms; the count of the rest is logged
 * when the next window opens. */
struct log_limit {
    int64_t window_ms;
    unsigned per_window;
    const char *what;          /* "agent handshakes refused", for the suppressed count */
    int64_t window_start_ms;
    unsigned used, suppressed;
};

/* True if one more line may be logged now. */
bool log_limit_allow(struct log_limit *l);

#endif
