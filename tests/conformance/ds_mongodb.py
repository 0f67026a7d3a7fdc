"""trove-plugin-check's description of MongoDB (plugin "mongodb"), on the mongod
stand-in (tests/mongodb/standin/: no MongoDB server exists for Debian 12; its
README says what it is and is not).

Each server is a one-member replica set as the plugin's prepare makes one
(tests/lib/mongodb_server.py): mongod.conf in the plugin's layout, a keyFile,
the admin account. All servers share the admin password and the keyFile, as
the members of one deployment do (members of a replica set share its users
and its keyFile). Rows are documents {_id: key, v: value} of the collection
`rows` in the test database. Everything here uses pymongo (Debian's
python3-pymongo), never the agent.

To run the battery against a real MongoDB, set MONGOD to a real mongod binary
(docs/plugins/mongodb.md, "Checking a real MongoDB").
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import pymongo  # noqa: E402
from pymongo.errors import OperationFailure, PyMongoError  # noqa: E402

from trove_check.datastore import Datastore, Server  # noqa: E402
from mongodb_server import MongoServer  # noqa: E402

COLLECTION = "rows"


def _number(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


class MongoDatastore(Datastore):
    plugin = "mongodb"
    expect_unsupported = {"database.alter"}
    databases = True
    test_database = "conformance"
    live_parameter = ("cursorTimeoutMillis", "300000")
    restart_parameter = ("localLogicalSessionTimeoutMinutes", "20")
    incremental_backup = True

    def start_server(self, env, index):
        ms = MongoServer(env, index).start()
        server = Server(ms.settings, ms.host, ms.port)
        server.mongo = ms
        return server

    def write_rows(self, server, database, rows):
        client = server.mongo.admin()
        try:
            ops = [pymongo.ReplaceOne({"_id": k}, {"_id": k, "v": v}, upsert=True) for k, v in rows]
            if ops:
                client[database][COLLECTION].bulk_write(ops, ordered=True)
        finally:
            client.close()

    def read_rows(self, server, database):
        client = server.mongo.admin()
        try:
            return sorted((d["_id"], d["v"]) for d in client[database][COLLECTION].find())
        finally:
            client.close()

    def can_read(self, server, user, password, database, host=None):
        """Log in as `user` (SCRAM-SHA-256 on admin) and read the test collection."""
        client = server.mongo.client(user, password)
        try:
            client[database][COLLECTION].find_one()
            return True
        except OperationFailure as e:
            # 18: authentication failed; 13: not authorized on the database.
            # Anything else proves neither access nor its absence.
            if e.code in (13, 18):
                return False
            raise AssertionError(f"reading as {user!r} was neither allowed nor refused: {e}") from e
        finally:
            client.close()

    def read_parameter(self, server, name):
        client = server.mongo.admin()
        try:
            return client.admin.command("getParameter", 1, **{name: 1})[name]
        finally:
            client.close()

    def same_value(self, name, wanted, reported):
        w = str(wanted).strip().lower()
        if isinstance(reported, bool):
            return {"true": True, "on": True, "yes": True, "1": True}.get(w, False) == reported
        r = str(reported).strip().lower()
        if _number(w) is not None and _number(r) is not None:
            return _number(w) == _number(r)
        return w == r

    def cluster_members(self, server):
        client = server.mongo.admin()
        try:
            return {m["name"] for m in client.admin.command("replSetGetStatus")["members"]}
        except PyMongoError:
            return set()
        finally:
            client.close()


DATASTORE = MongoDatastore()
