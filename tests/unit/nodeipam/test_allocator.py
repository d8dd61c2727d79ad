from __future__ import annotations

import pytest

from controlplane.controllers.nodeipam import CIDRAllocator, CIDRExhaustedError


def test_allocates_lowest_free_subnet_and_skips_occupied() -> None:
    alloc = CIDRAllocator("10.244.0.0/16")
    assert alloc.occupy("10.244.0.0/24")
    assert alloc.occupy("10.244.2.0/24")
    assert alloc.allocate() == "10.244.1.0/24"
    assert alloc.allocate() == "10.244.3.0/24"


def test_released_subnet_is_reused() -> None:
    alloc = CIDRAllocator("10.244.0.0/16")
    first = alloc.allocate()
    alloc.allocate()
    alloc.release(first)
    assert alloc.allocate() == first


def test_foreign_ranges_are_not_occupied() -> None:
    alloc = CIDRAllocator("10.244.0.0/16")
    assert not alloc.occupy("10.245.0.0/24")
    assert not alloc.occupy("10.244.0.0/25")
    assert alloc.allocate() == "10.244.0.0/24"


def test_exhaustion_is_an_error() -> None:
    alloc = CIDRAllocator("10.244.0.0/23")
    alloc.allocate()
    alloc.allocate()
    with pytest.raises(CIDRExhaustedError):
        alloc.allocate()


def test_mask_must_fit() -> None:
    with pytest.raises(ValueError):
        CIDRAllocator("10.244.0.0/16", node_mask=8)
