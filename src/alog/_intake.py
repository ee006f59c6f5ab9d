"""From a log call to the queue: build the event, run the processors, hand it to the queue.

The pipeline's sink (see :mod:`alog._state`). It runs on the caller's thread and never raises:
an ``Exception`` inside alog is counted in ``internal_errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._events import build_event, repair_core_keys

if TYPE_CHECKING:
    from ._logger import Logger
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
    ) -> None:
        self._queue = queue
        self._put = queue.put
        self._fields = dict(fields) if fields else None
        self._processors = tuple(processors)
        self.filtered = 0
        """Events a processor filtered out (returned ``None``)."""
        self.processor_errors = 0
        """Processor calls that raised or returned something other than a dict."""
        self.internal_errors = 0
        """Log calls lost to a bug in alog itself."""

        self.emit = self._make_emit()
        """Queue one event; never raises an ``Exception`` (a closure: this is the hot path)."""

    def _make_emit(self) -> Callable[[Logger, int, str, str, dict[str, object], object], None]:
        build = build_event
        put = self._queue.put
        base = self._fields
        process = self._process if self._processors else None
        intake = self

        def emit(
            logger: Logger,
            levelno: int,
            levelname: str,
            msg: str,
            fields: dict[str, object],
            exc_info: object,
            /,
        ) -> None:
            try:
                event = build(logger._name, logger._bound, levelname, msg, fields, exc_info, base)
                if process is not None:
                    processed = process(event)
                    if processed is None:
                        return
                    event = processed
                put(event, levelno)
            except Exception:  # noqa: BLE001 - a log call never raises into the application
                intake.internal_errors += 1

        return emit

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
