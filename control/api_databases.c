/*
 * api_databases.c - /v1.0/{tenant}/instances/{id}/databases: list (paged by
 * the agent), create (several in one request) and delete. Names are checked
 * here; the instance's agent does the work (database.* ops).
 */
#include "api_internal.h"

#include <string.h>

#include "registry.h"
#include "value.h"

/* The agent's {databases: [{name, ...}], next_marker} as Trove's page. */
static void listed(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    const struct tv *dbs = tv_get(result, "databases");
    json_t *list = json_array();
    for (size_t i = 0; list && dbs && dbs->type == TV_ARRAY && i < dbs->u.a.len; i++) {
        const char *name = tv_get_str(dbs->u.a.items[i], "name");
        if (name)
            json_array_append_new(list, json_pack("{s:s}", "name", name));
    }
    api_respond_agent_page(r, "databases", list, result);
}

static void handle_list(struct api_request *r)
{
    struct registry_instance in;
    size_t limit;
    const char *marker;
    if (!api_paging(r, &limit, &marker))
        return;
    if (marker && !api_check_name(r, API_NAME_DATABASE, "marker", marker))
        return;
    if (api_load_ready_instance(r, r->arg[0], &in)) {
        struct tv *args = tv_map();
        if (!args || tv_set_int(args, "limit", (int64_t)limit) != 0 ||
            (marker && tv_set_str(args, "marker", marker) != 0)) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
        } else {
            api_submit(r, in.id, "database.list", args, listed);
        }
    }
    registry_instance_clear(&in);
}

/* {"databases": [{name, character_set, collate}]} -> one database.create each. */
static struct tv *create_list(struct api_request *r)
{
    static const char *const body_keys[] = { "databases", NULL };
    static const char *const keys[] = { "name", "character_set", "collate", NULL };
    json_t *dbs = NULL, *db;
    size_t i;
    if (!api_check_keys(r, r->json, "the request body", body_keys) ||
        !api_get_array(r, r->json, "the request body", "databases", true, &dbs))
        return NULL;
    if (json_array_size(dbs) == 0 || json_array_size(dbs) > 64) {
        api_fault(r, 400, "'databases' must list 1 to 64 databases");
        return NULL;
    }
    struct tv *list = tv_array();
    if (!list) {
        api_fault(r, 500, "out of memory");
        return NULL;
    }
    json_array_foreach(dbs, i, db) {
        const char *name, *charset, *collate;
        if (!json_is_object(db)) {
            api_fault(r, 400, "Each item of databases must be an object");
            goto fail;
        }
        if (!api_check_keys(r, db, "databases[]", keys) ||
            !api_get_string(r, db, "databases[]", "name", true, &name) ||
            !api_get_string(r, db, "databases[]", "character_set", false, &charset) ||
            !api_get_string(r, db, "databases[]", "collate", false, &collate) ||
            !api_check_name(r, API_NAME_DATABASE, "database name", name) ||
            (charset && !api_check_name(r, API_NAME_CHARSET, "character set", charset)) ||
            (collate && !api_check_name(r, API_NAME_CHARSET, "collation", collate)))
            goto fail;
        struct tv *args = tv_map();
        if (!args || tv_set_str(args, "name", name) != 0 ||
            (charset && tv_set_str(args, "character_set", charset) != 0) ||
            (collate && tv_set_str(args, "collation", collate) != 0)) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
            goto fail;
        }
        if (tv_append(list, args) != 0) {   /* frees args */
            api_fault(r, 500, "out of memory");
            goto fail;
        }
    }
    return list;
fail:
    tv_free(list);
    return NULL;
}

static void handle_create(struct api_request *r)
{
    struct registry_instance in = { 0 };
    struct tv *list = create_list(r);
    if (list && api_load_ready_instance(r, r->arg[0], &in)) {
        api_submit_each(r, in.id, "database.create", list);
        list = NULL;
    }
    tv_free(list);
    registry_instance_clear(&in);
}

static void handle_delete(struct api_request *r)
{
    struct registry_instance in = { 0 };
    if (api_check_name(r, API_NAME_DATABASE, "database name", r->arg[1]) &&
        api_load_ready_instance(r, r->arg[0], &in)) {
        struct tv *args = tv_map();
        if (!args || tv_set_str(args, "name", r->arg[1]) != 0) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
        } else {
            api_submit(r, in.id, "database.delete", args, api_accepted);
        }
    }
    registry_instance_clear(&in);
}

const struct api_route api_database_routes[] = {
    { "GET", "instances/{}/databases", handle_list, API_BODY_NONE, false },
    { "POST", "instances/{}/databases", handle_create, API_BODY_REQUIRED, false },
    { "DELETE", "instances/{}/databases/{}", handle_delete, API_BODY_NONE, false },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
