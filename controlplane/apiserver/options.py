"""Query parameters checked before a request does anything, with upstream's answers.

Why this module exists: parameters were read where they were used, so
`gracePeriodSeconds=abc` raised a ValueError (500) and `timeoutSeconds=abc` a
500 inside a watch stream that had already started, and unknown
`fieldValidation` / `resourceVersionMatch` values were ignored. Upstream
decodes the whole query into CreateOptions/UpdateOptions/PatchOptions/
ListOptions/DeleteOptions first: a parameter that is not an int64 is a 400
with Go's `strconv.ParseInt` message, an unsupported value a 422 Invalid of
the options kind (`PatchOptions.meta.k8s.io "" is invalid: ...`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from controlplane.api import errors

INT64_PARAMS = ("limit", "timeoutSeconds", "gracePeriodSeconds")
FIELD_MANAGER_MAX_LENGTH = 128
FIELD_VALIDATION_VALUES = ("", "Ignore", "Strict", "Warn")  # sorted, as upstream lists them
_GO_INT = re.compile(r"[+-]?[0-9]+")
OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def parse_int64(name: str, text: str) -> int:
    """An int64 query parameter, refused with Go's message: `strconv.ParseInt: parsing "abc": invalid
    syntax` / `... value out of range`."""
    if not _GO_INT.fullmatch(text):
        raise errors.bad_request(f'strconv.ParseInt: parsing {go_quote(text)}: invalid syntax')
    value = int(text)
    if not -(2 ** 63) <= value < 2 ** 63:
        raise errors.bad_request(f'strconv.ParseInt: parsing {go_quote(text)}: value out of range')
    return value


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote): printable characters as is, others escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif is_go_printable(ch):
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def is_go_printable(ch: str) -> bool:
    """unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


def _options_invalid(kind: str, field: str, message: str, reason: str = "FieldValueInvalid") -> errors.StatusError:
    return errors.invalid(kind, "", [errors.FieldCause(field, message, reason)], "meta.k8s.io")


def field_manager_causes(manager: str) -> list[errors.FieldCause]:
    causes = []
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(errors.FieldCause("fieldManager", f"Too long: may not be more than "
                                        f"{FIELD_MANAGER_MAX_LENGTH} bytes", "FieldValueTooLong"))
    for position, ch in enumerate(manager):
        if not is_go_printable(ch):
            causes.append(errors.FieldCause("fieldManager", f"Invalid value: {go_quote(manager)}: invalid "
                                            f"character U+{ord(ch):04X} (at position {position})"))
    return causes


def validate(method: str, query: Mapping[str, str], *, listing: bool) -> None:
    """Refuse a malformed query before anything is read, written or streamed."""
    for name in INT64_PARAMS:
        if name in query:
            parse_int64(name, query[name])
    kind = OPTIONS_KIND.get(method)
    if kind is not None:
        mode = query.get("fieldValidation", "")
        if mode not in FIELD_VALIDATION_VALUES:
            supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATION_VALUES)
            raise _options_invalid(kind, "fieldValidation", f"Unsupported value: {go_quote(mode)}: supported "
                                   f"values: {supported}", "FieldValueNotSupported")
        causes = field_manager_causes(query.get("fieldManager", ""))
        if causes:
            raise errors.invalid(kind, "", causes, "meta.k8s.io")
    if listing and method == "GET":
        match = query.get("resourceVersionMatch", "")
        if match and match not in ("Exact", "NotOlderThan"):
            raise _options_invalid("ListOptions", "resourceVersionMatch", f"Unsupported value: {go_quote(match)}: "
                                   'supported values: "Exact", "NotOlderThan", ""', "FieldValueNotSupported")
        if match and not query.get("resourceVersion"):
            raise _options_invalid("ListOptions", "resourceVersionMatch", "Forbidden: resourceVersionMatch is "
                                   "forbidden unless resourceVersion is provided", "FieldValueForbidden")
