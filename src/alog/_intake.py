"""From a log call to the queue: build the event, run the processors, hand it to the queue.

The pipeline's sink (see :mod:`alog._state`). It runs on the caller's thread and never raises:
an ``Exception`` inside alog is counted in ``internal_errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._events import Deliver, Emitter, make_emitter, repair_core_keys

if TYPE_CHECKING:
    from ._queue import EventQueue
    from .typing import Processor


class Intake:
    """Where a running pipeline's log calls arrive."""

    def __init__(
        self,
        queue: EventQueue,
        *,
        fields: Mapping[str, object] | None,
        processors: Sequence[Processor],
        trace: Processor | None = None,
    ) -> None:
        self._queue = queue
        self._put = queue.put
        self._fields = dict(fields) if fields else None
        self._processors = tuple(processors)
        self._trace = trace
        self.filtered = 0
        """Events a processor filtered out (returned ``None``)."""
        self.processor_errors = 0
        """Processor calls that raised or returned something other than a dict."""
        self.internal_errors = 0
        """Log calls lost to a bug in alog itself."""

        deliver: Deliver[None] = queue.put
        if self._processors:
            deliver = self._process_then_put
        elif trace is not None:
            deliver = self._trace_then_put
        self.emit: Emitter[None] = make_emitter(
            deliver,
            base=self._fields,
            on_error=self._count_internal_error,
        )
        """Queue one event; never raises an ``Exception``.

        With no processors, the builder hands the event straight to ``queue.put``: a log
        method, the builder and the put are the whole hot path. ``trace`` (``otel=True``'s
        :func:`alog.otel.trace_context`) runs before the processors; alone, it skips their
        machinery (it only adds three keys, never touching the core ones).
        """

    def _count_internal_error(self) -> None:
        self.internal_errors += 1

    def _trace_then_put(self, event: dict[str, Any], levelno: int) -> None:
        self._put(self._traced(event), levelno)

    def _traced(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self._trace is not None
        try:
            self._trace(event)
        except Exception as error:  # noqa: BLE001 - the event is kept, marked and counted
            self.processor_errors += 1
            event["alog.error"] = f"processor {_name_of(self._trace)} raised {_describe(error)}"
        return event

    def _process_then_put(self, event: dict[str, Any], levelno: int) -> None:
        """The processors in order, then the queue (one frame: this runs for every event)."""
        if self._trace is not None:
            event = self._traced(event)
        core = (event["time"], event["level"], event["logger"], event["msg"])
        for processor in self._processors:
            try:
                result = processor(event)
            except Exception as error:  # noqa: BLE001 - the event is kept, marked and counted
                self.processor_errors += 1
                event["alog.error"] = f"processor {_name_of(processor)} raised {_describe(error)}"
                continue
            if result is None:
                self.filtered += 1
                return
            if not isinstance(result, dict):
                self.processor_errors += 1
                event["alog.error"] = (
                    f"processor {_name_of(processor)} returned {type(result).__name__}, not a dict"
                )
                continue
            event = result
        self._put(repair_core_keys(event, core), levelno)


def _name_of(processor: object) -> str:
    name = getattr(processor, "__qualname__", None) or getattr(processor, "__name__", None)
    return name if isinstance(name, str) else type(processor).__qualname__


def _describe(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the event
        text = ""
    name = type(error).__qualname__
    return f"{name}: {text[:200]}" if text else name
