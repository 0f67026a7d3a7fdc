/*
 * client.c - libtrove-control: one DEALER to a control plane, plus a socket
 * monitor so that "nothing is listening" and "the connection dropped" are
 * reported as such instead of as a silent timeout. Holds no global state.
 */
#include "trove_control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "json.h"
#include "status.h"
#include "value.h"
#include "wire.h"

/* Extra time given to the control plane to answer `timeout` itself before
 * the client gives up on its own. */
#define REPLY_GRACE_MS 1000
#define MONITOR_ENDPOINT "inproc://trove-control-monitor"

struct trove_control {
    void *context;
    void *socket;     /* DEALER to the control plane */
    void *monitor;    /* PAIR receiving the DEALER's connection events */
    char endpoint[256];
    char last_id[TROVE_CONTROL_ID_LEN + 1];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(struct trove_control_error *err, int status, const char *fmt, ...) TROVE_PRINTF(3, 4);

static int fail(struct trove_control_error *err, int status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        snprintf(err->code, sizeof err->code, "%s", status_name(status));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

static void clear_error(struct trove_control_error *err)
{
    if (err) {
        err->status = TROVE_OK;
        snprintf(err->code, sizeof err->code, "ok");
        err->message[0] = '\0';
    }
}

/* An error map from the wire: {code, message}. An unknown code name is kept
 * as text and reported as internal. */
static int fail_from_wire(struct trove_control_error *err, const struct tv *error)
{
    const char *code = tv_get_str(error, "code");
    const char *message = tv_get_str(error, "message");
    int status = code ? status_from_name(code) : -1;
    if (status <= TROVE_OK)
        status = TROVE_EINTERNAL;
    if (err) {
        err->status = status;
        snprintf(err->code, sizeof err->code, "%s", code ? code : status_name(status));
        snprintf(err->message, sizeof err->message, "%s", message ? message : "(no message)");
        /* Keep the one-line promise even if a peer sent newlines. */
        for (char *p = err->message; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return status;
}

static int new_request_id(char *out)
{
    unsigned char raw[TROVE_CONTROL_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* ------------------------------------------------------------ connection */

/* One monitor event: its type (0 when none could be read) and value. */
static uint16_t read_monitor_event(void *monitor, uint32_t *value)
{
    zmq_msg_t head, address;
    uint16_t event = 0;
    zmq_msg_init(&head);
    zmq_msg_init(&address);
    if (zmq_msg_recv(&head, monitor, ZMQ_DONTWAIT) >= 6) {
        memcpy(&event, zmq_msg_data(&head), sizeof event);
        memcpy(value, (char *)zmq_msg_data(&head) + 2, sizeof *value);
        if (zmq_msg_more(&head))
            zmq_msg_recv(&address, monitor, 0);
    }
    zmq_msg_close(&head);
    zmq_msg_close(&address);
    return event;
}

static int wait_connected(struct trove_control *tc, int timeout_ms, struct trove_control_error *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    const char *last_problem = "no answer";
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t item = {tc->monitor, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)left) < 0 && errno != EINTR)
            break;
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        uint32_t value = 0;
        switch (read_monitor_event(tc->monitor, &value)) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            return 0;
        case ZMQ_EVENT_CONNECT_RETRIED:
            last_problem = "nothing is listening there";
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            last_problem = "the handshake failed (is that a trove-control client endpoint?)";
            break;
        default:
            break;
        }
    }
    return fail(err, TROVE_EUNAVAIL, "cannot connect to the control plane at %s: %s (is trove-control running?)",
                tc->endpoint, last_problem);
}

struct trove_control *trove_control_connect(const char *endpoint, int timeout_ms, struct trove_control_error *err)
{
    struct trove_control *tc = calloc(1, sizeof *tc);
    int64_t max = WIRE_MAX_FRAME;
    int zero = 0;

    clear_error(err);
    if (!endpoint)
        endpoint = TROVE_CONTROL_DEFAULT_ENDPOINT;
    if (!tc) {
        fail(err, TROVE_EINTERNAL, "out of memory");
        return NULL;
    }
    snprintf(tc->endpoint, sizeof tc->endpoint, "%s", endpoint);
    if (!(tc->context = zmq_ctx_new()) || !(tc->socket = zmq_socket(tc->context, ZMQ_DEALER)) ||
        !(tc->monitor = zmq_socket(tc->context, ZMQ_PAIR))) {
        fail(err, TROVE_EINTERNAL, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(tc->socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(tc->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(tc->monitor, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_socket_monitor(tc->socket, MONITOR_ENDPOINT,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        zmq_connect(tc->monitor, MONITOR_ENDPOINT) != 0) {
        fail(err, TROVE_EINTERNAL, "cannot monitor the connection: %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_connect(tc->socket, endpoint) != 0) {
        fail(err, TROVE_EINVAL, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        goto fail;
    }
    if (wait_connected(tc, timeout_ms > 0 ? timeout_ms : 1, err) != 0)
        goto fail;
    return tc;
fail:
    trove_control_close(tc);
    return NULL;
}

void trove_control_close(struct trove_control *tc)
{
    if (!tc)
        return;
    if (tc->socket) {
        zmq_socket_monitor(tc->socket, NULL, 0);
        zmq_close(tc->socket);
    }
    if (tc->monitor)
        zmq_close(tc->monitor);
    if (tc->context)
        zmq_ctx_term(tc->context);
    free(tc);
}

const char *trove_control_last_id(const struct trove_control *tc)
{
    return tc->last_id;
}

/* ------------------------------------------------------------ receiving */

enum wait_for { WAIT_REPLY, WAIT_TASK };

/*
 * Receive until the reply (WAIT_REPLY) or the task.done event (WAIT_TASK)
 * with this id arrives, or the deadline passes. Returns the message (caller
 * frees) or NULL with err filled.
 */
static struct tv *receive_for(struct trove_control *tc, const char *id, enum wait_for what, int64_t deadline,
                              trove_control_progress_fn progress, void *user, struct trove_control_error *err)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return NULL;   /* the caller words the timeout */
        zmq_pollitem_t items[] = {{tc->socket, 0, ZMQ_POLLIN, 0}, {tc->monitor, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, (long)left) < 0) {
            if (errno == EINTR)
                continue;
            fail(err, TROVE_EINTERNAL, "poll failed: %s", zmq_strerror(errno));
            return NULL;
        }
        uint32_t value;
        if ((items[1].revents & ZMQ_POLLIN) && read_monitor_event(tc->monitor, &value) == ZMQ_EVENT_DISCONNECTED) {
            fail(err, TROVE_EUNAVAIL, "lost the connection to the control plane at %s", tc->endpoint);
            return NULL;
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;

        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, tc->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            continue;
        }
        struct tv *msg = NULL;
        char why[160];
        bool more = zmq_msg_more(&frame);
        int rc = wire_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &wire_default_limits, &msg, why,
                             sizeof why);
        zmq_msg_close(&frame);
        while (more) {   /* the protocol has one frame per message; skip extras */
            zmq_msg_init(&frame);
            more = zmq_msg_recv(&frame, tc->socket, 0) >= 0 && zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        if (rc != 0) {
            fail(err, TROVE_EINTERNAL, "undecodable answer from the control plane: %s", why);
            return NULL;
        }
        const char *type = tv_get_str(msg, "type");
        const char *msg_id = tv_get_str(msg, "id");
        const char *event = tv_get_str(msg, "event");
        if (type && msg_id && strcmp(type, "reply") == 0 && what == WAIT_REPLY &&
            (strcmp(msg_id, id) == 0 || msg_id[0] == '\0'))
            return msg;   /* "" is the control plane refusing our frame itself */
        if (type && msg_id && event && strcmp(type, "event") == 0 && strcmp(msg_id, id) == 0) {
            if (strcmp(event, "task.done") == 0 && what == WAIT_TASK)
                return msg;
            if (strcmp(event, "task.progress") == 0 && progress) {
                const char *text = tv_get_str(msg, "message");
                progress(user, id, (int)tv_get_int(msg, "percent", -1), text ? text : "");
            }
        }
        tv_free(msg);   /* a late answer to an earlier request, or an event we do not follow */
    }
}

/* Turn a reply or task.done into the result map or an error. */
static int take_outcome(struct tv *msg, struct tv **result, struct trove_control_error *err)
{
    if (!tv_get_bool(msg, "ok", false)) {
        const struct tv *error = tv_get(msg, "error");
        return error && error->type == TV_MAP ? fail_from_wire(err, error)
                                              : fail(err, TROVE_EINTERNAL, "a failure without an error map");
    }
    struct tv *r = tv_get(msg, "result");
    if (r && r->type != TV_MAP)
        return fail(err, TROVE_EINTERNAL, "the result is a %s, not a map", tv_type_name(r->type));
    *result = r ? tv_copy(r) : tv_map();
    if (!*result)
        return fail(err, TROVE_EINTERNAL, "out of memory");
    return TROVE_OK;
}

/* ------------------------------------------------------------ requests */

/* Forget connection events from between requests: a disconnect that has
 * since been repaired by libzmq's reconnect must not fail the next call. */
static void drain_monitor(struct trove_control *tc)
{
    uint32_t value;
    zmq_pollitem_t item = {tc->monitor, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, 0) > 0 && (item.revents & ZMQ_POLLIN))
        read_monitor_event(tc->monitor, &value);
}

static int send_request(struct trove_control *tc, const char *instance, const char *op, const struct tv *args,
                        int timeout_ms, struct trove_control_error *err)
{
    struct tv *copy = args ? tv_copy(args) : NULL;
    struct tv *msg = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    drain_monitor(tc);
    if (new_request_id(tc->last_id) != 0)
        return fail(err, TROVE_EINTERNAL, "no randomness for a request id: %s", strerror(errno));
    if ((args && !copy) || !(msg = wire_request(tc->last_id, op, copy)) ||
        (instance && tv_set_str(msg, "instance", instance) != 0) || tv_set_int(msg, "timeout_ms", timeout_ms) != 0 ||
        wire_encode(msg, &buf, &len) != 0) {
        rc = fail(err, TROVE_EINTERNAL, "out of memory");
        goto out;
    }
    if (len > WIRE_MAX_FRAME) {
        rc = fail(err, TROVE_EINVAL, "the request is larger than %u bytes", WIRE_MAX_FRAME);
        goto out;
    }
    if (zmq_send(tc->socket, buf, len, ZMQ_DONTWAIT) < 0) {
        rc = fail(err, TROVE_EUNAVAIL, "cannot send to the control plane at %s: %s", tc->endpoint,
                  zmq_strerror(errno));
        goto out;
    }
    rc = TROVE_OK;
out:
    tv_free(msg);
    free(buf);
    return rc;
}

int trove_control_request(struct trove_control *tc, const char *instance, const char *op, const struct tv *args,
                          int timeout_ms, struct tv **result, struct trove_control_error *err)
{
    *result = NULL;
    clear_error(err);
    if (!op || !*op || strlen(op) > 64)
        return fail(err, TROVE_EINVAL, "op must be 1-64 characters");
    if (args && args->type != TV_MAP)
        return fail(err, TROVE_EINVAL, "args must be a map");
    if (timeout_ms <= 0)
        return fail(err, TROVE_EINVAL, "timeout_ms must be positive");
    int rc = send_request(tc, instance, op, args, timeout_ms, err);
    if (rc != TROVE_OK)
        return rc;
    struct tv *reply = receive_for(tc, tc->last_id, WAIT_REPLY, now_ms() + timeout_ms + REPLY_GRACE_MS, NULL,
                                   NULL, err);
    if (!reply)
        return err && err->status != TROVE_OK
                   ? err->status
                   : fail(err, TROVE_ETIMEOUT, "no reply to %s from the control plane within %d ms", op, timeout_ms);
    rc = take_outcome(reply, result, err);
    tv_free(reply);
    return rc;
}

int trove_control_wait_task(struct trove_control *tc, const char *task_id, int timeout_ms,
                            trove_control_progress_fn progress, void *user, struct tv **result,
                            struct trove_control_error *err)
{
    *result = NULL;
    clear_error(err);
    if (!task_id || !*task_id)
        return fail(err, TROVE_EINVAL, "no task id");
    struct tv *done = receive_for(tc, task_id, WAIT_TASK, now_ms() + (timeout_ms > 0 ? timeout_ms : 0), progress,
                                  user, err);
    if (!done)
        return err && err->status != TROVE_OK
                   ? err->status
                   : fail(err, TROVE_ETIMEOUT,
                          "task %s did not finish within %d ms (it keeps running; control.task reports its outcome)",
                          task_id, timeout_ms);
    int rc = take_outcome(done, result, err);
    tv_free(done);
    return rc;
}

int trove_control_call(struct trove_control *tc, const char *instance, const char *op, const struct tv *args,
                       int timeout_ms, trove_control_progress_fn progress, void *user, struct tv **result,
                       struct trove_control_error *err)
{
    int64_t start = now_ms();
    int rc = trove_control_request(tc, instance, op, args, timeout_ms, result, err);
    if (rc != TROVE_OK)
        return rc;
    const char *task = tv_get_str(*result, "task");
    const char *state = tv_get_str(*result, "state");
    if (!task || !state || strcmp(state, "running") != 0)
        return TROVE_OK;
    char task_id[65];
    snprintf(task_id, sizeof task_id, "%s", task);
    tv_free(*result);
    *result = NULL;
    int64_t left = timeout_ms - (now_ms() - start);
    return trove_control_wait_task(tc, task_id, left > 0 ? (int)left : 1, progress, user, result, err);
}

int trove_control_call_json(struct trove_control *tc, const char *instance, const char *op, const char *args_json,
                            int timeout_ms, trove_control_progress_fn progress, void *user, char **result_json,
                            struct trove_control_error *err)
{
    struct tv *args = NULL, *result = NULL;
    char why[200];

    *result_json = NULL;
    clear_error(err);
    if (args_json && json_to_tv(args_json, &args, why, sizeof why) != 0)
        return fail(err, TROVE_EINVAL, "JSON arguments: %s", why);
    int rc = trove_control_call(tc, instance, op, args, timeout_ms, progress, user, &result, err);
    tv_free(args);
    if (rc != TROVE_OK)
        return rc;
    *result_json = tv_to_json(result, false);
    tv_free(result);
    return *result_json ? TROVE_OK : fail(err, TROVE_EINTERNAL, "out of memory");
}
