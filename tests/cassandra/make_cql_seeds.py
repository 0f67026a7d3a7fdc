#!/usr/bin/python3
"""Writes the seed corpus of the CQL decoder's fuzz target (tests/fuzz/cql/):
response frames as the stand-in encodes them (every message kind, every
result kind, every column type the plugin reads, every error code with its
fields, the frame flags) plus a login conversation as one stream and a few
hostile frames. Run it again after changing the stand-in's encoder:

    /usr/bin/python3 tests/cassandra/make_cql_seeds.py
"""
import os
import struct
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "standin"))
sys.dont_write_bytecode = True

import cqltypes  # noqa: E402
import cqlwire  # noqa: E402
import errors  # noqa: E402
from cqltypes import parse_type  # noqa: E402

OUT = os.path.join(HERE, "..", "fuzz", "cql")


def f(stream, opcode, body, flags=0):
    return cqlwire.frame(stream, opcode, body, flags)


def columns(spec, ks="ks", table="t"):
    return [(ks, table, name, parse_type(t)) for name, t in spec]


def seeds():
    out = {}
    sup = cqlwire.string_multimap({"CQL_VERSION": ["3.4.5"], "COMPRESSION": [], "PROTOCOL_VERSIONS": ["4/v4"]})
    out["supported"] = f(1, cqlwire.OP_SUPPORTED, sup)
    out["ready"] = f(2, cqlwire.OP_READY, b"")
    out["authenticate"] = f(2, cqlwire.OP_AUTHENTICATE, cqlwire.string("org.apache.cassandra.auth.PasswordAuthenticator"))
    out["auth_success"] = f(3, cqlwire.OP_AUTH_SUCCESS, cqlwire.bytes_(None))
    out["auth_challenge"] = f(3, cqlwire.OP_AUTH_CHALLENGE, cqlwire.bytes_(b"nonce"))
    out["login_stream"] = out["supported"] + out["authenticate"] + out["auth_success"]

    out["void"] = f(4, cqlwire.OP_RESULT, cqlwire.void_result())
    out["set_keyspace"] = f(4, cqlwire.OP_RESULT, cqlwire.set_keyspace_result("shop"))
    out["schema_keyspace"] = f(4, cqlwire.OP_RESULT, cqlwire.schema_change_result("CREATED", "KEYSPACE", "shop"))
    out["schema_table"] = f(4, cqlwire.OP_RESULT, cqlwire.schema_change_result("DROPPED", "TABLE", "shop", "items"))
    out["schema_function"] = f(4, cqlwire.OP_RESULT, struct.pack(">i", 5) + cqlwire.schema_change_body(
        "UPDATED", "FUNCTION", "shop", "f", ["int", "text"]))

    types = [("name", "text"), ("code", "ascii"), ("n", "int"), ("big", "bigint"), ("ok", "boolean"),
             ("id", "uuid"), ("at", "timestamp"), ("raw", "blob"), ("tags", "list<text>"), ("members", "set<text>"),
             ("opts", "map<text, text>"), ("ratio", "double"), ("f", "float"), ("s", "smallint"), ("b", "tinyint"),
             ("v", "varint"), ("d", "decimal"), ("ip", "inet"), ("day", "date"), ("tm", "time"),
             ("tu", "timeuuid"), ("nested", "map<text, frozen<list<int>>>")]
    import decimal
    row = ["h\u00e9", "AB", -7, 1 << 40, True, uuid.UUID(int=0x1234), 1700000000123, b"\0\1\xff",
           ("x", "yz"), ("a", "b"), (("k", "v"),), 1.5, 0.25, -3, 7, 10 ** 20, decimal.Decimal("3.14"), "10.0.0.1",
           19000, 3600 * 10 ** 9, uuid.UUID("e7d0c8a0-0000-11ee-8000-000000000001"), (("a", (1, 2)),)]
    cols = columns(types)
    out["rows_all_types"] = f(5, cqlwire.OP_RESULT, cqlwire.rows_result(cols, [row, [None] * len(row)]))
    local = columns([("key", "text"), ("release_version", "text"), ("tokens", "set<text>")], "system", "local")
    out["rows_system_local"] = f(6, cqlwire.OP_RESULT, cqlwire.rows_result(local, [["local", "4.0.11", ("1", "2")]]))
    mixed = [("system", "local", "key", cqltypes.TEXT), ("system", "peers", "peer", cqltypes.INET)]
    out["rows_per_column_spec"] = f(6, cqlwire.OP_RESULT, cqlwire.rows_result(mixed, [["a", "127.0.0.2"]],
                                                                             paging_state=b"\0\0\0\3state"))
    out["rows_no_metadata"] = f(6, cqlwire.OP_RESULT, cqlwire.rows_result(local, [["local", "4", ("1",)]],
                                                                         no_metadata=True))
    roles = columns([("role", "text"), ("super", "boolean"), ("login", "boolean"), ("options", "map<text, text>")],
                    "system_auth", "roles")
    out["rows_list_roles"] = f(7, cqlwire.OP_RESULT, cqlwire.rows_result(
        roles, [["cassandra", True, True, ()], ["app", False, True, ()]]))
    out["rows_empty"] = f(7, cqlwire.OP_RESULT, cqlwire.rows_result(roles, []))
    bind = columns([("id", "int"), ("name", "text")])
    out["prepared"] = f(8, cqlwire.OP_RESULT, cqlwire.prepared_result(b"\x01" * 16, bind, [0], columns(
        [("name", "text")])))
    out["prepared_no_result"] = f(8, cqlwire.OP_RESULT, cqlwire.prepared_result(b"\x02" * 16, bind, [], []))
    out["flags_all"] = f(9, cqlwire.OP_RESULT, b"T" * 16 + cqlwire.string_list(["warned"]) + struct.pack(">H", 1) +
                         cqlwire.string("k") + cqlwire.bytes_(b"v") + cqlwire.void_result(),
                         cqlwire.FLAG_TRACING | cqlwire.FLAG_WARNING | cqlwire.FLAG_CUSTOM_PAYLOAD)

    errs = [errors.ServerError("boom"), errors.ProtocolError("Invalid or unsupported protocol version (5)"),
            errors.BadCredentials("Provided username x and/or password are incorrect"),
            errors.Unavailable(4, 2, 1), errors.Overloaded("busy"), errors.IsBootstrapping("wait"),
            errors.TruncateError("no"), errors.WriteTimeout("timed out", 1, 0, 1, "SIMPLE"),
            errors.ReadTimeout("timed out", 1, 0, 1, True), errors.SyntaxError_("line 1:0 no viable alternative"),
            errors.Unauthorized("User u has no SELECT permission on <keyspace k> or any of its parents"),
            errors.InvalidRequest("unconfigured table peers_v2"), errors.ConfigurationException("bad"),
            errors.AlreadyExists("shop"), errors.AlreadyExists("shop", "items"), errors.Unprepared(b"\x07" * 16)]
    for e in errs:
        out[f"error_{e.code:04x}_{type(e).__name__.lower().strip('_')}{'_t' if getattr(e, 'table', '') else ''}"] = \
            f(10, cqlwire.OP_ERROR, e.body())
    out["error_read_failure"] = f(10, cqlwire.OP_ERROR, struct.pack(">i", 0x1300) + cqlwire.string("failed") +
                                  struct.pack(">HiiiB", 1, 0, 1, 1, 0))
    out["error_write_failure"] = f(10, cqlwire.OP_ERROR, struct.pack(">i", 0x1500) + cqlwire.string("failed") +
                                   struct.pack(">Hiii", 1, 0, 1, 1) + cqlwire.string("SIMPLE"))
    out["error_function_failure"] = f(10, cqlwire.OP_ERROR, struct.pack(">i", 0x1400) + cqlwire.string("f") +
                                      cqlwire.string("ks") + cqlwire.string("fn") + cqlwire.string_list(["int"]))
    out["event_then_result"] = f(-1, cqlwire.OP_EVENT, cqlwire.schema_change_event("CREATED", "KEYSPACE", "x")) + \
        out["void"]

    # hostile: claims the frame cannot hold
    out["hostile_row_count"] = f(11, cqlwire.OP_RESULT, struct.pack(">iii", 2, 1, 1) + cqlwire.string("k") +
                                 cqlwire.string("t") + cqlwire.string("c") + struct.pack(">Hi", 0x0D, 0x7FFFFFFF))
    out["hostile_truncated"] = out["rows_all_types"][:len(out["rows_all_types"]) // 2]
    deep = struct.pack(">H", 0x20) * 30 + struct.pack(">H", 0x09)
    out["hostile_deep_type"] = f(12, cqlwire.OP_RESULT, struct.pack(">iii", 2, 1, 1) + cqlwire.string("k") +
                                 cqlwire.string("t") + cqlwire.string("c") + deep + struct.pack(">i", 0))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    made = seeds()
    for name, data in sorted(made.items()):
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(data)
    print(f"{len(made)} seeds in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
