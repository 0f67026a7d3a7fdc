/*
 * agent_swarm.c - many simulated agents for bench/control_swarm.sh: each a
 * DEALER with its own CURVE key pair and routing id, sending a hello and
 * then a heartbeat every interval, as trove-agent does; and, as the
 * baseline, a bare CURVE ROUTER with a ZAP handler that only receives. It
 * simulates the wire, never the engines; nothing here is a test.
 *
 *   agent-swarm keys IDS_FILE DIR        DIR/allowed_agents and DIR/agents.keys for the ids
 *   agent-swarm agents ENDPOINT SERVER_PUB KEYS FIRST COUNT HEARTBEAT_MS CONNECTS_PER_S
 *                                        run COUNT agents (lines FIRST.. of KEYS) until SIGTERM,
 *                                        connecting CONNECTS_PER_S of them a second; SIGUSR1
 *                                        flips every engine between running and stopped
 *   agent-swarm router ENDPOINT SERVER_KEY ALLOWED EXPECT
 *                                        the baseline ROUTER; prints "connected N" once EXPECT
 *                                        peers have spoken, then messages/s every 5 s, until SIGTERM
 *   agent-swarm wait CLIENT_ENDPOINT N SECONDS
 *                                        until trove-control counts N connected agents
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "table.h"
#include "trove_control.h"
#include "value.h"
#include "wire.h"

#define ID_MAX 64
#define Z85 41

static volatile sig_atomic_t stopping, engines_stopped;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        engines_stopped = !engines_stopped;
    else
        stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every descriptor the hard limit allows: each agent costs its TCP
 * connection and its socket's mailbox. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ------------------------------------------------------------ keys */

static int make_keys(const char *ids_path, const char *dir)
{
    char allowed[4096], keyfile[4096], line[256];
    snprintf(allowed, sizeof allowed, "%s/allowed_agents", dir);
    snprintf(keyfile, sizeof keyfile, "%s/agents.keys", dir);
    FILE *in = fopen(ids_path, "r");
    umask(077);
    FILE *al = fopen(allowed, "w"), *kf = fopen(keyfile, "w");
    if (!in || !al || !kf) {
        perror("agent-swarm keys");
        return 1;
    }
    size_t n = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        char pub[Z85], sec[Z85];
        if (zmq_curve_keypair(pub, sec) != 0) {
            fprintf(stderr, "agent-swarm: zmq_curve_keypair failed\n");
            return 1;
        }
        fprintf(al, "%s %s\n", line, pub);
        fprintf(kf, "%s %s %s\n", line, pub, sec);
        n++;
    }
    fclose(in);
    fclose(al);
    fclose(kf);
    printf("%zu agents\n", n);
    return 0;
}

/* ------------------------------------------------------------ agents */

struct sim {
    void *socket;                    /* NULL until its turn to connect */
    char id[ID_MAX + 1], pub[Z85], sec[Z85];
    int64_t seq, next_ms;
};

static int send_tv(void *socket, struct tv *m)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = wire_encode(m, &buf, &len);
    tv_free(m);
    if (rc != 0)
        return -1;
    rc = zmq_send(socket, buf, len, ZMQ_DONTWAIT);
    free(buf);
    return rc < 0 ? -1 : 0;
}

static struct tv *hello(const char *id, int64_t heartbeat_ms, int64_t epoch)
{
    struct tv *m = tv_map(), *plugin = tv_map(), *abi = tv_map(), *caps = tv_array();
    tv_set_int(m, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(m, "type", "hello");
    tv_set_str(m, "instance", id);
    tv_set_str(m, "agent_version", "swarm");
    tv_set_str(plugin, "name", "mysql");
    tv_set_str(plugin, "version", "swarm");
    tv_set(m, "plugin", plugin);
    tv_set_int(abi, "major", 1);
    tv_set_int(abi, "minor", 0);
    tv_set(m, "abi", abi);
    tv_append(caps, tv_str("ping"));
    tv_append(caps, tv_str("status"));
    tv_set(m, "capabilities", caps);
    tv_set(m, "features", tv_array());
    tv_set_int(m, "heartbeat_ms", heartbeat_ms);
    tv_set_int(m, "epoch", epoch);
    tv_set(m, "tasks", tv_array());
    return m;
}

static struct tv *heartbeat(int64_t seq, int64_t epoch)
{
    struct tv *m = tv_map();
    tv_set_int(m, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(m, "type", "heartbeat");
    tv_set_int(m, "seq", seq);
    tv_set_str(m, "state", engines_stopped ? "stopped" : "running");
    tv_set_str(m, "role", "standalone");
    tv_set_int(m, "term", 0);
    tv_set_str(m, "position", "");
    tv_set_str(m, "message", engines_stopped ? "stopped by the swarm" : "");
    tv_set(m, "task", tv_nil());
    tv_set_int(m, "epoch", epoch);
    return m;
}

/* The agent's socket options (agent/loop.c), with this agent's keys, connected. */
static void *agent_socket(void *ctx, const char *endpoint, const char *server_pub, const char *id, const char *pub,
                          const char *sec)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int ivl = 5000, timeout = 15000, linger = 0, reconnect = 1000, reconnect_max = 32000;
    int64_t maxmsg = WIRE_MAX_FRAME;
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, Z85);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, Z85);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, Z85);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Lines FIRST.. of the keys file, COUNT of them; not yet connected. */
static struct sim *load_agents(const char *keys_path, long first, long count)
{
    FILE *kf = fopen(keys_path, "r");
    struct sim *sims = calloc((size_t)count, sizeof *sims);
    char line[256];
    long lineno = 0, n = 0;
    if (!kf || !sims) {
        perror("agent-swarm agents");
        return NULL;
    }
    while (n < count && fgets(line, sizeof line, kf)) {
        if (lineno++ < first)
            continue;
        struct sim *a = &sims[n];
        if (sscanf(line, "%64s %40s %40s", a->id, a->pub, a->sec) == 3)
            n++;
    }
    fclose(kf);
    if (n < count) {
        fprintf(stderr, "agent-swarm: %s holds %ld keys from line %ld, not %ld\n", keys_path, n, first, count);
        return NULL;
    }
    return sims;
}

static int run_agents(char **argv)
{
    const char *endpoint = argv[2], *server_pub_path = argv[3], *keys_path = argv[4];
    long first = atol(argv[5]), count = atol(argv[6]), per_s = atol(argv[8]);
    int64_t heartbeat_ms = atol(argv[7]);
    char server_pub[Z85], err[256];
    if (count < 1 || heartbeat_ms < 100 || per_s < 1 || keys_read_pub(server_pub_path, server_pub, err, sizeof err) != 0) {
        fprintf(stderr, "agent-swarm agents: bad arguments or %s\n", err);
        return 2;
    }
    raise_nofile();
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)count + 16);
    struct sim *sims = load_agents(keys_path, first, count);
    if (!sims)
        return 1;
    int64_t epoch = wall_ms(), start = now_ms();
    long connected = 0;
    uint64_t sent = 0;
    char drain[512];
    while (!stopping) {
        int64_t now = now_ms();
        /* A steady stream of new connections, as agents coming back after a restart. */
        for (long due = (long)((now - start) * per_s / 1000); connected < count && connected <= due; connected++) {
            struct sim *a = &sims[connected];
            if (!(a->socket = agent_socket(ctx, endpoint, server_pub, a->id, a->pub, a->sec))) {
                fprintf(stderr, "agent-swarm: agent %ld: %s\n", connected, zmq_strerror(errno));
                return 1;
            }
            send_tv(a->socket, hello(a->id, heartbeat_ms, epoch));
            a->next_ms = now + heartbeat_ms;
        }
        for (long i = 0; i < connected; i++) {
            struct sim *a = &sims[i];
            if (now < a->next_ms)
                continue;
            a->next_ms += heartbeat_ms;
            if (send_tv(a->socket, heartbeat(++a->seq, epoch)) == 0)
                sent++;
            while (zmq_recv(a->socket, drain, sizeof drain, ZMQ_DONTWAIT) >= 0)
                ;   /* acks and requests: a heartbeat-only agent has nothing to answer */
        }
        usleep(5000);
    }
    for (long i = 0; i < connected; i++)
        zmq_close(sims[i].socket);
    zmq_ctx_term(ctx);
    free(sims);
    printf("sent %" PRIu64 " heartbeats\n", sent);
    return 0;
}

/* ------------------------------------------------------------ baseline router */

struct zap_ctx {
    void *ctx;
    struct table *keys;   /* Z85 key -> instance id */
};

/* A ZAP handler admitting the listed keys, as trove-control's does. */
static void *zap_thread(void *p)
{
    struct zap_ctx *z = p;
    void *s = zmq_socket(z->ctx, ZMQ_REP);
    int linger = 0, timeout = 200, unbounded = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVHWM, &unbounded, sizeof unbounded);
    zmq_setsockopt(s, ZMQ_SNDHWM, &unbounded, sizeof unbounded);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_bind(s, "inproc://zeromq.zap.01");
    while (!stopping) {
        zmq_msg_t parts[7];
        int n = 0, more = 1;
        for (; more && n < 7; n++) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], s, 0) < 0) {
                zmq_msg_close(&parts[n]);
                break;
            }
            more = zmq_msg_more(&parts[n]);
        }
        if (n < 7 || more) {
            for (int i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            continue;
        }
        char key[Z85] = "";
        if (zmq_msg_size(&parts[6]) == 32)
            zmq_z85_encode(key, zmq_msg_data(&parts[6]), 32);
        const char *instance = table_get(z->keys, key, strlen(key));
        zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(s, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), ZMQ_SNDMORE);
        zmq_send(s, instance ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        zmq_send(s, instance ? instance : "", instance ? strlen(instance) : 0, ZMQ_SNDMORE);
        zmq_send(s, "", 0, 0);
        for (int i = 0; i < 7; i++)
            zmq_msg_close(&parts[i]);
    }
    zmq_close(s);
    return NULL;
}

static struct table *load_allowed(const char *path)
{
    FILE *f = fopen(path, "r");
    struct table *t = table_new(free);
    char line[256];
    if (!f || !t)
        return NULL;
    while (fgets(line, sizeof line, f)) {
        char id[ID_MAX + 1], pub[Z85];
        if (sscanf(line, "%64s %40s", id, pub) == 2)
            table_put(t, pub, strlen(pub), strdup(id));
    }
    fclose(f);
    return t;
}

static int run_router(char **argv)
{
    const char *endpoint = argv[2], *key_path = argv[3], *allowed = argv[4];
    long expect = atol(argv[5]);
    struct keys_pair server;
    char err[256];
    if (keys_read_key(key_path, &server, err, sizeof err) != 0) {
        fprintf(stderr, "agent-swarm router: %s\n", err);
        return 2;
    }
    raise_nofile();
    struct zap_ctx z = { zmq_ctx_new(), load_allowed(allowed) };
    struct table *seen = table_new(NULL);
    if (!z.keys || !seen)
        return 1;
    pthread_t zt;
    pthread_create(&zt, NULL, zap_thread, &z);
    usleep(100000);   /* the ZAP handler binds before the ROUTER */
    void *r = zmq_socket(z.ctx, ZMQ_ROUTER);
    int one = 1, zero = 0, linger = 0, rcvtimeo = 100, backlog = 4096, idle = 10, intvl = 5, cnt = 3, maxrt = 30000;
    zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, server.secret_z85, Z85);
    zmq_setsockopt(r, ZMQ_ZAP_DOMAIN, "trove", 5);
    /* trove-control's agent socket options (control/rpc.c) */
    zmq_setsockopt(r, ZMQ_HEARTBEAT_IVL, &zero, sizeof zero);
    zmq_setsockopt(r, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_TCP_KEEPALIVE_IDLE, &idle, sizeof idle);
    zmq_setsockopt(r, ZMQ_TCP_KEEPALIVE_INTVL, &intvl, sizeof intvl);
    zmq_setsockopt(r, ZMQ_TCP_KEEPALIVE_CNT, &cnt, sizeof cnt);
    zmq_setsockopt(r, ZMQ_TCP_MAXRT, &maxrt, sizeof maxrt);
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    zmq_setsockopt(r, ZMQ_BACKLOG, &backlog, sizeof backlog);
    if (zmq_bind(r, endpoint) != 0) {
        fprintf(stderr, "agent-swarm router: bind %s: %s\n", endpoint, zmq_strerror(errno));
        return 1;
    }
    uint64_t messages = 0, window = 0;
    int64_t window_start = now_ms();
    bool announced = false;
    while (!stopping) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r, 0) >= 0 && zmq_msg_recv(&body, r, 0) >= 0) {
            /* What trove-control checks first: the sender's ZAP User-Id. */
            const char *user = zmq_msg_gets(&body, "User-Id");
            if (user && zmq_msg_size(&id) == strlen(user) && memcmp(zmq_msg_data(&id), user, strlen(user)) == 0 &&
                !table_get(seen, user, strlen(user)))
                table_put(seen, user, strlen(user), (void *)1);
            messages++;
            window++;
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        if (!announced && (long)table_count(seen) >= expect) {
            printf("connected %zu\n", table_count(seen));
            fflush(stdout);
            announced = true;
        }
        int64_t now = now_ms();
        if (now - window_start >= 5000) {
            printf("messages/s %.0f (peers %zu)\n", window * 1000.0 / (double)(now - window_start), table_count(seen));
            fflush(stdout);
            window = 0;
            window_start = now;
        }
    }
    zmq_close(r);
    pthread_join(zt, NULL);
    zmq_ctx_term(z.ctx);
    table_free(z.keys);
    table_free(seen);
    keys_wipe(&server);
    printf("received %" PRIu64 " messages\n", messages);
    return 0;
}

/* ------------------------------------------------------------ wait */

static long count_connected(struct trove_control *tc)
{
    struct trove_control_error err;
    struct tv *result = NULL;
    if (trove_control_call(tc, NULL, "control.instances", NULL, 30000, NULL, NULL, &result, &err) != TROVE_OK)
        return -1;
    const struct tv *list = tv_get(result, "instances");
    long n = 0;
    for (size_t i = 0; list && list->type == TV_ARRAY && i < list->u.a.len; i++)
        n += tv_get_bool(list->u.a.items[i], "connected", false);
    tv_free(result);
    return n;
}

static int run_wait(char **argv)
{
    const char *endpoint = argv[2];
    long want = atol(argv[3]);
    int64_t deadline = now_ms() + atol(argv[4]) * 1000;
    struct trove_control_error err;
    struct trove_control *tc = trove_control_connect(endpoint, 10000, &err);
    if (!tc) {
        fprintf(stderr, "agent-swarm wait: %s\n", err.message);
        return 1;
    }
    long n = 0;
    while ((n = count_connected(tc)) < want && now_ms() < deadline && !stopping)
        sleep(1);
    trove_control_close(tc);
    printf("connected %ld\n", n);
    return n >= want ? 0 : 1;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_signal);
    if (argc == 4 && strcmp(argv[1], "keys") == 0)
        return make_keys(argv[2], argv[3]);
    if (argc == 9 && strcmp(argv[1], "agents") == 0)
        return run_agents(argv);
    if (argc == 6 && strcmp(argv[1], "router") == 0)
        return run_router(argv);
    if (argc == 5 && strcmp(argv[1], "wait") == 0)
        return run_wait(argv);
    fprintf(stderr, "usage: see the head of bench/agent_swarm.c\n");
    return 2;
}
