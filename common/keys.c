/*
 * keys.c - CURVE key pair generation and the NAME.key / NAME.pub files (see
 * keys.h for their format). Secrets are wiped from stack buffers after use;
 * nothing here logs.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "conf.h"

#define KEYS_SECTION "curve"

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

bool keys_is_z85(const char *s)
{
    if (!s || strlen(s) != KEYS_Z85_LEN)
        return false;
    for (size_t i = 0; i < KEYS_Z85_LEN; i++)
        if (!strchr(z85_alphabet, s[i]))
            return false;
    /* Every character is in the alphabet, but a group can still encode a
     * value above 2^32; zmq_z85_decode rejects those. */
    uint8_t raw[32];
    bool ok = zmq_z85_decode(raw, s) != NULL;
    wipe(raw, sizeof raw);
    return ok;
}

void keys_wipe(struct keys_pair *kp)
{
    if (kp)
        wipe(kp->secret_z85, sizeof kp->secret_z85);
}

int keys_generate(struct keys_pair *kp, char *err, size_t errlen)
{
    memset(kp, 0, sizeof *kp);
    if (zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0) {
        snprintf(err, errlen, "cannot generate a CURVE key pair: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Create path exclusively with the given mode and write text to it. */
static int write_new_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite a key file)" : "");
        return -1;
    }
    /* open() applies the umask; make the mode exact. */
    int rc = fchmod(fd, mode);
    size_t len = strlen(text), done = 0;
    while (rc == 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        done += (size_t)n;
    }
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int keys_write(const char *name, const struct keys_pair *kp, char *err, size_t errlen)
{
    char key_path[4096], pub_path[4096], text[256];
    int rc = -1;

    if (!keys_is_z85(kp->public_z85) || !keys_is_z85(kp->secret_z85)) {
        snprintf(err, errlen, "not a valid key pair");
        return -1;
    }
    if ((size_t)snprintf(key_path, sizeof key_path, "%s.key", name) >= sizeof key_path ||
        (size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", name) >= sizeof pub_path) {
        snprintf(err, errlen, "key file name too long");
        return -1;
    }
    snprintf(text, sizeof text,
             "# trove CURVE key pair; keep this file secret (mode 0600)\n"
             "[" KEYS_SECTION "]\n"
             "public-key = \"%s\"\n"
             "secret-key = \"%s\"\n",
             kp->public_z85, kp->secret_z85);
    if (write_new_file(key_path, 0600, text, err, errlen) != 0)
        goto out;
    snprintf(text, sizeof text, "%s\n", kp->public_z85);
    if (write_new_file(pub_path, 0644, text, err, errlen) != 0) {
        unlink(key_path);
        goto out;
    }
    rc = 0;
out:
    wipe(text, sizeof text);
    return rc;
}

int keys_read_key(const char *path, struct keys_pair *kp, char *err, size_t errlen)
{
    char derived[KEYS_Z85_LEN + 1];
    int rc = -1;

    memset(kp, 0, sizeof *kp);
    struct conf *c = conf_load_secret(path, err, errlen);
    if (!c)
        return -1;
    const char *pub = conf_get(c, KEYS_SECTION, "public-key");
    const char *sec = conf_get(c, KEYS_SECTION, "secret-key");
    if (!keys_is_z85(pub) || !keys_is_z85(sec)) {
        snprintf(err, errlen, "%s: [" KEYS_SECTION "] needs public-key and secret-key, 40 Z85 characters each",
                 path);
        goto out;
    }
    if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0) {
        snprintf(err, errlen, "%s: public-key does not belong to secret-key", path);
        goto out;
    }
    memcpy(kp->public_z85, pub, KEYS_Z85_LEN + 1);
    memcpy(kp->secret_z85, sec, KEYS_Z85_LEN + 1);
    rc = 0;
out:
    /* The conf holds a copy of the secret; overwrite it before freeing. */
    if (sec)
        wipe((char *)sec, strlen(sec));
    conf_free(c);
    return rc;
}

int keys_read_pub(const char *path, char *out, char *err, size_t errlen)
{
    char buf[256];
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool too_long = n == sizeof buf - 1 && fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    char *end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    if (too_long || !keys_is_z85(start)) {
        snprintf(err, errlen, "%s: not a public key file (expected one line of 40 Z85 characters)", path);
        return -1;
    }
    memcpy(out, start, KEYS_Z85_LEN + 1);
    return 0;
}

/* True if host (without brackets or port) names the loopback interface. */
static bool host_is_loopback(const char *host, size_t len)
{
    static const char *const names[] = {"127.0.0.1", "::1", "localhost"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == strlen(names[i]) && memcmp(host, names[i], len) == 0)
            return true;
    return false;
}

/* One tcp address "host:port" or "[v6]:port". */
static bool tcp_address_is_local(const char *addr, size_t len)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--)
        if (addr[i - 1] == ':') {
            colon = addr + i - 1;
            break;
        }
    if (!colon || colon == addr)
        return false;
    size_t hlen = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (hlen < 2 || addr[hlen - 1] != ']')
            return false;
        return host_is_loopback(addr + 1, hlen - 2);
    }
    return host_is_loopback(addr, hlen);
}

bool keys_endpoint_is_local(const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    /* "tcp://source;destination": both sides must be local, and present. */
    for (const char *p = endpoint + 6;;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (!tcp_address_is_local(p, len))
            return false;
        if (!semi)
            return true;
        p = semi + 1;
    }
}
