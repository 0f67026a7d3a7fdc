/*
 * provision.h - where an instance's guest agent and database engine run, and
 * the volume its data lives on. One ops table, so a container backend can be
 * added beside provision_local.c (detached local processes on this host).
 *
 * A backend never touches the registry or a socket: it makes, starts, stops,
 * resizes and removes what runs on a host, and reports it into caller-owned
 * structs. The instances module admits the agent key a backend returns (rpc),
 * and everything that talks to the agent (prepare, config.apply, start, stop,
 * restart) goes through the agent, not through the backend.
 *
 * Every op blocks (mkfs, mount, resize2fs, waiting for processes to exit can
 * take seconds): call it off the daemon's loop thread. Different instances may
 * be handled concurrently from different threads; the caller runs one action
 * at a time per instance (the registry's compare-and-set guarantees it).
 *
 * Errors: ops return TROVE_OK or an enum trove_status code with a one-line
 * reason in err (never a secret): TROVE_EINVAL (bad request, nothing done),
 * TROVE_ENOTFOUND (no such instance here), TROVE_EEXIST, TROVE_ENOTSUP
 * (a plugin or action the backend cannot handle), TROVE_ECONFLICT (the
 * instance's state forbids it: shrink a volume, engine still running),
 * TROVE_EINTERNAL (a tool or system call failed; the message names it).
 */
#ifndef TROVE_PROVISION_H
#define TROVE_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROVISION_ID_MAX 64        /* instance ids: 1-64 of [A-Za-z0-9._-], not starting '.' or '-' */
#define PROVISION_PATH_MAX 512
#define PROVISION_KEY_LEN 40       /* a Z85 CURVE public key */
#define PROVISION_PARAMS_MAX 4
#define PROVISION_VOLUME_GB_MAX 16384

/* What to create. All strings are borrowed for the duration of the call. */
struct provision_request {
    const char *instance_id;        /* required, see PROVISION_ID_MAX */
    const char *datastore;          /* registry name ("mysql", "postgresql", "redis"); informational */
    const char *plugin;             /* required: agent plugin name ("mysql", "postgres", "redis") */
    /* The datastore version's engine: both optional (NULL: the plugin's default).
     * engine_bindir: directory of the engine's tools (PostgreSQL: .../15/bin);
     * engine_binary: the server program (/usr/sbin/mariadbd, /usr/bin/redis-server). */
    const char *engine_bindir;
    const char *engine_binary;
    uint32_t ram_mb;                /* the flavor's memory: sets the engine's memory parameters (>= 64) */
    uint32_t volume_gb;             /* 1..PROVISION_VOLUME_GB_MAX */
    const char *control_endpoint;   /* required: where the agent connects (the control plane's agent endpoint) */
    const char *server_public_key;  /* the control plane's Z85 public key; NULL only with plaintext_dev */
    bool plaintext_dev;             /* development only: agent without CURVE (loopback endpoints only) */
    uint32_t heartbeat_ms;          /* the agent's heartbeat interval; 0 = 2000 */
    bool no_start;                  /* leave the agent stopped (the caller admits its key first, then calls start) */
};

/* Engine configuration parameters (name = value, as the plugin's config
 * schema names them) that the caller hands to the agent: as prepare's
 * `overrides` at create, as `config.apply` followed by `restart` after
 * apply_flavor. */
struct provision_params {
    size_t n;
    struct {
        char name[64];
        char value[32];
    } item[PROVISION_PARAMS_MAX];
};

/* What a backend knows about one instance (filled by create, describe, adopt,
 * resize_volume; caller-owned, no pointers inside). */
struct provision_instance {
    char instance_id[PROVISION_ID_MAX + 1];
    char backend[16];                       /* "local" */
    char plugin[32];
    char datastore[32];
    char volume_kind[16];                   /* "loop" (ext4 image, loop-mounted) or "directory" (no size limit) */
    uint32_t volume_gb;                     /* the size asked for */
    uint64_t volume_total_bytes;            /* the filesystem's size as mounted (statvfs), 0 if not mounted */
    uint64_t volume_free_bytes;
    uint32_t ram_mb;                        /* the flavor memory applied last */
    char host[64];                          /* where the engine listens ("127.0.0.1") */
    uint16_t port;                          /* the engine's TCP port */
    char agent_public_key[PROVISION_KEY_LEN + 1];   /* the key the control plane must admit */
    pid_t agent_pid;                        /* 0 when the agent does not run */
    pid_t engine_pid;                       /* 0 when the engine does not run */
    bool volume_mounted;                    /* always true for "directory" */
    char dir[PROVISION_PATH_MAX];           /* the instance's own directory */
    char volume_path[PROVISION_PATH_MAX];   /* where the engine's data lives (mount point) */
    char volume_image[PROVISION_PATH_MAX];  /* the ext4 image ("" for "directory") */
    char agent_config[PROVISION_PATH_MAX];  /* trove-agent -c this (operators: `trove-agent -c … call status`) */
    char agent_log[PROVISION_PATH_MAX];
    struct provision_params params;         /* the engine memory parameters for ram_mb */
};

struct provision;

struct provision_ops {
    const char *kind;   /* "local" */

    /* Make everything the instance needs and start its agent (unless
     * req->no_start): ports, a fresh agent key pair, agent configuration and
     * 0600 secrets, the volume.
     * The agent connects to req->control_endpoint and waits for `prepare`
     * (out->params are prepare's `overrides`). On failure nothing is left
     * behind. TROVE_EEXIST if the instance already exists here. */
    int (*create)(struct provision *p, const struct provision_request *req, struct provision_instance *out,
                  char *err, size_t errlen);

    /* Start the agent if it does not run (mounting the volume first if
     * needed). The engine itself is started through the agent. */
    int (*start)(struct provision *p, const char *id, struct provision_instance *out, char *err, size_t errlen);

    /* Stop the agent (SIGTERM, wait, SIGKILL). The engine keeps running:
     * stop it through the agent first if it should stop too. */
    int (*stop)(struct provision *p, const char *id, char *err, size_t errlen);

    /* Remove the instance: stop the agent, then the engine (by its pid
     * file, gracefully, escalating to SIGKILL), unmount, delete every file.
     * TROVE_ENOTFOUND if nothing of it exists here. */
    int (*destroy)(struct provision *p, const char *id, char *err, size_t errlen);

    /* As destroy, for an instance in any state (agent gone, half-created,
     * volume busy): SIGKILL by pid files, lazy unmount, delete. Returns
     * TROVE_OK also when nothing was left. */
    int (*force_destroy)(struct provision *p, const char *id, char *err, size_t errlen);

    /* Grow the volume to new_gb (a loop volume offline: unmount, grow the
     * image, e2fsck, resize2fs, mount). Stop the engine through the agent
     * first and start it again after; an engine still running is stopped by
     * its pid. TROVE_ECONFLICT if new_gb is not larger than the volume.
     * The agent keeps running throughout. */
    int (*resize_volume)(struct provision *p, const char *id, uint32_t new_gb, struct provision_instance *out,
                         char *err, size_t errlen);

    /* Record a new flavor memory and fill *params with the engine parameters
     * that realise it; the caller applies them through the agent
     * (config.apply, then restart). */
    int (*apply_flavor)(struct provision *p, const char *id, uint32_t ram_mb, struct provision_params *params,
                        char *err, size_t errlen);

    /* After a control plane restart (or a host reboot): keep a running agent
     * as it is, otherwise mount the volume and start the agent again.
     * Never restarts anything that runs. */
    int (*adopt)(struct provision *p, const char *id, struct provision_instance *out, char *err, size_t errlen);

    /* What runs and where, without changing anything. */
    int (*describe)(struct provision *p, const char *id, struct provision_instance *out, char *err, size_t errlen);

    /* Ids of every instance this backend holds (also half-created ones, so
     * the caller can find what the registry does not know): a malloc'd array
     * of malloc'd strings; free with provision_free_ids. */
    int (*list)(struct provision *p, char ***ids, size_t *n, char *err, size_t errlen);

    void (*close)(struct provision *p);
};

struct provision {
    const struct provision_ops *ops;
};

/* Engine memory parameters for a plugin and a memory size (mysql:
 * innodb_buffer_pool_size, postgres: shared_buffers, redis: maxmemory).
 * TROVE_ENOTSUP for a plugin it does not know. */
int provision_memory_params(const char *plugin, uint32_t ram_mb, struct provision_params *out, char *err,
                            size_t errlen);

void provision_free_ids(char **ids, size_t n);

/* ------------------------------------------------------------ local backend */

enum provision_volume_mode {
    PROVISION_VOLUME_AUTO = 0,   /* loop-mounted ext4; a plain directory where loop devices do not work */
    PROVISION_VOLUME_LOOP,       /* loop-mounted ext4 or fail */
    PROVISION_VOLUME_DIRECTORY,  /* always a plain directory */
};

struct provision_local_config {
    /* Holds one directory per instance. Created 0711 if missing: engines that
     * drop root (PostgreSQL runs as its os_user) must be able to traverse
     * every component of it, so it cannot live inside a 0700 directory. */
    const char *instances_dir;
    const char *agent_binary;    /* trove-agent */
    const char *plugin_dir;      /* the agent's plugin_dir */
    enum provision_volume_mode volume_mode;
    const char *postgres_os_user;   /* NULL: "postgres" */
};

/* Open the local backend. The config is copied. NULL with a reason in err
 * (bad or unusable instances_dir, missing agent binary). The environment
 * variable TROVE_PROVISION_VOLUME=directory|loop|auto overrides volume_mode. */
struct provision *provision_local_open(const struct provision_local_config *cfg, char *err, size_t errlen);

#endif
