"""OpenTelemetry: trace ids on every event, and OTLP/HTTP export of the log.

Needs the extra: ``pip install 'alog[otel]'`` (``opentelemetry-api`` for the ids,
``opentelemetry-proto`` for :class:`OTLP`). No SDK is needed to read the current span.

- :func:`trace_context`, the processor that ``alog.run(otel=True)`` puts first: while a valid
  span is current, the event gets top-level ``trace_id``, ``span_id`` and ``trace_flags`` (the
  names of the spec's "Trace Context in non-OTLP Log Formats").
- :class:`OTLP`, a destination sending the events as OTel log records (OTLP/HTTP, protobuf).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._traceparent import remote_parent

try:
    from opentelemetry.context import get_current
    from opentelemetry.trace import get_current_span
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError(
        "alog.otel needs opentelemetry-api; install it with: pip install 'alog[otel]'"
    ) from missing

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from ._destinations.otlp import OTLP, OTLPStatistics
    from ._traceparent import TraceIds

__all__ = ["OTLP", "OTLPStatistics", "trace_context"]

_get_remote: Final = remote_parent.get

# The last OpenTelemetry context seen and the ids of its span, formatted. A Context is
# immutable (changing it makes a new one), so the same object means the same span: the log
# calls of one request skip the span lookup and the formatting. One tuple, replaced whole,
# so that threads never see half of it; it holds the context, so its id is never reused.
_last: tuple[Context | None, TraceIds | None] = (None, None)


def _ids_of(context: Context) -> TraceIds | None:
    span_context = get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    return (
        f"{span_context.trace_id:032x}",
        f"{span_context.span_id:016x}",
        f"{span_context.trace_flags:02x}",
    )


def trace_context(event: dict[str, Any], /) -> dict[str, Any]:
    """Add ``trace_id`` (32 hex), ``span_id`` (16 hex), ``trace_flags`` (2 hex) of the current span.

    The span is the one current on the calling thread at the call (a child span's own ids).
    With no valid span, the ids of the request's ``traceparent`` header when an alog request
    middleware saw one (the caller's span: no span was made for this request); else nothing.
    """
    global _last  # the cache above
    current = get_current()
    last = _last
    if last[0] is current:
        ids = last[1]
    else:
        ids = _ids_of(current)
        _last = (current, ids)
    if ids is None:
        ids = _get_remote()
        if ids is None:
            return event
    event["trace_id"], event["span_id"], event["trace_flags"] = ids
    return event


def __getattr__(name: str) -> object:
    # OTLP needs opentelemetry-proto (and protobuf): imported on first use, so that the
    # trace ids work with opentelemetry-api alone.
    if name in ("OTLP", "OTLPStatistics"):
        try:
            from ._destinations import otlp
        except ImportError as missing:
            raise ImportError(
                f"alog.otel.{name} needs opentelemetry-proto; install it with: "
                "pip install 'alog[otel]'"
            ) from missing
        return getattr(otlp, name)
    raise AttributeError(f"module 'alog.otel' has no attribute {name!r}")
