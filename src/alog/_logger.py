"""The logger users hold: cheap to create, immutable, and never blocking on a call."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Final, final

from . import _levels, _state
from ._fields import protect_core_keys

_EMPTY: Final[dict[str, object]] = {}


@final
class Logger:
    """Emits structured events: ``log.info("request handled", status=200)``.

    A call below the running pipeline's level costs one no-op method call; an enabled call
    captures time, context and fields, encodes them, and queues the line. It never waits for
    I/O and never raises because of the destination.

    ``exc_info`` takes what :mod:`logging` takes: ``True`` for the exception being handled,
    an exception instance, or a ``sys.exc_info()`` tuple. It is typed ``object`` so that
    ``log.info(msg, **fields)`` with any ``dict[str, object]`` type-checks.
    """

    __slots__ = ("_bound", "_name")

    def __init__(self, name: str, bound: Mapping[str, object] | None = None) -> None:
        self._name = name
        self._bound: dict[str, object] = protect_core_keys(bound) if bound else _EMPTY

    @property
    def name(self) -> str:
        """The ``logger`` field of every event."""
        return self._name

    @property
    def bound_fields(self) -> dict[str, object]:
        """A copy of the fields this logger adds to every event."""
        return dict(self._bound)

    def bind(self, **fields: object) -> Logger:
        """A new logger that adds ``fields`` to every event; this one is unchanged."""
        return Logger(self._name, {**self._bound, **fields})

    def __repr__(self) -> str:
        return f"<alog.Logger {self._name!r} bound={self._bound!r}>"

    def debug(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``debug``."""
        _state.sink.emit(self, 10, "debug", msg, fields, exc_info)

    def info(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``info``."""
        _state.sink.emit(self, 20, "info", msg, fields, exc_info)

    def warning(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``warning``."""
        _state.sink.emit(self, 30, "warning", msg, fields, exc_info)

    def error(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``error``."""
        _state.sink.emit(self, 40, "error", msg, fields, exc_info)

    def critical(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``critical``."""
        _state.sink.emit(self, 50, "critical", msg, fields, exc_info)

    def exception(self, msg: str, /, *, exc_info: object = True, **fields: object) -> None:
        """Log at level ``error`` with the exception being handled, as structured fields."""
        # Captured here: by the time the writer runs, the exception is no longer current.
        if exc_info is True:
            exc_info = sys.exc_info()[1]
        _state.sink.emit(self, 40, "error", msg, fields, exc_info)

    def log(
        self, level: str | int, msg: str, /, *, exc_info: object = None, **fields: object
    ) -> None:
        """Log at a level given by name (including custom levels) or number."""
        levelno, levelname = _levels.resolve(level)
        if levelno >= _threshold:
            _state.sink.emit(self, levelno, levelname, msg, fields, exc_info)


_threshold = 0
_ENABLED: Final = {name: getattr(Logger, name) for name in _levels.STANDARD}
_ENABLED["exception"] = Logger.exception


def _disabled(self: Logger, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
    """Stands in for a level method below the threshold: the cheapest possible call."""


def set_threshold(levelno: int) -> None:
    """Install the level methods for the current sink and threshold.

    Below ``levelno`` a method is a no-op (structlog's trick, per class). At or above it, a
    sink that offers ``level_method`` (the pipeline's queue) provides the method itself, so
    the call goes straight into the queue; any other sink is reached through ``_state.sink``.
    """
    global _threshold
    _threshold = levelno
    fast = getattr(_state.sink, "level_method", None)
    for name, method in _ENABLED.items():
        number = _levels.ERROR if name == "exception" else _levels.STANDARD[name]
        if number < levelno:
            method = _disabled
        elif fast is not None and name != "exception":
            method = fast(number, name)
        setattr(Logger, name, method)


def get_logger(name: str | None = None, /, **fields: object) -> Logger:
    """A logger named ``name`` (default: the calling module's ``__name__``), usable at once."""
    if name is None:
        name = sys._getframe(1).f_globals.get("__name__", "root")
    return Logger(name, fields)
