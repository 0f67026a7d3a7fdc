/*
 * test_cql.c - the CQL protocol v4 codec (plugins/cassandra/cql.c): requests
 * are encoded byte for byte as the spec lays them out; responses decode into
 * the values the server sent; and a hostile server's frames (truncated,
 * oversized, negative or impossible lengths and counts, bad text, deep
 * nesting, trailing bytes) are refused with a reason, never read past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql.h"

/* ---- building response frames ---- */

struct fb {
    uint8_t buf[1 << 16];
    size_t len;
};

static void b_raw(struct fb *f, const void *p, size_t n)
{
    assert_true(f->len + n <= sizeof f->buf);
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}

static void b_u8(struct fb *f, uint8_t v)
{
    b_raw(f, &v, 1);
}

static void b_u16(struct fb *f, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    b_raw(f, b, 2);
}

static void b_i32(struct fb *f, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    b_raw(f, b, 4);
}

static void b_str(struct fb *f, const char *s)
{
    b_u16(f, (uint16_t)strlen(s));
    b_raw(f, s, strlen(s));
}

static void b_bytes(struct fb *f, const void *p, int32_t n)
{
    b_i32(f, n);
    if (n > 0)
        b_raw(f, p, (size_t)n);
}

static void b_text_cell(struct fb *f, const char *s)
{
    b_bytes(f, s, (int32_t)strlen(s));
}

static void start(struct fb *f, uint8_t opcode, uint8_t flags)
{
    f->len = 0;
    uint8_t head[CQL_HEADER_SIZE] = {0x84, flags, 0x00, 0x07, opcode, 0, 0, 0, 0};
    b_raw(f, head, sizeof head);
}

static void finish(struct fb *f)
{
    uint32_t body = (uint32_t)(f->len - CQL_HEADER_SIZE);
    f->buf[5] = (uint8_t)(body >> 24);
    f->buf[6] = (uint8_t)(body >> 16);
    f->buf[7] = (uint8_t)(body >> 8);
    f->buf[8] = (uint8_t)body;
}

/* Decodes f's frame with its body cut to `len` bytes. */
static enum cql_status decode_len(const struct fb *f, size_t len, struct cql_response *out, struct cql_error *err)
{
    struct cql_frame_header h;
    enum cql_status st = cql_header_decode(f->buf, CQL_DEFAULT_MAX_BODY, &h, err);
    if (st != CQL_OK)
        return st;
    return cql_response_decode(&h, f->buf + CQL_HEADER_SIZE, len, out, err);
}

static enum cql_status decode(const struct fb *f, struct cql_response *out, struct cql_error *err)
{
    return decode_len(f, f->len - CQL_HEADER_SIZE, out, err);
}

static void assert_refused(const struct fb *f, const char *reason)
{
    struct cql_response r;
    struct cql_error err;
    assert_int_equal(decode(f, &r, &err), CQL_ERR_DECODE);
    assert_int_equal(err.status, CQL_ERR_DECODE);
    if (!strstr(err.message, reason))
        fail_msg("reason \"%s\" does not mention \"%s\"", err.message, reason);
    assert_null(r.result);
}

/* A RESULT Rows frame: one table (global spec), the given column types, then rows. */
static void rows_head(struct fb *f, int32_t flags, int32_t ncols)
{
    start(f, CQL_OP_RESULT, 0);
    b_i32(f, CQL_RESULT_ROWS);
    b_i32(f, flags | 0x0001);
    b_i32(f, ncols);
    b_str(f, "ks");
    b_str(f, "t");
}

static void col(struct fb *f, const char *name, uint16_t type)
{
    b_str(f, name);
    b_u16(f, type);
}

/* ---- requests ---- */

static void test_encode_options_and_startup(void **state)
{
    (void)state;
    struct cql_buf b = {0};
    cql_encode_options(&b, 3);
    const uint8_t options[] = {0x04, 0x00, 0x00, 0x03, 0x05, 0, 0, 0, 0};
    assert_int_equal(b.len, sizeof options);
    assert_memory_equal(b.data, options, sizeof options);
    cql_buf_free(&b);

    cql_encode_startup(&b, 1);
    const uint8_t startup[] = {0x04, 0x00, 0x00, 0x01, 0x01, 0, 0, 0, 22, 0x00, 0x01, 0x00, 0x0B,
                               'C', 'Q', 'L', '_', 'V', 'E', 'R', 'S', 'I', 'O', 'N', 0x00, 0x05,
                               '3', '.', '0', '.', '0'};
    assert_int_equal(b.len, sizeof startup);
    assert_memory_equal(b.data, startup, sizeof startup);
    cql_buf_free(&b);
}

static void test_encode_auth_response_is_sasl_plain(void **state)
{
    (void)state;
    struct cql_buf b = {0};
    cql_encode_auth_response(&b, 2, "bob", "s3cret");
    const uint8_t want[] = {0x04, 0x00, 0x00, 0x02, 0x0F, 0, 0, 0, 15, 0, 0, 0, 11,
                            0x00, 'b', 'o', 'b', 0x00, 's', '3', 'c', 'r', 'e', 't'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    cql_buf_free(&b);
    assert_null(b.data);
}

static void test_encode_query_with_bound_values(void **state)
{
    (void)state;
    struct cql_buf b = {0};
    struct cql_error err;
    struct cql_param params[] = {cql_param_text("a'b"), cql_param_int(-2), cql_param_null(CQL_TYPE_VARCHAR),
                                 cql_param_bool(true)};
    struct cql_query_opts opts = {.consistency = CQL_QUORUM, .page_size = 100};
    assert_int_equal(cql_encode_query(&b, 9, "S ?", params, 4, &opts, &err), CQL_OK);
    const uint8_t want[] = {
        0x04, 0x00, 0x00, 0x09, 0x07, 0, 0, 0, 40,
        0, 0, 0, 3, 'S', ' ', '?',                 /* [long string] */
        0x00, 0x04,                                /* QUORUM */
        0x05,                                      /* values | page size */
        0x00, 0x04,                                /* 4 values */
        0, 0, 0, 3, 'a', '\'', 'b',                /* text */
        0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFE,        /* int -2 */
        0xFF, 0xFF, 0xFF, 0xFF,                    /* null */
        0, 0, 0, 1, 0x01,                          /* boolean */
        0, 0, 0, 100,                              /* page size */
    };
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    cql_buf_free(&b);
}

static void test_encode_refuses_bad_parameters(void **state)
{
    (void)state;
    struct cql_buf b = {0};
    struct cql_error err = {0};
    struct cql_param bad_text = cql_param_text("\xC3\x28");
    assert_int_equal(cql_encode_query(&b, 1, "S ?", &bad_text, 1, NULL, &err), CQL_ERR_ARG);
    assert_non_null(strstr(err.message, "UTF-8"));
    cql_buf_free(&b);

    memset(&err, 0, sizeof err);
    struct cql_param decimal = {.type = CQL_TYPE_DECIMAL};
    assert_int_equal(cql_encode_query(&b, 1, "S ?", &decimal, 1, NULL, &err), CQL_ERR_ARG);
    assert_non_null(strstr(err.message, "cannot bind"));
    cql_buf_free(&b);
}

static void test_encode_prepare_and_execute(void **state)
{
    (void)state;
    struct cql_buf b = {0};
    struct cql_error err;
    cql_encode_prepare(&b, 4, "Q");
    const uint8_t prep[] = {0x04, 0, 0, 4, 0x09, 0, 0, 0, 5, 0, 0, 0, 1, 'Q'};
    assert_int_equal(b.len, sizeof prep);
    assert_memory_equal(b.data, prep, sizeof prep);
    cql_buf_free(&b);

    const uint8_t id[] = {0xAB, 0xCD};
    struct cql_param p = cql_param_bigint(1);
    assert_int_equal(cql_encode_execute(&b, 5, id, sizeof id, &p, 1, NULL, &err), CQL_OK);
    const uint8_t exec[] = {0x04, 0, 0, 5, 0x0A, 0, 0, 0, 21, 0, 2, 0xAB, 0xCD, 0, 1, 0x01, 0, 1,
                            0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(b.len, sizeof exec);
    assert_memory_equal(b.data, exec, sizeof exec);
    cql_buf_free(&b);
}

/* ---- headers ---- */

static void test_header_refusals(void **state)
{
    (void)state;
    struct cql_frame_header h;
    struct cql_error err;
    uint8_t ok[] = {0x84, 0, 0, 1, CQL_OP_READY, 0, 0, 0, 0};
    assert_int_equal(cql_header_decode(ok, 0, &h, &err), CQL_OK);
    assert_int_equal(h.stream, 1);

    uint8_t request[] = {0x04, 0, 0, 1, CQL_OP_READY, 0, 0, 0, 0};
    assert_int_equal(cql_header_decode(request, 0, &h, &err), CQL_ERR_DECODE);
    assert_non_null(strstr(err.message, "0x04"));

    uint8_t v3[] = {0x83, 0, 0, 1, CQL_OP_READY, 0, 0, 0, 0};
    assert_int_equal(cql_header_decode(v3, 0, &h, &err), CQL_ERR_DECODE);

    uint8_t compressed[] = {0x84, 0x01, 0, 1, CQL_OP_RESULT, 0, 0, 0, 4};
    assert_int_equal(cql_header_decode(compressed, 0, &h, &err), CQL_ERR_DECODE);
    assert_non_null(strstr(err.message, "compress"));

    uint8_t query[] = {0x84, 0, 0, 1, CQL_OP_QUERY, 0, 0, 0, 0};
    assert_int_equal(cql_header_decode(query, 0, &h, &err), CQL_ERR_DECODE);
    assert_non_null(strstr(err.message, "not a response"));

    uint8_t big[] = {0x84, 0, 0, 1, CQL_OP_RESULT, 0x01, 0x00, 0x00, 0x01};
    assert_int_equal(cql_header_decode(big, 1024, &h, &err), CQL_ERR_DECODE);
    assert_non_null(strstr(err.message, "exceeds the 1024-byte limit"));

    uint8_t huge[] = {0x84, 0, 0, 1, CQL_OP_RESULT, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(cql_header_decode(huge, 0, &h, &err), CQL_ERR_DECODE);
    assert_non_null(strstr(err.message, "exceeds"));
}

/* ---- rows ---- */

static void build_all_types(struct fb *f)
{
    rows_head(f, 0, 14);
    col(f, "name", CQL_TYPE_VARCHAR);
    col(f, "code", CQL_TYPE_ASCII);
    col(f, "n", CQL_TYPE_INT);
    col(f, "big", CQL_TYPE_BIGINT);
    col(f, "ok", CQL_TYPE_BOOLEAN);
    col(f, "id", CQL_TYPE_UUID);
    col(f, "at", CQL_TYPE_TIMESTAMP);
    col(f, "raw", CQL_TYPE_BLOB);
    b_str(f, "tags");
    b_u16(f, CQL_TYPE_LIST);
    b_u16(f, CQL_TYPE_VARCHAR);
    b_str(f, "members");
    b_u16(f, CQL_TYPE_SET);
    b_u16(f, CQL_TYPE_VARCHAR);
    b_str(f, "opts");
    b_u16(f, CQL_TYPE_MAP);
    b_u16(f, CQL_TYPE_VARCHAR);
    b_u16(f, CQL_TYPE_VARCHAR);
    col(f, "ratio", CQL_TYPE_DOUBLE);
    col(f, "huge", CQL_TYPE_VARINT);
    col(f, "gone", CQL_TYPE_VARCHAR);
    b_i32(f, 1);                                   /* one row */
    b_text_cell(f, "h\xC3\xA9");                   /* "hé" */
    b_text_cell(f, "AB");
    uint8_t n[] = {0xFF, 0xFF, 0xFF, 0xF9};
    b_bytes(f, n, 4);                              /* -7 */
    uint8_t big[] = {0, 0, 0x01, 0, 0, 0, 0, 0};
    b_bytes(f, big, 8);                            /* 2^40 */
    uint8_t yes = 1;
    b_bytes(f, &yes, 1);
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    b_bytes(f, id, 16);
    uint8_t at[] = {0, 0, 0x01, 0x8C, 0, 0, 0, 0};
    b_bytes(f, at, 8);
    uint8_t raw[] = {0x00, 0xFF, 0x00};
    b_bytes(f, raw, 3);
    /* list<text> ["x", "yz"] */
    b_i32(f, 4 + 4 + 1 + 4 + 2);
    b_i32(f, 2);
    b_text_cell(f, "x");
    b_text_cell(f, "yz");
    /* set<text> {} */
    b_i32(f, 4);
    b_i32(f, 0);
    /* map<text, text> {"k": "v"} */
    b_i32(f, 4 + 5 + 5);
    b_i32(f, 1);
    b_text_cell(f, "k");
    b_text_cell(f, "v");
    uint8_t ratio[] = {0x3F, 0xF8, 0, 0, 0, 0, 0, 0};  /* 1.5 */
    b_bytes(f, ratio, 8);
    uint8_t huge[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    b_bytes(f, huge, 9);
    b_i32(f, -1);                                  /* null */
    finish(f);
}

static void test_rows_of_every_type(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    build_all_types(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    const struct cql_result *res = r.result;
    assert_int_equal(res->kind, CQL_RESULT_ROWS);
    assert_int_equal(res->rows.ncols, 14);
    assert_int_equal(res->rows.nrows, 1);
    assert_string_equal(res->rows.cols[0].keyspace, "ks");
    assert_string_equal(res->rows.cols[0].table, "t");
    assert_string_equal(cql_value_text(cql_cell_by_name(res, 0, "name")), "h\xC3\xA9");
    assert_string_equal(cql_value_text(cql_cell_by_name(res, 0, "code")), "AB");
    assert_int_equal(cql_cell_by_name(res, 0, "n")->u.i, -7);
    assert_true(cql_cell_by_name(res, 0, "big")->u.i == (int64_t)1 << 40);
    assert_true(cql_cell_by_name(res, 0, "ok")->u.b);
    assert_int_equal(cql_cell_by_name(res, 0, "id")->kind, CQL_VALUE_UUID);
    assert_int_equal(cql_cell_by_name(res, 0, "id")->u.uuid[15], 15);
    assert_true(cql_cell_by_name(res, 0, "at")->u.i == (int64_t)0x18C << 32);
    const struct cql_value *raw = cql_cell_by_name(res, 0, "raw");
    assert_int_equal(raw->kind, CQL_VALUE_BYTES);
    assert_int_equal(raw->u.bytes.len, 3);
    assert_int_equal(raw->u.bytes.ptr[1], 0xFF);
    const struct cql_value *tags = cql_cell_by_name(res, 0, "tags");
    assert_int_equal(tags->kind, CQL_VALUE_LIST);
    assert_int_equal(tags->u.list.count, 2);
    assert_string_equal(cql_value_text(&tags->u.list.items[1]), "yz");
    assert_int_equal(cql_cell_by_name(res, 0, "members")->u.list.count, 0);
    const struct cql_value *opts = cql_cell_by_name(res, 0, "opts");
    assert_int_equal(opts->kind, CQL_VALUE_MAP);
    assert_string_equal(cql_value_text(&opts->u.map.keys[0]), "k");
    assert_string_equal(cql_value_text(&opts->u.map.values[0]), "v");
    assert_true(cql_cell_by_name(res, 0, "ratio")->u.d == 1.5);
    assert_int_equal(cql_cell_by_name(res, 0, "huge")->kind, CQL_VALUE_BYTES);
    assert_int_equal(cql_cell_by_name(res, 0, "gone")->kind, CQL_VALUE_NULL);
    assert_null(cql_value_text(cql_cell_by_name(res, 0, "gone")));
    assert_int_equal(cql_column_index(res, "nope"), -1);
    assert_null(cql_cell(res, 1, 0));
    assert_null(cql_cell(res, 0, 14));
    cql_response_free(&r);
}

static void test_rows_with_paging_and_column_specs(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_ROWS);
    b_i32(&f, 0x0002);                  /* has more pages, per-column specs */
    b_i32(&f, 1);
    b_bytes(&f, "\x01\x02", 2);
    b_str(&f, "system");
    b_str(&f, "local");
    col(&f, "key", CQL_TYPE_VARCHAR);
    b_i32(&f, 2);
    b_text_cell(&f, "");
    b_text_cell(&f, "b");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_true(r.result->rows.has_more_pages);
    assert_int_equal(r.result->rows.paging_state_len, 2);
    assert_int_equal(r.result->rows.paging_state[1], 2);
    assert_string_equal(r.result->rows.cols[0].table, "local");
    assert_int_equal(cql_cell(r.result, 0, 0)->kind, CQL_VALUE_TEXT);
    assert_string_equal(cql_value_text(cql_cell(r.result, 0, 0)), "");
    cql_response_free(&r);
}

static void test_every_truncation_is_refused(void **state)
{
    (void)state;
    struct fb f;
    build_all_types(&f);
    size_t full = f.len - CQL_HEADER_SIZE;
    for (size_t len = 0; len < full; len++) {
        struct cql_response r;
        struct cql_error err;
        enum cql_status st = decode_len(&f, len, &r, &err);
        if (st != CQL_ERR_DECODE)
            fail_msg("a body cut to %zu of %zu bytes decoded (%d)", len, full, st);
        assert_true(err.message[0] != '\0');
    }
}

static void test_hostile_counts_and_lengths(void **state)
{
    (void)state;
    struct fb f;

    rows_head(&f, 0, -1);
    finish(&f);
    assert_refused(&f, "column count -1");

    rows_head(&f, 0, 1000000);
    finish(&f);
    assert_refused(&f, "out of range");

    rows_head(&f, 0, 60000);
    finish(&f);
    assert_refused(&f, "cannot fit");

    rows_head(&f, 0, 1);
    col(&f, "k", CQL_TYPE_VARCHAR);
    b_i32(&f, 0x7FFFFFFF);
    finish(&f);
    assert_refused(&f, "cannot fit");

    rows_head(&f, 0, 1);
    col(&f, "k", CQL_TYPE_VARCHAR);
    b_i32(&f, -3);
    finish(&f);
    assert_refused(&f, "negative row count");

    rows_head(&f, 0, 1);
    col(&f, "k", CQL_TYPE_VARCHAR);
    b_i32(&f, 1);
    b_i32(&f, -5);
    finish(&f);
    assert_refused(&f, "invalid length -5");

    rows_head(&f, 0, 1);
    col(&f, "k", CQL_TYPE_VARCHAR);
    b_i32(&f, 1);
    b_i32(&f, 1000);
    b_raw(&f, "abc", 3);
    finish(&f);
    assert_refused(&f, "truncated frame: cell needs 1000 bytes, 3 remain");

    /* a list claiming 2^30 elements in 8 bytes */
    rows_head(&f, 0, 1);
    b_str(&f, "l");
    b_u16(&f, CQL_TYPE_LIST);
    b_u16(&f, CQL_TYPE_VARCHAR);
    b_i32(&f, 1);
    b_i32(&f, 8);
    b_i32(&f, 1 << 30);
    b_i32(&f, 0);
    finish(&f);
    assert_refused(&f, "cannot fit");

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_ROWS);
    b_i32(&f, 0x0002);
    b_i32(&f, 0);
    b_i32(&f, -1);
    finish(&f);
    assert_refused(&f, "more pages announced without a paging state");

    /* a column name longer than the frame */
    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_ROWS);
    b_i32(&f, 1);
    b_i32(&f, 1);
    b_u16(&f, 0xFFFF);
    b_raw(&f, "ks", 2);
    b_raw(&f, "\0\0\0\0\0\0\0\0", 8);
    finish(&f);
    assert_refused(&f, "keyspace needs 65535 bytes");
}

static void test_bad_values_and_types(void **state)
{
    (void)state;
    struct fb f;

    rows_head(&f, 0, 1);
    col(&f, "n", CQL_TYPE_INT);
    b_i32(&f, 1);
    b_bytes(&f, "\1\2\3", 3);
    finish(&f);
    assert_refused(&f, "must be 4 bytes");

    rows_head(&f, 0, 1);
    col(&f, "s", CQL_TYPE_VARCHAR);
    b_i32(&f, 1);
    b_bytes(&f, "\xC0\xAF", 2);            /* overlong '/' */
    finish(&f);
    assert_refused(&f, "not valid UTF-8");

    rows_head(&f, 0, 1);
    col(&f, "a", CQL_TYPE_ASCII);
    b_i32(&f, 1);
    b_bytes(&f, "\xC3\xA9", 2);
    finish(&f);
    assert_refused(&f, "not valid ASCII");

    rows_head(&f, 0, 1);
    col(&f, "x", 0x0099);
    b_i32(&f, 0);
    finish(&f);
    assert_refused(&f, "unknown column type id 0x0099");

    /* list<list<...>> twenty deep */
    rows_head(&f, 0, 1);
    b_str(&f, "deep");
    for (int i = 0; i < 20; i++)
        b_u16(&f, CQL_TYPE_LIST);
    b_u16(&f, CQL_TYPE_INT);
    b_i32(&f, 0);
    finish(&f);
    assert_refused(&f, "nested deeper");

    /* a UDT claiming 65535 fields */
    rows_head(&f, 0, 1);
    b_str(&f, "u");
    b_u16(&f, CQL_TYPE_UDT);
    b_str(&f, "ks");
    b_str(&f, "addr");
    b_u16(&f, 0xFFFF);
    b_i32(&f, 0);
    finish(&f);
    assert_refused(&f, "field count 65535 cannot fit");

    /* a collection with a stray byte after its elements */
    rows_head(&f, 0, 1);
    b_str(&f, "s");
    b_u16(&f, CQL_TYPE_SET);
    b_u16(&f, CQL_TYPE_VARCHAR);
    b_i32(&f, 1);
    b_i32(&f, 4 + 5 + 1);
    b_i32(&f, 1);
    b_text_cell(&f, "a");
    b_u8(&f, 0);
    finish(&f);
    assert_refused(&f, "left over");

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, 9);
    finish(&f);
    assert_refused(&f, "unknown result kind 9");

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_VOID);
    b_u8(&f, 0);
    finish(&f);
    assert_refused(&f, "1 trailing bytes");

    start(&f, CQL_OP_READY, 0);
    b_u8(&f, 0);
    finish(&f);
    assert_refused(&f, "trailing");
}

/* ---- other results ---- */

static void test_set_keyspace_and_schema_change(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_SET_KEYSPACE);
    b_str(&f, "shop");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_string_equal(r.result->keyspace, "shop");
    cql_response_free(&r);

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_SCHEMA_CHANGE);
    b_str(&f, "CREATED");
    b_str(&f, "KEYSPACE");
    b_str(&f, "shop");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_string_equal(r.result->schema_change.change, "CREATED");
    assert_string_equal(r.result->schema_change.target, "KEYSPACE");
    assert_null(r.result->schema_change.name);
    cql_response_free(&r);

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_SCHEMA_CHANGE);
    b_str(&f, "DROPPED");
    b_str(&f, "FUNCTION");
    b_str(&f, "shop");
    b_str(&f, "f");
    b_u16(&f, 1);
    b_str(&f, "int");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_string_equal(r.result->schema_change.name, "f");
    cql_response_free(&r);

    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_SCHEMA_CHANGE);
    b_str(&f, "CREATED");
    b_str(&f, "GALAXY");
    b_str(&f, "shop");
    b_str(&f, "x");
    finish(&f);
    assert_refused(&f, "unknown schema change target");
}

static void test_prepared_metadata(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    start(&f, CQL_OP_RESULT, 0);
    b_i32(&f, CQL_RESULT_PREPARED);
    b_u16(&f, 2);
    b_raw(&f, "\x0A\x0B", 2);
    b_i32(&f, 0x0001);                 /* bind metadata: global spec */
    b_i32(&f, 2);
    b_i32(&f, 1);                      /* one pk index */
    b_u16(&f, 1);
    b_str(&f, "ks");
    b_str(&f, "t");
    col(&f, "name", CQL_TYPE_VARCHAR);
    col(&f, "id", CQL_TYPE_INT);
    b_i32(&f, 0x0004);                 /* result metadata: none */
    b_i32(&f, 0);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    const struct cql_result *p = r.result;
    assert_int_equal(p->kind, CQL_RESULT_PREPARED);
    assert_int_equal(p->prepared.id_len, 2);
    assert_int_equal(p->prepared.nbind, 2);
    assert_int_equal(p->prepared.bind[1].type->id, CQL_TYPE_INT);
    assert_int_equal(p->prepared.npk, 1);
    assert_int_equal(p->prepared.pk_index[0], 1);
    assert_int_equal(p->prepared.nresult, 0);
    cql_response_free(&r);

    /* a partition key index that names no marker */
    f.buf[CQL_HEADER_SIZE + 4 + 2 + 2 + 4 + 4 + 4 + 1] = 7;
    assert_refused(&f, "names no bind marker");
}

static void test_frame_flags(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    start(&f, CQL_OP_RESULT, 0x02 | 0x08 | 0x04);
    b_raw(&f, "0123456789abcdef", 16);  /* tracing id */
    b_u16(&f, 1);                       /* warnings */
    b_str(&f, "Aggregation query used without partition key");
    b_u16(&f, 1);                       /* custom payload */
    b_str(&f, "k");
    b_bytes(&f, "v", 1);
    b_i32(&f, CQL_RESULT_VOID);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.result->kind, CQL_RESULT_VOID);
    assert_int_equal(r.result->nwarnings, 1);
    assert_string_equal(r.result->warnings[0], "Aggregation query used without partition key");
    cql_response_free(&r);

    start(&f, CQL_OP_RESULT, 0x02);
    b_raw(&f, "0123", 4);
    finish(&f);
    assert_refused(&f, "tracing id needs 16 bytes");
}

/* ---- handshake messages and errors ---- */

static void test_handshake_messages(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    start(&f, CQL_OP_SUPPORTED, 0);
    b_u16(&f, 2);
    b_str(&f, "CQL_VERSION");
    b_u16(&f, 1);
    b_str(&f, "3.4.5");
    b_str(&f, "COMPRESSION");
    b_u16(&f, 0);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.nsupported, 2);
    assert_string_equal(r.supported_keys[0], "CQL_VERSION");
    assert_string_equal(r.supported_values[0], "3.4.5");
    assert_string_equal(r.supported_values[1], "");
    cql_response_free(&r);

    start(&f, CQL_OP_AUTHENTICATE, 0);
    b_str(&f, "org.apache.cassandra.auth.PasswordAuthenticator");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_string_equal(r.authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");
    cql_response_free(&r);

    start(&f, CQL_OP_AUTH_SUCCESS, 0);
    b_i32(&f, -1);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_true(r.token_null);
    cql_response_free(&r);

    start(&f, CQL_OP_SUPPORTED, 0);
    b_u16(&f, 40000);
    finish(&f);
    assert_refused(&f, "option count 40000 cannot fit");
}

static void error_frame(struct fb *f, int32_t code, const char *message)
{
    start(f, CQL_OP_ERROR, 0);
    b_i32(f, code);
    b_str(f, message);
}

static void test_errors_map_to_statuses(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    static const struct {
        int32_t code;
        enum cql_status status;
    } simple[] = {
        {0x0000, CQL_ERR_SERVER}, {0x000A, CQL_ERR_PROTOCOL}, {0x0100, CQL_ERR_AUTH},
        {0x1001, CQL_ERR_OVERLOADED}, {0x1002, CQL_ERR_BOOTSTRAPPING}, {0x1003, CQL_ERR_TRUNCATE},
        {0x2000, CQL_ERR_SYNTAX}, {0x2100, CQL_ERR_UNAUTHORIZED}, {0x2200, CQL_ERR_INVALID},
        {0x2300, CQL_ERR_CONFIG}, {0x7777, CQL_ERR_SERVER},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        error_frame(&f, simple[i].code, "why");
        finish(&f);
        assert_int_equal(decode(&f, &r, &err), CQL_OK);
        assert_int_equal(r.opcode, CQL_OP_ERROR);
        assert_int_equal(r.error.status, simple[i].status);
        assert_int_equal(r.error.code, simple[i].code);
        assert_string_equal(r.error.message, "why");
        assert_true(cql_status_is_server(r.error.status));
        cql_response_free(&r);
    }

    error_frame(&f, 0x1000, "Cannot achieve consistency level QUORUM");
    b_u16(&f, CQL_QUORUM);
    b_i32(&f, 2);
    b_i32(&f, 1);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.error.status, CQL_ERR_UNAVAILABLE);
    assert_int_equal(r.error.consistency, CQL_QUORUM);
    assert_int_equal(r.error.required, 2);
    assert_int_equal(r.error.alive, 1);
    cql_response_free(&r);

    error_frame(&f, 0x2400, "Cannot add existing keyspace \"shop\"");
    b_str(&f, "shop");
    b_str(&f, "");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.error.status, CQL_ERR_ALREADY_EXISTS);
    assert_string_equal(r.error.keyspace, "shop");
    assert_string_equal(r.error.table, "");
    cql_response_free(&r);

    error_frame(&f, 0x1100, "Operation timed out");
    b_u16(&f, CQL_ONE);
    b_i32(&f, 0);
    b_i32(&f, 1);
    b_str(&f, "SIMPLE");
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.error.status, CQL_ERR_WRITE_TIMEOUT);
    cql_response_free(&r);

    error_frame(&f, 0x1200, "Operation timed out");
    b_u16(&f, CQL_ONE);
    b_i32(&f, 0);
    b_i32(&f, 1);
    b_u8(&f, 0);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.error.status, CQL_ERR_READ_TIMEOUT);
    cql_response_free(&r);

    error_frame(&f, 0x2500, "Prepared query not found");
    b_u16(&f, 1);
    b_u8(&f, 0xAA);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    assert_int_equal(r.error.status, CQL_ERR_UNPREPARED);
    cql_response_free(&r);

    /* Unavailable without its fields */
    error_frame(&f, 0x1000, "Cannot achieve consistency level QUORUM");
    finish(&f);
    assert_refused(&f, "consistency needs 2 bytes");
}

static void test_long_error_message_is_cut_on_a_character(void **state)
{
    (void)state;
    struct fb f;
    struct cql_response r;
    struct cql_error err;
    char msg[700];
    size_t n = 0;
    while (n + 2 < sizeof msg - 1) {
        msg[n++] = '\xC3';
        msg[n++] = '\xA9';
    }
    msg[n] = '\0';
    error_frame(&f, 0x2200, msg);
    finish(&f);
    assert_int_equal(decode(&f, &r, &err), CQL_OK);
    size_t len = strlen(r.error.message);
    assert_true(len < sizeof r.error.message);
    assert_int_equal(len % 2, 0);
    cql_response_free(&r);
}

/* ---- names, literals, statuses ---- */

static void test_quoting(void **state)
{
    (void)state;
    char *s = cql_quote_identifier("My\"Table");
    assert_string_equal(s, "\"My\"\"Table\"");
    free(s);
    s = cql_quote_literal("it's '");
    assert_string_equal(s, "'it''s '''");
    free(s);
    s = cql_quote_literal("");
    assert_string_equal(s, "''");
    free(s);
    s = cql_quote_literal("back\\slash");
    assert_string_equal(s, "'back\\slash'");
    free(s);
    s = cql_quote_identifier("\xE2\x9C\x93");
    assert_string_equal(s, "\"\xE2\x9C\x93\"");
    free(s);
    errno = 0;
    assert_null(cql_quote_identifier(""));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(cql_quote_literal("\xFF"));
    assert_int_equal(errno, EINVAL);
    assert_null(cql_quote_identifier("\xED\xA0\x80"));   /* a surrogate */
}

static void test_names(void **state)
{
    (void)state;
    char name[60];
    memset(name, 'k', sizeof name);
    name[48] = '\0';
    assert_true(cql_valid_keyspace_name(name));
    name[48] = 'k';
    name[49] = '\0';
    assert_false(cql_valid_keyspace_name(name));
    assert_true(cql_valid_keyspace_name("Shop_2"));
    assert_false(cql_valid_keyspace_name(""));
    assert_false(cql_valid_keyspace_name(NULL));
    assert_false(cql_valid_keyspace_name("a-b"));
    assert_false(cql_valid_keyspace_name("a b"));
    assert_false(cql_valid_keyspace_name("\"x\""));
    assert_false(cql_valid_keyspace_name("caf\xC3\xA9"));
    assert_true(cql_valid_name("x", 1));
    assert_false(cql_valid_name("xy", 1));
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(cql_status_name(CQL_OK), "ok");
    assert_string_equal(cql_status_name(CQL_ERR_UNAUTHORIZED), "unauthorized");
    assert_string_equal(cql_status_name(CQL_ERR_DECODE), "bad_frame");
    assert_string_equal(cql_status_name(CQL_ERR_AUTH), "bad_credentials");
    assert_int_equal(cql_status_from_code(0x2400), CQL_ERR_ALREADY_EXISTS);
    assert_int_equal(cql_status_from_code(0x1234), CQL_ERR_SERVER);
    assert_false(cql_status_is_server(CQL_ERR_TIMEOUT));
    assert_false(cql_status_is_server(CQL_ERR_AUTH_REQUIRED));
}

static void test_connect_refuses_bad_arguments(void **state)
{
    (void)state;
    struct cql_conn *c = (struct cql_conn *)1;
    struct cql_error err;
    struct cql_conn_options o = {.host = "127.0.0.1", .port = 1, .username = "", .password = "x"};
    assert_int_equal(cql_connect(&o, &c, &err), CQL_ERR_ARG);
    assert_null(c);
    o.username = "u";
    o.password = NULL;
    assert_int_equal(cql_connect(&o, &c, &err), CQL_ERR_ARG);
    o.host = NULL;
    assert_int_equal(cql_connect(&o, &c, &err), CQL_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_options_and_startup),
        cmocka_unit_test(test_encode_auth_response_is_sasl_plain),
        cmocka_unit_test(test_encode_query_with_bound_values),
        cmocka_unit_test(test_encode_refuses_bad_parameters),
        cmocka_unit_test(test_encode_prepare_and_execute),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_rows_of_every_type),
        cmocka_unit_test(test_rows_with_paging_and_column_specs),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_hostile_counts_and_lengths),
        cmocka_unit_test(test_bad_values_and_types),
        cmocka_unit_test(test_set_keyspace_and_schema_change),
        cmocka_unit_test(test_prepared_metadata),
        cmocka_unit_test(test_frame_flags),
        cmocka_unit_test(test_handshake_messages),
        cmocka_unit_test(test_errors_map_to_statuses),
        cmocka_unit_test(test_long_error_message_is_cut_on_a_character),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_connect_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
