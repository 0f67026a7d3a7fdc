/*
 * backup.h - backup records and their lifecycle around the plugin's
 * backup slots: a record is written as "running" before the first byte, and
 * only a committed, checksummed piece ever becomes "complete". Restores
 * verify every piece of the chain before the plugin touches any data.
 */
#ifndef TROVE_BACKUP_H
#define TROVE_BACKUP_H

#include "agent.h"
#include "args.h"
#include "host.h"

/* backup.create and replication.snapshot (snapshot = true). */
int backup_op_create(struct agent *a, struct trove_call *call, const struct tv *args, bool snapshot);
int backup_op_list(struct agent *a, struct trove_call *call, const struct tv *args);
int backup_op_show(struct agent *a, struct trove_call *call, const struct tv *args);
int backup_op_delete(struct agent *a, struct trove_call *call, const struct tv *args);
int backup_op_restore(struct agent *a, struct trove_call *call, const struct tv *args);

/* A verified chain, ready to hand to the plugin. */
struct restore_chain {
    struct trove_restore_request req;
    struct trove_restore_piece *pieces;
    struct tv **records;
    size_t n;
    struct arena ar;
};

/* Build and verify the chain that ends at backup `id` (full first). */
int backup_chain_open(struct agent *a, struct trove_call *call, const char *id, struct restore_chain *chain);
void backup_chain_close(struct restore_chain *chain);

/* Mark this instance's backups left "running" by a dead process as failed. */
void backup_recover_interrupted(struct agent *a);

#endif
