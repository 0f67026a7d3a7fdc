/*
 * storage_object.h - backup storage in Swift or S3, opened from the
 * "storage" argument of one request: the signed URLs the control plane made
 * for the backups that request may touch (common/backup_store.h writes
 * them). The agent holds no storage credential; what it can reach is what
 * those URLs reach, until they expire.
 */
#ifndef TROVE_STORAGE_OBJECT_H
#define TROVE_STORAGE_OBJECT_H

#include <stddef.h>

#include "host.h"
#include "storage.h"
#include "value.h"

/* A storage over the backups of scope (a map: driver, backups[]). NULL with
 * a reason in err when the scope is malformed. */
struct storage *storage_object_open(const struct tv *scope, char *err, size_t errlen);

/* For the backup operations: when args has "storage", open it and make it
 * the call's storage (call->storage) until storage_scope_detach. Without
 * the argument the call keeps the agent's own (file) storage. */
int storage_scope_attach(struct trove_call *call, const struct tv *args);
void storage_scope_detach(struct trove_call *call);

#endif
