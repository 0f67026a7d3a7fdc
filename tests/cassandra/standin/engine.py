"""The stand-in's storage engine: the keyspaces and their rows in memory, the
commit log, flushes to SSTable-like files, snapshots, schema changes (kept in
the system_schema tables as Cassandra keeps them) and the mutations a write
turns into. One lock guards all of it; replication to other nodes happens
outside the lock (see ring.py)."""
import datetime
import json
import os
import shutil
import threading
import time
import uuid

import schema
import storage
from errors import InvalidRequest, ServerError

SCHEMA_TABLES = ("keyspaces", "tables", "columns")
AUTH_TABLES = ("roles", "role_members", "role_permissions", "resource_role_permissons_index",
               "network_permissions")
STATE_FILE = "standin-node.json"


def _hex(table, col, v):
    return None if v is None else table.columns[col].type.serialize(v).hex()


def _unhex(table, col, h):
    return None if h is None else table.columns[col].type.deserialize(bytes.fromhex(h))


class Engine:
    def __init__(self, config, log):
        self.config = config
        self.log = log
        self.lock = threading.RLock()
        self.keyspaces = schema.build_system_keyspaces()
        self.commitlog = storage.CommitLog(config.commitlog_dir)
        self.prepared = {}
        self.state = {}
        self.ring = None
        self.listeners = []        # callables(event_kind, payload) for pushed events
        self.accepting_writes = True

    # ---- lookups ----
    def table(self, keyspace, name):
        ks = self.keyspaces.get(keyspace)
        if ks is None:
            raise InvalidRequest(f"Keyspace {keyspace} does not exist")
        t = ks.tables.get(name)
        if t is None:
            raise InvalidRequest(f"unconfigured table {name}")
        return t

    def user_keyspaces(self):
        return [k for k in self.keyspaces.values() if k.name not in schema.SYSTEM_KEYSPACES and not k.virtual]

    def stored_tables(self):
        for ks in self.keyspaces.values():
            if ks.virtual:
                continue
            for t in ks.tables.values():
                yield t

    def table_dir(self, table):
        return os.path.join(self.config.data_dir, table.keyspace, table.dir_name())

    def emit(self, kind, payload):
        for listener in list(self.listeners):
            try:
                listener(kind, payload)
            except Exception as exc:  # a listener's failure must not fail the write
                self.log(f"WARN event listener failed: {exc}")

    # ---- node state ----
    def _state_path(self):
        return os.path.join(self.config.data_dir, "system", STATE_FILE)

    def load_state(self):
        path = self._state_path()
        if os.path.exists(path):
            with open(path) as f:
                self.state = json.load(f)
        else:
            import random
            tokens = sorted(random.randint(-2 ** 63, 2 ** 63 - 1) for _ in range(self.config.num_tokens))
            self.state = {"host_id": str(uuid.uuid4()), "tokens": [str(t) for t in tokens],
                          "bootstrapped": "NEEDS_BOOTSTRAP", "schema_ts": 0}
        self.state["generation"] = int(time.time())
        self.save_state()

    def save_state(self):
        path = self._state_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, sort_keys=True)
        os.replace(tmp, path)

    @property
    def host_id(self):
        return uuid.UUID(self.state["host_id"])

    # ---- startup ----
    def load(self):
        """Schema from system_schema files, then every table's files, then the commit log."""
        with self.lock:
            for name in SCHEMA_TABLES:
                self._load_table(self.keyspaces["system_schema"].tables[name])
            sch = self.keyspaces["system_schema"].tables
            rows = [list(sch[n].rows.values()) for n in SCHEMA_TABLES]
            for ks in schema.keyspaces_from_rows(*rows).values():
                self.keyspaces[ks.name] = ks
            for t in self.stored_tables():
                if not (t.keyspace == "system_schema" and t.name in SCHEMA_TABLES):
                    self._load_table(t)
            replayed = 0
            for record in self.commitlog.replay():
                try:
                    self._apply_local(record, log=False)
                    replayed += 1
                except InvalidRequest:
                    pass  # the table was dropped since
            if replayed:
                self.log(f"INFO  Replayed {replayed} commit log records")
            self._regenerate_schema_tables()
            self.flush()

    def _load_table(self, table):
        d = self.table_dir(table)
        for gen in storage.list_generations(d):
            path = storage.sstable_paths(d, gen)["Data.db"]
            try:
                header, rows = storage.read_sstable(path)
            except storage.CorruptSSTable as exc:
                raise ServerError(f"Corrupt sstable {exc}")
            names = [c[0] for c in header["columns"]]
            for cells in rows:
                values = {}
                for name, cell in zip(names, cells):
                    if name in table.columns:
                        values[name] = None if cell is None else table.columns[name].type.deserialize(cell)
                if any(values.get(k) is None for k in table.key_columns):
                    continue
                table.rows[table.key_of(values)] = values
        table.dirty = False

    # ---- flush, snapshots ----
    def _next_generation(self, table_dir):
        gens = storage.list_generations(table_dir)
        return (gens[-1] + 1) if gens else 1

    def _flush_table(self, table):
        d = self.table_dir(table)
        old = storage.list_generations(d)
        if not table.dirty and old:
            return
        if not table.rows and not old:
            table.dirty = False
            return
        names = list(table.columns)
        header = {"keyspace": table.keyspace, "table": table.name, "id": str(table.id),
                  "columns": [[n, table.columns[n].type.cql()] for n in names]}
        rows = []
        for _, row in table.ordered_rows():
            rows.append([None if row.get(n) is None else table.columns[n].type.serialize(row[n]) for n in names])
        gen = self._next_generation(d)
        storage.write_sstable(d, gen, header, rows)
        for g in old:
            storage.remove_generation(d, g)
        table.dirty = False

    def flush(self):
        """Writes every changed table to a new generation and drops the commit log."""
        with self.lock:
            for t in self.stored_tables():
                if t.refresh:
                    t.refresh(t)
                self._flush_table(t)
            self.commitlog.discard()

    def _selected_tables(self, keyspaces=None, tables=None):
        for t in self.stored_tables():
            if keyspaces and t.keyspace not in keyspaces:
                continue
            if tables and t.name not in tables:
                continue
            yield t

    def snapshot(self, tag, keyspaces=None, tables=None, skip_flush=False):
        with self.lock:
            if keyspaces:
                for k in keyspaces:
                    if k not in self.keyspaces or self.keyspaces[k].virtual:
                        raise InvalidRequest(f"Keyspace {k} does not exist")
            selected = list(self._selected_tables(keyspaces, tables))
            for t in selected:
                if os.path.exists(os.path.join(self.table_dir(t), "snapshots", tag)):
                    raise InvalidRequest(f"Snapshot {tag} already exists.")
            if not skip_flush:
                self.flush()
            for t in selected:
                self._snapshot_table(t, tag)
            return len(selected)

    def _snapshot_table(self, table, tag):
        d = self.table_dir(table)
        snap = os.path.join(d, "snapshots", tag)
        os.makedirs(snap, exist_ok=True)
        files = []
        for gen in storage.list_generations(d):
            for comp, path in storage.sstable_paths(d, gen).items():
                if os.path.exists(path):
                    os.link(path, os.path.join(snap, os.path.basename(path)))
                    if comp == "Data.db":
                        files.append(os.path.basename(path))
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with open(os.path.join(snap, "manifest.json"), "w") as f:
            json.dump({"files": files, "created_at": now, "expires_at": None, "ephemeral": False}, f)
        with open(os.path.join(snap, "schema.cql"), "w") as f:
            f.write(table.create_cql() + "\n")

    def clear_snapshot(self, tag=None, keyspaces=None):
        with self.lock:
            removed = 0
            for ks_name in os.listdir(self.config.data_dir):
                if keyspaces and ks_name not in keyspaces:
                    continue
                ks_dir = os.path.join(self.config.data_dir, ks_name)
                if not os.path.isdir(ks_dir):
                    continue
                for tdir in os.listdir(ks_dir):
                    snaps = os.path.join(ks_dir, tdir, "snapshots")
                    if not os.path.isdir(snaps):
                        continue
                    for name in os.listdir(snaps):
                        if tag is None or name == tag:
                            shutil.rmtree(os.path.join(snaps, name))
                            removed += 1
            return removed

    def list_snapshots(self):
        """[(tag, keyspace, table dir, size in bytes)]"""
        out = []
        for ks_name in sorted(os.listdir(self.config.data_dir)):
            ks_dir = os.path.join(self.config.data_dir, ks_name)
            if not os.path.isdir(ks_dir):
                continue
            for tdir in sorted(os.listdir(ks_dir)):
                snaps = os.path.join(ks_dir, tdir, "snapshots")
                if os.path.isdir(snaps):
                    for name in sorted(os.listdir(snaps)):
                        out.append((name, ks_name, tdir.rsplit("-", 1)[0],
                                    storage.dir_size(os.path.join(snaps, name))))
        return out

    def refresh_from_disk(self, keyspace, table_name):
        """nodetool refresh: loads files placed in a table's directory."""
        with self.lock:
            t = self.table(keyspace, table_name)
            self._load_table(t)
            t.dirty = True
            self.flush()

    # ---- mutations ----
    def upsert_mutation(self, table, values):
        return {"op": "upsert", "ks": table.keyspace, "t": table.name,
                "row": {c: _hex(table, c, v) for c, v in values.items()}}

    def delete_mutation(self, table, key_prefix, columns=None):
        names = table.key_columns[:len(key_prefix)]
        return {"op": "delete", "ks": table.keyspace, "t": table.name,
                "key": [_hex(table, c, v) for c, v in zip(names, key_prefix)], "cols": columns}

    def truncate_mutation(self, table):
        return {"op": "truncate", "ks": table.keyspace, "t": table.name}

    def apply(self, mutations, replicate=True):
        """Applies mutations here (and logs them); with `replicate`, also on the live peers.
        Returns how many nodes applied them."""
        if not self.accepting_writes:
            raise ServerError("This node was drained and accepts no writes")
        with self.lock:
            for m in mutations:
                self._apply_local(m, log=True)
        acks = 1
        if replicate and self.ring is not None and mutations:
            acks += self.ring.replicate(mutations)
        return acks

    def _apply_local(self, m, log):
        table = self.table(m["ks"], m["t"])
        if log and self.keyspaces[table.keyspace].durable_writes:
            self.commitlog.append(m)
        op = m["op"]
        if op == "upsert":
            values = {c: _unhex(table, c, h) for c, h in m["row"].items() if c in table.columns}
            key = table.key_of(values)
            row = table.rows.setdefault(key, {c: values[c] for c in table.key_columns})
            row.update(values)
        elif op == "delete":
            names = table.key_columns[:len(m["key"])]
            prefix = tuple(_unhex(table, c, h) for c, h in zip(names, m["key"]))
            for key in [k for k in table.rows if k[:len(prefix)] == prefix]:
                if m.get("cols"):
                    for c in m["cols"]:
                        table.rows[key][c] = None
                else:
                    del table.rows[key]
        elif op == "truncate":
            table.rows.clear()
        table.dirty = True

    # ---- schema and roles ----
    def _regenerate_schema_tables(self):
        tables = self.keyspaces["system_schema"].tables
        for name, rows in zip(SCHEMA_TABLES, schema.schema_rows(self.keyspaces)):
            t = tables[name]
            t.rows = {t.key_of(r): r for r in rows}
            t.dirty = True

    def schema_version(self):
        return schema.schema_version(self.keyspaces)

    def schema_changed(self, old_keyspaces, replicate=True, schema_ts=None):
        """After keyspaces changed under the lock: persist, announce the difference, push to peers."""
        with self.lock:
            self._regenerate_schema_tables()
            self._drop_removed_tables(old_keyspaces)
            for t in self.stored_tables():
                os.makedirs(self.table_dir(t), exist_ok=True)
            for name in SCHEMA_TABLES:
                self._flush_table(self.keyspaces["system_schema"].tables[name])
            self.state["schema_ts"] = schema_ts or max(int(time.time() * 1000), self.state.get("schema_ts", 0) + 1)
            self.save_state()
            events = _schema_diff(old_keyspaces, self.keyspaces)
            state = self.export_schema_state() if replicate else None
        for ev in events:
            self.emit("SCHEMA_CHANGE", ev)
        if replicate and self.ring is not None:
            self.ring.push_schema(state)

    def auth_changed(self, replicate=True):
        with self.lock:
            for name in AUTH_TABLES:
                self._flush_table(self.keyspaces["system_auth"].tables[name])
            self.state["schema_ts"] = max(int(time.time() * 1000), self.state.get("schema_ts", 0) + 1)
            self.save_state()
            state = self.export_schema_state() if replicate else None
        if replicate and self.ring is not None:
            self.ring.push_schema(state)

    def _drop_removed_tables(self, old_keyspaces):
        """Data of dropped tables goes to a snapshot (auto_snapshot) and leaves the live directory."""
        for ks in old_keyspaces.values():
            if ks.virtual:
                continue
            for t in ks.tables.values():
                new_ks = self.keyspaces.get(ks.name)
                new_t = new_ks.tables.get(t.name) if new_ks else None
                if new_t is not None and new_t.id == t.id:
                    continue
                d = self.table_dir(t)
                if os.path.isdir(d) and self.config["auto_snapshot"]:
                    self._flush_table(t)
                    self._snapshot_table(t, f"dropped-{int(time.time() * 1000)}-{t.name}")
                for g in storage.list_generations(d):
                    storage.remove_generation(d, g)

    def copy_keyspaces(self):
        """A shallow copy of the schema (tables shared) to diff against after a change."""
        out = {}
        for name, ks in self.keyspaces.items():
            c = schema.Keyspace(ks.name, ks.replication, ks.durable_writes, ks.virtual)
            c.tables = dict(ks.tables)
            out[name] = c
        return out

    def export_schema_state(self):
        """system_schema and system_auth rows, for another node to take over."""
        with self.lock:
            tables = {}
            for ks, names in (("system_schema", SCHEMA_TABLES), ("system_auth", AUTH_TABLES)):
                for n in names:
                    t = self.keyspaces[ks].tables[n]
                    tables[t.full_name] = [{c: _hex(t, c, v) for c, v in row.items()} for row in t.rows.values()]
            return {"schema_ts": self.state.get("schema_ts", 0), "tables": tables}

    def import_schema_state(self, state):
        with self.lock:
            old = self.copy_keyspaces()
            for full, rows in state["tables"].items():
                ks, name = full.split(".", 1)
                t = self.keyspaces[ks].tables[name]
                t.rows = {}
                for r in rows:
                    values = {c: _unhex(t, c, h) for c, h in r.items() if c in t.columns}
                    t.rows[t.key_of(values)] = values
                t.dirty = True
            sch = self.keyspaces["system_schema"].tables
            fresh = schema.keyspaces_from_rows(*[list(sch[n].rows.values()) for n in SCHEMA_TABLES])
            for ks in self.user_keyspaces():
                del self.keyspaces[ks.name]
            for ks in fresh.values():
                prev = old.get(ks.name)
                for t in ks.tables.values():
                    same = prev.tables.get(t.name) if prev else None
                    if same is not None and same.id == t.id:
                        ks.tables[t.name] = same  # keep the rows
                self.keyspaces[ks.name] = ks
            for name in AUTH_TABLES:
                self._flush_table(self.keyspaces["system_auth"].tables[name])
        self.schema_changed(old, replicate=False, schema_ts=state.get("schema_ts"))

    def export_data(self):
        with self.lock:
            out = []
            for ks in self.user_keyspaces():
                for t in ks.tables.values():
                    for row in t.rows.values():
                        out.append(self.upsert_mutation(t, row))
            return out

    def import_data(self, mutations):
        with self.lock:
            for m in mutations:
                try:
                    self._apply_local(m, log=True)
                except InvalidRequest:
                    pass


def _schema_diff(old, new):
    """SCHEMA_CHANGE events (change, target, keyspace, name) between two schemas."""
    events = []
    for name, ks in new.items():
        if ks.virtual:
            continue
        prev = old.get(name)
        if prev is None:
            events.append(("CREATED", "KEYSPACE", name, None))
            events += [("CREATED", "TABLE", name, t) for t in ks.tables]
            continue
        if (prev.replication, prev.durable_writes) != (ks.replication, ks.durable_writes):
            events.append(("UPDATED", "KEYSPACE", name, None))
        for t, table in ks.tables.items():
            if t not in prev.tables:
                events.append(("CREATED", "TABLE", name, t))
            elif prev.tables[t].id != table.id:
                events.append(("DROPPED", "TABLE", name, t))
                events.append(("CREATED", "TABLE", name, t))
        events += [("DROPPED", "TABLE", name, t) for t in prev.tables if t not in ks.tables]
    for name, ks in old.items():
        if name not in new and not ks.virtual:
            events.append(("DROPPED", "KEYSPACE", name, None))
    return events
