"""Label and field selectors: the query-string syntax and metav1.LabelSelector.

The API server filters lists and watches with them, and controllers match pods
to their owners with them, so parsing and matching live in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from controlplane.api import validation
from controlplane.api.errors import StatusError, bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist (= and == are In, != is NotIn)
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        return False


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements. `nothing=True` is the nil selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def _requirement_errors(requirement: Requirement, exact: bool) -> list[str]:
    """Upstream's NewRequirement checks, worded as its field errors (the path is relative: `key`, `values`)."""
    errs = []
    key_msgs = validation.is_qualified_name(requirement.key)
    if key_msgs:
        errs.append(f"key: Invalid value: {validation.go_quote(requirement.key)}: {'; '.join(key_msgs)}")
    values = list(requirement.values)
    if exact and len(values) != 1:
        errs.append(f"values: Invalid value: {validation.go_value(values)}: exact-match compatibility requires "
                    "one single value")
    elif requirement.operator in ("In", "NotIn") and not values:
        errs.append(f"values: Invalid value: {validation.go_value(values)}: for 'in', 'notin' operators, values "
                    "set can't be empty")
    for i, value in enumerate(values):
        msgs = validation.is_valid_label_value(value)
        if msgs:
            errs.append(f"values[{i}][{requirement.key}]: Invalid value: {validation.go_quote(value)}: "
                        f"{'; '.join(msgs)}")
    return errs


def _checked(requirement: Requirement, exact: bool = False) -> Requirement:
    errs = _requirement_errors(requirement, exact)
    if errs:
        detail = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        raise bad_request(f"unable to parse requirement: {detail}")
    return requirement


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `app=web,tier!=db,env in (a,b),!legacy`; a bad one is a 400 BadRequest."""
    if not text or not text.strip():
        return EVERYTHING
    requirements = []
    for term in _split_terms(text):
        if m := _SET_RE.match(term):
            values = tuple(sorted({v.strip() for v in m["values"].split(",") if v.strip()}))  # a set, as upstream
            requirements.append(_checked(Requirement(m["key"], "In" if m["op"] == "in" else "NotIn", values)))
        elif m := _CMP_RE.match(term):
            requirements.append(_checked(Requirement(m["key"], "NotIn" if m["op"] == "!=" else "In", (m["value"],)),
                                         exact=True))
        elif m := _EXISTS_RE.match(term):
            requirements.append(_checked(Requirement(m["key"], "DoesNotExist" if m["neg"] else "Exists")))
        else:
            raise bad_request(f"unable to parse requirement: found '{term.strip()}', expected: "
                              f"'=', '!=', '==', 'in', notin'")
    return LabelSelector(tuple(requirements))


def selector_from_spec(spec: dict[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelector -> LabelSelector. None matches nothing; {} matches everything."""
    if spec is None:
        return NOTHING
    requirements = [Requirement(k, "In", (str(v),)) for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        op = expr.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise bad_request(f"{op!r} is not a valid label selector operator")
        requirements.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(requirements))


def selector_to_string(spec: dict[str, Any] | None) -> str:
    """metav1.LabelSelector -> query-string form (for `labelSelector=`)."""
    if not spec:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, bool, str], ...] = ()  # (field, equal?, value)

    def matches(self, fields: dict[str, str]) -> bool:
        return all((fields.get(f, "") == v) == eq for f, eq, v in self.terms)

    def fields(self) -> set[str]:
        return {f for f, _, _ in self.terms}

    def value_of(self, field: str) -> str | None:
        for f, eq, v in self.terms:
            if f == field and eq:
                return v
        return None


def parse_field_selector(text: str | None, allowed: set[str] | None = None) -> FieldSelector:
    """Parse `spec.nodeName=n1,status.phase!=Failed`; unknown fields are a 400 like upstream."""
    if not text or not text.strip():
        return FieldSelector()
    terms = []
    for term in _split_terms(text):
        for op in ("!=", "==", "="):
            if op in term:
                field, value = term.split(op, 1)
                terms.append((field.strip(), op != "!=", value.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
    result = FieldSelector(tuple(terms))
    if allowed is not None:
        for field in result.fields():
            if field not in allowed:
                raise StatusError(400, "BadRequest", f'field label not supported: {field}')
    return result
