/*
 * cql.c - the Cassandra native protocol v4 client declared in cql.h: request
 * encoders, a response decoder that trusts no length it reads, and blocking
 * socket I/O under deadlines. It keeps no copy of a password and logs nothing.
 */
#include "cql.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CQL_REQUEST_VERSION 0x04
#define CQL_RESPONSE_VERSION 0x84
#define FLAG_COMPRESSION 0x01
#define FLAG_TRACING 0x02
#define FLAG_CUSTOM_PAYLOAD 0x04
#define FLAG_WARNING 0x08

#define QUERY_VALUES 0x01
#define QUERY_PAGE_SIZE 0x04
#define QUERY_PAGING_STATE 0x08

#define META_GLOBAL_SPEC 0x0001
#define META_HAS_MORE_PAGES 0x0002
#define META_NO_METADATA 0x0004

/* More columns than this in one result is taken as a hostile count. */
#define MAX_COLUMNS 65536
#define DEFAULT_PORT 9042
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 12000

/* ---- Statuses and errors ---- */

static const struct {
    int32_t code;
    enum cql_status status;
    const char *name;
} server_codes[] = {
    {0x0000, CQL_ERR_SERVER, "server_error"},
    {0x000A, CQL_ERR_PROTOCOL, "protocol_error"},
    {0x0100, CQL_ERR_AUTH, "bad_credentials"},
    {0x1000, CQL_ERR_UNAVAILABLE, "unavailable"},
    {0x1001, CQL_ERR_OVERLOADED, "overloaded"},
    {0x1002, CQL_ERR_BOOTSTRAPPING, "bootstrapping"},
    {0x1003, CQL_ERR_TRUNCATE, "truncate_error"},
    {0x1100, CQL_ERR_WRITE_TIMEOUT, "write_timeout"},
    {0x1200, CQL_ERR_READ_TIMEOUT, "read_timeout"},
    {0x1300, CQL_ERR_READ_FAILURE, "read_failure"},
    {0x1400, CQL_ERR_FUNCTION_FAILURE, "function_failure"},
    {0x1500, CQL_ERR_WRITE_FAILURE, "write_failure"},
    {0x2000, CQL_ERR_SYNTAX, "syntax_error"},
    {0x2100, CQL_ERR_UNAUTHORIZED, "unauthorized"},
    {0x2200, CQL_ERR_INVALID, "invalid"},
    {0x2300, CQL_ERR_CONFIG, "config_error"},
    {0x2400, CQL_ERR_ALREADY_EXISTS, "already_exists"},
    {0x2500, CQL_ERR_UNPREPARED, "unprepared"},
};

const char *cql_status_name(enum cql_status status)
{
    switch (status) {
    case CQL_OK: return "ok";
    case CQL_ERR_ARG: return "bad_argument";
    case CQL_ERR_NOMEM: return "out_of_memory";
    case CQL_ERR_CONNECT: return "connect_failed";
    case CQL_ERR_TIMEOUT: return "timeout";
    case CQL_ERR_IO: return "connection_broken";
    case CQL_ERR_DECODE: return "bad_frame";
    case CQL_ERR_AUTH_REQUIRED: return "auth_required";
    default: break;
    }
    for (size_t i = 0; i < sizeof server_codes / sizeof server_codes[0]; i++)
        if (server_codes[i].status == status)
            return server_codes[i].name;
    return "unknown";
}

enum cql_status cql_status_from_code(int32_t code)
{
    for (size_t i = 0; i < sizeof server_codes / sizeof server_codes[0]; i++)
        if (server_codes[i].code == code)
            return server_codes[i].status;
    return CQL_ERR_SERVER;
}

bool cql_status_is_server(enum cql_status status)
{
    return status >= CQL_ERR_SERVER;
}

static void error_reset(struct cql_error *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->code = -1;
}

/* Records a client-side failure; the first reason recorded wins. */
__attribute__((format(printf, 3, 4)))
static enum cql_status error_set(struct cql_error *err, enum cql_status status, const char *fmt, ...)
{
    if (!err || err->status != CQL_OK)
        return err ? err->status : status;
    error_reset(err);
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- UTF-8 ---- */

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static bool ascii_valid(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 0x80)
            return false;
    return true;
}

/* ---- Arena: every decoded object of one response, freed at once ---- */

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

struct cql_arena {
    struct arena_block *head;
    size_t total;
    size_t limit;
    bool over_limit;                   /* an allocation went past the limit */
};

static struct cql_arena *arena_new(size_t limit)
{
    struct cql_arena *a = calloc(1, sizeof *a);
    if (a)
        a->limit = limit;
    return a;
}

static void arena_free(struct cql_arena *a)
{
    if (!a)
        return;
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

/* Zeroed memory that lives as long as the arena; NULL past the limit or on ENOMEM. */
static void *arena_alloc(struct cql_arena *a, size_t size)
{
    const size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    if (size == 0)
        size = align;
    if (size > a->limit || a->total > a->limit - size) {
        a->over_limit = true;
        return NULL;
    }
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 8192 ? size : 8192;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

/* ---- Reader: bounded reads over one body ---- */

struct reader {
    const uint8_t *p;
    size_t left;
    struct cql_arena *arena;
    struct cql_error *err;
};

__attribute__((format(printf, 2, 3)))
static bool fail(struct reader *r, const char *fmt, ...)
{
    if (r->err && r->err->status == CQL_OK) {
        error_reset(r->err);
        r->err->status = CQL_ERR_DECODE;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
        va_end(ap);
    }
    return false;
}

static void *ralloc(struct reader *r, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        fail(r, "decoded response too large");
        return NULL;
    }
    void *p = arena_alloc(r->arena, n * size);
    if (!p && r->arena->over_limit) {
        fail(r, "decoded response exceeds %zu bytes", r->arena->limit);
    } else if (!p) {
        if (r->err && r->err->status == CQL_OK) {
            error_reset(r->err);
            r->err->status = CQL_ERR_NOMEM;
            snprintf(r->err->message, sizeof r->err->message, "decoded response too large for memory");
        }
    }
    return p;
}

static bool need(struct reader *r, size_t n, const char *what)
{
    if (r->left < n)
        return fail(r, "truncated frame: %s needs %zu bytes, %zu remain", what, n, r->left);
    return true;
}

static bool rd_raw(struct reader *r, size_t n, const uint8_t **out, const char *what)
{
    if (!need(r, n, what))
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static bool rd_u8(struct reader *r, uint8_t *out, const char *what)
{
    const uint8_t *p;
    if (!rd_raw(r, 1, &p, what))
        return false;
    *out = p[0];
    return true;
}

static bool rd_u16(struct reader *r, uint16_t *out, const char *what)
{
    const uint8_t *p;
    if (!rd_raw(r, 2, &p, what))
        return false;
    *out = (uint16_t)(p[0] << 8 | p[1]);
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static bool rd_i32(struct reader *r, int32_t *out, const char *what)
{
    const uint8_t *p;
    if (!rd_raw(r, 4, &p, what))
        return false;
    *out = (int32_t)be32(p);
    return true;
}

/* A count that must not be negative and whose items, each at least
 * min_item_size bytes, must fit in what remains. */
static bool rd_count(struct reader *r, int32_t n, size_t min_item_size, const char *what)
{
    if (n < 0)
        return fail(r, "negative %s count %d", what, n);
    if ((uint64_t)n * min_item_size > r->left)
        return fail(r, "%s count %d cannot fit in the %zu bytes that remain", what, n, r->left);
    return true;
}

static char *copy_text(struct reader *r, const uint8_t *p, size_t len)
{
    char *s = ralloc(r, len + 1, 1);
    if (s && len)
        memcpy(s, p, len);
    return s;
}

/* [string]: a short length, then UTF-8. */
static bool rd_string(struct reader *r, const char **out, const char *what)
{
    uint16_t n;
    const uint8_t *p;
    if (!rd_u16(r, &n, what) || !rd_raw(r, n, &p, what))
        return false;
    if (!utf8_valid(p, n))
        return fail(r, "%s is not valid UTF-8", what);
    return (*out = copy_text(r, p, n)) != NULL;
}

/* [string list]: a short count of [string]. */
static bool rd_string_list(struct reader *r, size_t *count, const char *const **out, const char *what)
{
    uint16_t n;
    if (!rd_u16(r, &n, what) || !rd_count(r, n, 2, what))
        return false;
    const char **items = ralloc(r, n ? n : 1, sizeof *items);
    if (!items)
        return false;
    for (uint16_t i = 0; i < n; i++)
        if (!rd_string(r, &items[i], what))
            return false;
    *count = n;
    *out = items;
    return true;
}

/* [bytes]: an int length (negative: null, only -1 allowed), then that many bytes. */
static bool rd_bytes(struct reader *r, const uint8_t **out, int32_t *len, const char *what)
{
    if (!rd_i32(r, len, what))
        return false;
    if (*len < -1)
        return fail(r, "%s has invalid length %d", what, *len);
    if (*len == -1) {
        *out = NULL;
        return true;
    }
    return rd_raw(r, (size_t)*len, out, what);
}

/* [short bytes]: a short length, then that many bytes. */
static bool rd_short_bytes(struct reader *r, const uint8_t **out, size_t *len, const char *what)
{
    uint16_t n;
    if (!rd_u16(r, &n, what) || !rd_raw(r, n, out, what))
        return false;
    *len = n;
    return true;
}

/* ---- Types ---- */

static bool rd_type(struct reader *r, int depth, const struct cql_type **out);

static bool rd_type_fields(struct reader *r, int depth, struct cql_type *t, bool named)
{
    uint16_t n;
    if (!rd_u16(r, &n, "field count") || !rd_count(r, n, named ? 4 : 2, "field"))
        return false;
    const struct cql_type **fields = ralloc(r, n ? n : 1, sizeof *fields);
    const char **names = named ? ralloc(r, n ? n : 1, sizeof *names) : NULL;
    if (!fields || (named && !names))
        return false;
    for (uint16_t i = 0; i < n; i++) {
        if (named && !rd_string(r, &names[i], "field name"))
            return false;
        if (!rd_type(r, depth + 1, &fields[i]))
            return false;
    }
    t->nfields = n;
    t->fields = fields;
    t->field_names = names;
    return true;
}

static bool type_is_simple(uint16_t id)
{
    return (id >= CQL_TYPE_ASCII && id <= CQL_TYPE_DURATION && id != 0x000A);
}

/* [option]: a type id and, for custom and composite types, what it is made of. */
static bool rd_type(struct reader *r, int depth, const struct cql_type **out)
{
    if (depth > CQL_MAX_TYPE_DEPTH)
        return fail(r, "column type nested deeper than %d", CQL_MAX_TYPE_DEPTH);
    uint16_t id;
    if (!rd_u16(r, &id, "type id"))
        return false;
    struct cql_type *t = ralloc(r, 1, sizeof *t);
    if (!t)
        return false;
    t->id = id;
    bool ok = true;
    switch (id) {
    case CQL_TYPE_CUSTOM:
        ok = rd_string(r, &t->custom_class, "custom type class");
        break;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        ok = rd_type(r, depth + 1, &t->elem);
        break;
    case CQL_TYPE_MAP:
        ok = rd_type(r, depth + 1, &t->elem) && rd_type(r, depth + 1, &t->value);
        break;
    case CQL_TYPE_UDT:
        ok = rd_string(r, &t->udt_keyspace, "type keyspace") && rd_string(r, &t->udt_name, "type name") &&
             rd_type_fields(r, depth, t, true);
        break;
    case CQL_TYPE_TUPLE:
        ok = rd_type_fields(r, depth, t, false);
        break;
    default:
        if (!type_is_simple(id))
            return fail(r, "unknown column type id 0x%04x", id);
    }
    *out = t;
    return ok;
}

/* ---- Values ---- */

static bool decode_value(struct reader *r, const struct cql_type *type, const uint8_t *p, int32_t len,
                         int depth, struct cql_value *out);

static size_t fixed_width(uint16_t id)
{
    switch (id) {
    case CQL_TYPE_BOOLEAN: case CQL_TYPE_TINYINT: return 1;
    case CQL_TYPE_SMALLINT: return 2;
    case CQL_TYPE_INT: case CQL_TYPE_DATE: case CQL_TYPE_FLOAT: return 4;
    case CQL_TYPE_BIGINT: case CQL_TYPE_COUNTER: case CQL_TYPE_TIMESTAMP: case CQL_TYPE_TIME:
    case CQL_TYPE_DOUBLE: return 8;
    case CQL_TYPE_UUID: case CQL_TYPE_TIMEUUID: return 16;
    default: return 0;
    }
}

static void decode_fixed(uint16_t id, const uint8_t *p, struct cql_value *out)
{
    switch (id) {
    case CQL_TYPE_BOOLEAN:
        out->kind = CQL_VALUE_BOOL;
        out->u.b = p[0] != 0;
        return;
    case CQL_TYPE_TINYINT:
        out->kind = CQL_VALUE_INT;
        out->u.i = (int8_t)p[0];
        return;
    case CQL_TYPE_SMALLINT:
        out->kind = CQL_VALUE_INT;
        out->u.i = (int16_t)(p[0] << 8 | p[1]);
        return;
    case CQL_TYPE_INT:
        out->kind = CQL_VALUE_INT;
        out->u.i = (int32_t)be32(p);
        return;
    case CQL_TYPE_DATE:
        out->kind = CQL_VALUE_INT;
        out->u.i = be32(p);
        return;
    case CQL_TYPE_FLOAT: {
        uint32_t bits = be32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        out->kind = CQL_VALUE_DOUBLE;
        out->u.d = f;
        return;
    }
    case CQL_TYPE_DOUBLE: {
        uint64_t bits = be64(p);
        memcpy(&out->u.d, &bits, sizeof out->u.d);
        out->kind = CQL_VALUE_DOUBLE;
        return;
    }
    case CQL_TYPE_UUID: case CQL_TYPE_TIMEUUID:
        out->kind = CQL_VALUE_UUID;
        memcpy(out->u.uuid, p, 16);
        return;
    default:
        out->kind = CQL_VALUE_INT;
        out->u.i = (int64_t)be64(p);
    }
}

static bool decode_bytes(struct reader *r, const uint8_t *p, size_t len, struct cql_value *out)
{
    uint8_t *copy = ralloc(r, len ? len : 1, 1);
    if (!copy)
        return false;
    if (len)
        memcpy(copy, p, len);
    out->kind = CQL_VALUE_BYTES;
    out->u.bytes.ptr = copy;
    out->u.bytes.len = len;
    return true;
}

/* list, set and map bodies: an int count, then [bytes] elements (keys and values for a map). */
static bool decode_collection(struct reader *r, const struct cql_type *type, const uint8_t *p, size_t len,
                              int depth, struct cql_value *out)
{
    struct reader in = {.p = p, .left = len, .arena = r->arena, .err = r->err};
    bool map = type->id == CQL_TYPE_MAP;
    int32_t n;
    if (!rd_i32(&in, &n, "collection size") || !rd_count(&in, n, map ? 8 : 4, "collection element"))
        return false;
    struct cql_value *keys = ralloc(r, n ? (size_t)n : 1, sizeof *keys);
    struct cql_value *values = map ? ralloc(r, n ? (size_t)n : 1, sizeof *values) : NULL;
    if (!keys || (map && !values))
        return false;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *ep;
        int32_t elen;
        if (!rd_bytes(&in, &ep, &elen, "collection element") ||
            !decode_value(r, type->elem, ep, elen, depth + 1, &keys[i]))
            return false;
        if (map && (!rd_bytes(&in, &ep, &elen, "map value") ||
                    !decode_value(r, type->value, ep, elen, depth + 1, &values[i])))
            return false;
    }
    if (in.left)
        return fail(r, "%zu bytes left over after a collection of %d elements", in.left, n);
    if (map) {
        out->kind = CQL_VALUE_MAP;
        out->u.map.count = (size_t)n;
        out->u.map.keys = keys;
        out->u.map.values = values;
    } else {
        out->kind = CQL_VALUE_LIST;
        out->u.list.count = (size_t)n;
        out->u.list.items = keys;
    }
    return true;
}

/* One cell of `len` bytes at p (len -1: null) as a value of `type`. */
static bool decode_value(struct reader *r, const struct cql_type *type, const uint8_t *p, int32_t len,
                         int depth, struct cql_value *out)
{
    out->type = type;
    if (len < 0) {
        out->kind = CQL_VALUE_NULL;
        return true;
    }
    if (depth > CQL_MAX_TYPE_DEPTH)
        return fail(r, "value nested deeper than %d", CQL_MAX_TYPE_DEPTH);
    size_t n = (size_t)len;
    if (!type)
        return decode_bytes(r, p, n, out);
    switch (type->id) {
    case CQL_TYPE_ASCII:
    case CQL_TYPE_VARCHAR:
        if (type->id == CQL_TYPE_ASCII ? !ascii_valid(p, n) : !utf8_valid(p, n))
            return fail(r, "%s cell is not valid %s", type->id == CQL_TYPE_ASCII ? "ascii" : "text",
                        type->id == CQL_TYPE_ASCII ? "ASCII" : "UTF-8");
        out->kind = CQL_VALUE_TEXT;
        out->u.text.len = n;
        return (out->u.text.ptr = copy_text(r, p, n)) != NULL;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
        if (n == 0)
            return decode_bytes(r, p, n, out);
        return decode_collection(r, type, p, n, depth, out);
    default:
        break;
    }
    size_t width = fixed_width(type->id);
    if (!width || n == 0)
        return decode_bytes(r, p, n, out);
    if (n != width)
        return fail(r, "a cell of type 0x%04x must be %zu bytes, not %zu", type->id, width, n);
    decode_fixed(type->id, p, out);
    return true;
}

/* ---- Metadata and results ---- */

struct metadata {
    int32_t flags;
    size_t ncols;
    struct cql_column *cols;
    const uint8_t *paging_state;
    size_t paging_state_len;
    size_t npk;
    uint16_t *pk_index;
};

static bool rd_column_specs(struct reader *r, struct metadata *m)
{
    const char *gks = NULL, *gtable = NULL;
    if (m->flags & META_GLOBAL_SPEC) {
        if (!rd_string(r, &gks, "keyspace") || !rd_string(r, &gtable, "table"))
            return false;
    }
    for (size_t i = 0; i < m->ncols; i++) {
        struct cql_column *c = &m->cols[i];
        c->keyspace = gks;
        c->table = gtable;
        if (!(m->flags & META_GLOBAL_SPEC) &&
            (!rd_string(r, &c->keyspace, "keyspace") || !rd_string(r, &c->table, "table")))
            return false;
        if (!rd_string(r, &c->name, "column name") || !rd_type(r, 0, &c->type))
            return false;
    }
    return true;
}

/* Rows and result metadata; with `bind`, the prepared bind metadata (v4: it lists the pk indexes). */
static bool rd_metadata(struct reader *r, bool bind, struct metadata *m)
{
    int32_t count;
    memset(m, 0, sizeof *m);
    if (!rd_i32(r, &m->flags, "metadata flags") || !rd_i32(r, &count, "column count"))
        return false;
    if (count < 0 || count > MAX_COLUMNS)
        return fail(r, "column count %d is out of range", count);
    m->ncols = (size_t)count;
    if (bind) {
        int32_t npk;
        if (!rd_i32(r, &npk, "partition key count") || !rd_count(r, npk, 2, "partition key index"))
            return false;
        m->npk = (size_t)npk;
        m->pk_index = ralloc(r, m->npk ? m->npk : 1, sizeof *m->pk_index);
        if (!m->pk_index)
            return false;
        for (size_t i = 0; i < m->npk; i++) {
            if (!rd_u16(r, &m->pk_index[i], "partition key index"))
                return false;
            if (m->pk_index[i] >= m->ncols)
                return fail(r, "partition key index %u names no bind marker", m->pk_index[i]);
        }
    } else if (m->flags & META_HAS_MORE_PAGES) {
        const uint8_t *p;
        int32_t len;
        if (!rd_bytes(r, &p, &len, "paging state"))
            return false;
        if (!p)
            return fail(r, "more pages announced without a paging state");
        m->paging_state = (const uint8_t *)copy_text(r, p, (size_t)len);
        m->paging_state_len = (size_t)len;
        if (!m->paging_state)
            return false;
    }
    size_t spec_min = m->flags & META_GLOBAL_SPEC ? 4 : 8;
    if (!(m->flags & META_NO_METADATA) && (uint64_t)m->ncols * spec_min > r->left)
        return fail(r, "column count %zu cannot fit in the %zu bytes that remain", m->ncols, r->left);
    m->cols = ralloc(r, m->ncols ? m->ncols : 1, sizeof *m->cols);
    if (!m->cols)
        return false;
    if (m->flags & META_NO_METADATA)
        return true;
    return rd_column_specs(r, m);
}

static bool rd_rows(struct reader *r, struct cql_result *res)
{
    struct metadata m;
    int32_t nrows;
    if (!rd_metadata(r, false, &m) || !rd_i32(r, &nrows, "row count"))
        return false;
    if (nrows < 0)
        return fail(r, "negative row count %d", nrows);
    if (m.ncols && (uint64_t)nrows * m.ncols * 4 > r->left)
        return fail(r, "%d rows of %zu columns cannot fit in the %zu bytes that remain", nrows, m.ncols, r->left);
    size_t ncells = m.ncols ? (size_t)nrows * m.ncols : 0;
    struct cql_value *cells = ralloc(r, ncells ? ncells : 1, sizeof *cells);
    if (!cells)
        return false;
    for (size_t i = 0; i < ncells; i++) {
        const uint8_t *p;
        int32_t len;
        if (!rd_bytes(r, &p, &len, "cell") || !decode_value(r, m.cols[i % m.ncols].type, p, len, 0, &cells[i]))
            return false;
    }
    res->rows.ncols = m.ncols;
    res->rows.cols = m.cols;
    res->rows.nrows = m.ncols ? (size_t)nrows : 0;
    res->rows.cells = cells;
    res->rows.has_more_pages = m.flags & META_HAS_MORE_PAGES;
    res->rows.paging_state = m.paging_state;
    res->rows.paging_state_len = m.paging_state_len;
    return true;
}

static bool rd_prepared(struct reader *r, struct cql_result *res)
{
    const uint8_t *id;
    size_t id_len;
    struct metadata bind, result;
    if (!rd_short_bytes(r, &id, &id_len, "prepared id"))
        return false;
    if (id_len == 0)
        return fail(r, "empty prepared statement id");
    uint8_t *copy = ralloc(r, id_len, 1);
    if (!copy)
        return false;
    memcpy(copy, id, id_len);
    if (!rd_metadata(r, true, &bind) || !rd_metadata(r, false, &result))
        return false;
    res->prepared.id = copy;
    res->prepared.id_len = id_len;
    res->prepared.nbind = bind.ncols;
    res->prepared.bind = bind.cols;
    res->prepared.npk = bind.npk;
    res->prepared.pk_index = bind.pk_index;
    res->prepared.nresult = result.ncols;
    res->prepared.result = result.cols;
    return true;
}

static bool rd_schema_change(struct reader *r, struct cql_result *res)
{
    const char *target;
    if (!rd_string(r, &res->schema_change.change, "change type") || !rd_string(r, &target, "change target") ||
        !rd_string(r, &res->schema_change.keyspace, "keyspace"))
        return false;
    res->schema_change.target = target;
    if (!strcmp(target, "KEYSPACE"))
        return true;
    if (!rd_string(r, &res->schema_change.name, "changed name"))
        return false;
    if (!strcmp(target, "TABLE") || !strcmp(target, "TYPE"))
        return true;
    if (!strcmp(target, "FUNCTION") || !strcmp(target, "AGGREGATE")) {
        size_t n;
        const char *const *args;
        return rd_string_list(r, &n, &args, "argument types");
    }
    return fail(r, "unknown schema change target \"%.64s\"", target);
}

static bool rd_result(struct reader *r, struct cql_result *res)
{
    int32_t kind;
    if (!rd_i32(r, &kind, "result kind"))
        return false;
    res->kind = (enum cql_result_kind)kind;
    switch (kind) {
    case CQL_RESULT_VOID: return true;
    case CQL_RESULT_ROWS: return rd_rows(r, res);
    case CQL_RESULT_SET_KEYSPACE: return rd_string(r, &res->keyspace, "keyspace");
    case CQL_RESULT_PREPARED: return rd_prepared(r, res);
    case CQL_RESULT_SCHEMA_CHANGE: return rd_schema_change(r, res);
    default: return fail(r, "unknown result kind %d", kind);
    }
}

/* ---- ERROR bodies ---- */

/* Copies s into dst (size n), cutting at a character boundary. */
static void copy_utf8(char *dst, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (len >= n) {
        len = n - 1;
        while (len > 0 && ((uint8_t)s[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static bool rd_error_details(struct reader *r, struct cql_error *e)
{
    uint16_t cl;
    int32_t a = 0, b = 0, n;
    uint8_t byte;
    const char *s1, *s2;
    size_t count;
    const char *const *list;
    switch (e->code) {
    case 0x1000: /* consistency, required, alive */
        if (!rd_u16(r, &cl, "consistency") || !rd_i32(r, &b, "required") || !rd_i32(r, &a, "alive"))
            return false;
        break;
    case 0x1100: case 0x1200: case 0x1300: case 0x1500: /* consistency, received, block_for, ... */
        if (!rd_u16(r, &cl, "consistency") || !rd_i32(r, &a, "received") || !rd_i32(r, &b, "block_for"))
            return false;
        if ((e->code == 0x1300 || e->code == 0x1500) && !rd_i32(r, &n, "failure count"))
            return false;
        if (e->code == 0x1100 || e->code == 0x1500) {
            if (!rd_string(r, &s1, "write type"))
                return false;
        } else if (!rd_u8(r, &byte, "data_present")) {
            return false;
        }
        break;
    case 0x1400:
        if (!rd_string(r, &s1, "keyspace") || !rd_string(r, &s2, "function") ||
            !rd_string_list(r, &count, &list, "argument types"))
            return false;
        copy_utf8(e->keyspace, sizeof e->keyspace, s1);
        return true;
    case 0x2400:
        if (!rd_string(r, &s1, "keyspace") || !rd_string(r, &s2, "table"))
            return false;
        copy_utf8(e->keyspace, sizeof e->keyspace, s1);
        copy_utf8(e->table, sizeof e->table, s2);
        return true;
    case 0x2500: {
        const uint8_t *id;
        size_t len;
        return rd_short_bytes(r, &id, &len, "unprepared id");
    }
    default:
        return true;
    }
    e->consistency = cl;
    e->required = b;
    e->alive = a;
    return true;
}

static bool rd_error(struct reader *r, struct cql_error *e)
{
    int32_t code;
    const char *message;
    memset(e, 0, sizeof *e);
    if (!rd_i32(r, &code, "error code") || !rd_string(r, &message, "error message"))
        return false;
    e->code = code;
    e->status = cql_status_from_code(code);
    copy_utf8(e->message, sizeof e->message, message);
    return rd_error_details(r, e);
}

/* ---- Response bodies ---- */

static bool rd_supported(struct reader *r, struct cql_response *out)
{
    uint16_t n;
    if (!rd_u16(r, &n, "option count") || !rd_count(r, n, 4, "option"))
        return false;
    const char **keys = ralloc(r, n ? n : 1, sizeof *keys);
    const char **values = ralloc(r, n ? n : 1, sizeof *values);
    if (!keys || !values)
        return false;
    for (uint16_t i = 0; i < n; i++) {
        size_t count;
        const char *const *list;
        if (!rd_string(r, &keys[i], "option name") || !rd_string_list(r, &count, &list, "option values"))
            return false;
        values[i] = count ? list[0] : "";
    }
    out->nsupported = n;
    out->supported_keys = keys;
    out->supported_values = values;
    return true;
}

static bool rd_token(struct reader *r, struct cql_response *out)
{
    const uint8_t *p;
    int32_t len;
    if (!rd_bytes(r, &p, &len, "auth token"))
        return false;
    out->token_null = p == NULL;
    out->token_len = len > 0 ? (size_t)len : 0;
    out->token = p ? (const uint8_t *)copy_text(r, p, out->token_len) : NULL;
    return p == NULL || out->token != NULL;
}

/* The tracing id, warnings and custom payload that frame flags put first. */
static bool rd_frame_extras(struct reader *r, uint8_t flags, struct cql_result *res)
{
    const uint8_t *p;
    size_t nwarn = 0;
    const char *const *warnings = NULL;
    if ((flags & FLAG_TRACING) && !rd_raw(r, 16, &p, "tracing id"))
        return false;
    if ((flags & FLAG_WARNING) && !rd_string_list(r, &nwarn, &warnings, "warnings"))
        return false;
    if (flags & FLAG_CUSTOM_PAYLOAD) {
        uint16_t n;
        if (!rd_u16(r, &n, "custom payload") || !rd_count(r, n, 6, "custom payload entry"))
            return false;
        for (uint16_t i = 0; i < n; i++) {
            const char *key;
            int32_t len;
            if (!rd_string(r, &key, "custom payload key") || !rd_bytes(r, &p, &len, "custom payload value"))
                return false;
        }
    }
    if (res) {
        res->nwarnings = nwarn;
        res->warnings = warnings;
    }
    return true;
}

static bool rd_body(struct reader *r, const struct cql_frame_header *h, struct cql_response *out)
{
    switch (h->opcode) {
    case CQL_OP_ERROR: return rd_error(r, &out->error);
    case CQL_OP_READY: return true;
    case CQL_OP_AUTHENTICATE: return rd_string(r, &out->authenticator, "authenticator");
    case CQL_OP_SUPPORTED: return rd_supported(r, out);
    case CQL_OP_RESULT: return rd_result(r, out->result);
    case CQL_OP_AUTH_CHALLENGE:
    case CQL_OP_AUTH_SUCCESS: return rd_token(r, out);
    case CQL_OP_EVENT: r->p += r->left; r->left = 0; return true;
    default: return fail(r, "opcode 0x%02x is not a response", h->opcode);
    }
}

enum cql_status cql_header_decode(const uint8_t bytes[CQL_HEADER_SIZE], uint32_t max_body,
                                  struct cql_frame_header *out, struct cql_error *err)
{
    error_reset(err);
    out->version = bytes[0];
    out->flags = bytes[1];
    out->stream = (int16_t)(bytes[2] << 8 | bytes[3]);
    out->opcode = bytes[4];
    out->length = be32(bytes + 5);
    if (max_body == 0 || max_body > CQL_MAX_BODY_SPEC)
        max_body = CQL_MAX_BODY_SPEC;
    if (out->version != CQL_RESPONSE_VERSION)
        return error_set(err, CQL_ERR_DECODE, "frame version 0x%02x is not a protocol v4 response (0x84)",
                         out->version);
    if (out->flags & FLAG_COMPRESSION)
        return error_set(err, CQL_ERR_DECODE, "compressed frame, but no compression was agreed");
    switch (out->opcode) {
    case CQL_OP_ERROR: case CQL_OP_READY: case CQL_OP_AUTHENTICATE: case CQL_OP_SUPPORTED:
    case CQL_OP_RESULT: case CQL_OP_EVENT: case CQL_OP_AUTH_CHALLENGE: case CQL_OP_AUTH_SUCCESS:
        break;
    default:
        return error_set(err, CQL_ERR_DECODE, "opcode 0x%02x is not a response", out->opcode);
    }
    if (out->length > max_body)
        return error_set(err, CQL_ERR_DECODE, "frame body of %u bytes exceeds the %u-byte limit", out->length,
                         max_body);
    return CQL_OK;
}

void cql_result_free(struct cql_result *result)
{
    if (result)
        arena_free(result->arena);
}

void cql_response_free(struct cql_response *response)
{
    if (!response)
        return;
    cql_result_free(response->result);
    arena_free(response->arena);
    memset(response, 0, sizeof *response);
}

/* Decoded objects take at most this much memory for a body of len bytes. */
static size_t arena_limit(size_t len)
{
    return len * 16 + 65536;
}

enum cql_status cql_response_decode(const struct cql_frame_header *header, const uint8_t *body,
                                    size_t len, struct cql_response *out, struct cql_error *err)
{
    struct cql_error local;
    if (!err)
        err = &local;
    error_reset(err);
    err->status = CQL_OK;
    memset(out, 0, sizeof *out);
    out->opcode = header->opcode;
    out->arena = arena_new(arena_limit(len));
    if (!out->arena)
        return error_set(err, CQL_ERR_NOMEM, "out of memory");
    struct reader r = {.p = body, .left = len, .arena = out->arena, .err = err};
    if (header->opcode == CQL_OP_RESULT) {
        struct cql_arena *ra = arena_new(arena_limit(len));
        out->result = ra ? arena_alloc(ra, sizeof *out->result) : NULL;
        if (!out->result) {
            arena_free(ra);
            cql_response_free(out);
            return error_set(err, CQL_ERR_NOMEM, "out of memory");
        }
        out->result->arena = ra;
        r.arena = ra;
    }
    bool ok = rd_frame_extras(&r, header->flags, out->result) && rd_body(&r, header, out);
    if (ok && r.left)
        ok = fail(&r, "%zu trailing bytes after the message body", r.left);
    if (!ok) {
        enum cql_status st = err->status;
        cql_response_free(out);
        return st;
    }
    return CQL_OK;
}

/* ---- Accessors ---- */

const struct cql_value *cql_cell(const struct cql_result *result, size_t row, size_t col)
{
    if (!result || result->kind != CQL_RESULT_ROWS || row >= result->rows.nrows || col >= result->rows.ncols)
        return NULL;
    return &result->rows.cells[row * result->rows.ncols + col];
}

int cql_column_index(const struct cql_result *result, const char *name)
{
    if (!result || result->kind != CQL_RESULT_ROWS || !name)
        return -1;
    for (size_t i = 0; i < result->rows.ncols && i < (size_t)MAX_COLUMNS; i++)
        if (result->rows.cols[i].name && !strcmp(result->rows.cols[i].name, name))
            return (int)i;
    return -1;
}

const struct cql_value *cql_cell_by_name(const struct cql_result *result, size_t row, const char *name)
{
    int col = cql_column_index(result, name);
    return col < 0 ? NULL : cql_cell(result, row, (size_t)col);
}

const char *cql_value_text(const struct cql_value *value)
{
    return value && value->kind == CQL_VALUE_TEXT ? value->u.text.ptr : NULL;
}

/* ---- Encoding ---- */

void cql_buf_free(struct cql_buf *buf)
{
    if (!buf)
        return;
    if (buf->data) {
        explicit_bzero(buf->data, buf->cap);
        free(buf->data);
    }
    memset(buf, 0, sizeof *buf);
}

/* Grows by reallocating into fresh memory and wiping the old, since frames may hold a password. */
static bool buf_reserve(struct cql_buf *buf, size_t extra)
{
    if (buf->failed)
        return false;
    if (extra > SIZE_MAX / 2 - buf->len) {
        buf->failed = true;
        return false;
    }
    if (buf->len + extra <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra)
        cap *= 2;
    uint8_t *data = malloc(cap);
    if (!data) {
        buf->failed = true;
        return false;
    }
    if (buf->data) {
        memcpy(data, buf->data, buf->len);
        explicit_bzero(buf->data, buf->cap);
        free(buf->data);
    }
    buf->data = data;
    buf->cap = cap;
    return true;
}

static void put_raw(struct cql_buf *buf, const void *p, size_t n)
{
    if (!buf_reserve(buf, n))
        return;
    if (n)
        memcpy(buf->data + buf->len, p, n);
    buf->len += n;
}

static void put_u8(struct cql_buf *buf, uint8_t v)
{
    put_raw(buf, &v, 1);
}

static void put_u16(struct cql_buf *buf, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put_raw(buf, b, 2);
}

static void put_u32(struct cql_buf *buf, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put_raw(buf, b, 4);
}

static void put_u64(struct cql_buf *buf, uint64_t v)
{
    put_u32(buf, (uint32_t)(v >> 32));
    put_u32(buf, (uint32_t)v);
}

static void put_string(struct cql_buf *buf, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        buf->failed = true;
        return;
    }
    put_u16(buf, (uint16_t)n);
    put_raw(buf, s, n);
}

static void put_long_string(struct cql_buf *buf, const char *s)
{
    size_t n = strlen(s);
    if (n > INT32_MAX) {
        buf->failed = true;
        return;
    }
    put_u32(buf, (uint32_t)n);
    put_raw(buf, s, n);
}

/* Starts a request frame; frame_end fills in its length. */
static size_t frame_begin(struct cql_buf *buf, int16_t stream, uint8_t opcode)
{
    size_t start = buf->len;
    put_u8(buf, CQL_REQUEST_VERSION);
    put_u8(buf, 0);
    put_u16(buf, (uint16_t)stream);
    put_u8(buf, opcode);
    put_u32(buf, 0);
    return start;
}

static void frame_end(struct cql_buf *buf, size_t start)
{
    if (buf->failed)
        return;
    size_t body = buf->len - start - CQL_HEADER_SIZE;
    if (body > CQL_MAX_BODY_SPEC) {
        buf->failed = true;
        return;
    }
    uint8_t *p = buf->data + start + 5;
    p[0] = (uint8_t)(body >> 24);
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
}

void cql_encode_options(struct cql_buf *buf, int16_t stream)
{
    frame_end(buf, frame_begin(buf, stream, CQL_OP_OPTIONS));
}

void cql_encode_startup(struct cql_buf *buf, int16_t stream)
{
    size_t start = frame_begin(buf, stream, CQL_OP_STARTUP);
    put_u16(buf, 1);
    put_string(buf, "CQL_VERSION");
    put_string(buf, "3.0.0");
    frame_end(buf, start);
}

void cql_encode_auth_response(struct cql_buf *buf, int16_t stream, const char *user, const char *password)
{
    size_t ulen = strlen(user), plen = strlen(password);
    size_t start = frame_begin(buf, stream, CQL_OP_AUTH_RESPONSE);
    if (ulen + plen + 2 > INT32_MAX) {
        buf->failed = true;
        return;
    }
    put_u32(buf, (uint32_t)(ulen + plen + 2));
    put_u8(buf, 0);
    put_raw(buf, user, ulen);
    put_u8(buf, 0);
    put_raw(buf, password, plen);
    frame_end(buf, start);
}

void cql_encode_prepare(struct cql_buf *buf, int16_t stream, const char *cql)
{
    size_t start = frame_begin(buf, stream, CQL_OP_PREPARE);
    put_long_string(buf, cql);
    frame_end(buf, start);
}

static bool is_integer_type(uint16_t id)
{
    return id == CQL_TYPE_INT || id == CQL_TYPE_BIGINT || id == CQL_TYPE_COUNTER || id == CQL_TYPE_TIMESTAMP ||
           id == CQL_TYPE_SMALLINT || id == CQL_TYPE_TINYINT || id == CQL_TYPE_TIME;
}

static bool is_text_type(uint16_t id)
{
    return id == CQL_TYPE_VARCHAR || id == CQL_TYPE_ASCII;
}

static enum cql_status put_text_value(struct cql_buf *buf, const char *s, bool ascii, size_t index,
                                      struct cql_error *err)
{
    size_t n = strlen(s);
    if (ascii ? !ascii_valid((const uint8_t *)s, n) : !utf8_valid((const uint8_t *)s, n))
        return error_set(err, CQL_ERR_ARG, "parameter %zu is not valid %s", index + 1, ascii ? "ASCII" : "UTF-8");
    if (n > INT32_MAX)
        return error_set(err, CQL_ERR_ARG, "parameter %zu is too long", index + 1);
    put_u32(buf, (uint32_t)n);
    put_raw(buf, s, n);
    return CQL_OK;
}

static enum cql_status put_integer_value(struct cql_buf *buf, int64_t v, uint16_t as, size_t index,
                                         struct cql_error *err)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    size_t width = fixed_width(as);
    if (width == 4) {
        lo = INT32_MIN;
        hi = INT32_MAX;
    } else if (width == 2) {
        lo = INT16_MIN;
        hi = INT16_MAX;
    } else if (width == 1) {
        lo = INT8_MIN;
        hi = INT8_MAX;
    }
    if (v < lo || v > hi)
        return error_set(err, CQL_ERR_ARG, "parameter %zu (an integer) is out of range for its marker", index + 1);
    put_u32(buf, (uint32_t)width);
    for (size_t i = width; i-- > 0;)
        put_u8(buf, (uint8_t)((uint64_t)v >> (8 * i)));
    return CQL_OK;
}

static enum cql_status put_text_collection(struct cql_buf *buf, const struct cql_param *p, size_t index,
                                           struct cql_error *err)
{
    if (p->u.texts.count > INT32_MAX / 4)
        return error_set(err, CQL_ERR_ARG, "parameter %zu has too many elements", index + 1);
    size_t start = buf->len;
    put_u32(buf, 0);
    put_u32(buf, (uint32_t)p->u.texts.count);
    for (size_t i = 0; i < p->u.texts.count; i++) {
        if (!p->u.texts.items[i])
            return error_set(err, CQL_ERR_ARG, "parameter %zu has a NULL element", index + 1);
        enum cql_status st = put_text_value(buf, p->u.texts.items[i], false, index, err);
        if (st != CQL_OK)
            return st;
    }
    if (buf->failed)
        return error_set(err, CQL_ERR_NOMEM, "out of memory");
    size_t len = buf->len - start - 4;
    if (len > INT32_MAX)
        return error_set(err, CQL_ERR_ARG, "parameter %zu is too long", index + 1);
    uint8_t *q = buf->data + start;
    q[0] = (uint8_t)(len >> 24);
    q[1] = (uint8_t)(len >> 16);
    q[2] = (uint8_t)(len >> 8);
    q[3] = (uint8_t)len;
    return CQL_OK;
}

/* Can a parameter of type `have` be sent for a marker of type `want`? */
static bool param_fits(const struct cql_param *p, const struct cql_type *want)
{
    uint16_t have = p->type, id = want->id;
    if (is_text_type(have))
        return is_text_type(id);
    if (is_integer_type(have))
        return is_integer_type(id);
    if (have == CQL_TYPE_DOUBLE || have == CQL_TYPE_FLOAT)
        return id == CQL_TYPE_DOUBLE || id == CQL_TYPE_FLOAT;
    if (have == CQL_TYPE_UUID || have == CQL_TYPE_TIMEUUID)
        return id == CQL_TYPE_UUID || id == CQL_TYPE_TIMEUUID;
    if (have == CQL_TYPE_LIST || have == CQL_TYPE_SET)
        return (id == CQL_TYPE_LIST || id == CQL_TYPE_SET) && want->elem && is_text_type(want->elem->id);
    return have == id;
}

/* One [value]: the parameter serialized as a value of type `as`. */
static enum cql_status put_param(struct cql_buf *buf, const struct cql_param *p, uint16_t as, size_t index,
                                 struct cql_error *err)
{
    if (p->is_null) {
        put_u32(buf, UINT32_MAX);
        return CQL_OK;
    }
    if (is_text_type(p->type)) {
        if (!p->u.text)
            return error_set(err, CQL_ERR_ARG, "parameter %zu has no text", index + 1);
        return put_text_value(buf, p->u.text, as == CQL_TYPE_ASCII, index, err);
    }
    if (is_integer_type(p->type))
        return put_integer_value(buf, p->u.i, as, index, err);
    switch (p->type) {
    case CQL_TYPE_BOOLEAN:
        put_u32(buf, 1);
        put_u8(buf, p->u.b ? 1 : 0);
        return CQL_OK;
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_FLOAT:
        if (as == CQL_TYPE_FLOAT) {
            float f = (float)p->u.d;
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            put_u32(buf, 4);
            put_u32(buf, bits);
        } else {
            uint64_t bits;
            memcpy(&bits, &p->u.d, sizeof bits);
            put_u32(buf, 8);
            put_u64(buf, bits);
        }
        return CQL_OK;
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        put_u32(buf, 16);
        put_raw(buf, p->u.uuid, 16);
        return CQL_OK;
    case CQL_TYPE_BLOB:
        if (p->u.bytes.len > INT32_MAX || (p->u.bytes.len && !p->u.bytes.ptr))
            return error_set(err, CQL_ERR_ARG, "parameter %zu is not a valid blob", index + 1);
        put_u32(buf, (uint32_t)p->u.bytes.len);
        put_raw(buf, p->u.bytes.ptr, p->u.bytes.len);
        return CQL_OK;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        return put_text_collection(buf, p, index, err);
    default:
        return error_set(err, CQL_ERR_ARG, "parameter %zu has a type (0x%04x) this client cannot bind", index + 1,
                         p->type);
    }
}

/* Query parameters: consistency, flags, values, page size and paging state. */
static enum cql_status put_query_params(struct cql_buf *buf, const struct cql_param *params, size_t nparams,
                                        const struct cql_column *bind, const struct cql_query_opts *opts,
                                        struct cql_error *err)
{
    struct cql_query_opts defaults = {.consistency = CQL_ONE};
    if (!opts)
        opts = &defaults;
    if (nparams > UINT16_MAX)
        return error_set(err, CQL_ERR_ARG, "too many parameters (%zu)", nparams);
    if (nparams && !params)
        return error_set(err, CQL_ERR_ARG, "parameters missing");
    if (opts->paging_state_len > INT32_MAX || (opts->paging_state_len && !opts->paging_state))
        return error_set(err, CQL_ERR_ARG, "invalid paging state");
    uint8_t flags = 0;
    if (nparams)
        flags |= QUERY_VALUES;
    if (opts->page_size > 0)
        flags |= QUERY_PAGE_SIZE;
    if (opts->paging_state)
        flags |= QUERY_PAGING_STATE;
    put_u16(buf, (uint16_t)opts->consistency);
    put_u8(buf, flags);
    if (nparams) {
        put_u16(buf, (uint16_t)nparams);
        for (size_t i = 0; i < nparams; i++) {
            uint16_t as = bind ? (uint16_t)bind[i].type->id : (uint16_t)params[i].type;
            enum cql_status st = put_param(buf, &params[i], as, i, err);
            if (st != CQL_OK)
                return st;
        }
    }
    if (flags & QUERY_PAGE_SIZE)
        put_u32(buf, (uint32_t)opts->page_size);
    if (flags & QUERY_PAGING_STATE) {
        put_u32(buf, (uint32_t)opts->paging_state_len);
        put_raw(buf, opts->paging_state, opts->paging_state_len);
    }
    return buf->failed ? error_set(err, CQL_ERR_NOMEM, "request too large or out of memory") : CQL_OK;
}

enum cql_status cql_encode_query(struct cql_buf *buf, int16_t stream, const char *cql,
                                 const struct cql_param *params, size_t nparams,
                                 const struct cql_query_opts *opts, struct cql_error *err)
{
    error_reset(err);
    size_t start = frame_begin(buf, stream, CQL_OP_QUERY);
    put_long_string(buf, cql);
    enum cql_status st = put_query_params(buf, params, nparams, NULL, opts, err);
    if (st == CQL_OK)
        frame_end(buf, start);
    return st != CQL_OK ? st : buf->failed ? error_set(err, CQL_ERR_NOMEM, "request too large") : CQL_OK;
}

enum cql_status cql_encode_execute(struct cql_buf *buf, int16_t stream, const uint8_t *id, size_t id_len,
                                   const struct cql_param *params, size_t nparams,
                                   const struct cql_query_opts *opts, struct cql_error *err)
{
    error_reset(err);
    if (id_len > UINT16_MAX || !id)
        return error_set(err, CQL_ERR_ARG, "invalid prepared id");
    size_t start = frame_begin(buf, stream, CQL_OP_EXECUTE);
    put_u16(buf, (uint16_t)id_len);
    put_raw(buf, id, id_len);
    enum cql_status st = put_query_params(buf, params, nparams, NULL, opts, err);
    if (st == CQL_OK)
        frame_end(buf, start);
    return st != CQL_OK ? st : buf->failed ? error_set(err, CQL_ERR_NOMEM, "request too large") : CQL_OK;
}

/* ---- Sockets under deadlines ---- */

struct cql_conn {
    int fd;
    int16_t next_stream;
    bool broken;
    uint32_t max_body;
    int request_timeout_ms;
    struct cql_error err;
    struct cql_response handshake;     /* keeps the SUPPORTED options */
    char *authenticator;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static enum cql_status send_all(struct cql_conn *c, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(c->fd, POLLOUT, deadline);
            if (w == 0)
                return error_set(&c->err, CQL_ERR_TIMEOUT, "timed out sending a request");
            if (w > 0)
                continue;
        }
        return error_set(&c->err, CQL_ERR_IO, "sending a request failed: %s", strerror(errno));
    }
    return CQL_OK;
}

static enum cql_status recv_exact(struct cql_conn *c, uint8_t *p, size_t len, int64_t deadline)
{
    size_t want = len;
    while (len) {
        ssize_t n = recv(c->fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0 && want == len)
            return error_set(&c->err, CQL_ERR_IO, "the server closed the connection");
        if (n == 0)
            return error_set(&c->err, CQL_ERR_DECODE,
                             "truncated frame: the server closed the connection after %zu of %zu bytes", want - len,
                             want);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, deadline);
            if (w == 0)
                return error_set(&c->err, CQL_ERR_TIMEOUT, "timed out waiting for the server's answer");
            if (w > 0)
                continue;
        }
        return error_set(&c->err, CQL_ERR_IO, "reading from the server failed: %s", strerror(errno));
    }
    return CQL_OK;
}

/* Reads one frame on `stream` (skipping server-pushed events) and decodes it. */
static enum cql_status read_response(struct cql_conn *c, int16_t stream, int64_t deadline, struct cql_response *out)
{
    for (;;) {
        uint8_t head[CQL_HEADER_SIZE];
        struct cql_frame_header h;
        enum cql_status st = recv_exact(c, head, sizeof head, deadline);
        if (st == CQL_OK)
            st = cql_header_decode(head, c->max_body, &h, &c->err);
        if (st != CQL_OK)
            return st;
        uint8_t *body = malloc(h.length ? h.length : 1);
        if (!body)
            return error_set(&c->err, CQL_ERR_NOMEM, "out of memory for a %u-byte frame", h.length);
        st = recv_exact(c, body, h.length, deadline);
        if (st == CQL_OK && h.stream == -1 && h.opcode == CQL_OP_EVENT) {
            free(body);
            continue;
        }
        if (st == CQL_OK && h.stream != stream)
            st = error_set(&c->err, CQL_ERR_DECODE, "answer on stream %d, expected stream %d", h.stream, stream);
        if (st == CQL_OK)
            st = cql_response_decode(&h, body, h.length, out, &c->err);
        free(body);
        return st;
    }
}

/*
 * Sends a request frame and reads its answer. A server ERROR is returned
 * as its status with c->err filled; any other failure breaks the connection.
 */
static enum cql_status roundtrip(struct cql_conn *c, struct cql_buf *req, int16_t stream, struct cql_response *out)
{
    memset(out, 0, sizeof *out);
    if (c->broken)
        return error_set(&c->err, CQL_ERR_IO, "the connection is unusable after an earlier failure");
    if (req->failed)
        return error_set(&c->err, CQL_ERR_NOMEM, "request too large or out of memory");
    int64_t deadline = now_ms() + c->request_timeout_ms;
    enum cql_status st = send_all(c, req->data, req->len, deadline);
    if (st == CQL_OK)
        st = read_response(c, stream, deadline, out);
    if (st != CQL_OK) {
        c->broken = true;
        return st;
    }
    if (out->opcode == CQL_OP_ERROR) {
        c->err = out->error;
        st = out->error.status;
        cql_response_free(out);
    }
    return st;
}

static int16_t next_stream(struct cql_conn *c)
{
    int16_t s = c->next_stream;
    c->next_stream = s == INT16_MAX ? 1 : (int16_t)(s + 1);
    return s;
}

static enum cql_status unexpected(struct cql_conn *c, struct cql_response *r, const char *request)
{
    uint8_t op = r->opcode;
    cql_response_free(r);
    c->broken = true;
    return error_set(&c->err, CQL_ERR_DECODE, "unexpected answer (opcode 0x%02x) to %s", op, request);
}

/* ---- Connecting and logging in ---- */

static int open_socket(const struct addrinfo *ai, int64_t deadline, struct cql_error *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        error_set(err, CQL_ERR_CONNECT, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            error_set(err, CQL_ERR_CONNECT, "connect: %s", strerror(errno));
            goto fail;
        }
        int w = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (w == 0) {
            error_set(err, CQL_ERR_TIMEOUT, "timed out connecting");
            goto fail;
        }
        if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            error_set(err, CQL_ERR_CONNECT, "connect: %s", strerror(soerr ? soerr : errno));
            goto fail;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
fail:
    close(fd);
    return -1;
}

static enum cql_status dial(struct cql_conn *c, const struct cql_conn_options *o, int timeout_ms)
{
    char port[8];
    snprintf(port, sizeof port, "%u", o->port ? o->port : DEFAULT_PORT);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc != 0)
        return error_set(&c->err, CQL_ERR_CONNECT, "cannot resolve %.200s: %s", o->host, gai_strerror(rc));
    int64_t deadline = now_ms() + timeout_ms;
    struct cql_error last;
    error_reset(&last);
    last.status = CQL_OK;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        last.status = CQL_OK;
        c->fd = open_socket(ai, deadline, &last);
    }
    freeaddrinfo(res);
    if (c->fd >= 0)
        return CQL_OK;
    return error_set(&c->err, last.status != CQL_OK ? last.status : CQL_ERR_CONNECT, "%.200s port %s: %s",
                     o->host, port, last.message);
}

static enum cql_status exchange_options(struct cql_conn *c)
{
    struct cql_buf req = {0};
    int16_t stream = next_stream(c);
    cql_encode_options(&req, stream);
    enum cql_status st = roundtrip(c, &req, stream, &c->handshake);
    cql_buf_free(&req);
    if (st == CQL_OK && c->handshake.opcode != CQL_OP_SUPPORTED)
        return unexpected(c, &c->handshake, "OPTIONS");
    return st;
}

static enum cql_status authenticate(struct cql_conn *c, const struct cql_conn_options *o)
{
    if (!o->username || !o->password)
        return error_set(&c->err, CQL_ERR_AUTH_REQUIRED, "the server requires a login (%.200s) and none was given",
                         c->authenticator);
    struct cql_buf req = {0};
    struct cql_response resp;
    int16_t stream = next_stream(c);
    cql_encode_auth_response(&req, stream, o->username, o->password);
    enum cql_status st = roundtrip(c, &req, stream, &resp);
    cql_buf_free(&req);
    if (st != CQL_OK)
        return st;
    if (resp.opcode == CQL_OP_AUTH_CHALLENGE) {
        cql_response_free(&resp);
        c->broken = true;
        return error_set(&c->err, CQL_ERR_PROTOCOL, "the server sent a SASL challenge; PLAIN takes one step");
    }
    if (resp.opcode != CQL_OP_AUTH_SUCCESS)
        return unexpected(c, &resp, "AUTH_RESPONSE");
    cql_response_free(&resp);
    return CQL_OK;
}

static enum cql_status startup(struct cql_conn *c, const struct cql_conn_options *o)
{
    struct cql_buf req = {0};
    struct cql_response resp;
    int16_t stream = next_stream(c);
    cql_encode_startup(&req, stream);
    enum cql_status st = roundtrip(c, &req, stream, &resp);
    cql_buf_free(&req);
    if (st != CQL_OK)
        return st;
    if (resp.opcode == CQL_OP_READY) {
        cql_response_free(&resp);
        return CQL_OK;
    }
    if (resp.opcode != CQL_OP_AUTHENTICATE)
        return unexpected(c, &resp, "STARTUP");
    c->authenticator = strdup(resp.authenticator);
    cql_response_free(&resp);
    if (!c->authenticator)
        return error_set(&c->err, CQL_ERR_NOMEM, "out of memory");
    return authenticate(c, o);
}

static bool credentials_usable(const struct cql_conn_options *o)
{
    /* SASL PLAIN separates its fields with NUL, which a C string cannot hold; the name must not be empty. */
    return !o->username || (o->username[0] != '\0' && o->password);
}

enum cql_status cql_connect(const struct cql_conn_options *options, struct cql_conn **out, struct cql_error *err)
{
    if (out)
        *out = NULL;
    error_reset(err);
    if (err)
        err->status = CQL_OK;
    if (!options || !options->host || !out)
        return error_set(err, CQL_ERR_ARG, "connect needs options, a host and an out pointer");
    if (!credentials_usable(options))
        return error_set(err, CQL_ERR_ARG, "a login needs a non-empty user name and a password");
    struct cql_conn *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, CQL_ERR_NOMEM, "out of memory");
    c->fd = -1;
    c->next_stream = 1;
    c->max_body = options->max_body ? options->max_body : CQL_DEFAULT_MAX_BODY;
    if (c->max_body > CQL_MAX_BODY_SPEC)
        c->max_body = CQL_MAX_BODY_SPEC;
    c->request_timeout_ms = options->request_timeout_ms > 0 ? options->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    error_reset(&c->err);
    c->err.status = CQL_OK;
    int connect_ms = options->connect_timeout_ms > 0 ? options->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    enum cql_status st = dial(c, options, connect_ms);
    if (st == CQL_OK)
        st = exchange_options(c);
    if (st == CQL_OK)
        st = startup(c, options);
    if (st != CQL_OK) {
        if (err)
            *err = c->err;
        cql_close(c);
        return st;
    }
    *out = c;
    return CQL_OK;
}

void cql_close(struct cql_conn *conn)
{
    if (!conn)
        return;
    if (conn->fd >= 0)
        close(conn->fd);
    cql_response_free(&conn->handshake);
    free(conn->authenticator);
    free(conn);
}

const struct cql_error *cql_last_error(const struct cql_conn *conn)
{
    return &conn->err;
}

const char *cql_authenticator(const struct cql_conn *conn)
{
    return conn->authenticator;
}

const char *cql_supported(const struct cql_conn *conn, const char *key)
{
    for (size_t i = 0; i < conn->handshake.nsupported; i++)
        if (!strcmp(conn->handshake.supported_keys[i], key))
            return conn->handshake.supported_values[i];
    return NULL;
}

/* ---- Requests ---- */

static void begin_call(struct cql_conn *c, struct cql_result **out)
{
    *out = NULL;
    error_reset(&c->err);
    c->err.status = CQL_OK;
}

/* Sends req and expects a RESULT; hands the result to *out. */
static enum cql_status call(struct cql_conn *c, struct cql_buf *req, int16_t stream, const char *what,
                            struct cql_result **out)
{
    struct cql_response resp;
    enum cql_status st = roundtrip(c, req, stream, &resp);
    cql_buf_free(req);
    if (st != CQL_OK)
        return st;
    if (resp.opcode != CQL_OP_RESULT)
        return unexpected(c, &resp, what);
    *out = resp.result;
    resp.result = NULL;
    cql_response_free(&resp);
    return CQL_OK;
}

enum cql_status cql_query(struct cql_conn *conn, const char *cql, const struct cql_param *params,
                          size_t nparams, const struct cql_query_opts *opts, struct cql_result **out)
{
    if (!conn || !out)
        return CQL_ERR_ARG;
    begin_call(conn, out);
    if (!cql)
        return error_set(&conn->err, CQL_ERR_ARG, "no statement");
    struct cql_buf req = {0};
    int16_t stream = next_stream(conn);
    enum cql_status st = cql_encode_query(&req, stream, cql, params, nparams, opts, &conn->err);
    if (st != CQL_OK) {
        cql_buf_free(&req);
        return st;
    }
    return call(conn, &req, stream, "QUERY", out);
}

enum cql_status cql_prepare(struct cql_conn *conn, const char *cql, struct cql_result **out)
{
    if (!conn || !out)
        return CQL_ERR_ARG;
    begin_call(conn, out);
    if (!cql)
        return error_set(&conn->err, CQL_ERR_ARG, "no statement");
    struct cql_buf req = {0};
    int16_t stream = next_stream(conn);
    cql_encode_prepare(&req, stream, cql);
    enum cql_status st = call(conn, &req, stream, "PREPARE", out);
    if (st == CQL_OK && (*out)->kind != CQL_RESULT_PREPARED) {
        int kind = (int)(*out)->kind;
        cql_result_free(*out);
        *out = NULL;
        conn->broken = true;
        return error_set(&conn->err, CQL_ERR_DECODE, "the server answered PREPARE with result kind %d", kind);
    }
    return st;
}

static enum cql_status check_params(struct cql_conn *c, const struct cql_result *prepared,
                                    const struct cql_param *params, size_t nparams)
{
    if (!prepared || prepared->kind != CQL_RESULT_PREPARED)
        return error_set(&c->err, CQL_ERR_ARG, "not a prepared statement");
    if (nparams != prepared->prepared.nbind)
        return error_set(&c->err, CQL_ERR_ARG, "the statement has %zu markers, %zu parameters given",
                         prepared->prepared.nbind, nparams);
    for (size_t i = 0; i < nparams; i++) {
        const struct cql_type *want = prepared->prepared.bind[i].type;
        if (!want)
            return error_set(&c->err, CQL_ERR_ARG, "the server gave no type for marker %zu", i + 1);
        if (!params[i].is_null && !param_fits(&params[i], want))
            return error_set(&c->err, CQL_ERR_ARG, "parameter %zu (type 0x%04x) does not fit marker type 0x%04x",
                             i + 1, params[i].type, want->id);
    }
    return CQL_OK;
}

enum cql_status cql_execute(struct cql_conn *conn, const struct cql_result *prepared,
                            const struct cql_param *params, size_t nparams,
                            const struct cql_query_opts *opts, struct cql_result **out)
{
    if (!conn || !out)
        return CQL_ERR_ARG;
    begin_call(conn, out);
    enum cql_status st = check_params(conn, prepared, params, nparams);
    if (st != CQL_OK)
        return st;
    struct cql_buf req = {0};
    int16_t stream = next_stream(conn);
    size_t start = frame_begin(&req, stream, CQL_OP_EXECUTE);
    put_u16(&req, (uint16_t)prepared->prepared.id_len);
    put_raw(&req, prepared->prepared.id, prepared->prepared.id_len);
    st = put_query_params(&req, params, nparams, prepared->prepared.bind, opts, &conn->err);
    if (st != CQL_OK) {
        cql_buf_free(&req);
        return st;
    }
    frame_end(&req, start);
    return call(conn, &req, stream, "EXECUTE", out);
}

/* ---- Names and literals ---- */

static char *quote(const char *s, char q)
{
    size_t n = strlen(s), extra = 0;
    if (!utf8_valid((const uint8_t *)s, n)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        extra += s[i] == q;
    char *out = malloc(n + extra + 3);
    if (!out) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = out;
    *p++ = q;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == q)
            *p++ = q;
        *p++ = s[i];
    }
    *p++ = q;
    *p = '\0';
    return out;
}

char *cql_quote_identifier(const char *name)
{
    if (!name || !*name) {
        errno = EINVAL;
        return NULL;
    }
    return quote(name, '"');
}

char *cql_quote_literal(const char *text)
{
    if (!text) {
        errno = EINVAL;
        return NULL;
    }
    return quote(text, '\'');
}

bool cql_valid_name(const char *name, size_t max_len)
{
    if (!name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char ch = *p;
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        if (!word || n >= max_len)
            return false;
    }
    return n > 0;
}

bool cql_valid_keyspace_name(const char *name)
{
    return cql_valid_name(name, 48);
}
