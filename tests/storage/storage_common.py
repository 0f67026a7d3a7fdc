"""What the object-storage tests share: one real Swift (swift_server.py) per
test file, the control plane's configuration for it (native Swift with a
TempURL key, and S3 through s3api), and store_tool, which plays the control
plane (scopes, seal, removal) and the guest (streams through signed URLs)."""
import json
import subprocess
import urllib.parse

import harness
from harness import check

PART = 5 * 1024 * 1024          # the smallest part S3 takes: several parts stay small
TEMPURL_KEY = "tempurl-key-for-tests-0123456789"


def tool():
    return harness.build_path("tests", "storage", "store_tool")


class Result:
    def __init__(self, doc, exit_code, stderr):
        self.doc = doc
        self.ok = bool(doc.get("ok"))
        self.code = "ok" if self.ok else doc.get("code", "no_output")
        self.message = doc.get("message", "")
        self.exit_code = exit_code
        self.stderr = stderr

    def __getitem__(self, key):
        return self.doc[key]

    def __repr__(self):
        return f"Result({self.doc!r}, exit={self.exit_code})"


def run_tool(args, stdin=None, timeout=600):
    cp = subprocess.run([tool()] + [str(a) for a in args], input=stdin, capture_output=True, timeout=timeout)
    out = cp.stdout.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(out.splitlines()[-1]) if out else {}
    except json.JSONDecodeError:
        doc = {}
    return Result(doc, cp.returncode, cp.stderr.decode("utf-8", "replace"))


class Store:
    """The control plane's view of one container or bucket, and the guest's
    calls through the scopes it hands out."""

    def __init__(self, env, swift, driver, container, conf=None, **settings):
        self.swift = swift
        self.driver = driver
        self.container = container
        if conf:            # a configuration written by the test itself
            self.conf = conf
            return
        section = {"driver": driver, "container": container, "part_size": PART, "upload_threads": 3}
        if driver == "swift":
            section.update(auth_url=swift.auth_url, user=swift.user, key=swift.key, tempurl_key=TEMPURL_KEY)
        else:
            access, secret = swift.s3_keys()
            section.update(endpoint=swift.url, region=swift.s3_region, access_key=access, secret_key=secret)
        section.update(settings)
        self.conf = harness.write_ini(env.path(f"control-{driver}-{container}.conf"), {"backup_storage": section},
                                      mode=0o600)

    def control(self, *args):
        return run_tool(["control", self.conf, "backup_storage", *args])

    def must(self, *args):
        r = self.control(*args)
        check(r.ok, f"control {' '.join(map(str, args))}: {r}")
        return r

    def scope(self, write=(), read=(), ttl=None):
        """A scope document (the request's "storage" argument)."""
        args = []
        if ttl is not None:
            args += ["--ttl", ttl]
        for w in write:
            args += ["--write", w]
        for r in read:
            args += ["--read", r]
        return self.must("scope", *args)["storage"]

    @staticmethod
    def put(scope, backup_id, size, seed, *extra):
        return run_tool(["put", backup_id, size, seed, *extra], json.dumps(scope).encode())

    @staticmethod
    def get(scope, backup_id, checksum, size, seed):
        return run_tool(["get", backup_id, checksum, size, seed], json.dumps(scope).encode())

    def write_backup(self, backup_id, size, seed, max_size=None):
        """A whole backup as the control plane runs it: scope, guest upload, seal."""
        scope = self.scope(write=[f"{backup_id}:{max_size}" if max_size else backup_id])
        r = self.put(scope, backup_id, size, seed)
        check(r.ok, f"writing {backup_id}: {r}")
        self.must("seal", backup_id, r["stored_size"])
        return r

    # --- direct access with the control plane's credentials, for checks and damage
    def object_url(self, name):
        storage_url, _ = self.swift.token()
        return f"{storage_url}/{self.container}/{urllib.parse.quote(name)}"

    def swift_names(self, prefix):
        status, _, body = self.swift.authed("GET", f"{self.container}?format=json&prefix={urllib.parse.quote(prefix)}")
        check(status in (200, 204), f"listing {self.container}: {status} {body[:200]!r}")
        return [o["name"] for o in json.loads(body or b"[]")]


def grant(scope, backup_id):
    for g in scope["backups"]:
        if g["id"] == backup_id:
            return g
    raise KeyError(backup_id)


def tempurl(g, name, method="get", prefix=None):
    """A TempURL of grant g for object `name` (a path inside the container)."""
    q = urllib.parse.urlencode({"temp_url_sig": g["sig_" + method], "temp_url_expires": g["temp_url_expires"],
                                "temp_url_prefix": prefix if prefix is not None else g["prefix"]})
    return f"{g['account_url']}/{g['container']}/{name}?{q}"


def swap_path(url, new_path):
    """The same presigned URL (query, signature) aimed at another object."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, new_path, u.query, ""))


def refused(status):
    return status in (401, 403)
