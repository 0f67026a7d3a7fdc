"""Server-side cursors: batches for find/aggregate/list* replies, getMore,
killCursors, tailable awaitData cursors on capped collections (the oplog)
and the idle-cursor timeout. Callers hold the server lock.
"""
import os
import time

from .bsoncodec import Int64, RawDocument, encode
from .errors import MongoError

MAX_BATCH_BYTES = 16 * 1024 * 1024 - 16 * 1024


class Cursor:
    def __init__(self, ns, owner, items, limit=0, tailable=None, no_timeout=False):
        self.id = int.from_bytes(os.urandom(8), "big") & 0x7FFFFFFFFFFFFFFF or 1
        self.ns = ns
        self.owner = owner
        self.items = items  # a list of encodable documents, consumed from pos
        self.pos = 0
        self.limit = limit
        self.returned = 0
        self.tailable = tailable  # TailState for tailable cursors
        self.no_timeout = no_timeout
        self.last_used = time.monotonic()

    def next_batch(self, batch_size):
        """Up to batch_size documents (None: no count limit), never more than 16 MB."""
        out, size = [], 0
        while self.pos < len(self.items):
            if batch_size is not None and len(out) >= batch_size:
                break
            if self.limit and self.returned >= self.limit:
                break
            item = self.items[self.pos]
            if type(item) is not RawDocument:
                item = RawDocument(encode(item))
            n = len(item.raw)
            if out and size + n > MAX_BATCH_BYTES:
                break
            out.append(item)
            size += n
            self.pos += 1
            self.returned += 1
        return out

    def exhausted(self):
        if self.tailable is not None:
            return self.tailable.dead
        return self.pos >= len(self.items) or (self.limit and self.returned >= self.limit)


class TailState:
    """Where a tailable cursor is in its capped collection."""

    def __init__(self, collection, last_rid, match, await_data):
        self.collection = collection
        self.last_rid = last_rid
        self.match = match
        self.await_data = await_data
        self.dead = False

    def fetch_new(self, storage):
        coll = self.collection
        if storage.get(coll.db, coll.name) is not coll:
            self.dead = True
            return []
        out = []
        for rid in reversed(coll.records):  # newest first, stop at what we have seen
            if rid <= self.last_rid:
                break
            out.append(rid)
        out.reverse()
        docs = []
        for rid in out:
            rec = coll.records[rid]
            if self.match(rec.doc):
                docs.append(rec.raw_document())
            self.last_rid = rid
        return docs


class Cursors:
    def __init__(self):
        self.open = {}

    def register(self, cursor):
        self.open[cursor.id] = cursor
        return cursor

    def first_reply(self, cursor, batch_size, single_batch=False):
        """The {cursor: {...}} reply of a command that opens a cursor."""
        batch = cursor.next_batch(batch_size)
        if cursor.tailable is not None and not cursor.tailable.dead:
            more = True
        else:
            more = not single_batch and not cursor.exhausted()
        cid = 0
        if more:
            self.register(cursor)
            cid = cursor.id
        return {"cursor": {"firstBatch": batch, "id": Int64(cid), "ns": cursor.ns}, "ok": 1.0}

    def get(self, cursor_id, ns, owner):
        cursor = self.open.get(cursor_id)
        if cursor is None:
            raise MongoError(43, f"cursor id {cursor_id} not found")
        if cursor.ns != ns:
            raise MongoError(13, f"Requested getMore on namespace '{ns}', but cursor belongs to a different "
                                 f"namespace {cursor.ns}")
        if cursor.owner != owner:
            raise MongoError(13, f"cursor id {cursor_id} was not created by the authenticated user")
        cursor.last_used = time.monotonic()
        return cursor

    def kill(self, cursor_id):
        return self.open.pop(cursor_id, None) is not None

    def reap(self, timeout_ms):
        now = time.monotonic()
        for cid, cursor in list(self.open.items()):
            if not cursor.no_timeout and (now - cursor.last_used) * 1000 > timeout_ms:
                del self.open[cid]

    def kill_namespace(self, ns_prefix):
        for cid, cursor in list(self.open.items()):
            if cursor.ns == ns_prefix or cursor.ns.startswith(ns_prefix + "."):
                if cursor.tailable is None:
                    del self.open[cid]
