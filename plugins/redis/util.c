/*
 * util.c - name rules, hashing, Redis's CRC-64, and the small file helpers
 * (the plugin-owned config file and its side files). No Redis connection
 * here; everything is pure or touches only files the plugin owns.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "redis_plugin.h"

/* ACL user names: 1-64 characters, a letter, digit or '_' first (so Redis
 * and its config file can never read the name as a rule such as ">pw",
 * "~keys", "+@all"), then letters, digits and "_.:@-". */
bool rd_valid_user_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || !(isalnum((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) && c < 0x80) && !strchr("_.:@-", c))
            return false;
    }
    return true;
}

/* Key patterns (what a user's "databases" are): 1-256 printable ASCII
 * characters without spaces or quotes (the config file's parser would split
 * or unquote them), not starting with a rule prefix. */
bool rd_valid_pattern(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > 256 || strchr("~%&+-@<>#!", p[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'')
            return false;
    }
    return true;
}

/* Passwords: 1-512 bytes, no control characters. Only their SHA-256 hash
 * is sent to Redis (rd_password_rule); the admin's AUTH and a replica's
 * masterauth are the only cleartext passwords the server receives. */
bool rd_valid_password(const char *pw)
{
    size_t n = pw ? strlen(pw) : 0;
    if (n == 0 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f)
            return false;
    return true;
}

bool rd_valid_host(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n > 253 || host[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-:_", host[i]))
            return false;
    return true;
}

/* "#<sha256 hex>": the ACL rule that gives a user this password. Sending the
 * hash instead of ">password" keeps the cleartext out of the connection, and
 * so out of everything Redis records about a command (slow log, MONITOR,
 * a crash report's dump of the command being run). */
int rd_password_rule(const char *password, char out[RD_PASSWORD_RULE_SIZE])
{
    out[0] = '#';
    return rd_sha256_hex(password, out + 1);
}

int rd_sha256_hex(const char *data, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, strlen(data), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* CRC-64/Jones as Redis computes it (reflected, init 0, no final xor),
 * slice-by-8. */
void rd_crc64_init(struct rd_crc64 *crc)
{
    const uint64_t poly = UINT64_C(0x95ac9329ac4bc9b5);
    for (int n = 0; n < 256; n++) {
        uint64_t c = (uint64_t)n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? poly ^ (c >> 1) : c >> 1;
        crc->t[0][n] = c;
    }
    for (int n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc->t[k][n] = (crc->t[k - 1][n] >> 8) ^ crc->t[0][crc->t[k - 1][n] & 0xff];
}

uint64_t rd_crc64_update(const struct rd_crc64 *crc, uint64_t v, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint64_t w = 0;
        for (int i = 7; i >= 0; i--)
            w = (w << 8) | p[i];
        v ^= w;
        v = crc->t[7][v & 0xff] ^ crc->t[6][(v >> 8) & 0xff] ^ crc->t[5][(v >> 16) & 0xff] ^
            crc->t[4][(v >> 24) & 0xff] ^ crc->t[3][(v >> 32) & 0xff] ^ crc->t[2][(v >> 40) & 0xff] ^
            crc->t[1][(v >> 48) & 0xff] ^ crc->t[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        v = crc->t[0][(v ^ *p++) & 0xff] ^ (v >> 8);
    return v;
}

char *rd_path_with_suffix(const char *base, const char *suffix)
{
    size_t a = strlen(base), b = strlen(suffix);
    char *p = malloc(a + b + 1);
    if (p) {
        memcpy(p, base, a);
        memcpy(p + a, suffix, b + 1);
    }
    return p;
}

bool rd_file_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

/* Write a whole file atomically (temp file + fsync + rename). */
int rd_write_file(const char *path, const char *data, size_t len, int mode)
{
    char *tmp = rd_path_with_suffix(path, ".tmp");
    if (!tmp)
        return -1;
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        goto out;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off == len && fchmod(fd, (mode_t)mode) == 0 && fsync(fd) == 0 && close(fd) == 0) {
        fd = -1;
        rc = rename(tmp, path);
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

char *rd_read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* A value as the config file's parser (sdssplitargs) reads it back: bare
 * when it is a plain word, else double-quoted with escapes. */
char *rd_config_quote(const char *value)
{
    size_t n = strlen(value);
    bool plain = n > 0;
    for (size_t i = 0; i < n && plain; i++)
        plain = isalnum((unsigned char)value[i]) || strchr("._/:-+@,", value[i]);
    if (plain)
        return strdup(value);
    char *out = malloc(n * 4 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\')
            *o++ = '\\', *o++ = (char)c;
        else if (c < 0x20 || c == 0x7f)
            o += sprintf(o, "\\x%02x", c);
        else
            *o++ = (char)c;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* Does `line` set directive `name`? */
static bool line_is(const char *line, const char *name)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\t');
}

/* Set (value != NULL) or remove (value == NULL) directive `name` in the
 * config file: the first line setting it is replaced, later ones dropped. */
int rd_config_file_set(const char *path, const char *name, const char *value)
{
    char *old = rd_read_file(path, 16 << 20);
    if (!old)
        return -1;
    size_t cap = strlen(old) + strlen(name) + (value ? strlen(value) * 4 : 0) + 16;
    char *out = malloc(cap), *o = out;
    char *q = value ? rd_config_quote(value) : NULL;
    int rc = -1;
    if (!out || (value && !q))
        goto done;
    bool placed = false;
    for (char *line = old; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (line_is(line, name)) {
            if (value && !placed)
                o += sprintf(o, "%s %s\n", name, q);
            placed = true;
        } else {
            memcpy(o, line, len);
            o += len;
            if (!nl)
                *o++ = '\n';
        }
        line += len;
    }
    if (value && !placed)
        o += sprintf(o, "%s %s\n", name, q);
    rc = rd_write_file(path, out, (size_t)(o - out), 0600);
done:
    free(q);
    free(out);
    free(old);
    return rc;
}

/* The value of the last line setting `name` (quotes removed, no escapes). */
int rd_config_file_get(const char *path, const char *name, char *buf, size_t len)
{
    char *text = rd_read_file(path, 16 << 20);
    if (!text)
        return -1;
    int rc = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!line_is(line, name))
            continue;
        char *v = line + strspn(line, " \t") + strlen(name);
        v += strspn(v, " \t");
        size_t n = strcspn(v, "\r");
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
            v++, n -= 2;
        snprintf(buf, len, "%.*s", (int)n, v);
        rc = 0;
    }
    free(text);
    return rc;
}

/* on/off, true/false, yes/no, 1/0 -> "yes"/"no". */
int rd_to_redis_bool(const char *in, const char **out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"}, *const no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(in, yes[i]) == 0)
            return *out = "yes", 0;
        if (strcasecmp(in, no[i]) == 0)
            return *out = "no", 0;
    }
    return -1;
}

void rd_msleep(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int64_t rd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
