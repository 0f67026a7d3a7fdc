/*
 * api_mgmt.c - the admin routes under /v1.0/{tenant}/mgmt/: datastore
 * versions (list, show, add, update: enable, disable, make default) and
 * flavors (add, delete), as Trove's management API and trove-manage offer
 * them. Admin role only; these are catalogue rows in the registry, written
 * here directly (no instance or agent is involved).
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "value.h"

#define FLAVOR_RAM_MAX (1024L * 1024)     /* MB */
#define FLAVOR_VCPUS_MAX 1024
#define FLAVOR_DISK_MAX 16384

/* ------------------------------------------------------------ helpers */

static json_t *version_admin_view(struct api_request *r, const struct registry_datastore_version *v,
                                  const struct registry_datastore *ds)
{
    json_t *engine = v->engine && v->engine[0] ? json_loads(v->engine, 0, NULL) : NULL;
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:b,s:s,s:s,s:[],s:s,s:o,s:b}", "id", v->id, "name", v->name,
                     "version", v->name, "datastore_id", ds ? ds->id : "", "datastore_name", v->datastore, "links",
                     api_links(r, "mgmt/datastore-versions", v->id), "active", v->active, "packages",
                     v->packages ? v->packages : "", "image", v->image ? v->image : "", "image_tags",
                     "datastore_manager", v->plugin ? v->plugin : "", "engine", engine ? engine : json_object(),
                     "default", ds && strcmp(ds->default_version_id, v->id) == 0);
}

static bool plugin_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 31)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool path_ok(const char *s)
{
    size_t len = strlen(s);
    if (len < 2 || len > 255 || s[0] != '/' || strstr(s, "/.."))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f || s[i] == '\\' || s[i] == '"' || s[i] == '\'')
            return false;
    return true;
}

/* {"bindir": "/abs"} or {"binary": "/abs"} -> JSON text (malloc'd); NULL after answering. */
static char *engine_text(struct api_request *r, json_t *engine)
{
    static const char *const keys[] = { "bindir", "binary", NULL };
    const char *bindir = NULL, *binary = NULL;
    if (!api_check_keys(r, engine, "version.engine", keys) ||
        !api_get_string(r, engine, "version.engine", "bindir", false, &bindir) ||
        !api_get_string(r, engine, "version.engine", "binary", false, &binary))
        return NULL;
    if ((bindir && !path_ok(bindir)) || (binary && !path_ok(binary))) {
        api_fault(r, 400, "version.engine paths must be absolute, 2-255 characters, without spaces or quotes");
        return NULL;
    }
    char *text = json_dumps(engine, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        api_fault(r, 500, "out of memory");
    return text;
}

/* packages: a list of strings (Trove) -> "a,b" (malloc'd); NULL after answering. */
static char *packages_text(struct api_request *r, json_t *packages)
{
    size_t i;
    json_t *p;
    size_t len = 0;
    json_array_foreach(packages, i, p) {
        if (!json_is_string(p) || !api_name_ok(API_NAME_REF, json_string_value(p))) {
            api_fault(r, 400, "version.packages must be a list of package names");
            return NULL;
        }
        len += json_string_length(p) + 1;
    }
    char *text = calloc(1, len + 1);
    if (!text) {
        api_fault(r, 500, "out of memory");
        return NULL;
    }
    json_array_foreach(packages, i, p) {
        if (i)
            strcat(text, ",");
        strcat(text, json_string_value(p));
    }
    return text;
}

static bool load_version(struct api_request *r, const char *id, struct registry_datastore_version *v,
                         struct registry_datastore *ds)
{
    char err[256];
    memset(ds, 0, sizeof *ds);
    int rc = api_name_ok(API_NAME_REF, id) ? registry_datastore_version_get(r->api->registry, id, v, err, sizeof err)
                                            : TROVE_ENOTFOUND;
    if (rc == TROVE_OK)
        rc = registry_datastore_get(r->api->registry, v->datastore, ds, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 404, "Datastore version '%s' cannot be found.", api_name_ok(API_NAME_REF, id) ? id : "");
        return false;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ datastore versions */

static void handle_version_list(struct api_request *r)
{
    size_t limit;
    const char *marker;
    if (!api_paging(r, &limit, &marker))
        return;
    struct registry_query q = { .marker = marker, .limit = limit };
    struct registry_datastore_version *items = NULL;
    size_t n = 0;
    bool more = false;
    char err[256];
    int rc = registry_datastore_version_list(r->api->registry, &q, &items, &n, &more, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 400, "Invalid marker: no datastore version with that id in this list");
        return;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        struct registry_datastore ds = { 0 };
        bool have = registry_datastore_get(r->api->registry, items[i].datastore, &ds, err, sizeof err) == TROVE_OK;
        json_array_append_new(list, version_admin_view(r, &items[i], have ? &ds : NULL));
        registry_datastore_clear(&ds);
    }
    json_t *page = api_page(r, "versions", list, more && n ? items[n - 1].id : NULL, false);
    if (page)
        api_respond(r, 200, page);
    else
        api_fault(r, 500, "out of memory");
    registry_datastore_versions_free(items, n);
}

static void handle_version_show(struct api_request *r)
{
    struct registry_datastore_version v = { 0 };
    struct registry_datastore ds;
    if (load_version(r, r->arg[0], &v, &ds))
        api_respond(r, 200, json_pack("{s:o}", "version", version_admin_view(r, &v, &ds)));
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

/* The datastore named, made when missing (as trove-manage does). */
static bool datastore_for(struct api_request *r, const char *name, struct registry_datastore *ds)
{
    char err[256];
    memset(ds, 0, sizeof *ds);
    int rc = registry_datastore_get(r->api->registry, name, ds, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        memset(ds, 0, sizeof *ds);
        snprintf(ds->name, sizeof ds->name, "%s", name);
        rc = registry_datastore_create(r->api->registry, ds, err, sizeof err);
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

struct version_fields {
    const char *name, *datastore, *plugin, *image, *number;
    json_t *engine, *packages, *image_tags;
    bool active, is_default, has_active, has_default;
};

static bool read_version_fields(struct api_request *r, json_t *v, struct version_fields *f, bool create)
{
    static const char *const keys[] = { "name", "datastore_name", "datastore_manager", "image", "image_tags",
                                        "packages", "active", "default", "version", "engine", NULL };
    memset(f, 0, sizeof *f);
    if (!api_check_keys(r, v, "version", keys) || !api_get_string(r, v, "version", "name", create, &f->name) ||
        !api_get_string(r, v, "version", "datastore_name", create, &f->datastore) ||
        !api_get_string(r, v, "version", "datastore_manager", create, &f->plugin) ||
        !api_get_string(r, v, "version", "image", false, &f->image) ||
        !api_get_string(r, v, "version", "version", false, &f->number) ||
        !api_get_object(r, v, "version", "engine", false, &f->engine) ||
        !api_get_array(r, v, "version", "packages", false, &f->packages) ||
        !api_get_array(r, v, "version", "image_tags", false, &f->image_tags))
        return false;
    f->has_active = json_object_get(v, "active") && !json_is_null(json_object_get(v, "active"));
    f->has_default = json_object_get(v, "default") && !json_is_null(json_object_get(v, "default"));
    if (!api_get_bool(r, v, "version", "active", &f->active) || !api_get_bool(r, v, "version", "default",
                                                                               &f->is_default))
        return false;
    if ((f->name && !api_check_name(r, API_NAME_REF, "version name", f->name)) ||
        (f->datastore && !api_check_name(r, API_NAME_REF, "datastore name", f->datastore)))
        return false;
    if (f->plugin && !plugin_name_ok(f->plugin)) {
        api_fault(r, 400, "Invalid datastore_manager: the plugin's name, 1-31 characters of a-z 0-9 _");
        return false;
    }
    if (f->image && !api_name_ok(API_NAME_INSTANCE, f->image) && f->image[0]) {
        api_fault(r, 400, "Invalid image");
        return false;
    }
    if (f->number && f->name && strcmp(f->number, f->name) != 0) {
        api_fault(r, 400, "A version number other than the version's name is not supported");
        return false;
    }
    if (f->image_tags && json_array_size(f->image_tags) > 0) {
        api_fault(r, 501, "Image tags are not supported");
        return false;
    }
    return true;
}

/* Fill a version record's text fields from f (malloc'd where set). */
static bool apply_fields(struct api_request *r, const struct version_fields *f,
                         struct registry_datastore_version *v, char **engine, char **packages)
{
    *engine = *packages = NULL;
    if (f->engine && !(*engine = engine_text(r, f->engine)))
        return false;
    if (f->packages && !(*packages = packages_text(r, f->packages)))
        return false;
    if (f->name)
        v->name = (char *)f->name;
    if (f->plugin)
        v->plugin = (char *)f->plugin;
    if (f->image)
        v->image = (char *)f->image;
    if (*engine)
        v->engine = *engine;
    if (*packages)
        v->packages = *packages;
    if (f->has_active)
        v->active = f->active;
    return true;
}

static bool set_default(struct api_request *r, struct registry_datastore *ds, const char *version_id)
{
    char err[256];
    snprintf(ds->default_version_id, sizeof ds->default_version_id, "%s", version_id);
    int rc = registry_datastore_update(r->api->registry, ds, err, sizeof err);
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

static void handle_version_create(struct api_request *r)
{
    struct version_fields f;
    struct registry_datastore ds = { 0 };
    struct registry_datastore_version v = { 0 };
    char *engine = NULL, *packages = NULL, err[256];
    json_t *body = api_body_object(r, "version");
    if (!body || !read_version_fields(r, body, &f, true))
        return;
    struct registry_datastore_version existing = { 0 };
    if (registry_datastore_version_find(r->api->registry, f.datastore, f.name, &existing, err, sizeof err) ==
        TROVE_OK) {
        registry_datastore_version_clear(&existing);
        api_fault(r, 400, "Datastore version %s already exists for %s", f.name, f.datastore);
        return;
    }
    if (!f.has_active) {
        f.active = true;
        f.has_active = true;
    }
    v.engine = (char *)"{}";
    v.packages = (char *)"";
    v.image = (char *)"";
    if (!apply_fields(r, &f, &v, &engine, &packages) || !datastore_for(r, f.datastore, &ds))
        goto out;
    snprintf(v.datastore, sizeof v.datastore, "%s", ds.name);
    int rc = registry_datastore_version_create(r->api->registry, &v, err, sizeof err);
    if (rc == TROVE_EEXIST || rc == TROVE_EINVAL) {
        api_fault(r, 400, "%s", err);
        goto out;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        goto out;
    }
    if (f.is_default && !set_default(r, &ds, v.id))
        goto out;
    api_respond(r, 202, NULL);
out:
    free(engine);
    free(packages);
    registry_datastore_clear(&ds);
}

/* PATCH: Trove sends the fields bare ({active, default, ...}), not under "version". */
static void handle_version_update(struct api_request *r)
{
    struct version_fields f;
    struct registry_datastore ds;
    struct registry_datastore_version v = { 0 };
    char *engine = NULL, *packages = NULL, err[256];
    if (!read_version_fields(r, r->json, &f, false) || !load_version(r, r->arg[0], &v, &ds))
        goto out;
    if (f.datastore && strcmp(f.datastore, v.datastore) != 0) {
        api_fault(r, 400, "A version cannot move to another datastore");
        goto out;
    }
    /* the record's strings are the registry's (malloc'd); keep them to free */
    struct registry_datastore_version owned = v;
    if (!apply_fields(r, &f, &v, &engine, &packages))
        goto restore;
    int rc = registry_datastore_version_update(r->api->registry, &v, err, sizeof err);
    if (rc == TROVE_EEXIST || rc == TROVE_EINVAL)
        api_fault(r, 400, "%s", err);
    else if (rc != TROVE_OK)
        api_registry_fault(r, rc, err);
    else if (f.has_default && f.is_default && !set_default(r, &ds, v.id))
        ;
    else if (f.has_default && !f.is_default && strcmp(ds.default_version_id, v.id) == 0 && !set_default(r, &ds, ""))
        ;
    else
        api_respond(r, 202, NULL);
restore:
    v = owned;
out:
    free(engine);
    free(packages);
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

static void handle_version_delete(struct api_request *r)
{
    struct registry_datastore_version v = { 0 };
    struct registry_datastore ds;
    if (load_version(r, r->arg[0], &v, &ds))
        api_fault(r, 501, "Datastore versions are not deleted; disable it instead (instances may still use it)");
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

/* ------------------------------------------------------------ flavors */

/* disk: GB, 0 allowed (as in Trove), absent = 0. */
static bool flavor_disk(struct api_request *r, json_t *f, int64_t *disk)
{
    json_t *d = json_object_get(f, "disk");
    *disk = 0;
    if (!d || json_is_null(d) || (json_is_integer(d) && json_integer_value(d) == 0))
        return true;
    return api_get_positive(r, f, "flavor", "disk", false, FLAVOR_DISK_MAX, disk);
}

static void handle_flavor_create(struct api_request *r)
{
    static const char *const keys[] = { "flavor_id", "name", "ram", "disk", "vcpu", "vcpus", "ephemeral", "swap",
                                        "rxtx_factor", "is_public", "service_type", NULL };
    const char *id = NULL, *name = NULL;
    int64_t ram = 0, disk = 0, vcpus = 0;
    char err[256];
    json_t *f = api_body_object(r, "flavor");
    if (!f || !api_check_keys(r, f, "flavor", keys) || !api_get_string(r, f, "flavor", "name", true, &name) ||
        !api_check_name(r, API_NAME_INSTANCE, "flavor name", name) ||
        !api_get_positive(r, f, "flavor", "ram", true, FLAVOR_RAM_MAX, &ram) ||
        !flavor_disk(r, f, &disk) ||
        !api_get_positive(r, f, "flavor", json_object_get(f, "vcpus") ? "vcpus" : "vcpu", true, FLAVOR_VCPUS_MAX,
                          &vcpus))
        return;
    json_t *fid = json_object_get(f, "flavor_id");
    char idbuf[32] = "";
    if (json_is_integer(fid) && json_integer_value(fid) > 0) {
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(fid));
        id = idbuf;
    } else if (json_is_string(fid) && strcmp(json_string_value(fid), "auto") != 0) {
        id = json_string_value(fid);
        if (!api_check_name(r, API_NAME_REF, "flavor_id", id))
            return;
    } else if (fid && !json_is_null(fid) && !(json_is_string(fid))) {
        api_fault(r, 400, "flavor_id must be an id, a positive integer or \"auto\"");
        return;
    }
    struct registry_flavor row = { 0 };
    if (id)
        snprintf(row.id, sizeof row.id, "%s", id);
    row.name = (char *)name;
    row.ram_mb = ram;
    row.disk_gb = disk;
    row.vcpus = vcpus;
    int rc = registry_flavor_create(r->api->registry, &row, err, sizeof err);
    if (rc == TROVE_EEXIST || rc == TROVE_EINVAL)
        api_fault(r, 400, "%s", err);
    else if (rc != TROVE_OK)
        api_registry_fault(r, rc, err);
    else
        api_respond(r, 200, json_pack("{s:{s:s,s:s,s:s,s:I,s:I,s:I,s:o}}", "flavor", "id", row.id, "str_id", row.id,
                                      "name", name, "ram", (json_int_t)ram, "vcpus", (json_int_t)vcpus, "disk",
                                      (json_int_t)disk, "links", api_links(r, "flavors", row.id)));
}

static void handle_flavor_delete(struct api_request *r)
{
    char err[256];
    int rc = api_name_ok(API_NAME_REF, r->arg[0]) ? registry_flavor_delete(r->api->registry, r->arg[0], err, sizeof err)
                                                  : TROVE_ENOTFOUND;
    if (rc == TROVE_OK)
        api_respond(r, 202, NULL);
    else if (rc == TROVE_ENOTFOUND)
        api_fault(r, 404, "Flavor %s could not be found.", api_name_ok(API_NAME_REF, r->arg[0]) ? r->arg[0] : "");
    else if (rc == TROVE_EINVAL)
        api_fault(r, 400, "%s", err);
    else
        api_registry_fault(r, rc, err);
}

const struct api_route api_mgmt_routes[] = {
    { "GET", "mgmt/datastore-versions", handle_version_list, API_BODY_NONE, true },
    { "POST", "mgmt/datastore-versions", handle_version_create, API_BODY_REQUIRED, true },
    { "GET", "mgmt/datastore-versions/{}", handle_version_show, API_BODY_NONE, true },
    { "PATCH", "mgmt/datastore-versions/{}", handle_version_update, API_BODY_REQUIRED, true },
    { "DELETE", "mgmt/datastore-versions/{}", handle_version_delete, API_BODY_NONE, true },
    { "POST", "mgmt/flavors", handle_flavor_create, API_BODY_REQUIRED, true },
    { "DELETE", "mgmt/flavors/{}", handle_flavor_delete, API_BODY_NONE, true },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
