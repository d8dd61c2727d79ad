"""The tokens file: made once with an admin token, parsed like kube-apiserver's --token-auth-file."""

from __future__ import annotations

from pathlib import Path

from controlplane.apiserver.authn import UserInfo, load_or_make_static_tokens, service_account_user
from controlplane.apiserver.tokens import ServiceAccountIdentity


def test_first_start_makes_one_admin_token_and_later_starts_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    first = load_or_make_static_tokens(path)
    assert path.stat().st_mode & 0o777 == 0o600
    (token, admin), = first.items()
    assert admin == UserInfo("admin", "admin", ("system:masters", "system:authenticated"))
    assert load_or_make_static_tokens(path) == {token: admin}


def test_quoted_groups_and_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('t1,alice,u1,"dev,ops"\n\nt2,bob\n')
    users = load_or_make_static_tokens(path)
    assert users["t1"] == UserInfo("alice", "u1", ("dev", "ops", "system:authenticated"))
    assert users["t2"] == UserInfo("bob", "", ("system:authenticated",))


def test_service_account_user_has_upstream_groups_and_extra() -> None:
    user = service_account_user(ServiceAccountIdentity("ns", "sa", "uid-1", token_id="j1", pod_name="p",
                                                       pod_uid="pu"))
    assert user.to_dict() == {
        "username": "system:serviceaccount:ns:sa", "uid": "uid-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"], "authentication.kubernetes.io/pod-uid": ["pu"],
                  "authentication.kubernetes.io/credential-id": ["JTI=j1"]}}
