"""The bridge from :mod:`logging` into alog: other code's records in the same bounded queue.

``alog.stdlib.install()`` puts an :class:`AlogHandler` on the root logger, so records from
uvicorn, aiohttp, asyncio, httpx, SQLAlchemy... become alog events: the message formatted with
its args, the logger's name, the level, ``extra`` fields and a structured ``exception``. A
record costs what an alog call costs: it is queued, never written, on the calling thread.

Records that alog itself forwarded to :mod:`logging` (no pipeline running) carry the
``_alog_fallback`` mark and are never sent back, so there is no loop; while no pipeline runs,
the handler writes records as JSON lines to stderr instead, so nothing disappears before
``alog.run`` starts or after it ends. Records go wherever alog's own calls go otherwise:
into ``alog.testing.capture_logs()``, and after a pipeline failed, into the count of events
lost (reported once, at exit), never one stderr line each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Final, final

from . import _levels, _logger, _state
from ._context import context_fields
from ._events import build_event
from ._fallback import FALLBACK_MARK, _logfmt
from ._fields import timestamp
from ._logger import Logger
from ._redact import redact_outside
from ._report import to_stderr

__all__ = ["AlogHandler", "Bridge", "install"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "taskName",
        "alog_fields",
        FALLBACK_MARK,
        "color_message",  # uvicorn's copy of the message with terminal colour codes
    }
)


class AlogHandler(logging.Handler):
    """A :class:`logging.Handler` that turns each record into an alog event.

    Records go where alog's own calls go: a running pipeline's queue (subject to its level),
    ``capture_logs()``, or the count of events lost after a failure. With no pipeline, and for
    records alog forwarded to :mod:`logging` itself, they are written to stderr as JSON lines
    (if ``fallback_to_stderr``), because sending them to alog would send them straight back.
    """

    def __init__(
        self, level: int | str = logging.NOTSET, *, fallback_to_stderr: bool = True
    ) -> None:
        super().__init__(level)
        self.fallback_to_stderr = fallback_to_stderr
        self._loggers: dict[str, Logger] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record as an event; never raises, never blocks while a pipeline runs."""
        try:
            levelno = record.levelno
            if getattr(record, FALLBACK_MARK, False) or _state.sink is _state.fallback:
                if self.fallback_to_stderr:
                    self._to_stderr(record)
                return
            if levelno < _logger.threshold_of(record.name):
                return
            logger = self._loggers.get(record.name)
            if logger is None:
                logger = self._loggers.setdefault(record.name, Logger(record.name))
            _, levelname = _levels.resolve(levelno)
            _state.emit(
                logger, levelno, levelname, _message(record), _extra(record), _exc_info(record)
            )
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise
            self.handleError(record)

    def _to_stderr(self, record: logging.LogRecord) -> None:
        _, levelname = _levels.resolve(record.levelno)
        forwarded = getattr(record, "alog_fields", None)
        if isinstance(forwarded, dict):
            # alog's own call, forwarded: its fields travel apart and as a logfmt tail.
            msg = _message(record)
            tail = f" {_logfmt(forwarded)}" if forwarded else ""
            if tail and msg.endswith(tail):
                msg = msg[: -len(tail)]
            fields: dict[str, object] = forwarded
        else:
            msg = _message(record)
            fields = {**(context_fields.get() or {}), **_extra(record)}
        event = build_event(
            Logger(record.name),
            levelname,
            msg,
            fields,
            _exc_info(record),
            timestamp(int(record.created * 1e9)),
        )
        redact_outside(event)
        to_stderr(json.dumps(event, default=repr, ensure_ascii=False, separators=(",", ":")))


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - bad args must not lose the record
        return f"{record.msg!r} % {record.args!r} (could not format)"


def _extra(record: logging.LogRecord) -> dict[str, object]:
    fields = {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }
    if record.stack_info:
        fields["stack"] = record.stack_info
    return fields


def _exc_info(
    record: logging.LogRecord,
) -> tuple[type[BaseException], BaseException, TracebackType | None] | None:
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        return exc_info
    return None


@final
class Bridge:
    """What :func:`install` changed, so that :meth:`uninstall` can put it back."""

    def __init__(self, handler: AlogHandler) -> None:
        self.handler = handler
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
        self._root_level: int | None = None

    def uninstall(self) -> None:
        """Remove the handler and restore the handlers and flags :func:`install` replaced."""
        root = logging.getLogger()
        root.removeHandler(self.handler)
        for logger, handlers, propagate in reversed(self._saved):
            logger.handlers[:] = handlers
            logger.propagate = propagate
        self._saved.clear()
        if self._root_level is not None:
            root.setLevel(self._root_level)

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()


_HANDED_ON: Final = frozenset({"gunicorn.error", "gunicorn.access"})
"""Loggers whose handler list a server hands on to others later: given alog's handler.

gunicorn builds each UvicornWorker in the master, after an app imported by ``--preload``
installed the bridge, and gives uvicorn.error gunicorn.error's list with ``propagate=False``
(uvicorn.access, gunicorn.access's): an emptied list would silence them.
"""


def _through_alog(logger: logging.Logger) -> bool:
    """Does ``logger`` write through alog alone already (``alog.integrations.gunicorn``)?

    Such a logger is left as it is: its list may be handed on later (gunicorn builds each
    UvicornWorker after the app was imported by ``--preload``, and gives uvicorn.error
    gunicorn.error's list then), so emptying it would silence whoever receives it.
    """
    return not logger.propagate and all(isinstance(h, AlogHandler) for h in logger.handlers)


def install(
    *,
    level: int | str | None = logging.INFO,
    replace_handlers: bool = True,
    keep: Iterable[str] = (),
    fallback_to_stderr: bool = True,
) -> Bridge:
    """Route every :mod:`logging` record into alog; returns a :class:`Bridge` to undo it.

    One :class:`AlogHandler` goes on the root logger. With ``replace_handlers`` (the default),
    the root's other handlers are removed, and so are those of every named logger that has its
    own (uvicorn's, for instance), which are made to propagate to the root instead: then each
    record is written once, by alog (gunicorn's two loggers, whose lists gunicorn hands on
    to uvicorn's, get the root's handler instead). Loggers named in ``keep`` are left alone,
    and so are loggers that write through an :class:`AlogHandler` of their own only. ``level`` sets
    the root logger's level (``None`` leaves it); alog's own level applies on top.
    """
    handler = AlogHandler(fallback_to_stderr=fallback_to_stderr)
    bridge = Bridge(handler)
    root = logging.getLogger()
    kept = set(keep)
    if replace_handlers:
        # Every logger's handlers are read before any is changed: loggers may share one list
        # object (gunicorn's UvicornWorker gives uvicorn.error gunicorn.error's), and emptying
        # one must not make the other look like a logger without handlers of its own.
        replaced = [
            (logger, list(logger.handlers), logger.propagate)
            for name, logger in list(logging.root.manager.loggerDict.items())
            if isinstance(logger, logging.Logger)
            and logger.handlers
            and name not in kept
            and not _through_alog(logger)
        ]
        bridge._saved.append((root, list(root.handlers), root.propagate))
        bridge._saved.extend(replaced)
        root.handlers[:] = []
        for logger, _, _ in replaced:
            if logger.name in _HANDED_ON:
                logger.handlers[:] = [handler]  # the root's; propagate stays as it was
            else:
                logger.handlers[:] = []
                logger.propagate = True
    root.addHandler(handler)
    if level is not None:
        bridge._root_level = root.level
        root.setLevel(_levels.number_of(level) if isinstance(level, str) else level)
    return bridge
