/*
 * fuzz_cql.c - what a Cassandra server sends the plugin (plugins/cassandra/
 * cql.c): the input is a stream of response frames, one after another, as a
 * hostile server would write them; the last one may be cut short. Each
 * header is decoded under a 1 MiB cap and each body (or what is left of it)
 * decoded. A decoded result is walked to its last byte, so ASan sees any
 * pointer past what was read: texts are NUL-terminated and valid where they
 * claim to be, counts match what was allocated, and a refusal always says
 * why. Bytes after a NUL also go through the name and literal quoting.
 * Longer runs: tools/fuzz.sh cql SECONDS.
 */
#include "fuzz_util.h"

#include "cql.h"

static size_t walk_type(const struct cql_type *t, int depth)
{
    FUZZ_CHECK(depth <= CQL_MAX_TYPE_DEPTH + 1, "type deeper than the cap (%d)", depth);
    if (!t)
        return 0;
    size_t n = t->id;
    if (t->custom_class)
        n += strlen(t->custom_class);
    n += walk_type(t->elem, depth + 1) + walk_type(t->value, depth + 1);
    if (t->udt_keyspace)
        n += strlen(t->udt_keyspace) + strlen(t->udt_name);
    for (size_t i = 0; i < t->nfields; i++) {
        n += walk_type(t->fields[i], depth + 1);
        if (t->field_names)
            n += strlen(t->field_names[i]);
    }
    return n;
}

static size_t walk_value(const struct cql_value *v, int depth)
{
    FUZZ_CHECK(depth <= CQL_MAX_TYPE_DEPTH + 1, "value deeper than the cap (%d)", depth);
    size_t n = 0;
    switch (v->kind) {
    case CQL_VALUE_TEXT:
        FUZZ_CHECK(v->u.text.ptr[v->u.text.len] == '\0', "text not NUL-terminated");
        for (size_t i = 0; i < v->u.text.len; i++)
            n += (uint8_t)v->u.text.ptr[i];
        if (v->type && v->type->id == CQL_TYPE_ASCII)
            for (size_t i = 0; i < v->u.text.len; i++)
                FUZZ_CHECK((uint8_t)v->u.text.ptr[i] < 0x80, "non-ASCII byte in an ascii cell");
        break;
    case CQL_VALUE_BYTES:
        for (size_t i = 0; i < v->u.bytes.len; i++)
            n += v->u.bytes.ptr[i];
        break;
    case CQL_VALUE_LIST:
        for (size_t i = 0; i < v->u.list.count; i++)
            n += walk_value(&v->u.list.items[i], depth + 1);
        break;
    case CQL_VALUE_MAP:
        for (size_t i = 0; i < v->u.map.count; i++)
            n += walk_value(&v->u.map.keys[i], depth + 1) + walk_value(&v->u.map.values[i], depth + 1);
        break;
    default:
        n += (size_t)v->u.i;
    }
    return n;
}

static size_t walk_columns(const struct cql_column *cols, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (cols[i].name)
            sum += strlen(cols[i].name) + strlen(cols[i].keyspace) + strlen(cols[i].table);
        sum += walk_type(cols[i].type, 0);
    }
    return sum;
}

static size_t walk_result(const struct cql_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nwarnings; i++)
        n += strlen(r->warnings[i]);
    switch (r->kind) {
    case CQL_RESULT_ROWS:
        n += walk_columns(r->rows.cols, r->rows.ncols);
        for (size_t row = 0; row < r->rows.nrows; row++)
            for (size_t col = 0; col < r->rows.ncols; col++) {
                const struct cql_value *v = cql_cell(r, row, col);
                FUZZ_CHECK(v != NULL, "cell (%zu, %zu) of %zu x %zu missing", row, col, r->rows.nrows, r->rows.ncols);
                n += walk_value(v, 0);
            }
        for (size_t i = 0; i < r->rows.paging_state_len; i++)
            n += r->rows.paging_state[i];
        n += (size_t)cql_column_index(r, "release_version");
        break;
    case CQL_RESULT_SET_KEYSPACE:
        n += strlen(r->keyspace);
        break;
    case CQL_RESULT_SCHEMA_CHANGE:
        n += strlen(r->schema_change.change) + strlen(r->schema_change.keyspace);
        if (r->schema_change.name)
            n += strlen(r->schema_change.name);
        break;
    case CQL_RESULT_PREPARED:
        FUZZ_CHECK(r->prepared.id_len > 0, "empty prepared id accepted");
        n += r->prepared.id[r->prepared.id_len - 1];
        n += walk_columns(r->prepared.bind, r->prepared.nbind) + walk_columns(r->prepared.result, r->prepared.nresult);
        for (size_t i = 0; i < r->prepared.npk; i++)
            FUZZ_CHECK(r->prepared.pk_index[i] < r->prepared.nbind, "pk index %u out of %zu markers",
                       r->prepared.pk_index[i], r->prepared.nbind);
        break;
    default:
        FUZZ_CHECK(r->kind == CQL_RESULT_VOID, "unknown result kind %d decoded", (int)r->kind);
    }
    return n;
}

static void walk_response(const struct cql_response *r)
{
    volatile size_t sink = 0;
    if (r->result)
        sink += walk_result(r->result);
    if (r->authenticator)
        sink += strlen(r->authenticator);
    for (size_t i = 0; i < r->nsupported; i++)
        sink += strlen(r->supported_keys[i]) + strlen(r->supported_values[i]);
    for (size_t i = 0; i < r->token_len; i++)
        sink += r->token[i];
    if (r->opcode == CQL_OP_ERROR) {
        FUZZ_CHECK(memchr(r->error.message, 0, sizeof r->error.message) != NULL, "error message not terminated");
        FUZZ_CHECK(cql_status_is_server(r->error.status), "server error mapped to client status %d", r->error.status);
    }
    (void)sink;
}

static void decode_frames(const uint8_t *data, size_t size)
{
    while (size >= CQL_HEADER_SIZE) {
        struct cql_frame_header h;
        struct cql_error err;
        if (cql_header_decode(data, 1u << 20, &h, &err) != CQL_OK) {
            FUZZ_CHECK(err.status == CQL_ERR_DECODE && err.message[0], "header refused without a reason");
            return;
        }
        data += CQL_HEADER_SIZE;
        size -= CQL_HEADER_SIZE;
        size_t len = h.length <= size ? h.length : size;
        /* exact-size copy, so a read past the body is an ASan report */
        uint8_t *body = malloc(len ? len : 1);
        if (!body)
            abort();
        memcpy(body, data, len);
        struct cql_response resp;
        enum cql_status st = cql_response_decode(&h, body, len, &resp, &err);
        if (st == CQL_OK) {
            walk_response(&resp);
            cql_response_free(&resp);
        } else {
            FUZZ_CHECK(st == CQL_ERR_DECODE || st == CQL_ERR_NOMEM, "decode failed with status %d", st);
            FUZZ_CHECK(err.status == st && err.message[0], "refusal without a reason");
        }
        free(body);
        data += len;
        size -= len;
    }
}

static void quote_texts(const uint8_t *data, size_t size)
{
    char *a, *b;
    fuzz_split(data, size, &a, &b);
    char *q = cql_quote_identifier(b);
    if (q) {
        size_t n = strlen(q);
        FUZZ_CHECK(n >= 3 && q[0] == '"' && q[n - 1] == '"', "identifier not quoted: %s", q);
        for (size_t i = 1; i + 1 < n; i++)
            if (q[i] == '"') {
                FUZZ_CHECK(q[i + 1] == '"' && i + 2 < n, "lone quote in %s", q);
                i++;
            }
        free(q);
    }
    q = cql_quote_literal(b);
    if (q) {
        size_t n = strlen(q);
        FUZZ_CHECK(n >= 2 && q[0] == '\'' && q[n - 1] == '\'', "literal not quoted");
        free(q);
    }
    if (cql_valid_keyspace_name(b))
        FUZZ_CHECK(strlen(b) <= 48 && strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                   strlen(b), "bad keyspace name accepted: %s", b);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_frames(data, size);
    if (size < 4096)
        quote_texts(data, size);
    return 0;
}
