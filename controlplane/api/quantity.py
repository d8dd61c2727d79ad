"""resource.Quantity parsing: "100m" CPU, "128Mi" memory, "1e3", "2".

The scheduler sums requests against allocatable and the agent turns limits
into cgroup settings, so both read quantities through this one parser.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes); ValueError if malformed."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _RE.match(value.strip())
    if not match:
        raise ValueError(f"quantities must match the regular expression '{_RE.pattern}': {value!r}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None
    return number * _SUFFIX[match.group(2) or ""]


# Quantities repeat endlessly ("100m", "128Mi"); these pure conversions are memoized.
@functools.lru_cache(maxsize=4096)
def milli(value: str | int | float) -> int:
    """Quantity in thousandths (millicores for CPU), rounded up as upstream's MilliValue."""
    scaled = parse_quantity(value) * 1000
    return int(scaled.to_integral_value(rounding="ROUND_CEILING"))


@functools.lru_cache(maxsize=4096)
def whole(value: str | int | float) -> int:
    """Quantity in base units rounded up (bytes for memory)."""
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))
