/*
 * plugin_loader.c - loads a plugin from the plugin directory: checks the
 * name and file permissions, dlopens with RTLD_LOCAL, checks the ABI major,
 * copies the table within the size the plugin declared, and opens it with
 * the host services table. Never loads from anywhere else.
 */
#include "plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

static bool plugin_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A plugin file others could have replaced is refused: it runs as the agent. */
static int check_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "plugin %s: %s", path, strerror(errno));
        return TROVE_ENOTFOUND;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "plugin %s is not a regular file", path);
        return TROVE_EINVAL;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "plugin %s is writable by group or others (mode %03o); refusing to load it",
                 path, (unsigned)(st.st_mode & 0777));
        return TROVE_EINVAL;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "plugin %s is owned by uid %u, not root or the agent's user; refusing to load it",
                 path, (unsigned)st.st_uid);
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

/* The first three fields keep their place in every major (trove_plugin.h). */
struct table_head {
    uint32_t abi_major, abi_minor, size;
};

static int check_major(const struct trove_plugin *vt, const char *path, char *err, size_t errlen)
{
    struct table_head head;
    memcpy(&head, vt, sizeof(head));
    if (head.abi_major != TROVE_ABI_MAJOR) {
        snprintf(err, errlen, "plugin %s was built for plugin ABI major %u, but this agent speaks ABI major %u",
                 path, (unsigned)head.abi_major, (unsigned)TROVE_ABI_MAJOR);
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

/* Copy the table within its declared size: what an older minor lacks stays
 * NULL, what a newer minor added is never read. */
static int copy_table(struct plugin_handle *h, const struct trove_plugin *vt, const char *path, const char *name,
                      char *err, size_t errlen)
{
    struct trove_plugin *t = &h->table;
    size_t need = offsetof(struct trove_plugin, status) + sizeof(vt->status);
    h->declared_size = vt->size;
    if (vt->size < need) {
        snprintf(err, errlen, "plugin %s has an incomplete table (size %u, at least %zu): name, version, open, "
                 "close and status are required", path, (unsigned)vt->size, need);
        return TROVE_EINVAL;
    }
    memset(t, 0, sizeof(*t));
    memcpy(t, vt, vt->size < sizeof(*t) ? vt->size : sizeof(*t));
    t->size = sizeof(*t);
    if (!t->open || !t->close || !t->status || !t->name || !t->version) {
        snprintf(err, errlen, "plugin %s has an incomplete table: name, version, open, close and status are "
                 "required", path);
        return TROVE_EINVAL;
    }
    if (strcmp(t->name, name) != 0) {
        snprintf(err, errlen, "plugin %s calls itself \"%s\", expected \"%s\"", path, t->name, name);
        return TROVE_EINVAL;
    }
    h->vt = t;
    return TROVE_OK;
}

int plugin_load(struct plugin_handle *h, const char *dir, const char *name,
                const struct trove_kv *settings, size_t n_settings, char *err, size_t errlen)
{
    char path[4096];
    int rc;
    h->dl = NULL, h->vt = NULL, h->self = NULL;
    if (!plugin_name_ok(name)) {
        snprintf(err, errlen, "plugin name \"%s\" is invalid: use lowercase letters, digits, '_' and '-'", name);
        return TROVE_EINVAL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.so", dir, name) >= sizeof(path)) {
        snprintf(err, errlen, "plugin directory path is too long");
        return TROVE_EINVAL;
    }
    if ((rc = check_file(path, err, errlen)) != TROVE_OK)
        return rc;
    h->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
        return TROVE_EINVAL;
    }
    trove_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h->dl, TROVE_PLUGIN_ENTRY);
    if (!entry) {
        snprintf(err, errlen, "plugin %s does not export %s", path, TROVE_PLUGIN_ENTRY);
        rc = TROVE_EINVAL;
        goto fail;
    }
    const struct trove_plugin *vt = entry();
    if (!vt) {
        snprintf(err, errlen, "plugin %s returned no operation table", path);
        rc = TROVE_EINVAL;
        goto fail;
    }
    if ((rc = check_major(vt, path, err, errlen)) != TROVE_OK ||
        (rc = copy_table(h, vt, path, name, err, errlen)) != TROVE_OK)
        goto fail;
    struct trove_open_request req = {.size = sizeof(req), .settings = settings, .n_settings = n_settings,
                                     .state_dir = h->state_dir, .instance_id = h->instance_id};
    char perr[512] = "";
    rc = h->vt->open(host_services(), &req, &h->self, perr, sizeof(perr));
    if (rc != TROVE_OK) {
        snprintf(err, errlen, "plugin %s failed to open: %s", name, perr[0] ? perr : "no reason given");
        goto fail;
    }
    return TROVE_OK;
fail:
    dlclose(h->dl);
    h->dl = NULL, h->vt = NULL, h->self = NULL;
    return rc;
}

void plugin_unload(struct plugin_handle *h)
{
    if (h->vt && h->self)
        h->vt->close(h->self);
    if (h->dl)
        dlclose(h->dl);
    h->dl = NULL, h->vt = NULL, h->self = NULL;
}
