"""MongoDB wire protocol framing: the 16-byte header, OP_QUERY/OP_REPLY for the
handshake, and OP_MSG with its sections and CRC-32C checksum. Parsing refuses
anything whose lengths or flags do not add up; it never executes anything.
"""
import struct

from . import bsoncodec

OP_REPLY = 1
OP_UPDATE = 2001
OP_INSERT = 2002
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMPRESSED = 2012
OP_MSG = 2013

MAX_MESSAGE_SIZE = 48000000
HEADER = struct.Struct("<iiii")

MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
_MSG_KNOWN_FLAGS = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME | MSG_EXHAUST_ALLOWED

QUERY_SECONDARY_OK = 1 << 2


class ProtocolError(Exception):
    """A message that cannot be parsed. The whole message was read, so the
    server answers with an error and keeps the connection."""


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), the OP_MSG checksum."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_message(sock_file):
    """One whole message from a binary file object: (request_id, response_to, opcode, body),
    or None at a clean end of stream."""
    header = sock_file.read(16)
    if not header:
        return None
    if len(header) < 16:
        raise ProtocolError("connection closed inside a message header")
    length, request_id, response_to, opcode = HEADER.unpack(header)
    if length < 16 or length > MAX_MESSAGE_SIZE:
        raise ProtocolError(f"message length {length} is out of range")
    body = sock_file.read(length - 16)
    if len(body) != length - 16:
        raise ProtocolError("connection closed inside a message")
    return request_id, response_to, opcode, header + body


class Request:
    """A parsed command request, whichever opcode carried it."""

    def __init__(self, opcode, request_id, body, db, secondary_ok=False, more_to_come=False,
                 exhaust_allowed=False, legacy=False):
        self.opcode = opcode
        self.request_id = request_id
        self.body = body
        self.db = db
        self.secondary_ok = secondary_ok
        self.more_to_come = more_to_come
        self.exhaust_allowed = exhaust_allowed
        self.legacy = legacy
        self.raw_sequences = {}  # identifier -> the encoded documents of a kind-1 section


def parse_op_msg(request_id, message):
    flags = struct.unpack_from("<I", message, 16)[0]
    if flags & 0xFFFF & ~_MSG_KNOWN_FLAGS:
        raise ProtocolError(f"OP_MSG has unknown required flag bits 0x{flags:08x}")
    end = len(message)
    if flags & MSG_CHECKSUM_PRESENT:
        if end < 24:
            raise ProtocolError("OP_MSG too short for its checksum")
        end -= 4
        expected = struct.unpack_from("<I", message, end)[0]
        if crc32c(message[:end]) != expected:
            raise ProtocolError("OP_MSG checksum does not match its contents")
    pos = 20
    body = None
    sequences = []
    raw_sequences = {}
    while pos < end:
        kind = message[pos]
        pos += 1
        if kind == 0:
            if body is not None:
                raise ProtocolError("OP_MSG has more than one body section")
            body, pos = bsoncodec.decode_prefix(message, pos, end)
        elif kind == 1:
            if pos + 4 > end:
                raise ProtocolError("truncated OP_MSG document sequence")
            size = struct.unpack_from("<i", message, pos)[0]
            seq_end = pos + size
            if size < 5 or seq_end > end:
                raise ProtocolError("invalid OP_MSG document sequence length")
            nul = message.find(b"\x00", pos + 4, seq_end)
            if nul < 0:
                raise ProtocolError("unterminated OP_MSG sequence identifier")
            ident = message[pos + 4:nul].decode("utf-8", "strict")
            docs, raws, p = [], [], nul + 1
            while p < seq_end:
                doc, after = bsoncodec.decode_prefix(message, p, seq_end)
                docs.append(doc)
                raws.append(message[p:after])
                p = after
            if p != seq_end:
                raise ProtocolError("OP_MSG document sequence overruns its length")
            sequences.append((ident, docs))
            raw_sequences[ident] = raws
            pos = seq_end
        else:
            raise ProtocolError(f"unknown OP_MSG section kind {kind}")
    if body is None:
        raise ProtocolError("OP_MSG has no body section")
    for ident, docs in sequences:
        if ident in body:
            raise ProtocolError(f"duplicate field '{ident}' in OP_MSG body and document sequence")
        body[ident] = docs
    db = body.get("$db")
    if not isinstance(db, str):
        raise ProtocolError("OP_MSG body has no $db string")
    read_pref = body.get("$readPreference")
    secondary_ok = isinstance(read_pref, dict) and read_pref.get("mode") not in (None, "primary")
    request = Request(OP_MSG, request_id, body, db, secondary_ok=secondary_ok,
                      more_to_come=bool(flags & MSG_MORE_TO_COME), exhaust_allowed=bool(flags & MSG_EXHAUST_ALLOWED))
    request.raw_sequences = raw_sequences
    return request


def parse_op_query(request_id, message):
    if len(message) < 20:
        raise ProtocolError("truncated OP_QUERY")
    flags = struct.unpack_from("<i", message, 16)[0]
    nul = message.find(b"\x00", 20)
    if nul < 0:
        raise ProtocolError("OP_QUERY has an unterminated collection name")
    full_name = message[20:nul].decode("utf-8", "strict")
    pos = nul + 1 + 8
    if pos > len(message):
        raise ProtocolError("truncated OP_QUERY")
    skip, n_return = struct.unpack_from("<ii", message, nul + 1)
    query, pos = bsoncodec.decode_prefix(message, pos)
    fields = None
    if pos < len(message):
        fields, pos = bsoncodec.decode_prefix(message, pos)
    if pos != len(message):
        raise ProtocolError("trailing bytes after OP_QUERY")
    db, _, coll = full_name.partition(".")
    secondary_ok = bool(flags & QUERY_SECONDARY_OK)
    wrapper = None
    if "$query" in query or (next(iter(query), None) == "query" and "$readPreference" in query):
        wrapper = query
        query = wrapper.get("$query", wrapper.get("query"))
        rp = wrapper.get("$readPreference")
        if isinstance(rp, dict) and rp.get("mode") not in (None, "primary"):
            secondary_ok = True
        if not isinstance(query, dict):
            raise ProtocolError("OP_QUERY $query is not a document")
    req = Request(OP_QUERY, request_id, query, db, secondary_ok=secondary_ok, legacy=True)
    req.collection = coll
    req.wrapper = wrapper
    req.legacy_query = {"flags": flags, "skip": skip, "n_return": n_return, "fields": fields}
    return req


def op_reply(response_to, docs, request_id, flags=0, cursor_id=0, starting_from=0):
    payload = b"".join(d.raw if type(d) is bsoncodec.RawDocument else bsoncodec.encode(d) for d in docs)
    head = struct.pack("<iqii", flags, cursor_id, starting_from, len(docs))
    total = 16 + len(head) + len(payload)
    return HEADER.pack(total, request_id, response_to, OP_REPLY) + head + payload


def op_msg(response_to, doc, request_id, flags=0):
    payload = struct.pack("<I", flags) + b"\x00" + bsoncodec.encode(doc)
    return HEADER.pack(16 + len(payload), request_id, response_to, OP_MSG) + payload


def op_msg_request(doc, request_id, flags=0, sequences=()):
    """A client-side OP_MSG (used by members talking to each other)."""
    parts = [struct.pack("<I", flags), b"\x00", bsoncodec.encode(doc)]
    for ident, docs in sequences:
        blob = b"".join(bsoncodec.encode(d) for d in docs)
        name = ident.encode() + b"\x00"
        parts += [b"\x01", struct.pack("<i", 4 + len(name) + len(blob)), name, blob]
    payload = b"".join(parts)
    return HEADER.pack(16 + len(payload), request_id, 0, OP_MSG) + payload


def parse_reply_body(opcode, message):
    """The reply document of an OP_MSG or OP_REPLY (client side)."""
    if opcode == OP_MSG:
        if message[20] != 0:
            raise ProtocolError("reply does not start with a body section")
        doc, _ = bsoncodec.decode_prefix(message, 21)
        return doc
    if opcode == OP_REPLY:
        doc, _ = bsoncodec.decode_prefix(message, 36)
        return doc
    raise ProtocolError(f"unexpected reply opcode {opcode}")
