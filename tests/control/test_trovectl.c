/*
 * test_trovectl.c - trovectl as a user meets it: the verbs reach the agent
 * as the protocol's ops with the right arguments, results come back as
 * tables, lines or --json, long operations wait for task.done, and every
 * failure is one line on stderr with exit 1 (operation) or 2 (usage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_harness.h"
#include "input.h"
#include "json.h"

struct cli_fixture {
    struct daemon_fixture daemon;
    struct serving_agent agent;
    struct cli_result r;
};

static int setup(void **state)
{
    struct cli_fixture *f = calloc(1, sizeof *f);
    fixture_prepare(&f->daemon, false, NULL);
    fixture_start(&f->daemon);
    serving_agent_start(&f->agent, &f->daemon);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct cli_fixture *f = *state;
    serving_agent_stop(&f->agent);
    int rc = fixture_cleanup(&f->daemon);
    free(f);
    return rc;
}

#define trovectl(f, ...) run_trovectl(&(f)->daemon, &(f)->r, NULL, __VA_ARGS__, (const char *)NULL)

/* Exactly one line on stderr, starting with prefix. */
static void assert_one_error_line(const struct cli_result *r, const char *prefix)
{
    if (count_lines(r->err) != 1 || strncmp(r->err, prefix, strlen(prefix)) != 0)
        fail_msg("expected one line starting '%s', got '%s'", prefix, r->err);
}

static struct tv *last_request(struct cli_fixture *f, const char *want_op)
{
    char op[65];
    struct tv *args = serving_agent_last(&f->agent, op);
    assert_non_null(args);
    assert_string_equal(op, want_op);
    return args;
}

/* ------------------------------------------------------------ success */

static void ping_and_status_lines(void **state)
{
    struct cli_fixture *f = *state;
    trovectl(f, "ping", "inst-a");
    assert_int_equal(f->r.exit_code, 0);
    assert_string_equal(f->r.out, "pong from inst-a\n");
    assert_string_equal(f->r.err, "");

    trovectl(f, "list");
    assert_int_equal(f->r.exit_code, 0);
    assert_non_null(strstr(f->r.out, "INSTANCE"));
    assert_non_null(strstr(f->r.out, "inst-a"));
    assert_non_null(strstr(f->r.out, "rawpeer 1.0"));

    trovectl(f, "show", "inst-a");
    assert_int_equal(f->r.exit_code, 0);
    assert_non_null(strstr(f->r.out, "capabilities: ping, backup.create\n"));
}

static void user_create_sends_every_argument_and_prints_no_password(void **state)
{
    struct cli_fixture *f = *state;
    const char *password = "p'a\"s\\s word";
    trovectl(f, "user-create", "inst-a", "bob", password, "--host", "10.0.0.%", "--databases", "shop,blog",
             "--option", "rules=+@read", "--option=max=3");
    assert_int_equal(f->r.exit_code, 0);
    assert_null(strstr(f->r.out, "word"));
    assert_null(strstr(f->r.err, "word"));

    struct tv *args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "name"), "bob");
    assert_string_equal(tv_get_str(args, "password"), password);
    assert_string_equal(tv_get_str(args, "host"), "10.0.0.%");
    const struct tv *dbs = tv_get(args, "databases");
    assert_int_equal(dbs->u.a.len, 2);
    assert_string_equal(dbs->u.a.items[1]->u.s.ptr, "blog");
    assert_string_equal(tv_get_str(tv_get(args, "options"), "rules"), "+@read");
    assert_string_equal(tv_get_str(tv_get(args, "options"), "max"), "3");
    tv_free(args);

    /* "-" reads the password from standard input, off the command line. */
    run_trovectl(&f->daemon, &f->r, "from-stdin\n", "user-create", "inst-a", "carol", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 0);
    args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "password"), "from-stdin");
    assert_null(tv_get(args, "host"));
    tv_free(args);
}

/* A secret of n bytes: printable, position-dependent, so any cut shows. */
static char *make_secret(size_t n)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('!' + (i * 7) % 90);
    s[n] = '\0';
    return s;
}

/* The last request was still user.create for `name`: nothing was sent since. */
static void assert_nothing_sent_after(struct cli_fixture *f, const char *name)
{
    struct tv *args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "name"), name);
    tv_free(args);
}

static void secrets_on_stdin_arrive_whole_or_are_refused(void **state)
{
    struct cli_fixture *f = *state;
    char too_long[128], line[INPUT_PASSWORD_MAX + 3];
    snprintf(too_long, sizeof too_long, "trovectl: usage: password is longer than %d bytes\n", INPUT_PASSWORD_MAX);

    /* The longest password the agent takes arrives byte for byte. */
    char *longest = make_secret(INPUT_PASSWORD_MAX);
    snprintf(line, sizeof line, "%s\n", longest);
    run_trovectl(&f->daemon, &f->r, line, "user-create", "inst-a", "longest", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 0);
    struct tv *args = last_request(f, "user.create");
    assert_int_equal(strlen(tv_get_str(args, "password")), INPUT_PASSWORD_MAX);
    assert_string_equal(tv_get_str(args, "password"), longest);
    tv_free(args);

    /* Longer ones (1,100 and 2,000 bytes) are refused with the agent's limit
     * and words, whether on stdin or on the command line; nothing is sent. */
    static const size_t over[] = {INPUT_PASSWORD_MAX + 1, 1100, 2000};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        char *secret = make_secret(over[i]);
        char *text = malloc(over[i] + 2);
        snprintf(text, over[i] + 2, "%s\n", secret);
        run_trovectl(&f->daemon, &f->r, text, "user-create", "inst-a", "cut", "-", (const char *)NULL);
        assert_int_equal(f->r.exit_code, 2);
        assert_string_equal(f->r.err, too_long);
        run_trovectl(&f->daemon, &f->r, text, "user-change-password", "inst-a", "cut", "-", (const char *)NULL);
        assert_string_equal(f->r.err, too_long);
        run_trovectl(&f->daemon, &f->r, text, "root-enable", "inst-a", "--password", "-", (const char *)NULL);
        assert_string_equal(f->r.err, too_long);
        run_trovectl(&f->daemon, &f->r, text, "replica-attach", "inst-a", "--source-host", "h", "--source-port",
                     "1", "--source-user", "u", "--source-password", "-", (const char *)NULL);
        assert_string_equal(f->r.err, too_long);
        run_trovectl(&f->daemon, &f->r, NULL, "user-create", "inst-a", "cut", secret, (const char *)NULL);
        assert_string_equal(f->r.err, too_long);
        free(text);
        free(secret);
    }
    assert_nothing_sent_after(f, "longest");

    /* root-enable --password - returns (and sets) exactly the password given. */
    run_trovectl(&f->daemon, &f->r, line, "root-enable", "inst-a", "--password", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 0);
    args = last_request(f, "root.enable");
    assert_string_equal(tv_get_str(args, "password"), longest);
    tv_free(args);
    free(longest);

    /* Only the line end goes: "\r\n" or "\n", never a '\r' inside. */
    run_trovectl(&f->daemon, &f->r, "in\rside\r\n", "user-create", "inst-a", "cr", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 0);
    args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "password"), "in\rside");
    tv_free(args);

    run_trovectl(&f->daemon, &f->r, "", "user-create", "inst-a", "none", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 2);
    assert_string_equal(f->r.err, "trovectl: usage: expected password on standard input\n");
    assert_nothing_sent_after(f, "cr");
}

static void json_arguments_come_from_stdin_or_a_file(void **state)
{
    struct cli_fixture *f = *state;
    const char *json = "{\"name\": \"erin\", \"password\": \"never on argv\"}";

    run_trovectl(&f->daemon, &f->r, json, "call", "inst-a", "user.create", "-", (const char *)NULL);
    assert_int_equal(f->r.exit_code, 0);
    struct tv *args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "name"), "erin");
    assert_string_equal(tv_get_str(args, "password"), "never on argv");
    tv_free(args);

    char path[256], at[260];
    snprintf(path, sizeof path, "%s/args.json", f->daemon.dir);
    snprintf(at, sizeof at, "@%s", path);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("{\"name\": \"frank\", \"password\": \"from a file\"}\n", file);
    fclose(file);
    trovectl(f, "call", "inst-a", "user.create", at);
    assert_int_equal(f->r.exit_code, 0);
    args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "name"), "frank");
    assert_string_equal(tv_get_str(args, "password"), "from a file");
    tv_free(args);

    trovectl(f, "--timeout", "1", "prepare", "inst-a", "--json-args", at);
    args = last_request(f, "prepare");
    assert_string_equal(tv_get_str(args, "password"), "from a file");
    tv_free(args);

    snprintf(at, sizeof at, "@%s/missing.json", f->daemon.dir);
    trovectl(f, "call", "inst-a", "user.create", at);
    assert_int_equal(f->r.exit_code, 2);
    assert_one_error_line(&f->r, "trovectl: usage: cannot open ");

    /* A \u0000 escape is valid JSON, refused in the project's own words. */
    trovectl(f, "call", "inst-a", "user.create", "{\"name\": \"nul\\u0000byte\"}");
    assert_int_equal(f->r.exit_code, 2);
    assert_one_error_line(&f->r, "trovectl: usage: JSON-ARGS: strings must not contain NUL (\\u0000)");
    assert_null(strstr(f->r.err, "JSON_ALLOW_NUL"));
    assert_null(strstr(f->r.err, "not valid JSON"));
    args = last_request(f, "prepare");
    tv_free(args);
}

static void long_operation_waits_for_task_done(void **state)
{
    struct cli_fixture *f = *state;
    trovectl(f, "--timeout", "10", "backup-create", "inst-a", "--incremental", "--parent", "bk-0", "--id", "bk-1");
    assert_int_equal(f->r.exit_code, 0);
    assert_non_null(strstr(f->r.out, "id: bk-1\n"));
    assert_non_null(strstr(f->r.out, "state: complete\n"));
    assert_non_null(strstr(f->r.err, "backup-create:  50% copying data"));
    struct tv *args = last_request(f, "backup.create");
    assert_string_equal(tv_get_str(args, "kind"), "incremental");
    assert_string_equal(tv_get_str(args, "parent"), "bk-0");
    assert_string_equal(tv_get_str(args, "backup_id"), "bk-1");
    tv_free(args);

    /* --json: only the result on stdout, no progress lines. */
    trovectl(f, "--json", "backup-create", "inst-a", "--timeout=10");
    assert_int_equal(f->r.exit_code, 0);
    assert_string_equal(f->r.err, "");
    struct tv *out = NULL;
    char why[200];
    assert_int_equal(json_to_tv(f->r.out, &out, why, sizeof why), 0);
    assert_string_equal(tv_get_str(tv_get(out, "backup"), "id"), "bk-1");
    tv_free(out);
}

static void root_enable_prints_the_password_it_was_asked_for(void **state)
{
    struct cli_fixture *f = *state;
    trovectl(f, "root-enable", "inst-a");
    assert_int_equal(f->r.exit_code, 0);
    assert_string_equal(f->r.out, "name: root\npassword: s3cret!\n");

    /* The generic escape hatch masks secrets in human output... */
    trovectl(f, "call", "inst-a", "root.enable", "{}");
    assert_int_equal(f->r.exit_code, 0);
    assert_null(strstr(f->r.out, "s3cret"));
    assert_non_null(strstr(f->r.out, "password: ********"));
    /* ...and passes JSON arguments through unchanged. */
    trovectl(f, "call", "inst-a", "user.create", "{\"name\":\"dave\",\"databases\":[\"x\"]}");
    assert_int_equal(f->r.exit_code, 0);
    struct tv *args = last_request(f, "user.create");
    assert_string_equal(tv_get_str(args, "name"), "dave");
    tv_free(args);
}

static void verbs_map_to_protocol_arguments(void **state)
{
    struct cli_fixture *f = *state;
    struct tv *args;

    trovectl(f, "replication-read-only", "inst-a", "on");
    args = last_request(f, "replication.read_only");
    assert_true(tv_get_bool(args, "read_only", false));
    tv_free(args);

    trovectl(f, "configuration-apply", "inst-a", "max_connections=200", "sql_mode=");
    args = last_request(f, "config.apply");
    assert_string_equal(tv_get_str(tv_get(args, "values"), "max_connections"), "200");
    assert_string_equal(tv_get_str(tv_get(args, "values"), "sql_mode"), "");
    tv_free(args);

    trovectl(f, "replica-attach", "inst-a", "--source-host", "10.1.1.1", "--source-port", "3306", "--source-user",
             "repl", "--source-password", "pw", "--snapshot", "bk-1", "--meta", "gtid=0-1-5");
    args = last_request(f, "replication.attach");
    const struct tv *source = tv_get(args, "source");
    assert_string_equal(tv_get_str(source, "host"), "10.1.1.1");
    assert_int_equal(tv_get_int(source, "port", 0), 3306);
    assert_string_equal(tv_get_str(source, "password"), "pw");
    assert_string_equal(tv_get_str(args, "snapshot"), "bk-1");
    assert_string_equal(tv_get_str(tv_get(args, "meta"), "gtid"), "0-1-5");
    tv_free(args);

    trovectl(f, "replication-wait", "inst-a", "0-1-9", "--wait-timeout", "5");
    args = last_request(f, "replication.wait");
    assert_string_equal(tv_get_str(args, "position"), "0-1-9");
    assert_int_equal(tv_get_int(args, "timeout_ms", 0), 5000);
    tv_free(args);

    trovectl(f, "user-grant-access", "inst-a", "bob", "shop", "blog", "--host", "%");
    args = last_request(f, "user.grant");
    assert_int_equal(tv_get(args, "databases")->u.a.len, 2);
    assert_string_equal(tv_get_str(args, "host"), "%");
    tv_free(args);

    trovectl(f, "promote", "inst-a");
    args = last_request(f, "replication.promote");
    tv_free(args);
}

/* ------------------------------------------------------------ failures */

static void operation_errors_are_one_line_and_exit_1(void **state)
{
    struct cli_fixture *f = *state;

    trovectl(f, "ping", "nowhere");
    assert_int_equal(f->r.exit_code, 1);
    assert_string_equal(f->r.err, "trovectl: unavailable: instance nowhere is not connected\n");
    assert_string_equal(f->r.out, "");

    /* The database's own words reach the user. */
    trovectl(f, "call", "inst-a", "fail.datastore");
    assert_int_equal(f->r.exit_code, 1);
    assert_string_equal(f->r.err, "trovectl: datastore_error: Access denied for user 'x'@'%'\n");

    trovectl(f, "database-list", "inst-a");
    assert_int_equal(f->r.exit_code, 1);
    assert_one_error_line(&f->r, "trovectl: not_supported: ");

    /* --json adds the error object on stdout. */
    trovectl(f, "--json", "ping", "nowhere");
    assert_int_equal(f->r.exit_code, 1);
    assert_one_error_line(&f->r, "trovectl: unavailable: ");
    struct tv *out = NULL;
    char why[200];
    assert_int_equal(json_to_tv(f->r.out, &out, why, sizeof why), 0);
    assert_false(tv_get_bool(out, "ok", true));
    assert_string_equal(tv_get_str(tv_get(out, "error"), "code"), "unavailable");
    tv_free(out);

    /* A silent agent: the deadline is the user's. */
    trovectl(f, "--timeout", "1", "call", "inst-a", "silent");
    assert_int_equal(f->r.exit_code, 1);
    assert_one_error_line(&f->r, "trovectl: timeout: ");
}

static void usage_errors_are_one_line_and_exit_2(void **state)
{
    struct cli_fixture *f = *state;
    static const char *const cases[][6] = {
        {"frobnicate", NULL},
        {"user-create", "inst-a", "bob", NULL},
        {"ping", "inst-a", "extra", NULL},
        {"ping", "inst-a", "--host", "x", NULL},
        {"backup-create", "inst-a", "--incremental", NULL},
        {"replication-read-only", "inst-a", "maybe", NULL},
        {"configuration-apply", "inst-a", "novalue", NULL},
        {"replica-attach", "inst-a", "--source-host", "h", NULL},
        {"call", "inst-a", "ping", "{broken", NULL},
        {"--timeout", "soon", "ping", "inst-a", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *c = cases[i];
        run_trovectl(&f->daemon, &f->r, NULL, c[0], c[1], c[2], c[3], c[4], c[5]);
        if (f->r.exit_code != 2)
            fail_msg("case %zu (%s): exit %d, stderr %s", i, c[0], f->r.exit_code, f->r.err);
        assert_one_error_line(&f->r, "trovectl: usage: ");
    }
    /* Nothing reached the agent for any of them. */
    char op[65];
    struct tv *args = serving_agent_last(&f->agent, op);
    assert_null(args);
}

static void missing_control_plane_is_unavailable(void **state)
{
    struct cli_fixture *f = *state;
    struct cli_result *r = &f->r;
    int status = fixture_stop_daemon(&f->daemon);
    assert_int_equal(status, 0);
    run_trovectl(&f->daemon, r, NULL, "--timeout", "1", "ping", "inst-a", (const char *)NULL);
    assert_int_equal(r->exit_code, 1);
    assert_one_error_line(r, "trovectl: unavailable: cannot connect to the control plane");
}

int main(int argc, char **argv)
{
    if (!harness_take_args(argc, argv))
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ping_and_status_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(user_create_sends_every_argument_and_prints_no_password, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_on_stdin_arrive_whole_or_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(json_arguments_come_from_stdin_or_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(long_operation_waits_for_task_done, setup, teardown),
        cmocka_unit_test_setup_teardown(root_enable_prints_the_password_it_was_asked_for, setup, teardown),
        cmocka_unit_test_setup_teardown(verbs_map_to_protocol_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(operation_errors_are_one_line_and_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_errors_are_one_line_and_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_control_plane_is_unavailable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
