/*
 * provision_local.h - the pieces of the local provisioner, shared by its
 * files only: provision_local.c (the ops), provision_volume.c (ext4 images
 * and their loop mounts, or plain directories), provision_engine.c (what each
 * plugin needs: settings, pid file, stop signal), provision_proc.h (running
 * tools, detached processes, pid files). Nothing outside control/provision_*
 * includes it.
 */
#ifndef TROVE_PROVISION_LOCAL_H
#define TROVE_PROVISION_LOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "provision.h"
#include "provision_proc.h"

#define LOCAL_PATH PROVISION_PATH_MAX

struct provision_local {
    struct provision base;
    char instances_dir[LOCAL_PATH];
    char agent_binary[LOCAL_PATH];
    char plugin_dir[LOCAL_PATH];
    char pg_os_user[64];
    enum provision_volume_mode volume_mode;
};

/* Every path of one instance, derived from instances_dir and its id. */
struct local_paths {
    char dir[LOCAL_PATH];          /* <instances_dir>/<id>, 0711 */
    char record[LOCAL_PATH];       /* instance.conf: what the provisioner decided (0600) */
    char agent_conf[LOCAL_PATH];   /* agent.conf (0600) */
    char secrets[LOCAL_PATH];      /* secrets.conf (0600) */
    char key_name[LOCAL_PATH];     /* agent -> agent.key (0600), agent.pub */
    char key[LOCAL_PATH];
    char pub[LOCAL_PATH];
    char agent_pid[LOCAL_PATH];    /* agent.pid */
    char agent_log[LOCAL_PATH];    /* agent.log (stdout and stderr of the agent) */
    char agent_state[LOCAL_PATH];  /* agent/ (0700), the agent's state_dir */
    char backups[LOCAL_PATH];      /* backups/ (0700) */
    char image[LOCAL_PATH];        /* volume.img (0600), the ext4 image */
    char vol[LOCAL_PATH];          /* vol/, the mount point: the engine's files */
};

/* False if some path would not fit (the caller reports it). */
bool local_paths_for(const struct provision_local *pl, const char *id, struct local_paths *lp);

/* The provisioner's record of one instance (instance.conf). */
struct local_record {
    char plugin[32];
    char datastore[32];
    char engine_bindir[LOCAL_PATH];
    char engine_binary[LOCAL_PATH];
    char volume_kind[16];
    uint32_t volume_gb;
    uint32_t ram_mb;
    uint16_t port;
};

int local_record_write(const char *path, const char *id, const struct local_record *r, char *err, size_t errlen);
/* TROVE_ENOTFOUND when the file does not exist. */
int local_record_read(const char *path, struct local_record *r, char *err, size_t errlen);

/* ------------------------------------------------------------ engines (provision_engine.c) */

struct engine_kind {
    const char *plugin;                /* "mysql", "postgres", "redis" */
    const char *pid_file;              /* relative to the volume */
    const char *const *process_names;  /* what /proc/<pid>/comm says for the server */
    int stop_signal;                   /* the server's clean, fast shutdown */
    bool drops_root;                   /* the server runs as an unprivileged os_user */
};

/* NULL for a plugin the local provisioner cannot set up. */
const struct engine_kind *engine_kind_find(const char *plugin);

struct engine_setup {
    const struct local_paths *lp;
    const struct local_record *rec;
    const char *pg_os_user;
};

/* Make the engine's directories on a fresh volume (owned by the os_user when
 * the server drops root). */
int engine_prepare_volume(const struct engine_kind *k, const struct engine_setup *s, char *err, size_t errlen);
/* Write the agent's [datastore] settings (not the password) to f. */
int engine_write_settings(const struct engine_kind *k, const struct engine_setup *s, FILE *f, char *err,
                          size_t errlen);
/* The name of the plugin setting that holds the admin password. */
const char *engine_password_key(const struct engine_kind *k);
/* The engine's pid (from its pid file on the volume, checked against
 * /proc/<pid>/comm), or 0. */
pid_t engine_pid(const struct engine_kind *k, const char *vol);
/* Stop a running engine by its pid: the clean signal, then SIGKILL after
 * timeout_ms. TROVE_OK if it does not run (any more). */
int engine_stop(const struct engine_kind *k, const char *vol, int timeout_ms, char *err, size_t errlen);

/* ------------------------------------------------------------ volumes (provision_volume.c) */

/* Make and mount the volume (loop: a sparse image of gb GiB, mkfs.ext4,
 * mount -o loop; directory: mkdir). AUTO falls back to a directory when the
 * loop volume cannot be made; kind_out says which ("loop"/"directory"). */
int volume_create(const struct local_paths *lp, enum provision_volume_mode mode, uint32_t gb, char kind_out[16],
                  char *err, size_t errlen);
/* Mount a loop volume if it is not mounted (after a reboot). */
int volume_mount(const struct local_paths *lp, const char *kind, char *err, size_t errlen);
/* Unmount; lazy detaches even a busy mount. Not mounted is TROVE_OK. */
int volume_unmount(const struct local_paths *lp, bool lazy, char *err, size_t errlen);
/* Offline growth of a loop volume: unmount, grow the image, e2fsck,
 * resize2fs, mount again (also after a failure, when it can). */
int volume_grow(const struct local_paths *lp, uint32_t new_gb, char *err, size_t errlen);
bool volume_is_mounted(const char *mount_point);
void volume_usage(const char *path, uint64_t *total, uint64_t *avail);

/* ------------------------------------------------------------ files (provision_local.c) */

/* key = "value" with \" and \\ escaped; -1 if value holds a line break. */
int ini_put(FILE *f, const char *key, const char *value);
/* Create path (O_EXCL) with mode and the text; fsynced. */
int file_write_new(const char *path, mode_t mode, const char *text, size_t len, char *err, size_t errlen);
/* Remove a tree without crossing into another filesystem. */
int tree_remove(const char *path, char *err, size_t errlen);

#endif
