/*
 * timing.c - monotonic clock and log-line rate limit (see timing.h).
 */
#include "timing.h"

#include <time.h>

#include "log.h"

int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool log_limit_allow(struct log_limit *l)
{
    int64_t now = monotonic_ms();
    if (now - l->window_start_ms >= l->window_ms) {
        if (l->suppressed)
            log_warn("%u more %s (not logged)", l->suppressed, l->what);
        l->window_start_ms = now;
        l->used = l->suppressed = 0;
    }
    if (l->used < l->per_window) {
        l->used++;
        return true;
    }
    l->suppressed++;
    return false;
}
