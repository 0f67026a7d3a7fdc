/*
 * rpc.c - the agent ROUTER and its gatekeepers: the ZAP handler (bound
 * before the ROUTER, or libzmq would admit any client knowing the server
 * key), the keys admitted from the allow-list file and at run time, and the
 * User-Id of every message checked against the routing id it claims. Every
 * inbound frame is checked before it reaches the callback; a bad one never
 * stops the loop.
 */
#include "rpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "allowlist.h"
#include "log.h"
#include "loop.h"
#include "table.h"
#include "timing.h"
#include "wire.h"
#include "zap.h"

#define KEEPALIVE_IDLE_S 10         /* TCP keepalive: a dead host's link closes within about 25 s */
#define KEEPALIVE_INTVL_S 5
#define KEEPALIVE_CNT 3
#define TCP_MAXRT_MS 30000           /* and within 30 s when a request to it goes unacknowledged */
#define LISTEN_BACKLOG 4096          /* every agent reconnects at once after a restart */
#define SEND_HWM 1000
#define BATCH 256                 /* messages taken from the socket per loop turn */
#define WARN_WINDOW_MS 10000
#define WARN_PER_WINDOW 20

struct rpc {
    struct rpc_config cfg;
    void *socket;                 /* ROUTER */
    struct zap zap;
    struct allowlist *allow;      /* from the file; NULL without one */
    struct table *admitted;       /* Z85 key -> char *instance, admitted at run time */
    struct table *revoked;        /* instance -> (nothing): drop its messages until it handshakes again */
    struct log_limit warnings;    /* about dropped agent traffic */
};

static void warn_traffic(struct rpc *r, const char *fmt, ...) TROVE_PRINTF(2, 3);

static void warn_traffic(struct rpc *r, const char *fmt, ...)
{
    if (!log_limit_allow(&r->warnings))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(TROVE_LOG_WARN, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ keys */

static const char *lookup_key(void *ctx, const char *public_z85)
{
    struct rpc *r = ctx;
    const char *instance = table_get(r->admitted, public_z85, strlen(public_z85));
    if (!instance && r->allow)
        instance = allowlist_instance_for_key(r->allow, public_z85);
    if (instance)
        table_remove(r->revoked, instance, strlen(instance));
    return instance;
}

int rpc_admit(struct rpc *r, const char *instance, const char *public_z85, char *err, size_t errlen)
{
    if (!instance || !instance_id_is_valid(instance, strlen(instance))) {
        snprintf(err, errlen, "invalid instance id (1-%d printable characters, no spaces)", INSTANCE_ID_MAX);
        return -1;
    }
    if (!public_z85 || !keys_is_z85(public_z85)) {
        snprintf(err, errlen, "invalid public key (expected 40 Z85 characters)");
        return -1;
    }
    const char *owner = table_get(r->admitted, public_z85, KEYS_Z85_LEN);
    if (!owner && r->allow)
        owner = allowlist_instance_for_key(r->allow, public_z85);
    if (owner && strcmp(owner, instance) == 0)
        return 0;
    if (owner) {
        snprintf(err, errlen, "that key already speaks for instance %s", owner);
        return -1;
    }
    char *copy = strdup(instance);
    if (!copy || table_put(r->admitted, public_z85, KEYS_Z85_LEN, copy) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    log_info("admitted a key for instance %s", instance);
    return 0;
}

struct revoke_walk {
    const char *instance;
    int removed;
};

static bool key_of_instance(const void *key, size_t key_len, void *value, void *user)
{
    (void)key, (void)key_len;
    struct revoke_walk *w = user;
    bool match = strcmp(value, w->instance) == 0;
    w->removed += match;
    return match;
}

static char revoked_mark[] = "revoked";

void rpc_revoke(struct rpc *r, const char *instance)
{
    struct revoke_walk w = {instance, 0};
    table_sweep(r->admitted, key_of_instance, &w);
    if (table_put(r->revoked, instance, strlen(instance), revoked_mark) != 0)
        log_error("out of memory revoking instance %s", instance);
    log_info("revoked %d key(s) of instance %s", w.removed, instance);
}

/* ------------------------------------------------------------ sending */

int rpc_send(struct rpc *r, const char *instance, const struct tv *msg)
{
    char *buf = NULL;
    size_t len = 0;
    if (wire_encode(msg, &buf, &len) != 0) {
        errno = ENOMEM;
        return -1;
    }
    int rc = -1;
    if (zmq_send(r->socket, instance, strlen(instance), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
        zmq_send(r->socket, buf, len, ZMQ_DONTWAIT) >= 0)
        rc = 0;
    int saved = errno;
    free(buf);
    if (rc != 0 && saved == EHOSTUNREACH && r->cfg.on_lost)
        r->cfg.on_lost(r->cfg.ctx, instance);
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------ receiving */

/* One message: the routing id and the first body frame; further frames are
 * counted and dropped. */
struct inbound {
    zmq_msg_t rid, body;
    int body_frames;
};

static int recv_inbound(void *socket, struct inbound *in)
{
    zmq_msg_init(&in->rid);
    zmq_msg_init(&in->body);
    in->body_frames = 0;
    if (zmq_msg_recv(&in->rid, socket, ZMQ_DONTWAIT) < 0)
        return -1;
    bool more = zmq_msg_more(&in->rid);
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, socket, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (in->body_frames++ == 0) {
            zmq_msg_close(&in->body);
            in->body = m;
        } else {
            zmq_msg_close(&m);
        }
    }
    return 0;
}

static void inbound_close(struct inbound *in)
{
    zmq_msg_close(&in->rid);
    zmq_msg_close(&in->body);
}

/* The instance a message speaks for, after the User-Id check. */
static bool identity(struct rpc *r, struct inbound *in, char *instance)
{
    size_t len = zmq_msg_size(&in->rid);
    const char *rid = zmq_msg_data(&in->rid);
    if (!instance_id_is_valid(rid, len)) {
        warn_traffic(r, "dropped a message from an agent with an invalid routing id");
        return false;
    }
    memcpy(instance, rid, len);
    instance[len] = '\0';
    if (table_count(r->revoked) && table_get(r->revoked, instance, len)) {
        warn_traffic(r, "dropped a message from instance %s, whose key was revoked", instance);
        return false;
    }
    if (!r->cfg.curve)
        return true;
    /* ZAP ran once, at the handshake; this binds every message to the key
     * that was admitted, so a valid key cannot speak for another id. */
    const char *user = zmq_msg_gets(&in->body, "User-Id");
    if (user && strcmp(user, instance) == 0)
        return true;
    warn_traffic(r, "dropped a message under routing id %s from a peer authenticated as %s", instance,
                 user ? user : "(nobody)");
    /* Stop routing to that id until the real agent speaks again. */
    if (r->cfg.on_lost)
        r->cfg.on_lost(r->cfg.ctx, instance);
    return false;
}

/* The id of a message when it is usable (1..64 bytes, no NUL). */
static bool usable_id(const struct tv *msg)
{
    const struct tv *id = tv_get(msg, "id");
    return id && id->type == TV_STR && id->u.s.len > 0 && id->u.s.len <= 64 && strlen(id->u.s.ptr) == id->u.s.len;
}

static void agent_message(struct rpc *r, struct inbound *in)
{
    char instance[INSTANCE_ID_MAX + 1], err[200];
    if (in->body_frames == 0 || !identity(r, in, instance))
        return;
    if (in->body_frames != 1) {
        warn_traffic(r, "dropped a %d-frame message from %s (one frame expected)", in->body_frames, instance);
        return;
    }
    struct tv *msg = NULL;
    if (wire_decode(zmq_msg_data(&in->body), zmq_msg_size(&in->body), &wire_default_limits, &msg, err,
                    sizeof err) != 0 ||
        wire_check_envelope(msg, err, sizeof err) != 0) {
        warn_traffic(r, "dropped a message from %s: %s", instance, err);
        tv_free(msg);
        return;
    }
    const char *type = tv_get_str(msg, "type");
    if ((strcmp(type, "reply") == 0 || strcmp(type, "event") == 0) && !usable_id(msg))
        warn_traffic(r, "dropped a %s from %s without a usable id", type, instance);
    else
        r->cfg.on_message(r->cfg.ctx, instance, msg);
    tv_free(msg);
}

static void on_readable(void *ctx, short events)
{
    struct rpc *r = ctx;
    (void)events;
    for (int i = 0; i < BATCH; i++) {
        struct inbound in;
        int rc = recv_inbound(r->socket, &in);
        if (rc == 0)
            agent_message(r, &in);
        inbound_close(&in);
        if (rc != 0)
            return;
    }
}

static void on_zap(void *ctx, short events)
{
    (void)events;
    zap_handle(ctx);
}

/* ------------------------------------------------------------ setup */

static void set_int(void *socket, int option, int value)
{
    zmq_setsockopt(socket, option, &value, sizeof value);
}

static int enable_curve(struct rpc *r, char *err, size_t errlen)
{
    struct keys_pair server;
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq has no CURVE support");
        return -1;
    }
    if (r->cfg.allowed_agents_file) {
        if (!(r->allow = allowlist_load(r->cfg.allowed_agents_file, err, errlen)))
            return -1;
        if (allowlist_count(r->allow) == 0)
            log_info("allow-list %s is empty: only keys admitted at run time may connect",
                     r->cfg.allowed_agents_file);
    }
    if (keys_read_key(r->cfg.server_key_file, &server, err, errlen) != 0)
        return -1;
    if (zap_start(&r->zap, r->cfg.zmq_context, lookup_key, r) != 0) {
        snprintf(err, errlen, "cannot bind the ZAP handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        keys_wipe(&server);
        return -1;
    }
    set_int(r->socket, ZMQ_CURVE_SERVER, 1);
    int rc = zmq_setsockopt(r->socket, ZMQ_CURVE_SECRETKEY, server.secret_z85, KEYS_Z85_LEN);
    rc |= zmq_setsockopt(r->socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN));
    log_info("server public key %s", server.public_z85);
    keys_wipe(&server);
    if (rc != 0) {
        snprintf(err, errlen, "cannot enable CURVE on the agent socket: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int open_socket(struct rpc *r, char *err, size_t errlen)
{
    r->socket = zmq_socket(r->cfg.zmq_context, ZMQ_ROUTER);
    if (!r->socket) {
        snprintf(err, errlen, "cannot create the agent socket: %s", zmq_strerror(errno));
        return -1;
    }
    int64_t max = WIRE_MAX_FRAME;
    zmq_setsockopt(r->socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    set_int(r->socket, ZMQ_LINGER, 0);
    set_int(r->socket, ZMQ_SNDHWM, SEND_HWM);
    set_int(r->socket, ZMQ_ROUTER_MANDATORY, 1);
    /* No ROUTER_HANDOVER: with it, a peer holding any admitted key could take
     * a connected instance's routing id and receive its requests until the
     * real agent spoke again. Without it, a second connection claiming a
     * live id is refused; a dead agent's connection closes on exit or when
     * its link is found dead (below), and its reconnect is then admitted. */
    set_int(r->socket, ZMQ_ROUTER_HANDOVER, 0);
    /* No ZMTP heartbeats of our own: libzmq keeps them in one timer list per
     * I/O thread and cancels by walking it, which costs four times the rest of
     * the traffic with thousands of agents. Agents ping us (we answer), and
     * the TTL in their pings closes a link that goes quiet after one; TCP
     * keepalive and a retransmission bound close a link to a dead host. */
    set_int(r->socket, ZMQ_HEARTBEAT_IVL, 0);
    set_int(r->socket, ZMQ_TCP_KEEPALIVE, 1);
    set_int(r->socket, ZMQ_TCP_KEEPALIVE_IDLE, KEEPALIVE_IDLE_S);
    set_int(r->socket, ZMQ_TCP_KEEPALIVE_INTVL, KEEPALIVE_INTVL_S);
    set_int(r->socket, ZMQ_TCP_KEEPALIVE_CNT, KEEPALIVE_CNT);
    set_int(r->socket, ZMQ_TCP_MAXRT, TCP_MAXRT_MS);
    set_int(r->socket, ZMQ_BACKLOG, LISTEN_BACKLOG);
    if (r->cfg.curve && enable_curve(r, err, errlen) != 0)
        return -1;
    if (zmq_bind(r->socket, r->cfg.endpoint) != 0) {
        snprintf(err, errlen, "cannot bind agent_endpoint %s: %s", r->cfg.endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

struct rpc *rpc_open(const struct rpc_config *cfg, char *err, size_t errlen)
{
    struct rpc *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->warnings = (struct log_limit){WARN_WINDOW_MS, WARN_PER_WINDOW, "warnings about agent traffic", 0, 0, 0};
    r->admitted = table_new(free);
    r->revoked = table_new(NULL);
    if (!r->admitted || !r->revoked) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (open_socket(r, err, errlen) != 0)
        goto fail;
    if (loop_add_socket(cfg->loop, r->socket, ZMQ_POLLIN, on_readable, r) != 0 ||
        (r->zap.socket && loop_add_socket(cfg->loop, r->zap.socket, ZMQ_POLLIN, on_zap, &r->zap) != 0)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return r;
fail:
    rpc_close(r);
    return NULL;
}

void rpc_close(struct rpc *r)
{
    if (!r)
        return;
    if (r->socket) {
        loop_remove_socket(r->cfg.loop, r->socket);
        zmq_close(r->socket);
    }
    if (r->zap.socket)
        loop_remove_socket(r->cfg.loop, r->zap.socket);
    zap_stop(&r->zap);
    allowlist_free(r->allow);
    table_free(r->admitted);
    table_free(r->revoked);
    free(r);
}
