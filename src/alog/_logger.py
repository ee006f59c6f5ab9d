"""The logger users hold, and the thresholds that decide whether a call makes an event at all.

Global state, all of it in this module: the default threshold, the per-name overrides
(``loggers=`` / ``set_level``), and one class per logger name. A name's class carries that
name's level methods: below its threshold a method *is* :func:`_disabled`, a no-op (structlog's
trick, one class per name instead of per level), so a filtered call costs one empty call and
a threshold change reaches every logger of that name at once, from any thread, including
loggers created before it. At or above the threshold the method is the one written on
:class:`Logger`, which hands the call to the sink in :mod:`alog._state`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Final, final

from . import _levels, _state
from ._fields import protect_core_keys

_EMPTY: Final[dict[str, object]] = {}


@final
class Logger:
    """Emits structured events: ``log.info("request handled", status=200)``.

    A call below the logger's level costs one no-op method call; an enabled call captures
    time, context and fields, encodes them, and queues the line. It never waits for I/O and
    never raises because of the destination.

    ``exc_info`` takes what :mod:`logging` takes: ``True`` for the exception being handled,
    an exception instance, or a ``sys.exc_info()`` tuple. It is typed ``object`` so that
    ``log.info(msg, **fields)`` with any ``dict[str, object]`` type-checks.
    """

    __slots__ = ("_bound", "_name")
    _threshold: ClassVar[int] = 0
    """This name's threshold (set on the name's class)."""

    def __new__(cls, name: str, bound: Mapping[str, object] | None = None) -> Logger:
        return object.__new__(_class_for(name if type(name) is str else str(name)))

    def __init__(self, name: str, bound: Mapping[str, object] | None = None) -> None:
        self._name = name if type(name) is str else str(name)
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
        child = object.__new__(type(self))
        child._name = self._name
        child._bound = {**self._bound, **protect_core_keys(fields)}
        return child

    def is_enabled_for(self, level: str | int) -> bool:
        """Would a call at ``level`` make an event (for work worth skipping when not)?"""
        return _levels.resolve(level)[0] >= type(self)._threshold

    def __repr__(self) -> str:
        return f"<alog.Logger {self._name!r} bound={self._bound!r}>"

    def debug(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``debug``."""
        _state.emit(self, 10, "debug", msg, fields, exc_info)

    def info(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``info``."""
        _state.emit(self, 20, "info", msg, fields, exc_info)

    def warning(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``warning``."""
        _state.emit(self, 30, "warning", msg, fields, exc_info)

    def error(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``error``."""
        _state.emit(self, 40, "error", msg, fields, exc_info)

    def critical(self, msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        """Log at level ``critical``."""
        _state.emit(self, 50, "critical", msg, fields, exc_info)

    def exception(self, msg: str, /, *, exc_info: object = True, **fields: object) -> None:
        """Log at level ``error`` with the exception being handled, as structured fields."""
        # Captured here: by the time the writer runs, the exception is no longer current.
        if exc_info is True:
            exc_info = sys.exc_info()[1]
        _state.emit(self, 40, "error", msg, fields, exc_info)

    def log(
        self, level: str | int, msg: str, /, *, exc_info: object = None, **fields: object
    ) -> None:
        """Log at a level given by name (including custom levels) or number."""
        levelno, levelname = _levels.resolve(level)
        if levelno >= type(self)._threshold:
            _state.emit(self, levelno, levelname, msg, fields, exc_info)


def _disabled(self: Logger, msg: str, /, **fields: object) -> None:
    """Stands in for a level method below the threshold: the cheapest possible call.

    ``exc_info`` lands in ``fields`` with the rest: a keyword-only parameter would cost every
    disabled call a look at each keyword's name (about 50 ns with four fields, measured).
    """


_METHOD_LEVELS: Final = {**_levels.STANDARD, "exception": _levels.ERROR}

_lock = threading.Lock()  # serialises threshold changes; log calls never take it
_default = 0
_overrides: dict[str, int] = {}
_classes: dict[str, type[Logger]] = {}


def _threshold_of(name: str) -> int:
    """The override of the nearest dotted ancestor (``app.db`` for ``app.db.pool``), or the
    default: stdlib logging's inheritance."""
    while True:
        number = _overrides.get(name)
        if number is not None:
            return number
        cut = name.rfind(".")
        if cut < 0:
            return _default
        name = name[:cut]


def _apply(cls: type[Logger], threshold: int) -> None:
    cls._threshold = threshold
    namespace: dict[str, Any] = cls.__dict__  # type: ignore[assignment]
    for method, number in _METHOD_LEVELS.items():
        if number < threshold:
            setattr(cls, method, _disabled)
        elif method in namespace:
            delattr(cls, method)  # back to Logger's own method


def _class_for(name: str) -> type[Logger]:
    cls = _classes.get(name)
    if cls is None:
        with _lock:
            cls = _classes.get(name)
            if cls is None:
                namespace = {"__slots__": (), "__module__": Logger.__module__}
                cls = type("Logger", (Logger,), namespace)
                cls.__qualname__ = f"Logger[{name!r}]"
                _apply(cls, _threshold_of(name))
                _classes[name] = cls
    return cls


def configure(default: int, overrides: Mapping[str, int]) -> None:
    """Replace every threshold (a pipeline starting or ending, a test capture)."""
    global _default
    with _lock:
        _default = default
        _overrides.clear()
        _overrides.update(overrides)
        for name, cls in _classes.items():
            _apply(cls, _threshold_of(name))


def set_level(threshold: int, name: str | None = None) -> None:
    """Change the default (``name=None``) or one name's threshold and its children's."""
    global _default
    with _lock:
        if name is None:
            _default = threshold
        else:
            _overrides[name] = threshold
        for known, cls in _classes.items():
            if name is None or known == name or known.startswith(f"{name}."):
                _apply(cls, _threshold_of(known))


def snapshot() -> tuple[int, dict[str, int]]:
    """The thresholds in force, for :func:`configure` to put back."""
    with _lock:
        return _default, dict(_overrides)


def threshold_of(name: str) -> int:
    """The threshold in force for a logger name (the stdlib bridge asks per record)."""
    return _class_for(name)._threshold


def get_logger(name: str | None = None, /, **fields: object) -> Logger:
    """A logger named ``name`` (default: the calling module's ``__name__``), usable at once."""
    if name is None:
        name = sys._getframe(1).f_globals.get("__name__", "root")
    return Logger(name, fields)
