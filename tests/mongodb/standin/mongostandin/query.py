"""Query language: match a document against a filter, project it, sort a
result, and apply update operators. Semantics follow MongoDB's (dotted
paths reach into arrays, type bracketing for comparisons); operators the
stand-in does not implement are refused, never ignored.
"""
import copy
import functools
import re
import time

from .bsoncodec import (Binary, DateTime, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp,
                        canonical_rank, compare, hash_key)
from .errors import MongoError, not_supported

_MISSING = object()


def _collect(value, parts, i, out):
    if i == len(parts):
        out.append(value)
        if type(value) is list:
            out.extend(value)
        return
    t = type(value)
    if t is dict:
        if parts[i] in value:
            _collect(value[parts[i]], parts, i + 1, out)
    elif t is list:
        part = parts[i]
        if part.isdigit() and int(part) < len(value):
            _collect(value[int(part)], parts, i + 1, out)
        for elem in value:
            if type(elem) is dict:
                _collect(elem, parts, i, out)


def path_values(doc, path):
    """Every value a dotted path reaches (array elements included); [] if none."""
    out = []
    _collect(doc, path.split("."), 0, out)
    return out


def get_path(doc, path, default=_MISSING):
    """The single value at a dotted path without array expansion."""
    node = doc
    for part in path.split("."):
        if type(node) is dict and part in node:
            node = node[part]
        elif type(node) is list and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def values_equal(a, b):
    return canonical_rank(a) == canonical_rank(b) and compare(a, b) == 0


def _regex(value, options=""):
    flags = 0
    for c in options:
        if c == "i":
            flags |= re.IGNORECASE
        elif c == "m":
            flags |= re.MULTILINE
        elif c == "s":
            flags |= re.DOTALL
        elif c == "x":
            flags |= re.VERBOSE
        elif c != "u":
            raise MongoError(51108, f"invalid flag in regex options: {c}")
    try:
        return re.compile(value, flags)
    except re.error as exc:
        raise MongoError(51091, f"Regular expression is invalid: {exc}") from None


def _eq_match(values, target):
    if type(target) is Regex:
        rx = _regex(target.pattern, target.flags)
        return any(type(v) is str and rx.search(v) for v in values) or any(
            type(v) is Regex and v == target for v in values)
    if target is None:
        return not values or any(v is None for v in values)
    return any(values_equal(v, target) for v in values)


def _cmp_match(values, target, accept):
    rank = canonical_rank(target)
    if target is MinKey or target is MaxKey:
        return any(accept(compare(v, target)) for v in values)
    if target is None and not values:
        return accept(0)
    return any(canonical_rank(v) == rank and accept(compare(v, target)) for v in values)


_TYPE_ALIASES = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6, "objectId": 7, "bool": 8,
    "date": 9, "null": 10, "regex": 11, "javascript": 13, "int": 16, "timestamp": 17, "long": 18,
    "decimal": 19, "minKey": -1, "maxKey": 127,
}


def _type_code(value):
    t = type(value)
    if t is float:
        return 1
    if t is str:
        return 2
    if t is dict:
        return 3
    if t is list:
        return 4
    if t is Binary:
        return 5
    if t is ObjectId:
        return 7
    if t is bool:
        return 8
    if t is DateTime:
        return 9
    if value is None:
        return 10
    if t is Regex:
        return 11
    if t is int:
        return 16
    if t is Timestamp:
        return 17
    if t is Int64:
        return 18
    if t is Decimal128:
        return 19
    if value is MinKey:
        return -1
    if value is MaxKey:
        return 127
    return 0


def _type_match(doc, path, spec):
    specs = spec if type(spec) is list else [spec]
    wanted = set()
    for s in specs:
        if s == "number":
            wanted |= {1, 16, 18, 19}
        elif isinstance(s, str):
            if s not in _TYPE_ALIASES:
                raise MongoError(2, f"Unknown type name alias: {s}")
            wanted.add(_TYPE_ALIASES[s])
        elif type(s) in (int, Int64, float):
            wanted.add(int(s))
        else:
            raise MongoError(14, "type must be represented as a number or a string")
    return any(_type_code(v) in wanted for v in path_values(doc, path))


def _operator_match(doc, path, ops):
    values = path_values(doc, path)
    for op, arg in ops.items():
        if op == "$eq":
            ok = _eq_match(values, arg)
        elif op == "$ne":
            ok = not _eq_match(values, arg)
        elif op == "$gt":
            ok = _cmp_match(values, arg, lambda c: c > 0)
        elif op == "$gte":
            ok = _cmp_match(values, arg, lambda c: c >= 0)
        elif op == "$lt":
            ok = _cmp_match(values, arg, lambda c: c < 0)
        elif op == "$lte":
            ok = _cmp_match(values, arg, lambda c: c <= 0)
        elif op in ("$in", "$nin"):
            if type(arg) is not list:
                raise MongoError(2, f"{op} needs an array")
            found = any(_eq_match(values, a) for a in arg)
            ok = found if op == "$in" else not found
        elif op == "$exists":
            ok = bool(values) == bool(arg)
        elif op == "$type":
            ok = _type_match(doc, path, arg)
        elif op == "$regex":
            options = ops.get("$options", "")
            pattern = arg.pattern if type(arg) is Regex else arg
            if type(pattern) is not str:
                raise MongoError(2, "$regex has to be a string")
            rx = _regex(pattern, options or (arg.flags if type(arg) is Regex else ""))
            ok = any(type(v) is str and rx.search(v) for v in values)
        elif op == "$options":
            if "$regex" not in ops:
                raise MongoError(2, "$options needs a $regex")
            continue
        elif op == "$not":
            if type(arg) is Regex:
                ok = not _eq_match(values, arg)
            elif type(arg) is dict and arg and all(k.startswith("$") for k in arg):
                ok = not _operator_match(doc, path, arg)
            else:
                raise MongoError(2, "$not needs a regex or a document")
        elif op == "$size":
            if type(arg) not in (int, Int64, float) or int(arg) != arg or arg < 0:
                raise MongoError(2, "$size needs a non-negative whole number")
            target = get_path(doc, path)
            ok = type(target) is list and len(target) == int(arg)
        elif op == "$all":
            if type(arg) is not list:
                raise MongoError(2, "$all needs an array")
            ok = bool(arg) and all(_eq_match(values, a) for a in arg)
        elif op == "$elemMatch":
            if type(arg) is not dict:
                raise MongoError(2, "$elemMatch needs an Object")
            target = get_path(doc, path)
            ok = type(target) is list and any(_elem_match(e, arg) for e in target)
        elif op == "$mod":
            if type(arg) is not list or len(arg) != 2:
                raise MongoError(2, "malformed mod, needs to be an array of two numbers")
            divisor, remainder = arg
            if not divisor:
                raise MongoError(2, "divisor cannot be 0")
            ok = any(type(v) in (int, Int64, float) and int(v) % int(divisor) == int(remainder) for v in values)
        elif op in ("$near", "$nearSphere", "$geoWithin", "$geoIntersects", "$within", "$bitsAllSet",
                    "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear", "$jsonSchema"):
            raise not_supported(f"the query operator {op}")
        else:
            raise MongoError(2, f"unknown operator: {op}")
        if not ok:
            return False
    return True


def _elem_match(elem, spec):
    if all(k.startswith("$") for k in spec) and not any(k in ("$and", "$or", "$nor") for k in spec):
        return _operator_match({"x": elem}, "x", spec)
    return type(elem) is dict and matches(elem, spec)


def _is_operator_doc(value):
    return type(value) is dict and value and next(iter(value)).startswith("$")


def matches(doc, filt):
    """Whether doc satisfies the filter; MongoError 2 for a malformed filter."""
    for key, cond in filt.items():
        if key.startswith("$"):
            if key in ("$and", "$or", "$nor"):
                if type(cond) is not list or not cond:
                    raise MongoError(2, f"{key} argument must be a non-empty array")
                if not all(type(c) is dict for c in cond):
                    raise MongoError(2, f"{key} argument's entries must be objects")
                results = (matches(doc, c) for c in cond)
                ok = all(results) if key == "$and" else any(results)
                if key == "$nor":
                    ok = not any(matches(doc, c) for c in cond)
            elif key == "$comment":
                continue
            elif key in ("$expr", "$where", "$text", "$jsonSchema", "$alwaysTrue", "$alwaysFalse"):
                raise not_supported(f"the query operator {key}")
            else:
                raise MongoError(2, f"unknown top level operator: {key}. If you have a field name that starts "
                                    f"with a '$' symbol, consider using $getField or $setField.")
        elif _is_operator_doc(cond):
            ok = _operator_match(doc, key, cond)
        else:
            ok = _eq_match(path_values(doc, key), cond)
        if not ok:
            return False
    return True


def validate_filter(filt):
    """Raise on a malformed filter even when no document is examined."""
    matches({}, filt)


def id_equality(filt):
    """The _id value when the filter is exactly {_id: v} (a fast path), else _MISSING."""
    if len(filt) == 1 and "_id" in filt:
        v = filt["_id"]
        if type(v) is dict and len(v) == 1 and "$eq" in v:
            v = v["$eq"]
        if not _is_operator_doc(v) and type(v) is not Regex:
            return v
    return _MISSING


# ---- sort ----

def _sort_value(doc, path, direction):
    values = path_values(doc, path)
    direct = get_path(doc, path)
    if direct is _MISSING and not values:
        return None
    candidates = [v for v in values if type(v) is not list] or ([direct] if direct is not _MISSING else [None])
    if type(direct) is list and not direct:
        candidates = [direct]
    key = functools.cmp_to_key(compare)
    return min(candidates, key=key) if direction > 0 else max(candidates, key=key)


def parse_sort(spec):
    if type(spec) is not dict:
        raise MongoError(2, "sort must be an object")
    out = []
    for path, direction in spec.items():
        if type(direction) is dict:
            raise not_supported("sorting by $meta")
        if direction not in (1, -1) or type(direction) is bool:
            raise MongoError(2, f"$sort key ordering must be 1 (for ascending) or -1 (for descending)")
        out.append((path, int(direction)))
    return out


def sort_documents(docs, spec, get_doc=lambda d: d):
    keys = parse_sort(spec)

    def cmp(a, b):
        da, db = get_doc(a), get_doc(b)
        for path, direction in keys:
            c = compare(_sort_value(da, path, direction), _sort_value(db, path, direction))
            if c:
                return c * direction
        return 0
    return sorted(docs, key=functools.cmp_to_key(cmp))


# ---- projection ----

def parse_projection(spec):
    """(mode, paths, include_id); mode is "include", "exclude" or None (whole document)."""
    if not spec:
        return None, [], True
    if type(spec) is not dict:
        raise MongoError(2, "projection must be an object")
    include_id, mode, paths = True, None, []
    for path, value in spec.items():
        if path.startswith("$") or ".$" in path or type(value) is dict:
            raise not_supported("projection operators")
        truthy = bool(value) if type(value) in (bool, int, Int64, float) else None
        if truthy is None:
            raise not_supported("computed projection fields")
        if path == "_id":
            include_id = truthy
            continue
        this = "include" if truthy else "exclude"
        if mode and mode != this:
            if mode == "include":
                raise MongoError(31254, f"Cannot do exclusion on field {path} in inclusion projection")
            raise MongoError(31253, f"Cannot do inclusion on field {path} in exclusion projection")
        mode = this
        paths.append(path)
    if mode is None and "_id" in spec:
        mode = "include" if include_id else "exclude"
    return mode, paths, include_id


def _include(src, parts):
    if type(src) is list:
        return [_include(e, parts) for e in src if type(e) in (dict, list)]
    if type(src) is not dict or parts[0] not in src:
        return _MISSING
    head = src[parts[0]]
    if len(parts) == 1:
        return copy.deepcopy(head)
    if type(head) not in (dict, list):
        return _MISSING
    return _include(head, parts[1:])


def _merge(dst, src):
    for k, v in src.items():
        if k in dst and type(dst[k]) is dict and type(v) is dict:
            _merge(dst[k], v)
        else:
            dst[k] = v


def _exclude(node, parts):
    if type(node) is list:
        for e in node:
            _exclude(e, parts)
    elif type(node) is dict and parts[0] in node:
        if len(parts) == 1:
            del node[parts[0]]
        else:
            _exclude(node[parts[0]], parts[1:])


def project(doc, projection):
    mode, paths, include_id = projection
    if mode is None and include_id:
        return doc
    if mode == "include":
        out = {}
        if include_id and "_id" in doc:
            out["_id"] = doc["_id"]
        for path in paths:
            parts = path.split(".")
            value = _include(doc, parts)
            if value is _MISSING:
                continue
            nested = value
            for p in reversed(parts[1:]):
                nested = {p: nested}
            if len(parts) > 1 and type(doc.get(parts[0])) is list:
                out[parts[0]] = _project_array(doc[parts[0]], parts[1:])
            else:
                _merge(out, {parts[0]: nested})
        return out
    out = copy.deepcopy(doc)
    for path in paths:
        _exclude(out, path.split("."))
    if not include_id:
        out.pop("_id", None)
    return out


def _project_array(array, parts):
    out = []
    for e in array:
        if type(e) is dict:
            value = _include(e, parts)
            if value is not _MISSING:
                nested = value
                for p in reversed(parts[1:]):
                    nested = {p: nested}
                out.append({parts[0]: nested})
            else:
                out.append({})
        elif type(e) is list:
            out.append(_project_array(e, parts))
    return out


# ---- updates ----

UPDATE_OPERATORS = ("$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename", "$setOnInsert", "$push",
                    "$addToSet", "$pull", "$pullAll", "$pop", "$currentDate")


def is_operator_update(update):
    return type(update) is dict and bool(update) and next(iter(update)).startswith("$")


def check_storable(doc, what="Document"):
    """Refuse documents mongod would not store."""
    for key in doc:
        if key.startswith("$"):
            raise MongoError(2, f"{what} can't have $ prefixed field names: {key}")
    if "_id" in doc:
        v = doc["_id"]
        if type(v) is list:
            raise MongoError(2, "can't use an array for _id")
        if type(v) is Regex:
            raise MongoError(2, "can't use a regex for _id")


def _parent(doc, parts, create, op):
    node = doc
    for i, part in enumerate(parts[:-1]):
        if type(node) is dict:
            if part not in node:
                if not create:
                    return None
                node[part] = {}
            node = node[part]
        elif type(node) is list and part.isdigit():
            idx = int(part)
            if idx >= len(node):
                if not create:
                    return None
                node.extend([None] * (idx + 1 - len(node)))
                node[idx] = {}
            node = node[idx]
        else:
            if not create:
                return None
            raise MongoError(28, f"Cannot create field '{part}' in element {{{parts[i - 1] if i else ''}: ...}}")
    if type(node) not in (dict, list):
        if not create:
            return None
        raise MongoError(28, f"Cannot create field '{parts[-1]}' in element {{{parts[-2] if len(parts) > 1 else ''}:"
                             f" ...}}")
    return node


def _get(node, key):
    if type(node) is dict:
        return node.get(key, _MISSING)
    if type(node) is list and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    return _MISSING


def _put(node, key, value):
    if type(node) is dict:
        node[key] = value
    elif key.isdigit():
        idx = int(key)
        if idx >= len(node):
            node.extend([None] * (idx + 1 - len(node)))
        node[idx] = value
    else:
        raise MongoError(28, f"Cannot create field '{key}' in an array")


def _remove(node, key):
    if type(node) is dict:
        node.pop(key, None)
    elif type(node) is list and key.isdigit() and int(key) < len(node):
        node[int(key)] = None


def _numeric(v):
    return type(v) in (int, Int64, float)


def _arith(a, b, op):
    result = a + b if op == "$inc" else a * b
    if type(a) is float or type(b) is float:
        return float(result)
    if type(a) is Int64 or type(b) is Int64 or not -2 ** 31 <= result < 2 ** 31:
        if not -2 ** 63 <= result < 2 ** 63:
            raise MongoError(2, f"Failed to apply {op}: integer overflow")
        return Int64(result)
    return int(result)


def _check_conflicts(update):
    seen = []
    for op, fields in update.items():
        for path in fields:
            targets = [path] + ([fields[path]] if op == "$rename" and isinstance(fields[path], str) else [])
            for t in targets:
                for other in seen:
                    if t == other or t.startswith(other + ".") or other.startswith(t + "."):
                        raise MongoError(40, f"Updating the path '{t}' would create a conflict at '{other}'")
                seen.append(t)


def apply_update(doc, update, inserting=False):
    """A new document: `doc` with the operator update applied. Raises MongoError."""
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            if op.startswith("$"):
                raise MongoError(9, f"Unknown modifier: {op}. Expected a valid update modifier or pipeline-style "
                                    f"update specified as an array")
            raise MongoError(9, "Unknown modifier: ... mixing operators and fields is not allowed")
        if type(fields) is not dict:
            raise MongoError(9, f"Modifiers operate on fields but we found type {type(fields).__name__} instead. "
                                f"For example: {{$mod: {{<field>: ...}}}} not {{{op}: {fields!r}}}")
    _check_conflicts(update)
    out = copy.deepcopy(doc)
    for op, fields in update.items():
        for path, arg in fields.items():
            if path == "" or path.endswith(".") or ".." in path:
                raise MongoError(56, "An update path cannot be empty or contain empty field names")
            if ".$" in path or path.startswith("$"):
                raise not_supported("positional update operators")
            _apply_one(out, op, path, arg, inserting)
    if "_id" in doc and not values_equal(out.get("_id"), doc["_id"]):
        raise MongoError(66, "Performing an update on the path '_id' would modify the immutable field '_id'")
    return out


def _apply_one(doc, op, path, arg, inserting):
    parts = path.split(".")
    if op == "$setOnInsert":
        if not inserting:
            return
        op = "$set"
    if op == "$unset":
        parent = _parent(doc, parts, False, op)
        if parent is not None:
            _remove(parent, parts[-1])
        return
    if op == "$rename":
        if type(arg) is not str or not arg:
            raise MongoError(2, f"The 'to' field for $rename must be a string: {path}: {arg!r}")
        parent = _parent(doc, parts, False, op)
        value = _get(parent, parts[-1]) if parent is not None else _MISSING
        if value is _MISSING:
            return
        _remove(parent, parts[-1])
        dest = arg.split(".")
        _put(_parent(doc, dest, True, op), dest[-1], value)
        return
    if op == "$pop":
        parent = _parent(doc, parts, False, op)
        current = _get(parent, parts[-1]) if parent is not None else _MISSING
        if current is _MISSING:
            return
        if type(current) is not list:
            raise MongoError(14, f"Path '{path}' contains an element of non-array type")
        if current:
            current.pop(0 if arg == -1 else -1)
        return
    if op in ("$pull", "$pullAll"):
        parent = _parent(doc, parts, False, op)
        current = _get(parent, parts[-1]) if parent is not None else _MISSING
        if current is _MISSING:
            return
        if type(current) is not list:
            raise MongoError(2, "Cannot apply $pull to a non-array value")
        if op == "$pullAll":
            if type(arg) is not list:
                raise MongoError(2, "$pullAll requires an array argument")
            current[:] = [e for e in current if not any(values_equal(e, a) for a in arg)]
        elif _is_operator_doc(arg):
            current[:] = [e for e in current if not _operator_match({"x": e}, "x", arg)]
        elif type(arg) is dict:
            current[:] = [e for e in current if not (type(e) is dict and matches(e, arg))]
        else:
            current[:] = [e for e in current if not values_equal(e, arg)]
        return
    parent = _parent(doc, parts, True, op)
    current = _get(parent, parts[-1])
    if op == "$set":
        _put(parent, parts[-1], copy.deepcopy(arg))
    elif op in ("$inc", "$mul"):
        if not _numeric(arg):
            raise MongoError(14, f"Cannot {op[1:]} with non-numeric argument: {{{path}: {arg!r}}}")
        if current is _MISSING:
            _put(parent, parts[-1], arg if op == "$inc" else type(arg)(0))
        elif not _numeric(current):
            raise MongoError(14, f"Cannot apply {op} to a value of non-numeric type. {{_id: ...}} has the field "
                                 f"'{parts[-1]}' of non-numeric type {type(current).__name__}")
        else:
            _put(parent, parts[-1], _arith(current, arg, op))
    elif op in ("$min", "$max"):
        if current is _MISSING:
            _put(parent, parts[-1], copy.deepcopy(arg))
        else:
            c = compare(arg, current)
            if (op == "$min" and c < 0) or (op == "$max" and c > 0):
                _put(parent, parts[-1], copy.deepcopy(arg))
    elif op == "$currentDate":
        if type(arg) is dict and arg.get("$type") == "timestamp":
            _put(parent, parts[-1], Timestamp(int(time.time()), 1))
        else:
            _put(parent, parts[-1], DateTime.now())
    elif op in ("$push", "$addToSet"):
        items = [arg]
        if type(arg) is dict and "$each" in arg:
            if type(arg["$each"]) is not list:
                raise MongoError(2, "The argument to $each must be an array")
            if set(arg) - {"$each"}:
                raise not_supported(f"{op} modifiers other than $each")
            items = arg["$each"]
        if current is _MISSING:
            current = []
            _put(parent, parts[-1], current)
        elif type(current) is not list:
            raise MongoError(2, f"The field '{path}' must be an array but is of type "
                                f"{type(current).__name__} in document {{_id: ...}}")
        for item in items:
            if op == "$addToSet" and any(values_equal(e, item) for e in current):
                continue
            current.append(copy.deepcopy(item))


def upsert_seed(filt):
    """The document an upsert starts from: the filter's equality conditions."""
    seed = {}
    for key, cond in filt.items():
        if key.startswith("$"):
            if key == "$and" and type(cond) is list:
                for c in cond:
                    if type(c) is dict:
                        _merge(seed, upsert_seed(c))
            continue
        if _is_operator_doc(cond):
            if "$eq" in cond:
                cond = cond["$eq"]
            else:
                continue
        parts = key.split(".")
        node = seed
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if type(node) is not dict:
                break
        else:
            node[parts[-1]] = copy.deepcopy(cond)
    return seed


def index_key(doc, key_spec):
    """The hashable key of a document in an index (first value per field, null if missing)."""
    if len(key_spec) == 1 and "_id" in key_spec and "_id" in doc and type(doc["_id"]) is not list:
        return (hash_key(doc["_id"]),)
    out = []
    for path in key_spec:
        values = path_values(doc, path)
        direct = get_path(doc, path)
        if direct is not _MISSING and type(direct) is list:
            raise MongoError(2, "multikey unique indexes are not supported by the mongod stand-in")
        out.append(hash_key(values[0] if values else None))
    return tuple(out)
