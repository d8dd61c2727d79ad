"""Credentials never reach a log: bearer tokens, JWTs, private keys and kubeconfig secrets are masked.

Components log exceptions, and some exceptions carry what they were sent: an
aiohttp `ClientResponseError`'s repr includes the request headers (the
`Authorization: Bearer ...` header), a YAML error quotes the kubeconfig line it
stopped at. Rather than trusting every call site, the `pyk8s` command formats
every log record (message and traceback) through `redact`.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from types import TracebackType

MASK = "<redacted>"
_PATTERNS = [
    # Authorization headers in any rendering: "Bearer X", 'Authorization': 'Bearer X'
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<1>{MASK}"),
    # JWTs (service-account tokens): three base64url parts, the first a JSON header
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    # PEM private keys, whole
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|$)", re.S),
     f"-----BEGIN PRIVATE KEY----- {MASK}"),
    # kubeconfig / JSON fields that hold secrets: token, client-key-data, password
    (re.compile(r"(?i)([\"']?(?:token|client-key-data|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
     rf"\g<1>{MASK}"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, exception, stack) has credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install(level: int, fmt: str) -> None:
    """`logging.basicConfig` with every root handler formatting through `RedactingFormatter`.

    An uncaught exception's traceback (printed by `sys.excepthook`) is masked too.
    """
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(fmt))
    sys.excepthook = _redacting_excepthook


def _redacting_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))
