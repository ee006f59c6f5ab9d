"""The one place an event is built: core keys, process-wide, bound, context and call fields.

Every path uses :func:`build_event`: log calls into a pipeline (from the loop and from other
threads), the stdlib fallback, the stdlib bridge and the test capture. Precedence, lowest
first: the pipeline's ``fields=``, the logger's bound fields, the context's, the call's own.
A key that would overwrite a core key (``time``, ``level``, ``logger``, ``msg``) is renamed
(``_msg``), so every line keeps its four core keys.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Final

from ._context import context_fields
from ._fields import CORE_KEYS, exception_fields, protect_core_keys, rfc3339

_UTC: Final = datetime.UTC
_now: Final = datetime.datetime.now
_get_context: Final = context_fields.get


def build_event(
    name: str,
    bound: Mapping[str, object],
    levelname: str,
    msg: object,
    fields: Mapping[str, object],
    exc_info: object,
    base: Mapping[str, object] | None,
    stamp: object = None,
) -> dict[str, object]:
    """The event dict for one log call; values are captured as they are now."""
    if stamp is None:
        now = _now(_UTC)
        stamp = now if now.microsecond else rfc3339(now)  # msgspec omits a zero microsecond
    if type(msg) is not str:
        msg = _text(msg)
    context = _get_context()
    event: dict[str, object]
    if base or bound or context:
        event = {"time": stamp, "level": levelname, "logger": name, "msg": msg}
        if base:
            event.update(base)
        if bound:
            event.update(bound)
        if context:
            event.update(context)
        size = len(event)
        event.update(fields)
        collided = len(event) != size + len(fields)
    else:  # the common case: one dict display
        event = {"time": stamp, "level": levelname, "logger": name, "msg": msg, **fields}
        collided = len(event) != 4 + len(fields)
    if collided and not CORE_KEYS.isdisjoint(fields):
        event = {"time": stamp, "level": levelname, "logger": name, "msg": msg}
        if base:
            event.update(base)
        event.update(bound)
        if context:
            event.update(context)
        event.update(protect_core_keys(fields, taken=event))
    if exc_info is not None:
        described = exception_fields(exc_info)
        if described is not None:
            event["exception"] = described
    return event


def repair_core_keys(event: dict[str, object], original: Mapping[str, object]) -> dict[str, object]:
    """After processors: the core keys present, first, and of the right type."""
    head: dict[str, object] = {}
    for key in ("time", "level", "logger", "msg"):
        value = event.get(key)
        if key == "time":
            if not isinstance(value, datetime.datetime | str):
                value = original["time"]
        elif type(value) is not str:
            value = original[key] if value is None else _text(value)
        head[key] = value
    if list(event)[:4] == list(head) and all(event[k] is head[k] for k in head):
        return event
    head.update((key, value) for key, value in event.items() if key not in head)
    return head


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log call
        return f"<unprintable {type(value).__qualname__}>"
