/*
 * daemon.c - trove-control's sockets and loop: the ZAP handler, the agent
 * ROUTER (CURVE server, per-message User-Id check), the client ROUTER, and
 * timers, all polled from one thread. Every inbound frame is checked before
 * it reaches the conductor or the broker; a bad one never stops the loop.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"
#include "wire.h"

#define HEARTBEAT_IVL_MS 5000
#define HEARTBEAT_TIMEOUT_MS 15000
#define HEARTBEAT_TTL_MS 15000
#define SEND_HWM 1000
#define BATCH 256                 /* messages taken from one socket per loop turn */
#define HOUSEKEEPING_MS 60000
#define WARN_WINDOW_MS 10000
#define WARN_PER_WINDOW 20
#define REQUEST_TIMEOUT_MAX_MS 86400000L

/* ------------------------------------------------------------ sending */

int send_frame(void *socket, const void *rid, size_t rid_len, const void *frame, size_t len)
{
    if (zmq_send(socket, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(socket, frame, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

int send_message(void *socket, const void *rid, size_t rid_len, const struct tv *msg)
{
    char *buf = NULL;
    size_t len = 0;
    if (wire_encode(msg, &buf, &len) != 0)
        return -1;
    int rc = send_frame(socket, rid, rid_len, buf, len);
    free(buf);
    return rc;
}

void reply_error(struct control *c, const void *rid, size_t rid_len, const char *id, int status,
                 const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct tv *reply = wire_reply_error(id, status, message);
    if (!reply || send_message(c->clients, rid, rid_len, reply) != 0)
        log_debug("could not send an error reply to a client (%s)", message);
    tv_free(reply);
}

void warn_agent_traffic(struct control *c, const char *fmt, ...)
{
    if (!log_limit_allow(&c->agent_warnings))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(TROVE_LOG_WARN, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ receiving */

/* One message from a ROUTER: the routing id and the frames after it. Only
 * the first body frame is kept; the rest are counted and discarded. */
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

/* Decode a frame and check its envelope; replies and events need an id of
 * 1..64 bytes too. Returns the message or NULL with a reason in err. */
static struct tv *decode_message(zmq_msg_t *frame, char *err, size_t errlen)
{
    struct tv *msg = NULL;
    if (wire_decode(zmq_msg_data(frame), zmq_msg_size(frame), &wire_default_limits, &msg, err, errlen) != 0)
        return NULL;
    if (wire_check_envelope(msg, err, errlen) != 0) {
        tv_free(msg);
        return NULL;
    }
    return msg;
}

/* The id of a message when it is a usable one (1..64 bytes, no NUL). */
static const char *usable_id(const struct tv *msg)
{
    const struct tv *id = tv_get(msg, "id");
    if (!id || id->type != TV_STR || id->u.s.len == 0 || id->u.s.len > 64 || strlen(id->u.s.ptr) != id->u.s.len)
        return NULL;
    return id->u.s.ptr;
}

/* ------------------------------------------------------------ agents */

/* The instance an agent message speaks for, after the User-Id check. */
static bool agent_identity(struct control *c, struct inbound *in, char *instance)
{
    size_t len = zmq_msg_size(&in->rid);
    const char *rid = zmq_msg_data(&in->rid);
    if (!instance_id_is_valid(rid, len)) {
        warn_agent_traffic(c, "dropped a message from an agent with an invalid routing id");
        return false;
    }
    memcpy(instance, rid, len);
    instance[len] = '\0';
    if (!c->curve)
        return true;
    /* ZAP ran once, at the handshake; this check binds every message to the
     * key that was admitted, so a valid key cannot speak for another id. */
    const char *user = zmq_msg_gets(&in->body, "User-Id");
    if (user && strcmp(user, instance) == 0)
        return true;
    warn_agent_traffic(c, "dropped a message under routing id %s from a peer authenticated as %s", instance,
                       user ? user : "(nobody)");
    /* A peer speaking under a routing id its key does not own: stop routing to
     * that id until the real agent reconnects and speaks. */
    struct agent *a = agents_get(c->agent_table, instance);
    if (a)
        a->gone = true;
    return false;
}

static void agent_message(struct control *c, struct inbound *in)
{
    char instance[INSTANCE_ID_MAX + 1], err[200];
    if (in->body_frames == 0)
        return;
    if (!agent_identity(c, in, instance))
        return;
    if (in->body_frames != 1) {
        warn_agent_traffic(c, "dropped a %d-frame message from %s (one frame expected)", in->body_frames,
                           instance);
        return;
    }
    struct tv *msg = decode_message(&in->body, err, sizeof err);
    if (!msg) {
        warn_agent_traffic(c, "dropped a message from %s: %s", instance, err);
        return;
    }
    const char *type = tv_get_str(msg, "type");
    bool needs_id = strcmp(type, "reply") == 0 || strcmp(type, "event") == 0;
    if (needs_id && !usable_id(msg)) {
        warn_agent_traffic(c, "dropped a %s from %s without a usable id", type, instance);
    } else if (strcmp(type, "hello") == 0) {
        conductor_hello(c, instance, msg);
    } else if (strcmp(type, "heartbeat") == 0) {
        conductor_heartbeat(c, instance, msg);
    } else if (strcmp(type, "bye") == 0) {
        conductor_bye(c, instance);
    } else if (strcmp(type, "reply") == 0) {
        broker_agent_reply(c, instance, msg, zmq_msg_data(&in->body), zmq_msg_size(&in->body));
    } else if (strcmp(type, "event") == 0) {
        broker_agent_event(c, instance, msg, zmq_msg_data(&in->body), zmq_msg_size(&in->body));
        msg = NULL;   /* the broker keeps finished tasks */
    } else {
        warn_agent_traffic(c, "dropped a message of type '%.32s' from %s", type, instance);
    }
    tv_free(msg);
}

/* ------------------------------------------------------------ clients */

static void client_message(struct control *c, struct inbound *in)
{
    const void *rid = zmq_msg_data(&in->rid);
    size_t rid_len = zmq_msg_size(&in->rid);
    char err[200];

    if (in->body_frames != 1) {
        reply_error(c, rid, rid_len, "", TROVE_EINVAL, "a message must be exactly one frame, got %d",
                    in->body_frames);
        return;
    }
    struct tv *msg = NULL;
    if (wire_decode(zmq_msg_data(&in->body), zmq_msg_size(&in->body), &wire_default_limits, &msg, err,
                    sizeof err) != 0) {
        reply_error(c, rid, rid_len, "", TROVE_EINVAL, "undecodable frame: %s", err);
        return;
    }
    const char *id = usable_id(msg);
    const char *type = tv_get_str(msg, "type");
    const char *op = tv_get_str(msg, "op");
    const struct tv *instance = tv_get(msg, "instance");
    const struct tv *timeout = tv_get(msg, "timeout_ms");

    if (wire_check_envelope(msg, err, sizeof err) != 0) {
        reply_error(c, rid, rid_len, id ? id : "", TROVE_EINVAL, "%s", err);
    } else if (!id) {
        reply_error(c, rid, rid_len, "", TROVE_EINVAL, "id must be 1-64 bytes without NUL");
    } else if (!type || strcmp(type, "request") != 0 || !op) {
        reply_error(c, rid, rid_len, id, TROVE_EINVAL, "clients send requests (type \"request\" with an op)");
    } else if (timeout && (timeout->type != TV_INT || timeout->u.i < 1 || timeout->u.i > REQUEST_TIMEOUT_MAX_MS)) {
        reply_error(c, rid, rid_len, id, TROVE_EINVAL, "timeout_ms must be an integer in 1..%ld",
                    REQUEST_TIMEOUT_MAX_MS);
    } else if (strncmp(op, "control.", 8) == 0) {
        ops_handle(c, rid, rid_len, msg);
    } else if (!instance) {
        reply_error(c, rid, rid_len, id, TROVE_EINVAL, "operation %.64s needs an instance", op);
    } else if (instance->type != TV_STR || !instance_id_is_valid(instance->u.s.ptr, instance->u.s.len)) {
        reply_error(c, rid, rid_len, id, TROVE_EINVAL, "instance must be 1-%d printable characters",
                    INSTANCE_ID_MAX);
    } else {
        broker_forward(c, rid, rid_len, instance->u.s.ptr, id, op,
                       timeout ? timeout->u.i : c->cfg->request_timeout_ms, zmq_msg_data(&in->body),
                       zmq_msg_size(&in->body));
    }
    tv_free(msg);
}

/* ------------------------------------------------------------ setup */

static void set_int(void *socket, int option, int value)
{
    zmq_setsockopt(socket, option, &value, sizeof value);
}

static void set_common_options(void *socket)
{
    int64_t max = WIRE_MAX_FRAME;
    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    set_int(socket, ZMQ_LINGER, 0);
    set_int(socket, ZMQ_SNDHWM, SEND_HWM);
    set_int(socket, ZMQ_ROUTER_MANDATORY, 1);
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state_dir %s is not a directory", dir);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "state_dir %s is open to group or others (mode %03o); it must be 0700", dir,
                 (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

/* One daemon per state directory: the client socket lives there. */
static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/trove-control.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "another trove-control is running with state_dir %s", dir);
        close(fd);
        return -1;
    }
    return fd;
}

static int open_agent_socket(struct control *c, char *err, size_t errlen)
{
    const struct control_config *cfg = c->cfg;
    struct keys_pair server;

    c->agents = zmq_socket(c->zmq_context, ZMQ_ROUTER);
    if (!c->agents) {
        snprintf(err, errlen, "cannot create the agent socket: %s", zmq_strerror(errno));
        return -1;
    }
    set_common_options(c->agents);
    /* No ROUTER_HANDOVER: with it, a peer holding any allowed key could take a
     * connected instance's routing id and receive its requests until the real
     * agent spoke again. Without it, a second connection claiming a live id is
     * refused; a dead agent's connection closes on exit or at the ZMTP
     * heartbeat timeout, and its reconnect is then admitted. */
    set_int(c->agents, ZMQ_ROUTER_HANDOVER, 0);
    set_int(c->agents, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS);
    set_int(c->agents, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS);
    set_int(c->agents, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS);
    if (c->curve) {
        if (keys_read_key(cfg->server_key_file, &server, err, errlen) != 0)
            return -1;
        /* The ZAP handler is already bound (zap_start ran first); without it
         * libzmq would admit any client that knows the server's public key. */
        set_int(c->agents, ZMQ_CURVE_SERVER, 1);
        int rc = zmq_setsockopt(c->agents, ZMQ_CURVE_SECRETKEY, server.secret_z85, KEYS_Z85_LEN);
        rc |= zmq_setsockopt(c->agents, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN));
        log_info("server public key %s", server.public_z85);
        keys_wipe(&server);
        if (rc != 0) {
            snprintf(err, errlen, "cannot enable CURVE on the agent socket: %s", zmq_strerror(errno));
            return -1;
        }
    }
    if (zmq_bind(c->agents, cfg->agent_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind agent_endpoint %s: %s", cfg->agent_endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int open_client_socket(struct control *c, char *err, size_t errlen)
{
    c->clients = zmq_socket(c->zmq_context, ZMQ_ROUTER);
    if (!c->clients) {
        snprintf(err, errlen, "cannot create the client socket: %s", zmq_strerror(errno));
        return -1;
    }
    set_common_options(c->clients);
    if (zmq_bind(c->clients, c->cfg->client_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind client_endpoint %s: %s", c->cfg->client_endpoint,
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int open_everything(struct control *c, char *err, size_t errlen)
{
    const struct control_config *cfg = c->cfg;

    c->agent_table = agents_new();
    c->pending = table_new(free);
    c->routes = table_new(free);
    c->zmq_context = zmq_ctx_new();
    if (!c->agent_table || !c->pending || !c->routes || task_cache_init(&c->done) != 0 || !c->zmq_context) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->curve) {
        if (!zmq_has("curve")) {
            snprintf(err, errlen, "this libzmq has no CURVE support");
            return -1;
        }
        if (!(c->allow = allowlist_load(cfg->allowed_agents_file, err, errlen)))
            return -1;
        if (allowlist_count(c->allow) == 0)
            log_warn("allow-list %s is empty: no agent can connect", cfg->allowed_agents_file);
        if (zap_start(&c->zap, c->zmq_context, c->allow) != 0) {
            snprintf(err, errlen, "cannot bind the ZAP handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
            return -1;
        }
    }
    if (open_agent_socket(c, err, errlen) != 0 || open_client_socket(c, err, errlen) != 0)
        return -1;
    return 0;
}

static void close_everything(struct control *c)
{
    if (c->agents)
        zmq_close(c->agents);
    if (c->clients)
        zmq_close(c->clients);
    zap_stop(&c->zap);
    if (c->zmq_context)
        zmq_ctx_term(c->zmq_context);
    allowlist_free(c->allow);
    agents_free(c->agent_table);
    table_free(c->pending);
    table_free(c->routes);
    task_cache_free(&c->done);
}

/* SIGTERM and SIGINT arrive on a descriptor the loop polls. Blocked before
 * libzmq starts its threads, so they inherit the mask. */
static int signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* ------------------------------------------------------------ loop */

static void drain(struct control *c, void *socket, void (*handle)(struct control *, struct inbound *))
{
    for (int i = 0; i < BATCH; i++) {
        struct inbound in;
        if (recv_inbound(socket, &in) != 0) {
            inbound_close(&in);
            return;
        }
        handle(c, &in);
        inbound_close(&in);
    }
}

static int loop(struct control *c, int sigfd)
{
    zmq_pollitem_t items[] = {
        {c->agents, 0, ZMQ_POLLIN, 0},
        {c->clients, 0, ZMQ_POLLIN, 0},
        {NULL, sigfd, ZMQ_POLLIN, 0},
        {c->zap.socket, 0, ZMQ_POLLIN, 0},
    };
    int n_items = c->zap.socket ? 4 : 3;

    for (;;) {
        int64_t now = monotonic_ms();
        int64_t wait = c->next_deadline_ms - now;
        if (wait > 1000)
            wait = 1000;
        if (wait < 0)
            wait = 0;
        if (zmq_poll(items, n_items, (long)wait) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll failed: %s", zmq_strerror(errno));
            return 1;
        }
        if (items[2].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                log_info("stopping on signal %u", si.ssi_signo);
                return 0;
            }
        }
        if (n_items > 3 && (items[3].revents & ZMQ_POLLIN))
            zap_handle(&c->zap);
        if (items[0].revents & ZMQ_POLLIN)
            drain(c, c->agents, agent_message);
        if (items[1].revents & ZMQ_POLLIN)
            drain(c, c->clients, client_message);
        now = monotonic_ms();
        broker_expire(c, now);
        if (now >= c->next_housekeeping_ms) {
            broker_housekeeping(c, now);
            c->next_housekeeping_ms = now + HOUSEKEEPING_MS;
        }
    }
}

int daemon_run(const struct control_config *cfg)
{
    struct control c = {
        .cfg = cfg,
        .curve = !cfg->plaintext_dev,
        .next_deadline_ms = INT64_MAX,
        .agent_warnings = {WARN_WINDOW_MS, WARN_PER_WINDOW, "warnings about agent traffic", 0, 0, 0},
    };
    char err[512] = "";
    int rc = 1, lock = -1;

    umask(077);
    int sigfd = signal_fd();
    if (sigfd < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return 1;
    }
    if (!c.curve)
        log_warn("PLAIN TEXT MODE (plaintext_dev = true): agent traffic on %s is neither encrypted nor "
                 "authenticated. For development on one machine only.",
                 cfg->agent_endpoint);
    if (make_state_dir(cfg->state_dir, err, sizeof err) != 0 ||
        (lock = lock_state_dir(cfg->state_dir, err, sizeof err)) < 0 ||
        open_everything(&c, err, sizeof err) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("listening for agents on %s (%s), clients on %s", cfg->agent_endpoint,
             c.curve ? "CURVE" : "PLAIN TEXT", cfg->client_endpoint);
    rc = loop(&c, sigfd);
    broker_cancel_all(&c);
out:
    close_everything(&c);
    if (lock >= 0)
        close(lock);
    close(sigfd);
    return rc;
}
