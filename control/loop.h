/*
 * loop.h - trove-control's one event loop: ZeroMQ sockets and plain file
 * descriptors polled together (zmq_poll), plus one-shot timers. Modules add
 * what they need to watch (the agent ROUTER, the client socket, the REST
 * API's epoll descriptor) and get called back on the loop thread. It knows
 * nothing of what the callbacks do. Single-threaded but for loop_post.
 */
#ifndef TROVE_CONTROL_LOOP_H
#define TROVE_CONTROL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

/* Called when the socket or descriptor polls readable (events: ZMQ_POLLIN,
 * ZMQ_POLLOUT, ZMQ_POLLERR as returned by zmq_poll). */
typedef void (*loop_io_fn)(void *ctx, short events);
typedef void (*loop_timer_fn)(void *ctx);

struct loop *loop_new(void);
/* Frees the loop and its timers; sockets and descriptors are the adders' to close. */
void loop_free(struct loop *l);

/* Watch a ZeroMQ socket / a file descriptor for `events` (ZMQ_POLLIN,
 * ZMQ_POLLOUT). 0, or -1 on no memory. A callback may add or remove
 * watches; a removed one is not called again. */
int loop_add_socket(struct loop *l, void *socket, short events, loop_io_fn fn, void *ctx);
int loop_add_fd(struct loop *l, int fd, short events, loop_io_fn fn, void *ctx);
void loop_remove_socket(struct loop *l, void *socket);
void loop_remove_fd(struct loop *l, int fd);

/* Called before every poll, so a module whose deadline moves with any
 * activity (libmicrohttpd's timeout) can re-arm its timer. 0 or -1. */
typedef void (*loop_prepare_fn)(void *ctx);
int loop_add_prepare(struct loop *l, loop_prepare_fn fn, void *ctx);

/* A timer, disarmed until armed. Freed with loop_timer_free or with the loop. */
struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn fn, void *ctx);
/* Fire once, delay_ms from now (0: on the next turn); re-arming replaces the
 * earlier time. */
void loop_timer_arm(struct loop_timer *t, int64_t delay_ms);
void loop_timer_disarm(struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);

/*
 * Run fn(ctx) on the loop thread soon. The only call here that other
 * threads may make (work done off the loop, such as provisioning, hands its
 * outcome back this way). 0, or -1 on no memory (fn is not called).
 */
int loop_post(struct loop *l, loop_timer_fn fn, void *ctx);

/* Run until loop_stop. 0, or -1 when polling fails (logged). */
int loop_run(struct loop *l);
/* Make loop_run return after the current turn (callable from a callback). */
void loop_stop(struct loop *l);

#endif
