"""The kubelet serving certificate: made once, kept while it names the node's addresses.

The agent reads an existing certificate's addresses without cryptography; these
tests check that reading against cryptography's own on the certificates the
project makes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.server import covers_ips, ensure_serving_cert, san_ips
from controlplane.client import certs


def cryptography_ips(pem: bytes) -> set[str] | None:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return {str(a) for a in san.get_values_for_type(x509.IPAddress)}


@pytest.mark.parametrize("ips", [["10.0.0.1", "127.0.0.1"], ["fd00::1", "192.168.7.200"], [], ["10.9.8.7"] * 2])
@pytest.mark.parametrize("dns", [["node-a", "localhost"], []])
def test_san_ips_agrees_with_cryptography(ips: list[str], dns: list[str]) -> None:
    ca_cert, ca_key = certs.make_ca("test-ca")
    pem, _key = certs.issue_cert(ca_cert, ca_key, "node-a", dns_names=dns, ips=ips)
    chain = pem + certs.cert_pem(ca_cert)  # as the agent writes it: the CA after the leaf
    assert san_ips(chain) == cryptography_ips(chain)
    if ips or dns:
        assert san_ips(chain) == set(ips)
    for wanted in (ips, [*ips, "10.200.0.1"], ["127.0.0.1"], []):
        have = cryptography_ips(chain)
        expected = not wanted if have is None else set(wanted) <= have
        assert covers_ips(chain, wanted) == expected


def test_no_san_and_a_critical_extension_first() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plain")])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    plain = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    assert san_ips(plain) is None
    assert covers_ips(plain, ["10.0.0.1"]) is False
    assert covers_ips(plain, []) is True
    with_san = (builder.add_extension(x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("10.1.2.3")), x509.DNSName("x")]), critical=True)
        .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    assert san_ips(with_san) == {"10.1.2.3"}


def test_garbage_is_an_error() -> None:
    with pytest.raises(ValueError):
        san_ips(b"not a certificate")
    with pytest.raises(ValueError):
        san_ips(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")


def test_ensure_serving_cert_kept_while_it_covers_the_node_ip(tmp_path: Path) -> None:
    cert, key = ensure_serving_cert(tmp_path, "node-a", "10.0.0.5")
    first = cert.read_bytes()
    assert cryptography_ips(first) == {"10.0.0.5", "127.0.0.1"}
    assert key.stat().st_mode & 0o777 == 0o600
    assert ensure_serving_cert(tmp_path, "node-a", "10.0.0.5") == (cert, key)
    assert cert.read_bytes() == first  # kept
    ensure_serving_cert(tmp_path, "node-a", "10.0.0.6")
    assert cryptography_ips(cert.read_bytes()) == {"10.0.0.6", "127.0.0.1"}  # a new address: made again


def test_an_existing_certificate_is_checked_without_cryptography(tmp_path: Path) -> None:
    ensure_serving_cert(tmp_path, "node-a", "10.0.0.5")
    code = ("import sys\nfrom pathlib import Path\nfrom agent.server import ensure_serving_cert\n"
            f"ensure_serving_cert(Path({str(tmp_path)!r}), 'node-a', '10.0.0.5')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip() == "[]"
