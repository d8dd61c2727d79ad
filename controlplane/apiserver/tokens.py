"""Service-account tokens: JWTs this API server signs (TokenRequest) and later accepts.

Pods and node agents authenticate with them instead of the admin token. The
claims follow upstream's bound tokens (issuer, `system:serviceaccount:<ns>:<name>`
subject, audiences, expiry, and the `kubernetes.io` claim naming the account and
its uid); a token is accepted only while its account still exists with that uid.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controlplane.privatefiles import write_private

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCE = ISSUER
MIN_EXPIRATION = 600
DEFAULT_EXPIRATION = 3600


def ensure_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return key


@dataclass(frozen=True)
class ServiceAccountIdentity:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...] = ()
    token_id: str = ""  # the `jti` claim
    pod_name: str = ""  # set when the token is bound to a pod
    pod_uid: str = ""

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


class TokenIssuer:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    def issue(self, namespace: str, name: str, uid: str, *, audiences: list[str] | None = None,
              expiration_seconds: int = DEFAULT_EXPIRATION, bound_pod: dict[str, str] | None = None
              ) -> tuple[str, dt.datetime]:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        expires = now + dt.timedelta(seconds=max(int(expiration_seconds), MIN_EXPIRATION))
        scoped: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound_pod:
            scoped["pod"] = bound_pod
        claims = {"iss": ISSUER, "sub": f"system:serviceaccount:{namespace}:{name}",
                  "aud": audiences or [DEFAULT_AUDIENCE], "iat": now, "nbf": now, "exp": expires,
                  "jti": str(uuid.uuid4()), "kubernetes.io": scoped}
        return jwt.encode(claims, self._key, algorithm="ES256"), expires

    def verify(self, token: str) -> ServiceAccountIdentity | None:
        """The account a valid, unexpired token of ours names; None for anything else."""
        try:
            claims = jwt.decode(token, self._public, algorithms=["ES256"], issuer=ISSUER,
                                options={"verify_aud": False, "require": ["exp", "sub", "iss"]})
        except jwt.PyJWTError:
            return None
        scoped = claims.get("kubernetes.io") or {}
        account = scoped.get("serviceaccount") or {}
        if not scoped.get("namespace") or not account.get("name"):
            return None
        audiences = claims.get("aud") or []
        pod = scoped.get("pod") or {}
        return ServiceAccountIdentity(
            str(scoped["namespace"]), str(account["name"]), str(account.get("uid", "")),
            audiences=(audiences,) if isinstance(audiences, str) else tuple(str(a) for a in audiences),
            token_id=str(claims.get("jti") or ""), pod_name=str(pod.get("name") or ""),
            pod_uid=str(pod.get("uid") or ""))
