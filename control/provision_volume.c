/*
 * provision_volume.c - an instance's volume: an ext4 image, sparse, loop-
 * mounted on the instance's vol/ directory, grown offline (online resize2fs
 * is refused on these hosts); or, where loop devices do not work, vol/ as a
 * plain directory without a size limit. It runs mkfs.ext4, mount, e2fsck and
 * resize2fs, and touches nothing outside the instance's directory.
 */
#include "provision_local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "status.h"

#define GIB (1024ULL * 1024 * 1024)

bool volume_is_mounted(const char *mount_point)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    bool found = false;
    if (!f)
        return false;
    /* Field 5 is the mount point; instance paths hold no characters that
     * mountinfo escapes (spaces, tabs, backslashes). */
    while (!found && fgets(line, sizeof line, f)) {
        char *save = NULL, *field = strtok_r(line, " ", &save);
        for (int i = 1; field && i < 5; i++)
            field = strtok_r(NULL, " ", &save);
        found = field && strcmp(field, mount_point) == 0;
    }
    fclose(f);
    return found;
}

void volume_usage(const char *path, uint64_t *total, uint64_t *avail)
{
    struct statvfs sv;
    *total = *avail = 0;
    if (statvfs(path, &sv) == 0) {
        *total = (uint64_t)sv.f_blocks * sv.f_frsize;
        *avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    }
}

/* Run a tool; on failure put "what: output" into err. */
static int run_tool(const char *const argv[], bool (*ok)(int), const char *what, char *err, size_t errlen)
{
    char out[600];
    int st = proc_run(argv, out, sizeof out);
    if (ok ? ok(st) : st == 0)
        return TROVE_OK;
    err_set(err, errlen, "%s failed (%s %d): %s", what, st < 0 ? "status" : "exit", st, out[0] ? out : "no output");
    return TROVE_EINTERNAL;
}

static int image_set_size(const char *image, uint32_t gb, bool create, char *err, size_t errlen)
{
    int fd = open(image, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0) {
        err_set(err, errlen, "cannot open %s: %s", image, strerror(errno));
        return TROVE_EINTERNAL;
    }
    /* Sparse: blocks are allocated as the filesystem writes them. */
    int rc = ftruncate(fd, (off_t)((uint64_t)gb * GIB)) == 0 ? TROVE_OK : TROVE_EINTERNAL;
    if (rc != TROVE_OK)
        err_set(err, errlen, "cannot size %s to %u GiB: %s", image, gb, strerror(errno));
    close(fd);
    return rc;
}

static int mount_image(const struct local_paths *lp, char *err, size_t errlen)
{
    const char *argv[] = {"mount", "-t", "ext4", "-o", "loop,nodev,nosuid", "--", lp->image, lp->vol, NULL};
    int rc = run_tool(argv, NULL, "mount -o loop", err, errlen);
    /* The filesystem's root belongs to root and is 0755 whatever mkfs made:
     * engines that drop root still need to traverse it. */
    if (rc == TROVE_OK && chmod(lp->vol, 0755) != 0) {
        err_set(err, errlen, "chmod %s: %s", lp->vol, strerror(errno));
        rc = TROVE_EINTERNAL;
    }
    return rc;
}

static int make_loop(const struct local_paths *lp, uint32_t gb, char *err, size_t errlen)
{
    /* -m 0: no blocks reserved for root, so the volume is as large as asked. */
    const char *mkfs[] = {"mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", "--", lp->image, NULL};
    int rc = image_set_size(lp->image, gb, true, err, errlen);
    if (rc == TROVE_OK)
        rc = run_tool(mkfs, NULL, "mkfs.ext4", err, errlen);
    if (rc == TROVE_OK)
        rc = mount_image(lp, err, errlen);
    if (rc != TROVE_OK)
        unlink(lp->image);
    return rc;
}

int volume_create(const struct local_paths *lp, enum provision_volume_mode mode, uint32_t gb, char kind_out[16],
                  char *err, size_t errlen)
{
    if (mkdir(lp->vol, 0755) != 0) {
        err_set(err, errlen, "mkdir %s: %s", lp->vol, strerror(errno));
        return TROVE_EINTERNAL;
    }
    if (mode != PROVISION_VOLUME_DIRECTORY) {
        char why[400];
        int rc = make_loop(lp, gb, why, sizeof why);
        if (rc == TROVE_OK) {
            snprintf(kind_out, 16, "loop");
            return TROVE_OK;
        }
        if (mode == PROVISION_VOLUME_LOOP) {
            err_set(err, errlen, "cannot make a loop volume: %s", why);
            return rc;
        }
        log_warn("provision: no loop volume for %s (%s); using a plain directory without a size limit", lp->dir,
                 why);
    }
    snprintf(kind_out, 16, "directory");
    return TROVE_OK;
}

int volume_mount(const struct local_paths *lp, const char *kind, char *err, size_t errlen)
{
    if (strcmp(kind, "loop") != 0 || volume_is_mounted(lp->vol))
        return TROVE_OK;
    return mount_image(lp, err, errlen);
}

int volume_unmount(const struct local_paths *lp, bool lazy, char *err, size_t errlen)
{
    /* A server that just exited may leave children holding files for a
     * moment (PostgreSQL backends): retry a busy unmount for a few seconds. */
    for (int tries = 0; volume_is_mounted(lp->vol); tries++) {
        if (umount2(lp->vol, lazy ? MNT_DETACH : 0) == 0)
            continue;
        if (errno != EBUSY || tries >= 100) {
            char holders[300] = "";
            if (errno == EBUSY)
                proc_holders(lp->vol, holders, sizeof holders);
            err_set(err, errlen, "cannot unmount %s: %s%s%s", lp->vol, strerror(errno),
                    holders[0] ? "; held by " : "", holders);
            return errno == EBUSY ? TROVE_ECONFLICT : TROVE_EINTERNAL;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return TROVE_OK;
}

/* e2fsck: 0 = clean, 1 = errors corrected; anything else is a failure. */
static bool fsck_ok(int status)
{
    return status == 0 || status == 1;
}

int volume_grow(const struct local_paths *lp, uint32_t new_gb, char *err, size_t errlen)
{
    const char *fsck[] = {"e2fsck", "-f", "-y", "--", lp->image, NULL};
    const char *resize[] = {"resize2fs", "--", lp->image, NULL};
    int rc = volume_unmount(lp, false, err, errlen);
    if (rc != TROVE_OK)
        return rc;
    rc = image_set_size(lp->image, new_gb, false, err, errlen);
    if (rc == TROVE_OK)
        rc = run_tool(fsck, fsck_ok, "e2fsck", err, errlen);
    if (rc == TROVE_OK)
        rc = run_tool(resize, NULL, "resize2fs", err, errlen);
    /* Mount again whatever failed: a filesystem smaller than its image
     * mounts as it was, and the caller reports the error. */
    char merr[400];
    int mrc = mount_image(lp, merr, sizeof merr);
    if (rc == TROVE_OK && mrc != TROVE_OK) {
        err_set(err, errlen, "%s", merr);
        rc = mrc;
    }
    return rc;
}
