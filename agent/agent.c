/*
 * agent.c - reads agent.conf (and the 0600 secrets file), checks every
 * setting, and fills struct agent. It loads nothing and opens no socket.
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "storage.h"

#ifndef TROVE_PLUGIN_DIR
#define TROVE_PLUGIN_DIR "/usr/local/lib/trove/plugins"
#endif

bool agent_name_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

static int load_secrets(struct agent *a, const char *path, char *err, size_t errlen)
{
    struct conf *secrets = conf_load_secret(path, err, errlen);
    if (!secrets)
        return -1;
    int rc = conf_merge_section(a->conf, secrets, "datastore");
    conf_free(secrets);
    if (rc != 0)
        snprintf(err, errlen, "out of memory merging %s", path);
    return rc;
}

/* <state_dir>/plugin: the plugin's own directory (trove_open_request.state_dir). */
static int agent_plugin_state_dir(struct agent *a, char *err, size_t errlen)
{
    struct plugin_handle *h = &a->plugin;
    struct stat st;
    if ((size_t)snprintf(h->state_dir, sizeof(h->state_dir), "%s/plugin", a->state_dir) >= sizeof(h->state_dir)) {
        snprintf(err, errlen, "state_dir %s is too long", a->state_dir);
        return -1;
    }
    if (mkdir(h->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", h->state_dir, strerror(errno));
        return -1;
    }
    if (lstat(h->state_dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077)) {
        snprintf(err, errlen, "%s must be a directory of mode 0700", h->state_dir);
        return -1;
    }
    h->instance_id = a->instance_id;
    return 0;
}

int agent_configure(struct agent *a, const char *path, char *err, size_t errlen)
{
    long hb = 0, level = 1;
    bool plain = false;
    memset(a, 0, sizeof(*a));
    atomic_init(&a->stopping, false);
    if (!(a->conf = conf_load(path, err, errlen)))
        return -1;
    const char *secrets = conf_get(a->conf, "agent", "secrets_file");
    if (secrets && load_secrets(a, secrets, err, errlen) != 0)
        return -1;
    a->instance_id = conf_get(a->conf, "agent", "instance_id");
    if (!a->instance_id || !agent_name_ok(a->instance_id)) {
        snprintf(err, errlen, "%s: [agent] instance_id is %s: use 1-64 letters, digits, '-', '_', '.', "
                 "not starting with '-' or '.'", path,
                 a->instance_id ? "invalid" : "missing");
        return -1;
    }
    if (!conf_get(a->conf, "agent", "plugin")) {
        snprintf(err, errlen, "%s: [agent] plugin is missing (mysql, postgres, redis, ...)", path);
        return -1;
    }
    a->state_dir = conf_get_or(a->conf, "agent", "state_dir", "/var/lib/trove-agent");
    a->control_endpoint = conf_get_or(a->conf, "agent", "control_endpoint", "tcp://127.0.0.1:5555");
    if (conf_get_int(a->conf, "agent", "heartbeat_ms", 5000, 200, 600000, &hb, err, errlen) != 0 ||
        conf_get_bool(a->conf, "agent", "plaintext_dev", false, &plain, err, errlen) != 0 ||
        conf_get_int(a->conf, "backup", "compression_level", 1, -7, 19, &level, err, errlen) != 0)
        return -1;
    a->heartbeat_ms = (uint32_t)hb;
    a->plaintext_dev = plain;
    a->compression_level = (int)level;
    const char *lvl = conf_get(a->conf, "agent", "log_level");
    if (lvl) {
        int l = log_level_from_name(lvl);
        if (l < 0) {
            snprintf(err, errlen, "%s: [agent] log_level \"%s\" is not error, warn, info or debug", path, lvl);
            return -1;
        }
        log_set_level((enum trove_log_level)l);
    }
    if (mkdir(a->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", a->state_dir, strerror(errno));
        return -1;
    }
    if (agent_plugin_state_dir(a, err, errlen) != 0)
        return -1;
    char backups[4096];
    snprintf(backups, sizeof(backups), "%s/backups", a->state_dir);
    const char *location = conf_get_or(a->conf, "backup", "location", backups);
    if (!(a->storage = storage_file_open(location, err, errlen)))
        return -1;
    return 0;
}

const char *agent_plugin_dir(const struct agent *a)
{
    return conf_get_or(a->conf, "agent", "plugin_dir", TROVE_PLUGIN_DIR);
}

void agent_release(struct agent *a)
{
    if (a->storage)
        a->storage->ops->close(a->storage);
    conf_free(a->conf);
    memset(a, 0, sizeof(*a));
}
