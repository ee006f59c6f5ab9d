"""alog's process-global state, all of it: where log calls go right now.

``sink`` receives every enabled log call, through ``emit`` (its ``emit``, kept here so that a
log method reaches it with two specialised loads). It is the stdlib fallback until
``alog.run`` installs a pipeline's intake, and again after the pipeline closes (after one
that failed: a counter, :class:`~alog._fallback.LostAfterFailure`); change it only with
:func:`install`. ``pipeline`` is the running pipeline, for ``alog.flush()``.
``redaction`` is the redaction in force for events built outside a pipeline's intake (the
stdlib fallback, the test capture, the stdlib bridge's stderr): the running pipeline's, else
``process_redaction`` (``alog.set_redaction``). One pipeline runs per process at a time: log
calls come from anywhere (other threads, libraries, import time), so the destination cannot
be chosen per context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ._fallback import LostAfterFailure, StdlibFallback

if TYPE_CHECKING:
    from ._logger import Logger
    from ._pipeline import Pipeline
    from ._redact import Redaction


class Sink(Protocol):
    """What a log call hands its event to."""

    def emit(
        self,
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: str,
        fields: dict[str, object],
        exc_info: object,
        /,
    ) -> None: ...


fallback: Sink = StdlibFallback()
sink: Sink = fallback
emit: Callable[[Logger, int, str, str, dict[str, object], object], None] = fallback.emit


def install(new: Sink) -> None:
    """Make ``new`` the sink of every log call from now on."""
    global sink, emit
    previous = sink
    emit = new.emit
    sink = new
    if isinstance(previous, LostAfterFailure) and previous is not new:
        previous.replaced()  # its count ends here: said now, not at exit


pipeline: Pipeline | None = None

process_redaction: Redaction | None = None
"""The rules of ``alog.set_redaction()``: in force everywhere, pipelines included."""
redaction: Redaction | None = None
"""The rules in force now: the running pipeline's (its own and the process-wide ones)."""
