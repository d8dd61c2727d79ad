"""The cluster's PKI, made on first start and reused after.

A CA; the API server's serving certificate, naming every address a client may
dial (the bind address, loopback, the host name and the `kubernetes` Service's
cluster IP and DNS names); and the client certificate the API server presents
to kubelets when it proxies logs, exec and port-forward (upstream's
`apiserver-kubelet-client`). Clients trust the CA through the kubeconfig.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from controlplane.client.certs import cert_pem, covers_ips, issue_cert, load_key, make_ca, write_key
from controlplane.privatefiles import private_dir, write_private


@dataclass(frozen=True)
class PKI:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path


def _write_pair(cert_path: Path, key_path: Path, pair: tuple[bytes, bytes]) -> None:
    write_private(cert_path, pair[0])
    write_private(key_path, pair[1])


def ensure_pki(pki_dir: Path, bind_address: str, service_ip: str) -> PKI:
    """Create the CA once; (re)issue the serving cert when an address it must cover is missing."""
    private_dir(pki_dir)
    ca_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if ca_path.exists() and ca_key_path.exists():
        ca_cert, ca_key = x509.load_pem_x509_certificate(ca_path.read_bytes()), load_key(ca_key_path)
    else:
        ca_cert, ca_key = make_ca("pyk8s-ca")
        write_private(ca_path, cert_pem(ca_cert))
        write_key(ca_key_path, ca_key)
    ips = ["127.0.0.1", service_ip]
    if bind_address not in ("0.0.0.0", "::", ""):
        ips.append(bind_address)
    dns = ["localhost", socket.gethostname(), "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    cert_path, key_path = pki_dir / "apiserver.crt", pki_dir / "apiserver.key"
    if not (cert_path.exists() and key_path.exists() and covers_ips(cert_path, ips)):
        _write_pair(cert_path, key_path, issue_cert(ca_cert, ca_key, "kube-apiserver", dns_names=dns, ips=ips))
    client_cert, client_key = pki_dir / "apiserver-kubelet-client.crt", pki_dir / "apiserver-kubelet-client.key"
    if not (client_cert.exists() and client_key.exists()):
        _write_pair(client_cert, client_key, issue_cert(ca_cert, ca_key, "kube-apiserver-kubelet-client",
                                                        client=True, organization="system:masters"))
    return PKI(ca_path, ca_key_path, cert_path, key_path, client_cert, client_key)
