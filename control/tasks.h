/*
 * tasks.h - requests in flight and tasks. A request sent to an agent waits
 * here for its reply (or its deadline); a long operation becomes a task
 * with a state, progress, an outcome and the callers following its events.
 * Tasks are kept in the registry when one is given, so a restarted control
 * plane resumes or fails each of them with a reason; none stays running
 * past its deadline. One task at a time per instance. Loop thread only;
 * no sockets here (the core sends, this module remembers).
 */
#ifndef TROVE_CONTROL_TASKS_H
#define TROVE_CONTROL_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

struct loop;
struct registry;
struct tasks;

#define TASK_ID_MAX 64
#define TASKS_DEFAULT_DEADLINE_MS (6 * 3600 * 1000L)   /* a task without an outcome fails after this */
#define TASKS_FINISHED_KEEP 1024                      /* finished tasks kept in memory (the registry keeps all) */
#define TASKS_FINISHED_TTL_MS (3600 * 1000L)

enum task_state { TASK_RUNNING, TASK_COMPLETED, TASK_FAILED };

/* "running", "completed", "failed" (the registry's RUNNING, COMPLETED, FAILED);
 * task_state_from_name: -1 if unknown. */
const char *task_state_name(enum task_state s);
int task_state_from_name(const char *name);

struct tasks_config {
    struct loop *loop;                /* for deadlines */
    struct registry *registry;        /* NULL: tasks live in memory only */
    int64_t task_deadline_ms;         /* 0: TASKS_DEFAULT_DEADLINE_MS */
};

/* NULL on no memory. With a registry, unfinished tasks of an earlier run
 * are loaded; call tasks_resume once the modules that resume them exist. */
struct tasks *tasks_new(const struct tasks_config *cfg);
void tasks_free(struct tasks *t);

/* ---------------------------------------------------------- requests in flight */

/*
 * Remember a request sent to an agent until its reply, its deadline
 * (timeout_ms from now) or cancellation. reply/on_event/user as in
 * control_submit; tenant and parent_task (may be NULL) are copied. A second
 * request with the same instance and id while the first waits (a retry)
 * joins it: both callers get the one reply. 0, or -1 on no memory (nothing
 * called).
 */
int tasks_pending_add(struct tasks *t, const char *instance, const char *id, const char *op, const char *tenant,
                      const char *parent_task, int64_t timeout_ms, control_reply_fn reply,
                      control_event_fn on_event, void *user);
/* Forget the caller `user` of a pending request without calling it (the
 * send failed and the caller answers itself); other callers keep waiting. */
void tasks_pending_drop(struct tasks *t, const char *instance, const char *id, void *user);
/* An agent's reply: the waiting caller gets it; a long op's {task} reply
 * opens the task (deadline, watchers). False if no request waited for it. */
bool tasks_agent_reply(struct tasks *t, const char *instance, const struct tv *reply);
/* An agent's task.progress or task.done (the whole event map). A done of
 * an unknown task (its start was before this control plane's memory) is
 * recorded too. Returns true when the event was a task.done that is now
 * recorded, so the core may acknowledge it. */
bool tasks_agent_event(struct tasks *t, const char *instance, const struct tv *event);
/* Shutdown: answer `cancelled` (with why) to every pending request and end
 * every watch with a last event saying so; task states are unchanged (a
 * restarted control plane picks them up). */
void tasks_cancel_pending(struct tasks *t, const char *why);

/* ---------------------------------------------------------- control-level tasks */

/*
 * Open a task run by the control plane itself (instance.create, ...). The
 * id is made here and copied into id_out. Refused with TROVE_ECONFLICT
 * (message in err) while another task runs on the instance (instance NULL:
 * no instance lock). args (may be NULL) are kept with the task so it can be
 * resumed after a restart. Returns TROVE_OK or a status.
 */
int tasks_begin(struct tasks *t, const char *tenant, const char *instance, const char *op, const struct tv *args,
                char id_out[TASK_ID_MAX + 1], char *err, size_t errlen);
/* percent 0-100, or -1 to keep the current percent (a sub-step's message);
 * message may be NULL. Watchers get a task.progress. */
void tasks_progress(struct tasks *t, const char *id, int percent, const char *message);
/* The outcome: status TROVE_OK with result (borrowed, may be NULL), or an
 * error status and message. Watchers get the task.done; no-op if the task
 * already finished. */
void tasks_finish(struct tasks *t, const char *id, int status, const char *message, const struct tv *result);

/* Follow a running task: on_event(user, ...) for each event until the
 * task.done (last = true). If the task already finished, its done is
 * delivered at once. -1 if the task is unknown (nothing called). */
int tasks_watch(struct tasks *t, const char *id, control_event_fn on_event, void *user);

/* ---------------------------------------------------------- looking */

/* The running task on an instance, or NULL. */
const char *tasks_running_on(const struct tasks *t, const char *instance);
/*
 * {id, tenant, instance, op, state, percent, message, created_at, updated_at,
 *  result (completed), error {code, message} (failed)}; times are Unix ms.
 * NULL when unknown (or kept by nobody any more) or on no memory.
 */
struct tv *tasks_describe(const struct tasks *t, const char *id);
/* The task.done event of a finished task (as the agent sent it, or as the
 * control plane made it); NULL if unknown or still running. Caller frees. */
struct tv *tasks_done_event(const struct tasks *t, const char *id);
/* Every task of an instance (NULL: all), newest first, as tasks_describe. */
struct tv *tasks_list(const struct tasks *t, const char *instance);

/*
 * Watch every outcome of an agent operation: a reply to a short one, the
 * task.done of a long one (status and result as in control_reply_fn). The
 * conductor uses it for statuses that follow from what was done
 * (RESTART_REQUIRED after config.apply). One observer; NULL removes it.
 */
typedef void (*tasks_observer_fn)(void *ctx, const char *instance, const char *op, int status,
                                  const struct tv *result);
void tasks_set_observer(struct tasks *t, tasks_observer_fn fn, void *ctx);

/* ---------------------------------------------------------- agents' view */

/*
 * At an agent's hello: `reported` is its list of tasks [{id, op, state:
 * "running" | "finished"}] (finished ones are still waiting for their ack;
 * their task.done follows). Every task this control plane believes runs on
 * the instance and the agent does not report fails with a reason; a running
 * one it reports and nobody knew is adopted.
 */
void tasks_reconcile(struct tasks *t, const char *instance, const struct tv *reported);

/*
 * After a restart, every task an earlier run left running: agent tasks stay
 * running until the agent's hello reconciles them (or their deadline);
 * control tasks whose op has a resumer are handed to it (it continues and
 * finishes them); the rest end failed with the reason "interrupted by a
 * restart of trove-control". Register resumers first.
 */
typedef void (*tasks_resume_fn)(void *ctx, const char *id, const char *tenant, const char *instance,
                                const struct tv *args);
int tasks_set_resumer(struct tasks *t, const char *op, tasks_resume_fn fn, void *ctx);
void tasks_resume(struct tasks *t);

#endif
