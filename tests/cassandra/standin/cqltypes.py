"""CQL data types for the stand-in: parsing type names, the native protocol's
serialization of values, literal conversion with Cassandra's error messages,
and the ordering used for keys. Values are plain Python objects: str, int,
bool, float, bytes, uuid.UUID, decimal.Decimal, tuples for sets and lists,
tuples of (key, value) pairs for maps.
"""
import datetime
import decimal
import ipaddress
import re
import struct
import uuid

from errors import InvalidRequest, SyntaxError_

SIMPLE_IDS = {
    "ascii": 0x01, "bigint": 0x02, "blob": 0x03, "boolean": 0x04, "counter": 0x05, "decimal": 0x06,
    "double": 0x07, "float": 0x08, "int": 0x09, "timestamp": 0x0B, "uuid": 0x0C, "text": 0x0D,
    "varint": 0x0E, "timeuuid": 0x0F, "inet": 0x10, "date": 0x11, "time": 0x12, "smallint": 0x13,
    "tinyint": 0x14,
}
ALIASES = {"varchar": "text"}
INTEGER_TYPES = {"int": 4, "bigint": 8, "counter": 8, "smallint": 2, "tinyint": 1}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class CqlType:
    """A CQL type: a simple name, or list/set/map with element types."""

    def __init__(self, name, params=(), frozen=False):
        self.name = name
        self.params = tuple(params)
        self.frozen = frozen

    def __eq__(self, other):
        return isinstance(other, CqlType) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self):
        return hash((self.name, self.params))

    def __repr__(self):
        return self.cql()

    @property
    def is_collection(self):
        return self.name in ("list", "set", "map")

    def cql(self):
        """The name as system_schema.columns shows it (frozen<...> where frozen)."""
        if not self.params:
            return self.name
        inner = f"{self.name}<{', '.join(p.cql() for p in self.params)}>"
        return f"frozen<{inner}>" if self.frozen else inner

    # ---- the [option] notation of result metadata ----
    def option(self):
        if self.name in SIMPLE_IDS:
            return struct.pack(">H", SIMPLE_IDS[self.name])
        code = {"list": 0x20, "map": 0x21, "set": 0x22}[self.name]
        return struct.pack(">H", code) + b"".join(p.option() for p in self.params)

    # ---- values <-> bytes ----
    def serialize(self, v):
        n = self.name
        if n in ("text", "ascii"):
            return v.encode("utf-8")
        if n in INTEGER_TYPES:
            return int(v).to_bytes(INTEGER_TYPES[n], "big", signed=True)
        if n == "varint":
            return _varint_bytes(int(v))
        if n == "boolean":
            return b"\x01" if v else b"\x00"
        if n in ("uuid", "timeuuid"):
            return v.bytes
        if n in ("timestamp", "time"):
            return int(v).to_bytes(8, "big", signed=True)
        if n == "date":
            return ((int(v) + 2 ** 31) % 2 ** 32).to_bytes(4, "big")
        if n == "blob":
            return bytes(v)
        if n == "double":
            return struct.pack(">d", v)
        if n == "float":
            return struct.pack(">f", v)
        if n == "decimal":
            sign, digits, exp = v.as_tuple()
            unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
            return struct.pack(">i", -exp) + _varint_bytes(unscaled)
        if n == "inet":
            return ipaddress.ip_address(v).packed
        if n in ("list", "set"):
            elem = self.params[0]
            parts = [struct.pack(">i", len(v))]
            for item in v:
                b = elem.serialize(item)
                parts.append(struct.pack(">i", len(b)) + b)
            return b"".join(parts)
        if n == "map":
            kt, vt = self.params
            parts = [struct.pack(">i", len(v))]
            for k, val in v:
                kb = kt.serialize(k)
                vb = vt.serialize(val) if val is not None else None
                parts.append(struct.pack(">i", len(kb)) + kb)
                parts.append(struct.pack(">i", -1) if vb is None else struct.pack(">i", len(vb)) + vb)
            return b"".join(parts)
        raise InvalidRequest(f"cannot serialize type {self.cql()}")

    def deserialize(self, b):
        """bytes -> value; raises InvalidRequest the way Cassandra's validators do."""
        n = self.name
        if n == "text":
            try:
                return b.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest("Invalid UTF-8 bytes " + b.hex())
        if n == "ascii":
            if any(c >= 0x80 for c in b):
                raise InvalidRequest("Invalid byte for ascii: " + str(next(c for c in b if c >= 0x80) - 256))
            return b.decode("ascii")
        if n in INTEGER_TYPES or n in ("timestamp", "time", "date"):
            width = INTEGER_TYPES.get(n, 4 if n == "date" else 8)
            if len(b) != width:
                raise InvalidRequest(f"Expected {width} or 0 byte {_java_name(n)} ({len(b)})")
            if n == "date":
                return int.from_bytes(b, "big") - 2 ** 31
            return int.from_bytes(b, "big", signed=True)
        if n == "varint":
            return int.from_bytes(b, "big", signed=True)
        if n == "boolean":
            if len(b) != 1:
                raise InvalidRequest(f"Expected 1 or 0 byte value ({len(b)})")
            return b != b"\x00"
        if n in ("uuid", "timeuuid"):
            if len(b) != 16:
                raise InvalidRequest(f"Expected 16 or 0 byte uuid ({len(b)})")
            u = uuid.UUID(bytes=bytes(b))
            if n == "timeuuid" and u.version != 1:
                raise InvalidRequest("Unsupported UUID version for timeuuid")
            return u
        if n == "blob":
            return bytes(b)
        if n in ("double", "float"):
            w = 8 if n == "double" else 4
            if len(b) != w:
                raise InvalidRequest(f"Expected {w} or 0 byte value for a {n} ({len(b)})")
            return struct.unpack(">d" if n == "double" else ">f", b)[0]
        if n == "decimal":
            if len(b) < 4:
                raise InvalidRequest("Invalid decimal")
            scale = struct.unpack(">i", b[:4])[0]
            unscaled = int.from_bytes(b[4:], "big", signed=True)
            return decimal.Decimal(unscaled).scaleb(-scale)
        if n == "inet":
            if len(b) not in (4, 16):
                raise InvalidRequest(f"Invalid length {len(b)} for an inet address")
            return str(ipaddress.ip_address(bytes(b)))
        if n in ("list", "set", "map"):
            return self._deserialize_collection(b)
        raise InvalidRequest(f"cannot read values of type {self.cql()}")

    def _deserialize_collection(self, b):
        def take(pos):
            if pos + 4 > len(b):
                raise InvalidRequest("Not enough bytes to read a " + self.name)
            size = struct.unpack(">i", b[pos:pos + 4])[0]
            pos += 4
            if size < 0:
                return None, pos
            if pos + size > len(b):
                raise InvalidRequest("Not enough bytes to read a " + self.name)
            return b[pos:pos + size], pos + size

        if len(b) < 4:
            raise InvalidRequest("Not enough bytes to read a " + self.name)
        count = struct.unpack(">i", b[:4])[0]
        if count < 0 or count * 4 > len(b):
            raise InvalidRequest("Not enough bytes to read a " + self.name)
        pos, items = 4, []
        for _ in range(count):
            raw, pos = take(pos)
            if raw is None:
                raise InvalidRequest(f"null is not supported inside collections")
            if self.name == "map":
                val, pos = take(pos)
                items.append((self.params[0].deserialize(raw),
                              None if val is None else self.params[1].deserialize(val)))
            else:
                items.append(self.params[0].deserialize(raw))
        if pos != len(b):
            raise InvalidRequest(f"Unexpected extraneous bytes after {self.name} value")
        return self.normalize(items)

    def normalize(self, v):
        """Sets come back sorted and unique, maps sorted by key, all as tuples."""
        if self.name == "list":
            return tuple(v)
        if self.name == "set":
            elem = self.params[0]
            uniq = {elem.sort_key(x): x for x in v}
            return tuple(uniq[k] for k in sorted(uniq))
        if self.name == "map":
            kt = self.params[0]
            uniq = {kt.sort_key(k): (k, val) for k, val in v}
            return tuple(uniq[k] for k in sorted(uniq))
        return v

    def sort_key(self, v):
        n = self.name
        if v is None:
            return (0,)
        if n in ("text", "ascii"):
            return (1, v.encode("utf-8"))
        if n in ("uuid", "timeuuid"):
            return (1, v.bytes)
        if n == "inet":
            return (1, ipaddress.ip_address(v).packed)
        if n in ("list", "set"):
            return (1, tuple(self.params[0].sort_key(x) for x in v))
        if n == "map":
            return (1, tuple((self.params[0].sort_key(k), self.params[1].sort_key(x)) for k, x in v))
        return (1, v)

    # ---- literals in statements ----
    def from_literal(self, lit, column):
        """A parsed literal (cqlparse.Literal) as a value of this type."""
        kind, v = lit.kind, lit.value
        if kind == "null":
            return None
        n = self.name
        ok = _LITERAL_KINDS.get(n, ())
        if kind not in ok:
            if kind in ("list", "set", "map"):
                raise InvalidRequest(f"Invalid {kind} literal for {column} of type {self.cql()}")
            raise InvalidRequest(f"Invalid {_KIND_NAMES[kind]} constant ({lit.text}) for \"{column}\" of type "
                                 f"{self.cql()}")
        try:
            return self._convert(kind, v, column)
        except (ValueError, OverflowError, decimal.InvalidOperation):
            raise InvalidRequest(f"Unable to make {_java_name(n)} from '{lit.text}'")

    def _convert(self, kind, v, column):
        n = self.name
        if n in INTEGER_TYPES:
            bits = INTEGER_TYPES[n] * 8
            if not -(2 ** (bits - 1)) <= v < 2 ** (bits - 1):
                raise InvalidRequest(f"Unable to make {_java_name(n)} from '{v}'")
            return v
        if n == "varint":
            return v
        if n in ("double", "float"):
            return float(v)
        if n == "decimal":
            return decimal.Decimal(str(v))
        if n in ("text", "ascii"):
            if n == "ascii" and any(ord(c) >= 0x80 for c in v):
                raise InvalidRequest(f"Invalid ASCII character in string literal {v}")
            return v
        if n == "boolean":
            return v
        if n in ("uuid", "timeuuid"):
            u = uuid.UUID(v)
            if n == "timeuuid" and u.version != 1:
                raise InvalidRequest(f"Unsupported UUID version for timeuuid: {v}")
            return u
        if n == "blob":
            return v
        if n == "timestamp":
            return v if kind == "integer" else parse_timestamp(v)
        if n == "date":
            return v if kind == "integer" else (datetime.date.fromisoformat(v) - datetime.date(1970, 1, 1)).days
        if n == "time":
            return v if kind == "integer" else parse_time(v)
        if n == "inet":
            return str(ipaddress.ip_address(v))
        if n in ("list", "set"):
            elem = self.params[0]
            if n == "list" and kind == "set" and v:
                raise InvalidRequest(f"Invalid set literal for {column} of type {self.cql()}")
            items = [self._element(elem, x, column) for x in v]
            return self.normalize(items)
        if n == "map":
            kt, vt = self.params
            return self.normalize([(self._element(kt, k, column), self._element(vt, x, column)) for k, x in v])
        raise InvalidRequest(f"Unsupported type {self.cql()}")

    @staticmethod
    def _element(t, lit, column):
        if lit.kind == "null":
            raise InvalidRequest("null is not supported inside collections")
        if lit.kind == "bind":
            raise InvalidRequest("bind markers inside collection literals are not supported by this stand-in")
        return t.from_literal(lit, column)


_LITERAL_KINDS = {
    "int": ("integer",), "bigint": ("integer",), "smallint": ("integer",), "tinyint": ("integer",),
    "counter": ("integer",), "varint": ("integer",),
    "double": ("integer", "float"), "float": ("integer", "float"), "decimal": ("integer", "float"),
    "text": ("string",), "ascii": ("string",), "boolean": ("boolean",),
    "uuid": ("uuid",), "timeuuid": ("uuid",), "blob": ("hex",),
    "timestamp": ("integer", "string"), "date": ("integer", "string"), "time": ("integer", "string"),
    "inet": ("string",), "list": ("list", "set"), "set": ("set",), "map": ("map", "set"),
}
_KIND_NAMES = {"integer": "INTEGER", "float": "FLOAT", "string": "STRING", "boolean": "BOOLEAN",
               "uuid": "UUID", "hex": "HEX", "duration": "DURATION", "bind": "BIND"}


def _java_name(n):
    return {"int": "int", "bigint": "long", "smallint": "short", "tinyint": "byte", "timestamp": "date",
            "counter": "long", "time": "time", "date": "date"}.get(n, n)


def _varint_bytes(i):
    length = max(1, (i.bit_length() + 8) // 8)
    return i.to_bytes(length, "big", signed=True)


def parse_timestamp(s):
    """'2024-01-02 03:04:05+0000' and ISO forms -> milliseconds since the epoch."""
    t = s.strip().replace(" ", "T", 1)
    t = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", t)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int((dt - EPOCH).total_seconds() * 1000)


def parse_time(s):
    h, m, rest = s.split(":")
    sec, _, frac = rest.partition(".")
    return ((int(h) * 60 + int(m)) * 60 + int(sec)) * 10 ** 9 + int((frac + "000000000")[:9])


# ---- type names ----

_TYPE_TOKEN = re.compile(r"\s*(<|>|,|[A-Za-z_][A-Za-z0-9_.]*|\"(?:[^\"]|\"\")*\")")


def parse_type(text):
    """'map<text, frozen<list<int>>>' -> CqlType; raises SyntaxError_/InvalidRequest."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TYPE_TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise SyntaxError_(f"Invalid type {text}")
        tokens.append(m.group(1))
        pos = m.end()
    t, i = _parse_type_tokens(tokens, 0, text)
    if i != len(tokens):
        raise SyntaxError_(f"Invalid type {text}")
    return t


def _parse_type_tokens(tokens, i, text, inside=False):
    if i >= len(tokens):
        raise SyntaxError_(f"Invalid type {text}")
    name = tokens[i].lower()
    name = ALIASES.get(name, name)
    i += 1
    if name in SIMPLE_IDS:
        return CqlType(name), i
    if name not in ("list", "set", "map", "frozen"):
        raise InvalidRequest(f"Unknown type {tokens[i - 1]}")
    if i >= len(tokens) or tokens[i] != "<":
        raise SyntaxError_(f"Invalid type {text}")
    i += 1
    if name == "frozen":
        inner, i = _parse_type_tokens(tokens, i, text, inside=False)
        if not inner.is_collection:
            raise InvalidRequest(f"frozen<> is only allowed on collections, tuples, and user-defined types "
                                 f"(got {inner.cql()})")
        inner.frozen = True
        if i >= len(tokens) or tokens[i] != ">":
            raise SyntaxError_(f"Invalid type {text}")
        return inner, i + 1
    params = []
    for k in range(2 if name == "map" else 1):
        if k:
            if i >= len(tokens) or tokens[i] != ",":
                raise SyntaxError_(f"Invalid type {text}")
            i += 1
        p, i = _parse_type_tokens(tokens, i, text, inside=True)
        if p.is_collection and not p.frozen:
            raise InvalidRequest(f"Non-frozen collections are not allowed inside collections: {text}")
        params.append(p)
    if i >= len(tokens) or tokens[i] != ">":
        raise SyntaxError_(f"Invalid type {text}")
    return CqlType(name, params), i + 1


TEXT = CqlType("text")
INT = CqlType("int")
BIGINT = CqlType("bigint")
BOOLEAN = CqlType("boolean")
UUID = CqlType("uuid")
BLOB = CqlType("blob")
DOUBLE = CqlType("double")
INET = CqlType("inet")
TIMESTAMP = CqlType("timestamp")
SET_TEXT = CqlType("set", [TEXT])
LIST_TEXT = CqlType("list", [TEXT])
MAP_TEXT = CqlType("map", [TEXT, TEXT])
FROZEN_SET_TEXT = CqlType("set", [TEXT], frozen=True)
FROZEN_LIST_TEXT = CqlType("list", [TEXT], frozen=True)
FROZEN_MAP_TEXT = CqlType("map", [TEXT, TEXT], frozen=True)
FROZEN_MAP_TEXT_BLOB = CqlType("map", [TEXT, BLOB], frozen=True)
MAP_UUID_BLOB = CqlType("map", [UUID, BLOB])
