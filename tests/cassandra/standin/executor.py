"""Executes parsed statements against the engine: reads and writes with
Cassandra's restrictions and error messages, keyspace and table DDL, roles and
permissions, prepared statements and paging. Every check a real node makes
before touching data (permissions, consistency, key completeness) is made
here before any mutation is built."""
import hashlib
import re
import struct
import time
import uuid

import cqlparse
import cqltypes
import cqlwire
import schema
from auth import APPLICABLE, display, hash_password, resource_kind
from errors import (AlreadyExists, ConfigurationException, InvalidRequest, SyntaxError_, Unauthorized,
                    Unavailable, Unprepared, WriteTimeout)

UNSET = cqlwire.NOT_SET
NAME_RE = re.compile(r"^\w{1,48}$", re.ASCII)
LOCAL_TABLE = ("system", "local")
LOCAL_WRITES = ("this stand-in implements only UPDATE system.local SET cluster_name = ... WHERE key = 'local' "
                "among writes to system tables")
READABLE_SYSTEM = {("system", "local"), ("system", "peers"), ("system", "peers_v2"), ("system", "size_estimates")}
STRATEGIES = {"SimpleStrategy", "NetworkTopologyStrategy"}
ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, SERIAL, LOCAL_SERIAL, LOCAL_ONE = range(11)


class Session:
    def __init__(self):
        self.keyspace = None
        self.user = None


class Result:
    """What a statement returns; body() is the RESULT message body."""

    def __init__(self, kind, columns=(), rows=(), paging_state=None, keyspace=None, change=None,
                 prepared=None):
        self.kind, self.columns, self.rows = kind, list(columns), list(rows)
        self.paging_state, self.keyspace, self.change, self.prepared = paging_state, keyspace, change, prepared

    def body(self, skip_metadata=False):
        if self.kind == "void":
            return cqlwire.void_result()
        if self.kind == "rows":
            return cqlwire.rows_result(self.columns, self.rows, self.paging_state, skip_metadata)
        if self.kind == "set_keyspace":
            return cqlwire.set_keyspace_result(self.keyspace)
        if self.kind == "schema_change":
            return cqlwire.schema_change_result(*self.change)
        return cqlwire.prepared_result(*self.prepared)


def _void():
    return Result("void")


class Executor:
    def __init__(self, engine, auth, config):
        self.engine = engine
        self.auth = auth
        self.config = config

    # ---- entry points ----
    def query(self, session, text, params):
        stmt = cqlparse.parse(text)
        return self._run(session, stmt, params, session.keyspace)

    def prepare(self, session, text):
        stmt = cqlparse.parse(text)
        specs, pk_indexes = self._bind_specs(stmt, session.keyspace)
        prefix = (session.keyspace or "") if _uses_session_keyspace(stmt) else ""
        statement_id = hashlib.md5((prefix + text).encode()).digest()
        with self.engine.lock:
            self.engine.prepared[statement_id] = (text, session.keyspace)
        result_cols = self._result_columns(stmt, session.keyspace)
        return Result("prepared", prepared=(statement_id, specs, pk_indexes, result_cols))

    def execute(self, session, statement_id, params):
        with self.engine.lock:
            entry = self.engine.prepared.get(statement_id)
        if entry is None:
            raise Unprepared(statement_id)
        text, keyspace = entry
        stmt = cqlparse.parse(text)
        return self._run(session, stmt, params, keyspace or session.keyspace)

    def _run(self, session, stmt, params, keyspace):
        specs, _ = self._bind_specs(stmt, keyspace)
        values = self._order_values(stmt, specs, params)
        handler = getattr(self, "x_" + stmt.kind)
        saved = session.keyspace
        session.keyspace = keyspace
        try:
            return handler(session, stmt, values, params)
        finally:
            if stmt.kind != "use":
                session.keyspace = saved

    def _order_values(self, stmt, specs, params):
        values = list(params.values)
        if params.names is not None:
            by_name = dict(zip(params.names, values))
            values = []
            for spec in specs:
                if spec[2] not in by_name:
                    raise InvalidRequest(f"Invalid unset value for column {spec[2]}")
                values.append(by_name[spec[2]])
        if len(values) != len(stmt.binds):
            raise InvalidRequest(f"There were {len(stmt.binds)} markers(?) in CQL but {len(values)} bound variables")
        return values

    # ---- bind markers ----
    def _bind_specs(self, stmt, keyspace):
        """(specs, pk_indexes): a (keyspace, table, name, type) per marker, and which markers bind the
        partition key."""
        specs = [None] * len(stmt.binds)
        if not stmt.binds:
            return [], []
        if stmt.kind not in ("select", "insert", "update", "delete"):
            raise SyntaxError_("line 1:0 bind variables are not allowed in this statement")
        table = self._table(keyspace, stmt.keyspace, stmt.table)
        eq_binds = {}

        def note(term, name, typ, eq=False):
            if term.kind == "bind":
                specs[term.value.index] = (table.keyspace, table.name, term.value.name or name, typ)
                if eq:
                    eq_binds[name] = term.value.index
            elif term.kind in ("list", "set", "map") and any(
                    t.kind == "bind" for t in _flatten(term)):
                raise InvalidRequest("bind markers inside collection literals are not supported by this stand-in")

        for col, op, term in getattr(stmt, "where", []):
            typ = self._column(table, col).type
            if op == "in" and not isinstance(term, list):
                note(term, f"in({col})", cqltypes.CqlType("list", [typ]))
            elif op == "in":
                for t in term:
                    note(t, col, typ)
            else:
                note(term, col, typ, eq=op == "=")
        if stmt.kind == "insert":
            for col, term in zip(stmt.columns, stmt.values):
                note(term, col, self._column(table, col).type, eq=True)
        if stmt.kind == "update":
            for col, op, term in stmt.assignments:
                note(term, col, self._column(table, col).type)
        for key, term in getattr(stmt, "using", {}).items():
            note(term, f"[{key}]", cqltypes.INT if key == "ttl" else cqltypes.BIGINT)
        if stmt.kind == "select" and stmt.limit is not None:
            note(stmt.limit, "[limit]", cqltypes.INT)
        pk = [eq_binds[c] for c in table.pk if c in eq_binds]
        return specs, pk if len(pk) == len(table.pk) else []

    def _result_columns(self, stmt, keyspace):
        if stmt.kind != "select":
            return []
        table = self._table(keyspace, stmt.keyspace, stmt.table)
        return [spec for spec, _ in self._selection(table, stmt)]

    # ---- lookups and checks ----
    def _table(self, keyspace, ks, name):
        ks = ks or keyspace
        if ks is None:
            raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                 "keyspace.tablename")
        if ks == "system" and name == "peers_v2":
            raise InvalidRequest("unconfigured table peers_v2")
        return self.engine.table(ks, name)

    @staticmethod
    def _column(table, name):
        col = table.columns.get(name)
        if col is None:
            raise InvalidRequest(f"Undefined column name {name}")
        return col

    def _check_read(self, session, table):
        if table.keyspace in ("system_schema", "system_virtual_schema") or \
                (table.keyspace, table.name) in READABLE_SYSTEM:
            return
        self.auth.authorize(session.user, "select", f"data/{table.keyspace}/{table.name}")

    def _check_modify(self, session, table):
        if (table.keyspace, table.name) == LOCAL_TABLE:
            # Cassandra refuses only schema changes in its local system keyspaces; a superuser may
            # write system.local (the documented way to rename a cluster).
            self.auth.authorize(session.user, "modify", "data/system/local")
            return
        if table.keyspace in schema.LOCAL_KEYSPACES:
            raise Unauthorized(f"{table.keyspace} keyspace is not user-modifiable.")
        if self.engine.keyspaces[table.keyspace].virtual:
            raise InvalidRequest(f"Modification is not supported by table {table.full_name}")
        self.auth.authorize(session.user, "modify", f"data/{table.keyspace}/{table.name}")

    def _replicas(self, keyspace):
        """(replication factor in all, in the local data center)."""
        rep = keyspace.replication
        cls = rep.get("class", "").rsplit(".", 1)[-1]
        if cls == "SimpleStrategy":
            rf = int(rep.get("replication_factor", 1))
            return rf, rf
        if cls == "NetworkTopologyStrategy":
            total = sum(int(v) for k, v in rep.items() if k != "class")
            return total, int(rep.get(self.config.dc, 0))
        return None, None

    def _check_consistency(self, ks_name, cl, write):
        keyspace = self.engine.keyspaces[ks_name]
        if keyspace.virtual:
            return
        total, local = self._replicas(keyspace)
        if total is None:
            return
        if cl == ANY:
            if not write:
                raise InvalidRequest("ANY ConsistencyLevel is only supported for writes")
            return
        ring = self.engine.ring
        live_all = ring.live_count() if ring else 1
        live_local = ring.live_count(self.config.dc) if ring else 1
        use_local = cl in (LOCAL_QUORUM, LOCAL_SERIAL, LOCAL_ONE, EACH_QUORUM)
        rf, live = (local, live_local) if use_local else (total, live_all)
        required = {ONE: 1, LOCAL_ONE: 1, TWO: 2, THREE: 3, QUORUM: total // 2 + 1, SERIAL: total // 2 + 1,
                    ALL: total, LOCAL_QUORUM: local // 2 + 1, LOCAL_SERIAL: local // 2 + 1,
                    EACH_QUORUM: local // 2 + 1}.get(cl, 1)
        alive = min(rf, live)
        if required > alive:
            raise Unavailable(cl, required, alive)
        return required

    # ---- values ----
    def _value(self, term, typ, column, values):
        if term.kind == "bind":
            raw = values[term.value.index]
            if raw is UNSET or raw is None:
                return raw
            return typ.deserialize(raw)
        if term.kind == "func":
            return _function(term, typ, column)
        return typ.from_literal(term, column)

    def _restrictions(self, table, where, values):
        out = {}
        for col, op, term in where:
            column = self._column(table, col)
            if op == "in":
                if isinstance(term, list):
                    vals = [self._value(t, column.type, col, values) for t in term]
                else:
                    v = self._value(term, cqltypes.CqlType("list", [column.type]), col, values)
                    vals = list(v or ())
            else:
                vals = [self._value(term, column.type, col, values)]
            for v in vals:
                if v is UNSET:
                    raise InvalidRequest(f"Invalid unset value for column {col}")
                if v is None:
                    raise InvalidRequest(f"Invalid null value in condition for column {col}")
            out.setdefault(col, []).append((op, vals))
        return out

    def _check_restrictions(self, table, r, allow_filtering):
        filtering = ("Cannot execute this query as it might involve data filtering and thus may have "
                     "unpredictable performance. If you want to execute this query despite the performance "
                     "unpredictability, use ALLOW FILTERING")
        for col in table.pk:
            for op, _ in r.get(col, []):
                if op not in ("=", "in"):
                    raise InvalidRequest("Only EQ and IN relation are supported on the partition key (unless you "
                                         "use the token() function)")
        pk_given = [c for c in table.pk if c in r]
        if pk_given and len(pk_given) != len(table.pk) and not allow_filtering:
            missing = ", ".join(c for c in table.pk if c not in r)
            raise InvalidRequest(f"Partition key parts: {missing} must be restricted as other parts are")
        if allow_filtering:
            return
        if any(table.columns[c].kind in ("regular", "static") for c in r):
            raise InvalidRequest(filtering)
        ck_given = [c for c in table.ck if c in r]
        if ck_given and len(pk_given) != len(table.pk):
            raise InvalidRequest(filtering)
        for i, c in enumerate(table.ck):
            if c in r and i > 0 and table.ck[i - 1] not in r:
                raise InvalidRequest(f"PRIMARY KEY column \"{c}\" cannot be restricted as preceding column "
                                     f"\"{table.ck[i - 1]}\" is not restricted")

    @staticmethod
    def _matches(table, row, r):
        for col, conds in r.items():
            v = row.get(col)
            typ = table.columns[col].type
            for op, vals in conds:
                if op == "=" and v != vals[0]:
                    return False
                if op == "in" and v not in vals:
                    return False
                if op in ("<", ">", "<=", ">="):
                    if v is None:
                        return False
                    a, b = typ.sort_key(v), typ.sort_key(vals[0])
                    if not {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]:
                        return False
        return True

    def _keys(self, table, r, full, what):
        """The primary keys (or key prefixes of at least the partition key when not `full`) a write's
        WHERE names."""
        choices = []
        for c in table.key_columns:
            conds = r.get(c)
            if not conds:
                if c in table.pk:
                    raise InvalidRequest(f"Some partition key parts are missing: {c}")
                if full:
                    raise InvalidRequest(f"Some clustering keys are missing: {c}")
                break
            op, vals = conds[0]
            if op not in ("=", "in") or len(conds) > 1:
                raise InvalidRequest(f"Invalid operator {op} for PRIMARY KEY part {c} in {what}")
            choices.append(vals)
        for c in r:
            if c not in table.key_columns:
                raise InvalidRequest(f"Non PRIMARY KEY columns found in where clause: {c} ")
        keys = [()]
        for vals in choices:
            keys = [k + (v,) for k in keys for v in vals]
        return keys

    # ---- SELECT ----
    def _selection(self, table, stmt):
        """[((ks, table, label, type), source)] where source is a column name or 'count'."""
        if stmt.selectors is None:
            return [((table.keyspace, table.name, c, table.columns[c].type), c) for c in table.star_columns()]
        out = []
        for kind, name, alias in stmt.selectors:
            if kind == "count":
                out.append(((table.keyspace, table.name, alias or "count", cqltypes.BIGINT), "count"))
            else:
                col = self._column(table, name)
                out.append(((table.keyspace, table.name, alias or name, col.type), name))
        if any(src == "count" for _, src in out) and len(out) > 1:
            raise InvalidRequest("mixing COUNT with other selectors is not implemented by this stand-in")
        return out

    def x_select(self, session, stmt, values, params):
        table = self._table(session.keyspace, stmt.keyspace, stmt.table)
        self._check_read(session, table)
        selection = self._selection(table, stmt)
        r = self._restrictions(table, stmt.where, values)
        self._check_restrictions(table, r, stmt.allow_filtering)
        self._check_consistency(table.keyspace, params.consistency, write=False)
        limit = None
        if stmt.limit is not None:
            limit = self._value(stmt.limit, cqltypes.INT, "[limit]", values)
            if limit is None or limit is UNSET or limit <= 0:
                raise InvalidRequest(f"LIMIT must be strictly positive")
        with self.engine.lock:
            if table.refresh:
                table.refresh(table)
            rows = [row for _, row in table.ordered_rows() if self._matches(table, row, r)]
        if stmt.distinct:
            seen, uniq = set(), []
            for row in rows:
                k = tuple(row[c] for c in table.pk)
                if k not in seen:
                    seen.add(k)
                    uniq.append(row)
            rows = uniq
        if limit is not None:
            rows = rows[:limit]
        columns = [spec for spec, _ in selection]
        if selection and selection[0][1] == "count":
            return Result("rows", columns, [[len(rows)]])
        out = [[row.get(src) for _, src in selection] for row in rows]
        return self._page(columns, out, params, stmt.text)

    def _page(self, columns, rows, params, text):
        start = 0
        marker = hashlib.md5(text.encode()).digest()[:8]
        if params.paging_state:
            st = params.paging_state
            if len(st) != 12 or st[4:] != marker:
                raise cqlwire.ProtocolError("Invalid value for the paging state")
            start = struct.unpack(">I", st[:4])[0]
        size = params.page_size
        if size is None or size <= 0 or start + size >= len(rows):
            return Result("rows", columns, rows[start:])
        state = struct.pack(">I", start + size) + marker
        return Result("rows", columns, rows[start:start + size], paging_state=state)

    # ---- writes ----
    def _write(self, table, mutations, cl):
        required = self._check_consistency(table.keyspace, cl, write=True) or 1
        acks = self.engine.apply(mutations)
        if acks < required:
            raise WriteTimeout(f"Operation timed out - received only {acks} responses.", cl, acks, required)

    def _lwt(self, table, applied, existing):
        cols = [(table.keyspace, table.name, "[applied]", cqltypes.BOOLEAN)]
        if applied or existing is None:
            return Result("rows", cols, [[applied]])
        names = table.star_columns()
        cols += [(table.keyspace, table.name, n, table.columns[n].type) for n in names]
        return Result("rows", cols, [[False] + [existing.get(n) for n in names]])

    def x_insert(self, session, stmt, values, params):
        table = self._table(session.keyspace, stmt.keyspace, stmt.table)
        self._check_modify(session, table)
        if (table.keyspace, table.name) == LOCAL_TABLE:
            raise InvalidRequest(LOCAL_WRITES)
        row = {}
        for col, term in zip(stmt.columns, stmt.values):
            column = self._column(table, col)
            if col in row:
                raise InvalidRequest(f"Multiple definitions found for column {col}")
            v = self._value(term, column.type, col, values)
            if v is UNSET:
                if col in table.key_columns:
                    raise InvalidRequest(f"Invalid unset value for column {col}")
                continue
            row[col] = v
        self._check_key(table, row)
        with self.engine.lock:
            existing = table.rows.get(table.key_of(row))
            if stmt.if_not_exists and existing is not None:
                return self._lwt(table, False, existing)
            mutation = self.engine.upsert_mutation(table, row)
        self._write(table, [mutation], params.consistency)
        return self._lwt(table, True, None) if stmt.if_not_exists else _void()

    @staticmethod
    def _check_key(table, row):
        missing = [c for c in table.pk if c not in row]
        if missing:
            raise InvalidRequest(f"Some partition key parts are missing: {', '.join(missing)}")
        missing = [c for c in table.ck if c not in row]
        if missing:
            raise InvalidRequest(f"Some clustering keys are missing: {', '.join(missing)}")
        for c in table.key_columns:
            if row[c] is None:
                raise InvalidRequest(f"Invalid null value in condition for column {c}")
        if len(table.pk) == 1 and row[table.pk[0]] in ("", b""):
            raise InvalidRequest("Key may not be empty")

    def x_update(self, session, stmt, values, params):
        table = self._table(session.keyspace, stmt.keyspace, stmt.table)
        self._check_modify(session, table)
        r = self._restrictions(table, stmt.where, values)
        keys = self._keys(table, r, True, "UPDATE")
        if (table.keyspace, table.name) == LOCAL_TABLE:
            return self._update_local(table, stmt, values, keys)
        with self.engine.lock:
            mutations = []
            for key in keys:
                current = table.rows.get(key)
                if stmt.if_exists and current is None:
                    continue
                row = dict(zip(table.key_columns, key))
                for col, op, term in stmt.assignments:
                    column = self._column(table, col)
                    if col in table.key_columns:
                        raise InvalidRequest(f"PRIMARY KEY part {col} found in SET part")
                    v = self._value(term, column.type, col, values)
                    if v is UNSET:
                        continue
                    row[col] = _combine(column, (current or {}).get(col), op, v)
                mutations.append(self.engine.upsert_mutation(table, row))
            if stmt.if_exists and not mutations:
                return self._lwt(table, False, None)
        self._write(table, mutations, params.consistency)
        return self._lwt(table, True, None) if stmt.if_exists else _void()

    def _update_local(self, table, stmt, values, keys):
        """system.local's saved cluster name: read back at once, checked against cassandra.yaml at the
        next start."""
        if keys != [("local",)] or stmt.if_exists or any(c != "cluster_name" or op != "="
                                                         for c, op, _ in stmt.assignments):
            raise InvalidRequest(LOCAL_WRITES)
        name = self._value(stmt.assignments[0][2], table.columns["cluster_name"].type, "cluster_name", values)
        if not isinstance(name, str) or not name:
            raise InvalidRequest("cluster_name must be a non-empty text")
        with self.engine.lock:
            self.engine.state["cluster_name"] = name
            self.engine.save_state()
        return _void()

    def x_delete(self, session, stmt, values, params):
        table = self._table(session.keyspace, stmt.keyspace, stmt.table)
        self._check_modify(session, table)
        if (table.keyspace, table.name) == LOCAL_TABLE:
            raise InvalidRequest(LOCAL_WRITES)
        for c in stmt.columns:
            if self._column(table, c).kind in ("partition_key", "clustering"):
                raise InvalidRequest(f"Invalid identifier {c} for deletion (should not be a PRIMARY KEY part)")
        r = self._restrictions(table, stmt.where, values)
        keys = self._keys(table, r, False, "DELETE")
        with self.engine.lock:
            if stmt.if_exists and not any(k[:len(key)] == key for key in keys for k in table.rows):
                return self._lwt(table, False, None)
            muts = [self.engine.delete_mutation(table, key, stmt.columns or None) for key in keys]
        self._write(table, muts, params.consistency)
        return self._lwt(table, True, None) if stmt.if_exists else _void()

    def x_truncate(self, session, stmt, values, params):
        table = self._table(session.keyspace, stmt.keyspace, stmt.table)
        self._check_modify(session, table)
        if (table.keyspace, table.name) == LOCAL_TABLE:
            raise InvalidRequest(LOCAL_WRITES)
        self._check_consistency(table.keyspace, ALL, write=True)
        self.engine.apply([self.engine.truncate_mutation(table)])
        return _void()

    def x_use(self, session, stmt, values, params):
        if stmt.keyspace not in self.engine.keyspaces:
            raise InvalidRequest(f"Keyspace '{stmt.keyspace}' does not exist")
        session.keyspace = stmt.keyspace
        return Result("set_keyspace", keyspace=stmt.keyspace)

    # ---- keyspaces and tables ----
    def _replication(self, name, literal):
        if literal is None:
            raise ConfigurationException("Missing mandatory option 'replication'")
        if literal.kind != "map":
            raise SyntaxError_(f"Invalid value for property 'replication'. It should be a map.")
        rep = {}
        for k, v in literal.value:
            if k.kind != "string":
                raise SyntaxError_("Invalid replication option key")
            rep[k.value] = str(v.value).lower() if v.kind == "boolean" else str(v.value)
        cls = rep.pop("class", None)
        if not cls:
            raise ConfigurationException("Missing replication strategy class")
        short = cls.rsplit(".", 1)[-1]
        if short in ("LocalStrategy", "EverywhereStrategy"):
            raise ConfigurationException(f"Unable to use given strategy class: {short} is reserved for internal "
                                         f"use.")
        if short not in STRATEGIES:
            raise ConfigurationException(f"Unable to find replication strategy class "
                                         f"'org.apache.cassandra.locator.{short}'")
        for k, v in rep.items():
            if not re.fullmatch(r"-?\d+", v):
                raise ConfigurationException(f"Replication factor must be numeric; found {v}")
            if int(v) < 0:
                raise ConfigurationException(f"Replication factor must be non-negative; found {v}")
        if short == "SimpleStrategy":
            if "replication_factor" not in rep:
                raise ConfigurationException("SimpleStrategy requires a replication_factor strategy option.")
            extra = sorted(set(rep) - {"replication_factor"})
            if extra:
                raise ConfigurationException(f"Unrecognized strategy option {{{extra[0]}}} passed to SimpleStrategy "
                                             f"for keyspace {name}")
        else:
            dcs = self.engine.ring.datacenters() if self.engine.ring else {self.config.dc}
            if "replication_factor" in rep:
                rf = rep.pop("replication_factor")
                for dc in dcs:
                    rep.setdefault(dc, rf)
            for dc in sorted(rep):
                if dc not in dcs:
                    raise ConfigurationException(f"Unrecognized strategy option {{{dc}}} passed to "
                                                 f"NetworkTopologyStrategy for keyspace {name}")
        rep["class"] = "org.apache.cassandra.locator." + short
        return rep

    def _keyspace_props(self, name, props, creating):
        for k in props:
            if k not in ("replication", "durable_writes"):
                raise SyntaxError_(f"Unknown property '{k}'")
        durable = props.get("durable_writes")
        if durable is not None and durable.kind != "boolean" and not (
                durable.kind == "string" and durable.value.lower() in ("true", "false")):
            raise SyntaxError_(f"Invalid boolean value {durable.text} for 'durable_writes'")
        durable_value = None if durable is None else (durable.value if durable.kind == "boolean"
                                                      else durable.value.lower() == "true")
        rep = self._replication(name, props.get("replication")) if (creating or "replication" in props) else None
        return rep, durable_value

    def x_create_keyspace(self, session, stmt, values, params):
        name = stmt.name
        if not NAME_RE.match(name):
            raise InvalidRequest(f'Keyspace name must not be empty, more than 48 characters long, or contain '
                                 f'non-alphanumeric-underscore characters (got "{name}")')
        self.auth.authorize(session.user, "create", "data")
        rep, durable = self._keyspace_props(name, stmt.properties, True)
        with self.engine.lock:
            if name in self.engine.keyspaces:
                if stmt.if_not_exists:
                    return _void()
                raise AlreadyExists(name)
            old = self.engine.copy_keyspaces()
            self.engine.keyspaces[name] = schema.Keyspace(name, rep, True if durable is None else durable)
            granted = self._autogrant(session, "data/" + name)
        self.engine.schema_changed(old)
        if granted:
            self.engine.auth_changed()
        return Result("schema_change", change=("CREATED", "KEYSPACE", name))

    def _autogrant(self, session, resource):
        """The creator of a resource gets every permission on it (as CassandraAuthorizer grants)."""
        if session.user is None or not self.auth.authorize_enabled:
            return False
        self.auth.grant(session.user, resource, APPLICABLE[resource_kind(resource)])
        return True

    def _user_keyspace(self, name, verb):
        if name in schema.LOCAL_KEYSPACES or name in schema.VIRTUAL_KEYSPACES:
            raise Unauthorized(f"{name} keyspace is not user-modifiable.")
        ks = self.engine.keyspaces.get(name)
        if ks is None:
            raise InvalidRequest(f"Keyspace '{name}' doesn't exist")
        return ks

    def x_alter_keyspace(self, session, stmt, values, params):
        if stmt.name not in self.engine.keyspaces and stmt.if_exists:
            return _void()
        ks = self._user_keyspace(stmt.name, "alter")
        self.auth.authorize(session.user, "alter", "data/" + ks.name)
        rep, durable = self._keyspace_props(ks.name, stmt.properties, False)
        with self.engine.lock:
            old = self.engine.copy_keyspaces()
            if rep is not None:
                ks.replication = rep
            if durable is not None:
                ks.durable_writes = durable
        self.engine.schema_changed(old)
        return Result("schema_change", change=("UPDATED", "KEYSPACE", ks.name))

    def x_drop_keyspace(self, session, stmt, values, params):
        if stmt.name in schema.SYSTEM_KEYSPACES or stmt.name in schema.VIRTUAL_KEYSPACES:
            raise Unauthorized(f"{stmt.name} keyspace is not user-modifiable.")
        if stmt.name not in self.engine.keyspaces:
            if stmt.if_exists:
                return _void()
            raise InvalidRequest(f"Keyspace '{stmt.name}' doesn't exist")
        self.auth.authorize(session.user, "drop", "data/" + stmt.name)
        with self.engine.lock:
            old = self.engine.copy_keyspaces()
            del self.engine.keyspaces[stmt.name]
            self.auth.drop_resource("data/" + stmt.name)
        self.engine.auth_changed()
        self.engine.schema_changed(old)
        return Result("schema_change", change=("DROPPED", "KEYSPACE", stmt.name))

    def x_create_table(self, session, stmt, values, params):
        ks_name = stmt.keyspace or session.keyspace
        if ks_name is None:
            raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                 "keyspace.tablename")
        ks = self._user_keyspace(ks_name, "create")
        if ks_name in schema.SYSTEM_KEYSPACES:
            raise Unauthorized(f"{ks_name} keyspace is not user-modifiable.")
        if not NAME_RE.match(stmt.name):
            raise InvalidRequest(f'Table name must not be empty, more than 48 characters long, or contain '
                                 f'non-alphanumeric-underscore characters (got "{stmt.name}")')
        self.auth.authorize(session.user, "create", "data/" + ks_name)
        columns, table_id, options, orders = self._table_definition(stmt)
        with self.engine.lock:
            if stmt.name in ks.tables:
                if stmt.if_not_exists:
                    return _void()
                raise AlreadyExists(ks_name, stmt.name)
            old = self.engine.copy_keyspaces()
            ks.tables[stmt.name] = schema.Table(ks_name, stmt.name, columns, stmt.partition_key, stmt.clustering,
                                                table_id, options, orders)
            granted = self._autogrant(session, f"data/{ks_name}/{stmt.name}")
        self.engine.schema_changed(old)
        if granted:
            self.engine.auth_changed()
        return Result("schema_change", change=("CREATED", "TABLE", ks_name, stmt.name))

    def _table_definition(self, stmt):
        columns, seen = [], set()
        for name, type_text, static in stmt.columns:
            if name in seen:
                raise InvalidRequest(f"Multiple definition of identifier {name}")
            seen.add(name)
            columns.append((name, cqltypes.parse_type(type_text), static))
        types = {n: t for n, t, _ in columns}
        for c in stmt.partition_key + stmt.clustering:
            if c not in types:
                raise InvalidRequest(f"Unknown definition {c} referenced in PRIMARY KEY")
            if types[c].is_collection and not types[c].frozen:
                raise InvalidRequest(f"Invalid non-frozen collection type for PRIMARY KEY component {c}")
        if any(s for _, _, s in columns) and not stmt.clustering:
            raise InvalidRequest("Static columns are only useful (and thus allowed) if the table has at least one "
                                 "clustering column")
        props = dict(stmt.properties)
        orders = {}
        for col, order in props.pop("clustering order", []):
            if col not in stmt.clustering:
                raise InvalidRequest("Only clustering key columns can be defined in CLUSTERING ORDER directive")
            orders[col] = order
        table_id = None
        if "id" in props:
            lit = props.pop("id")
            try:
                table_id = uuid.UUID(str(lit.value))
            except ValueError:
                raise ConfigurationException(f"Invalid table id {lit.text}")
        options = {}
        for k, lit in props.items():
            if k not in schema.SETTABLE_TABLE_OPTIONS:
                raise SyntaxError_(f"Unknown property '{k}'")
            default = schema.DEFAULT_TABLE_OPTIONS[k]
            if isinstance(default, dict):
                if lit.kind != "map":
                    raise SyntaxError_(f"Invalid value for property '{k}'. It should be a map.")
                options[k] = {str(a.value): str(b.value) for a, b in lit.value}
            elif isinstance(default, bool):
                options[k] = bool(lit.value)
            elif isinstance(default, int):
                options[k] = int(lit.value)
            elif isinstance(default, float):
                options[k] = float(lit.value)
            else:
                options[k] = str(lit.value)
        return columns, table_id, options, orders

    def x_drop_table(self, session, stmt, values, params):
        ks_name = stmt.keyspace or session.keyspace
        if ks_name is None:
            raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                 "keyspace.tablename")
        if ks_name in schema.SYSTEM_KEYSPACES or ks_name in schema.VIRTUAL_KEYSPACES:
            raise Unauthorized(f"{ks_name} keyspace is not user-modifiable.")
        ks = self.engine.keyspaces.get(ks_name)
        if ks is None or stmt.name not in ks.tables:
            if stmt.if_exists:
                return _void()
            raise InvalidRequest(f"Table '{ks_name}.{stmt.name}' doesn't exist")
        self.auth.authorize(session.user, "drop", f"data/{ks_name}/{stmt.name}")
        with self.engine.lock:
            old = self.engine.copy_keyspaces()
            del ks.tables[stmt.name]
            self.auth.drop_resource(f"data/{ks_name}/{stmt.name}")
        self.engine.auth_changed()
        self.engine.schema_changed(old)
        return Result("schema_change", change=("DROPPED", "TABLE", ks_name, stmt.name))

    # ---- roles ----
    def _role_options(self, options):
        out = {}
        for key, lit in options.items():
            if key == "password":
                if not self.config.password_auth:
                    raise InvalidRequest("PASSWORD is not supported by CassandraRoleManager")
                if lit.kind != "string":
                    raise InvalidRequest("Invalid value for property 'password'. It must be a string")
                out["salted_hash"] = hash_password(lit.value)
            elif key in ("login", "superuser"):
                if lit.kind != "boolean":
                    raise SyntaxError_(f"Invalid value for property '{key}'. It must be a boolean")
                out["can_login" if key == "login" else "is_superuser"] = lit.value
            elif key == "options":
                raise InvalidRequest("Custom options are not supported by CassandraRoleManager")
        return out

    def _require_login(self, session):
        if self.config.password_auth and session.user is None:
            raise Unauthorized("You have not logged in")

    def x_create_role(self, session, stmt, values, params):
        self._require_login(session)
        if stmt.name == "":
            raise InvalidRequest("Role name can't be an empty string")
        fields = self._role_options(stmt.options)
        self.auth.authorize(session.user, "create", "roles")
        if fields.get("is_superuser") and session.user is not None and not self.auth.is_super(session.user):
            raise Unauthorized("Only superusers can create a role with superuser status")
        with self.engine.lock:
            if self.auth.get(stmt.name) is not None:
                if stmt.if_not_exists:
                    return _void()
                raise InvalidRequest(f"{stmt.name} already exists")
            self.auth.put_role(stmt.name, **fields)
            if session.user is not None and self.auth.authorize_enabled:
                self.auth.grant(session.user, "roles/" + stmt.name, APPLICABLE["role"])
        self.engine.auth_changed()
        return _void()

    def x_alter_role(self, session, stmt, values, params):
        self._require_login(session)
        fields = self._role_options(stmt.options)
        with self.engine.lock:
            if self.auth.get(stmt.name) is None:
                if stmt.if_exists:
                    return _void()
                raise InvalidRequest(f"{stmt.name} doesn't exist")
            user = session.user
            if user is not None and not self.auth.is_super(user):
                if "is_superuser" in fields:
                    raise Unauthorized("Only superusers are allowed to alter superuser status")
                if stmt.name != user or set(fields) - {"salted_hash"}:
                    self.auth.authorize(user, "alter", "roles/" + stmt.name)
            if user is not None and "is_superuser" in fields and stmt.name in self.auth.granted_roles(user):
                raise Unauthorized("You aren't allowed to alter your own superuser status or that of a role "
                                   "granted to you")
            self.auth.put_role(stmt.name, **fields)
        self.engine.auth_changed()
        return _void()

    def x_drop_role(self, session, stmt, values, params):
        self._require_login(session)
        with self.engine.lock:
            row = self.auth.get(stmt.name)
            if row is None:
                if stmt.if_exists:
                    return _void()
                raise InvalidRequest(f"{stmt.name} doesn't exist")
            if session.user == stmt.name:
                raise InvalidRequest("Cannot DROP primary role for current login")
            if session.user is not None:
                self.auth.authorize(session.user, "drop", "roles/" + stmt.name)
                if row.get("is_superuser") and not self.auth.is_super(session.user):
                    raise Unauthorized("Only superusers can drop a role with superuser status")
            self.auth.drop_role(stmt.name)
        self.engine.auth_changed()
        return _void()

    def _check_role_exists(self, name):
        if self.auth.get(name) is None:
            raise InvalidRequest(f"{name} doesn't exist")

    def x_grant_role(self, session, stmt, values, params):
        self._require_login(session)
        with self.engine.lock:
            self._check_role_exists(stmt.role)
            self._check_role_exists(stmt.grantee)
            self.auth.authorize(session.user, "authorize", "roles/" + stmt.role)
            if stmt.role in self.auth.granted_roles(stmt.grantee):
                raise InvalidRequest(f"{stmt.grantee} is a member of {stmt.role}")
            if stmt.grantee in self.auth.granted_roles(stmt.role):
                raise InvalidRequest(f"{stmt.grantee} is a member of {stmt.role}")
            self.auth.grant_role(stmt.role, stmt.grantee)
        self.engine.auth_changed()
        return _void()

    def x_revoke_role(self, session, stmt, values, params):
        self._require_login(session)
        with self.engine.lock:
            self._check_role_exists(stmt.role)
            self._check_role_exists(stmt.grantee)
            self.auth.authorize(session.user, "authorize", "roles/" + stmt.role)
            if stmt.role not in (self.auth.get(stmt.grantee).get("member_of") or ()):
                raise InvalidRequest(f"{stmt.grantee} is not a member of {stmt.role}")
            self.auth.revoke_role(stmt.role, stmt.grantee)
        self.engine.auth_changed()
        return _void()

    def _resource(self, session, res):
        """A resource name (data/ks[/table], roles[/name], ...) that must exist."""
        if isinstance(res, tuple):
            ks = res[1] or session.keyspace
            if ks is None:
                raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                     "keyspace.tablename")
            res = f"data/{ks}/{res[2]}"
        parts = res.split("/", 2)
        if parts[0] == "data" and len(parts) >= 2:
            ks = self.engine.keyspaces.get(parts[1])
            if ks is None or (len(parts) == 3 and parts[2] not in ks.tables):
                raise InvalidRequest(f"Resource {display(res)} doesn't exist")
        if parts[0] == "roles" and len(parts) == 2 and self.auth.get(res[6:]) is None:
            raise InvalidRequest(f"Resource {display(res)} doesn't exist")
        return res

    def _grant_or_revoke(self, session, stmt, granting):
        self._require_login(session)
        if not self.auth.authorize_enabled:
            raise InvalidRequest(f"{'GRANT' if granting else 'REVOKE'} operation is not supported by "
                                 f"AllowAllAuthorizer")
        with self.engine.lock:
            res = self._resource(session, stmt.resource)
            self._check_role_exists(stmt.role)
            applicable = APPLICABLE[resource_kind(res)]
            perms = [p for p in stmt.permissions if p in applicable]
            if not perms:
                raise InvalidRequest(f"Resource type {_resource_class(res)} does not support any of the requested "
                                     f"permissions")
            if len(stmt.permissions) == 1 and stmt.permissions[0] not in applicable:
                raise InvalidRequest(f"Resource type {_resource_class(res)} does not support the requested "
                                     f"permission")
            self.auth.authorize(session.user, "authorize", res)
            if granting:
                self.auth.grant(stmt.role, res, perms)
            else:
                self.auth.revoke(stmt.role, res, perms)
        self.engine.auth_changed()
        return _void()

    def x_grant(self, session, stmt, values, params):
        return self._grant_or_revoke(session, stmt, True)

    def x_revoke(self, session, stmt, values, params):
        return self._grant_or_revoke(session, stmt, False)

    def x_list_roles(self, session, stmt, values, params):
        self._require_login(session)
        with self.engine.lock:
            user = session.user
            may_describe = user is None or self.auth.is_super(user) or _holds(self.auth, user, "describe", "roles")
            if stmt.of is not None:
                self._check_role_exists(stmt.of)
                if not may_describe and stmt.of not in self.auth.granted_roles(user):
                    raise Unauthorized(f"You are not authorized to view roles granted to {stmt.of} ")
                names = self.auth.granted_roles(stmt.of, recursive=not stmt.norecursive)
            elif may_describe:
                names = self.auth.all_names()
            else:
                names = self.auth.granted_roles(user)
            rows = []
            for n in sorted(set(names)):
                row = self.auth.get(n) or {}
                rows.append([n, bool(row.get("is_superuser")), bool(row.get("can_login")), ()])
        cols = [("system_auth", "roles", "role", cqltypes.TEXT),
                ("system_auth", "roles", "super", cqltypes.BOOLEAN),
                ("system_auth", "roles", "login", cqltypes.BOOLEAN),
                ("system_auth", "roles", "options", cqltypes.MAP_TEXT)]
        return Result("rows", cols, rows)

    def x_list_users(self, session, stmt, values, params):
        roles = self.x_list_roles(session, cqlparse.Statement("list_roles", of=None, norecursive=False),
                                  values, params)
        cols = [("system_auth", "users", "name", cqltypes.TEXT), ("system_auth", "users", "super", cqltypes.BOOLEAN)]
        return Result("rows", cols, [[r[0], r[1]] for r in roles.rows if r[2]])

    def x_list_permissions(self, session, stmt, values, params):
        self._require_login(session)
        if not self.auth.authorize_enabled:
            raise InvalidRequest("LIST PERMISSIONS operation is not supported by AllowAllAuthorizer")
        with self.engine.lock:
            user = session.user
            if stmt.of is not None:
                self._check_role_exists(stmt.of)
            if user is not None and not self.auth.is_super(user):
                if stmt.of is None or stmt.of not in self.auth.granted_roles(user):
                    raise Unauthorized(f"You are not authorized to view {stmt.of or 'everyone'}'s permissions")
            res = self._resource(session, stmt.resource) if stmt.resource is not None else None
            roles = None
            if stmt.of is not None:
                roles = set(self.auth.granted_roles(stmt.of, recursive=not stmt.norecursive))
            wanted = set(stmt.permissions)
            rows = []
            for role, resource, perms in self.auth.all_grants():
                if roles is not None and role not in roles:
                    continue
                if res is not None and resource != res and (stmt.norecursive or not res.startswith(resource + "/")):
                    continue
                for p in sorted(perms):
                    if p in wanted:
                        rows.append([role, role, display(resource), p.upper()])
        cols = [("system_auth", "permissions", n, cqltypes.TEXT) for n in ("role", "username", "resource",
                                                                             "permission")]
        return Result("rows", cols, rows)


def _holds(auth, user, permission, resource):
    try:
        auth.authorize(user, permission, resource)
        return True
    except Unauthorized:
        return False


def _resource_class(res):
    return {"data": "DataResource", "roles": "RoleResource", "functions": "FunctionResource",
            "mbean": "JMXResource"}[res.split("/")[0]]


def _uses_session_keyspace(stmt):
    return getattr(stmt, "keyspace", "x") is None


def _flatten(term):
    if term.kind in ("list", "set"):
        for t in term.value:
            yield t
            yield from _flatten(t)
    elif term.kind == "map":
        for k, v in term.value:
            yield k
            yield v
            yield from _flatten(k)
            yield from _flatten(v)


def _function(term, typ, column):
    name, args = term.value
    if name == "now":
        return uuid.uuid1()
    if name == "uuid":
        return uuid.uuid4()
    if name in ("currenttimestamp", "totimestamp", "tounixtimestamp"):
        return int(time.time() * 1000)
    raise InvalidRequest(f"Unknown function '{name}'")


def _combine(column, current, op, value):
    """SET c = v, c = c + v, c = c - v for collections and counters."""
    if op == "=":
        return value
    t = column.type
    if t.name == "counter":
        return (current or 0) + (value if op == "+" else -value)
    if value is None:
        return current
    if t.name == "list":
        return tuple(current or ()) + tuple(value) if op == "+" else tuple(x for x in (current or ()) if x not in value)
    if t.name == "set":
        cur = set(current or ())
        return t.normalize(cur | set(value) if op == "+" else cur - set(value)) or None
    if t.name == "map":
        cur = dict(current or ())
        if op == "+":
            cur.update(dict(value))
        else:
            for k in value:
                cur.pop(k, None)
        return t.normalize(list(cur.items())) or None
    raise InvalidRequest(f"Invalid operation ({column.name} = {column.name} {op} ?) for non counter column "
                         f"{column.name}")

