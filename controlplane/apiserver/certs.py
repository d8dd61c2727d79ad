"""The cluster's PKI, made on first start and reused after: a CA and the serving certificate.

Clients trust the CA through the kubeconfig the server writes; the serving
certificate names every address a client may dial (the bind address, loopback,
the host name and the `kubernetes` Service's cluster IP and DNS names).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class PKI:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _make_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyk8s-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    (pki_dir / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki_dir / "ca.key", key)
    return cert, key


def issue_serving_cert(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, common_name: str,
                       dns_names: list[str], ips: list[str]) -> tuple[bytes, bytes]:
    """A server certificate signed by the CA; returns (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in dict.fromkeys(ips)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _covers(cert_path: Path, ips: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(ips) <= have


def ensure_pki(pki_dir: Path, bind_address: str, service_ip: str) -> PKI:
    """Create the CA once; (re)issue the serving cert when an address it must cover is missing."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    ca_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if ca_path.exists() and ca_key_path.exists():
        ca_cert, ca_key = x509.load_pem_x509_certificate(ca_path.read_bytes()), _load_key(ca_key_path)
    else:
        ca_cert, ca_key = _make_ca(pki_dir)
    ips = ["127.0.0.1", service_ip]
    if bind_address not in ("0.0.0.0", "::", ""):
        ips.append(bind_address)
    host = socket.gethostname()
    dns = ["localhost", host, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    cert_path, key_path = pki_dir / "apiserver.crt", pki_dir / "apiserver.key"
    if not (cert_path.exists() and key_path.exists() and _covers(cert_path, ips)):
        cert_pem, key_pem = issue_serving_cert(ca_cert, ca_key, "kube-apiserver", dns, ips)
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
    return PKI(ca_path, ca_key_path, cert_path, key_path)
