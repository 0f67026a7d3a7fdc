/*
 * test_log.c - the logger's line format, level filter, escaping, secret key
 * names, and whole lines when many threads log at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char capture_path[] = "/tmp/trove-log-test-XXXXXX";
static int saved_stderr = -1;

static void capture_start(void)
{
    int fd = mkstemp(capture_path);
    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Stop capturing and return what was written (caller frees). */
static char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(capture_path);
    strcpy(capture_path, "/tmp/trove-log-test-XXXXXX");
    return text;
}

static const char *line_pattern =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z trove-agent (ERROR|WARN|INFO|DEBUG) ";

static bool line_ok(const char *line)
{
    regex_t re;
    assert_int_equal(regcomp(&re, line_pattern, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, line, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void a_line_has_time_ident_level_and_text(void **state)
{
    (void)state;
    log_set_ident("trove-agent");
    log_set_level(TROVE_LOG_INFO);
    capture_start();
    log_info("user %s created on %d databases", "app", 2);
    char *text = capture_end();
    assert_true(line_ok(text));
    assert_non_null(strstr(text, " trove-agent INFO user app created on 2 databases\n"));
    assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text));
    free(text);
}

static void levels_below_the_threshold_are_dropped(void **state)
{
    (void)state;
    log_set_ident("trove-agent");
    log_set_level(TROVE_LOG_WARN);
    assert_int_equal(log_get_level(), TROVE_LOG_WARN);
    capture_start();
    log_debug("debug line");
    log_info("info line");
    log_warn("warn line");
    log_error("error line");
    char *text = capture_end();
    assert_null(strstr(text, "debug line"));
    assert_null(strstr(text, "info line"));
    assert_non_null(strstr(text, "trove-agent WARN warn line\n"));
    assert_non_null(strstr(text, "trove-agent ERROR error line\n"));
    free(text);
    log_set_level(TROVE_LOG_INFO);
}

static void text_cannot_forge_lines(void **state)
{
    (void)state;
    log_set_ident("trove-agent");
    capture_start();
    log_info("name=%s", "evil\n2026-01-01T00:00:00.000Z trove-agent ERROR forged\x1b[31m");
    log_info("trailing newline is dropped\n");
    char *text = capture_end();
    assert_non_null(strstr(text, "name=evil\\n2026-01-01T00:00:00.000Z trove-agent ERROR forged\\x1b[31m\n"));
    assert_non_null(strstr(text, "INFO trailing newline is dropped\n"));
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    free(text);
}

static void level_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_from_name("error"), TROVE_LOG_ERROR);
    assert_int_equal(log_level_from_name("WARN"), TROVE_LOG_WARN);
    assert_int_equal(log_level_from_name("warning"), TROVE_LOG_WARN);
    assert_int_equal(log_level_from_name("Info"), TROVE_LOG_INFO);
    assert_int_equal(log_level_from_name("debug"), TROVE_LOG_DEBUG);
    assert_int_equal(log_level_from_name("verbose"), -1);
    assert_int_equal(log_level_from_name(NULL), -1);
}

static void secret_keys(void **state)
{
    (void)state;
    const char *secret[] = { "password", "admin_password", "Root_Password", "curve_secret",
                             "SECRET_KEY", "api_token", "tokens" };
    const char *plain[] = { "name", "host", "pass", "user", "secrets_file_mode_x" };
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (!log_is_secret_key(secret[i]))
            fail_msg("%s should be secret", secret[i]);
    /* "secrets_file_mode_x" contains "secret": documented as secret too. */
    for (size_t i = 0; i < 4; i++)
        if (log_is_secret_key(plain[i]))
            fail_msg("%s should not be secret", plain[i]);
    assert_true(log_is_secret_key(plain[4]));
    assert_false(log_is_secret_key(NULL));
}

#define THREADS 8
#define LINES 300

static void *log_many(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < LINES; i++)
        log_info("thread %ld line %d %s", id, i, "padding-padding-padding-padding-padding");
    return NULL;
}

static void concurrent_lines_stay_whole(void **state)
{
    (void)state;
    log_set_ident("trove-agent");
    log_set_level(TROVE_LOG_INFO);
    capture_start();
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_many, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = capture_end();
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!line_ok(line) || !strstr(line, " padding-padding-padding-padding-padding"))
            fail_msg("torn line: %s", line);
        count++;
    }
    assert_int_equal(count, THREADS * LINES);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_line_has_time_ident_level_and_text),
        cmocka_unit_test(levels_below_the_threshold_are_dropped),
        cmocka_unit_test(text_cannot_forge_lines),
        cmocka_unit_test(level_names),
        cmocka_unit_test(secret_keys),
        cmocka_unit_test(concurrent_lines_stay_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
