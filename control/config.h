/*
 * config.h - the [control] section of trove-control's INI file, with its
 * defaults and checks (plain text only on local endpoints, the client
 * endpoint always local). It reads files; it opens no sockets.
 */
#ifndef TROVE_CONTROL_CONFIG_H
#define TROVE_CONTROL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_DEFAULT_CONFIG "/etc/trove/trove-control.conf"
#define CONTROL_DEFAULT_AGENT_ENDPOINT "tcp://127.0.0.1:5555"
#define CONTROL_DEFAULT_STATE_DIR "/var/lib/trove-control"
#define CONTROL_SOCKET_NAME "control.sock"

struct control_config {
    char *agent_endpoint;
    char *client_endpoint;       /* ipc://<state_dir>/control.sock unless set */
    char *state_dir;
    char *server_key_file;       /* NULL only in plain-text mode */
    char *allowed_agents_file;   /* NULL only in plain-text mode */
    bool plaintext_dev;
    int log_level;               /* enum trove_log_level */
    long request_timeout_ms;
};

/*
 * Load and check the configuration. path NULL means CONTROL_DEFAULT_CONFIG,
 * and then a missing file is not an error (all defaults apply). Returns 0, or
 * -1 with a one-line reason in err.
 */
int control_config_load(const char *path, struct control_config *cfg, char *err, size_t errlen);
void control_config_free(struct control_config *cfg);

#endif
