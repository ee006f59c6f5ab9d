"""Where log calls go when no pipeline runs: the standard :mod:`logging` module.

A library that uses alog inside an app that does not must cost that app nothing surprising:
no memory kept, records under the same logger name, fields visible in the message and
available to handlers as ``record.alog_fields``.

The exception is a process whose pipeline failed: alog said so once on stderr, and every
later call is counted by :class:`LostAfterFailure` and reported in one line at exit, instead
of each becoming a line of its own on stderr.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import traceback
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, final

from ._events import build_event
from ._redact import MIN_SCRUB_LENGTH, redact_outside
from ._report import to_stderr

if TYPE_CHECKING:
    from ._logger import Logger

FALLBACK_MARK = "_alog_fallback"
"""Attribute set on records alog forwards, so a bridge from logging back to alog skips them."""


class StdlibFallback:
    """Forwards each call to ``logging.getLogger(logger.name)``, if that logger is enabled."""

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
        std = logging.getLogger(logger.name)
        if not std.isEnabledFor(levelno):
            return
        event = build_event(logger, levelname, msg, fields, None, "")
        found = redact_outside(event)
        msg = event["msg"]  # type: ignore[assignment]  # redaction may have scrubbed it
        merged = dict(islice(event.items(), 4, None))  # all but the core keys
        text = msg if not merged else f"{msg} {_logfmt(merged)}"
        exc = exc_info if isinstance(exc_info, bool | BaseException | tuple) else None
        if found and exc:
            exc, text = _scrubbed_exception(exc, text, found)
        std.log(
            levelno,
            "%s",
            text,
            exc_info=exc,
            extra={"alog_fields": merged, FALLBACK_MARK: True},
            stacklevel=3,  # the user's call, not Logger.info or this method
        )


@final
class LostAfterFailure:
    """The sink once a pipeline has failed: each call is counted, none is written.

    The failure was reported once on stderr already; writing each later event there too
    (thousands of lines from a busy app, through the stdlib bridge) would bury that line.
    ``refused`` is what the failed pipeline's closed queue refused before this took over.
    The total goes to stderr in one line, if it is not zero: at exit, or when another sink
    takes over (a new pipeline starts). The failed pipeline's thresholds stay in force
    meanwhile, so that what is counted is what it would have written; ``release`` puts the
    fallback's back when another sink takes over.
    """

    def __init__(self, destination: str, refused: int = 0, *, release: Callable[[], None]) -> None:
        self.destination = destination
        self._release = release
        self.lost = refused
        """Events logged after the failure."""
        # Calls come from any thread; an RLock, because a signal handler that logs may land
        # inside this very method on the same thread.
        self._lock = threading.RLock()
        self._pid = os.getpid()
        atexit.register(self.report)

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
        with self._lock:
            self.lost += 1

    def replaced(self) -> None:
        """Another sink took over: the count is said now, and the thresholds released."""
        self.report()
        self._release()

    def take(self) -> int:
        """The count so far, reset: for a line that says it (the exit line under a server)."""
        with self._lock:
            lost, self.lost = self.lost, 0
        return lost

    def report(self) -> None:
        """Say how many events were lost since the failure or the last report (not in a fork)."""
        lost = self.take()
        if lost and os.getpid() == self._pid:
            to_stderr(
                f"alog: {lost} events logged after the writer failed on "
                f"{self.destination} were not written"
            )


def _scrubbed_exception(
    exc_info: bool | BaseException | tuple[object, ...], text: str, found: list[str]
) -> tuple[bool | BaseException | tuple[object, ...] | None, str]:
    """A traceback quoting a redacted value goes into the text, scrubbed, not to logging."""
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if exc is True:
        import sys

        exc = sys.exc_info()[1]
    if not isinstance(exc, BaseException):
        return exc_info, text
    formatted = "".join(traceback.format_exception(exc))
    secrets = [secret for secret in found if len(secret) >= MIN_SCRUB_LENGTH]
    if not any(secret in formatted for secret in secrets):
        return exc_info, text
    for secret in sorted(secrets, key=len, reverse=True):
        formatted = formatted.replace(secret, "[redacted]")
    return None, f"{text}\n{formatted.rstrip()}"


def _logfmt(fields: dict[str, object]) -> str:
    parts = []
    for key, value in fields.items():
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not break the log call
            text = f"<unrepresentable {type(value).__qualname__}>"
        parts.append(f"{key}={text}")
    return " ".join(parts)
