"""Users, built-in roles and privilege checks. Users live in the
admin.system.users collection exactly as documents (so they replicate and
are backed up with the data); the internal __system user exists only in
memory, derived from the keyFile. Callers hold the server lock.
"""
import uuid

from . import scram
from .bsoncodec import Binary
from .errors import MongoError

# Privileges a database-scoped role grants on its database.
DB_ROLES = {
    "read": {"read", "stats"},
    "readWrite": {"read", "stats", "write", "ddl"},
    "dbAdmin": {"stats", "ddl", "dropDatabase"},
    "userAdmin": {"userAdmin"},
    "dbOwner": {"read", "stats", "write", "ddl", "dropDatabase", "userAdmin"},
}

# Roles valid only on admin: (database privileges on every database, cluster actions).
_CLUSTER_MONITOR = {"getParameter", "serverStatus", "getCmdLineOpts", "replSetGetStatus", "replSetGetConfig",
                    "listDatabases", "hostInfo", "inprog", "connPoolStats", "getLog"}
_HOST_MANAGER = {"setParameter", "shutdown", "fsync", "killAnySession", "inprog", "logRotate"}
_CLUSTER_MANAGER = {"replSetConfigure", "replSetStateChange", "replSetGetConfig", "replSetGetStatus",
                    "listDatabases"}
ADMIN_ROLES = {
    "readAnyDatabase": ({"read", "stats"}, {"listDatabases"}),
    "readWriteAnyDatabase": ({"read", "stats", "write", "ddl"}, {"listDatabases"}),
    "dbAdminAnyDatabase": ({"stats", "ddl", "dropDatabase"}, {"listDatabases"}),
    "userAdminAnyDatabase": ({"userAdmin"}, {"listDatabases"}),
    "clusterMonitor": (set(), _CLUSTER_MONITOR),
    "hostManager": (set(), _HOST_MANAGER),
    "clusterManager": (set(), _CLUSTER_MANAGER),
    "clusterAdmin": ({"dropDatabase"}, _CLUSTER_MONITOR | _HOST_MANAGER | _CLUSTER_MANAGER),
    "backup": ({"read", "stats"}, {"listDatabases", "serverStatus", "getParameter", "fsync", "inprog"}),
    "restore": ({"write", "ddl", "userAdmin"}, {"listDatabases"}),
    "root": ({"read", "stats", "write", "ddl", "dropDatabase", "userAdmin"},
             _CLUSTER_MONITOR | _HOST_MANAGER | _CLUSTER_MANAGER),
}
# The *AnyDatabase roles leave out local and config (root does not).
_ANY_DB_EXCLUDES = {"local", "config"}

SYSTEM_USER = "__system"
USERS_COLLECTION = ("admin", "system.users")


def role_exists(role, db):
    return role in DB_ROLES or (db == "admin" and role in ADMIN_ROLES)


def parse_roles(roles, default_db):
    """[{role, db}] from a roles argument of strings and documents; MongoError on bad input."""
    if not isinstance(roles, list):
        raise MongoError(2, "roles field must be an array")
    out = []
    for r in roles:
        if isinstance(r, str):
            role, db = r, default_db
        elif isinstance(r, dict) and isinstance(r.get("role"), str) and isinstance(r.get("db"), str):
            role, db = r["role"], r["db"]
        else:
            raise MongoError(2, "Role names must be either strings or objects")
        if not role_exists(role, db):
            raise MongoError(31, f"No role named {role}@{db}")
        if {"role": role, "db": db} not in out:
            out.append({"role": role, "db": db})
    return out


class Identity:
    """Who a connection is: (user, db) and the roles it holds right now."""

    def __init__(self, user, db, roles, system=False):
        self.user = user
        self.db = db
        self.roles = roles
        self.system = system

    def allowed_db(self, action, db):
        if self.system:
            return True
        for r in self.roles:
            if r["db"] == db and action in DB_ROLES.get(r["role"], ()):
                return True
            spec = ADMIN_ROLES.get(r["role"]) if r["db"] == "admin" else None
            if spec and action in spec[0] and (r["role"] == "root" or db not in _ANY_DB_EXCLUDES):
                return True
        return False

    def allowed_cluster(self, action):
        if self.system:
            return True
        return any(r["db"] == "admin" and action in ADMIN_ROLES.get(r["role"], ((), ()))[1] for r in self.roles)

    def databases_with_roles(self):
        return sorted({r["db"] for r in self.roles if r["role"] in DB_ROLES})


class Users:
    """User documents in admin.system.users and the credentials of __system."""

    def __init__(self, server):
        self.server = server
        self.system_credentials = None
        self.users_seen = False

    def set_key(self, key):
        iterations = 10000
        self.system_credentials = {
            "SCRAM-SHA-1": scram.make_credentials("SCRAM-SHA-1", SYSTEM_USER, key, iterations),
            "SCRAM-SHA-256": scram.make_credentials("SCRAM-SHA-256", SYSTEM_USER, key, 15000),
        }

    def _collection(self):
        return self.server.storage.get(*USERS_COLLECTION)

    def find(self, user, db):
        if user == SYSTEM_USER and db == "local" and self.system_credentials:
            return {"_id": "local.__system", "user": SYSTEM_USER, "db": "local",
                    "credentials": self.system_credentials, "roles": [{"role": "__system", "db": "admin"}]}
        coll = self._collection()
        if coll is None:
            return None
        rid = coll.find_id(f"{db}.{user}")
        return coll.records[rid].doc if rid is not None else None

    def all(self):
        coll = self._collection()
        return [rec.doc for rec in coll.records.values()] if coll else []

    def any_exist(self):
        coll = self._collection()
        exists = bool(coll and coll.records)
        if exists:
            self.users_seen = True
        return exists or self.users_seen

    def identity(self, user, db):
        """The current Identity of an authenticated user, or None if it was dropped."""
        if user == SYSTEM_USER and db == "local" and self.system_credentials:
            return Identity(user, db, [], system=True)
        doc = self.find(user, db)
        if doc is None:
            return None
        return Identity(user, db, list(doc.get("roles", [])))

    def make_document(self, user, db, password, roles, mechanisms, custom_data=None):
        params = self.server.parameters
        creds = {}
        for mech in mechanisms:
            iterations = params.get("scramIterationCount" if mech == "SCRAM-SHA-1" else "scramSHA256IterationCount")
            try:
                creds[mech] = scram.make_credentials(mech, user, password, iterations)
            except ValueError as exc:
                raise MongoError(2, f"Error preparing {mech} credential: {exc}") from None
        doc = {"_id": f"{db}.{user}", "userId": Binary(uuid.uuid4().bytes, 4), "user": user, "db": db,
               "credentials": creds, "roles": roles}
        if custom_data is not None:
            doc["customData"] = custom_data
        return doc

    @staticmethod
    def mechanisms_of(doc):
        return sorted(m for m in doc.get("credentials", {}) if m in scram.MECHANISMS)

    @staticmethod
    def describe(doc, show_credentials=False):
        """A usersInfo entry."""
        out = {"_id": doc["_id"], "userId": doc.get("userId"), "user": doc["user"], "db": doc["db"]}
        if "customData" in doc:
            out["customData"] = doc["customData"]
        out["roles"] = [{"role": r["role"], "db": r["db"]} for r in doc.get("roles", [])]
        if show_credentials:
            out["credentials"] = doc.get("credentials", {})
        out["mechanisms"] = Users.mechanisms_of(doc)
        return out
