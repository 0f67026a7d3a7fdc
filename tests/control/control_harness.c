/*
 * control_harness.c - starts and stops a real trove-control for each test
 * and provides raw ZeroMQ agent and client peers. Nothing here imitates the
 * daemon; every check in the tests is made against its real answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "control_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "wire.h"

const char *harness_daemon_path;
const char *harness_trovectl_path;

bool harness_take_args(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TROVE-CONTROL TROVECTL\n", argv[0]);
        return false;
    }
    harness_daemon_path = argv[1];
    harness_trovectl_path = argv[2];
    return true;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback TCP port nobody listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static void make_keys(struct daemon_fixture *f, const char *name, struct keys_pair *kp)
{
    char err[256], path[256];
    assert_int_equal(keys_generate(kp, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    if (keys_write(path, kp, err, sizeof err) != 0)
        fail_msg("keys_write: %s", err);
}

void fixture_prepare(struct daemon_fixture *f, bool plaintext, const char *extra_config)
{
    char text[4096], path[256];
    memset(f, 0, sizeof *f);
    f->pid = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/trove-control-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->dir);
    snprintf(f->config, sizeof f->config, "%s/control.conf", f->dir);
    snprintf(f->log, sizeof f->log, "%s/control.log", f->dir);
    snprintf(f->client_endpoint, sizeof f->client_endpoint, "ipc://%s/control.sock", f->state_dir);
    snprintf(f->agent_endpoint, sizeof f->agent_endpoint, "tcp://127.0.0.1:%d", free_port());

    make_keys(f, "server", &f->server);
    make_keys(f, "agent-a", &f->agent_a);
    make_keys(f, "agent-b", &f->agent_b);
    make_keys(f, "stranger", &f->stranger);
    snprintf(text, sizeof text,
             "# agents allowed to connect\n"
             "inst-a %s\n"
             "inst-b %s   # second agent\n",
             f->agent_a.public_z85, f->agent_b.public_z85);
    snprintf(path, sizeof path, "%s/allowed_agents", f->dir);
    write_file(path, text, 0644);

    snprintf(text, sizeof text,
             "[control]\n"
             "agent_endpoint = %s\n"
             "state_dir = %s\n"
             "server_key_file = %s/server.key\n"
             "allowed_agents_file = %s/allowed_agents\n"
             "plaintext_dev = %s\n"
             "log_level = debug\n"
             "api_listen = off\n"
             "provisioner = none\n"
             "%s\n",
             f->agent_endpoint, f->state_dir, f->dir, f->dir, plaintext ? "true" : "false",
             extra_config ? extra_config : "");
    write_file(f->config, text, 0644);
    f->zmq_context = zmq_ctx_new();
    assert_non_null(f->zmq_context);
}

static pid_t spawn_daemon(struct daemon_fixture *f)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Never outlive the test, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Under the sanitizers the daemon checks its leaks at exit; a leak
         * makes it exit non-zero, which fixture_cleanup reports. */
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1", 1);
        int log = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execl(harness_daemon_path, harness_daemon_path, "--config", f->config, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void dump_log(const struct daemon_fixture *f)
{
    char line[1024];
    FILE *in = fopen(f->log, "r");
    if (!in)
        return;
    fprintf(stderr, "---- trove-control log (%s)\n", f->log);
    while (fgets(line, sizeof line, in))
        fputs(line, stderr);
    fclose(in);
}

void fixture_start(struct daemon_fixture *f)
{
    f->pid = spawn_daemon(f);
    void *client = client_connect(f);
    int64_t deadline = now_ms() + 10000;
    struct tv *reply = NULL;
    while (!reply && now_ms() < deadline) {
        int status;
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = -1;
            dump_log(f);
            fail_msg("trove-control exited during start-up");
        }
        reply = client_call(client, "ready-check", "control.ping", NULL, NULL, 200);
    }
    client_close(f, client);
    if (!reply) {
        dump_log(f);
        fail_msg("trove-control did not answer control.ping within 10 s");
    }
    assert_true(tv_get_bool(reply, "ok", false));
    tv_free(reply);
}

int fixture_stop_daemon(struct daemon_fixture *f)
{
    int status = -1;
    if (f->pid <= 0)
        return 0;
    kill(f->pid, SIGTERM);
    int64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = -1;
            return status;
        }
        sleep_ms(10);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &status, 0);
    f->pid = -1;
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int fixture_cleanup(struct daemon_fixture *f)
{
    int status = fixture_stop_daemon(f);
    int rc = 0;
    /* A daemon that does not exit 0 on SIGTERM (a hang, a crash, a leak
     * reported by the sanitizers) fails the test. */
    if (status != 0) {
        dump_log(f);
        fprintf(stderr, "trove-control did not stop cleanly (wait status %d)\n", status);
        rc = -1;
    }
    while (f->n_sockets > 0)
        zmq_close(f->sockets[--f->n_sockets]);
    if (f->zmq_context)
        zmq_ctx_term(f->zmq_context);
    f->zmq_context = NULL;
    keys_wipe(&f->server);
    if (f->dir[0])
        nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    f->dir[0] = '\0';
    return rc;
}

int fixture_run_daemon_expecting_exit(struct daemon_fixture *f)
{
    pid_t pid = spawn_daemon(f);
    int status;
    int64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

bool fixture_log_contains(const struct daemon_fixture *f, const char *text)
{
    char buf[65536];
    FILE *in = fopen(f->log, "r");
    if (!in)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* ------------------------------------------------------------ sockets */

/* Sockets are tracked so that cleanup can close whatever a failed test left
 * open; zmq_ctx_term would wait for them forever. */
static void *track(struct daemon_fixture *f, void *socket)
{
    assert_non_null(socket);
    assert_true(f->n_sockets < (int)(sizeof f->sockets / sizeof f->sockets[0]));
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    f->sockets[f->n_sockets++] = socket;
    return socket;
}

static void untrack_and_close(struct daemon_fixture *f, void *socket)
{
    for (int i = 0; i < f->n_sockets; i++) {
        if (f->sockets[i] == socket) {
            f->sockets[i] = f->sockets[--f->n_sockets];
            zmq_close(socket);
            return;
        }
    }
    fail_msg("closing a socket the harness does not know");
}

/* ------------------------------------------------------------ agents */

static int monitor_seq;

void agent_connect(struct raw_agent *a, struct daemon_fixture *f, const char *routing_id,
                   const struct keys_pair *keys)
{
    char endpoint[64];
    memset(a, 0, sizeof *a);
    a->fixture = f;
    snprintf(a->instance, sizeof a->instance, "%s", routing_id);
    a->socket = track(f, zmq_socket(f->zmq_context, ZMQ_DEALER));
    zmq_setsockopt(a->socket, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    if (keys) {
        assert_int_equal(zmq_setsockopt(a->socket, ZMQ_CURVE_SERVERKEY, f->server.public_z85, 40), 0);
        assert_int_equal(zmq_setsockopt(a->socket, ZMQ_CURVE_PUBLICKEY, keys->public_z85, 40), 0);
        assert_int_equal(zmq_setsockopt(a->socket, ZMQ_CURVE_SECRETKEY, keys->secret_z85, 40), 0);
    }
    snprintf(endpoint, sizeof endpoint, "inproc://agent-monitor-%d", ++monitor_seq);
    assert_int_equal(zmq_socket_monitor(a->socket, endpoint,
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL),
                     0);
    a->monitor = track(f, zmq_socket(f->zmq_context, ZMQ_PAIR));
    assert_int_equal(zmq_connect(a->monitor, endpoint), 0);
    assert_int_equal(zmq_connect(a->socket, f->agent_endpoint), 0);
}

int agent_wait_handshake(struct raw_agent *a, int timeout_ms)
{
    zmq_pollitem_t item = {a->monitor, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t head, address;
    zmq_msg_init(&head);
    zmq_msg_init(&address);
    assert_true(zmq_msg_recv(&head, a->monitor, 0) >= 6);
    zmq_msg_recv(&address, a->monitor, 0);
    uint16_t event;
    uint32_t value;
    memcpy(&event, zmq_msg_data(&head), 2);
    memcpy(&value, (char *)zmq_msg_data(&head) + 2, 4);
    zmq_msg_close(&head);
    zmq_msg_close(&address);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        return 0;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return (int)value;
    return -1;
}

void agent_send(struct raw_agent *a, const struct tv *msg)
{
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(msg, &buf, &len), 0);
    zmq_send(a->socket, buf, len, ZMQ_DONTWAIT);
    free(buf);
}

static struct tv *base_message(const char *type)
{
    struct tv *m = tv_map();
    assert_non_null(m);
    tv_set_int(m, "v", 1);
    tv_set_str(m, "type", type);
    return m;
}

void agent_send_hello(struct raw_agent *a, const char *instance)
{
    struct tv *m = base_message("hello");
    tv_set_str(m, "instance", instance);
    tv_set_str(m, "agent_version", "test-peer");
    struct tv *plugin = tv_child_map(m, "plugin");
    tv_set_str(plugin, "name", "rawpeer");
    tv_set_str(plugin, "version", "1.0");
    struct tv *abi = tv_child_map(m, "abi");
    tv_set_int(abi, "major", 1);
    tv_set_int(abi, "minor", 0);
    struct tv *caps = tv_child_array(m, "capabilities");
    tv_append(caps, tv_str("ping"));
    tv_append(caps, tv_str("backup.create"));
    tv_child_array(m, "features");
    tv_set_int(m, "heartbeat_ms", 5000);
    agent_send(a, m);
    tv_free(m);
}

void agent_send_heartbeat(struct raw_agent *a, int seq)
{
    struct tv *m = base_message("heartbeat");
    tv_set_int(m, "seq", seq);
    tv_set_str(m, "state", "running");
    tv_set_str(m, "role", "primary");
    tv_set_int(m, "term", 3);
    tv_set_str(m, "position", "0-1-42");
    tv_set_str(m, "message", "");
    tv_set(m, "task", tv_nil());
    agent_send(a, m);
    tv_free(m);
}

static struct tv *recv_decoded(void *socket, int timeout_ms)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return NULL;
    }
    /* No cmocka assertions here: the serving agent calls this on its own
     * thread. A bad frame reads as "nothing arrived" and fails the test. */
    struct tv *msg = NULL;
    char err[200];
    if (zmq_msg_more(&m) ||
        wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), NULL, &msg, err, sizeof err) != 0) {
        fprintf(stderr, "bad frame from trove-control (%zu bytes)\n", zmq_msg_size(&m));
        msg = NULL;
    }
    zmq_msg_close(&m);
    return msg;
}

struct tv *agent_recv(struct raw_agent *a, int timeout_ms)
{
    return recv_decoded(a->socket, timeout_ms);
}

void agent_close(struct raw_agent *a)
{
    if (a->socket) {
        zmq_socket_monitor(a->socket, NULL, 0);
        untrack_and_close(a->fixture, a->socket);
    }
    if (a->monitor)
        untrack_and_close(a->fixture, a->monitor);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------ serving agent */

static struct tv *reply_to(const char *id, struct tv *result)
{
    struct tv *r = base_message("reply");
    tv_set_str(r, "id", id);
    tv_set_bool(r, "ok", true);
    tv_set(r, "result", result ? result : tv_map());
    return r;
}

static struct tv *error_reply(const char *id, const char *code, const char *message)
{
    struct tv *r = base_message("reply");
    tv_set_str(r, "id", id);
    tv_set_bool(r, "ok", false);
    struct tv *e = tv_child_map(r, "error");
    tv_set_str(e, "code", code);
    tv_set_str(e, "message", message);
    return r;
}

static void serve_task(struct raw_agent *a, const char *id)
{
    struct tv *result = tv_map();
    tv_set_str(result, "task", id);
    tv_set_str(result, "state", "running");
    struct tv *r = reply_to(id, result);
    agent_send(a, r);
    tv_free(r);

    struct tv *progress = base_message("event");
    tv_set_str(progress, "id", id);
    tv_set_str(progress, "event", "task.progress");
    tv_set_int(progress, "percent", 50);
    tv_set_str(progress, "message", "copying data");
    agent_send(a, progress);
    tv_free(progress);

    struct tv *done = base_message("event");
    tv_set_str(done, "id", id);
    tv_set_str(done, "event", "task.done");
    tv_set_bool(done, "ok", true);
    struct tv *backup = tv_child_map(tv_child_map(done, "result"), "backup");
    tv_set_str(backup, "id", "bk-1");
    tv_set_str(backup, "state", "complete");
    agent_send(a, done);
    tv_free(done);
}

static void serve_one(struct serving_agent *s, struct tv *req)
{
    const char *id = tv_get_str(req, "id");
    const char *op = tv_get_str(req, "op");
    const struct tv *args = tv_get(req, "args");
    struct tv *reply = NULL;

    if (!id || !op)
        return;
    pthread_mutex_lock(&s->lock);
    s->requests++;
    snprintf(s->last_op, sizeof s->last_op, "%s", op);
    tv_free(s->last_args);
    s->last_args = args ? tv_copy(args) : tv_map();
    pthread_mutex_unlock(&s->lock);

    if (strcmp(op, "ping") == 0) {
        struct tv *result = tv_map();
        tv_set_bool(result, "pong", true);
        tv_set_str(result, "instance", s->agent.instance);
        reply = reply_to(id, result);
    } else if (strcmp(op, "backup.create") == 0) {
        serve_task(&s->agent, id);
    } else if (strcmp(op, "user.create") == 0) {
        reply = reply_to(id, NULL);
    } else if (strcmp(op, "root.enable") == 0) {
        struct tv *result = tv_map();
        tv_set_str(result, "name", "root");
        tv_set_str(result, "password", "s3cret!");
        reply = reply_to(id, result);
    } else if (strcmp(op, "fail.datastore") == 0) {
        reply = error_reply(id, "datastore_error", "Access denied for user 'x'@'%'");
    } else if (strcmp(op, "silent") != 0) {
        reply = error_reply(id, "not_supported", "not supported by this peer");
    }
    if (reply) {
        agent_send(&s->agent, reply);
        tv_free(reply);
    }
}

static void *serve(void *p)
{
    struct serving_agent *s = p;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        struct tv *req = agent_recv(&s->agent, 50);
        if (req && strcmp(tv_get_str(req, "type") ? tv_get_str(req, "type") : "", "request") == 0)
            serve_one(s, req);
        tv_free(req);
    }
    return NULL;
}

void serving_agent_start(struct serving_agent *s, struct daemon_fixture *f)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    agent_connect(&s->agent, f, "inst-a", &f->agent_a);
    assert_int_equal(agent_wait_handshake(&s->agent, 5000), 0);
    agent_send_hello(&s->agent, "inst-a");
    agent_send_heartbeat(&s->agent, 1);
    void *client = client_connect(f);
    bool up = wait_instance_connected(client, "inst-a", true, 5000);
    client_close(f, client);
    assert_true(up);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

void serving_agent_stop(struct serving_agent *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    agent_close(&s->agent);
    tv_free(s->last_args);
    s->last_args = NULL;
    pthread_mutex_destroy(&s->lock);
}

struct tv *serving_agent_last(struct serving_agent *s, char *op)
{
    pthread_mutex_lock(&s->lock);
    struct tv *copy = s->last_args ? tv_copy(s->last_args) : NULL;
    snprintf(op, 65, "%s", s->last_op);
    pthread_mutex_unlock(&s->lock);
    return copy;
}

/* ------------------------------------------------------------ clients */

void *client_connect(struct daemon_fixture *f)
{
    void *s = track(f, zmq_socket(f->zmq_context, ZMQ_DEALER));
    assert_int_equal(zmq_connect(s, f->client_endpoint), 0);
    return s;
}

void client_close(struct daemon_fixture *f, void *client)
{
    untrack_and_close(f, client);
}

void client_send_raw(void *client, const void *data, size_t len, bool more)
{
    assert_true(zmq_send(client, data, len, more ? ZMQ_SNDMORE : 0) >= 0);
}

void client_send(void *client, const struct tv *msg)
{
    char *buf;
    size_t len;
    assert_int_equal(wire_encode(msg, &buf, &len), 0);
    client_send_raw(client, buf, len, false);
    free(buf);
}

struct tv *client_recv(void *client, int timeout_ms)
{
    return recv_decoded(client, timeout_ms);
}

struct tv *make_request(const char *id, const char *op, const char *instance, struct tv *args)
{
    struct tv *m = base_message("request");
    tv_set_str(m, "id", id);
    tv_set_str(m, "op", op);
    if (instance)
        tv_set_str(m, "instance", instance);
    if (args)
        tv_set(m, "args", args);
    return m;
}

struct tv *client_call(void *client, const char *id, const char *op, const char *instance, struct tv *args,
                       int timeout_ms)
{
    struct tv *req = make_request(id, op, instance, args);
    client_send(client, req);
    tv_free(req);
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return NULL;
        struct tv *msg = client_recv(client, (int)left);
        if (!msg)
            return NULL;
        const char *got = tv_get_str(msg, "id");
        if (got && strcmp(got, id) == 0 && strcmp(tv_get_str(msg, "type"), "reply") == 0)
            return msg;
        tv_free(msg);
    }
}

bool instance_connected(void *client, const char *instance)
{
    struct tv *args = tv_map();
    tv_set_str(args, "instance", instance);
    struct tv *reply = client_call(client, "probe", "control.instance", NULL, args, 2000);
    assert_non_null(reply);
    bool connected = tv_get_bool(tv_get(tv_get(reply, "result"), "instance"), "connected", false);
    tv_free(reply);
    return connected;
}

bool wait_instance_connected(void *client, const char *instance, bool want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    do {
        if (instance_connected(client, instance) == want)
            return true;
        sleep_ms(20);
    } while (now_ms() < deadline);
    return false;
}

const char *reply_error_code(const struct tv *reply)
{
    return tv_get_str(tv_get(reply, "error"), "code");
}

/* ------------------------------------------------------------ trovectl */

static void read_all(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    ssize_t n;
    while (used + 1 < cap && (n = read(fd, buf + used, cap - 1 - used)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
}

void run_trovectl(struct daemon_fixture *f, struct cli_result *r, const char *stdin_text, ...)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = harness_trovectl_path;
    argv[argc++] = "--endpoint";
    argv[argc++] = f->client_endpoint;
    va_list ap;
    va_start(ap, stdin_text);
    const char *arg;
    while ((arg = va_arg(ap, const char *)) && argc < 63)
        argv[argc++] = arg;
    va_end(ap);
    argv[argc] = NULL;

    char out_path[256], err_path[256], in_path[256];
    snprintf(out_path, sizeof out_path, "%s/trovectl.out", f->dir);
    snprintf(err_path, sizeof err_path, "%s/trovectl.err", f->dir);
    snprintf(in_path, sizeof in_path, "%s/trovectl.in", f->dir);
    write_file(in_path, stdin_text ? stdin_text : "", 0600);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(60);   /* a hung trovectl fails the test instead of stalling it */
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1", 1);
        int in = open(in_path, O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(harness_trovectl_path, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int fd = open(out_path, O_RDONLY);
    read_all(fd, r->out, sizeof r->out);
    close(fd);
    fd = open(err_path, O_RDONLY);
    read_all(fd, r->err, sizeof r->err);
    close(fd);
}

int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}
