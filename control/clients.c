/*
 * clients.c - the client ROUTER: frames checked and decoded here, requests
 * submitted to the core with the client's own id, answers encoded back to
 * the routing id that asked. The client endpoint has no authentication, so
 * config.c allows it only on local transports; requests here act as the
 * operator (tenant NULL).
 */
#include "clients.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "core.h"
#include "log.h"
#include "loop.h"
#include "trove_plugin.h"
#include "wire.h"

#define SEND_HWM 1000
#define BATCH 256
#define ROUTING_ID_MAX 255
#define REQUEST_TIMEOUT_MAX_MS 86400000L

struct clients {
    void *socket;
    struct loop *loop;
    struct control_core *core;
    int64_t request_timeout_ms;
};

/* One request's way back: who asked, under which id. */
struct asker {
    struct clients *c;
    unsigned char rid[ROUTING_ID_MAX];
    size_t rid_len;
    char id[65];
};

static void send_to(struct clients *c, const void *rid, size_t rid_len, const struct tv *msg)
{
    char *buf = NULL;
    size_t len = 0;
    if (wire_encode(msg, &buf, &len) != 0 || zmq_send(c->socket, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(c->socket, buf, len, ZMQ_DONTWAIT) < 0)
        log_debug("a client is gone (or not reading); dropped an answer to it");
    free(buf);
}

static void send_error(struct clients *c, const void *rid, size_t rid_len, const char *id, int status,
                       const char *fmt, ...) TROVE_PRINTF(6, 7);

static void send_error(struct clients *c, const void *rid, size_t rid_len, const char *id, int status,
                       const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct tv *reply = wire_reply_error(id, status, message);
    if (reply)
        send_to(c, rid, rid_len, reply);
    tv_free(reply);
}

/* ------------------------------------------------------------ answers */

static void on_reply(void *user, int status, const char *message, const struct tv *result)
{
    struct asker *a = user;
    struct tv *reply = status == TROVE_OK ? wire_reply_ok(a->id, result ? tv_copy(result) : NULL)
                                          : wire_reply_error(a->id, status, message);
    if (reply)
        send_to(a->c, a->rid, a->rid_len, reply);
    tv_free(reply);
    /* A task's events follow to the same asker; on_event frees it at the last. */
    if (status != TROVE_OK || !control_result_is_task(result))
        free(a);
}

static void on_event(void *user, const struct tv *event, bool last)
{
    struct asker *a = user;
    send_to(a->c, a->rid, a->rid_len, event);
    if (last)
        free(a);
}

/* ------------------------------------------------------------ requests */

static bool usable_id(const struct tv *msg)
{
    const struct tv *id = tv_get(msg, "id");
    return id && id->type == TV_STR && id->u.s.len > 0 && id->u.s.len <= 64 && strlen(id->u.s.ptr) == id->u.s.len;
}

static void submit(struct clients *c, const void *rid, size_t rid_len, const struct tv *msg)
{
    const struct tv *instance = tv_get(msg, "instance");
    const struct tv *timeout = tv_get(msg, "timeout_ms");
    struct asker *a = calloc(1, sizeof *a);
    if (!a) {
        send_error(c, rid, rid_len, tv_get_str(msg, "id"), TROVE_EINTERNAL, "out of memory");
        return;
    }
    a->c = c;
    a->rid_len = rid_len < ROUTING_ID_MAX ? rid_len : ROUTING_ID_MAX;
    memcpy(a->rid, rid, a->rid_len);
    snprintf(a->id, sizeof a->id, "%s", tv_get_str(msg, "id"));
    struct control_request req = {
        .tenant = NULL,
        .admin = true,
        .instance = instance ? instance->u.s.ptr : NULL,
        .op = tv_get_str(msg, "op"),
        .args = tv_get(msg, "args"),
        .timeout_ms = timeout ? timeout->u.i : c->request_timeout_ms,
        .id = a->id,
        .on_event = on_event,
    };
    if (control_submit(c->core, &req, on_reply, a) != 0) {
        send_error(c, rid, rid_len, a->id, TROVE_ECANCELLED, "the control plane is shutting down");
        free(a);
    }
}

static void client_message(struct clients *c, const void *rid, size_t rid_len, zmq_msg_t *body, int frames)
{
    char err[200];
    if (frames != 1) {
        send_error(c, rid, rid_len, "", TROVE_EINVAL, "a message must be exactly one frame, got %d", frames);
        return;
    }
    struct tv *msg = NULL;
    if (wire_decode(zmq_msg_data(body), zmq_msg_size(body), &wire_default_limits, &msg, err, sizeof err) != 0) {
        send_error(c, rid, rid_len, "", TROVE_EINVAL, "undecodable frame: %s", err);
        return;
    }
    const char *id = usable_id(msg) ? tv_get_str(msg, "id") : NULL;
    const char *type = tv_get_str(msg, "type");
    const struct tv *instance = tv_get(msg, "instance");
    const struct tv *timeout = tv_get(msg, "timeout_ms");

    if (wire_check_envelope(msg, err, sizeof err) != 0)
        send_error(c, rid, rid_len, id ? id : "", TROVE_EINVAL, "%s", err);
    else if (!id)
        send_error(c, rid, rid_len, "", TROVE_EINVAL, "id must be 1-64 bytes without NUL");
    else if (!type || strcmp(type, "request") != 0 || !tv_get_str(msg, "op"))
        send_error(c, rid, rid_len, id, TROVE_EINVAL, "clients send requests (type \"request\" with an op)");
    else if (timeout && (timeout->type != TV_INT || timeout->u.i < 1 || timeout->u.i > REQUEST_TIMEOUT_MAX_MS))
        send_error(c, rid, rid_len, id, TROVE_EINVAL, "timeout_ms must be an integer in 1..%ld",
                   REQUEST_TIMEOUT_MAX_MS);
    else if (instance && (instance->type != TV_STR || strlen(instance->u.s.ptr) != instance->u.s.len))
        send_error(c, rid, rid_len, id, TROVE_EINVAL, "instance must be 1-64 printable characters");
    else
        submit(c, rid, rid_len, msg);
    tv_free(msg);
}

static void on_readable(void *ctx, short events)
{
    struct clients *c = ctx;
    (void)events;
    for (int i = 0; i < BATCH; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&rid, c->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            return;
        }
        int frames = 0;
        for (bool more = zmq_msg_more(&rid); more;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, c->socket, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (frames++ == 0) {
                zmq_msg_close(&body);
                body = m;
            } else {
                zmq_msg_close(&m);
            }
        }
        client_message(c, zmq_msg_data(&rid), zmq_msg_size(&rid), &body, frames);
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
}

/* ------------------------------------------------------------ setup */

struct clients *clients_open(void *zmq_context, struct loop *loop, struct control_core *core, const char *endpoint,
                             int64_t request_timeout_ms, char *err, size_t errlen)
{
    struct clients *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *c = (struct clients){NULL, loop, core, request_timeout_ms};
    c->socket = zmq_socket(zmq_context, ZMQ_ROUTER);
    if (!c->socket) {
        snprintf(err, errlen, "cannot create the client socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    int64_t max = WIRE_MAX_FRAME;
    int zero = 0, hwm = SEND_HWM, one = 1;
    zmq_setsockopt(c->socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(c->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (zmq_bind(c->socket, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind client_endpoint %s: %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (loop_add_socket(loop, c->socket, ZMQ_POLLIN, on_readable, c) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return c;
fail:
    clients_close(c);
    return NULL;
}

void clients_close(struct clients *c)
{
    if (!c)
        return;
    if (c->socket) {
        loop_remove_socket(c->loop, c->socket);
        zmq_close(c->socket);
    }
    free(c);
}
