/*
 * test_value.c - the value tree: order, replacement, ownership, lookups,
 * copies and the UTF-8 check the codecs rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tv_testutil.h"
#include "value.h"

static void map_keeps_insertion_order(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    assert_non_null(m);
    const char *keys[] = { "zeta", "alpha", "mid", "beta" };
    for (int i = 0; i < 4; i++)
        assert_int_equal(tv_set_int(m, keys[i], i), 0);
    assert_int_equal(m->u.m.len, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(m->u.m.items[i].key, keys[i]);
        assert_int_equal(m->u.m.items[i].key_len, strlen(keys[i]));
        assert_int_equal(m->u.m.items[i].value->u.i, i);
    }
    tv_free(m);
}

static void set_replaces_existing_key_in_place(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    assert_int_equal(tv_set_str(m, "a", "one"), 0);
    assert_int_equal(tv_set_str(m, "b", "two"), 0);
    assert_int_equal(tv_set_int(m, "a", 7), 0);
    assert_int_equal(m->u.m.len, 2);
    assert_string_equal(m->u.m.items[0].key, "a");
    assert_int_equal(tv_get_int(m, "a", -1), 7);
    assert_null(tv_get_str(m, "a"));
    assert_string_equal(tv_get_str(m, "b"), "two");
    tv_free(m);
}

static void append_and_set_take_ownership_on_failure(void **state)
{
    (void)state;
    /* Under the address sanitizer a leak here fails the test. */
    struct tv *notarray = tv_map();
    assert_int_equal(tv_append(notarray, tv_str("leaked?")), -1);
    assert_int_equal(tv_append(NULL, tv_int(1)), -1);
    struct tv *notmap = tv_array();
    assert_int_equal(tv_set(notmap, "k", tv_str("leaked?")), -1);
    assert_int_equal(tv_set(NULL, "k", tv_int(1)), -1);
    assert_int_equal(tv_set(notarray, NULL, tv_int(1)), -1);
    assert_int_equal(tv_set(notarray, "k", NULL), -1);
    assert_int_equal(tv_append(notmap, NULL), -1);
    assert_int_equal(notarray->u.m.len, 0);
    assert_int_equal(notmap->u.a.len, 0);
    tv_free(notarray);
    tv_free(notmap);
}

static void typed_lookups_fall_back_on_absence_or_other_type(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    tv_set_str(m, "s", "text");
    tv_set_int(m, "i", -42);
    tv_set_bool(m, "b", true);
    assert_string_equal(tv_get_str(m, "s"), "text");
    assert_null(tv_get_str(m, "i"));
    assert_null(tv_get_str(m, "missing"));
    assert_int_equal(tv_get_int(m, "i", 0), -42);
    assert_int_equal(tv_get_int(m, "s", 99), 99);
    assert_true(tv_get_bool(m, "b", false));
    assert_false(tv_get_bool(m, "i", false));
    assert_true(tv_get_bool(m, "missing", true));
    struct tv *arr = tv_array();
    assert_null(tv_get(arr, "s"));
    assert_null(tv_get(NULL, "s"));
    assert_null(tv_get(m, NULL));
    tv_free(arr);
    tv_free(m);
}

static void child_containers_are_created_once(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    struct tv *c1 = tv_child_map(m, "meta");
    assert_non_null(c1);
    tv_set_str(c1, "k", "v");
    struct tv *c2 = tv_child_map(m, "meta");
    assert_ptr_equal(c1, c2);
    assert_string_equal(tv_get_str(tv_get(m, "meta"), "k"), "v");
    struct tv *list = tv_child_array(m, "list");
    assert_non_null(list);
    assert_int_equal(list->type, TV_ARRAY);
    assert_ptr_equal(tv_child_array(m, "list"), list);
    /* Type clash: "meta" is a map, not an array. */
    assert_null(tv_child_array(m, "meta"));
    assert_null(tv_child_map(m, "list"));
    assert_int_equal(m->u.m.len, 2);
    tv_free(m);
}

static void strings_are_copied_and_terminated(void **state)
{
    (void)state;
    char buf[] = "hello";
    struct tv *s = tv_str(buf);
    buf[0] = 'j';
    assert_string_equal(s->u.s.ptr, "hello");
    assert_int_equal(s->u.s.len, 5);
    struct tv *n = tv_strn("abcdef", 3);
    assert_string_equal(n->u.s.ptr, "abc");
    struct tv *b = tv_bin("a\0b", 3);
    assert_int_equal(b->type, TV_BIN);
    assert_int_equal(b->u.s.len, 3);
    assert_memory_equal(b->u.s.ptr, "a\0b", 3);
    assert_int_equal(b->u.s.ptr[3], '\0');
    struct tv *e = tv_bin(NULL, 0);
    assert_non_null(e);
    assert_int_equal(e->u.s.len, 0);
    assert_null(tv_str(NULL));
    tv_free(s);
    tv_free(n);
    tv_free(b);
    tv_free(e);
}

static void copy_is_deep_and_equal(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    tv_set(m, "nil", tv_nil());
    tv_set(m, "f", tv_float(2.5));
    tv_set(m, "bin", tv_bin("\x00\x01", 2));
    struct tv *a = tv_child_array(m, "a");
    tv_append(a, tv_int(1));
    tv_append(a, tv_str("two"));
    struct tv *c = tv_copy(m);
    assert_true(tv_equal(m, c));
    /* Changing the copy leaves the original alone. */
    tv_append(tv_child_array(c, "a"), tv_int(3));
    tv_set_str(c, "f", "changed");
    assert_int_equal(a->u.a.len, 2);
    assert_int_equal(tv_get(m, "f")->type, TV_FLOAT);
    assert_false(tv_equal(m, c));
    assert_null(tv_copy(NULL));
    tv_free(m);
    tv_free(c);
}

static void type_names(void **state)
{
    (void)state;
    assert_string_equal(tv_type_name(TV_NIL), "nil");
    assert_string_equal(tv_type_name(TV_STR), "string");
    assert_string_equal(tv_type_name(TV_BIN), "binary");
    assert_string_equal(tv_type_name(TV_MAP), "map");
    assert_string_equal(tv_type_name((enum tv_type)99), "unknown");
}

static void utf8_check_accepts_valid_and_rejects_malformed(void **state)
{
    (void)state;
    static const struct { const char *s; size_t len; bool valid; } cases[] = {
        { "", 0, true },
        { "plain ascii", 11, true },
        { "caf\xc3\xa9", 5, true },
        { "\xe2\x82\xac", 3, true },               /* euro sign */
        { "\xf0\x9f\x98\x80", 4, true },           /* emoji */
        { "\xf4\x8f\xbf\xbf", 4, true },           /* U+10FFFF */
        { "a\0b", 3, true },                       /* NUL is UTF-8; callers forbid it */
        { "\xff", 1, false },
        { "\x80", 1, false },                      /* lone continuation */
        { "\xc0\x80", 2, false },                  /* overlong NUL */
        { "\xe0\x80\xaf", 3, false },              /* overlong '/' */
        { "\xed\xa0\x80", 3, false },              /* surrogate U+D800 */
        { "\xf4\x90\x80\x80", 4, false },          /* above U+10FFFF */
        { "\xe2\x82", 2, false },                  /* cut short */
        { "\xc3", 1, false },
        { "\xc3\x28", 2, false },                  /* bad continuation */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (tv_utf8_valid(cases[i].s, cases[i].len) != cases[i].valid)
            fail_msg("case %zu: expected %s", i, cases[i].valid ? "valid" : "invalid");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_keeps_insertion_order),
        cmocka_unit_test(set_replaces_existing_key_in_place),
        cmocka_unit_test(append_and_set_take_ownership_on_failure),
        cmocka_unit_test(typed_lookups_fall_back_on_absence_or_other_type),
        cmocka_unit_test(child_containers_are_created_once),
        cmocka_unit_test(strings_are_copied_and_terminated),
        cmocka_unit_test(copy_is_deep_and_equal),
        cmocka_unit_test(type_names),
        cmocka_unit_test(utf8_check_accepts_valid_and_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
