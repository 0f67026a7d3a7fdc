/*
 * api_users.c - /v1.0/{tenant}/instances/{id}/users and /root: list (paged
 * by the agent), create, show, delete, change passwords, grant, revoke,
 * show access, and root enable/show/disable. A user in a path is
 * "name" or "name@host" (URL-quoted, as troveclient sends it). Names are
 * checked here; the instance's agent does the work (user.* and root.* ops).
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "value.h"

#define USERS_MAX 64

/* ------------------------------------------------------------ helpers */

/* "name@host" (the last '@' splits; none, or a trailing one, means no host). */
struct user_ref {
    char name[80];
    char host[80];     /* "" when not given */
};

static bool parse_user_ref(struct api_request *r, const char *s, struct user_ref *u)
{
    /* as Trove's unquote_user_host: a trailing '@' belongs to the name */
    const char *at = strrchr(s, '@');
    if (at && at[1] == '\0')
        at = NULL;
    size_t name_len = at ? (size_t)(at - s) : strlen(s);
    const char *host = at ? at + 1 : "";
    memset(u, 0, sizeof *u);
    if (name_len < sizeof u->name)
        memcpy(u->name, s, name_len);   /* else left empty: refused below */
    if (strlen(host) >= sizeof u->host)
        return api_check_name(r, API_NAME_HOST, "host", host);
    memcpy(u->host, host, strlen(host) + 1);
    return api_check_name(r, API_NAME_USER, "user name", u->name) &&
           (!u->host[0] || api_check_name(r, API_NAME_HOST, "host", u->host));
}

/* The args every user.* op starts with. NULL after answering. */
static struct tv *user_args(struct api_request *r, const struct user_ref *u)
{
    struct tv *args = tv_map();
    if (!args || tv_set_str(args, "name", u->name) != 0 || (u->host[0] && tv_set_str(args, "host", u->host) != 0)) {
        tv_free(args);
        api_fault(r, 500, "out of memory");
        return NULL;
    }
    return args;
}

/* [names] or [{name}] from an agent -> [{name}] */
static json_t *database_names(const struct tv *dbs)
{
    json_t *out = json_array();
    for (size_t i = 0; out && dbs && dbs->type == TV_ARRAY && i < dbs->u.a.len; i++) {
        const struct tv *d = dbs->u.a.items[i];
        const char *name = d->type == TV_STR ? d->u.s.ptr : tv_get_str(d, "name");
        if (name)
            json_array_append_new(out, json_pack("{s:s}", "name", name));
    }
    return out;
}

static json_t *user_view(const struct tv *u)
{
    const char *host = tv_get_str(u, "host");
    return json_pack("{s:s,s:s,s:o}", "name", tv_get_str(u, "name") ? tv_get_str(u, "name") : "", "host",
                     host && host[0] ? host : "%", "databases", database_names(tv_get(u, "databases")));
}

/* {"databases": [{name}]} -> ["name", ...]; NULL after answering. */
static struct tv *database_list(struct api_request *r, json_t *body)
{
    static const char *const body_keys[] = { "databases", NULL };
    static const char *const keys[] = { "name", NULL };
    json_t *dbs = NULL, *db;
    size_t i;
    if (!api_check_keys(r, body, "the request body", body_keys) ||
        !api_get_array(r, body, "the request body", "databases", true, &dbs))
        return NULL;
    if (json_array_size(dbs) == 0 || json_array_size(dbs) > 64) {
        api_fault(r, 400, "'databases' must list 1 to 64 databases");
        return NULL;
    }
    struct tv *names = tv_array();
    json_array_foreach(dbs, i, db) {
        const char *name;
        if (!json_is_object(db)) {
            api_fault(r, 400, "Each item of databases must be an object");
            goto fail;
        }
        if (!api_check_keys(r, db, "databases[]", keys) || !api_get_string(r, db, "databases[]", "name", true, &name) ||
            !api_check_name(r, API_NAME_DATABASE, "database name", name))
            goto fail;
        struct tv *s = tv_str(name);
        if (!names || !s || tv_append(names, s) != 0) {
            if (!names)
                tv_free(s);
            api_fault(r, 500, "out of memory");
            goto fail;
        }
    }
    return names;
fail:
    tv_free(names);
    return NULL;
}

/* ------------------------------------------------------------ users */

static void listed(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    const struct tv *users = tv_get(result, "users");
    json_t *list = json_array();
    for (size_t i = 0; list && users && users->type == TV_ARRAY && i < users->u.a.len; i++)
        json_array_append_new(list, user_view(users->u.a.items[i]));
    api_respond_agent_page(r, "users", list, result);
}

static void handle_list(struct api_request *r)
{
    struct registry_instance in;
    size_t limit;
    const char *marker;
    if (!api_paging(r, &limit, &marker))
        return;
    if (marker && strlen(marker) > 160) {
        api_fault(r, 400, "Invalid marker");
        return;
    }
    if (api_load_ready_instance(r, r->arg[0], &in)) {
        struct tv *args = tv_map();
        if (!args || tv_set_int(args, "limit", (int64_t)limit) != 0 ||
            (marker && tv_set_str(args, "marker", marker) != 0)) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
        } else {
            api_submit(r, in.id, "user.list", args, listed);
        }
    }
    registry_instance_clear(&in);
}

/* {"users": [{name, password, host, databases}]}, for create (full) or for
 * change_passwords (name, host, password). One args map per user. */
static struct tv *users_body(struct api_request *r, bool create)
{
    static const char *const body_keys[] = { "users", NULL };
    static const char *const create_keys[] = { "name", "password", "host", "databases", NULL };
    static const char *const password_keys[] = { "name", "password", "host", NULL };
    json_t *users = NULL, *user;
    size_t i;
    if (!api_check_keys(r, r->json, "the request body", body_keys) ||
        !api_get_array(r, r->json, "the request body", "users", true, &users))
        return NULL;
    if (json_array_size(users) == 0 || json_array_size(users) > USERS_MAX) {
        api_fault(r, 400, "'users' must list 1 to %d users", USERS_MAX);
        return NULL;
    }
    struct tv *list = tv_array();
    if (!list) {
        api_fault(r, 500, "out of memory");
        return NULL;
    }
    json_array_foreach(users, i, user) {
        const char *name, *password, *host;
        json_t *dbs = NULL;
        if (!json_is_object(user)) {
            api_fault(r, 400, "Each item of users must be an object");
            goto fail;
        }
        if (!api_check_keys(r, user, "users[]", create ? create_keys : password_keys) ||
            !api_get_string(r, user, "users[]", "name", true, &name) ||
            !api_get_string(r, user, "users[]", "password", true, &password) ||
            !api_get_string(r, user, "users[]", "host", false, &host) ||
            !api_check_name(r, API_NAME_USER, "user name", name) ||
            !api_check_name(r, API_NAME_PASSWORD, "password", password) ||
            (host && !api_check_name(r, API_NAME_HOST, "host", host)))
            goto fail;
        struct tv *args = tv_map();
        if (!args || tv_set_str(args, "name", name) != 0 || tv_set_str(args, "password", password) != 0 ||
            (host && tv_set_str(args, "host", host) != 0)) {
            tv_free(args);
            api_fault(r, 500, "out of memory");
            goto fail;
        }
        if (create && (dbs = json_object_get(user, "databases")) && !json_is_null(dbs)) {
            json_t *wrap = json_pack("{s:O}", "databases", dbs);
            struct tv *names = wrap && json_array_size(dbs) ? database_list(r, wrap) : NULL;
            json_decref(wrap);
            if (json_array_size(dbs) && !names) {
                tv_free(args);
                goto fail;
            }
            if (names && tv_set(args, "databases", names) != 0) {
                tv_free(args);
                api_fault(r, 500, "out of memory");
                goto fail;
            }
        }
        if (tv_append(list, args) != 0) {
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
    struct tv *list = users_body(r, true);
    if (list && api_load_ready_instance(r, r->arg[0], &in)) {
        api_submit_each(r, in.id, "user.create", list);
        list = NULL;
    }
    tv_free(list);
    registry_instance_clear(&in);
}

static void handle_change_passwords(struct api_request *r)
{
    struct registry_instance in = { 0 };
    struct tv *list = users_body(r, false);
    if (list && api_load_ready_instance(r, r->arg[0], &in)) {
        api_submit_each(r, in.id, "user.password", list);
        list = NULL;
    }
    tv_free(list);
    registry_instance_clear(&in);
}

static void shown(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    const struct tv *u = tv_get(result, "user");
    api_respond(r, 200, json_pack("{s:o}", "user", user_view(u ? u : result)));
}

/* Run a user op on the user of the path; extra (taken, may be NULL) is
 * merged into its args. */
static void user_op(struct api_request *r, const char *op, struct tv *extra, api_reply_fn fn)
{
    struct registry_instance in = { 0 };
    struct user_ref u;
    struct tv *args = NULL;
    if (!parse_user_ref(r, r->arg[1], &u) || !api_load_ready_instance(r, r->arg[0], &in) ||
        !(args = user_args(r, &u)))
        goto out;
    for (size_t i = 0; extra && i < extra->u.m.len; i++) {
        struct tv_pair *p = &extra->u.m.items[i];
        if (tv_set(args, p->key, p->value) != 0) {
            p->value = NULL;
            api_fault(r, 500, "out of memory");
            goto out;
        }
        p->value = NULL;
    }
    api_submit(r, in.id, op, args, fn);
    args = NULL;
out:
    tv_free(extra);
    tv_free(args);
    registry_instance_clear(&in);
}

static void handle_show(struct api_request *r)
{
    user_op(r, "user.show", NULL, shown);
}

static void handle_delete(struct api_request *r)
{
    user_op(r, "user.delete", NULL, api_accepted);
}

/* PUT users/{user} {"user": {name?, password?, host?}}: a new password; a
 * new name or host is not offered. */
static void handle_update(struct api_request *r)
{
    static const char *const keys[] = { "name", "password", "host", NULL };
    const char *name, *password, *host;
    struct user_ref u;
    json_t *user = api_body_object(r, "user");
    if (!user || !api_check_keys(r, user, "user", keys) || !api_get_string(r, user, "user", "name", false, &name) ||
        !api_get_string(r, user, "user", "password", false, &password) ||
        !api_get_string(r, user, "user", "host", false, &host) || !parse_user_ref(r, r->arg[1], &u))
        return;
    if ((name && strcmp(name, u.name) != 0) || (host && strcmp(host, u.host[0] ? u.host : "%") != 0)) {
        api_fault(r, 501, "Renaming a user or changing its host is not supported; create a new user");
        return;
    }
    if (!password) {
        api_fault(r, 400, "No updates specified for user %s", u.name);
        return;
    }
    if (!api_check_name(r, API_NAME_PASSWORD, "password", password))
        return;
    struct tv *extra = tv_map();
    if (!extra || tv_set_str(extra, "password", password) != 0) {
        tv_free(extra);
        api_fault(r, 500, "out of memory");
        return;
    }
    user_op(r, "user.password", extra, api_accepted);
}

/* ------------------------------------------------------------ access */

static void access_shown(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    api_respond(r, 200, json_pack("{s:o}", "databases", database_names(tv_get(result, "databases"))));
}

static void handle_access(struct api_request *r)
{
    user_op(r, "user.access", NULL, access_shown);
}

static void handle_grant(struct api_request *r)
{
    struct tv *names = database_list(r, r->json);
    struct tv *extra = names ? tv_map() : NULL;
    if (!names)
        return;
    if (!extra || tv_set(extra, "databases", names) != 0) {
        tv_free(extra);
        api_fault(r, 500, "out of memory");
        return;
    }
    user_op(r, "user.grant", extra, api_accepted);
}

static void handle_revoke(struct api_request *r)
{
    if (!api_check_name(r, API_NAME_DATABASE, "database name", r->arg[2]))
        return;
    struct tv *extra = tv_map(), *names = tv_array(), *name = tv_str(r->arg[2]);
    if (!extra || !names || !name || tv_append(names, name) != 0 || tv_set(extra, "databases", names) != 0) {
        if (!names)
            tv_free(name);
        else if (!extra)
            tv_free(names);
        tv_free(extra);
        api_fault(r, 500, "out of memory");
        return;
    }
    user_op(r, "user.revoke", extra, api_accepted);
}

/* ------------------------------------------------------------ root */

static void root_enabled(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    const char *name = tv_get_str(result, "name"), *password = tv_get_str(result, "password");
    api_respond(r, 200, json_pack("{s:{s:s,s:s}}", "user", "name", name ? name : "root", "password",
                                  password ? password : ""));
}

static void root_shown(struct api_request *r, int status, const char *message, const struct tv *result)
{
    if (status != TROVE_OK) {
        api_fault_status(r, status, message);
        return;
    }
    api_respond(r, 200, json_pack("{s:b}", "rootEnabled", tv_get_bool(result, "enabled", false)));
}

static void root_disabled(struct api_request *r, int status, const char *message, const struct tv *result)
{
    (void)result;
    if (status != TROVE_OK)
        api_fault_status(r, status, message);
    else
        api_respond(r, 204, NULL);
}

static void handle_root_enable(struct api_request *r)
{
    static const char *const keys[] = { "password", NULL };
    const char *password = NULL;
    struct registry_instance in = { 0 };
    struct tv *args = NULL;
    if (r->json && (!api_check_keys(r, r->json, "the request body", keys) ||
                    !api_get_string(r, r->json, "the request body", "password", false, &password) ||
                    (password && !api_check_name(r, API_NAME_PASSWORD, "password", password))))
        return;
    if (!api_load_ready_instance(r, r->arg[0], &in))
        goto out;
    if (!(args = tv_map()) || (password && tv_set_str(args, "password", password) != 0)) {
        api_fault(r, 500, "out of memory");
        goto out;
    }
    api_submit(r, in.id, "root.enable", args, root_enabled);
    args = NULL;
out:
    tv_free(args);
    registry_instance_clear(&in);
}

static void root_op(struct api_request *r, const char *op, api_reply_fn fn)
{
    struct registry_instance in;
    if (api_load_ready_instance(r, r->arg[0], &in))
        api_submit(r, in.id, op, NULL, fn);
    registry_instance_clear(&in);
}

static void handle_root_show(struct api_request *r)
{
    root_op(r, "root.show", root_shown);
}

static void handle_root_disable(struct api_request *r)
{
    root_op(r, "root.disable", root_disabled);
}

const struct api_route api_user_routes[] = {
    { "GET", "instances/{}/users", handle_list, API_BODY_NONE, false },
    { "POST", "instances/{}/users", handle_create, API_BODY_REQUIRED, false },
    { "PUT", "instances/{}/users", handle_change_passwords, API_BODY_REQUIRED, false },
    { "GET", "instances/{}/users/{}", handle_show, API_BODY_NONE, false },
    { "PUT", "instances/{}/users/{}", handle_update, API_BODY_REQUIRED, false },
    { "DELETE", "instances/{}/users/{}", handle_delete, API_BODY_NONE, false },
    { "GET", "instances/{}/users/{}/databases", handle_access, API_BODY_NONE, false },
    { "PUT", "instances/{}/users/{}/databases", handle_grant, API_BODY_REQUIRED, false },
    { "DELETE", "instances/{}/users/{}/databases/{}", handle_revoke, API_BODY_NONE, false },
    { "GET", "instances/{}/root", handle_root_show, API_BODY_NONE, false },
    { "POST", "instances/{}/root", handle_root_enable, API_BODY_OPTIONAL, false },
    { "DELETE", "instances/{}/root", handle_root_disable, API_BODY_NONE, false },
    { NULL, NULL, NULL, API_BODY_NONE, false },
};
