/*
 * test_support.c - the plugin support library, as a plugin uses it: a
 * settings table, files written atomically (for the engine's user too) and
 * locked, temporaries of dead processes removed, an engine process started,
 * found, waited for and stopped (also when it ignores SIGTERM or dies during
 * start), guest logs served from a file, the string builder, quoting and
 * SHA-256. A small fake host stands in for the agent's services.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trove_plugin_support.h"

/* ------------------------------------------------------------ a fake host */

struct trove_call {
    int status;
    char message[TROVE_FAIL_MAX];
    char log[4096];
    bool cancel;
};

struct trove_sink {
    char data[4096];
    size_t len;
};

static struct trove_call *log_target;

static void fake_log(enum trove_log_level level, const char *fmt, ...)
{
    va_list ap;
    (void)level;
    if (!log_target)
        return;
    size_t n = strlen(log_target->log);
    va_start(ap, fmt);
    vsnprintf(log_target->log + n, sizeof(log_target->log) - n, fmt, ap);
    va_end(ap);
}

static int fake_fail(struct trove_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
    va_end(ap);
    call->status = status;
    return status;
}

static void fake_progress(struct trove_call *call, int percent, const char *fmt, ...)
{
    (void)call, (void)percent, (void)fmt;
}

static bool fake_cancelled(struct trove_call *call)
{
    return call->cancel;
}

static int fake_sink_write(struct trove_sink *sink, const void *data, size_t len)
{
    if (sink->len + len > sizeof(sink->data))
        return TROVE_EINVAL;
    memcpy(sink->data + sink->len, data, len);
    sink->len += len;
    return TROVE_OK;
}

static const struct trove_host host = {
    .abi_major = TROVE_ABI_MAJOR,
    .abi_minor = TROVE_ABI_MINOR,
    .size = sizeof(struct trove_host),
    .log = fake_log,
    .fail = fake_fail,
    .progress = fake_progress,
    .cancelled = fake_cancelled,
    .sink_write = fake_sink_write,
};

static char dir[] = "/tmp/tps-test-XXXXXX";

static const char *in_dir(const char *name)
{
    static char path[4][512];
    static int next;
    next = (next + 1) % 4;
    snprintf(path[next], sizeof(path[next]), "%s/%s", dir, name);
    return path[next];
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tps_remove_tree(dir);
}

/* ------------------------------------------------------------ settings */

struct demo_settings {
    char *host;
    int64_t port;
    bool managed;
    char *password;
    char *datadir;
};

static const struct tps_setting DEMO[] = {
    TPS_SETTING_STR(struct demo_settings, host, "host", "127.0.0.1", TPS_PLAIN | TPS_NONEMPTY),
    TPS_SETTING_INT(struct demo_settings, port, "port", "4000", 1, 65535),
    TPS_SETTING_BOOL(struct demo_settings, managed, "manage_server", "true"),
    TPS_SETTING_STR(struct demo_settings, password, "admin_password", NULL, TPS_REQUIRED | TPS_SECRET),
    TPS_SETTING_STR(struct demo_settings, datadir, "datadir", "/var/lib/demo", TPS_ABSOLUTE),
};
#define N_DEMO (sizeof(DEMO) / sizeof(DEMO[0]))

static int parse(const struct trove_kv *kv, size_t n, struct demo_settings *s, char *err)
{
    memset(s, 0, sizeof(*s));
    return tps_settings_parse(DEMO, N_DEMO, kv, n, s, "demo", err, 256);
}

static void test_settings_defaults_and_values(void **state)
{
    (void)state;
    struct demo_settings s;
    char err[256] = "";
    const struct trove_kv kv[] = {{"admin_password", "p\"w'd"}, {"port", "5000"}, {"manage_server", "OFF"},
                                  {"port", "5001"}};
    assert_int_equal(parse(kv, 4, &s, err), TROVE_OK);
    assert_string_equal(s.host, "127.0.0.1");
    assert_int_equal(s.port, 5001);   /* the last of repeated keys wins */
    assert_false(s.managed);
    assert_string_equal(s.password, "p\"w'd");   /* secrets may hold quotes: they are never pasted */
    assert_string_equal(s.datadir, "/var/lib/demo");
    tps_settings_free(DEMO, N_DEMO, &s);
    assert_null(s.host);
    assert_null(s.password);
}

static void test_settings_name_every_unknown_key(void **state)
{
    (void)state;
    struct demo_settings s;
    char err[256] = "";
    const struct trove_kv kv[] = {{"admin_password", "x"}, {"colour", "red"}, {"prot", "1"}, {"colour", "blue"}};
    assert_int_equal(parse(kv, 4, &s, err), TROVE_EINVAL);
    assert_string_equal(err, "unknown [datastore] settings for the demo plugin: colour, prot");
    const struct trove_kv one[] = {{"admin_password", "x"}, {"%n%s", "1"}};
    assert_int_equal(parse(one, 2, &s, err), TROVE_EINVAL);
    assert_string_equal(err, "unknown [datastore] setting for the demo plugin: %n%s");
}

static void test_settings_refuse_bad_values(void **state)
{
    (void)state;
    struct demo_settings s;
    char err[256];
    const struct trove_kv none[] = {{"port", "1"}};
    assert_int_equal(parse(none, 1, &s, err), TROVE_EINVAL);
    assert_non_null(strstr(err, "admin_password is required"));
    assert_non_null(strstr(err, "secrets file"));
    const struct trove_kv port[] = {{"admin_password", "x"}, {"port", "70000"}};
    assert_int_equal(parse(port, 2, &s, err), TROVE_EINVAL);
    assert_non_null(strstr(err, "port must be an integer in 1..65535, not \"70000\""));
    const struct trove_kv quote[] = {{"admin_password", "x"}, {"host", "a\"b"}};
    assert_int_equal(parse(quote, 2, &s, err), TROVE_EINVAL);
    assert_non_null(strstr(err, "double quotes"));
    const struct trove_kv nl[] = {{"admin_password", "se\ncret"}};
    assert_int_equal(parse(nl, 1, &s, err), TROVE_EINVAL);
    assert_null(strstr(err, "se\ncret"));
    const struct trove_kv rel[] = {{"admin_password", "x"}, {"datadir", "data"}};
    assert_int_equal(parse(rel, 2, &s, err), TROVE_EINVAL);
    assert_non_null(strstr(err, "absolute path"));
    const struct trove_kv boolean[] = {{"admin_password", "x"}, {"manage_server", "maybe"}};
    assert_int_equal(parse(boolean, 2, &s, err), TROVE_EINVAL);
    assert_null(s.host);   /* nothing is left allocated after a failure */
}

static void test_bool_and_int_spellings(void **state)
{
    (void)state;
    bool b;
    const char *yes[] = {"true", "YES", "On", "1"}, *no[] = {"false", "No", "OFF", "0"};
    for (int i = 0; i < 4; i++) {
        assert_true(tps_parse_bool(yes[i], &b) && b);
        assert_true(tps_parse_bool(no[i], &b) && !b);
    }
    assert_false(tps_parse_bool("y", &b));
    assert_false(tps_parse_bool("", &b));
    int64_t v;
    assert_true(tps_parse_int("-5", -10, 10, &v) && v == -5);
    assert_false(tps_parse_int("5x", 0, 10, &v));
    assert_false(tps_parse_int(" 5", 0, 10, &v));
    assert_false(tps_parse_int("11", 0, 10, &v));
    const struct trove_kv kv[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    assert_string_equal(tps_kv_get(kv, 3, "a"), "3");
    assert_null(tps_kv_get(kv, 3, "c"));
}

/* ------------------------------------------------------------ clock, files */

static void test_clock_is_monotonic(void **state)
{
    (void)state;
    uint64_t a = tps_now_ms();
    tps_sleep_ms(20);
    assert_true(tps_now_ms() - a >= 20);
}

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    const char *path = in_dir("role.conf");
    assert_int_equal(tps_file_write_atomic(path, "one\n", 4, 0640), 0);
    assert_int_equal(tps_file_write_atomic(path, "two\n", 4, 0600), 0);
    size_t len = 0;
    char *text = tps_file_read(path, 100, &len);
    assert_non_null(text);
    assert_string_equal(text, "two\n");
    assert_int_equal(len, 4);
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);   /* no temporary left behind */
    assert_null(tps_file_read(path, 3, NULL));
    assert_int_equal(errno, EFBIG);
    assert_null(tps_file_read(in_dir("missing"), 10, NULL));
    assert_int_equal(errno, ENOENT);
}

static void test_atomic_write_for_another_user(void **state)
{
    (void)state;
    const char *path = in_dir("engine.conf");
    struct stat st;
    assert_int_equal(tps_file_write_as(path, "mine\n", 5, 0640, NULL), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(tps_file_write_as(path, "x", 1, 0600, "no-such-user-here"), -ENOENT);
    char *text = tps_file_read(path, 100, NULL);
    assert_non_null(text);
    assert_string_equal(text, "mine\n");   /* untouched */
    free(text);
    struct passwd *nobody = getpwnam("nobody");
    if (geteuid() != 0 || !nobody)
        return;   /* giving a file away takes root */
    assert_int_equal(tps_file_write_as(path, "theirs\n", 7, 0600, "nobody"), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, nobody->pw_uid);
    assert_int_equal(st.st_gid, nobody->pw_gid);
    assert_int_equal(st.st_mode & 0777, 0600);
    text = tps_file_read(path, 100, NULL);
    assert_non_null(text);
    assert_string_equal(text, "theirs\n");
    free(text);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);   /* no temporary left behind */
}

static void test_secret_file_and_tail(void **state)
{
    (void)state;
    char path[600];
    assert_int_equal(tps_file_write_secret(dir, "password=s3cret\n", path, sizeof(path)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "/.trove-%ld-", (long)getpid());
    assert_non_null(strstr(path, prefix));
    unlink(path);
    const char *log = in_dir("server.log");
    assert_int_equal(tps_file_write_atomic(log, "first line\nsecond line\nthird line\n\n", 35, 0600), 0);
    char tail[16];
    tps_file_tail(log, tail, sizeof(tail));
    assert_string_equal(tail, "third line");
    char all[100];
    tps_file_tail(log, all, sizeof(all));
    assert_string_equal(all, "first line\nsecond line\nthird line");
}

static void test_lock_excludes_another_holder(void **state)
{
    (void)state;
    const char *path = in_dir("plugin.lock");
    int a = tps_file_lock(path, false);
    assert_true(a >= 0);
    assert_int_equal(tps_file_lock(path, false), -EWOULDBLOCK);
    tps_file_unlock(a);
    int b = tps_file_lock(path, false);
    assert_true(b >= 0);
    tps_file_unlock(b);
}

static void test_remove_tree_does_not_follow_links(void **state)
{
    (void)state;
    const char *outside = in_dir("outside"), *tree = in_dir("tree");
    char sub[600], link[700], keep[600];
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(keep, sizeof(keep), "%s/keep", outside);
    assert_int_equal(tps_file_write_atomic(keep, "x", 1, 0600), 0);
    assert_int_equal(mkdir(tree, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/sub", tree);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(link, sizeof(link), "%s/link", sub);
    assert_int_equal(symlink(outside, link), 0);
    assert_false(tps_dir_empty(tree));
    assert_int_equal(tps_remove_tree(tree), 0);
    assert_true(tps_dir_empty(tree));   /* missing counts as empty */
    assert_int_equal(access(keep, F_OK), 0);
    char small[8];
    assert_false(tps_path(small, sizeof(small), "%s/%s", "abcd", "efgh"));
    assert_true(tps_path(small, sizeof(small), "%s/%s", "ab", "cd"));
}

static void test_stale_temporaries_of_dead_processes_go(void **state)
{
    (void)state;
    const char *tmp = in_dir("stale");
    char path[700];
    assert_int_equal(mkdir(tmp, 0700), 0);
    /* pid 1 runs; a pid above the kernel's limit never does */
    const char *keep[] = {".trove-1-abc", "backup-1-x", ".trove-x-1", "other-99999999-x", ".trove-99999999"};
    const char *gone[] = {".trove-99999999-abc", ".trove-99999998-def"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp, keep[i]);
        assert_int_equal(tps_file_write_atomic(path, "x", 1, 0600), 0);
    }
    snprintf(path, sizeof(path), "%s/.trove-%ld-mine", tmp, (long)getpid());
    assert_int_equal(tps_file_write_atomic(path, "x", 1, 0600), 0);
    snprintf(path, sizeof(path), "%s/%s", tmp, gone[0]);
    assert_int_equal(tps_file_write_atomic(path, "x", 1, 0600), 0);
    snprintf(path, sizeof(path), "%s/%s", tmp, gone[1]);
    assert_int_equal(mkdir(path, 0700), 0);   /* a work directory, with something in it */
    snprintf(path, sizeof(path), "%s/%s/inner", tmp, gone[1]);
    assert_int_equal(tps_file_write_atomic(path, "x", 1, 0600), 0);
    assert_int_equal(tps_remove_stale(tmp, ".trove-"), 2);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp, gone[i]);
        assert_int_not_equal(access(path, F_OK), 0);
    }
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp, keep[i]);
        assert_int_equal(access(path, F_OK), 0);
    }
    snprintf(path, sizeof(path), "%s/.trove-%ld-mine", tmp, (long)getpid());
    assert_int_equal(access(path, F_OK), 0);   /* a live process keeps its own */
    assert_int_equal(tps_remove_stale(in_dir("no-such-dir"), ".trove-"), 0);
}

static void test_u64_spellings(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_true(tps_parse_u64("18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
    assert_true(tps_parse_u64("0", &v) && v == 0);
    assert_true(tps_parse_u64("1234567", &v) && v == 1234567);
    const char *bad[] = {"18446744073709551616", "-1", "+1", " 1", "1 ", "", "1x", "0x10", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(tps_parse_u64(bad[i], &v));
}

/* ------------------------------------------------------------ engine process */

static int file_exists_probe(void *ctx)
{
    return access((const char *)ctx, F_OK) == 0 ? 1 : 0;
}

static int never_probe(void *ctx)
{
    (void)ctx;
    return 0;
}

static void test_engine_start_find_wait_stop(void **state)
{
    (void)state;
    struct trove_call call = {0};
    const char *ready = in_dir("READY"), *pid_file = in_dir("engine.pid"), *log = in_dir("engine.log");
    char script[700];
    snprintf(script, sizeof(script), "echo engine says hello; echo \"$ENGINE_SECRET\" > /dev/null; touch %s; "
             "exec sleep 30", ready);
    const char *argv[] = {"sh", "-c", script, NULL};
    const char *env[] = {"ENGINE_SECRET=not-in-argv", NULL};
    struct tps_proc spec = {.argv = argv, .env = env, .log_file = log, .pid_file = pid_file, .name = "engine"};
    pid_t pid = 0;
    log_target = &call;
    assert_int_equal(tps_proc_start(&host, &call, &spec, &pid), TROVE_OK);
    assert_true(pid > 0);
    assert_int_equal(tps_proc_wait_ready(&host, &call, pid, "engine", log, 10000, file_exists_probe, (void *)ready),
                     TROVE_OK);
    assert_true(tps_proc_alive(pid));
    for (int i = 0; i < 100 && tps_proc_pid(pid_file, "sleep") != pid; i++)
        tps_sleep_ms(20);   /* exec of sleep may lag the ready file a little */
    assert_int_equal(tps_proc_pid(pid_file, "sleep"), pid);
    assert_int_equal(tps_proc_pid(pid_file, "mariadbd"), 0);   /* the pid names another program */
    char lines[300];   /* a pid file of several lines, as postmaster.pid: the first one counts */
    int n = snprintf(lines, sizeof(lines), "%ld\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\n"
                     "127.0.0.1\n  5432001   3932160\nready   \n", (long)pid);
    const char *multi = in_dir("postmaster.pid");
    assert_int_equal(tps_file_write_atomic(multi, lines, (size_t)n, 0600), 0);
    assert_int_equal(tps_proc_pid(multi, "sleep"), pid);
    char text[200];
    tps_file_tail(log, text, sizeof(text));
    assert_string_equal(text, "engine says hello");
    assert_int_equal(tps_proc_stop(&host, &call, pid, "engine", SIGTERM, 5000, 5000), TROVE_OK);
    assert_false(tps_proc_alive(pid));
    assert_null(strstr(call.log, "killing"));
    assert_int_equal(tps_proc_pid(pid_file, NULL), 0);
    log_target = NULL;
}

static void test_engine_that_ignores_sigterm_is_killed(void **state)
{
    (void)state;
    struct trove_call call = {0};
    const char *ready = in_dir("READY2");
    char script[600];
    snprintf(script, sizeof(script), "trap '' TERM; touch %s; while :; do sleep 0.05; done", ready);
    const char *argv[] = {"sh", "-c", script, NULL};
    struct tps_proc spec = {.argv = argv, .name = "stubborn"};
    pid_t pid = 0;
    log_target = &call;
    assert_int_equal(tps_proc_start(&host, &call, &spec, &pid), TROVE_OK);
    assert_int_equal(tps_proc_wait_ready(&host, &call, pid, "stubborn", NULL, 10000, file_exists_probe,
                                         (void *)ready), TROVE_OK);
    uint64_t t0 = tps_now_ms();
    assert_int_equal(tps_proc_stop(&host, &call, pid, "stubborn", SIGTERM, 300, 5000), TROVE_OK);
    assert_true(tps_now_ms() - t0 >= 300);
    assert_false(tps_proc_alive(pid));
    assert_non_null(strstr(call.log, "killing it"));
    log_target = NULL;
}

static void test_engine_that_dies_during_start_says_why(void **state)
{
    (void)state;
    struct trove_call call = {0};
    const char *log = in_dir("dying.log");
    const char *argv[] = {"sh", "-c", "echo 'FATAL: port 4000 is in use'; exit 3", NULL};
    struct tps_proc spec = {.argv = argv, .log_file = log, .name = "dying"};
    pid_t pid = 0;
    assert_int_equal(tps_proc_start(&host, &call, &spec, &pid), TROVE_OK);
    assert_int_equal(tps_proc_wait_ready(&host, &call, pid, "dying", log, 10000, never_probe, NULL),
                     TROVE_EDATASTORE);
    assert_non_null(strstr(call.message, "dying exited during start"));
    assert_non_null(strstr(call.message, "port 4000 is in use"));
}

static void test_engine_start_failures(void **state)
{
    (void)state;
    struct trove_call call = {0};
    const char *missing[] = {"no-such-engine-anywhere", NULL};
    struct tps_proc spec = {.argv = missing};
    pid_t pid = 0;
    assert_int_equal(tps_proc_start(&host, &call, &spec, &pid), TROVE_ENOTFOUND);
    assert_non_null(strstr(call.message, "no-such-engine-anywhere"));
    const char *argv[] = {"sleep", "30", NULL};
    struct tps_proc user = {.argv = argv, .run_as = "no-such-user-here"};
    assert_int_equal(tps_proc_start(&host, &call, &user, &pid), TROVE_EINVAL);
    assert_non_null(strstr(call.message, "no-such-user-here"));
    struct tps_proc slow = {.argv = argv, .name = "slow"};
    assert_int_equal(tps_proc_start(&host, &call, &slow, &pid), TROVE_OK);
    assert_int_equal(tps_proc_wait_ready(&host, &call, pid, "slow", NULL, 200, never_probe, NULL), TROVE_ETIMEOUT);
    assert_non_null(strstr(call.message, "slow was not ready after 200 ms"));
    call.cancel = true;
    assert_int_equal(tps_proc_wait_ready(&host, &call, pid, "slow", NULL, 10000, never_probe, NULL),
                     TROVE_ECANCELLED);
    assert_int_equal(tps_proc_stop(&host, &call, pid, "slow", SIGTERM, 5000, 5000), TROVE_OK);
    assert_int_equal(tps_proc_stop(&host, &call, pid, "slow", SIGTERM, 10, 10), TROVE_OK);   /* already gone */
}

/* ------------------------------------------------------------ guest logs */

static void test_guest_log_tail_and_whole(void **state)
{
    (void)state;
    struct trove_call call = {0};
    const char *log = in_dir("guest.log");
    const char *text = "alpha\nbravo\ncharlie\ndelta\n";
    assert_int_equal(tps_file_write_atomic(log, text, strlen(text), 0600), 0);
    struct trove_sink sink = {0};
    struct trove_guest_log_request req = {.size = sizeof(req), .name = "guest", .mode = TROVE_GUEST_LOG_TAIL,
                                          .max_bytes = 10, .sink = &sink};
    assert_int_equal(tps_guest_log_from_file(&host, &call, log, &req), TROVE_OK);
    assert_int_equal(sink.len, 6);
    assert_memory_equal(sink.data, "delta\n", 6);   /* starts at a line */
    memset(&sink, 0, sizeof(sink));
    req.mode = TROVE_GUEST_LOG_WHOLE;
    req.max_bytes = 0;
    assert_int_equal(tps_guest_log_from_file(&host, &call, log, &req), TROVE_OK);
    assert_int_equal(sink.len, strlen(text));
    assert_memory_equal(sink.data, text, strlen(text));
    assert_int_equal(tps_file_size(log), (int64_t)strlen(text));
    memset(&sink, 0, sizeof(sink));
    assert_int_equal(tps_guest_log_from_file(&host, &call, in_dir("none.log"), &req), TROVE_OK);
    assert_int_equal(sink.len, 0);
    req.mode = 7;
    assert_int_equal(tps_guest_log_from_file(&host, &call, log, &req), TROVE_ENOTSUP);
}

/* ------------------------------------------------------------ strings */

static void test_buffer_and_quoting(void **state)
{
    (void)state;
    struct tps_buf b = {0};
    assert_string_equal(tps_buf_str(&b), "");
    tps_buf_add(&b, "CREATE ROLE ");
    tps_quote_ident(&b, "a\"b", '"');
    tps_buf_add(&b, " PASSWORD ");
    tps_quote_literal(&b, "it's");
    tps_buf_addf(&b, " -- %d", 42);
    assert_string_equal(tps_buf_str(&b), "CREATE ROLE \"a\"\"b\" PASSWORD 'it''s' -- 42");
    tps_buf_wipe(&b);
    assert_null(b.data);
    tps_quote_ident(&b, "x`y", '`');
    tps_buf_add(&b, " ");
    tps_quote_conf(&b, "p\"a\\s", '"');
    tps_buf_add(&b, " ");
    tps_quote_conf(&b, "o'k", '\'');
    assert_string_equal(tps_buf_str(&b), "`x``y` \"p\\\"a\\\\s\" 'o\\'k'");
    tps_buf_free(&b);
    for (int i = 0; i < 2000; i++)
        tps_buf_add(&b, "0123456789");
    assert_int_equal(b.len, 20000);
    tps_buf_free(&b);
    assert_true(tps_name_ok("keyspace_1", 48, NULL, true));
    assert_false(tps_name_ok("1keyspace", 48, NULL, true));
    assert_true(tps_name_ok("my-db.x", 64, "-.", false));
    assert_false(tps_name_ok("a b", 64, "-", false));
    assert_false(tps_name_ok("", 64, NULL, false));
    assert_false(tps_name_ok("abcdef", 5, NULL, false));
    assert_true(tps_has_control("a\nb"));
    assert_false(tps_has_control("a b é"));
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    tps_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    tps_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    tps_sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    struct tps_sha256 s;
    unsigned char md[32];
    char a[1000];
    memset(a, 'a', sizeof(a));
    tps_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        tps_sha256_update(&s, a, sizeof(a));   /* one million 'a' in pieces */
    tps_sha256_final(&s, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_defaults_and_values),
        cmocka_unit_test(test_settings_name_every_unknown_key),
        cmocka_unit_test(test_settings_refuse_bad_values),
        cmocka_unit_test(test_bool_and_int_spellings),
        cmocka_unit_test(test_clock_is_monotonic),
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_atomic_write_for_another_user),
        cmocka_unit_test(test_secret_file_and_tail),
        cmocka_unit_test(test_lock_excludes_another_holder),
        cmocka_unit_test(test_remove_tree_does_not_follow_links),
        cmocka_unit_test(test_stale_temporaries_of_dead_processes_go),
        cmocka_unit_test(test_u64_spellings),
        cmocka_unit_test(test_engine_start_find_wait_stop),
        cmocka_unit_test(test_engine_that_ignores_sigterm_is_killed),
        cmocka_unit_test(test_engine_that_dies_during_start_says_why),
        cmocka_unit_test(test_engine_start_failures),
        cmocka_unit_test(test_guest_log_tail_and_whole),
        cmocka_unit_test(test_buffer_and_quoting),
        cmocka_unit_test(test_sha256_vectors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
