/*
 * registry_records.c - each kind of record as a column list, the public
 * typed functions over the generic operations, and the compare-and-set
 * helpers (status, task, heartbeat, task progress) whose condition lives in
 * the UPDATE itself so no other writer can slip in between.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_sql.h"
#include "status.h"

/* ---- allowed words ---------------------------------------------------- */

static bool in_list(const char *word, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(word, list[i]) == 0)
            return true;
    return false;
}
#define IN(word, ...) in_list(word, (const char *const[]){__VA_ARGS__}, \
                              sizeof (const char *const[]){__VA_ARGS__} / sizeof(const char *))

bool registry_instance_status_valid(const char *s)
{
    return s && IN(s, REGISTRY_INSTANCE_STATUSES);
}

bool registry_task_state_valid(const char *s)
{
    return s && IN(s, REGISTRY_TASK_STATES);
}

bool registry_backup_state_valid(const char *s)
{
    return s && IN(s, REGISTRY_BACKUP_STATES);
}

static bool volume_kind_valid(const char *s)
{
    return IN(s, REGISTRY_VOLUME_KINDS);
}

static bool task_unfinished(const char *s)
{
    return s && IN(s, "NEW", "RUNNING");
}

/* ---- kinds ------------------------------------------------------------ */

#define COL(type_, field, kind_, flags_) {#field, kind_, offsetof(type_, field), flags_, NULL, 0, 0}
#define WORD(type_, field, flags_, valid_) {#field, COL_WORD, offsetof(type_, field), flags_, valid_, 0, 0}
#define RANGE(type_, field, flags_, lo, hi) {#field, COL_INT, offsetof(type_, field), flags_, NULL, lo, hi}
#define KIND(noun_, table_, type_, cols_) \
    {noun_, table_, cols_, sizeof cols_ / sizeof cols_[0], sizeof(type_)}

#define T struct registry_tenant
static const struct column tenant_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_FIXED),
    COL(T, name, COL_TEXT, 0),
    COL(T, created_at, COL_INT, F_CREATED),
};
#undef T
static const struct kind tenant_kind = KIND("tenant", "tenants", struct registry_tenant, tenant_cols);

#define T struct registry_datastore
static const struct column datastore_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, name, COL_ID, 0),
    COL(T, default_version_id, COL_REF, 0),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind datastore_kind = KIND("datastore", "datastores", struct registry_datastore, datastore_cols);

#define T struct registry_datastore_version
static const struct column version_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, datastore, COL_ID, F_FIXED | F_DATASTORE),
    COL(T, name, COL_TEXT, 0),
    COL(T, plugin, COL_TEXT, 0),
    COL(T, engine, COL_JSON, 0),
    COL(T, active, COL_BOOL, 0),
    COL(T, packages, COL_TEXT, 0),
    COL(T, image, COL_TEXT, 0),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind version_kind =
    KIND("datastore version", "datastore_versions", struct registry_datastore_version, version_cols);

#define T struct registry_flavor
static const struct column flavor_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, name, COL_TEXT, 0),
    RANGE(T, ram_mb, 0, 0, INT64_MAX),
    RANGE(T, vcpus, 0, 0, INT64_MAX),
    RANGE(T, disk_gb, 0, 0, INT64_MAX),
    COL(T, created_at, COL_INT, F_CREATED),
};
#undef T
static const struct kind flavor_kind = KIND("flavor", "flavors", struct registry_flavor, flavor_cols);

#define T struct registry_instance
static const struct column instance_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, tenant_id, COL_ID, F_FIXED | F_TENANT),
    COL(T, name, COL_TEXT, 0),
    WORD(T, status, 0, registry_instance_status_valid),
    COL(T, status_reason, COL_TEXT, 0),
    COL(T, datastore, COL_ID, 0),
    COL(T, datastore_version_id, COL_ID, 0),
    COL(T, flavor_id, COL_ID, 0),
    RANGE(T, volume_size_gb, 0, 0, INT64_MAX),
    WORD(T, volume_kind, 0, volume_kind_valid),
    RANGE(T, engine_port, 0, 0, 65535),
    COL(T, ports, COL_JSON, 0),
    COL(T, agent_public_key, COL_TEXT, 0),
    COL(T, configuration_id, COL_REF, 0),
    COL(T, replica_of, COL_REF, 0),
    COL(T, task_id, COL_REF, F_HELPER),
    COL(T, hb_epoch, COL_INT, F_HELPER),
    COL(T, hb_seq, COL_INT, F_HELPER),
    COL(T, deleted, COL_BOOL, F_HELPER | F_DELETED),
    COL(T, deleted_at, COL_INT, F_HELPER),
    COL(T, provision, COL_JSON, 0),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind instance_kind = KIND("instance", "instances", struct registry_instance, instance_cols);

#define T struct registry_agent
static const struct column agent_cols[] = {
    COL(T, instance_id, COL_ID, F_KEY | F_FIXED),
    COL(T, public_key, COL_TEXT, 0),
    COL(T, hello, COL_JSON, 0),
    COL(T, last_seen_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind agent_kind = KIND("agent", "agents", struct registry_agent, agent_cols);

#define T struct registry_task
static const struct column task_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, tenant_id, COL_REF, F_FIXED | F_TENANT),
    COL(T, instance_id, COL_REF, F_FIXED | F_INSTANCE),
    WORD(T, kind, F_FIXED, NULL),
    WORD(T, state, 0, registry_task_state_valid),
    RANGE(T, progress, 0, 0, 100),
    COL(T, message, COL_TEXT, 0),
    COL(T, error, COL_TEXT, 0),
    COL(T, args, COL_JSON, F_FIXED),
    COL(T, result, COL_JSON, 0),
    COL(T, owner, COL_REF, 0),
    COL(T, owner_epoch, COL_INT, 0),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind task_kind = KIND("task", "tasks", struct registry_task, task_cols);

#define T struct registry_backup
static const struct column backup_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, tenant_id, COL_ID, F_FIXED | F_TENANT),
    COL(T, instance_id, COL_REF, F_FIXED | F_INSTANCE),
    COL(T, parent_id, COL_REF, F_FIXED),
    COL(T, name, COL_TEXT, 0),
    COL(T, description, COL_TEXT, 0),
    WORD(T, state, 0, registry_backup_state_valid),
    RANGE(T, size_bytes, 0, 0, INT64_MAX),
    COL(T, checksum, COL_TEXT, 0),
    COL(T, location, COL_TEXT, 0),
    COL(T, datastore_version_id, COL_REF, F_FIXED),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind backup_kind = KIND("backup", "backups", struct registry_backup, backup_cols);

#define T struct registry_configuration
static const struct column configuration_cols[] = {
    COL(T, id, COL_ID, F_KEY | F_GEN | F_FIXED),
    COL(T, tenant_id, COL_ID, F_FIXED | F_TENANT),
    COL(T, name, COL_TEXT, 0),
    COL(T, description, COL_TEXT, 0),
    COL(T, datastore_version_id, COL_ID, F_FIXED),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind configuration_kind =
    KIND("configuration", "configurations", struct registry_configuration, configuration_cols);

#define T struct registry_replica_link
static const struct column replica_cols[] = {
    COL(T, replica_id, COL_ID, F_KEY | F_FIXED),
    COL(T, source_id, COL_ID, 0),
    WORD(T, state, 0, NULL),
    COL(T, created_at, COL_INT, F_CREATED),
    COL(T, updated_at, COL_INT, F_UPDATED),
};
#undef T
static const struct kind replica_kind = KIND("replica link", "replica_links", struct registry_replica_link,
                                             replica_cols);

/* ---- the typed wrappers ----------------------------------------------- */

/* create, list, clear and free are the same for every kind. */
#define COMMON(prefix, plural, type_, kind_)                                                                 \
    int registry_##prefix##_create(struct registry *r, type_ *rec, char *err, size_t errlen)                \
    {                                                                                                        \
        return rec_create(r, &kind_, rec, err, errlen);                                                      \
    }                                                                                                        \
    void registry_##prefix##_clear(type_ *rec)                                                               \
    {                                                                                                        \
        if (rec)                                                                                             \
            rec_clear(&kind_, rec);                                                                          \
    }                                                                                                        \
    void registry_##plural##_free(type_ *items, size_t n)                                                    \
    {                                                                                                        \
        recs_free(&kind_, items, n);                                                                         \
    }
#define LIST(prefix, type_, kind_)                                                                           \
    int registry_##prefix##_list(struct registry *r, const struct registry_query *q, type_ **items,         \
                                 size_t *n, bool *more, char *err, size_t errlen)                            \
    {                                                                                                        \
        return rec_list(r, &kind_, q, NULL, (void **)items, n, more, err, errlen);                           \
    }

COMMON(tenant, tenants, struct registry_tenant, tenant_kind)
LIST(tenant, struct registry_tenant, tenant_kind)
COMMON(datastore, datastores, struct registry_datastore, datastore_kind)
LIST(datastore, struct registry_datastore, datastore_kind)
COMMON(datastore_version, datastore_versions, struct registry_datastore_version, version_kind)
LIST(datastore_version, struct registry_datastore_version, version_kind)
COMMON(flavor, flavors, struct registry_flavor, flavor_kind)
LIST(flavor, struct registry_flavor, flavor_kind)
COMMON(instance, instances, struct registry_instance, instance_kind)
LIST(instance, struct registry_instance, instance_kind)
LIST(agent, struct registry_agent, agent_kind)
COMMON(task, tasks, struct registry_task, task_kind)
LIST(task, struct registry_task, task_kind)
COMMON(backup, backups, struct registry_backup, backup_kind)
LIST(backup, struct registry_backup, backup_kind)
COMMON(configuration, configurations, struct registry_configuration, configuration_kind)
LIST(configuration, struct registry_configuration, configuration_kind)

void registry_agent_clear(struct registry_agent *a)
{
    if (a)
        rec_clear(&agent_kind, a);
}

void registry_agents_free(struct registry_agent *items, size_t n)
{
    recs_free(&agent_kind, items, n);
}

void registry_replica_links_free(struct registry_replica_link *items, size_t n)
{
    recs_free(&replica_kind, items, n);
}

/* ---- tenants, datastores, versions, flavors --------------------------- */

int registry_tenant_get(struct registry *r, const char *id, struct registry_tenant *out, char *err, size_t errlen)
{
    return rec_get(r, &tenant_kind, NULL, NULL, id, out, err, errlen);
}

int registry_tenant_delete(struct registry *r, const char *id, char *err, size_t errlen)
{
    return rec_delete(r, &tenant_kind, NULL, id, err, errlen);
}

int registry_datastore_get(struct registry *r, const char *id_or_name, struct registry_datastore *out, char *err,
                           size_t errlen)
{
    int status = rec_get(r, &datastore_kind, NULL, "id", id_or_name, out, err, errlen);
    if (status == TROVE_ENOTFOUND)
        status = rec_get(r, &datastore_kind, NULL, "name", id_or_name, out, err, errlen);
    return status;
}

int registry_datastore_update(struct registry *r, struct registry_datastore *d, char *err, size_t errlen)
{
    return rec_update(r, &datastore_kind, d, err, errlen);
}

int registry_datastore_version_get(struct registry *r, const char *id, struct registry_datastore_version *out,
                                   char *err, size_t errlen)
{
    return rec_get(r, &version_kind, NULL, NULL, id, out, err, errlen);
}

int registry_datastore_version_find(struct registry *r, const char *datastore, const char *name,
                                    struct registry_datastore_version *out, char *err, size_t errlen)
{
    char a[80], b[80];
    struct registry_query q = {.datastore = datastore};
    struct list_filter f = {.extra_col = "name", .extra_value = name};
    struct registry_datastore_version *items = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    int status = rec_list(r, &version_kind, &q, &f, (void **)&items, &n, NULL, err, errlen);
    if (status != TROVE_OK)
        return status;
    if (n == 0) {
        err_set(err, errlen, "datastore version %s of %s not found", shown(name, a), shown(datastore, b));
        return TROVE_ENOTFOUND;
    }
    *out = items[0];                /* (datastore, name) is unique */
    free(items);
    return TROVE_OK;
}

int registry_datastore_version_update(struct registry *r, struct registry_datastore_version *v, char *err,
                                      size_t errlen)
{
    return rec_update(r, &version_kind, v, err, errlen);
}

int registry_flavor_get(struct registry *r, const char *id, struct registry_flavor *out, char *err, size_t errlen)
{
    return rec_get(r, &flavor_kind, NULL, NULL, id, out, err, errlen);
}

int registry_flavor_delete(struct registry *r, const char *id, char *err, size_t errlen)
{
    return rec_delete(r, &flavor_kind, NULL, id, err, errlen);
}

/* ---- instances -------------------------------------------------------- */

int registry_instance_get(struct registry *r, const char *tenant, const char *id, struct registry_instance *out,
                          char *err, size_t errlen)
{
    return rec_get(r, &instance_kind, tenant, NULL, id, out, err, errlen);
}

int registry_instance_update(struct registry *r, struct registry_instance *in, char *err, size_t errlen)
{
    return rec_update(r, &instance_kind, in, err, errlen);
}

/* After a compare-and-set changed nothing: missing, or which value won. */
static int explain_miss(struct registry *r, const char *id, const char *what, char *err, size_t errlen)
{
    struct registry_instance cur;
    char a[80], b[80];
    int status = registry_instance_get(r, NULL, id, &cur, err, errlen);
    if (status != TROVE_OK)
        return status;
    if (strcmp(what, "task") == 0)
        err_set(err, errlen, "instance %s is busy with task %s", shown(id, a),
                cur.task_id[0] ? shown(cur.task_id, b) : "(none)");
    else
        err_set(err, errlen, "instance %s is %s", shown(id, a), cur.status);
    registry_instance_clear(&cur);
    return TROVE_ECONFLICT;
}

/* TROVE_OK if a live instance has this id. */
static int instance_exists(struct registry *r, const char *id, char *err, size_t errlen)
{
    struct registry_instance cur;
    int status = registry_instance_get(r, NULL, id, &cur, err, errlen);
    registry_instance_clear(&cur);
    return status;
}

/* Run one conditional UPDATE on a live instance; TROVE_OK if it changed a
 * row, else explain_miss's answer. */
static int instance_cas(struct registry *r, const char *id, const char *sql, const struct registry_param *p, int n,
                        const char *what, bool *changed, char *err, size_t errlen)
{
    struct registry_atomic a;
    int64_t changes = 0;
    /* The UPDATE alone is atomic; the read after a miss only explains it. */
    int status = registry_atomic_begin(r, &a, false, err, errlen);
    if (status != TROVE_OK)
        return status;
    status = registry_exec(r, sql, p, n, NULL, NULL, &changes, err, errlen);
    if (changed)
        *changed = status == TROVE_OK && changes > 0;
    if (status == TROVE_OK && changes == 0)
        status = what ? explain_miss(r, id, what, err, errlen) : instance_exists(r, id, err, errlen);
    return registry_atomic_end(r, &a, status, err, errlen);
}

int registry_instance_set_status(struct registry *r, const char *id, const char *expected, const char *status,
                                 const char *reason, char *err, size_t errlen)
{
    char buf[80];
    if (!registry_instance_status_valid(status) || (expected && !registry_instance_status_valid(expected))) {
        err_set(err, errlen, "instance status '%s' is not allowed",
                shown(registry_instance_status_valid(status) ? expected : status ? status : "", buf));
        return TROVE_EINVAL;
    }
    int rc = check_text("instance", "status_reason", reason, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    struct registry_param p[] = {
        {REG_TEXT, id, 0}, {REG_TEXT, status, 0}, {REG_TEXT, reason ? reason : "", 0},
        {REG_INT, NULL, registry_now(r)}, {REG_TEXT, expected, 0},
    };
    const char *sql = expected
        ? "UPDATE instances SET status = $2, status_reason = $3, updated_at = $4"
          " WHERE id = $1 AND deleted = 0 AND status = $5"
        : "UPDATE instances SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1 AND deleted = 0";
    return instance_cas(r, id, sql, p, expected ? 5 : 4, "status", NULL, err, errlen);
}

int registry_instance_set_task(struct registry *r, const char *id, const char *expected, const char *task,
                               char *err, size_t errlen)
{
    int status = check_id("instance", "task", task, false, err, errlen);
    if (status == TROVE_OK)
        status = check_id("instance", "expected task", expected, false, err, errlen);
    if (status != TROVE_OK)
        return status;
    if (expected && !*expected)
        expected = NULL;
    struct registry_param p[] = {
        {REG_TEXT, id, 0}, {task && *task ? REG_TEXT : REG_NULL, task, 0},
        {REG_INT, NULL, registry_now(r)}, {REG_TEXT, expected, 0},
    };
    const char *sql = expected
        ? "UPDATE instances SET task_id = $2, updated_at = $3 WHERE id = $1 AND deleted = 0 AND task_id = $4"
        : "UPDATE instances SET task_id = $2, updated_at = $3 WHERE id = $1 AND deleted = 0 AND task_id IS NULL";
    return instance_cas(r, id, sql, p, expected ? 4 : 3, "task", NULL, err, errlen);
}

int registry_instance_apply_heartbeat(struct registry *r, const char *id, int64_t epoch, int64_t seq,
                                      const char *status, const char *reason, bool *applied, char *err,
                                      size_t errlen)
{
    char buf[80];
    if (applied)
        *applied = false;
    if (status && !registry_instance_status_valid(status)) {
        err_set(err, errlen, "instance status '%s' is not allowed", shown(status, buf));
        return TROVE_EINVAL;
    }
    int rc = check_text("instance", "status_reason", reason, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    struct registry_param p[] = {
        {REG_TEXT, id, 0}, {REG_INT, NULL, epoch}, {REG_INT, NULL, seq}, {REG_INT, NULL, registry_now(r)},
        {REG_TEXT, status, 0}, {REG_TEXT, reason ? reason : "", 0},
    };
    const char *sql = status
        ? "UPDATE instances SET hb_epoch = $2, hb_seq = $3, updated_at = $4, status = $5, status_reason = $6"
          " WHERE id = $1 AND deleted = 0 AND (hb_epoch < $2 OR (hb_epoch = $2 AND hb_seq < $3))"
        : "UPDATE instances SET hb_epoch = $2, hb_seq = $3, updated_at = $4"
          " WHERE id = $1 AND deleted = 0 AND (hb_epoch < $2 OR (hb_epoch = $2 AND hb_seq < $3))";
    /* An older heartbeat is not an error: the existence check alone decides. */
    return instance_cas(r, id, sql, p, status ? 6 : 4, NULL, applied, err, errlen);
}

int registry_instance_mark_deleted(struct registry *r, const char *tenant, const char *id, char *err,
                                   size_t errlen)
{
    char buf[80];
    int64_t now = registry_now(r), changes = 0;
    struct registry_param p[] = {{REG_TEXT, id, 0}, {REG_INT, NULL, now}, {REG_TEXT, tenant, 0}};
    const char *sql = tenant
        ? "UPDATE instances SET deleted = 1, deleted_at = $2, updated_at = $2, status = 'DELETED', task_id = NULL"
          " WHERE id = $1 AND deleted = 0 AND tenant_id = $3"
        : "UPDATE instances SET deleted = 1, deleted_at = $2, updated_at = $2, status = 'DELETED', task_id = NULL"
          " WHERE id = $1 AND deleted = 0";
    struct registry_atomic a;
    int status = registry_atomic_begin(r, &a, false, err, errlen);
    if (status == TROVE_OK)
        status = registry_exec(r, sql, p, tenant ? 3 : 2, NULL, NULL, &changes, err, errlen);
    if (status == TROVE_OK && changes == 0) {
        err_set(err, errlen, "instance %s not found", shown(id, buf));
        status = TROVE_ENOTFOUND;
    }
    return registry_atomic_end(r, &a, status, err, errlen);
}

/* ---- agents ----------------------------------------------------------- */

int registry_agent_put(struct registry *r, struct registry_agent *a, char *err, size_t errlen)
{
    return rec_put(r, &agent_kind, a, err, errlen);
}

int registry_agent_get(struct registry *r, const char *instance_id, struct registry_agent *out, char *err,
                       size_t errlen)
{
    return rec_get(r, &agent_kind, NULL, NULL, instance_id, out, err, errlen);
}

int registry_agent_delete(struct registry *r, const char *instance_id, char *err, size_t errlen)
{
    return rec_delete(r, &agent_kind, NULL, instance_id, err, errlen);
}

/* ---- tasks ------------------------------------------------------------ */

int registry_task_get(struct registry *r, const char *tenant, const char *id, struct registry_task *out,
                      char *err, size_t errlen)
{
    return rec_get(r, &task_kind, tenant, NULL, id, out, err, errlen);
}

int registry_tasks_list_unfinished(struct registry *r, struct registry_task **items, size_t *n, char *err,
                                   size_t errlen)
{
    struct list_filter f = {.extra_where = "state IN ('NEW', 'RUNNING')"};
    return rec_list(r, &task_kind, NULL, &f, (void **)items, n, NULL, err, errlen);
}

/* A conditional UPDATE on an unfinished task; explains a miss. */
static int task_cas(struct registry *r, const char *id, const char *sql, const struct registry_param *p, int n,
                    char *err, size_t errlen)
{
    struct registry_atomic a;
    int64_t changes = 0;
    char buf[80];
    int status = registry_atomic_begin(r, &a, true, err, errlen);
    if (status != TROVE_OK)
        return status;
    status = registry_exec(r, sql, p, n, NULL, NULL, &changes, err, errlen);
    if (status == TROVE_OK && changes == 0) {
        struct registry_task cur;
        status = registry_task_get(r, NULL, id, &cur, err, errlen);
        if (status == TROVE_OK) {
            if (task_unfinished(cur.state))
                err_set(err, errlen, "task %s is owned by epoch %lld", shown(id, buf), (long long)cur.owner_epoch);
            else
                err_set(err, errlen, "task %s already finished (%s)", shown(id, buf), cur.state);
            status = TROVE_ECONFLICT;
        }
        registry_task_clear(&cur);
    }
    return registry_atomic_end(r, &a, status, err, errlen);
}

int registry_task_progress(struct registry *r, const char *id, const char *state, int64_t progress,
                           const char *message, char *err, size_t errlen)
{
    char buf[80];
    if (state && !task_unfinished(state)) {
        err_set(err, errlen, "task state '%s' is not a progress state (NEW, RUNNING)", shown(state, buf));
        return TROVE_EINVAL;
    }
    if (progress < 0 || progress > 100) {
        err_set(err, errlen, "task progress must be between 0 and 100");
        return TROVE_EINVAL;
    }
    int status = check_text("task", "message", message, err, errlen);
    if (status != TROVE_OK)
        return status;
    struct registry_param p[5] = {{REG_TEXT, id, 0}, {REG_INT, NULL, progress}, {REG_INT, NULL, registry_now(r)}};
    const char *sql;
    int n = 3;
    /* Bind exactly the parameters the statement names (PostgreSQL must type each). */
    if (state && message) {
        p[n++] = (struct registry_param){REG_TEXT, state, 0};
        p[n++] = (struct registry_param){REG_TEXT, message, 0};
        sql = "UPDATE tasks SET progress = $2, updated_at = $3, state = $4, message = $5"
              " WHERE id = $1 AND state IN ('NEW', 'RUNNING')";
    } else if (state) {
        p[n++] = (struct registry_param){REG_TEXT, state, 0};
        sql = "UPDATE tasks SET progress = $2, updated_at = $3, state = $4"
              " WHERE id = $1 AND state IN ('NEW', 'RUNNING')";
    } else if (message) {
        p[n++] = (struct registry_param){REG_TEXT, message, 0};
        sql = "UPDATE tasks SET progress = $2, updated_at = $3, message = $4"
              " WHERE id = $1 AND state IN ('NEW', 'RUNNING')";
    } else {
        sql = "UPDATE tasks SET progress = $2, updated_at = $3 WHERE id = $1 AND state IN ('NEW', 'RUNNING')";
    }
    return task_cas(r, id, sql, p, n, err, errlen);
}

int registry_task_finish(struct registry *r, const char *id, const char *state, const char *error,
                         const char *result, char *err, size_t errlen)
{
    char buf[80];
    if (!state || (strcmp(state, "COMPLETED") != 0 && strcmp(state, "FAILED") != 0)) {
        err_set(err, errlen, "task state '%s' is not a final state (COMPLETED, FAILED)", shown(state ? state : "", buf));
        return TROVE_EINVAL;
    }
    int status = check_text("task", "error", error, err, errlen);
    if (status == TROVE_OK)
        status = check_text("task", "result", result, err, errlen);
    if (status == TROVE_OK)
        status = check_json("task", "result", result, err, errlen);
    if (status != TROVE_OK)
        return status;
    bool done = strcmp(state, "COMPLETED") == 0;
    struct registry_param p[] = {
        {REG_TEXT, id, 0}, {REG_TEXT, state, 0}, {REG_TEXT, error ? error : "", 0},
        {REG_INT, NULL, registry_now(r)}, {REG_TEXT, result, 0},
    };
    const char *sql = result
        ? (done ? "UPDATE tasks SET state = $2, error = $3, updated_at = $4, result = $5, progress = 100"
                  " WHERE id = $1 AND state IN ('NEW', 'RUNNING')"
                : "UPDATE tasks SET state = $2, error = $3, updated_at = $4, result = $5"
                  " WHERE id = $1 AND state IN ('NEW', 'RUNNING')")
        : (done ? "UPDATE tasks SET state = $2, error = $3, updated_at = $4, progress = 100"
                  " WHERE id = $1 AND state IN ('NEW', 'RUNNING')"
                : "UPDATE tasks SET state = $2, error = $3, updated_at = $4"
                  " WHERE id = $1 AND state IN ('NEW', 'RUNNING')");
    return task_cas(r, id, sql, p, result ? 5 : 4, err, errlen);
}

int registry_task_claim(struct registry *r, const char *id, int64_t expected_epoch, const char *owner,
                        int64_t epoch, char *err, size_t errlen)
{
    int status = check_id("task", "owner", owner, false, err, errlen);
    if (status != TROVE_OK)
        return status;
    struct registry_param p[] = {
        {REG_TEXT, id, 0}, {owner && *owner ? REG_TEXT : REG_NULL, owner, 0}, {REG_INT, NULL, epoch},
        {REG_INT, NULL, registry_now(r)}, {REG_INT, NULL, expected_epoch},
    };
    return task_cas(r, id,
                    "UPDATE tasks SET owner = $2, owner_epoch = $3, updated_at = $4"
                    " WHERE id = $1 AND owner_epoch = $5 AND state IN ('NEW', 'RUNNING')",
                    p, 5, err, errlen);
}

/* ---- backups ---------------------------------------------------------- */

int registry_backup_get(struct registry *r, const char *tenant, const char *id, struct registry_backup *out,
                        char *err, size_t errlen)
{
    return rec_get(r, &backup_kind, tenant, NULL, id, out, err, errlen);
}

int registry_backup_update(struct registry *r, struct registry_backup *b, char *err, size_t errlen)
{
    return rec_update(r, &backup_kind, b, err, errlen);
}

int registry_backup_delete(struct registry *r, const char *tenant, const char *id, char *err, size_t errlen)
{
    return rec_delete(r, &backup_kind, tenant, id, err, errlen);
}

/* ---- configuration groups --------------------------------------------- */

int registry_configuration_get(struct registry *r, const char *tenant, const char *id,
                               struct registry_configuration *out, char *err, size_t errlen)
{
    return rec_get(r, &configuration_kind, tenant, NULL, id, out, err, errlen);
}

int registry_configuration_update(struct registry *r, struct registry_configuration *c, char *err, size_t errlen)
{
    return rec_update(r, &configuration_kind, c, err, errlen);
}

int registry_configuration_delete(struct registry *r, const char *tenant, const char *id, char *err,
                                  size_t errlen)
{
    return rec_delete(r, &configuration_kind, tenant, id, err, errlen);
}

static int check_values(const struct registry_configuration_value *values, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *key = values[i].key;
        if (!key || !*key) {
            err_set(err, errlen, "configuration value %zu has no key", i);
            return TROVE_EINVAL;
        }
        int status = check_text("configuration", "key", key, err, errlen);
        if (status == TROVE_OK)
            status = check_text("configuration", "value", values[i].value, err, errlen);
        if (status == TROVE_OK)
            status = check_json("configuration", "value", values[i].value ? values[i].value : "null", err,
                                errlen);
        if (status != TROVE_OK)
            return status;
        for (size_t j = 0; j < i; j++)
            if (strcmp(values[j].key, key) == 0) {
                char buf[80];
                err_set(err, errlen, "configuration key %s given twice", shown(key, buf));
                return TROVE_EINVAL;
            }
    }
    return TROVE_OK;
}

static int replace_values(struct registry *r, const char *id, const struct registry_configuration_value *values,
                          size_t n, char *err, size_t errlen)
{
    struct registry_param del[] = {{REG_TEXT, id, 0}};
    int status = registry_exec(r, "DELETE FROM configuration_values WHERE configuration_id = $1", del, 1, NULL,
                               NULL, NULL, err, errlen);
    for (size_t i = 0; i < n && status == TROVE_OK; i++) {
        struct registry_param p[] = {
            {REG_TEXT, id, 0}, {REG_TEXT, values[i].key, 0},
            {REG_TEXT, values[i].value ? values[i].value : "null", 0},
        };
        status = registry_exec(r, "INSERT INTO configuration_values (configuration_id, name, value)"
                               " VALUES ($1, $2, $3)", p, 3, NULL, NULL, NULL, err, errlen);
    }
    if (status == TROVE_OK) {
        struct registry_param p[] = {{REG_TEXT, id, 0}, {REG_INT, NULL, registry_now(r)}};
        status = registry_exec(r, "UPDATE configurations SET updated_at = $2 WHERE id = $1", p, 2, NULL, NULL,
                               NULL, err, errlen);
    }
    return status;
}

int registry_configuration_set_values(struct registry *r, const char *tenant, const char *id,
                                      const struct registry_configuration_value *values, size_t n, char *err,
                                      size_t errlen)
{
    int status = check_values(values, n, err, errlen);
    if (status != TROVE_OK)
        return status;
    struct registry_atomic a;
    struct registry_configuration c;
    if ((status = registry_atomic_begin(r, &a, true, err, errlen)) != TROVE_OK)
        return status;
    status = registry_configuration_get(r, tenant, id, &c, err, errlen);
    registry_configuration_clear(&c);
    if (status == TROVE_OK)
        status = replace_values(r, id, values, n, err, errlen);
    return registry_atomic_end(r, &a, status, err, errlen);
}

struct values_ctx {
    struct registry_configuration_value *items;
    size_t n, cap;
    char *err;
    size_t errlen;
};

static int add_value(void *user, int ncols, const char *const *names, const char *const *values)
{
    (void)names;
    struct values_ctx *v = user;
    if (ncols != 2 || !values[0] || !values[1])
        return TROVE_EINTERNAL;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct registry_configuration_value *items = realloc(v->items, cap * sizeof *items);
        if (!items)
            goto oom;
        v->items = items;
        v->cap = cap;
    }
    struct registry_configuration_value *item = &v->items[v->n];
    item->key = strdup(values[0]);
    item->value = strdup(values[1]);
    v->n++;
    if (item->key && item->value)
        return TROVE_OK;
oom:
    err_set(v->err, v->errlen, "out of memory reading configuration values");
    return TROVE_EINTERNAL;
}

int registry_configuration_get_values(struct registry *r, const char *tenant, const char *id,
                                      struct registry_configuration_value **values, size_t *n, char *err,
                                      size_t errlen)
{
    char sql[160];
    struct values_ctx v = {NULL, 0, 0, err, errlen};
    struct registry_configuration c;
    struct registry_atomic a;
    *values = NULL;
    *n = 0;
    int status = registry_atomic_begin(r, &a, true, err, errlen);
    if (status != TROVE_OK)
        return status;
    status = registry_configuration_get(r, tenant, id, &c, err, errlen);
    registry_configuration_clear(&c);
    if (status == TROVE_OK) {
        snprintf(sql, sizeof sql, "SELECT name, value FROM configuration_values WHERE configuration_id = $1"
                 " ORDER BY name%s", r->ops->collate);
        struct registry_param p[] = {{REG_TEXT, id, 0}};
        status = registry_exec(r, sql, p, 1, add_value, &v, NULL, err, errlen);
    }
    status = registry_atomic_end(r, &a, status, err, errlen);
    if (status != TROVE_OK) {
        registry_configuration_values_free(v.items, v.n);
        return status;
    }
    *values = v.items;
    *n = v.n;
    return TROVE_OK;
}

void registry_configuration_values_free(struct registry_configuration_value *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(values[i].key);
        free(values[i].value);
    }
    free(values);
}

/* ---- replica links ---------------------------------------------------- */

int registry_replica_link_put(struct registry *r, struct registry_replica_link *l, char *err, size_t errlen)
{
    return rec_put(r, &replica_kind, l, err, errlen);
}

int registry_replica_link_get(struct registry *r, const char *replica_id, struct registry_replica_link *out,
                              char *err, size_t errlen)
{
    return rec_get(r, &replica_kind, NULL, NULL, replica_id, out, err, errlen);
}

int registry_replica_link_list(struct registry *r, const char *source_id, struct registry_replica_link **items,
                               size_t *n, char *err, size_t errlen)
{
    struct list_filter f = {.extra_col = "source_id", .extra_value = source_id};
    return rec_list(r, &replica_kind, NULL, &f, (void **)items, n, NULL, err, errlen);
}

int registry_replica_link_delete(struct registry *r, const char *replica_id, char *err, size_t errlen)
{
    return rec_delete(r, &replica_kind, NULL, replica_id, err, errlen);
}
