/*
 * trove_control.h - libtrove-control, the client side of the trove wire
 * protocol (docs/protocol.md): connect to a trove-control client endpoint,
 * send a request to an instance (or a control.* operation to the control
 * plane), wait for its reply with a deadline, and follow a long operation's
 * task events until task.done.
 *
 * A struct trove_control is one DEALER connection with its own ZeroMQ
 * context. Use it from one thread at a time; open one per thread for
 * parallel requests. Requests are sent one at a time: a call returns only
 * when its reply (and, for a task, its task.done) arrived or its deadline
 * passed. Replies to earlier requests that arrive late are discarded.
 *
 * Errors: every call returns an enum trove_status (TROVE_OK, or the code of
 * the failure) and fills a struct trove_control_error. Codes produced here
 * rather than by the control plane or agent:
 *   TROVE_EUNAVAIL   the control plane cannot be reached, or the connection
 *                    to it was lost while waiting
 *   TROVE_ETIMEOUT   no answer before the deadline
 *   TROVE_EINVAL     bad arguments to the call (NULL op, args not a map,
 *                    JSON that does not parse)
 *   TROVE_EINTERNAL  out of memory, or an answer that breaks the protocol
 *
 * Memory: results are returned as newly allocated values the caller frees
 * (tv_free() for struct tv, free() for JSON text). Arguments are only read.
 */
#ifndef TROVE_CONTROL_H
#define TROVE_CONTROL_H

#include "trove_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TROVE_CONTROL_DEFAULT_ENDPOINT "ipc:///var/lib/trove-control/control.sock"
/* The environment variable trovectl reads its endpoint from. */
#define TROVE_CONTROL_ENDPOINT_ENV "TROVE_CONTROL_ENDPOINT"
#define TROVE_CONTROL_ID_LEN 32   /* request ids: 128 random bits in hex */

struct trove_control;
struct tv;   /* the value tree of common/value.h */

struct trove_control_error {
    int status;          /* enum trove_status; TROVE_OK when there was no error */
    char code[32];       /* its wire name ("unavailable", ...); may name a code newer than this library */
    char message[512];   /* one line, never a secret */
};

/* Called for every task.progress event while a task is awaited. percent is
 * 0-100 or -1 when unknown; message is valid only during the call. */
typedef void (*trove_control_progress_fn)(void *user, const char *task_id, int percent, const char *message);

/*
 * Connect to a control plane's client endpoint (NULL: the default) and wait
 * up to timeout_ms for the connection to be established. NULL on failure,
 * with err filled (TROVE_EUNAVAIL when nothing answers at the endpoint).
 */
TROVE_EXPORT struct trove_control *trove_control_connect(const char *endpoint, int timeout_ms,
                                                         struct trove_control_error *err);
TROVE_EXPORT void trove_control_close(struct trove_control *tc);

/*
 * Send one request and wait for its reply. instance is NULL for control.*
 * operations. args may be NULL (no arguments) or must be a map. timeout_ms
 * (> 0) bounds the wait and is sent as the request's timeout_ms, so the
 * control plane answers `timeout` itself if the agent stays silent. On
 * success *result receives the reply's result map (for a long operation:
 * {task, state}); on failure *result is NULL.
 */
TROVE_EXPORT int trove_control_request(struct trove_control *tc, const char *instance, const char *op,
                                       const struct tv *args, int timeout_ms, struct tv **result,
                                       struct trove_control_error *err);

/*
 * Wait up to timeout_ms for the task.done event of task_id, calling
 * progress (may be NULL) for each task.progress event. *result receives the
 * task's result map when it succeeded; a failed task returns its error.
 */
TROVE_EXPORT int trove_control_wait_task(struct trove_control *tc, const char *task_id, int timeout_ms,
                                         trove_control_progress_fn progress, void *user,
                                         struct tv **result, struct trove_control_error *err);

/*
 * trove_control_request, then, when the reply names a running task,
 * trove_control_wait_task on it; timeout_ms bounds the whole call. This is
 * what a command-line tool wants.
 */
TROVE_EXPORT int trove_control_call(struct trove_control *tc, const char *instance, const char *op,
                                    const struct tv *args, int timeout_ms, trove_control_progress_fn progress,
                                    void *user, struct tv **result, struct trove_control_error *err);

/*
 * trove_control_call with JSON text in and out, for callers that do not use
 * the value tree: args_json may be NULL or must be a JSON object; on success
 * *result_json receives the result as JSON text (caller frees with free()).
 */
TROVE_EXPORT int trove_control_call_json(struct trove_control *tc, const char *instance, const char *op,
                                         const char *args_json, int timeout_ms,
                                         trove_control_progress_fn progress, void *user, char **result_json,
                                         struct trove_control_error *err);

/* The id of the last request sent on this connection ("" before the first);
 * valid until the next request. Useful to ask control.task after a timeout. */
TROVE_EXPORT const char *trove_control_last_id(const struct trove_control *tc);

#ifdef __cplusplus
}
#endif

#endif
