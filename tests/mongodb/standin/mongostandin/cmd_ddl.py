"""Namespace commands: create, drop, dropDatabase, createIndexes,
dropIndexes, listIndexes, listCollections, listDatabases, collStats,
dbStats and dbHash.
"""
import functools
import hashlib
import os
import time

from .bsoncodec import Int64, compare, to_shell
from .cmd_crud import coll_stats
from .cursors import Cursor
from .datastore import validate_collection_name, validate_db_name
from .dispatch import command
from .errors import MongoError, not_supported
from .query import matches

_INDEX_OPTIONS = {"key", "name", "unique", "v", "background", "ns"}


def _name(ctx):
    name = ctx.arg
    if not isinstance(name, str):
        raise MongoError(73, f"collection name has invalid type {type(name).__name__}")
    validate_db_name(ctx.db)
    validate_collection_name(ctx.db, name, for_user_write=False)
    return name


@command("create", auth=("db", "ddl"), secondary="never", writes=True)
def cmd_create(ctx):
    """Create a collection (capped with size/max allowed)."""
    name = _name(ctx)
    validate_collection_name(ctx.db, name)
    for option in ("viewOn", "pipeline", "validator", "timeseries", "clusteredIndex", "changeStreamPreAndPostImages",
                   "expireAfterSeconds", "storageEngine", "indexOptionDefaults", "encryptedFields"):
        if option in ctx.cmd:
            raise not_supported(f"create option {option}")
    if ctx.cmd.get("collation"):
        raise not_supported("collation")
    options = {}
    if ctx.cmd.get("capped"):
        size = ctx.cmd.get("size")
        if not isinstance(size, (int, float)) or size <= 0:
            raise MongoError(72, "the 'size' field is required when 'capped' is true")
        options = {"capped": True, "size": int(size)}
        if ctx.cmd.get("max"):
            options["max"] = int(ctx.cmd["max"])
    ctx.wait_writable()
    if ctx.server.storage.get(ctx.db, name) is not None:
        raise MongoError(48, f"Collection already exists. NS: {ctx.db}.{name}")
    ctx.server.datastore.create_collection(ctx.db, name, options)
    return {"ok": 1.0}


@command("drop", auth=("db", "ddl"), secondary="never", writes=True)
def cmd_drop(ctx):
    """Drop a collection."""
    name = _name(ctx)
    ctx.wait_writable()
    coll = ctx.server.storage.get(ctx.db, name)
    if coll is None:
        raise MongoError(26, "ns not found")
    n = len(coll.indexes)
    ctx.server.datastore.drop_collection(ctx.db, name)
    return {"nIndexesWas": n, "ns": f"{ctx.db}.{name}", "ok": 1.0}


@command("dropDatabase", auth=("db", "dropDatabase"), secondary="never", writes=True)
def cmd_drop_database(ctx):
    """Drop a database and every collection in it."""
    validate_db_name(ctx.db)
    if ctx.db == "local" and ctx.server.repl is not None:
        raise MongoError(20, "Cannot drop 'local' database while replication is active")
    ctx.wait_writable()
    names = ctx.server.datastore.drop_database(ctx.db)
    ctx.server.log.info("COMMAND", ctx.conn.ctx_name, "dropDatabase", {"db": ctx.db, "collections": len(names)})
    return {"dropped": ctx.db, "ok": 1.0} if names else {"ok": 1.0}


def _index_spec(raw):
    if not isinstance(raw, dict):
        raise MongoError(14, "each index specification must be an object")
    key = raw.get("key")
    if not isinstance(key, dict) or not key:
        raise MongoError(67, f"Error in specification {to_shell(raw)} :: caused by :: The 'key' field must be a "
                             f"non-empty object")
    for field, direction in key.items():
        if isinstance(direction, str):
            raise not_supported(f"{direction} indexes")
        if type(direction) not in (int, float, Int64) or direction == 0:
            raise MongoError(67, f"Values in index key pattern must be positive or negative numbers: "
                                 f"{to_shell(key)}")
    for option in raw:
        if option not in _INDEX_OPTIONS:
            if option in ("sparse", "partialFilterExpression", "expireAfterSeconds", "collation", "hidden",
                          "weights", "default_language", "language_override", "textIndexVersion", "2dsphereIndexVersion",
                          "bits", "min", "max", "wildcardProjection"):
                if raw[option] in (False, None):
                    continue
                raise not_supported(f"index option {option}")
            raise MongoError(197, f"Error in specification {to_shell(raw)} :: caused by :: The field '{option}' "
                                  f"is not valid for an index specification.")
    name = raw.get("name")
    if name is None:
        name = "_".join(f"{k}_{int(v)}" for k, v in key.items())
    if not isinstance(name, str) or not name:
        raise MongoError(67, "The index name must be a non-empty string")
    spec = {"v": 2, "key": {k: int(v) for k, v in key.items()}, "name": name}
    if raw.get("unique"):
        spec["unique"] = True
    return spec


def _same_key(a, b):
    return list(a["key"].items()) == list(b["key"].items())


@command("createIndexes", auth=("db", "ddl"), secondary="never", writes=True)
def cmd_create_indexes(ctx):
    """Create indexes (ascending/descending, optionally unique)."""
    name = _name(ctx)
    validate_collection_name(ctx.db, name)
    raw = ctx.cmd.get("indexes")
    if not isinstance(raw, list) or not raw:
        raise MongoError(2, "Must specify at least one index to create")
    specs = [_index_spec(r) for r in raw]
    ctx.wait_writable()
    coll, created = ctx.server.datastore.collection(ctx.db, name)
    before = len(coll.indexes)
    for spec in specs:
        same_name = next((ix for ix in coll.indexes if ix["name"] == spec["name"]), None)
        if same_name is not None:
            if _same_key(same_name, spec) and bool(same_name.get("unique")) == bool(spec.get("unique")):
                continue
            if spec["name"] == "_id_":
                raise MongoError(197, "The _id index cannot be changed")
            raise MongoError(86, f"An existing index has the same name as the requested index. When index names "
                                 f"are not specified, they are auto generated and can cause conflicts. Please "
                                 f"refer to our documentation. Requested index: {to_shell(spec)}, existing index: "
                                 f"{to_shell(same_name)}")
        same_key = next((ix for ix in coll.indexes if _same_key(ix, spec)), None)
        if same_key is not None:
            if bool(same_key.get("unique")) == bool(spec.get("unique")):
                raise MongoError(85, f"Index already exists with a different name: {same_key['name']}")
            raise MongoError(86, f"An existing index has the same name as the requested index. Requested index: "
                                 f"{to_shell(spec)}, existing index: {to_shell(same_key)}")
        ctx.server.datastore.create_index(coll, spec)
    reply = {"numIndexesBefore": before, "numIndexesAfter": len(coll.indexes),
             "createdCollectionAutomatically": created}
    if len(coll.indexes) == before:
        reply["note"] = "all indexes already exist"
    reply["ok"] = 1.0
    return reply


@command("dropIndexes", "deleteIndexes", auth=("db", "ddl"), secondary="never", writes=True)
def cmd_drop_indexes(ctx):
    """Drop one index (by name or key), a list of names, or "*" (all but _id)."""
    name = _name(ctx)
    ctx.wait_writable()
    coll = ctx.server.storage.get(ctx.db, name)
    if coll is None:
        raise MongoError(26, f"ns not found {ctx.db}.{name}")
    target = ctx.cmd.get("index")
    before = len(coll.indexes)
    if target == "*":
        names = [ix["name"] for ix in coll.indexes if ix["name"] != "_id_"]
    elif isinstance(target, str):
        names = [target]
    elif isinstance(target, list):
        names = list(target)
    elif isinstance(target, dict):
        found = [ix["name"] for ix in coll.indexes if list(ix["key"].items()) == list(target.items())]
        if not found:
            raise MongoError(27, f"can't find index with key: {to_shell(target)}")
        names = found[:1]
    else:
        raise MongoError(14, "BSON field 'dropIndexes.index' is missing or of the wrong type")
    for index in names:
        if index == "_id_":
            raise MongoError(72, "cannot drop _id index")
        if not any(ix["name"] == index for ix in coll.indexes):
            raise MongoError(27, f"index not found with name [{index}]")
    for index in names:
        ctx.server.datastore.drop_index(coll, index)
    return {"nIndexesWas": before, "ok": 1.0}


@command("listIndexes", auth=("db", "stats"), secondary="optIn")
def cmd_list_indexes(ctx):
    """Index specifications of a collection."""
    name = _name(ctx)
    coll = ctx.server.storage.get(ctx.db, name)
    if coll is None:
        raise MongoError(26, f"ns does not exist: {ctx.db}.{name}")
    batch = int((ctx.cmd.get("cursor") or {}).get("batchSize", 101))
    cursor = Cursor(f"{ctx.db}.$cmd.listIndexes.{name}", ctx.owner(), [dict(ix) for ix in coll.indexes])
    return ctx.server.cursors.first_reply(cursor, batch)


@command("listCollections", auth="custom", secondary="optIn")
def cmd_list_collections(ctx):
    """Collections of a database, with options, uuid and _id index (or names only)."""
    validate_db_name(ctx.db)
    name_only = bool(ctx.cmd.get("nameOnly"))
    if not (ctx.cmd.get("authorizedCollections") and name_only and ctx.identities):
        ctx.require_db("stats")
    filt = ctx.cmd.get("filter") or {}
    entries = []
    for coll in ctx.server.storage.collections_of(ctx.db):
        if name_only:
            entry = {"name": coll.name, "type": "collection"}
        else:
            entry = {"name": coll.name, "type": "collection", "options": dict(coll.options),
                     "info": {"readOnly": False, "uuid": coll.uuid}}
            if any(ix["name"] == "_id_" for ix in coll.indexes):
                entry["idIndex"] = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
        if matches(entry, filt):
            entries.append(entry)
    batch = int((ctx.cmd.get("cursor") or {}).get("batchSize", 101))
    cursor = Cursor(f"{ctx.db}.$cmd.listCollections", ctx.owner(), entries)
    return ctx.server.cursors.first_reply(cursor, batch)


@command("listDatabases", auth="authenticated", admin_only=True, secondary="optIn")
def cmd_list_databases(ctx):
    """Databases with their size on disk (or names only)."""
    storage = ctx.server.storage
    names = storage.databases()
    if not ctx.allowed_cluster("listDatabases"):
        if ctx.cmd.get("authorizedDatabases") is False:
            raise ctx.unauthorized()
        allowed = set()
        for ident in ctx.identities:
            allowed |= set(ident.databases_with_roles())
        names = [n for n in names if n in allowed]
    name_only = bool(ctx.cmd.get("nameOnly"))
    filt = ctx.cmd.get("filter") or {}
    out, total = [], 0
    for db in names:
        size = storage.database_size(db)
        entry = {"name": db} if name_only else {"name": db, "sizeOnDisk": Int64(size), "empty": False}
        if matches(entry, filt):
            out.append(entry)
            total += size
    reply = {"databases": out}
    if not name_only:
        reply["totalSize"] = Int64(total)
        reply["totalSizeMb"] = Int64(total // (1024 * 1024))
    reply["ok"] = 1.0
    return reply


@command("collStats", auth=("db", "stats"), secondary="optIn")
def cmd_coll_stats(ctx):
    """Size and count of one collection."""
    name = _name(ctx)
    coll = ctx.server.storage.get(ctx.db, name)
    if coll is None:
        raise MongoError(26, f"Collection [{ctx.db}.{name}] not found.")
    scale = int(ctx.cmd.get("scale", 1) or 1)
    out = coll_stats(coll, scale)
    out["ok"] = 1.0
    return out


@command("dbStats", "dbstats", auth=("db", "stats"), secondary="optIn")
def cmd_db_stats(ctx):
    """Sizes and counts of one database."""
    validate_db_name(ctx.db)
    scale = int(ctx.cmd.get("scale", 1) or 1)
    colls = ctx.server.storage.collections_of(ctx.db)
    objects = sum(len(c.records) for c in colls)
    data = sum(c.data_size for c in colls)
    storage_size = sum(c.file_size for c in colls)
    st = os.statvfs(ctx.server.storage.dbpath)
    return {"db": ctx.db, "collections": len(colls), "views": 0, "objects": objects,
            "avgObjSize": float(data / objects) if objects else 0.0, "dataSize": float(data / scale),
            "storageSize": float(storage_size / scale), "indexes": sum(len(c.indexes) for c in colls),
            "indexSize": 0.0, "totalSize": float(storage_size / scale), "scaleFactor": float(scale),
            "fsUsedSize": float((st.f_blocks - st.f_bfree) * st.f_frsize),
            "fsTotalSize": float(st.f_blocks * st.f_frsize), "ok": 1.0}


@command("dbHash", "dbhash", auth=("db", "read"), secondary="optIn")
def cmd_db_hash(ctx):
    """MD5 of each collection's documents in _id order, and of the whole database."""
    start = time.monotonic()
    wanted = ctx.cmd.get("collections")
    hashes = {}
    for coll in ctx.server.storage.collections_of(ctx.db):
        if wanted and coll.name not in wanted:
            continue
        records = sorted(coll.records.values(), key=functools.cmp_to_key(
            lambda a, b: compare(a.doc.get("_id"), b.doc.get("_id"))))
        h = hashlib.md5()
        for rec in records:
            h.update(rec.raw)
        hashes[coll.name] = h.hexdigest()
    total = hashlib.md5("".join(hashes[k] for k in sorted(hashes)).encode()).hexdigest()
    return {"host": ctx.server.host_name, "collections": hashes, "capped": [], "uuids": {},
            "md5": total, "timeMillis": int((time.monotonic() - start) * 1000), "ok": 1.0}


@command("renameCollection", "collMod", "cloneCollectionAsCapped", "convertToCapped", "compact", "validate",
         "reIndex", auth="authenticated", secondary="never")
def cmd_not_implemented_ddl(ctx):
    """Collection maintenance commands: not available in the stand-in."""
    raise not_supported(ctx.name)
