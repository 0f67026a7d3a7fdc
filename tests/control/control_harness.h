/*
 * control_harness.h - what the control-plane tests share: a real
 * trove-control started in a temporary directory on a free loopback port
 * (and always stopped), raw libzmq peers speaking the wire protocol as an
 * agent or a client would, and a runner for trovectl. The peers are protocol
 * peers, not mocks: they use CURVE, routing ids and msgpack frames exactly as
 * docs/protocol.md describes.
 */
#ifndef TROVE_TEST_CONTROL_HARNESS_H
#define TROVE_TEST_CONTROL_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "keys.h"
#include "value.h"

/* The binaries under test, from the test program's arguments
 * (TROVE-CONTROL TROVECTL). */
extern const char *harness_daemon_path;
extern const char *harness_trovectl_path;
/* Take them from argv; false (with a usage line) if they are missing. */
bool harness_take_args(int argc, char **argv);

struct daemon_fixture {
    char dir[128];                 /* temporary directory, removed at stop */
    char state_dir[192];
    char config[192];
    char log[192];                 /* the daemon's stderr */
    char client_endpoint[256];
    char agent_endpoint[64];
    struct keys_pair server;
    struct keys_pair agent_a;      /* allowed as instance "inst-a" */
    struct keys_pair agent_b;      /* allowed as instance "inst-b" */
    struct keys_pair stranger;     /* in no allow-list */
    pid_t pid;
    void *zmq_context;             /* for the test's own sockets */
    void *sockets[64];             /* open test sockets, closed at cleanup even after a failed assertion */
    int n_sockets;
};

/* Make the directory, keys and allow-list and write a config; extra_config
 * lines are appended to [control] (may be NULL). Does not start anything. */
void fixture_prepare(struct daemon_fixture *f, bool plaintext, const char *extra_config);
/* Start trove-control and wait until it answers control.ping. */
void fixture_start(struct daemon_fixture *f);
/* SIGTERM, wait (SIGKILL after 5 s); returns the wait status as from
 * waitpid (0 for a clean exit, and when it was not running), or -1 if it
 * had to be killed. Removes nothing. */
int fixture_stop_daemon(struct daemon_fixture *f);
/* Stop the daemon if running, close sockets, remove the directory.
 * Returns 0, or -1 (with the daemon's log on stderr) if the daemon did not
 * exit cleanly. */
int fixture_cleanup(struct daemon_fixture *f);
/* Run trove-control with this fixture's config in the foreground and
 * return its exit code when it exits by itself within 5 s (-1 otherwise). */
int fixture_run_daemon_expecting_exit(struct daemon_fixture *f);
/* True if the daemon's log contains text. */
bool fixture_log_contains(const struct daemon_fixture *f, const char *text);

/* ---- raw agent peer */

struct raw_agent {
    struct daemon_fixture *fixture;
    void *socket;      /* DEALER */
    void *monitor;     /* PAIR on the DEALER's events */
    char instance[65];
};

/* Connect a DEALER with routing id `routing_id`. keys NULL: plain text. */
void agent_connect(struct raw_agent *a, struct daemon_fixture *f, const char *routing_id,
                   const struct keys_pair *keys);
/* Wait for the handshake outcome: 0 succeeded, the ZAP status (e.g. 400)
 * when authentication failed, -1 on another failure or timeout. */
int agent_wait_handshake(struct raw_agent *a, int timeout_ms);
void agent_send(struct raw_agent *a, const struct tv *msg);
void agent_send_hello(struct raw_agent *a, const char *instance);
void agent_send_heartbeat(struct raw_agent *a, int seq);
/* Receive one message (NULL on timeout). */
struct tv *agent_recv(struct raw_agent *a, int timeout_ms);
void agent_close(struct raw_agent *a);

/* An agent answering requests on its own thread until stopped:
 * ping -> {pong, instance}; backup.create -> a task with one progress
 * event and a task.done carrying {backup: {id: "bk-1"}}; user.create ->
 * {} and the args are kept; root.enable -> {name: root, password: "s3cret!"};
 * fail.datastore -> datastore_error "Access denied for user"; silent -> no
 * answer; anything else -> not_supported. */
struct serving_agent {
    struct raw_agent agent;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    int requests;
    struct tv *last_args;   /* copy of the last request's args (under lock) */
    char last_op[65];
};
void serving_agent_start(struct serving_agent *s, struct daemon_fixture *f);
void serving_agent_stop(struct serving_agent *s);
/* A copy of the last args (caller frees) and the op into op[65]. */
struct tv *serving_agent_last(struct serving_agent *s, char *op);

/* ---- raw client peer */

void *client_connect(struct daemon_fixture *f);
void client_close(struct daemon_fixture *f, void *client);
void client_send(void *client, const struct tv *msg);
void client_send_raw(void *client, const void *data, size_t len, bool more);
struct tv *client_recv(void *client, int timeout_ms);
/* A request map {v, type: request, id, op, instance?, args?} (args owned). */
struct tv *make_request(const char *id, const char *op, const char *instance, struct tv *args);
/* Send a request and wait for the reply with that id (other messages are
 * dropped); NULL on timeout. */
struct tv *client_call(void *client, const char *id, const char *op, const char *instance, struct tv *args,
                       int timeout_ms);
/* control.instance: true if the instance is listed and connected. */
bool instance_connected(void *client, const char *instance);
/* Poll instance_connected until it matches want or timeout_ms passes. */
bool wait_instance_connected(void *client, const char *instance, bool want, int timeout_ms);
const char *reply_error_code(const struct tv *reply);

/* ---- trovectl */

struct cli_result {
    int exit_code;
    char out[16384];
    char err[16384];
};
/* Run trovectl with these arguments (NULL-terminated) against the fixture's
 * endpoint; stdin_text (may be NULL) is fed to its standard input. */
void run_trovectl(struct daemon_fixture *f, struct cli_result *r, const char *stdin_text, ...);
/* Number of lines in text. */
int count_lines(const char *text);

void sleep_ms(int ms);

#endif
