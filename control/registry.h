/*
 * registry.h - the control plane's persistent store: tenants, datastores and
 * their versions, flavors, instances, agents, tasks, backups, configuration
 * groups and replica links, as typed records. One interface over two engines
 * (SQLite by default, PostgreSQL by connection string) with one schema and
 * versioned migrations run at open. It never touches sockets or processes.
 *
 * Conventions for every function below:
 * - Return an enum trove_status value: TROVE_OK; TROVE_EINVAL (bad input,
 *   nothing changed); TROVE_ENOTFOUND (no such row, or it belongs to another
 *   tenant, or the instance is deleted); TROVE_EEXIST (id or unique name
 *   taken); TROVE_ECONFLICT (a compare-and-set found another value);
 *   TROVE_EUNAVAIL (database unreachable or busy); TROVE_EINTERNAL (anything
 *   else, including no memory). On failure `err` holds one line saying why
 *   (err may be NULL); on success it is untouched.
 * - `tenant` arguments: NULL means any tenant (admin and internal use); a
 *   tenant id restricts the call to that tenant's rows, and another tenant's
 *   row is reported exactly like a missing one (TROVE_ENOTFOUND).
 * - Records. Zero-initialise a record before filling it. Fixed-size char
 *   arrays hold ids and short words; an empty string stores SQL NULL for an
 *   optional reference (e.g. replica_of) and is refused for a required one.
 *   `char *` fields are text of any length:
 *     * passed in (create/update): borrowed, never freed or kept by the
 *       registry; NULL stores "" (or "{}" for JSON fields);
 *     * filled out (get/list): malloc'd, never NULL, owned by the caller and
 *       released with the record's _clear (one record) or _free (a list).
 *       A failed get leaves the record zeroed and a failed list leaves
 *       *items NULL and *n 0, so releasing them unconditionally is safe.
 *   Never _clear a record whose pointers you filled yourself.
 *   Text is stored byte for byte (quotes, backslashes, UTF-8, long strings);
 *   it may not contain NUL. JSON fields must hold valid JSON text.
 * - Ids: create with an empty id generates a random UUID (v4) and writes it
 *   into the record; a given id is used as is. created_at/updated_at are
 *   milliseconds since the Unix epoch, set by the registry (see
 *   registry_set_clock) and written back into the record by create/update.
 * - Every value reaches SQL as a bound parameter.
 *
 * Threads: a struct registry is not thread-safe; use it from one thread (the
 * daemon's loop) or serialise calls. Calls block on the database (local file
 * for SQLite, a network round trip for PostgreSQL). Several processes may
 * open the same database: the compare-and-set helpers stay correct.
 * A PostgreSQL connection that breaks fails the call that finds it broken
 * (TROVE_EUNAVAIL) and is re-established by the next call outside a
 * transaction.
 */
#ifndef TROVE_CONTROL_REGISTRY_H
#define TROVE_CONTROL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REGISTRY_ID_MAX 64            /* ids: UUIDs, tenant ids, flavor ids, datastore names */
#define REGISTRY_WORD_MAX 32          /* statuses, states, kinds */
#define REGISTRY_ID_SIZE (REGISTRY_ID_MAX + 1)
#define REGISTRY_WORD_SIZE (REGISTRY_WORD_MAX + 1)

/* The schema version this code writes and understands. A database at a
 * higher version is refused at open; a lower one is migrated. */
#define REGISTRY_SCHEMA_VERSION 1

/* The SQLite file name the daemon uses inside its state directory. */
#define REGISTRY_SQLITE_FILE "registry.db"

/* Instance statuses (Trove's API names). Anything else is refused. */
#define REGISTRY_INSTANCE_STATUSES                                                   \
    "NEW", "BUILD", "ACTIVE", "BLOCKED", "SHUTDOWN", "REBOOT", "RESIZE",             \
    "RESTART_REQUIRED", "BACKUP", "PROMOTE", "EJECT", "DETACH", "UPGRADE",           \
    "LOGGING", "HEALTHY", "FAILED", "ERROR", "DELETED"
/* Task states; NEW and RUNNING are unfinished. */
#define REGISTRY_TASK_STATES "NEW", "RUNNING", "COMPLETED", "FAILED"
/* Backup states. */
#define REGISTRY_BACKUP_STATES "NEW", "BUILDING", "SAVING", "COMPLETED", "FAILED", "DELETE_FAILED"
/* Volume kinds of an instance ("" while not provisioned yet). */
#define REGISTRY_VOLUME_KINDS "", "loop", "directory"

struct registry;

/* ---- opening ---------------------------------------------------------- */

/* Open (creating if needed) and migrate the registry named by `url`:
 *   "PATH" or "sqlite:PATH"         SQLite file (created mode 0600), WAL mode
 *   "postgresql://..." "postgres://..."   PostgreSQL connection URI
 *   "host=... dbname=..."           PostgreSQL keyword/value connection string
 * A keyword string is recognised by starting with `word=`; anything else is a
 * path. Passwords belong in the connection string's password=, PGPASSWORD or
 * a ~/.pgpass file; no error message repeats the connection string.
 * Refuses a database whose schema is newer than REGISTRY_SCHEMA_VERSION.
 * Returns NULL with the reason in err. */
struct registry *registry_open(const char *url, char *err, size_t errlen);
/* Close; NULL is allowed. A transaction still open is rolled back. */
void registry_close(struct registry *r);
/* "sqlite" or "postgresql". */
const char *registry_backend(const struct registry *r);
/* The schema version the database is at (REGISTRY_SCHEMA_VERSION after open). */
int registry_schema_version(struct registry *r);
/* The clock for created_at/updated_at/deleted_at/last_seen_at: now_ms(user)
 * in ms since the epoch. Default: the wall clock. Tests pin it. */
void registry_set_clock(struct registry *r, int64_t (*now_ms)(void *user), void *user);

/* ---- transactions ----------------------------------------------------- */

/* Group several calls atomically: begin, calls, commit (or rollback). Not
 * nested: a second begin is TROVE_ECONFLICT. Calls made inside keep their
 * own atomicity guarantees; a failed call does not end the transaction, so
 * roll back after one. Without begin, each call is its own transaction. */
int registry_begin(struct registry *r, char *err, size_t errlen);
int registry_commit(struct registry *r, char *err, size_t errlen);
void registry_rollback(struct registry *r);

/* ---- listing ---------------------------------------------------------- */

/* Which rows a _list call returns. Rows come ordered by (created_at, id);
 * with a marker, the page starts after the row with that id (Trove's
 * paging: marker = last id of the previous page). A marker that does not
 * name a visible row of that list is TROVE_ENOTFOUND. A filter the kind
 * has no column for (tenant on tenants, datastores, versions, flavors and
 * agents; instance or datastore elsewhere) is TROVE_EINVAL. q may be NULL
 * (everything, no paging). */
struct registry_query {
    const char *tenant;       /* NULL: all tenants */
    const char *marker;       /* NULL: from the start */
    size_t limit;             /* 0: no limit */
    const char *instance;     /* tasks, backups: only this instance's (NULL: all) */
    const char *datastore;    /* datastore versions: only this datastore's (NULL: all) */
    bool include_deleted;     /* instances: also deleted ones */
};
/* List results: `*items` is a malloc'd array of `*n` records (NULL when 0),
 * released with the kind's _free(items, n). `*more` (may be NULL) says a
 * further page exists after the last item. */

/* ---- tenants ---------------------------------------------------------- */

struct registry_tenant {
    char id[REGISTRY_ID_SIZE];     /* required (as it appears in /v1.0/{tenant}/) */
    char *name;
    int64_t created_at;
};
int registry_tenant_create(struct registry *r, struct registry_tenant *t, char *err, size_t errlen);
int registry_tenant_get(struct registry *r, const char *id, struct registry_tenant *out, char *err, size_t errlen);
int registry_tenant_list(struct registry *r, const struct registry_query *q, struct registry_tenant **items,
                         size_t *n, bool *more, char *err, size_t errlen);
/* TROVE_EINVAL while any row still refers to the tenant. */
int registry_tenant_delete(struct registry *r, const char *id, char *err, size_t errlen);
void registry_tenant_clear(struct registry_tenant *t);
void registry_tenants_free(struct registry_tenant *items, size_t n);

/* ---- datastores and their versions ------------------------------------ */

struct registry_datastore {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char name[REGISTRY_ID_SIZE];           /* "mysql", "postgresql", "redis"; unique */
    char default_version_id[REGISTRY_ID_SIZE];  /* optional */
    int64_t created_at, updated_at;
};
int registry_datastore_create(struct registry *r, struct registry_datastore *d, char *err, size_t errlen);
/* By id or by name (either matches). */
int registry_datastore_get(struct registry *r, const char *id_or_name, struct registry_datastore *out, char *err,
                           size_t errlen);
int registry_datastore_list(struct registry *r, const struct registry_query *q, struct registry_datastore **items,
                            size_t *n, bool *more, char *err, size_t errlen);
/* Writes name and default_version_id of the row with d->id. */
int registry_datastore_update(struct registry *r, struct registry_datastore *d, char *err, size_t errlen);
void registry_datastore_clear(struct registry_datastore *d);
void registry_datastores_free(struct registry_datastore *items, size_t n);

struct registry_datastore_version {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char datastore[REGISTRY_ID_SIZE];      /* a datastore's name */
    char *name;                            /* "10.11"; unique within the datastore */
    char *plugin;                          /* plugin name the agent loads: "mysql" */
    char *engine;                          /* JSON: engine binaries and paths */
    bool active;                           /* offered for new instances */
    char *packages;                        /* free text (Trove's packages) */
    char *image;                           /* free text (Trove's image) */
    int64_t created_at, updated_at;
};
int registry_datastore_version_create(struct registry *r, struct registry_datastore_version *v, char *err,
                                      size_t errlen);
int registry_datastore_version_get(struct registry *r, const char *id, struct registry_datastore_version *out,
                                   char *err, size_t errlen);
/* By datastore name and version name. */
int registry_datastore_version_find(struct registry *r, const char *datastore, const char *name,
                                    struct registry_datastore_version *out, char *err, size_t errlen);
int registry_datastore_version_list(struct registry *r, const struct registry_query *q,
                                    struct registry_datastore_version **items, size_t *n, bool *more, char *err,
                                    size_t errlen);
/* Writes every field but id, datastore and created_at. */
int registry_datastore_version_update(struct registry *r, struct registry_datastore_version *v, char *err,
                                      size_t errlen);
void registry_datastore_version_clear(struct registry_datastore_version *v);
void registry_datastore_versions_free(struct registry_datastore_version *items, size_t n);

/* ---- flavors ---------------------------------------------------------- */

struct registry_flavor {
    char id[REGISTRY_ID_SIZE];             /* generated when empty; Trove shows it as a string */
    char *name;                            /* unique */
    int64_t ram_mb, vcpus, disk_gb;
    int64_t created_at;
};
int registry_flavor_create(struct registry *r, struct registry_flavor *f, char *err, size_t errlen);
int registry_flavor_get(struct registry *r, const char *id, struct registry_flavor *out, char *err, size_t errlen);
int registry_flavor_list(struct registry *r, const struct registry_query *q, struct registry_flavor **items,
                         size_t *n, bool *more, char *err, size_t errlen);
/* TROVE_EINVAL while an instance uses it. */
int registry_flavor_delete(struct registry *r, const char *id, char *err, size_t errlen);
void registry_flavor_clear(struct registry_flavor *f);
void registry_flavors_free(struct registry_flavor *items, size_t n);

/* ---- instances -------------------------------------------------------- */

struct registry_instance {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char tenant_id[REGISTRY_ID_SIZE];      /* required, an existing tenant */
    char *name;
    char status[REGISTRY_WORD_SIZE];       /* REGISTRY_INSTANCE_STATUSES */
    char *status_reason;                   /* why ERROR/SHUTDOWN/...; "" otherwise */
    char datastore[REGISTRY_ID_SIZE];      /* datastore name */
    char datastore_version_id[REGISTRY_ID_SIZE];  /* an existing version */
    char flavor_id[REGISTRY_ID_SIZE];      /* an existing flavor */
    int64_t volume_size_gb;
    char volume_kind[REGISTRY_WORD_SIZE];  /* REGISTRY_VOLUME_KINDS */
    int64_t engine_port;                   /* 0 until allocated */
    char *ports;                           /* JSON: other ports by name, e.g. {"agent": 5601} */
    char *agent_public_key;                /* Z85 CURVE key, "" until generated */
    char configuration_id[REGISTRY_ID_SIZE];  /* optional */
    char replica_of[REGISTRY_ID_SIZE];     /* optional: source instance id */
    /* Set only through the helpers below (ignored by create and update): */
    char task_id[REGISTRY_ID_SIZE];        /* the one task running on it, "" if none */
    int64_t hb_epoch, hb_seq;              /* last applied heartbeat (0, 0: none) */
    bool deleted;
    int64_t deleted_at;                    /* 0 unless deleted */
    /* */
    char *provision;                       /* JSON private to the provisioner (paths, pids) */
    int64_t created_at, updated_at;
};
/* Stores every field but the helper-managed ones (task_id "", hb 0/0, not
 * deleted). */
int registry_instance_create(struct registry *r, struct registry_instance *in, char *err, size_t errlen);
/* A deleted instance is TROVE_ENOTFOUND. */
int registry_instance_get(struct registry *r, const char *tenant, const char *id, struct registry_instance *out,
                          char *err, size_t errlen);
int registry_instance_list(struct registry *r, const struct registry_query *q, struct registry_instance **items,
                           size_t *n, bool *more, char *err, size_t errlen);
/* Writes the fields create stores, except id, tenant_id and created_at, of a
 * live (not deleted) instance; refreshes updated_at. For read-modify-write
 * from one thread; use the helpers below where another writer may race. */
int registry_instance_update(struct registry *r, struct registry_instance *in, char *err, size_t errlen);
/* Compare-and-set the status: only if it is `expected` now (NULL: any).
 * TROVE_ECONFLICT (naming the current status) otherwise. reason NULL = "". */
int registry_instance_set_status(struct registry *r, const char *id, const char *expected, const char *status,
                                 const char *reason, char *err, size_t errlen);
/* One action at a time: set task_id to `task` (NULL clears) only if it is
 * `expected` now (NULL: no task). TROVE_ECONFLICT naming the running task
 * otherwise, TROVE_ENOTFOUND for a missing or deleted instance. */
int registry_instance_set_task(struct registry *r, const char *id, const char *expected, const char *task,
                               char *err, size_t errlen);
/* Apply a heartbeat only if (epoch, seq) is newer than the stored pair
 * (epoch first: a restarted agent starts a new epoch and counts seq from 1).
 * Then stores the pair and, when status is not NULL, status and reason.
 * *applied (may be NULL) tells whether it was newer. TROVE_OK either way;
 * TROVE_ENOTFOUND for a missing or deleted instance. */
int registry_instance_apply_heartbeat(struct registry *r, const char *id, int64_t epoch, int64_t seq,
                                      const char *status, const char *reason, bool *applied, char *err,
                                      size_t errlen);
/* Mark deleted (deleted_at = now, status DELETED, task cleared). The row
 * stays for history; get and list (by default) no longer show it.
 * TROVE_ENOTFOUND if missing or already deleted. */
int registry_instance_mark_deleted(struct registry *r, const char *tenant, const char *id, char *err,
                                   size_t errlen);
void registry_instance_clear(struct registry_instance *in);
void registry_instances_free(struct registry_instance *items, size_t n);

/* ---- agents (the last word from each instance's agent) ---------------- */

struct registry_agent {
    char instance_id[REGISTRY_ID_SIZE];
    char *public_key;                      /* Z85 */
    char *hello;                           /* JSON: last hello message */
    int64_t last_seen_at;                  /* set by put */
};
/* Insert or replace the agent row of a.instance_id (no instance row needed). */
int registry_agent_put(struct registry *r, struct registry_agent *a, char *err, size_t errlen);
int registry_agent_get(struct registry *r, const char *instance_id, struct registry_agent *out, char *err,
                       size_t errlen);
/* Ordered by instance_id; q->tenant must be NULL (agents have no tenant). */
int registry_agent_list(struct registry *r, const struct registry_query *q, struct registry_agent **items,
                        size_t *n, bool *more, char *err, size_t errlen);
int registry_agent_delete(struct registry *r, const char *instance_id, char *err, size_t errlen);
void registry_agent_clear(struct registry_agent *a);
void registry_agents_free(struct registry_agent *items, size_t n);

/* ---- tasks ------------------------------------------------------------ */

struct registry_task {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char tenant_id[REGISTRY_ID_SIZE];      /* optional (admin tasks have none) */
    char instance_id[REGISTRY_ID_SIZE];    /* optional */
    char kind[REGISTRY_WORD_SIZE];         /* "instance.create", "user.create", "backup.create", ... */
    char state[REGISTRY_WORD_SIZE];        /* REGISTRY_TASK_STATES */
    int64_t progress;                      /* 0-100 */
    char *message;                         /* what is happening now */
    char *error;                           /* why it FAILED; "" otherwise */
    char *args;                            /* JSON of the request, with no secrets in it */
    char *result;                          /* JSON result once COMPLETED ("{}" before) */
    char owner[REGISTRY_ID_SIZE];          /* the control process running it */
    int64_t owner_epoch;                   /* that process's start epoch */
    int64_t created_at, updated_at;
};
int registry_task_create(struct registry *r, struct registry_task *t, char *err, size_t errlen);
int registry_task_get(struct registry *r, const char *tenant, const char *id, struct registry_task *out,
                      char *err, size_t errlen);
/* q->instance restricts to one instance's tasks. */
int registry_task_list(struct registry *r, const struct registry_query *q, struct registry_task **items,
                       size_t *n, bool *more, char *err, size_t errlen);
/* Every NEW or RUNNING task of every tenant, oldest first (restart recovery). */
int registry_tasks_list_unfinished(struct registry *r, struct registry_task **items, size_t *n, char *err,
                                   size_t errlen);
/* Progress of an unfinished task: state (NULL: keep), progress, message
 * (NULL: keep). TROVE_ECONFLICT if the task already finished. */
int registry_task_progress(struct registry *r, const char *id, const char *state, int64_t progress,
                           const char *message, char *err, size_t errlen);
/* Finish an unfinished task: state COMPLETED or FAILED, error (NULL: ""),
 * result JSON (NULL: keep); progress becomes 100 when COMPLETED.
 * TROVE_ECONFLICT if it already finished (a second finish changes nothing). */
int registry_task_finish(struct registry *r, const char *id, const char *state, const char *error,
                         const char *result, char *err, size_t errlen);
/* Take over an unfinished task: set owner/owner_epoch only if its
 * owner_epoch is `expected_epoch` now. TROVE_ECONFLICT otherwise. */
int registry_task_claim(struct registry *r, const char *id, int64_t expected_epoch, const char *owner,
                        int64_t epoch, char *err, size_t errlen);
void registry_task_clear(struct registry_task *t);
void registry_tasks_free(struct registry_task *items, size_t n);

/* ---- backups ---------------------------------------------------------- */

struct registry_backup {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char tenant_id[REGISTRY_ID_SIZE];      /* required */
    char instance_id[REGISTRY_ID_SIZE];    /* optional: the source instance */
    char parent_id[REGISTRY_ID_SIZE];      /* optional: an incremental's parent backup */
    char *name;
    char *description;
    char state[REGISTRY_WORD_SIZE];        /* REGISTRY_BACKUP_STATES */
    int64_t size_bytes;
    char *checksum;
    char *location;
    char datastore_version_id[REGISTRY_ID_SIZE];  /* optional */
    int64_t created_at, updated_at;
};
int registry_backup_create(struct registry *r, struct registry_backup *b, char *err, size_t errlen);
int registry_backup_get(struct registry *r, const char *tenant, const char *id, struct registry_backup *out,
                        char *err, size_t errlen);
/* q->instance restricts to one instance's backups. */
int registry_backup_list(struct registry *r, const struct registry_query *q, struct registry_backup **items,
                         size_t *n, bool *more, char *err, size_t errlen);
/* Writes name, description, state, size_bytes, checksum, location. */
int registry_backup_update(struct registry *r, struct registry_backup *b, char *err, size_t errlen);
/* TROVE_EINVAL while an incremental backup names it as parent. */
int registry_backup_delete(struct registry *r, const char *tenant, const char *id, char *err, size_t errlen);
void registry_backup_clear(struct registry_backup *b);
void registry_backups_free(struct registry_backup *items, size_t n);

/* ---- configuration groups --------------------------------------------- */

struct registry_configuration {
    char id[REGISTRY_ID_SIZE];             /* generated when empty */
    char tenant_id[REGISTRY_ID_SIZE];      /* required */
    char *name;
    char *description;
    char datastore_version_id[REGISTRY_ID_SIZE];  /* required */
    int64_t created_at, updated_at;
};
struct registry_configuration_value {
    char *key;                             /* parameter name */
    char *value;                           /* JSON: 100, "text", true, ... */
};
int registry_configuration_create(struct registry *r, struct registry_configuration *c, char *err, size_t errlen);
int registry_configuration_get(struct registry *r, const char *tenant, const char *id,
                               struct registry_configuration *out, char *err, size_t errlen);
int registry_configuration_list(struct registry *r, const struct registry_query *q,
                                struct registry_configuration **items, size_t *n, bool *more, char *err,
                                size_t errlen);
/* Writes name and description. */
int registry_configuration_update(struct registry *r, struct registry_configuration *c, char *err, size_t errlen);
/* Deletes the group and its values; TROVE_EINVAL while an instance uses it. */
int registry_configuration_delete(struct registry *r, const char *tenant, const char *id, char *err,
                                  size_t errlen);
/* Replace all values of a group atomically (keys unique, n may be 0). */
int registry_configuration_set_values(struct registry *r, const char *tenant, const char *id,
                                      const struct registry_configuration_value *values, size_t n, char *err,
                                      size_t errlen);
/* The values ordered by key; *values malloc'd (NULL when 0), freed with
 * registry_configuration_values_free. */
int registry_configuration_get_values(struct registry *r, const char *tenant, const char *id,
                                      struct registry_configuration_value **values, size_t *n, char *err,
                                      size_t errlen);
void registry_configuration_clear(struct registry_configuration *c);
void registry_configurations_free(struct registry_configuration *items, size_t n);
void registry_configuration_values_free(struct registry_configuration_value *values, size_t n);

/* ---- replica links ---------------------------------------------------- */

struct registry_replica_link {
    char replica_id[REGISTRY_ID_SIZE];     /* an instance; it has at most one source */
    char source_id[REGISTRY_ID_SIZE];      /* an instance */
    char state[REGISTRY_WORD_SIZE];        /* free word: "attaching", "streaming", "detached", ... */
    int64_t created_at, updated_at;
};
/* Insert, or replace the source and state of, the link of l->replica_id. */
int registry_replica_link_put(struct registry *r, struct registry_replica_link *l, char *err, size_t errlen);
int registry_replica_link_get(struct registry *r, const char *replica_id, struct registry_replica_link *out,
                              char *err, size_t errlen);
/* The replicas of one source, ordered by (created_at, replica_id). */
int registry_replica_link_list(struct registry *r, const char *source_id, struct registry_replica_link **items,
                               size_t *n, char *err, size_t errlen);
int registry_replica_link_delete(struct registry *r, const char *replica_id, char *err, size_t errlen);
void registry_replica_links_free(struct registry_replica_link *items, size_t n);

/* ---- whole-store views ------------------------------------------------ */

/* Every row of every table, one line per row, tables in a fixed order and
 * rows by primary key (bytewise): `table<TAB>col="value"<TAB>...`, values
 * C-escaped (\" \\ \t \n \r \xHH), SQL NULL as NULL. The same data gives the
 * same text on both backends, so tests compare dumps to prove nothing
 * changed. */
int registry_dump(struct registry *r, FILE *out, char *err, size_t errlen);
/* The same into a malloc'd string (*text, caller frees). */
int registry_dump_string(struct registry *r, char **text, char *err, size_t errlen);

/* Whether a word is in the lists above. */
bool registry_instance_status_valid(const char *status);
bool registry_task_state_valid(const char *state);
bool registry_backup_state_valid(const char *state);

#endif
