/*
 * test_verbs.c - trovectl's verbs agree with the operation catalogue
 * (common/ops.h) on both paths: every verb names an operation the catalogue
 * has, and on the REST path --wait follows exactly the verbs whose
 * operation runs as a task (the agents' path takes its timeouts from it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ops.h"
#include "trovectl.h"

static void every_agent_verb_names_a_catalogue_operation(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; verb_at(i); i++) {
        const struct verb *v = verb_at(i);
        if (!v->op)
            continue;   /* `call`: any operation, named on the command line */
        if (!ops_find(v->op))
            fail_msg("verb %s sends %s, which the catalogue does not have", v->name, v->op);
        checked++;
    }
    assert_true(checked > 30);
}

static void rest_verbs_wait_exactly_for_tasks(void **state)
{
    (void)state;
    const char *name, *op;
    bool waits;
    size_t with_op = 0, waiting = 0;
    for (size_t i = 0; rest_verb_at(i, &name, &op, &waits); i++) {
        if (!op) {
            if (waits)
                fail_msg("REST verb %s waits without an operation", name);
            continue;
        }
        const struct ops_def *def = ops_find(op);
        if (!def)
            fail_msg("REST verb %s names %s, which the catalogue does not have", name, op);
        if (waits != def->is_long)
            fail_msg("REST verb %s: %s is %s in the catalogue, but --wait %s", name, op,
                     def->is_long ? "a task" : "short", waits ? "follows it" : "does not");
        with_op++;
        waiting += waits;
    }
    /* create, delete, restart, resize-flavor, resize-volume */
    assert_int_equal(waiting, 5);
    assert_true(with_op > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_agent_verb_names_a_catalogue_operation),
        cmocka_unit_test(rest_verbs_wait_exactly_for_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
