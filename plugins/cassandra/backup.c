/*
 * backup.c - full backups and their restore. A backup is `nodetool snapshot
 * -t trove-<id>`, then one ustar stream into the host's sink: a marker, the
 * CREATE KEYSPACE statement of every user keyspace (schema/<ks>.cql), and
 * each table's snapshot directory (data/<ks>/<table>-<id>/: SSTables,
 * manifest.json and the schema.cql Cassandra writes there), then
 * `nodetool clearsnapshot`. A restore stages the stream inside the data
 * directory (checking every name), drops the user keyspaces, creates the
 * keyspaces and tables again from the backup's CQL (only CREATE and ALTER
 * statements are run), stops the node, places the SSTables in the new table
 * directories, and starts it. Roles and grants (system_auth) are not part
 * of a backup: the target keeps its own.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cassandra.h"

#define FORMAT "cassandra-snapshot-1"
#define MARKER "trove-cassandra-backup.txt"
#define MARKER_LINE "trove cassandra backup 1"
#define SCHEMA_MAX (1024u * 1024u)
#define STAGE_PREFIX ".trove-restore-"

/* ---- names inside the archive ------------------------------------------- */

/* <table>-<32 hex>, as Cassandra names a table's directory. */
static bool table_dir_ok(const char *d)
{
    const char *dash = strrchr(d, '-');
    if (!dash || strlen(dash + 1) != 32 || strspn(dash + 1, "0123456789abcdef") != 32)
        return false;
    char name[64];
    size_t n = (size_t)(dash - d);
    if (n == 0 || n >= sizeof(name))
        return false;
    memcpy(name, d, n);
    name[n] = '\0';
    return cql_valid_name(name, 48);
}

static bool file_name_ok(const char *f)
{
    size_t n = strlen(f);
    return n > 0 && n <= 200 && f[0] != '.' &&
           strspn(f, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool user_keyspace_ok(const char *ks)
{
    return cql_valid_keyspace_name(ks) && !cs_keyspace_is_system(ks);
}

static int sorted_entries(const char *dir, struct dirent ***list)
{
    return scandir(dir, list, NULL, alphasort);
}

static void free_entries(struct dirent **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* ---- creating --------------------------------------------------------------- */

struct backup {
    struct cs_ctx *ctx;
    struct trove_call *call;
    struct cs_tar_out out;
    const char *tag;
    size_t tables, files;
};

static int add_snapshot_dir(struct backup *b, const char *ks, const char *tdir, const char *snap)
{
    struct dirent **list = NULL;
    int n = sorted_entries(snap, &list), rc = TROVE_OK;
    if (n < 0)
        return b->ctx->host->fail(b->call, TROVE_EDATASTORE, "cannot read %s: %s", snap, strerror(errno));
    b->tables++;
    for (int i = 0; rc == TROVE_OK && i < n; i++) {
        char path[CS_PATH_MAX * 2], name[512];
        struct stat st;
        if (list[i]->d_name[0] == '.' ||
            !tps_path(path, sizeof(path), "%s/%s", snap, list[i]->d_name) || lstat(path, &st) != 0)
            continue;
        if (!S_ISREG(st.st_mode)) {   /* secondary index directories and the like */
            b->ctx->host->log(TROVE_LOG_WARN, "cassandra: backup leaves out %s (not a regular file)", path);
            continue;
        }
        if (!file_name_ok(list[i]->d_name)) {
            rc = b->ctx->host->fail(b->call, TROVE_EDATASTORE, "unexpected file name in a snapshot: %s", path);
            break;
        }
        snprintf(name, sizeof(name), "data/%s/%s/%s", ks, tdir, list[i]->d_name);
        rc = cs_tar_add_file(&b->out, name, path);
        b->files++;
        if (rc == TROVE_OK && b->ctx->host->cancelled(b->call))
            rc = b->ctx->host->fail(b->call, TROVE_ECANCELLED, "cancelled while copying the snapshot");
    }
    free_entries(list, n);
    return rc;
}

/* Every table directory of the keyspace that holds the snapshot. */
static int add_keyspace(struct backup *b, const char *ks)
{
    char dir[CS_PATH_MAX * 2];
    struct dirent **list = NULL;
    tps_path(dir, sizeof(dir), "%s/%s", b->ctx->s.data_dir, ks);
    int n = sorted_entries(dir, &list), rc = TROVE_OK;
    if (n < 0)
        return errno == ENOENT ? TROVE_OK
                               : b->ctx->host->fail(b->call, TROVE_EDATASTORE, "cannot read %s: %s", dir, strerror(errno));
    for (int i = 0; rc == TROVE_OK && i < n; i++) {
        char snap[CS_PATH_MAX * 2];
        struct stat st;
        const char *tdir = list[i]->d_name;
        if (tdir[0] == '.' || !tps_path(snap, sizeof(snap), "%s/%s/snapshots/%s", dir, tdir, b->tag) ||
            lstat(snap, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (!table_dir_ok(tdir))
            rc = b->ctx->host->fail(b->call, TROVE_EDATASTORE, "unexpected table directory %s/%s", dir, tdir);
        else
            rc = add_snapshot_dir(b, ks, tdir, snap);
    }
    free_entries(list, n);
    return rc;
}

static int write_archive(struct backup *b, const struct cs_keyspace *ks, size_t n, const char *release)
{
    struct tps_buf marker = {0};
    tps_buf_addf(&marker, "%s\nformat %s\nrelease_version %s\nkeyspaces %zu\n", MARKER_LINE, FORMAT, release, n);
    int rc = tps_buf_str(&marker) ? cs_tar_add_data(&b->out, MARKER, marker.data, marker.len)
                                  : b->ctx->host->fail(b->call, TROVE_EINTERNAL, "out of memory");
    tps_buf_free(&marker);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        char name[128];
        snprintf(name, sizeof(name), "schema/%s.cql", ks[i].name);
        rc = cs_tar_add_data(&b->out, name, ks[i].cql, strlen(ks[i].cql));
    }
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        b->ctx->host->progress(b->call, 20 + (int)(70 * i / (n ? n : 1)), "copying keyspace %s", ks[i].name);
        rc = add_keyspace(b, ks[i].name);
    }
    return rc == TROVE_OK ? cs_tar_finish(&b->out) : rc;
}

/* The user keyspaces and the node's version, read before the snapshot. */
static int read_node(struct cs_ctx *ctx, struct trove_call *call, struct cs_keyspace **ks, size_t *n, char *release,
                     size_t len)
{
    struct cs_conn c;
    struct cql_result *res = NULL;
    struct cql_param key = cql_param_text("local");
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK)
        return rc;
    rc = cs_query(&c, "reading system.local", "SELECT release_version FROM system.local WHERE key = ?", &key, 1,
                  &res, false);
    const char *v = rc == TROVE_OK ? cql_value_text(cql_cell_by_name(res, 0, "release_version")) : NULL;
    snprintf(release, len, "%s", v ? v : "unknown");
    cql_result_free(res);
    if (rc == TROVE_OK)
        rc = cs_keyspaces_list(&c, ks, n);
    cs_conn_close(&c);
    return rc;
}

static int put_meta(struct cs_ctx *ctx, struct trove_call *call, const struct backup *b, size_t n,
                    const char *release)
{
    char num[32];
    int rc = ctx->host->put(call, "meta", "format", FORMAT);
    if (rc == TROVE_OK)
        rc = ctx->host->put(call, "meta", "release_version", release);
    snprintf(num, sizeof(num), "%zu", n);
    if (rc == TROVE_OK)
        rc = ctx->host->put(call, "meta", "keyspaces", num);
    snprintf(num, sizeof(num), "%zu", b->tables);
    if (rc == TROVE_OK)
        rc = ctx->host->put(call, "meta", "tables", num);
    snprintf(num, sizeof(num), "%zu", b->files);
    if (rc == TROVE_OK)
        rc = ctx->host->put(call, "meta", "files", num);
    return rc;
}

int cs_backup_create(void *self, struct trove_call *call, const struct trove_backup_request *req)
{
    struct cs_ctx *ctx = self;
    if (req->kind != TROVE_BACKUP_FULL)   /* also the answer for a kind from a newer agent */
        return ctx->host->fail(call, TROVE_ENOTSUP, "Cassandra backups are full snapshots only");
    char tag[TROVE_NAME_MAX + 16], release[64];
    snprintf(tag, sizeof(tag), "trove-%s", req->id && *req->id ? req->id : "backup");
    if (strchr(tag, '/'))
        return ctx->host->fail(call, TROVE_EINVAL, "backup id \"%s\" cannot name a snapshot", req->id);
    struct cs_keyspace *ks = NULL;
    size_t n = 0;
    ctx->host->progress(call, 5, "listing keyspaces");
    int rc = read_node(ctx, call, &ks, &n, release, sizeof(release));
    if (rc != TROVE_OK)
        return rc;
    ctx->host->progress(call, 10, "nodetool snapshot -t %s", tag);
    const char *snapshot[] = {"snapshot", "-t", tag, NULL};
    rc = cs_nodetool(ctx, call, snapshot, NULL, 0, 600000);
    struct backup b = {.ctx = ctx, .call = call, .out = {.ctx = ctx, .call = call, .sink = req->sink}, .tag = tag};
    if (rc == TROVE_OK) {
        rc = write_archive(&b, ks, n, release);
        const char *clear[] = {"clearsnapshot", "-t", tag, NULL};
        if (cs_nodetool(ctx, call, clear, NULL, 0, 600000) != TROVE_OK)
            ctx->host->log(TROVE_LOG_WARN, "cassandra: nodetool clearsnapshot -t %s failed; the snapshot stays "
                                           "on disk", tag);
    }
    if (rc == TROVE_OK)
        rc = put_meta(ctx, call, &b, n, release);
    cs_keyspaces_free(ks, n);
    return rc;
}

/* ---- the schema statements ---------------------------------------------------- */

static const char *skip_space_and_comments(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/'))
            p += strcspn(p, "\n");
        else if (p[0] == '/' && p[1] == '*')
            p = strstr(p + 2, "*/") ? strstr(p + 2, "*/") + 2 : p + strlen(p);
        else
            return p;
    }
}

/* Past a quoted string, a $$ body or a comment starting at p; p itself otherwise. */
static const char *skip_token(const char *p)
{
    if (*p == '\'' || *p == '"') {
        char q = *p++;
        for (; *p; p++)
            if (*p == q && *++p != q)
                return p;
        return p;
    }
    if (p[0] == '$' && p[1] == '$') {
        const char *end = strstr(p + 2, "$$");
        return end ? end + 2 : p + strlen(p);
    }
    if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/') || (p[0] == '/' && p[1] == '*'))
        return skip_space_and_comments(p);
    return p;
}

/* The next statement of text from *pos, without its ';'; false at the end. */
static bool next_statement(const char *text, size_t *pos, struct tps_buf *out)
{
    const char *start = skip_space_and_comments(text + *pos), *p = start;
    if (!*start)
        return false;
    while (*p && *p != ';') {
        const char *q = skip_token(p);
        p = q == p ? p + 1 : q;
    }
    size_t len = (size_t)(p - start);
    while (len && strchr(" \t\r\n", start[len - 1]))
        len--;
    out->len = 0;
    tps_buf_addn(out, start, len);
    *pos = (size_t)(p - text) + (*p ? 1 : 0);
    return true;
}

/* A table's schema statement, by its first words: CREATE TABLE / TYPE / [CUSTOM] INDEX, ALTER TABLE. */
static bool statement_allowed(const char *s)
{
    char words[3][16] = {{0}};
    for (int w = 0; w < 3; w++) {
        s = skip_space_and_comments(s);
        size_t n = 0;
        while (((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) && n < 15)
            words[w][n++] = (char)(*s++ & ~0x20);
    }
    if (!strcmp(words[0], "CREATE"))
        return !strcmp(words[1], "TABLE") || !strcmp(words[1], "TYPE") || !strcmp(words[1], "INDEX") ||
               (!strcmp(words[1], "CUSTOM") && !strcmp(words[2], "INDEX"));
    return !strcmp(words[0], "ALTER") && !strcmp(words[1], "TABLE");
}

/*
 * The statements of a staged schema file: checked (c == NULL) or run. A
 * keyspace's file holds exactly its CREATE KEYSPACE (as backups write it); a
 * table's schema.cql only CREATE TABLE / TYPE / INDEX and ALTER TABLE.
 */
static int schema_file(struct cs_ctx *ctx, struct trove_call *call, struct cs_conn *c, const char *path,
                       const char *keyspace)
{
    char *text = tps_file_read(path, SCHEMA_MAX, NULL);
    if (!text)
        return ctx->host->fail(call, TROVE_EINVAL, "the backup lacks %s (%s)", path, strerror(errno));
    struct tps_buf stmt = {0}, want = {0};
    if (keyspace) {
        tps_buf_add(&want, "CREATE KEYSPACE ");
        cs_add_ident(&want, keyspace);
        tps_buf_add(&want, " WITH ");
    }
    size_t pos = 0, count = 0;
    int rc = tps_buf_str(&want) ? TROVE_OK : ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    while (rc == TROVE_OK && next_statement(text, &pos, &stmt)) {
        bool allowed = tps_buf_str(&stmt) &&
                       (keyspace ? count == 0 && !strncmp(stmt.data, want.data, want.len)
                                 : statement_allowed(stmt.data));
        if (!tps_buf_str(&stmt))
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
        else if (!allowed)
            rc = ctx->host->fail(call, TROVE_EINVAL, "the backup's %s holds a statement a restore does not run: "
                                                     "%.60s", path, stmt.data);
        else if (c)
            rc = cs_query(c, "restoring the schema", stmt.data, NULL, 0, NULL, false);
        count++;
    }
    if (rc == TROVE_OK && count == 0)
        rc = ctx->host->fail(call, TROVE_EINVAL, "the backup's %s holds no statement", path);
    tps_buf_free(&stmt);
    tps_buf_free(&want);
    free(text);
    return rc;
}

/* ---- staging ------------------------------------------------------------------ */

struct stage {
    struct cs_ctx *ctx;
    struct trove_call *call;
    char root[CS_PATH_MAX];
    char path[CS_PATH_MAX * 2];   /* the member being written */
    bool marker;
    size_t files;
};

static int stage_dir(struct stage *s, const char *fmt, const char *a, const char *b)
{
    char dir[CS_PATH_MAX * 2];
    char rel[CS_PATH_MAX];
    snprintf(rel, sizeof(rel), fmt, a, b);
    tps_path(dir, sizeof(dir), "%s/%s", s->root, rel);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s->ctx->host->fail(s->call, TROVE_EINTERNAL, "cannot create %s: %s", dir, strerror(errno));
    return TROVE_OK;
}

static int refuse(struct stage *s, const char *name)
{
    return s->ctx->host->fail(s->call, TROVE_EINVAL, "the backup archive holds \"%.200s\", which a Cassandra "
                                                     "backup does not", name);
}

/* Where each archive member may go (see cs_tar_accept_fn). */
static int stage_accept(void *arg, const char *name, uint64_t size, const char **path)
{
    struct stage *s = arg;
    char ks[64], tdir[128], file[256];
    if (!s->marker) {
        if (strcmp(name, MARKER) || size > 4096)
            return s->ctx->host->fail(s->call, TROVE_EINVAL, "this is not a Cassandra backup of this plugin "
                                                             "(it starts with \"%.100s\")", name);
        s->marker = true;
    } else if (!strncmp(name, "schema/", 7)) {
        size_t n = strlen(name + 7);
        if (n < 5 || n - 4 >= sizeof(ks) || strcmp(name + 7 + n - 4, ".cql") || size > SCHEMA_MAX)
            return refuse(s, name);
        snprintf(ks, sizeof(ks), "%.*s", (int)(n - 4), name + 7);
        if (!user_keyspace_ok(ks))
            return refuse(s, name);
        int rc = stage_dir(s, "schema", NULL, NULL);
        if (rc != TROVE_OK)
            return rc;
    } else if (!strncmp(name, "data/", 5)) {
        const char *a = name + 5, *b = strchr(a, '/'), *c = b ? strchr(b + 1, '/') : NULL;
        if (!b || !c || (size_t)(b - a) >= sizeof(ks) || (size_t)(c - b - 1) >= sizeof(tdir) ||
            strlen(c + 1) >= sizeof(file))
            return refuse(s, name);
        snprintf(ks, sizeof(ks), "%.*s", (int)(b - a), a);
        snprintf(tdir, sizeof(tdir), "%.*s", (int)(c - b - 1), b + 1);
        snprintf(file, sizeof(file), "%s", c + 1);
        if (!user_keyspace_ok(ks) || !table_dir_ok(tdir) || !file_name_ok(file))
            return refuse(s, name);
        int rc = stage_dir(s, "data", NULL, NULL);
        if (rc == TROVE_OK)
            rc = stage_dir(s, "data/%s", ks, NULL);
        if (rc == TROVE_OK)
            rc = stage_dir(s, "data/%s/%s", ks, tdir);
        if (rc != TROVE_OK)
            return rc;
        s->files++;
    } else {
        return refuse(s, name);
    }
    tps_path(s->path, sizeof(s->path), "%s/%s", s->root, name);
    *path = s->path;
    return TROVE_OK;
}

static int check_marker(struct stage *s)
{
    char path[CS_PATH_MAX * 2];
    tps_path(path, sizeof(path), "%s/%s", s->root, MARKER);
    char *text = s->marker ? tps_file_read(path, 4096, NULL) : NULL;
    bool ok = text && !strncmp(text, MARKER_LINE "\n", strlen(MARKER_LINE) + 1);
    free(text);
    return ok ? TROVE_OK : s->ctx->host->fail(s->call, TROVE_EINVAL, "the backup holds no marker of this plugin");
}

/* ---- putting it in place ---------------------------------------------------------- */

/* A staged table directory, and the directory its files go to. */
struct table_move {
    char from[CS_PATH_MAX * 2];
    char to[CS_PATH_MAX * 2];
};

static int drop_user_keyspaces(struct cs_conn *c)
{
    struct cs_keyspace *ks = NULL;
    size_t n = 0;
    int rc = cs_keyspaces_list(c, &ks, &n);
    for (size_t i = 0; rc == TROVE_OK && i < n; i++) {
        struct tps_buf b = {0};
        tps_buf_add(&b, "DROP KEYSPACE IF EXISTS ");
        rc = cs_add_ident(&b, ks[i].name) ? cs_query(c, "dropping a keyspace", tps_buf_str(&b), NULL, 0, NULL, false)
                                          : c->ctx->host->fail(c->call, TROVE_EINTERNAL, "out of memory");
        tps_buf_free(&b);
    }
    cs_keyspaces_free(ks, n);
    return rc;
}

/* Every keyspace file of the stage: checked (c == NULL) or run. */
static int keyspace_schemas(struct stage *s, struct cs_conn *c)
{
    char dir[CS_PATH_MAX * 2];
    struct dirent **list = NULL;
    tps_path(dir, sizeof(dir), "%s/schema", s->root);
    int n = sorted_entries(dir, &list), rc = TROVE_OK;
    for (int i = 0; rc == TROVE_OK && i < n; i++) {
        char path[CS_PATH_MAX * 3], ks[64];
        const char *f = list[i]->d_name;
        if (f[0] == '.')
            continue;
        snprintf(ks, sizeof(ks), "%.*s", (int)(strlen(f) - 4), f);   /* staging admitted only <ks>.cql */
        tps_path(path, sizeof(path), "%s/%s", dir, f);
        rc = schema_file(s->ctx, s->call, c, path, ks);
    }
    if (n > 0)
        free_entries(list, n);
    return rc;
}

/* The live directory of (keyspace, table) after it was created: <table>-<id hex>. */
static int table_target(struct cs_conn *c, const char *ks, const char *tdir, char *out, size_t len)
{
    char table[64];
    snprintf(table, sizeof(table), "%.*s", (int)(strrchr(tdir, '-') - tdir), tdir);
    struct cql_param p[2] = {cql_param_text(ks), cql_param_text(table)};
    struct cql_result *res = NULL;
    int rc = cs_query(c, "reading the restored table", "SELECT id FROM system_schema.tables WHERE keyspace_name = ? "
                      "AND table_name = ?", p, 2, &res, false);
    const struct cql_value *id = rc == TROVE_OK ? cql_cell_by_name(res, 0, "id") : NULL;
    if (rc == TROVE_OK && (!id || id->kind != CQL_VALUE_UUID))
        rc = c->ctx->host->fail(c->call, TROVE_EINVAL, "the backup's schema did not create table %s.%s", ks, table);
    if (rc == TROVE_OK) {
        char hex[33];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", id->u.uuid[i]);
        tps_path(out, len, "%s/%s/%s-%s", c->ctx->s.data_dir, ks, table, hex);
    }
    cql_result_free(res);
    return rc;
}

/*
 * Every staged table: its keyspace has a schema file, its schema.cql is
 * checked (c == NULL), or run and its files' destination noted in *moves.
 */
static int table_schemas(struct stage *s, struct cs_conn *c, struct table_move *moves, size_t *n_moves)
{
    char dir[CS_PATH_MAX * 2];
    struct dirent **kss = NULL;
    tps_path(dir, sizeof(dir), "%s/data", s->root);
    int nk = sorted_entries(dir, &kss), rc = TROVE_OK;
    for (int i = 0; rc == TROVE_OK && i < nk; i++) {
        char ksdir[CS_PATH_MAX * 3], ksfile[CS_PATH_MAX * 3];
        struct dirent **tables = NULL;
        const char *ks = kss[i]->d_name;
        if (ks[0] == '.')
            continue;
        tps_path(ksdir, sizeof(ksdir), "%s/%s", dir, ks);
        tps_path(ksfile, sizeof(ksfile), "%s/schema/%s.cql", s->root, ks);
        if (access(ksfile, F_OK) != 0)
            rc = s->ctx->host->fail(s->call, TROVE_EINVAL, "the backup has tables of keyspace %s but not the keyspace",
                                    ks);
        int nt = rc == TROVE_OK ? sorted_entries(ksdir, &tables) : 0;
        for (int t = 0; rc == TROVE_OK && t < nt; t++) {
            if (tables[t]->d_name[0] == '.')
                continue;
            struct table_move m;
            char schema[CS_PATH_MAX * 4];
            tps_path(m.from, sizeof(m.from), "%s/%s", ksdir, tables[t]->d_name);
            tps_path(schema, sizeof(schema), "%s/schema.cql", m.from);
            rc = schema_file(s->ctx, s->call, c, schema, NULL);
            if (rc == TROVE_OK && c)
                rc = table_target(c, ks, tables[t]->d_name, m.to, sizeof(m.to));
            if (rc == TROVE_OK && moves)
                moves[(*n_moves)++] = m;
        }
        if (nt > 0)
            free_entries(tables, nt);
    }
    if (nk > 0)
        free_entries(kss, nk);
    return rc;
}

static int move_files(struct cs_ctx *ctx, struct trove_call *call, const struct table_move *m)
{
    struct dirent **list = NULL;
    int n = sorted_entries(m->from, &list), rc = cs_mkdir(ctx, call, m->to);
    for (int i = 0; rc == TROVE_OK && i < n; i++) {
        const char *f = list[i]->d_name;
        char from[CS_PATH_MAX * 3], to[CS_PATH_MAX * 3];
        if (f[0] == '.' || !strcmp(f, "manifest.json") || !strcmp(f, "schema.cql"))
            continue;
        tps_path(from, sizeof(from), "%s/%s", m->from, f);
        tps_path(to, sizeof(to), "%s/%s", m->to, f);
        if (access(to, F_OK) == 0)
            rc = ctx->host->fail(call, TROVE_ECONFLICT, "%s exists already", to);
        else if (rename(from, to) != 0)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot move %s to %s: %s", from, to, strerror(errno));
        else if (tps_file_chown(to, ctx->s.run_as) != 0)
            rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot give %s to %s", to, ctx->s.run_as);
    }
    if (n > 0)
        free_entries(list, n);
    return rc;
}

/* With the node running: schema; then stopped: files; then running again. */
static int install(struct cs_ctx *ctx, struct trove_call *call, struct stage *s)
{
    struct cs_conn c;
    size_t n_moves = 0;
    struct table_move *moves = calloc(s->files + 1, sizeof(*moves));
    if (!moves)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    int rc = cs_conn_open(ctx, call, &c);
    if (rc != TROVE_OK && cs_server_pid(ctx) <= 0) {   /* a stopped node starts for the schema */
        rc = cs_server_start(ctx, call);
        if (rc == TROVE_OK)
            rc = cs_conn_open(ctx, call, &c);
    }
    if (rc != TROVE_OK) {
        free(moves);
        return rc;
    }
    ctx->host->progress(call, 40, "dropping the user keyspaces and creating the backup's");
    rc = drop_user_keyspaces(&c);
    if (rc == TROVE_OK)
        rc = keyspace_schemas(s, &c);
    if (rc == TROVE_OK)
        rc = table_schemas(s, &c, moves, &n_moves);
    cs_conn_close(&c);
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 60, "stopping the node to place the SSTables");
        rc = cs_server_stop(ctx, call);
    }
    for (size_t i = 0; rc == TROVE_OK && i < n_moves; i++)
        rc = move_files(ctx, call, &moves[i]);
    free(moves);
    ctx->host->progress(call, 80, "starting the node");
    int start = cs_server_start(ctx, call);   /* also after a failure: leave the node running */
    return rc == TROVE_OK ? start : rc;
}

int cs_backup_restore(void *self, struct trove_call *call, const struct trove_restore_request *req)
{
    struct cs_ctx *ctx = self;
    if (req->n_pieces != 1)
        return ctx->host->fail(call, TROVE_EINVAL, "a Cassandra restore takes one full backup, not %zu pieces",
                               req->n_pieces);
    const struct trove_restore_piece *pc = TROVE_AT(struct trove_restore_piece, req->pieces, req->piece_size, 0);
    if (pc->kind != TROVE_BACKUP_FULL)
        return ctx->host->fail(call, TROVE_ENOTSUP, "backup %s is not a full backup", pc->id);
    const char *format = tps_kv_get(pc->meta, pc->n_meta, "format");
    if (format && strcmp(format, FORMAT))
        return ctx->host->fail(call, TROVE_EINVAL, "backup %s has format %s, not %s", pc->id, format, FORMAT);
    struct stage *s = calloc(1, sizeof(*s));
    if (!s)
        return ctx->host->fail(call, TROVE_EINTERNAL, "out of memory");
    s->ctx = ctx;
    s->call = call;
    int rc = cs_mkdir(ctx, call, ctx->s.data_dir);
    tps_remove_stale(ctx->s.data_dir, STAGE_PREFIX);
    if (rc == TROVE_OK && (!tps_path(s->root, sizeof(s->root), "%s/" STAGE_PREFIX "%ld-XXXXXX", ctx->s.data_dir,
                                     (long)getpid()) || !mkdtemp(s->root)))
        rc = ctx->host->fail(call, TROVE_EINTERNAL, "cannot create a staging directory in %s: %s", ctx->s.data_dir,
                             strerror(errno));
    bool staged = rc == TROVE_OK;
    if (rc == TROVE_OK) {
        ctx->host->progress(call, 10, "reading backup %s", pc->id);
        rc = cs_tar_extract(ctx, call, pc->source, stage_accept, s);
    }
    if (rc == TROVE_OK)
        rc = check_marker(s);
    if (rc == TROVE_OK)   /* every statement checked before anything changes */
        rc = keyspace_schemas(s, NULL);
    if (rc == TROVE_OK)
        rc = table_schemas(s, NULL, NULL, NULL);
    if (rc == TROVE_OK) {
        int lock = cs_server_lock(ctx, call);
        rc = lock >= 0 ? install(ctx, call, s) : TROVE_EINTERNAL;
        tps_file_unlock(lock);
    }
    if (staged)
        tps_remove_tree(s->root);
    free(s);
    return rc;
}
