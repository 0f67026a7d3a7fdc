/*
 * test_json.c - JSON text <-> value trees: what the CLI prints and parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tv_testutil.h"
#include "wire.h"

static char err[256];

static struct tv *parse(const char *text)
{
    struct tv *v = NULL;
    if (json_to_tv(text, &v, err, sizeof(err)) != 0)
        fail_msg("rejected %s: %s", text, err);
    return v;
}

static const char *parse_error(const char *text)
{
    struct tv *v = (struct tv *)&v;
    err[0] = '\0';
    if (json_to_tv(text, &v, err, sizeof(err)) != -1)
        fail_msg("accepted %s", text);
    assert_null(v);
    assert_true(err[0] != '\0');
    return err;
}

static void compact_text_round_trips_in_order(void **state)
{
    (void)state;
    const char *text = "{\"zeta\":1,\"alpha\":[true,false,null,-7,1.5,\"x\"],"
                       "\"nested\":{\"k\":\"caf\xc3\xa9\",\"empty\":{},\"list\":[]}}";
    struct tv *v = parse(text);
    assert_string_equal(v->u.m.items[0].key, "zeta");
    assert_string_equal(v->u.m.items[1].key, "alpha");
    char *out = tv_to_json(v, false);
    assert_non_null(out);
    assert_string_equal(out, text);
    free(out);
    tv_free(v);
}

static void numbers_keep_their_kind(void **state)
{
    (void)state;
    struct tv *v = parse("[1, 1.0, -9223372036854775808, 9223372036854775807, 2e3]");
    assert_int_equal(v->u.a.items[0]->type, TV_INT);
    assert_int_equal(v->u.a.items[1]->type, TV_FLOAT);
    assert_true(v->u.a.items[2]->u.i == INT64_MIN);
    assert_true(v->u.a.items[3]->u.i == INT64_MAX);
    assert_int_equal(v->u.a.items[4]->type, TV_FLOAT);
    assert_true(v->u.a.items[4]->u.f == 2000.0);
    tv_free(v);
    assert_non_null(strstr(parse_error("[9223372036854775808]"), "too big"));
}

static void tree_to_json_and_back_is_equal(void **state)
{
    (void)state;
    struct tv *m = tv_map();
    tv_set_str(m, "name", "app");
    tv_set_int(m, "count", -3);
    tv_set(m, "ratio", tv_float(0.1));
    tv_set(m, "nothing", tv_nil());
    tv_set_bool(m, "on", true);
    struct tv *a = tv_child_array(m, "items");
    tv_append(a, tv_str("tab\there \"quoted\" \\ and \xe2\x82\xac"));
    tv_append(a, tv_map());
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *text = tv_to_json(m, pretty);
        assert_non_null(text);
        assert_int_equal(strchr(text, '\n') != NULL, pretty);
        struct tv *back = parse(text);
        assert_true(tv_equal(m, back));
        tv_free(back);
        free(text);
    }
    tv_free(m);
}

static void binary_becomes_base64(void **state)
{
    (void)state;
    static const struct { const char *in; size_t len; const char *out; } cases[] = {
        { "", 0, "\"\"" },
        { "a", 1, "\"YQ==\"" },
        { "ab", 2, "\"YWI=\"" },
        { "abc", 3, "\"YWJj\"" },
        { "hello", 5, "\"aGVsbG8=\"" },
        { "\x00\xff\xfe", 3, "\"AP/+\"" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tv *b = tv_bin(cases[i].in, cases[i].len);
        char *text = tv_to_json(b, false);
        assert_string_equal(text, cases[i].out);
        free(text);
        tv_free(b);
    }
}

static void rendering_never_fails_on_content(void **state)
{
    (void)state;
    struct tv *a = tv_array();
    tv_append(a, tv_strn("bad\xff" "byte", 8));
    tv_append(a, tv_float(NAN));
    tv_append(a, tv_float(INFINITY));
    char *text = tv_to_json(a, false);
    assert_non_null(text);
    assert_string_equal(text, "[\"bad\xef\xbf\xbd" "byte\",null,null]");
    free(text);
    tv_free(a);
    assert_null(tv_to_json(NULL, false));
}

static void nesting_is_bounded(void **state)
{
    (void)state;
    char text[2 * (WIRE_MAX_DEPTH + 1) + 1];
    for (int i = 0; i < WIRE_MAX_DEPTH; i++) {
        text[i] = '[';
        text[WIRE_MAX_DEPTH + i] = ']';
    }
    text[2 * WIRE_MAX_DEPTH] = '\0';
    struct tv *v = parse(text);
    tv_free(v);
    for (int i = 0; i <= WIRE_MAX_DEPTH; i++) {
        text[i] = '[';
        text[WIRE_MAX_DEPTH + 1 + i] = ']';
    }
    text[2 * (WIRE_MAX_DEPTH + 1)] = '\0';
    assert_string_equal(parse_error(text), "nesting deeper than 16 levels");

    /* Far deeper than jansson's own limit: still a clean error. */
    size_t n = 100000;
    char *deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = '\0';
    parse_error(deep);
    free(deep);
}

static void bad_json_is_refused_with_a_position(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_error("{\"a\": }"), "line 1 column"));
    assert_non_null(strstr(parse_error("{\"a\":1,\n\"a\":2}"), "duplicate"));
    /* \u0000 is valid JSON that no string here may hold: said in our words. */
    const char *why = parse_error("[\"nul\\u0000here\"]");
    assert_non_null(strstr(why, "strings must not contain NUL (\\u0000) (line 1 column"));
    assert_null(strstr(why, "JSON_"));
    why = parse_error("{\"k\\u0000\": 1}");
    assert_non_null(strstr(why, "object keys must not contain NUL (\\u0000) (line 1 column"));
    assert_null(strstr(why, "JSON_"));
    assert_non_null(strstr(parse_error("\"\xff\""), "invalid JSON"));
    /* The reason names the fault and where, never the text around it: that
     * text may be a password. */
    why = parse_error("{\"password\": \"s3cr\\q3t\"}");
    assert_non_null(strstr(why, "line 1 column"));
    assert_null(strstr(why, "s3cr"));
    assert_null(strstr(why, "near"));
    why = parse_error("{\"password\": \"hunter2\n\"}");
    assert_null(strstr(why, "hunter2"));
    assert_null(strchr(why, '\n'));
    parse_error("");
    parse_error("[1] trailing");
    struct tv *v = NULL;
    assert_int_equal(json_to_tv(NULL, &v, err, sizeof(err)), -1);
}

static void scalars_parse_at_top_level(void **state)
{
    (void)state;
    struct tv *v = parse("\"just text\"");
    assert_int_equal(v->type, TV_STR);
    assert_string_equal(v->u.s.ptr, "just text");
    tv_free(v);
    v = parse("42");
    assert_int_equal(v->u.i, 42);
    char *text = tv_to_json(v, true);
    assert_string_equal(text, "42");
    free(text);
    tv_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compact_text_round_trips_in_order),
        cmocka_unit_test(numbers_keep_their_kind),
        cmocka_unit_test(tree_to_json_and_back_is_equal),
        cmocka_unit_test(binary_becomes_base64),
        cmocka_unit_test(rendering_never_fails_on_content),
        cmocka_unit_test(nesting_is_bounded),
        cmocka_unit_test(bad_json_is_refused_with_a_position),
        cmocka_unit_test(scalars_parse_at_top_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
