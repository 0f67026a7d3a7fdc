/*
 * test_conf.c - configuration and secrets files as an operator writes them,
 * and the mistakes an operator makes.
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
#include <unistd.h>

#include "conf.h"

static char dir[] = "/tmp/trove-conf-test-XXXXXX";
static char path[512];
static char err[512];

static int make_dir(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static const char *write_file(const char *text, mode_t mode)
{
    snprintf(path, sizeof(path), "%s/test.conf", dir);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static struct conf *load_ok(const char *text)
{
    struct conf *c = conf_load(write_file(text, 0644), err, sizeof(err));
    if (!c)
        fail_msg("rejected: %s", err);
    return c;
}

static void expect_error(const char *text, const char *where_and_why)
{
    err[0] = '\0';
    struct conf *c = conf_load(write_file(text, 0644), err, sizeof(err));
    if (c) {
        conf_free(c);
        fail_msg("accepted, expected \"%s\"", where_and_why);
    }
    char want[600];
    snprintf(want, sizeof(want), "%s:%s", path, where_and_why);
    if (strcmp(err, want) != 0)
        fail_msg("expected \"%s\", got \"%s\"", want, err);
}

static void a_valid_agent_file_loads(void **state)
{
    (void)state;
    struct conf *c = load_ok("# trove-agent configuration\n"
                             "; another comment style\n"
                             "\n"
                             "[agent]\n"
                             "instance = db-1\n"
                             "control_endpoint=tcp://10.0.0.1:5555\n"
                             "  heartbeat_ms   =   5000   \n"
                             "\t[ datastore ]\r\n"
                             "plugin = mysql\n"
                             "socket = /run/mysqld/mysqld.sock\n"
                             "empty =\n"
                             "url = http://x/?a=b\n");
    assert_string_equal(conf_get(c, "agent", "instance"), "db-1");
    assert_string_equal(conf_get(c, "agent", "control_endpoint"), "tcp://10.0.0.1:5555");
    assert_string_equal(conf_get(c, "agent", "heartbeat_ms"), "5000");
    assert_string_equal(conf_get(c, "datastore", "plugin"), "mysql");
    assert_string_equal(conf_get(c, "datastore", "empty"), "");
    assert_string_equal(conf_get(c, "datastore", "url"), "http://x/?a=b");
    assert_null(conf_get(c, "datastore", "instance"));
    assert_null(conf_get(c, "missing", "x"));
    assert_string_equal(conf_get_or(c, "agent", "nope", "dflt"), "dflt");
    assert_string_equal(conf_get_or(c, "agent", "instance", "dflt"), "db-1");

    size_t n = 99;
    const struct trove_kv *kv = conf_section(c, "datastore", &n);
    assert_int_equal(n, 4);
    assert_string_equal(kv[0].key, "plugin");
    assert_string_equal(kv[0].value, "mysql");
    assert_string_equal(kv[3].key, "url");
    assert_null(conf_section(c, "nothing", &n));
    assert_int_equal(n, 0);
    conf_free(c);
}

static void quoted_values_keep_spaces_and_escapes(void **state)
{
    (void)state;
    struct conf *c = load_ok("[s]\n"
                             "padded = \"  two spaces  \"\n"
                             "escaped = \"say \\\"hi\\\" \\\\ done\"\n"
                             "hash = \"# not a comment\"\n"
                             "empty = \"\"\n"
                             "inner = a \"b\" c\n");
    assert_string_equal(conf_get(c, "s", "padded"), "  two spaces  ");
    assert_string_equal(conf_get(c, "s", "escaped"), "say \"hi\" \\ done");
    assert_string_equal(conf_get(c, "s", "hash"), "# not a comment");
    assert_string_equal(conf_get(c, "s", "empty"), "");
    assert_string_equal(conf_get(c, "s", "inner"), "a \"b\" c");
    conf_free(c);
}

static void mistakes_name_file_and_line(void **state)
{
    (void)state;
    expect_error("[a]\nx = 1\nthis is not a setting\n", "3: expected '[section]' or 'key = value'");
    expect_error("x = 1\n", "1: key \"x\" appears before any [section]");
    expect_error("[a]\n\n[b\n", "3: section header does not end with ']'");
    expect_error("[]\n", "1: empty section name");
    expect_error("[a b]\n", "1: invalid character ' ' in section name");
    expect_error("[a]\n = v\n", "2: missing key before '='");
    expect_error("[a]\nmy key = v\n", "2: invalid character ' ' in key \"my key\"");
    expect_error("[a]\nk = 1\nk = 2\n", "3: duplicate key \"k\" in [a]");
    expect_error("[a]\nk = \"open\n", "2: unterminated quoted value");
    expect_error("[a]\nk = \"x\" y\n", "2: text after the closing quote");
    expect_error("[a]\nk = \"\\n\"\n", "2: unknown escape in quoted value (only \\\" and \\\\ are allowed)");
    expect_error("[a]\nk = \xff\n", "2: invalid UTF-8");
    expect_error("[a]\nk = a\x01" "b\n", "2: control character 0x01 in line");
}

static void a_file_that_is_not_there(void **state)
{
    (void)state;
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/absent.conf", dir);
    assert_null(conf_load(missing, err, sizeof(err)));
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "No such file"));
    assert_null(conf_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
}

static void secrets_files_must_be_private(void **state)
{
    (void)state;
    const char *text = "[datastore]\nadmin_password = \"p@ss word\"\n";
    err[0] = '\0';
    assert_null(conf_load_secret(write_file(text, 0644), err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "0644"));
    assert_non_null(strstr(err, "must be 0600"));

    assert_null(conf_load_secret(write_file(text, 0640), err, sizeof(err)));
    assert_non_null(strstr(err, "0640"));
    assert_null(conf_load_secret(write_file(text, 0602), err, sizeof(err)));
    assert_non_null(strstr(err, "0602"));

    static const mode_t fine[] = { 0600, 0400 };
    for (size_t i = 0; i < 2; i++) {
        struct conf *c = conf_load_secret(write_file(text, fine[i]), err, sizeof(err));
        if (!c)
            fail_msg("mode %o refused: %s", (unsigned)fine[i], err);
        assert_string_equal(conf_get(c, "datastore", "admin_password"), "p@ss word");
        conf_free(c);
    }
    /* The ordinary loader does not care about modes. */
    struct conf *c = conf_load(write_file(text, 0644), err, sizeof(err));
    assert_non_null(c);
    conf_free(c);
}

static void integers_are_checked(void **state)
{
    (void)state;
    struct conf *c = load_ok("[a]\nport = 5555\nneg = -3\nword = many\nhuge = 99999999999999999999\n"
                             "big = 70000\ntrailing = 12abc\nempty =\n");
    long v = 0;
    assert_int_equal(conf_get_int(c, "a", "port", 1, 1, 65535, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 5555);
    assert_int_equal(conf_get_int(c, "a", "neg", 0, -10, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, -3);
    assert_int_equal(conf_get_int(c, "a", "absent", 42, 1, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 42);

    v = 7;
    assert_int_equal(conf_get_int(c, "a", "word", 1, 0, 100, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "[a] word: \"many\" is not an integer");
    assert_int_equal(v, 7);
    assert_int_equal(conf_get_int(c, "a", "big", 1, 1, 65535, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "[a] big: 70000 is outside 1..65535");
    assert_int_equal(conf_get_int(c, "a", "huge", 1, 0, 100, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is outside"));
    assert_int_equal(conf_get_int(c, "a", "trailing", 1, 0, 100, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not an integer"));
    assert_int_equal(conf_get_int(c, "a", "empty", 1, 0, 100, &v, err, sizeof(err)), -1);
    conf_free(c);
}

static void booleans_are_checked(void **state)
{
    (void)state;
    struct conf *c = load_ok("[a]\nt1 = true\nt2 = YES\nt3 = on\nt4 = 1\n"
                             "f1 = False\nf2 = no\nf3 = OFF\nf4 = 0\nbad = maybe\n");
    const char *truthy[] = { "t1", "t2", "t3", "t4" };
    const char *falsy[] = { "f1", "f2", "f3", "f4" };
    bool b;
    for (int i = 0; i < 4; i++) {
        b = false;
        assert_int_equal(conf_get_bool(c, "a", truthy[i], false, &b, err, sizeof(err)), 0);
        assert_true(b);
        b = true;
        assert_int_equal(conf_get_bool(c, "a", falsy[i], true, &b, err, sizeof(err)), 0);
        assert_false(b);
    }
    assert_int_equal(conf_get_bool(c, "a", "absent", true, &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_int_equal(conf_get_bool(c, "a", "bad", true, &b, err, sizeof(err)), -1);
    assert_string_equal(err, "[a] bad: \"maybe\" is not a boolean (use true or false)");
    conf_free(c);
}

static void set_and_merge(void **state)
{
    (void)state;
    struct conf *base = conf_new();
    assert_int_equal(conf_set(base, "datastore", "host", "127.0.0.1"), 0);
    assert_int_equal(conf_set(base, "datastore", "user", "admin"), 0);
    assert_int_equal(conf_set(base, "datastore", "user", "root"), 0);
    assert_string_equal(conf_get(base, "datastore", "user"), "root");

    struct conf *secrets = conf_new();
    conf_set(secrets, "datastore", "password", "hunter2");
    conf_set(secrets, "datastore", "host", "10.0.0.9");
    conf_set(secrets, "other", "x", "y");
    assert_int_equal(conf_merge_section(base, secrets, "datastore"), 0);
    assert_int_equal(conf_merge_section(base, secrets, "absent"), 0);

    size_t n;
    const struct trove_kv *kv = conf_section(base, "datastore", &n);
    assert_int_equal(n, 3);
    assert_string_equal(kv[0].key, "host");
    assert_string_equal(kv[0].value, "10.0.0.9");
    assert_string_equal(kv[2].key, "password");
    assert_string_equal(kv[2].value, "hunter2");
    assert_null(conf_get(base, "other", "x"));
    conf_free(base);
    conf_free(secrets);
    conf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_agent_file_loads),
        cmocka_unit_test(quoted_values_keep_spaces_and_escapes),
        cmocka_unit_test(mistakes_name_file_and_line),
        cmocka_unit_test(a_file_that_is_not_there),
        cmocka_unit_test(secrets_files_must_be_private),
        cmocka_unit_test(integers_are_checked),
        cmocka_unit_test(booleans_are_checked),
        cmocka_unit_test(set_and_merge),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
