"""Upstream's binaries as yardsticks for the benches' `--against upstream` runs.

Exists so that api_bench, scheduler_bench and proxy_bench can run the very same load against
upstream's kube-apiserver / kube-scheduler / kube-proxy (built by scripts/upstream-binaries.sh
from the module pinned in conformance/go.mod) and against pyk8s in one run: a throwaway etcd on
loopback, a PKI made with `cryptography`, kube-apiserver's command line, a kubeconfig with a
bearer token, and the Prometheus text parsing the benches read upstream's figures with.
Nothing here is copied from upstream; the flags are upstream's documented command-line flags.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ETCD = "/usr/bin/etcd"


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def ratio(ours: float | None, upstream: float | None) -> float | None:
    """ours/upstream, rounded; None when either is missing or upstream is zero."""
    if ours is None or upstream is None or upstream == 0:
        return None
    return round(ours / upstream, 2)


def binaries() -> dict[str, Path]:
    """Builds (once, cached) and returns {name: path} of upstream's three binaries."""
    out = subprocess.run([str(REPO / "scripts" / "upstream-binaries.sh")], check=True, capture_output=True,
                         text=True).stdout
    return parse_binaries(out)


def parse_binaries(text: str) -> dict[str, Path]:
    """The `NAME PATH` lines scripts/upstream-binaries.sh prints."""
    found: dict[str, Path] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[parts[0]] = Path(parts[1])
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_metric(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample `name{labels}` in Prometheus text format (first match), or None."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        got: dict[str, str] = {}
        for pair in rest.rstrip("}").split(","):
            if "=" in pair:
                k, _, v = pair.partition("=")
                got[k.strip()] = v.strip().strip('"')
        if labels and any(got.get(k) != v for k, v in labels.items()):
            continue
        return float(value)
    return None


def rss_mb(pid: int) -> float:
    """Resident set of one process, MiB (from /proc, so no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@dataclass
class PKI:
    ca: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path


def make_pki(directory: Path) -> PKI:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and a service-account key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yardstick-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(san, critical=False).sign(ca_key, hashes.SHA256()))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    pki = PKI(directory / "ca.crt", directory / "serving.crt", directory / "serving.key", directory / "sa.key",
              directory / "sa.pub")
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.serving_cert.write_bytes(cert.public_bytes(pem))
    pki.serving_key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    pki.sa_key.write_bytes(sa.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pki.sa_pub.write_bytes(sa.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def etcd_argv(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return [ETCD, "--data-dir", str(data_dir), "--name", "yardstick", "--listen-client-urls", client,
            "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"yardstick={peer}", "--log-level", "error", "--quota-backend-bytes",
            str(8 * 2**30)]


def kube_apiserver_argv(binary: Path, pki: PKI, token_file: Path, etcd_port: int, port: int,
                        service_cidr: str = "10.96.0.0/12") -> list[str]:
    """kube-apiserver on 127.0.0.1:port with AlwaysAllow authorization and a static admin token.

    No controller manager runs, so nothing makes the `default` ServiceAccount: the ServiceAccount
    admission plugin (which refuses pods without one) is off; nor does anything remove the not-ready
    taint TaintNodesByCondition puts on every new Node, so that plugin is off too (a Node is stored as
    posted, as on pyk8s); no priority-and-fairness limits."""
    return [str(binary), "--bind-address=127.0.0.1", f"--secure-port={port}", "--advertise-address=127.0.0.1",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}", f"--service-cluster-ip-range={service_cidr}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca}", f"--token-auth-file={token_file}",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc", "--authorization-mode=AlwaysAllow",
            "--enable-priority-and-fairness=false", "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition", "--v=0"]


def write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def wait_ready(url: str, ca: Path, token: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url + "/readyz", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def etcd(directory: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A throwaway etcd on loopback (Debian's 3.4); yields (client port, process)."""
    port, peer = free_port(), free_port()
    log = (directory / "etcd.log").open("wb")
    proc = subprocess.Popen(etcd_argv(directory / "etcd", port, peer), stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "", "ETCDCTL_API": "3"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    if b"true" in resp.read():
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not start (see {directory / 'etcd.log'})")
            time.sleep(0.2)
        yield port, proc
    finally:
        stop(proc)
        log.close()


@dataclass
class Server:
    url: str
    kubeconfig: Path
    ca: Path
    token: str
    proc: subprocess.Popen[bytes]


@contextmanager
def kube_apiserver(binary: Path, directory: Path, etcd_port: int) -> Iterator[Server]:
    """Upstream's kube-apiserver on loopback against the etcd at `etcd_port`."""
    pki = make_pki(directory / "pki")
    token = secrets.token_hex(16)
    token_file = directory / "tokens.csv"
    token_file.write_text(f'{token},admin,admin-uid,"system:masters"\n')
    port = free_port()
    log = (directory / "kube-apiserver.log").open("wb")
    proc = subprocess.Popen(kube_apiserver_argv(binary, pki, token_file, etcd_port, port), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        url = f"https://127.0.0.1:{port}"
        try:
            wait_ready(url, pki.ca, token, proc)
        except RuntimeError as e:
            log.flush()
            tail = (directory / "kube-apiserver.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"kube-apiserver did not become ready: {tail}") from e
        yield Server(url, write_kubeconfig(directory / "admin.kubeconfig", url, pki.ca, token), pki.ca, token, proc)
    finally:
        stop(proc)
        log.close()


@contextmanager
def pyk8s_apiserver(directory: Path, storage: str | None = None) -> Iterator[Server]:
    """`pyk8s apiserver` on loopback (SQLite by default, or `storage` such as etcd://127.0.0.1:PORT)."""
    import yaml

    port = free_port()
    data = directory / "pyk8s"
    argv = [str(REPO / ".venv" / "bin" / "python"), "-m", "pyk8s.cli", "apiserver", "--data-dir", str(data),
            "--secure-port", str(port), *(["--storage", storage] if storage else [])]
    log = (directory / "pyk8s-apiserver.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        kubeconfig = data / "admin.kubeconfig"
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pyk8s apiserver did not start (see {directory / 'pyk8s-apiserver.log'})")
            time.sleep(0.1)
        config = yaml.safe_load(kubeconfig.read_text())
        token = config["users"][0]["user"]["token"]
        url = f"https://127.0.0.1:{port}"
        ca = data / "pki" / "ca.crt"
        wait_ready(url, ca, token, proc, 60)
        yield Server(url, kubeconfig, ca, token, proc)
    finally:
        stop(proc)
        log.close()
