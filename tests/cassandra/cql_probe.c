/*
 * cql_probe.c - drives the CQL client (plugins/cassandra/cql.c) against a
 * server for tests/cassandra/test_cql_client.py. The password, when a user
 * is named, is the first line of stdin (never argv).
 *
 *   cql_probe scenario HOST PORT USER   connect, DDL, bound values, prepare/execute,
 *                                       paging, and each error mapped; prints "scenario ok"
 *   cql_probe query HOST PORT [USER]    connect and read system.local; prints
 *                                       "ok <release_version>" or "error <status> <message>"
 *
 * CQL_PROBE_TIMEOUT_MS and CQL_PROBE_MAX_BODY set the request timeout and the frame cap.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql.h"

#define KS "probe_ks"

static int failures;

__attribute__((format(printf, 2, 3)))
static void check(int ok, const char *fmt, ...)
{
    if (ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAILED: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static void read_password(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin))
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static struct cql_conn_options options(const char *host, const char *port, const char *user, const char *password)
{
    struct cql_conn_options o = {.host = host, .port = (uint16_t)atoi(port), .username = user, .password = password};
    const char *t = getenv("CQL_PROBE_TIMEOUT_MS");
    const char *m = getenv("CQL_PROBE_MAX_BODY");
    o.request_timeout_ms = t ? atoi(t) : 10000;
    o.connect_timeout_ms = t ? atoi(t) : 5000;
    o.max_body = m ? (uint32_t)strtoul(m, NULL, 10) : 0;
    return o;
}

/* Runs a statement expecting `want`; returns the result on success (caller frees). */
static struct cql_result *run(struct cql_conn *c, enum cql_status want, const char *cql,
                              const struct cql_param *params, size_t n, const struct cql_query_opts *opts)
{
    struct cql_result *res = NULL;
    enum cql_status st = cql_query(c, cql, params, n, opts, &res);
    check(st == want, "%s: got %s (%s), expected %s", cql, cql_status_name(st), cql_last_error(c)->message,
          cql_status_name(want));
    if (st != CQL_OK) {
        cql_result_free(res);
        return NULL;
    }
    return res;
}

static void expect_schema_change(struct cql_result *res, const char *change, const char *target)
{
    check(res && res->kind == CQL_RESULT_SCHEMA_CHANGE, "expected a schema change");
    if (res && res->kind == CQL_RESULT_SCHEMA_CHANGE)
        check(!strcmp(res->schema_change.change, change) && !strcmp(res->schema_change.target, target) &&
              !strcmp(res->schema_change.keyspace, KS), "schema change %s %s %s", res->schema_change.change,
              res->schema_change.target, res->schema_change.keyspace);
    cql_result_free(res);
}

static void ddl(struct cql_conn *c)
{
    char *ks = cql_quote_identifier(KS);
    char cql[512];
    snprintf(cql, sizeof cql, "CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
             "'replication_factor': 1}", ks);
    expect_schema_change(run(c, CQL_OK, cql, NULL, 0, NULL), "CREATED", "KEYSPACE");
    run(c, CQL_ERR_ALREADY_EXISTS, cql, NULL, 0, NULL);
    check(!strcmp(cql_last_error(c)->keyspace, KS), "already-exists names keyspace \"%s\"",
          cql_last_error(c)->keyspace);
    snprintf(cql, sizeof cql, "CREATE TABLE %s.items (id int PRIMARY KEY, name text, tags set<text>, big bigint, "
             "ok boolean, raw blob, at timestamp, uid uuid, code ascii)", ks);
    expect_schema_change(run(c, CQL_OK, cql, NULL, 0, NULL), "CREATED", "TABLE");
    snprintf(cql, sizeof cql, "CREATE KEYSPACE %s_rf3 WITH replication = {'class': 'SimpleStrategy', "
             "'replication_factor': 3}", KS);
    cql_result_free(run(c, CQL_OK, cql, NULL, 0, NULL));
    snprintf(cql, sizeof cql, "CREATE TABLE %s_rf3.t (k int PRIMARY KEY)", KS);
    cql_result_free(run(c, CQL_OK, cql, NULL, 0, NULL));
    free(ks);
}

static void bound_values(struct cql_conn *c)
{
    const char *tags[] = {"b", "a"};
    const uint8_t raw[] = {0x00, 0x01, 0x00, 0xFF};
    struct cql_param p[9] = {cql_param_int(1), cql_param_text("it's \"x\" \xE2\x9C\x93"), {.type = CQL_TYPE_SET},
                             cql_param_bigint(-5000000000LL), cql_param_bool(true), cql_param_blob(raw, sizeof raw),
                             {.type = CQL_TYPE_TIMESTAMP}, {.type = CQL_TYPE_UUID}, {.type = CQL_TYPE_ASCII}};
    p[2].u.texts.count = 2;
    p[2].u.texts.items = tags;
    p[6].u.i = 1700000000123LL;
    for (int i = 0; i < 16; i++)
        p[7].u.uuid[i] = (uint8_t)(0x10 + i);
    p[7].u.uuid[6] = 0x41;
    p[8].u.text = "ascii";
    cql_result_free(run(c, CQL_OK, "INSERT INTO " KS ".items (id, name, tags, big, ok, raw, at, uid, code) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", p, 9, NULL));
    struct cql_param key = cql_param_int(1);
    struct cql_result *res = run(c, CQL_OK, "SELECT * FROM " KS ".items WHERE id = ?", &key, 1, NULL);
    check(res && res->kind == CQL_RESULT_ROWS && res->rows.nrows == 1, "one row back");
    if (!res || res->rows.nrows != 1) {
        cql_result_free(res);
        return;
    }
    check(!strcmp(cql_value_text(cql_cell_by_name(res, 0, "name")), "it's \"x\" \xE2\x9C\x93"), "name");
    const struct cql_value *t = cql_cell_by_name(res, 0, "tags");
    check(t->kind == CQL_VALUE_LIST && t->u.list.count == 2 && !strcmp(cql_value_text(&t->u.list.items[0]), "a"),
          "tags come back as a sorted set");
    check(cql_cell_by_name(res, 0, "big")->u.i == -5000000000LL, "bigint");
    check(cql_cell_by_name(res, 0, "ok")->u.b, "boolean");
    const struct cql_value *r = cql_cell_by_name(res, 0, "raw");
    check(r->kind == CQL_VALUE_BYTES && r->u.bytes.len == 4 && !memcmp(r->u.bytes.ptr, raw, 4), "blob");
    check(cql_cell_by_name(res, 0, "at")->u.i == 1700000000123LL, "timestamp");
    check(!memcmp(cql_cell_by_name(res, 0, "uid")->u.uuid, p[7].u.uuid, 16), "uuid");
    check(!strcmp(cql_value_text(cql_cell_by_name(res, 0, "code")), "ascii"), "ascii");
    check(res->rows.cols[0].type && res->rows.cols[0].type->id == CQL_TYPE_INT, "metadata types");
    cql_result_free(res);
}

static void prepared(struct cql_conn *c)
{
    struct cql_result *ins = NULL, *sel = NULL, *res = NULL;
    check(cql_prepare(c, "INSERT INTO " KS ".items (id, name) VALUES (?, ?)", &ins) == CQL_OK, "prepare insert: %s",
          cql_last_error(c)->message);
    check(cql_prepare(c, "SELECT name FROM " KS ".items WHERE id = ?", &sel) == CQL_OK, "prepare select");
    if (!ins || !sel)
        goto out;
    check(ins->prepared.nbind == 2 && ins->prepared.bind[0].type->id == CQL_TYPE_INT &&
          ins->prepared.bind[1].type->id == CQL_TYPE_VARCHAR, "insert markers are int, text");
    check(ins->prepared.npk == 1 && ins->prepared.pk_index[0] == 0, "partition key is marker 0");
    check(sel->prepared.nresult == 1 && !strcmp(sel->prepared.result[0].name, "name"), "select result metadata");
    for (int i = 2; i <= 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "row %d", i);
        struct cql_param p[2] = {cql_param_bigint(i), cql_param_text(name)};  /* a bigint fits an int marker */
        check(cql_execute(c, ins, p, 2, NULL, &res) == CQL_OK, "execute insert %d: %s", i, cql_last_error(c)->message);
        cql_result_free(res);
    }
    struct cql_param one = cql_param_int(1), wrong = cql_param_text("1");
    check(cql_execute(c, ins, &one, 1, NULL, &res) == CQL_ERR_ARG && !res, "wrong parameter count refused");
    check(cql_execute(c, sel, &wrong, 1, NULL, &res) == CQL_ERR_ARG, "text for an int marker refused");
    struct cql_param too_big = cql_param_bigint(1LL << 40);
    check(cql_execute(c, sel, &too_big, 1, NULL, &res) == CQL_ERR_ARG, "out-of-range int refused");
    struct cql_param five = cql_param_int(5);
    check(cql_execute(c, sel, &five, 1, NULL, &res) == CQL_OK, "execute select: %s", cql_last_error(c)->message);
    check(res && res->rows.nrows == 1 && !strcmp(cql_value_text(cql_cell(res, 0, 0)), "row 5"), "row 5 read back");
    cql_result_free(res);
out:
    cql_result_free(ins);
    cql_result_free(sel);
}

static void paging(struct cql_conn *c)
{
    struct cql_query_opts opts = {.consistency = CQL_ONE, .page_size = 3};
    size_t total = 0;
    int pages = 0;
    uint8_t state[256];
    for (;;) {
        struct cql_result *res = run(c, CQL_OK, "SELECT id FROM " KS ".items", NULL, 0, &opts);
        if (!res)
            return;
        total += res->rows.nrows;
        pages++;
        bool more = res->rows.has_more_pages;
        if (more) {
            check(res->rows.paging_state_len <= sizeof state, "paging state size");
            memcpy(state, res->rows.paging_state, res->rows.paging_state_len);
            opts.paging_state = state;
            opts.paging_state_len = res->rows.paging_state_len;
        }
        cql_result_free(res);
        if (!more || pages > 10)
            break;
    }
    check(total == 8 && pages == 3, "8 rows in 3 pages (got %zu in %d)", total, pages);
}

static void errors(struct cql_conn *c, const char *host, const char *port)
{
    run(c, CQL_ERR_SYNTAX, "SELEC x FROM y", NULL, 0, NULL);
    run(c, CQL_ERR_INVALID, "SELECT * FROM " KS ".nothing", NULL, 0, NULL);
    struct cql_query_opts quorum = {.consistency = CQL_QUORUM};
    run(c, CQL_ERR_UNAVAILABLE, "SELECT * FROM " KS "_rf3.t", NULL, 0, &quorum);
    const struct cql_error *e = cql_last_error(c);
    check(e->required == 2 && e->alive == 1 && e->consistency == CQL_QUORUM, "unavailable carries 2 required, 1 alive");

    const char *secret = "pa'ss \"w\xC3\xB6rd\"";
    char *lit = cql_quote_literal(secret), *role = cql_quote_identifier("Probe User");
    char cql[512];
    snprintf(cql, sizeof cql, "CREATE ROLE %s WITH PASSWORD = %s AND LOGIN = true", role, lit);
    struct cql_result *res = run(c, CQL_OK, cql, NULL, 0, NULL);
    check(res && res->kind == CQL_RESULT_VOID, "CREATE ROLE answers Void");
    cql_result_free(res);
    run(c, CQL_ERR_INVALID, cql, NULL, 0, NULL);

    struct cql_conn *user = NULL;
    struct cql_error err;
    struct cql_conn_options o = options(host, port, "Probe User", secret);
    check(cql_connect(&o, &user, &err) == CQL_OK, "the new role logs in: %s", err.message);
    if (user) {
        run(user, CQL_ERR_UNAUTHORIZED, "SELECT * FROM " KS ".items", NULL, 0, NULL);
        check(strstr(cql_last_error(user)->message, "has no SELECT permission") != NULL, "unauthorized says why");
        snprintf(cql, sizeof cql, "GRANT SELECT ON KEYSPACE " KS " TO %s", role);
        cql_result_free(run(c, CQL_OK, cql, NULL, 0, NULL));
        cql_result_free(run(user, CQL_OK, "SELECT * FROM " KS ".items", NULL, 0, NULL));
        run(user, CQL_ERR_UNAUTHORIZED, "INSERT INTO " KS ".items (id) VALUES (99)", NULL, 0, NULL);
        cql_close(user);
    }
    o.password = "wrong";
    check(cql_connect(&o, &user, &err) == CQL_ERR_AUTH && !user, "a wrong password is bad_credentials (%s)",
          cql_status_name(err.status));
    check(strstr(err.message, "wrong") == NULL, "the message does not echo the password");
    o.username = o.password = NULL;
    check(cql_connect(&o, &user, &err) == CQL_ERR_AUTH_REQUIRED && !user, "no credentials: auth_required (%s)",
          cql_status_name(err.status));
    snprintf(cql, sizeof cql, "DROP ROLE %s", role);
    cql_result_free(run(c, CQL_OK, cql, NULL, 0, NULL));
    free(lit);
    free(role);
}

static int scenario(const char *host, const char *port, const char *user)
{
    char password[256];
    read_password(password, sizeof password);
    struct cql_conn_options o = options(host, port, user, password);
    struct cql_conn *c = NULL;
    struct cql_error err;
    if (cql_connect(&o, &c, &err) != CQL_OK) {
        fprintf(stderr, "connect: %s: %s\n", cql_status_name(err.status), err.message);
        return 1;
    }
    check(cql_authenticator(c) && strstr(cql_authenticator(c), "PasswordAuthenticator"), "authenticator named");
    check(cql_supported(c, "CQL_VERSION") != NULL, "SUPPORTED lists CQL_VERSION");
    ddl(c);
    bound_values(c);
    prepared(c);
    paging(c);
    errors(c, host, port);
    struct cql_result *res = run(c, CQL_OK, "USE " KS, NULL, 0, NULL);
    check(res && res->kind == CQL_RESULT_SET_KEYSPACE && !strcmp(res->keyspace, KS), "USE answers Set_keyspace");
    cql_result_free(res);
    cql_result_free(run(c, CQL_OK, "SELECT count(*) FROM items", NULL, 0, NULL));
    expect_schema_change(run(c, CQL_OK, "DROP KEYSPACE " KS, NULL, 0, NULL), "DROPPED", "KEYSPACE");
    cql_result_free(run(c, CQL_OK, "DROP KEYSPACE " KS "_rf3", NULL, 0, NULL));
    cql_close(c);
    if (failures)
        return 1;
    printf("scenario ok\n");
    return 0;
}

static int query(const char *host, const char *port, const char *user)
{
    char password[256] = "";
    if (user)
        read_password(password, sizeof password);
    struct cql_conn_options o = options(host, port, user, user ? password : NULL);
    struct cql_conn *c = NULL;
    struct cql_error err;
    if (cql_connect(&o, &c, &err) != CQL_OK) {
        printf("error %s %s\n", cql_status_name(err.status), err.message);
        return 3;
    }
    struct cql_result *res = NULL;
    enum cql_status st = cql_query(c, "SELECT release_version FROM system.local", NULL, 0, NULL, &res);
    if (st != CQL_OK) {
        printf("error %s %s\n", cql_status_name(st), cql_last_error(c)->message);
        cql_close(c);
        return 3;
    }
    const char *v = cql_value_text(cql_cell(res, 0, 0));
    printf("ok %s\n", v ? v : "(null)");
    cql_result_free(res);
    cql_close(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "scenario") && argc == 5)
        return scenario(argv[2], argv[3], argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "query"))
        return query(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    fprintf(stderr, "usage: cql_probe scenario HOST PORT USER | cql_probe query HOST PORT [USER]\n");
    return 2;
}
