/*
 * kvd.c - trove-example-kvd, the example datastore's server: a small
 * key-value store kept in files under its data directory, with users and
 * grants, databases with a key limit, parameters, a copy-based replica
 * follow and cluster membership guarded by a shared secret. It exists so the
 * example plugin has a real engine to manage and test against. It is
 * single-threaded, holds everything in memory, rewrites its files atomically
 * after every change, and a slow peer delays everyone: an example, not a
 * database.
 *
 *   trove-example-kvd --datadir DIR --init
 *   trove-example-kvd --datadir DIR --port N [--bind ADDR]
 *
 * The admin account comes from the environment (KVD_ADMIN_USER,
 * KVD_ADMIN_PASSWORD): created or reset by --init and at every start, so a
 * data directory restored from another server still admits its manager.
 * The protocol is in proto.h; the commands are listed at dispatch() below.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define MAX_CLIENTS 64
#define PEER_TIMEOUT_MS 2000

enum role { ROLE_NORMAL, ROLE_ADMIN, ROLE_REPLICATION };
static const char *const role_names[] = {"normal", "admin", "replication"};

struct kvdb { char *name; int64_t max_keys; };
struct kvpair { char *db, *key, *value; };
struct kvuser { char *name; char salt[33]; char hash[65]; enum role role; char *dbs; /* comma list */ };
struct member { char *host; int port; };

/* A parameter. What runs now is in struct server; the config file holds overrides. */
struct param { const char *name; int64_t min, max, fallback; bool dynamic; };

static const struct param params[] = {
    {"max_value_bytes", 1, 1048576, 65536, true},
    {"sync_interval_ms", 10, 60000, 100, true},
    {"log_writes", 0, 1, 0, true},
    {"listen_backlog", 1, 4096, 64, false},
};
#define N_PARAMS (sizeof(params) / sizeof(params[0]))

struct client {
    int fd;
    struct kv_reader in;
    const struct kvuser *user;   /* NULL until AUTH; points into users (revalidated by name) */
    char user_name[128];
};

struct server {
    const char *datadir;
    const char *bind;
    int port;
    struct kvdb *dbs;
    size_t n_dbs;
    struct kvpair *kvs;
    size_t n_kvs;
    struct kvuser *users;
    size_t n_users;
    uint64_t seq, term;
    bool read_only, served_replica, link_up, stop;
    char *src_host, *src_user, *src_pass;
    int src_port;
    uint64_t next_sync;
    char *cluster_name, *cluster_secret;
    struct member *members;
    size_t n_members;
    int64_t values[N_PARAMS];   /* of params[], as running now */
    bool sync_fresh;     /* a sync's first row replaces the data */
    struct client clients[MAX_CLIENTS];
};

static volatile sig_atomic_t stop_signal;

/* ------------------------------------------------------------ small helpers */

static void say(const char *fmt, ...) TROVE_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    printf("%s kvd: ", stamp);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        say("out of memory");
        exit(70);
    }
    return d;
}

static void *grow(void *p, size_t n, size_t size)
{
    void *q = realloc(p, (n + 1) * size);
    if (!q) {
        say("out of memory");
        exit(70);
    }
    return q;
}

static const char *path_of(const struct server *s, const char *name)
{
    static char path[4][4096];
    static int next;
    next = (next + 1) % 4;
    snprintf(path[next], sizeof(path[next]), "%s/%s", s->datadir, name);
    return path[next];
}

static bool db_name_ok(const char *name)
{
    return tps_name_ok(name, 64, "-", false);
}

static bool same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na && i < nb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static const struct param *param_find(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        if (!strcmp(params[i].name, name))
            return &params[i];
    return NULL;
}

static int64_t *param_value(struct server *s, const struct param *p)
{
    return &s->values[p - params];
}

static int64_t setting(struct server *s, const char *name)
{
    return *param_value(s, param_find(name));
}

/* ------------------------------------------------------------ files */

static void write_or_die(const char *path, struct tps_buf *b, unsigned mode)
{
    const char *text = tps_buf_str(b);
    int rc = text ? tps_file_write_atomic(path, text, b->len, mode) : -ENOMEM;
    if (rc != 0) {
        say("cannot write %s: %s", path, strerror(-rc));
        exit(74);
    }
}

static void store_text(const struct server *s, struct tps_buf *b)
{
    tps_buf_addf(b, "kvstore 1\nseq %llu\nterm %llu\n", (unsigned long long)s->seq, (unsigned long long)s->term);
    for (size_t i = 0; i < s->n_dbs; i++) {
        char max[24];
        snprintf(max, sizeof(max), "%lld", (long long)s->dbs[i].max_keys);
        const char *t[] = {"db", s->dbs[i].name, max};
        kv_line(b, t, 3);
    }
    for (size_t i = 0; i < s->n_kvs; i++) {
        const char *t[] = {"kv", s->kvs[i].db, s->kvs[i].key, s->kvs[i].value};
        kv_line(b, t, 4);
    }
}

static void save_store(const struct server *s)
{
    struct tps_buf b = {0};
    store_text(s, &b);
    write_or_die(path_of(s, "store"), &b, 0600);
    tps_buf_free(&b);
}

static void save_users(const struct server *s)
{
    struct tps_buf b = {0};
    for (size_t i = 0; i < s->n_users; i++) {
        const struct kvuser *u = &s->users[i];
        const char *t[] = {"user", u->name, u->salt, u->hash, role_names[u->role], u->dbs};
        kv_line(&b, t, 6);
    }
    write_or_die(path_of(s, "users"), &b, 0600);
    tps_buf_wipe(&b);
}

static void save_replication(const struct server *s)
{
    struct tps_buf b = {0};
    tps_buf_addf(&b, "read_only %d\n", s->read_only ? 1 : 0);
    if (s->src_host) {
        char port[16];
        snprintf(port, sizeof(port), "%d", s->src_port);
        const char *t[] = {"source", s->src_host, port, s->src_user, s->src_pass};
        kv_line(&b, t, 5);
    }
    write_or_die(path_of(s, "replication"), &b, 0600);
    tps_buf_wipe(&b);
}

static void save_cluster(const struct server *s)
{
    if (!s->cluster_name) {
        unlink(path_of(s, "cluster"));
        unlink(path_of(s, "cluster.key"));
        return;
    }
    struct tps_buf b = {0}, key = {0};
    const char *t[] = {"name", s->cluster_name};
    kv_line(&b, t, 2);
    for (size_t i = 0; i < s->n_members; i++) {
        char port[16];
        snprintf(port, sizeof(port), "%d", s->members[i].port);
        const char *m[] = {"member", s->members[i].host, port};
        kv_line(&b, m, 3);
    }
    tps_buf_add(&key, s->cluster_secret);
    write_or_die(path_of(s, "cluster.key"), &key, 0600);
    write_or_die(path_of(s, "cluster"), &b, 0600);
    tps_buf_free(&b);
    tps_buf_wipe(&key);
}

static void save_config(const struct server *s, const char *name, const char *value)
{
    size_t len = 0;
    char *old = tps_file_read(path_of(s, "config"), 1 << 20, &len);
    struct tps_buf b = {0};
    for (char *line = old ? strtok(old, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        size_t n = strcspn(line, " ");
        if (!(name && strlen(name) == n && !strncmp(line, name, n)))
            tps_buf_addf(&b, "%s\n", line);
    }
    if (name)
        tps_buf_addf(&b, "%s %s\n", name, value);
    write_or_die(path_of(s, "config"), &b, 0600);
    tps_buf_free(&b);
    free(old);
}

/* Read a file of token lines, calling fn for each; false on a bad line. */
static bool load_lines(const struct server *s, const char *name, bool (*fn)(struct server *, char **, int),
                       bool required)
{
    char *text = tps_file_read(path_of(s, name), 1u << 30, NULL);
    if (!text)
        return !required && errno == ENOENT;
    bool ok = true;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save)) {
        char *tok[KV_TOKENS_MAX];
        int n = kv_split(line, tok);
        ok = n > 0 && fn((struct server *)s, tok, n);
        if (!ok)
            say("%s: a bad line", name);
    }
    free(text);
    return ok;
}

static void add_db(struct server *s, const char *name, int64_t max_keys)
{
    s->dbs = grow(s->dbs, s->n_dbs, sizeof(*s->dbs));
    s->dbs[s->n_dbs++] = (struct kvdb){xstrdup(name), max_keys};
}

static void add_kv(struct server *s, const char *db, const char *key, const char *value)
{
    s->kvs = grow(s->kvs, s->n_kvs, sizeof(*s->kvs));
    s->kvs[s->n_kvs++] = (struct kvpair){xstrdup(db), xstrdup(key), xstrdup(value)};
}

static bool store_line(struct server *s, char **t, int n)
{
    if (n == 2 && !strcmp(t[0], "kvstore"))
        return !strcmp(t[1], "1");
    if (n == 2 && !strcmp(t[0], "seq"))
        return (s->seq = strtoull(t[1], NULL, 10)), true;
    if (n == 2 && !strcmp(t[0], "term"))
        return (s->term = strtoull(t[1], NULL, 10)), true;
    if (n == 3 && !strcmp(t[0], "db"))
        return add_db(s, t[1], atoll(t[2])), true;
    if (n == 4 && !strcmp(t[0], "kv"))
        return add_kv(s, t[1], t[2], t[3]), true;
    return false;
}

static bool user_line(struct server *s, char **t, int n)
{
    if (n != 6 || strcmp(t[0], "user") || strlen(t[2]) > 32 || strlen(t[3]) > 64)
        return false;
    s->users = grow(s->users, s->n_users, sizeof(*s->users));
    struct kvuser *u = &s->users[s->n_users++];
    memset(u, 0, sizeof(*u));
    u->name = xstrdup(t[1]);
    snprintf(u->salt, sizeof(u->salt), "%s", t[2]);
    snprintf(u->hash, sizeof(u->hash), "%s", t[3]);
    u->role = !strcmp(t[4], "admin") ? ROLE_ADMIN : !strcmp(t[4], "replication") ? ROLE_REPLICATION : ROLE_NORMAL;
    u->dbs = xstrdup(t[5]);
    return true;
}

static bool replication_line(struct server *s, char **t, int n)
{
    if (n == 2 && !strcmp(t[0], "read_only"))
        return (s->read_only = !strcmp(t[1], "1")), true;
    if (n == 5 && !strcmp(t[0], "source")) {
        s->src_host = xstrdup(t[1]);
        s->src_port = atoi(t[2]);
        s->src_user = xstrdup(t[3]);
        s->src_pass = xstrdup(t[4]);
        return true;
    }
    return false;
}

static void add_member(struct server *s, const char *host, int port)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (!strcmp(s->members[i].host, host) && s->members[i].port == port)
            return;
    s->members = grow(s->members, s->n_members, sizeof(*s->members));
    s->members[s->n_members++] = (struct member){xstrdup(host), port};
}

static bool cluster_line(struct server *s, char **t, int n)
{
    if (n == 2 && !strcmp(t[0], "name"))
        return (s->cluster_name = xstrdup(t[1])), true;
    if (n == 3 && !strcmp(t[0], "member"))
        return add_member(s, t[1], atoi(t[2])), true;
    return false;
}

static bool config_line(struct server *s, char **t, int n)
{
    const struct param *p = n == 2 ? param_find(t[0]) : NULL;
    int64_t v;
    if (p && tps_parse_int(t[1], p->min, p->max, &v))
        *param_value(s, p) = v;
    return true;   /* an unknown or bad override is ignored, as the plugin validated it */
}

/* ------------------------------------------------------------ users */

static void hash_password(const char *salt, const char *password, char out[65])
{
    struct tps_buf b = {0};
    tps_buf_add(&b, salt);
    tps_buf_add(&b, password);
    tps_sha256_hex(b.data ? b.data : "", b.len, out);
    tps_buf_wipe(&b);
}

static void new_salt(char out[33])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        say("getrandom failed");
        exit(71);
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static struct kvuser *user_find(struct server *s, const char *name)
{
    for (size_t i = 0; i < s->n_users; i++)
        if (!strcmp(s->users[i].name, name))
            return &s->users[i];
    return NULL;
}

static void user_set_password(struct kvuser *u, const char *password)
{
    new_salt(u->salt);
    hash_password(u->salt, password, u->hash);
}

static struct kvuser *user_add(struct server *s, const char *name, const char *password, enum role role)
{
    s->users = grow(s->users, s->n_users, sizeof(*s->users));
    struct kvuser *u = &s->users[s->n_users++];
    memset(u, 0, sizeof(*u));
    u->name = xstrdup(name);
    u->role = role;
    u->dbs = xstrdup("");
    user_set_password(u, password);
    return u;
}

static bool user_has_db(const struct kvuser *u, const char *db)
{
    size_t n = strlen(db);
    for (const char *p = u->dbs; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, db, n))
            return true;
        p += len + (p[len] ? 1 : 0);
    }
    return false;
}

static void user_set_db(struct kvuser *u, const char *db, bool on)
{
    struct tps_buf b = {0};
    size_t n = strlen(db);
    for (const char *p = u->dbs; *p;) {
        size_t len = strcspn(p, ",");
        if (!(len == n && !strncmp(p, db, n))) {
            if (b.len)
                tps_buf_add(&b, ",");
            tps_buf_addn(&b, p, len);
        }
        p += len + (p[len] ? 1 : 0);
    }
    if (on) {
        if (b.len)
            tps_buf_add(&b, ",");
        tps_buf_add(&b, db);
    }
    free(u->dbs);
    u->dbs = xstrdup(tps_buf_str(&b));
    tps_buf_free(&b);
}

static void ensure_admin(struct server *s)
{
    const char *name = getenv("KVD_ADMIN_USER"), *pw = getenv("KVD_ADMIN_PASSWORD");
    if (!name || !*name || !pw || !*pw)
        return;
    struct kvuser *u = user_find(s, name);
    if (!u)
        u = user_add(s, name, pw, ROLE_ADMIN);
    u->role = ROLE_ADMIN;
    user_set_password(u, pw);
    save_users(s);
    unsetenv("KVD_ADMIN_PASSWORD");
}

/* ------------------------------------------------------------ replies */

static void reply(struct client *c, const char *const *tokens, size_t n)
{
    struct tps_buf b = {0};
    kv_line(&b, tokens, n);
    if (tps_buf_str(&b))
        kv_send(c->fd, b.data, b.len, PEER_TIMEOUT_MS);
    tps_buf_free(&b);
}

static void ok(struct client *c) { reply(c, (const char *[]){"OK"}, 1); }
static void ok1(struct client *c, const char *a) { reply(c, (const char *[]){"OK", a}, 2); }

static void err(struct client *c, const char *code, const char *fmt, ...) TROVE_PRINTF(3, 4);
static void err(struct client *c, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(c, (const char *[]){"ERR", code, msg}, 3);
}

static void send_store_rows(const struct server *s, struct client *c)
{
    struct tps_buf text = {0}, out = {0};
    store_text(s, &text);
    for (char *line = text.data ? strtok(text.data, "\n") : NULL; line; line = strtok(NULL, "\n"))
        tps_buf_addf(&out, "ROW %s\n", line);
    if (tps_buf_str(&out))
        kv_send(c->fd, out.data, out.len, PEER_TIMEOUT_MS);
    tps_buf_free(&text);
    tps_buf_free(&out);
}

/* ------------------------------------------------------------ data */

static struct kvdb *db_find(struct server *s, const char *name)
{
    for (size_t i = 0; i < s->n_dbs; i++)
        if (!strcmp(s->dbs[i].name, name))
            return &s->dbs[i];
    return NULL;
}

static ssize_t kv_find(struct server *s, const char *db, const char *key)
{
    for (size_t i = 0; i < s->n_kvs; i++)
        if (!strcmp(s->kvs[i].db, db) && !strcmp(s->kvs[i].key, key))
            return (ssize_t)i;
    return -1;
}

static size_t db_keys(struct server *s, const char *db)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_kvs; i++)
        n += !strcmp(s->kvs[i].db, db);
    return n;
}

static void kv_remove(struct server *s, size_t i)
{
    free(s->kvs[i].db), free(s->kvs[i].key), free(s->kvs[i].value);
    s->kvs[i] = s->kvs[--s->n_kvs];
}

static void clear_data(struct server *s)
{
    while (s->n_kvs)
        kv_remove(s, s->n_kvs - 1);
    for (size_t i = 0; i < s->n_dbs; i++)
        free(s->dbs[i].name);
    s->n_dbs = 0;
}

static bool may_use(const struct client *c, const char *db)
{
    return c->user->role == ROLE_ADMIN || (c->user->role == ROLE_NORMAL && user_has_db(c->user, db));
}

static void wrote(struct server *s, const char *what, const char *db, const char *key)
{
    s->seq++;
    save_store(s);
    if (setting(s, "log_writes")) {
        FILE *f = fopen(path_of(s, "writes.log"), "ae");
        if (f) {
            struct tps_buf b = {0};
            const char *t[] = {what, db, key};
            kv_line(&b, t, 3);
            fprintf(f, "%llu %s", (unsigned long long)s->seq, tps_buf_str(&b) ? b.data : "\n");
            fclose(f);
            tps_buf_free(&b);
        }
    }
}

static bool writable(struct server *s, struct client *c)
{
    if (s->src_host || s->read_only) {
        err(c, "readonly", "this server is read-only%s", s->src_host ? " (a replica)" : "");
        return false;
    }
    return true;
}

static void cmd_data(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    if (!strcmp(cmd, "SCAN") && n == 2) {
        if (!may_use(c, t[1]))
            return err(c, "denied", "no access to database %s", t[1]);
        for (size_t i = 0; i < s->n_kvs; i++)
            if (!strcmp(s->kvs[i].db, t[1]))
                reply(c, (const char *[]){"ROW", s->kvs[i].key, s->kvs[i].value}, 3);
        return ok(c);
    }
    if (n < 3 || !may_use(c, t[1]))
        return n < 3 ? err(c, "invalid", "%s needs a database and a key", cmd)
                     : err(c, "denied", "no access to database %s", t[1]);
    if (!db_find(s, t[1]))
        return err(c, "notfound", "database %s does not exist", t[1]);
    ssize_t at = kv_find(s, t[1], t[2]);
    if (!strcmp(cmd, "GET") && n == 3)
        return at < 0 ? err(c, "notfound", "no key %s", t[2]) : ok1(c, s->kvs[at].value);
    if (!strcmp(cmd, "DEL") && n == 3) {
        if (!writable(s, c))
            return;
        if (at >= 0) {
            kv_remove(s, (size_t)at);
            wrote(s, "DEL", t[1], t[2]);
        }
        return ok(c);
    }
    if (!strcmp(cmd, "PUT") && n == 4) {
        struct kvdb *db = db_find(s, t[1]);
        if (!writable(s, c))
            return;
        if ((int64_t)strlen(t[3]) > setting(s, "max_value_bytes"))
            return err(c, "invalid", "the value is longer than max_value_bytes");
        if (at < 0 && db->max_keys > 0 && (int64_t)db_keys(s, t[1]) >= db->max_keys)
            return err(c, "limit", "database %s is full (max_keys %lld)", t[1], (long long)db->max_keys);
        if (at >= 0) {
            free(s->kvs[at].value);
            s->kvs[at].value = xstrdup(t[3]);
        } else {
            add_kv(s, t[1], t[2], t[3]);
        }
        wrote(s, "PUT", t[1], t[2]);
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

static void cmd_db(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    if (!strcmp(cmd, "DB.LIST")) {
        for (size_t i = 0; i < s->n_dbs; i++) {
            char max[24], keys[24];
            snprintf(max, sizeof(max), "%lld", (long long)s->dbs[i].max_keys);
            snprintf(keys, sizeof(keys), "%zu", db_keys(s, s->dbs[i].name));
            reply(c, (const char *[]){"ROW", s->dbs[i].name, max, keys}, 4);
        }
        return ok(c);
    }
    if (n < 2 || !db_name_ok(t[1]))
        return err(c, "invalid", "a database name is 1-64 of [A-Za-z0-9_-]");
    struct kvdb *db = db_find(s, t[1]);
    if (!strcmp(cmd, "DB.CREATE") && n == 2) {
        if (db)
            return err(c, "exists", "database %s already exists", t[1]);
        add_db(s, t[1], 0);
        wrote(s, "CREATE", t[1], "");
        return ok(c);
    }
    if (!db)
        return err(c, "notfound", "database %s does not exist", t[1]);
    if (!strcmp(cmd, "DB.DROP") && n == 2) {
        for (size_t i = s->n_kvs; i-- > 0;)
            if (!strcmp(s->kvs[i].db, t[1]))
                kv_remove(s, i);
        free(db->name);
        *db = s->dbs[--s->n_dbs];
        for (size_t i = 0; i < s->n_users; i++)
            user_set_db(&s->users[i], t[1], false);
        save_users(s);
        wrote(s, "DROP", t[1], "");
        return ok(c);
    }
    int64_t v;
    if (!strcmp(cmd, "DB.ALTER") && n == 4 && !strcmp(t[2], "max_keys")) {
        if (!tps_parse_int(t[3], 0, INT32_MAX, &v))
            return err(c, "invalid", "max_keys must be an integer in 0..2147483647");
        db->max_keys = v;
        wrote(s, "ALTER", t[1], "");
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

static void cmd_user(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    if (!strcmp(cmd, "USER.LIST")) {
        for (size_t i = 0; i < s->n_users; i++)
            reply(c, (const char *[]){"ROW", s->users[i].name, role_names[s->users[i].role], s->users[i].dbs}, 4);
        return ok(c);
    }
    if (n < 2 || !*t[1] || strlen(t[1]) > 64 || tps_has_control(t[1]))
        return err(c, "invalid", "a user name is 1-64 bytes without control characters");
    struct kvuser *u = user_find(s, t[1]);
    if (!strcmp(cmd, "USER.CREATE") && (n == 3 || n == 4)) {
        enum role role = ROLE_NORMAL;
        if (n == 4 && !strcmp(t[3], "admin"))
            role = ROLE_ADMIN;
        else if (n == 4 && !strcmp(t[3], "replication"))
            role = ROLE_REPLICATION;
        else if (n == 4 && strcmp(t[3], "normal"))
            return err(c, "invalid", "a role is normal, admin or replication");
        if (u)
            return err(c, "exists", "user %s already exists", t[1]);
        if (!*t[2])
            return err(c, "invalid", "a password must not be empty");
        user_add(s, t[1], t[2], role);
        save_users(s);
        return ok(c);
    }
    if (!u)
        return err(c, "notfound", "user %s does not exist", t[1]);
    if (!strcmp(cmd, "USER.SHOW") && n == 2)
        return reply(c, (const char *[]){"OK", u->name, role_names[u->role], u->dbs}, 4);
    if (!strcmp(cmd, "USER.DROP") && n == 2) {
        free(u->name), free(u->dbs);
        *u = s->users[--s->n_users];
        for (size_t i = 0; i < MAX_CLIENTS; i++)   /* sessions of a dropped user end */
            if (s->clients[i].fd >= 0 && s->clients[i].user && !strcmp(s->clients[i].user_name, t[1]))
                s->clients[i].user = NULL;
        save_users(s);
        return ok(c);
    }
    if (!strcmp(cmd, "USER.PASSWORD") && n == 3 && *t[2]) {
        user_set_password(u, t[2]);
        save_users(s);
        return ok(c);
    }
    if ((!strcmp(cmd, "GRANT") || !strcmp(cmd, "REVOKE")) && n == 3) {
        if (!db_name_ok(t[2]) || !db_find(s, t[2]))
            return err(c, "notfound", "database %s does not exist", t[2]);
        user_set_db(u, t[2], !strcmp(cmd, "GRANT"));
        save_users(s);
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

static void cmd_config(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    char v[24];
    if (!strcmp(cmd, "CONFIG.LIST")) {
        for (size_t i = 0; i < N_PARAMS; i++) {
            snprintf(v, sizeof(v), "%lld", (long long)s->values[i]);
            reply(c, (const char *[]){"ROW", params[i].name, v, params[i].dynamic ? "live" : "restart"}, 4);
        }
        return ok(c);
    }
    if (!strcmp(cmd, "CONFIG.RESET")) {
        unlink(path_of(s, "config"));
        for (size_t i = 0; i < N_PARAMS; i++)
            if (params[i].dynamic)
                s->values[i] = params[i].fallback;
        return ok(c);
    }
    const struct param *p = n >= 2 ? param_find(t[1]) : NULL;
    if (!p)
        return err(c, "notfound", "no parameter %s", n >= 2 ? t[1] : "");
    int64_t x;
    if (!strcmp(cmd, "CONFIG.GET") && n == 2) {
        snprintf(v, sizeof(v), "%lld", (long long)*param_value(s, p));
        return ok1(c, v);
    }
    if (!strcmp(cmd, "CONFIG.SET") && n == 3) {
        if (!tps_parse_int(t[2], p->min, p->max, &x))
            return err(c, "invalid", "%s must be an integer in %lld..%lld", p->name, (long long)p->min,
                       (long long)p->max);
        save_config(s, p->name, t[2]);
        if (p->dynamic)
            *param_value(s, p) = x;
        return ok1(c, p->dynamic ? "live" : "restart");
    }
    err(c, "invalid", "bad use of %s", cmd);
}

/* ------------------------------------------------------------ replication */

static const char *role_of(const struct server *s)
{
    return s->src_host ? "replica" : s->served_replica ? "primary" : "standalone";
}

static void set_source(struct server *s, const char *host, int port, const char *user, const char *pass)
{
    free(s->src_host), free(s->src_user);
    if (s->src_pass)
        explicit_bzero(s->src_pass, strlen(s->src_pass));
    free(s->src_pass);
    s->src_host = host ? xstrdup(host) : NULL;
    s->src_user = host ? xstrdup(user) : NULL;
    s->src_pass = host ? xstrdup(pass) : NULL;
    s->src_port = port;
    s->link_up = false;
    s->next_sync = 0;
    save_replication(s);
}

/* Send one request to a peer and collect its reply rows; true on OK. */
static bool peer_call(const char *host, int port, const char *const *req, size_t n, const char *auth_user,
                      const char *auth_pass, void (*row)(struct server *, char **, int), struct server *s,
                      char *why, size_t whylen)
{
    int fd = kv_dial(host, port, 1000);
    if (fd < 0)
        return snprintf(why, whylen, "cannot reach %s:%d: %s", host, port, strerror(-fd)), false;
    struct tps_buf b = {0};
    if (auth_user)
        kv_line(&b, (const char *[]){"AUTH", auth_user, auth_pass}, 3);
    kv_line(&b, req, n);
    struct kv_reader r = {.fd = fd};
    bool done = false, good = false;
    int expect = auth_user ? 2 : 1;
    if (!tps_buf_str(&b) || kv_send(fd, b.data, b.len, PEER_TIMEOUT_MS) != 0)
        snprintf(why, whylen, "cannot send to %s:%d", host, port), done = true;
    while (!done) {
        char *line = kv_read_line(&r, PEER_TIMEOUT_MS * 5), *t[KV_TOKENS_MAX];
        int k = line ? kv_split(line, t) : -1;
        if (k <= 0) {
            snprintf(why, whylen, "no reply from %s:%d", host, port);
            done = true;
        } else if (!strcmp(t[0], "ROW") && row) {
            row(s, t + 1, k - 1);
        } else if (!strcmp(t[0], "ERR")) {
            snprintf(why, whylen, "%s:%d refused: %s", host, port, k > 2 ? t[2] : "?");
            done = true;
        } else if (!strcmp(t[0], "OK") && --expect == 0) {
            good = done = true;
        }
        free(line);
    }
    kv_reader_free(&r);
    tps_buf_wipe(&b);
    close(fd);
    return good;
}

static void sync_row(struct server *s, char **t, int n)
{
    if (!s->sync_fresh) {
        clear_data(s);
        s->sync_fresh = true;
    }
    store_line(s, t, n);
}

static void follow(struct server *s)
{
    char seq[24], term[24], why[512];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)s->seq);
    snprintf(term, sizeof(term), "%llu", (unsigned long long)s->term);
    s->sync_fresh = false;
    bool was_up = s->link_up;
    s->link_up = peer_call(s->src_host, s->src_port, (const char *[]){"SYNC", seq, term}, 3, s->src_user,
                           s->src_pass, sync_row, s, why, sizeof(why));
    if (s->sync_fresh)
        save_store(s);
    if (s->link_up && !was_up)
        say("following %s:%d", s->src_host, s->src_port);
    else if (!s->link_up && was_up)
        say("lost the source %s:%d: %s", s->src_host, s->src_port, why);
}

static void cmd_replication(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    char seq[24], term[24], port[16];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)s->seq);
    snprintf(term, sizeof(term), "%llu", (unsigned long long)s->term);
    if (!strcmp(cmd, "POSITION"))
        return reply(c, (const char *[]){"OK", seq, term}, 3);
    if (!strcmp(cmd, "ROLE")) {
        snprintf(port, sizeof(port), "%d", s->src_port);
        return reply(c, (const char *[]){"OK", role_of(s), seq, term, s->src_host ? s->src_host : "",
                                         s->src_host ? port : "0", s->link_up ? "up" : "down",
                                         s->read_only ? "1" : "0"}, 8);
    }
    if (!strcmp(cmd, "SYNC") && n == 3) {
        s->served_replica = true;
        if (!strcmp(t[1], seq) && !strcmp(t[2], term))
            return ok1(c, "same");
        send_store_rows(s, c);
        return ok(c);
    }
    if (c->user->role != ROLE_ADMIN)
        return err(c, "denied", "%s needs an admin", cmd);
    if (!strcmp(cmd, "DUMP")) {
        send_store_rows(s, c);
        return reply(c, (const char *[]){"OK", seq, term}, 3);
    }
    if (!strcmp(cmd, "READONLY") && n == 2) {
        s->read_only = !strcmp(t[1], "on");
        save_replication(s);
        return ok(c);
    }
    if (!strcmp(cmd, "REPLICATE") && n == 5) {
        int64_t p;
        if (!tps_parse_int(t[2], 1, 65535, &p) || !*t[1])
            return err(c, "invalid", "REPLICATE needs a host and a port");
        set_source(s, t[1], (int)p, t[3], t[4]);
        say("replicating from %s:%lld", t[1], (long long)p);
        return ok(c);
    }
    if (!strcmp(cmd, "PROMOTE")) {
        if (s->src_host || s->read_only)
            s->term++;
        set_source(s, NULL, 0, NULL, NULL);
        s->read_only = false;
        save_replication(s);
        save_store(s);
        say("promoted: term %llu", (unsigned long long)s->term);
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

/* ------------------------------------------------------------ cluster */

static void cluster_clear(struct server *s)
{
    free(s->cluster_name);
    if (s->cluster_secret)
        explicit_bzero(s->cluster_secret, strlen(s->cluster_secret));
    free(s->cluster_secret);
    s->cluster_name = s->cluster_secret = NULL;
    for (size_t i = 0; i < s->n_members; i++)
        free(s->members[i].host);
    s->n_members = 0;
}

static void member_row(struct server *s, char **t, int n)
{
    if (n == 2)
        add_member(s, t[0], atoi(t[1]));
}

static void drop_member(struct server *s, const char *host, int port)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (!strcmp(s->members[i].host, host) && s->members[i].port == port) {
            free(s->members[i].host);
            s->members[i] = s->members[--s->n_members];
            return;
        }
}

static bool is_self(const struct server *s, const struct member *m)
{
    return m->port == s->port && (!strcmp(m->host, s->bind) || !strcmp(m->host, "localhost"));
}

/* Tell every other member (but `skip`) about a change. */
static void tell_members(struct server *s, const char *what, const char *host, int port, const struct member *skip)
{
    char p[16], why[256];
    snprintf(p, sizeof(p), "%d", port);
    for (size_t i = 0; i < s->n_members; i++) {
        const struct member *m = &s->members[i];
        if (is_self(s, m) || (skip && !strcmp(m->host, skip->host) && m->port == skip->port))
            continue;
        if (!peer_call(m->host, m->port, (const char *[]){what, s->cluster_secret, host, p}, 4, NULL, NULL, NULL, s,
                       why, sizeof(why)))
            say("cluster: %s", why);
    }
}

static void cmd_cluster_peer(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    int64_t port;
    if (n < 4 || !s->cluster_name || !same_secret(t[n == 5 ? 2 : 1], s->cluster_secret))
        return err(c, "denied", "not a member of this cluster (wrong name or secret)");
    if (!strcmp(cmd, "CLUSTER.HELLO") && n == 5 && !strcmp(t[1], s->cluster_name) &&
        tps_parse_int(t[4], 1, 65535, &port)) {
        struct member newcomer = {t[3], (int)port};
        tell_members(s, "CLUSTER.ADD", t[3], (int)port, &newcomer);
        add_member(s, t[3], (int)port);
        save_cluster(s);
        say("cluster %s: %s:%d joined", s->cluster_name, t[3], (int)port);
        for (size_t i = 0; i < s->n_members; i++) {
            char p[16];
            snprintf(p, sizeof(p), "%d", s->members[i].port);
            reply(c, (const char *[]){"ROW", s->members[i].host, p}, 3);
        }
        return ok(c);
    }
    if ((!strcmp(cmd, "CLUSTER.ADD") || !strcmp(cmd, "CLUSTER.DROP")) && n == 4 &&
        tps_parse_int(t[3], 1, 65535, &port)) {
        if (!strcmp(cmd, "CLUSTER.ADD"))
            add_member(s, t[2], (int)port);
        else
            drop_member(s, t[2], (int)port);
        save_cluster(s);
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

static bool member_up(const struct server *s, const struct member *m)
{
    if (is_self(s, m))
        return true;
    int fd = kv_dial(m->host, m->port, 300);
    struct kv_reader r = {.fd = fd};
    bool up = fd >= 0 && kv_send(fd, "PING\n", 5, 300) == 0;
    char *line = up ? kv_read_line(&r, 500) : NULL;
    up = line && !strncmp(line, "OK", 2);
    free(line);
    kv_reader_free(&r);
    if (fd >= 0)
        close(fd);
    return up;
}

static void cmd_cluster(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    char why[512], port[16];
    int64_t p, q;
    if (!strcmp(cmd, "CLUSTER.STATUS")) {
        struct member self = {(char *)s->bind, s->port};
        const struct member *list = s->n_members ? s->members : &self;
        for (size_t i = 0; i < (s->n_members ? s->n_members : 1); i++) {
            snprintf(port, sizeof(port), "%d", list[i].port);
            reply(c, (const char *[]){"ROW", list[i].host, port, member_up(s, &list[i]) ? "up" : "down",
                                      is_self(s, &list[i]) ? "1" : "0"}, 5);
        }
        return ok1(c, s->cluster_name ? s->cluster_name : "");
    }
    if (!strcmp(cmd, "CLUSTER.FORM") && n == 3) {
        if (s->cluster_name)
            return strcmp(s->cluster_name, t[1]) ? err(c, "exists", "already in cluster %s", s->cluster_name)
                                                 : ok(c);
        s->cluster_name = xstrdup(t[1]);
        s->cluster_secret = xstrdup(t[2]);
        add_member(s, s->bind, s->port);
        save_cluster(s);
        say("cluster %s formed", t[1]);
        return ok(c);
    }
    if (!strcmp(cmd, "CLUSTER.JOIN") && n == 5 && tps_parse_int(t[4], 1, 65535, &p)) {
        if (s->cluster_name)
            return err(c, "exists", "already in cluster %s", s->cluster_name);
        snprintf(port, sizeof(port), "%d", s->port);
        s->cluster_name = xstrdup(t[1]);   /* member_row fills the list */
        s->cluster_secret = xstrdup(t[2]);
        if (!peer_call(t[3], (int)p, (const char *[]){"CLUSTER.HELLO", t[1], t[2], s->bind, port}, 5, NULL, NULL,
                       member_row, s, why, sizeof(why))) {
            cluster_clear(s);
            return err(c, "denied", "%s", why);
        }
        save_cluster(s);
        say("joined cluster %s through %s:%lld", t[1], t[3], (long long)p);
        return ok(c);
    }
    if (!s->cluster_name)
        return err(c, "notfound", "this server is in no cluster");
    if (!strcmp(cmd, "CLUSTER.LEAVE") && n == 1) {
        tell_members(s, "CLUSTER.DROP", s->bind, s->port, NULL);
        say("left cluster %s", s->cluster_name);
        cluster_clear(s);
        save_cluster(s);
        return ok(c);
    }
    if (!strcmp(cmd, "CLUSTER.REMOVE") && n == 3 && tps_parse_int(t[2], 1, 65535, &q)) {
        struct member gone = {t[1], (int)q};
        drop_member(s, t[1], (int)q);
        tell_members(s, "CLUSTER.DROP", t[1], (int)q, &gone);
        save_cluster(s);
        return ok(c);
    }
    err(c, "invalid", "bad use of %s", cmd);
}

/* ------------------------------------------------------------ dispatch */

/*
 * Commands. Without logging in: AUTH user password, PING, QUIT, and the
 * cluster peer commands (CLUSTER.HELLO/ADD/DROP), which carry the secret.
 * Any user: GET/PUT/DEL db key [value], SCAN db (on granted databases).
 * Replication accounts: SYNC seq term, POSITION. Admins: everything,
 * including DB.*, USER.*, GRANT/REVOKE, CONFIG.*, DUMP, READONLY,
 * REPLICATE, PROMOTE, ROLE, CLUSTER.FORM/JOIN/LEAVE/REMOVE/STATUS, SHUTDOWN.
 */
static void dispatch(struct server *s, struct client *c, char **t, int n)
{
    const char *cmd = t[0];
    if (c->user && !user_find(s, c->user_name))
        c->user = NULL;
    c->user = c->user ? user_find(s, c->user_name) : NULL;   /* the array may have moved */
    if (!strcmp(cmd, "PING"))
        return ok1(c, "pong");
    if (!strcmp(cmd, "AUTH") && n == 3) {
        struct kvuser *u = user_find(s, t[1]);
        char hash[65];
        hash_password(u ? u->salt : "", t[2], hash);
        if (!u || !same_secret(hash, u->hash))
            return c->user = NULL, err(c, "auth", "login failed");
        c->user = u;
        snprintf(c->user_name, sizeof(c->user_name), "%s", u->name);
        return ok(c);
    }
    if (!strncmp(cmd, "CLUSTER.", 8) && (!strcmp(cmd, "CLUSTER.HELLO") || !strcmp(cmd, "CLUSTER.ADD") ||
                                         !strcmp(cmd, "CLUSTER.DROP")))
        return cmd_cluster_peer(s, c, t, n);
    if (!c->user)
        return err(c, "auth", "log in first (AUTH user password)");
    bool admin = c->user->role == ROLE_ADMIN, repl = c->user->role == ROLE_REPLICATION;
    if (!strcmp(cmd, "GET") || !strcmp(cmd, "PUT") || !strcmp(cmd, "DEL") || !strcmp(cmd, "SCAN"))
        return cmd_data(s, c, t, n);
    if ((repl || admin) && (!strcmp(cmd, "SYNC") || !strcmp(cmd, "POSITION")))
        return cmd_replication(s, c, t, n);
    if (!admin)
        return err(c, "denied", "%s needs an admin", cmd);
    if (!strncmp(cmd, "DB.", 3))
        return cmd_db(s, c, t, n);
    if (!strncmp(cmd, "USER.", 5) || !strcmp(cmd, "GRANT") || !strcmp(cmd, "REVOKE"))
        return cmd_user(s, c, t, n);
    if (!strncmp(cmd, "CONFIG.", 7))
        return cmd_config(s, c, t, n);
    if (!strncmp(cmd, "CLUSTER.", 8))
        return cmd_cluster(s, c, t, n);
    if (!strcmp(cmd, "SHUTDOWN")) {
        s->stop = true;
        return ok(c);
    }
    cmd_replication(s, c, t, n);
}

/* ------------------------------------------------------------ the loop */

static void drop_client(struct client *c)
{
    close(c->fd);
    kv_reader_free(&c->in);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void serve_client(struct server *s, struct client *c)
{
    char *line;
    while ((line = kv_read_line(&c->in, 0)) != NULL) {
        char *t[KV_TOKENS_MAX];
        int n = kv_split(line, t);
        if (n > 0 && !strcmp(t[0], "QUIT")) {
            free(line);
            return drop_client(c);
        }
        if (n <= 0)
            err(c, "invalid", "a bad request line");
        else
            dispatch(s, c, t, n);
        free(line);
    }
    if (errno != ETIMEDOUT)   /* closed, too long, or broken: hang up */
        drop_client(c);
}

static int listen_on(const char *bind_addr, int port, int backlog)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(bind_addr, service, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
                    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void run(struct server *s, int lfd)
{
    while (!s->stop && !stop_signal) {
        struct pollfd fds[MAX_CLIENTS + 1] = {{lfd, POLLIN, 0}};
        for (int i = 0; i < MAX_CLIENTS; i++)
            fds[i + 1] = (struct pollfd){s->clients[i].fd, POLLIN, 0};
        uint64_t now = tps_now_ms();
        int wait = s->src_host ? (s->next_sync > now ? (int)(s->next_sync - now) : 0) : 1000;
        if (poll(fds, MAX_CLIENTS + 1, wait) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            int slot = -1;
            for (int i = 0; fd >= 0 && i < MAX_CLIENTS && slot < 0; i++)
                if (s->clients[i].fd < 0)
                    slot = i;
            if (fd >= 0 && slot < 0)
                close(fd);
            else if (fd >= 0)
                s->clients[slot].fd = s->clients[slot].in.fd = fd;
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (s->clients[i].fd >= 0 && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                serve_client(s, &s->clients[i]);
        if (s->src_host && tps_now_ms() >= s->next_sync) {
            follow(s);
            s->next_sync = tps_now_ms() + (uint64_t)setting(s, "sync_interval_ms");
        }
    }
}

static int init_datadir(struct server *s)
{
    if (mkdir(s->datadir, 0700) != 0 && errno != EEXIST) {
        say("cannot create %s: %s", s->datadir, strerror(errno));
        return 1;
    }
    if (access(path_of(s, "store"), F_OK) == 0) {
        say("%s already holds a store", s->datadir);
        return 1;
    }
    s->term = 1;
    save_store(s);
    save_users(s);
    ensure_admin(s);
    say("initialised %s", s->datadir);
    return 0;
}

static int load(struct server *s)
{
    for (size_t i = 0; i < N_PARAMS; i++)
        s->values[i] = params[i].fallback;
    if (!load_lines(s, "store", store_line, true) || !load_lines(s, "users", user_line, true) ||
        !load_lines(s, "replication", replication_line, false) || !load_lines(s, "cluster", cluster_line, false) ||
        !load_lines(s, "config", config_line, false)) {
        say("cannot load %s: %s", s->datadir, errno ? strerror(errno) : "a file is damaged");
        return 1;
    }
    if (s->cluster_name) {
        s->cluster_secret = tps_file_read(path_of(s, "cluster.key"), 4096, NULL);
        if (!s->cluster_secret) {
            say("cluster.key is missing");
            return 1;
        }
    }
    ensure_admin(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct server s = {.bind = "127.0.0.1", .port = 0};
    bool init = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--datadir") && i + 1 < argc)
            s.datadir = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            s.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bind") && i + 1 < argc)
            s.bind = argv[++i];
        else if (!strcmp(argv[i], "--init"))
            init = true;
        else {
            fprintf(stderr, "usage: trove-example-kvd --datadir DIR (--init | --port N [--bind ADDR])\n");
            return 2;
        }
    }
    if (!s.datadir || s.datadir[0] != '/' || (!init && (s.port < 1 || s.port > 65535))) {
        fprintf(stderr, "trove-example-kvd: --datadir must be absolute, and --port 1..65535 given to serve\n");
        return 2;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        s.clients[i].fd = -1;
    if (init)
        return init_datadir(&s);
    if (load(&s) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int lfd = listen_on(s.bind, s.port, (int)setting(&s, "listen_backlog"));
    if (lfd < 0) {
        say("cannot listen on %s:%d: %s", s.bind, s.port, strerror(errno));
        return 1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    tps_file_write_atomic(path_of(&s, "kvd.pid"), pid, (size_t)n, 0644);
    say("ready on %s:%d (term %llu, seq %llu, %s)", s.bind, s.port, (unsigned long long)s.term,
        (unsigned long long)s.seq, role_of(&s));
    run(&s, lfd);
    unlink(path_of(&s, "kvd.pid"));
    say("stopped%s", stop_signal ? " on a signal" : "");
    return 0;
}
