/*
 * config.h - the [control] and [provision] sections of trove-control's INI
 * file, with their defaults and checks (plain text only on local
 * endpoints, the client endpoint always local). It reads files; it opens
 * no sockets.
 */
#ifndef TROVE_CONTROL_CONFIG_H
#define TROVE_CONTROL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_DEFAULT_CONFIG "/etc/trove/trove-control.conf"
#define CONTROL_DEFAULT_AGENT_ENDPOINT "tcp://127.0.0.1:5555"
#define CONTROL_DEFAULT_STATE_DIR "/var/lib/trove-control"
#define CONTROL_SOCKET_NAME "control.sock"
#define CONTROL_DEFAULT_API_LISTEN "127.0.0.1:8779"
#define CONTROL_DEFAULT_INSTANCES_DIR "/var/lib/trove-instances"
#define CONTROL_DEFAULT_HEARTBEAT_MISS 3
#define CONTROL_DEFAULT_TASK_DEADLINE_MS (6 * 3600 * 1000L)
#define CONTROL_DEFAULT_AGENT_HEARTBEAT_MS 2000

enum control_volume_mode { CONTROL_VOLUME_AUTO, CONTROL_VOLUME_LOOP, CONTROL_VOLUME_DIRECTORY };

struct control_config {
    char *agent_endpoint;
    char *client_endpoint;       /* ipc://<state_dir>/control.sock unless set */
    char *state_dir;
    char *server_key_file;       /* NULL only in plain-text mode */
    char *allowed_agents_file;   /* NULL: only keys the control plane admits itself (its instances) */
    bool plaintext_dev;
    int log_level;               /* enum trove_log_level */
    long request_timeout_ms;
    char *registry;              /* registry URL; sqlite:<state_dir>/registry.db unless set */
    char *api_listen;            /* "ADDRESS:PORT"; NULL: no REST API (api_listen = off) */
    char *api_token_file;        /* NULL: no tokens (loopback only, with a warning) */
    char *provisioner;           /* "local" or "none" */
    long heartbeat_miss;         /* silent intervals before an agent's instance shows ERROR */
    long task_deadline_ms;       /* a task without an outcome fails after this */
    long agent_heartbeat_ms;     /* the heartbeat interval of the agents this control plane starts */
    /* [provision], for the local provisioner */
    char *instances_dir;
    char *agent_binary;          /* NULL: trove-agent beside trove-control */
    char *plugin_dir;            /* NULL: the plugins beside trove-control (build tree) or installed */
    enum control_volume_mode volume;
    char *postgres_os_user;
};

/*
 * Load and check the configuration. path NULL means CONTROL_DEFAULT_CONFIG,
 * and then a missing file is not an error (all defaults apply). Returns 0, or
 * -1 with a one-line reason in err.
 */
int control_config_load(const char *path, struct control_config *cfg, char *err, size_t errlen);
void control_config_free(struct control_config *cfg);

#endif
