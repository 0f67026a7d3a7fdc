/*
 * host.h - the services table handed to plugins (struct trove_host) and the
 * per-operation handle (struct trove_call): result tree, failure message,
 * progress reporting and cancellation.
 */
#ifndef TROVE_HOST_H
#define TROVE_HOST_H

#include <stdarg.h>
#include <stdatomic.h>
#include "trove_plugin.h"
#include "value.h"

struct storage;

typedef void (*progress_fn)(void *ctx, int percent, const char *message);

struct trove_call {
    struct tv *result;           /* always a map */
    int status;                  /* last status given to fail() */
    char message[TROVE_FAIL_MAX]; /* failure message */
    progress_fn on_progress;     /* may be NULL */
    void *progress_ctx;
    const atomic_bool *stop;     /* cancellation flag, may be NULL */
    struct storage *storage;     /* backup storage of this request (storage_object.h); NULL: the agent's */
};

const struct trove_host *host_services(void);

/* Initialise a call with an empty result map. Returns 0 or -1 (no memory). */
int call_init(struct trove_call *call, const atomic_bool *stop, progress_fn fn, void *ctx);
void call_release(struct trove_call *call);
/* Take the result map out of the call (caller owns it). */
struct tv *call_take_result(struct trove_call *call);
/* Record a failure (as host->fail). */
int call_fail(struct trove_call *call, int status, const char *fmt, ...) TROVE_PRINTF(3, 4);
int call_vfail(struct trove_call *call, int status, const char *fmt, va_list ap);
/* The message for a non-OK status: the recorded one, or the status name. */
const char *call_message(const struct trove_call *call, int status);

#endif
