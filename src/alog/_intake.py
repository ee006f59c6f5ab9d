"""From a log call to the queue: build the event, run the processors, hand it to the queue.

The pipeline's sink (see :mod:`alog._state`). It runs on the caller's thread and never raises:
an ``Exception`` inside alog is counted in ``internal_errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._events import Deliver, Emitter, make_emitter, repair_core_keys

if TYPE_CHECKING:
    from ._queue import EventQueue
    from ._redact import Redaction
    from ._storm import StormControl
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
        redaction: Redaction | None = None,
        storm: StormControl | None = None,
    ) -> None:
        self._queue = queue
        self._put = queue.put
        self._fields = dict(fields) if fields else None
        self._processors = tuple(processors)
        self._trace = trace
        self._redact = redaction.apply if redaction else None
        self._storm = storm if storm else None
        self.filtered = 0
        """Events a processor filtered out (returned ``None``), or storm control held back."""
        self.processor_errors = 0
        """Processor calls that raised or returned something other than a dict."""
        self.internal_errors = 0
        """Log calls lost to a bug in alog itself."""

        deliver: Deliver[None] = queue.put
        if self._processors or self._storm is not None:
            deliver = self._process_then_put
        elif redaction is not None and trace is not None:
            deliver = self._trace_then_put
        elif redaction is not None:
            deliver = _redacting(redaction.apply, queue.put)
        elif trace is not None:
            deliver = self._trace_then_put
        self.emit: Emitter[None] = make_emitter(
            deliver,
            base=self._fields,
            on_error=self._count_internal_error,
        )
        """Queue one event; never raises an ``Exception``.

        With no processors, no redaction and no trace ids, the builder hands the event
        straight to ``queue.put``: a log method, the builder and the put are the whole hot
        path. ``trace`` (``otel=True``'s :func:`alog.otel.trace_context`) runs first; with
        only it and redaction, neither needs the processors' machinery (the ids never touch
        the core keys, and redaction never redacts them).
        """

    def sweep(self, *, everything: bool = False) -> None:
        """Storm control's reports of ended windows (the loop, once a second; all at close)."""
        if self._storm is not None:
            self._storm.sweep(everything=everything)

    def _count_internal_error(self) -> None:
        self.internal_errors += 1

    def _trace_then_put(self, event: dict[str, Any], levelno: int) -> None:
        event = self._traced(event)
        if self._redact is not None:
            self._redact(event)
        self._put(event, levelno)

    def _traced(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self._trace is not None
        try:
            self._trace(event)
        except Exception as error:  # noqa: BLE001 - the event is kept, marked and counted
            self.processor_errors += 1
            event["alog.error"] = f"processor {_name_of(self._trace)} raised {_describe(error)}"
        return event

    def _process_then_put(self, event: dict[str, Any], levelno: int) -> None:
        """Trace ids, redaction, storm control, the processors in order, then the queue.

        Redaction runs before the processors, so none sees a secret (nor quotes one in an
        ``alog.error`` marker), and after them too, for what they added, with what the first
        pass found.
        """
        if self._trace is not None:
            event = self._traced(event)
        redact = self._redact
        found = redact(event) if redact is not None else None
        storm = self._storm
        if storm is not None and not storm.admit(event, levelno):
            self.filtered += 1
            return
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
        if self._processors:
            event = repair_core_keys(event, core)
            if redact is not None:
                redact(event, found)
        self._put(event, levelno)


def _redacting(apply: Callable[[dict[str, Any]], object], put: Deliver[None]) -> Deliver[None]:
    def redact_then_put(event: dict[str, Any], levelno: int, /) -> None:
        apply(event)
        put(event, levelno)

    return redact_then_put


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
