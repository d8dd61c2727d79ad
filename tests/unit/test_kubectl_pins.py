"""The kubectl matrix the tests drive: pinned in tools/kubectl/versions.txt, never skipped when missing."""

from __future__ import annotations

import pytest

from tests import conftest


def test_versions_file_pins_one_default_the_minor_the_server_claims() -> None:
    from controlplane.apiserver.discovery import VERSION_INFO

    assert conftest.KUBECTL_MINORS == sorted(set(conftest.KUBECTL_MINORS), key=lambda m: int(m.split(".")[1]))
    assert conftest.DEFAULT_KUBECTL_MINOR == f"1.{VERSION_INFO['minor']}"


def test_a_missing_kubectl_fails_the_test_instead_of_skipping_it() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"kubectl-1\.0 is not installed: scripts/install-kubectl.sh"):
        conftest.kubectl_binary("1.0")
