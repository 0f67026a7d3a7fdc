/*
 * server.c - the mongod process and the plugin's files: the state file
 * (set name, configuration overrides), the generated mongod.conf (rewritten
 * from settings and state before every start), the keyFile; start, stop,
 * restart, status and prepare (a one-member replica set with the admin
 * account, made through the localhost exception); and the side instance: a
 * standalone mongod on a private loopback port, logged in as __system,
 * where restores and replica-set resets happen. Steps that stop or replace
 * the server hold a lock in state_dir (another agent process may try too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mongodb.h"

/* ---- paths ------------------------------------------------------------ */

const char *mg_conf_path(struct mg_ctx *ctx, char *buf, size_t len)
{
    tps_path(buf, len, "%s/mongod.conf", ctx->s.config_dir);
    return buf;
}

const char *mg_keyfile_path(struct mg_ctx *ctx, char *buf, size_t len)
{
    tps_path(buf, len, "%s/keyfile", ctx->s.config_dir);
    return buf;
}

const char *mg_log_path(struct mg_ctx *ctx, char *buf, size_t len)
{
    if (ctx->s.log_file)
        tps_path(buf, len, "%s", ctx->s.log_file);
    else
        tps_path(buf, len, "%s/mongod.log", ctx->s.config_dir);
    return buf;
}

const char *mg_pid_path(struct mg_ctx *ctx, char *buf, size_t len)
{
    tps_path(buf, len, "%s/mongod.pid", ctx->s.config_dir);
    return buf;
}

const char *mg_state_path(struct mg_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->state_dir, name);
    return buf;
}

static const char *config_file(struct mg_ctx *ctx, const char *name, char *buf, size_t len)
{
    tps_path(buf, len, "%s/%s", ctx->s.config_dir, name);
    return buf;
}

/* A directory the plugin owns, for mongod (run_as) to use. */
static int make_dir(struct mg_ctx *ctx, struct trove_call *call, const char *path, unsigned mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot create %s: %s", path, strerror(errno));
    int e = tps_file_chown(path, ctx->s.run_as);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot give %s to %s: %s", path, ctx->s.run_as,
                               strerror(-e));
    return TROVE_OK;
}

static int write_owned(struct mg_ctx *ctx, struct trove_call *call, const char *path, const char *data, size_t len,
                       unsigned mode)
{
    int e = tps_file_write_atomic(path, data, len, mode);
    if (e == 0)
        e = tps_file_chown(path, ctx->s.run_as);
    if (e != 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    return TROVE_OK;
}

/* ---- the keyFile ------------------------------------------------------ */

void mg_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = A[v >> 18 & 63];
        out[o++] = A[v >> 12 & 63];
        out[o++] = i + 1 < n ? A[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? A[v & 63] : '=';
    }
    out[o] = '\0';
}

/* The key mongod reads from a keyFile: whitespace removed. */
static char *strip_space(const char *text)
{
    char *out = malloc(strlen(text) + 1);
    size_t o = 0;
    for (const char *p = text; out && *p; p++)
        if (!strchr(" \t\r\n\v\f", *p))
            out[o++] = *p;
    if (out)
        out[o] = '\0';
    return out;
}

static bool valid_key(const char *key)
{
    size_t n = strlen(key);
    return n >= 6 && n <= 1024 &&
           strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == n;
}

char *mg_keyfile_text(const char *secret)
{
    char *key = strip_space(secret);
    if (!key || valid_key(key))
        return key;
    mg_secret_free(key);
    struct tps_sha256 s;
    unsigned char digest[32];
    char *out = malloc(48);
    tps_sha256_init(&s);
    tps_sha256_update(&s, secret, strlen(secret));
    tps_sha256_final(&s, digest);
    if (out)
        base64(digest, sizeof(digest), out);
    explicit_bzero(digest, sizeof(digest));
    explicit_bzero(&s, sizeof(s));
    return out;
}

int mg_keyfile_write(struct mg_ctx *ctx, struct trove_call *call, const char *secret)
{
    char path[MG_PATH_MAX];
    char *key = mg_keyfile_text(secret);
    if (!key)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    struct tps_buf b = {0};
    tps_buf_addf(&b, "%s\n", key);
    mg_secret_free(key);
    int rc = tps_buf_str(&b) ? write_owned(ctx, call, mg_keyfile_path(ctx, path, sizeof(path)), b.data, b.len, 0600)
                             : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    tps_buf_wipe(&b);
    return rc;
}

char *mg_keyfile_read(struct mg_ctx *ctx, struct trove_call *call)
{
    char path[MG_PATH_MAX];
    size_t len = 0;
    char *raw = tps_file_read(mg_keyfile_path(ctx, path, sizeof(path)), 8192, &len);
    if (!raw) {
        ctx->host->fail(call, TROVE_ECONFLICT, "cannot read the keyFile %s: %s (run prepare first)", path,
                        strerror(errno));
        return NULL;
    }
    char *key = strip_space(raw);
    explicit_bzero(raw, len);
    free(raw);
    if (!key)
        ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    return key;
}

/* ---- the state file and mongod.conf ------------------------------------ */

void mg_state_free(struct mg_state *st)
{
    bson_destroy(&st->parameters);
    bson_destroy(&st->options);
    bson_destroy(&st->originals);
}

static void copy_doc(const bson_t *from, const char *key, bson_t *to)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_t sub;
    if (bson_iter_init_find(&it, from, key) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&sub, data, len)) {
            bson_copy_to(&sub, to);
            return;
        }
    }
    bson_init(to);
}

int mg_state_load(struct mg_ctx *ctx, struct trove_call *call, struct mg_state *st)
{
    char path[MG_PATH_MAX];
    size_t len = 0;
    snprintf(st->set, sizeof(st->set), "%s", ctx->default_set);
    config_file(ctx, "trove-state.json", path, sizeof(path));
    char *text = tps_file_read(path, 1 << 20, &len);
    if (!text) {
        bson_init(&st->parameters);
        bson_init(&st->options);
        bson_init(&st->originals);
        if (errno == ENOENT)
            return TROVE_OK;
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot read %s: %s", path, strerror(errno));
    }
    bson_error_t error;
    bson_t doc;
    bool ok = bson_init_from_json(&doc, text, (ssize_t)len, &error);
    free(text);
    if (!ok) {
        bson_init(&st->parameters);
        bson_init(&st->options);
        bson_init(&st->originals);
        return ctx->host->fail(call, TROVE_EINTERNAL, "%s is damaged: %s", path, error.message);
    }
    const char *set = mg_bson_str(&doc, "set");
    if (set && *set)
        snprintf(st->set, sizeof(st->set), "%s", set);
    copy_doc(&doc, "parameters", &st->parameters);
    copy_doc(&doc, "options", &st->options);
    copy_doc(&doc, "originals", &st->originals);
    bson_destroy(&doc);
    return TROVE_OK;
}

/* One mongod.conf entry: a dotted key and its rendered scalar. */
struct conf_item {
    char *key;
    char *value;
};

static int item_cmp(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)((const struct conf_item *)a)->key;
    const unsigned char *y = (const unsigned char *)((const struct conf_item *)b)->key;
    for (;; x++, y++) {   /* '.' sorts first, so each section's keys stay together */
        int cx = *x == '.' ? 1 : *x, cy = *y == '.' ? 1 : *y;
        if (cx != cy || !cx)
            return cx - cy;
    }
}

struct conf {
    struct conf_item items[128];
    size_t n;
    bool oom;
};

static void conf_add(struct conf *c, const char *key, const char *value)
{
    if (c->n == sizeof(c->items) / sizeof(c->items[0])) {
        c->oom = true;
        return;
    }
    c->items[c->n].key = strdup(key);
    c->items[c->n].value = strdup(value);
    if (!c->items[c->n].key || !c->items[c->n].value)
        c->oom = true;
    c->n++;
}

static void conf_add_quoted(struct conf *c, const char *key, const char *text)
{
    struct tps_buf b = {0};
    tps_quote_conf(&b, text, '"');
    conf_add(c, key, tps_buf_str(&b) ? b.data : "\"\"");
    tps_buf_free(&b);
}

static void conf_add_overrides(struct conf *c, const bson_t *doc, const char *prefix)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return;
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_UTF8(&it))
            continue;
        struct tps_buf key = {0}, value = {0};
        tps_buf_addf(&key, "%s%s", prefix, bson_iter_key(&it));
        mg_config_yaml(bson_iter_key(&it), bson_iter_utf8(&it, NULL), &value);
        if (tps_buf_str(&key) && tps_buf_str(&value))
            conf_add(c, key.data, value.data);
        else
            c->oom = true;
        tps_buf_free(&key);
        tps_buf_free(&value);
    }
}

/* The nested YAML of sorted dotted keys. */
static void conf_render(struct conf *c, struct tps_buf *out)
{
    qsort(c->items, c->n, sizeof(c->items[0]), item_cmp);
    const char *prev = "";
    for (size_t i = 0; i < c->n; i++) {
        const char *key = c->items[i].key;
        /* components shared with the previous key are already open */
        size_t depth = 0, k = 0;
        const char *p = prev, *q = key;
        while (*p && *q) {
            size_t lp = strcspn(p, "."), lq = strcspn(q, ".");
            if (lp != lq || strncmp(p, q, lp) || !q[lq] || !p[lp])
                break;
            p += lp + 1, q += lq + 1, depth++;
        }
        for (k = depth; strchr(q, '.'); k++) {
            size_t l = strcspn(q, ".");
            tps_buf_addf(out, "%*s%.*s:\n", (int)(2 * k), "", (int)l, q);
            q += l + 1;
        }
        tps_buf_addf(out, "%*s%s: %s\n", (int)(2 * k), "", q, c->items[i].value);
        prev = key;
    }
}

static int write_conf(struct mg_ctx *ctx, struct trove_call *call, const struct mg_state *st)
{
    char path[MG_PATH_MAX], buf[MG_PATH_MAX], port[16];
    struct conf c = {.n = 0};
    struct tps_buf bind = {0}, out = {0};
    snprintf(port, sizeof(port), "%lld", (long long)ctx->s.port);
    tps_buf_add(&bind, "127.0.0.1");
    if (strcmp(ctx->s.host, "127.0.0.1") && strcmp(ctx->s.host, "localhost"))
        tps_buf_addf(&bind, ",%s", ctx->s.host);
    conf_add(&c, "net.port", port);
    conf_add_quoted(&c, "net.bindIp", tps_buf_str(&bind) ? bind.data : "127.0.0.1");
    conf_add_quoted(&c, "storage.dbPath", ctx->s.dbpath);
    conf_add(&c, "systemLog.destination", "file");
    conf_add_quoted(&c, "systemLog.path", mg_log_path(ctx, buf, sizeof(buf)));
    conf_add(&c, "systemLog.logAppend", "true");
    conf_add_quoted(&c, "processManagement.pidFilePath", mg_pid_path(ctx, buf, sizeof(buf)));
    conf_add(&c, "security.authorization", "enabled");
    conf_add_quoted(&c, "security.keyFile", mg_keyfile_path(ctx, buf, sizeof(buf)));
    conf_add_quoted(&c, "replication.replSetName", st->set);
    conf_add_overrides(&c, &st->options, "");
    conf_add_overrides(&c, &st->parameters, "setParameter.");
    tps_buf_add(&out, "# mongod.conf, generated by the trove MongoDB plugin from its [datastore] settings and\n"
                      "# configuration overrides. It is rewritten before every start: do not edit it.\n");
    conf_render(&c, &out);
    int rc = c.oom || !tps_buf_str(&out) || !tps_buf_str(&bind)
                 ? ctx->host->fail(call, TROVE_EINTERNAL, "out of memory")
                 : write_owned(ctx, call, mg_conf_path(ctx, path, sizeof(path)), out.data, out.len, 0600);
    for (size_t i = 0; i < c.n; i++) {
        free(c.items[i].key);
        free(c.items[i].value);
    }
    tps_buf_free(&bind);
    tps_buf_free(&out);
    return rc;
}

int mg_state_save(struct mg_ctx *ctx, struct trove_call *call, const struct mg_state *st)
{
    char path[MG_PATH_MAX];
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "set", st->set);
    BSON_APPEND_DOCUMENT(&doc, "parameters", &st->parameters);
    BSON_APPEND_DOCUMENT(&doc, "options", &st->options);
    BSON_APPEND_DOCUMENT(&doc, "originals", &st->originals);
    size_t len = 0;
    char *json = bson_as_relaxed_extended_json(&doc, &len);
    bson_destroy(&doc);
    if (!json)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    int rc = write_owned(ctx, call, config_file(ctx, "trove-state.json", path, sizeof(path)), json, len, 0600);
    bson_free(json);
    return rc == TROVE_OK ? write_conf(ctx, call, st) : rc;
}

/* ---- the process ------------------------------------------------------ */

int mg_server_lock(struct mg_ctx *ctx, struct trove_call *call)
{
    char path[MG_PATH_MAX];
    int fd = tps_file_lock(mg_state_path(ctx, "server.lock", path, sizeof(path)), true);
    if (fd < 0)
        ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", path, strerror(-fd));
    return fd;
}

bool mg_server_initialised(struct mg_ctx *ctx)
{
    return !tps_dir_empty(ctx->s.dbpath);
}

static pid_t server_pid(struct mg_ctx *ctx)
{
    char path[MG_PATH_MAX];
    return tps_proc_pid(mg_pid_path(ctx, path, sizeof(path)), MG_SERVER_COMM);
}

static void mark_stopped(struct mg_ctx *ctx, bool stopped)
{
    char path[MG_PATH_MAX];
    mg_state_path(ctx, "stopped", path, sizeof(path));
    if (stopped)
        tps_file_write_atomic(path, "stopped on purpose\n", 19, 0600);
    else
        unlink(path);
}

struct probe {
    struct mg_ctx *ctx;
    int port;
};

/* hello answers (no login needed): the server accepts connections. */
static int probe_ready(void *arg)
{
    struct probe *p = arg;
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_for_host_port("127.0.0.1", (uint16_t)(p->port ? p->port : p->ctx->s.port));
    if (!uri)
        return 0;
    mongoc_uri_set_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, true);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 500);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 500);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 2000);
    mongoc_client_t *c = mongoc_client_new_from_uri_with_error(uri, &error);
    mongoc_uri_destroy(uri);
    if (!c)
        return 0;
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "hello", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, mg_any_member(), &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    mongoc_client_destroy(c);
    return ok ? 1 : 0;
}

int mg_server_start(struct mg_ctx *ctx, struct trove_call *call)
{
    if (!mg_server_initialised(ctx)) {
        struct probe probe = {ctx, 0};
        if (server_pid(ctx) > 0 && probe_ready(&probe))
            return TROVE_OK;
        return ctx->host->fail(call, TROVE_ECONFLICT, "%s holds no data: run prepare first", ctx->s.dbpath);
    }
    return mg_server_start_empty(ctx, call);
}

int mg_server_start_empty(struct mg_ctx *ctx, struct trove_call *call)
{
    char conf[MG_PATH_MAX], out[MG_PATH_MAX];
    struct probe probe = {ctx, 0};
    mark_stopped(ctx, false);
    if (server_pid(ctx) > 0 && probe_ready(&probe))
        return TROVE_OK;
    struct mg_state st;
    int rc = mg_state_load(ctx, call, &st);
    if (rc == TROVE_OK)
        rc = mg_state_save(ctx, call, &st);   /* mongod.conf from the settings and state of now */
    mg_state_free(&st);
    if (rc != TROVE_OK)
        return rc;
    const char *argv[] = {ctx->s.mongod, "--config", mg_conf_path(ctx, conf, sizeof(conf)), NULL};
    struct tps_proc spec = {.argv = argv, .run_as = ctx->s.run_as, .name = "mongod",
                            .log_file = config_file(ctx, "mongod.out", out, sizeof(out))};
    pid_t pid = 0;
    rc = tps_proc_start(ctx->host, call, &spec, &pid);
    if (rc == TROVE_OK)
        rc = tps_proc_wait_ready(ctx->host, call, pid, "mongod", out, (uint32_t)ctx->s.start_timeout * 1000,
                                 probe_ready, &probe);
    mg_status_reset(ctx);
    return rc;
}

int mg_server_stop(struct mg_ctx *ctx, struct trove_call *call)
{
    mark_stopped(ctx, true);
    mg_status_reset(ctx);
    pid_t pid = server_pid(ctx);
    if (pid <= 0)
        return TROVE_OK;
    ctx->host->log(TROVE_LOG_INFO, "mongodb: stopping mongod (pid %ld)", (long)pid);
    /* SIGTERM is mongod's clean shutdown (what its service units send). */
    return tps_proc_stop(ctx->host, call, pid, "mongod", SIGTERM, (uint32_t)ctx->s.stop_timeout * 1000, 5000);
}

int mg_start(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = mg_server_start(ctx, call);
    tps_file_unlock(lock);
    return rc == TROVE_OK ? mg_read_only_restore(ctx, call) : rc;
}

int mg_stop(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    int rc = mg_server_stop(ctx, call);
    tps_file_unlock(lock);
    return rc;
}

int mg_restart(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    ctx->host->progress(call, 10, "stopping mongod");
    int rc = mg_server_stop(ctx, call);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 50, "starting mongod");
        rc = mg_server_start(ctx, call);
    }
    tps_file_unlock(lock);
    return rc == TROVE_OK ? mg_read_only_restore(ctx, call) : rc;
}

/* ---- status ----------------------------------------------------------- */

static void health_from_member(struct mg_ctx *ctx, const bson_t *hello, const bson_t *rs, struct trove_health *out)
{
    (void)ctx;
    struct mg_optime op;
    out->state = TROVE_DB_RUNNING;
    if (!mg_bson_str(hello, "setName")) {
        bool replset = mg_bson_bool(hello, "isreplicaset");
        out->role = replset ? TROVE_ROLE_REPLICA : TROVE_ROLE_STANDALONE;
        if (replset)
            snprintf(out->message, sizeof(out->message), "not in its replica set's config (yet)");
        return;
    }
    int64_t members = 0;
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, rs, "members") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            members++;
    if (mg_bson_bool(hello, "isWritablePrimary"))
        out->role = members > 1 ? TROVE_ROLE_PRIMARY : TROVE_ROLE_STANDALONE;
    else
        out->role = TROVE_ROLE_REPLICA;
    int64_t state = mg_bson_int(rs, "myState", -1);
    if (state != 1 && state != 2 && state != -1) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "replica set member state %lld", (long long)state);
    }
    if (mg_optime_from(rs, "optimes.appliedOpTime", &op) || mg_optime_from(hello, "lastWrite.opTime", &op))
        mg_optime_format(&op, out->position, sizeof(out->position));
    int64_t term = mg_bson_int(rs, "term", op.term);
    out->term = term > 0 ? (uint64_t)term : 0;
}

/* The agent zero-fills *out and sets its size; every field written here
 * exists since 2.0. A server that is down is a state, not a failure. */
int mg_status(void *self, struct trove_call *call, struct trove_health *out)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    bson_t hello, rs;
    (void)call;
    enum mg_reach reach = mg_status_hello(ctx, &hello, &rs);
    if (reach == MG_REACH_OK)
        health_from_member(ctx, &hello, &rs, out);
    bson_destroy(&hello);
    bson_destroy(&rs);
    if (reach == MG_REACH_OK)
        return TROVE_OK;
    if (reach == MG_REACH_REFUSED) {
        out->state = TROVE_DB_RUNNING;
        snprintf(out->message, sizeof(out->message), "mongod answers but refuses the admin login (%s)",
                 ctx->s.admin_user);
    } else if (server_pid(ctx) > 0) {
        out->state = TROVE_DB_STARTING;
        snprintf(out->message, sizeof(out->message), "mongod is running but not answering");
    } else if (!mg_server_initialised(ctx)) {
        out->state = TROVE_DB_NEW;
        snprintf(out->message, sizeof(out->message), "not prepared: %s holds no data", ctx->s.dbpath);
    } else if (access(mg_state_path(ctx, "stopped", path, sizeof(path)), F_OK) == 0) {
        out->state = TROVE_DB_STOPPED;
        snprintf(out->message, sizeof(out->message), "stopped");
    } else {
        out->state = TROVE_DB_CRASHED;
        snprintf(out->message, sizeof(out->message), "mongod is not running");
    }
    return TROVE_OK;
}

/* ---- replica set bootstrap -------------------------------------------- */

int mg_wait_primary(struct mg_ctx *ctx, struct trove_call *call, uint32_t timeout_ms)
{
    uint64_t deadline = tps_now_ms() + timeout_ms;
    struct mg_target t = {.login = MG_LOGIN_NONE};
    mongoc_client_t *c;
    int rc = mg_client_open(ctx, call, &t, &c);
    if (rc != TROVE_OK)
        return rc;
    for (;;) {
        bson_t cmd = BSON_INITIALIZER, reply;
        bson_error_t error;
        BSON_APPEND_INT32(&cmd, "hello", 1);
        bool ok = mg_cmd_raw(c, "admin", &cmd, &reply, &error) && mg_bson_bool(&reply, "isWritablePrimary");
        bson_destroy(&cmd);
        bson_destroy(&reply);
        if (ok)
            break;
        if (ctx->host->cancelled(call)) {
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for mongod to become primary");
            break;
        }
        if (tps_now_ms() > deadline) {
            rc = ctx->host->fail(call, TROVE_ETIMEOUT, "mongod did not become primary within %u ms", timeout_ms);
            break;
        }
        tps_sleep_ms(50);
    }
    mongoc_client_destroy(c);
    return rc;
}

int mg_replset_initiate(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *set)
{
    char host[600];
    snprintf(host, sizeof(host), "%s:%lld", ctx->s.host, (long long)ctx->s.port);
    bson_t cmd = BSON_INITIALIZER, config, members, member, settings, reply;
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "replSetInitiate", &config);
    BSON_APPEND_UTF8(&config, "_id", set);
    BSON_APPEND_INT32(&config, "version", 1);
    BSON_APPEND_ARRAY_BEGIN(&config, "members", &members);
    BSON_APPEND_DOCUMENT_BEGIN(&members, "0", &member);
    BSON_APPEND_INT32(&member, "_id", 0);
    BSON_APPEND_UTF8(&member, "host", host);
    bson_append_document_end(&members, &member);
    bson_append_array_end(&config, &members);
    BSON_APPEND_DOCUMENT_BEGIN(&config, "settings", &settings);
    BSON_APPEND_INT32(&settings, "heartbeatIntervalMillis", (int32_t)ctx->s.heartbeat_interval_ms);
    BSON_APPEND_INT32(&settings, "electionTimeoutMillis", (int32_t)ctx->s.election_timeout_ms);
    bson_append_document_end(&config, &settings);
    bson_append_document_end(&cmd, &config);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetInitiate");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc == TROVE_OK ? mg_wait_primary(ctx, call, (uint32_t)ctx->s.start_timeout * 1000) : rc;
}

int mg_admin_ensure(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c)
{
    bson_t roles = BSON_INITIALIZER, role;
    BSON_APPEND_DOCUMENT_BEGIN(&roles, "0", &role);
    BSON_APPEND_UTF8(&role, "role", "root");
    BSON_APPEND_UTF8(&role, "db", "admin");
    bson_append_document_end(&roles, &role);
    int rc = mg_user_upsert(ctx, call, c, ctx->s.admin_user, ctx->s.admin_password, &roles);
    bson_destroy(&roles);
    return rc;
}

/* ---- the side instance ------------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int mg_side_start(struct mg_ctx *ctx, struct trove_call *call, const char *dbpath, struct mg_side *side)
{
    char port[16], log[MG_PATH_MAX], out[MG_PATH_MAX], key[MG_PATH_MAX];
    memset(side, 0, sizeof(*side));
    snprintf(side->dbpath, sizeof(side->dbpath), "%s", dbpath);
    side->port = free_port();
    if (side->port <= 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "no free loopback port for a maintenance mongod");
    snprintf(port, sizeof(port), "%d", side->port);
    tps_path(side->pid_file, sizeof(side->pid_file), "%s/side-%ld.pid", ctx->s.config_dir, (long)getpid());
    tps_path(log, sizeof(log), "%s/side-%ld.log", ctx->s.config_dir, (long)getpid());
    tps_path(out, sizeof(out), "%s/side-%ld.out", ctx->s.config_dir, (long)getpid());
    const char *argv[] = {ctx->s.mongod, "--dbpath", dbpath, "--port", port, "--bind_ip", "127.0.0.1",
                          "--keyFile", mg_keyfile_path(ctx, key, sizeof(key)), "--logpath", log, "--logappend",
                          "--pidfilepath", side->pid_file, NULL};
    struct tps_proc spec = {.argv = argv, .run_as = ctx->s.run_as, .name = "mongod (maintenance)", .log_file = out};
    int rc = tps_proc_start(ctx->host, call, &spec, &side->pid);
    struct probe probe = {ctx, side->port};
    if (rc == TROVE_OK)
        rc = tps_proc_wait_ready(ctx->host, call, side->pid, "mongod (maintenance)", out,
                                 (uint32_t)ctx->s.start_timeout * 1000, probe_ready, &probe);
    char *keytext = rc == TROVE_OK ? mg_keyfile_read(ctx, call) : NULL;
    if (rc == TROVE_OK && !keytext)
        rc = TROVE_ECONFLICT;
    if (rc == TROVE_OK) {
        struct mg_target t = {.port = side->port, .login = MG_LOGIN_SYSTEM, .password = keytext};
        rc = mg_client_open(ctx, call, &t, &side->client);
    }
    mg_secret_free(keytext);
    if (rc != TROVE_OK)
        mg_side_stop(ctx, call, side);
    return rc;
}

int mg_side_stop(struct mg_ctx *ctx, struct trove_call *call, struct mg_side *side)
{
    char path[MG_PATH_MAX];
    int rc = TROVE_OK;
    if (side->client)
        mongoc_client_destroy(side->client);
    side->client = NULL;
    pid_t pid = tps_proc_pid(side->pid_file, MG_SERVER_COMM);
    if (pid <= 0 && side->pid > 0 && tps_proc_alive(side->pid))
        pid = side->pid;
    if (pid > 0)
        rc = tps_proc_stop(ctx->host, call, pid, "mongod (maintenance)", SIGTERM, (uint32_t)ctx->s.stop_timeout * 1000,
                           5000);
    side->pid = 0;
    unlink(side->pid_file);
    static const char *const suffixes[] = {"log", "out"};
    for (size_t i = 0; i < 2; i++) {
        tps_path(path, sizeof(path), "%s/side-%ld.%s", ctx->s.config_dir, (long)getpid(), suffixes[i]);
        unlink(path);
    }
    return rc;
}

static int drop_local(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
    int rc = mg_cmd(ctx, call, c, "local", &cmd, &reply, "dropping the old replica set state (local)");
    bson_destroy(&cmd);
    bson_destroy(&reply);
    return rc;
}

int mg_replset_reset(struct mg_ctx *ctx, struct trove_call *call, const char *set)
{
    struct mg_side side;
    ctx->host->progress(call, -1, "leaving the replica set: restarting as %s", set);
    int rc = mg_server_stop(ctx, call);
    if (rc == TROVE_OK && (rc = mg_side_start(ctx, call, ctx->s.dbpath, &side)) == TROVE_OK) {
        rc = drop_local(ctx, call, side.client);
        int stop = mg_side_stop(ctx, call, &side);
        rc = rc ? rc : stop;
    }
    struct mg_state st;
    if (rc == TROVE_OK && (rc = mg_state_load(ctx, call, &st)) == TROVE_OK) {
        snprintf(st.set, sizeof(st.set), "%s", set);
        rc = mg_state_save(ctx, call, &st);
        mg_state_free(&st);
    }
    if (rc == TROVE_OK)
        rc = mg_server_start(ctx, call);
    mongoc_client_t *c = NULL;
    if (rc == TROVE_OK && (rc = mg_admin_open(ctx, call, &c)) == TROVE_OK) {
        rc = mg_replset_initiate(ctx, call, c, set);
        mongoc_client_destroy(c);
    }
    return rc;
}

/* ---- prepare ---------------------------------------------------------- */

/* A new data directory: keyFile, state with the overrides, the first start,
 * replSetInitiate and the admin account through the localhost exception. */
static int initialise(struct mg_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    char path[MG_PATH_MAX];
    int rc = make_dir(ctx, call, ctx->s.config_dir, 0700);
    if (rc == TROVE_OK)
        rc = make_dir(ctx, call, ctx->s.dbpath, 0700);
    if (rc == TROVE_OK && access(mg_keyfile_path(ctx, path, sizeof(path)), F_OK) != 0) {
        char key[65];
        if ((rc = ctx->host->random_password(key, sizeof(key))) == TROVE_OK)
            rc = mg_keyfile_write(ctx, call, key);
        explicit_bzero(key, sizeof(key));
    }
    struct mg_state st;
    if (rc == TROVE_OK && (rc = mg_state_load(ctx, call, &st)) == TROVE_OK) {
        snprintf(st.set, sizeof(st.set), "%s", ctx->default_set);
        rc = mg_config_stage(ctx, call, &st, req->overrides, req->n_overrides);
        if (rc == TROVE_OK)
            rc = mg_state_save(ctx, call, &st);
        mg_state_free(&st);
    }
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 30, "starting mongod");
        rc = mg_server_start_empty(ctx, call);
    }
    mongoc_client_t *c = NULL;
    struct mg_target t = {.login = MG_LOGIN_NONE};
    if (rc == TROVE_OK && (rc = mg_client_open(ctx, call, &t, &c)) == TROVE_OK) {
        ctx->host->progress(call, 50, "initiating replica set %s", ctx->default_set);
        rc = mg_replset_initiate(ctx, call, c, ctx->default_set);
        if (rc == TROVE_OK)
            rc = mg_admin_ensure(ctx, call, c);
        mongoc_client_destroy(c);
    }
    return rc;
}

static int prepare_objects(struct mg_ctx *ctx, struct trove_call *call, const struct trove_prepare_request *req)
{
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    ctx->host->progress(call, 80, "creating databases and users");
    if (req->root_password)
        rc = mg_root_enable_on(ctx, call, c, req->root_password, false);
    for (size_t i = 0; rc == TROVE_OK && i < req->n_databases; i++) {
        const struct trove_database *db = TROVE_AT(struct trove_database, req->databases, req->database_size, i);
        if ((rc = mg_check_db_name(ctx, call, db->name)) == TROVE_OK)
            rc = mg_database_create_on(ctx, call, c, db->name);
        if (rc == TROVE_EEXIST)
            rc = TROVE_OK;
    }
    for (size_t i = 0; rc == TROVE_OK && i < req->n_users; i++)
        rc = mg_user_create_on(ctx, call, c, TROVE_AT(struct trove_user, req->users, req->user_size, i));
    mongoc_client_destroy(c);
    return rc;
}

int mg_prepare(void *self, struct trove_call *call, const struct trove_prepare_request *req)
{
    struct mg_ctx *ctx = self;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    bool restart = false;
    int rc;
    if (!mg_server_initialised(ctx)) {
        ctx->host->progress(call, 10, "initialising %s", ctx->s.dbpath);
        rc = initialise(ctx, call, req);
    } else {
        ctx->host->progress(call, 30, "starting mongod");
        rc = mg_server_start(ctx, call);
        if (rc == TROVE_OK && req->n_overrides)
            rc = mg_config_set(ctx, call, req->overrides, req->n_overrides, false, &restart);
        if (rc == TROVE_OK && restart && (rc = mg_server_stop(ctx, call)) == TROVE_OK)
            rc = mg_server_start(ctx, call);
    }
    tps_file_unlock(lock);
    if (rc == TROVE_OK && req->restore) {
        ctx->host->progress(call, 60, "restoring the backup");
        rc = mg_backup_restore(ctx, call, req->restore);
    }
    if (rc == TROVE_OK)
        rc = prepare_objects(ctx, call, req);
    if (rc == TROVE_OK)
        ctx->host->progress(call, 100, "prepared");
    return rc;
}
