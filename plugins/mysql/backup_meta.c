/*
 * backup_meta.c - reading what mariadb-backup writes about a backup: the
 * "key = value" lines of xtrabackup_checkpoints / xtrabackup_info and the
 * quoted fields of binlog_pos. Pure text parsing; no files, no server.
 */
#include <string.h>

#include "mysql_plugin.h"

/* Copy n bytes of v into out, or refuse (-1) if they do not fit whole: a
 * position cut short could still parse, and name the wrong transaction. */
static int copy_whole(const char *v, size_t n, char *out, size_t outlen)
{
    if (outlen == 0 || n >= outlen)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

int my_backup_info_value(const char *text, const char *key, char *out, size_t outlen)
{
    size_t kn = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, key, kn) == 0) {
            const char *v = line + kn;
            while (*v == ' ')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ')
                    v++;
                return copy_whole(v, strcspn(v, "\n"), out, outlen);
            }
        }
        line = next ? next + 1 : NULL;
    }
    return 0;
}

int my_backup_binlog_field(const char *binlog_pos, const char *label, char *out, size_t outlen)
{
    size_t ln = strlen(label);
    for (const char *s = strstr(binlog_pos, label); s; s = strstr(s + 1, label)) {
        const char *v = s + ln;
        if (v[0] != ' ' || v[1] != '\'')
            continue;
        v += 2;
        const char *e = strchr(v, '\'');
        return e ? copy_whole(v, (size_t)(e - v), out, outlen) : 0;
    }
    return 0;
}
