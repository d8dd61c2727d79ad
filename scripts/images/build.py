"""Build the project's test images from Debian's busybox-static, as OCI image layouts.

No image can be pulled from the internet here, so the three images every test,
example and user relies on are made locally and reproducibly (fixed mtimes and
owners, sorted entries, gzip without timestamps: the same input gives the same
digests, so a rebuild changes nothing):

    pyk8s.local/pause:1    sleeps until SIGTERM/SIGINT, then exits 0 (the sandbox image)
    pyk8s.local/busybox:1  busybox with every applet linked, command `sh`
    pyk8s.local/web:1      answers every HTTP request on :8080 with its host name
    pyk8s.local/web:2      the same, reporting `X-Web-Version: 2` (a second tag for rolling updates)

Usage: build.py OUT_DIR  ->  OUT_DIR/<name>/ is an OCI layout with the tag "1".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
TAG = "1"

PAUSE_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
WEB_RESPONDER = """#!/bin/sh
# One HTTP exchange on stdin/stdout: consume the request head, answer with the host name.
# The request line goes to stderr, so that `kubectl logs` shows the requests served.
first=""
while IFS= read -r line; do
    line=${line%$(printf '\\r')}
    [ -z "$line" ] && break
    [ -z "$first" ] && first=$line && echo "$first" >&2
done
body="$(hostname)"
version=$(cat /etc/web-version 2>/dev/null || echo 1)
printf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nX-Web-Version: %s\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s\\n' \\
    "$version" "$((${#body} + 1))" "$body"
"""
WEB_CMD = ["/usr/bin/nc", "-ll", "-p", "8080", "-e", "/bin/respond"]


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def _applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip() and line.strip() != "bin/busybox"})


def rootfs_layer(extra: dict[str, tuple[bytes, int]]) -> bytes:
    """A gzipped tar of busybox, its applet links, a minimal /etc, and `extra` files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "var",
                "www"}
        for d in sorted(dirs):
            tar.addfile(_info(d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755))
        data = BUSYBOX.read_bytes()
        tar.addfile(_info("bin/busybox", size=len(data), mode=0o755), io.BytesIO(data))
        for applet in _applets():
            link = _info(applet, tarfile.SYMTYPE, mode=0o777)
            link.linkname = "/bin/busybox"
            tar.addfile(link)
        files = {"etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644),
                 "etc/group": (b"root:x:0:\nnogroup:x:65534:\n", 0o644), **extra}
        for name, (content, mode) in sorted(files.items()):
            tar.addfile(_info(name, size=len(content), mode=mode), io.BytesIO(content))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}", len(data)


def write_image(layout: Path, layer: bytes, cmd: list[str], exposed: dict[str, dict[str, str]] | None = None,
                tag: str = TAG) -> str:
    if layout.exists():
        shutil.rmtree(layout)
    layout.mkdir(parents=True)
    layer_digest, layer_size = _blob(layout, layer)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config: dict[str, object] = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/",
                   **({"ExposedPorts": exposed} if exposed else {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "pyk8s scripts/images/build.py"}],
    }
    config_digest, config_size = _blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                            "size": layer_size}]}
    manifest_digest, manifest_size = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return manifest_digest


def build_all(out: Path) -> dict[str, str]:
    """Every image as `name:tag` -> manifest digest; each one an OCI layout in `out/<name>-<tag>`."""
    base = rootfs_layer({})
    web = rootfs_layer({"bin/respond": (WEB_RESPONDER.encode(), 0o755)})
    # web:2 differs only in what it reports (X-Web-Version: 2): a second tag for rolling updates
    web2 = rootfs_layer({"bin/respond": (WEB_RESPONDER.encode(), 0o755), "etc/web-version": (b"2\n", 0o644)})
    return {
        "pause:1": write_image(out / "pause-1", base, PAUSE_CMD),
        "busybox:1": write_image(out / "busybox-1", base, ["sh"]),
        "web:1": write_image(out / "web-1", web, WEB_CMD, {"8080/tcp": {}}),
        "web:2": write_image(out / "web-2", web2, WEB_CMD, {"8080/tcp": {}}, tag="2"),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build.py OUT_DIR")
    for name_tag, digest in build_all(Path(sys.argv[1])).items():
        print(f"{name_tag} {digest}")
