"""Replica set membership (protocol version 1, simplified): the config in
local.system.replset, terms and votes in local.replset.election, the oplog
in local.oplog.rs, heartbeats between members, elections (dry run, then a
real vote), step down with election handoff, and a secondary that clones
then tails its primary's oplog over the wire. No rollback, arbiters,
chaining, priority takeover or delayed members.
Every method that touches state is called with the server lock held unless
its name says otherwise (*_unlocked) or it is a thread body.
"""
import datetime
import random
import socket
import threading
import time

from .bsoncodec import DateTime, Int64, ObjectId, RawDocument, Timestamp, encode
from .client import PeerClient, PeerError, split_host
from .errors import MongoError, not_supported

STARTUP, PRIMARY, SECONDARY, RECOVERING, STARTUP2, UNKNOWN, ARBITER, DOWN, ROLLBACK, REMOVED = \
    0, 1, 2, 3, 5, 6, 7, 8, 9, 10
STATE_NAMES = {0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 3: "RECOVERING", 5: "STARTUP2", 6: "UNKNOWN",
               7: "ARBITER", 8: "(not reachable/healthy)", 9: "ROLLBACK", 10: "REMOVED"}
NULL_OPTIME = {"ts": Timestamp(0, 0), "t": Int64(-1)}
CONFIG_COLLECTION = ("local", "system.replset")
ELECTION_COLLECTION = ("local", "replset.election")
OPLOG = ("local", "oplog.rs")
DEFAULT_SETTINGS = {"chainingAllowed": True, "heartbeatIntervalMillis": 2000, "heartbeatTimeoutSecs": 10,
                    "electionTimeoutMillis": 10000, "catchUpTimeoutMillis": -1, "catchUpTakeoverDelayMillis": 30000,
                    "getLastErrorModes": {}, "getLastErrorDefaults": {"w": 1, "wtimeout": 0}}
MEMBER_DEFAULTS = {"arbiterOnly": False, "buildIndexes": True, "hidden": False, "priority": 1.0, "tags": {},
                   "secondaryDelaySecs": Int64(0), "votes": 1}


def optime_key(optime):
    ts = optime["ts"]
    return (int(optime["t"]), ts.time, ts.inc)


def optime_of(entry):
    return {"ts": entry["ts"], "t": Int64(entry.get("t", -1))}


def optime_date(optime):
    return DateTime(optime["ts"].time * 1000)


def _iso_local(now=None):
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


class Member:
    """What heartbeats tell us about another member."""

    def __init__(self, member_id, host):
        self.id = member_id
        self.host = host
        self.health = None
        self.state = STARTUP
        self.applied = dict(NULL_OPTIME)
        self.last_ok = None
        self.last_heartbeat = None
        self.last_heartbeat_recv = None
        self.message = ""
        self.config_version = -2
        self.config_term = -1
        self.election_time = None
        self.up_since = None
        self.ping_ms = 0
        self.sync_source = ""


class ReplicationCoordinator:
    def __init__(self, server, set_name):
        self.server = server
        self.set_name = set_name
        self.config = None
        self.self_id = None
        self.state = STARTUP
        self.term = 0
        self.last_vote = {"term": -1, "candidateIndex": -1}
        self.applied = dict(NULL_OPTIME)
        self.commit_point = dict(NULL_OPTIME)
        self.clock = Timestamp(0, 0)
        self.election_time = None
        self.election_id = None
        self.members = {}
        self.primary_id = None
        self.step_down_until = 0.0
        self.stepping_down = False
        self.last_primary_contact = time.monotonic()
        self.initial_sync_needed = False
        self.sync_source = ""
        self.sync_message = ""
        self.stop_event = threading.Event()
        self.workers = {}
        self.wake = threading.Event()
        self.electing = False
        self.key = None

    # ---- persistence ----

    def load(self):
        storage = self.server.storage
        coll = storage.get(*CONFIG_COLLECTION)
        if coll is not None and coll.records:
            self.config = next(iter(coll.records.values())).doc
        coll = storage.get(*ELECTION_COLLECTION)
        if coll is not None and coll.records:
            doc = next(iter(coll.records.values())).doc
            self.term = int(doc.get("term", 0))
            self.last_vote = {"term": int(doc.get("term", -1)), "candidateIndex": int(doc.get("candidateIndex", -1))}
        oplog = storage.get(*OPLOG)
        if oplog is not None and oplog.records:
            last = oplog.records[next(reversed(oplog.records))].doc
            self.applied = optime_of(last)
            self.clock = last["ts"]
            self.term = max(self.term, int(last.get("t", 0)))
        if self.config is not None:
            if self.config.get("_id") != self.set_name:
                raise MongoError(93, f"local.system.replset has a config for set {self.config.get('_id')}, "
                                     f"but the command line says {self.set_name}")
            self._adopt_config(self.config)
            if self.self_id is not None:
                self.state = SECONDARY if oplog is not None and oplog.records else STARTUP2
                self.initial_sync_needed = self.state == STARTUP2
            else:
                # mongod: "Locally stored replica set configuration does not have a valid entry for the
                # current node; waiting for reconfig or remote heartbeat" -- a copy of another member's
                # data stays REMOVED until a member's heartbeat brings a config that includes it.
                self.state = REMOVED
        self.commit_point = dict(self.applied) if self._voters() == [self.self_id] else dict(NULL_OPTIME)
        self.key = self.server.key

    def _persist_config(self):
        self._replace_single(CONFIG_COLLECTION, self.config)

    def _persist_election(self):
        self._replace_single(ELECTION_COLLECTION, {"_id": "election", "term": Int64(self.last_vote["term"]),
                                                   "candidateIndex": Int64(self.last_vote["candidateIndex"])})

    def _replace_single(self, ns, doc):
        storage = self.server.storage
        coll = storage.get(*ns) or storage.create(*ns, {})
        for rid in list(coll.records):
            coll.delete(rid)
        coll.insert(doc)
        storage.commit()

    def _oplog(self):
        storage = self.server.storage
        coll = storage.get(*OPLOG)
        if coll is None:
            size = int(self.server.options.get("replication.oplogSizeMB", 990)) * 1024 * 1024
            coll = storage.create(*OPLOG, {"capped": True, "size": size, "autoIndexId": False}, id_index=False)
        return coll

    # ---- config ----

    def _adopt_config(self, config):
        self.config = config
        self.self_id = None
        for m in config["members"]:
            if self._is_self(m["host"]):
                self.self_id = m["_id"]
        old = self.members
        self.members = {}
        for m in config["members"]:
            if m["_id"] != self.self_id:
                prev = old.get(m["_id"])
                self.members[m["_id"]] = prev if prev is not None and prev.host == m["host"] else Member(
                    m["_id"], m["host"])
        self._sync_workers()

    def _is_self(self, host):
        try:
            name, port = split_host(host)
        except PeerError:
            return False
        if port != self.server.port:
            return False
        local_names = {"localhost", socket.gethostname(), socket.getfqdn()}
        if name in local_names:
            return True
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, port, proto=socket.IPPROTO_TCP)}
        except OSError:
            return False
        bound = set(self.server._bind_addresses())
        for address in addresses:
            if address in bound or address.startswith("127.") or address == "::1" or "0.0.0.0" in bound:
                return True
        return False

    def member_config(self, member_id):
        for m in self.config["members"]:
            if m["_id"] == member_id:
                return m
        return None

    def self_config(self):
        return self.member_config(self.self_id) if self.self_id is not None else None

    def self_host(self):
        m = self.self_config()
        return m["host"] if m else self.server.host_name

    def _voters(self):
        if self.config is None:
            return []
        return [m["_id"] for m in self.config["members"] if m.get("votes", 1) and not m.get("newlyAdded")]

    def _settings(self):
        return (self.config or {}).get("settings", DEFAULT_SETTINGS)

    def _electable(self):
        me = self.self_config()
        return (me is not None and me.get("priority", 1) > 0 and me.get("votes", 1) and not me.get("newlyAdded")
                and time.monotonic() >= self.step_down_until)

    def normalize_config(self, raw, for_initiate, force=False):
        """Validate a config document and fill in mongod's defaults. Raises MongoError."""
        if not isinstance(raw, dict):
            raise MongoError(93, "replica set configuration must be an object")
        known = {"_id", "version", "term", "protocolVersion", "members", "settings", "writeConcernMajorityJournalDefault",
                 "configsvr"}
        for key in raw:
            if key not in known:
                raise MongoError(93, f"Unexpected field {key} in replica set configuration")
        if raw.get("configsvr"):
            raise not_supported("config server replica sets")
        name = raw.get("_id")
        if name != self.set_name:
            if for_initiate:
                raise MongoError(93, f"Rejecting initiate with a set name that differs from command line set name, "
                                     f"initiate set name: {name}, command line set name: {self.set_name}")
            raise MongoError(103, f"New and old configurations differ in replica set name; old was "
                                  f"{self.set_name}, and new is {name}")
        version = raw.get("version", 1)
        if type(version) not in (int, Int64, float) or int(version) < 1:
            raise MongoError(93, "version field value of {} is out of range".format(version))
        if int(raw.get("protocolVersion", 1)) != 1:
            raise MongoError(93, "Only protocolVersion 1 is supported")
        members = raw.get("members")
        if not isinstance(members, list) or not members:
            raise MongoError(93, "Replica set configuration must contain at least one member")
        out_members, ids, hosts = [], set(), set()
        for m in members:
            out_members.append(self._normalize_member(m, ids, hosts))
        voters = [m for m in out_members if m["votes"]]
        if len(voters) > 7:
            raise MongoError(93, f"Replica set configuration contains {len(voters)} voting members, but must be at "
                                 f"least 1 and no more than 7")
        if not voters:
            raise MongoError(93, "Replica set configuration must contain at least one voting member")
        if len(out_members) > 50:
            raise MongoError(93, "Replica set configuration contains more than 50 members")
        selves = [m for m in out_members if self._is_self(m["host"])]
        term = self.term if not force else -1
        if len(selves) != 1:
            code = 93 if for_initiate else 74
            raise MongoError(code, f"No host described in new configuration with {{version: {int(version)}, term: "
                                   f"{term}}} for replica set {self.set_name} maps to this node")
        settings = dict(DEFAULT_SETTINGS)
        given = raw.get("settings") or {}
        if not isinstance(given, dict):
            raise MongoError(93, "settings must be an object")
        for key, value in given.items():
            if key == "replicaSetId":
                continue
            if key not in DEFAULT_SETTINGS:
                raise MongoError(93, f"Unexpected field {key} in replica set settings")
            if key in ("getLastErrorModes", "getLastErrorDefaults") and value != DEFAULT_SETTINGS[key]:
                raise not_supported(f"settings.{key}")
            settings[key] = value
        for key in ("heartbeatIntervalMillis", "electionTimeoutMillis", "heartbeatTimeoutSecs"):
            if type(settings[key]) not in (int, Int64, float) or settings[key] <= 0:
                raise MongoError(93, f"{key} field value must be positive")
        current_id = (self.config or {}).get("settings", {}).get("replicaSetId")
        settings["replicaSetId"] = given.get("replicaSetId") or current_id or ObjectId()
        return {"_id": name, "version": int(version), "term": term, "protocolVersion": Int64(1),
                "writeConcernMajorityJournalDefault": True, "members": out_members, "settings": settings}

    def _normalize_member(self, m, ids, hosts):
        if not isinstance(m, dict):
            raise MongoError(93, "each member must be an object")
        allowed = set(MEMBER_DEFAULTS) | {"_id", "host", "slaveDelay"}
        for key in m:
            if key not in allowed:
                raise MongoError(93, f"Unexpected field {key} in replica set member configuration")
        mid = m.get("_id")
        if type(mid) not in (int, Int64, float) or int(mid) != mid or not 0 <= int(mid) <= 255:
            raise MongoError(93, f"_id field value of {mid} is out of range.")
        mid = int(mid)
        host = m.get("host")
        if not isinstance(host, str) or not host:
            raise MongoError(93, "member host must be a non-empty string")
        if ":" not in host:
            host = f"{host}:27017"
        if mid in ids:
            raise MongoError(93, f"Found two member configurations with same _id field, members.{mid}._id == "
                                 f"members.{mid}._id == {mid}")
        if host in hosts:
            raise MongoError(93, f"Found two member configurations with same host field, members host == {host}")
        ids.add(mid)
        hosts.add(host)
        out = {"_id": mid, "host": host}
        for key, default in MEMBER_DEFAULTS.items():
            out[key] = m.get(key, default)
        if out["arbiterOnly"]:
            raise not_supported("arbiters")
        if int(m.get("secondaryDelaySecs", m.get("slaveDelay", 0)) or 0):
            raise not_supported("delayed members")
        out["priority"] = float(out["priority"])
        if not 0 <= out["priority"] <= 1000:
            raise MongoError(93, f"priority field value of {out['priority']} is out of range")
        if out["votes"] not in (0, 1):
            raise MongoError(93, f"votes field value is {out['votes']} but must be 0 or 1")
        out["votes"] = int(out["votes"])
        if out["votes"] == 0 and out["priority"] > 0:
            raise MongoError(93, "priority must be 0 when non-voting (votes:0)")
        if out["hidden"] and out["priority"] > 0:
            raise MongoError(93, "priority must be 0 when hidden=true")
        if not out["buildIndexes"]:
            raise not_supported("buildIndexes: false")
        return out

    @staticmethod
    def public_config(config):
        out = dict(config)
        out["members"] = [{k: v for k, v in m.items() if k != "newlyAdded"} for m in config["members"]]
        return out

    def install_config(self, config, reason):
        """Adopt a newer config (from a command or a heartbeat) and persist it."""
        had_config = self.config is not None
        was_member = self.self_id is not None
        self._adopt_config(config)
        self._persist_config()
        self.server.log.info("REPL", "ReplCoord", "New replica set config in use",
                             {"reason": reason, "version": config["version"], "term": config.get("term")})
        if self.self_id is None:
            if self.state == PRIMARY:
                self._to_secondary("removed from the replica set config")
            self.state = REMOVED
            self.primary_id = None
        elif not had_config or not was_member or self.state == REMOVED:
            oplog = self._oplog()
            self.state = SECONDARY if oplog.records else STARTUP2
            self.initial_sync_needed = not oplog.records
            self.last_primary_contact = time.monotonic()
        self.wake.set()
        self.server.cond.notify_all()

    # ---- oplog ----

    def next_timestamp(self):
        now = int(time.time())
        if now > self.clock.time:
            self.clock = Timestamp(now, 1)
        else:
            self.clock = Timestamp(self.clock.time, self.clock.inc + 1)
        return self.clock

    def log_op(self, op, ns, o, o2=None, ui=None, o_raw=None):
        """Append an oplog entry for a write this primary just made (o_raw: the encoding of o,
        reused); returns its optime."""
        if self.state != PRIMARY:
            raise MongoError(10107, "not primary")
        ts = self.next_timestamp()
        entry = {"op": op, "ns": ns}
        if ui is not None:
            entry["ui"] = ui
        entry["o"] = o
        if o2 is not None:
            entry["o2"] = o2
        entry.update({"ts": ts, "t": Int64(self.term), "v": Int64(2), "wall": DateTime.now()})
        raw = None
        if o_raw is not None:
            raw = encode({k: (RawDocument(o_raw) if k == "o" else v) for k, v in entry.items()})
        self._oplog().insert(entry, raw)
        self.applied = optime_of(entry)
        self._advance_commit_point()
        self.server.note_optime(self.applied)
        return self.applied

    # ---- state and topology ----

    def is_writable_primary(self):
        return self.state == PRIMARY and not self.stepping_down

    def can_serve_reads(self):
        return self.state in (PRIMARY, SECONDARY)

    def hello_fields(self, is_hello):
        primary_key = "isWritablePrimary" if is_hello else "ismaster"
        if self.config is None or self.state == REMOVED:
            return {primary_key: False, "secondary": False, "info": "Does not have a valid replica set config",
                    "isreplicaset": True}
        hosts, passives = [], []
        for m in self.config["members"]:
            if m.get("hidden") or m.get("arbiterOnly"):
                continue
            (hosts if m.get("priority", 1) > 0 else passives).append(m["host"])
        out = {"hosts": hosts}
        if passives:
            out["passives"] = passives
        out["setName"] = self.set_name
        out["setVersion"] = self.config["version"]
        out[primary_key] = self.is_writable_primary()
        out["secondary"] = self.state == SECONDARY
        primary = self._primary_host()
        if primary:
            out["primary"] = primary
        me = self.self_config()
        if me.get("hidden"):
            out["hidden"] = True
        if me.get("priority", 1) == 0:
            out["passive"] = True
        if me.get("tags"):
            out["tags"] = me["tags"]
        out["me"] = me["host"]
        if self.state == PRIMARY:
            out["electionId"] = self.election_id
        out["lastWrite"] = {"opTime": dict(self.applied), "lastWriteDate": optime_date(self.applied),
                            "majorityOpTime": dict(self.commit_point),
                            "majorityWriteDate": optime_date(self.commit_point)}
        return out

    def _primary_host(self):
        if self.state == PRIMARY:
            return self.self_host()
        if self.primary_id is not None and self.primary_id in self.members:
            return self.members[self.primary_id].host
        return None

    def update_term(self, term, reason):
        if term <= self.term:
            return
        self.term = term
        self._persist_election()
        if self.state == PRIMARY:
            self._to_secondary(f"learned of a new term ({term}): {reason}")
        if self.primary_id == self.self_id:
            self.primary_id = None

    def _poke_heartbeats(self):
        for worker in self.workers.values():
            worker.poke()

    def _to_secondary(self, reason):
        self._poke_heartbeats()
        self.state = SECONDARY
        self.stepping_down = False
        if self.primary_id == self.self_id:
            self.primary_id = None
        self.last_primary_contact = time.monotonic()
        self.server.log.info("REPL", "ReplCoord", "Transition to SECONDARY", {"reason": reason})
        self.server.cond.notify_all()

    def _become_primary(self):
        self._poke_heartbeats()
        self.state = PRIMARY
        self.stepping_down = False
        self.primary_id = self.self_id
        self.election_id = ObjectId(b"\x7f\xff\xff\xff" + int(self.term).to_bytes(8, "big"))
        entry_optime = self.log_op("n", "", {"msg": "new primary"})
        self.election_time = entry_optime["ts"]
        self.server.ensure_fcv()
        self.server.storage.commit()
        self.server.log.info("REPL", "ReplCoord", "Transition to primary complete; database writes are now "
                                                  "permitted", {"term": self.term})
        self.server.cond.notify_all()

    # ---- commit point and write concern ----

    def _progress(self, member_id):
        if member_id == self.self_id:
            return self.applied
        member = self.members.get(member_id)
        return member.applied if member is not None else NULL_OPTIME

    def _advance_commit_point(self):
        voters = self._voters()
        if not voters:
            return
        optimes = sorted((self._progress(v) for v in voters), key=optime_key, reverse=True)
        candidate = optimes[len(voters) // 2]
        if optime_key(candidate) > optime_key(self.commit_point):
            self.commit_point = dict(candidate)
            self.server.cond.notify_all()

    def _count_at(self, optime, members):
        return sum(1 for m in members if optime_key(self._progress(m)) >= optime_key(optime))

    def await_write_concern(self, wc, optime):
        """None when satisfied, else a writeConcernError document. Called with the lock held; waits on it."""
        if optime is None or self.config is None:
            return None
        wc = wc if isinstance(wc, dict) else {}
        w = wc.get("w", "majority")
        timeout_ms = int(wc.get("wtimeout", 0) or 0)
        if w in (0, 1) or w is False:
            return None
        data_bearing = [m["_id"] for m in self.config["members"] if not m.get("arbiterOnly")]
        if isinstance(w, str) and w != "majority":
            return {"code": 79, "codeName": "UnknownReplWriteConcern",
                    "errmsg": f"No write concern mode named '{w}' found in replica set configuration"}
        if type(w) in (int, Int64, float) and int(w) > len(data_bearing):
            return {"code": 100, "codeName": "UnsatisfiableWriteConcern", "errmsg": "Not enough data-bearing nodes"}
        deadline = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        while True:
            if w == "majority":
                voters = self._voters()
                if self._count_at(optime, voters) >= len(voters) // 2 + 1:
                    return None
            elif self._count_at(optime, data_bearing) >= int(w):
                return None
            if self.state != PRIMARY:
                return {"code": 189, "codeName": "PrimarySteppedDown",
                        "errmsg": "Primary stepped down while waiting for replication"}
            if self.server.shutting_down:
                return {"code": 91, "codeName": "ShutdownInProgress", "errmsg": "Replication is being shut down"}
            wait = 0.5
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
                            "errInfo": {"wtimeout": True, "writeConcern": {"w": w, "wtimeout": timeout_ms,
                                                                           "provenance": "clientSupplied"}}}
            self.server.cond.wait(wait)

    # ---- commands (lock held) ----

    def initiate(self, raw):
        if self.config is not None:
            raise MongoError(23, "already initialized")
        if raw is None or raw == {}:
            raw = {"_id": self.set_name, "version": 1, "members": [{"_id": 0, "host": self._default_host()}]}
        config = self.normalize_config(raw, for_initiate=True)
        config["term"] = self.term
        self.server.log.info("REPL", "ReplCoord", "replSetInitiate admin command received from client", {})
        oplog = self._oplog()
        self.install_config(config, "replSetInitiate")
        if not oplog.records:
            ts = self.next_timestamp()
            oplog.insert({"op": "n", "ns": "", "o": {"msg": "initiating set"}, "ts": ts, "t": Int64(self.term),
                          "v": Int64(2), "wall": DateTime.now()})
            self.applied = {"ts": ts, "t": Int64(self.term)}
        self.state = SECONDARY
        self.initial_sync_needed = False
        self.server.storage.commit()
        self.wake.set()

    def _default_host(self):
        host = socket.gethostname()
        bound = self.server._bind_addresses()
        if "0.0.0.0" not in bound:
            try:
                addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
            except OSError:
                addresses = set()
            if not addresses & set(bound):
                host = bound[0]
        return f"{host}:{self.server.port}"

    def reconfig(self, raw, force):
        if self.config is None:
            raise MongoError(94, "no replset config has been received")
        if not force and self.state != PRIMARY:
            raise MongoError(10107, f"replSetReconfig should only be run on a writable PRIMARY. Current state "
                                    f"{STATE_NAMES[self.state]};")
        config = self.normalize_config(raw, for_initiate=False, force=force)
        old = self.config
        if force:
            config["version"] = max(config["version"], old["version"] + random.randint(10000, 100000))
        elif config["version"] <= old["version"]:
            raise MongoError(103, f"New replica set configuration version must be greater than old, but "
                                  f"{config['version']} is not greater than {old['version']} for replica set "
                                  f"{self.set_name}")
        old_by_id = {m["_id"]: m for m in old["members"]}
        for m in config["members"]:
            prev = old_by_id.get(m["_id"])
            if not force and m["votes"] and (prev is None or not prev.get("votes", 1)):
                m["newlyAdded"] = True
            elif prev is not None and prev.get("newlyAdded") and m["votes"]:
                m["newlyAdded"] = True
        if not force:
            old_voters = {m["_id"] for m in old["members"] if m.get("votes", 1) and not m.get("newlyAdded")}
            new_voters = {m["_id"] for m in config["members"] if m["votes"] and not m.get("newlyAdded")}
            if len(old_voters ^ new_voters) > 1:
                raise MongoError(103, "Non force replica set reconfig can only add or remove at most 1 voting member.")
        self.server.log.info("REPL", "ReplCoord", "replSetReconfig admin command received from client",
                             {"force": force, "version": config["version"]})
        self.install_config(config, "replSetReconfig")
        if self.state == PRIMARY:
            self.log_op("n", "", {"msg": "Reconfig set", "version": config["version"]})
            self.server.storage.commit()

    def _clear_newly_added(self, member_id):
        """The primary saw a newly added member reach SECONDARY: make it a voter (version + 1)."""
        config = dict(self.config)
        config["members"] = [dict(m) for m in config["members"]]
        changed = False
        for m in config["members"]:
            if m["_id"] == member_id and m.get("newlyAdded"):
                del m["newlyAdded"]
                changed = True
        if changed:
            config["version"] = self.config["version"] + 1
            config["term"] = self.term
            self.install_config(config, "automatic reconfig: a newly added member finished initial sync")
            self.log_op("n", "", {"msg": "Reconfig set", "version": config["version"]})
            self.server.storage.commit()

    def step_down(self, seconds, catch_up, force):
        """replSetStepDown: wait for a caught-up electable secondary, step down, hand off the election."""
        if self.state != PRIMARY:
            raise MongoError(10107, "not primary so can't step down")
        if seconds < 0:
            raise MongoError(2, "stepdown period must be a positive integer")
        if not force and seconds <= catch_up:
            raise MongoError(2, "stepdown period must be longer than secondaryCatchUpPeriodSecs")
        self.stepping_down = True
        self.server.cond.notify_all()
        deadline = time.monotonic() + catch_up
        target = None
        try:
            while True:
                target = self._caught_up_electable()
                if target is not None or self.state != PRIMARY:
                    break
                if time.monotonic() >= deadline:
                    if force:
                        break
                    raise MongoError(262, f"No electable secondaries caught up as of {_iso_local()}. Please use the "
                                          f"replSetStepDown command with the argument {{force: true}} to force node "
                                          f"to step down.")
                self.server.cond.wait(min(0.2, max(0.01, deadline - time.monotonic())))
        finally:
            self.stepping_down = False
        if self.state == PRIMARY:
            self.step_down_until = time.monotonic() + seconds
            self._to_secondary("replSetStepDown")
        if target is not None and not force:
            threading.Thread(target=self._handoff_unlocked, args=(target,), daemon=True).start()

    def _caught_up_electable(self):
        for mid, member in self.members.items():
            cfg = self.member_config(mid)
            if (cfg and cfg.get("priority", 1) > 0 and cfg.get("votes", 1) and not cfg.get("newlyAdded")
                    and member.health == 1 and member.state == SECONDARY
                    and optime_key(member.applied) >= optime_key(self.applied)):
                return member.host
        return None

    def _handoff_unlocked(self, host):
        try:
            client = PeerClient(host, self.key, timeout=15)
            client.command("admin", {"replSetStepUp": 1, "skipDryRun": True})
            client.close()
        except PeerError as exc:
            self.server.log.info("REPL", "ElectionHandoff", "Election handoff failed", {"target": host,
                                                                                         "error": str(exc)})

    def step_down_for_shutdown(self, timeout):
        """Called without the lock by the shutdown command."""
        with self.server.lock:
            if self.state != PRIMARY:
                return
            electable = [m for m in self.config["members"] if m["_id"] != self.self_id and m.get("priority", 1) > 0
                         and m.get("votes", 1)]
            if not electable:
                return
            self.step_down(max(int(timeout), 1) + 10, int(timeout), force=False)

    def freeze(self, seconds):
        if self.state == PRIMARY:
            raise MongoError(95, "cannot freeze node when primary or running for election. state: Primary")
        self.step_down_until = time.monotonic() + seconds if seconds else 0.0
        return {"info": "unfreezing"} if not seconds else {}

    # ---- messages from other members (lock held) ----

    def on_heartbeat(self, args):
        if args.get("replSetHeartbeat") != self.set_name:
            raise MongoError(93, f"Our set name of {self.set_name} does not match name "
                                 f"{args.get('replSetHeartbeat')} reported by remote node")
        sender = args.get("from", "")
        their = (int(args.get("configTerm", -1)), int(args.get("configVersion", -2)))
        if "term" in args:
            self.update_term(int(args["term"]), "heartbeat")
        if self.config is None or self.state == REMOVED or their > self._config_key():
            if sender and their > self._config_key():
                threading.Thread(target=self._fetch_config_unlocked, args=(sender,), daemon=True).start()
        member = self.members.get(args.get("fromId"))
        if member is not None:
            member.last_heartbeat_recv = DateTime.now()
        reply = {"ok": 1.0, "set": self.set_name, "state": self.state if self.config is not None else STARTUP,
                 "term": Int64(self.term)}
        if self.config is None:
            reply.update({"v": -2, "configTerm": Int64(-1)})
            return reply
        reply.update({"v": self.config["version"], "configTerm": Int64(self.config.get("term", -1)),
                      "opTime": dict(self.applied), "durableOpTime": dict(self.applied),
                      "wallTime": optime_date(self.applied), "durableWallTime": optime_date(self.applied),
                      "lastCommittedOpTime": dict(self.commit_point),
                      "primaryId": self.primary_id if self.primary_id is not None else -1,
                      "syncingTo": self.sync_source})
        if self.state == PRIMARY:
            reply["electionTime"] = self.election_time
        if their < self._config_key():
            reply["config"] = self.config
        return reply

    def _config_key(self):
        if self.config is None:
            return (-1, -2)
        return (int(self.config.get("term", -1)), int(self.config["version"]))

    def on_request_votes(self, args):
        dry_run = bool(args.get("dryRun"))
        term = int(args.get("term", -1))
        candidate = int(args.get("candidateIndex", -1))
        reason = ""
        if args.get("setName") != self.set_name:
            reason = f"candidate's set name ({args.get('setName')}) differs from mine ({self.set_name})"
        elif self.config is None:
            reason = "no replica set config"
        elif term < self.term:
            reason = f"candidate's term ({term}) is lower than mine ({self.term})"
        elif (int(args.get("configTerm", -1)), int(args.get("configVersion", 0))) < self._config_key():
            reason = (f"candidate's config with {{version: {args.get('configVersion')}, term: {args.get('configTerm')}}}"
                      f" is older than mine with {{version: {self.config['version']}, term: "
                      f"{self.config.get('term')}}}")
        elif optime_key(args.get("lastAppliedOpTime", NULL_OPTIME)) < optime_key(self.applied):
            reason = "candidate's data is staler than mine"
        elif not dry_run and self.last_vote["term"] == term and self.last_vote["candidateIndex"] != candidate:
            reason = f"already voted for another candidate this term ({term})"
        granted = not reason
        if not dry_run:
            self.update_term(term, "vote request")
            if granted:
                self.last_vote = {"term": term, "candidateIndex": candidate}
                self._persist_election()
                self.last_primary_contact = time.monotonic()
        self.server.log.info("ELECTION", "ReplCoord", "Responding to vote request",
                             {"dryRun": dry_run, "term": term, "candidateIndex": candidate, "granted": granted,
                              "reason": reason})
        return {"term": Int64(self.term), "voteGranted": granted, "reason": reason, "ok": 1.0}

    def on_update_position(self, args):
        for entry in args.get("optimes", []):
            member = self.members.get(entry.get("memberId"))
            applied = entry.get("appliedOpTime")
            if member is None or not isinstance(applied, dict):
                continue
            if optime_key(applied) > optime_key(member.applied):
                member.applied = {"ts": applied["ts"], "t": Int64(applied["t"])}
        self._advance_commit_point()
        self.server.cond.notify_all()
        return {"ok": 1.0}

    # ---- threads ----

    def start(self):
        self._sync_workers()
        threading.Thread(target=self._coordinator_loop, name="ReplCoord", daemon=True).start()
        threading.Thread(target=self._sync_loop, name="ReplSync", daemon=True).start()

    def stop(self):
        self.stop_event.set()
        self.wake.set()
        for worker in list(self.workers.values()):
            worker.stop()

    def _sync_workers(self):
        if self.stop_event.is_set():
            return
        wanted = {mid: m.host for mid, m in self.members.items()}
        for mid, worker in list(self.workers.items()):
            if wanted.get(mid) != worker.host:
                worker.stop()
                del self.workers[mid]
        for mid, host in wanted.items():
            if mid not in self.workers:
                worker = HeartbeatWorker(self, mid, host)
                self.workers[mid] = worker
                worker.start()
        for worker in self.workers.values():
            worker.poke()

    def heartbeat_request(self):
        me = self.self_config()
        return {"replSetHeartbeat": self.set_name, "configVersion": self.config["version"] if self.config else -2,
                "configTerm": Int64(self.config.get("term", -1)) if self.config else Int64(-1), "hbv": 1,
                "from": me["host"] if me else self.server.host_name,
                "fromId": self.self_id if self.self_id is not None else -1, "term": Int64(self.term)}

    def on_heartbeat_response(self, member_id, reply, error, elapsed_ms):
        member = self.members.get(member_id)
        if member is None:
            return
        now = DateTime.now()
        member.last_heartbeat = now
        if error is not None:
            member.health = 0
            member.state = DOWN
            member.message = error
            member.up_since = None
            if self.primary_id == member_id:
                self.primary_id = None
            return
        if member.health != 1:
            member.up_since = time.monotonic()
        member.health = 1
        member.message = ""
        member.last_ok = time.monotonic()
        member.ping_ms = int(elapsed_ms)
        member.state = int(reply.get("state", UNKNOWN))
        member.config_version = reply.get("v", -2)
        member.config_term = reply.get("configTerm", -1)
        member.sync_source = reply.get("syncingTo", "")
        if isinstance(reply.get("opTime"), dict):
            applied = {"ts": reply["opTime"]["ts"], "t": Int64(reply["opTime"]["t"])}
            if optime_key(applied) > optime_key(member.applied) or member.state != SECONDARY:
                member.applied = applied
        member.election_time = reply.get("electionTime")
        self.update_term(int(reply.get("term", -1)), "heartbeat response")
        if member.state == PRIMARY and int(reply.get("term", -1)) >= self.term:
            self.primary_id = member_id
            self.last_primary_contact = time.monotonic()
        elif self.primary_id == member_id:
            self.primary_id = None
        config = reply.get("config")
        if isinstance(config, dict) and config.get("_id") == self.set_name:
            key = (int(config.get("term", -1)), int(config.get("version", 0)))
            if key > self._config_key():
                self.install_config(config, f"heartbeat from {member.host}")
        if self.state != PRIMARY and isinstance(reply.get("lastCommittedOpTime"), dict):
            lc = reply["lastCommittedOpTime"]
            if optime_key(lc) > optime_key(self.commit_point) and optime_key(lc) <= optime_key(self.applied):
                self.commit_point = {"ts": lc["ts"], "t": Int64(lc["t"])}
        if self.state == PRIMARY:
            cfg = self.member_config(member_id)
            if cfg is not None and cfg.get("newlyAdded") and member.state == SECONDARY:
                self._clear_newly_added(member_id)
            self._advance_commit_point()
        self.server.cond.notify_all()

    def _fetch_config_unlocked(self, host):
        with self.server.lock:
            request = self.heartbeat_request()
        try:
            client = PeerClient(host, self.key, timeout=10)
            reply = client.command("admin", request)
            client.close()
        except PeerError as exc:
            self.server.log.info("REPL", "ReplCoord", "Could not fetch the replica set config",
                                 {"from": host, "error": str(exc)})
            return
        config = reply.get("config")
        with self.server.lock:
            if isinstance(config, dict) and config.get("_id") == self.set_name:
                key = (int(config.get("term", -1)), int(config.get("version", 0)))
                if key > self._config_key():
                    self.update_term(int(reply.get("term", -1)), "config fetch")
                    self.install_config(config, f"heartbeat from {host}")

    def _coordinator_loop(self):
        """Elections when no primary is heard from, and a primary's check that it still sees a majority."""
        jitter = random.uniform(0, 0.15)
        while not self.stop_event.is_set():
            self.wake.wait(0.1)
            self.wake.clear()
            stand = False
            with self.server.lock:
                if self.config is None or self.self_id is None:
                    continue
                settings = self._settings()
                timeout = settings["electionTimeoutMillis"] / 1000.0
                now = time.monotonic()
                voters = self._voters()
                if self.state == SECONDARY and self._electable() and not self.electing:
                    if voters == [self.self_id]:
                        stand = True
                    elif self.primary_id is None and now - self.last_primary_contact > timeout * (1 + jitter):
                        stand = True
                elif self.state == PRIMARY and len(voters) > 1:
                    seen = 1 + sum(1 for v in voters if v != self.self_id and self.members.get(v)
                                   and self.members[v].last_ok and now - self.members[v].last_ok < timeout)
                    if seen < len(voters) // 2 + 1:
                        self._to_secondary("can't see a majority of the set, relinquishing primary")
            if stand:
                self.run_election_unlocked(skip_dry_run=False, reason="election timeout")
                jitter = random.uniform(0, 0.15)

    def run_election_unlocked(self, skip_dry_run, reason):
        """Stand for election; True if this node became primary. Called without the lock."""
        with self.server.lock:
            if self.electing or self.config is None or self.self_id is None:
                return self.state == PRIMARY
            if self.state == PRIMARY:
                return True
            if not self._electable() or self.state not in (SECONDARY,):
                return False
            self.electing = True
            voters = self._voters()
            index = [m["_id"] for m in self.config["members"]].index(self.self_id)
            needed = len(voters) // 2 + 1
            peers = [self.member_config(v)["host"] for v in voters if v != self.self_id]
            base = {"replSetRequestVotes": 1, "setName": self.set_name, "candidateIndex": Int64(index),
                    "configVersion": Int64(self.config["version"]), "configTerm": Int64(self.config.get("term", -1)),
                    "lastAppliedOpTime": dict(self.applied)}
            term = self.term
            self.server.log.info("ELECTION", "ReplCoord", "Starting an election", {"reason": reason,
                                                                                     "term": term + 1})
        try:
            if not skip_dry_run and self._collect_votes(peers, dict(base, dryRun=True, term=Int64(term))) + 1 < needed:
                return False
            with self.server.lock:
                if self.term != term or self.state != SECONDARY:
                    return False
                self.term = term + 1
                self.last_vote = {"term": self.term, "candidateIndex": index}
                self._persist_election()
                new_term = self.term
            votes = self._collect_votes(peers, dict(base, dryRun=False, term=Int64(new_term))) + 1
            with self.server.lock:
                if self.term != new_term or self.state != SECONDARY or votes < needed:
                    self.server.log.info("ELECTION", "ReplCoord", "Lost election", {"term": new_term, "votes": votes})
                    return False
                self.server.log.info("ELECTION", "ReplCoord", "Election succeeded, assuming primary role",
                                     {"term": new_term})
                self._become_primary()
                return True
        finally:
            with self.server.lock:
                self.electing = False

    def _collect_votes(self, peers, request):
        granted = 0
        for host in peers:
            try:
                client = PeerClient(host, self.key, timeout=5)
                reply = client.command("admin", request)
                client.close()
            except PeerError:
                continue
            with self.server.lock:
                self.update_term(int(reply.get("term", -1)), "vote response")
            if reply.get("voteGranted"):
                granted += 1
        return granted

    # ---- the secondary: initial sync and oplog tailing ----

    def _sync_loop(self):
        while not self.stop_event.is_set():
            with self.server.lock:
                state, source = self.state, self._primary_host() if self.state != PRIMARY else None
                initial = self.initial_sync_needed
            if state not in (SECONDARY, STARTUP2, RECOVERING) or not source:
                self.sync_source = ""
                self.stop_event.wait(0.2)
                continue
            try:
                if initial:
                    self._initial_sync_unlocked(source)
                else:
                    self._tail_unlocked(source)
            except PeerError as exc:
                self.sync_message = str(exc)
                self.stop_event.wait(0.5)
            except MongoError as exc:
                self.server.log.error("REPL", "ReplSync", "Oplog application failed", {"error": exc.message})
                with self.server.lock:
                    self.state = RECOVERING
                    self.sync_message = exc.message
                self.stop_event.wait(2.0)

    def _connect(self, source):
        client = PeerClient(source, self.key, timeout=30)
        client.connect()
        return client

    def _initial_sync_unlocked(self, source):
        self.server.log.info("INITSYNC", "ReplSync", "Starting initial sync", {"syncSource": source})
        client = self._connect(source)
        try:
            begin = self._last_entry(client)
            with self.server.lock:
                self.server.wait_while_fsync_locked()
                self.sync_source = source
                for db in self.server.storage.databases():
                    if db != "local":
                        self.server.storage.drop_database(db)
                self.server.storage.drop(*OPLOG)
                self._oplog()
                self.applied = dict(NULL_OPTIME)
                self.server.storage.commit()
            for db in client.command("admin", {"listDatabases": 1, "nameOnly": True})["databases"]:
                if db["name"] != "local":
                    self._clone_database(client, db["name"])
            with self.server.lock:
                self.state = STARTUP2
            cursor = client.command("local", {"find": "oplog.rs", "filter": {"ts": {"$gte": begin["ts"]}},
                                              "batchSize": 1000, "$readPreference": {"mode": "secondaryPreferred"}})
            batch, cid = cursor["cursor"]["firstBatch"], cursor["cursor"]["id"]
            while True:
                self._apply_batch(batch)
                if not cid:
                    break
                more = client.command("local", {"getMore": cid, "collection": "oplog.rs", "batchSize": 1000})
                batch, cid = more["cursor"]["nextBatch"], more["cursor"]["id"]
            with self.server.lock:
                if not self._oplog().records:
                    raise MongoError(1, "initial sync copied no oplog entries")
                self.initial_sync_needed = False
                self.state = SECONDARY
                self.server.log.info("INITSYNC", "ReplSync", "Initial sync done", {"appliedOpTime": str(self.applied)})
                self.server.cond.notify_all()
        finally:
            client.close()

    def _last_entry(self, client):
        reply = client.command("local", {"find": "oplog.rs", "sort": {"$natural": -1}, "limit": 1,
                                         "singleBatch": True, "$readPreference": {"mode": "secondaryPreferred"}})
        batch = reply["cursor"]["firstBatch"]
        if not batch:
            raise PeerError("the sync source has an empty oplog")
        return batch[0]

    def _clone_database(self, client, db):
        listing = client.command(db, {"listCollections": 1, "$readPreference": {"mode": "secondaryPreferred"}})
        for entry in self._drain(client, db, listing):
            name = entry["name"]
            options = entry.get("options", {})
            uuid = entry.get("info", {}).get("uuid")
            with self.server.lock:
                coll = self.server.storage.get(db, name) or self.server.storage.create(
                    db, name, options, id_index="idIndex" in entry, coll_uuid=uuid)
            indexes = client.command(db, {"listIndexes": name, "$readPreference": {"mode": "secondaryPreferred"}})
            for spec in self._drain(client, db, indexes):
                if spec["name"] != "_id_":
                    with self.server.lock:
                        if not any(ix["name"] == spec["name"] for ix in coll.indexes):
                            coll.add_index(spec)
            reply = client.command(db, {"find": name, "batchSize": 1000,
                                        "$readPreference": {"mode": "secondaryPreferred"}})
            batch, cid = reply["cursor"]["firstBatch"], reply["cursor"]["id"]
            while True:
                with self.server.lock:
                    self.server.wait_while_fsync_locked()
                    for doc in batch:
                        coll.insert(doc)
                    self.server.storage.commit()
                if not cid:
                    break
                reply = client.command(db, {"getMore": cid, "collection": name, "batchSize": 1000})
                batch, cid = reply["cursor"]["nextBatch"], reply["cursor"]["id"]

    @staticmethod
    def _drain(client, db, reply):
        out = list(reply["cursor"]["firstBatch"])
        cid, ns = reply["cursor"]["id"], reply["cursor"]["ns"]
        while cid:
            more = client.command(db, {"getMore": cid, "collection": ns.partition(".")[2]})
            out += more["cursor"]["nextBatch"]
            cid = more["cursor"]["id"]
        return out

    def _tail_unlocked(self, source):
        client = self._connect(source)
        try:
            with self.server.lock:
                last = dict(self.applied)
                self.sync_source = source
            reply = client.command("local", {"find": "oplog.rs", "filter": {"ts": {"$gte": last["ts"]}},
                                             "tailable": True, "awaitData": True, "batchSize": 1000,
                                             "term": Int64(self.term),
                                             "$readPreference": {"mode": "secondaryPreferred"}})
            batch, cid = reply["cursor"]["firstBatch"], reply["cursor"]["id"]
            if not batch or optime_key(optime_of(batch[0])) != optime_key(last):
                self._diverged(source, last)
                return
            with self.server.lock:
                if self.state == RECOVERING:
                    self.state = SECONDARY
                    self.sync_message = ""
            batch = batch[1:]
            while not self.stop_event.is_set():
                if batch:
                    self._apply_batch(batch)
                    self._report_position(client)
                with self.server.lock:
                    if self.state != SECONDARY or self._primary_host() != source:
                        return
                if not cid:
                    return
                more = client.command("local", {"getMore": cid, "collection": "oplog.rs", "maxTimeMS": 1000,
                                                "batchSize": 1000, "term": Int64(self.term)})
                batch, cid = more["cursor"]["nextBatch"], more["cursor"]["id"]
        finally:
            client.close()

    def _diverged(self, source, last):
        with self.server.lock:
            if self.applied["t"] == -1 and not self._oplog().records:
                self.initial_sync_needed = True
                self.state = STARTUP2
                return
            msg = (f"our last applied optime {optime_key(last)} is not in the oplog of {source}; rollback is not "
                   f"supported by the mongod stand-in")
            if self.sync_message != msg:
                self.server.log.error("REPL", "ReplSync", "Oplog divergence", {"syncSource": source, "error": msg})
            self.state = RECOVERING
            self.sync_message = msg
        self.stop_event.wait(2.0)

    def _apply_batch(self, batch):
        with self.server.lock:
            self.server.wait_while_fsync_locked()
            oplog = self._oplog()
            for entry in batch:
                if self.state not in (SECONDARY, STARTUP2):
                    break
                if optime_key(optime_of(entry)) <= optime_key(self.applied):
                    continue
                self.server.datastore.apply_entry(entry)
                oplog.insert(entry)
                self.applied = optime_of(entry)
                if entry["ts"].key() > self.clock.key():
                    self.clock = entry["ts"]
                if int(entry.get("t", 0)) > self.term:
                    self.term = int(entry["t"])
            self.server.storage.commit()
            self.server.cond.notify_all()

    def _report_position(self, client):
        with self.server.lock:
            if self.self_id is None:
                return
            doc = {"replSetUpdatePosition": 1, "optimes": [{
                "appliedOpTime": dict(self.applied), "durableOpTime": dict(self.applied),
                "appliedWallTime": optime_date(self.applied), "durableWallTime": optime_date(self.applied),
                "memberId": self.self_id, "cfgver": self.config["version"]}]}
        try:
            client.command("admin", doc)
        except PeerError:
            pass

    # ---- status ----

    def status(self):
        if self.config is None:
            raise MongoError(94, "no replset config has been received")
        if self.state == REMOVED:
            raise MongoError(93, "Our replica set config is invalid or we are not a member of it")
        now = DateTime.now()
        members = []
        for m in self.config["members"]:
            if m["_id"] == self.self_id:
                entry = {"_id": m["_id"], "name": m["host"], "health": 1.0, "state": self.state,
                         "stateStr": STATE_NAMES[self.state],
                         "uptime": int(time.monotonic() - self.server.start_monotonic),
                         "optime": dict(self.applied), "optimeDate": optime_date(self.applied),
                         "lastAppliedWallTime": optime_date(self.applied),
                         "lastDurableWallTime": optime_date(self.applied),
                         "syncSourceHost": self.sync_source if self.state != PRIMARY else "",
                         "syncSourceId": self._member_id_of(self.sync_source) if self.state != PRIMARY else -1,
                         "infoMessage": self.sync_message if self.state == RECOVERING else ""}
                if self.state == PRIMARY:
                    entry["electionTime"] = self.election_time
                    entry["electionDate"] = DateTime(self.election_time.time * 1000)
                entry.update({"configVersion": self.config["version"], "configTerm": self.config.get("term", -1),
                              "self": True, "lastHeartbeatMessage": ""})
            else:
                mem = self.members[m["_id"]]
                healthy = mem.health == 1
                entry = {"_id": m["_id"], "name": m["host"], "health": 1.0 if healthy else 0.0,
                         "state": mem.state if healthy else DOWN,
                         "stateStr": STATE_NAMES.get(mem.state if healthy else DOWN, "UNKNOWN"),
                         "uptime": int(time.monotonic() - mem.up_since) if healthy and mem.up_since else 0,
                         "optime": dict(mem.applied), "optimeDurable": dict(mem.applied),
                         "optimeDate": optime_date(mem.applied), "optimeDurableDate": optime_date(mem.applied),
                         "lastAppliedWallTime": optime_date(mem.applied),
                         "lastDurableWallTime": optime_date(mem.applied),
                         "lastHeartbeat": mem.last_heartbeat or DateTime(0),
                         "lastHeartbeatRecv": mem.last_heartbeat_recv or DateTime(0),
                         "pingMs": Int64(mem.ping_ms), "lastHeartbeatMessage": mem.message,
                         "syncSourceHost": mem.sync_source, "syncSourceId": self._member_id_of(mem.sync_source),
                         "infoMessage": ""}
                if healthy and mem.state == PRIMARY and mem.election_time is not None:
                    entry["electionTime"] = mem.election_time
                    entry["electionDate"] = DateTime(mem.election_time.time * 1000)
                entry.update({"configVersion": mem.config_version, "configTerm": mem.config_term})
            members.append(entry)
        voters = self._voters()
        majority = len(voters) // 2 + 1
        return {"set": self.set_name, "date": now, "myState": self.state, "term": Int64(self.term),
                "syncSourceHost": self.sync_source if self.state != PRIMARY else "",
                "syncSourceId": self._member_id_of(self.sync_source) if self.state != PRIMARY else -1,
                "heartbeatIntervalMillis": Int64(self._settings()["heartbeatIntervalMillis"]),
                "majorityVoteCount": majority, "writeMajorityCount": majority,
                "votingMembersCount": len(voters), "writableVotingMembersCount": len(voters),
                "optimes": {"lastCommittedOpTime": dict(self.commit_point),
                            "lastCommittedWallTime": optime_date(self.commit_point),
                            "readConcernMajorityOpTime": dict(self.commit_point),
                            "appliedOpTime": dict(self.applied), "durableOpTime": dict(self.applied),
                            "lastAppliedWallTime": optime_date(self.applied),
                            "lastDurableWallTime": optime_date(self.applied)},
                "lastStableRecoveryTimestamp": self.commit_point["ts"], "members": members, "ok": 1.0}

    def _member_id_of(self, host):
        if not host or self.config is None:
            return -1
        for m in self.config["members"]:
            if m["host"] == host:
                return m["_id"]
        return -1


class HeartbeatWorker:
    """Sends heartbeats to one member every heartbeatIntervalMillis (sooner when poked)."""

    def __init__(self, coord, member_id, host):
        self.coord = coord
        self.member_id = member_id
        self.host = host
        self.event = threading.Event()
        self.stopped = False
        self.client = None

    def start(self):
        threading.Thread(target=self._run, name=f"Heartbeat-{self.host}", daemon=True).start()

    def stop(self):
        self.stopped = True
        self.event.set()

    def poke(self):
        self.event.set()

    def _run(self):
        coord = self.coord
        while not self.stopped and not coord.stop_event.is_set():
            with coord.server.lock:
                if coord.config is None:
                    break
                request = coord.heartbeat_request()
                settings = coord._settings()
                interval = settings["heartbeatIntervalMillis"] / 1000.0
                timeout = float(settings["heartbeatTimeoutSecs"])
            start = time.monotonic()
            reply, error = None, None
            try:
                if self.client is None:
                    self.client = PeerClient(self.host, coord.key, timeout=min(timeout, 5.0))
                reply = self.client.command("admin", request)
            except PeerError as exc:
                error = str(exc)
                if self.client is not None:
                    self.client.close()
                self.client = None
            elapsed = (time.monotonic() - start) * 1000
            if self.stopped:
                break
            with coord.server.lock:
                coord.on_heartbeat_response(self.member_id, reply, error, elapsed)
            self.event.wait(interval)
            self.event.clear()
        if self.client is not None:
            self.client.close()
