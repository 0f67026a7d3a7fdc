/*
 * fuzz_gtid.c - MariaDB GTID lists (plugins/mysql/gtid.c) as the server and
 * the control plane hand them over. Two lists split at a NUL byte. Only
 * digits, '-', ',' and blanks are ever accepted; validity and comparison
 * agree; a comparison reversed is the mirror image; a list compared with
 * itself is equal unless it names two servers for one transaction.
 */
#include "fuzz_util.h"

#include "mysql_plugin.h"

static enum trove_order mirror(enum trove_order o)
{
    return o == TROVE_ORDER_BEFORE ? TROVE_ORDER_AFTER : o == TROVE_ORDER_AFTER ? TROVE_ORDER_BEFORE : o;
}

static void check_alphabet(const char *s)
{
    for (const char *p = s; *p; p++)
        FUZZ_CHECK(strchr("0123456789-, \t\r\n", *p), "accepted a list holding '%c'", *p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a, *b;
    fuzz_split(data, size, &a, &b);
    enum trove_order ab, ba, aa;
    bool va = my_gtid_valid(a), vb = my_gtid_valid(b);
    if (va)
        check_alphabet(a);
    int rc = my_repl_compare(NULL, a, a, &aa);
    FUZZ_CHECK((rc == TROVE_OK) == va, "my_gtid_valid and compare disagree on \"%s\"", a);
    if (va)
        FUZZ_CHECK(aa == TROVE_ORDER_EQUAL || aa == TROVE_ORDER_DIVERGED, "\"%s\" vs itself: %d", a, aa);
    rc = my_repl_compare(NULL, a, b, &ab);
    FUZZ_CHECK((rc == TROVE_OK) == (va && vb), "compare accepted an invalid list");
    if (rc == TROVE_OK) {
        FUZZ_CHECK(my_repl_compare(NULL, b, a, &ba) == TROVE_OK, "compare is not symmetric in what it accepts");
        FUZZ_CHECK(ba == mirror(ab), "\"%s\" vs \"%s\" is %d, reversed %d", a, b, ab, ba);
    }
    free(a);
    free(b);
    return 0;
}
