from __future__ import annotations

import datetime as dt

import pytest

from controlplane.controllers.cron import parse

T0 = dt.datetime(2026, 1, 1, 10, 7, tzinfo=dt.UTC)  # a Thursday


@pytest.mark.parametrize(("spec", "expected"), [
    ("*/5 * * * *", dt.datetime(2026, 1, 1, 10, 10, tzinfo=dt.UTC)),
    ("0 * * * *", dt.datetime(2026, 1, 1, 11, 0, tzinfo=dt.UTC)),
    ("@daily", dt.datetime(2026, 1, 2, 0, 0, tzinfo=dt.UTC)),
    ("30 9 * * mon", dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)),
    ("0 0 1 feb *", dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC)),
    ("15 10-12/2 * * *", dt.datetime(2026, 1, 1, 10, 15, tzinfo=dt.UTC)),
    ("0 0 15 * 1", dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)),  # day 15 OR Monday
])
def test_next_times(spec: str, expected: dt.datetime) -> None:
    assert parse(spec).next_after(T0) == expected


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "a b c d e", "5-1 * * * *"])
def test_invalid_schedules(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)
