/*
 * test_verbs.c - trovectl's verbs on the agents' path agree with the
 * operation catalogue (common/ops.h): every verb names an operation the
 * catalogue has, and runs it as a task exactly when the catalogue says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ops.h"
#include "trovectl.h"

static void every_verb_names_a_catalogue_operation(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; verb_at(i); i++) {
        const struct verb *v = verb_at(i);
        if (!v->op)
            continue;   /* `call`: any operation, named on the command line */
        const struct ops_def *op = ops_find(v->op);
        if (!op)
            fail_msg("verb %s sends %s, which the catalogue does not have", v->name, v->op);
        if (v->long_op != op->is_long)
            fail_msg("verb %s: %s is %s in the catalogue, but the verb says %s", v->name, v->op,
                     op->is_long ? "a task" : "short", v->long_op ? "a task" : "short");
        checked++;
    }
    assert_true(checked > 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_verb_names_a_catalogue_operation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
