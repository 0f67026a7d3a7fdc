/*
 * test_control_wire.c - trove-control on the wire: who may connect as an
 * agent, what happens to frames that lie, and whether replies and task
 * events reach the client that asked. Each test starts a real daemon with
 * CURVE on (unless it says otherwise) and raw libzmq peers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zmq.h>

#include "control_harness.h"
#include "trove_control.h"
#include "wire.h"

static int setup_curve(void **state)
{
    struct daemon_fixture *f = calloc(1, sizeof *f);
    fixture_prepare(f, false, NULL);
    fixture_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct daemon_fixture *f = *state;
    int rc = fixture_cleanup(f);
    free(f);
    return rc;
}

static bool listed(void *client, const char *instance)
{
    struct tv *reply = client_call(client, "list", "control.instances", NULL, NULL, 2000);
    assert_non_null(reply);
    assert_true(tv_get_bool(reply, "ok", false));
    const struct tv *list = tv_get(tv_get(reply, "result"), "instances");
    assert_non_null(list);
    bool found = false;
    for (size_t i = 0; i < list->u.a.len; i++)
        found = found || strcmp(tv_get_str(list->u.a.items[i], "instance"), instance) == 0;
    tv_free(reply);
    return found;
}

/* ------------------------------------------------------------ admission */

static void unknown_key_is_refused_and_allowed_key_admitted(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct raw_agent a;

    /* A key that is in no allow-list: the ZAP handler answers 400. */
    agent_connect(&a, f, "inst-a", &f->stranger);
    assert_int_equal(agent_wait_handshake(&a, 5000), 400);
    agent_send_hello(&a, "inst-a");
    agent_send_heartbeat(&a, 1);
    sleep_ms(300);
    assert_false(listed(client, "inst-a"));
    assert_true(fixture_log_contains(f, "key not in the allow-list"));
    agent_close(&a);

    /* The same code with an allowed key is admitted and registered. */
    agent_connect(&a, f, "inst-a", &f->agent_a);
    assert_int_equal(agent_wait_handshake(&a, 5000), 0);
    agent_send_hello(&a, "inst-a");
    assert_true(wait_instance_connected(client, "inst-a", true, 5000));
    assert_true(listed(client, "inst-a"));

    struct tv *args = tv_map();
    tv_set_str(args, "instance", "inst-a");
    struct tv *reply = client_call(client, "show", "control.instance", NULL, args, 2000);
    assert_non_null(reply);
    const struct tv *inst = tv_get(tv_get(reply, "result"), "instance");
    assert_string_equal(tv_get_str(tv_get(inst, "plugin"), "name"), "rawpeer");
    const struct tv *caps = tv_get(inst, "capabilities");
    assert_int_equal(caps->u.a.len, 2);
    assert_string_equal(caps->u.a.items[1]->u.s.ptr, "backup.create");
    assert_int_equal(tv_get_int(inst, "last_heartbeat_ms_ago", 0), -1);
    tv_free(reply);

    /* A heartbeat lands in the registry. */
    agent_send_heartbeat(&a, 7);
    sleep_ms(200);
    args = tv_map();
    tv_set_str(args, "instance", "inst-a");
    reply = client_call(client, "show2", "control.instance", NULL, args, 2000);
    inst = tv_get(tv_get(reply, "result"), "instance");
    assert_string_equal(tv_get_str(inst, "role"), "primary");
    assert_string_equal(tv_get_str(inst, "position"), "0-1-42");
    assert_int_equal(tv_get_int(inst, "seq", 0), 7);
    assert_true(tv_get_int(inst, "last_heartbeat_ms_ago", -1) >= 0);
    tv_free(reply);

    agent_close(&a);
    client_close(f, client);
}

static void plain_text_agent_is_refused_by_curve_server(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct raw_agent a;

    agent_connect(&a, f, "inst-a", NULL);
    assert_true(agent_wait_handshake(&a, 2000) != 0);
    agent_send_hello(&a, "inst-a");
    sleep_ms(300);
    assert_false(listed(client, "inst-a"));
    agent_close(&a);
    client_close(f, client);
}

static void valid_key_claiming_another_instance_is_dropped(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct raw_agent a;

    /* inst-b's key under inst-a's routing id: admitted at the handshake (the
     * key is known), but every message is dropped by the User-Id check. */
    agent_connect(&a, f, "inst-a", &f->agent_b);
    assert_int_equal(agent_wait_handshake(&a, 5000), 0);
    agent_send_hello(&a, "inst-a");
    agent_send_heartbeat(&a, 1);
    sleep_ms(300);
    assert_false(listed(client, "inst-a"));
    assert_false(listed(client, "inst-b"));
    assert_true(fixture_log_contains(f, "authenticated as inst-b"));

    /* And requests for inst-a are not delivered to it. */
    struct tv *reply = client_call(client, "r1", "ping", "inst-a", NULL, 2000);
    assert_non_null(reply);
    assert_string_equal(reply_error_code(reply), "unavailable");
    tv_free(reply);
    struct tv *leaked = agent_recv(&a, 200);
    assert_null(leaked);
    agent_close(&a);

    /* A hello naming another instance than its own routing id is dropped too. */
    agent_connect(&a, f, "inst-b", &f->agent_b);
    assert_int_equal(agent_wait_handshake(&a, 5000), 0);
    agent_send_hello(&a, "inst-a");
    sleep_ms(300);
    assert_false(listed(client, "inst-a"));
    assert_false(listed(client, "inst-b"));
    agent_close(&a);
    client_close(f, client);
}

/* ------------------------------------------------------------ bad frames */

static void expect_invalid(void *client, const char *what)
{
    struct tv *reply = client_recv(client, 2000);
    if (!reply)
        fail_msg("no reply to %s", what);
    assert_string_equal(tv_get_str(reply, "type"), "reply");
    assert_false(tv_get_bool(reply, "ok", true));
    if (strcmp(reply_error_code(reply), "invalid_argument") != 0)
        fail_msg("%s: got %s", what, reply_error_code(reply));
    assert_non_null(tv_get_str(tv_get(reply, "error"), "message"));
    tv_free(reply);
}

static void malformed_client_frames_get_invalid_argument(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);

    /* Not msgpack at all: a map header claiming entries that are not there. */
    client_send_raw(client, "\xdf\xff\xff\xff\xff", 5, false);
    struct tv *reply = client_recv(client, 2000);
    assert_non_null(reply);
    assert_string_equal(tv_get_str(reply, "id"), "");
    assert_string_equal(reply_error_code(reply), "invalid_argument");
    tv_free(reply);

    /* Two frames in one message. */
    client_send_raw(client, "\x80", 1, true);
    client_send_raw(client, "\x80", 1, false);
    expect_invalid(client, "a two-frame message");

    /* Valid msgpack, wrong shapes. */
    struct tv *v = tv_array();
    client_send(client, v);
    tv_free(v);
    expect_invalid(client, "an array");

    struct tv *req = make_request("bad-version", "control.ping", NULL, NULL);
    tv_set_int(req, "v", 99);
    client_send(client, req);
    tv_free(req);
    reply = client_recv(client, 2000);
    assert_non_null(reply);
    assert_string_equal(tv_get_str(reply, "id"), "bad-version");
    assert_string_equal(reply_error_code(reply), "invalid_argument");
    tv_free(reply);

    req = make_request("no-op", "x", NULL, NULL);
    tv_set(req, "op", tv_int(5));
    client_send(client, req);
    tv_free(req);
    expect_invalid(client, "an op that is not a string");

    req = make_request("bad-args", "ping", "inst-a", NULL);
    tv_set(req, "args", tv_str("not a map"));
    client_send(client, req);
    tv_free(req);
    expect_invalid(client, "args that are not a map");

    req = make_request("no-instance", "ping", NULL, NULL);
    client_send(client, req);
    tv_free(req);
    expect_invalid(client, "an agent op without instance");

    req = make_request("bad-instance", "ping", "has space", NULL);
    client_send(client, req);
    tv_free(req);
    expect_invalid(client, "an instance id with a space");

    req = make_request("bad-timeout", "ping", "inst-a", NULL);
    tv_set_str(req, "timeout_ms", "soon");
    client_send(client, req);
    tv_free(req);
    expect_invalid(client, "a timeout that is not an integer");

    /* Still serving. */
    reply = client_call(client, "after", "control.ping", NULL, NULL, 2000);
    assert_non_null(reply);
    assert_true(tv_get_bool(reply, "ok", false));
    assert_true(tv_get_bool(tv_get(reply, "result"), "pong", false));
    tv_free(reply);

    /* A frame larger than ZMQ_MAXMSGSIZE drops that connection only. */
    size_t big = WIRE_MAX_FRAME + 16;
    char *blob = calloc(1, big);
    client_send_raw(client, blob, big, false);
    free(blob);
    client_close(f, client);
    client = client_connect(f);
    reply = client_call(client, "after-big", "control.ping", NULL, NULL, 5000);
    assert_non_null(reply);
    assert_true(tv_get_bool(reply, "ok", false));
    tv_free(reply);
    client_close(f, client);
}

static void unknown_instance_is_unavailable(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct tv *reply = client_call(client, "u1", "user.list", "no-such-instance", NULL, 2000);
    assert_non_null(reply);
    assert_false(tv_get_bool(reply, "ok", true));
    assert_string_equal(reply_error_code(reply), "unavailable");
    assert_non_null(strstr(tv_get_str(tv_get(reply, "error"), "message"), "no-such-instance"));
    tv_free(reply);

    reply = client_call(client, "u2", "control.nothing", NULL, NULL, 2000);
    assert_string_equal(reply_error_code(reply), "not_found");
    tv_free(reply);

    struct tv *args = tv_map();
    tv_set_str(args, "id", "never-ran");
    reply = client_call(client, "u3", "control.task", NULL, args, 2000);
    assert_string_equal(reply_error_code(reply), "not_found");
    tv_free(reply);
    client_close(f, client);
}

/* ------------------------------------------------------------ routing */

static struct tv *expect_request(struct raw_agent *a, const char *op)
{
    struct tv *req = agent_recv(a, 3000);
    if (!req)
        fail_msg("the agent received no %s request", op);
    assert_string_equal(tv_get_str(req, "type"), "request");
    assert_string_equal(tv_get_str(req, "op"), op);
    return req;
}

static void send_reply(struct raw_agent *a, const char *id, const char *marker)
{
    struct tv *r = tv_map();
    tv_set_int(r, "v", 1);
    tv_set_str(r, "type", "reply");
    tv_set_str(r, "id", id);
    tv_set_bool(r, "ok", true);
    tv_set_str(tv_child_map(r, "result"), "marker", marker);
    agent_send(a, r);
    tv_free(r);
}

static void connected_agent(struct daemon_fixture *f, struct raw_agent *a, void *client)
{
    agent_connect(a, f, "inst-a", &f->agent_a);
    assert_int_equal(agent_wait_handshake(a, 5000), 0);
    agent_send_hello(a, "inst-a");
    assert_true(wait_instance_connected(client, "inst-a", true, 5000));
}

static void replies_reach_the_client_that_asked(void **state)
{
    struct daemon_fixture *f = *state;
    void *c1 = client_connect(f), *c2 = client_connect(f);
    struct raw_agent a;
    connected_agent(f, &a, c1);

    struct tv *args = tv_map();
    tv_set_str(args, "name", "alice");
    struct tv *req = make_request("id-one", "user.show", "inst-a", args);
    client_send(c1, req);
    tv_free(req);
    req = make_request("id-two", "user.show", "inst-a", NULL);
    client_send(c2, req);
    tv_free(req);

    /* The agent sees both requests unchanged, with the client's ids. */
    struct tv *r1 = expect_request(&a, "user.show");
    struct tv *r2 = expect_request(&a, "user.show");
    if (strcmp(tv_get_str(r1, "id"), "id-one") != 0) {
        struct tv *t = r1;
        r1 = r2;
        r2 = t;
    }
    assert_string_equal(tv_get_str(r1, "id"), "id-one");
    assert_string_equal(tv_get_str(tv_get(r1, "args"), "name"), "alice");
    assert_string_equal(tv_get_str(r2, "id"), "id-two");

    /* Answer in the other order; each client gets its own answer. */
    send_reply(&a, "id-two", "for-c2");
    send_reply(&a, "id-one", "for-c1");
    struct tv *got1 = client_recv(c1, 2000), *got2 = client_recv(c2, 2000);
    assert_non_null(got1);
    assert_non_null(got2);
    assert_string_equal(tv_get_str(got1, "id"), "id-one");
    assert_string_equal(tv_get_str(tv_get(got1, "result"), "marker"), "for-c1");
    assert_string_equal(tv_get_str(got2, "id"), "id-two");
    assert_string_equal(tv_get_str(tv_get(got2, "result"), "marker"), "for-c2");

    /* A reply nobody waits for (late, or forged) goes nowhere. */
    send_reply(&a, "id-one", "again");
    assert_null(client_recv(c1, 300));

    tv_free(r1);
    tv_free(r2);
    tv_free(got1);
    tv_free(got2);
    agent_close(&a);
    client_close(f, c1);
    client_close(f, c2);
}

static void send_event(struct raw_agent *a, const char *id, const char *event, int percent)
{
    struct tv *e = tv_map();
    tv_set_int(e, "v", 1);
    tv_set_str(e, "type", "event");
    tv_set_str(e, "id", id);
    tv_set_str(e, "event", event);
    if (percent >= 0) {
        tv_set_int(e, "percent", percent);
        tv_set_str(e, "message", "streaming");
    } else {
        tv_set_bool(e, "ok", true);
        tv_set_str(tv_child_map(tv_child_map(e, "result"), "backup"), "id", "bk-9");
    }
    agent_send(a, e);
    tv_free(e);
}

static void task_events_reach_the_client_that_started_the_task(void **state)
{
    struct daemon_fixture *f = *state;
    void *starter = client_connect(f), *bystander = client_connect(f);
    struct raw_agent a;
    connected_agent(f, &a, starter);

    struct tv *req = make_request("task-1", "backup.create", "inst-a", NULL);
    client_send(starter, req);
    tv_free(req);
    struct tv *r = expect_request(&a, "backup.create");
    tv_free(r);

    struct tv *accepted = tv_map();
    tv_set_int(accepted, "v", 1);
    tv_set_str(accepted, "type", "reply");
    tv_set_str(accepted, "id", "task-1");
    tv_set_bool(accepted, "ok", true);
    tv_set_str(tv_child_map(accepted, "result"), "task", "task-1");
    tv_set_str(tv_child_map(accepted, "result"), "state", "running");
    agent_send(&a, accepted);
    tv_free(accepted);
    send_event(&a, "task-1", "task.progress", 10);
    send_event(&a, "task-1", "task.progress", 90);
    send_event(&a, "task-1", "task.done", -1);

    struct tv *m = client_recv(starter, 2000);
    assert_non_null(m);
    assert_string_equal(tv_get_str(m, "type"), "reply");
    assert_string_equal(tv_get_str(tv_get(m, "result"), "state"), "running");
    tv_free(m);
    m = client_recv(starter, 2000);
    assert_non_null(m);
    assert_string_equal(tv_get_str(m, "event"), "task.progress");
    assert_int_equal(tv_get_int(m, "percent", -1), 10);
    tv_free(m);
    m = client_recv(starter, 2000);
    assert_int_equal(tv_get_int(m, "percent", -1), 90);
    tv_free(m);
    m = client_recv(starter, 2000);
    assert_non_null(m);
    assert_string_equal(tv_get_str(m, "event"), "task.done");
    assert_true(tv_get_bool(m, "ok", false));
    tv_free(m);
    assert_null(client_recv(bystander, 300));

    /* The outcome is kept for a client that comes back later. */
    struct tv *args = tv_map();
    tv_set_str(args, "id", "task-1");
    struct tv *reply = client_call(bystander, "ask", "control.task", NULL, args, 2000);
    assert_non_null(reply);
    assert_true(tv_get_bool(reply, "ok", false));
    const struct tv *done = tv_get(reply, "result");
    assert_string_equal(tv_get_str(done, "event"), "task.done");
    assert_string_equal(tv_get_str(tv_get(tv_get(done, "result"), "backup"), "id"), "bk-9");
    tv_free(reply);

    agent_close(&a);
    client_close(f, starter);
    client_close(f, bystander);
}

static void silent_agent_times_out(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct raw_agent a;
    connected_agent(f, &a, client);

    struct tv *req = make_request("slow", "user.list", "inst-a", NULL);
    tv_set_int(req, "timeout_ms", 300);
    client_send(client, req);
    tv_free(req);
    struct tv *r = expect_request(&a, "user.list");
    tv_free(r);
    struct tv *reply = client_recv(client, 3000);
    assert_non_null(reply);
    assert_string_equal(tv_get_str(reply, "id"), "slow");
    assert_string_equal(reply_error_code(reply), "timeout");
    tv_free(reply);

    /* The late answer is dropped, and the daemon keeps routing. */
    send_reply(&a, "slow", "too late");
    assert_null(client_recv(client, 300));
    req = make_request("fast", "user.list", "inst-a", NULL);
    client_send(client, req);
    tv_free(req);
    r = expect_request(&a, "user.list");
    tv_free(r);
    send_reply(&a, "fast", "in time");
    reply = client_recv(client, 2000);
    assert_non_null(reply);
    assert_string_equal(tv_get_str(reply, "id"), "fast");
    assert_string_equal(tv_get_str(tv_get(reply, "result"), "marker"), "in time");
    tv_free(reply);
    agent_close(&a);
    client_close(f, client);
}

static void bye_makes_the_instance_unavailable(void **state)
{
    struct daemon_fixture *f = *state;
    void *client = client_connect(f);
    struct raw_agent a;
    connected_agent(f, &a, client);

    struct tv *bye = tv_map();
    tv_set_int(bye, "v", 1);
    tv_set_str(bye, "type", "bye");
    agent_send(&a, bye);
    tv_free(bye);
    assert_true(wait_instance_connected(client, "inst-a", false, 3000));
    struct tv *reply = client_call(client, "after-bye", "ping", "inst-a", NULL, 2000);
    assert_string_equal(reply_error_code(reply), "unavailable");
    tv_free(reply);
    agent_close(&a);
    client_close(f, client);
}

/* ------------------------------------------------------------ library */

struct progress_seen {
    int calls;
    int last_percent;
};

static void on_progress(void *user, const char *task_id, int percent, const char *message)
{
    struct progress_seen *p = user;
    assert_non_null(task_id);
    assert_string_equal(message, "copying data");
    p->calls++;
    p->last_percent = percent;
}

static void library_call_follows_a_task_to_its_end(void **state)
{
    struct daemon_fixture *f = *state;
    struct serving_agent s;
    struct trove_control_error err;
    struct tv *result = NULL;
    serving_agent_start(&s, f);

    struct trove_control *tc = trove_control_connect(f->client_endpoint, 2000, &err);
    assert_non_null(tc);

    assert_int_equal(trove_control_call(tc, "inst-a", "ping", NULL, 3000, NULL, NULL, &result, &err), TROVE_OK);
    assert_true(tv_get_bool(result, "pong", false));
    assert_int_equal(strlen(trove_control_last_id(tc)), TROVE_CONTROL_ID_LEN);
    tv_free(result);

    struct progress_seen seen = {0, -2};
    assert_int_equal(trove_control_call(tc, "inst-a", "backup.create", NULL, 5000, on_progress, &seen, &result, &err),
                     TROVE_OK);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.last_percent, 50);
    assert_string_equal(tv_get_str(tv_get(result, "backup"), "id"), "bk-1");
    tv_free(result);

    /* Errors keep their code and the database's message. */
    assert_int_equal(trove_control_call(tc, "inst-a", "fail.datastore", NULL, 3000, NULL, NULL, &result, &err),
                     TROVE_EDATASTORE);
    assert_null(result);
    assert_string_equal(err.code, "datastore_error");
    assert_non_null(strstr(err.message, "Access denied"));

    assert_int_equal(trove_control_call(tc, "nobody", "ping", NULL, 3000, NULL, NULL, &result, &err),
                     TROVE_EUNAVAIL);

    /* A silent agent: the control plane's timeout answer arrives. */
    assert_int_equal(trove_control_call(tc, "inst-a", "silent", NULL, 400, NULL, NULL, &result, &err),
                     TROVE_ETIMEOUT);

    char *json = NULL;
    assert_int_equal(trove_control_call_json(tc, NULL, "control.ping", "{}", 2000, NULL, NULL, &json, &err),
                     TROVE_OK);
    assert_string_equal(json, "{\"pong\":true}");
    free(json);
    assert_int_equal(trove_control_call_json(tc, "inst-a", "ping", "[1,", 2000, NULL, NULL, &json, &err),
                     TROVE_EINVAL);

    trove_control_close(tc);
    serving_agent_stop(&s);
}

static void library_connection_survives_a_control_plane_restart(void **state)
{
    struct daemon_fixture *f = *state;
    struct trove_control_error err;
    struct tv *result = NULL;
    struct trove_control *tc = trove_control_connect(f->client_endpoint, 2000, &err);
    assert_non_null(tc);
    assert_int_equal(trove_control_call(tc, NULL, "control.ping", NULL, 2000, NULL, NULL, &result, &err), TROVE_OK);
    tv_free(result);

    assert_int_equal(fixture_stop_daemon(f), 0);
    fixture_start(f);
    /* The disconnect is history by now; libzmq reconnected underneath. */
    assert_int_equal(trove_control_call(tc, NULL, "control.ping", NULL, 3000, NULL, NULL, &result, &err), TROVE_OK);
    assert_true(tv_get_bool(result, "pong", false));
    tv_free(result);
    trove_control_close(tc);
}

static void library_reports_a_missing_control_plane(void **state)
{
    (void)state;
    struct trove_control_error err;
    struct trove_control *tc = trove_control_connect("ipc:///nonexistent/trove/control.sock", 300, &err);
    assert_null(tc);
    assert_int_equal(err.status, TROVE_EUNAVAIL);
    assert_string_equal(err.code, "unavailable");
    assert_non_null(strstr(err.message, "cannot connect"));
}

/* ------------------------------------------------------------ lifecycle */

static void sigterm_stops_cleanly(void **state)
{
    struct daemon_fixture *f = *state;
    int status = fixture_stop_daemon(f);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void plaintext_mode_is_loopback_only_and_loud(void **state)
{
    (void)state;
    struct daemon_fixture f;

    /* Loopback: starts, warns, and a plain-text agent works. */
    fixture_prepare(&f, true, NULL);
    fixture_start(&f);
    assert_true(fixture_log_contains(&f, "PLAIN TEXT"));
    void *client = client_connect(&f);
    struct raw_agent a;
    agent_connect(&a, &f, "dev-1", NULL);
    agent_send_hello(&a, "dev-1");
    assert_true(wait_instance_connected(client, "dev-1", true, 5000));
    agent_close(&a);
    client_close(&f, client);
    assert_int_equal(fixture_cleanup(&f), 0);

    /* Any other address: refuses to start. */
    fixture_prepare(&f, true, NULL);
    char config[1024];
    snprintf(config, sizeof config,
             "[control]\nagent_endpoint = tcp://0.0.0.0:5999\nstate_dir = %s\nplaintext_dev = true\n", f.state_dir);
    FILE *out = fopen(f.config, "w");
    fputs(config, out);
    fclose(out);
    assert_int_equal(fixture_run_daemon_expecting_exit(&f), 1);
    assert_true(fixture_log_contains(&f, "plaintext_dev is only allowed"));
    fixture_cleanup(&f);

    /* CURVE mode without keys: refuses to start. */
    fixture_prepare(&f, false, NULL);
    snprintf(config, sizeof config, "[control]\nagent_endpoint = %s\nstate_dir = %s\n", f.agent_endpoint,
             f.state_dir);
    out = fopen(f.config, "w");
    fputs(config, out);
    fclose(out);
    assert_int_equal(fixture_run_daemon_expecting_exit(&f), 1);
    assert_true(fixture_log_contains(&f, "server_key_file is required"));
    fixture_cleanup(&f);
}

static void unreadable_or_bad_files_stop_start_up(void **state)
{
    (void)state;
    struct daemon_fixture f;
    char path[256];

    /* A server key file others may read. */
    fixture_prepare(&f, false, NULL);
    snprintf(path, sizeof path, "%s/server.key", f.dir);
    chmod(path, 0644);
    assert_int_equal(fixture_run_daemon_expecting_exit(&f), 1);
    assert_true(fixture_log_contains(&f, "server.key"));
    fixture_cleanup(&f);

    /* A malformed allow-list line. */
    fixture_prepare(&f, false, NULL);
    snprintf(path, sizeof path, "%s/allowed_agents", f.dir);
    FILE *out = fopen(path, "a");
    fputs("inst-c not-a-key\n", out);
    fclose(out);
    assert_int_equal(fixture_run_daemon_expecting_exit(&f), 1);
    assert_true(fixture_log_contains(&f, "allowed_agents:4: invalid public key"));
    fixture_cleanup(&f);

    /* A misspelt key in the config. */
    fixture_prepare(&f, false, "plaintext_devv = true");
    assert_int_equal(fixture_run_daemon_expecting_exit(&f), 1);
    assert_true(fixture_log_contains(&f, "unknown key 'plaintext_devv'"));
    fixture_cleanup(&f);
}

static void a_second_daemon_on_the_same_state_dir_is_refused(void **state)
{
    struct daemon_fixture *f = *state;
    assert_int_equal(fixture_run_daemon_expecting_exit(f), 1);
    assert_true(fixture_log_contains(f, "another trove-control is running"));
    /* The first one still serves. */
    void *client = client_connect(f);
    struct tv *reply = client_call(client, "still", "control.ping", NULL, NULL, 2000);
    assert_non_null(reply);
    tv_free(reply);
    client_close(f, client);
}

int main(int argc, char **argv)
{
    if (!harness_take_args(argc, argv))
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unknown_key_is_refused_and_allowed_key_admitted, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(plain_text_agent_is_refused_by_curve_server, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(valid_key_claiming_another_instance_is_dropped, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(malformed_client_frames_get_invalid_argument, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(unknown_instance_is_unavailable, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(replies_reach_the_client_that_asked, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(task_events_reach_the_client_that_started_the_task, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(silent_agent_times_out, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(bye_makes_the_instance_unavailable, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(library_call_follows_a_task_to_its_end, setup_curve, teardown),
        cmocka_unit_test_setup_teardown(library_connection_survives_a_control_plane_restart, setup_curve, teardown),
        cmocka_unit_test(library_reports_a_missing_control_plane),
        cmocka_unit_test_setup_teardown(sigterm_stops_cleanly, setup_curve, teardown),
        cmocka_unit_test(plaintext_mode_is_loopback_only_and_loud),
        cmocka_unit_test(unreadable_or_bad_files_stop_start_up),
        cmocka_unit_test_setup_teardown(a_second_daemon_on_the_same_state_dir_is_refused, setup_curve, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
