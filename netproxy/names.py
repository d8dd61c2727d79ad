"""Chain, map and set names derived from service port names, as upstream derives them.

iptables chain names are at most 28 characters, so upstream hashes:
"KUBE-SVC-" + the first 16 characters of base32(sha256(servicePortName + protocol)),
and the endpoint chain hashes the endpoint "ip:port" too. nftables names can be
long and readable: "<8-char hash>-namespace/name/protocol/port".
"""

from __future__ import annotations

import base64
import hashlib

from netproxy.model import Endpoint, ServicePortName

IPTABLES_SERVICE_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")
NFT_NAME_MAX = 128 - 16


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _hash16(text: str) -> str:
    """base32(sha256(text))[:16]: the first 80 bits of the digest, five at a time."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    return "".join(_B32[(n >> shift) & 31] for shift in range(75, -1, -5))


def port_proto_hash(spn: ServicePortName) -> str:
    return _hash16(str(spn) + spn.protocol.lower())


def svc_chain(spn: ServicePortName) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn)


def svl_chain(spn: ServicePortName) -> str:
    return "KUBE-SVL-" + port_proto_hash(spn)


def ext_chain(spn: ServicePortName) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn)


def sep_chain(spn: ServicePortName, endpoint: Endpoint | str) -> str:
    return "KUBE-SEP-" + _hash16(str(spn) + spn.protocol.lower() + str(endpoint))


class NameCache:
    """Endpoint chain names computed by earlier syncs (hashing was most of a render's time)."""

    def __init__(self) -> None:
        self._sep: dict[tuple[ServicePortName, str], str] = {}

    def sep_chain(self, spn: ServicePortName, endpoint: Endpoint) -> str:
        key = (spn, str(endpoint))
        name = self._sep.get(key)
        if name is None:
            name = self._sep[key] = sep_chain(spn, endpoint)
        return name

    def forget_except(self, alive: set[str]) -> None:
        self._sep = {k: v for k, v in self._sep.items() if v in alive}


def is_service_chain(chain: str) -> bool:
    return chain.startswith(IPTABLES_SERVICE_PREFIXES)


def _hash_and_truncate(name: str) -> str:
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]
    full = f"{digest}-{name}"
    return full if len(full) <= NFT_NAME_MAX else full[:NFT_NAME_MAX - 3] + "..."


def nft_service_base(spn: ServicePortName) -> str:
    return _hash_and_truncate(f"{spn.namespace}/{spn.name}/{spn.protocol.lower()}/{spn.port}")


def nft_endpoint_base(spn: ServicePortName, endpoint: Endpoint) -> str:
    return _hash_and_truncate(
        f"{spn.namespace}/{spn.name}/{spn.protocol.lower()}/{spn.port}__{endpoint.ip}/{endpoint.port}")
