"""Upstream's ValidateObjectMeta and ValidateLabelSelector: names, labels, annotations, selectors in objects.

Kept apart from the per-kind checks in `schema/__init__.py` because every kind
goes through them, and because they are where sizes are bounded for all of
them: at most 256 KiB of annotations (upstream's TotalAnnotationSizeLimitB),
label keys and values of upstream's lengths, selectors whose requirements are
well formed. Field paths and messages are upstream's, cause for cause.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import validation as v
from controlplane.api.errors import FieldCause

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

# Kinds whose names must be DNS-1123 labels rather than subdomains (upstream).
LABEL_NAMED = {"Namespace", "Service"}


def name_causes(kind: str, md: Any) -> list[FieldCause]:
    if not isinstance(md, dict):
        return [v.required("metadata")]
    name = md.get("name")
    if not name:
        return [v.required("metadata.name", "name or generateName is required")]
    if not isinstance(name, str):
        return [FieldCause("metadata.name", f"Invalid value: {name!r}: must be a string")]
    check = v.is_dns1123_label if kind in LABEL_NAMED else v.is_dns1123_subdomain
    return [v.invalid("metadata.name", name, msg) for msg in check(name)]


def label_causes(path: str, labels: Any) -> list[FieldCause]:
    """Upstream's ValidateLabels: every key a qualified name, every value a label value, errors on `path`."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldCause(path, "Invalid value: must be a map of strings")]
    causes = []
    for key, value in labels.items():
        causes += [v.invalid(path, key, msg) for msg in v.is_qualified_name(str(key))]
        if not isinstance(value, str):
            causes.append(FieldCause(path, f"Invalid value: {value!r}: must be a string"))
            continue
        causes += [v.invalid(path, value, msg) for msg in v.is_valid_label_value(value)]
    return causes


def annotation_causes(path: str, annotations: Any) -> list[FieldCause]:
    """Upstream's ValidateAnnotations: qualified-name keys (compared in lower case) and 256 KiB in all."""
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [FieldCause(path, "Invalid value: must be a map of strings")]
    causes = []
    total = 0
    for key, value in annotations.items():
        causes += [v.invalid(path, key, msg) for msg in v.is_qualified_name(str(key).lower())]
        if not isinstance(value, str):
            causes.append(FieldCause(v.key_path(path, key), "Invalid value: must be a string"))
            continue
        total += v.byte_len(str(key)) + v.byte_len(value)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(v.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def object_meta_causes(kind: str, obj: dict[str, Any]) -> list[FieldCause]:
    md = obj.get("metadata")
    causes = name_causes(kind, md)
    if isinstance(md, dict):
        causes += label_causes("metadata.labels", md.get("labels"))
        causes += annotation_causes("metadata.annotations", md.get("annotations"))
    return causes


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector_causes(path: str, selector: Any) -> list[FieldCause]:
    """Upstream's metav1 ValidateLabelSelector for a selector inside an object (`spec.selector`...)."""
    if not isinstance(selector, dict):
        return []
    causes = label_causes(f"{path}.matchLabels", selector.get("matchLabels"))
    expressions = selector.get("matchExpressions")
    for i, expr in enumerate(expressions if isinstance(expressions, list) else []):
        at = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            continue
        operator, values = expr.get("operator"), expr.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(v.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(v.forbidden(f"{at}.values",
                                          "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(v.invalid(f"{at}.operator", operator, "not a valid selector operator"))
        key = expr.get("key")
        causes += [v.invalid(f"{at}.key", key, msg) for msg in v.is_qualified_name(str(key or ""))]
        for j, value in enumerate(values if isinstance(values, list) else []):
            causes += [v.invalid(f"{at}.values[{j}]", value, msg) for msg in v.is_valid_label_value(str(value))]
    return causes


def selector_is_valid(selector: Any) -> bool:
    """Whether `selector` converts to a matcher (upstream's LabelSelectorAsSelector succeeds)."""
    return not label_selector_causes("", selector)
