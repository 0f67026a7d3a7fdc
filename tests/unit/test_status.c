/*
 * test_status.c - status codes and their wire names, as docs/protocol.md
 * lists them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "status.h"

static const struct { int code; const char *name; } table[] = {
    { TROVE_OK, "ok" },
    { TROVE_EINVAL, "invalid_argument" },
    { TROVE_ENOTFOUND, "not_found" },
    { TROVE_EEXIST, "already_exists" },
    { TROVE_ENOTSUP, "not_supported" },
    { TROVE_EDATASTORE, "datastore_error" },
    { TROVE_EUNAVAIL, "unavailable" },
    { TROVE_ECANCELLED, "cancelled" },
    { TROVE_EINTERNAL, "internal" },
    { TROVE_ETIMEOUT, "timeout" },
    { TROVE_ECONFLICT, "failed_precondition" },
    { TROVE_ECHECKSUM, "checksum_mismatch" },
};

static void names_match_the_protocol(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(table[i].code, (int)i);   /* numbers are the protocol's too */
        assert_string_equal(status_name(table[i].code), table[i].name);
        assert_int_equal(status_from_name(table[i].name), table[i].code);
    }
}

static void unknown_codes_and_names(void **state)
{
    (void)state;
    assert_string_equal(status_name(-1), "unknown");
    assert_string_equal(status_name(12), "unknown");
    assert_string_equal(status_name(1000), "unknown");
    assert_int_equal(status_from_name("unknown"), -1);
    assert_int_equal(status_from_name("OK"), -1);
    assert_int_equal(status_from_name(""), -1);
    assert_int_equal(status_from_name(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_match_the_protocol),
        cmocka_unit_test(unknown_codes_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
