"""Standard cron schedules: five fields (minute hour day-of-month month day-of-week) and @macros.

Fields take `*`, numbers, ranges `a-b`, steps `*/n` or `a-b/n`, lists, and
month/day names. As in cron, when both day-of-month and day-of-week are
restricted a day matches if either does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                      "dec"], start=1)}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


def _value(text: str, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ValueError(f"invalid value {text!r}")
    return int(text)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"invalid step in {part!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(base, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{part!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def _day_ok(self, t: dt.datetime) -> bool:
        day_ok, weekday_ok = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def matches(self, t: dt.datetime) -> bool:
        return (t.month in self.months and self._day_ok(t) and t.hour in self.hours
                and t.minute in self.minutes)

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first matching minute strictly after `t`, skipping whole months, days and hours."""
        candidate = t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = candidate + dt.timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
            elif not self._day_ok(candidate):
                candidate = candidate.replace(hour=0, minute=0) + dt.timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + dt.timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += dt.timedelta(minutes=1)
            else:
                return candidate
        raise ValueError("schedule never fires")


def parse(text: str) -> Schedule:
    spec = MACROS.get(text.strip(), text.strip())
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {text!r}")
    names = [{}, {}, {}, MONTHS, DAYS]
    parsed = [_field(f, lo, hi, n) for f, (lo, hi), n in zip(fields, BOUNDS, names, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in parsed[4])
    return Schedule(parsed[0], parsed[1], parsed[2], parsed[3], weekdays, fields[2] == "*", fields[4] == "*")
