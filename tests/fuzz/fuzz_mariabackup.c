/*
 * fuzz_mariabackup.c - mariadb-backup's metadata files as the plugin reads
 * them (plugins/mysql/backup_meta.c): "key = value" lines and the quoted
 * fields of binlog_pos. A value is found whole or refused as too long,
 * never cut short; it holds no line end (and a binlog field no quote); a
 * smaller buffer gives the same value or refuses it, exactly when it does
 * not fit.
 */
#include "fuzz_util.h"

#include "mysql_plugin.h"

static const char *const keys[] = {"to_lsn", "from_lsn", "backup_type", "last_lsn", "server_version", "binlog_pos"};
static const char *const labels[] = {"filename", "position", "GTID of the last change"};

typedef int (*field_fn)(const char *text, const char *key, char *out, size_t outlen);

/* The same lookup with a large buffer and an exact-size small one. */
static void check_lookup(field_fn fn, const char *text, const char *key, size_t small, const char *forbidden)
{
    static char big[TROVE_POSITION_MAX];
    int found = fn(text, key, big, sizeof(big));
    if (found <= 0)
        return;
    FUZZ_CHECK(!strpbrk(big, forbidden), "value of %s holds a forbidden character", key);
    char *buf = malloc(small);
    if (!buf)
        abort();
    int again = fn(text, key, buf, small);
    if (strlen(big) < small)
        FUZZ_CHECK(again == 1 && strcmp(buf, big) == 0, "%s: %d with %zu bytes", key, again, small);
    else
        FUZZ_CHECK(again == -1, "%s: a value of %zu bytes in %zu gave %d", key, strlen(big), small, again);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    size_t small = size ? (size_t)data[size - 1] % 40 + 1 : 1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        check_lookup(my_backup_info_value, text, keys[i], small, "\n");
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        check_lookup(my_backup_binlog_field, text, labels[i], small, "'");
    static char binlog_pos[TROVE_POSITION_MAX];
    if (my_backup_info_value(text, "binlog_pos", binlog_pos, sizeof(binlog_pos)) > 0)
        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
            check_lookup(my_backup_binlog_field, binlog_pos, labels[i], small, "'");
    free(text);
    return 0;
}
