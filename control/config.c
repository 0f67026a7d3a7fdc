/*
 * config.c - loads [control] from trove-control's INI file. Unknown keys are
 * errors, so a misspelt security setting never silently falls back to a
 * default.
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

static const char *const known_keys[] = {
    "agent_endpoint", "client_endpoint", "state_dir", "server_key_file", "allowed_agents_file",
    "plaintext_dev", "log_level", "request_timeout_ms",
};

static int check_known_keys(const struct conf *c, char *err, size_t errlen)
{
    size_t n = 0;
    const struct trove_kv *kv = conf_section(c, SECTION, &n);
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known = known || strcmp(kv[i].key, known_keys[k]) == 0;
        if (!known) {
            snprintf(err, errlen, "unknown key '%s' in [" SECTION "]", kv[i].key);
            return -1;
        }
    }
    return 0;
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
    if (!cfg->server_key_file || !cfg->allowed_agents_file) {
        snprintf(err, errlen,
                 "server_key_file and allowed_agents_file are required (or plaintext_dev = true for "
                 "loopback development)");
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
        check_security(cfg, err, errlen) != 0)
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
    memset(cfg, 0, sizeof *cfg);
}
