/*
 * test_rpc.c - the agent door without a restart: a CURVE agent whose key
 * nobody admitted is refused at the handshake; rpc_admit lets the same key
 * in at once and its messages arrive under its instance id; a key speaks for
 * one instance; rpc_revoke drops the messages of a connection the key still
 * holds and refuses its next handshake. Real libzmq sockets on loopback,
 * the real rpc, zap and loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#include "keys.h"
#include "loop.h"
#include "rpc.h"
#include "value.h"
#include "wire.h"

struct world {
    char dir[64];
    char endpoint[64];
    struct keys_pair server, agent;
    void *ctx;
    struct loop *loop;
    struct loop_timer *stop;
    struct rpc *rpc;
    void *dealer, *monitor;
    int messages;
    char last_instance[65];
    unsigned generation;
};

static void on_message(void *ctx, const char *instance, const struct tv *msg)
{
    struct world *w = ctx;
    (void)msg;
    w->messages++;
    snprintf(w->last_instance, sizeof w->last_instance, "%s", instance);
}

static void stop_loop(void *ctx)
{
    loop_stop(ctx);
}

/* Run the loop (ZAP answers, messages arrive) for about ms. */
static void spin(struct world *w, int ms)
{
    loop_timer_arm(w->stop, ms);
    assert_int_equal(loop_run(w->loop), 0);
}

static void connect_agent(struct world *w)
{
    char monitor[64];
    snprintf(monitor, sizeof monitor, "inproc://test-rpc-monitor-%u", ++w->generation);
    w->dealer = zmq_socket(w->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(w->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(w->dealer, ZMQ_ROUTING_ID, "inst-x", 6);
    zmq_setsockopt(w->dealer, ZMQ_CURVE_SERVERKEY, w->server.public_z85, KEYS_Z85_LEN + 1);
    zmq_setsockopt(w->dealer, ZMQ_CURVE_PUBLICKEY, w->agent.public_z85, KEYS_Z85_LEN + 1);
    zmq_setsockopt(w->dealer, ZMQ_CURVE_SECRETKEY, w->agent.secret_z85, KEYS_Z85_LEN + 1);
    assert_int_equal(zmq_socket_monitor(w->dealer, monitor,
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), 0);
    w->monitor = zmq_socket(w->ctx, ZMQ_PAIR);
    assert_int_equal(zmq_connect(w->monitor, monitor), 0);
    assert_int_equal(zmq_connect(w->dealer, w->endpoint), 0);
}

static void close_agent(struct world *w)
{
    if (w->dealer) {
        zmq_socket_monitor(w->dealer, NULL, 0);
        zmq_close(w->dealer);
    }
    if (w->monitor)
        zmq_close(w->monitor);
    w->dealer = w->monitor = NULL;
}

/* 0: handshake succeeded; the ZAP status (400) when refused; -1 nothing within the time. */
static int handshake(struct world *w, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        spin(w, 20);
        zmq_msg_t head, address;
        zmq_msg_init(&head);
        zmq_msg_init(&address);
        if (zmq_msg_recv(&head, w->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            zmq_msg_close(&address);
            continue;
        }
        zmq_msg_recv(&address, w->monitor, 0);
        uint16_t event;
        uint32_t value;
        memcpy(&event, zmq_msg_data(&head), 2);
        memcpy(&value, (char *)zmq_msg_data(&head) + 2, 4);
        zmq_msg_close(&head);
        zmq_msg_close(&address);
        return event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? 0 : (int)value;
    }
    return -1;
}

static void send_bye(struct world *w)
{
    struct tv *m = tv_map();
    tv_set_int(m, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(m, "type", "bye");
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(m, &buf, &len), 0);
    assert_true(zmq_send(w->dealer, buf, len, 0) >= 0);
    free(buf);
    tv_free(m);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    char err[256], path[128];
    snprintf(w->dir, sizeof w->dir, "/tmp/trove-test-rpc-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(path, sizeof path, "%s/server", w->dir);
    assert_int_equal(keys_generate(&w->server, err, sizeof err), 0);
    assert_int_equal(keys_write(path, &w->server, err, sizeof err), 0);
    assert_int_equal(keys_generate(&w->agent, err, sizeof err), 0);
    w->ctx = zmq_ctx_new();
    w->loop = loop_new();
    w->stop = loop_timer_new(w->loop, stop_loop, w->loop);
    snprintf(path, sizeof path, "%s/server.key", w->dir);
    /* A free loopback port from the kernel. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(w->endpoint, sizeof w->endpoint, "tcp://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    struct rpc_config cfg = {.zmq_context = w->ctx, .loop = w->loop, .endpoint = w->endpoint, .curve = true,
                             .server_key_file = path, .allowed_agents_file = NULL,
                             .on_message = on_message, .ctx = w};
    w->rpc = rpc_open(&cfg, err, sizeof err);
    if (!w->rpc)
        fail_msg("rpc_open: %s", err);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    char path[128];
    close_agent(w);
    rpc_close(w->rpc);
    loop_free(w->loop);
    zmq_ctx_term(w->ctx);
    keys_wipe(&w->server);
    keys_wipe(&w->agent);
    snprintf(path, sizeof path, "%s/server.key", w->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/server.pub", w->dir);
    unlink(path);
    int rc = rmdir(w->dir);
    free(w);
    return rc;
}

static void a_key_is_admitted_and_revoked_without_a_restart(void **state)
{
    struct world *w = *state;
    char err[256];

    connect_agent(w);
    assert_int_equal(handshake(w, 3000), 400);
    close_agent(w);

    assert_int_equal(rpc_admit(w->rpc, "inst-x", w->agent.public_z85, err, sizeof err), 0);
    assert_int_equal(rpc_admit(w->rpc, "inst-x", w->agent.public_z85, err, sizeof err), 0);   /* again: no-op */
    assert_int_equal(rpc_admit(w->rpc, "inst-y", w->agent.public_z85, err, sizeof err), -1);
    assert_non_null(strstr(err, "already speaks for instance inst-x"));
    assert_int_equal(rpc_admit(w->rpc, "bad id", w->agent.public_z85, err, sizeof err), -1);
    assert_int_equal(rpc_admit(w->rpc, "inst-z", "not a key", err, sizeof err), -1);

    connect_agent(w);
    assert_int_equal(handshake(w, 3000), 0);
    send_bye(w);
    for (int i = 0; i < 50 && w->messages == 0; i++)
        spin(w, 20);
    assert_int_equal(w->messages, 1);
    assert_string_equal(w->last_instance, "inst-x");

    /* Revoked: the live connection's messages are dropped ... */
    rpc_revoke(w->rpc, "inst-x");
    send_bye(w);
    spin(w, 300);
    assert_int_equal(w->messages, 1);
    close_agent(w);

    /* ... and its next handshake is refused. */
    connect_agent(w);
    assert_int_equal(handshake(w, 3000), 400);
    close_agent(w);

    /* Admitted again, it is back. */
    assert_int_equal(rpc_admit(w->rpc, "inst-x", w->agent.public_z85, err, sizeof err), 0);
    connect_agent(w);
    assert_int_equal(handshake(w, 3000), 0);
    send_bye(w);
    for (int i = 0; i < 50 && w->messages == 1; i++)
        spin(w, 20);
    assert_int_equal(w->messages, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_key_is_admitted_and_revoked_without_a_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
