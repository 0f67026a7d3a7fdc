/*
 * clock.c - the one clock plugins measure time with: CLOCK_MONOTONIC in
 * milliseconds, for deadlines and durations, never for dates.
 */
#include <errno.h>
#include <time.h>

#include "trove_plugin_support.h"

uint64_t tps_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tps_sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
