"""Stand-ins for the images upstream's conformance suite (e2e.test) runs, as OCI layouts.

No image can be pulled from the internet here, so each image `e2e.test --list-images`
names for a [Conformance] test is made locally, the way build.py makes the project's own
images (fixed mtimes and owners, sorted entries, gzip without timestamps: reproducible
digests). Every image starts from Debian's busybox-static with its applets linked;
agnhost-based ones add the `agnhost` binary built from k8s.io/kubernetes (see
conformance/), plus `curl` and `bash` copied from this machine, each with the shared
libraries `ldd` names (upstream's agnhost image has curl and bash).

    e2e-test-images/agnhost:2.52           /agnhost (ENTRYPOINT, CMD pause), busybox as /bin/sh, curl, bash
    e2e-test-images/nautilus:1.7, kitten:1.7  agnhost with CMD test-webserver
    e2e-test-images/jessie-dnsutils:1.7    agnhost's filesystem (busybox nslookup, curl); no `dig`
    e2e-test-images/busybox:1.36.1-1, 1.29-2  busybox, CMD sh
    e2e-test-images/httpd:2.4.38-4, 2.4.39-4  busybox httpd on :80 serving /usr/local/apache2/htdocs
    e2e-test-images/nginx:1.14-4, 1.15-4   busybox httpd on :80 serving /usr/share/nginx/html
    e2e-test-images/nonewprivs:1.3         setuid-root /usr/local/bin/nnp (upstream's nnp.go, built here)
    e2e-test-images/nonroot:1.4            busybox, USER 1234
    pause:3.10                             /pause sleeps until SIGTERM/SIGINT
    library/busybox:{latest,1.36,1.28}     for `image: busybox` through the docker.io mirror

Usage: e2e.py OUT_DIR --agnhost PATH [--nnp PATH] [--certs DIR]
  ->  OUT_DIR/<name with / as _>-<tag>/ is an OCI layout; prints `name:tag digest` lines.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import BUSYBOX, PAUSE_CMD, _applets, _blob, _info

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/:/bin/false\n")
GROUP = (b"root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"
         b"nogroup:x:65534:\n")
HTTPD_INDEX = b"<html><body><h1>It works!</h1></body></html>\n"
NGINX_INDEX = (b"<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
               b"<h1>Welcome to nginx!</h1>\n<p>pyk8s stand-in: busybox httpd.</p>\n</body>\n</html>\n")


@dataclass
class Layer:
    """Files of one layer: path -> (content, mode); symlinks: path -> target; dirs."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    def add_file(self, path: str, content: bytes, mode: int = 0o644) -> None:
        path = path.lstrip("/")
        self.links.pop(path, None)
        self.files[path] = (content, mode)
        self._parents(path)

    def add_link(self, path: str, target: str) -> None:
        path = path.lstrip("/")
        if path not in self.files:
            self.links[path] = target
            self._parents(path)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dirs.add("/".join(parts[:i]))

    def tar_gz(self) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            entries: list[tuple[str, str]] = [(d, "d") for d in self.dirs]
            entries += [(f, "f") for f in self.files] + [(link, "l") for link in self.links]
            for name, kind in sorted(entries):
                if kind == "d":
                    tar.addfile(_info(name, tarfile.DIRTYPE, mode=0o1777 if name == "tmp" else 0o755))
                elif kind == "f":
                    content, mode = self.files[name]
                    tar.addfile(_info(name, size=len(content), mode=mode), io.BytesIO(content))
                else:
                    info = _info(name, tarfile.SYMTYPE, mode=0o777)
                    info.linkname = self.links[name]
                    tar.addfile(info)
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(raw.getvalue())
        return out.getvalue()


def busybox_layer() -> Layer:
    layer = Layer(dirs={"bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/local/bin", "etc", "tmp", "root",
                        "proc", "sys", "dev", "var", "home"})
    layer.add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    for applet in _applets():
        layer.add_link(applet, "/bin/busybox")
    layer.add_file("etc/passwd", PASSWD)
    layer.add_file("etc/group", GROUP)
    layer.add_file("etc/nsswitch.conf", b"hosts: files dns\n")
    return layer


def add_host_binary(layer: Layer, binary: str, dest: str | None = None) -> None:
    """A program of this machine (a name on PATH or a path) at `dest` (default: the same
    path), with the shared libraries `ldd` names; a static one comes alone."""
    path = shutil.which(binary)
    if path is None:
        return
    real = Path(path).resolve()
    layer.add_file(dest or path, real.read_bytes(), 0o755)
    ldd = subprocess.run(["ldd", str(real)], capture_output=True, text=True)
    out = ldd.stdout if ldd.returncode == 0 else ""  # "not a dynamic executable"
    for line in out.splitlines():
        words = line.split()
        lib = words[2] if "=>" in words and len(words) > 2 and words[2].startswith("/") else (
            words[0] if words and words[0].startswith("/") else None)
        if lib is None:
            continue
        target = Path(lib).resolve()
        layer.add_file(lib, target.read_bytes(), 0o755)


@dataclass
class Image:
    name: str
    tag: str
    layers: list[bytes]
    cmd: list[str]
    entrypoint: list[str] | None = None
    user: str | None = None
    ports: list[int] = field(default_factory=list)


def write_layout(layout: Path, image: Image) -> str:
    if layout.exists():
        shutil.rmtree(layout)
    layout.mkdir(parents=True)
    descriptors, diff_ids = [], []
    for layer in image.layers:
        digest, size = _blob(layout, layer)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                            "size": size})
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest())
    runtime: dict[str, object] = {"Cmd": image.cmd, "Env": [PATH_ENV], "WorkingDir": "/"}
    if image.entrypoint:
        runtime["Entrypoint"] = image.entrypoint
    if image.user:
        runtime["User"] = image.user
    if image.ports:
        runtime["ExposedPorts"] = {f"{p}/tcp": {} for p in image.ports}
    config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z", "config": runtime,
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "pyk8s scripts/images/e2e.py"}
                          for _ in image.layers]}
    config_digest, config_size = _blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": config_size},
                "layers": descriptors}
    manifest_digest, manifest_size = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": image.tag}}]}
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return manifest_digest


def images(agnhost: Path, nnp: Path | None, certs: Path | None) -> list[Image]:
    base = busybox_layer()
    base_gz = base.tar_gz()

    tools = Layer()
    add_host_binary(tools, "curl")
    add_host_binary(tools, "bash")
    tools.dirs.add("uploads")
    add_host_binary(tools, str(agnhost.resolve()), "agnhost")
    tools.add_link("agnhost-2", "agnhost")
    for name in ("localhost.crt", "localhost.key"):
        if certs is not None and (certs / name).exists():
            tools.add_file(name, (certs / name).read_bytes(), 0o644)
    tools_gz = tools.tar_gz()
    agn = [base_gz, tools_gz]
    agn_ports = [80, 8080, 8081, 9376, 5000]

    web = Layer()
    web.add_file("usr/local/apache2/htdocs/index.html", HTTPD_INDEX)
    web.add_file("usr/local/bin/httpd-foreground",
                 b"#!/bin/sh\nexec /usr/sbin/httpd -f -p 80 -h /usr/local/apache2/htdocs\n", 0o755)
    web.add_file("usr/share/nginx/html/index.html", NGINX_INDEX)
    web.add_file("usr/local/bin/nginx",
                 b"#!/bin/sh\n# stand-in: ignores nginx's flags\nexec /usr/sbin/httpd -f -p 80 -h /usr/share/nginx/html\n",
                 0o755)
    web_gz = [base_gz, web.tar_gz()]

    pause = Layer()
    pause.add_file("pause", ("#!/bin/sh\n" + PAUSE_CMD[2] + "\n").encode(), 0o755)
    pause_gz = [base_gz, pause.tar_gz()]

    def shown(name: str) -> bytes:
        layer = Layer()
        layer.add_file("data.json", json.dumps({"image": name, "standIn": "pyk8s"}).encode() + b"\n")
        return layer.tar_gz()

    e2e = "e2e-test-images"
    out = [
        Image(f"{e2e}/agnhost", "2.52", agn, ["pause"], ["/agnhost"], ports=agn_ports),
        Image(f"{e2e}/nautilus", "1.7", [*agn, shown("nautilus")], ["test-webserver"], ["/agnhost"], ports=[80]),
        Image(f"{e2e}/kitten", "1.7", [*agn, shown("kitten")], ["test-webserver"], ["/agnhost"], ports=[80]),
        Image(f"{e2e}/jessie-dnsutils", "1.7", agn, ["sh"]),
        *(Image(f"{e2e}/busybox", tag, [base_gz], ["sh"]) for tag in ("1.36.1-1", "1.29-2")),
        Image(f"{e2e}/httpd", "2.4.38-4", web_gz, ["httpd-foreground"], ports=[80]),
        Image(f"{e2e}/httpd", "2.4.39-4", web_gz, ["httpd-foreground"], ports=[80]),
        Image(f"{e2e}/nginx", "1.14-4", web_gz, ["nginx", "-g", "daemon off;"], ports=[80]),
        Image(f"{e2e}/nginx", "1.15-4", web_gz, ["nginx", "-g", "daemon off;"], ports=[80]),
        Image(f"{e2e}/nonroot", "1.4", [base_gz], ["sh"], user="1234"),
        Image("pause", "3.10", pause_gz, [], ["/pause"]),
        *(Image("library/busybox", tag, [base_gz], ["sh"]) for tag in ("latest", "1.36", "1.28")),
    ]
    if nnp is not None:
        nnp_layer = Layer()
        nnp_layer.add_file("usr/local/bin/nnp", nnp.read_bytes(), 0o4755)
        out.append(Image(f"{e2e}/nonewprivs", "1.3", [base_gz, nnp_layer.tar_gz()], ["nnp"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--agnhost", type=Path, required=True, help="the agnhost binary")
    parser.add_argument("--nnp", type=Path, help="the nonewprivs binary (test/images/nonewprivs)")
    parser.add_argument("--certs", type=Path, help="directory with porter's localhost.crt/.key")
    args = parser.parse_args()
    for image in images(args.agnhost, args.nnp, args.certs):
        digest = write_layout(args.out / f"{image.name.replace('/', '_')}-{image.tag}", image)
        print(f"{image.name}:{image.tag} {digest}")


if __name__ == "__main__":
    main()
