/*
 * config.c - loads [control] and [provision] from trove-control's INI file.
 * Unknown keys are errors, so a misspelt security setting never silently
 * falls back to a default.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "keys.h"
#include "log.h"

#define SECTION "control"
#define PROVISION "provision"
#define REGISTRY_FILE "registry.db"

static const char *const control_keys[] = {
    "agent_endpoint", "client_endpoint", "state_dir", "server_key_file", "allowed_agents_file",
    "plaintext_dev", "log_level", "request_timeout_ms", "registry", "api_listen", "api_token_file",
    "provisioner", "heartbeat_miss", "task_deadline_ms", "agent_heartbeat_ms", NULL,
};

static const char *const provision_keys[] = {
    "instances_dir", "agent_binary", "plugin_dir", "volume", "postgres_os_user", NULL,
};

static int check_section(const struct conf *c, const char *section, const char *const *keys, char *err,
                         size_t errlen)
{
    size_t n = 0;
    const struct trove_kv *kv = conf_section(c, section, &n);
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t k = 0; keys[k]; k++)
            known = known || strcmp(kv[i].key, keys[k]) == 0;
        if (!known) {
            snprintf(err, errlen, "unknown key '%s' in [%s]", kv[i].key, section);
            return -1;
        }
    }
    return 0;
}

static int check_known_keys(const struct conf *c, char *err, size_t errlen)
{
    return check_section(c, SECTION, control_keys, err, errlen) != 0 ||
                   check_section(c, PROVISION, provision_keys, err, errlen) != 0
               ? -1
               : 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int read_values(const struct conf *c, struct control_config *cfg, char *err, size_t errlen)
{
    const char *state_dir = conf_get_or(c, SECTION, "state_dir", CONTROL_DEFAULT_STATE_DIR);
    cfg->state_dir = strdup(state_dir);
    cfg->agent_endpoint = strdup(conf_get_or(c, SECTION, "agent_endpoint", CONTROL_DEFAULT_AGENT_ENDPOINT));
    const char *client = conf_get(c, SECTION, "client_endpoint");
    if (client && *client) {
        cfg->client_endpoint = strdup(client);
    } else if (asprintf(&cfg->client_endpoint, "ipc://%s/" CONTROL_SOCKET_NAME, state_dir) < 0) {
        cfg->client_endpoint = NULL;
    }
    cfg->server_key_file = dup_or_null(conf_get(c, SECTION, "server_key_file"));
    cfg->allowed_agents_file = dup_or_null(conf_get(c, SECTION, "allowed_agents_file"));
    if (!cfg->state_dir || !cfg->agent_endpoint || !cfg->client_endpoint) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (conf_get_bool(c, SECTION, "plaintext_dev", false, &cfg->plaintext_dev, err, errlen) != 0)
        return -1;
    long timeout = 0;
    if (conf_get_int(c, SECTION, "request_timeout_ms", 30000, 1, 86400000L, &timeout, err, errlen) != 0)
        return -1;
    cfg->request_timeout_ms = timeout;
    const char *level = conf_get_or(c, SECTION, "log_level", "info");
    cfg->log_level = log_level_from_name(level);
    if (cfg->log_level < 0) {
        snprintf(err, errlen, "log_level '%s' is not one of error, warn, info, debug", level);
        return -1;
    }
    return 0;
}

/* The registry, the REST API and the provisioner. */
static int read_service(const struct conf *c, struct control_config *cfg, char *err, size_t errlen)
{
    const char *registry = conf_get(c, SECTION, "registry");
    if (registry && *registry)
        cfg->registry = strdup(registry);
    else if (asprintf(&cfg->registry, "sqlite:%s/" REGISTRY_FILE, cfg->state_dir) < 0)
        cfg->registry = NULL;
    const char *listen = conf_get_or(c, SECTION, "api_listen", CONTROL_DEFAULT_API_LISTEN);
    cfg->api_listen = strcmp(listen, "off") == 0 ? NULL : dup_or_null(listen);
    cfg->api_token_file = dup_or_null(conf_get(c, SECTION, "api_token_file"));
    cfg->provisioner = strdup(conf_get_or(c, SECTION, "provisioner", "local"));
    cfg->instances_dir = strdup(conf_get_or(c, PROVISION, "instances_dir", CONTROL_DEFAULT_INSTANCES_DIR));
    cfg->agent_binary = dup_or_null(conf_get(c, PROVISION, "agent_binary"));
    cfg->plugin_dir = dup_or_null(conf_get(c, PROVISION, "plugin_dir"));
    cfg->postgres_os_user = strdup(conf_get_or(c, PROVISION, "postgres_os_user", "postgres"));
    if (!cfg->registry || (!cfg->api_listen && strcmp(listen, "off") != 0) || !cfg->provisioner ||
        !cfg->instances_dir || !cfg->postgres_os_user) {
        snprintf(err, errlen, *listen ? "out of memory" : "api_listen is empty (use off to run without the API)");
        return -1;
    }
    if (strcmp(cfg->provisioner, "local") != 0 && strcmp(cfg->provisioner, "none") != 0) {
        snprintf(err, errlen, "provisioner '%s' is not one of local, none", cfg->provisioner);
        return -1;
    }
    const char *volume = conf_get_or(c, PROVISION, "volume", "auto");
    if (strcmp(volume, "auto") == 0)
        cfg->volume = CONTROL_VOLUME_AUTO;
    else if (strcmp(volume, "loop") == 0)
        cfg->volume = CONTROL_VOLUME_LOOP;
    else if (strcmp(volume, "directory") == 0)
        cfg->volume = CONTROL_VOLUME_DIRECTORY;
    else {
        snprintf(err, errlen, "[provision] volume '%s' is not one of auto, loop, directory", volume);
        return -1;
    }
    if (conf_get_int(c, SECTION, "heartbeat_miss", CONTROL_DEFAULT_HEARTBEAT_MISS, 1, 1000, &cfg->heartbeat_miss,
                     err, errlen) != 0 ||
        conf_get_int(c, SECTION, "task_deadline_ms", CONTROL_DEFAULT_TASK_DEADLINE_MS, 1000, 30L * 86400000L,
                     &cfg->task_deadline_ms, err, errlen) != 0 ||
        conf_get_int(c, SECTION, "agent_heartbeat_ms", CONTROL_DEFAULT_AGENT_HEARTBEAT_MS, 100, 3600000,
                     &cfg->agent_heartbeat_ms, err, errlen) != 0)
        return -1;
    return 0;
}

static int check_security(const struct control_config *cfg, char *err, size_t errlen)
{
    if (!keys_endpoint_is_local(cfg->client_endpoint)) {
        snprintf(err, errlen,
                 "client_endpoint %s is not local: the client endpoint has no authentication, "
                 "so it must be ipc://, inproc:// or tcp:// on a loopback address",
                 cfg->client_endpoint);
        return -1;
    }
    if (cfg->plaintext_dev) {
        if (!keys_endpoint_is_local(cfg->agent_endpoint)) {
            snprintf(err, errlen,
                     "plaintext_dev is only allowed with a loopback, ipc:// or inproc:// agent_endpoint, not %s",
                     cfg->agent_endpoint);
            return -1;
        }
        return 0;
    }
    if (!cfg->server_key_file) {
        snprintf(err, errlen,
                 "server_key_file is required (or plaintext_dev = true for loopback development)");
        return -1;
    }
    return 0;
}

int control_config_load(const char *path, struct control_config *cfg, char *err, size_t errlen)
{
    struct conf *c = NULL;
    int rc = -1;

    memset(cfg, 0, sizeof *cfg);
    if (!path && access(CONTROL_DEFAULT_CONFIG, F_OK) != 0 && errno == ENOENT) {
        c = conf_new();
        if (!c)
            snprintf(err, errlen, "out of memory");
    } else {
        c = conf_load(path ? path : CONTROL_DEFAULT_CONFIG, err, errlen);
    }
    if (!c)
        goto out;
    if (check_known_keys(c, err, errlen) != 0 || read_values(c, cfg, err, errlen) != 0 ||
        read_service(c, cfg, err, errlen) != 0 || check_security(cfg, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (c)
        conf_free(c);
    if (rc != 0)
        control_config_free(cfg);
    return rc;
}

void control_config_free(struct control_config *cfg)
{
    free(cfg->agent_endpoint);
    free(cfg->client_endpoint);
    free(cfg->state_dir);
    free(cfg->server_key_file);
    free(cfg->allowed_agents_file);
    free(cfg->registry);
    free(cfg->api_listen);
    free(cfg->api_token_file);
    free(cfg->provisioner);
    free(cfg->instances_dir);
    free(cfg->agent_binary);
    free(cfg->plugin_dir);
    free(cfg->postgres_os_user);
    memset(cfg, 0, sizeof *cfg);
}
