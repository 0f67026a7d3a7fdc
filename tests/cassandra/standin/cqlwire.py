"""The CQL native protocol v4 as the stand-in speaks it: the 9-byte frame
header, the body notations ([string], [bytes], [value], ...), query parameters,
and the RESULT and EVENT bodies. Reading a truncated body raises ProtocolError.
"""
import struct

from errors import ProtocolError

HEADER = struct.Struct(">BBhBi")
VERSION = 4
RESPONSE_VERSION = 0x84

OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = 0x05, 0x06, 0x07, 0x08
OP_PREPARE, OP_EXECUTE, OP_REGISTER, OP_EVENT = 0x09, 0x0A, 0x0B, 0x0C
OP_BATCH, OP_AUTH_CHALLENGE, OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x0D, 0x0E, 0x0F, 0x10

FLAG_COMPRESSION, FLAG_TRACING, FLAG_CUSTOM_PAYLOAD, FLAG_WARNING = 0x01, 0x02, 0x04, 0x08

CONSISTENCY_NAMES = {0: "ANY", 1: "ONE", 2: "TWO", 3: "THREE", 4: "QUORUM", 5: "ALL", 6: "LOCAL_QUORUM",
                     7: "EACH_QUORUM", 8: "SERIAL", 9: "LOCAL_SERIAL", 10: "LOCAL_ONE"}

NOT_SET = object()  # a [value] of length -2


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(f"Not enough bytes to read {what}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def byte(self):
        return self.take(1, "a byte")[0]

    def short(self):
        return struct.unpack(">H", self.take(2, "a short"))[0]

    def int(self):
        return struct.unpack(">i", self.take(4, "an int"))[0]

    def long(self):
        return struct.unpack(">q", self.take(8, "a long"))[0]

    def string(self):
        try:
            return self.take(self.short(), "a string").decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("Cannot decode string as UTF8")

    def long_string(self):
        try:
            return self.take(self.int(), "a long string").decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("Cannot decode string as UTF8")

    def bytes_(self):
        n = self.int()
        return None if n < 0 else self.take(n, "bytes")

    def short_bytes(self):
        return self.take(self.short(), "short bytes")

    def value(self):
        n = self.int()
        if n == -1:
            return None
        if n == -2:
            return NOT_SET
        if n < -2:
            raise ProtocolError(f"Invalid value length {n}")
        return self.take(n, "a value")

    def string_map(self):
        return {self.string(): self.string() for _ in range(self.short())}

    def string_list(self):
        return [self.string() for _ in range(self.short())]


def string(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode("utf-8")
    return struct.pack(">i", len(b)) + b


def bytes_(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def short_bytes(b):
    return struct.pack(">H", len(b)) + b


def string_list(items):
    return struct.pack(">H", len(items)) + b"".join(string(s) for s in items)


def string_multimap(m):
    return struct.pack(">H", len(m)) + b"".join(string(k) + string_list(v) for k, v in m.items())


def inet(address, port):
    import ipaddress
    packed = ipaddress.ip_address(address).packed
    return bytes([len(packed)]) + packed + struct.pack(">i", port)


def frame(stream, opcode, body, flags=0, version=RESPONSE_VERSION):
    return HEADER.pack(version, flags, stream, opcode, len(body)) + body


class QueryParams:
    """The <query_parameters> of QUERY and EXECUTE."""

    def __init__(self, r):
        self.consistency = r.short()
        flags = r.byte()
        self.values, self.names = [], None
        if flags & 0x01:
            n = r.short()
            if flags & 0x40:
                self.names = []
            for _ in range(n):
                if self.names is not None:
                    self.names.append(r.string())
                self.values.append(r.value())
        self.skip_metadata = bool(flags & 0x02)
        self.page_size = r.int() if flags & 0x04 else -1
        self.paging_state = r.bytes_() if flags & 0x08 else None
        self.serial_consistency = r.short() if flags & 0x10 else None
        self.timestamp = r.long() if flags & 0x20 else None
        if flags & 0x80:
            raise ProtocolError("Unknown query flag 0x80")


# ---- RESULT bodies ----

def void_result():
    return struct.pack(">i", 1)


def set_keyspace_result(keyspace):
    return struct.pack(">i", 3) + string(keyspace)


def metadata(columns, paging_state=None, no_metadata=False, pk_indexes=None):
    """Rows metadata (or, with pk_indexes, the v4 prepared bind metadata).
    columns: list of (keyspace, table, name, CqlType)."""
    flags = 0
    tables = {(c[0], c[1]) for c in columns}
    global_spec = len(tables) == 1 and not no_metadata
    if global_spec:
        flags |= 0x0001
    if paging_state is not None and pk_indexes is None:
        flags |= 0x0002
    if no_metadata:
        flags |= 0x0004
    out = [struct.pack(">ii", flags, len(columns))]
    if pk_indexes is not None:
        out.append(struct.pack(">i", len(pk_indexes)) + b"".join(struct.pack(">H", i) for i in pk_indexes))
    elif paging_state is not None:
        out.append(bytes_(paging_state))
    if no_metadata:
        return b"".join(out)
    if global_spec:
        ks, table = next(iter(tables))
        out.append(string(ks) + string(table))
    for ks, table, name, typ in columns:
        if not global_spec:
            out.append(string(ks) + string(table))
        out.append(string(name) + typ.option())
    return b"".join(out)


def rows_result(columns, rows, paging_state=None, no_metadata=False):
    out = [struct.pack(">i", 2), metadata(columns, paging_state, no_metadata), struct.pack(">i", len(rows))]
    for row in rows:
        for (_, _, _, typ), v in zip(columns, row):
            out.append(bytes_(None if v is None else typ.serialize(v)))
    return b"".join(out)


def prepared_result(statement_id, bind_columns, pk_indexes, result_columns):
    return (struct.pack(">i", 4) + short_bytes(statement_id) + metadata(bind_columns, pk_indexes=pk_indexes) +
            metadata(result_columns, no_metadata=not result_columns))


def schema_change_body(change, target, keyspace, name=None, args=None):
    out = string(change) + string(target) + string(keyspace)
    if target != "KEYSPACE":
        out += string(name)
    if target in ("FUNCTION", "AGGREGATE"):
        out += string_list(args or [])
    return out


def schema_change_result(change, target, keyspace, name=None):
    return struct.pack(">i", 5) + schema_change_body(change, target, keyspace, name)


def schema_change_event(change, target, keyspace, name=None):
    return string("SCHEMA_CHANGE") + schema_change_body(change, target, keyspace, name)


def topology_event(change, address, port):
    return string("TOPOLOGY_CHANGE") + string(change) + inet(address, port)


def status_event(change, address, port):
    return string("STATUS_CHANGE") + string(change) + inet(address, port)
