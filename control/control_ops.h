/*
 * control_ops.h - the operations the control plane answers from what it
 * knows (control.ping, control.instances, control.instance, control.task,
 * control.tasks), registered with the core like any other control op.
 */
#ifndef TROVE_CONTROL_CONTROL_OPS_H
#define TROVE_CONTROL_CONTROL_OPS_H

struct agents;
struct control_core;
struct tasks;

struct control_ops {
    struct agents *agents;
    struct tasks *tasks;
};

/* Register every control.* handler; ops is borrowed and must outlive the
 * core. 0, or -1 (logged). */
int control_ops_register(struct control_core *core, struct control_ops *ops);

#endif
