/*
 * test_ops.c - the operation catalogue (common/ops.h): its rows are sound,
 * the argument check refuses what it should with the argument's name, and
 * docs/protocol.md lists exactly the catalogue's operations, kinds and
 * arguments (the path to the document is the first argument).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ops.h"
#include "value.h"
#include "wire.h"

static const char *protocol_md;

/* ------------------------------------------------------------ the rows */

static void names_are_unique_and_scoped(void **state)
{
    (void)state;
    for (size_t i = 0; i < OPS_COUNT; i++) {
        const struct ops_def *op = &ops_catalogue[i];
        assert_non_null(op->name);
        assert_true(strlen(op->name) >= 1 && strlen(op->name) <= 64);
        assert_ptr_equal(ops_find(op->name), op);
        assert_int_equal(ops_id_of(op), (int)i);
        assert_int_equal(op->scope, i < OPS_AGENT_COUNT ? OPS_SCOPE_AGENT : OPS_SCOPE_CONTROL);
        if (op->scope == OPS_SCOPE_CONTROL)
            assert_null(op->slot);
        for (size_t a = 0; a < op->n_args; a++)
            for (size_t b = a + 1; b < op->n_args; b++)
                assert_string_not_equal(op->args[a].name, op->args[b].name);
    }
    assert_null(ops_find("no.such.op"));
    assert_null(ops_find(NULL));
    assert_true(ops_is_long("backup.create"));
    assert_false(ops_is_long("user.create"));
    assert_false(ops_is_long("no.such.op"));
}

static int fake_slot(void *self, struct trove_call *call, const struct trove_user *user)
{
    (void)self, (void)call, (void)user;
    return 0;
}

static void plugin_slots_are_checked_by_size_and_null(void **state)
{
    (void)state;
    struct trove_plugin vt;
    memset(&vt, 0, sizeof vt);
    vt.size = sizeof vt;
    const struct ops_def *create = ops_find("user.create");
    assert_false(ops_plugin_has(&vt, create));
    vt.user_create = fake_slot;
    assert_true(ops_plugin_has(&vt, create));
    vt.size = (uint32_t)offsetof(struct trove_plugin, user_create);   /* an older, shorter table */
    assert_false(ops_plugin_has(&vt, create));
    assert_true(ops_plugin_has(&vt, ops_find("ping")));
}

/* ------------------------------------------------------------ checking args */

static struct tv *args_of(const char *k1, struct tv *v1, const char *k2, struct tv *v2)
{
    struct tv *m = tv_map();
    assert_non_null(m);
    if (k1)
        assert_int_equal(tv_set(m, k1, v1), 0);
    if (k2)
        assert_int_equal(tv_set(m, k2, v2), 0);
    return m;
}

static void expect_refused(const char *op, struct tv *args, const char *reason)
{
    char err[256] = "";
    assert_int_equal(ops_check_args(ops_find(op), args, err, sizeof err), -1);
    if (!strstr(err, reason))
        fail_msg("%s: expected a reason with \"%s\", got \"%s\"", op, reason, err);
    tv_free(args);
}

static void expect_accepted(const char *op, struct tv *args)
{
    char err[256] = "";
    if (ops_check_args(ops_find(op), args, err, sizeof err) != 0)
        fail_msg("%s: refused: %s", op, err);
    tv_free(args);
}

static void arguments_are_checked_by_the_schema(void **state)
{
    (void)state;
    expect_accepted("user.create", args_of("name", tv_str("a"), "password", tv_str("p")));
    expect_accepted("ping", NULL);
    expect_refused("user.create", args_of("name", tv_str("a"), NULL, NULL), "argument 'password' is required");
    expect_refused("user.create", args_of("name", tv_nil(), "password", tv_str("p")), "'name' is required");
    expect_refused("user.create", args_of("name", tv_int(5), "password", tv_str("p")),
                   "argument 'name' must be a string, not int");
    expect_refused("user.delete", args_of("name", tv_str("a"), "pasword", tv_str("p")),
                   "user.delete takes no argument 'pasword'");
    expect_refused("ping", args_of("x", tv_int(1), NULL, NULL), "takes no argument 'x'");

    /* strings: one string or a list of strings */
    expect_accepted("user.grant", args_of("name", tv_str("a"), "databases", tv_str("db")));
    struct tv *list = tv_array();
    tv_append(list, tv_str("a"));
    tv_append(list, tv_int(2));
    expect_refused("user.grant", args_of("name", tv_str("a"), "databases", list), "'databases' item 2");
    /* values: a map of scalars */
    struct tv *values = tv_map();
    tv_set(values, "x", tv_map());
    expect_refused("config.apply", args_of("values", values, NULL, NULL), "'values' item 1");
    values = tv_map();
    tv_set_int(values, "max_connections", 100);
    tv_set_bool(values, "log", true);
    expect_accepted("config.apply", args_of("values", values, NULL, NULL));
    /* maps: a list of maps */
    list = tv_array();
    tv_append(list, tv_str("not a map"));
    expect_refused("prepare", args_of("users", list, NULL, NULL), "'users' item 1 must be a map");
    /* args itself */
    struct tv *not_map = tv_array();
    expect_refused("ping", not_map, "args must be a map");
    /* open: the handler checks */
    expect_accepted("instance.create", args_of("anything", tv_int(1), NULL, NULL));
}

static void an_ack_is_an_envelope_with_an_id(void **state)
{
    (void)state;
    char err[200];
    struct tv *ack = tv_map();
    tv_set_int(ack, "v", WIRE_PROTOCOL_VERSION);
    tv_set_str(ack, "type", "ack");
    assert_int_equal(wire_check_envelope(ack, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing field \"id\""));
    tv_set_str(ack, "id", "task-1");
    assert_int_equal(wire_check_envelope(ack, err, sizeof err), 0);
    tv_free(ack);
}

/* ------------------------------------------------------------ the document */

struct doc_row {
    char op[80];
    char kind[16];
    char args[2048];
    bool agent_table;
};

/* Split a markdown table row on '|' not escaped by a backslash; cells trimmed. */
static int split_row(char *line, char **cells, int max)
{
    int n = 0;
    char *p = line;
    if (*p == '|')
        p++;
    while (*p && n < max) {
        char *start = p;
        while (*p && !(*p == '|' && (p == start || p[-1] != '\\')))
            p++;
        char *end = p;
        if (*p)
            *p++ = '\0';
        while (*start == ' ')
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\n'))
            *--end = '\0';
        cells[n++] = start;
        if (!*p || *p == '\n')
            break;
    }
    return n;
}

static size_t read_rows(struct doc_row *rows, size_t cap)
{
    FILE *f = fopen(protocol_md, "r");
    if (!f)
        fail_msg("cannot read %s", protocol_md);
    char line[4096];
    int table = 0;   /* 1 agent, 2 control */
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "#", 1) == 0)
            table = strstr(line, "### Agent operations") ? 1 : strstr(line, "### Control-plane operations") ? 2 : 0;
        if (!table || strncmp(line, "| `", 3) != 0)
            continue;
        char *cells[8];
        if (split_row(line, cells, 8) < 4)
            fail_msg("a row of the operations tables has fewer than 4 cells: %s", line);
        assert_true(n < cap);
        struct doc_row *r = &rows[n++];
        const char *name = cells[0] + 1;
        const char *tick = strchr(name, '`');
        assert_non_null(tick);
        snprintf(r->op, sizeof r->op, "%.*s", (int)(tick - name), name);
        snprintf(r->kind, sizeof r->kind, "%s", cells[1]);
        snprintf(r->args, sizeof r->args, "%s", cells[2]);
        r->agent_table = table == 1;
    }
    fclose(f);
    return n;
}

static const char *type_word(enum ops_type t)
{
    static const char *const words[] = {
        [OPS_STR] = "string", [OPS_INT] = "integer", [OPS_BOOL] = "boolean", [OPS_MAP] = "map",
        [OPS_KV] = "values",  [OPS_LIST] = "maps",   [OPS_STRINGS] = "strings",
    };
    return words[t];
}

/* The args cell the catalogue says this op has: "—", "open" or the list. */
static void expected_args(const struct ops_def *op, char *out, size_t cap)
{
    if (op->open_args) {
        snprintf(out, cap, "open");
        return;
    }
    if (op->n_args == 0) {
        snprintf(out, cap, "—");
        return;
    }
    size_t used = 0;
    for (size_t i = 0; i < op->n_args && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s`%s` (%s%s)", i ? ", " : "", op->args[i].name,
                                 type_word(op->args[i].type), op->args[i].required ? ", required" : "");
}

static void protocol_md_lists_the_catalogue(void **state)
{
    (void)state;
    static struct doc_row rows[OPS_COUNT + 32];
    size_t n = read_rows(rows, sizeof rows / sizeof rows[0]);
    bool seen[OPS_COUNT] = {false};
    for (size_t i = 0; i < n; i++) {
        const struct ops_def *op = ops_find(rows[i].op);
        if (!op)
            fail_msg("docs/protocol.md lists `%s`, which the catalogue does not have", rows[i].op);
        size_t id = (size_t)ops_id_of(op);
        if (seen[id])
            fail_msg("docs/protocol.md lists `%s` twice", rows[i].op);
        seen[id] = true;
        if (rows[i].agent_table != (op->scope == OPS_SCOPE_AGENT))
            fail_msg("`%s` is in the wrong table of docs/protocol.md", op->name);
        const char *kind = op->is_long ? "task" : "short";
        if (strcmp(rows[i].kind, kind) != 0)
            fail_msg("`%s`: docs/protocol.md says %s, the catalogue %s", op->name, rows[i].kind, kind);
        char want[2048];
        expected_args(op, want, sizeof want);
        if (strcmp(rows[i].args, want) != 0)
            fail_msg("`%s`: docs/protocol.md lists arguments\n  %s\nthe catalogue has\n  %s", op->name, rows[i].args,
                     want);
    }
    for (size_t i = 0; i < OPS_COUNT; i++)
        if (!seen[i])
            fail_msg("docs/protocol.md does not list `%s`", ops_catalogue[i].name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/docs/protocol.md\n", argv[0]);
        return 2;
    }
    protocol_md = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_unique_and_scoped),
        cmocka_unit_test(plugin_slots_are_checked_by_size_and_null),
        cmocka_unit_test(arguments_are_checked_by_the_schema),
        cmocka_unit_test(an_ack_is_an_envelope_with_an_id),
        cmocka_unit_test(protocol_md_lists_the_catalogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
