/*
 * ping.c - round-trip latency of `ping` through the product (libtrove-control
 * -> trove-control -> trove-agent -> back) against bare libzmq echoes run in
 * the same process on the same transports with the same CURVE setting:
 *   echo-1hop: DEALER -> ROUTER echo over TCP loopback (CURVE)
 *   relay-2hop: DEALER -ipc-> ROUTER relay -tcp/CURVE-> DEALER echo, the
 *               topology of client -> control -> agent with no decoding at all
 * usage: ping CONTROL_ENDPOINT INSTANCE [N]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "trove_control.h"
#include "value.h"
#include "wire.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v[(int)(p * (n - 1))];
}

struct keys {
    char server_pub[41], server_sec[41], client_pub[41], client_sec[41];
};

static void curve_server(void *s, const struct keys *k)
{
    int one = 1;
    zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->server_sec, 41);
}

static void curve_client(void *s, const struct keys *k)
{
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, k->server_pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k->client_pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->client_sec, 41);
}

/* Bind to an ephemeral port and write the endpoint actually bound into ep. */
static int bind_any(void *s, const char *pattern, char *ep, size_t eplen)
{
    if (zmq_bind(s, pattern) != 0)
        return -1;
    return zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &eplen);
}

static void set_timeouts(void *s)
{
    int ms = 5000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof(ms));
}

struct echo_args {
    void *ctx;
    const struct keys *k;
    char endpoint[128];
    int type;          /* ZMQ_ROUTER (1-hop echo) or ZMQ_DEALER (echo behind the relay) */
    volatile int ready;
};

/* Echo every message back unchanged until a zero-length frame arrives. */
static void *echo_main(void *arg)
{
    struct echo_args *e = arg;
    void *s = zmq_socket(e->ctx, e->type);
    set_timeouts(s);
    if (e->type == ZMQ_ROUTER) {
        curve_server(s, e->k);
        bind_any(s, "tcp://127.0.0.1:*", e->endpoint, sizeof(e->endpoint));
    } else {
        curve_client(s, e->k);
        zmq_setsockopt(s, ZMQ_ROUTING_ID, "echo", 4);
        zmq_connect(s, e->endpoint);
    }
    e->ready = 1;
    for (;;) {
        zmq_msg_t parts[2];
        int n = 0, more = 1;
        while (more && n < 2) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], s, 0) < 0) {
                fprintf(stderr, "echo: %s\n", zmq_strerror(zmq_errno()));
                zmq_close(s);
                return NULL;
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        size_t last = zmq_msg_size(&parts[n - 1]);
        for (int i = 0; i < n; i++)
            zmq_msg_send(&parts[i], s, i + 1 < n ? ZMQ_SNDMORE : 0);
        if (last == 0)
            break;
    }
    zmq_close(s);
    return NULL;
}

struct relay_args {
    void *ctx;
    const struct keys *k;
    char front[128], back[128];
    volatile int ready;
};

/* client <-> relay <-> echo: forward by routing id, as trove-control does. */
static void *relay_main(void *arg)
{
    struct relay_args *r = arg;
    void *front = zmq_socket(r->ctx, ZMQ_ROUTER), *back = zmq_socket(r->ctx, ZMQ_ROUTER);
    curve_server(back, r->k);
    bind_any(front, r->front, r->front, sizeof(r->front));
    bind_any(back, "tcp://127.0.0.1:*", r->back, sizeof(r->back));
    r->ready = 1;
    char client_id[256];
    size_t client_len = 0;
    for (int done = 0; !done;) {
        zmq_pollitem_t items[2] = {{front, 0, ZMQ_POLLIN, 0}, {back, 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, 2, -1);
        if (items[0].revents & ZMQ_POLLIN) {
            client_len = (size_t)zmq_recv(front, client_id, sizeof(client_id), 0);
            zmq_msg_t body;
            zmq_msg_init(&body);
            zmq_msg_recv(&body, front, 0);
            done = zmq_msg_size(&body) == 0;
            zmq_send(back, "echo", 4, ZMQ_SNDMORE);
            zmq_msg_send(&body, back, 0);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            char id[256];
            zmq_recv(back, id, sizeof(id), 0);
            zmq_msg_t body;
            zmq_msg_init(&body);
            zmq_msg_recv(&body, back, 0);
            zmq_send(front, client_id, client_len, ZMQ_SNDMORE);
            zmq_msg_send(&body, front, 0);
        }
    }
    zmq_close(front);
    zmq_close(back);
    return NULL;
}

/* Round trips of a 100-byte msgpack request through `s`. */
static void measure_socket(void *s, int n, double *out)
{
    struct tv *req = wire_request("0123456789abcdef0123456789abcdef", "ping", NULL);
    char *buf;
    size_t len;
    wire_encode(req, &buf, &len);
    char reply[512];
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (zmq_send(s, buf, len, 0) < 0 || zmq_recv(s, reply, sizeof(reply), 0) < 0) {
            fprintf(stderr, "baseline round trip failed: %s\n", zmq_strerror(zmq_errno()));
            exit(1);
        }
        out[i] = now_us() - t0;
    }
    zmq_send(s, "", 0, 0);
    free(buf);
    tv_free(req);
}

static void report(const char *name, double *v, int n, double base)
{
    double p50 = pct(v, n, 0.5), p99 = pct(v, n, 0.99);
    if (base > 0)
        printf("%-28s p50 %8.1f us  p99 %8.1f us  ratio %.2fx\n", name, p50, p99, p50 / base);
    else
        printf("%-28s p50 %8.1f us  p99 %8.1f us\n", name, p50, p99);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONTROL_ENDPOINT INSTANCE [N]\n", argv[0]);
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 5000;
    double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double)),
           *c = calloc((size_t)n, sizeof(double));
    struct keys k;
    zmq_curve_keypair(k.server_pub, k.server_sec);
    zmq_curve_keypair(k.client_pub, k.client_sec);
    void *ctx = zmq_ctx_new();

    /* 1-hop echo */
    struct echo_args e1 = {ctx, &k, "", ZMQ_ROUTER, 0};
    pthread_t t1;
    pthread_create(&t1, NULL, echo_main, &e1);
    while (!e1.ready)
        usleep(1000);
    void *d1 = zmq_socket(ctx, ZMQ_DEALER);
    set_timeouts(d1);
    curve_client(d1, &k);
    zmq_connect(d1, e1.endpoint);
    measure_socket(d1, n, a);
    pthread_join(t1, NULL);
    zmq_close(d1);

    /* 2-hop relay: ipc front, tcp+CURVE back */
    struct relay_args r = {ctx, &k, "", "", 0};
    snprintf(r.front, sizeof(r.front), "ipc:///tmp/trove-bench-%d.sock", (int)getpid());
    pthread_t tr, te;
    pthread_create(&tr, NULL, relay_main, &r);
    while (!r.ready)
        usleep(1000);
    struct echo_args e2 = {ctx, &k, "", ZMQ_DEALER, 0};
    snprintf(e2.endpoint, sizeof(e2.endpoint), "%s", r.back);
    pthread_create(&te, NULL, echo_main, &e2);
    usleep(200000);
    void *d2 = zmq_socket(ctx, ZMQ_DEALER);
    set_timeouts(d2);
    zmq_connect(d2, r.front);
    measure_socket(d2, n, b);
    pthread_join(tr, NULL);
    pthread_join(te, NULL);
    zmq_close(d2);
    zmq_ctx_term(ctx);

    /* the product */
    struct trove_control_error err;
    struct trove_control *tc = trove_control_connect(argv[1], 5000, &err);
    if (!tc) {
        fprintf(stderr, "connect: %s: %s\n", err.code, err.message);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        struct tv *result = NULL;
        double t0 = now_us();
        if (trove_control_request(tc, argv[2], "ping", NULL, 5000, &result, &err) != TROVE_OK) {
            fprintf(stderr, "ping: %s: %s\n", err.code, err.message);
            return 1;
        }
        c[i] = now_us() - t0;
        tv_free(result);
    }
    trove_control_close(tc);

    double base1 = pct(a, n, 0.5), base2 = pct(b, n, 0.5);
    printf("ping round trips: %d each\n", n);
    report("bare echo, 1 hop (baseline)", a, n, 0);
    report("bare relay, 2 hops", b, n, base1);
    report("trovectl path: control+agent", c, n, base1);
    printf("ratio vs 1-hop echo: %.2fx (goal <= 1.5x); vs the same 2-hop topology: %.2fx\n",
           pct(c, n, 0.5) / base1, pct(c, n, 0.5) / base2);
    free(a), free(b), free(c);
    return 0;
}
