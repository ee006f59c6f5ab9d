"""Helpers for testing code that logs with alog: ``capture_logs()`` and a pytest fixture.

``capture_logs()`` collects what a block of code logs as plain dicts, with no destination and
no pipeline, so a test can assert on its own log calls::

    with alog.testing.capture_logs() as events:
        handle_request()
    assert events == [{"level": "info", "logger": "app", "msg": "handled", "status": 200}]

Installing alog also installs a pytest plugin with the ``alog_logs`` fixture: the same list,
collected for the whole test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import _logger, _state
from ._events import build_event
from ._redact import redact_outside

if TYPE_CHECKING:
    from ._logger import Logger

__all__ = ["CapturingSink", "capture_logs"]


class CapturingSink:
    """A sink that keeps each event as a dict: what a pipeline would write, minus ``time``.

    ``time`` is left out so that whole events can be compared with ``==``; everything else
    (bound fields, context fields, call fields, the structured ``exception``) is there, merged
    exactly as a pipeline merges it, and redacted by the rules in force (the running
    pipeline's ``redact=``, else ``alog.set_redaction()``'s); processors do not run.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(
        self,
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: str,
        fields: dict[str, object],
        exc_info: object,
        /,
    ) -> None:
        """Keep one event; like every sink, never raises into the log call."""
        event = build_event(logger, levelname, msg, fields, exc_info, "")
        redact_outside(event)  # what a pipeline would write: redacted the same way
        del event["time"]
        with self._lock:
            self.events.append(event)


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect every event logged in the block, at every level, instead of writing it.

    It swaps alog's process-wide sink, so it also captures other tasks and threads, and it
    works whether or not a pipeline runs (events logged inside the block do not reach it).
    Blocks nest; the previous sink and level are restored on exit. A pipeline that starts
    inside the block takes the events over from then on: to capture what a served app logs,
    enter the block after the app has started.
    """
    sink = CapturingSink()
    previous_sink = _state.sink
    previous_pipeline = _state.pipeline
    previous_thresholds = _logger.snapshot()
    _state.install(sink)
    _logger.configure(0, {})
    try:
        yield sink.events
    finally:
        if _state.sink is sink:
            pipeline = _state.pipeline
            if pipeline is previous_pipeline:
                _state.install(previous_sink)
                _logger.configure(*previous_thresholds)
            elif pipeline is None:  # the pipeline that ran when we started has ended
                _state.install(_state.fallback)
                _logger.configure(0, {})
            else:
                _state.install(pipeline.sink() or _state.fallback)
                _logger.configure(pipeline.level, pipeline.loggers)
