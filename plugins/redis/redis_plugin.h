/*
 * redis_plugin.h - what the files of the Redis plugin share: the instance
 * context (settings read once by open(), immutable after), the connection and
 * command helpers, and small utilities. Nothing here is part of the ABI.
 */
#ifndef REDIS_PLUGIN_H
#define REDIS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "trove_plugin.h"

enum rd_shutdown { RD_SHUTDOWN_SAVE, RD_SHUTDOWN_NOSAVE, RD_SHUTDOWN_DEFAULT };

/* One open plugin instance. Read-only after open(), so calls on the loop and
 * worker threads may share it; every call opens its own connection. */
struct rd_ctx {
    const struct trove_host *h;
    char *host;              /* where the agent connects (TCP) */
    int port;
    char *socket;            /* unix socket path; preferred over TCP when set */
    char *bind;              /* bind address written into the config file */
    char *user;              /* the agent's admin ACL user */
    char *password;          /* its password (secret) */
    char *server_bin;        /* redis-server binary */
    char *config_file;       /* the config file the plugin owns; NULL = unmanaged server */
    char *dir;               /* data directory */
    char *dbfilename;
    char *pid_file;
    char *log_file;
    char *root_user;         /* ACL user behind root.enable */
    char *repl_user;         /* ACL user replicas authenticate as */
    char *run_as;            /* system user for redis-server, NULL = the agent's */
    enum rd_shutdown shutdown;
    int connect_timeout_ms;
    int command_timeout_ms;
    int start_timeout_s;
    int stop_timeout_s;
    int sync_timeout_s;      /* silence allowed while reading an RDB from the server */
};

/* A connection for one call. */
struct rd_conn {
    struct rd_ctx *ctx;
    struct trove_call *call;
    redisContext *c;
};

/* conn.c */
int rd_connect(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn);
int rd_connect_timeout(struct rd_ctx *ctx, struct trove_call *call, struct rd_conn *conn, int timeout_ms,
                       bool report);
void rd_disconnect(struct rd_conn *conn);
int rd_cmd_argv(struct rd_conn *conn, redisReply **out, int argc, const char *const *argv);
int rd_cmd(struct rd_conn *conn, redisReply **out, ...);   /* NULL-terminated string arguments */
int rd_cmd_ok(struct rd_conn *conn, ...);                   /* same, reply discarded */
int rd_info_field(struct rd_conn *conn, const char *section, const char *field, char *buf, size_t len);
int rd_config_get(struct rd_conn *conn, const char *name, char *buf, size_t len);
int rd_persist_acl(struct rd_conn *conn);
int rd_config_rewrite(struct rd_conn *conn);

/* info.c */
const char *rd_info_lookup(const char *info, const char *field, char *buf, size_t len);
/* A replication position: "<replid>:<offset>", then ",<replid2>:<offset2>"
 * when the server carries an earlier history (after a promotion). */
struct rd_pos {
    char id[41];
    uint64_t off;
    bool has2;
    char id2[41];
    uint64_t off2;   /* first offset NOT covered by id2 (Redis's second_repl_offset) */
};
int rd_pos_parse(const char *s, struct rd_pos *p);   /* 0, or -1 if s is not a position */
enum trove_order rd_pos_compare(const struct rd_pos *a, const struct rd_pos *b);
/* The position an INFO replication text describes, into buf. */
void rd_position_from_info(const char *info, char *buf, size_t len);

/* util.c */
bool rd_valid_user_name(const char *name);
bool rd_valid_pattern(const char *p);
bool rd_valid_password(const char *pw);
bool rd_valid_host(const char *host);
int rd_sha256_hex(const char *data, char out[65]);
#define RD_PASSWORD_RULE_SIZE 66   /* '#', 64 hex digits, NUL */
int rd_password_rule(const char *password, char out[RD_PASSWORD_RULE_SIZE]);
struct rd_crc64 { uint64_t t[8][256]; };   /* Redis's CRC-64 (Jones), the RDB trailer */
void rd_crc64_init(struct rd_crc64 *crc);
uint64_t rd_crc64_update(const struct rd_crc64 *crc, uint64_t v, const unsigned char *p, size_t len);
char *rd_path_with_suffix(const char *base, const char *suffix);
int rd_write_file(const char *path, const char *data, size_t len, int mode);
char *rd_read_file(const char *path, size_t max);
bool rd_file_exists(const char *path);
char *rd_config_quote(const char *value);
int rd_config_file_set(const char *path, const char *name, const char *value);
int rd_config_file_get(const char *path, const char *name, char *buf, size_t len);
int rd_to_redis_bool(const char *in, const char **out);
void rd_msleep(int ms);
int64_t rd_now_ms(void);

/* users.c */
int rd_user_create(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_delete(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_list(void *self, struct trove_call *call);
int rd_user_show(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_grant(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_revoke(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_access(void *self, struct trove_call *call, const struct trove_user *user);
int rd_user_set_password(void *self, struct trove_call *call, const struct trove_user *user);
int rd_root_enable(void *self, struct trove_call *call, const char *password);
int rd_root_disable(void *self, struct trove_call *call);
int rd_root_show(void *self, struct trove_call *call);
bool rd_is_system_user(struct rd_ctx *ctx, const char *name);

/* databases.c */
int rd_database_list(void *self, struct trove_call *call);

/* config.c */
int rd_config_schema(void *self, struct trove_call *call);
int rd_config_validate(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int rd_config_apply(void *self, struct trove_call *call, const struct trove_kv *values, size_t n);
int rd_config_reset(void *self, struct trove_call *call);
int rd_config_show(void *self, struct trove_call *call, const char *const *names, size_t n);
int rd_config_write_overrides(struct rd_ctx *ctx, struct trove_call *call, const struct trove_kv *values, size_t n);
int rd_config_pending_clear(struct rd_ctx *ctx);
int rd_config_pending_patch(struct rd_ctx *ctx);

/* lifecycle.c */
int rd_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req);
int rd_start(void *self, struct trove_call *call);
int rd_stop(void *self, struct trove_call *call);
int rd_restart(void *self, struct trove_call *call);
int rd_status(void *self, struct trove_call *call, struct trove_health *out);
int rd_server_start(struct rd_ctx *ctx, struct trove_call *call, const char *const *extra_args);
int rd_server_stop(struct rd_ctx *ctx, struct trove_call *call, enum rd_shutdown mode);
int rd_require_managed(struct rd_ctx *ctx, struct trove_call *call, const char *what);

/* backup.c */
int rd_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req);
int rd_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req);
int rd_restore_install(struct rd_ctx *ctx, struct trove_call *call, const struct trove_restore_request *req);
int rd_rdb_fetch(struct rd_ctx *ctx, struct trove_call *call, struct trove_sink *sink);

/* replication.c */
int rd_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req);
int rd_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src);
int rd_repl_detach(void *self, struct trove_call *call);
int rd_repl_promote(void *self, struct trove_call *call);
int rd_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src);
int rd_repl_set_read_only(void *self, struct trove_call *call, bool read_only);
int rd_repl_position(void *self, struct trove_call *call);
int rd_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms);
int rd_repl_status(void *self, struct trove_call *call);
int rd_repl_compare(void *self, const char *a, const char *b, enum trove_order *order);
int rd_position_read(struct rd_conn *conn, char *buf, size_t len);

#define RD_FAIL(ctx, call, st, ...) ((ctx)->h->fail((call), (st), __VA_ARGS__))

#endif /* REDIS_PLUGIN_H */
