"""Guards for values already stored that the API no longer accepts (a `replicas` of 2^63, `2.0`, "3").

The API server now refuses integers beyond their Go width, but an object
written before that (or straight into the store) may still hold one. A
controller that trusted it would try to create 2^63 pods, or crash every sync
serializing it back. Upstream cannot meet such a value (its Go structs could
not decode it), so the only safe answer is the one chosen here: leave the
object alone, say why once per sync in the log, and do not retry it. A stored
selector that does not parse (a bad operator) selects nothing, as upstream's
controllers skip an owner whose LabelSelectorAsSelector fails.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.api.errors import StatusError
from controlplane.api.selectors import NOTHING, LabelSelector, selector_from_spec

INT32 = (-(2 ** 31), 2 ** 31 - 1)
INT64 = (-(2 ** 63), 2 ** 63 - 1)

log = logging.getLogger(__name__)


def bad_integers(spec: Any, fields: dict[str, tuple[int, int]]) -> list[str]:
    """The `fields` of `spec` that are set but are not integers within their bounds (bools excepted),
    or that are negative where a count is expected."""
    if not isinstance(spec, dict):
        return []
    bad = []
    for name, (low, high) in fields.items():
        value = spec.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not max(low, 0) <= value <= high:
            bad.append(name)
    return bad


def refuse(obj: dict[str, Any], spec: Any, fields: dict[str, tuple[int, int]]) -> bool:
    """True (and a warning logged) when `obj` holds a value from `fields` that no controller may act on."""
    bad = bad_integers(spec, fields)
    if bad:
        md = obj.get("metadata") or {}
        log.warning("%s %s/%s: not synced: spec.%s out of range (%s)", obj.get("kind", "object"),
                    md.get("namespace", ""), md.get("name", ""), ", spec.".join(bad),
                    ", ".join(repr(spec.get(b)) for b in bad))
    return bool(bad)


def selector(spec_selector: Any) -> LabelSelector:
    """`spec.selector` of a stored owner as a matcher; one that does not parse matches nothing."""
    try:
        return selector_from_spec(spec_selector)
    except (StatusError, KeyError, TypeError, AttributeError):
        log.warning("stored selector %r does not parse: it selects nothing", spec_selector)
        return NOTHING
