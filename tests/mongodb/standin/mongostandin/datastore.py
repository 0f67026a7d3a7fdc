"""Every change to user data goes through here: namespace rules, implicit
collection creation, and the oplog entry each change produces on a primary.
A secondary applies oplog entries through apply_entry (idempotently).
Callers hold the server lock.
"""
import copy

import struct

from .bsoncodec import Binary, ObjectId
from .errors import MongoError
from .query import check_storable, index_key

_BAD_DB_CHARS = set('/\\. "$*<>:|?\x00')
MAX_NS_BYTES = 255


def validate_db_name(db):
    if not isinstance(db, str) or not db or len(db.encode("utf-8")) >= 64 or _BAD_DB_CHARS & set(db):
        raise MongoError(73, f"Invalid database name: '{db}'")


def validate_collection_name(db, name, for_user_write=True):
    ns = f"{db}.{name}"
    if not isinstance(name, str) or not name or name.startswith(".") or "\x00" in name:
        raise MongoError(73, f"Invalid namespace specified '{ns}'")
    if "$" in name and name != "oplog.$main":
        raise MongoError(73, f"Invalid namespace specified '{ns}'")
    if len(ns.encode("utf-8")) > MAX_NS_BYTES:
        raise MongoError(73, f"Fully qualified namespace is too long. Namespace: {ns} Max: {MAX_NS_BYTES}")
    if (for_user_write and name.startswith("system.") and name not in ("system.js", "system.profile")
            and ns != "admin.system.users"):
        raise MongoError(73, f"Invalid system namespace: {ns}")


def _check_user_document(doc):
    """The shape mongod requires of admin.system.users documents written directly."""
    user, db = doc.get("user"), doc.get("db")
    if not isinstance(user, str) or not user:
        raise MongoError(2, "User document needs 'user' field to be a non-empty string")
    if not isinstance(db, str) or not db:
        raise MongoError(2, "User document needs 'db' field to be a non-empty string")
    if doc.get("_id") != f"{db}.{user}":
        raise MongoError(2, f"User document _id must be \"{db}.{user}\"")
    if not isinstance(doc.get("credentials"), dict) or not isinstance(doc.get("roles"), list):
        raise MongoError(2, "User document needs 'credentials' (an object) and 'roles' (an array)")


class DataStore:
    def __init__(self, server):
        self.server = server

    @property
    def storage(self):
        return self.server.storage

    def _log(self, op, ns, o, o2=None, ui=None, o_raw=None):
        repl = self.server.repl
        if repl is None or ns.startswith("local.") or ns.startswith("config.system.sessions"):
            return None
        return repl.log_op(op, ns, o, o2, ui, o_raw)

    def check_db_case(self, db):
        for existing in self.storage.databases():
            if existing != db and existing.lower() == db.lower():
                raise MongoError(13297, f"db already exists with different case already have: [{existing}] "
                                        f"trying to create [{db}]")

    # ---- collections ----

    def collection(self, db, name, create=True, options=None):
        """The collection, created implicitly if `create`; returns (collection, created)."""
        coll = self.storage.get(db, name)
        if coll is not None or not create:
            return coll, False
        return self.create_collection(db, name, options or {}), True

    def create_collection(self, db, name, options):
        validate_db_name(db)
        self.check_db_case(db)
        coll = self.storage.create(db, name, options, id_index=options.get("autoIndexId", True) is not False)
        o = {"create": name}
        o.update({k: v for k, v in options.items() if k != "autoIndexId"})
        o["idIndex"] = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
        self._log("c", f"{db}.$cmd", o, ui=coll.uuid)
        return coll

    def drop_collection(self, db, name):
        coll = self.storage.drop(db, name)
        if coll is not None:
            self.server.cursors.kill_namespace(coll.ns)
            self._log("c", f"{db}.$cmd", {"drop": name}, ui=coll.uuid)
        return coll

    def drop_database(self, db):
        names = self.storage.drop_database(db)
        self.server.cursors.kill_namespace(db)
        if names:
            self._log("c", f"{db}.$cmd", {"dropDatabase": 1})
        return names

    def create_index(self, coll, spec):
        coll.add_index(spec)
        o = {"createIndexes": coll.name}
        o.update(spec)
        self._log("c", f"{coll.db}.$cmd", o, ui=coll.uuid)

    def drop_index(self, coll, name):
        coll.drop_index(name)
        self._log("c", f"{coll.db}.$cmd", {"dropIndexes": coll.name, "index": name}, ui=coll.uuid)

    # ---- documents ----

    def insert(self, coll, doc, raw=None):
        """Insert doc (raw: its exact encoding from the wire, reused rather than re-encoded)."""
        check_storable(doc)
        if coll.ns == "admin.system.users":
            _check_user_document(doc)
        if "_id" not in doc and coll.unique.get("_id_") is not None:
            oid = ObjectId()
            doc = {"_id": oid, **doc}
            if raw is not None:
                element = b"\x07_id\x00" + oid.binary
                raw = struct.pack("<i", len(raw) + len(element)) + element + raw[4:]
        rid = coll.insert(doc, raw)
        self._log("i", coll.ns, doc, ui=coll.uuid, o_raw=coll.records[rid].raw)
        return rid, doc

    def replace(self, coll, rid, doc):
        check_storable(doc)
        if coll.ns == "admin.system.users":
            _check_user_document(doc)
        coll.replace(rid, doc)
        o2 = {"_id": doc["_id"]} if "_id" in doc else {}
        self._log("u", coll.ns, doc, o2=o2, ui=coll.uuid, o_raw=coll.records[rid].raw)

    def delete(self, coll, rid):
        doc = coll.records[rid].doc
        coll.delete(rid)
        self._log("d", coll.ns, {"_id": doc["_id"]} if "_id" in doc else {}, ui=coll.uuid)

    # ---- applying the oplog on a secondary ----

    def apply_entry(self, entry):
        """Apply one oplog entry from the sync source; idempotent, never logs again."""
        op, ns = entry.get("op"), entry.get("ns", "")
        db, _, name = ns.partition(".")
        if op == "n":
            return
        if op == "c":
            self._apply_command(db, entry.get("o", {}), entry.get("ui"))
            return
        coll = self.storage.get(db, name)
        if op == "i":
            if coll is None:
                coll = self.storage.create(db, name, {}, coll_uuid=entry.get("ui")
                                           if isinstance(entry.get("ui"), Binary) else None)
            doc = entry["o"]
            rid = coll.find_id(doc["_id"]) if "_id" in doc else None
            self._store(coll, rid, doc)
        elif op == "u":
            if coll is None:
                return
            doc = entry["o"]
            if doc and next(iter(doc)).startswith("$"):
                raise MongoError(2, "oplog update entries with operators are not applied by the mongod stand-in")
            id_value = entry.get("o2", {}).get("_id")
            rid = coll.find_id(id_value)
            if "_id" not in doc and id_value is not None:
                doc = {"_id": id_value, **doc}
            self._store(coll, rid, doc)
        elif op == "d":
            if coll is None:
                return
            rid = coll.find_id(entry.get("o", {}).get("_id"))
            if rid is not None:
                coll.delete(rid)
        else:
            raise MongoError(2, f"unknown oplog operation '{op}'")

    def apply_command_entry(self, entry):
        """applyOps: apply one entry as a secondary would (inserts and updates
        as upserts), then log it as this member's own write when it is a
        primary (mongod logs one applyOps entry for the batch instead)."""
        op, ns = entry.get("op"), entry.get("ns", "")
        if op == "n":
            return
        self.apply_entry(entry)
        db, _, name = ns.partition(".")
        if op == "c":
            self._log("c", ns, entry.get("o", {}))
            return
        coll = self.storage.get(db, name)
        if coll is None:
            return
        id_value = (entry.get("o2") if op == "u" else entry.get("o", {})).get("_id")
        if op == "d":
            self._log("d", ns, {"_id": id_value}, ui=coll.uuid)
            return
        rid = coll.find_id(id_value)
        if rid is not None:
            doc = coll.records[rid].doc
            if op == "i":
                self._log("i", ns, doc, ui=coll.uuid, o_raw=coll.records[rid].raw)
            else:
                self._log("u", ns, doc, o2={"_id": id_value}, ui=coll.uuid, o_raw=coll.records[rid].raw)

    def _store(self, coll, rid, doc):
        try:
            if rid is None:
                coll.insert(doc)
            else:
                coll.replace(rid, doc)
        except MongoError as exc:
            if exc.code != 11000:
                raise
            # A unique key still held by a document a later entry changes: make room, as replay would.
            for spec in coll._unique_specs():
                other = coll.unique[spec["name"]].get(index_key(doc, spec["key"]))
                if other is not None and other != rid:
                    coll.delete(other)
            if rid is None:
                coll.insert(doc)
            else:
                coll.replace(rid, doc)

    def _apply_command(self, db, o, ui):
        if not o:
            return
        name = next(iter(o))
        arg = o[name]
        if name == "create":
            if self.storage.get(db, arg) is None:
                options = {k: v for k, v in o.items() if k not in ("create", "idIndex")}
                self.storage.create(db, arg, options, coll_uuid=ui if isinstance(ui, Binary) else None)
        elif name == "drop":
            self.storage.drop(db, arg)
            self.server.cursors.kill_namespace(f"{db}.{arg}")
        elif name == "dropDatabase":
            self.storage.drop_database(db)
            self.server.cursors.kill_namespace(db)
        elif name == "createIndexes":
            coll = self.storage.get(db, arg) or self.storage.create(db, arg, {})
            spec = copy.deepcopy({k: v for k, v in o.items() if k != "createIndexes"})
            if not any(ix["name"] == spec.get("name") for ix in coll.indexes):
                coll.add_index(spec)
        elif name == "dropIndexes":
            coll = self.storage.get(db, arg)
            if coll is not None and any(ix["name"] == o.get("index") for ix in coll.indexes):
                coll.drop_index(o["index"])
        else:
            raise MongoError(2, f"oplog command '{name}' is not applied by the mongod stand-in")
