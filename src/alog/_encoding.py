"""Encoding an event to one JSON line, and the fallbacks that keep bad values from losing it.

The fast path is one ``msgspec`` call into the queue's buffer. Only when that fails (a lone
surrogate, a cycle, nesting past msgspec's limit, an oversized event) does :func:`sanitize`
walk the value, replacing what cannot be written with visible markers.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from ._fields import rfc3339

MAX_DEPTH: Final = 64
"""Nesting deeper than this (in the fallback path) is replaced by a marker."""


def _repr_fallback(value: object) -> str:
    """msgspec's hook for types it cannot encode: their ``repr``, or a marker if that fails."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the event
        return f"<unrepresentable {type(value).__qualname__}>"


def new_encoder(enc_hook: Callable[[object], object] | None = None) -> msgspec.json.Encoder:
    """One encoder per queue, reused for every event (msgspec's fastest path)."""
    return msgspec.json.Encoder(enc_hook=enc_hook or _repr_fallback)


repr_fallback: Final = _repr_fallback


_SCALARS: Final = (
    bool,
    int,
    float,
    type(None),
    bytes,
    bytearray,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
    enum.Enum,
)


def clean_str(text: str, limit: int | None = None) -> str:
    """Make ``text`` encodable as UTF-8 and at most ``limit`` characters, with markers."""
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}...[truncated {len(text) - limit} chars]"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (often undecodable bytes smuggled in by surrogateescape) are written
        # as visible escapes rather than dropped or replaced.
        try:
            raw = text.encode("utf-8", "surrogateescape")
            text = raw.decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def sanitize(
    value: object,
    *,
    str_limit: int | None = None,
    item_limit: int | None = None,
    depth: int = 0,
    path: frozenset[int] = frozenset(),
) -> object:
    """A copy of ``value`` that msgspec can always encode, with markers where it was cut."""
    if isinstance(value, str):
        return clean_str(value, str_limit)
    if isinstance(value, _SCALARS):
        return value
    if id(value) in path:
        return "<circular>"
    if depth >= MAX_DEPTH:
        return "<max depth>"
    inner = path | {id(value)}
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for index, (key, item) in enumerate(value.items()):
            if item_limit is not None and index >= item_limit:
                out["..."] = f"[truncated {len(value) - item_limit} keys]"
                break
            name = key if isinstance(key, str) else _key_text(key)
            out[clean_str(name, str_limit)] = sanitize(
                item, str_limit=str_limit, item_limit=item_limit, depth=depth + 1, path=inner
            )
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = items if item_limit is None else items[:item_limit]
        cleaned = [
            sanitize(item, str_limit=str_limit, item_limit=item_limit, depth=depth + 1, path=inner)
            for item in kept
        ]
        if len(kept) < len(items):
            cleaned.append(f"[truncated {len(items) - len(kept)} items]")
        return cleaned
    return clean_str(_repr_fallback(value), str_limit)


def _key_text(key: object) -> str:
    if isinstance(key, int | float):
        return str(key)
    return _repr_fallback(key)


def encode_fallback(
    encoder: msgspec.json.Encoder, event: dict[str, object], max_bytes: int
) -> bytes:
    """Encode an event the fast path could not, shrinking it until it fits ``max_bytes``.

    Strings and containers are cut harder on each round; if even that fails, the core keys
    and a note of what happened are written, so the event is never lost without a trace.
    """
    str_limit: int | None = None
    item_limit: int | None = None
    for _ in range(6):
        try:
            data = encoder.encode(sanitize(event, str_limit=str_limit, item_limit=item_limit))
        except Exception:  # noqa: BLE001 - try the next, harsher round
            data = b""
        if data and len(data) <= max_bytes:
            return data
        size = len(data) or max_bytes * 2
        str_limit = max(16, (str_limit or max_bytes) * max_bytes // size // 2)
        item_limit = max(4, (item_limit or 1024) // 4)
    stamp = event.get("time")
    summary = {key: clean_str(str(event.get(key, "")), 256) for key in ("level", "logger", "msg")}
    summary = {
        "time": rfc3339(stamp) if isinstance(stamp, datetime.datetime) else str(stamp),
        **summary,
    }
    summary["alog.error"] = "event could not be encoded within max_event_bytes; fields dropped"
    return encoder.encode(summary)
