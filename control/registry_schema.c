/*
 * registry_schema.c - the registry's schema as an ordered list of
 * migrations, each a list of statements valid on SQLite and PostgreSQL
 * alike (TEXT, BIGINT, INTEGER 0/1 for booleans, ms timestamps), applied in
 * one transaction at open and recorded in schema_version. A migration is
 * never edited once released: change the schema by appending one.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_backend.h"
#include "status.h"

struct migration {
    int version;
    const char *name;
    const char *const *steps;     /* NULL-terminated */
};

static const char *const v1_steps[] = {
    "CREATE TABLE tenants ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " created_at BIGINT NOT NULL)",

    "CREATE TABLE datastores ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " default_version_id TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",

    "CREATE TABLE datastore_versions ("
    " id TEXT PRIMARY KEY,"
    " datastore TEXT NOT NULL REFERENCES datastores(name),"
    " name TEXT NOT NULL,"
    " plugin TEXT NOT NULL,"
    " engine TEXT NOT NULL,"
    " active INTEGER NOT NULL,"
    " packages TEXT NOT NULL,"
    " image TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " UNIQUE (datastore, name))",

    "CREATE TABLE flavors ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " ram_mb BIGINT NOT NULL,"
    " vcpus BIGINT NOT NULL,"
    " disk_gb BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL)",

    "CREATE TABLE configurations ("
    " id TEXT PRIMARY KEY,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " datastore_version_id TEXT NOT NULL REFERENCES datastore_versions(id),"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",

    "CREATE TABLE configuration_values ("
    " configuration_id TEXT NOT NULL REFERENCES configurations(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY (configuration_id, name))",

    "CREATE TABLE instances ("
    " id TEXT PRIMARY KEY,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " status_reason TEXT NOT NULL,"
    " datastore TEXT NOT NULL,"
    " datastore_version_id TEXT NOT NULL REFERENCES datastore_versions(id),"
    " flavor_id TEXT NOT NULL REFERENCES flavors(id),"
    " volume_size_gb BIGINT NOT NULL,"
    " volume_kind TEXT NOT NULL,"
    " engine_port BIGINT NOT NULL,"
    " ports TEXT NOT NULL,"
    " agent_public_key TEXT NOT NULL,"
    " configuration_id TEXT REFERENCES configurations(id),"
    " replica_of TEXT REFERENCES instances(id),"
    " task_id TEXT,"
    " hb_epoch BIGINT NOT NULL DEFAULT 0,"
    " hb_seq BIGINT NOT NULL DEFAULT 0,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " deleted_at BIGINT NOT NULL DEFAULT 0,"
    " provision TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE INDEX instances_by_tenant ON instances (tenant_id, created_at)",

    "CREATE TABLE agents ("
    " instance_id TEXT PRIMARY KEY,"
    " public_key TEXT NOT NULL,"
    " hello TEXT NOT NULL,"
    " last_seen_at BIGINT NOT NULL)",

    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY,"
    " tenant_id TEXT REFERENCES tenants(id),"
    " instance_id TEXT REFERENCES instances(id),"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " progress BIGINT NOT NULL,"
    " message TEXT NOT NULL,"
    " error TEXT NOT NULL,"
    " args TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " owner TEXT,"
    " owner_epoch BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE INDEX tasks_by_instance ON tasks (instance_id, created_at)",
    "CREATE INDEX tasks_by_state ON tasks (state)",

    "CREATE TABLE backups ("
    " id TEXT PRIMARY KEY,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " instance_id TEXT REFERENCES instances(id),"
    " parent_id TEXT REFERENCES backups(id),"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " size_bytes BIGINT NOT NULL,"
    " checksum TEXT NOT NULL,"
    " location TEXT NOT NULL,"
    " datastore_version_id TEXT REFERENCES datastore_versions(id),"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE INDEX backups_by_instance ON backups (instance_id, created_at)",

    "CREATE TABLE replica_links ("
    " replica_id TEXT PRIMARY KEY REFERENCES instances(id),"
    " source_id TEXT NOT NULL REFERENCES instances(id),"
    " state TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE INDEX replica_links_by_source ON replica_links (source_id)",
    NULL,
};

static const struct migration migrations[] = {
    {1, "initial schema", v1_steps},
};
#define MIGRATION_COUNT (sizeof migrations / sizeof migrations[0])
_Static_assert(sizeof migrations / sizeof migrations[0] == REGISTRY_SCHEMA_VERSION,
               "one migration per schema version");

const struct registry_dump_table registry_dump_tables[] = {
    {"schema_version", "version, name", {"version", NULL}, {false}},
    {"tenants", "*", {"id", NULL}, {true}},
    {"datastores", "*", {"id", NULL}, {true}},
    {"datastore_versions", "*", {"id", NULL}, {true}},
    {"flavors", "*", {"id", NULL}, {true}},
    {"configurations", "*", {"id", NULL}, {true}},
    {"configuration_values", "*", {"configuration_id", "name", NULL}, {true, true}},
    {"instances", "*", {"id", NULL}, {true}},
    {"agents", "*", {"instance_id", NULL}, {true}},
    {"tasks", "*", {"id", NULL}, {true}},
    {"backups", "*", {"id", NULL}, {true}},
    {"replica_links", "*", {"replica_id", NULL}, {true}},
};
const size_t registry_dump_table_count = sizeof registry_dump_tables / sizeof registry_dump_tables[0];

static int read_int(void *user, int ncols, const char *const *names, const char *const *values)
{
    (void)names;
    *(long long *)user = ncols > 0 && values[0] ? strtoll(values[0], NULL, 10) : 0;
    return TROVE_OK;
}

static int apply(struct registry *r, const struct migration *m, char *err, size_t errlen)
{
    char why[200];
    for (const char *const *step = m->steps; *step; step++) {
        int status = registry_exec(r, *step, NULL, 0, NULL, NULL, NULL, why, sizeof why);
        if (status != TROVE_OK) {
            err_set(err, errlen, "registry migration %d (%s) failed: %s", m->version, m->name, why);
            return status;
        }
    }
    struct registry_param p[] = {
        {REG_INT, NULL, m->version}, {REG_TEXT, m->name, 0}, {REG_INT, NULL, registry_now(r)},
    };
    return registry_exec(r, "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)", p, 3,
                         NULL, NULL, NULL, err, errlen);
}

/* Inside the migration transaction: read the version, refuse a newer one,
 * apply what is missing. */
static int migrate_locked(struct registry *r, char *err, size_t errlen)
{
    long long current = 0;
    int status = TROVE_OK;
    if (r->ops->schema_lock_sql)
        status = registry_exec(r, r->ops->schema_lock_sql, NULL, 0, NULL, NULL, NULL, err, errlen);
    if (status == TROVE_OK)
        status = registry_exec(r, "SELECT MAX(version) FROM schema_version", NULL, 0, read_int, &current, NULL,
                               err, errlen);
    if (status != TROVE_OK)
        return status;
    if (current > REGISTRY_SCHEMA_VERSION) {
        err_set(err, errlen, "registry schema version %lld is newer than this program supports (%d); "
                "upgrade trove-control", current, REGISTRY_SCHEMA_VERSION);
        return TROVE_EINVAL;
    }
    for (size_t i = 0; i < MIGRATION_COUNT && status == TROVE_OK; i++)
        if (migrations[i].version > current)
            status = apply(r, &migrations[i], err, errlen);
    return status;
}

int registry_migrate(struct registry *r, char *err, size_t errlen)
{
    static const char create_version[] =
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " applied_at BIGINT NOT NULL)";
    int status = registry_exec(r, create_version, NULL, 0, NULL, NULL, NULL, err, errlen);
    if (status == TROVE_EEXIST)     /* PostgreSQL: another opener created it at the same moment */
        status = registry_exec(r, create_version, NULL, 0, NULL, NULL, NULL, err, errlen);
    if (status != TROVE_OK)
        return status;

    struct registry_atomic a;
    status = registry_atomic_begin(r, &a, true, err, errlen);
    if (status != TROVE_OK)
        return status;
    status = registry_atomic_end(r, &a, migrate_locked(r, err, errlen), err, errlen);
    if (status == TROVE_OK)
        r->version = REGISTRY_SCHEMA_VERSION;
    return status;
}
