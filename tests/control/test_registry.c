/*
 * test_registry.c - the persistent registry (control/registry.h) as the
 * control plane uses it: migrations at open, records of every kind, tenant
 * isolation, Trove paging, the compare-and-set helpers (also raced from two
 * connections), heartbeats out of order, unfinished tasks, hostile text and
 * a dump that proves when nothing changed. The same suite runs on SQLite (a
 * fresh file per test) and, with TROVE_REGISTRY_URL set by
 * test_registry_pg.py, on a real PostgreSQL server (a fresh schema per test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "trove_plugin.h"

static const char *pg_url;      /* NULL: SQLite */
static char dir[64];
static char url[256];
static char err[512];
static struct registry *R;
static int64_t clock_ms = 1700000000000;

static int64_t test_clock(void *user)
{
    return *(int64_t *)user;
}

/* ---- the database underneath, for what the API must not offer ------- */

static void no_notices(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static void raw_exec(const char *sql)
{
    if (pg_url) {
        PGconn *c = PQconnectdb(pg_url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PQsetNoticeProcessor(c, no_notices, NULL);
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            fail_msg("%s: %s", sql, msg);
        sqlite3_close(db);
    }
}

static int take_first(void *user, int n, char **values, char **names)
{
    (void)names;
    *(long long *)user = n > 0 && values[0] ? atoll(values[0]) : -1;
    return 0;
}

static long long raw_int(const char *sql)
{
    long long v = -1;
    if (pg_url) {
        PGconn *c = PQconnectdb(pg_url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
            v = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        PQfinish(c);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, take_first, &v, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    return v;
}

/* ---- fixtures --------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static struct registry *open_ok(void)
{
    struct registry *r = registry_open(url, err, sizeof err);
    if (!r)
        fail_msg("registry_open: %s", err);
    registry_set_clock(r, test_clock, &clock_ms);
    return r;
}

static int setup(void **state)
{
    (void)state;
    clock_ms = 1700000000000;
    if (pg_url) {
        snprintf(url, sizeof url, "%s", pg_url);
        raw_exec("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    } else {
        snprintf(dir, sizeof dir, "/tmp/trove-registry-test-XXXXXX");
        if (!mkdtemp(dir))
            return -1;
        snprintf(url, sizeof url, "sqlite:%s/" REGISTRY_SQLITE_FILE, dir);
    }
    R = open_ok();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    registry_close(R);
    R = NULL;
    if (!pg_url)
        return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static char *dump(void)
{
    char *text = NULL;
    if (registry_dump_string(R, &text, err, sizeof err) != TROVE_OK)
        fail_msg("dump: %s", err);
    return text;
}

#define ASSERT_OK(call)                                                   \
    do {                                                                  \
        int rc_ = (call);                                                 \
        if (rc_ != TROVE_OK)                                              \
            fail_msg("%s = %d: %s", #call, rc_, err);                     \
    } while (0)
#define ASSERT_STATUS(want, call)                                         \
    do {                                                                  \
        int rc_ = (call);                                                 \
        if (rc_ != (want))                                                \
            fail_msg("%s = %d, expected %d (%s)", #call, rc_, (want), err); \
    } while (0)

/* Two tenants, a datastore with one version, one flavor. */
static void seed(void)
{
    struct registry_tenant t1 = {.id = "tenant-a", .name = "Alice"}, t2 = {.id = "tenant-b", .name = "Bob"};
    ASSERT_OK(registry_tenant_create(R, &t1, err, sizeof err));
    ASSERT_OK(registry_tenant_create(R, &t2, err, sizeof err));
    struct registry_datastore d = {.id = "ds-mysql", .name = "mysql"};
    ASSERT_OK(registry_datastore_create(R, &d, err, sizeof err));
    struct registry_datastore_version v = {.id = "dv-1011", .datastore = "mysql", .name = "10.11",
                                           .plugin = "mysql", .engine = "{\"mariadbd\": \"/usr/sbin/mariadbd\"}",
                                           .active = true};
    ASSERT_OK(registry_datastore_version_create(R, &v, err, sizeof err));
    struct registry_flavor f = {.id = "1", .name = "m1.small", .ram_mb = 1024, .vcpus = 1, .disk_gb = 5};
    ASSERT_OK(registry_flavor_create(R, &f, err, sizeof err));
}

static void make_instance(const char *tenant, const char *id, const char *name)
{
    struct registry_instance in = {.name = (char *)name, .status = "BUILD", .datastore = "mysql",
                                   .datastore_version_id = "dv-1011", .flavor_id = "1", .volume_size_gb = 2,
                                   .volume_kind = "loop"};
    snprintf(in.tenant_id, sizeof in.tenant_id, "%s", tenant);
    snprintf(in.id, sizeof in.id, "%s", id);
    ASSERT_OK(registry_instance_create(R, &in, err, sizeof err));
}

static void make_task(const char *tenant, const char *instance, const char *id, const char *state)
{
    struct registry_task t = {.kind = "instance.create", .args = "{\"name\": \"db\"}", .owner = "control-1",
                              .owner_epoch = 1};
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.tenant_id, sizeof t.tenant_id, "%s", tenant ? tenant : "");
    snprintf(t.instance_id, sizeof t.instance_id, "%s", instance ? instance : "");
    snprintf(t.state, sizeof t.state, "%s", state);
    ASSERT_OK(registry_task_create(R, &t, err, sizeof err));
}

/* ---- opening and migrations ------------------------------------------- */

static void open_migrates_once(void **state)
{
    (void)state;
    assert_int_equal(registry_schema_version(R), REGISTRY_SCHEMA_VERSION);
    assert_string_equal(registry_backend(R), pg_url ? "postgresql" : "sqlite");
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_version"), REGISTRY_SCHEMA_VERSION);
    long long applied = raw_int("SELECT MAX(applied_at) FROM schema_version");
    seed();
    char *before = dump();

    /* Opening again (a restart) runs nothing and keeps every row. */
    registry_close(R);
    R = open_ok();
    assert_int_equal(registry_schema_version(R), REGISTRY_SCHEMA_VERSION);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_version"), REGISTRY_SCHEMA_VERSION);
    assert_int_equal(raw_int("SELECT MAX(applied_at) FROM schema_version"), applied);
    char *after = dump();
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void open_refuses_newer_schema(void **state)
{
    (void)state;
    seed();
    registry_close(R);
    R = NULL;
    raw_exec("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'from the future', 0)");
    err[0] = '\0';
    assert_null(registry_open(url, err, sizeof err));
    assert_non_null(strstr(err, "999"));
    assert_non_null(strstr(err, "newer"));
    /* Nothing was touched. */
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_version"), REGISTRY_SCHEMA_VERSION + 1);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tenants"), 2);
    raw_exec("DELETE FROM schema_version WHERE version = 999");
    R = open_ok();
}

static void open_reports_bad_targets(void **state)
{
    (void)state;
    err[0] = '\0';
    assert_null(registry_open("sqlite:/nonexistent-dir/x/registry.db", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x/registry.db"));
    assert_null(strchr(err, '\n'));

    err[0] = '\0';
    assert_null(registry_open("sqlite:", err, sizeof err));
    assert_true(err[0] != '\0');

    /* A closed port: a one-line reason that never repeats the password. */
    err[0] = '\0';
    assert_null(registry_open("host=127.0.0.1 port=1 dbname=x user=u password=s3cr3t-pw connect_timeout=2",
                              err, sizeof err));
    assert_non_null(strstr(err, "PostgreSQL"));
    assert_null(strstr(err, "s3cr3t-pw"));
    assert_null(strchr(err, '\n'));
    err[0] = '\0';
    assert_null(registry_open("postgresql://u:s3cr3t-pw@127.0.0.1:1/x?connect_timeout=2", err, sizeof err));
    assert_null(strstr(err, "s3cr3t-pw"));
}

static void open_creates_private_file(void **state)
{
    (void)state;
    if (pg_url)
        skip();
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "%s/" REGISTRY_SQLITE_FILE, dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* ---- records ---------------------------------------------------------- */

static void records_round_trip(void **state)
{
    (void)state;
    seed();
    struct registry_instance in = {.tenant_id = "tenant-a", .name = "orders", .status = "BUILD",
                                   .datastore = "mysql", .datastore_version_id = "dv-1011", .flavor_id = "1",
                                   .volume_size_gb = 3, .volume_kind = "directory", .engine_port = 33061,
                                   .ports = "{\"agent\": 5601}", .agent_public_key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
                                   .provision = "{\"dir\": \"/var/lib/trove/i1\", \"pid\": 42}"};
    ASSERT_OK(registry_instance_create(R, &in, err, sizeof err));
    assert_int_equal(strlen(in.id), 36);            /* a generated UUID */
    assert_int_equal(in.id[14], '4');
    assert_int_equal(in.created_at, clock_ms);

    struct registry_instance got;
    ASSERT_OK(registry_instance_get(R, "tenant-a", in.id, &got, err, sizeof err));
    assert_string_equal(got.name, "orders");
    assert_string_equal(got.status, "BUILD");
    assert_string_equal(got.status_reason, "");
    assert_string_equal(got.volume_kind, "directory");
    assert_int_equal(got.volume_size_gb, 3);
    assert_int_equal(got.engine_port, 33061);
    assert_string_equal(got.ports, "{\"agent\": 5601}");
    assert_string_equal(got.agent_public_key, in.agent_public_key);
    assert_string_equal(got.provision, in.provision);
    assert_string_equal(got.configuration_id, "");
    assert_string_equal(got.task_id, "");
    assert_false(got.deleted);

    /* Update: what may change changes, the tenant and creation time do not. */
    clock_ms += 1000;
    free(got.name);
    got.name = strdup("orders-2");
    snprintf(got.status, sizeof got.status, "ACTIVE");
    snprintf(got.tenant_id, sizeof got.tenant_id, "tenant-b");
    ASSERT_OK(registry_instance_update(R, &got, err, sizeof err));
    registry_instance_clear(&got);
    ASSERT_OK(registry_instance_get(R, NULL, in.id, &got, err, sizeof err));
    assert_string_equal(got.name, "orders-2");
    assert_string_equal(got.status, "ACTIVE");
    assert_string_equal(got.tenant_id, "tenant-a");
    assert_int_equal(got.created_at, clock_ms - 1000);
    assert_int_equal(got.updated_at, clock_ms);
    registry_instance_clear(&got);

    /* Lookups of the catalogue. */
    struct registry_datastore d;
    ASSERT_OK(registry_datastore_get(R, "mysql", &d, err, sizeof err));
    assert_string_equal(d.id, "ds-mysql");
    registry_datastore_clear(&d);
    ASSERT_OK(registry_datastore_get(R, "ds-mysql", &d, err, sizeof err));
    assert_string_equal(d.name, "mysql");
    snprintf(d.default_version_id, sizeof d.default_version_id, "dv-1011");
    ASSERT_OK(registry_datastore_update(R, &d, err, sizeof err));
    registry_datastore_clear(&d);
    ASSERT_OK(registry_datastore_get(R, "mysql", &d, err, sizeof err));
    assert_string_equal(d.default_version_id, "dv-1011");
    registry_datastore_clear(&d);
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_datastore_get(R, "cassandra", &d, err, sizeof err));

    struct registry_datastore_version v;
    ASSERT_OK(registry_datastore_version_find(R, "mysql", "10.11", &v, err, sizeof err));
    assert_string_equal(v.id, "dv-1011");
    assert_true(v.active);
    assert_string_equal(v.engine, "{\"mariadbd\": \"/usr/sbin/mariadbd\"}");
    v.active = false;
    ASSERT_OK(registry_datastore_version_update(R, &v, err, sizeof err));
    registry_datastore_version_clear(&v);
    ASSERT_OK(registry_datastore_version_get(R, "dv-1011", &v, err, sizeof err));
    assert_false(v.active);
    registry_datastore_version_clear(&v);
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_datastore_version_find(R, "mysql", "8.0", &v, err, sizeof err));

    struct registry_flavor f;
    ASSERT_OK(registry_flavor_get(R, "1", &f, err, sizeof err));
    assert_int_equal(f.ram_mb, 1024);
    registry_flavor_clear(&f);

    struct registry_tenant *ts;
    size_t n;
    ASSERT_OK(registry_tenant_list(R, NULL, &ts, &n, NULL, err, sizeof err));
    assert_int_equal(n, 2);
    assert_string_equal(ts[0].id, "tenant-a");
    assert_string_equal(ts[1].name, "Bob");
    registry_tenants_free(ts, n);
}

static void records_refuse_bad_input(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    char *before = dump();

    struct registry_tenant dup = {.id = "tenant-a", .name = "again"};
    ASSERT_STATUS(TROVE_EEXIST, registry_tenant_create(R, &dup, err, sizeof err));
    struct registry_tenant noid = {.name = "x"};
    ASSERT_STATUS(TROVE_EINVAL, registry_tenant_create(R, &noid, err, sizeof err));
    struct registry_flavor fdup = {.id = "2", .name = "m1.small"};
    ASSERT_STATUS(TROVE_EEXIST, registry_flavor_create(R, &fdup, err, sizeof err));
    struct registry_flavor fneg = {.id = "3", .name = "neg", .ram_mb = -1};
    ASSERT_STATUS(TROVE_EINVAL, registry_flavor_create(R, &fneg, err, sizeof err));

    struct registry_instance in = {.tenant_id = "nobody", .name = "x", .status = "BUILD", .datastore = "mysql",
                                   .datastore_version_id = "dv-1011", .flavor_id = "1"};
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));   /* unknown tenant */
    assert_string_equal(in.id, "");                                                  /* record untouched */
    snprintf(in.tenant_id, sizeof in.tenant_id, "tenant-a");
    snprintf(in.flavor_id, sizeof in.flavor_id, "42");
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));   /* unknown flavor */
    snprintf(in.flavor_id, sizeof in.flavor_id, "1");
    snprintf(in.status, sizeof in.status, "RUNNING");
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));   /* not a Trove status */
    assert_non_null(strstr(err, "RUNNING"));
    snprintf(in.status, sizeof in.status, "BUILD");
    snprintf(in.volume_kind, sizeof in.volume_kind, "nfs");
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));
    snprintf(in.volume_kind, sizeof in.volume_kind, "loop");
    in.provision = "{\"unterminated\": ";
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));
    assert_non_null(strstr(err, "JSON"));
    in.provision = NULL;
    in.engine_port = 70000;
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));
    in.engine_port = 0;
    snprintf(in.id, sizeof in.id, "i-1");
    ASSERT_STATUS(TROVE_EEXIST, registry_instance_create(R, &in, err, sizeof err));
    memset(in.id, 'x', sizeof in.id);                                                /* no terminator */
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_create(R, &in, err, sizeof err));

    /* In use: neither the tenant nor the flavor can go. */
    ASSERT_STATUS(TROVE_EINVAL, registry_tenant_delete(R, "tenant-a", err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    ASSERT_STATUS(TROVE_EINVAL, registry_flavor_delete(R, "1", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_flavor_delete(R, "nope", err, sizeof err));
    /* Unknown instance for update. */
    struct registry_instance ghost = {.id = "ghost", .tenant_id = "tenant-a", .name = "g", .status = "ACTIVE",
                                      .datastore = "mysql", .datastore_version_id = "dv-1011", .flavor_id = "1"};
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_update(R, &ghost, err, sizeof err));

    char *after = dump();
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* A tenant with nothing left can be deleted. */
    ASSERT_OK(registry_tenant_delete(R, "tenant-b", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_tenant_delete(R, "tenant-b", err, sizeof err));
}

static void hostile_text_is_stored_literally(void **state)
{
    (void)state;
    seed();
    char long_name[1001];
    memset(long_name, 'n', 1000);
    long_name[1000] = '\0';
    const char *names[] = {
        "it's", "say \"hi\"", "back\\slash\\", "'; DROP TABLE instances; --", "$1 ?1 :x @y %s %n",
        "line\nbreak\ttab\rcr", "ünïcödé ✓ 数据库 🐬", long_name, "",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "hostile-%zu", i);
        make_instance("tenant-a", id, names[i]);
        struct registry_instance got;
        ASSERT_OK(registry_instance_get(R, "tenant-a", id, &got, err, sizeof err));
        assert_string_equal(got.name, names[i]);
        registry_instance_clear(&got);
    }
    /* Hostile ids are just ids: no match, no damage. */
    struct registry_instance got;
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_get(R, "tenant-a", "' OR '1'='1", &got, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_get(R, "' OR '1'='1", "hostile-0", &got, err, sizeof err));
    assert_null(strchr(err, '\n'));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_get(R, NULL, "a\nb", &got, err, sizeof err));
    assert_null(strchr(err, '\n'));                                  /* the message stays one line */
    assert_int_equal(raw_int("SELECT COUNT(*) FROM instances"), 9);

    /* Invalid UTF-8 and over-long ids are refused, on both engines alike. */
    char *before = dump();
    struct registry_tenant bad = {.id = "tenant-c", .name = "\xff\xfe bad"};
    ASSERT_STATUS(TROVE_EINVAL, registry_tenant_create(R, &bad, err, sizeof err));
    assert_non_null(strstr(err, "UTF-8"));
    struct registry_task t = {.kind = "instance.create", .state = "NEW"};
    memset(t.id, 'x', REGISTRY_ID_MAX);
    ASSERT_OK(registry_task_create(R, &t, err, sizeof err));          /* exactly the maximum */
    char too_long[REGISTRY_ID_MAX + 2];
    memset(too_long, 'y', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_set_task(R, "hostile-0", NULL, too_long, err, sizeof err));
    free(before);
}

/* ---- tenants and paging ----------------------------------------------- */

static void tenants_see_only_their_own(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "a-1", "alpha");
    make_instance("tenant-b", "b-1", "beta");
    make_task("tenant-a", "a-1", "task-a", "RUNNING");
    make_task("tenant-b", "b-1", "task-b", "RUNNING");
    struct registry_backup b = {.id = "bk-b", .tenant_id = "tenant-b", .instance_id = "b-1", .name = "nightly",
                                .state = "NEW"};
    ASSERT_OK(registry_backup_create(R, &b, err, sizeof err));
    struct registry_configuration c = {.id = "cfg-b", .tenant_id = "tenant-b", .name = "tuned",
                                       .datastore_version_id = "dv-1011"};
    ASSERT_OK(registry_configuration_create(R, &c, err, sizeof err));

    struct registry_query qa = {.tenant = "tenant-a"};
    struct registry_instance *items;
    size_t n;
    ASSERT_OK(registry_instance_list(R, &qa, &items, &n, NULL, err, sizeof err));
    assert_int_equal(n, 1);
    assert_string_equal(items[0].id, "a-1");
    registry_instances_free(items, n);

    struct registry_instance in;
    struct registry_task t;
    struct registry_backup bk;
    struct registry_configuration cf;
    struct registry_configuration_value *vals;
    char *before = dump();
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_get(R, "tenant-a", "b-1", &in, err, sizeof err));
    assert_non_null(strstr(err, "not found"));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_task_get(R, "tenant-a", "task-b", &t, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_backup_get(R, "tenant-a", "bk-b", &bk, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_configuration_get(R, "tenant-a", "cfg-b", &cf, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_configuration_get_values(R, "tenant-a", "cfg-b", &vals, &n, err,
                                                                     sizeof err));
    struct registry_configuration_value v = {"max_connections", "10"};
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_configuration_set_values(R, "tenant-a", "cfg-b", &v, 1, err,
                                                                     sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_backup_delete(R, "tenant-a", "bk-b", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_configuration_delete(R, "tenant-a", "cfg-b", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_mark_deleted(R, "tenant-a", "b-1", err, sizeof err));
    char *after = dump();
    assert_string_equal(before, after);
    free(before);
    free(after);

    struct registry_task *ts;
    ASSERT_OK(registry_task_list(R, &qa, &ts, &n, NULL, err, sizeof err));
    assert_int_equal(n, 1);
    assert_string_equal(ts[0].id, "task-a");
    registry_tasks_free(ts, n);
    struct registry_backup *bs;
    ASSERT_OK(registry_backup_list(R, &qa, &bs, &n, NULL, err, sizeof err));
    assert_int_equal(n, 0);
    assert_null(bs);
    struct registry_configuration *cs;
    ASSERT_OK(registry_configuration_list(R, &qa, &cs, &n, NULL, err, sizeof err));
    assert_int_equal(n, 0);

    /* The admin view (no tenant) sees both; kinds with no tenant refuse a tenant filter. */
    ASSERT_OK(registry_instance_list(R, NULL, &items, &n, NULL, err, sizeof err));
    assert_int_equal(n, 2);
    registry_instances_free(items, n);
    struct registry_flavor *fs;
    ASSERT_STATUS(TROVE_EINVAL, registry_flavor_list(R, &qa, &fs, &n, NULL, err, sizeof err));
    assert_null(fs);                                 /* failures leave nothing to free... */
    assert_int_equal(n, 0);
    registry_instance_clear(&in);                    /* ...and records safe to clear */
    registry_task_clear(&t);
    registry_backup_clear(&bk);
    registry_configuration_clear(&cf);
    struct registry_tenant tt, *tl;
    ASSERT_STATUS(TROVE_EINVAL, registry_tenant_list(R, &qa, &tl, &n, NULL, err, sizeof err));
    assert_null(tl);
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_tenant_get(R, "nobody", &tt, err, sizeof err));
    registry_tenant_clear(&tt);
    /* The owner may delete. */
    ASSERT_OK(registry_instance_mark_deleted(R, "tenant-b", "b-1", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_get(R, "tenant-b", "b-1", &in, err, sizeof err));
}

static void list_pages_like_trove(void **state)
{
    (void)state;
    seed();
    /* Seven instances; ids deliberately out of creation order, three share a millisecond. */
    const char *ids[] = {"g", "c", "e", "a", "f", "b", "d"};
    for (size_t i = 0; i < 7; i++) {
        if (i != 2 && i != 3)
            clock_ms += 10;
        make_instance("tenant-a", ids[i], ids[i]);
    }
    make_instance("tenant-b", "zz-other", "other");
    /* Expected order: (created_at, id): g, [a c e] share a time, then f, b, d. */
    const char *order[] = {"g", "a", "c", "e", "f", "b", "d"};

    struct registry_query q = {.tenant = "tenant-a", .limit = 3};
    struct registry_instance *items;
    size_t n, seen = 0;
    bool more = false;
    char marker[REGISTRY_ID_SIZE] = "";
    for (int page = 0; page < 3; page++) {
        q.marker = page ? marker : NULL;
        ASSERT_OK(registry_instance_list(R, &q, &items, &n, &more, err, sizeof err));
        for (size_t i = 0; i < n; i++)
            assert_string_equal(items[i].id, order[seen + i]);
        seen += n;
        assert_int_equal(more, seen < 7);
        if (n)
            snprintf(marker, sizeof marker, "%s", items[n - 1].id);
        registry_instances_free(items, n);
    }
    assert_int_equal(seen, 7);

    /* Unknown or foreign markers are not found; a deleted instance leaves the list. */
    q.marker = "zz-other";
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_list(R, &q, &items, &n, &more, err, sizeof err));
    assert_non_null(strstr(err, "marker"));
    q.marker = "nope";
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_list(R, &q, &items, &n, &more, err, sizeof err));
    ASSERT_OK(registry_instance_mark_deleted(R, NULL, "c", err, sizeof err));
    q.marker = "a";
    q.limit = 0;
    ASSERT_OK(registry_instance_list(R, &q, &items, &n, &more, err, sizeof err));
    assert_int_equal(n, 4);
    assert_string_equal(items[0].id, "e");
    assert_false(more);
    registry_instances_free(items, n);
    q.marker = NULL;
    q.include_deleted = true;
    ASSERT_OK(registry_instance_list(R, &q, &items, &n, &more, err, sizeof err));
    assert_int_equal(n, 7);
    assert_true(items[2].deleted);
    assert_string_equal(items[2].status, "DELETED");
    assert_int_equal(items[2].deleted_at, clock_ms);
    registry_instances_free(items, n);

    /* Per-instance filter on tasks; per-datastore on versions. */
    make_task("tenant-a", "a", "t-a1", "NEW");
    make_task("tenant-a", "b", "t-b1", "NEW");
    struct registry_query qi = {.tenant = "tenant-a", .instance = "a"};
    struct registry_task *ts;
    ASSERT_OK(registry_task_list(R, &qi, &ts, &n, NULL, err, sizeof err));
    assert_int_equal(n, 1);
    assert_string_equal(ts[0].id, "t-a1");
    registry_tasks_free(ts, n);
    struct registry_query qd = {.datastore = "redis"};
    struct registry_datastore_version *vs;
    ASSERT_OK(registry_datastore_version_list(R, &qd, &vs, &n, NULL, err, sizeof err));
    assert_int_equal(n, 0);
    qd.datastore = "mysql";
    ASSERT_OK(registry_datastore_version_list(R, &qd, &vs, &n, NULL, err, sizeof err));
    assert_int_equal(n, 1);
    registry_datastore_versions_free(vs, n);
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_list(R, &qd, &items, &n, NULL, err, sizeof err));
}

/* ---- compare-and-set helpers ------------------------------------------ */

static void one_task_per_instance(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    ASSERT_OK(registry_instance_set_task(R, "i-1", NULL, "task-1", err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_instance_set_task(R, "i-1", NULL, "task-2", err, sizeof err));
    assert_non_null(strstr(err, "task-1"));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_instance_set_task(R, "i-1", "task-9", NULL, err, sizeof err));
    struct registry_instance in;
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.task_id, "task-1");
    registry_instance_clear(&in);
    /* update() never touches the task. */
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    in.task_id[0] = '\0';
    ASSERT_OK(registry_instance_update(R, &in, err, sizeof err));
    registry_instance_clear(&in);
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.task_id, "task-1");
    registry_instance_clear(&in);

    ASSERT_OK(registry_instance_set_task(R, "i-1", "task-1", NULL, err, sizeof err));
    ASSERT_OK(registry_instance_set_task(R, "i-1", NULL, "task-2", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_set_task(R, "nope", NULL, "task-3", err, sizeof err));
    ASSERT_OK(registry_instance_mark_deleted(R, NULL, "i-1", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_set_task(R, "i-1", NULL, "task-3", err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_mark_deleted(R, NULL, "i-1", err, sizeof err));
}

static void status_compare_and_set(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    ASSERT_OK(registry_instance_set_status(R, "i-1", "BUILD", "ACTIVE", NULL, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_instance_set_status(R, "i-1", "BUILD", "ERROR", "x", err, sizeof err));
    assert_non_null(strstr(err, "ACTIVE"));
    ASSERT_OK(registry_instance_set_status(R, "i-1", NULL, "ERROR", "agent silent for 15 s", err, sizeof err));
    struct registry_instance in;
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.status, "ERROR");
    assert_string_equal(in.status_reason, "agent silent for 15 s");
    registry_instance_clear(&in);
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_set_status(R, "i-1", NULL, "SLEEPY", NULL, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_set_status(R, "nope", NULL, "ACTIVE", NULL, err, sizeof err));
}

static void heartbeats_out_of_order_are_ignored(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    bool applied = false;
    struct registry_instance in;
#define HB(epoch, seq, status) \
    ASSERT_OK(registry_instance_apply_heartbeat(R, "i-1", epoch, seq, status, "", &applied, err, sizeof err))
    HB(1, 5, "ACTIVE");
    assert_true(applied);
    HB(1, 4, "SHUTDOWN");            /* older: ignored */
    assert_false(applied);
    HB(1, 5, "SHUTDOWN");            /* same: ignored */
    assert_false(applied);
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.status, "ACTIVE");
    assert_int_equal(in.hb_epoch, 1);
    assert_int_equal(in.hb_seq, 5);
    registry_instance_clear(&in);
    HB(2, 1, "SHUTDOWN");            /* a restarted agent: new epoch, seq from 1 */
    assert_true(applied);
    HB(1, 100, "ACTIVE");            /* the old epoch's late message */
    assert_false(applied);
    clock_ms += 5;
    HB(2, 2, NULL);                  /* seq only: status stays */
    assert_true(applied);
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.status, "SHUTDOWN");
    assert_int_equal(in.hb_epoch, 2);
    assert_int_equal(in.hb_seq, 2);
    assert_int_equal(in.updated_at, clock_ms);
    registry_instance_clear(&in);
#undef HB
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_instance_apply_heartbeat(R, "nope", 9, 9, "ACTIVE", NULL, &applied,
                                                                     err, sizeof err));
    ASSERT_STATUS(TROVE_EINVAL, registry_instance_apply_heartbeat(R, "i-1", 9, 9, "running", NULL, &applied, err,
                                                                  sizeof err));
}

static void unfinished_tasks_survive_for_recovery(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    make_task("tenant-a", "i-1", "t-1", "RUNNING");
    clock_ms += 1;
    make_task("tenant-a", "i-1", "t-2", "COMPLETED");
    clock_ms += 1;
    make_task(NULL, NULL, "t-3", "NEW");                   /* an admin task */
    clock_ms += 1;
    make_task("tenant-b", NULL, "t-4", "FAILED");

    /* A restarted control plane finds exactly what did not finish. */
    registry_close(R);
    R = open_ok();
    struct registry_task *ts;
    size_t n;
    ASSERT_OK(registry_tasks_list_unfinished(R, &ts, &n, err, sizeof err));
    assert_int_equal(n, 2);
    assert_string_equal(ts[0].id, "t-1");
    assert_string_equal(ts[1].id, "t-3");
    assert_string_equal(ts[0].args, "{\"name\": \"db\"}");
    assert_string_equal(ts[0].owner, "control-1");
    registry_tasks_free(ts, n);

    /* It claims them with its own epoch; a stale claim loses. */
    ASSERT_OK(registry_task_claim(R, "t-1", 1, "control-2", 2, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_task_claim(R, "t-1", 1, "control-3", 3, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_task_claim(R, "t-2", 1, "control-3", 3, err, sizeof err));

    ASSERT_OK(registry_task_progress(R, "t-1", NULL, 40, "copying", err, sizeof err));
    ASSERT_OK(registry_task_progress(R, "t-3", "RUNNING", 10, NULL, err, sizeof err));
    ASSERT_STATUS(TROVE_EINVAL, registry_task_progress(R, "t-1", NULL, 101, NULL, err, sizeof err));
    ASSERT_STATUS(TROVE_EINVAL, registry_task_progress(R, "t-1", "COMPLETED", 50, NULL, err, sizeof err));
    struct registry_task t;
    ASSERT_OK(registry_task_get(R, "tenant-a", "t-1", &t, err, sizeof err));
    assert_int_equal(t.progress, 40);
    assert_string_equal(t.message, "copying");
    assert_string_equal(t.owner, "control-2");
    assert_int_equal(t.owner_epoch, 2);
    registry_task_clear(&t);

    ASSERT_OK(registry_task_finish(R, "t-1", "FAILED", "trove-control restarted during the create", NULL, err,
                                   sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_task_finish(R, "t-1", "COMPLETED", NULL, "{}", err, sizeof err));
    assert_non_null(strstr(err, "already finished"));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_task_progress(R, "t-1", NULL, 50, NULL, err, sizeof err));
    ASSERT_OK(registry_task_finish(R, "t-3", "COMPLETED", NULL, "{\"ok\": true}", err, sizeof err));
    ASSERT_STATUS(TROVE_EINVAL, registry_task_finish(R, "t-3", "RUNNING", NULL, NULL, err, sizeof err));
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_task_finish(R, "nope", "FAILED", NULL, NULL, err, sizeof err));
    ASSERT_OK(registry_task_get(R, NULL, "t-3", &t, err, sizeof err));
    assert_int_equal(t.progress, 100);
    assert_string_equal(t.result, "{\"ok\": true}");
    registry_task_clear(&t);
    ASSERT_OK(registry_task_get(R, NULL, "t-1", &t, err, sizeof err));
    assert_string_equal(t.state, "FAILED");
    assert_string_equal(t.error, "trove-control restarted during the create");
    registry_task_clear(&t);

    ASSERT_OK(registry_tasks_list_unfinished(R, &ts, &n, err, sizeof err));
    assert_int_equal(n, 0);
}

/* Two connections race for the same instance: exactly one holds it at a time. */
static pthread_barrier_t race_start;

struct racer {
    const char *me;
    int won, lost, failed;
    char why[256];
};

static void *race(void *arg)
{
    struct racer *x = arg;
    char e[256];
    struct registry *r = registry_open(url, x->why, sizeof x->why);
    pthread_barrier_wait(&race_start);          /* both connections open: go */
    if (!r) {
        x->failed++;
        return NULL;
    }
    for (int i = 0; i < 150; i++) {
        int rc = registry_instance_set_task(r, "i-race", NULL, x->me, e, sizeof e);
        if (rc == TROVE_ECONFLICT) {
            x->lost++;
            usleep(100);
            continue;
        }
        if (rc != TROVE_OK) {
            snprintf(x->why, sizeof x->why, "claim: %.200s", e);
            x->failed++;
            continue;
        }
        x->won++;
        struct registry_instance in;
        if (registry_instance_get(r, NULL, "i-race", &in, e, sizeof e) != TROVE_OK ||
            strcmp(in.task_id, x->me) != 0) {
            snprintf(x->why, sizeof x->why, "held task is '%s', not mine", in.task_id);
            x->failed++;
        }
        registry_instance_clear(&in);
        if (registry_instance_set_task(r, "i-race", x->me, NULL, e, sizeof e) != TROVE_OK) {
            snprintf(x->why, sizeof x->why, "release: %.200s", e);
            x->failed++;
        }
        usleep(100);                            /* let the other side try */
    }
    registry_close(r);
    return NULL;
}

static void set_task_holds_under_a_race(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-race", "race");
    struct racer a = {.me = "task-a"}, b = {.me = "task-b"};
    pthread_t ta, tb;
    assert_int_equal(pthread_barrier_init(&race_start, NULL, 2), 0);
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&race_start);
    if (a.failed || b.failed)
        fail_msg("race failures: a=%d (%s) b=%d (%s)", a.failed, a.why, b.failed, b.why);
    assert_int_equal(a.won + a.lost, 150);
    assert_int_equal(b.won + b.lost, 150);
    assert_true(a.won + b.won > 0);
    print_message("race: a won %d lost %d, b won %d lost %d\n", a.won, a.lost, b.won, b.lost);
    struct registry_instance in;
    ASSERT_OK(registry_instance_get(R, NULL, "i-race", &in, err, sizeof err));
    assert_string_equal(in.task_id, "");
    registry_instance_clear(&in);
}

/* ---- transactions ----------------------------------------------------- */

static void transactions_group_calls(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "one");
    char *before = dump();

    /* Rolled back: nothing stays. */
    ASSERT_OK(registry_begin(R, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_begin(R, err, sizeof err));
    make_task("tenant-a", "i-1", "t-1", "NEW");
    ASSERT_OK(registry_instance_set_task(R, "i-1", NULL, "t-1", err, sizeof err));
    registry_rollback(R);
    char *after = dump();
    assert_string_equal(before, after);
    free(after);

    /* A failed call inside does not spoil the rest (PostgreSQL would abort
     * the whole transaction without the registry's savepoints). */
    ASSERT_OK(registry_begin(R, err, sizeof err));
    make_task("tenant-a", "i-1", "t-1", "NEW");
    struct registry_tenant dup = {.id = "tenant-a", .name = "dup"};
    ASSERT_STATUS(TROVE_EEXIST, registry_tenant_create(R, &dup, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_instance_set_task(R, "i-1", "other", "t-1", err, sizeof err));
    ASSERT_OK(registry_instance_set_task(R, "i-1", NULL, "t-1", err, sizeof err));
    ASSERT_OK(registry_commit(R, err, sizeof err));
    ASSERT_STATUS(TROVE_ECONFLICT, registry_commit(R, err, sizeof err));
    struct registry_instance in;
    ASSERT_OK(registry_instance_get(R, NULL, "i-1", &in, err, sizeof err));
    assert_string_equal(in.task_id, "t-1");
    registry_instance_clear(&in);
    struct registry_task t;
    ASSERT_OK(registry_task_get(R, NULL, "t-1", &t, err, sizeof err));
    registry_task_clear(&t);
    free(before);

    /* Closing with a transaction open rolls it back. */
    ASSERT_OK(registry_begin(R, err, sizeof err));
    make_task("tenant-a", "i-1", "t-2", "NEW");
    registry_close(R);
    R = open_ok();
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_task_get(R, NULL, "t-2", &t, err, sizeof err));
}

/* PostgreSQL: a connection killed under the registry costs one call, not the daemon. */
static void reconnects_after_connection_loss(void **state)
{
    (void)state;
    if (!pg_url)
        skip();
    seed();
    raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'");
    struct registry_tenant t;
    int rc = registry_tenant_get(R, "tenant-a", &t, err, sizeof err);
    if (rc == TROVE_OK)
        registry_tenant_clear(&t);
    else
        assert_int_equal(rc, TROVE_EUNAVAIL);        /* the call that found it dead */
    print_message("first call after the kill: %d %s\n", rc, rc ? err : "");
    ASSERT_OK(registry_tenant_get(R, "tenant-a", &t, err, sizeof err));
    assert_string_equal(t.name, "Alice");
    registry_tenant_clear(&t);
}

/* ---- later kinds: backups, configurations, replicas, agents ----------- */

static void backups_configurations_replicas_agents(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "src", "source");
    make_instance("tenant-a", "rep", "replica");

    struct registry_backup full = {.id = "bk-1", .tenant_id = "tenant-a", .instance_id = "src", .name = "full",
                                   .state = "NEW", .datastore_version_id = "dv-1011"};
    ASSERT_OK(registry_backup_create(R, &full, err, sizeof err));
    struct registry_backup inc = {.id = "bk-2", .tenant_id = "tenant-a", .instance_id = "src", .parent_id = "bk-1",
                                  .name = "inc", .state = "NEW"};
    ASSERT_OK(registry_backup_create(R, &inc, err, sizeof err));
    struct registry_backup orphan = {.id = "bk-3", .tenant_id = "tenant-a", .parent_id = "nope", .state = "NEW"};
    ASSERT_STATUS(TROVE_EINVAL, registry_backup_create(R, &orphan, err, sizeof err));
    struct registry_backup got;
    ASSERT_OK(registry_backup_get(R, "tenant-a", "bk-1", &got, err, sizeof err));
    snprintf(got.state, sizeof got.state, "COMPLETED");
    got.size_bytes = 123456789;
    free(got.checksum);
    got.checksum = strdup("sha256:abc");
    ASSERT_OK(registry_backup_update(R, &got, err, sizeof err));
    snprintf(got.state, sizeof got.state, "DONE");
    ASSERT_STATUS(TROVE_EINVAL, registry_backup_update(R, &got, err, sizeof err));
    registry_backup_clear(&got);
    ASSERT_OK(registry_backup_get(R, NULL, "bk-1", &got, err, sizeof err));
    assert_string_equal(got.state, "COMPLETED");
    assert_int_equal(got.size_bytes, 123456789);
    assert_string_equal(got.checksum, "sha256:abc");
    registry_backup_clear(&got);
    ASSERT_STATUS(TROVE_EINVAL, registry_backup_delete(R, "tenant-a", "bk-1", err, sizeof err));  /* has a child */
    ASSERT_OK(registry_backup_delete(R, "tenant-a", "bk-2", err, sizeof err));
    ASSERT_OK(registry_backup_delete(R, "tenant-a", "bk-1", err, sizeof err));

    struct registry_configuration c = {.tenant_id = "tenant-a", .name = "tuned", .description = "for OLTP",
                                       .datastore_version_id = "dv-1011"};
    ASSERT_OK(registry_configuration_create(R, &c, err, sizeof err));
    struct registry_configuration_value vals[] = {
        {"max_connections", "200"}, {"innodb_buffer_pool_size", "\"1G\""}, {"skip_name_resolve", "true"},
    };
    ASSERT_OK(registry_configuration_set_values(R, "tenant-a", c.id, vals, 3, err, sizeof err));
    struct registry_configuration_value *got_vals;
    size_t n;
    ASSERT_OK(registry_configuration_get_values(R, "tenant-a", c.id, &got_vals, &n, err, sizeof err));
    assert_int_equal(n, 3);
    assert_string_equal(got_vals[0].key, "innodb_buffer_pool_size");
    assert_string_equal(got_vals[0].value, "\"1G\"");
    assert_string_equal(got_vals[1].key, "max_connections");
    registry_configuration_values_free(got_vals, n);
    struct registry_configuration_value dupe[] = {{"a", "1"}, {"a", "2"}};
    ASSERT_STATUS(TROVE_EINVAL, registry_configuration_set_values(R, "tenant-a", c.id, dupe, 2, err, sizeof err));
    struct registry_configuration_value badjson[] = {{"a", "{nope"}};
    ASSERT_STATUS(TROVE_EINVAL, registry_configuration_set_values(R, "tenant-a", c.id, badjson, 1, err,
                                                                  sizeof err));
    ASSERT_OK(registry_configuration_get_values(R, NULL, c.id, &got_vals, &n, err, sizeof err));
    assert_int_equal(n, 3);                                  /* the refused calls changed nothing */
    registry_configuration_values_free(got_vals, n);
    ASSERT_OK(registry_configuration_set_values(R, "tenant-a", c.id, vals + 1, 1, err, sizeof err));
    ASSERT_OK(registry_configuration_get_values(R, NULL, c.id, &got_vals, &n, err, sizeof err));
    assert_int_equal(n, 1);
    registry_configuration_values_free(got_vals, n);

    /* An instance using the group keeps it alive. */
    struct registry_instance in;
    ASSERT_OK(registry_instance_get(R, NULL, "rep", &in, err, sizeof err));
    snprintf(in.configuration_id, sizeof in.configuration_id, "%s", c.id);
    snprintf(in.replica_of, sizeof in.replica_of, "src");
    ASSERT_OK(registry_instance_update(R, &in, err, sizeof err));
    ASSERT_STATUS(TROVE_EINVAL, registry_configuration_delete(R, "tenant-a", c.id, err, sizeof err));
    in.configuration_id[0] = '\0';
    ASSERT_OK(registry_instance_update(R, &in, err, sizeof err));
    registry_instance_clear(&in);
    ASSERT_OK(registry_configuration_delete(R, "tenant-a", c.id, err, sizeof err));
    assert_int_equal(raw_int("SELECT COUNT(*) FROM configuration_values"), 0);

    struct registry_replica_link l = {.replica_id = "rep", .source_id = "src", .state = "attaching"};
    ASSERT_OK(registry_replica_link_put(R, &l, err, sizeof err));
    clock_ms += 7;
    snprintf(l.state, sizeof l.state, "streaming");
    ASSERT_OK(registry_replica_link_put(R, &l, err, sizeof err));
    struct registry_replica_link *ls;
    ASSERT_OK(registry_replica_link_list(R, "src", &ls, &n, err, sizeof err));
    assert_int_equal(n, 1);
    assert_string_equal(ls[0].state, "streaming");
    assert_int_equal(ls[0].created_at, clock_ms - 7);        /* the link's creation time stays */
    assert_int_equal(ls[0].updated_at, clock_ms);
    registry_replica_links_free(ls, n);
    struct registry_replica_link bad = {.replica_id = "rep", .source_id = "ghost", .state = "x"};
    ASSERT_STATUS(TROVE_EINVAL, registry_replica_link_put(R, &bad, err, sizeof err));
    ASSERT_OK(registry_replica_link_delete(R, "rep", err, sizeof err));
    struct registry_replica_link lg;
    ASSERT_STATUS(TROVE_ENOTFOUND, registry_replica_link_get(R, "rep", &lg, err, sizeof err));

    struct registry_agent a = {.instance_id = "src", .public_key = "key-1", .hello = "{\"plugin\": \"mysql\"}"};
    ASSERT_OK(registry_agent_put(R, &a, err, sizeof err));
    clock_ms += 3;
    a.public_key = "key-2";
    ASSERT_OK(registry_agent_put(R, &a, err, sizeof err));
    struct registry_agent ga;
    ASSERT_OK(registry_agent_get(R, "src", &ga, err, sizeof err));
    assert_string_equal(ga.public_key, "key-2");
    assert_int_equal(ga.last_seen_at, clock_ms);
    registry_agent_clear(&ga);
    struct registry_agent *as;
    struct registry_query qt = {.tenant = "tenant-a"};
    ASSERT_STATUS(TROVE_EINVAL, registry_agent_list(R, &qt, &as, &n, NULL, err, sizeof err));
    ASSERT_OK(registry_agent_list(R, NULL, &as, &n, NULL, err, sizeof err));
    assert_int_equal(n, 1);
    registry_agents_free(as, n);
    ASSERT_OK(registry_agent_delete(R, "src", err, sizeof err));
}

/* ---- the dump --------------------------------------------------------- */

/* A fixed scenario touching every table, with a pinned clock and fixed ids:
 * its dump is compared across engines by test_registry_pg.py. */
static void golden_dump(void **state)
{
    (void)state;
    seed();
    make_instance("tenant-a", "i-1", "it's \"quoted\" \\ and\nnew ünïcode");
    make_instance("tenant-b", "i-2", "two");
    make_task("tenant-a", "i-1", "t-1", "RUNNING");
    ASSERT_OK(registry_instance_set_task(R, "i-1", NULL, "t-1", err, sizeof err));
    ASSERT_OK(registry_instance_apply_heartbeat(R, "i-2", 3, 7, "ACTIVE", NULL, NULL, err, sizeof err));
    struct registry_backup b = {.id = "bk-1", .tenant_id = "tenant-a", .instance_id = "i-1", .name = "b",
                                .state = "COMPLETED", .size_bytes = 42};
    ASSERT_OK(registry_backup_create(R, &b, err, sizeof err));
    struct registry_configuration c = {.id = "cfg-1", .tenant_id = "tenant-a", .name = "c",
                                       .datastore_version_id = "dv-1011"};
    ASSERT_OK(registry_configuration_create(R, &c, err, sizeof err));
    struct registry_configuration_value vals[] = {{"b_key", "1"}, {"B_key", "\"x\\ty\""}, {"a_key", "null"}};
    ASSERT_OK(registry_configuration_set_values(R, "tenant-a", "cfg-1", vals, 3, err, sizeof err));
    struct registry_replica_link l = {.replica_id = "i-2", .source_id = "i-1", .state = "streaming"};
    ASSERT_OK(registry_replica_link_put(R, &l, err, sizeof err));
    struct registry_agent a = {.instance_id = "i-1", .public_key = "k", .hello = "{\"a\": [1, 2]}"};
    ASSERT_OK(registry_agent_put(R, &a, err, sizeof err));
    /* Ids that sort differently under a locale than bytewise. */
    make_instance("tenant-a", "a-lower", "x");
    make_instance("tenant-a", "B-upper", "y");
    make_instance("tenant-a", "_under", "z");

    char *one = dump(), *two = dump();
    assert_string_equal(one, two);
    assert_non_null(strstr(one, "name=\"it's \\\"quoted\\\" \\\\ and\\nnew ünïcode\""));
    assert_non_null(strstr(one, "configuration_id=NULL"));
    /* Rows in bytewise key order: "B-upper" < "_under" < "a-lower" < "i-1". */
    char *p1 = strstr(one, "id=\"B-upper\""), *p2 = strstr(one, "id=\"_under\""), *p3 = strstr(one, "id=\"a-lower\"");
    assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    const char *out = getenv("TROVE_REGISTRY_DUMP_OUT");
    if (out) {
        FILE *f = fopen(out, "w");
        assert_non_null(f);
        assert_int_equal(registry_dump(R, f, err, sizeof err), TROVE_OK);
        fclose(f);
    }
    free(one);
    free(two);
}

int main(void)
{
    pg_url = getenv("TROVE_REGISTRY_URL");
    if (pg_url && !*pg_url)
        pg_url = NULL;
    const char *filter = getenv("TROVE_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_migrates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(open_refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(open_reports_bad_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(open_creates_private_file, setup, teardown),
        cmocka_unit_test_setup_teardown(records_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(records_refuse_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_text_is_stored_literally, setup, teardown),
        cmocka_unit_test_setup_teardown(tenants_see_only_their_own, setup, teardown),
        cmocka_unit_test_setup_teardown(list_pages_like_trove, setup, teardown),
        cmocka_unit_test_setup_teardown(one_task_per_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(status_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(heartbeats_out_of_order_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(unfinished_tasks_survive_for_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(set_task_holds_under_a_race, setup, teardown),
        cmocka_unit_test_setup_teardown(transactions_group_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnects_after_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(backups_configurations_replicas_agents, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_dump, setup, teardown),
    };
    return cmocka_run_group_tests_name(pg_url ? "registry (postgresql)" : "registry (sqlite)", tests, NULL, NULL);
}
