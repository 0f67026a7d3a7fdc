/*
 * api_datastores.c - datastores, their versions, flavors, and the
 * configuration parameters of a datastore version. Everything but the
 * parameters comes from the registry; the parameters are the plugin's
 * schema, asked once per version from the agent of a running instance of
 * that version (config.schema) and kept in memory.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "value.h"

/* ------------------------------------------------------------ lookups */

static bool load_datastore(struct api_request *r, const char *id_or_name, struct registry_datastore *out)
{
    char err[256];
    memset(out, 0, sizeof *out);
    int rc = api_name_ok(API_NAME_REF, id_or_name)
                 ? registry_datastore_get(r->api->registry, id_or_name, out, err, sizeof err)
                 : TROVE_ENOTFOUND;
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 404, "Datastore '%s' cannot be found.", api_name_ok(API_NAME_REF, id_or_name) ? id_or_name : "");
        return false;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

/* A version of ds by name or id; inactive versions are visible to admins only. */
static bool load_version(struct api_request *r, const struct registry_datastore *ds, const char *id_or_name,
                         struct registry_datastore_version *out)
{
    char err[256];
    int rc = TROVE_ENOTFOUND;
    memset(out, 0, sizeof *out);
    if (api_name_ok(API_NAME_REF, id_or_name)) {
        rc = registry_datastore_version_find(r->api->registry, ds->name, id_or_name, out, err, sizeof err);
        if (rc == TROVE_ENOTFOUND) {
            rc = registry_datastore_version_get(r->api->registry, id_or_name, out, err, sizeof err);
            if (rc == TROVE_OK && strcmp(out->datastore, ds->name) != 0)
                rc = TROVE_ENOTFOUND;
        }
        if (rc == TROVE_OK && !out->active && !r->who.admin)
            rc = TROVE_ENOTFOUND;
    }
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 404, "Datastore version '%s' cannot be found.",
                  api_name_ok(API_NAME_REF, id_or_name) ? id_or_name : "");
        return false;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

static bool load_version_by_id(struct api_request *r, const char *id, struct registry_datastore_version *out)
{
    char err[256];
    memset(out, 0, sizeof *out);
    int rc = api_name_ok(API_NAME_REF, id) ? registry_datastore_version_get(r->api->registry, id, out, err,
                                                                           sizeof err)
                                           : TROVE_ENOTFOUND;
    if (rc == TROVE_OK && !out->active && !r->who.admin)
        rc = TROVE_ENOTFOUND;
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

static bool list_versions(struct api_request *r, const char *datastore, struct registry_datastore_version **items,
                          size_t *n)
{
    char err[256];
    struct registry_query q = { .datastore = datastore };
    int rc = registry_datastore_version_list(r->api->registry, &q, items, n, NULL, err, sizeof err);
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    return true;
}

static bool default_version(struct api_request *r, const struct registry_datastore *ds,
                            struct registry_datastore_version *ver)
{
    if (ds->default_version_id[0])
        return load_version_by_id(r, ds->default_version_id, ver);
    struct registry_datastore_version *items = NULL;
    size_t n = 0, active = 0, pick = 0;
    if (!list_versions(r, ds->name, &items, &n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (items[i].active) {
            active++;
            pick = i;
        }
    bool ok = active == 1;
    if (ok) {
        *ver = items[pick];
        memset(&items[pick], 0, sizeof items[pick]);   /* moved out */
    } else {
        api_fault(r, 400, "Specify a datastore version: datastore '%s' has %zu active versions and no default",
                  ds->name, active);
    }
    registry_datastore_versions_free(items, n);
    return ok;
}

bool api_resolve_datastore(struct api_request *r, const char *type, const char *version,
                           struct registry_datastore *ds, struct registry_datastore_version *ver)
{
    memset(ds, 0, sizeof *ds);
    memset(ver, 0, sizeof *ver);
    if (type) {
        if (!load_datastore(r, type, ds))
            return false;
    } else {
        struct registry_datastore *items = NULL;
        size_t n = 0;
        char err[256];
        struct registry_query q = { 0 };
        int rc = registry_datastore_list(r->api->registry, &q, &items, &n, NULL, err, sizeof err);
        if (rc != TROVE_OK) {
            api_registry_fault(r, rc, err);
            return false;
        }
        if (n == 1)
            *ds = items[0];
        else
            api_fault(r, 400, "Please specify datastore: there is no default among %zu datastores", n);
        if (n == 1)
            memset(&items[0], 0, sizeof items[0]);
        registry_datastores_free(items, n);
        if (n != 1)
            return false;
    }
    if (!(version ? load_version(r, ds, version, ver) : default_version(r, ds, ver)))
        return false;
    if (!ver->active) {
        api_fault(r, 400, "Datastore version '%s' is not active.", ver->name);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ views */

static json_t *version_view(struct api_request *r, const struct registry_datastore_version *v,
                            const char *datastore_id)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "id", v->id, "name", v->name, "version", v->name, "links",
                          api_links(r, "datastores/versions", v->id));
    if (!o)
        return NULL;
    if (datastore_id)
        json_object_set_new(o, "datastore", json_string(datastore_id));
    if (r->who.admin) {
        json_object_set_new(o, "active", json_boolean(v->active));
        json_object_set_new(o, "packages", json_string(v->packages ? v->packages : ""));
        json_object_set_new(o, "image", json_string(v->image ? v->image : ""));
        json_object_set_new(o, "image_tags", json_array());
        json_object_set_new(o, "plugin", json_string(v->plugin ? v->plugin : ""));
    }
    return o;
}

/* A datastore with its (visible) versions; NULL when it shows none to a
 * tenant (Trove lists only datastores with active versions). */
static json_t *datastore_view(struct api_request *r, const struct registry_datastore *ds, bool hide_empty)
{
    struct registry_datastore_version *items = NULL;
    size_t n = 0;
    if (!list_versions(r, ds->name, &items, &n))
        return NULL;
    json_t *versions = json_array();
    size_t shown = 0;
    for (size_t i = 0; versions && i < n; i++) {
        if (!items[i].active && !r->who.admin)
            continue;
        json_array_append_new(versions, version_view(r, &items[i], NULL));
        shown++;
    }
    registry_datastore_versions_free(items, n);
    if (!versions || (hide_empty && shown == 0 && !r->who.admin)) {
        json_decref(versions);
        return json_null();
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:o}", "id", ds->id, "name", ds->name, "links",
                          api_links(r, "datastores", ds->id), "versions", versions);
    if (o && ds->default_version_id[0])
        json_object_set_new(o, "default_version", json_string(ds->default_version_id));
    return o;
}

/* ------------------------------------------------------------ datastores */

static void handle_datastore_list(struct api_request *r)
{
    size_t limit;
    const char *marker;
    if (!api_paging(r, &limit, &marker))
        return;
    struct registry_query q = { .marker = marker, .limit = limit };
    struct registry_datastore *items = NULL;
    size_t n = 0;
    bool more = false;
    char err[256];
    int rc = registry_datastore_list(r->api->registry, &q, &items, &n, &more, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 400, "Invalid marker: no datastore with that id in this list");
        return;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n && !r->answered; i++) {
        json_t *view = datastore_view(r, &items[i], true);
        if (view && !json_is_null(view))
            json_array_append(list, view);
        json_decref(view);
    }
    if (!r->answered) {
        json_t *page = api_page(r, "datastores", list, more && n ? items[n - 1].id : NULL, false);
        list = NULL;
        if (page)
            api_respond(r, 200, page);
        else
            api_fault(r, 500, "out of memory");
    }
    json_decref(list);
    registry_datastores_free(items, n);
}

static void handle_datastore_show(struct api_request *r)
{
    struct registry_datastore ds;
    if (load_datastore(r, r->arg[0], &ds)) {
        json_t *view = datastore_view(r, &ds, false);
        if (view)
            api_respond(r, 200, json_pack("{s:o}", "datastore", view));
    }
    registry_datastore_clear(&ds);
}

static void handle_version_list(struct api_request *r)
{
    struct registry_datastore ds;
    struct registry_datastore_version *items = NULL;
    size_t n = 0;
    if (load_datastore(r, r->arg[0], &ds) && list_versions(r, ds.name, &items, &n)) {
        json_t *list = json_array();
        for (size_t i = 0; list && i < n; i++)
            if (items[i].active || r->who.admin)
                json_array_append_new(list, version_view(r, &items[i], ds.id));
        json_t *page = api_page(r, "versions", list, NULL, false);
        if (page)
            api_respond(r, 200, page);
        else
            api_fault(r, 500, "out of memory");
    }
    registry_datastore_versions_free(items, n);
    registry_datastore_clear(&ds);
}

static void respond_version(struct api_request *r, const struct registry_datastore_version *v)
{
    struct registry_datastore ds;
    if (load_datastore(r, v->datastore, &ds))
        api_respond(r, 200, json_pack("{s:o}", "version", version_view(r, v, ds.id)));
    registry_datastore_clear(&ds);
}

static void handle_version_show(struct api_request *r)
{
    struct registry_datastore ds;
    struct registry_datastore_version v = { 0 };
    if (load_datastore(r, r->arg[0], &ds) && load_version(r, &ds, r->arg[1], &v))
        api_respond(r, 200, json_pack("{s:o}", "version", version_view(r, &v, ds.id)));
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

static void handle_version_by_id(struct api_request *r)
{
    struct registry_datastore_version v;
    if (load_version_by_id(r, r->arg[0], &v))
        respond_version(r, &v);
    registry_datastore_version_clear(&v);
}

/* ------------------------------------------------------------ flavors */

static json_t *flavor_view(struct api_request *r, const struct registry_flavor *f)
{
    const char *id = f->id;
    bool numeric = id[0] && id[0] != '0' && strspn(id, "0123456789") == strlen(id) && strlen(id) < 10;
    return json_pack("{s:o,s:s,s:s,s:I,s:I,s:I,s:i,s:o}", "id", numeric ? json_integer(atoll(id)) : json_null(),
                     "str_id", id, "name", f->name ? f->name : "", "ram", (json_int_t)f->ram_mb, "vcpus",
                     (json_int_t)f->vcpus, "disk", (json_int_t)f->disk_gb, "ephemeral", 0, "links",
                     api_links(r, "flavors", id));
}

static void respond_flavors(struct api_request *r)
{
    struct registry_query q = { 0 };
    struct registry_flavor *items = NULL;
    size_t n = 0;
    char err[256];
    int rc = registry_flavor_list(r->api->registry, &q, &items, &n, NULL, err, sizeof err);
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, flavor_view(r, &items[i]));
    registry_flavors_free(items, n);
    api_respond(r, 200, json_pack("{s:o}", "flavors", list));
}

static void handle_flavor_list(struct api_request *r)
{
    respond_flavors(r);
}

static void handle_flavor_show(struct api_request *r)
{
    struct registry_flavor f = { 0 };
    char err[256];
    int rc = api_name_ok(API_NAME_REF, r->arg[0])
                 ? registry_flavor_get(r->api->registry, r->arg[0], &f, err, sizeof err)
                 : TROVE_ENOTFOUND;
    if (rc == TROVE_OK)
        api_respond(r, 200, json_pack("{s:o}", "flavor", flavor_view(r, &f)));
    else if (rc == TROVE_ENOTFOUND)
        api_fault(r, 404, "Flavor %s could not be found.", api_name_ok(API_NAME_REF, r->arg[0]) ? r->arg[0] : "");
    else
        api_registry_fault(r, rc, err);
    registry_flavor_clear(&f);
}

static void handle_version_flavors(struct api_request *r)
{
    struct registry_datastore ds;
    struct registry_datastore_version v = { 0 };
    if (load_datastore(r, r->arg[0], &ds) && load_version(r, &ds, r->arg[1], &v))
        respond_flavors(r);
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

static void handle_version_volume_types(struct api_request *r)
{
    struct registry_datastore ds;
    struct registry_datastore_version v = { 0 };
    if (load_datastore(r, r->arg[0], &ds) && load_version(r, &ds, r->arg[1], &v))
        api_respond(r, 200, json_pack("{s:[]}", "volume_types"));
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

/* ------------------------------------------------------------ parameters */

struct api_param_cache {
    struct api_param_cache *next;
    char version_id[REGISTRY_ID_SIZE];
    json_t *params;           /* Trove's shape: [{name, datastore_version_id, restart_required, type, min, max}] */
};

void api_param_cache_free(struct api_param_cache *c)
{
    while (c) {
        struct api_param_cache *next = c->next;
        json_decref(c->params);
        free(c);
        c = next;
    }
}

static json_t *cached_params(struct api *api, const char *version_id)
{
    for (struct api_param_cache *c = api->params; c; c = c->next)
        if (strcmp(c->version_id, version_id) == 0)
            return c->params;
    return NULL;
}

/* Trove's type names for the plugin's. */
static const char *trove_type(const char *t)
{
    if (!t)
        return "string";
    if (strcmp(t, "int") == 0 || strcmp(t, "integer") == 0 || strcmp(t, "size") == 0)
        return "integer";
    if (strcmp(t, "bool") == 0 || strcmp(t, "boolean") == 0)
        return "boolean";
    if (strcmp(t, "float") == 0 || strcmp(t, "double") == 0 || strcmp(t, "real") == 0)
        return "float";
    return "string";
}

static json_t *params_from_schema(const struct tv *schema, const char *version_id)
{
    const struct tv *list = tv_get(schema, "parameters");
    json_t *out = json_array();
    if (!out || !list || list->type != TV_ARRAY)
        return out;
    for (size_t i = 0; i < list->u.a.len; i++) {
        const struct tv *p = list->u.a.items[i];
        const char *name = tv_get_str(p, "name");
        if (!name)
            continue;
        json_t *o = json_pack("{s:s,s:s,s:b,s:s}", "name", name, "datastore_version_id", version_id,
                              "restart_required", !tv_get_bool(p, "dynamic", false), "type",
                              trove_type(tv_get_str(p, "type")));
        const struct tv *min = tv_get(p, "min"), *max = tv_get(p, "max");
        if (o && min && (min->type == TV_INT || min->type == TV_FLOAT))
            json_object_set_new(o, "min", min->type == TV_INT ? json_integer(min->u.i) : json_real(min->u.f));
        if (o && max && (max->type == TV_INT || max->type == TV_FLOAT))
            json_object_set_new(o, "max", max->type == TV_INT ? json_integer(max->u.i) : json_real(max->u.f));
        if (o)
            json_array_append_new(out, o);
    }
    return out;
}

struct params_ctx {
    char version_id[REGISTRY_ID_SIZE];
    char *name;                            /* one parameter, or NULL for the list */
    char (*sources)[REGISTRY_ID_SIZE];     /* running instances of the version, asked in turn */
    size_t n_sources, next_source;
};

static void params_ctx_free(void *p)
{
    struct params_ctx *c = p;
    free(c->name);
    free(c->sources);
    free(c);
}

static void respond_params(struct api_request *r, json_t *params, const char *name)
{
    if (!name) {
        api_respond(r, 200, json_pack("{s:O}", "configuration-parameters", params));
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) {
        if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0) {
            api_respond(r, 200, json_deep_copy(p));
            return;
        }
    }
    api_fault(r, 404, "No configuration parameter named %s", api_name_ok(API_NAME_REF, name) ? name : "");
}

static void schema_reply(struct api_request *r, int status, const char *message, const struct tv *result);

/* Ask the next running instance of the version for its plugin's schema. */
static void ask_next_source(struct api_request *r)
{
    struct params_ctx *c = r->ctx;
    api_submit_operator(r, c->sources[c->next_source++], "config.schema", NULL, schema_reply);
}

static void schema_reply(struct api_request *r, int status, const char *message, const struct tv *result)
{
    struct params_ctx *c = r->ctx;
    /* An instance whose agent is not connected (yet) answers unavailable at
     * once: another instance of the same version may well answer. */
    if (status == TROVE_EUNAVAIL && c->next_source < c->n_sources) {
        ask_next_source(r);
        return;
    }
    if (status != TROVE_OK) {
        api_fault(r, status == TROVE_ENOTSUP ? 501 : 503, "Cannot read the parameter schema: %s",
                  message[0] ? message : "the agent did not answer");
        return;
    }
    struct api_param_cache *entry = calloc(1, sizeof *entry);
    json_t *params = params_from_schema(result, c->version_id);
    if (!entry || !params) {
        free(entry);
        json_decref(params);
        api_fault(r, 500, "out of memory");
        return;
    }
    snprintf(entry->version_id, sizeof entry->version_id, "%s", c->version_id);
    entry->params = params;
    entry->next = r->api->params;
    r->api->params = entry;
    respond_params(r, params, c->name);
}

static bool is_running_status(const char *status)
{
    static const char *const live[] = { "ACTIVE", "HEALTHY", "RESTART_REQUIRED", "BLOCKED", NULL };
    for (size_t k = 0; live[k]; k++)
        if (strcmp(status, live[k]) == 0)
            return true;
    return false;
}

/* The instances of this version whose agents may answer config.schema (the
 * running ones), into c->sources; false after answering. */
static bool schema_sources(struct api_request *r, const char *version_id, struct params_ctx *c)
{
    struct registry_query q = { 0 };
    struct registry_instance *items = NULL;
    size_t n = 0;
    char err[256];
    int rc = registry_instance_list(r->api->registry, &q, &items, &n, NULL, err, sizeof err);
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return false;
    }
    if (n && !(c->sources = calloc(n, sizeof *c->sources))) {
        registry_instances_free(items, n);
        api_fault(r, 500, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].datastore_version_id, version_id) == 0 && is_running_status(items[i].status))
            snprintf(c->sources[c->n_sources++], sizeof *c->sources, "%s", items[i].id);
    registry_instances_free(items, n);
    if (c->n_sources == 0)
        api_fault(r, 503, "No running instance of this datastore version can report its parameter schema yet; "
                  "it is read from the first one that runs");
    return c->n_sources > 0;
}

static void serve_params(struct api_request *r, const struct registry_datastore_version *v, const char *name)
{
    json_t *params = cached_params(r->api, v->id);
    if (params) {
        respond_params(r, params, name);
        return;
    }
    struct params_ctx *c = calloc(1, sizeof *c);
    if (!c || (name && !(c->name = strdup(name)))) {
        free(c);
        api_fault(r, 500, "out of memory");
        return;
    }
    snprintf(c->version_id, sizeof c->version_id, "%s", v->id);
    api_set_ctx(r, c, params_ctx_free);
    if (schema_sources(r, v->id, c))
        ask_next_source(r);
}

static void handle_params(struct api_request *r)
{
    struct registry_datastore ds;
    struct registry_datastore_version v = { 0 };
    if (load_datastore(r, r->arg[0], &ds) && load_version(r, &ds, r->arg[1], &v))
        serve_params(r, &v, r->arg[2]);
    registry_datastore_version_clear(&v);
    registry_datastore_clear(&ds);
}

static void handle_params_by_id(struct api_request *r)
{
    struct registry_datastore_version v;
    if (load_version_by_id(r, r->arg[0], &v))
        serve_params(r, &v, r->arg[1]);
    registry_datastore_version_clear(&v);
}

const struct api_route api_datastore_routes[] = {
    { "GET", "datastores", handle_datastore_list, API_BODY_NONE, false },
    { "GET", "datastores/versions/{}", handle_version_by_id, API_BODY_NONE, false },
    { "GET", "datastores/versions/{}/parameters", handle_params_by_id, API_BODY_NONE, false },
    { "GET", "datastores/versions/{}/parameters/{}", handle_params_by_id, API_BODY_NONE, false },
    { "GET", "datastores/{}", handle_datastore_show, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions", handle_version_list, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions/{}", handle_version_show, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions/{}/flavors", handle_version_flavors, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions/{}/volume-types", handle_version_volume_types, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions/{}/parameters", handle_params, API_BODY_NONE, false },
    { "GET", "datastores/{}/versions/{}/parameters/{}", handle_params, API_BODY_NONE, false },
    { "GET", "flavors", handle_flavor_list, API_BODY_NONE, false },
    { "GET", "flavors/{}", handle_flavor_show, API_BODY_NONE, false },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
