"""images/oci.py ROOTFS.tar.gz MANIFEST NAME OUT.oci.tar - wraps a root
filesystem tarball as a one-layer OCI image archive (an OCI image layout in
a tar, as `podman load`, `skopeo copy oci-archive:` and containerd import).
The project's and the engine's package versions from MANIFEST become the
image's labels; the whole list is inside the image at
/usr/share/trove/image.manifest."""
import gzip
import hashlib
import io
import json
import sys
import tarfile


def sha256_file(path, opener=open):
    h = hashlib.sha256()
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def labels(manifest_path, name):
    out = {"org.opencontainers.image.title": name}
    with open(manifest_path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            pkg, _, version = line.strip().partition(" ")
            if pkg.startswith("trove-") or pkg in ("mariadb-server", "postgresql", "redis-server", "cloud-init"):
                out[f"org.trove.package.{pkg}"] = version
    return out


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main(rootfs, manifest_path, name, out):
    layer_digest = sha256_file(rootfs)
    diff_id = sha256_file(rootfs, gzip.open)
    with open(rootfs, "rb") as f:
        f.seek(0, 2)
        layer_size = f.tell()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/lib/systemd/systemd"], "Labels": labels(manifest_path, name),
                   "StopSignal": "SIGRTMIN+3"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
    }, sort_keys=True).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_digest}",
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{layer_digest}",
                    "size": layer_size}],
    }, sort_keys=True).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": f"sha256:{manifest_digest}", "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    }, sort_keys=True).encode()
    with tarfile.open(out, "w") as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add_bytes(tar, "index.json", index)
        add_bytes(tar, f"blobs/sha256/{manifest_digest}", manifest)
        add_bytes(tar, f"blobs/sha256/{config_digest}", config)
        tar.add(rootfs, arcname=f"blobs/sha256/{layer_digest}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n")[0])
    sys.exit(main(*sys.argv[1:]))
