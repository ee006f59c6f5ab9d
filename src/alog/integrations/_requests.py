"""What the request middlewares share: request ids, header redaction, level by status."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Final, TypeAlias

REQUEST_ID_HEADER: Final = "x-request-id"

StatusLevel: TypeAlias = Callable[[int], "str | int"]
"""Picks the level of an access line from the response status."""

ALWAYS_REDACTED: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED: Final = "[redacted]"

# Short and made of characters that cannot break a log line, a header or a shell: what UUIDs,
# ULIDs, hex trace ids and base64 tokens use. Anything else is replaced, not escaped.
_SAFE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def request_id(incoming: str | None) -> str:
    """Reuse an incoming request id if it is short and safe; otherwise make a new one."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def level_for_status(status: int) -> str:
    """The default: ``error`` for 5xx, ``warning`` for 4xx, ``info`` for everything else."""
    if status >= 500:
        return "error"
    if status >= 400:
        return "warning"
    return "info"


def redaction(names: Iterable[str]) -> frozenset[str]:
    """The lower-cased header names to redact: the configured ones plus the credentials."""
    if isinstance(names, str):
        raise TypeError("redact_headers is a collection of header names, not one string")
    return ALWAYS_REDACTED | {name.lower() for name in names}


def header_fields(pairs: Iterable[tuple[str, str]], redact: Collection[str]) -> dict[str, str]:
    """Request headers as one field: lower-case names, repeats joined, secrets redacted."""
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        shown = REDACTED if name in redact else value
        headers[name] = f"{headers[name]}, {shown}" if name in headers else shown
    return headers


def excluded(paths: Iterable[str]) -> frozenset[str]:
    """Paths whose successful requests get no access line (health checks, metrics)."""
    if isinstance(paths, str):
        raise TypeError("exclude_paths is a collection of paths, not one string")
    return frozenset(paths)


def milliseconds(seconds: float) -> float:
    """A duration for the ``duration_ms`` field, to the microsecond."""
    return round(seconds * 1000.0, 3)
