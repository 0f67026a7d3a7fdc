"""Ring membership between stand-in nodes: a small JSON-over-TCP protocol on
the storage port (in place of Cassandra's gossip and messaging service) to
join through the seeds, exchange node state every second, replicate writes
and schema, and leave (decommission, removenode). Every node holds every row
of every keyspace; replication factors only decide availability."""
import json
import socket
import threading
import time

from errors import InvalidRequest

GOSSIP_INTERVAL = 1.0
SEND_TIMEOUT = 3.0
DOWN_AFTER_FAILURES = 2
MAX_MESSAGE = 256 * 1024 * 1024


class RingError(Exception):
    pass


class Peer:
    def __init__(self, info, up=False):
        self.info = info
        self.up = up
        self.failures = 0


class Ring:
    def __init__(self, engine, config, log):
        self.engine = engine
        self.config = config
        self.log = log
        self.peers = {}            # listen address -> Peer
        self.lock = threading.Lock()
        self.status = "NORMAL"
        self.stopping = threading.Event()
        self.listener = None

    # ---- who we are ----
    def local_info(self):
        st = self.engine.state
        return {"host_id": st["host_id"], "address": self.config.listen_address,
                "rpc_address": self.config.broadcast_rpc_address, "native_port": self.config.native_port,
                "dc": self.config.dc, "rack": self.config.rack, "tokens": st["tokens"],
                "release_version": __import__("schema").RELEASE_VERSION,
                "schema_version": str(self.engine.schema_version()), "schema_ts": st.get("schema_ts", 0),
                "status": self.status, "cluster_name": self.config["cluster_name"],
                "generation": st["generation"]}

    def peer_list(self):
        with self.lock:
            return [(p.info, p.up) for p in self.peers.values()]

    def live_count(self, dc=None):
        with self.lock:
            n = sum(1 for p in self.peers.values() if p.up and p.info.get("status") == "NORMAL"
                    and (dc is None or p.info.get("dc") == dc))
        return n + 1

    def datacenters(self):
        with self.lock:
            return {self.config.dc} | {p.info.get("dc") for p in self.peers.values()}

    # ---- transport ----
    def start_listener(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.config.listen_address, self.config.storage_port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept_loop, name="storage-accept", daemon=True).start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                conn.settimeout(30)
                msg = json.loads(_read_line(conn))
                reply = self.handle(msg)
            except Exception as exc:  # report any failure to the caller as an error reply
                reply = {"error": str(exc)}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    def send(self, address, msg, timeout=SEND_TIMEOUT):
        with socket.create_connection((address, self.config.storage_port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(json.dumps(msg).encode() + b"\n")
            reply = json.loads(_read_line(s))
        if "error" in reply:
            raise RingError(reply["error"])
        return reply

    # ---- handlers ----
    def handle(self, msg):
        op = msg.get("op")
        if self.status == "LEFT" and op != "ping":
            raise RingError("this node has left the ring")
        if op == "join":
            return self._on_join(msg)
        if op == "gossip":
            self._learn(msg["node"], direct=True)
            for info in msg.get("known", []):
                self._learn(info, direct=False)
            return {"node": self.local_info(), "known": [i for i, _ in self.peer_list()]}
        if op == "mutate":
            self.engine.apply(msg["mutations"], replicate=False)
            return {"ok": True}
        if op == "schema_push":
            if msg["state"]["schema_ts"] >= self.engine.state.get("schema_ts", 0):
                self.engine.import_schema_state(msg["state"])
            return {"ok": True}
        if op == "schema_pull":
            return {"state": self.engine.export_schema_state()}
        if op == "leave":
            self._remove(msg["address"])
            return {"ok": True}
        if op == "ping":
            return {"ok": True}
        raise RingError(f"unknown message {op!r}")

    def _on_join(self, msg):
        node = msg["node"]
        if node["cluster_name"] != self.config["cluster_name"]:
            raise RingError(f"ClusterName mismatch: {node['cluster_name']} != {self.config['cluster_name']}")
        self._learn(node, direct=True)
        reply = {"node": self.local_info(), "known": [i for i, _ in self.peer_list()],
                 "schema": self.engine.export_schema_state()}
        if msg.get("bootstrap"):
            reply["data"] = self.engine.export_data()
        return reply

    def _learn(self, info, direct):
        address = info["address"]
        if address == self.config.listen_address:
            return
        if info.get("status") == "LEFT":
            self._remove(address)
            return
        events = []
        with self.lock:
            p = self.peers.get(address)
            if p is None:
                p = self.peers[address] = Peer(info, up=direct)
                events.append(("TOPOLOGY_CHANGE", ("NEW_NODE", info["rpc_address"], info["native_port"])))
                self.log(f"INFO  Node /{address} is now part of the cluster")
            else:
                was_up = p.up
                if direct or info.get("generation", 0) > p.info.get("generation", 0):
                    p.info = info
                if direct:
                    p.up, p.failures = True, 0
                    if not was_up:
                        events.append(("STATUS_CHANGE", ("UP", info["rpc_address"], info["native_port"])))
                        self.log(f"INFO  InetAddress /{address} is now UP")
        self._peers_changed()
        for kind, payload in events:
            self.engine.emit(kind, payload)

    def _remove(self, address):
        with self.lock:
            p = self.peers.pop(address, None)
        if p is not None:
            self.log(f"INFO  Removing node /{address} from the ring")
            self._peers_changed()
            self.engine.emit("TOPOLOGY_CHANGE", ("REMOVED_NODE", p.info["rpc_address"], p.info["native_port"]))

    def _mark_failed(self, address):
        with self.lock:
            p = self.peers.get(address)
            if p is None:
                return
            p.failures += 1
            went_down = p.up and p.failures >= DOWN_AFTER_FAILURES
            if went_down:
                p.up = False
        if went_down:
            self.log(f"INFO  InetAddress /{address} is now DOWN")
            self.engine.emit("STATUS_CHANGE", ("DOWN", p.info["rpc_address"], p.info["native_port"]))

    def _peers_changed(self):
        with self.engine.lock:
            t = self.engine.keyspaces["system"].tables["peers"]
            if t.refresh:
                t.refresh(t)
            t.dirty = True

    # ---- joining ----
    def restore_peers(self, rows):
        """Peers remembered in system.peers; down until they answer."""
        with self.lock:
            for r in rows:
                info = {"host_id": str(r["host_id"]), "address": r["peer"], "rpc_address": r.get("rpc_address"),
                        "native_port": self.config.native_port, "dc": r.get("data_center"),
                        "rack": r.get("rack"), "tokens": list(r.get("tokens") or ()),
                        "release_version": r.get("release_version"),
                        "schema_version": str(r.get("schema_version")), "schema_ts": 0, "status": "NORMAL",
                        "cluster_name": self.config["cluster_name"], "generation": 0}
                self.peers[r["peer"]] = Peer(info, up=False)

    def join(self, seeds, is_seed, bootstrap, ring_delay):
        """Contacts a seed (or a known peer) and takes over its view, schema and, when bootstrapping,
        its data. Returns True when it reached another node."""
        deadline = time.monotonic() + ring_delay
        while True:
            candidates = [s for s in seeds if s != self.config.listen_address]
            candidates += [a for a, _ in ((i["address"], u) for i, u in self.peer_list()) if a not in candidates]
            for address in candidates:
                try:
                    reply = self.send(address, {"op": "join", "node": self.local_info(), "bootstrap": bootstrap},
                                      timeout=SEND_TIMEOUT if not bootstrap else 60)
                except RingError as exc:
                    raise InvalidRequest(str(exc))
                except (OSError, ValueError):
                    continue
                self._take_join_reply(reply, bootstrap)
                return True
            if is_seed or not bootstrap or time.monotonic() > deadline:
                if is_seed or not bootstrap:
                    return False
                raise RingError(f"Unable to contact any seeds: {seeds}")
            time.sleep(0.5)

    def _take_join_reply(self, reply, bootstrap):
        theirs = reply["schema"]
        if theirs["schema_ts"] > self.engine.state.get("schema_ts", 0) or bootstrap:
            self.engine.import_schema_state(theirs)
        if bootstrap and reply.get("data"):
            self.engine.import_data(reply["data"])
        self._learn(reply["node"], direct=True)
        for info in reply.get("known", []):
            self._learn(info, direct=False)
        self.gossip_once()

    # ---- gossip ----
    def start_gossip(self):
        threading.Thread(target=self._gossip_loop, name="gossip", daemon=True).start()

    def _gossip_loop(self):
        while not self.stopping.wait(GOSSIP_INTERVAL):
            try:
                self.gossip_once()
            except Exception as exc:  # keep gossiping whatever one round did
                self.log(f"WARN gossip round failed: {exc}")

    def gossip_once(self):
        me = self.local_info()
        known = [i for i, _ in self.peer_list()]
        for info in known:
            address = info["address"]
            try:
                reply = self.send(address, {"op": "gossip", "node": me, "known": known + [me]})
            except (OSError, ValueError, RingError):
                self._mark_failed(address)
                continue
            self._learn(reply["node"], direct=True)
            for other in reply.get("known", []):
                self._learn(other, direct=False)
            self._sync_schema(address, reply["node"])

    def _sync_schema(self, address, theirs):
        mine = self.engine.state.get("schema_ts", 0)
        try:
            if theirs.get("schema_ts", 0) > mine:
                self.engine.import_schema_state(self.send(address, {"op": "schema_pull"})["state"])
            elif theirs.get("schema_ts", 0) < mine:
                self.send(address, {"op": "schema_push", "state": self.engine.export_schema_state()})
        except (OSError, ValueError, RingError) as exc:
            self.log(f"WARN schema sync with /{address} failed: {exc}")

    # ---- replication ----
    def _live_addresses(self):
        with self.lock:
            return [a for a, p in self.peers.items() if p.up and p.info.get("status") == "NORMAL"]

    def replicate(self, mutations):
        acks = 0
        for address in self._live_addresses():
            try:
                self.send(address, {"op": "mutate", "mutations": mutations})
                acks += 1
            except (OSError, ValueError, RingError) as exc:
                self.log(f"WARN write to /{address} failed: {exc}")
                self._mark_failed(address)
        return acks

    def push_schema(self, state):
        for address in self._live_addresses():
            try:
                self.send(address, {"op": "schema_push", "state": state})
            except (OSError, ValueError, RingError) as exc:
                self.log(f"WARN schema push to /{address} failed: {exc}")

    # ---- leaving ----
    def decommission(self):
        if self.status != "NORMAL":
            raise RingError(f"Node is {self.status}; cannot decommission")
        others = [a for a, _ in ((i["address"], u) for i, u in self.peer_list())]
        if not self._live_addresses():
            raise RingError("no other normal nodes in the ring; decommission would be pointless")
        self.status = "LEAVING"
        self.log("INFO  DECOMMISSIONING")
        for address in others:
            try:
                self.send(address, {"op": "leave", "address": self.config.listen_address})
            except (OSError, ValueError, RingError):
                pass
        self.status = "LEFT"
        self.stopping.set()
        with self.lock:
            self.peers.clear()
        self._peers_changed()
        self.log("INFO  DECOMMISSIONED")

    def removenode(self, host_id):
        with self.lock:
            match = [a for a, p in self.peers.items() if p.info["host_id"] == host_id]
        if not match:
            if host_id == self.engine.state["host_id"]:
                raise RingError("Cannot remove self")
            raise RingError("Host ID not found.")
        address = match[0]
        with self.lock:
            alive = self.peers[address].up
        if alive:
            raise RingError(f"Node /{address} is alive and owns this ID. Use decommission command to remove it "
                            f"from the ring")
        self._remove(address)
        for other in self._live_addresses():
            try:
                self.send(other, {"op": "leave", "address": address})
            except (OSError, ValueError, RingError):
                pass

    def stop(self):
        self.stopping.set()
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self.listener.close()


def _read_line(sock):
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_MESSAGE:
            raise ValueError("message too large")
    return bytes(buf)
