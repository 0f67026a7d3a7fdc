/*
 * test_auth.c - the REST API's authentication: token files (format,
 * permissions, every refusal), what a token may reach, and the no-token mode.
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

#include "auth.h"

#define TOKEN_A "tok-alpha-0123456789abcdef"
#define TOKEN_B "tok-bravo-0123456789abcdef"
#define TOKEN_ROOT "tok-admin-0123456789abcdef"

static char dir[] = "/tmp/test_auth.XXXXXX";
static char path[256];

static void write_file(const char *text, mode_t mode)
{
    snprintf(path, sizeof path, "%s/tokens", dir);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static struct auth *load(const char *text, mode_t mode, char *err, size_t errlen)
{
    write_file(text, mode);
    err[0] = '\0';
    return auth_open_tokens(path, err, errlen);
}

static void refused(const char *text, mode_t mode, const char *expect)
{
    char err[512];
    struct auth *a = load(text, mode, err, sizeof err);
    assert_null(a);
    if (!strstr(err, expect))
        fail_msg("expected '%s' in '%s'", expect, err);
    assert_null(strstr(err, "tok-"));   /* a token never appears in a message */
}

static void token_maps_to_its_tenant(void **state)
{
    (void)state;
    char err[512], why[256];
    struct auth_identity who;
    struct auth *a = load("# tokens\n\n" TOKEN_A " tenant-a\n" TOKEN_B " tenant-b   # the second\n" TOKEN_ROOT
                          " ops admin\n",
                          0600, err, sizeof err);
    assert_non_null(a);
    assert_string_equal(auth_kind(a), "tokens");
    assert_false(auth_loopback_only(a));

    assert_int_equal(auth_authenticate(a, TOKEN_A, "tenant-a", &who, why, sizeof why), AUTH_OK);
    assert_string_equal(who.tenant, "tenant-a");
    assert_false(who.admin);
    assert_int_equal(auth_authenticate(a, TOKEN_ROOT, "ops", &who, why, sizeof why), AUTH_OK);
    assert_true(who.admin);

    /* another tenant's URL: forbidden, and the identity stays empty */
    assert_int_equal(auth_authenticate(a, TOKEN_A, "tenant-b", &who, why, sizeof why), AUTH_FORBIDDEN);
    assert_string_equal(who.tenant, "");
    /* the admin role does not open other tenants' URLs either */
    assert_int_equal(auth_authenticate(a, TOKEN_ROOT, "tenant-a", &who, why, sizeof why), AUTH_FORBIDDEN);

    assert_int_equal(auth_authenticate(a, NULL, "tenant-a", &who, why, sizeof why), AUTH_UNAUTHENTICATED);
    assert_int_equal(auth_authenticate(a, "", "tenant-a", &who, why, sizeof why), AUTH_UNAUTHENTICATED);
    assert_int_equal(auth_authenticate(a, "notused", "tenant-a", &who, why, sizeof why), AUTH_UNAUTHENTICATED);
    assert_int_equal(auth_authenticate(a, TOKEN_A "x", "tenant-a", &who, why, sizeof why), AUTH_UNAUTHENTICATED);
    assert_null(strstr(why, "tok-"));

    assert_int_equal(auth_authenticate(a, TOKEN_A, "bad tenant", &who, why, sizeof why), AUTH_BAD_TENANT);
    assert_int_equal(auth_authenticate(a, TOKEN_A, "", &who, why, sizeof why), AUTH_BAD_TENANT);
    auth_free(a);
}

static void group_or_other_access_is_refused(void **state)
{
    (void)state;
    refused(TOKEN_A " t\n", 0620, "writable by group or others");
    refused(TOKEN_A " t\n", 0602, "writable by group or others");
    refused(TOKEN_A " t\n", 0604, "readable by others");
    char err[512];
    struct auth *a = load(TOKEN_A " t\n", 0640, err, sizeof err);
    assert_non_null(a);
    auth_free(a);
}

static void bad_lines_refuse_the_file(void **state)
{
    (void)state;
    refused(TOKEN_A "\n", 0600, ":1: expected 'TOKEN TENANT [admin]'");
    refused("short t\n", 0600, ":1: invalid token");
    refused("# c\n" TOKEN_A " bad/tenant\n", 0600, ":2: invalid tenant id");
    refused(TOKEN_A " -dash\n", 0600, "invalid tenant id");
    refused(TOKEN_A " t root\n", 0600, "only 'admin' may follow");
    refused(TOKEN_A " t admin extra\n", 0600, "only 'admin' may follow");
    refused(TOKEN_A " t\n" TOKEN_A " u\n", 0600, ":2: token listed twice");
    refused("# nothing\n\n", 0600, "no tokens");
    char err[512];
    assert_null(auth_open_tokens("/nonexistent/tokens", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/tokens"));
}

static void no_token_mode_serves_the_url_tenant(void **state)
{
    (void)state;
    char why[256];
    struct auth_identity who;
    struct auth *a = auth_open_none();
    assert_non_null(a);
    assert_string_equal(auth_kind(a), "none");
    assert_true(auth_loopback_only(a));
    assert_int_equal(auth_authenticate(a, "notused", "anyone", &who, why, sizeof why), AUTH_OK);
    assert_string_equal(who.tenant, "anyone");
    assert_true(who.admin);
    assert_int_equal(auth_authenticate(a, NULL, "x'y", &who, why, sizeof why), AUTH_BAD_TENANT);
    auth_free(a);
}

static void tenant_rule(void **state)
{
    (void)state;
    assert_true(auth_tenant_is_valid("a"));
    assert_true(auth_tenant_is_valid("8f3c1e2a9b7d4c6e8f3c1e2a9b7d4c6e"));
    assert_true(auth_tenant_is_valid("team_1.prod-eu"));
    char longest[AUTH_TENANT_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[AUTH_TENANT_MAX] = '\0';
    assert_true(auth_tenant_is_valid(longest));
    longest[AUTH_TENANT_MAX] = 'a';
    longest[AUTH_TENANT_MAX + 1] = '\0';
    assert_false(auth_tenant_is_valid(longest));
    assert_false(auth_tenant_is_valid(""));
    assert_false(auth_tenant_is_valid(NULL));
    assert_false(auth_tenant_is_valid(".hidden"));
    assert_false(auth_tenant_is_valid("-x"));
    assert_false(auth_tenant_is_valid("a/b"));
    assert_false(auth_tenant_is_valid("a b"));
    assert_false(auth_tenant_is_valid("a\"b"));
    assert_false(auth_tenant_is_valid("caf\xc3\xa9"));
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_maps_to_its_tenant),
        cmocka_unit_test(group_or_other_access_is_refused),
        cmocka_unit_test(bad_lines_refuse_the_file),
        cmocka_unit_test(no_token_mode_serves_the_url_tenant),
        cmocka_unit_test(tenant_rule),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
