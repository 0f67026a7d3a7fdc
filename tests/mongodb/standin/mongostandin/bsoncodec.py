"""BSON (bsonspec.org 1.1) encoder and strict decoder, and the total order
MongoDB uses to compare values. Owns the Python types that stand for BSON
values; it never trusts a length or terminator it has not checked.
"""
import datetime
import decimal
import os
import struct
import threading
import time

MAX_DEPTH = 100


class BSONError(ValueError):
    """Malformed BSON: the input is refused as a whole."""


class Int64(int):
    """A BSON int64 (type 0x12); plain Python ints encode as int32 when they fit."""
    __slots__ = ()

    def __repr__(self):
        return f"Int64({int(self)})"


class ObjectId:
    __slots__ = ("binary",)
    _lock = threading.Lock()
    _counter = int.from_bytes(os.urandom(3), "big")
    _process = os.urandom(5)

    def __init__(self, binary=None):
        if binary is None:
            with ObjectId._lock:
                ObjectId._counter = (ObjectId._counter + 1) & 0xFFFFFF
                counter = ObjectId._counter
            binary = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + ObjectId._process + counter.to_bytes(3, "big")
        if isinstance(binary, str):
            binary = bytes.fromhex(binary)
        if len(binary) != 12:
            raise BSONError("ObjectId needs 12 bytes")
        self.binary = bytes(binary)

    def __eq__(self, other):
        return isinstance(other, ObjectId) and other.binary == self.binary

    def __hash__(self):
        return hash(self.binary)

    def __repr__(self):
        return f"ObjectId('{self.binary.hex()}')"


class Binary:
    __slots__ = ("subtype", "data")

    def __init__(self, data, subtype=0):
        self.data = bytes(data)
        self.subtype = subtype

    def __eq__(self, other):
        return isinstance(other, Binary) and other.subtype == self.subtype and other.data == self.data

    def __hash__(self):
        return hash((self.subtype, self.data))

    def __repr__(self):
        if self.subtype == 4 and len(self.data) == 16:
            h = self.data.hex()
            return f'UUID("{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")'
        return f"BinData({self.subtype}, {len(self.data)} bytes)"


class DateTime:
    """Milliseconds since the Unix epoch (BSON type 0x09)."""
    __slots__ = ("ms",)

    def __init__(self, ms):
        self.ms = int(ms)

    @classmethod
    def now(cls):
        return cls(int(time.time() * 1000))

    def __eq__(self, other):
        return isinstance(other, DateTime) and other.ms == self.ms

    def __hash__(self):
        return hash(("date", self.ms))

    def iso(self):
        dt = datetime.datetime.fromtimestamp(self.ms / 1000, datetime.timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.ms % 1000:03d}Z"

    def __repr__(self):
        return f'ISODate("{self.iso()}")'


class Timestamp:
    """The internal timestamp type (0x11): seconds and an increment."""
    __slots__ = ("time", "inc")

    def __init__(self, time_, inc):
        self.time = int(time_)
        self.inc = int(inc)

    def key(self):
        return (self.time, self.inc)

    def __eq__(self, other):
        return isinstance(other, Timestamp) and other.key() == self.key()

    def __lt__(self, other):
        return self.key() < other.key()

    def __le__(self, other):
        return self.key() <= other.key()

    def __hash__(self):
        return hash(("ts", self.time, self.inc))

    def __repr__(self):
        return f"Timestamp({self.time}, {self.inc})"


class Decimal128:
    """Kept as its 16 little-endian bytes; converted only to compare."""
    __slots__ = ("bid",)

    def __init__(self, bid):
        if len(bid) != 16:
            raise BSONError("decimal128 needs 16 bytes")
        self.bid = bytes(bid)

    def __eq__(self, other):
        return isinstance(other, Decimal128) and other.bid == self.bid

    def __hash__(self):
        return hash(self.bid)

    def to_decimal(self):
        high = int.from_bytes(self.bid[8:], "little")
        low = int.from_bytes(self.bid[:8], "little")
        sign = (high >> 63) & 1
        if (high >> 58) & 0x1F == 0x1F:
            return decimal.Decimal("NaN")
        if (high >> 58) & 0x1F == 0x1E:
            return decimal.Decimal("-Infinity" if sign else "Infinity")
        if (high >> 61) & 0x3 == 0x3:
            exponent = (high >> 47) & 0x3FFF
            coefficient = 0  # a coefficient this large is non-canonical: zero
        else:
            exponent = (high >> 49) & 0x3FFF
            coefficient = ((high & 0x1FFFFFFFFFFFF) << 64) | low
        return decimal.Decimal((sign, tuple(int(d) for d in str(coefficient)), exponent - 6176))

    def __repr__(self):
        return f'NumberDecimal("{self.to_decimal()}")'


class Regex:
    __slots__ = ("pattern", "flags")

    def __init__(self, pattern, flags=""):
        self.pattern = pattern
        self.flags = flags

    def __eq__(self, other):
        return isinstance(other, Regex) and (other.pattern, other.flags) == (self.pattern, self.flags)

    def __hash__(self):
        return hash((self.pattern, self.flags))

    def __repr__(self):
        return f"/{self.pattern}/{self.flags}"


class _Key:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


MinKey = _Key("MinKey")
MaxKey = _Key("MaxKey")


class RawDocument:
    """An already encoded document, written out as is (replies reuse stored bytes)."""
    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw


_INT32 = struct.Struct("<i")
_INT64 = struct.Struct("<q")
_UINT64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_UINT32 = struct.Struct("<I")


_KEY_CACHE = {}
_KEY_CACHE_MAX = 4096


def _cstring(key):
    cached = _KEY_CACHE.get(key)
    if cached is not None:
        return cached
    b = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if b"\x00" in b:
        raise BSONError(f"key {key!r} must not contain a NUL byte")
    b += b"\x00"
    if len(_KEY_CACHE) < _KEY_CACHE_MAX and isinstance(key, str):
        _KEY_CACHE[key] = b
    return b


def _string(value):
    b = value.encode("utf-8", "surrogatepass")
    return _INT32.pack(len(b) + 1) + b + b"\x00"


def _enc_int(parts, name, value, depth):
    if -2147483648 <= value <= 2147483647:
        parts += (b"\x10", name, _INT32.pack(value))
    elif -9223372036854775808 <= value <= 9223372036854775807:
        parts += (b"\x12", name, _INT64.pack(value))
    else:
        raise BSONError(f"integer {value} does not fit in int64")


def _enc_array(parts, name, value, depth):
    parts += (b"\x04", name, encode({str(i): v for i, v in enumerate(value)}, depth + 1))


_ENCODERS = {
    str: lambda parts, name, v, d: parts.extend((b"\x02", name, _string(v))),
    int: _enc_int,
    float: lambda parts, name, v, d: parts.extend((b"\x01", name, _DOUBLE.pack(v))),
    bool: lambda parts, name, v, d: parts.extend((b"\x08", name, b"\x01" if v else b"\x00")),
    dict: lambda parts, name, v, d: parts.extend((b"\x03", name, encode(v, d + 1))),
    list: _enc_array,
    tuple: _enc_array,
    type(None): lambda parts, name, v, d: parts.extend((b"\x0a", name)),
    RawDocument: lambda parts, name, v, d: parts.extend((b"\x03", name, v.raw)),
    Int64: lambda parts, name, v, d: parts.extend((b"\x12", name, _INT64.pack(v))),
    ObjectId: lambda parts, name, v, d: parts.extend((b"\x07", name, v.binary)),
    Binary: lambda parts, name, v, d: parts.extend((b"\x05", name, _INT32.pack(len(v.data)), bytes([v.subtype]),
                                                   v.data)),
    DateTime: lambda parts, name, v, d: parts.extend((b"\x09", name, _INT64.pack(v.ms))),
    Timestamp: lambda parts, name, v, d: parts.extend((b"\x11", name, _UINT32.pack(v.inc), _UINT32.pack(v.time))),
    Decimal128: lambda parts, name, v, d: parts.extend((b"\x13", name, v.bid)),
    Regex: lambda parts, name, v, d: parts.extend((b"\x0b", name, _cstring(v.pattern), _cstring(v.flags))),
}


def _element(parts, key, value, depth):
    name = _cstring(key)
    enc = _ENCODERS.get(type(value))
    if enc is not None:
        enc(parts, name, value, depth)
    elif value is MinKey:
        parts += (b"\xff", name)
    elif value is MaxKey:
        parts += (b"\x7f", name)
    elif isinstance(value, dict):
        parts += (b"\x03", name, encode(dict(value), depth + 1))
    elif isinstance(value, int) and not isinstance(value, bool):
        _enc_int(parts, name, int(value), depth)
    else:
        raise BSONError(f"cannot encode a {type(value).__name__} as BSON")


def encode(doc, depth=0):
    """Encode a dict (keys in insertion order) as one BSON document."""
    if depth > MAX_DEPTH:
        raise BSONError("document nesting is too deep")
    parts = []
    for key, value in doc.items():
        _element(parts, key, value, depth)
    body = b"".join(parts)
    return _INT32.pack(len(body) + 5) + body + b"\x00"


def _read_cstring(buf, pos, end):
    nul = buf.find(b"\x00", pos, end)
    if nul < 0:
        raise BSONError("unterminated cstring")
    try:
        return buf[pos:nul].decode("utf-8"), nul + 1
    except UnicodeDecodeError:
        raise BSONError("invalid UTF-8 in a key or cstring") from None


def _check(pos, need, end):
    if pos + need > end:
        raise BSONError("value runs past the end of its document")


def _decode_document(buf, pos, end, depth, as_list=False):
    """Decode the document starting at pos; returns (value, position after it)."""
    if depth > MAX_DEPTH:
        raise BSONError("document nesting is too deep")
    _check(pos, 5, end)
    size = _INT32.unpack_from(buf, pos)[0]
    if size < 5 or pos + size > end:
        raise BSONError("invalid document length")
    doc_end = pos + size
    if buf[doc_end - 1] != 0:
        raise BSONError("document does not end with a NUL byte")
    out = [] if as_list else {}
    p = pos + 4
    while p < doc_end - 1:
        etype = buf[p]
        key, p = _read_cstring(buf, p + 1, doc_end - 1)
        value, p = _decode_value(buf, etype, p, doc_end - 1, depth)
        if as_list:
            if key != str(len(out)):
                raise BSONError("array keys are not 0, 1, 2, ...")
            out.append(value)
        else:
            out[key] = value
    if p != doc_end - 1:
        raise BSONError("document elements overrun its length")
    return out, doc_end


def _decode_value(buf, etype, p, end, depth):
    if etype == 0x01:
        _check(p, 8, end)
        return _DOUBLE.unpack_from(buf, p)[0], p + 8
    if etype == 0x02 or etype == 0x0D or etype == 0x0E:
        _check(p, 4, end)
        n = _INT32.unpack_from(buf, p)[0]
        if n < 1:
            raise BSONError("invalid string length")
        _check(p + 4, n, end)
        if buf[p + 4 + n - 1] != 0:
            raise BSONError("string is not NUL-terminated")
        try:
            s = buf[p + 4:p + 4 + n - 1].decode("utf-8")
        except UnicodeDecodeError:
            raise BSONError("invalid UTF-8 in a string") from None
        if etype != 0x02:
            raise BSONError("JavaScript and symbol values are not supported")
        return s, p + 4 + n
    if etype == 0x03:
        return _decode_document(buf, p, end, depth + 1)
    if etype == 0x04:
        return _decode_document(buf, p, end, depth + 1, as_list=True)
    if etype == 0x05:
        _check(p, 5, end)
        n = _INT32.unpack_from(buf, p)[0]
        if n < 0:
            raise BSONError("invalid binary length")
        _check(p + 5, n, end)
        subtype = buf[p + 4]
        data = bytes(buf[p + 5:p + 5 + n])
        if subtype == 2:  # the old binary subtype carries its own inner length
            if n < 4 or _INT32.unpack_from(data, 0)[0] != n - 4:
                raise BSONError("invalid binary subtype 2 length")
        return Binary(data, subtype), p + 5 + n
    if etype == 0x07:
        _check(p, 12, end)
        return ObjectId(bytes(buf[p:p + 12])), p + 12
    if etype == 0x08:
        _check(p, 1, end)
        if buf[p] > 1:
            raise BSONError("boolean is neither 0 nor 1")
        return buf[p] == 1, p + 1
    if etype == 0x09:
        _check(p, 8, end)
        return DateTime(_INT64.unpack_from(buf, p)[0]), p + 8
    if etype == 0x0A:
        return None, p
    if etype == 0x0B:
        pattern, p = _read_cstring(buf, p, end)
        flags, p = _read_cstring(buf, p, end)
        return Regex(pattern, flags), p
    if etype == 0x10:
        _check(p, 4, end)
        return _INT32.unpack_from(buf, p)[0], p + 4
    if etype == 0x11:
        _check(p, 8, end)
        inc, secs = struct.unpack_from("<II", buf, p)
        return Timestamp(secs, inc), p + 8
    if etype == 0x12:
        _check(p, 8, end)
        return Int64(_INT64.unpack_from(buf, p)[0]), p + 8
    if etype == 0x13:
        _check(p, 16, end)
        return Decimal128(bytes(buf[p:p + 16])), p + 16
    if etype == 0xFF:
        return MinKey, p
    if etype == 0x7F:
        return MaxKey, p
    raise BSONError(f"unsupported BSON element type 0x{etype:02x}")


def decode(buf, pos=0, end=None):
    """Decode exactly one document occupying buf[pos:end] (end defaults to its length)."""
    buf = bytes(buf)
    doc, after = _decode_document(buf, pos, len(buf) if end is None else end, 0)
    if end is not None and after != end:
        raise BSONError("trailing bytes after a document")
    return doc


def decode_prefix(buf, pos, end=None):
    """Decode the document at pos inside buf[:end]; returns (doc, next position)."""
    return _decode_document(bytes(buf), pos, len(buf) if end is None else end, 0)


# ---- MongoDB's comparison order (src/mongo/bson/bsontypes.h, canonical types) ----

def canonical_rank(value):
    t = type(value)
    if value is None:
        return 5
    if t is bool:
        return 40
    if t in (int, Int64, float, Decimal128):
        return 10
    if t is str:
        return 15
    if t is dict or t is RawDocument:
        return 20
    if t is list or t is tuple:
        return 25
    if t is Binary:
        return 30
    if t is ObjectId:
        return 35
    if t is DateTime:
        return 45
    if t is Timestamp:
        return 47
    if t is Regex:
        return 50
    if value is MinKey:
        return -1
    if value is MaxKey:
        return 127
    return 200


def _number(value):
    if type(value) is Decimal128:
        return value.to_decimal()
    return value


def _cmp_numbers(a, b):
    a, b = _number(a), _number(b)
    a_nan = a != a
    b_nan = b != b
    if a_nan or b_nan:  # NaN sorts below every other number and equals itself
        return 0 if a_nan and b_nan else (-1 if a_nan else 1)
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        a, b = decimal.Decimal(a), decimal.Decimal(b)
    return (a > b) - (a < b)


def compare(a, b):
    """-1, 0 or 1 in MongoDB's order: MinKey < null < numbers < strings < objects
    < arrays < binData < ObjectId < bool < date < timestamp < regex < MaxKey."""
    ra, rb = canonical_rank(a), canonical_rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 10:
        return _cmp_numbers(a, b)
    if ra == 15:
        x, y = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
        return (x > y) - (x < y)
    if ra == 20:
        if type(a) is RawDocument:
            a = decode(a.raw)
        if type(b) is RawDocument:
            b = decode(b.raw)
        ia, ib = list(a.items()), list(b.items())
        for (ka, va), (kb, vb) in zip(ia, ib):
            c = compare_rank_only(va, vb)
            if c:
                return c
            if ka != kb:
                x, y = ka.encode(), kb.encode()
                return (x > y) - (x < y)
            c = compare(va, vb)
            if c:
                return c
        return (len(ia) > len(ib)) - (len(ia) < len(ib))
    if ra == 25:
        for va, vb in zip(a, b):
            c = compare(va, vb)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 30:
        ka, kb = (len(a.data), a.subtype, a.data), (len(b.data), b.subtype, b.data)
        return (ka > kb) - (ka < kb)
    if ra == 35:
        return (a.binary > b.binary) - (a.binary < b.binary)
    if ra == 40:
        return (a > b) - (a < b)
    if ra == 45:
        return (a.ms > b.ms) - (a.ms < b.ms)
    if ra == 47:
        return (a.key() > b.key()) - (a.key() < b.key())
    if ra == 50:
        ka, kb = (a.pattern, a.flags), (b.pattern, b.flags)
        return (ka > kb) - (ka < kb)
    return 0


def compare_rank_only(a, b):
    ra, rb = canonical_rank(a), canonical_rank(b)
    return (ra > rb) - (ra < rb)


def hash_key(value):
    """A hashable key equal for values MongoDB treats as equal (1 == 1.0 == Int64(1))."""
    t = type(value)
    if t is bool:
        return ("b", value)
    if t in (int, Int64):
        return ("n", int(value))
    if t is float:
        if value != value:
            return ("nan",)
        return ("n", int(value)) if value.is_integer() else ("n", value)
    if t is Decimal128:
        d = value.to_decimal()
        if d.is_nan():
            return ("nan",)
        if d.is_finite() and d == d.to_integral_value():
            return ("n", int(d))
        return ("n", float(d)) if d.is_finite() else ("n", float(d))
    if t is dict:
        return ("o", tuple((k, hash_key(v)) for k, v in value.items()))
    if t is RawDocument:
        return hash_key(decode(value.raw))
    if t is list or t is tuple:
        return ("a", tuple(hash_key(v) for v in value))
    if value is None:
        return ("null",)
    if value is MinKey or value is MaxKey:
        return ("key", value.name)
    return (t.__name__, value)


def _shell_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_shell(value):
    """Render a value the way mongod prints one in messages: { a: 1, b: "x" }."""
    t = type(value)
    if t is dict or t is RawDocument:
        if t is RawDocument:
            value = decode(value.raw)
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k}: {to_shell(v)}" for k, v in value.items()) + " }"
    if t is list or t is tuple:
        return "[ " + ", ".join(to_shell(v) for v in value) + " ]" if value else "[]"
    if t is str:
        return _shell_string(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is float:
        return f"{value:.1f}" if value.is_integer() else repr(value)
    if t is ObjectId:
        return f"ObjectId('{value.binary.hex()}')"
    if t is Int64 or t is int:
        return str(int(value))
    return repr(value)
