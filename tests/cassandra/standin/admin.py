"""The admin port nodetool talks to (in place of JMX): one JSON request per
connection, {"command": ..., "args": [...]}, answered with {"ok", "output"}
or {"ok": false, "error"}. Command output follows nodetool's formats."""
import json
import socket
import threading
import time

import schema
import storage

TIMEOUT_TYPES = {"read": "read_request_timeout_in_ms", "range": "range_request_timeout_in_ms",
                 "write": "write_request_timeout_in_ms", "counterwrite": "counter_write_request_timeout_in_ms",
                 "cascontention": "cas_contention_timeout_in_ms", "truncate": "truncate_request_timeout_in_ms",
                 "misc": "request_timeout_in_ms"}
THROUGHPUT = {
    "compactionthroughput": ("compaction_throughput_mb_per_sec", "Current compaction throughput: {} MB/s"),
    "streamthroughput": ("stream_throughput_outbound_megabits_per_sec", "Current stream throughput: {} Mb/s"),
    "interdcstreamthroughput": ("inter_dc_stream_throughput_outbound_megabits_per_sec",
                                "Current inter-datacenter stream throughput: {} Mb/s"),
    "hintedhandoffthrottlekb": ("hinted_handoff_throttle_in_kb", "Current hinted handoff throttle: {} KB"),
    "batchlogreplaythrottle": ("batchlog_replay_throttle_in_kb", "Batchlog replay throttle: {} KB/s"),
}


class CommandError(Exception):
    pass


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.2f} {unit}" if unit != "bytes" else f"{n} bytes"
        n /= 1024


class AdminServer:
    def __init__(self, node, port):
        self.node = node
        self.port = port
        self.sock = None
        self.log_levels = {"ROOT": "INFO", "org.apache.cassandra": "DEBUG"}

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.node.config.listen_address, self.port))
        s.listen(16)
        self.sock = s
        threading.Thread(target=self._loop, name="admin", daemon=True).start()

    def stop(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self.sock.close()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                conn.settimeout(600)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                req = json.loads(data)
                out = self.run(req["command"], [str(a) for a in req.get("args", [])])
                reply = {"ok": True, "output": out}
            except CommandError as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:  # anything else is still the command's failure, reported to nodetool
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass
            if reply.get("ok") and req.get("command") == "stopdaemon":
                self.node.request_stop()

    def run(self, command, args):
        handler = getattr(self, "c_" + command, None)
        if handler is None:
            for prefix in ("set", "get"):
                if command.startswith(prefix) and command[3:] in THROUGHPUT:
                    return self._throughput(prefix, command[3:], args)
            raise CommandError(f"Unknown command {command}")
        return handler(args)

    # ---- ring and node ----
    @property
    def engine(self):
        return self.node.engine

    def c_version(self, args):
        return f"ReleaseVersion: {schema.RELEASE_VERSION}\n"

    def c_status(self, args):
        node, ring = self.node, self.node.ring
        load = _size(storage.dir_size(node.config.data_dir))
        rows = [(node.config.dc, "U" + ("N" if ring.status == "NORMAL" else ring.status[0]),
                 node.config.listen_address, load, len(self.engine.state["tokens"]), self.engine.state["host_id"],
                 node.config.rack)]
        for info, up in ring.peer_list():
            rows.append((info["dc"], ("U" if up else "D") + (info.get("status") or "NORMAL")[0], info["address"],
                         "?", len(info.get("tokens") or []), info["host_id"], info["rack"]))
        out = []
        for dc in sorted({r[0] for r in rows}):
            title = f"Datacenter: {dc}"
            out += [title, "=" * len(title), "Status=Up/Down", "|/ State=Normal/Leaving/Joining/Moving",
                    f"--  {'Address':<15} {'Load':<12} {'Tokens':<7} {'Owns':<8} {'Host ID':<37} Rack"]
            for r in sorted(x for x in rows if x[0] == dc):
                out.append(f"{r[1]:<3} {r[2]:<15} {r[3]:<12} {r[4]:<7} {'?':<8} {r[5]:<37} {r[6]}")
            out.append("")
        out.append("Note: Non-system keyspaces don't have the same replication settings, effective ownership "
                   "information is meaningless")
        return "\n".join(out) + "\n"

    def c_info(self, args):
        node = self.node
        st = self.engine.state
        lines = [("ID", st["host_id"]), ("Gossip active", str(node.ring.status == "NORMAL").lower()),
                 ("Native Transport active", str(node.native.running).lower()),
                 ("Load", _size(storage.dir_size(node.config.data_dir))), ("Generation No", str(st["generation"])),
                 ("Uptime (seconds)", str(int(time.time() - node.started))), ("Data Center", node.config.dc),
                 ("Rack", node.config.rack), ("Exceptions", "0"), ("Token", "(invoke with -T/--tokens to see all "
                                                                             f"{len(st['tokens'])} tokens)")]
        return "".join(f"{k:<23}: {v}\n" for k, v in lines)

    def c_describecluster(self, args):
        node = self.node
        versions = {str(self.engine.schema_version()): [node.config.listen_address]}
        for info, up in node.ring.peer_list():
            key = info.get("schema_version") if up else "UNREACHABLE"
            versions.setdefault(key, []).append(info["address"])
        lines = ["Cluster Information:", f"\tName: {node.config['cluster_name']}",
                 f"\tSnitch: org.apache.cassandra.locator.{node.config.snitch}",
                 "\tDynamicEndPointSnitch: enabled", f"\tPartitioner: {node.config['partitioner']}",
                 "\tSchema versions:"]
        for v, addrs in versions.items():
            lines.append(f"\t\t{v}: [{', '.join(sorted(addrs))}]")
        return "\n".join(lines) + "\n"

    def c_netstats(self, args):
        mode = {"NORMAL": "NORMAL", "LEAVING": "LEAVING", "LEFT": "DECOMMISSIONED"}[self.node.ring.status]
        if self.node.drained:
            mode = "DRAINED"
        return f"Mode: {mode}\nNot sending any streams.\n"

    def c_statusbinary(self, args):
        return "running\n" if self.node.native.running else "not running\n"

    def c_statusgossip(self, args):
        return "running\n" if self.node.ring.status == "NORMAL" else "not running\n"

    def c_disablebinary(self, args):
        self.node.native.stop()
        return ""

    def c_enablebinary(self, args):
        if not self.node.native.running:
            self.node.native.start()
        return ""

    def c_decommission(self, args):
        try:
            self.node.ring.decommission()
        except Exception as exc:
            raise CommandError(str(exc))
        self.node.decommissioned()
        return ""

    def c_removenode(self, args):
        if not args:
            raise CommandError("Missing argument for removenode: <status>|<force>|<ID>")
        if args[0] in ("status", "force"):
            return "RemovalStatus: No removals in process.\n"
        try:
            self.node.ring.removenode(args[0])
        except Exception as exc:
            raise CommandError(str(exc))
        return ""

    def c_drain(self, args):
        self.node.drain()
        return ""

    def c_stopdaemon(self, args):
        return ""

    # ---- data ----
    def _keyspaces_and_tables(self, args):
        if not args:
            return None, None
        return [args[0]], (args[1:] or None)

    def c_flush(self, args):
        ks, tables = self._keyspaces_and_tables(args)
        if ks and ks[0] not in self.engine.keyspaces:
            raise CommandError(f"Keyspace [{ks[0]}] does not exist.")
        self.engine.flush()
        return ""

    def c_snapshot(self, args):
        tag, tables, keyspaces, skip = str(int(time.time() * 1000)), None, [], False
        it = iter(args)
        for a in it:
            if a in ("-t", "--tag"):
                tag = next(it, None)
            elif a in ("-kt", "--kt-list", "-kc", "--kc.list"):
                tables = next(it, "")
            elif a in ("-sf", "--skip-flush"):
                skip = True
            elif a in ("-cf", "--column-family", "--table"):
                tables = next(it, "")
            elif a.startswith("-"):
                raise CommandError(f"Unknown option {a}")
            else:
                keyspaces.append(a)
        if not tag:
            raise CommandError("You must supply a snapshot name.")
        if "/" in tag or tag in (".", ".."):
            raise CommandError(f"Snapshot name cannot contain {'/' if '/' in tag else tag}")
        table_names = None
        if tables:
            table_names = []
            for item in tables.split(","):
                if "." in item:
                    k, t = item.split(".", 1)
                    keyspaces.append(k)
                    table_names.append(t)
                else:
                    table_names.append(item)
        try:
            self.engine.snapshot(tag, sorted(set(keyspaces)) or None, table_names, skip)
        except Exception as exc:
            raise CommandError(getattr(exc, "message", str(exc)))
        what = "[all keyspaces]" if not keyspaces else "[" + ", ".join(sorted(set(keyspaces))) + "]"
        return (f"Requested creating snapshot(s) for {what} with snapshot name [{tag}] and options "
                f"{{skipFlush={str(skip).lower()}}}\nSnapshot directory: {tag}\n")

    def c_clearsnapshot(self, args):
        tag, everything, keyspaces = None, False, []
        it = iter(args)
        for a in it:
            if a == "-t":
                tag = next(it, None)
            elif a == "--all":
                everything = True
            elif a == "--":
                continue
            else:
                keyspaces.append(a)
        if tag is None and not everything:
            raise CommandError("Specify snapshot name or --all")
        if tag is not None and everything:
            raise CommandError("Specify only one of snapshot name or --all")
        self.engine.clear_snapshot(tag, keyspaces or None)
        what = "all snapshots" if everything else f"snapshot [{tag}]"
        return f"Requested clearing {what} for [{', '.join(keyspaces) or 'all keyspaces'}]\n"

    def c_listsnapshots(self, args):
        snaps = self.engine.list_snapshots()
        if not snaps:
            return "Snapshot Details: \nThere are no snapshots\n"
        lines = ["Snapshot Details: ", f"{'Snapshot name':<20} {'Keyspace name':<20} {'Column family name':<25} "
                                       f"{'True size':<12} Size on disk"]
        total = 0
        for tag, ks, table, size in snaps:
            lines.append(f"{tag:<20} {ks:<20} {table:<25} {_size(size):<12} {_size(size)}")
            total += size
        lines.append("")
        lines.append(f"Total TrueDiskSpaceUsed: {_size(total)}")
        return "\n".join(lines) + "\n"

    def c_refresh(self, args):
        if len(args) != 2:
            raise CommandError("refresh requires ks and cf args")
        try:
            self.engine.refresh_from_disk(args[0], args[1])
        except Exception as exc:
            raise CommandError(getattr(exc, "message", str(exc)))
        return ""

    # ---- settings ----
    def _set(self, name, value):
        self.node.config.values[name] = value

    def _int_arg(self, args, what, minimum=0):
        if len(args) != 1:
            raise CommandError(f"{what} requires exactly one argument")
        try:
            v = int(args[0])
        except ValueError:
            raise CommandError(f"{what}: '{args[0]}' is not a number")
        if v < minimum:
            raise CommandError(f"{what} must be at least {minimum}")
        return v

    def _throughput(self, prefix, what, args):
        name, fmt = THROUGHPUT[what]
        if prefix == "set":
            self._set(name, self._int_arg(args, "set" + what))
            return ""
        return fmt.format(self.node.config.values[name]) + "\n"

    def c_setconcurrentcompactors(self, args):
        self._set("concurrent_compactors", self._int_arg(args, "setconcurrentcompactors", 1))
        return ""

    def c_getconcurrentcompactors(self, args):
        return f"Current concurrent compactors in the system is: \n{self.node.config.values['concurrent_compactors']}\n"

    def c_settimeout(self, args):
        if len(args) != 2 or args[0] not in TIMEOUT_TYPES:
            raise CommandError("Timeout type requires one of (" + ", ".join(TIMEOUT_TYPES) + ")")
        self._set(TIMEOUT_TYPES[args[0]], self._int_arg(args[1:], "settimeout"))
        return ""

    def c_gettimeout(self, args):
        if len(args) != 1 or args[0] not in TIMEOUT_TYPES:
            raise CommandError("Timeout type requires one of (" + ", ".join(TIMEOUT_TYPES) + ")")
        return f"Current timeout for type {args[0]}: {self.node.config.values[TIMEOUT_TYPES[args[0]]]} ms\n"

    def c_settraceprobability(self, args):
        try:
            p = float(args[0]) if len(args) == 1 else -1
        except ValueError:
            p = -1
        if not 0 <= p <= 1:
            raise CommandError("Trace probability must be between 0 and 1")
        self.node.trace_probability = p
        return ""

    def c_gettraceprobability(self, args):
        return f"Current trace probability: {self.node.trace_probability}\n"

    def c_setlogginglevel(self, args):
        if not args:
            self.log_levels = {"ROOT": "INFO", "org.apache.cassandra": "DEBUG"}
            return ""
        if len(args) != 2 or args[1].upper() not in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF", "ALL"):
            raise CommandError("setlogginglevel takes a class qualifier and a level (TRACE, DEBUG, INFO, WARN, "
                               "ERROR, OFF, ALL)")
        self.log_levels[args[0] or "ROOT"] = args[1].upper()
        return ""

    def c_getlogginglevels(self, args):
        lines = ["", f"{'Logger Name':<50} {'Log Level':>10}"]
        lines += [f"{k:<50} {v:>10}" for k, v in sorted(self.log_levels.items())]
        return "\n".join(lines) + "\n"
