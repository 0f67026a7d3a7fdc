/*
 * replication.c - replica sets through the replication slots. Members of a
 * set share its keyFile (the cluster secret) and its users, the plugin's
 * admin account included. A new member is added by its set's primary with
 * replSetReconfig (version + 1) after this side has proved, by logging in
 * to the primary as __system with its keyFile, that the set will accept it;
 * its data is either a restored snapshot of the set (keep) or replaced by an
 * initial sync. Leaving is the reverse, then the member becomes a
 * one-member set of its own again. Promote is replSetStepUp (after
 * replSetFreeze 0, which ends a stepdown period as in mongod); demote is
 * replSetStepDown, then following the new primary; read-only steps a
 * primary down and keeps the member out of elections. Positions are the
 * applied optime, "term:secs:inc".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mongodb.h"

/* ---- small helpers ---------------------------------------------------- */

static int simple_cmd(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *name, int64_t arg,
                      bson_t *reply, const char *what)
{
    bson_t cmd = BSON_INITIALIZER, ignored;
    BSON_APPEND_INT64(&cmd, name, arg);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, reply ? reply : &ignored, what);
    bson_destroy(&cmd);
    if (!reply)
        bson_destroy(&ignored);
    return rc;
}

static void me(struct mg_ctx *ctx, char *out, size_t len)
{
    snprintf(out, len, "%s:%lld", ctx->s.host, (long long)ctx->s.port);
}

/* "host:port" into its parts. */
static bool split_host(const char *text, char *host, size_t len, int *port)
{
    const char *colon = text ? strrchr(text, ':') : NULL;
    int64_t p;
    if (!colon || colon == text || (size_t)(colon - text) >= len || !tps_parse_int(colon + 1, 1, 65535, &p))
        return false;
    snprintf(host, len, "%.*s", (int)(colon - text), text);
    *port = (int)p;
    return true;
}

static int hello(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, bson_t *reply)
{
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "hello", 1);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, reply, "hello failed");
    bson_destroy(&cmd);
    return rc;
}

static int count_members(const bson_t *doc, const char *path)
{
    bson_iter_t it, arr;
    int n = 0;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &arr) && BSON_ITER_HOLDS_ARRAY(&arr) &&
        bson_iter_recurse(&arr, &it))
        while (bson_iter_next(&it))
            n++;
    return n;
}

/* Whether a hello reply lists host among the set's members. */
static bool lists_host(const bson_t *hello, const char *host)
{
    static const char *const fields[] = {"hosts", "passives"};
    for (size_t i = 0; i < 2; i++) {
        bson_iter_t it, arr;
        if (bson_iter_init_find(&it, hello, fields[i]) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
            while (bson_iter_next(&arr))
                if (BSON_ITER_HOLDS_UTF8(&arr) && !strcmp(bson_iter_utf8(&arr, NULL), host))
                    return true;
    }
    return false;
}

static int user_target(const char *host, int port, const char *user, const char *password, struct mg_target *t)
{
    memset(t, 0, sizeof(*t));
    t->host = host;
    t->port = port;
    t->login = user ? MG_LOGIN_USER : MG_LOGIN_ADMIN;
    t->user = user;
    t->password = password;
    return TROVE_OK;
}

/* ---- credentials and snapshots ---------------------------------------- */

int mg_repl_credentials(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX], lock_path[MG_PATH_MAX], password[33];
    mg_state_path(ctx, "replication.password", path, sizeof(path));
    int lock = tps_file_lock(mg_state_path(ctx, "replication.lock", lock_path, sizeof(lock_path)), true);
    if (lock < 0)
        return ctx->host->fail(call, TROVE_EINTERNAL, "cannot lock %s: %s", lock_path, strerror(-lock));
    char *kept = tps_file_read(path, sizeof(password) - 1, NULL);
    int rc = TROVE_OK;
    if (kept) {
        snprintf(password, sizeof(password), "%s", kept);
        mg_secret_free(kept);
    } else if ((rc = ctx->host->random_password(password, sizeof(password))) == TROVE_OK) {
        int e = tps_file_write_atomic(path, password, strlen(password), 0600);
        if (e != 0)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot write %s: %s", path, strerror(-e));
    }
    mongoc_client_t *c;
    if (rc == TROVE_OK && (rc = mg_admin_open(ctx, call, &c)) == TROVE_OK) {
        /* membership changes, and reading the oplog to compare histories */
        bson_t roles = BSON_INITIALIZER, role;
        BSON_APPEND_DOCUMENT_BEGIN(&roles, "0", &role);
        BSON_APPEND_UTF8(&role, "role", "clusterAdmin");
        BSON_APPEND_UTF8(&role, "db", "admin");
        bson_append_document_end(&roles, &role);
        BSON_APPEND_DOCUMENT_BEGIN(&roles, "1", &role);
        BSON_APPEND_UTF8(&role, "role", "read");
        BSON_APPEND_UTF8(&role, "db", "local");
        bson_append_document_end(&roles, &role);
        rc = mg_user_upsert(ctx, call, c, ctx->s.replication_user, password, &roles);
        bson_destroy(&roles);
        mongoc_client_destroy(c);
        if (rc == TROVE_ECONFLICT) {   /* a secondary: the account must already work as kept here */
            struct mg_target t;
            user_target(NULL, 0, ctx->s.replication_user, password, &t);
            if (mg_client_open(ctx, call, &t, &c) == TROVE_OK) {
                mongoc_client_destroy(c);
                rc = TROVE_OK;
            } else {
                rc = ctx->host->fail(call, TROVE_ECONFLICT, "this member is not the primary and cannot set the "
                                                            "replication account's password: ask the primary");
            }
        }
    }
    tps_file_unlock(lock);
    if (rc == TROVE_OK && (rc = ctx->host->set_str(call, "user", ctx->s.replication_user)) == TROVE_OK)
        rc = ctx->host->set_str(call, "password", password);
    explicit_bzero(password, sizeof(password));
    return rc;
}

int mg_repl_snapshot(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct mg_ctx *ctx = self;
    if (req->kind != TROVE_BACKUP_FULL)
        return ctx->host->fail(call, TROVE_ENOTSUP, "a replica starts from a full backup");
    int rc = mg_repl_credentials(ctx, call);
    return rc == TROVE_OK ? mg_backup_files(ctx, call, req->sink) : rc;
}

/* ---- joining and leaving a set ---------------------------------------- */

/* The set's primary as seen from a member: a connection to it and its hello. */
static int find_primary(struct mg_ctx *ctx, struct trove_call *call, const struct mg_join *j, mongoc_client_t **out,
                        char *set, size_t setlen, char *primary, size_t plen)
{
    struct mg_target t;
    mongoc_client_t *c;
    bson_t h;
    user_target(j->host, j->port, j->user, j->password, &t);
    int rc = mg_client_open(ctx, call, &t, &c);
    if (rc != TROVE_OK)
        return rc;
    if ((rc = hello(ctx, call, c, &h)) == TROVE_OK) {
        const char *name = mg_bson_str(&h, "setName"), *p = mg_bson_str(&h, "primary");
        if (!name)
            rc = ctx->host->fail(call, TROVE_ECONFLICT, "%s:%d is not a member of a replica set", j->host, j->port);
        else if (j->want_set && strcmp(j->want_set, name))
            rc = ctx->host->fail(call, TROVE_EINVAL, "%s:%d belongs to replica set %s, not %s", j->host, j->port, name,
                                 j->want_set);
        else if (!p)
            rc = ctx->host->fail(call, TROVE_EUNAVAIL, "replica set %s has no primary now", name);
        else {
            snprintf(set, setlen, "%s", name);
            snprintf(primary, plen, "%s", p);
        }
    }
    bool is_primary = mg_bson_bool(&h, "isWritablePrimary");
    bson_destroy(&h);
    char host[512];
    int port;
    if (rc == TROVE_OK && !is_primary) {
        mongoc_client_destroy(c);
        c = NULL;
        if (!split_host(primary, host, sizeof(host), &port))
            rc = ctx->host->fail(call, TROVE_EDATASTORE, "the set names a primary \"%s\" that cannot be used", primary);
        else {
            user_target(host, port, j->user, j->password, &t);
            rc = mg_client_open(ctx, call, &t, &c);
        }
    }
    if (rc != TROVE_OK && c)
        mongoc_client_destroy(c);
    *out = rc == TROVE_OK ? c : NULL;
    return rc;
}

/* Prove the set accepts `key`: log in to its primary as __system. */
static int probe_key(struct mg_ctx *ctx, struct trove_call *call, const char *primary, const char *key)
{
    char host[512];
    int port;
    mongoc_client_t *c;
    if (!split_host(primary, host, sizeof(host), &port))
        return ctx->host->fail(call, TROVE_EDATASTORE, "cannot use the primary's address \"%s\"", primary);
    struct mg_target t = {.host = host, .port = port, .login = MG_LOGIN_SYSTEM, .password = key};
    if (mg_client_open(ctx, call, &t, &c) != TROVE_OK)
        return ctx->host->fail(call, TROVE_ECONFLICT, "the replica set's primary %s does not accept this member's "
                                                      "keyFile: the cluster secret differs (nothing was changed)",
                               primary);
    mongoc_client_destroy(c);
    return TROVE_OK;
}

/* The set's config with one member added (host) or removed (by host). */
static int reconfig(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *primary, const char *host, bool add,
                    bool *changed)
{
    bson_t cmd = BSON_INITIALIZER, reply, config, members;
    *changed = false;
    BSON_APPEND_INT32(&cmd, "replSetGetConfig", 1);
    int rc = mg_cmd(ctx, call, primary, "admin", &cmd, &reply, "replSetGetConfig failed");
    bson_destroy(&cmd);
    bson_iter_t it, cfg, m;
    if (rc != TROVE_OK || !bson_iter_init_find(&it, &reply, "config") || !bson_iter_recurse(&it, &cfg)) {
        bson_destroy(&reply);
        return rc ? rc : ctx->host->fail(call, TROVE_EDATASTORE, "replSetGetConfig returned no config");
    }
    bson_init(&cmd);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "replSetReconfig", &config);
    int64_t max_id = -1;
    bool present = false;
    uint32_t n = 0;
    while (bson_iter_next(&cfg)) {
        const char *k = bson_iter_key(&cfg);
        if (!strcmp(k, "version")) {
            BSON_APPEND_INT64(&config, "version", bson_iter_as_int64(&cfg) + 1);
        } else if (!strcmp(k, "members") && bson_iter_recurse(&cfg, &m)) {
            BSON_APPEND_ARRAY_BEGIN(&config, "members", &members);
            while (bson_iter_next(&m)) {
                bson_t mdoc;
                const uint8_t *data;
                uint32_t len;
                bson_iter_document(&m, &len, &data);
                if (!bson_init_static(&mdoc, data, len))
                    continue;
                const char *mh = mg_bson_str(&mdoc, "host");
                int64_t id = mg_bson_int(&mdoc, "_id", -1);
                max_id = id > max_id ? id : max_id;
                if (mh && !strcmp(mh, host)) {
                    present = true;
                    if (!add)
                        continue;
                }
                char key[16];
                const char *kk;
                bson_uint32_to_string(n++, &kk, key, sizeof(key));
                BSON_APPEND_DOCUMENT(&members, kk, &mdoc);
            }
            if (add && !present) {
                char key[16];
                const char *kk;
                bson_t nm;
                bson_uint32_to_string(n++, &kk, key, sizeof(key));
                BSON_APPEND_DOCUMENT_BEGIN(&members, kk, &nm);
                BSON_APPEND_INT32(&nm, "_id", (int32_t)(max_id + 1));
                BSON_APPEND_UTF8(&nm, "host", host);
                bson_append_document_end(&members, &nm);
            }
            bson_append_array_end(&config, &members);
        } else {
            bson_append_iter(&config, NULL, 0, &cfg);
        }
    }
    bson_append_document_end(&cmd, &config);
    bson_destroy(&reply);
    if (add != present) {
        *changed = true;
        rc = mg_cmd(ctx, call, primary, "admin", &cmd, &reply, "replSetReconfig failed");
        bson_destroy(&reply);
    }
    bson_destroy(&cmd);
    return rc;
}

/* This member's state in the primary's view: 2 SECONDARY, ... ; -1 absent. */
static int member_state(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *primary, const char *host,
                        char *message, size_t mlen)
{
    bson_t reply;
    if (simple_cmd(ctx, call, primary, "replSetGetStatus", 1, &reply, "replSetGetStatus failed") != TROVE_OK) {
        bson_destroy(&reply);
        return -2;
    }
    int state = -1;
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, &reply, "members") && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr)) {
            const uint8_t *data;
            uint32_t len;
            bson_t doc;
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
                continue;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&doc, data, len) || !mg_bson_str(&doc, "name") ||
                strcmp(mg_bson_str(&doc, "name"), host))
                continue;
            state = mg_bson_int(&doc, "health", 0) ? (int)mg_bson_int(&doc, "state", -1) : 8;
            const char *msg = mg_bson_str(&doc, "lastHeartbeatMessage");
            snprintf(message, mlen, "%s", msg ? msg : "");
        }
    bson_destroy(&reply);
    return state;
}

static int wait_secondary(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *primary, const char *host)
{
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.sync_timeout * 1000, next = 0;
    char message[512] = "";
    for (;;) {
        int state = member_state(ctx, call, primary, host, message, sizeof(message));
        if (state == 2)
            return TROVE_OK;
        if (ctx->host->cancelled(call))
            return ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while %s joined the set", host);
        if (tps_now_ms() > deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "%s did not become SECONDARY within %lld s (state %d%s%s)",
                                   host, (long long)ctx->s.sync_timeout, state, *message ? ": " : "", message);
        if (tps_now_ms() > next) {
            ctx->host->progress(call, -1, "waiting for %s to catch up with the set (state %d)", host, state);
            next = tps_now_ms() + 2000;
        }
        tps_sleep_ms(100);
    }
}

/* This member's user databases (an initial sync would erase them). */
static int check_empty(struct mg_ctx *ctx, struct trove_call *call)
{
    mongoc_client_t *c;
    char **names = NULL;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = mg_database_names(ctx, call, c, &names);
    mongoc_client_destroy(c);
    if (rc == TROVE_OK && names[0])
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this member holds databases (%s%s): joining a replica set "
                                                    "without a snapshot replaces its data by an initial sync; delete "
                                                    "them first, or attach with a snapshot", names[0],
                             names[1] ? ", ..." : "");
    mg_strv_free(names);
    return rc;
}

/* Restart this member as a member of `set` (data kept or emptied). Lock held. */
static int restart_into(struct mg_ctx *ctx, struct trove_call *call, const char *set, const char *secret, bool keep,
                        bool *restarted)
{
    struct mg_state st;
    int rc = mg_state_load(ctx, call, &st);
    if (rc != TROVE_OK)
        return rc;
    bool same_set = !strcmp(st.set, set);
    char *current = NULL, *wanted = NULL;
    bool new_key = false;
    if (secret) {
        current = mg_keyfile_read(ctx, call);
        wanted = mg_keyfile_text(secret);
        new_key = !current || !wanted || strcmp(current, wanted);
    }
    mg_secret_free(current);
    mg_secret_free(wanted);
    *restarted = !(keep && same_set && !new_key);
    if (*restarted) {
        ctx->host->progress(call, 30, "restarting mongod as a member of %s", set);
        rc = mg_server_stop(ctx, call);
        if (rc == TROVE_OK && new_key)
            rc = mg_keyfile_write(ctx, call, secret);
        if (rc == TROVE_OK && !keep) {   /* an initial sync starts from an empty dbPath */
            int e = tps_remove_tree(ctx->s.dbpath);
            if (e == 0 && mkdir(ctx->s.dbpath, 0700) != 0)
                e = -errno;
            if (e == 0)
                e = tps_file_chown(ctx->s.dbpath, ctx->s.run_as);
            if (e != 0)
                rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot empty %s: %s", ctx->s.dbpath, strerror(-e));
        }
        if (rc == TROVE_OK) {
            snprintf(st.set, sizeof(st.set), "%s", set);
            rc = mg_state_save(ctx, call, &st);
        }
        if (rc == TROVE_OK)
            rc = keep ? mg_server_start(ctx, call) : mg_server_start_empty(ctx, call);
    }
    mg_state_free(&st);
    return rc;
}

/* The first document of a find on db.coll (sorted by $natural when `newest`). */
static int find_one(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const char *db,
                    const char *coll, const bson_t *filter, bool newest, bson_t *out, bool *found)
{
    bson_t opts = BSON_INITIALIZER, sort;
    BSON_APPEND_INT64(&opts, "limit", 1);
    if (newest) {
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "$natural", -1);
        bson_append_document_end(&opts, &sort);
    }
    mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, &opts, mg_any_member());
    const bson_t *doc;
    *found = mongoc_cursor_next(cur, &doc);
    if (*found)
        bson_copy_to(doc, out);
    else
        bson_init(out);
    bson_error_t error;
    int rc = TROVE_OK;
    if (mongoc_cursor_error(cur, &error))
        rc = mg_fail_error(ctx, call, &error, "reading the replica set state failed");
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    bson_destroy(&opts);
    return rc;
}

static bool replset_id(const bson_t *config, const char *path, bson_oid_t *id)
{
    bson_iter_t it, sub;
    if (!bson_iter_init(&it, config) || !bson_iter_find_descendant(&it, path, &sub) || !BSON_ITER_HOLDS_OID(&sub))
        return false;
    bson_oid_copy(bson_iter_oid(&sub), id);
    return true;
}

/* Whether this member's data is a copy of the set's history: the same
 * replicaSetId (the set it was copied from), and its newest oplog entry
 * present in the primary's oplog. A member of the same set whose history
 * went elsewhere is refused: it would need a rollback. */
static int same_history(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *primary, bool *keep)
{
    mongoc_client_t *c;
    bson_t mine, last, cmd = BSON_INITIALIZER, reply, filter = BSON_INITIALIZER, entry;
    bool found_cfg = false, found_last = false, found_entry = false;
    bson_oid_t a, b;
    struct mg_optime op = {0, 0, 0};
    *keep = false;
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = find_one(ctx, call, c, "local", "system.replset", &filter, false, &mine, &found_cfg);
    if (rc == TROVE_OK)
        rc = find_one(ctx, call, c, "local", "oplog.rs", &filter, true, &last, &found_last);
    else
        bson_init(&last);
    mongoc_client_destroy(c);
    BSON_APPEND_INT32(&cmd, "replSetGetConfig", 1);
    if (rc == TROVE_OK)
        rc = mg_cmd(ctx, call, primary, "admin", &cmd, &reply, "replSetGetConfig failed");
    else
        bson_init(&reply);
    bool same_set = rc == TROVE_OK && found_cfg && replset_id(&mine, "settings.replicaSetId", &a) &&
                    replset_id(&reply, "config.settings.replicaSetId", &b) && bson_oid_equal(&a, &b);
    if (same_set && found_last) {
        bson_t wrap = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&wrap, "e", &last);
        mg_optime_from(&wrap, "e", &op);
        bson_destroy(&wrap);
        BSON_APPEND_TIMESTAMP(&filter, "ts", op.secs, op.inc);
        rc = find_one(ctx, call, primary, "local", "oplog.rs", &filter, false, &entry, &found_entry);
        if (rc == TROVE_OK && (!found_entry || mg_bson_int(&entry, "t", -1) != op.term))
            rc = ctx->host->fail(call, TROVE_ECONFLICT, "this member's history left the set's at optime %lld:%u:%u "
                                                        "(it holds writes the set does not): attach it with a "
                                                        "snapshot of the source", (long long)op.term, op.secs,
                                 op.inc);
        bson_destroy(&entry);
        *keep = rc == TROVE_OK;
    }
    bson_destroy(&cmd);
    bson_destroy(&reply);
    bson_destroy(&filter);
    bson_destroy(&mine);
    bson_destroy(&last);
    return rc;
}

int mg_replset_join(struct mg_ctx *ctx, struct trove_call *call, const struct mg_join *j)
{
    char set[128], primary_host[600], self[600];
    mongoc_client_t *primary = NULL;
    me(ctx, self, sizeof(self));
    ctx->host->progress(call, 5, "finding the primary through %s:%d", j->host, j->port);
    int rc = find_primary(ctx, call, j, &primary, set, sizeof(set), primary_host, sizeof(primary_host));
    char *key = NULL;
    if (rc == TROVE_OK) {
        key = j->secret ? mg_keyfile_text(j->secret) : mg_keyfile_read(ctx, call);
        rc = key ? probe_key(ctx, call, primary_host, key) : TROVE_EINTERNAL;
    }
    mg_secret_free(key);
    bool keep = false;
    if (rc == TROVE_OK)
        rc = same_history(ctx, call, primary, &keep);
    if (rc == TROVE_OK && !keep)
        rc = check_empty(ctx, call);
    int lock = rc == TROVE_OK ? mg_server_lock(ctx, call) : -1;
    if (rc == TROVE_OK && lock < 0)
        rc = TROVE_EINTERNAL;
    bool restarted = false, added = false;
    if (rc == TROVE_OK)
        rc = restart_into(ctx, call, set, j->secret, keep, &restarted);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 60, "adding %s to replica set %s on %s", self, set, primary_host);
        rc = reconfig(ctx, call, primary, self, true, &added);
    }
    if (rc == TROVE_OK && (rc = wait_secondary(ctx, call, primary, self)) != TROVE_OK && added) {
        bool removed;
        ctx->host->log(TROVE_LOG_WARN, "mongodb: %s did not join %s; removing it from the set again", self, set);
        reconfig(ctx, call, primary, self, false, &removed);
    }
    if (lock >= 0)
        tps_file_unlock(lock);
    if (primary)
        mongoc_client_destroy(primary);
    return rc;
}

int mg_replset_leave(struct mg_ctx *ctx, struct trove_call *call)
{
    char self[600], host[512];
    int port;
    mongoc_client_t *c, *primary = NULL;
    bson_t h, st;
    me(ctx, self, sizeof(self));
    int rc = mg_admin_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = hello(ctx, call, c, &h);
    bson_init(&st);
    if (rc == TROVE_OK && mg_bson_str(&h, "setName")) {
        bson_destroy(&st);
        rc = simple_cmd(ctx, call, c, "replSetGetStatus", 1, &st, "replSetGetStatus failed");
    }
    int members = count_members(&st, "members");
    bool is_primary = mg_bson_bool(&h, "isWritablePrimary");
    const char *p = mg_bson_str(&h, "primary");
    if (rc == TROVE_OK && members > 1 && is_primary)
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "this member is the primary of its replica set: promote another "
                                                    "member first");
    else if (rc == TROVE_OK && members > 1 && !split_host(p, host, sizeof(host), &port))
        rc = ctx->host->fail(call, TROVE_EUNAVAIL, "the replica set has no primary now to remove this member");
    else if (rc == TROVE_OK && members > 1) {
        struct mg_target t = {.host = host, .port = port, .login = MG_LOGIN_ADMIN};
        bool changed;
        if ((rc = mg_client_open(ctx, call, &t, &primary)) == TROVE_OK) {
            ctx->host->progress(call, 20, "removing %s from its replica set on %s", self, p);
            rc = reconfig(ctx, call, primary, self, false, &changed);
            mongoc_client_destroy(primary);
        }
    }
    bson_destroy(&h);
    bson_destroy(&st);
    mongoc_client_destroy(c);
    if (rc != TROVE_OK || members <= 1)
        return rc;
    int lock = mg_server_lock(ctx, call);
    if (lock < 0)
        return TROVE_EINTERNAL;
    rc = mg_replset_reset(ctx, call, ctx->default_set);
    tps_file_unlock(lock);
    return rc;
}

int mg_repl_attach(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct mg_ctx *ctx = self;
    if (!src->host || !*src->host || src->port < 1 || src->port > 65535)
        return ctx->host->fail(call, TROVE_EINVAL, "a source needs host and port");
    struct mg_join j = {src->host, (int)src->port, src->user, src->password, src->secret, NULL};
    int rc = mg_replset_join(ctx, call, &j);
    char path[MG_PATH_MAX];
    if (rc == TROVE_OK)
        unlink(mg_state_path(ctx, "read-only", path, sizeof(path)));
    return rc;
}

int mg_repl_detach(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    int rc = mg_replset_leave(ctx, call);
    if (rc == TROVE_OK)
        unlink(mg_state_path(ctx, "read-only", path, sizeof(path)));
    return rc;
}

/* ---- roles ------------------------------------------------------------ */

static int self_hello(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t **c, bson_t *h)
{
    int rc = mg_admin_open(ctx, call, c);
    if (rc != TROVE_OK) {
        bson_init(h);
        return rc;
    }
    rc = hello(ctx, call, *c, h);
    if (rc != TROVE_OK) {
        mongoc_client_destroy(*c);
        *c = NULL;
    }
    return rc;
}

static int wait_writable(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, uint32_t timeout_ms)
{
    uint64_t deadline = tps_now_ms() + timeout_ms;
    for (;;) {
        bson_t h;
        bool primary = hello(ctx, call, c, &h) == TROVE_OK && mg_bson_bool(&h, "isWritablePrimary");
        bson_destroy(&h);
        if (primary)
            return TROVE_OK;
        if (tps_now_ms() > deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "this member did not become primary within %u ms",
                                   timeout_ms);
        tps_sleep_ms(50);
    }
}

/* Members other than this one that do not answer, from replSetGetStatus. */
static int unreachable_majority(mongoc_client_t *c, bson_t *config_out)
{
    bson_t cmd = BSON_INITIALIZER, st;
    bson_error_t error;
    BSON_APPEND_INT32(&cmd, "replSetGetStatus", 1);
    bool ok = mg_cmd_raw(c, "admin", &cmd, &st, &error);
    bson_destroy(&cmd);
    int total = 0, down = 0;
    bson_iter_t it, arr;
    bson_init(config_out);
    if (ok && bson_iter_init_find(&it, &st, "members") && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr)) {
            const uint8_t *data;
            uint32_t len;
            bson_t m;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&m, data, len))
                continue;
            total++;
            if (!mg_bson_int(&m, "health", 0))
                down++;
            else if (mg_bson_str(&m, "name"))
                BSON_APPEND_UTF8(config_out, mg_bson_str(&m, "name"), "up");
        }
    bson_destroy(&st);
    return total > 0 && down * 2 >= total ? down : 0;
}

/* The last resort of a promotion: the majority is gone (a dead primary in a
 * two-member set), so keep only the members that answer, with force. */
static int force_reconfig(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const bson_t *up)
{
    bson_t cmd = BSON_INITIALIZER, reply, config, members;
    BSON_APPEND_INT32(&cmd, "replSetGetConfig", 1);
    int rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetGetConfig failed");
    bson_destroy(&cmd);
    bson_iter_t it, cfg, m;
    if (rc != TROVE_OK || !bson_iter_init_find(&it, &reply, "config") || !bson_iter_recurse(&it, &cfg)) {
        bson_destroy(&reply);
        return rc ? rc : ctx->host->fail(call, TROVE_EDATASTORE, "replSetGetConfig returned no config");
    }
    bson_init(&cmd);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "replSetReconfig", &config);
    uint32_t n = 0;
    while (bson_iter_next(&cfg)) {
        if (strcmp(bson_iter_key(&cfg), "members") || !bson_iter_recurse(&cfg, &m)) {
            if (!strcmp(bson_iter_key(&cfg), "version"))
                BSON_APPEND_INT64(&config, "version", bson_iter_as_int64(&cfg) + 1);
            else
                bson_append_iter(&config, NULL, 0, &cfg);
            continue;
        }
        BSON_APPEND_ARRAY_BEGIN(&config, "members", &members);
        while (bson_iter_next(&m)) {
            const uint8_t *data;
            uint32_t len;
            bson_t mdoc;
            bson_iter_t f;
            bson_iter_document(&m, &len, &data);
            if (!bson_init_static(&mdoc, data, len) || !mg_bson_str(&mdoc, "host") ||
                !bson_iter_init_find(&f, up, mg_bson_str(&mdoc, "host")))
                continue;
            char key[16];
            const char *k;
            bson_uint32_to_string(n++, &k, key, sizeof(key));
            BSON_APPEND_DOCUMENT(&members, k, &mdoc);
        }
        bson_append_array_end(&config, &members);
    }
    bson_append_document_end(&cmd, &config);
    BSON_APPEND_BOOL(&cmd, "force", true);
    bson_destroy(&reply);
    ctx->host->log(TROVE_LOG_WARN, "mongodb: most of the replica set is unreachable; reconfiguring with force to "
                                   "the %u members that answer", n);
    rc = mg_cmd(ctx, call, c, "admin", &cmd, &reply, "replSetReconfig (force) failed");
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

int mg_repl_promote(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    mongoc_client_t *c;
    bson_t h;
    int rc = self_hello(ctx, call, &c, &h);
    uint32_t wait = (uint32_t)ctx->s.election_timeout_ms * 3;
    if (rc == TROVE_OK && mg_bson_bool(&h, "isWritablePrimary")) {
        bson_destroy(&h);
        mongoc_client_destroy(c);
        unlink(mg_state_path(ctx, "read-only", path, sizeof(path)));
        return TROVE_OK;
    }
    if (rc == TROVE_OK && !mg_bson_bool(&h, "secondary"))
        rc = ctx->host->fail(call, TROVE_ECONFLICT, "only a SECONDARY member can be promoted");
    bson_destroy(&h);
    if (rc != TROVE_OK) {
        if (c)
            mongoc_client_destroy(c);
        return rc;
    }
    unlink(mg_state_path(ctx, "read-only", path, sizeof(path)));
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_INT32(&cmd, "replSetFreeze", 0);   /* ends a stepdown period, as in mongod */
    mg_cmd_raw(c, "admin", &cmd, &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    /* Stand for election; when the votes cannot be had because most of
     * the set is gone (as heartbeats soon show), keep the members that
     * answer instead. */
    uint64_t deadline = tps_now_ms() + wait;
    for (;;) {
        bson_init(&cmd);
        BSON_APPEND_INT32(&cmd, "replSetStepUp", 1);
        bool up = mg_cmd_raw(c, "admin", &cmd, &reply, &error);
        bson_destroy(&cmd);
        bson_destroy(&reply);
        if (up) {
            rc = wait_writable(ctx, call, c, wait);
            break;
        }
        bson_t alive;
        bool gone = unreachable_majority(c, &alive);
        if (gone && (rc = force_reconfig(ctx, call, c, &alive)) == TROVE_OK)
            rc = wait_writable(ctx, call, c, wait);
        bson_destroy(&alive);
        if (gone)
            break;
        if (tps_now_ms() > deadline || ctx->host->cancelled(call)) {
            rc = mg_fail_error(ctx, call, &error, "replSetStepUp failed");
            break;
        }
        tps_sleep_ms(200);
    }
    mongoc_client_destroy(c);
    return rc;
}

static int step_down(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, int64_t secs, bool force)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_INT64(&cmd, "replSetStepDown", secs);
    /* forced only when alone: there is no secondary to wait for */
    BSON_APPEND_INT32(&cmd, "secondaryCatchUpPeriodSecs", force ? 0 : 10);
    if (force)
        BSON_APPEND_BOOL(&cmd, "force", true);
    bool ok = mg_cmd_raw(c, "admin", &cmd, &reply, &error);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    /* mongod closes connections as it steps down: a network error after the
     * command was sent is the step down happening. */
    if (ok || error.domain == MONGOC_ERROR_STREAM)
        return TROVE_OK;
    return mg_fail_error(ctx, call, &error, "replSetStepDown failed");
}

/* Read-only: a primary steps down for a year (forced when it is alone);
 * a secondary is frozen as long, so it never stands for election. */
static int apply_read_only(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, const bson_t *h)
{
    if (mg_bson_bool(h, "isWritablePrimary")) {
        int hosts = count_members(h, "hosts") + count_members(h, "passives");
        return step_down(ctx, call, c, MG_READ_ONLY_SECS, hosts <= 1);
    }
    if (mg_bson_bool(h, "secondary"))
        return simple_cmd(ctx, call, c, "replSetFreeze", MG_READ_ONLY_SECS, NULL, "replSetFreeze failed");
    return ctx->host->fail(call, TROVE_ECONFLICT, "this member is neither primary nor secondary now");
}

int mg_repl_set_read_only(void *self, struct trove_call *call, bool read_only)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    mongoc_client_t *c;
    bson_t h;
    int rc = self_hello(ctx, call, &c, &h);
    if (rc != TROVE_OK) {
        bson_destroy(&h);
        return rc;
    }
    mg_state_path(ctx, "read-only", path, sizeof(path));
    if (read_only) {
        rc = apply_read_only(ctx, call, c, &h);
        if (rc == TROVE_OK)
            tps_file_write_atomic(path, "read-only\n", 10, 0600);
    } else {
        unlink(path);
        if (mg_bson_bool(&h, "secondary"))   /* a lone member then elects itself again */
            rc = simple_cmd(ctx, call, c, "replSetFreeze", 0, NULL, "replSetFreeze failed");
    }
    bson_destroy(&h);
    mongoc_client_destroy(c);
    return rc;
}

int mg_read_only_restore(struct mg_ctx *ctx, struct trove_call *call)
{
    char path[MG_PATH_MAX];
    if (access(mg_state_path(ctx, "read-only", path, sizeof(path)), F_OK) != 0)
        return TROVE_OK;
    uint64_t deadline = tps_now_ms() + (uint64_t)ctx->s.election_timeout_ms * 3;
    for (;;) {   /* a restarted member settles as PRIMARY or SECONDARY first */
        mongoc_client_t *c;
        bson_t h;
        int rc = self_hello(ctx, call, &c, &h);
        bool settled = rc == TROVE_OK && (mg_bson_bool(&h, "isWritablePrimary") || mg_bson_bool(&h, "secondary"));
        if (settled)
            rc = apply_read_only(ctx, call, c, &h);
        bson_destroy(&h);
        if (c)
            mongoc_client_destroy(c);
        if (settled || rc != TROVE_OK)
            return rc;
        if (tps_now_ms() > deadline)
            return ctx->host->fail(call, TROVE_ETIMEOUT, "the member did not settle to apply read-only");
        tps_sleep_ms(100);
    }
}

int mg_repl_demote(void *self, struct trove_call *call, const struct trove_replication_source *src)
{
    struct mg_ctx *ctx = self;
    char path[MG_PATH_MAX];
    if (!src->host || !*src->host || src->port < 1 || src->port > 65535)
        return ctx->host->fail(call, TROVE_EINVAL, "a source needs host and port");
    struct mg_target t;
    user_target(src->host, (int)src->port, src->user, src->password, &t);
    mongoc_client_t *c, *s = NULL;
    bson_t h, sh;
    int rc = self_hello(ctx, call, &c, &h);
    bson_init(&sh);
    if (rc == TROVE_OK && (rc = mg_client_open(ctx, call, &t, &s)) == TROVE_OK) {
        bson_destroy(&sh);
        rc = hello(ctx, call, s, &sh);
    }
    const char *mine = mg_bson_str(&h, "setName"), *theirs = mg_bson_str(&sh, "setName");
    char self_host[600];
    me(ctx, self_host, sizeof(self_host));
    bool same = rc == TROVE_OK && mine && theirs && !strcmp(mine, theirs) && lists_host(&sh, self_host);
    if (rc == TROVE_OK && same && mg_bson_bool(&h, "isWritablePrimary")) {
        ctx->host->progress(call, 20, "stepping down");
        rc = step_down(ctx, call, c, 60, false);
    }
    if (rc == TROVE_OK && same && !mg_bson_bool(&sh, "isWritablePrimary")) {   /* hand over to src */
        bson_t cmd = BSON_INITIALIZER, reply;
        bson_error_t error;
        BSON_APPEND_INT32(&cmd, "replSetFreeze", 0);
        mg_cmd_raw(s, "admin", &cmd, &reply, &error);
        bson_destroy(&cmd);
        bson_destroy(&reply);
        bson_init(&cmd);
        BSON_APPEND_INT32(&cmd, "replSetStepUp", 1);
        mg_cmd_raw(s, "admin", &cmd, &reply, &error);
        bson_destroy(&cmd);
        bson_destroy(&reply);
        rc = wait_writable(ctx, call, s, (uint32_t)ctx->s.election_timeout_ms * 3);
    }
    bson_destroy(&h);
    bson_destroy(&sh);
    if (s)
        mongoc_client_destroy(s);
    if (rc == TROVE_OK && same) {   /* follow: an ordinary, electable secondary again */
        simple_cmd(ctx, call, c, "replSetFreeze", 0, NULL, "replSetFreeze failed");
        rc = TROVE_OK;
        unlink(mg_state_path(ctx, "read-only", path, sizeof(path)));
    }
    if (c)
        mongoc_client_destroy(c);
    if (rc != TROVE_OK || same)
        return rc;
    /* Another set: join it (which needs an empty member or a snapshot). */
    struct mg_join j = {src->host, (int)src->port, src->user, src->password, src->secret, NULL};
    return mg_replset_join(ctx, call, &j);
}

/* ---- positions -------------------------------------------------------- */

/* replSetGetStatus on c (a new admin connection when NULL) and its applied optime. */
static int applied(struct mg_ctx *ctx, struct trove_call *call, mongoc_client_t *c, struct mg_optime *o,
                   bson_t *status)
{
    mongoc_client_t *own = NULL;
    int rc = c ? TROVE_OK : mg_admin_open(ctx, call, &own);
    if (rc != TROVE_OK) {
        bson_init(status);
        return rc;
    }
    rc = simple_cmd(ctx, call, c ? c : own, "replSetGetStatus", 1, status, "replSetGetStatus failed");
    if (own)
        mongoc_client_destroy(own);
    if (rc == TROVE_OK && !mg_optime_from(status, "optimes.appliedOpTime", o))
        rc = ctx->host->fail(call, TROVE_EDATASTORE, "replSetGetStatus reports no applied optime");
    return rc;
}

int mg_repl_position(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    struct mg_optime o;
    bson_t st;
    char text[96];
    int rc = applied(ctx, call, NULL, &o, &st);
    bson_destroy(&st);
    if (rc != TROVE_OK)
        return rc;
    mg_optime_format(&o, text, sizeof(text));
    return ctx->host->set_str(call, "position", text);
}

int mg_repl_wait(void *self, struct trove_call *call, const char *position, uint32_t timeout_ms)
{
    struct mg_ctx *ctx = self;
    struct mg_optime want, have;
    char text[96] = "?";
    if (!mg_optime_parse(position, &want))
        return ctx->host->fail(call, TROVE_EINVAL, "\"%s\" is not a MongoDB position (term:seconds:increment)",
                               position);
    uint64_t deadline = tps_now_ms() + timeout_ms;
    mongoc_client_t *c;
    int rc = mg_admin_open(ctx, call, &c);
    while (rc == TROVE_OK) {   /* one connection for the whole wait */
        bson_t st;
        rc = applied(ctx, call, c, &have, &st);
        bson_destroy(&st);
        if (rc != TROVE_OK || mg_optime_cmp(&have, &want) >= 0)
            break;
        mg_optime_format(&have, text, sizeof(text));
        if (ctx->host->cancelled(call))
            rc = ctx->host->fail(call, TROVE_ECANCELLED, "cancelled while waiting for position %s", position);
        else if (tps_now_ms() >= deadline)
            rc = ctx->host->fail(call, TROVE_ETIMEOUT, "position %s not reached within %u ms (at %s)", position,
                                 timeout_ms, text);
        else
            tps_sleep_ms(50);
    }
    if (c)
        mongoc_client_destroy(c);
    return rc;
}

int mg_repl_status(void *self, struct trove_call *call)
{
    struct mg_ctx *ctx = self;
    struct mg_optime o;
    bson_t st;
    char text[96], host[512];
    int port = 0, rc = applied(ctx, call, NULL, &o, &st);
    if (rc != TROVE_OK) {
        bson_destroy(&st);
        return rc;
    }
    int64_t state = mg_bson_int(&st, "myState", -1);
    int members = count_members(&st, "members");
    const char *role = state == 1 ? (members > 1 ? "primary" : "standalone") : "replica";
    const char *source = mg_bson_str(&st, "syncSourceHost");
    mg_optime_format(&o, text, sizeof(text));
    const struct trove_host *h = ctx->host;
    if ((rc = h->set_str(call, "role", role)) == TROVE_OK && (rc = h->set_str(call, "position", text)) == TROVE_OK &&
        source && *source && split_host(source, host, sizeof(host), &port) &&
        (rc = h->set_str(call, "source_host", host)) == TROVE_OK)
        rc = h->set_int(call, "source_port", port);
    if (rc == TROVE_OK) {
        static const char *const names[] = {"STARTUP", "PRIMARY", "SECONDARY", "RECOVERING", "?", "STARTUP2",
                                            "UNKNOWN", "ARBITER", "DOWN", "ROLLBACK", "REMOVED"};
        rc = h->set_str(call, "apply_state", state >= 0 && state <= 10 ? names[state] : "UNKNOWN");
    }
    bson_destroy(&st);
    return rc;
}
