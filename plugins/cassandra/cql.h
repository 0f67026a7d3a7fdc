/*
 * cql.h - a small client for the Cassandra native protocol v4: framing, login
 * (PasswordAuthenticator as SASL PLAIN), QUERY, PREPARE and EXECUTE, and a
 * strict, bounded decoder of what the server answers. It speaks to one server
 * over a blocking socket with deadlines, one request at a time (a connection
 * is not shared between threads). It never logs, and no error text of its own
 * carries a password or a bound value (a server's message is passed on as the
 * server wrote it: see struct cql_error).
 */
#ifndef TROVE_CQL_H
#define TROVE_CQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQL_HEADER_SIZE 9
/* The protocol's own ceiling on a frame body, and the client's default cap. */
#define CQL_MAX_BODY_SPEC (256u * 1024u * 1024u)
#define CQL_DEFAULT_MAX_BODY (16u * 1024u * 1024u)
/* Type options nest at most this deep (list<map<text, frozen<...>>>). */
#define CQL_MAX_TYPE_DEPTH 16

/*
 * What an operation came to. Client-side failures come first; the rest are
 * the server's ERROR codes (cql_status_from_code), one status per code, so a
 * caller maps them to its own statuses without reading messages.
 */
enum cql_status {
    CQL_OK = 0,
    CQL_ERR_ARG,              /* bad argument: NULL, an empty user name, wrong parameter count or type */
    CQL_ERR_NOMEM,            /* out of memory */
    CQL_ERR_CONNECT,          /* no connection: name not resolved, refused, unreachable */
    CQL_ERR_TIMEOUT,          /* the connect, send or receive deadline passed */
    CQL_ERR_IO,               /* the connection broke (reset, end of stream, or an earlier failure) */
    CQL_ERR_DECODE,           /* the server sent a malformed, truncated, oversized or unexpected frame */
    CQL_ERR_AUTH_REQUIRED,    /* the server asks for a login and no credentials were given */
    CQL_ERR_SERVER,           /* 0x0000 server error (also any code this client does not know) */
    CQL_ERR_PROTOCOL,         /* 0x000A protocol error */
    CQL_ERR_AUTH,             /* 0x0100 bad credentials */
    CQL_ERR_UNAVAILABLE,      /* 0x1000 not enough live replicas */
    CQL_ERR_OVERLOADED,       /* 0x1001 */
    CQL_ERR_BOOTSTRAPPING,    /* 0x1002 */
    CQL_ERR_TRUNCATE,         /* 0x1003 truncate failed */
    CQL_ERR_WRITE_TIMEOUT,    /* 0x1100 */
    CQL_ERR_READ_TIMEOUT,     /* 0x1200 */
    CQL_ERR_READ_FAILURE,     /* 0x1300 */
    CQL_ERR_FUNCTION_FAILURE, /* 0x1400 */
    CQL_ERR_WRITE_FAILURE,    /* 0x1500 */
    CQL_ERR_SYNTAX,           /* 0x2000 */
    CQL_ERR_UNAUTHORIZED,     /* 0x2100 the logged-in role lacks a permission */
    CQL_ERR_INVALID,          /* 0x2200 e.g. unknown keyspace or table, role exists or is missing */
    CQL_ERR_CONFIG,           /* 0x2300 */
    CQL_ERR_ALREADY_EXISTS,   /* 0x2400 keyspace or table exists (see cql_error.keyspace/table) */
    CQL_ERR_UNPREPARED,       /* 0x2500 the server does not know the prepared id: prepare again */
};

/* A stable lower-case name for a status ("ok", "unauthorized", ...). */
const char *cql_status_name(enum cql_status status);
/* The status for a server error code; unknown codes are CQL_ERR_SERVER. */
enum cql_status cql_status_from_code(int32_t code);
/* True for the statuses that come from a server ERROR frame. */
bool cql_status_is_server(enum cql_status status);

/*
 * The last failure in full. code is the server's error code, or -1. A server's
 * message may quote the statement it refused (a syntax error does): a caller
 * that put a secret in a statement (PASSWORD = '...') must not log it as is.
 */
struct cql_error {
    enum cql_status status;
    int32_t code;
    char message[512];        /* the server's message, or the client's reason */
    char keyspace[256];       /* ALREADY_EXISTS: keyspace; FUNCTION_FAILURE: keyspace */
    char table[256];          /* ALREADY_EXISTS: table ("" for a keyspace) */
    uint16_t consistency;     /* UNAVAILABLE, timeouts and failures */
    int32_t required;         /* UNAVAILABLE: required; timeouts/failures: block_for */
    int32_t alive;            /* UNAVAILABLE: alive; timeouts/failures: received */
};

enum cql_consistency {
    CQL_ANY = 0x0000, CQL_ONE = 0x0001, CQL_TWO = 0x0002, CQL_THREE = 0x0003,
    CQL_QUORUM = 0x0004, CQL_ALL = 0x0005, CQL_LOCAL_QUORUM = 0x0006,
    CQL_EACH_QUORUM = 0x0007, CQL_SERIAL = 0x0008, CQL_LOCAL_SERIAL = 0x0009,
    CQL_LOCAL_ONE = 0x000A,
};

/* Column type ids of the [option] notation. */
enum cql_type_id {
    CQL_TYPE_CUSTOM = 0x0000, CQL_TYPE_ASCII = 0x0001, CQL_TYPE_BIGINT = 0x0002,
    CQL_TYPE_BLOB = 0x0003, CQL_TYPE_BOOLEAN = 0x0004, CQL_TYPE_COUNTER = 0x0005,
    CQL_TYPE_DECIMAL = 0x0006, CQL_TYPE_DOUBLE = 0x0007, CQL_TYPE_FLOAT = 0x0008,
    CQL_TYPE_INT = 0x0009, CQL_TYPE_TIMESTAMP = 0x000B, CQL_TYPE_UUID = 0x000C,
    CQL_TYPE_VARCHAR = 0x000D, CQL_TYPE_VARINT = 0x000E, CQL_TYPE_TIMEUUID = 0x000F,
    CQL_TYPE_INET = 0x0010, CQL_TYPE_DATE = 0x0011, CQL_TYPE_TIME = 0x0012,
    CQL_TYPE_SMALLINT = 0x0013, CQL_TYPE_TINYINT = 0x0014, CQL_TYPE_DURATION = 0x0015,
    CQL_TYPE_LIST = 0x0020, CQL_TYPE_MAP = 0x0021, CQL_TYPE_SET = 0x0022,
    CQL_TYPE_UDT = 0x0030, CQL_TYPE_TUPLE = 0x0031,
};

/* A column type as the server described it. */
struct cql_type {
    enum cql_type_id id;
    const char *custom_class;          /* CUSTOM: the class name */
    const struct cql_type *elem;       /* LIST, SET: element type; MAP: key type */
    const struct cql_type *value;      /* MAP: value type */
    const char *udt_keyspace;          /* UDT */
    const char *udt_name;              /* UDT */
    size_t nfields;                    /* UDT, TUPLE */
    const struct cql_type *const *fields;
    const char *const *field_names;    /* UDT only */
};

struct cql_column {
    const char *keyspace;
    const char *table;
    const char *name;
    const struct cql_type *type;       /* NULL when the server sent no metadata */
};

/*
 * A decoded cell. Integers of every width (int, bigint, counter, smallint,
 * tinyint), timestamp (milliseconds since the epoch), time (nanoseconds since
 * midnight) and date (days with the epoch at 2^31, as sent) are INT; float
 * and double are DOUBLE; text, varchar and ascii are TEXT; uuid and timeuuid
 * are UUID; list and set are LIST; map is MAP. Everything else (blob, varint,
 * decimal, inet, duration, tuple, UDT, custom, or any cell without metadata)
 * is BYTES, exactly as sent.
 */
enum cql_value_kind {
    CQL_VALUE_NULL, CQL_VALUE_INT, CQL_VALUE_BOOL, CQL_VALUE_DOUBLE, CQL_VALUE_TEXT,
    CQL_VALUE_UUID, CQL_VALUE_BYTES, CQL_VALUE_LIST, CQL_VALUE_MAP,
};

struct cql_value {
    enum cql_value_kind kind;
    const struct cql_type *type;       /* the declared type, or NULL */
    union {
        int64_t i;
        bool b;
        double d;
        uint8_t uuid[16];
        /* TEXT: valid UTF-8 (ASCII for ascii), NUL-terminated; len excludes
         * the terminator and the text may hold NUL bytes of its own. */
        struct { const char *ptr; size_t len; } text;
        struct { const uint8_t *ptr; size_t len; } bytes;
        struct { size_t count; const struct cql_value *items; } list;
        struct { size_t count; const struct cql_value *keys, *values; } map;
    } u;
};

enum cql_result_kind {
    CQL_RESULT_VOID = 0x0001,
    CQL_RESULT_ROWS = 0x0002,
    CQL_RESULT_SET_KEYSPACE = 0x0003,
    CQL_RESULT_PREPARED = 0x0004,
    CQL_RESULT_SCHEMA_CHANGE = 0x0005,
};

struct cql_rows {
    size_t ncols;
    const struct cql_column *cols;
    size_t nrows;
    const struct cql_value *cells;     /* nrows * ncols, row after row */
    bool has_more_pages;
    const uint8_t *paging_state;       /* pass back in cql_query_opts to read on */
    size_t paging_state_len;
};

/*
 * A RESULT message. Everything it points to lives in the result and goes
 * with cql_result_free. A PREPARED result is also the handle cql_execute
 * takes: prepared.bind describes the markers in order.
 */
struct cql_result {
    enum cql_result_kind kind;
    struct cql_rows rows;                      /* ROWS */
    const char *keyspace;                      /* SET_KEYSPACE */
    struct {
        const char *change;                    /* CREATED, UPDATED or DROPPED */
        const char *target;                    /* KEYSPACE, TABLE, TYPE, FUNCTION or AGGREGATE */
        const char *keyspace;
        const char *name;                      /* NULL for KEYSPACE */
    } schema_change;                           /* SCHEMA_CHANGE */
    struct {
        const uint8_t *id;
        size_t id_len;
        size_t nbind;
        const struct cql_column *bind;         /* one per bind marker */
        size_t npk;
        const uint16_t *pk_index;              /* markers that bind the partition key */
        size_t nresult;
        const struct cql_column *result;       /* the columns rows will carry */
    } prepared;                                /* PREPARED */
    size_t nwarnings;
    const char *const *warnings;               /* server warnings (frame flag 0x08) */
    struct cql_arena *arena;                   /* owns every pointer above */
};

void cql_result_free(struct cql_result *result);

/* The cell at (row, col), or NULL when out of range. */
const struct cql_value *cql_cell(const struct cql_result *result, size_t row, size_t col);
/* The index of the column named `name` in a ROWS result, or -1. */
int cql_column_index(const struct cql_result *result, const char *name);
/* The cell of the named column, or NULL when there is no such column or row. */
const struct cql_value *cql_cell_by_name(const struct cql_result *result, size_t row, const char *name);
/* The text of a TEXT cell, or NULL for any other cell (NULL cells included). */
const char *cql_value_text(const struct cql_value *value);

/*
 * A value to bind to a marker. type says how it is serialized: VARCHAR and
 * ASCII take u.text; INT, BIGINT, COUNTER, TIMESTAMP, SMALLINT, TINYINT take
 * u.i; BOOLEAN u.b; DOUBLE, FLOAT u.d; UUID, TIMEUUID u.uuid; BLOB u.bytes;
 * LIST and SET of text take u.texts. The caller keeps the memory.
 */
struct cql_param {
    enum cql_type_id type;
    bool is_null;
    union {
        const char *text;
        int64_t i;
        bool b;
        double d;
        uint8_t uuid[16];
        struct { const void *ptr; size_t len; } bytes;
        struct { size_t count; const char *const *items; } texts;
    } u;
};

static inline struct cql_param cql_param_text(const char *s)
{
    struct cql_param p = {.type = CQL_TYPE_VARCHAR, .is_null = s == NULL};
    p.u.text = s;
    return p;
}

static inline struct cql_param cql_param_int(int32_t v)
{
    struct cql_param p = {.type = CQL_TYPE_INT};
    p.u.i = v;
    return p;
}

static inline struct cql_param cql_param_bigint(int64_t v)
{
    struct cql_param p = {.type = CQL_TYPE_BIGINT};
    p.u.i = v;
    return p;
}

static inline struct cql_param cql_param_bool(bool v)
{
    struct cql_param p = {.type = CQL_TYPE_BOOLEAN};
    p.u.b = v;
    return p;
}

static inline struct cql_param cql_param_blob(const void *ptr, size_t len)
{
    struct cql_param p = {.type = CQL_TYPE_BLOB};
    p.u.bytes.ptr = ptr;
    p.u.bytes.len = len;
    return p;
}

static inline struct cql_param cql_param_null(enum cql_type_id type)
{
    struct cql_param p = {.type = type, .is_null = true};
    return p;
}

/* How to reach and log in to a server. Zero fields take the defaults. */
struct cql_conn_options {
    const char *host;                  /* name or address (getaddrinfo: name lookups are not under the timeout) */
    uint16_t port;                     /* default 9042 */
    const char *username;              /* NULL: no login (fails with AUTH_REQUIRED if asked) */
    const char *password;              /* read once at connect; the client keeps no copy */
    int connect_timeout_ms;            /* default 5000 */
    int request_timeout_ms;            /* each request's whole round trip; default 12000 */
    uint32_t max_body;                 /* refuse larger frames; default 16 MiB, at most 256 MiB */
};

/*
 * Per request: consistency and paging (page_size 0: all rows in one page).
 * Passing NULL opts means ONE and no paging; a struct is sent as it is, and
 * its zero consistency is CQL_ANY (refused for reads), so set it.
 */
struct cql_query_opts {
    enum cql_consistency consistency;
    int32_t page_size;
    const uint8_t *paging_state;
    size_t paging_state_len;
};

struct cql_conn;

/*
 * Connects, sends OPTIONS then STARTUP, and logs in with SASL PLAIN when the
 * server answers AUTHENTICATE. On success *out owns the connection (close it
 * with cql_close); on failure *out is NULL and err (if not NULL) says why.
 */
enum cql_status cql_connect(const struct cql_conn_options *options, struct cql_conn **out,
                            struct cql_error *err);
void cql_close(struct cql_conn *conn);

/* The failure of the last call on conn (status CQL_OK after a success). */
const struct cql_error *cql_last_error(const struct cql_conn *conn);
/* The authenticator class the server named, or NULL when it asked for no login. */
const char *cql_authenticator(const struct cql_conn *conn);
/* The first value the SUPPORTED answer gave for key (e.g. "CQL_VERSION"), or NULL. */
const char *cql_supported(const struct cql_conn *conn, const char *key);

/*
 * QUERY: runs one statement with its parameters bound to the `?` markers in
 * order. opts may be NULL. On success *out is the result (free it with
 * cql_result_free); otherwise *out is NULL and cql_last_error says why. A
 * timeout or a broken frame leaves the connection unusable (CQL_ERR_IO after).
 */
enum cql_status cql_query(struct cql_conn *conn, const char *cql, const struct cql_param *params,
                          size_t nparams, const struct cql_query_opts *opts, struct cql_result **out);
/* PREPARE: *out is a PREPARED result, the handle for cql_execute. */
enum cql_status cql_prepare(struct cql_conn *conn, const char *cql, struct cql_result **out);
/*
 * EXECUTE: nparams must equal prepared->prepared.nbind and each parameter's
 * type must fit its marker's type, or CQL_ERR_ARG and nothing is sent.
 */
enum cql_status cql_execute(struct cql_conn *conn, const struct cql_result *prepared,
                            const struct cql_param *params, size_t nparams,
                            const struct cql_query_opts *opts, struct cql_result **out);

/*
 * Names and literals for the statements that take no bind markers (DDL, and
 * PASSWORD). Each returns a malloc'd string the caller frees, or NULL with
 * errno EINVAL when the input is not valid UTF-8 (or is an empty name), or
 * ENOMEM.
 */
char *cql_quote_identifier(const char *name);  /* "na""me": quoted names keep their case */
char *cql_quote_literal(const char *text);     /* 'it''s' (CQL has no backslash escapes) */
/* True when name is 1..max_len characters of [A-Za-z0-9_]. */
bool cql_valid_name(const char *name, size_t max_len);
/* A keyspace name: cql_valid_name(name, 48). */
bool cql_valid_keyspace_name(const char *name);

/* ---- The frame codec, for the unit tests and the fuzz target. ---- */

enum cql_opcode {
    CQL_OP_ERROR = 0x00, CQL_OP_STARTUP = 0x01, CQL_OP_READY = 0x02, CQL_OP_AUTHENTICATE = 0x03,
    CQL_OP_OPTIONS = 0x05, CQL_OP_SUPPORTED = 0x06, CQL_OP_QUERY = 0x07, CQL_OP_RESULT = 0x08,
    CQL_OP_PREPARE = 0x09, CQL_OP_EXECUTE = 0x0A, CQL_OP_REGISTER = 0x0B, CQL_OP_EVENT = 0x0C,
    CQL_OP_BATCH = 0x0D, CQL_OP_AUTH_CHALLENGE = 0x0E, CQL_OP_AUTH_RESPONSE = 0x0F,
    CQL_OP_AUTH_SUCCESS = 0x10,
};

struct cql_frame_header {
    uint8_t version;                   /* 0x84 for a v4 response */
    uint8_t flags;
    int16_t stream;
    uint8_t opcode;
    uint32_t length;
};

/* A growing byte buffer for encoding; a failed allocation sticks in .failed. */
struct cql_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
};

void cql_buf_free(struct cql_buf *buf);

/*
 * Reads a response header. Refuses (CQL_ERR_DECODE, with the reason in err)
 * a version other than 0x84, a compressed frame, an unknown opcode, and a
 * body longer than max_body (0: the protocol's 256 MiB). Every function
 * taking a struct cql_error resets it first; it may be NULL.
 */
enum cql_status cql_header_decode(const uint8_t bytes[CQL_HEADER_SIZE], uint32_t max_body,
                                  struct cql_frame_header *out, struct cql_error *err);

/*
 * A decoded response body. For RESULT, .result is set (the caller frees it);
 * for ERROR, .error holds the server's error; SUPPORTED fills .supported;
 * AUTHENTICATE names .authenticator; AUTH_SUCCESS and AUTH_CHALLENGE carry
 * .token. Everything but .result lives in .arena (cql_response_free).
 */
struct cql_response {
    uint8_t opcode;
    struct cql_result *result;
    struct cql_error error;
    const char *authenticator;
    size_t nsupported;
    const char *const *supported_keys;
    const char *const *supported_values;     /* each key's first value, or "" */
    const uint8_t *token;
    size_t token_len;
    bool token_null;
    struct cql_arena *arena;
};

/*
 * Decodes a response body of `len` bytes under its header. Every length is
 * checked against the bytes that remain, counts against what they could
 * hold, and trailing bytes are refused. Returns CQL_OK with *out filled (an
 * ERROR frame decodes fine: its status is in out->error), or CQL_ERR_DECODE /
 * CQL_ERR_NOMEM with the reason in err.
 */
enum cql_status cql_response_decode(const struct cql_frame_header *header, const uint8_t *body,
                                    size_t len, struct cql_response *out, struct cql_error *err);
void cql_response_free(struct cql_response *response);

/* Request encoders: a whole frame (header and body) appended to buf. */
void cql_encode_options(struct cql_buf *buf, int16_t stream);
void cql_encode_startup(struct cql_buf *buf, int16_t stream);
void cql_encode_auth_response(struct cql_buf *buf, int16_t stream, const char *user, const char *password);
/* Fails with CQL_ERR_ARG (reason in err) for an unsupported parameter type. */
enum cql_status cql_encode_query(struct cql_buf *buf, int16_t stream, const char *cql,
                                 const struct cql_param *params, size_t nparams,
                                 const struct cql_query_opts *opts, struct cql_error *err);
void cql_encode_prepare(struct cql_buf *buf, int16_t stream, const char *cql);
enum cql_status cql_encode_execute(struct cql_buf *buf, int16_t stream, const uint8_t *id, size_t id_len,
                                   const struct cql_param *params, size_t nparams,
                                   const struct cql_query_opts *opts, struct cql_error *err);

#endif
