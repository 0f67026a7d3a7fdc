/*
 * loop.c - owns every socket of the agent. Plugin calls that are short run
 * here, between heartbeats, so a plugin that hangs stops the heartbeats and
 * the control plane sees it; long ones go to worker.c. A task's outcome is
 * kept until the control plane acknowledges it and sent again until then.
 */
#include "loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "dispatch.h"
#include "host.h"
#include "keys.h"
#include "log.h"
#include "status.h"
#include "wire.h"
#include "worker.h"

#define CACHE_SIZE 1024
#define CACHE_TTL_S 3600
#define REBUILD_MIN_MS 2000
#define REBUILD_MAX_MS 32000
#define UNACKED_MAX 64          /* task outcomes kept until acknowledged */
#define RESEND_MIN_MS 1000      /* an unacknowledged outcome is sent again after 3 heartbeats, at least this */

struct cached {
    char id[65];
    char *reply;
    size_t reply_len;
    char *done;          /* the task.done event of a long op, once it finished */
    size_t done_len;
    time_t at;
};

/* A task.done the control plane has not acknowledged yet. */
struct unacked {
    char id[65];
    char op[65];
    char *frame;
    size_t len;
    uint64_t sent_at;
};

struct loop {
    struct agent *a;
    void *ctx, *dealer, *pair, *monitor;
    struct worker worker;
    struct cached cache[CACHE_SIZE];
    size_t cache_next;
    uint64_t seq;
    unsigned link_generation;   /* names each link's monitor endpoint */
    uint64_t rebuild_at;        /* when to replace a link that has not come back (0: never) */
    uint32_t rebuild_backoff_ms;
    int64_t epoch;              /* this run's start (Unix ms): orders heartbeats across restarts */
    struct unacked unacked[UNACKED_MAX];
    size_t n_unacked;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* This run's epoch: the wall clock, but never at or below the last run's
 * (kept in <state_dir>/epoch), so a clock set back cannot make this run's
 * heartbeats look older than the last run's. */
static int64_t start_epoch(const char *state_dir)
{
    char path[4096], tmp[4200];
    int64_t epoch = wall_ms(), last = 0;
    snprintf(path, sizeof(path), "%s/epoch", state_dir);
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%" SCNd64, &last) != 1)
            last = 0;
        fclose(f);
    }
    if (last >= epoch)
        epoch = last + 1;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    bool ok = f && fprintf(f, "%" PRId64 "\n", epoch) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0)
        log_warn("cannot keep this run's epoch in %s: %s", path, strerror(errno));
    return epoch;
}

/* ------------------------------------------------------------ cache */

static struct cached *cache_find(struct loop *l, const char *id)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (l->cache[i].reply && !strcmp(l->cache[i].id, id) && now - l->cache[i].at < CACHE_TTL_S)
            return &l->cache[i];
    return NULL;
}

static void cache_put(struct loop *l, const char *id, const char *buf, size_t len)
{
    struct cached *c = &l->cache[l->cache_next];
    l->cache_next = (l->cache_next + 1) % CACHE_SIZE;
    free(c->reply);
    free(c->done);
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    if ((c->reply = malloc(len ? len : 1))) {
        memcpy(c->reply, buf, len);
        c->reply_len = len;
        c->at = time(NULL);
    }
}

static void cache_free(struct loop *l)
{
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        free(l->cache[i].reply);
        free(l->cache[i].done);
    }
}

/* ------------------------------------------------------------ sending */

static void send_raw(struct loop *l, const void *buf, size_t len)
{
    if (!l->dealer)
        return;   /* between links: the control plane retries with the same id */
    if (zmq_send(l->dealer, buf, len, ZMQ_DONTWAIT) < 0 && zmq_errno() != EAGAIN)
        log_warn("send to control plane failed: %s", zmq_strerror(zmq_errno()));
}

/* Encode and send; cache it under id when id is given. Frees msg. */
static void send_msg(struct loop *l, struct tv *msg, const char *cache_id)
{
    char *buf = NULL;
    size_t len = 0;
    if (!msg || wire_encode(msg, &buf, &len) != 0) {
        log_error("cannot encode a message: out of memory");
    } else {
        send_raw(l, buf, len);
        if (cache_id && cache_id[0])
            cache_put(l, cache_id, buf, len);
    }
    free(buf);
    tv_free(msg);
}

static void send_error(struct loop *l, const char *id, int status, const char *message)
{
    log_info("request %s refused: %s: %s", id[0] ? id : "(no id)", status_name(status), message);
    send_msg(l, wire_reply_error(id, status, message), NULL);
}

/* ------------------------------------------------------------ task outcomes */

/* [{id, op, state}]: the running task and the outcomes awaiting an ack. */
static struct tv *task_report(struct loop *l)
{
    struct tv *arr = tv_array();
    for (size_t i = 0; arr && i <= l->n_unacked; i++) {
        bool running = i == l->n_unacked;
        if (running && !l->worker.running)
            break;
        struct tv *t = tv_map();
        if (!t || tv_append(arr, t) != 0)
            break;
        tv_set_str(t, "id", running ? l->worker.id : l->unacked[i].id);
        tv_set_str(t, "op", running ? l->worker.op : l->unacked[i].op);
        tv_set_str(t, "state", running ? "running" : "finished");
    }
    return arr;
}

/* Send every unacknowledged outcome again (all, or those sent long enough ago). */
static void resend_unacked(struct loop *l, bool all)
{
    uint64_t now = now_ms(), wait = 3 * (uint64_t)l->a->heartbeat_ms;
    if (wait < RESEND_MIN_MS)
        wait = RESEND_MIN_MS;
    for (size_t i = 0; i < l->n_unacked; i++) {
        struct unacked *u = &l->unacked[i];
        if (!all && now - u->sent_at < wait)
            continue;
        log_debug("task %s: sending its outcome again (not acknowledged yet)", u->id);
        send_raw(l, u->frame, u->len);
        u->sent_at = now;
    }
}

/* Keep a task.done until acknowledged; the oldest goes when the list is full. */
static void keep_unacked(struct loop *l, const char *id, const char *op, const void *frame, size_t len)
{
    if (l->n_unacked == UNACKED_MAX) {
        log_warn("task %s: dropping its unacknowledged outcome to keep the newest %d", l->unacked[0].id,
                 UNACKED_MAX);
        free(l->unacked[0].frame);
        memmove(&l->unacked[0], &l->unacked[1], (UNACKED_MAX - 1) * sizeof(l->unacked[0]));
        l->n_unacked--;
    }
    struct unacked *u = &l->unacked[l->n_unacked];
    if (!(u->frame = malloc(len ? len : 1))) {
        log_error("task %s: out of memory keeping its outcome", id);
        return;
    }
    memcpy(u->frame, frame, len);
    u->len = len;
    snprintf(u->id, sizeof(u->id), "%s", id);
    snprintf(u->op, sizeof(u->op), "%s", op);
    u->sent_at = now_ms();
    l->n_unacked++;
}

static void handle_ack(struct loop *l, const char *id)
{
    for (size_t i = 0; id && i < l->n_unacked; i++) {
        if (strcmp(l->unacked[i].id, id) != 0)
            continue;
        free(l->unacked[i].frame);
        memmove(&l->unacked[i], &l->unacked[i + 1], (l->n_unacked - i - 1) * sizeof(l->unacked[0]));
        l->n_unacked--;
        log_debug("task %s: outcome acknowledged", id);
        return;
    }
}

static void unacked_free(struct loop *l)
{
    for (size_t i = 0; i < l->n_unacked; i++)
        free(l->unacked[i].frame);
    l->n_unacked = 0;
}

static void send_hello(struct loop *l)
{
    struct agent *a = l->a;
    struct tv *m = tv_map(), *plugin = tv_map(), *abi = tv_map();
    if (!m || !plugin || !abi) {
        tv_free(m), tv_free(plugin), tv_free(abi);
        return;
    }
    tv_set_int(m, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(m, "type", "hello");
    tv_set_str(m, "instance", a->instance_id);
    tv_set_str(m, "agent_version", AGENT_VERSION);
    tv_set_str(plugin, "name", a->plugin.vt->name);
    tv_set_str(plugin, "version", a->plugin.vt->version);
    tv_set(m, "plugin", plugin);
    tv_set_int(abi, "major", a->plugin.vt->abi_major);
    tv_set_int(abi, "minor", a->plugin.vt->abi_minor);
    tv_set(m, "abi", abi);
    tv_set(m, "capabilities", dispatch_capabilities(a));
    tv_set(m, "features", dispatch_features(a));
    tv_set_int(m, "heartbeat_ms", a->heartbeat_ms);
    tv_set_int(m, "epoch", l->epoch);
    tv_set(m, "tasks", task_report(l));
    send_msg(l, m, NULL);
    log_info("connected to %s; hello sent", a->control_endpoint);
    /* What the control plane may have missed while the link was down. */
    resend_unacked(l, true);
}

static void send_heartbeat(struct loop *l)
{
    struct trove_call call;
    struct tv *hb;
    if (call_init(&call, &l->a->stopping, NULL, NULL) != 0)
        return;
    int rc = dispatch_run(l->a, "status", NULL, &call);
    hb = call_take_result(&call);
    if (rc != TROVE_OK || !hb) {
        tv_free(hb);
        hb = tv_map();
        tv_set_str(hb, "state", "unknown");
        tv_set_str(hb, "role", "unknown");
        tv_set_int(hb, "term", 0);
        tv_set_str(hb, "position", "");
        tv_set_str(hb, "message", call_message(&call, rc));
    }
    call_release(&call);
    if (!hb)
        return;
    tv_set_int(hb, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(hb, "type", "heartbeat");
    tv_set_int(hb, "seq", (int64_t)++l->seq);
    tv_set_int(hb, "epoch", l->epoch);
    tv_set(hb, "task", l->worker.running ? tv_str(l->worker.id) : tv_nil());
    send_msg(l, hb, NULL);
}

/* ------------------------------------------------------------ requests */

static void run_short(struct loop *l, const char *id, const char *op, const struct tv *args)
{
    struct trove_call call;
    if (call_init(&call, &l->a->stopping, NULL, NULL) != 0) {
        send_error(l, id, TROVE_EINTERNAL, "out of memory");
        return;
    }
    log_debug("request %s: %s", id, op);
    int rc = dispatch_run(l->a, op, args, &call);
    struct tv *reply = rc == TROVE_OK ? wire_reply_ok(id, call_take_result(&call))
                                      : wire_reply_error(id, rc, call_message(&call, rc));
    if (rc != TROVE_OK)
        log_info("request %s (%s) failed: %s: %s", id, op, status_name(rc), call_message(&call, rc));
    call_release(&call);
    send_msg(l, reply, id);
}

static void run_long(struct loop *l, const char *id, const char *op, struct tv *args_owned)
{
    if (l->worker.running) {
        char msg[200];
        snprintf(msg, sizeof(msg), "task %s (%s) is still running; one long operation runs at a time",
                 l->worker.id, l->worker.op);
        tv_free(args_owned);
        send_error(l, id, TROVE_ECONFLICT, msg);
        return;
    }
    if (worker_start(&l->worker, id, op, args_owned) != 0) {
        send_error(l, id, TROVE_EINTERNAL, "cannot start a worker thread");
        return;
    }
    log_info("task %s (%s) started", id, op);
    struct tv *result = tv_map();
    tv_set_str(result, "task", id);
    tv_set_str(result, "state", "running");
    send_msg(l, wire_reply_ok(id, result), id);
}

static void handle_request(struct loop *l, struct tv *msg)
{
    const char *id = tv_get_str(msg, "id");
    const char *op = tv_get_str(msg, "op");
    struct cached *c = cache_find(l, id);
    if (c) {
        log_debug("request %s repeated; answering from cache", id);
        send_raw(l, c->reply, c->reply_len);
        if (c->done)
            send_raw(l, c->done, c->done_len);
        return;
    }
    const struct ops_def *def = dispatch_find(op);
    if (!def || !dispatch_available(l->a, def) || !dispatch_is_long(def)) {
        run_short(l, id, op, tv_get(msg, "args"));
        return;
    }
    /* Detach args from the message: the worker owns them. */
    struct tv *args = tv_get(msg, "args");
    run_long(l, id, op, args ? tv_copy(args) : NULL);
}

static void handle_frame(struct loop *l, zmq_msg_t *frame)
{
    char err[256];
    struct tv *msg = NULL;
    if (zmq_msg_more(frame)) {
        /* drain the rest of a multi-frame message */
        zmq_msg_t rest;
        zmq_msg_init(&rest);
        while (zmq_msg_more(frame) && zmq_msg_recv(&rest, l->dealer, 0) >= 0 && zmq_msg_more(&rest))
            ;
        zmq_msg_close(&rest);
        send_error(l, "", TROVE_EINVAL, "a message must be exactly one frame");
        return;
    }
    if (wire_decode(zmq_msg_data(frame), zmq_msg_size(frame), &wire_default_limits, &msg, err, sizeof(err)) != 0) {
        send_error(l, "", TROVE_EINVAL, err);
        return;
    }
    if (wire_check_envelope(msg, err, sizeof(err)) != 0) {
        const char *id = tv_get_str(msg, "id");
        send_error(l, id && strlen(id) <= 64 ? id : "", TROVE_EINVAL, err);
    } else if (strcmp(tv_get_str(msg, "type"), "ack") == 0) {
        handle_ack(l, tv_get_str(msg, "id"));
    } else if (strcmp(tv_get_str(msg, "type"), "request") != 0) {
        log_debug("ignoring a %s message", tv_get_str(msg, "type"));
    } else {
        handle_request(l, msg);
    }
    tv_free(msg);
}

/* An event from the worker: forward it. A task.done also names its op, is
 * kept until the control plane acknowledges it, and is remembered for a
 * repeated request id. */
static void handle_worker_event(struct loop *l)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, l->pair, 0) < 0) {
        zmq_msg_close(&m);
        return;
    }
    struct tv *ev = NULL;
    char err[128], *buf = NULL;
    size_t len = 0;
    const char *name = NULL;
    if (wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &wire_default_limits, &ev, err, sizeof(err)) == 0)
        name = tv_get_str(ev, "event");
    if (!name || strcmp(name, "task.done") != 0 || tv_set_str(ev, "op", l->worker.op) != 0 ||
        wire_encode(ev, &buf, &len) != 0) {
        send_raw(l, zmq_msg_data(&m), zmq_msg_size(&m));
    } else {
        send_raw(l, buf, len);
        keep_unacked(l, l->worker.id, l->worker.op, buf, len);
        struct cached *c = cache_find(l, l->worker.id);
        if (c && (c->done = malloc(len))) {
            memcpy(c->done, buf, len);
            c->done_len = len;
        }
    }
    if (name && !strcmp(name, "task.done"))
        worker_join(&l->worker);
    free(buf);
    tv_free(ev);
    zmq_msg_close(&m);
}

static void handle_monitor(struct loop *l)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, l->monitor, 0) < 0) {
        zmq_msg_close(&m);
        return;
    }
    uint16_t event = 0;
    bool more = zmq_msg_more(&m);
    if (zmq_msg_size(&m) >= 6)
        memcpy(&event, zmq_msg_data(&m), sizeof(event));
    while (more) {  /* second frame: the endpoint */
        zmq_msg_recv(&m, l->monitor, 0);
        more = zmq_msg_more(&m);
    }
    zmq_msg_close(&m);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        l->rebuild_at = 0;
        l->rebuild_backoff_ms = REBUILD_MIN_MS;
        send_hello(l);
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        /* libzmq reconnects after a network error but gives up for good after a
         * protocol error (an oversized frame, say): if the link is not back by
         * rebuild_at, the loop replaces the socket. */
        log_warn("disconnected from %s; reconnecting", l->a->control_endpoint);
        if (!l->rebuild_at)
            l->rebuild_at = now_ms() + l->rebuild_backoff_ms;
    } else if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                      ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        log_error("handshake with %s failed: the control plane refused this agent's key, or its server key "
                  "does not match the pinned one", l->a->control_endpoint);
}

/* ------------------------------------------------------------ setup */

static int set_opt_int(void *s, int opt, int value)
{
    return zmq_setsockopt(s, opt, &value, sizeof(value));
}

int loop_read_keys(const struct agent *a, char *server, struct keys_pair *me, char *err, size_t errlen)
{
    const char *server_file = conf_get(a->conf, "curve", "server_public_key_file");
    const char *server_inline = conf_get(a->conf, "curve", "server_public_key");
    const char *key_file = conf_get(a->conf, "curve", "agent_key_file");
    if (!key_file || (!server_file && !server_inline)) {
        snprintf(err, errlen, "CURVE is required: set [curve] agent_key_file and server_public_key_file "
                 "(or plaintext_dev = true on a loopback endpoint for development)");
        return -1;
    }
    if (server_file ? keys_read_pub(server_file, server, err, errlen) != 0
                    : (snprintf(server, KEYS_Z85_LEN + 1, "%s", server_inline), !keys_is_z85(server))) {
        if (!server_file)
            snprintf(err, errlen, "[curve] server_public_key is not a 40-character Z85 key");
        return -1;
    }
    return keys_read_key(key_file, me, err, errlen);
}

int loop_check_security(const struct agent *a, char *err, size_t errlen)
{
    if (a->plaintext_dev) {
        if (keys_endpoint_is_local(a->control_endpoint))
            return 0;
        snprintf(err, errlen, "plaintext_dev is only allowed with a loopback or ipc endpoint, not %s",
                 a->control_endpoint);
        return -1;
    }
    char server[KEYS_Z85_LEN + 1];
    struct keys_pair me;
    int rc = loop_read_keys(a, server, &me, err, errlen);
    keys_wipe(&me);
    return rc;
}

static int setup_security(struct loop *l, char *err, size_t errlen)
{
    struct agent *a = l->a;
    if (loop_check_security(a, err, errlen) != 0)
        return -1;
    if (a->plaintext_dev) {
        log_warn("PLAIN TEXT MODE: the link to %s is neither encrypted nor authenticated; for development only",
                 a->control_endpoint);
        return 0;
    }
    char server[KEYS_Z85_LEN + 1];
    struct keys_pair me;
    if (loop_read_keys(a, server, &me, err, errlen) != 0) {
        keys_wipe(&me);
        return -1;
    }
    int rc = zmq_setsockopt(l->dealer, ZMQ_CURVE_SERVERKEY, server, KEYS_Z85_LEN + 1) |
             zmq_setsockopt(l->dealer, ZMQ_CURVE_PUBLICKEY, me.public_z85, KEYS_Z85_LEN + 1) |
             zmq_setsockopt(l->dealer, ZMQ_CURVE_SECRETKEY, me.secret_z85, KEYS_Z85_LEN + 1);
    keys_wipe(&me);
    if (rc != 0) {
        snprintf(err, errlen, "cannot set CURVE keys: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* The DEALER to the control plane and its monitor: replaced as a pair. */
static int open_link(struct loop *l, char *err, size_t errlen)
{
    struct agent *a = l->a;
    char monitor[64];
    snprintf(monitor, sizeof(monitor), "inproc://trove-agent-monitor-%u", ++l->link_generation);
    if (!(l->dealer = zmq_socket(l->ctx, ZMQ_DEALER))) {
        snprintf(err, errlen, "cannot create a socket: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    int64_t maxmsg = WIRE_MAX_FRAME;
    zmq_setsockopt(l->dealer, ZMQ_ROUTING_ID, a->instance_id, strlen(a->instance_id));
    zmq_setsockopt(l->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    set_opt_int(l->dealer, ZMQ_LINGER, 1000);
    set_opt_int(l->dealer, ZMQ_IMMEDIATE, 1);
    set_opt_int(l->dealer, ZMQ_RECONNECT_IVL, 1000);
    set_opt_int(l->dealer, ZMQ_RECONNECT_IVL_MAX, 32000);
    set_opt_int(l->dealer, ZMQ_HEARTBEAT_IVL, 5000);
    set_opt_int(l->dealer, ZMQ_HEARTBEAT_TIMEOUT, 15000);
    set_opt_int(l->dealer, ZMQ_HEARTBEAT_TTL, 15000);
    set_opt_int(l->dealer, ZMQ_SNDHWM, 1000);
    if (setup_security(l, err, errlen) != 0)
        return -1;
    if (zmq_socket_monitor(l->dealer, monitor,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0 ||
        !(l->monitor = zmq_socket(l->ctx, ZMQ_PAIR)) || zmq_connect(l->monitor, monitor) != 0) {
        snprintf(err, errlen, "cannot monitor the control link: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (zmq_connect(l->dealer, a->control_endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", a->control_endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static void close_link(struct loop *l)
{
    if (l->monitor)
        zmq_close(l->monitor);
    if (l->dealer) {
        zmq_socket_monitor(l->dealer, NULL, 0);
        zmq_close(l->dealer);
    }
    l->monitor = l->dealer = NULL;
}

static void rebuild_link(struct loop *l)
{
    char err[512];
    log_warn("the link to %s did not come back; replacing the socket", l->a->control_endpoint);
    close_link(l);
    l->rebuild_backoff_ms = l->rebuild_backoff_ms * 2 > REBUILD_MAX_MS ? REBUILD_MAX_MS : l->rebuild_backoff_ms * 2;
    l->rebuild_at = now_ms() + l->rebuild_backoff_ms;
    if (open_link(l, err, sizeof(err)) != 0) {
        log_error("%s", err);
        close_link(l);
    }
}

static int setup_sockets(struct loop *l, char *err, size_t errlen)
{
    l->ctx = zmq_ctx_new();
    l->pair = l->ctx ? zmq_socket(l->ctx, ZMQ_PAIR) : NULL;
    if (!l->pair || zmq_bind(l->pair, WORKER_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot create sockets: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    l->rebuild_backoff_ms = REBUILD_MIN_MS;
    l->worker.agent = l->a;
    l->worker.zctx = l->ctx;
    return open_link(l, err, errlen);
}

static void teardown(struct loop *l)
{
    if (l->worker.running) {
        /* stopping is set: the plugin call sees cancellation; wait for its task.done */
        zmq_pollitem_t item = {l->pair, 0, ZMQ_POLLIN, 0};
        while (l->worker.running && zmq_poll(&item, 1, 500) >= 0)
            if (item.revents & ZMQ_POLLIN)
                handle_worker_event(l);
    }
    if (l->dealer) {
        struct tv *bye = tv_map();
        tv_set_int(bye, "v", WIRE_PROTOCOL_VERSION);
        tv_set_str(bye, "type", "bye");
        send_msg(l, bye, NULL);
    }
    close_link(l);
    if (l->pair)
        zmq_close(l->pair);
    if (l->ctx)
        zmq_ctx_term(l->ctx);
    cache_free(l);
    unacked_free(l);
}

int loop_run(struct agent *a)
{
    struct loop *l = calloc(1, sizeof(*l));
    char err[512];
    int rc = 0;
    if (!l) {
        log_error("out of memory");
        return -1;
    }
    l->a = a;
    l->epoch = start_epoch(a->state_dir);
    if (setup_sockets(l, err, sizeof(err)) != 0) {
        log_error("%s", err);
        rc = -1;
        goto out;
    }
    log_info("instance %s serving with plugin %s %s; control plane %s", a->instance_id, a->plugin.vt->name,
             a->plugin.vt->version, a->control_endpoint);
    uint64_t next_hb = now_ms();
    while (!atomic_load(&a->stopping)) {
        uint64_t now = now_ms();
        if (now >= next_hb) {
            send_heartbeat(l);
            next_hb = now + a->heartbeat_ms;
            now = now_ms();
        }
        if (l->rebuild_at && now >= l->rebuild_at)
            rebuild_link(l);
        if (l->n_unacked)
            resend_unacked(l, false);
        long wait = (long)(next_hb > now ? next_hb - now : 0);
        zmq_pollitem_t items[3] = {{l->pair, 0, ZMQ_POLLIN, 0}, {l->dealer, 0, ZMQ_POLLIN, 0},
                                   {l->monitor, 0, ZMQ_POLLIN, 0}};
        int n_items = l->dealer ? 3 : 1;
        if (zmq_poll(items, n_items, wait < 200 ? wait : 200) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            log_error("poll: %s", zmq_strerror(zmq_errno()));
            rc = -1;
            break;
        }
        if (n_items == 3 && (items[2].revents & ZMQ_POLLIN))
            handle_monitor(l);
        if (items[0].revents & ZMQ_POLLIN)
            handle_worker_event(l);
        if (n_items == 3 && (items[1].revents & ZMQ_POLLIN)) {
            zmq_msg_t frame;
            zmq_msg_init(&frame);
            if (zmq_msg_recv(&frame, l->dealer, ZMQ_DONTWAIT) >= 0)
                handle_frame(l, &frame);
            zmq_msg_close(&frame);
        }
    }
    log_info("stopping");
out:
    teardown(l);
    free(l);
    return rc;
}
