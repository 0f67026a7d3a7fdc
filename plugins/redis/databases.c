/*
 * databases.c - Redis's numbered databases (0 .. databases-1), listed with
 * their key counts. Their number is fixed by the "databases" parameter, so
 * database_create/delete are not offered (NULL slots).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_plugin.h"

int rd_database_list(void *self, struct trove_call *call)
{
    struct rd_ctx *ctx = self;
    struct rd_conn conn = {0};
    redisReply *info = NULL;
    char value[64];
    int rc = rd_conn_open(ctx, call, &conn);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = rd_config_get(&conn, "databases", value, sizeof(value))) != TROVE_OK ||
        (rc = rd_conn_cmd(&conn, &info, "INFO", "keyspace", NULL)) != TROVE_OK)
        goto out;
    long n = strtol(value, NULL, 10);
    for (long i = 0; i < n && rc == TROVE_OK; i++) {
        char name[32], field[48], stats[256], keys[32] = "0";
        snprintf(name, sizeof(name), "%ld", i);
        snprintf(field, sizeof(field), "db%ld", i);
        /* "db0:keys=12,expires=0,avg_ttl=0" */
        if (info->str && rd_info_find(info->str, field, stats, sizeof(stats)) && strncmp(stats, "keys=", 5) == 0)
            snprintf(keys, sizeof(keys), "%.*s", (int)strcspn(stats + 5, ","), stats + 5);
        struct trove_kv opt = {"keys", keys};
        struct trove_database db = {.size = sizeof(db), .name = name, .options = &opt, .n_options = 1};
        rc = ctx->host->emit_database(call, &db);
    }
out:
    freeReplyObject(info);
    rd_conn_close(&conn);
    return rc;
}
