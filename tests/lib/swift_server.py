"""A real OpenStack Swift for the backup-storage tests: memcached plus the
account, container, object and proxy servers from Debian's packages, one
replica on plain directories, on free loopback ports in a temp dir. The proxy
serves the native API (tempauth, tempurl, slo) and S3 (s3api before tempauth).
Every process is a child registered on the harness.Env, so it is stopped even
when a test fails.

Swift always reads /etc/swift/swift.conf (hash path suffix, storage policies);
the packages install one. When it is absent this module writes one with a
random hash suffix and leaves it in place (Swift refuses to start without it),
and says so on stderr.
"""
import http.client
import json
import os
import secrets
import subprocess
import sys
import urllib.parse

import harness

SWIFT_CONF = "/etc/swift/swift.conf"
PYTHON = "/usr/bin/python3"   # Debian's swift code needs the system interpreter
PART_POWER = 6

# tempauth users: account "test" (the control plane's), account "other" (a tenant
# that must not see the first one's backups).
USERS = {
    "test:tester": ("testing", ".admin"),
    "other:tester": ("other-key", ".admin"),
}


def ensure_swift_conf():
    """Swift reads /etc/swift/swift.conf whatever its config says; write a
    minimal one only when none exists."""
    if os.path.exists(SWIFT_CONF):
        return False
    os.makedirs(os.path.dirname(SWIFT_CONF), exist_ok=True)
    with open(SWIFT_CONF, "w") as f:
        f.write("[swift-hash]\n"
                f"swift_hash_path_suffix = {secrets.token_hex(16)}\n"
                "[storage-policy:0]\nname = Policy-0\ndefault = yes\n")
    print(f"swift_server: wrote {SWIFT_CONF} (it was absent; Swift always reads it)", file=sys.stderr)
    return True


class SwiftServer:
    def __init__(self, env, workers=0):
        self.env = env
        self.dir = env.mkdir("swift", mode=0o700)
        self.devices = env.mkdir("swift", "srv")
        env.mkdir("swift", "srv", "d1")
        self.ports = {name: harness.free_port() for name in ("memcached", "account", "container", "object", "proxy")}
        self.workers = workers
        self.procs = {}
        self.url = f"http://127.0.0.1:{self.ports['proxy']}"
        self.auth_url = self.url + "/auth/v1.0"
        self.user, self.key = "test:tester", USERS["test:tester"][0]
        self.s3_region = "us-east-1"
        env.callback(self.stop)

    # ------------------------------------------------------------------ setup
    def _rings(self):
        """account/container/object rings of one device each, made by
        swift-ring-builder's own commands (create, add, rebalance). They run in
        one interpreter: nine separate starts of the tool cost seconds."""
        commands = []
        for kind in ("account", "container", "object"):
            builder = os.path.join(self.dir, kind + ".builder")
            commands += [[builder, "create", str(PART_POWER), "1", "1"],
                         [builder, "add", f"r1z1-127.0.0.1:{self.ports[kind]}/d1", "1"],
                         [builder, "rebalance"]]
        script = ("import json, sys\nfrom swift.cli.ringbuilder import main\n"
                  "for args in json.loads(sys.argv[1]):\n"
                  "    try:\n        main(['swift-ring-builder'] + args)\n"
                  "    except SystemExit as e:\n"
                  "        if e.code not in (None, 0, 1):\n"
                  "            sys.exit(f'swift-ring-builder {args[1]} failed ({e.code})')\n")
        cp = subprocess.run([PYTHON, "-c", script, json.dumps(commands)], capture_output=True)
        missing = [k for k in ("account", "container", "object")
                   if not os.path.exists(os.path.join(self.dir, k + ".ring.gz"))]
        if cp.returncode != 0 or missing:
            raise RuntimeError(f"ring building failed (missing {missing}): {cp.stdout.decode()[-2000:]} "
                               f"{cp.stderr.decode()[-2000:]}")

    def _common(self, port):
        return (f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nuser = root\nswift_dir = {self.dir}\n"
                f"devices = {self.devices}\nmount_check = false\nworkers = {self.workers}\n"
                "log_level = WARNING\n")

    def _write_storage_conf(self, kind):
        path = os.path.join(self.dir, kind + "-server.conf")
        with open(path, "w") as f:
            f.write(self._common(self.ports[kind]))
            f.write(f"\n[pipeline:main]\npipeline = {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n")
            if kind == "object":
                f.write("network_chunk_size = 1048576\ndisk_chunk_size = 1048576\n")
            if kind == "container":
                f.write("allow_versions = true\n")
        return path

    def _write_proxy_conf(self):
        path = os.path.join(self.dir, "proxy-server.conf")
        users = "".join(f"user_{u.replace(':', '_')} = {k} {g}\n" for u, (k, g) in USERS.items())
        with open(path, "w") as f:
            f.write(self._common(self.ports["proxy"]))
            f.write(
                "\n[pipeline:main]\n"
                "pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk "
                "tempurl s3api tempauth copy slo dlo proxy-logging proxy-server\n\n"
                "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
                "allow_account_management = true\nobject_chunk_size = 1048576\nclient_chunk_size = 1048576\n\n"
                "[filter:catch_errors]\nuse = egg:swift#catch_errors\n\n"
                "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n"
                "[filter:healthcheck]\nuse = egg:swift#healthcheck\n\n"
                "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n"
                f"[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:{self.ports['memcached']}\n\n"
                "[filter:listing_formats]\nuse = egg:swift#listing_formats\n\n"
                "[filter:bulk]\nuse = egg:swift#bulk\n\n"
                "[filter:tempurl]\nuse = egg:swift#tempurl\nallowed_digests = sha1 sha256 sha512\n\n"
                f"[filter:s3api]\nuse = egg:swift#s3api\nlocation = {self.s3_region}\n\n"
                f"[filter:tempauth]\nuse = egg:swift#tempauth\nreseller_prefix = AUTH\n{users}\n"
                "[filter:copy]\nuse = egg:swift#copy\n\n"
                "[filter:slo]\nuse = egg:swift#slo\n\n"
                "[filter:dlo]\nuse = egg:swift#dlo\n")
        return path

    def start(self):
        ensure_swift_conf()
        self._rings()
        self.procs["memcached"] = harness.Proc(
            ["memcached", "-l", "127.0.0.1", "-p", str(self.ports["memcached"]), "-U", "0", "-u", "root", "-m", "64"],
            os.path.join(self.dir, "memcached.log"))
        for kind in ("account", "container", "object"):
            conf = self._write_storage_conf(kind)
            self.procs[kind] = harness.Proc([PYTHON, f"/usr/bin/swift-{kind}-server", conf, "--verbose"],
                                            os.path.join(self.dir, kind + ".log"))
        # --verbose: warnings and errors (log_level) go to the log file rather than to syslog
        self.procs["proxy"] = harness.Proc(
            [PYTHON, "/usr/bin/swift-proxy-server", self._write_proxy_conf(), "--verbose"],
            os.path.join(self.dir, "proxy.log"))
        for name, port in self.ports.items():
            harness.wait_for(lambda: self._alive(name) and harness.tcp_open("127.0.0.1", port), 30,
                             f"swift {name} on port {port}")
        harness.wait_for(self._ready, 30, "swift proxy (auth and a container PUT)")
        return self

    def _alive(self, name):
        p = self.procs[name]
        if not p.alive():
            raise RuntimeError(f"swift {name} exited: {p.log_tail()}")
        return True

    def _ready(self):
        storage_url, token = self.token()
        status, _, _ = self.request("PUT", storage_url + "/ready-probe", token=token)
        return status in (201, 202)

    def stop(self):
        for name in ("proxy", "object", "container", "account", "memcached"):
            p = self.procs.pop(name, None)
            if p:
                p.stop(timeout=15)

    def logs(self):
        return "\n".join(f"--- {n}\n{p.log_tail(20)}" for n, p in self.procs.items())

    # ----------------------------------------------------------------- client
    def request(self, method, url, headers=None, body=None, token=None):
        """One HTTP request: (status, {lower-case header: value}, body bytes)."""
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            h = dict(headers or {})
            if token:
                h["X-Auth-Token"] = token
            path = u.path + ("?" + u.query if u.query else "")
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def token(self, user=None, key=None):
        """tempauth v1: (storage URL, token)."""
        user = user or self.user
        key = key if key is not None else USERS[user][0]
        status, headers, body = self.request("GET", self.auth_url, {"X-Auth-User": user, "X-Auth-Key": key})
        if status != 200:
            raise RuntimeError(f"tempauth refused {user}: {status} {body[:200]!r}")
        return headers["x-storage-url"], headers["x-auth-token"]

    def authed(self, method, path, headers=None, body=None, user=None):
        """A request as `user` (default the control plane's) to <storage URL>/<path>."""
        storage_url, token = self.token(user)
        return self.request(method, storage_url + "/" + path.lstrip("/"), headers, body, token)

    def s3_keys(self, user=None):
        """s3api with tempauth: access key "account:user", secret = the tempauth key."""
        user = user or self.user
        return user, USERS[user][0]

    def boto3_client(self, user=None):
        import boto3
        from botocore.config import Config
        access, secret = self.s3_keys(user)
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=access, aws_secret_access_key=secret,
                            region_name=self.s3_region,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
