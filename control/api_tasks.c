/*
 * api_tasks.c - /v1.0/{tenant}/tasks: the long operations (create, delete,
 * restart, resizes, ...) with their state, progress and error, read from the
 * registry. Not part of Trove's API; trovectl --wait follows them here.
 */
#include "api_internal.h"

#include <string.h>

#include "registry.h"

static void handle_list(struct api_request *r)
{
    size_t limit;
    const char *marker;
    const char *instance = api_query(r, "instance_id");
    if (!api_paging(r, &limit, &marker))
        return;
    if (instance && !api_name_ok(API_NAME_REF, instance)) {
        api_fault(r, 400, "Invalid instance_id");
        return;
    }
    struct registry_query q = { .tenant = r->who.tenant, .marker = marker, .limit = limit, .instance = instance };
    struct registry_task *items = NULL;
    size_t n = 0;
    bool more = false;
    char err[256];
    int rc = registry_task_list(r->api->registry, &q, &items, &n, &more, err, sizeof err);
    if (rc == TROVE_ENOTFOUND) {
        api_fault(r, 400, "Invalid marker: no task with that id in this list");
        return;
    }
    if (rc != TROVE_OK) {
        api_registry_fault(r, rc, err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, api_task_view(&items[i]));
    json_t *page = api_page(r, "tasks", list, more && n ? items[n - 1].id : NULL, false);
    if (page)
        api_respond(r, 200, page);
    else
        api_fault(r, 500, "out of memory");
    registry_tasks_free(items, n);
}

static void handle_show(struct api_request *r)
{
    struct registry_task t = { 0 };
    char err[256];
    int rc = api_name_ok(API_NAME_REF, r->arg[0])
                 ? registry_task_get(r->api->registry, r->who.tenant, r->arg[0], &t, err, sizeof err)
                 : TROVE_ENOTFOUND;
    if (rc == TROVE_OK)
        api_respond(r, 200, json_pack("{s:o}", "task", api_task_view(&t)));
    else if (rc == TROVE_ENOTFOUND)
        api_fault(r, 404, "Task could not be found.");
    else
        api_registry_fault(r, rc, err);
    registry_task_clear(&t);
}

const struct api_route api_task_routes[] = {
    { "GET", "tasks", handle_list, API_BODY_NONE, false },
    { "GET", "tasks/{}", handle_show, API_BODY_NONE, false },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
