"""Authentication: which user a bearer token names, for requests and for TokenReview.

Two kinds of token are accepted, as kube-apiserver accepts them with
`--token-auth-file` and its service-account authenticator: the static tokens of
`<data-dir>/tokens.csv` (the admin's), and service-account JWTs this server
signed, while they are meant for this API server (audience), their account still
exists with the same uid and, for a token bound to a pod, that pod does too.
The resulting user info (name, uid, groups, extra) is what `kubectl auth
whoami` and the review APIs report.
"""

from __future__ import annotations

import csv
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from controlplane.api import errors
from controlplane.api.resources import PODS, SERVICEACCOUNTS
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.tokens import DEFAULT_AUDIENCE, ServiceAccountIdentity, TokenIssuer
from controlplane.privatefiles import write_private

AUTHENTICATED = "system:authenticated"
API_AUDIENCES = (DEFAULT_AUDIENCE,)


@dataclass(frozen=True)
class UserInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The `UserInfo` of authentication.k8s.io/v1."""
        info: dict[str, Any] = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


USER_KEY = web.RequestKey("user", UserInfo)  # who the request is from, set by the API server's middleware


@dataclass(frozen=True)
class Authenticated:
    user: UserInfo
    audiences: tuple[str, ...]  # the requested audiences the token is valid for


def load_or_make_static_tokens(path: Path) -> dict[str, UserInfo]:
    """The tokens file (token,user,uid,"group1,group2"), made with an admin token on first start."""
    if not path.exists():
        write_private(path, f'{secrets.token_urlsafe(32)},admin,admin,"system:masters"\n')
    users: dict[str, UserInfo] = {}
    for row in csv.reader(path.read_text().splitlines()):
        if len(row) < 2 or not row[0].strip():
            continue
        groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else []) if g)
        users[row[0].strip()] = UserInfo(row[1], row[2] if len(row) > 2 else "", (*groups, AUTHENTICATED))
    return users


def service_account_user(identity: ServiceAccountIdentity) -> UserInfo:
    """The user a service-account token stands for, with upstream's groups and extra keys."""
    extra: dict[str, tuple[str, ...]] = {}
    if identity.pod_name:
        extra["authentication.kubernetes.io/pod-name"] = (identity.pod_name,)
        extra["authentication.kubernetes.io/pod-uid"] = (identity.pod_uid,)
    if identity.token_id:
        extra["authentication.kubernetes.io/credential-id"] = (f"JTI={identity.token_id}",)
    return UserInfo(f"system:serviceaccount:{identity.namespace}:{identity.name}", identity.uid,
                    ("system:serviceaccounts", f"system:serviceaccounts:{identity.namespace}", AUTHENTICATED),
                    extra)


class Authenticator:
    def __init__(self, static_tokens: Mapping[str, UserInfo], issuer: TokenIssuer, registry: Registry) -> None:
        self._static = dict(static_tokens)
        self._issuer = issuer
        self._registry = registry

    def admin_token(self) -> str:
        """The first token of a `system:masters` user: the one the admin kubeconfig carries."""
        for token, user in self._static.items():
            if "system:masters" in user.groups:
                return token
        raise LookupError("the tokens file has no system:masters user")

    async def authenticate(self, token: str, audiences: Sequence[str] = API_AUDIENCES) -> Authenticated | None:
        """The user `token` names if it is valid for one of `audiences`; None otherwise."""
        if not token:
            return None
        raw = token.encode("utf-8", "surrogateescape")  # header bytes that are not UTF-8 arrive escaped
        for known, user in self._static.items():
            if hmac.compare_digest(raw, known.encode()):
                return Authenticated(user, tuple(audiences))  # static tokens are not audience-bound
        try:
            identity = self._issuer.verify(token)
        except (ValueError, UnicodeError):  # garbage that is not even a JWT: as invalid as a bad signature
            return None
        if identity is None:
            return None
        valid_for = tuple(a for a in audiences if a in identity.audiences)
        if not valid_for or not await self._still_bound(identity):
            return None
        return Authenticated(service_account_user(identity), valid_for)

    async def _still_bound(self, identity: ServiceAccountIdentity) -> bool:
        """The account (and the pod, for a pod-bound token) exists with the uid the token was made for."""
        try:
            account = await self._registry.get(SERVICEACCOUNTS, identity.namespace, identity.name)
            if account["metadata"].get("uid") != identity.uid:
                return False
            if identity.pod_name:
                pod = await self._registry.get(PODS, identity.namespace, identity.pod_name)
                if identity.pod_uid and pod["metadata"].get("uid") != identity.pod_uid:
                    return False
        except errors.StatusError:
            return False
        return True
