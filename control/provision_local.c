/*
 * provision_local.c - the local provisioner: each instance is a directory
 * under instances_dir holding its agent's configuration, 0600 secrets and key
 * pair, a volume (provision_volume.c) with the engine's files, and a trove-agent
 * started detached so it outlives trove-control. It never touches the
 * registry or a socket; the engine is installed and run by the agent's plugin.
 */
#include "provision_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "keys.h"
#include "log.h"
#include "status.h"

#define AGENT_STOP_MS 15000
#define ENGINE_STOP_MS 60000
#define AGENT_READY_MS 10000
#define PASSWORD_LEN 32

static struct provision_local *local_of(struct provision *p)
{
    return (struct provision_local *)p;
}

/* ------------------------------------------------------------ checks */

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > PROVISION_ID_MAX || id[0] == '.' || id[0] == '-')
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* Paths end up in option files and tool command lines of every engine:
 * the PostgreSQL plugin's rule is the strictest, so it applies here. */
static bool path_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    return n > 1 && n < 200 && p[0] == '/' && !strstr(p, "/../") &&
           strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-,@=:~") == n;
}

static bool text_ok(const char *s)
{
    return s && *s && !strpbrk(s, "\r\n");
}

/* dst = a "/" b; false (and dst empty) when it does not fit. */
static bool path_join(char *dst, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    dst[0] = '\0';
    if (la + 1 + lb + 1 > cap)
        return false;
    memcpy(dst, a, la);
    dst[la] = '/';
    memcpy(dst + la + 1, b, lb + 1);
    return true;
}

/* Copy as much of src as fits. */
static void str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bool local_paths_for(const struct provision_local *pl, const char *id, struct local_paths *lp)
{
    bool ok = path_join(lp->dir, sizeof lp->dir, pl->instances_dir, id);
#define SUB(field, name) ok = ok && path_join(lp->field, sizeof lp->field, lp->dir, name)
    SUB(record, "instance.conf");
    SUB(agent_conf, "agent.conf");
    SUB(secrets, "secrets.conf");
    SUB(key_name, "agent");
    SUB(key, "agent.key");
    SUB(pub, "agent.pub");
    SUB(agent_pid, "agent.pid");
    SUB(agent_log, "agent.log");
    SUB(agent_state, "agent-state");
    SUB(backups, "backups");
    SUB(image, "volume.img");
    SUB(vol, "vol");
#undef SUB
    return ok;
}

static int check_request(const struct provision_request *req, char *err, size_t errlen)
{
    if (!id_ok(req->instance_id))
        err_set(err, errlen, "instance id must be 1-%d of letters, digits, '-', '_', '.', not starting with '-' or '.'",
                PROVISION_ID_MAX);
    else if (!engine_kind_find(req->plugin))
        err_set(err, errlen, "the local provisioner cannot set up plugin \"%s\" (mysql, postgres, redis)",
                req->plugin ? req->plugin : "");
    else if (req->volume_gb < 1 || req->volume_gb > PROVISION_VOLUME_GB_MAX)
        err_set(err, errlen, "volume size must be 1-%d GB, not %u", PROVISION_VOLUME_GB_MAX, req->volume_gb);
    else if (req->ram_mb < 64 || req->ram_mb > 16 * 1024 * 1024)
        err_set(err, errlen, "flavor memory must be 64 MB - 16 TB, not %u MB", req->ram_mb);
    else if (!text_ok(req->control_endpoint) || strlen(req->control_endpoint) > 255)
        err_set(err, errlen, "the control plane's agent endpoint is missing or malformed");
    else if (req->plaintext_dev && !keys_endpoint_is_local(req->control_endpoint))
        err_set(err, errlen, "plain text is refused for %s: only loopback and ipc endpoints", req->control_endpoint);
    else if (!req->plaintext_dev && !keys_is_z85(req->server_public_key))
        err_set(err, errlen, "the control plane's public key is missing or not 40 characters of Z85");
    else if ((req->engine_bindir && *req->engine_bindir && !path_ok(req->engine_bindir)) ||
             (req->engine_binary && *req->engine_binary && !path_ok(req->engine_binary)))
        err_set(err, errlen, "engine paths must be absolute and made of letters, digits and /._+-,@=:~");
    else if (req->engine_binary && *req->engine_binary && access(req->engine_binary, X_OK) != 0)
        err_set(err, errlen, "engine binary %s: %s", req->engine_binary, strerror(errno));
    else if (req->engine_bindir && *req->engine_bindir && access(req->engine_bindir, X_OK) != 0)
        err_set(err, errlen, "engine directory %s: %s", req->engine_bindir, strerror(errno));
    else if (req->heartbeat_ms && (req->heartbeat_ms < 200 || req->heartbeat_ms > 600000))
        err_set(err, errlen, "heartbeat interval must be 200-600000 ms");
    else
        return TROVE_OK;
    return TROVE_EINVAL;
}

/* An engine that drops root must traverse every directory above its files. */
static int check_traversable(const char *path, const char *user, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096], dir[LOCAL_PATH];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) != 0 || !res) {
        err_set(err, errlen, "system user \"%s\" (the PostgreSQL server's os_user) does not exist", user);
        return TROVE_EINVAL;
    }
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash = dir + strlen(dir); slash > dir; slash = strrchr(dir, '/')) {
        *slash = '\0';
        const char *d = dir[0] ? dir : "/";
        struct stat st;
        if (stat(d, &st) != 0)
            continue;
        bool x = st.st_uid == pw.pw_uid ? (st.st_mode & S_IXUSR)
                 : st.st_gid == pw.pw_gid ? (st.st_mode & S_IXGRP) : (st.st_mode & S_IXOTH);
        if (!x) {
            err_set(err, errlen, "the server runs as %s, which cannot enter %s (mode %04o): put instances_dir "
                    "where every directory above it may be traversed by others", user, d,
                    (unsigned)(st.st_mode & 07777));
            return TROVE_EINVAL;
        }
    }
    return TROVE_OK;
}

/* ------------------------------------------------------------ files */

int ini_put(FILE *f, const char *key, const char *value)
{
    if (strpbrk(value, "\r\n"))
        return -1;
    fprintf(f, "%s = \"", key);
    for (const char *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', f);
        fputc(*c, f);
    }
    fputs("\"\n", f);
    return 0;
}

int file_write_new(const char *path, mode_t mode, const char *text, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        err_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return TROVE_EINTERNAL;
    }
    size_t done = 0;
    int rc = fchmod(fd, mode) == 0 ? TROVE_OK : TROVE_EINTERNAL;
    while (rc == TROVE_OK && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = TROVE_EINTERNAL;
        else
            done += (size_t)w;
    }
    if (rc == TROVE_OK && fsync(fd) != 0)
        rc = TROVE_EINTERNAL;
    if (rc != TROVE_OK)
        err_set(err, errlen, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    if (rc != TROVE_OK)
        unlink(path);
    return rc;
}

/* Replace path atomically with text (a temporary file, then rename). */
static int file_replace(const char *path, mode_t mode, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[LOCAL_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int rc = file_write_new(tmp, mode, text, len, err, errlen);
    if (rc == TROVE_OK && rename(tmp, path) != 0) {
        err_set(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        rc = TROVE_EINTERNAL;
    }
    return rc;
}

/* Close a memstream and write what it holds; wipes the text (it may hold
 * a secret). */
static int memstream_commit(FILE *f, char **text, size_t *len, const char *path, mode_t mode, int rc, char *err,
                            size_t errlen)
{
    if (fclose(f) != 0 && rc == TROVE_OK) {
        err_set(err, errlen, "out of memory");
        rc = TROVE_EINTERNAL;
    }
    if (rc == TROVE_OK)
        rc = file_replace(path, mode, *text, *len, err, errlen);
    if (*text)
        explicit_bzero(*text, *len);
    free(*text);
    *text = NULL;
    return rc;
}

static int tree_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = type == FTW_DP ? rmdir(path) : unlink(path);
    return r != 0 && errno != ENOENT ? -1 : 0;
}

int tree_remove(const char *path, char *err, size_t errlen)
{
    if (access(path, F_OK) != 0)
        return TROVE_OK;
    /* FTW_MOUNT: a volume still mounted stops the removal instead of
     * being emptied through its mount point. */
    if (nftw(path, tree_remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 || access(path, F_OK) == 0) {
        err_set(err, errlen, "cannot remove %s: %s", path, strerror(errno ? errno : EBUSY));
        return TROVE_EINTERNAL;
    }
    return TROVE_OK;
}

/* ------------------------------------------------------------ the record */

int local_record_write(const char *path, const char *id, const struct local_record *r, char *err, size_t errlen)
{
    char *text = NULL, num[3][16];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    snprintf(num[0], sizeof num[0], "%u", r->volume_gb);
    snprintf(num[1], sizeof num[1], "%u", r->ram_mb);
    snprintf(num[2], sizeof num[2], "%u", r->port);
    fprintf(f, "# What the local provisioner made for this instance; read by trove-control.\n[instance]\n");
    int rc = ini_put(f, "id", id) | ini_put(f, "plugin", r->plugin) | ini_put(f, "datastore", r->datastore) |
             ini_put(f, "engine_bindir", r->engine_bindir) | ini_put(f, "engine_binary", r->engine_binary) |
             ini_put(f, "volume_kind", r->volume_kind) | ini_put(f, "volume_gb", num[0]) |
             ini_put(f, "ram_mb", num[1]) | ini_put(f, "port", num[2]);
    if (rc != 0)
        err_set(err, errlen, "a value of the instance record holds a line break");
    return memstream_commit(f, &text, &len, path, 0600, rc ? TROVE_EINVAL : TROVE_OK, err, errlen);
}

static void copy_field(char *dst, size_t cap, const struct conf *c, const char *key)
{
    snprintf(dst, cap, "%s", conf_get_or(c, "instance", key, ""));
}

int local_record_read(const char *path, struct local_record *r, char *err, size_t errlen)
{
    long gb = 0, ram = 0, port = 0;
    memset(r, 0, sizeof *r);
    if (access(path, F_OK) != 0) {
        err_set(err, errlen, "%s does not exist: the instance was not completely created (force delete it)", path);
        return TROVE_ENOTFOUND;
    }
    struct conf *c = conf_load_secret(path, err, errlen);
    if (!c)
        return TROVE_EINTERNAL;
    int rc = TROVE_OK;
    if (conf_get_int(c, "instance", "volume_gb", 0, 0, PROVISION_VOLUME_GB_MAX, &gb, err, errlen) != 0 ||
        conf_get_int(c, "instance", "ram_mb", 0, 0, 16 * 1024 * 1024, &ram, err, errlen) != 0 ||
        conf_get_int(c, "instance", "port", 0, 0, 65535, &port, err, errlen) != 0)
        rc = TROVE_EINTERNAL;
    copy_field(r->plugin, sizeof r->plugin, c, "plugin");
    copy_field(r->datastore, sizeof r->datastore, c, "datastore");
    copy_field(r->engine_bindir, sizeof r->engine_bindir, c, "engine_bindir");
    copy_field(r->engine_binary, sizeof r->engine_binary, c, "engine_binary");
    copy_field(r->volume_kind, sizeof r->volume_kind, c, "volume_kind");
    r->volume_gb = (uint32_t)gb;
    r->ram_mb = (uint32_t)ram;
    r->port = (uint16_t)port;
    conf_free(c);
    return rc;
}

/* ------------------------------------------------------------ ports */

/* Ports recorded by every instance here (running or not). */
static void ports_in_use(const struct provision_local *pl, uint16_t *used, size_t cap, size_t *n)
{
    DIR *d = opendir(pl->instances_dir);
    struct dirent *e;
    *n = 0;
    while (d && (e = readdir(d)) && *n < cap) {
        struct local_paths lp;
        struct local_record r;
        char ignored[200];
        if (!id_ok(e->d_name) || !local_paths_for(pl, e->d_name, &lp))
            continue;
        if (local_record_read(lp.record, &r, ignored, sizeof ignored) == TROVE_OK && r.port)
            used[(*n)++] = r.port;
    }
    if (d)
        closedir(d);
}

/* A loopback port nothing listens on now and no other instance here owns. */
static int pick_port(const struct provision_local *pl, uint16_t *port, char *err, size_t errlen)
{
    uint16_t used[4096];
    size_t n;
    ports_in_use(pl, used, sizeof used / sizeof used[0], &n);
    for (int attempt = 0; attempt < 64; attempt++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
            err_set(err, errlen, "cannot find a free loopback port: %s", strerror(errno));
            if (s >= 0)
                close(s);
            return TROVE_EINTERNAL;
        }
        close(s);
        uint16_t candidate = ntohs(a.sin_port);
        bool taken = false;
        for (size_t i = 0; i < n && !taken; i++)
            taken = used[i] == candidate;
        if (!taken) {
            *port = candidate;
            return TROVE_OK;
        }
    }
    err_set(err, errlen, "cannot find a loopback port that no instance owns");
    return TROVE_EINTERNAL;
}

/* Serialises port choices between concurrent creates (and processes). */
static int lock_instances_dir(const struct provision_local *pl, char *err, size_t errlen)
{
    char path[LOCAL_PATH + 16];
    snprintf(path, sizeof path, "%s/.lock", pl->instances_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        err_set(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ secrets, keys, agent configuration */

static int random_password(char *out, size_t len, char *err, size_t errlen)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char byte;
    for (size_t i = 0; i < len;) {
        if (getrandom(&byte, 1, 0) != 1) {
            if (errno == EINTR)
                continue;
            err_set(err, errlen, "getrandom: %s", strerror(errno));
            return TROVE_EINTERNAL;
        }
        if (byte < 248)   /* 248 = 4 * 62: no bias */
            out[i++] = alphabet[byte % 62];
    }
    out[len] = '\0';
    return TROVE_OK;
}

static int write_secrets(const struct local_paths *lp, const struct engine_kind *k, char *err, size_t errlen)
{
    char password[PASSWORD_LEN + 1], *text = NULL;
    size_t len = 0;
    int rc = random_password(password, PASSWORD_LEN, err, errlen);
    FILE *f = rc == TROVE_OK ? open_memstream(&text, &len) : NULL;
    if (rc == TROVE_OK && !f) {
        err_set(err, errlen, "out of memory");
        rc = TROVE_EINTERNAL;
    }
    if (f) {
        fprintf(f, "# The engine's admin password, generated at create. Keep secret.\n[datastore]\n");
        ini_put(f, engine_password_key(k), password);
        rc = memstream_commit(f, &text, &len, lp->secrets, 0600, TROVE_OK, err, errlen);
    }
    explicit_bzero(password, sizeof password);
    return rc;
}

static int write_keys(const struct local_paths *lp, char public_out[PROVISION_KEY_LEN + 1], char *err,
                      size_t errlen)
{
    struct keys_pair kp;
    int rc = TROVE_OK;
    if (keys_generate(&kp, err, errlen) != 0 || keys_write(lp->key_name, &kp, err, errlen) != 0)
        rc = TROVE_EINTERNAL;
    else
        snprintf(public_out, PROVISION_KEY_LEN + 1, "%s", kp.public_z85);
    keys_wipe(&kp);
    return rc;
}

/* <plugin_dir>/<plugin>.so as installed; a build tree keeps each plugin in
 * its own directory, <plugin_dir>/<plugin>/<plugin>.so. */
static void agent_plugin_dir(const struct provision_local *pl, const char *plugin, char *out, size_t cap)
{
    char so[LOCAL_PATH + 80];
    snprintf(so, sizeof so, "%s/%s.so", pl->plugin_dir, plugin);
    if (access(so, F_OK) == 0) {
        snprintf(out, cap, "%s", pl->plugin_dir);
        return;
    }
    snprintf(so, sizeof so, "%s/%s/%s.so", pl->plugin_dir, plugin, plugin);
    if (access(so, F_OK) != 0 || !path_join(out, cap, pl->plugin_dir, plugin))
        str_copy(out, cap, pl->plugin_dir);   /* the agent says what is missing */
}

static int write_agent_conf(const struct provision_local *pl, const struct provision_request *req,
                            const struct local_paths *lp, const struct engine_kind *k,
                            const struct local_record *rec, const char *id, char *err, size_t errlen)
{
    char *text = NULL, hb[16];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        err_set(err, errlen, "out of memory");
        return TROVE_EINTERNAL;
    }
    snprintf(hb, sizeof hb, "%u", req->heartbeat_ms ? req->heartbeat_ms : 2000);
    fprintf(f, "# Written by trove-control's local provisioner for instance %s.\n[agent]\n", id);
    char plugin_dir[LOCAL_PATH];
    agent_plugin_dir(pl, k->plugin, plugin_dir, sizeof plugin_dir);
    int bad = ini_put(f, "instance_id", id) | ini_put(f, "plugin", k->plugin) |
              ini_put(f, "plugin_dir", plugin_dir) | ini_put(f, "control_endpoint", req->control_endpoint) |
              ini_put(f, "state_dir", lp->agent_state) | ini_put(f, "secrets_file", lp->secrets) |
              ini_put(f, "heartbeat_ms", hb);
    if (req->plaintext_dev)
        bad |= ini_put(f, "plaintext_dev", "true");
    else
        bad |= (fprintf(f, "\n[curve]\n") < 0) | ini_put(f, "server_public_key", req->server_public_key) |
               ini_put(f, "agent_key_file", lp->key);
    bad |= (fprintf(f, "\n[backup]\n") < 0) | ini_put(f, "location", lp->backups);
    fprintf(f, "\n[datastore]\n");
    struct engine_setup setup = {.lp = lp, .rec = rec, .pg_os_user = pl->pg_os_user};
    int rc = bad ? TROVE_EINVAL : engine_write_settings(k, &setup, f, err, errlen);
    if (bad)
        err_set(err, errlen, "a value of the agent configuration holds a line break");
    return memstream_commit(f, &text, &len, lp->agent_conf, 0600, rc, err, errlen);
}

/* ------------------------------------------------------------ the agent process */

/* The agent's pid when the pid file names a live trove-agent run with this
 * instance's configuration, else 0. */
static pid_t agent_pid(const struct local_paths *lp)
{
    pid_t pid = proc_read_pid_file(lp->agent_pid);
    return pid && proc_alive(pid) && proc_cmdline_has(pid, lp->agent_conf) ? pid : 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* True once the agent logged, after offset, that it serves (the plugin
 * loaded and the socket is set up). */
static bool agent_log_says_serving(const char *log, off_t offset)
{
    char buf[8192];
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, buf, sizeof buf - 1, offset);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, " serving with plugin ") != NULL;
}

/* The last line the agent logged, for an error message. */
static void agent_log_tail(const char *log, char *out, size_t outlen)
{
    char buf[1024];
    out[0] = '\0';
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *last = strrchr(buf, '\n');
    str_copy(out, outlen, last ? last + 1 : buf);
}

static int agent_start(const struct provision_local *pl, const struct local_paths *lp, pid_t *pid_out, char *err,
                       size_t errlen)
{
    const char *argv[] = {pl->agent_binary, "-c", lp->agent_conf, NULL};
    off_t offset = file_size(lp->agent_log);
    pid_t pid = 0;
    int rc = proc_spawn_detached(argv, lp->dir, lp->agent_log, &pid, err, errlen);
    if (rc == TROVE_OK)
        rc = proc_write_pid_file(lp->agent_pid, pid, err, errlen);
    for (int waited = 0; rc == TROVE_OK && !agent_log_says_serving(lp->agent_log, offset); waited += 10) {
        if (!proc_alive(pid) || waited >= AGENT_READY_MS) {
            char tail[400];
            agent_log_tail(lp->agent_log, tail, sizeof tail);
            err_set(err, errlen, "trove-agent %s: %s", proc_alive(pid) ? "did not start serving in time" : "exited",
                    tail[0] ? tail : "(no log)");
            proc_terminate(pid, SIGKILL, 1000);
            rc = TROVE_EINTERNAL;
            break;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == TROVE_OK)
        *pid_out = pid;
    return rc;
}

static int agent_stop(const struct local_paths *lp, int sig, int timeout_ms, char *err, size_t errlen)
{
    pid_t pid = agent_pid(lp);
    if (pid && proc_terminate(pid, sig, timeout_ms) != 0) {
        err_set(err, errlen, "trove-agent (pid %ld) survived SIGKILL", (long)pid);
        return TROVE_EINTERNAL;
    }
    unlink(lp->agent_pid);
    return TROVE_OK;
}

/* ------------------------------------------------------------ describe */

static int instance_paths(struct provision_local *pl, const char *id, struct local_paths *lp, char *err,
                          size_t errlen)
{
    if (!id_ok(id) || !local_paths_for(pl, id, lp)) {
        err_set(err, errlen, "invalid instance id");
        return TROVE_EINVAL;
    }
    struct stat st;
    if (lstat(lp->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set(err, errlen, "instance %s does not exist on this host", id);
        return TROVE_ENOTFOUND;
    }
    return TROVE_OK;
}

static void fill_instance(const char *id, const struct local_paths *lp, const struct local_record *rec,
                          struct provision_instance *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->instance_id, sizeof out->instance_id, "%s", id);
    snprintf(out->backend, sizeof out->backend, "local");
    snprintf(out->plugin, sizeof out->plugin, "%s", rec->plugin);
    snprintf(out->datastore, sizeof out->datastore, "%s", rec->datastore);
    snprintf(out->volume_kind, sizeof out->volume_kind, "%s", rec->volume_kind);
    snprintf(out->host, sizeof out->host, "127.0.0.1");
    out->volume_gb = rec->volume_gb;
    out->ram_mb = rec->ram_mb;
    out->port = rec->port;
    char ignored[200];
    if (keys_read_pub(lp->pub, out->agent_public_key, ignored, sizeof ignored) != 0)
        out->agent_public_key[0] = '\0';
    out->agent_pid = agent_pid(lp);
    const struct engine_kind *k = engine_kind_find(rec->plugin);
    out->engine_pid = k ? engine_pid(k, lp->vol) : 0;
    bool loop = strcmp(rec->volume_kind, "loop") == 0;
    out->volume_mounted = loop ? volume_is_mounted(lp->vol) : access(lp->vol, F_OK) == 0;
    if (out->volume_mounted)
        volume_usage(lp->vol, &out->volume_total_bytes, &out->volume_free_bytes);
    snprintf(out->dir, sizeof out->dir, "%s", lp->dir);
    snprintf(out->volume_path, sizeof out->volume_path, "%s", lp->vol);
    snprintf(out->volume_image, sizeof out->volume_image, "%s", loop ? lp->image : "");
    snprintf(out->agent_config, sizeof out->agent_config, "%s", lp->agent_conf);
    snprintf(out->agent_log, sizeof out->agent_log, "%s", lp->agent_log);
    if (provision_memory_params(rec->plugin, rec->ram_mb, &out->params, ignored, sizeof ignored) != TROVE_OK)
        memset(&out->params, 0, sizeof out->params);
}

static int local_describe(struct provision *p, const char *id, struct provision_instance *out, char *err,
                          size_t errlen)
{
    struct local_paths lp;
    struct local_record rec;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc == TROVE_OK && (rc = local_record_read(lp.record, &rec, err, errlen)) == TROVE_ENOTFOUND)
        rc = TROVE_ECONFLICT;   /* the directory exists: a half-made instance */
    if (rc == TROVE_OK)
        fill_instance(id, &lp, &rec, out);
    return rc;
}

/* ------------------------------------------------------------ create */

/* Everything of a create up to the running agent; the caller removes the
 * instance's directory when it fails. */
static int create_steps(struct provision_local *pl, const struct provision_request *req,
                        const struct local_paths *lp, const struct engine_kind *k, struct local_record *rec,
                        char *err, size_t errlen)
{
    char public_key[PROVISION_KEY_LEN + 1];
    pid_t pid;
    int lock = lock_instances_dir(pl, err, errlen);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = pick_port(pl, &rec->port, err, errlen);
    if (rc == TROVE_OK)
        rc = local_record_write(lp->record, req->instance_id, rec, err, errlen);
    close(lock);
    if (rc == TROVE_OK && k->drops_root)
        rc = check_traversable(lp->vol, pl->pg_os_user, err, errlen);
    if (rc == TROVE_OK)
        rc = write_keys(lp, public_key, err, errlen);
    if (rc == TROVE_OK)
        rc = write_secrets(lp, k, err, errlen);
    if (rc == TROVE_OK)
        rc = volume_create(lp, pl->volume_mode, req->volume_gb, rec->volume_kind, err, errlen);
    if (rc == TROVE_OK)
        rc = local_record_write(lp->record, req->instance_id, rec, err, errlen);
    struct engine_setup setup = {.lp = lp, .rec = rec, .pg_os_user = pl->pg_os_user};
    if (rc == TROVE_OK)
        rc = engine_prepare_volume(k, &setup, err, errlen);
    if (rc == TROVE_OK && (mkdir(lp->agent_state, 0700) != 0 || mkdir(lp->backups, 0700) != 0)) {
        err_set(err, errlen, "cannot make the agent's directories in %s: %s", lp->dir, strerror(errno));
        rc = TROVE_EINTERNAL;
    }
    if (rc == TROVE_OK)
        rc = write_agent_conf(pl, req, lp, k, rec, req->instance_id, err, errlen);
    if (rc == TROVE_OK && !req->no_start)
        rc = agent_start(pl, lp, &pid, err, errlen);
    return rc;
}

static void remove_instance(struct provision_local *pl, const char *id, bool graceful);

static int local_create(struct provision *p, const struct provision_request *req, struct provision_instance *out,
                        char *err, size_t errlen)
{
    struct provision_local *pl = local_of(p);
    struct local_paths lp;
    int rc = check_request(req, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    if (!local_paths_for(pl, req->instance_id, &lp)) {
        err_set(err, errlen, "instances_dir is too long");
        return TROVE_EINVAL;
    }
    const struct engine_kind *k = engine_kind_find(req->plugin);
    struct local_record rec = {.volume_gb = req->volume_gb, .ram_mb = req->ram_mb};
    snprintf(rec.plugin, sizeof rec.plugin, "%s", k->plugin);
    snprintf(rec.datastore, sizeof rec.datastore, "%s", req->datastore ? req->datastore : k->plugin);
    snprintf(rec.engine_bindir, sizeof rec.engine_bindir, "%s", req->engine_bindir ? req->engine_bindir : "");
    snprintf(rec.engine_binary, sizeof rec.engine_binary, "%s", req->engine_binary ? req->engine_binary : "");
    if (strpbrk(rec.datastore, "\r\n")) {
        err_set(err, errlen, "the datastore name holds a line break");
        return TROVE_EINVAL;
    }
    if (mkdir(lp.dir, 0711) != 0) {
        err_set(err, errlen, errno == EEXIST ? "instance %s already exists on this host" : "cannot create %s: %s",
                errno == EEXIST ? req->instance_id : lp.dir, strerror(errno));
        return errno == EEXIST ? TROVE_EEXIST : TROVE_EINTERNAL;
    }
    chmod(lp.dir, 0711);
    rc = create_steps(pl, req, &lp, k, &rec, err, errlen);
    if (rc != TROVE_OK) {
        remove_instance(pl, req->instance_id, false);
        return rc;
    }
    fill_instance(req->instance_id, &lp, &rec, out);
    log_info("provision: instance %s (%s) created: port %u, %s volume of %u GB, agent %s", req->instance_id,
             k->plugin, rec.port, rec.volume_kind, rec.volume_gb, out->agent_pid ? "started" : "not started yet");
    return TROVE_OK;
}

/* ------------------------------------------------------------ start, stop, adopt */

static int local_start(struct provision *p, const char *id, struct provision_instance *out, char *err,
                       size_t errlen)
{
    struct provision_local *pl = local_of(p);
    struct local_paths lp;
    struct local_record rec;
    pid_t pid;
    int rc = instance_paths(pl, id, &lp, err, errlen);
    if (rc == TROVE_OK && (rc = local_record_read(lp.record, &rec, err, errlen)) == TROVE_ENOTFOUND)
        rc = TROVE_ECONFLICT;
    if (rc == TROVE_OK)
        rc = volume_mount(&lp, rec.volume_kind, err, errlen);
    if (rc == TROVE_OK && !agent_pid(&lp))
        rc = agent_start(pl, &lp, &pid, err, errlen);
    if (rc == TROVE_OK)
        fill_instance(id, &lp, &rec, out);
    return rc;
}

static int local_stop(struct provision *p, const char *id, char *err, size_t errlen)
{
    struct local_paths lp;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    return rc == TROVE_OK ? agent_stop(&lp, SIGTERM, AGENT_STOP_MS, err, errlen) : rc;
}

static int local_adopt(struct provision *p, const char *id, struct provision_instance *out, char *err,
                       size_t errlen)
{
    struct local_paths lp;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    pid_t running = agent_pid(&lp);
    rc = local_start(p, id, out, err, errlen);
    if (rc == TROVE_OK)
        log_info("provision: instance %s adopted (agent pid %ld%s)", id, (long)out->agent_pid,
                 running ? ", already running" : ", started again");
    return rc;
}

/* ------------------------------------------------------------ destroy */

/* Stop what runs and remove every file. graceful: clean shutdowns with long
 * waits; else short waits and SIGKILL, for a force delete or a failed
 * create. Engines are found by the record's plugin, or every known one
 * when the record is gone. */
static int destroy_steps(struct provision_local *pl, const char *id, bool graceful, char *err, size_t errlen)
{
    struct local_paths lp;
    struct local_record rec;
    char ignored[300];
    if (!local_paths_for(pl, id, &lp))
        return TROVE_EINVAL;
    bool known = local_record_read(lp.record, &rec, ignored, sizeof ignored) == TROVE_OK;
    int rc = agent_stop(&lp, SIGTERM, graceful ? AGENT_STOP_MS : 2000, err, errlen);
    static const char *const plugins[] = {"mysql", "postgres", "redis"};
    for (size_t i = 0; rc == TROVE_OK && i < 3; i++) {
        const struct engine_kind *k = engine_kind_find(plugins[i]);
        if (!known || strcmp(rec.plugin, k->plugin) == 0)
            rc = engine_stop(k, lp.vol, graceful ? ENGINE_STOP_MS : 5000, err, errlen);
    }
    if (rc == TROVE_OK)
        rc = volume_unmount(&lp, !graceful, err, errlen);
    if (rc == TROVE_OK)
        rc = tree_remove(lp.dir, err, errlen);
    return rc;
}

static void remove_instance(struct provision_local *pl, const char *id, bool graceful)
{
    char err[400];
    if (destroy_steps(pl, id, graceful, err, sizeof err) != TROVE_OK)
        log_warn("provision: instance %s: cleaning up: %s", id, err);
}

static int local_destroy(struct provision *p, const char *id, char *err, size_t errlen)
{
    struct local_paths lp;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc == TROVE_OK)
        rc = destroy_steps(local_of(p), id, true, err, errlen);
    if (rc == TROVE_OK)
        log_info("provision: instance %s deleted", id);
    return rc;
}

static int local_force_destroy(struct provision *p, const char *id, char *err, size_t errlen)
{
    struct local_paths lp;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc == TROVE_ENOTFOUND)
        return TROVE_OK;
    if (rc == TROVE_OK)
        rc = destroy_steps(local_of(p), id, false, err, errlen);
    if (rc == TROVE_OK)
        log_info("provision: instance %s force-deleted", id);
    return rc;
}

/* ------------------------------------------------------------ resize, flavor */

static int local_resize_volume(struct provision *p, const char *id, uint32_t new_gb, struct provision_instance *out,
                               char *err, size_t errlen)
{
    struct local_paths lp;
    struct local_record rec;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc == TROVE_OK && (rc = local_record_read(lp.record, &rec, err, errlen)) == TROVE_ENOTFOUND)
        rc = TROVE_ECONFLICT;
    if (rc != TROVE_OK)
        return rc;
    if (new_gb > PROVISION_VOLUME_GB_MAX) {
        err_set(err, errlen, "volume size must be at most %d GB", PROVISION_VOLUME_GB_MAX);
        return TROVE_EINVAL;
    }
    if (new_gb <= rec.volume_gb) {
        err_set(err, errlen, "a volume can only grow: it has %u GB, %u GB were asked", rec.volume_gb, new_gb);
        return TROVE_ECONFLICT;
    }
    if (strcmp(rec.volume_kind, "loop") == 0) {
        const struct engine_kind *k = engine_kind_find(rec.plugin);
        rc = k ? engine_stop(k, lp.vol, ENGINE_STOP_MS, err, errlen) : TROVE_OK;
        if (rc == TROVE_OK)
            rc = volume_grow(&lp, new_gb, err, errlen);
    }
    if (rc == TROVE_OK) {
        rec.volume_gb = new_gb;
        rc = local_record_write(lp.record, id, &rec, err, errlen);
    }
    if (rc == TROVE_OK) {
        fill_instance(id, &lp, &rec, out);
        log_info("provision: instance %s: volume grown to %u GB", id, new_gb);
    }
    return rc;
}

static int local_apply_flavor(struct provision *p, const char *id, uint32_t ram_mb, struct provision_params *params,
                              char *err, size_t errlen)
{
    struct local_paths lp;
    struct local_record rec;
    int rc = instance_paths(local_of(p), id, &lp, err, errlen);
    if (rc == TROVE_OK && (rc = local_record_read(lp.record, &rec, err, errlen)) == TROVE_ENOTFOUND)
        rc = TROVE_ECONFLICT;
    if (rc == TROVE_OK)
        rc = provision_memory_params(rec.plugin, ram_mb, params, err, errlen);
    if (rc == TROVE_OK) {
        rec.ram_mb = ram_mb;
        rc = local_record_write(lp.record, id, &rec, err, errlen);
    }
    return rc;
}

/* ------------------------------------------------------------ list, open, close */

static int local_list(struct provision *p, char ***ids_out, size_t *n_out, char *err, size_t errlen)
{
    struct provision_local *pl = local_of(p);
    DIR *d = opendir(pl->instances_dir);
    char **ids = NULL;
    size_t n = 0;
    struct dirent *e;
    if (!d) {
        err_set(err, errlen, "cannot read %s: %s", pl->instances_dir, strerror(errno));
        return TROVE_EINTERNAL;
    }
    int rc = TROVE_OK;
    while (rc == TROVE_OK && (e = readdir(d))) {
        struct local_paths lp;
        struct stat st;
        if (!id_ok(e->d_name) || !local_paths_for(pl, e->d_name, &lp) || lstat(lp.dir, &st) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        char **grown = realloc(ids, (n + 1) * sizeof *ids);
        char *copy = grown ? strdup(e->d_name) : NULL;
        if (grown)
            ids = grown;
        if (!copy) {
            err_set(err, errlen, "out of memory");
            rc = TROVE_EINTERNAL;
            break;
        }
        ids[n++] = copy;
    }
    closedir(d);
    if (rc != TROVE_OK) {
        provision_free_ids(ids, n);
        return rc;
    }
    *ids_out = ids;
    *n_out = n;
    return TROVE_OK;
}

static void local_close(struct provision *p)
{
    free(p);
}

static const struct provision_ops local_ops = {
    .kind = "local",
    .create = local_create,
    .start = local_start,
    .stop = local_stop,
    .destroy = local_destroy,
    .force_destroy = local_force_destroy,
    .resize_volume = local_resize_volume,
    .apply_flavor = local_apply_flavor,
    .adopt = local_adopt,
    .describe = local_describe,
    .list = local_list,
    .close = local_close,
};

/* mkdir -p; the last component with mode, parents 0755. */
static int make_dirs(const char *path, mode_t mode, char *err, size_t errlen)
{
    char tmp[LOCAL_PATH];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            goto fail;
        *s = '/';
    }
    if (mkdir(tmp, mode) != 0) {
        if (errno != EEXIST)
            goto fail;
    } else if (chmod(tmp, mode) != 0) {
        goto fail;
    }
    return TROVE_OK;
fail:
    err_set(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    return TROVE_EINTERNAL;
}

static int volume_mode_from_env(enum provision_volume_mode *mode, char *err, size_t errlen)
{
    const char *v = getenv("TROVE_PROVISION_VOLUME");
    if (!v || !*v)
        return TROVE_OK;
    if (strcmp(v, "auto") == 0)
        *mode = PROVISION_VOLUME_AUTO;
    else if (strcmp(v, "loop") == 0)
        *mode = PROVISION_VOLUME_LOOP;
    else if (strcmp(v, "directory") == 0)
        *mode = PROVISION_VOLUME_DIRECTORY;
    else {
        err_set(err, errlen, "TROVE_PROVISION_VOLUME must be auto, loop or directory");
        return TROVE_EINVAL;
    }
    return TROVE_OK;
}

struct provision *provision_local_open(const struct provision_local_config *cfg, char *err, size_t errlen)
{
    struct stat st;
    if (!path_ok(cfg->instances_dir) || strlen(cfg->instances_dir) > 160) {
        err_set(err, errlen, "instances_dir must be an absolute path of at most 160 letters, digits and "
                "/._+-,@=:~");
        return NULL;
    }
    if (!cfg->agent_binary || access(cfg->agent_binary, X_OK) != 0) {
        err_set(err, errlen, "trove-agent binary %s: %s", cfg->agent_binary ? cfg->agent_binary : "(none)",
                cfg->agent_binary ? strerror(errno) : "not configured");
        return NULL;
    }
    if (!path_ok(cfg->plugin_dir) || stat(cfg->plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set(err, errlen, "plugin_dir %s is not an absolute path to a directory",
                cfg->plugin_dir ? cfg->plugin_dir : "(none)");
        return NULL;
    }
    const char *os_user = cfg->postgres_os_user ? cfg->postgres_os_user : "postgres";
    if (!*os_user || strlen(os_user) > 63 || strspn(os_user, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(os_user)) {
        err_set(err, errlen, "postgres_os_user \"%s\" is not a valid user name", os_user);
        return NULL;
    }
    enum provision_volume_mode mode = cfg->volume_mode;
    if (volume_mode_from_env(&mode, err, errlen) != TROVE_OK || make_dirs(cfg->instances_dir, 0711, err, errlen) != TROVE_OK)
        return NULL;
    if (lstat(cfg->instances_dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        err_set(err, errlen, "instances_dir %s must be a directory owned by this user and not writable by group "
                "or others", cfg->instances_dir);
        return NULL;
    }
    struct provision_local *pl = calloc(1, sizeof *pl);
    if (!pl) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    pl->base.ops = &local_ops;
    snprintf(pl->instances_dir, sizeof pl->instances_dir, "%s", cfg->instances_dir);
    snprintf(pl->agent_binary, sizeof pl->agent_binary, "%s", cfg->agent_binary);
    snprintf(pl->plugin_dir, sizeof pl->plugin_dir, "%s", cfg->plugin_dir);
    snprintf(pl->pg_os_user, sizeof pl->pg_os_user, "%s", os_user);
    pl->volume_mode = mode;
    return &pl->base;
}
