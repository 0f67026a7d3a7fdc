/*
 * test_input.c - common/input: a secret read from a stream arrives whole
 * (only its line end removed) or is refused with a reason, never cut short;
 * argument texts from "-", "@FILE" or inline are read whole within a bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"

static char err[256];

/* A stream holding exactly these bytes (NUL bytes included). */
static FILE *stream(const char *bytes, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    rewind(f);
    return f;
}

static char *secret_from(const char *bytes, size_t len)
{
    FILE *f = stream(bytes, len);
    err[0] = '\0';
    char *s = input_read_secret(f, "password", err, sizeof(err));
    fclose(f);
    return s;
}

static void a_secret_loses_only_its_line_end(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"plain\n", "plain"}, {"crlf\r\n", "crlf"}, {"in\rside\n", "in\rside"}, {"no newline", "no newline"},
        {"\n", ""}, {" spaces \n", " spaces "}, {"first\nsecond\n", "first"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = secret_from(cases[i].in, strlen(cases[i].in));
        assert_non_null(s);
        assert_string_equal(s, cases[i].out);
        input_free_secret(s);
    }
}

static void a_secret_at_the_limit_arrives_whole_and_a_longer_one_is_refused(void **state)
{
    (void)state;
    char line[INPUT_PASSWORD_MAX + 4];
    memset(line, 'x', sizeof(line));
    memcpy(line + INPUT_PASSWORD_MAX, "\r\n", 2);   /* the longest secret, with a CRLF line end */
    char *s = secret_from(line, INPUT_PASSWORD_MAX + 2);
    assert_non_null(s);
    assert_int_equal(strlen(s), INPUT_PASSWORD_MAX);
    input_free_secret(s);

    char expected[64];
    snprintf(expected, sizeof(expected), "password is longer than %d bytes", INPUT_PASSWORD_MAX);
    for (size_t extra = 1; extra <= 3; extra++) {   /* with and without a line end */
        memset(line, 'x', sizeof(line));
        assert_null(secret_from(line, INPUT_PASSWORD_MAX + extra));
        assert_string_equal(err, expected);
    }
    line[INPUT_PASSWORD_MAX + 1] = '\n';
    assert_null(secret_from(line, INPUT_PASSWORD_MAX + 2));
    assert_string_equal(err, expected);

    char *big = malloc(2000);
    memset(big, 'y', 2000);
    assert_null(secret_from(big, 2000));
    assert_string_equal(err, expected);
    free(big);
}

static void a_secret_with_a_nul_or_no_input_is_refused(void **state)
{
    (void)state;
    assert_null(secret_from("ab\0cd\n", 6));
    assert_string_equal(err, "password on standard input contains a NUL byte");
    assert_null(secret_from("", 0));
    assert_string_equal(err, "expected password on standard input");
}

static void password_limit_is_stated_once(void **state)
{
    (void)state;
    assert_int_equal(input_check_password("root_password", INPUT_PASSWORD_MAX, err, sizeof(err)), 0);
    assert_int_equal(input_check_password("root_password", INPUT_PASSWORD_MAX + 1, err, sizeof(err)), -1);
    char expected[64];
    snprintf(expected, sizeof(expected), "root_password is longer than %d bytes", INPUT_PASSWORD_MAX);
    assert_string_equal(err, expected);
}

static void argument_text_comes_inline_or_from_a_file(void **state)
{
    (void)state;
    char *t = input_arg_text("{\"a\": 1}", "ARGS", 100, err, sizeof(err));
    assert_string_equal(t, "{\"a\": 1}");
    input_free_secret(t);
    assert_true(input_is_indirect("-") && input_is_indirect("@x") && !input_is_indirect("{}"));

    char path[] = "/tmp/trove-input-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* More than one read chunk, to cross the buffer's growth. */
    size_t n = 200000;
    char *body = malloc(n + 1);
    memset(body, ' ', n);
    body[0] = '{', body[n - 1] = '}', body[n] = '\0';
    assert_int_equal(write(fd, body, n), (ssize_t)n);
    close(fd);
    char at[64];
    snprintf(at, sizeof(at), "@%s", path);
    t = input_arg_text(at, "ARGS", n, err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(t, body);
    input_free_secret(t);
    assert_null(input_arg_text(at, "ARGS", n - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "is longer than 199999 bytes"));

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"a\":\0}", 7), 7);
    close(fd);
    assert_null(input_arg_text(at, "ARGS", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "contains a NUL byte"));
    unlink(path);
    free(body);

    assert_null(input_arg_text(at, "ARGS", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(input_arg_text("{\"long\": 1}", "ARGS", 5, err, sizeof(err)));
    assert_string_equal(err, "ARGS is longer than 5 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_secret_loses_only_its_line_end),
        cmocka_unit_test(a_secret_at_the_limit_arrives_whole_and_a_longer_one_is_refused),
        cmocka_unit_test(a_secret_with_a_nul_or_no_input_is_refused),
        cmocka_unit_test(password_limit_is_stated_once),
        cmocka_unit_test(argument_text_comes_inline_or_from_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
