"""Keyspaces, tables and columns: the in-memory schema and its rows, the
system tables Cassandra 4.0 has (with their real columns, so drivers can read
them), and the translation between the schema and the system_schema tables
that store it."""
import hashlib
import uuid

import cqltypes
from cqltypes import parse_type

RELEASE_VERSION = "4.0.11"
CQL_VERSION = "3.4.5"

LOCAL_KEYSPACES = ("system", "system_schema")
VIRTUAL_KEYSPACES = ("system_views", "system_virtual_schema")
SYSTEM_KEYSPACES = ("system", "system_schema", "system_auth", "system_distributed", "system_traces")

SYSTEM_REPLICATION = {
    "system": {"class": "org.apache.cassandra.locator.LocalStrategy"},
    "system_schema": {"class": "org.apache.cassandra.locator.LocalStrategy"},
    "system_auth": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "1"},
    "system_distributed": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"},
    "system_traces": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "2"},
}

# (keyspace, table, columns as "name type" items, partition key, clustering)
SYSTEM_TABLES = [
    ("system", "local", "key text, bootstrapped text, broadcast_address inet, broadcast_port int, cluster_name text, "
     "cql_version text, data_center text, gossip_generation int, host_id uuid, listen_address inet, "
     "listen_port int, native_protocol_version text, partitioner text, rack text, release_version text, "
     "rpc_address inet, rpc_port int, schema_version uuid, tokens set<text>, truncated_at map<uuid, blob>",
     ["key"], []),
    ("system", "peers", "peer inet, data_center text, host_id uuid, preferred_ip inet, rack text, "
     "release_version text, rpc_address inet, schema_version uuid, tokens set<text>", ["peer"], []),
    ("system_schema", "keyspaces", "keyspace_name text, durable_writes boolean, replication frozen<map<text, text>>",
     ["keyspace_name"], []),
    ("system_schema", "tables", "keyspace_name text, table_name text, additional_write_policy text, "
     "bloom_filter_fp_chance double, caching frozen<map<text, text>>, cdc boolean, comment text, "
     "compaction frozen<map<text, text>>, compression frozen<map<text, text>>, crc_check_chance double, "
     "dclocal_read_repair_chance double, default_time_to_live int, extensions frozen<map<text, blob>>, "
     "flags frozen<set<text>>, gc_grace_seconds int, id uuid, max_index_interval int, "
     "memtable_flush_period_in_ms int, min_index_interval int, read_repair text, read_repair_chance double, "
     "speculative_retry text", ["keyspace_name"], ["table_name"]),
    ("system_schema", "columns", "keyspace_name text, table_name text, column_name text, clustering_order text, "
     "column_name_bytes blob, kind text, position int, type text", ["keyspace_name"], ["table_name", "column_name"]),
    ("system_schema", "dropped_columns", "keyspace_name text, table_name text, column_name text, dropped_time timestamp, "
     "kind text, type text", ["keyspace_name"], ["table_name", "column_name"]),
    ("system_schema", "types", "keyspace_name text, type_name text, field_names frozen<list<text>>, "
     "field_types frozen<list<text>>", ["keyspace_name"], ["type_name"]),
    ("system_schema", "functions", "keyspace_name text, function_name text, argument_types frozen<list<text>>, "
     "argument_names frozen<list<text>>, body text, called_on_null_input boolean, language text, return_type text",
     ["keyspace_name"], ["function_name", "argument_types"]),
    ("system_schema", "aggregates", "keyspace_name text, aggregate_name text, argument_types frozen<list<text>>, "
     "final_func text, initcond text, return_type text, state_func text, state_type text",
     ["keyspace_name"], ["aggregate_name", "argument_types"]),
    ("system_schema", "triggers", "keyspace_name text, table_name text, trigger_name text, "
     "options frozen<map<text, text>>", ["keyspace_name"], ["table_name", "trigger_name"]),
    ("system_schema", "views", "keyspace_name text, view_name text, base_table_id uuid, base_table_name text, "
     "bloom_filter_fp_chance double, caching frozen<map<text, text>>, comment text, "
     "compaction frozen<map<text, text>>, compression frozen<map<text, text>>, default_time_to_live int, "
     "extensions frozen<map<text, blob>>, gc_grace_seconds int, id uuid, include_all_columns boolean, "
     "speculative_retry text, where_clause text", ["keyspace_name"], ["view_name"]),
    ("system_schema", "indexes", "keyspace_name text, table_name text, index_name text, kind text, "
     "options frozen<map<text, text>>", ["keyspace_name"], ["table_name", "index_name"]),
    ("system_auth", "roles", "role text, can_login boolean, is_superuser boolean, member_of set<text>, "
     "salted_hash text", ["role"], []),
    ("system_auth", "role_members", "role text, member text", ["role"], ["member"]),
    ("system_auth", "role_permissions", "role text, resource text, permissions set<text>", ["role"], ["resource"]),
    ("system_auth", "resource_role_permissons_index", "resource text, role text", ["resource"], ["role"]),
    ("system_auth", "network_permissions", "role text, dcs frozen<set<text>>", ["role"], []),
    ("system_distributed", "repair_history", "keyspace_name text, columnfamily_name text, id timeuuid, "
     "coordinator inet, exception_message text, finished_at timestamp, started_at timestamp, status text",
     ["keyspace_name", "columnfamily_name"], ["id"]),
    ("system_distributed", "view_build_status", "keyspace_name text, view_name text, host_id uuid, status text",
     ["keyspace_name", "view_name"], ["host_id"]),
    ("system_traces", "sessions", "session_id uuid, client inet, command text, coordinator inet, duration int, "
     "request text, started_at timestamp", ["session_id"], []),
    ("system_traces", "events", "session_id uuid, event_id timeuuid, activity text, source inet, "
     "source_elapsed int, thread text", ["session_id"], ["event_id"]),
    ("system_views", "settings", "name text, value text", ["name"], []),
    ("system_virtual_schema", "keyspaces", "keyspace_name text", ["keyspace_name"], []),
    ("system_virtual_schema", "tables", "keyspace_name text, table_name text, comment text",
     ["keyspace_name"], ["table_name"]),
    ("system_virtual_schema", "columns", "keyspace_name text, table_name text, column_name text, "
     "clustering_order text, column_name_bytes blob, kind text, position int, type text",
     ["keyspace_name"], ["table_name", "column_name"]),
]

DEFAULT_TABLE_OPTIONS = {
    "additional_write_policy": "99p", "bloom_filter_fp_chance": 0.01,
    "caching": {"keys": "ALL", "rows_per_partition": "NONE"}, "cdc": False, "comment": "",
    "compaction": {"class": "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                   "max_threshold": "32", "min_threshold": "4"},
    "compression": {"chunk_length_in_kb": "16", "class": "org.apache.cassandra.io.compress.LZ4Compressor"},
    "crc_check_chance": 1.0, "dclocal_read_repair_chance": 0.0, "default_time_to_live": 0, "extensions": {},
    "flags": ["compound"], "gc_grace_seconds": 864000, "max_index_interval": 2048,
    "memtable_flush_period_in_ms": 0, "min_index_interval": 128, "read_repair": "BLOCKING",
    "read_repair_chance": 0.0, "speculative_retry": "99p",
}
SETTABLE_TABLE_OPTIONS = set(DEFAULT_TABLE_OPTIONS) - {"flags", "dclocal_read_repair_chance", "read_repair_chance"}


def split_columns(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return [tuple(item.split(" ", 1)) for item in out]


class Column:
    def __init__(self, name, typ, kind, position=-1, order="none"):
        self.name, self.type, self.kind, self.position, self.order = name, typ, kind, position, order


class Table:
    def __init__(self, keyspace, name, columns, partition_key, clustering, table_id=None, options=None,
                 orders=None):
        self.keyspace, self.name = keyspace, name
        self.id = table_id or uuid.uuid1()
        self.options = dict(DEFAULT_TABLE_OPTIONS)
        self.options.update(options or {})
        orders = orders or {}
        self.columns = {}
        kinds = {}
        for i, c in enumerate(partition_key):
            kinds[c] = ("partition_key", i, "none")
        for i, c in enumerate(clustering):
            kinds[c] = ("clustering", i, orders.get(c, "asc"))
        for name_, typ, static in columns:
            kind, pos, order = kinds.get(name_, ("static" if static else "regular", -1, "none"))
            self.columns[name_] = Column(name_, typ, kind, pos, order)
        self.pk = list(partition_key)
        self.ck = list(clustering)
        self.rows = {}
        self.dirty = False
        self.refresh = None  # callable(table) that rebuilds rows of a computed table before a read

    @property
    def full_name(self):
        return f"{self.keyspace}.{self.name}"

    @property
    def key_columns(self):
        return self.pk + self.ck

    def star_columns(self):
        rest = sorted(c for c, col in self.columns.items() if col.kind in ("regular", "static"))
        return self.pk + self.ck + rest

    def dir_name(self):
        return f"{self.name}-{self.id.hex}"

    def key_of(self, values):
        return tuple(values[c] for c in self.key_columns)

    def partition_token(self, key):
        raw = b"".join(self.columns[c].type.serialize(v) for c, v in zip(self.pk, key))
        return hashlib.md5(raw).digest()

    def ordered_rows(self):
        items = list(self.rows.items())
        for i in reversed(range(len(self.ck))):
            col = self.columns[self.ck[i]]
            pos = len(self.pk) + i
            items.sort(key=lambda kv: col.type.sort_key(kv[0][pos]), reverse=col.order == "desc")
        items.sort(key=lambda kv: self.partition_token(kv[0]))
        return items

    def row_cells(self, row, names):
        return [row.get(n) for n in names]

    def create_cql(self):
        cols = ", ".join(f'"{c.name}" {c.type.cql()}' + (" static" if c.kind == "static" else "")
                         for c in self.columns.values())
        pk = ", ".join(f'"{c}"' for c in self.pk)
        pk = f"({pk})" if len(self.pk) > 1 or self.ck else pk
        if self.ck:
            pk += ", " + ", ".join(f'"{c}"' for c in self.ck)
        out = f'CREATE TABLE IF NOT EXISTS "{self.keyspace}"."{self.name}" ({cols}, PRIMARY KEY ({pk}))'
        props = [f"ID = {self.id}"]
        if self.ck:
            order = ", ".join(f'"{c}" {self.columns[c].order.upper()}' for c in self.ck)
            props.append(f"CLUSTERING ORDER BY ({order})")
        return out + " WITH " + " AND ".join(props) + ";"


class Keyspace:
    def __init__(self, name, replication, durable_writes=True, virtual=False):
        self.name = name
        self.replication = dict(replication)
        self.durable_writes = durable_writes
        self.virtual = virtual
        self.tables = {}

    def create_cql(self):
        rep = ", ".join(f"'{k}': '{v}'" for k, v in sorted(self.replication.items()))
        return (f'CREATE KEYSPACE IF NOT EXISTS "{self.name}" WITH replication = {{{rep}}} AND durable_writes = '
                f'{"true" if self.durable_writes else "false"};')


def system_table_id(keyspace, table):
    return uuid.uuid3(uuid.NAMESPACE_OID, f"{keyspace}.{table}")


def build_system_keyspaces():
    keyspaces = {}
    for ks, table, cols, pk, ck in SYSTEM_TABLES:
        if ks not in keyspaces:
            keyspaces[ks] = Keyspace(ks, SYSTEM_REPLICATION.get(ks, {}), virtual=ks in VIRTUAL_KEYSPACES)
        columns = [(n, parse_type(t), False) for n, t in split_columns(cols)]
        keyspaces[ks].tables[table] = Table(ks, table, columns, pk, ck, system_table_id(ks, table))
    return keyspaces


# ---- schema <-> system_schema rows ----

def _map(d):
    return tuple(sorted((str(k), str(v)) for k, v in d.items()))


def schema_rows(keyspaces):
    """Rows (dicts) for system_schema.keyspaces, .tables and .columns."""
    ks_rows, table_rows, col_rows = [], [], []
    for ks in keyspaces.values():
        if ks.virtual:
            continue
        ks_rows.append({"keyspace_name": ks.name, "durable_writes": ks.durable_writes,
                        "replication": _map(ks.replication)})
        for t in ks.tables.values():
            row = {"keyspace_name": ks.name, "table_name": t.name, "id": t.id}
            for k, v in t.options.items():
                if k in ("caching", "compaction", "compression"):
                    v = _map(v)
                elif k == "extensions":
                    v = tuple(sorted((str(a), bytes(b)) for a, b in v.items()))
                elif k == "flags":
                    v = tuple(sorted(v))
                row[k] = v
            table_rows.append(row)
            for c in t.columns.values():
                col_rows.append({"keyspace_name": ks.name, "table_name": t.name, "column_name": c.name,
                                 "clustering_order": c.order, "column_name_bytes": c.name.encode(),
                                 "kind": c.kind, "position": c.position, "type": c.type.cql()})
    return ks_rows, table_rows, col_rows


def virtual_schema_rows(keyspaces):
    ks_rows, table_rows, col_rows = [], [], []
    for ks in keyspaces.values():
        if not ks.virtual:
            continue
        ks_rows.append({"keyspace_name": ks.name})
        for t in ks.tables.values():
            table_rows.append({"keyspace_name": ks.name, "table_name": t.name, "comment": ""})
            for c in t.columns.values():
                col_rows.append({"keyspace_name": ks.name, "table_name": t.name, "column_name": c.name,
                                 "clustering_order": c.order, "column_name_bytes": c.name.encode(),
                                 "kind": c.kind, "position": c.position, "type": c.type.cql()})
    return ks_rows, table_rows, col_rows


def keyspaces_from_rows(ks_rows, table_rows, col_rows):
    """The user keyspaces described by system_schema rows (system ones are built in)."""
    out = {}
    for r in ks_rows:
        if r["keyspace_name"] in SYSTEM_KEYSPACES:
            continue
        out[r["keyspace_name"]] = Keyspace(r["keyspace_name"], dict(r.get("replication") or ()),
                                           bool(r.get("durable_writes", True)))
    cols_by_table = {}
    for c in col_rows:
        cols_by_table.setdefault((c["keyspace_name"], c["table_name"]), []).append(c)
    for r in table_rows:
        ks = out.get(r["keyspace_name"])
        if ks is None:
            continue
        cols = cols_by_table.get((ks.name, r["table_name"]), [])
        pk = [c["column_name"] for c in sorted((c for c in cols if c["kind"] == "partition_key"),
                                               key=lambda c: c["position"])]
        ck = [c["column_name"] for c in sorted((c for c in cols if c["kind"] == "clustering"),
                                               key=lambda c: c["position"])]
        orders = {c["column_name"]: c["clustering_order"] for c in cols if c["kind"] == "clustering"}
        columns = [(c["column_name"], parse_type(c["type"]), c["kind"] == "static") for c in cols]
        options = {}
        for k in DEFAULT_TABLE_OPTIONS:
            if r.get(k) is None:
                continue
            v = r[k]
            if k in ("caching", "compaction", "compression", "extensions"):
                v = dict(v)
            elif k == "flags":
                v = list(v)
            options[k] = v
        ks.tables[r["table_name"]] = Table(ks.name, r["table_name"], columns, pk, ck, r["id"], options, orders)
    return out


def schema_version(keyspaces):
    """A UUID digest of the schema, equal on nodes that agree."""
    h = hashlib.md5()
    for rows in schema_rows(keyspaces):
        for row in sorted(rows, key=lambda r: repr(sorted(r.items(), key=lambda kv: kv[0]))):
            h.update(repr(sorted(row.items(), key=lambda kv: kv[0])).encode())
    return uuid.UUID(bytes=h.digest(), version=3)


TEXT = cqltypes.TEXT
