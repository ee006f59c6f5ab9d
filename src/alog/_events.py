"""The one place an event is built: core keys, process-wide, bound, context and call fields.

Every path builds with the code in :func:`make_emitter`: log calls into a pipeline (from the
loop and from other threads), the stdlib fallback, the stdlib bridge and the test capture.
Precedence, lowest first: the pipeline's ``fields=``, the logger's bound fields, the
context's, the call's own.
A key that would overwrite a core key (``time``, ``level``, ``logger``, ``msg``) is renamed
(``_msg``), so every line keeps its four core keys.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias, TypeVar, cast

from ._context import context_fields
from ._fields import CORE_KEYS, exception_fields, protect_core_keys, rfc3339

_UTC: Final = datetime.UTC
_now: Final = datetime.datetime.now
_get_context: Final = context_fields.get

if TYPE_CHECKING:
    from ._logger import Logger

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


Deliver: TypeAlias = Callable[[dict[str, object], int], T]
"""Where a built event goes: ``(event, levelno)``; what it returns, the emitter returns."""


class Emitter(Protocol[T_co]):
    """A log call's arguments in, the built event handed to its consumer."""

    def __call__(
        self,
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: object,
        fields: Mapping[str, object],
        exc_info: object,
        stamp: object = None,
        /,
    ) -> T_co: ...


def make_emitter(
    deliver: Deliver[T],
    *,
    base: Mapping[str, object] | None = None,
    on_error: Callable[[], None] | None = None,
) -> Emitter[T | None]:
    """The event builder for one consumer: it builds each event and calls ``deliver``.

    Made once per consumer (the pipeline's queue, the test capture, the fallback), so that
    the hot path is a single frame from a log method to the queue. ``base`` is the
    pipeline's ``fields=``. An ``Exception`` while building goes to ``on_error`` (the log call
    never raises) or, without one, to the caller.
    """
    _base = dict(base) if base else None

    def emit(
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: object,
        fields: Mapping[str, object],
        exc_info: object,
        stamp: object = None,
        /,
    ) -> T | None:
        try:
            if stamp is None:
                now = _now(_UTC)
                stamp = now if now.microsecond else rfc3339(now)  # msgspec omits a zero
            if type(msg) is not str:
                msg = _text(msg)
            bound = logger._bound
            context = _get_context()
            event: dict[str, object]
            if _base or bound or context:
                event = {"time": stamp, "level": levelname, "logger": logger._name, "msg": msg}
                if _base:
                    event.update(_base)
                if bound:
                    event.update(bound)
                if context:
                    event.update(context)
                size = len(event)
                event.update(fields)
                collided = len(event) != size + len(fields)
            else:  # the common case: one dict display
                event = {
                    "time": stamp,
                    "level": levelname,
                    "logger": logger._name,
                    "msg": msg,
                    **fields,
                }
                collided = len(event) != 4 + len(fields)
            if collided and not CORE_KEYS.isdisjoint(fields):
                event = {"time": stamp, "level": levelname, "logger": logger._name, "msg": msg}
                if _base:
                    event.update(_base)
                event.update(bound)
                if context:
                    event.update(context)
                event.update(protect_core_keys(fields, taken=event))
            if exc_info is not None:
                described = exception_fields(exc_info)
                if described is not None:
                    event["exception"] = described
            return deliver(event, levelno)
        except Exception:
            if on_error is None:
                raise
            on_error()
            return None

    return emit


def _as_built(event: dict[str, object], levelno: int, /) -> dict[str, object]:
    return event


# Without on_error an emitter returns what deliver returns, or raises.
_build: Final = cast("Emitter[dict[str, object]]", make_emitter(_as_built))


def build_event(
    logger: Logger,
    levelname: str,
    msg: object,
    fields: Mapping[str, object],
    exc_info: object,
    stamp: object = None,
) -> dict[str, object]:
    """The event dict for one log call, outside a pipeline; values captured as they are now."""
    return _build(logger, 0, levelname, msg, fields, exc_info, stamp)


def repair_core_keys(
    event: dict[str, object], original: tuple[object, object, object, object]
) -> dict[str, object]:
    """After processors: the core keys present, first, and of the right type.

    ``original`` is (time, level, logger, msg) as built. The common case, core keys left
    alone, costs a look at the first four keys and four identity checks.
    """
    time, level, logger, msg = original
    if (
        tuple(islice(event, 4)) == _CORE_ORDER
        and event["time"] is time
        and event["level"] is level
        and event["logger"] is logger
        and event["msg"] is msg
    ):
        return event
    head: dict[str, object] = {}
    for key, before in zip(_CORE_ORDER, original, strict=True):
        value = event.get(key)
        if key == "time":
            if not isinstance(value, datetime.datetime | str):
                value = before
        elif type(value) is not str:
            value = before if value is None else _text(value)
        head[key] = value
    if tuple(islice(event, 4)) == _CORE_ORDER and all(event[k] is head[k] for k in head):
        return event
    head.update((key, value) for key, value in event.items() if key not in head)
    return head


_CORE_ORDER: Final = ("time", "level", "logger", "msg")


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log call
        return f"<unprintable {type(value).__qualname__}>"
