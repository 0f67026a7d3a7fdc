"""Durable storage under --dbpath: a catalog (_mdb_catalog.bson), one
append-only record file per collection (collection-N-R.bson), mongod.lock
and diagnostic.data/. Every committed write is fsync'd before it is
acknowledged, so copying the files copies the data. Callers hold the server
lock; this module takes no locks of its own and never sees user-chosen file names.
"""
import errno
import fcntl
import os
import struct
import uuid

from . import bsoncodec
from .bsoncodec import Binary, RawDocument, to_shell
from .errors import MongoError
from .query import index_key, path_values

CATALOG = "_mdb_catalog.bson"
LOCK_FILE = "mongod.lock"
FILE_MAGIC = b"MONGOD-STANDIN-COLLECTION-1\n"
_REC = struct.Struct("<cq")
ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class StorageError(Exception):
    """Cannot use the data directory; mongod exits with `exit_code`."""

    def __init__(self, message, exit_code=100):
        super().__init__(message)
        self.exit_code = exit_code


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path, data):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


class Record:
    """One stored document; never mutated (an update stores a new Record)."""
    __slots__ = ("doc", "raw")

    def __init__(self, doc, raw=None):
        self.doc = doc
        self.raw = raw if raw is not None else bsoncodec.encode(doc)

    def raw_document(self):
        return RawDocument(self.raw)


def _sized(record):
    if len(record.raw) > MAX_DOCUMENT_BYTES:
        raise MongoError(10334, f"object to insert too large. size in bytes: {len(record.raw)}, max size: "
                                f"{MAX_DOCUMENT_BYTES}")
    return record


class Collection:
    def __init__(self, storage, entry):
        self.storage = storage
        self.db = entry["db"]
        self.name = entry["name"]
        self.ident = entry["ident"]
        self.uuid = entry["uuid"]
        self.options = entry.get("options", {})
        self.indexes = entry.get("indexes", [])
        self.records = {}
        self.next_rid = 1
        self.unique = {}
        self.data_size = 0
        self.path = os.path.join(storage.dbpath, self.ident + ".bson")
        self.pending = []
        self.file_size = 0
        self._rebuild_indexes_empty()

    @property
    def ns(self):
        return f"{self.db}.{self.name}"

    @property
    def capped(self):
        return bool(self.options.get("capped"))

    def _rebuild_indexes_empty(self):
        self.unique = {ix["name"]: {} for ix in self.indexes if ix["name"] == "_id_" or ix.get("unique")}

    def _unique_specs(self):
        return [ix for ix in self.indexes if ix["name"] in self.unique]

    # ---- files ----

    def create_file(self):
        write_atomically(self.path, FILE_MAGIC)
        self.file_size = len(FILE_MAGIC)

    def load(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise StorageError(f"collection file {self.ident}.bson for {self.ns} is missing") from None
        if not data.startswith(FILE_MAGIC):
            raise StorageError(f"collection file {self.ident}.bson is not a stand-in collection file")
        pos = len(FILE_MAGIC)
        good = pos
        while pos < len(data):
            if pos + _REC.size > len(data):
                break
            kind, rid = _REC.unpack_from(data, pos)
            p = pos + _REC.size
            if kind == b"I":
                if p + 4 > len(data):
                    break
                n = struct.unpack_from("<i", data, p)[0]
                if n < 5 or p + n > len(data):
                    break
                raw = data[p:p + n]
                try:
                    doc = bsoncodec.decode(raw)
                except bsoncodec.BSONError:
                    break
                self._put_loaded(rid, Record(doc, raw))
                pos = p + n
            elif kind == b"D":
                old = self.records.pop(rid, None)
                if old is not None:
                    self.data_size -= len(old.raw)
                pos = p
            else:
                break
            self.next_rid = max(self.next_rid, rid + 1)
            good = pos
        if good != len(data):  # a torn tail from a crash: keep what was whole
            with open(self.path, "r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        self.file_size = good
        self._reindex()

    def _put_loaded(self, rid, record):
        old = self.records.get(rid)
        if old is not None:
            self.data_size -= len(old.raw)
        self.records[rid] = record
        self.data_size += len(record.raw)

    def _reindex(self):
        self._rebuild_indexes_empty()
        for spec in self._unique_specs():
            table = self.unique[spec["name"]]
            for rid, rec in self.records.items():
                table[index_key(rec.doc, spec["key"])] = rid

    def flush(self):
        """Append pending records and fsync; returns True if anything was written."""
        if not self.pending:
            return False
        blob = b"".join(self.pending)
        self.pending = []
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(blob)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.file_size += len(blob)
        if self.file_size > 1 << 20 and self.file_size > 2 * (self.data_size + len(FILE_MAGIC)):
            self.compact()
        return True

    def compact(self):
        parts = [FILE_MAGIC]
        for rid, rec in self.records.items():
            parts += (_REC.pack(b"I", rid), rec.raw)
        blob = b"".join(parts)
        write_atomically(self.path, blob)
        self.file_size = len(blob)

    # ---- records ----

    def _dup_error(self, spec, key_doc):
        return MongoError(11000, f"E11000 duplicate key error collection: {self.ns} index: {spec['name']} "
                                 f"dup key: {to_shell(key_doc)}",
                          {"keyPattern": dict(spec["key"]), "keyValue": key_doc})

    def _key_doc(self, doc, spec):
        out = {}
        for path in spec["key"]:
            values = path_values(doc, path)
            out[path] = values[0] if values else None
        return out

    def check_unique(self, doc, ignore_rid=None):
        keys = {}
        for spec in self._unique_specs():
            key = index_key(doc, spec["key"])
            other = self.unique[spec["name"]].get(key)
            if other is not None and other != ignore_rid:
                raise self._dup_error(spec, self._key_doc(doc, spec))
            keys[spec["name"]] = key
        return keys

    def insert(self, doc, raw=None):
        """Store a new document (raw: its encoding, if the caller has it); MongoError 11000
        if a unique index refuses it. Returns the record id."""
        keys = self.check_unique(doc)
        rec = _sized(Record(doc, raw))
        rid = self.next_rid
        self.next_rid += 1
        self.records[rid] = rec
        self.data_size += len(rec.raw)
        for name, key in keys.items():
            self.unique[name][key] = rid
        self.pending += (_REC.pack(b"I", rid), rec.raw)
        self.storage.dirty.add(self)
        if self.capped:
            self._trim()
        return rid

    def replace(self, rid, doc):
        old = self.records[rid]
        keys = self.check_unique(doc, ignore_rid=rid)
        rec = _sized(Record(doc))
        for spec in self._unique_specs():
            self.unique[spec["name"]].pop(index_key(old.doc, spec["key"]), None)
        self.records[rid] = rec
        self.data_size += len(rec.raw) - len(old.raw)
        for name, key in keys.items():
            self.unique[name][key] = rid
        self.pending += (_REC.pack(b"I", rid), rec.raw)
        self.storage.dirty.add(self)

    def delete(self, rid):
        old = self.records.pop(rid)
        self.data_size -= len(old.raw)
        for spec in self._unique_specs():
            self.unique[spec["name"]].pop(index_key(old.doc, spec["key"]), None)
        self.pending.append(_REC.pack(b"D", rid))
        self.storage.dirty.add(self)

    def _trim(self):
        limit = int(self.options.get("size") or 0)
        max_docs = int(self.options.get("max") or 0)
        while self.records and ((limit and self.data_size > limit) or (max_docs and len(self.records) > max_docs)):
            self.delete(next(iter(self.records)))

    def find_id(self, id_value):
        """rid of the document with this _id, or None."""
        table = self.unique.get("_id_")
        if table is None:
            return None
        return table.get(index_key({"_id": id_value}, {"_id": 1}))

    def add_index(self, spec):
        """Add an index (checking uniqueness over existing documents first)."""
        if spec.get("unique"):
            table = {}
            for rid, rec in self.records.items():
                key = index_key(rec.doc, spec["key"])
                if key in table:
                    raise self._dup_error(spec, self._key_doc(rec.doc, spec))
                table[key] = rid
        self.indexes.append(spec)
        self._rebuild_indexes_empty()
        self._reindex()
        self.storage.write_catalog()

    def drop_index(self, name):
        self.indexes = [ix for ix in self.indexes if ix["name"] != name]
        self._rebuild_indexes_empty()
        self._reindex()
        self.storage.write_catalog()

    def catalog_entry(self):
        return {"ns": self.ns, "db": self.db, "name": self.name, "ident": self.ident, "uuid": self.uuid,
                "options": self.options, "indexes": self.indexes}


class Storage:
    def __init__(self, dbpath):
        self.dbpath = os.path.abspath(dbpath)
        self.collections = {}
        self.dirty = set()
        self.lock_fd = None
        self.unclean = False
        self.closed = False

    # ---- lifecycle ----

    def open(self):
        if not os.path.isdir(self.dbpath):
            raise StorageError(f"NonExistentPath: Data directory {self.dbpath} not found. Create the missing "
                               f"directory or specify another path using (1) the --dbpath command line option, "
                               f"or (2) by adding the 'storage.dbPath' option in the configuration file.")
        lock_path = os.path.join(self.dbpath, LOCK_FILE)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"Unable to create/open the lock file: {lock_path} ({exc.strerror}).") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise StorageError(f"DBPathInUse: Unable to lock the lock file: {lock_path} (Resource temporarily "
                                   f"unavailable). Another mongod instance is already running on the "
                                   f"{self.dbpath} directory") from None
            raise
        self.unclean = os.fstat(fd).st_size > 0
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.lock_fd = fd
        os.makedirs(os.path.join(self.dbpath, "diagnostic.data"), exist_ok=True)
        self._load_catalog()

    def close(self):
        self.commit()
        self.closed = True
        if self.lock_fd is not None:
            os.ftruncate(self.lock_fd, 0)
            os.fsync(self.lock_fd)
            os.close(self.lock_fd)
            self.lock_fd = None

    def _load_catalog(self):
        path = os.path.join(self.dbpath, CATALOG)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        try:
            catalog = bsoncodec.decode(data)
        except bsoncodec.BSONError as exc:
            raise StorageError(f"the catalog {CATALOG} is corrupt: {exc}") from None
        if catalog.get("format") != "mongod-standin-1":
            raise StorageError(f"{CATALOG} was not written by the mongod stand-in")
        for entry in catalog.get("collections", []):
            coll = Collection(self, entry)
            coll.load()
            self.collections[(coll.db, coll.name)] = coll

    def write_catalog(self):
        self._check_open()
        doc = {"format": "mongod-standin-1",
               "collections": [c.catalog_entry() for c in self.collections.values()]}
        write_atomically(os.path.join(self.dbpath, CATALOG), bsoncodec.encode(doc))

    def _check_open(self):
        if self.closed:
            raise MongoError(91, "The server is shutting down; the data files are closed")

    def commit(self):
        """Make every pending write durable."""
        if self.closed:
            self.dirty.clear()
            return
        for coll in list(self.dirty):
            if (coll.db, coll.name) in self.collections:
                coll.flush()
        self.dirty.clear()

    # ---- namespaces ----

    def get(self, db, name):
        return self.collections.get((db, name))

    def create(self, db, name, options=None, id_index=True, coll_uuid=None):
        self._check_open()
        options = dict(options or {})
        idx = [dict(ID_INDEX)] if id_index else []
        ident = f"collection-{len(self.collections)}-{uuid.uuid4().int & 0xFFFFFFFFFFFF}"
        entry = {"db": db, "name": name, "ident": ident, "options": options, "indexes": idx,
                 "uuid": coll_uuid or Binary(uuid.uuid4().bytes, 4)}
        coll = Collection(self, entry)
        coll.create_file()
        self.collections[(db, name)] = coll
        self.write_catalog()
        return coll

    def drop(self, db, name):
        coll = self.collections.pop((db, name), None)
        if coll is None:
            return None
        self.dirty.discard(coll)
        self.write_catalog()
        try:
            os.unlink(coll.path)
        except FileNotFoundError:
            pass
        return coll

    def drop_database(self, db):
        dropped = [self.collections.pop(key) for key in [k for k in self.collections if k[0] == db]]
        for coll in dropped:
            self.dirty.discard(coll)
        if dropped:
            self.write_catalog()
        for coll in dropped:
            try:
                os.unlink(coll.path)
            except FileNotFoundError:
                pass
        return [c.name for c in dropped]

    def databases(self):
        return sorted({d for (d, _) in self.collections})

    def collections_of(self, db):
        return [c for (d, _), c in sorted(self.collections.items()) if d == db]

    def database_size(self, db):
        return sum(c.file_size for c in self.collections_of(db))
