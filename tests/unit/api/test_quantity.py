from __future__ import annotations

import pytest

from controlplane.api.quantity import milli, whole


@pytest.mark.parametrize(("text", "millis"), [("100m", 100), ("1", 1000), ("0.5", 500), ("2.5", 2500),
                                              ("1e3", 1_000_000), (2, 2000)])
def test_cpu_millicores(text: str, millis: int) -> None:
    assert milli(text) == millis


@pytest.mark.parametrize(("text", "size"), [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1G", 10**9),
                                            ("512", 512), ("1.5Ki", 1536)])
def test_memory_bytes(text: str, size: int) -> None:
    assert whole(text) == size


@pytest.mark.parametrize("bad", ["ten", "1.2.3", "5Xi", ""])
def test_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        milli(bad)
