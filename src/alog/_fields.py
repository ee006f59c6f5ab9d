"""Building an event: the core keys, the call-time timestamp, and structured exceptions."""

from __future__ import annotations

import datetime
import sys
import traceback
from collections.abc import Mapping
from typing import Final

CORE_KEYS: Final = frozenset({"time", "level", "logger", "msg"})

UTC: Final = datetime.UTC
now: Final = datetime.datetime.now
"""``now(UTC)`` is the call-time stamp. msgspec writes an aware UTC datetime as RFC 3339 with
``Z`` in C, several times cheaper than formatting the text in Python."""


def rfc3339(stamp: datetime.datetime) -> str:
    """The text msgspec writes, but always with microseconds (msgspec omits ``.000000``)."""
    return stamp.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def stamp_now() -> datetime.datetime | str:
    """The ``time`` value of an event logged now (the hot path inlines this)."""
    stamp = now(UTC)
    return stamp if stamp.microsecond else rfc3339(stamp)


def timestamp(time_ns: int) -> str:
    """RFC 3339 UTC text with microseconds for a time in nanoseconds since the epoch."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return rfc3339(stamp)


def protect_core_keys(
    fields: Mapping[str, object], taken: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Rename user keys that would overwrite a core key (``msg`` becomes ``_msg``).

    The new name never hides another field, of ``fields`` or of ``taken`` (what the event
    already holds): with both ``time`` and ``_time`` given, the renamed one is ``__time``.
    """
    if CORE_KEYS.isdisjoint(fields):
        return dict(fields)
    out: dict[str, object] = {key: value for key, value in fields.items() if key not in CORE_KEYS}
    for key in CORE_KEYS.intersection(fields):
        renamed = f"_{key}"
        while renamed in out or renamed in fields or (taken is not None and renamed in taken):
            renamed = f"_{renamed}"
        out[renamed] = fields[key]
    return out


def exception_fields(exc_info: object) -> dict[str, object] | None:
    """The ``exception`` field: type, message, frames, and the chain of causes.

    None when there is no exception to describe (``exc_info=True`` outside ``except``).
    """
    if exc_info is None or exc_info is False:
        return None
    if exc_info is True:
        exc = sys.exc_info()[1]
    elif isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    else:
        return {"type": "<not an exception>", "message": _safe_str(exc_info), "frames": []}
    if not isinstance(exc, BaseException):
        return None
    return _describe(exc, depth=0, seen=set())


_MAX_CHAIN = 8


def _describe(exc: BaseException, depth: int, seen: set[int]) -> dict[str, object]:
    seen.add(id(exc))
    cls = type(exc)
    module = cls.__module__
    described: dict[str, object] = {
        "type": cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}",
        "message": _safe_str(exc),
        # Straight from the frames: traceback.StackSummary stats every source file (its
        # linecache check), and that is I/O on the caller's path.
        "frames": [
            {"file": frame.f_code.co_filename, "line": line, "function": frame.f_code.co_name}
            for frame, line in traceback.walk_tb(exc.__traceback__)
        ],
    }
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list) and notes:
        described["notes"] = [_safe_str(note) for note in notes]
    if depth < _MAX_CHAIN:
        if isinstance(exc, BaseExceptionGroup):
            described["exceptions"] = [
                _describe(inner, depth + 1, seen)
                for inner in exc.exceptions
                if id(inner) not in seen
            ]
        if exc.__cause__ is not None and id(exc.__cause__) not in seen:
            described["cause"] = _describe(exc.__cause__, depth + 1, seen)
        elif (
            exc.__context__ is not None
            and not exc.__suppress_context__
            and id(exc.__context__) not in seen
        ):
            described["context"] = _describe(exc.__context__, depth + 1, seen)
    return described


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log call
        return f"<unprintable {type(value).__qualname__}>"
