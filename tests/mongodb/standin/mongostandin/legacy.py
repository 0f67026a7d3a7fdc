"""The legacy read opcodes MongoDB 5.0 still accepts and pymongo 3.11 uses
for raw-batch and exhaust cursors: OP_QUERY on a collection, OP_GET_MORE and
OP_KILL_CURSORS. Each is translated into the find/getMore command and runs
through the same dispatch (authorization, replica set checks) as OP_MSG.
The legacy write opcodes (OP_INSERT, OP_UPDATE, OP_DELETE) are not accepted.
"""
import struct

from . import wire
from .bsoncodec import Int64
from .dispatch import run_command
from .errors import MongoError

REPLY_CURSOR_NOT_FOUND = 1
REPLY_QUERY_FAILURE = 2
REPLY_AWAIT_CAPABLE = 8

QUERY_TAILABLE = 1 << 1
QUERY_NO_CURSOR_TIMEOUT = 1 << 4
QUERY_AWAIT_DATA = 1 << 5
QUERY_EXHAUST = 1 << 6

_MODIFIERS = {"$orderby": "sort", "$hint": "hint", "$maxTimeMS": "maxTimeMS", "$comment": "comment",
              "$max": "max", "$min": "min", "$returnKey": "returnKey", "$showDiskLoc": "showRecordId"}


def find_command(request):
    """The find command equivalent to a legacy OP_QUERY on a collection."""
    legacy = request.legacy_query
    wrapper = request.wrapper or {}
    if wrapper.get("$explain"):
        raise MongoError(238, "$explain is not supported by the mongod stand-in")
    cmd = {"find": request.collection, "filter": request.body}
    if legacy["fields"]:
        cmd["projection"] = legacy["fields"]
    if legacy["skip"]:
        cmd["skip"] = legacy["skip"]
    for modifier, field in _MODIFIERS.items():
        if modifier in wrapper:
            cmd[field] = wrapper[modifier]
    n = legacy["n_return"]
    if n < 0 or n == 1:
        cmd["limit"] = abs(n)
        cmd["singleBatch"] = True
    elif n > 0:
        cmd["batchSize"] = n
    flags = legacy["flags"]
    if flags & QUERY_TAILABLE:
        cmd["tailable"] = True
    if flags & QUERY_AWAIT_DATA:
        cmd["awaitData"] = True
    if flags & QUERY_NO_CURSOR_TIMEOUT:
        cmd["noCursorTimeout"] = True
    cmd["$db"] = request.db
    return cmd


def _failure(code, message):
    return {"$err": message, "code": code, "ok": 0.0}


def handle_query(conn, request):
    """Answer an OP_QUERY on a collection with OP_REPLY (and, for exhaust, every later batch)."""
    try:
        cmd = find_command(request)
    except MongoError as exc:
        conn.send_raw(wire.op_reply(request.request_id, [_failure(exc.code, exc.message)],
                                    conn.next_request_id(), flags=REPLY_QUERY_FAILURE))
        return
    find = wire.Request(wire.OP_QUERY, request.request_id, cmd, request.db, secondary_ok=request.secondary_ok)
    reply = run_command(conn.server, conn, find)
    if not reply.get("ok"):
        conn.send_raw(wire.op_reply(request.request_id, [_failure(reply.get("code", 8), reply.get("errmsg", ""))],
                                    conn.next_request_id(), flags=REPLY_QUERY_FAILURE))
        return
    cursor = reply["cursor"]
    docs, cursor_id = cursor["firstBatch"], int(cursor["id"])
    reply_id = conn.next_request_id()
    conn.send_raw(wire.op_reply(request.request_id, docs, reply_id, flags=REPLY_AWAIT_CAPABLE,
                                cursor_id=cursor_id))
    returned = len(docs)
    n = request.legacy_query["n_return"]
    while cursor_id and request.legacy_query["flags"] & QUERY_EXHAUST:
        more = _get_more(conn, request.db, request.collection, cursor_id, n)
        if not more.get("ok"):
            break
        docs, cursor_id = more["cursor"]["nextBatch"], int(more["cursor"]["id"])
        previous, reply_id = reply_id, conn.next_request_id()
        conn.send_raw(wire.op_reply(previous, docs, reply_id, flags=REPLY_AWAIT_CAPABLE, cursor_id=cursor_id,
                                    starting_from=returned))
        returned += len(docs)


def _get_more(conn, db, collection, cursor_id, n_return):
    cmd = {"getMore": Int64(cursor_id), "collection": collection, "$db": db}
    if n_return > 0:
        cmd["batchSize"] = n_return
    return run_command(conn.server, conn, wire.Request(wire.OP_GET_MORE, 0, cmd, db))


def handle_get_more(conn, request_id, message):
    nul = message.find(b"\x00", 20)
    if nul < 0 or nul + 13 > len(message):
        raise wire.ProtocolError("malformed OP_GET_MORE")
    db, _, collection = message[20:nul].decode("utf-8").partition(".")
    n_return, cursor_id = struct.unpack_from("<iq", message, nul + 1)
    reply = _get_more(conn, db, collection, cursor_id, n_return)
    if reply.get("ok"):
        cursor = reply["cursor"]
        conn.send_raw(wire.op_reply(request_id, cursor["nextBatch"], conn.next_request_id(),
                                    flags=REPLY_AWAIT_CAPABLE, cursor_id=int(cursor["id"])))
    elif reply.get("code") == 43:
        conn.send_raw(wire.op_reply(request_id, [], conn.next_request_id(), flags=REPLY_CURSOR_NOT_FOUND,
                                    cursor_id=cursor_id))
    else:
        conn.send_raw(wire.op_reply(request_id, [_failure(reply.get("code", 8), reply.get("errmsg", ""))],
                                    conn.next_request_id(), flags=REPLY_QUERY_FAILURE))


def handle_kill_cursors(conn, message):
    """Kill the listed cursors this connection's users own; there is no reply."""
    if len(message) < 24:
        raise wire.ProtocolError("malformed OP_KILL_CURSORS")
    count = struct.unpack_from("<i", message, 20)[0]
    if count < 0 or 24 + 8 * count > len(message):
        raise wire.ProtocolError("malformed OP_KILL_CURSORS")
    ids = struct.unpack_from(f"<{count}q", message, 24)
    server = conn.server
    with server.lock:
        owner = tuple(sorted((i.user, i.db) for i in conn.current_identities(server)))
        for cid in ids:
            cursor = server.cursors.open.get(cid)
            if cursor is not None and cursor.owner == owner:
                server.cursors.kill(cid)
