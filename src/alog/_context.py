"""Context-bound fields: a context variable, so they follow tasks created inside the block."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token

from ._fields import protect_core_keys

context_fields: ContextVar[dict[str, object] | None] = ContextVar("alog_context", default=None)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every event logged in this context (and tasks started inside it)."""
    token = push_fields(fields)
    try:
        yield
    finally:
        context_fields.reset(token)


def push_fields(fields: Mapping[str, object]) -> Token[dict[str, object] | None]:
    """What :func:`bound` does on entry, as a plain call (a middleware's per-request path,
    where a context manager costs more than the binding); undo with ``context_fields.reset``."""
    current = context_fields.get()
    merged = {**current, **protect_core_keys(fields)} if current else protect_core_keys(fields)
    return context_fields.set(merged)


def current_context() -> dict[str, object]:
    """A copy of the fields bound in the current context."""
    return dict(context_fields.get() or {})
