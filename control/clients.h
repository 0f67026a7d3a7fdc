/*
 * clients.h - the client socket door: a ROUTER on client_endpoint (local
 * only) where trovectl and libtrove-control send requests. Each request
 * goes through control_submit like any other door's; its reply and its
 * task's events go back to the connection that sent it.
 */
#ifndef TROVE_CONTROL_CLIENTS_H
#define TROVE_CONTROL_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

struct clients;
struct control_core;
struct loop;

/* Bind endpoint and watch it on the loop. NULL with a reason in err. */
struct clients *clients_open(void *zmq_context, struct loop *loop, struct control_core *core, const char *endpoint,
                             int64_t request_timeout_ms, char *err, size_t errlen);
/* Call after core_shutdown (which answers everything still waiting). */
void clients_close(struct clients *c);

#endif
