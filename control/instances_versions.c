/*
 * instances_versions.c - datastore versions discovered from this host: the
 * engines installed (their own --version, or PostgreSQL's directory per
 * major version) paired with the plugins present in the plugin directory.
 * Adds missing datastores and versions to the registry; never changes or
 * re-enables an existing row.
 */
#include "instances.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "provision_proc.h"
#include "registry.h"
#include "status.h"
#include "value.h"
#include "json.h"

#define PG_ROOT "/usr/lib/postgresql"

struct found {
    const char *datastore;     /* "mysql", "postgresql", "redis" */
    const char *plugin;
    char version[32];          /* major.minor, or PostgreSQL's major */
    char bindir[256];          /* engine JSON: one of bindir, binary */
    char binary[256];
};

static bool plugin_present(const char *plugin_dir, const char *plugin)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.so", plugin_dir, plugin);
    if (access(path, R_OK) == 0)
        return true;
    snprintf(path, sizeof path, "%s/%s/%s.so", plugin_dir, plugin, plugin);
    return access(path, R_OK) == 0;
}

/* The first "N.N" after marker in text, into out. */
static bool major_minor(const char *text, const char *marker, char *out, size_t cap)
{
    const char *p = strstr(text, marker);
    if (!p)
        return false;
    p += strlen(marker);
    while (*p && !isdigit((unsigned char)*p))
        p++;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || p[n] != '.' || !isdigit((unsigned char)p[n + 1]))
        return false;
    size_t m = strspn(p + n + 1, "0123456789");
    if (n + 1 + m >= cap)
        return false;
    memcpy(out, p, n + 1 + m);
    out[n + 1 + m] = '\0';
    return true;
}

static const char *first_executable(const char *const paths[])
{
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Run "binary --version" and find its version after marker. */
static bool tool_version(const char *binary, const char *marker, char *out, size_t cap)
{
    const char *argv[] = {binary, "--version", NULL};
    char text[600];
    return proc_run(argv, text, sizeof text) == 0 && major_minor(text, marker, out, cap);
}

static size_t find_engines(const char *plugin_dir, struct found *out, size_t cap)
{
    static const char *const mariadbd[] = {"/usr/sbin/mariadbd", "/usr/bin/mariadbd", "/usr/local/sbin/mariadbd",
                                           NULL};
    static const char *const redis[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server", NULL};
    size_t n = 0;
    const char *bin;
    if (plugin_present(plugin_dir, "mysql") && (bin = first_executable(mariadbd)) && n < cap &&
        tool_version(bin, "Ver ", out[n].version, sizeof out[n].version)) {
        out[n].datastore = "mysql", out[n].plugin = "mysql";
        snprintf(out[n++].binary, sizeof out[0].binary, "%s", bin);
    }
    if (plugin_present(plugin_dir, "redis") && (bin = first_executable(redis)) && n < cap &&
        tool_version(bin, "v=", out[n].version, sizeof out[n].version)) {
        out[n].datastore = "redis", out[n].plugin = "redis";
        snprintf(out[n++].binary, sizeof out[0].binary, "%s", bin);
    }
    DIR *d = plugin_present(plugin_dir, "postgres") ? opendir(PG_ROOT) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap) {
        char postgres[512];
        if (strspn(e->d_name, "0123456789") != strlen(e->d_name) || !e->d_name[0] || strlen(e->d_name) > 8)
            continue;
        snprintf(postgres, sizeof postgres, "%s/%s/bin/postgres", PG_ROOT, e->d_name);
        if (access(postgres, X_OK) != 0)
            continue;
        out[n].datastore = "postgresql", out[n].plugin = "postgres";
        snprintf(out[n].version, sizeof out[n].version, "%s", e->d_name);
        snprintf(out[n++].bindir, sizeof out[0].bindir, "%s/%s/bin", PG_ROOT, e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

static int ensure_datastore(struct registry *r, const char *name, struct registry_datastore *ds, char *err,
                            size_t errlen)
{
    int rc = registry_datastore_get(r, name, ds, err, errlen);
    if (rc != TROVE_ENOTFOUND)
        return rc;
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    return registry_datastore_create(r, ds, err, errlen);
}

static char *engine_json(const struct found *f)
{
    struct tv *engine = tv_map();
    char *json = NULL;
    if (engine && (f->bindir[0] ? tv_set_str(engine, "bindir", f->bindir) : tv_set_str(engine, "binary", f->binary)) ==
                      0)
        json = tv_to_json(engine, false);
    tv_free(engine);
    return json;
}

/* The version of one engine, made when missing; the datastore's default when it has none. */
static int ensure_version(struct registry *r, const struct found *f, int *added, char *err, size_t errlen)
{
    struct registry_datastore ds = {0};
    struct registry_datastore_version v = {0};
    int rc = ensure_datastore(r, f->datastore, &ds, err, errlen);
    if (rc == TROVE_OK)
        rc = registry_datastore_version_find(r, f->datastore, f->version, &v, err, errlen);
    if (rc == TROVE_ENOTFOUND) {
        char *json = engine_json(f);
        struct registry_datastore_version nv = {0};
        snprintf(nv.datastore, sizeof nv.datastore, "%s", f->datastore);
        nv.name = (char *)f->version;
        nv.plugin = (char *)f->plugin;
        nv.engine = json;
        nv.active = true;
        rc = json ? registry_datastore_version_create(r, &nv, err, errlen) : TROVE_EINTERNAL;
        free(json);
        if (rc == TROVE_OK) {
            (*added)++;
            log_info("datastore %s: version %s found (plugin %s)", f->datastore, f->version, f->plugin);
            if (!ds.default_version_id[0]) {
                snprintf(ds.default_version_id, sizeof ds.default_version_id, "%s", nv.id);
                rc = registry_datastore_update(r, &ds, err, errlen);
            }
        }
    }
    registry_datastore_clear(&ds);
    registry_datastore_version_clear(&v);
    return rc;
}

int instances_discover_versions(struct registry *registry, const char *plugin_dir, int *added, char *err,
                                size_t errlen)
{
    struct found found[16];
    int count = 0, rc = TROVE_OK;
    memset(found, 0, sizeof found);
    size_t n = find_engines(plugin_dir, found, sizeof found / sizeof found[0]);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++)
        rc = ensure_version(registry, &found[i], &count, err, errlen);
    if (added)
        *added = count;
    return rc;
}
