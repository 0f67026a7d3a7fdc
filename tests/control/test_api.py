#!/usr/bin/python3
"""The REST API on the wire: routing, Trove's fault bodies, paging, tokens
and tenants, strict input (with a registry dump before and after every
refused request), the body limit, and the stock `openstack database` client
with and without tokens.

The server is tests/control/api_test_server: trove-control's loop, core,
tasks and a SQLite registry behind the API, and no agent socket. Instances are
registry rows that no agent serves, so work that reaches an agent is answered
"not connected" and instance.* operations "not available": a test sees that
a request passed the API's checks and reached the core, and that a refused one
changed nothing.

usage: test_api.py API_TEST_SERVER
"""
import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import harness
from harness import check

SERVER = sys.argv[1] if len(sys.argv) > 1 else harness.build_path("tests", "control", "api_test_server")
OPENSTACK = "/usr/bin/openstack"

TOKEN_T1 = "t1-token-0123456789abcdef"
TOKEN_T2 = "t2-token-0123456789abcdef"
TOKEN_OPS = "ops-token-0123456789abcdef"


class Api:
    """One api_test_server with a seeded registry."""

    def __init__(self, env, instances=("t1:5", "t2:2"), tokens=False, extra=()):
        self.env = env
        self.registry = "sqlite:" + env.path("registry.db")
        seed = [SERVER, "seed", "--registry", self.registry]
        for spec in instances:
            seed += ["--instances", spec]
        out = subprocess.run(seed, capture_output=True, text=True, check=True).stdout
        self.ids = {}      # tenant -> [ids in creation order]
        self.status = {}   # id -> status
        for line in out.splitlines():
            _, tenant, iid, status = line.split()
            self.ids.setdefault(tenant, []).append(iid)
            self.status[iid] = status
        argv = [SERVER, "serve", "--registry", self.registry]
        if tokens:
            path = harness.secret_file(env.path("tokens"), f"{TOKEN_T1} t1\n{TOKEN_T2} t2\n{TOKEN_OPS} ops admin\n")
            argv += ["--tokens", path]
        self.proc = env.spawn(argv + list(extra), "api")
        self.port = harness.wait_for(self._port, 10, "api_test_server")

    def _port(self):
        with open(self.proc.log_path) as f:
            for line in f:
                if line.startswith("PORT "):
                    return int(line.split()[1])
        if not self.proc.alive():
            raise AssertionError("api_test_server exited:\n" + self.proc.log_tail())
        return None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, method, path, body=None, token=None, raw=None, headers=None):
        """(status, parsed body or None, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url(path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("X-Auth-Token", token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read()
                return resp.status, (json.loads(text) if text else None), resp.headers
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (json.loads(text) if text else None), e.headers

    def dump(self):
        return subprocess.run([SERVER, "dump", "--registry", self.registry], capture_output=True, text=True,
                              check=True).stdout


FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               413: "overLimit", 415: "badMediaType", 422: "unprocessableEntity", 501: "notImplemented",
               503: "serviceUnavailable"}


def expect_fault(got, status, contains=None, what=""):
    code, body, _ = got
    check(code == status, f"{what}: expected HTTP {status}, got {code} {body}")
    name = FAULT_NAMES[status]
    check(isinstance(body, dict) and list(body) == [name], f"{what}: expected a {name} fault body, got {body}")
    check(body[name]["code"] == status and body[name]["message"], f"{what}: fault without code or message: {body}")
    if contains:
        check(contains in body[name]["message"], f"{what}: expected '{contains}' in '{body[name]['message']}'")
    return body[name]["message"]


# ------------------------------------------------------------ routing and shapes

def test_routing_versions_and_faults():
    with harness.Env() as env:
        api = Api(env)
        code, body, _ = api.call("GET", "/")
        check(code == 200 and body["versions"][0]["id"] == "v1.0", f"versions document: {code} {body}")
        expect_fault(api.call("GET", "/v1.0/t1/nothing-here"), 404, "could not be found", "unknown route")
        expect_fault(api.call("GET", "/v2/t1/instances"), 404, None, "unknown version")
        got = api.call("PATCH", "/v1.0/t1/instances", {"x": 1})
        expect_fault(got, 405, "PATCH", "wrong method")
        check("GET" in got[2]["Allow"] and "POST" in got[2]["Allow"], f"Allow header: {got[2]['Allow']}")
        expect_fault(api.call("GET", "/v1.0/t1/instances//x"), 404, None, "empty segment")
        expect_fault(api.call("GET", "/v1.0/t1/instances/%00"), 404, None, "NUL in a segment")
        expect_fault(api.call("GET", "/v1.0/t1/instances/" + api.ids["t2"][0]), 404, "could not be found",
                     "another tenant's instance")


def test_instance_shapes_match_trove():
    with harness.Env() as env:
        api = Api(env, instances=("t1:1",))
        iid = api.ids["t1"][0]
        code, body, headers = api.call("GET", f"/v1.0/t1/instances/{iid}")
        check(code == 200 and headers["Content-Type"] == "application/json", f"show: {code} {headers}")
        inst = body["instance"]
        for key in ("id", "name", "status", "links", "flavor", "datastore", "volume", "created", "updated"):
            check(key in inst, f"instance show lacks {key}: {inst}")
        check(inst["flavor"]["id"] == "1" and inst["datastore"] == {"type": "mysql", "version": "10.11",
                                                                     "version_number": "10.11"},
              f"flavor/datastore: {inst}")
        check(inst["volume"] == {"size": 1} and inst["status"] == "ACTIVE", f"volume/status: {inst}")
        check([l["rel"] for l in inst["links"]] == ["self", "bookmark"] and
              inst["links"][0]["href"].endswith(f"/v1.0/t1/instances/{iid}"), f"links: {inst['links']}")
        code, body, _ = api.call("GET", "/v1.0/t1/flavors")
        f = body["flavors"][0]
        check(code == 200 and f["id"] == 1 and f["str_id"] == "1" and f["ram"] == 512 and "links" in f,
              f"flavor shape: {f}")
        code, body, _ = api.call("GET", "/v1.0/t1/datastores")
        names = sorted(d["name"] for d in body["datastores"])
        check(names == ["mysql", "postgresql", "redis"], f"datastores: {names}")
        mysql = [d for d in body["datastores"] if d["name"] == "mysql"][0]
        check(mysql["default_version"] == mysql["versions"][0]["id"], f"default version: {mysql}")
        code, body, _ = api.call("GET", "/v1.0/t1/datastores/mysql/versions/10.11")
        check(code == 200 and body["version"]["name"] == "10.11" and body["version"]["datastore"] == mysql["id"],
              f"version show: {body}")
        vid = body["version"]["id"]
        code, body2, _ = api.call("GET", f"/v1.0/t1/datastores/versions/{vid}")
        check(code == 200 and body2["version"]["id"] == vid, f"version by id: {body2}")
        expect_fault(api.call("GET", "/v1.0/t1/datastores/nosuch"), 404, "cannot be found", "unknown datastore")
        expect_fault(api.call("GET", "/v1.0/t1/datastores/mysql/versions/9.9"), 404, None, "unknown version")


def follow_pages(api, path, key, token=None):
    """Every item of a paged list, following the next links; and the pages' sizes."""
    items, sizes, url = [], [], path
    for _ in range(100):
        code, body, _ = api.call("GET", url, token=token)
        check(code == 200, f"page {url}: {code} {body}")
        items += body[key]
        sizes.append(len(body[key]))
        nxt = [l["href"] for l in body.get("links", []) if l["rel"] == "next"]
        if not nxt:
            return items, sizes
        check(nxt[0].startswith(api.url("/v1.0/")), f"next link is absolute on this server: {nxt[0]}")
        url = nxt[0][len(api.url("")):]
    raise AssertionError("paging does not end")


def test_paging_with_limit_and_marker():
    with harness.Env() as env:
        api = Api(env, instances=("t1:7", "t2:2"), extra=["--page-size", "3"])
        code, body, _ = api.call("GET", "/v1.0/t1/instances?limit=1000")
        order = [i["id"] for i in body["instances"]]
        check(sorted(order) == sorted(api.ids["t1"]), f"one page holds every instance of t1: {order}")
        items, sizes = follow_pages(api, "/v1.0/t1/instances?limit=2&include_clustered=False", "instances")
        check([i["id"] for i in items] == order, f"paged ids {[i['id'] for i in items]} != {order}")
        check(sizes == [2, 2, 2, 1], f"page sizes: {sizes}")
        items, sizes = follow_pages(api, "/v1.0/t1/instances", "instances")
        check(sizes == [3, 3, 1], f"default page size 3: {sizes}")
        code, body, _ = api.call("GET", "/v1.0/t1/instances/detail?limit=100")
        check(code == 200 and len(body["instances"]) == 7 and "links" not in body and "created" in body["instances"][0],
              "detail list on one page, no next link")
        code, body, _ = api.call("GET", f"/v1.0/t1/instances?marker={order[4]}")
        check([i["id"] for i in body["instances"]] == order[5:], "marker starts after that id")
        expect_fault(api.call("GET", "/v1.0/t1/instances?limit=0"), 400, "limit", "limit 0")
        expect_fault(api.call("GET", "/v1.0/t1/instances?limit=x"), 400, "limit", "limit x")
        expect_fault(api.call("GET", "/v1.0/t1/instances?marker=nosuch"), 400, "marker", "unknown marker")
        expect_fault(api.call("GET", f"/v1.0/t1/instances?marker={api.ids['t2'][0]}"), 400, "marker",
                     "another tenant's id as marker")


# ------------------------------------------------------------ tokens and tenants

def test_tokens_and_tenant_isolation():
    with harness.Env() as env:
        api = Api(env, tokens=True)
        t1_id, t2_id = api.ids["t1"][0], api.ids["t2"][0]
        expect_fault(api.call("GET", "/v1.0/t1/instances"), 401, "X-Auth-Token", "no token")
        expect_fault(api.call("GET", "/v1.0/t1/instances", token="notused"), 401, None, "unknown token")
        msg = expect_fault(api.call("GET", "/v1.0/t2/instances", token=TOKEN_T1), 403, None, "t1's token, t2's URL")
        check(TOKEN_T1 not in msg, "a fault never repeats the token")
        expect_fault(api.call("GET", "/v1.0/t2/instances", token=TOKEN_OPS), 403, None, "admin on another URL")
        code, body, _ = api.call("GET", "/v1.0/t2/instances", token=TOKEN_T2)
        check(code == 200 and sorted(i["id"] for i in body["instances"]) == sorted(api.ids["t2"]),
              f"t2 sees only its instances: {body}")
        check(all("tenant_id" not in i for i in body["instances"]), "tenant_id is for admins only")
        # Another tenant's object: 404, exactly like one that does not exist.
        a = expect_fault(api.call("GET", f"/v1.0/t2/instances/{t1_id}", token=TOKEN_T2), 404)
        b = expect_fault(api.call("GET", "/v1.0/t2/instances/00000000-0000-0000-0000-000000000000",
                                  token=TOKEN_T2), 404)
        check(a.replace(t1_id, "X") == b.replace("00000000-0000-0000-0000-000000000000", "X"),
              f"another tenant's instance must look missing: {a!r} vs {b!r}")
        for method, path, body in [("DELETE", f"/v1.0/t2/instances/{t1_id}", None),
                                   ("POST", f"/v1.0/t2/instances/{t1_id}/action", {"restart": {}}),
                                   ("GET", f"/v1.0/t2/instances/{t1_id}/users", None),
                                   ("POST", f"/v1.0/t2/instances/{t1_id}/databases", {"databases": [{"name": "d"}]}),
                                   ("GET", f"/v1.0/t2/instances/{t1_id}/root", None)]:
            expect_fault(api.call(method, path, body, token=TOKEN_T2), 404, None, f"{method} {path} as t2")
        code, body, _ = api.call("GET", f"/v1.0/t1/instances/{t1_id}", token=TOKEN_T1)
        check(code == 200 and body["instance"]["id"] == t1_id, "t1 reads its own instance")
        # A tenant id that breaks the rule is not found.
        expect_fault(api.call("GET", "/v1.0/t%22x/instances", token=TOKEN_T1), 404, None, "quoted tenant")


def test_no_token_mode_is_loopback_only():
    with harness.Env() as env:
        reg = "sqlite:" + env.path("r.db")
        cp = subprocess.run([SERVER, "serve", "--registry", reg, "--listen", "0.0.0.0:0"], capture_output=True,
                            text=True, timeout=30)
        check(cp.returncode != 0 and "not loopback" in cp.stderr, f"refuses 0.0.0.0 without tokens: {cp.stderr}")
        api = Api(env, instances=())
        with open(api.proc.log_path) as f:
            check("WITHOUT TOKENS" in f.read(), "a loud warning at start")
        tokens = harness.secret_file(env.path("tok2"), f"{TOKEN_T1} t1\n")
        p = env.spawn([SERVER, "serve", "--registry", reg, "--listen", "0.0.0.0:0", "--tokens", tokens], "api2")
        harness.wait_for(lambda: "PORT" in open(p.log_path).read(), 10, "api with tokens on 0.0.0.0")


def test_admin_routes_add_and_disable_versions_and_flavors():
    with harness.Env() as env:
        api = Api(env, instances=(), tokens=True)
        body = {"version": {"name": "10.6", "datastore_name": "mysql", "datastore_manager": "mysql",
                            "image": "", "image_tags": [], "packages": [], "active": True, "default": False,
                            "engine": {"binary": "/usr/sbin/mariadbd"}}}
        before = api.dump()
        expect_fault(api.call("POST", "/v1.0/t1/mgmt/datastore-versions", body, token=TOKEN_T1), 403, "admin",
                     "a tenant without the admin role")
        bad = json.loads(json.dumps(body))
        bad["version"]["engine"] = {"binary": "relative/path"}
        expect_fault(api.call("POST", "/v1.0/ops/mgmt/datastore-versions", bad, token=TOKEN_OPS), 400, "absolute")
        bad["version"]["engine"] = {"binary": "/x", "shell": "rm"}
        expect_fault(api.call("POST", "/v1.0/ops/mgmt/datastore-versions", bad, token=TOKEN_OPS), 400,
                     "Unknown field")
        check(api.dump() == before, "refused admin requests changed nothing")
        code, _, _ = api.call("POST", "/v1.0/ops/mgmt/datastore-versions", body, token=TOKEN_OPS)
        check(code == 202, f"version create: {code}")
        code, got, _ = api.call("GET", "/v1.0/t1/datastores/mysql/versions/10.6", token=TOKEN_T1)
        check(code == 200 and "active" not in got["version"], f"the new version, tenant view: {got}")
        vid = got["version"]["id"]
        code, got, _ = api.call("GET", f"/v1.0/ops/mgmt/datastore-versions/{vid}", token=TOKEN_OPS)
        check(got["version"]["engine"] == {"binary": "/usr/sbin/mariadbd"} and got["version"]["active"] is True,
              f"admin view: {got}")
        code, _, _ = api.call("PATCH", f"/v1.0/ops/mgmt/datastore-versions/{vid}", {"active": False},
                              token=TOKEN_OPS)
        check(code == 202, f"disable: {code}")
        expect_fault(api.call("GET", "/v1.0/t1/datastores/mysql/versions/10.6", token=TOKEN_T1), 404, None,
                     "a disabled version is hidden from tenants")
        create = create_with(datastore={"type": "mysql", "version": "10.6"})
        expect_fault(api.call("POST", "/v1.0/ops/instances", create, token=TOKEN_OPS), 400, "not active",
                     "no instance on a disabled version")
        code, _, _ = api.call("PATCH", f"/v1.0/ops/mgmt/datastore-versions/{vid}", {"active": True, "default": True},
                              token=TOKEN_OPS)
        code, got, _ = api.call("GET", "/v1.0/t1/datastores/mysql", token=TOKEN_T1)
        check(got["datastore"]["default_version"] == vid, f"made default: {got}")
        code, got, _ = api.call("POST", "/v1.0/ops/mgmt/flavors",
                                {"flavor": {"flavor_id": "auto", "name": "tiny", "ram": 256, "disk": 0, "vcpu": 1,
                                            "ephemeral": 0, "swap": 0, "rxtx_factor": "1.0", "is_public": "True"}},
                                token=TOKEN_OPS)
        check(code == 200 and got["flavor"]["ram"] == 256, f"flavor create: {code} {got}")
        fid = got["flavor"]["id"]
        code, got, _ = api.call("GET", f"/v1.0/t1/flavors/{fid}", token=TOKEN_T1)
        check(code == 200 and got["flavor"]["name"] == "tiny", f"flavor visible: {got}")
        code, _, _ = api.call("DELETE", f"/v1.0/ops/mgmt/flavors/{fid}", token=TOKEN_OPS)
        check(code == 202, "flavor delete")
        expect_fault(api.call("GET", f"/v1.0/t1/flavors/{fid}", token=TOKEN_T1), 404)
        # the stock client's admin commands
        ep = api.url("/v1.0/ops")
        cp = openstack(["datastore", "version", "create", "7.2", "redis", "redis", ""], ep, TOKEN_OPS)
        check(cp.returncode == 0, f"openstack datastore version create: {cp.stderr}")
        rows = ok_json(openstack(["datastore", "version", "list", "redis", "-f", "json"], ep, TOKEN_OPS), "versions")
        new = [r for r in rows if r["Name"] == "7.2"]
        check(len(new) == 1, f"7.2 listed: {rows}")
        cp = openstack(["datastore", "version", "set", new[0]["ID"], "--disable"], ep, TOKEN_OPS)
        check(cp.returncode == 0, f"openstack datastore version set --disable: {cp.stderr}")
        code, got, _ = api.call("GET", f"/v1.0/ops/mgmt/datastore-versions/{new[0]['ID']}", token=TOKEN_OPS)
        check(got["version"]["active"] is False, f"disabled: {got}")


# ------------------------------------------------------------ strict input

GOOD_CREATE = {"instance": {"name": "db1", "flavorRef": "1", "volume": {"size": 1, "type": None},
                            "datastore": {"type": "mysql", "version": "10.11"},
                            "databases": [{"name": "app"}],
                            "users": [{"name": "u1", "password": "pw-1", "databases": [{"name": "app"}]}],
                            "access": {"is_public": False}}}


def create_with(**changes):
    body = json.loads(json.dumps(GOOD_CREATE))
    for k, v in changes.items():
        if v is KeyError:
            body["instance"].pop(k, None)
        else:
            body["instance"][k] = v
    return body


def test_bad_input_is_refused_and_changes_nothing():
    with harness.Env() as env:
        api = Api(env, instances=("t1:1", "t1:1:BUILD"), extra=["--body-limit", "4096"])
        iid = api.ids["t1"][0]
        busy = api.ids["t1"][1]
        before = api.dump()
        long_name = "a" * 1000
        cases = [
            ("malformed JSON", "POST", "/v1.0/t1/instances", None, b'{"instance": {"name": "x",', 400, "Malformed"),
            ("trailing garbage", "POST", "/v1.0/t1/instances", None, b'{"instance": {}} x', 400, "Malformed"),
            ("duplicate keys", "POST", "/v1.0/t1/instances", None, b'{"instance": {"name": "a", "name": "b"}}', 400,
             "Malformed"),
            ("NUL in a string", "POST", "/v1.0/t1/instances", None,
             b'{"instance": {"name": "a\\u0000b", "flavorRef": "1", "volume": {"size": 1}}}', 400, None),
            ("not an object", "POST", "/v1.0/t1/instances", [1, 2], None, 400, "object"),
            ("unknown top-level field", "POST", "/v1.0/t1/instances", {**GOOD_CREATE, "extra": 1}, None, 400,
             "Unknown field 'extra'"),
            ("unknown instance field", "POST", "/v1.0/t1/instances", create_with(colour="red"), None, 400,
             "Unknown field 'colour' in instance"),
            ("unknown volume field", "POST", "/v1.0/t1/instances", create_with(volume={"size": 1, "iops": 9}), None,
             400, "instance.volume"),
            ("unknown database field", "POST", "/v1.0/t1/instances",
             create_with(databases=[{"name": "app", "owner": "x"}]), None, 400, "instance.databases[]"),
            ("wrong type: name", "POST", "/v1.0/t1/instances", create_with(name=5), None, 400, "must be a string"),
            ("wrong type: size", "POST", "/v1.0/t1/instances", create_with(volume={"size": "big"}), None, 400,
             "integer"),
            ("wrong type: databases", "POST", "/v1.0/t1/instances", create_with(databases={"name": "x"}), None, 400,
             "must be a list"),
            ("wrong type: flavorRef", "POST", "/v1.0/t1/instances", create_with(flavorRef=True), None, 400,
             "flavorRef"),
            ("missing name", "POST", "/v1.0/t1/instances", create_with(name=KeyError), None, 400, "Missing field"),
            ("missing volume", "POST", "/v1.0/t1/instances", create_with(volume=KeyError), None, 400, "volume"),
            ("quote in name", "POST", "/v1.0/t1/instances", create_with(name="a'b"), None, 400, "instance name"),
            ("double quote in name", "POST", "/v1.0/t1/instances", create_with(name='a"b'), None, 400, "name"),
            ("1000-character name", "POST", "/v1.0/t1/instances", create_with(name=long_name), None, 400, "name"),
            ("quote in database name", "POST", "/v1.0/t1/instances", create_with(databases=[{"name": "a'b"}]), None,
             400, "database name"),
            ("1000-character user", "POST", "/v1.0/t1/instances",
             create_with(users=[{"name": long_name, "password": "p"}]), None, 400, "user name"),
            ("user's database not created", "POST", "/v1.0/t1/instances",
             create_with(users=[{"name": "u", "password": "p", "databases": [{"name": "other"}]}]), None, 400,
             "created with the instance"),
            ("duplicate database", "POST", "/v1.0/t1/instances",
             create_with(databases=[{"name": "a"}, {"name": "a"}]), None, 400, "twice"),
            ("control character in password", "POST", "/v1.0/t1/instances",
             create_with(users=[{"name": "u", "password": "p\nw"}], databases=KeyError), None, 400, "password"),
            ("unknown flavor", "POST", "/v1.0/t1/instances", create_with(flavorRef="99"), None, 404, "Flavor"),
            ("unknown datastore", "POST", "/v1.0/t1/instances", create_with(datastore={"type": "oracle"}), None,
             404, "Datastore"),
            ("inactive version", "POST", "/v1.0/t1/instances", create_with(datastore={"type": "redis",
                                                                                      "version": "6.0"}), None,
             400, "not active"),
            ("volume too large", "POST", "/v1.0/t1/instances", create_with(volume={"size": 10 ** 9}), None, 400,
             "from 1 to"),
            ("public access", "POST", "/v1.0/t1/instances", create_with(access={"is_public": True}), None, 501,
             "Public"),
            ("replicas", "POST", "/v1.0/t1/instances", create_with(replica_of=iid), None, 501, "Replication"),
            ("body over the limit", "POST", "/v1.0/t1/instances", create_with(name="x" * 5000), None, 413,
             "limit"),
            ("body on a GET", "GET", "/v1.0/t1/instances", {"a": 1}, None, 400, "no body"),
            ("action: two at once", "POST", f"/v1.0/t1/instances/{iid}/action", {"restart": {}, "resize": {}},
             None, 400, "exactly one"),
            ("action: unknown", "POST", f"/v1.0/t1/instances/{iid}/action", {"reboot": {}}, None, 400,
             "Unknown field"),
            ("action: restart with args", "POST", f"/v1.0/t1/instances/{iid}/action", {"restart": {"now": 1}},
             None, 400, "empty object"),
            ("resize: both", "POST", f"/v1.0/t1/instances/{iid}/action",
             {"resize": {"flavorRef": "2", "volume": {"size": 2}}}, None, 400, "either"),
            ("resize: same flavor", "POST", f"/v1.0/t1/instances/{iid}/action", {"resize": {"flavorRef": "1"}},
             None, 400, "No change"),
            ("resize: smaller volume", "POST", f"/v1.0/t1/instances/{iid}/action",
             {"resize": {"volume": {"size": 1}}}, None, 400, "larger"),
            ("restart while building", "POST", f"/v1.0/t1/instances/{busy}/action", {"restart": {}}, None, 422,
             "status was BUILD"),
            ("resize while building", "POST", f"/v1.0/t1/instances/{busy}/action", {"resize": {"flavorRef": "2"}},
             None, 422, "status was BUILD"),
            ("users while building", "POST", f"/v1.0/t1/instances/{busy}/users",
             {"users": [{"name": "u", "password": "p"}]}, None, 422, "BUILD"),
            ("user with a quote (URL)", "GET", f"/v1.0/t1/instances/{iid}/users/a%27b", None, None, 400,
             "user name"),
            ("database with a quote (URL)", "DELETE", f"/v1.0/t1/instances/{iid}/databases/a%22b", None, None,
             400, "database name"),
            ("user list with unknown field", "POST", f"/v1.0/t1/instances/{iid}/users",
             {"users": [{"name": "u", "password": "p", "superuser": True}]}, None, 400, "Unknown field"),
            ("grant without databases", "PUT", f"/v1.0/t1/instances/{iid}/users/u/databases", {"databases": []},
             None, 400, "databases"),
            ("rename a user", "PUT", f"/v1.0/t1/instances/{iid}/users/u", {"user": {"name": "v"}}, None, 501,
             "Renaming"),
            ("root with unknown field", "POST", f"/v1.0/t1/instances/{iid}/root", {"pw": "x"}, None, 400,
             "Unknown field"),
            ("unknown tenant id", "GET", "/v1.0/bad%20tenant/instances", None, None, 404, "tenant"),
        ]
        for what, method, path, body, raw, status, contains in cases:
            expect_fault(api.call(method, path, body, raw=raw), status, contains, what)
            after = api.dump()
            check(after == before, f"{what}: the registry changed:\n--- before\n{before}\n--- after\n{after}")
        expect_fault(api.call("POST", "/v1.0/t1/instances", raw=b"a=b",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, None, "form body")
        check(api.dump() == before, "form body: the registry changed")


def test_valid_requests_reach_the_core():
    """No instance module and no agents here: what passes the API's checks is
    answered by the core (501 for instance.*, 422 'not connected' for agent
    work), which proves the request was accepted by the API."""
    with harness.Env() as env:
        api = Api(env, instances=("t1:1",))
        iid = api.ids["t1"][0]
        expect_fault(api.call("POST", "/v1.0/t1/instances", GOOD_CREATE), 501, "instance.create")
        expect_fault(api.call("POST", f"/v1.0/t1/instances/{iid}/action", {"restart": {}}), 501,
                     "instance.restart")
        expect_fault(api.call("POST", f"/v1.0/t1/instances/{iid}/action", {"resize": {"volume": {"size": 3}}}), 501,
                     "instance.resize_volume")
        expect_fault(api.call("DELETE", f"/v1.0/t1/instances/{iid}"), 501, "instance.delete")
        for method, path, body in [("GET", "users", None), ("POST", "users", {"users": [{"name": "u1", "password": "p"}]}),
                                   ("GET", "users/u1", None), ("GET", "users/u1@%25/databases", None),
                                   ("PUT", "users/u1/databases", {"databases": [{"name": "app"}]}),
                                   ("DELETE", "users/u1/databases/app", None), ("DELETE", "users/u1", None),
                                   ("PUT", "users", {"users": [{"name": "u1", "password": "n"}]}),
                                   ("GET", "databases", None), ("POST", "databases", {"databases": [{"name": "x"}]}),
                                   ("DELETE", "databases/x", None), ("GET", "root", None), ("POST", "root", None),
                                   ("DELETE", "root", None)]:
            expect_fault(api.call(method, f"/v1.0/t1/instances/{iid}/{path}", body), 422, "not connected",
                         f"{method} {path}")
        # reset_status: the instance shows ERROR; a DELETE then takes the forced way
        code, _, _ = api.call("POST", f"/v1.0/t1/instances/{iid}/action", {"reset_status": {}})
        check(code == 202, f"reset_status: {code}")
        code, body, _ = api.call("GET", f"/v1.0/t1/instances/{iid}")
        check(body["instance"]["status"] == "ERROR", f"after reset_status: {body['instance']['status']}")
        expect_fault(api.call("DELETE", f"/v1.0/t1/instances/{iid}"), 501, "instance.force_delete")


def test_many_requests_on_one_connection():
    with harness.Env() as env:
        api = Api(env, instances=("t1:3",))
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        for i in range(50):
            conn.request("GET", "/v1.0/t1/instances" if i % 2 else "/v1.0/t1/nothing")
            resp = conn.getresponse()
            resp.read()
            check(resp.status == (200 if i % 2 else 404), f"request {i}: {resp.status}")
        # a 413 that was drained leaves the connection usable
        conn.request("POST", "/v1.0/t1/instances", body=b"x" * (70 * 1024), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        check(resp.status == 413 and "overLimit" in body, f"413: {resp.status} {body}")
        conn.close()


# ------------------------------------------------------------ the stock client

def openstack(args, endpoint, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = os.environ.get("TMPDIR", "/tmp")
    if token:
        argv = [OPENSTACK, "--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint", endpoint]
    else:
        env.update({"OS_AUTH_TYPE": "none", "OS_ENDPOINT": endpoint})
        argv = [OPENSTACK]
    return subprocess.run(argv + args, capture_output=True, text=True, env=env, timeout=120)


def ok_json(cp, what):
    check(cp.returncode == 0, f"{what}: exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
    return json.loads(cp.stdout)


def test_stock_client_without_tokens():
    with harness.Env() as env:
        api = Api(env, instances=("t1:3",))
        ep = api.url("/v1.0/t1")
        rows = ok_json(openstack(["database", "instance", "list", "-f", "json"], ep), "instance list")
        check(sorted(r["ID"] for r in rows) == sorted(api.ids["t1"]), f"instance list: {rows}")
        check(all(r["Datastore"] == "mysql" and r["Status"] == "ACTIVE" and r["Size"] == 1 for r in rows), f"{rows}")
        show = ok_json(openstack(["database", "instance", "show", "inst-1", "-f", "json"], ep), "show by name")
        check(show["id"] == api.ids["t1"][1] and show["flavor"] == "1", f"show: {show}")
        flavors = ok_json(openstack(["database", "flavor", "list", "-f", "json"], ep), "flavor list")
        check([f["Name"] for f in flavors] == ["small", "medium", "large"], f"flavors: {flavors}")
        ds = ok_json(openstack(["datastore", "list", "-f", "json"], ep), "datastore list")
        check(sorted(d["Name"] for d in ds) == ["mysql", "postgresql", "redis"], f"datastores: {ds}")
        versions = ok_json(openstack(["datastore", "version", "list", "mysql", "-f", "json"], ep), "versions")
        check([v["Name"] for v in versions] == ["10.11"], f"versions: {versions}")
        before = api.dump()
        cp = openstack(["database", "instance", "create", "db1", "--flavor", "small", "--size", "2", "--datastore",
                        "mysql", "--datastore-version", "10.11", "--databases", "app", "--users", "u1:pw1"], ep)
        check(cp.returncode != 0 and "instance.create" in cp.stderr,
              f"the stock create passes the API's checks and reaches the core: {cp.stdout}{cp.stderr}")
        check(api.dump() == before, "a create nobody carried out changed nothing")
        for args, expect in [(["database", "instance", "restart", "inst-0"], "instance.restart"),
                             (["database", "instance", "resize", "volume", "inst-0", "3"], "instance.resize_volume"),
                             (["database", "instance", "resize", "flavor", "inst-0", "medium"],
                              "instance.resize_flavor"),
                             (["database", "db", "create", "inst-0", "app"], "not connected"),
                             (["database", "db", "list", "inst-0"], "not connected"),
                             (["database", "user", "create", "inst-0", "u1", "pw1", "--databases", "app"],
                              "not connected"),
                             (["database", "user", "show", "inst-0", "u1"], "not connected"),
                             (["database", "user", "grant", "access", "inst-0", "u1", "app"], "not connected"),
                             (["database", "root", "enable", "inst-0"], "not connected"),
                             (["database", "configuration", "parameter", "list", "10.11", "--datastore", "mysql"],
                              "not connected")]:
            cp = openstack(args, ep)
            check(cp.returncode != 0 and expect in cp.stderr, f"{' '.join(args)}: {cp.stderr}")
        check(api.dump() == before, "nothing changed")


def test_stock_client_with_tokens():
    with harness.Env() as env:
        api = Api(env, tokens=True)
        rows = ok_json(openstack(["database", "instance", "list", "-f", "json"], api.url("/v1.0/t2"), TOKEN_T2),
                       "t2 list")
        check(sorted(r["ID"] for r in rows) == sorted(api.ids["t2"]), f"t2 list: {rows}")
        cp = openstack(["database", "instance", "show", api.ids["t1"][0]], api.url("/v1.0/t2"), TOKEN_T2)
        check(cp.returncode != 0 and "No instance" in cp.stderr, f"t1's instance is not found for t2: {cp.stderr}")
        cp = openstack(["database", "instance", "list"], api.url("/v1.0/t1"), TOKEN_T2)
        check(cp.returncode != 0 and "403" in cp.stderr, f"t2's token on t1's URL: {cp.stderr}")
        cp = openstack(["database", "instance", "list"], api.url("/v1.0/t1"), "wrong-token-0123456789")
        check(cp.returncode != 0 and "401" in cp.stderr, f"a wrong token: {cp.stderr}")


# ------------------------------------------------------------ trovectl over REST

def trovectl(api, args, tenant="t1", token_file=None, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
    env.update({"TROVE_URL": api.url(""), "TROVE_TENANT": tenant})
    argv = [harness.trovectl_binary()] + (["--token-file", token_file] if token_file else []) + args
    return subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin, timeout=120)


def test_trovectl_over_rest():
    with harness.Env() as env:
        api = Api(env, instances=("t1:2", "t1:1", "t2:1"), tokens=True)
        tok1 = harness.secret_file(env.path("t1.token"), TOKEN_T1 + "\n")
        cp = trovectl(api, ["--json", "list"], token_file=tok1)
        check(cp.returncode == 0, f"trovectl list: {cp.stderr}")
        check(sorted(i["id"] for i in json.loads(cp.stdout)["instances"]) == sorted(api.ids["t1"]), cp.stdout)
        # names resolve to ids; a unique name works, a repeated one is refused with a clear line
        cp = trovectl(api, ["--json", "show", "inst-1"], token_file=tok1)
        check(cp.returncode == 0 and json.loads(cp.stdout)["instance"]["id"] == api.ids["t1"][1], cp.stderr)
        cp = trovectl(api, ["show", "inst-0"], token_file=tok1)
        check(cp.returncode == 1 and cp.stderr.count("\n") == 1 and "More than one instance" in cp.stderr,
              f"ambiguous name: {cp.stderr!r}")
        cp = trovectl(api, ["show", api.ids["t1"][0]], token_file=tok1)
        check(cp.returncode == 0 and f"id: {api.ids['t1'][0]}" in cp.stdout, f"show by id: {cp.stdout}")
        # another tenant's instance, by id or name, is not found
        cp = trovectl(api, ["show", api.ids["t2"][0]], token_file=tok1)
        check(cp.returncode == 1 and "trovectl: not_found: No instance" in cp.stderr, cp.stderr)
        # the token never shows, and a wrong one is one line
        cp = trovectl(api, ["list"], tenant="t2", token_file=tok1)
        check(cp.returncode == 1 and cp.stderr.startswith("trovectl: forbidden:") and TOKEN_T1 not in cp.stderr,
              cp.stderr)
        cp = trovectl(api, ["list"])
        check(cp.returncode == 1 and "unauthorized" in cp.stderr, f"no token: {cp.stderr}")
        # work goes through: passwords come from stdin, and the request passes the API's checks
        cp = trovectl(api, ["create", "db1", "small", "--size", "1", "--datastore", "mysql", "--database", "app",
                            "--user", "bob"], token_file=tok1, stdin="s3cret-pw\n")
        check(cp.returncode == 1 and "instance.create" in cp.stderr and "s3cret" not in cp.stderr + cp.stdout,
              f"create reaches the core: {cp.stderr}")
        cp = trovectl(api, ["create", "db1", "small", "--size", "1", "--user", "bob"], token_file=tok1, stdin="")
        check(cp.returncode == 2 and "standard input" in cp.stderr, f"a user without a password: {cp.stderr}")
        cp = trovectl(api, ["create", "db1", "nosuchflavor", "--size", "1"], token_file=tok1)
        check(cp.returncode == 1 and "No flavor with a name or ID of 'nosuchflavor'" in cp.stderr, cp.stderr)
        cp = trovectl(api, ["resize-volume", "inst-1", "5", "--wait"], token_file=tok1)
        check(cp.returncode == 1 and "instance.resize_volume" in cp.stderr, cp.stderr)
        cp = trovectl(api, ["user-create", "inst-1", "bob", "-", "app"], token_file=tok1, stdin="pw\n")
        check(cp.returncode == 1 and "not connected" in cp.stderr, cp.stderr)
        # a password on stdin is read whole: the longest one passes, a longer one is refused, never cut short
        cp = trovectl(api, ["user-create", "inst-1", "bob", "-", "app"], token_file=tok1, stdin="p" * 255 + "\n")
        check(cp.returncode == 1 and "not connected" in cp.stderr, f"a 255-byte password: {cp.stderr}")
        cp = trovectl(api, ["user-create", "inst-1", "bob", "-", "app"], token_file=tok1, stdin="p" * 1024 + "\n")
        check(cp.returncode == 1 and "Invalid password" in cp.stderr, f"a 1024-byte password: {cp.stderr}")
        for verb in (["user-create", "inst-1", "bob", "-", "app"], ["user-change-password", "inst-1", "bob", "-"],
                     ["root-enable", "inst-1", "--password", "-"],
                     ["create", "db1", "small", "--size", "1", "--user", "bob"]):
            cp = trovectl(api, verb, token_file=tok1, stdin="p" * 1025 + "\n")
            check(cp.returncode == 2 and "longer than 1024 bytes" in cp.stderr and "ppp" not in cp.stderr,
                  f"{verb[0]} with a 1025-byte password: {cp.stderr}")
        cp = trovectl(api, ["user-change-password", "inst-1", "bob", "-"], token_file=tok1, stdin="a\0b\n")
        check(cp.returncode == 2 and "NUL" in cp.stderr, f"a password with a NUL byte: {cp.stderr}")
        cp = trovectl(api, ["flavor-list", "--json"], token_file=tok1)
        check(cp.returncode == 0 and len(json.loads(cp.stdout)["flavors"]) == 3, cp.stderr)
        cp = trovectl(api, ["--json", "show", "nope"], token_file=tok1)
        doc = json.loads(cp.stdout)
        check(cp.returncode == 1 and doc["ok"] is False and doc["error"]["code"] == "not_found", cp.stdout)
        cp = trovectl(api, ["datastore-list", "--wait"], token_file=tok1)
        check(cp.returncode == 2 and "does not take --wait" in cp.stderr, cp.stderr)
        cp = trovectl(api, ["list"], token_file=env.path("missing"))
        check(cp.returncode == 2 and "--token-file" in cp.stderr, cp.stderr)


if __name__ == "__main__":
    harness.run_tests(globals())
