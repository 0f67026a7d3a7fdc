"""Backup storage in a real Swift, through both drivers: native Swift (static
large objects from TempURL-uploaded segments, sealed by the control plane)
and S3 (s3api: presigned multipart uploads). Large pieces of several parts
come back byte for byte; boto3, an independent S3 client, reads what the S3
driver wrote; an interrupted upload never looks complete and its multipart
upload is aborted; one backup's signed URLs are refused by Swift itself on
another backup's objects, and expired ones on their own; damaged pieces
(flipped byte, truncated, missing segment) are caught before any byte is used.
"""
import hashlib
import json
import os
import subprocess
import time

import harness
from harness import check
from storage_common import PART, Store, grant, refused, run_tool, swap_path, tempurl
from swift_server import SwiftServer

SWIFT = None
STORES = {}
SIZE = 2 * PART + PART // 2 + 12345   # three parts, the last one short


def swift_get(store, name):
    return store.swift.authed("GET", f"{store.container}/{name}")


def s3():
    return SWIFT.boto3_client()


def s3_missing(bucket, key):
    try:
        s3().head_object(Bucket=bucket, Key=key)
        return False
    except Exception as exc:   # botocore ClientError 404
        return "404" in str(exc) or "Not Found" in str(exc)


def s3_uploads(bucket, prefix):
    return s3().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


def test_large_pieces_round_trip():
    for driver, store in STORES.items():
        bid = f"big-{driver}"
        scope = store.scope(write=[bid])
        g = grant(scope, bid)
        check(g["part_size"] == PART, f"{driver}: part size {g['part_size']}")
        w = store.put(scope, bid, SIZE, 11)
        check(w.ok and w["raw_size"] == SIZE and w["stored_size"] > 2 * PART, f"{driver}: put: {w}")
        record = {"id": bid, "state": "complete", "checksum": w["checksum"]}
        r = run_tool(["record-put", bid, json.dumps(record)], json.dumps(scope).encode())
        check(r.ok, f"{driver}: record-put: {r}")
        store.must("seal", bid, w["stored_size"])
        if driver == "swift":
            names = store.swift_names(f"{bid}/")
            segs = [n for n in names if n.startswith(f"{bid}/piece.seg/")]
            check(len(segs) == 3, f"swift: segments {segs}")
            check(f"{bid}/piece.manifest" not in names, f"swift: the draft manifest remained: {names}")
            status, headers, _ = store.swift.authed("HEAD", f"{store.container}/{bid}/piece")
            check(status == 200 and headers.get("x-static-large-object") == "True",
                  f"swift: the piece is not a static large object: {status} {headers}")
            check(int(headers["content-length"]) == w["stored_size"], f"swift: piece size {headers}")
        else:
            head = s3().head_object(Bucket=store.container, Key=f"{bid}/piece")
            check(head["ETag"].strip('"').endswith("-3"), f"s3: not a three-part upload: {head['ETag']}")
            check(head["ContentLength"] == w["stored_size"], f"s3: size {head['ContentLength']}")
        read = store.scope(read=[bid])
        r = store.get(read, bid, w["checksum"], SIZE, 11)
        check(r.ok and r["size"] == SIZE, f"{driver}: read back: {r}")
        r = run_tool(["record-get", bid], json.dumps(read).encode())
        check(r.ok and json.loads(r["record"]) == record, f"{driver}: record: {r}")
        listed = store.must("list")["backups"]
        check(bid in listed, f"{driver}: list {listed}")


def test_boto3_reads_what_the_s3_driver_wrote():
    store = STORES["s3"]
    bid = "boto3-check"
    w = store.write_backup(bid, SIZE, 12)
    body = s3().get_object(Bucket=store.container, Key=f"{bid}/piece")["Body"].read()
    check(len(body) == w["stored_size"], f"boto3 read {len(body)} bytes, the driver stored {w['stored_size']}")
    check("sha256:" + hashlib.sha256(body).hexdigest() == w["checksum"], "boto3's bytes hash differently")
    out = subprocess.run(["zstd", "-dc"], input=body, capture_output=True)
    check(out.returncode == 0 and len(out.stdout) == SIZE, f"zstd -dc of boto3's bytes: {out.returncode}, "
          f"{len(out.stdout)} bytes, {out.stderr[-200:]!r}")


def test_interrupted_upload_is_never_complete():
    for driver, store in STORES.items():
        # The guest dies mid-upload: nothing is committed, nothing is cleaned up by it.
        bid = f"died-{driver}"
        scope = store.scope(write=[bid])
        # zstd's worker holds a few MiB back: dying at 4 parts' worth of input leaves parts stored
        r = store.put(scope, bid, 5 * PART, 13, "--die-after", 4 * PART)
        check(r.exit_code == 3, f"{driver}: the upload did not die as asked: {r}")
        if driver == "swift":
            check(swift_get(store, f"{bid}/piece")[0] == 404, "swift: an interrupted piece is visible")
            check(any("piece.seg/" in n for n in store.swift_names(f"{bid}/")), "swift: no segment was sent at all")
        else:
            check(s3_missing(store.container, f"{bid}/piece"), "s3: an interrupted piece is visible")
            check(len(s3_uploads(store.container, f"{bid}/")) == 1, "s3: the multipart upload is not in progress")
        r = store.control("seal", bid)
        check(r.code == "not_found", f"{driver}: sealing an interrupted upload: {r}")
        store.must("remove", bid)
        if driver == "swift":
            check(store.swift_names(f"{bid}/") == [], f"swift: objects left: {store.swift_names(bid + '/')}")
        else:
            check(s3_uploads(store.container, f"{bid}/") == [], "s3: the multipart upload was not aborted")
            check(s3_missing(store.container, f"{bid}/piece"), "s3: a piece appeared")

        # The guest fails mid-upload: it aborts by itself, through its own grant.
        bid = f"failed-{driver}"
        scope = store.scope(write=[bid])
        r = store.put(scope, bid, SIZE, 14, "--fail-after", PART + PART // 2)
        check(r.code == "cancelled", f"{driver}: a failed upload: {r}")
        if driver == "swift":
            check(store.swift_names(f"{bid}/") == [], f"swift: segments left: {store.swift_names(bid + '/')}")
        else:
            check(s3_uploads(store.container, f"{bid}/") == [], "s3: the guest did not abort its multipart upload")
            check(s3_missing(store.container, f"{bid}/piece"), "s3: a failed piece is visible")


def swift_attempts(store, a, b, b_seg_etag):
    """With backup a's grant, every way at backup b's objects; Swift must refuse each."""
    statuses = {
        "GET b's piece": SWIFT.request("GET", tempurl(a, f"{b}/piece"))[0],
        "GET b's record": SWIFT.request("GET", tempurl(a, f"{b}/record.json"))[0],
        "GET b's piece claiming b's prefix": SWIFT.request("GET", tempurl(a, f"{b}/piece", prefix=f"{b}/"))[0],
        "GET b's piece with the prefix cut short": SWIFT.request("GET", tempurl(a, f"{b}/piece",
                                                                                prefix=a["prefix"][:-1]))[0],
        "PUT over b's segment": SWIFT.request("PUT", tempurl(a, f"{b}/piece.seg/00000001", "put"), body=b"x")[0],
        "DELETE b's piece": SWIFT.request("DELETE", tempurl(a, f"{b}/piece", "delete"))[0],
        "list the container": SWIFT.request("GET", tempurl(a, "", prefix=a["prefix"]).replace(
            f"/{a['container']}/?", f"/{a['container']}?"))[0],
    }
    for what, status in statuses.items():
        check(refused(status), f"swift: with {a['id']}'s TempURL, {what} answered {status}")
    # A manifest of a's own naming b's segment: tempurl drops multipart-manifest=put,
    # so it is stored as plain text and never serves b's bytes.
    manifest = json.dumps([{"path": f"/{a['container']}/{b}/piece.seg/00000001", "etag": b_seg_etag,
                            "size_bytes": PART}]).encode()
    status, _, _ = SWIFT.request("PUT", tempurl(a, f"{a['prefix']}evil", "put") + "&multipart-manifest=put",
                                 body=manifest)
    check(status == 201, f"swift: plain PUT in a's own prefix: {status}")
    status, _, body = SWIFT.request("GET", tempurl(a, f"{a['prefix']}evil"))
    check(status == 200 and body == manifest, f"swift: a's 'manifest' served {len(body)} bytes, not its own text")
    for header in ({"X-Static-Large-Object": "True"},
                   {"X-Object-Manifest": f"{a['container']}/{b}/piece.seg/"},
                   {"X-Symlink-Target": f"{a['container']}/{b}/piece"}):
        status, _, _ = SWIFT.request("PUT", tempurl(a, f"{a['prefix']}evil2", "put"), headers=header, body=manifest)
        check(status == 400, f"swift: PUT with {header} through a TempURL answered {status}")


def s3_attempts(store, a, b):
    key_b = f"/{store.container}/{b}/piece"
    statuses = {
        "GET b's piece with a's record URL": SWIFT.request("GET", swap_path(a["record_get"], key_b))[0],
        "GET b's record": SWIFT.request("GET", swap_path(a["record_get"], f"/{store.container}/{b}/record.json"))[0],
        "PUT a part into b's key": SWIFT.request("PUT", swap_path(a["parts"][0], key_b), body=b"x" * 10)[0],
        "PUT over b's record": SWIFT.request("PUT", swap_path(a["record_put"], f"/{store.container}/{b}/record.json"),
                                             body=b"{}")[0],
        "copy b's piece into a's part": SWIFT.request("PUT", a["parts"][0],
                                                      headers={"x-amz-copy-source": key_b}, body=b"")[0],
    }
    for what, status in statuses.items():
        check(refused(status), f"s3: with {a['id']}'s presigned URLs, {what} answered {status}")


def test_one_backups_urls_cannot_reach_another():
    for driver, store in STORES.items():
        b = f"bk-{driver}-10"      # a's id is a string prefix of b's: a prefix without its '/' would cover b
        a = f"bk-{driver}-1"
        wb = store.write_backup(b, SIZE, 15)
        scope = store.scope(write=[a])
        ga = grant(scope, a)
        if driver == "swift":
            _, headers, _ = store.swift.authed("HEAD", f"{store.container}/{b}/piece.seg/00000001")
            swift_attempts(store, ga, b, headers["etag"].strip('"'))
            # a guest's draft that names b's segments is refused at sealing, and nothing is written
            draft = json.dumps([{"path": f"/{store.container}/{b}/piece.seg/00000001",
                                 "etag": headers["etag"].strip('"'), "size_bytes": PART}]).encode()
            status, _, _ = SWIFT.request("PUT", tempurl(ga, f"{a}/piece.manifest", "put"), body=draft)
            check(status == 201, f"swift: the draft PUT: {status}")
            r = store.control("seal", a)
            check(r.code == "checksum_mismatch", f"swift: sealing a draft that names another backup: {r}")
            check(swift_get(store, f"{a}/piece")[0] == 404, "swift: a manifest was written for a foreign draft")
        else:
            s3_attempts(store, ga, b)
        r = store.get(store.scope(read=[b]), b, wb["checksum"], SIZE, 15)
        check(r.ok, f"{driver}: backup b after the attempts: {r}")
        # A request's storage only knows its own backups.
        r = store.put(scope, b, 1000, 1)
        check(not r.ok and "not among the backups" in r.message, f"{driver}: writing b through a's scope: {r}")


def test_expired_urls_are_refused():
    for driver, store in STORES.items():
        old = f"exp-old-{driver}"
        w = store.write_backup(old, PART, 16)
        scope = store.scope(write=[f"exp-{driver}"], read=[old], ttl=2)
        time.sleep(3.5)
        r = store.put(scope, f"exp-{driver}", PART, 17)
        check(r.code == "invalid_argument" and "expired" in r.message, f"{driver}: writing with expired URLs: {r}")
        r = store.get(scope, old, w["checksum"], PART, 16)
        check(r.code == "invalid_argument" and "expired" in r.message, f"{driver}: reading with expired URLs: {r}")
        if driver == "s3":
            check(s3_missing(store.container, f"exp-{driver}/piece"), "s3: an expired upload left a piece")
        store.must("remove", f"exp-{driver}")


def flip_byte(data, at):
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def swift_damage(store):
    """Each kind of damage to a sealed Swift backup is refused before use."""
    seg = lambda bid, i: f"{store.container}/{bid}/piece.seg/{i:08d}"

    def fresh(tag, seed):
        bid = f"dmg-{tag}"
        return bid, store.write_backup(bid, SIZE, seed)

    def refused_read(bid, w, seed, codes, what):
        r = store.get(store.scope(read=[bid]), bid, w["checksum"], SIZE, seed)
        check(r.code in codes and "read-back differs" not in r.message, f"swift: {what}: {r}")

    bid, w = fresh("flip", 20)
    _, _, data = store.swift.authed("GET", seg(bid, 2))
    store.swift.authed("PUT", seg(bid, 2), body=flip_byte(data, 1000))
    refused_read(bid, w, 20, ("checksum_mismatch", "unavailable"), "a flipped byte in a segment")
    # ... and when a manifest vouches for the flipped segment, the checksum still refuses it
    _, _, manifest = store.swift.authed("GET", f"{store.container}/{bid}/piece?multipart-manifest=get")
    segs = json.loads(manifest)
    new = [{"path": "/" + s["name"], "etag": s["hash"], "size_bytes": s["bytes"]} for s in segs]
    new[1]["etag"] = hashlib.md5(flip_byte(data, 1000)).hexdigest()
    status, _, body = store.swift.authed("PUT", f"{store.container}/{bid}/piece?multipart-manifest=put",
                                         body=json.dumps(new).encode())
    check(status == 201, f"re-sealing the flipped segment: {status} {body[:300]!r}")
    refused_read(bid, w, 20, ("checksum_mismatch",), "a flipped byte the manifest vouches for")

    bid, w = fresh("trunc", 21)
    _, _, data = store.swift.authed("GET", seg(bid, 3))
    store.swift.authed("PUT", seg(bid, 3), body=data[: len(data) // 2])
    refused_read(bid, w, 21, ("checksum_mismatch", "unavailable"), "a truncated segment")

    bid, w = fresh("gone", 22)
    store.swift.authed("DELETE", seg(bid, 1))
    refused_read(bid, w, 22, ("checksum_mismatch", "unavailable", "not_found"), "a missing segment")

    bid, w = fresh("short", 23)
    _, _, manifest = store.swift.authed("GET", f"{store.container}/{bid}/piece?multipart-manifest=get")
    segs = json.loads(manifest)[:2]
    short = [{"path": "/" + s["name"], "etag": s["hash"], "size_bytes": s["bytes"]} for s in segs]
    store.swift.authed("PUT", f"{store.container}/{bid}/piece?multipart-manifest=put", body=json.dumps(short).encode())
    refused_read(bid, w, 23, ("checksum_mismatch",), "a manifest without its last segment")


def s3_damage(store):
    client = s3()

    def fresh(tag, seed):
        bid = f"dmg-{tag}"
        return bid, store.write_backup(bid, SIZE, seed)

    def refused_read(bid, w, seed, codes, what):
        r = store.get(store.scope(read=[bid]), bid, w["checksum"], SIZE, seed)
        check(r.code in codes and "read-back differs" not in r.message, f"s3: {what}: {r}")

    bid, w = fresh("s3-flip", 30)
    data = client.get_object(Bucket=store.container, Key=f"{bid}/piece")["Body"].read()
    client.put_object(Bucket=store.container, Key=f"{bid}/piece", Body=flip_byte(data, len(data) // 2))
    refused_read(bid, w, 30, ("checksum_mismatch",), "a flipped byte")
    client.put_object(Bucket=store.container, Key=f"{bid}/piece", Body=data[: len(data) - 1000])
    refused_read(bid, w, 30, ("checksum_mismatch",), "a truncated piece")
    client.delete_object(Bucket=store.container, Key=f"{bid}/piece")
    refused_read(bid, w, 30, ("not_found",), "a missing piece")


def test_damaged_pieces_are_detected_before_use():
    swift_damage(STORES["swift"])
    s3_damage(STORES["s3"])


def test_seal_and_scope_refuse_bad_input():
    for driver, store in STORES.items():
        bid = f"sizes-{driver}"
        scope = store.scope(write=[bid])
        w = store.put(scope, bid, PART, 40)
        check(w.ok, f"{driver}: put: {w}")
        r = store.control("seal", bid, w["stored_size"] + 1)
        check(r.code == "checksum_mismatch", f"{driver}: seal with the wrong size: {r}")
        r = store.control("scope", "--write", "../escape")
        check(r.code == "invalid_argument", f"{driver}: a scope for '../escape': {r}")
        r = store.control("scope", "--write", "x", "--write", "x")
        check(r.code == "invalid_argument", f"{driver}: the same backup granted twice: {r}")
    # A grant whose prefix is not its backup's own is refused by the guest.
    scope = STORES["swift"].scope(write=["mine"])
    grant(scope, "mine")["prefix"] = "other/"
    r = Store.put(scope, "mine", 100, 1)
    check(r.code == "invalid_argument" and "prefix" in r.message, f"a grant with a foreign prefix: {r}")
    scope = STORES["s3"].scope(write=["mine2"])
    grant(scope, "mine2")["parts"][0] = "file:///etc/passwd"
    r = Store.put(scope, "mine2", 100, 1)
    check(r.code == "invalid_argument", f"a grant with a file: URL: {r}")
    # Configuration: a short TempURL key and an unknown setting are refused.
    env_dir = os.path.dirname(STORES["swift"].conf)
    bad = harness.write_ini(os.path.join(env_dir, "bad.conf"), {"backup_storage": {
        "driver": "swift", "container": "c-bad", "storage_url": "http://127.0.0.1:1/v1/AUTH_x", "token": "t",
        "tempurl_key": "short"}}, mode=0o600)
    r = run_tool(["control", bad, "backup_storage", "setup"])
    check(r.code == "invalid_argument" and "tempurl_key" in r.message, f"a short tempurl_key: {r}")
    bad = harness.write_ini(os.path.join(env_dir, "bad2.conf"), {"backup_storage": {
        "driver": "s3", "container": "c-bad", "endpoint": "http://127.0.0.1:1", "access_key": "a",
        "secret_key": "s", "colour": "blue"}}, mode=0o600)
    r = run_tool(["control", bad, "backup_storage", "setup"])
    check(r.code == "invalid_argument" and "colour" in r.message, f"an unknown setting: {r}")


def test_swift_with_a_preissued_token():
    """A token issued elsewhere (Keystone, or here tempauth) with its storage URL: no login settings;
    and TempURLs signed with HMAC-SHA512 (base64, "sha512:" prefix)."""
    storage_url, token = SWIFT.token()
    env_dir = os.path.dirname(STORES["swift"].conf)
    store = STORES["swift"]
    conf = harness.write_ini(os.path.join(env_dir, "token.conf"), {"backup_storage": {
        "driver": "swift", "container": "trove-token", "storage_url": storage_url, "token": token,
        "tempurl_key": "another-tempurl-key-0123456789", "tempurl_digest": "sha512", "part_size": PART}},
        mode=0o600)
    tok = Store(None, SWIFT, "swift", "trove-token", conf=conf)
    tok.must("setup")
    w = tok.write_backup("tok-1", SIZE, 50)
    r = tok.get(tok.scope(read=["tok-1"]), "tok-1", w["checksum"], SIZE, 50)
    check(r.ok, f"read back through a token-configured store: {r}")
    # A grant signed for another container does not open this one.
    foreign = dict(grant(store.scope(read=["tok-1"]), "tok-1"), container="trove-token")
    status = SWIFT.request("GET", tempurl(foreign, "tok-1/piece"))[0]
    check(refused(status), f"a grant of container {store.container} read trove-token: {status}")
    bad = harness.write_ini(os.path.join(env_dir, "badtoken.conf"), {"backup_storage": {
        "driver": "swift", "container": "trove-token", "storage_url": storage_url, "token": "AUTH_tk-not-a-token",
        "tempurl_key": "another-tempurl-key-0123456789"}}, mode=0o600)
    r = run_tool(["control", bad, "backup_storage", "setup"])
    check(r.code == "invalid_argument" and "401" in r.message, f"a refused token: {r}")
    check("AUTH_tk-not-a-token" not in r.message, "the token appears in the error")


def main():
    global SWIFT
    with harness.Env(prefix="objstore-") as env:
        SWIFT = SwiftServer(env).start()
        STORES["swift"] = Store(env, SWIFT, "swift", "trove-swift")
        STORES["s3"] = Store(env, SWIFT, "s3", "trove-s3")
        for store in STORES.values():
            store.must("setup")
        try:
            harness.run_tests(globals())
        except SystemExit as done:
            if done.code:
                print(SWIFT.logs(), flush=True)
            raise


if __name__ == "__main__":
    main()
