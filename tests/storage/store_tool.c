/*
 * store_tool.c - drives both sides of object backup storage for the tests:
 * the control plane's (common/backup_store.h: set-up, signed scopes, seal,
 * removal) and the guest's (agent/storage_object.h through the agent's own
 * zstd + SHA-256 stream, exactly as backup.c uses it). The data is a seeded
 * pseudo-random stream, so a read-back is compared byte for byte.
 *
 *   store_tool control CONF SECTION setup | list | remove ID | seal ID [SIZE]
 *   store_tool control CONF SECTION scope [--ttl S] (--write ID[:MAXSIZE] | --read ID[=RECORD.json])...
 *   store_tool put ID SIZE SEED [--fail-after N | --die-after N]    < scope.json
 *   store_tool get ID CHECKSUM SIZE SEED                            < scope.json
 *   store_tool record-put ID JSON | record-get ID                   < scope.json
 * Results are one JSON object on stdout: {"ok": true, ...} or {"ok": false,
 * "code": "<status name>", "message": "..."}; the exit status is 0 or 1.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup_store.h"
#include "input.h"
#include "json.h"
#include "status.h"
#include "storage_object.h"
#include "stream.h"

#define CHUNK (1u << 20)

static int report_error(int code, const char *msg)
{
    struct tv *doc = tv_map();
    tv_set_bool(doc, "ok", false);
    tv_set_str(doc, "code", status_name(code));
    tv_set_str(doc, "message", msg);
    char *text = tv_to_json(doc, false);
    printf("%s\n", text ? text : "{\"ok\":false}");
    free(text);
    tv_free(doc);
    return 1;
}

static int report(struct tv *doc)
{
    tv_set_bool(doc, "ok", true);
    char *text = tv_to_json(doc, false);
    printf("%s\n", text ? text : "{}");
    free(text);
    tv_free(doc);
    return 0;
}

/* xorshift64*: the same bytes for the same seed, and incompressible. */
static void fill(uint64_t *state, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        uint64_t v = x * 0x2545F4914F6CDD1DULL;
        memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
    }
}

/* The stream of a seed, in CHUNK blocks: any read size sees the same bytes. */
struct gen {
    uint64_t state;
    unsigned char *block;
    size_t pos, len;
};

static void gen_take(struct gen *g, unsigned char *out, size_t n)
{
    while (n > 0) {
        if (g->pos == g->len) {
            fill(&g->state, g->block, CHUNK);
            g->pos = 0;
            g->len = CHUNK;
        }
        size_t k = g->len - g->pos < n ? g->len - g->pos : n;
        memcpy(out, g->block + g->pos, k);
        g->pos += k;
        out += k;
        n -= k;
    }
}

/* ------------------------------------------------------------ control plane */

static int control_scope(struct bstore *bs, int argc, char **argv)
{
    struct bstore_grant grants[64];
    struct tv *records[64] = {0};
    size_t n = 0;
    uint32_t ttl = 0;
    char err[1024];
    int rc = TROVE_OK;
    for (int i = 0; i < argc && rc == TROVE_OK; i++) {
        if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
            ttl = (uint32_t)strtoul(argv[++i], NULL, 10);
            continue;
        }
        bool write = !strcmp(argv[i], "--write");
        if ((!write && strcmp(argv[i], "--read")) || i + 1 >= argc || n == 64)
            return report_error(TROVE_EINVAL, "scope takes --ttl S, --write ID[:MAXSIZE], --read ID[=RECORD.json]");
        char *id = argv[++i], *extra = strchr(id, write ? ':' : '=');
        if (extra)
            *extra++ = '\0';
        grants[n] = (struct bstore_grant){id, write, 0, NULL};
        if (write && extra)
            grants[n].max_size = strtoull(extra, NULL, 10);
        if (!write && extra) {
            char path[4096];
            snprintf(path, sizeof(path), "@%s", extra);
            char *text = input_arg_text(path, "record", 1 << 20, err, sizeof(err));
            if (!text || json_to_tv(text, &records[n], err, sizeof(err)) != 0)
                rc = TROVE_EINVAL;
            free(text);
            grants[n].record = records[n];
        }
        n++;
    }
    struct tv *scope = NULL;
    if (rc == TROVE_OK)
        rc = bstore_scope(bs, grants, n, ttl, &scope, err, sizeof(err));
    for (size_t i = 0; i < n; i++)
        tv_free(records[i]);
    if (rc != TROVE_OK)
        return report_error(rc, err);
    struct tv *doc = tv_map();
    tv_set(doc, "storage", scope);
    return report(doc);
}

static int control(int argc, char **argv)
{
    char err[1024];
    if (argc < 3)
        return report_error(TROVE_EINVAL, "control CONF SECTION COMMAND ...");
    struct conf *c = conf_load_secret(argv[0], err, sizeof(err));
    if (!c)
        return report_error(TROVE_EINVAL, err);
    struct bstore_config cfg;
    struct bstore *bs = NULL;
    int rc = bstore_config_load(c, argv[1], &cfg, err, sizeof(err));
    if (rc == TROVE_OK && !(bs = bstore_open(&cfg, err, sizeof(err))))
        rc = TROVE_EINVAL;
    const char *cmd = argv[2];
    int status = 0;
    struct tv *doc = tv_map();
    if (rc != TROVE_OK) {
        status = report_error(rc, err);
    } else if (!strcmp(cmd, "setup")) {
        rc = bstore_setup(bs, err, sizeof(err));
        status = rc ? report_error(rc, err) : report(tv_copy(doc));
    } else if (!strcmp(cmd, "scope")) {
        status = control_scope(bs, argc - 3, argv + 3);
    } else if (!strcmp(cmd, "seal") && argc >= 4) {
        rc = bstore_seal(bs, argv[3], argc >= 5 ? strtoull(argv[4], NULL, 10) : 0, err, sizeof(err));
        status = rc ? report_error(rc, err) : report(tv_copy(doc));
    } else if (!strcmp(cmd, "remove") && argc >= 4) {
        rc = bstore_remove(bs, argv[3], err, sizeof(err));
        status = rc ? report_error(rc, err) : report(tv_copy(doc));
    } else if (!strcmp(cmd, "list")) {
        char **ids = NULL;
        size_t n = 0;
        rc = bstore_list(bs, &ids, &n, err, sizeof(err));
        struct tv *list = tv_array(), *out = tv_map();
        for (size_t i = 0; i < n; i++) {
            tv_append(list, tv_str(ids[i]));
            free(ids[i]);
        }
        free(ids);
        tv_set(out, "backups", list);
        if (rc) {
            tv_free(out);
            status = report_error(rc, err);
        } else {
            status = report(out);
        }
    } else {
        status = report_error(TROVE_EINVAL, "unknown control command");
    }
    tv_free(doc);
    bstore_close(bs);
    conf_free(c);
    return status;
}

/* ------------------------------------------------------------ guest */

static struct storage *scope_from_stdin(char *err, size_t errlen)
{
    char *text = input_arg_text("-", "scope", 16u << 20, err, errlen);
    struct tv *doc = NULL;
    struct storage *st = NULL;
    if (text && json_to_tv(text, &doc, err, errlen) == 0) {
        const struct tv *scope = tv_get(doc, "storage");
        st = storage_object_open(scope ? scope : doc, err, errlen);
    }
    free(text);
    tv_free(doc);
    return st;
}

static int guest_put(struct storage *st, const char *id, uint64_t size, uint64_t seed, int64_t fail_after,
                     int64_t die_after)
{
    char err[1024];
    atomic_bool stop;
    atomic_init(&stop, false);
    struct trove_sink *sink = stream_sink_open(st, id, 1, &stop, err, sizeof(err));
    if (!sink)
        return report_error(TROVE_EINVAL, err);
    unsigned char *buf = malloc(CHUNK);
    struct gen g = {seed ? seed : 1, malloc(CHUNK), 0, 0};
    uint64_t done = 0;
    int rc = buf && g.block ? TROVE_OK : TROVE_EINTERNAL;
    while (rc == TROVE_OK && done < size) {
        size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
        gen_take(&g, buf, n);
        rc = stream_sink_write(sink, buf, n);
        done += n;
        if (die_after >= 0 && done >= (uint64_t)die_after) {
            sleep(1);   /* parts in flight land, as for a guest killed later in its upload */
            fflush(stdout);
            _exit(3);   /* the agent dies: nothing is committed, nothing cleaned up */
        }
        if (fail_after >= 0 && done >= (uint64_t)fail_after && rc == TROVE_OK) {
            stream_sink_abort(sink);
            free(buf);
            free(g.block);
            return report_error(TROVE_ECANCELLED, "stopped on purpose; the upload was aborted");
        }
    }
    free(buf);
    free(g.block);
    if (rc != TROVE_OK) {
        snprintf(err, sizeof(err), "%s", stream_sink_error(sink));
        stream_sink_abort(sink);
        return report_error(rc, err);
    }
    struct stream_totals t;
    rc = stream_sink_finish(sink, &t, err, sizeof(err));
    if (rc != TROVE_OK)
        return report_error(rc, err);
    struct tv *doc = tv_map();
    tv_set_str(doc, "checksum", t.checksum);
    tv_set_int(doc, "raw_size", (int64_t)t.raw_bytes);
    tv_set_int(doc, "stored_size", (int64_t)t.stored_bytes);
    return report(doc);
}

static int guest_get(struct storage *st, const char *id, const char *checksum, uint64_t size, uint64_t seed)
{
    char err[1024];
    atomic_bool stop;
    atomic_init(&stop, false);
    /* As a restore does: the whole piece is verified before a byte is used. */
    int rc = stream_verify(st, id, checksum, err, sizeof(err));
    if (rc != TROVE_OK)
        return report_error(rc, err);
    struct trove_source *src = stream_source_open(st, id, checksum, &stop, err, sizeof(err));
    if (!src)
        return report_error(TROVE_EINTERNAL, err);
    unsigned char *got = malloc(CHUNK), *want = malloc(CHUNK);
    struct gen g = {seed ? seed : 1, malloc(CHUNK), 0, 0};
    uint64_t done = 0;
    size_t n = 0;
    while (got && want && g.block && (rc = stream_source_read(src, got, CHUNK, &n)) == TROVE_OK && n > 0) {
        gen_take(&g, want, n);
        if (done + n > size || memcmp(got, want, n) != 0) {
            rc = TROVE_ECHECKSUM;
            snprintf(err, sizeof(err), "read-back differs from what was written near byte %llu",
                     (unsigned long long)done);
            break;
        }
        done += n;
    }
    if (rc == TROVE_OK && done != size) {
        rc = TROVE_ECHECKSUM;
        snprintf(err, sizeof(err), "read back %llu bytes, wrote %llu", (unsigned long long)done,
                 (unsigned long long)size);
    } else if (rc != TROVE_OK && rc != TROVE_ECHECKSUM) {
        snprintf(err, sizeof(err), "%s", stream_source_error(src));
    }
    free(got);
    free(want);
    free(g.block);
    stream_source_close(src);
    if (rc != TROVE_OK)
        return report_error(rc, err);
    struct tv *doc = tv_map();
    tv_set_int(doc, "size", (int64_t)done);
    return report(doc);
}

static int guest(int argc, char **argv)
{
    char err[1024];
    const char *cmd = argv[0];
    if (argc < 2)
        return report_error(TROVE_EINVAL, "missing arguments");
    struct storage *st = scope_from_stdin(err, sizeof(err));
    if (!st)
        return report_error(TROVE_EINVAL, err);
    int status;
    if (!strcmp(cmd, "put") && argc >= 4) {
        int64_t fail_after = -1, die_after = -1;
        for (int i = 4; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--fail-after"))
                fail_after = strtoll(argv[i + 1], NULL, 10);
            else if (!strcmp(argv[i], "--die-after"))
                die_after = strtoll(argv[i + 1], NULL, 10);
        }
        status = guest_put(st, argv[1], strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10), fail_after,
                           die_after);
    } else if (!strcmp(cmd, "get") && argc >= 5) {
        status = guest_get(st, argv[1], argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    } else if (!strcmp(cmd, "record-put") && argc >= 3) {
        int rc = st->ops->put_record(st, argv[1], argv[2], err, sizeof(err));
        status = rc ? report_error(rc, err) : report(tv_map());
    } else if (!strcmp(cmd, "record-get")) {
        char *json = NULL;
        int rc = st->ops->get_record(st, argv[1], &json, err, sizeof(err));
        struct tv *doc = tv_map();
        tv_set_str(doc, "record", json ? json : "");
        free(json);
        if (rc) {
            tv_free(doc);
            status = report_error(rc, err);
        } else {
            status = report(doc);
        }
    } else {
        status = report_error(TROVE_EINVAL, "unknown command");
    }
    st->ops->close(st);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "control"))
        return control(argc - 2, argv + 2);
    if (argc >= 2)
        return guest(argc - 1, argv + 1);
    fprintf(stderr, "usage: store_tool control CONF SECTION ... | put | get | record-put | record-get\n");
    return 2;
}
