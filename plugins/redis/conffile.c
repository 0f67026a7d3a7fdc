/*
 * conffile.c - the config file the plugin owns, edited directive by
 * directive: read the value of one, set or remove one. The file is replaced
 * atomically (another agent process may read it meanwhile) and stays 0600:
 * it can hold a replica's masterauth.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_plugin.h"

#define CONFIG_FILE_MAX (16u << 20)

/* Does `line` set directive `name`? */
static bool line_is(const char *line, const char *name)
{
    line += strspn(line, " \t");
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\t');
}

/* A value as Redis's parser reads it back: bare when it is a plain word
 * (as CONFIG REWRITE writes it), else in double quotes with " and \
 * escaped. */
static void add_value(struct tps_buf *b, const char *value)
{
    size_t n = strlen(value);
    if (n > 0 && strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:+@,-") == n)
        tps_buf_add(b, value);
    else
        tps_quote_conf(b, value, '"');
}

void rd_config_line(struct tps_buf *b, const char *name, const char *value)
{
    tps_buf_addf(b, "%s ", name);
    add_value(b, value);
    tps_buf_add(b, "\n");
}

/* The first line setting `name` is replaced, later ones dropped. */
int rd_config_file_set(const char *path, const char *name, const char *value)
{
    if (value && tps_has_control(value))
        return -EINVAL;   /* no quoting makes a line break safe in a line-based file */
    size_t len = 0;
    char *old = tps_file_read(path, CONFIG_FILE_MAX, &len);
    if (!old)
        return -errno;
    struct tps_buf out = {0};
    bool placed = false;
    for (char *line = old; *line;) {
        size_t n = strcspn(line, "\n");
        if (!line_is(line, name)) {
            tps_buf_addn(&out, line, n);
            tps_buf_add(&out, "\n");
        } else if (value && !placed) {
            rd_config_line(&out, name, value);
            placed = true;
        } else {
            placed = true;
        }
        line += n + (line[n] ? 1 : 0);
    }
    if (value && !placed)
        rd_config_line(&out, name, value);
    int rc = tps_buf_str(&out) ? tps_file_write_atomic(path, out.data, out.len, 0600) : -ENOMEM;
    tps_buf_wipe(&out);   /* may hold masterauth */
    explicit_bzero(old, len);
    free(old);
    return rc;
}

int rd_config_file_get(const char *path, const char *name, char *buf, size_t len)
{
    size_t size = 0;
    char *text = tps_file_read(path, CONFIG_FILE_MAX, &size);
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
    explicit_bzero(text, size);
    free(text);
    return rc;
}
