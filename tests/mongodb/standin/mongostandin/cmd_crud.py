"""Document commands: insert, update, delete, find, getMore, killCursors,
count, distinct, aggregate (a small set of stages) and findAndModify.
Writes wait while fsync holds the write lock; reads never do.
"""
import functools
import time

from . import bsoncodec
from .bsoncodec import DateTime, Int64, compare
from .cursors import Cursor, TailState
from .datastore import validate_collection_name, validate_db_name
from .dispatch import command
from .errors import MongoError, not_supported
from .query import (_MISSING, apply_update, check_storable, get_path, id_equality, is_operator_update, matches,
                    parse_projection, path_values, project, sort_documents, upsert_seed, validate_filter,
                    values_equal)

DEFAULT_BATCH = 101


def _collection_name(ctx, field=None):
    name = ctx.cmd.get(field) if field else ctx.arg
    if not isinstance(name, str):
        raise MongoError(73, f"collection name has invalid type {type(name).__name__}")
    validate_db_name(ctx.db)
    validate_collection_name(ctx.db, name, for_user_write=False)
    return name


def _require_read(ctx, name):
    ctx.require_db("read")
    if name == "system.users":
        ctx.require_db("userAdmin")


def _require_write(ctx, name):
    ctx.require_db("write")
    if name.startswith("system.") and not ctx.is_system() and not ctx.allowed_db("userAdmin"):
        raise ctx.unauthorized()


def _document(value, what):
    if not isinstance(value, dict):
        raise MongoError(14, f"{what} must be an object")
    return value


def _no_collation(stmt):
    collation = stmt.get("collation")
    if collation and collation.get("locale") != "simple":
        raise not_supported("collation")


def matching(coll, filt):
    """[(rid, record)] of the documents matching filt, in natural order."""
    validate_filter(filt)
    if coll is None:
        return []
    idv = id_equality(filt)
    if idv is not _MISSING and "_id_" in coll.unique:
        rid = coll.find_id(idv)
        return [(rid, coll.records[rid])] if rid is not None else []
    if not filt:
        return list(coll.records.items())
    return [(rid, rec) for rid, rec in coll.records.items() if matches(rec.doc, filt)]


def _write_error(index, exc):
    err = {"index": index, "code": exc.code, "errmsg": exc.message}
    if exc.code == 11000:
        err.update({k: v for k, v in exc.extra.items() if k in ("keyPattern", "keyValue")})
    return err


def _write_reply(n, errors, extra=None):
    reply = {"n": n}
    if extra:
        reply.update(extra)
    if errors:
        reply["writeErrors"] = errors
    reply["ok"] = 1.0
    return reply


def _statements(ctx, field):
    stmts = ctx.cmd.get(field)
    if stmts is None:
        raise MongoError(40414, f"BSON field '{ctx.name}.{field}' is missing but a required field")
    if not isinstance(stmts, list):
        raise MongoError(14, f"BSON field '{ctx.name}.{field}' is the wrong type, expected type 'array'")
    if not 1 <= len(stmts) <= 100000:
        raise MongoError(16, f"Write batch sizes must be between 1 and 100000. Got {len(stmts)} operations.")
    return stmts


@command("insert", auth="custom", secondary="never", writes=True)
def cmd_insert(ctx):
    """Insert documents (ordered stops at the first error)."""
    name = _collection_name(ctx)
    _require_write(ctx, name)
    validate_collection_name(ctx.db, name)
    docs = _statements(ctx, "documents")
    ordered = ctx.cmd.get("ordered", True) is not False
    ctx.wait_writable()
    store = ctx.server.datastore
    coll, _ = store.collection(ctx.db, name)
    raws = ctx.request.raw_sequences.get("documents")
    n, errors = 0, []
    for i, doc in enumerate(docs):
        try:
            store.insert(coll, _document(doc, "document to insert"), raws[i] if raws else None)
            n += 1
        except MongoError as exc:
            errors.append(_write_error(i, exc))
            if ordered:
                break
    ctx.server.counters["insert"] += n
    return _write_reply(n, errors)


def _replacement(old, repl):
    for key in repl:
        if key.startswith("$"):
            raise MongoError(52, f"The dollar ($) prefixed field '{key}' in '{key}' is not valid for storage.")
    if old is not None and "_id" in repl and "_id" in old and compare(repl["_id"], old["_id"]) != 0:
        raise MongoError(66, f"After applying the update, the (immutable) field '_id' was found to have been "
                             f"altered to _id: {bsoncodec.to_shell(repl['_id'])}")
    new = {}
    if old is not None and "_id" in old:
        new["_id"] = old["_id"]
    elif "_id" in repl:
        new["_id"] = repl["_id"]
    new.update({k: v for k, v in repl.items() if k != "_id"})
    return new


def _upsert(ctx, coll_name, q, u, operator):
    seed = upsert_seed(q)
    if operator:
        new = apply_update(seed, u, inserting=True)
    else:
        new = _replacement(None, {**({"_id": seed["_id"]} if "_id" in seed else {}), **u})
    store = ctx.server.datastore
    coll, _ = store.collection(ctx.db, coll_name)
    _, doc = store.insert(coll, new)
    return doc


def _update_statement(ctx, name, stmt):
    """(matched, modified, upserted _id or _MISSING) for one update statement."""
    q = _document(stmt.get("q", {}), "q")
    u = stmt.get("u")
    if isinstance(u, list):
        raise not_supported("pipeline-style updates")
    if not isinstance(u, dict):
        raise MongoError(9, "Update argument must be either an object or an array")
    if stmt.get("arrayFilters"):
        raise not_supported("arrayFilters")
    _no_collation(stmt)
    multi = bool(stmt.get("multi"))
    operator = is_operator_update(u)
    if multi and not operator:
        raise MongoError(9, "multi update is not supported for replacement-style update")
    coll = ctx.server.storage.get(ctx.db, name)
    found = matching(coll, q)
    if not multi:
        found = found[:1]
    modified = 0
    for rid, rec in found:
        new = apply_update(rec.doc, u) if operator else _replacement(rec.doc, u)
        if bsoncodec.encode(new) != rec.raw:
            ctx.server.datastore.replace(coll, rid, new)
            modified += 1
    if not found and stmt.get("upsert"):
        doc = _upsert(ctx, name, q, u, operator)
        return 0, 0, doc["_id"]
    return len(found), modified, _MISSING


@command("update", auth="custom", secondary="never", writes=True)
def cmd_update(ctx):
    """Update documents with operators ($set, $inc, ...) or a replacement; upsert."""
    name = _collection_name(ctx)
    _require_write(ctx, name)
    validate_collection_name(ctx.db, name)
    stmts = _statements(ctx, "updates")
    ordered = ctx.cmd.get("ordered", True) is not False
    ctx.wait_writable()
    n = modified = 0
    upserted, errors = [], []
    for i, stmt in enumerate(stmts):
        try:
            m, mod, up = _update_statement(ctx, name, _document(stmt, "update statement"))
            n += m
            modified += mod
            if up is not _MISSING:
                upserted.append({"index": i, "_id": up})
                n += 1
        except MongoError as exc:
            errors.append(_write_error(i, exc))
            if ordered:
                break
    ctx.server.counters["update"] += len(stmts)
    extra = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return _write_reply(n, errors, extra)


@command("delete", auth="custom", secondary="never", writes=True)
def cmd_delete(ctx):
    """Delete documents (limit 0: all matches, 1: the first)."""
    name = _collection_name(ctx)
    _require_write(ctx, name)
    stmts = _statements(ctx, "deletes")
    ordered = ctx.cmd.get("ordered", True) is not False
    ctx.wait_writable()
    coll = ctx.server.storage.get(ctx.db, name)
    n, errors = 0, []
    for i, stmt in enumerate(stmts):
        try:
            stmt = _document(stmt, "delete statement")
            _no_collation(stmt)
            limit = stmt.get("limit", 0)
            if limit not in (0, 1):
                raise MongoError(9, "The limit field in delete objects must be 0 or 1. Got " + str(limit))
            found = matching(coll, _document(stmt.get("q", {}), "q"))
            for rid, _ in found[:1] if limit == 1 else found:
                ctx.server.datastore.delete(coll, rid)
                n += 1
        except MongoError as exc:
            errors.append(_write_error(i, exc))
            if ordered:
                break
    ctx.server.counters["delete"] += n
    return _write_reply(n, errors)


def _find_documents(ctx, coll, cmd):
    """The matching documents after sort/skip/limit/projection, ready to encode."""
    filt = _document(cmd.get("filter", {}) or {}, "filter")
    found = matching(coll, filt)
    if cmd.get("sort"):
        if cmd.get("sort") != {"$natural": 1}:
            if cmd.get("sort") == {"$natural": -1}:
                found = list(reversed(found))
            else:
                found = sort_documents(found, cmd["sort"], get_doc=lambda item: item[1].doc)
    skip = int(cmd.get("skip", 0) or 0)
    if skip < 0:
        raise MongoError(2, "skip value must be non-negative")
    found = found[skip:]
    projection = parse_projection(cmd.get("projection"))
    if projection[0] is None and projection[2]:
        return [rec.raw_document() for _, rec in found], found
    return [project(rec.doc, projection) for _, rec in found], found


@command("find", auth="custom", secondary="optIn")
def cmd_find(ctx):
    """Query a collection: filter, projection, sort, skip, limit, batchSize, tailable cursors."""
    name = _collection_name(ctx)
    _require_read(ctx, name)
    cmd = ctx.cmd
    for unsupported in ("min", "max", "returnKey", "showRecordId", "let"):
        if cmd.get(unsupported):
            raise not_supported(f"find option {unsupported}")
    _no_collation(cmd)
    ctx.server.counters["query"] += 1
    coll = ctx.server.storage.get(ctx.db, name)
    limit = int(cmd.get("limit", 0) or 0)
    single = bool(cmd.get("singleBatch")) or limit < 0
    limit = abs(limit)
    batch = cmd.get("batchSize", DEFAULT_BATCH)
    if type(batch) not in (int, float, Int64) or batch < 0:
        raise MongoError(51024, f"BSON field 'batchSize' value must be >= 0, actual value '{batch}'")
    batch = int(batch)
    if limit and batch > limit:
        batch = limit
    ns = f"{ctx.db}.{name}"
    validate_filter(_document(cmd.get("filter", {}) or {}, "filter"))
    tail = None
    if cmd.get("tailable"):
        if coll is None or not coll.capped:
            raise MongoError(2, f"error processing query: ns={ns} tailable cursor requested on non capped "
                                f"collection")
        filt = cmd.get("filter", {}) or {}
        items, found = _find_documents(ctx, coll, cmd)
        last = next(reversed(coll.records), 0) if coll.records else 0
        tail = TailState(coll, last, lambda d: matches(d, filt), bool(cmd.get("awaitData")))
    else:
        items, _ = _find_documents(ctx, coll, cmd) if coll is not None else ([], [])
    cursor = Cursor(ns, ctx.owner(), items, limit=limit, tailable=tail, no_timeout=bool(cmd.get("noCursorTimeout")))
    return ctx.server.cursors.first_reply(cursor, batch, single_batch=single)


@command("getMore", auth="authenticated", secondary="always")
def cmd_get_more(ctx):
    """The next batch of an open cursor; tailable awaitData cursors wait up to maxTimeMS for data."""
    cursor_id = ctx.arg
    if type(cursor_id) is not bsoncodec.Int64:
        raise MongoError(14, "Field 'getMore' must be of type long in: " + bsoncodec.to_shell(
            {k: v for k, v in ctx.cmd.items() if k in ("getMore", "collection")}))
    coll_name = ctx.cmd.get("collection")
    if not isinstance(coll_name, str):
        raise MongoError(40414, "BSON field 'getMore.collection' is missing but a required field")
    ns = f"{ctx.db}.{coll_name}"
    server = ctx.server
    cursor = server.cursors.get(int(cursor_id), ns, ctx.owner())
    server.counters["getmore"] += 1
    batch_size = int(ctx.cmd.get("batchSize", 0) or 0) or None
    tail = cursor.tailable
    if tail is not None and cursor.pos >= len(cursor.items):
        cursor.items, cursor.pos = tail.fetch_new(server.storage), 0
        deadline = time.monotonic() + int(ctx.cmd.get("maxTimeMS", 1000) or 1000) / 1000.0
        while not cursor.items and tail.await_data and not tail.dead and not server.shutting_down:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            server.cond.wait(min(remaining, 0.5))
            if server.cursors.open.get(cursor.id) is not cursor:
                raise MongoError(43, f"cursor id {cursor.id} not found")
            cursor.items, cursor.pos = tail.fetch_new(server.storage), 0
    batch = cursor.next_batch(batch_size)
    cid = cursor.id
    if cursor.exhausted() and tail is None or (tail is not None and tail.dead):
        server.cursors.kill(cursor.id)
        cid = 0
    return {"cursor": {"nextBatch": batch, "id": Int64(cid), "ns": ns}, "ok": 1.0}


@command("killCursors", auth="authenticated")
def cmd_kill_cursors(ctx):
    """Close cursors."""
    ids = ctx.cmd.get("cursors")
    if not isinstance(ids, list):
        raise MongoError(40414, "BSON field 'killCursors.cursors' is missing but a required field")
    killed, not_found = [], []
    for cid in ids:
        cursor = ctx.server.cursors.open.get(int(cid))
        if cursor is not None and cursor.owner == ctx.owner():
            ctx.server.cursors.kill(int(cid))
            killed.append(Int64(cid))
        else:
            not_found.append(Int64(cid))
    return {"cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": [],
            "ok": 1.0}


@command("count", auth="custom", secondary="optIn")
def cmd_count(ctx):
    """Count matching documents (query, skip, limit)."""
    name = _collection_name(ctx)
    _require_read(ctx, name)
    _no_collation(ctx.cmd)
    coll = ctx.server.storage.get(ctx.db, name)
    query = _document(ctx.cmd.get("query", {}) or {}, "query")
    n = len(coll.records) if coll is not None and not query else len(matching(coll, query))
    n = max(0, n - int(ctx.cmd.get("skip", 0) or 0))
    limit = abs(int(ctx.cmd.get("limit", 0) or 0))
    if limit:
        n = min(n, limit)
    return {"n": n, "ok": 1.0}


@command("distinct", auth="custom", secondary="optIn")
def cmd_distinct(ctx):
    """Distinct values of a field among matching documents."""
    name = _collection_name(ctx)
    _require_read(ctx, name)
    _no_collation(ctx.cmd)
    key = ctx.cmd.get("key")
    if not isinstance(key, str):
        raise MongoError(14, "BSON field 'distinct.key' is the wrong type, expected type 'string'")
    coll = ctx.server.storage.get(ctx.db, name)
    values = []
    for _, rec in matching(coll, _document(ctx.cmd.get("query", {}) or {}, "query")):
        for v in path_values(rec.doc, key):
            if isinstance(v, list):
                continue
            if not any(values_equal(v, w) for w in values):
                values.append(v)
    values.sort(key=functools.cmp_to_key(compare))
    return {"values": values, "ok": 1.0}


# ---- aggregation (a small subset of stages) ----

def _field_path(value, parts):
    """An aggregation field path: through arrays of documents it yields an array of values."""
    if not parts:
        return value
    if type(value) is dict:
        return _field_path(value[parts[0]], parts[1:]) if parts[0] in value else _MISSING
    if type(value) is list:
        out = []
        for elem in value:
            if type(elem) in (dict, list):
                v = _field_path(elem, parts)
                if v is not _MISSING:
                    out.append(v)
        return out
    return _MISSING


def _expr(doc, value):
    """The value of an expression: a field path, {$literal}, a document of expressions or a
    constant; _MISSING for a path that leads nowhere."""
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("$$"):
            raise not_supported("aggregation variables")
        return _field_path(doc, value[1:].split("."))
    if isinstance(value, dict):
        if list(value) == ["$literal"]:
            return value["$literal"]
        if value and next(iter(value)).startswith("$"):
            raise not_supported(f"the aggregation expression {next(iter(value))}")
        out = {}
        for k, v in value.items():
            v = _expr(doc, v)
            if v is not _MISSING:
                out[k] = v
        return out
    return value


def _numeric(v):
    return type(v) in (int, Int64, float)


def _accumulate(name, values):
    if name == "$sum":
        nums = [v for v in values if _numeric(v)]
        total = sum(nums)
        return float(total) if any(type(v) is float for v in nums) else (
            Int64(total) if not -2 ** 31 <= total < 2 ** 31 else int(total))
    if name == "$avg":
        nums = [v for v in values if _numeric(v)]
        return sum(nums) / len(nums) if nums else None
    if name in ("$min", "$max"):
        present = [v for v in values if v is not None]
        if not present:
            return None
        key = functools.cmp_to_key(compare)
        return min(present, key=key) if name == "$min" else max(present, key=key)
    if name == "$first":
        return values[0] if values else None
    if name == "$last":
        return values[-1] if values else None
    if name == "$push":
        return list(values)
    if name == "$addToSet":
        out = []
        for v in values:
            if not any(compare(v, w) == 0 for w in out):
                out.append(v)
        return out
    raise not_supported(f"the accumulator {name}")


def _group(docs, spec):
    if "_id" not in spec:
        raise MongoError(15955, "a group specification must include an _id")
    groups = {}
    for doc in docs:
        key_value = _expr(doc, spec["_id"])
        key_value = None if key_value is _MISSING else key_value
        key = bsoncodec.hash_key(key_value)
        groups.setdefault(key, (key_value, []))[1].append(doc)
    out = []
    for key_value, members in groups.values():
        row = {"_id": key_value}
        for field, acc in spec.items():
            if field == "_id":
                continue
            if not isinstance(acc, dict) or len(acc) != 1:
                raise MongoError(40234, f"The field '{field}' must be an accumulator object")
            (op, arg), = acc.items()
            if op == "$count":
                row[field] = len(members)
                continue
            values = [_expr(d, arg) for d in members]
            row[field] = _accumulate(op, [None if v is _MISSING else v for v in values])
        out.append(row)
    return out


def _unwind(docs, spec):
    if isinstance(spec, str):
        spec = {"path": spec}
    path = spec.get("path")
    if not isinstance(path, str) or not path.startswith("$"):
        raise MongoError(28818, "path option to $unwind stage should be prefixed with a '$'")
    field = path[1:]
    keep = bool(spec.get("preserveNullAndEmptyArrays"))
    out = []
    for doc in docs:
        value = get_path(doc, field)
        if isinstance(value, list) and value:
            for elem in value:
                new = dict(doc)
                _set_top(new, field, elem)
                out.append(new)
        elif isinstance(value, list) or value is _MISSING or value is None:
            if keep:
                out.append(doc)
        else:
            out.append(doc)
    return out


def _set_top(doc, path, value):
    if value is _MISSING:
        return
    parts = path.split(".")
    node = doc
    for p in parts[:-1]:
        node[p] = dict(node[p]) if isinstance(node.get(p), dict) else {}
        node = node[p]
    node[parts[-1]] = value


def _project_stage(docs, spec, adding):
    if adding:
        out = []
        for doc in docs:
            new = dict(doc)
            for k, v in spec.items():
                _set_top(new, k, _expr(doc, v))
            out.append(new)
        return out
    plain = {k: v for k, v in spec.items() if type(v) in (bool, int, float, Int64)}
    computed = {k: v for k, v in spec.items() if k not in plain}
    mode, paths, include_id = parse_projection(plain) if plain else (None, [], True)
    if computed and mode == "exclude" and paths:
        raise MongoError(31252, "Cannot use expression other than $meta in exclusion projection")
    if computed or mode == "include":
        mode = "include"
    out = []
    for doc in docs:
        new = project(doc, (mode, paths, include_id))
        if new is doc:
            new = dict(doc)
        for k, v in computed.items():
            _set_top(new, k, _expr(doc, v))
        out.append(new)
    return out


def run_pipeline(ctx, coll, pipeline):
    docs = None
    for i, stage in enumerate(pipeline):
        if not isinstance(stage, dict) or len(stage) != 1:
            raise MongoError(40323, "A pipeline stage specification object must contain exactly one field.")
        (name, spec), = stage.items()
        if name == "$collStats":
            if i != 0:
                raise MongoError(40602, "$collStats is only valid as the first stage in a pipeline")
            docs = [_coll_stats_doc(ctx, coll, spec)]
            continue
        if docs is None:
            if name == "$match":
                docs = [rec.doc for _, rec in matching(coll, _document(spec, "$match"))]
                continue
            docs = [rec.doc for rec in coll.records.values()] if coll is not None else []
        if name == "$match":
            validate_filter(spec)
            docs = [d for d in docs if matches(d, spec)]
        elif name == "$sort":
            docs = sort_documents(docs, spec)
        elif name == "$skip":
            docs = docs[int(spec):]
        elif name == "$limit":
            if int(spec) <= 0:
                raise MongoError(15958, "the limit must be positive")
            docs = docs[:int(spec)]
        elif name == "$count":
            if not isinstance(spec, str) or not spec or spec.startswith("$") or "." in spec:
                raise MongoError(40156, "the count field must be a non-empty string")
            docs = [{spec: len(docs)}] if docs else []
        elif name == "$group":
            docs = _group(docs, _document(spec, "$group"))
        elif name == "$unwind":
            docs = _unwind(docs, spec)
        elif name == "$project":
            docs = _project_stage(docs, _document(spec, "$project"), adding=False)
        elif name in ("$addFields", "$set"):
            docs = _project_stage(docs, _document(spec, name), adding=True)
        elif name in ("$out", "$merge", "$lookup", "$graphLookup", "$facet", "$bucket", "$bucketAuto",
                      "$geoNear", "$indexStats", "$replaceRoot", "$replaceWith", "$sample", "$sortByCount",
                      "$redact", "$unionWith", "$currentOp", "$listSessions", "$planCacheStats", "$densify",
                      "$fill", "$setWindowFields", "$changeStream", "$unset", "$documents"):
            raise not_supported(f"the aggregation stage {name}")
        else:
            raise MongoError(40324, f"Unrecognized pipeline stage name: '{name}'")
    return docs if docs is not None else []


def _coll_stats_doc(ctx, coll, spec):
    if coll is None:
        raise MongoError(26, f"Unable to retrieve storageStats in $collStats stage :: caused by :: "
                             f"Collection [{ctx.db}.{ctx.arg}] not found.")
    out = {"ns": coll.ns, "host": ctx.server.host_name, "localTime": DateTime.now()}
    if "count" in spec:
        out["count"] = len(coll.records)
    if "storageStats" in spec:
        out["storageStats"] = coll_stats(coll)
    return out


def coll_stats(coll, scale=1):
    count = len(coll.records)
    return {"ns": coll.ns, "size": coll.data_size // scale, "count": count,
            "avgObjSize": coll.data_size // count if count else 0, "storageSize": coll.file_size // scale,
            "freeStorageSize": 0, "capped": coll.capped, "nindexes": len(coll.indexes),
            "indexBuilds": [], "totalIndexSize": 0, "totalSize": coll.file_size // scale,
            "indexSizes": {ix["name"]: 0 for ix in coll.indexes}, "scaleFactor": scale}


@command("aggregate", auth="custom", secondary="optIn")
def cmd_aggregate(ctx):
    """Aggregation over one collection with $match, $group, $sort, $skip, $limit, $count, $project,
    $addFields/$set, $unwind and $collStats."""
    if not isinstance(ctx.arg, str):
        raise not_supported("collection-less aggregation")
    name = _collection_name(ctx)
    _require_read(ctx, name)
    if ctx.cmd.get("explain"):
        raise not_supported("explain")
    if "cursor" not in ctx.cmd:
        raise MongoError(9, "The 'cursor' option is required, except for aggregate with the explain argument")
    pipeline = ctx.cmd.get("pipeline")
    if not isinstance(pipeline, list):
        raise MongoError(14, "'pipeline' option must be specified as an array")
    _no_collation(ctx.cmd)
    coll = ctx.server.storage.get(ctx.db, name)
    docs = run_pipeline(ctx, coll, pipeline)
    batch = int((ctx.cmd.get("cursor") or {}).get("batchSize", DEFAULT_BATCH))
    cursor = Cursor(f"{ctx.db}.{name}", ctx.owner(), docs)
    return ctx.server.cursors.first_reply(cursor, batch)


@command("findAndModify", "findandmodify", auth="custom", secondary="never", writes=True)
def cmd_find_and_modify(ctx):
    """Update, replace or remove one document and return it (before or after)."""
    name = _collection_name(ctx)
    _require_write(ctx, name)
    _require_read(ctx, name)
    cmd = ctx.cmd
    remove, update = bool(cmd.get("remove")), cmd.get("update")
    if remove == (update is not None):
        raise MongoError(9, "Either an update or remove=true must be specified")
    if cmd.get("arrayFilters"):
        raise not_supported("arrayFilters")
    if isinstance(update, list):
        raise not_supported("pipeline-style updates")
    _no_collation(cmd)
    ctx.wait_writable()
    store = ctx.server.datastore
    coll = ctx.server.storage.get(ctx.db, name)
    found = matching(coll, _document(cmd.get("query", {}) or {}, "query"))
    if cmd.get("sort"):
        found = sort_documents(found, cmd["sort"], get_doc=lambda item: item[1].doc)
    projection = parse_projection(cmd.get("fields"))
    if not found:
        if update is not None and cmd.get("upsert"):
            doc = _upsert(ctx, name, cmd.get("query", {}) or {}, _document(update, "update"),
                          is_operator_update(update))
            ctx.server.counters["update"] += 1
            return {"lastErrorObject": {"n": 1, "updatedExisting": False, "upserted": doc["_id"]},
                    "value": project(doc, projection) if cmd.get("new") else None, "ok": 1.0}
        return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None, "ok": 1.0}
    rid, rec = found[0]
    if remove:
        store.delete(coll, rid)
        ctx.server.counters["delete"] += 1
        return {"lastErrorObject": {"n": 1}, "value": project(rec.doc, projection), "ok": 1.0}
    update = _document(update, "update")
    new = apply_update(rec.doc, update) if is_operator_update(update) else _replacement(rec.doc, update)
    check_storable(new)
    store.replace(coll, rid, new)
    ctx.server.counters["update"] += 1
    return {"lastErrorObject": {"n": 1, "updatedExisting": True},
            "value": project(new if cmd.get("new") else rec.doc, projection), "ok": 1.0}
