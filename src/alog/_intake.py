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
        redaction: Redaction | None = None,
        storm: StormControl | None = None,
    ) -> None:
        self._queue = queue
        self._put = queue.put
        self._fields = dict(fields) if fields else None
        self._processors = tuple(processors)
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
        elif redaction:
            deliver = _redacting(redaction.apply, queue.put)
        self.emit: Emitter[None] = make_emitter(
            deliver,
            base=self._fields,
            on_error=self._count_internal_error,
        )
        """Queue one event; never raises an ``Exception``.

        With no processors and no redaction, the builder hands the event straight to
        ``queue.put``: a log method, the builder and the put are the whole hot path.
        """

    def sweep(self, *, everything: bool = False) -> None:
        """Storm control's reports of ended windows (the loop, once a second; all at close)."""
        if self._storm is not None:
            self._storm.sweep(everything=everything)

    def _count_internal_error(self) -> None:
        self.internal_errors += 1

    def _process_then_put(self, event: dict[str, Any], levelno: int) -> None:
        redact = self._redact
        # Before the processors, so none sees a secret (nor quotes one in an alog.error
        # marker); after them too, for what they added, with what the first pass found.
        found = redact(event) if redact is not None else None
        storm = self._storm
        if storm is not None and not storm.admit(event, levelno):
            self.filtered += 1
            return
        processed = self._process(event) if self._processors else event
        if processed is not None:
            if redact is not None:
                redact(processed, found)
            self._put(processed, levelno)

    def _process(self, event: dict[str, Any]) -> dict[str, Any] | None:
        core = {key: event[key] for key in ("time", "level", "logger", "msg")}
        for processor in self._processors:
            try:
                result = processor(event)
            except Exception as error:  # noqa: BLE001 - the event is kept, marked and counted
                self.processor_errors += 1
                event["alog.error"] = f"processor {_name_of(processor)} raised {_describe(error)}"
                continue
            if result is None:
                self.filtered += 1
                return None
            if not isinstance(result, dict):
                self.processor_errors += 1
                event["alog.error"] = (
                    f"processor {_name_of(processor)} returned {type(result).__name__}, not a dict"
                )
                continue
            event = result
        return repair_core_keys(event, core)


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
