/*
 * api_instances.c - /v1.0/{tenant}/instances: list (paged, plain and
 * detail), show, create, delete and the action route (restart, resize of
 * flavor or volume, reset_status). Reads come from the registry, filtered by
 * the caller's tenant; work goes to the core as instance.* control ops,
 * which the instances module carries out.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "registry.h"
#include "value.h"

#define VOLUME_GB_MAX 16384
#define CREATE_ITEMS_MAX 64        /* databases or users in one create */

/* Statuses in which an action may start (Trove's action_is_allowed, in our names). */
static const char *const restart_ok[] = { "ACTIVE", "HEALTHY", "SHUTDOWN", "RESTART_REQUIRED", "BLOCKED", NULL };
static const char *const resize_flavor_ok[] = { "ACTIVE", "HEALTHY", "RESTART_REQUIRED", NULL };
static const char *const resize_volume_ok[] = { "ACTIVE", "HEALTHY", "RESTART_REQUIRED", "SHUTDOWN", NULL };

/* ------------------------------------------------------------ reading */

/* The caller's instance, or false after answering 404 (also for another
 * tenant's instance). */
bool api_load_instance(struct api_request *r, const char *id, struct registry_instance *out)
{
    char err[256];
    memset(out, 0, sizeof *out);
    if (!api_name_ok(API_NAME_REF, id)) {
        api_fault(r, 404, "Instance could not be found.");
        return false;
    }
    int rc = registry_instance_get(r->api->registry, r->who.tenant, id, out, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 404, "Instance %s could not be found.", id);
        return false;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

bool api_load_ready_instance(struct api_request *r, const char *id, struct registry_instance *out)
{
    if (!api_load_instance(r, id, out))
        return false;
    if (strcmp(out->status, "NEW") == 0 || strcmp(out->status, "BUILD") == 0) {
        api_fault(r, 422, "Instance %s is not currently available for an action to be performed (instance "
                  "status was %s).", out->id, out->status);
        return false;
    }
    return true;
}

/* Every datastore version, to name the ones instances use. */
struct versions {
    struct registry_datastore_version *items;
    size_t n;
};

static bool load_versions(struct api_request *r, struct versions *v)
{
    char err[256];
    struct registry_query q = { 0 };
    int rc = registry_datastore_version_list(r->api->registry, &q, &v->items, &v->n, NULL, err, sizeof err);
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

static const struct registry_datastore_version *version_of(const struct versions *v, const char *id)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->items[i].id, id) == 0)
            return &v->items[i];
    return NULL;
}

static bool status_in(const char *status, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(status, list[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ views */

static json_t *task_view(const struct registry_task *t)
{
    char created[32], updated[32];
    api_time(t->created_at, created);
    api_time(t->updated_at, updated);
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "id", t->id, "instance_id", t->instance_id, "kind",
                     t->kind, "state", t->state, "progress", (json_int_t)t->progress, "message",
                     t->message ? t->message : "", "error", t->error ? t->error : "", "created", created,
                     "updated", updated);
}

json_t *api_task_view(const struct registry_task *t)
{
    return task_view(t);
}

static void add_detail(struct api_request *r, json_t *o, const struct registry_instance *in,
                       const struct registry_datastore_version *ver)
{
    char created[32], updated[32];
    api_time(in->created_at, created);
    api_time(in->updated_at, updated);
    json_object_set_new(o, "created", json_string(created));
    json_object_set_new(o, "updated", json_string(updated));
    json_object_set_new(o, "service_status_updated", json_string(updated));
    json_t *ds = json_object_get(o, "datastore");
    json_object_set_new(ds, "version_number", ver ? json_string(ver->name) : json_null());
    if (in->engine_port > 0)
        json_object_set_new(o, "port", json_integer(in->engine_port));
    if (in->volume_kind[0])
        json_object_set_new(o, "volume_kind", json_string(in->volume_kind));
    if (in->status_reason && in->status_reason[0] && strcmp(in->status, "ACTIVE") != 0 &&
        strcmp(in->status, "HEALTHY") != 0)
        json_object_set_new(o, "fault", json_pack("{s:s,s:s,s:s}", "message", in->status_reason, "created",
                                                  updated, "details", ""));
    if (in->task_id[0]) {
        struct registry_task t = { 0 };
        char err[256];
        if (registry_task_get(r->api->registry, NULL, in->task_id, &t, err, sizeof err) == TROVE_OK)
            json_object_set_new(o, "task", json_pack("{s:s,s:s,s:s,s:I,s:s}", "id", t.id, "kind", t.kind, "state",
                                                     t.state, "progress", (json_int_t)t.progress, "message",
                                                     t.message ? t.message : ""));
        registry_task_clear(&t);
    }
    if (r->who.admin)
        json_object_set_new(o, "server_id", json_string(in->id));
}

static json_t *instance_view(struct api_request *r, const struct registry_instance *in,
                             const struct registry_datastore_version *ver, bool detail)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:{s:s,s:o},s:{s:s,s:o},s:s,s:{s:b},s:{s:I}}", "id", in->id,
                          "name", in->name ? in->name : "", "status", in->status, "operating_status",
                          in->task_id[0] ? "" : in->status, "links", api_links(r, "instances", in->id), "flavor",
                          "id", in->flavor_id, "links", api_links(r, "flavors", in->flavor_id), "datastore", "type",
                          in->datastore, "version", ver ? json_string(ver->name) : json_null(), "region", "local",
                          "access", "is_public", 0, "volume", "size", (json_int_t)in->volume_size_gb);
    if (!o)
        return NULL;
    if (in->engine_port > 0) {
        json_object_set_new(o, "ip", json_pack("[s]", "127.0.0.1"));
        json_object_set_new(o, "addresses",
                            json_pack("[{s:s,s:s,s:s}]", "address", "127.0.0.1", "type", "private", "network",
                                      "loopback"));
    }
    if (in->replica_of[0])
        json_object_set_new(o, "replica_of", json_pack("{s:s,s:o}", "id", in->replica_of, "links",
                                                       api_links(r, "instances", in->replica_of)));
    if (r->who.admin)
        json_object_set_new(o, "tenant_id", json_string(in->tenant_id));
    if (detail)
        add_detail(r, o, in, ver);
    return o;
}

static void respond_instance(struct api_request *r, unsigned status, const struct registry_instance *in)
{
    struct versions v = { 0 };
    if (!load_versions(r, &v))
        return;
    json_t *view = instance_view(r, in, version_of(&v, in->datastore_version_id), true);
    registry_datastore_versions_free(v.items, v.n);
    if (!view) {
        api_fault(r, 500, "out of memory");
        return;
    }
    api_respond(r, status, json_pack("{s:o}", "instance", view));
}

/* ------------------------------------------------------------ list and show */

static void list_instances(struct api_request *r, bool detail)
{
    size_t limit;
    const char *marker;
    if (!api_paging(r, &limit, &marker))
        return;
    struct registry_query q = { .tenant = r->who.tenant, .marker = marker, .limit = limit };
    struct registry_instance *items = NULL;
    size_t n = 0;
    bool more = false;
    char err[256];
    int rc = registry_instance_list(r->api->registry, &q, &items, &n, &more, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 400, "Invalid marker: no instance with that id in this list");
        return;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return;
    }
    struct versions v = { 0 };
    if (!load_versions(r, &v))
        goto out;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *view = instance_view(r, &items[i], version_of(&v, items[i].datastore_version_id), detail);
        if (!view || json_array_append_new(list, view) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *page = api_page(r, "instances", list, more && n ? items[n - 1].id : NULL, false);
    if (page)
        api_respond(r, 200, page);
    else
        api_fault(r, 500, "out of memory");
    registry_datastore_versions_free(v.items, v.n);
out:
    registry_instances_free(items, n);
}

static void handle_list(struct api_request *r)
{
    list_instances(r, false);
}

static void handle_detail(struct api_request *r)
{
    list_instances(r, true);
}

static void handle_show(struct api_request *r)
{
    struct registry_instance in;
    if (api_load_instance(r, r->arg[0], &in))
        respond_instance(r, 200, &in);
    registry_instance_clear(&in);
}

/* ------------------------------------------------------------ create */

/* The flavor a flavorRef names: an id, a number or an href ending in it. */
static bool resolve_flavor(struct api_request *r, json_t *ref, struct registry_flavor *out)
{
    char idbuf[32];
    const char *id = NULL;
    if (json_is_integer(ref)) {
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(ref));
        id = idbuf;
    } else if (json_is_string(ref)) {
        id = json_string_value(ref);
        const char *slash = strrchr(id, '/');
        if (slash && (strncmp(id, "http://", 7) == 0 || strncmp(id, "https://", 8) == 0))
            id = slash + 1;
    } else {
        api_fault(r, 400, "Field 'flavorRef' must be a flavor id (string or integer)");
        return false;
    }
    if (!api_name_ok(API_NAME_REF, id)) {
        api_fault(r, 404, "Flavor could not be found.");
        return false;
    }
    char err[256];
    int rc = registry_flavor_get(r->api->registry, id, out, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 404, "Flavor %s could not be found.", id);
        return false;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

struct create_plan {
    struct registry_flavor flavor;
    struct registry_datastore datastore;
    struct registry_datastore_version version;
    int64_t volume_gb;
};

static void plan_clear(struct create_plan *p)
{
    registry_flavor_clear(&p->flavor);
    registry_datastore_clear(&p->datastore);
    registry_datastore_version_clear(&p->version);
}

static bool check_datastore(struct api_request *r, json_t *inst, struct create_plan *p)
{
    static const char *const keys[] = { "type", "version", "version_number", NULL };
    json_t *ds = NULL;
    const char *type = NULL, *version = NULL, *number = NULL;
    if (!api_get_object(r, inst, "instance", "datastore", false, &ds))
        return false;
    if (ds && (!api_check_keys(r, ds, "instance.datastore", keys) ||
               !api_get_string(r, ds, "instance.datastore", "type", false, &type) ||
               !api_get_string(r, ds, "instance.datastore", "version", false, &version) ||
               !api_get_string(r, ds, "instance.datastore", "version_number", false, &number)))
        return false;
    if (!version)
        version = number;
    if (!api_resolve_datastore(r, type, version, &p->datastore, &p->version))
        return false;
    if (number && strcmp(number, p->version.name) != 0) {
        api_fault(r, 404, "Datastore version number %s could not be found.", number);
        return false;
    }
    return true;
}

static bool check_volume(struct api_request *r, json_t *inst, struct create_plan *p)
{
    static const char *const keys[] = { "size", "type", NULL };
    json_t *vol = NULL;
    const char *type = NULL;
    if (!api_get_object(r, inst, "instance", "volume", true, &vol) ||
        !api_check_keys(r, vol, "instance.volume", keys) ||
        !api_get_positive(r, vol, "instance.volume", "size", true, VOLUME_GB_MAX, &p->volume_gb) ||
        !api_get_string(r, vol, "instance.volume", "type", false, &type))
        return false;
    if (type) {
        api_fault(r, 501, "Volume types are not supported");
        return false;
    }
    return true;
}

/* databases: [{name, character_set, collate}] -> [{name, character_set, collation}] */
static bool check_databases(struct api_request *r, json_t *inst, struct tv *args)
{
    static const char *const keys[] = { "name", "character_set", "collate", NULL };
    json_t *dbs = NULL, *db;
    size_t i;
    if (!api_get_array(r, inst, "instance", "databases", false, &dbs) || !dbs)
        return dbs ? false : true;
    if (json_array_size(dbs) > CREATE_ITEMS_MAX) {
        api_fault(r, 400, "At most %d databases may be created with an instance", CREATE_ITEMS_MAX);
        return false;
    }
    struct tv *list = tv_child_array(args, "databases");
    json_array_foreach(dbs, i, db) {
        const char *name, *charset, *collate;
        if (!json_is_object(db)) {
            api_fault(r, 400, "Each item of instance.databases must be an object");
            return false;
        }
        if (!api_check_keys(r, db, "instance.databases[]", keys) ||
            !api_get_string(r, db, "instance.databases[]", "name", true, &name) ||
            !api_get_string(r, db, "instance.databases[]", "character_set", false, &charset) ||
            !api_get_string(r, db, "instance.databases[]", "collate", false, &collate) ||
            !api_check_name(r, API_NAME_DATABASE, "database name", name) ||
            (charset && !api_check_name(r, API_NAME_CHARSET, "character set", charset)) ||
            (collate && !api_check_name(r, API_NAME_CHARSET, "collation", collate)))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(dbs, j), "name")), name) == 0) {
                api_fault(r, 400, "Database %s is listed twice", name);
                return false;
            }
        struct tv *item = tv_map();
        if (!item || !list || tv_set_str(item, "name", name) != 0 ||
            (charset && tv_set_str(item, "character_set", charset) != 0) ||
            (collate && tv_set_str(item, "collation", collate) != 0)) {
            tv_free(item);
            api_fault(r, 500, "out of memory");
            return false;
        }
        if (tv_append(list, item) != 0) {   /* frees item */
            api_fault(r, 500, "out of memory");
            return false;
        }
    }
    return true;
}

static bool listed_database(json_t *inst, const char *name)
{
    json_t *dbs = json_object_get(inst, "databases"), *db;
    size_t i;
    json_array_foreach(dbs, i, db) {
        if (strcmp(json_string_value(json_object_get(db, "name")), name) == 0)
            return true;
    }
    return false;
}

/* One user's databases: [{name}] -> [names]; each must be created with the instance. */
static bool check_user_databases(struct api_request *r, json_t *inst, json_t *user, struct tv *out)
{
    static const char *const keys[] = { "name", NULL };
    json_t *dbs = NULL, *db;
    size_t i;
    if (!api_get_array(r, user, "instance.users[]", "databases", false, &dbs))
        return false;
    json_array_foreach(dbs, i, db) {
        const char *name;
        if (!json_is_object(db)) {
            api_fault(r, 400, "Each item of instance.users[].databases must be an object");
            return false;
        }
        if (!api_check_keys(r, db, "instance.users[].databases[]", keys) ||
            !api_get_string(r, db, "instance.users[].databases[]", "name", true, &name) ||
            !api_check_name(r, API_NAME_DATABASE, "database name", name))
            return false;
        if (!listed_database(inst, name)) {
            api_fault(r, 400, "A user may only be given databases created with the instance (%s is not)", name);
            return false;
        }
        struct tv *s = tv_str(name);
        if (!s || tv_append(out, s) != 0) {
            api_fault(r, 500, "out of memory");
            return false;
        }
    }
    return true;
}

static bool check_users(struct api_request *r, json_t *inst, struct tv *args)
{
    static const char *const keys[] = { "name", "password", "host", "databases", NULL };
    json_t *users = NULL, *user;
    size_t i;
    if (!api_get_array(r, inst, "instance", "users", false, &users) || !users)
        return users ? false : true;
    if (json_array_size(users) > CREATE_ITEMS_MAX) {
        api_fault(r, 400, "At most %d users may be created with an instance", CREATE_ITEMS_MAX);
        return false;
    }
    struct tv *list = tv_child_array(args, "users");
    json_array_foreach(users, i, user) {
        const char *name, *password, *host;
        if (!json_is_object(user)) {
            api_fault(r, 400, "Each item of instance.users must be an object");
            return false;
        }
        if (!api_check_keys(r, user, "instance.users[]", keys) ||
            !api_get_string(r, user, "instance.users[]", "name", true, &name) ||
            !api_get_string(r, user, "instance.users[]", "password", true, &password) ||
            !api_get_string(r, user, "instance.users[]", "host", false, &host) ||
            !api_check_name(r, API_NAME_USER, "user name", name) ||
            !api_check_name(r, API_NAME_PASSWORD, "password", password) ||
            (host && !api_check_name(r, API_NAME_HOST, "host", host)))
            return false;
        for (size_t j = 0; j < i; j++) {
            json_t *other = json_array_get(users, j);
            const char *oh = json_string_value(json_object_get(other, "host"));
            if (strcmp(json_string_value(json_object_get(other, "name")), name) == 0 &&
                strcmp(oh ? oh : "%", host ? host : "%") == 0) {
                api_fault(r, 400, "User %s is listed twice", name);
                return false;
            }
        }
        struct tv *item = tv_map(), *dbs = item ? tv_child_array(item, "databases") : NULL;
        if (!item || !list || !dbs || tv_set_str(item, "name", name) != 0 ||
            tv_set_str(item, "password", password) != 0 || (host && tv_set_str(item, "host", host) != 0)) {
            tv_free(item);
            api_fault(r, 500, "out of memory");
            return false;
        }
        if (!check_user_databases(r, inst, user, dbs)) {
            tv_free(item);
            return false;
        }
        if (tv_append(list, item) != 0) {
            api_fault(r, 500, "out of memory");
            return false;
        }
    }
    return true;
}

/* Trove fields this service does not offer: refused unless empty. */
static bool check_unsupported(struct api_request *r, json_t *inst)
{
    static const struct { const char *key, *why; } fields[] = {
        { "replica_of", "Replication is not supported yet" },
        { "replica_count", "Replication is not supported yet" },
        { "restorePoint", "Restoring from a backup is not supported yet" },
        { "configuration", "Configuration groups are not supported yet" },
        { "availability_zone", "Availability zones are not supported: instances run on this host" },
        { "region_name", "Regions are not supported: instances run on this host" },
        { "locality", "Locality is not supported: instances run on this host" },
        { "nics", "Networks are not supported: instances listen on loopback" },
        { "modules", "Modules are not supported" },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *v = json_object_get(inst, fields[i].key);
        bool empty = !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0);
        if (!empty) {
            api_fault(r, 501, "%s", fields[i].why);
            return false;
        }
    }
    static const char *const access_keys[] = { "is_public", "allowed_cidrs", NULL };
    json_t *access = NULL, *cidrs = NULL;
    bool is_public = false;
    if (!api_get_object(r, inst, "instance", "access", false, &access))
        return false;
    if (access && (!api_check_keys(r, access, "instance.access", access_keys) ||
                   !api_get_bool(r, access, "instance.access", "is_public", &is_public) ||
                   !api_get_array(r, access, "instance.access", "allowed_cidrs", false, &cidrs)))
        return false;
    if (is_public || (cidrs && json_array_size(cidrs) > 0)) {
        api_fault(r, 501, "Public access is not supported: instances listen on loopback");
        return false;
    }
    return true;
}

/* The tenant's row, made on its first instance. */
static bool ensure_tenant(struct api_request *r)
{
    struct registry_tenant t = { 0 };
    char err[256];
    int rc = registry_tenant_get(r->api->registry, r->who.tenant, &t, err, sizeof err);
    registry_tenant_clear(&t);
    if (rc == TROVE_ENOTFOUND) {
        struct registry_tenant nt = { 0 };
        snprintf(nt.id, sizeof nt.id, "%s", r->who.tenant);
        nt.name = r->who.tenant;
        rc = registry_tenant_create(r->api->registry, &nt, err, sizeof err);
        if (rc == TROVE_EEXIST)
            rc = TROVE_OK;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

/* The new instance's id from instance.create's result. */
static const char *created_id(const struct tv *result)
{
    const char *id = tv_get_str(result, "instance_id");
    if (!id)
        id = tv_get_str(result, "instance");
    if (!id)
        id = tv_get_str(tv_get(result, "instance"), "id");
    return id;
}

static void created(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    const char *id = created_id(result);
    struct registry_instance in = { 0 };
    char err[256];
    int rc = id ? registry_instance_get(r->api->registry, r->who.tenant, id, &in, err, sizeof err) : TROVE_ENOTFOUND;
    if (rc == TROVE_OK)
        respond_instance(r, 200, &in);
    else if (rc == TROVE_ENOTFOUND)
        api_fault(r, 500, "The instance was accepted but cannot be found");
    else
        api_registry_fault(r, rc, err);
    registry_instance_clear(&in);
}

static void handle_create(struct api_request *r)
{
    static const char *const keys[] = {
        "name", "flavorRef", "volume", "databases", "users", "datastore", "access", "replica_of",
        "replica_count", "restorePoint", "configuration", "availability_zone", "region_name", "locality",
        "nics", "modules", NULL,
    };
    struct create_plan plan = { 0 };
    struct tv *args = tv_map();
    const char *name;
    json_t *flavor_ref, *inst = api_body_object(r, "instance");
    if (!args) {
        api_fault(r, 500, "out of memory");
        goto out;
    }
    if (!inst || !api_check_keys(r, inst, "instance", keys) ||
        !api_get_string(r, inst, "instance", "name", true, &name) ||
        !api_check_name(r, API_NAME_INSTANCE, "instance name", name) || !check_unsupported(r, inst) ||
        !check_volume(r, inst, &plan) || !check_databases(r, inst, args) || !check_users(r, inst, args))
        goto out;
    if (!(flavor_ref = json_object_get(inst, "flavorRef")) || json_is_null(flavor_ref)) {
        api_fault(r, 400, "Missing field 'flavorRef' in instance");
        goto out;
    }
    if (!resolve_flavor(r, flavor_ref, &plan.flavor) || !check_datastore(r, inst, &plan) || !ensure_tenant(r))
        goto out;
    if (tv_set_str(args, "name", name) != 0 || tv_set_str(args, "flavor", plan.flavor.id) != 0 ||
        tv_set_int(args, "volume_size", plan.volume_gb) != 0 ||
        tv_set_str(args, "datastore", plan.datastore.name) != 0 ||
        tv_set_str(args, "datastore_version", plan.version.id) != 0) {
        api_fault(r, 500, "out of memory");
        goto out;
    }
    api_submit(r, NULL, "instance.create", args, created);
    args = NULL;
out:
    tv_free(args);
    plan_clear(&plan);
}

/* ------------------------------------------------------------ delete and actions */

/* Trove's refusal for an instance busy with a task or in the wrong state. */
static bool can_act(struct api_request *r, const struct registry_instance *in, const char *const *ok)
{
    if (in->task_id[0]) {
        struct registry_task t = { 0 };
        char err[256];
        const char *kind = "another action";
        if (registry_task_get(r->api->registry, NULL, in->task_id, &t, err, sizeof err) == TROVE_OK)
            kind = t.kind;
        api_fault(r, 422, "Instance %s is not currently available for an action to be performed (task status "
                  "was %s).", in->id, kind);
        registry_task_clear(&t);
        return false;
    }
    if (ok && !status_in(in->status, ok)) {
        api_fault(r, 422, "Instance %s is not currently available for an action to be performed (instance "
                  "status was %s).", in->id, in->status);
        return false;
    }
    return true;
}

static void handle_delete(struct api_request *r)
{
    struct registry_instance in;
    if (!api_load_instance(r, r->arg[0], &in))
        goto out;
    /* An instance in ERROR (also after reset_status) goes the forced way:
     * its agent may be gone. */
    bool force = strcmp(in.status, "ERROR") == 0 || strcmp(in.status, "FAILED") == 0;
    if (!force && !can_act(r, &in, NULL))
        goto out;
    api_submit(r, in.id, force ? "instance.force_delete" : "instance.delete", NULL, api_accepted);
out:
    registry_instance_clear(&in);
}

static bool empty_object(struct api_request *r, json_t *v, const char *what)
{
    if (!json_is_object(v) || json_object_size(v) != 0) {
        api_fault(r, 400, "'%s' takes an empty object", what);
        return false;
    }
    return true;
}

static void action_resize(struct api_request *r, struct registry_instance *in, json_t *resize)
{
    static const char *const keys[] = { "flavorRef", "volume", NULL };
    static const char *const vkeys[] = { "size", NULL };
    if (!json_is_object(resize) || !api_check_keys(r, resize, "resize", keys))
        return;
    json_t *flavor_ref = json_object_get(resize, "flavorRef"), *volume = json_object_get(resize, "volume");
    if ((flavor_ref != NULL) == (volume != NULL)) {
        api_fault(r, 400, "'resize' takes either flavorRef or volume");
        return;
    }
    if (volume) {
        int64_t size = 0;
        if (!api_get_object(r, resize, "resize", "volume", true, &volume) ||
            !api_check_keys(r, volume, "resize.volume", vkeys) ||
            !api_get_positive(r, volume, "resize.volume", "size", true, VOLUME_GB_MAX, &size) ||
            !can_act(r, in, resize_volume_ok))
            return;
        if (size <= in->volume_size_gb) {
            api_fault(r, 400, "The new volume 'size' must be larger than the current volume size of '%lld'.",
                      (long long)in->volume_size_gb);
            return;
        }
        struct tv *args = tv_map();
        if (!args || tv_set_int(args, "size", size) != 0) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
            return;
        }
        api_submit(r, in->id, "instance.resize_volume", args, api_accepted);
        return;
    }
    struct registry_flavor f = { 0 };
    if (resolve_flavor(r, flavor_ref, &f) && can_act(r, in, resize_flavor_ok)) {
        struct tv *args = tv_map();
        if (strcmp(f.id, in->flavor_id) == 0)
            api_fault(r, 400, "No change was requested in the size of the instance.");
        else if (!args || tv_set_str(args, "flavor", f.id) != 0)
            api_fault(r, 500, "out of memory");
        else {
            api_submit(r, in->id, "instance.resize_flavor", args, api_accepted);
            args = NULL;
        }
        tv_free(args);
    }
    registry_flavor_clear(&f);
}

/* Trove's reset_status: the instance shows ERROR, so a DELETE that follows
 * takes the forced way (what `openstack database instance delete --force`
 * does). Through the catalogue's instance.reset_status when it has one. */
static void action_reset_status(struct api_request *r, struct registry_instance *in)
{
    if (ops_find("instance.reset_status")) {
        api_submit(r, in->id, "instance.reset_status", NULL, api_accepted);
        return;
    }
    char err[256];
    int rc = registry_instance_set_status(r->api->registry, in->id, NULL, "ERROR", "status reset by request", err,
                                          sizeof err);
    if (rc == TROVE_OK)
        api_respond(r, 202, NULL);
    else if (rc == TROVE_ENOTFOUND)
        api_fault(r, 404, "Instance %s could not be found.", in->id);
    else
        api_registry_fault(r, rc, err);
}

static void handle_action(struct api_request *r)
{
    static const char *const keys[] = { "restart", "resize", "reset_status", "promote_to_replica_source",
                                        "eject_replica_source", NULL };
    struct registry_instance in;
    if (!api_check_keys(r, r->json, "the action", keys))
        return;
    if (json_object_size(r->json) != 1) {
        api_fault(r, 400, "Send exactly one action");
        return;
    }
    if (!api_load_instance(r, r->arg[0], &in))
        goto out;
    const char *action = json_object_iter_key(json_object_iter(r->json));
    json_t *value = json_object_get(r->json, action);
    if (strcmp(action, "restart") == 0) {
        if (empty_object(r, value, action) && can_act(r, &in, restart_ok))
            api_submit(r, in.id, "instance.restart", NULL, api_accepted);
    } else if (strcmp(action, "resize") == 0) {
        action_resize(r, &in, value);
    } else if (strcmp(action, "reset_status") == 0) {
        static const char *const rkeys[] = { "force_delete", NULL };
        if (json_is_object(value) && api_check_keys(r, value, "reset_status", rkeys))
            action_reset_status(r, &in);
        else if (!r->answered)
            api_fault(r, 400, "'reset_status' takes an object");
    } else {
        api_fault(r, 501, "Replication is not supported yet");
    }
out:
    registry_instance_clear(&in);
}

const struct api_route api_instance_routes[] = {
    { "GET", "instances", handle_list, API_BODY_NONE, false },
    { "POST", "instances", handle_create, API_BODY_REQUIRED, false },
    { "GET", "instances/detail", handle_detail, API_BODY_NONE, false },
    { "GET", "instances/{}", handle_show, API_BODY_NONE, false },
    { "DELETE", "instances/{}", handle_delete, API_BODY_NONE, false },
    { "POST", "instances/{}/action", handle_action, API_BODY_REQUIRED, false },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
