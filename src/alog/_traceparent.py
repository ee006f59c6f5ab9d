"""A request's W3C ``traceparent``, kept for trace correlation when no span was made for it.

The request middlewares set :data:`remote_parent` while the app handles a request; the
``alog.otel.trace_context`` processor reads it only when no valid OpenTelemetry span is
current. Nothing here needs OpenTelemetry: with correlation off, the value is never read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Final, TypeAlias

TraceIds: TypeAlias = tuple[str, str, str]
"""``(trace_id, span_id, trace_flags)`` as lowercase hex: 32, 16 and 2 digits."""

# W3C Trace Context, level 1 and later versions: a version other than 00 may add fields after
# the flags (a "-" then more); version ff is invalid, as are all-zero ids.
_TRACEPARENT: Final = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII
)
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16

remote_parent: ContextVar[TraceIds | None] = ContextVar("alog_traceparent", default=None)
"""The ids of the current request's caller, from its ``traceparent`` header."""


def parse(header: str | None) -> TraceIds | None:
    """The ids in a ``traceparent`` header value, or None if it is missing or invalid."""
    if header is None or len(header) > 512:
        return None
    match = _TRACEPARENT.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


@contextmanager
def request_parent(header: str | None) -> Iterator[None]:
    """While the block runs, the request's ``traceparent`` (if valid) is the remote parent."""
    token = push_parent(header)
    try:
        yield
    finally:
        if token is not None:
            remote_parent.reset(token)


def push_parent(header: str | None) -> Token[TraceIds | None] | None:
    """:func:`request_parent`'s entry as a plain call: the token to reset, None if the header
    is missing or invalid (nothing was set)."""
    ids = parse(header)
    return None if ids is None else remote_parent.set(ids)
