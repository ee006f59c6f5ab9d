"""Encoding an event to one JSON line, and the fallbacks that keep bad values from losing it.

The fast path is one ``msgspec`` call into the queue's buffer. Only when that fails (a lone
surrogate, a cycle, nesting past msgspec's limit, an oversized event) does :func:`sanitize`
walk the value, replacing what cannot be written with visible markers.

A value msgspec refuses (an int past Python's digit limit for ``str``, a datetime whose
``tzinfo`` raises, an Enum with such a value) is replaced on its own, with a marker saying
why, before anything is cut for size: one bad value never costs the other fields.
"""

from __future__ import annotations

import base64
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


_CORE: Final = ("time", "level", "logger", "msg")
"""The keys every event has; the fallback keeps them whatever else it cuts."""

_UNCUT: Final = frozenset({"time", "level", "logger"})
"""Core keys whose text is never cut for size (``msg`` may be, with a marker)."""

_REASON_LIMIT: Final = 200
"""How much of an exception's text a marker quotes."""

_EXACT_DIGITS_BITS: Final = 1 << 17
"""Up to this many bits (~39,000 digits) an int's digit count is exact; beyond, estimated."""

_LOG10_2: Final = 0.30102999566398120

_SHORT_JSON: Final = 40
"""A scalar written in this many bytes is never cut: its marker would be as long."""


def _type_name(value: object) -> str:
    """``type(value).__qualname__``, or ``"object"`` if a metaclass makes even that fail."""
    try:
        name = type(value).__qualname__
    except Exception:  # noqa: BLE001 - a metaclass's own __qualname__ may raise
        return "object"
    return clean_str(name, 100) if isinstance(name, str) else "object"


def _repr_fallback(value: object) -> str:
    """msgspec's hook for types it cannot encode: their ``repr``, or a marker if that fails."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the event
        return f"<unrepresentable {_type_name(value)}>"


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

_TRUSTED: Final = frozenset({bool, float, type(None), datetime.date, datetime.timedelta})
"""Exact types msgspec always encodes, in a bounded size: no user code, nothing to check."""

_CHECKED: Final = (str, *_SCALARS)
"""What msgspec encodes natively but may refuse (user code, digit limits) or write at length;
exact ``str`` and the trusted types above are let through before this check."""

_CHECKER: Final = msgspec.json.Encoder(enc_hook=_repr_fallback)
"""The encoder :func:`sanitize` checks scalars with when it is not given the caller's."""


def clean_str(text: str, limit: int | None = None) -> str:
    """Make ``text`` encodable as UTF-8 and at most ``limit`` characters, with markers."""
    if type(text) is not str:
        # A str subclass's own __len__, __getitem__ or encode must not run here.
        text = str.__str__(text)
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


def _reason(exc: BaseException, limit: int | None = None) -> str:
    """``"Type: message"`` of an exception, cut short; never raises (its ``__str__`` may)."""
    name = _type_name(exc)
    try:
        detail = clean_str(str(exc), min(limit or _REASON_LIMIT, _REASON_LIMIT))
    except Exception:  # noqa: BLE001 - an exception's own __str__ may raise
        return name
    return f"{name}: {detail}" if detail else name


def _unencodable(value: object, exc: BaseException, limit: int | None = None) -> str:
    """The marker for a value that raised; its reason is cut to ``limit`` (and 200) chars."""
    return f"<unencodable {_type_name(value)}: {_reason(exc, limit)}>"


def _int_marker(value: int) -> str:
    """``"<int with 5001 digits>"``: ``str()`` of such an int raises (Python's digit limit)."""
    magnitude = -value if value < 0 else value
    bits = magnitude.bit_length()
    # 2**(bits-1) <= magnitude < 2**bits, so the count is this estimate or one more.
    digits = int((bits - 1) * _LOG10_2) + 1
    about = ""
    if bits <= _EXACT_DIGITS_BITS:
        digits += magnitude >= 10**digits
    else:
        about = "about "  # 10**digits would take seconds to compute
    sign = "negative " if value < 0 else ""
    return f"<{sign}int with {about}{digits} digits>"


def _cut_bytes(value: bytes | bytearray, limit: int) -> bytes | bytearray | str:
    """Bytes are written as base64; cut that text like a string when it exceeds ``limit``."""
    total = (len(value) + 2) // 3 * 4
    if total <= limit:
        return value
    head = base64.b64encode(value[: (limit // 4 + 1) * 3]).decode("ascii")[:limit]
    return f"{head}...[truncated {total - limit} chars]"


def sanitize(
    value: object,
    *,
    str_limit: int | None = None,
    item_limit: int | None = None,
    depth: int = 0,
    path: frozenset[int] = frozenset(),
) -> object:
    """A copy of ``value`` that msgspec can always encode, with markers where it was cut."""
    return _clean(value, _CHECKER, str_limit, item_limit, depth, path)


def _clean(
    value: object,
    encoder: msgspec.json.Encoder,
    str_limit: int | None,
    item_limit: int | None,
    depth: int,
    path: frozenset[int],
) -> object:
    """:func:`sanitize` with the caller's encoder; what raises is replaced, not its siblings."""
    try:
        return _clean_unguarded(value, encoder, str_limit, item_limit, depth, path)
    except Exception as exc:  # noqa: BLE001 - user code (__len__, items(), ...) raised
        return _unencodable(value, exc, str_limit)


def _clean_unguarded(
    value: object,
    encoder: msgspec.json.Encoder,
    str_limit: int | None,
    item_limit: int | None,
    depth: int,
    path: frozenset[int],
) -> object:
    if type(value) is str:
        return clean_str(value, str_limit)
    if type(value) in _TRUSTED or (type(value) is int and value.bit_length() <= 128):
        return value  # 128 bits: at most 39 digits, never near Python's limit (640 at least)
    if type(value) is bytes or type(value) is bytearray:
        return value if str_limit is None else _cut_bytes(value, str_limit)
    if (type(value) is datetime.datetime or type(value) is datetime.time) and (
        value.tzinfo is None or type(value.tzinfo) is datetime.timezone
    ):
        return value
    if isinstance(value, _CHECKED):
        return _checked(value, encoder, str_limit, item_limit, depth, path)
    if id(value) in path:
        return "<circular>"
    if depth >= MAX_DEPTH:
        return "<max depth>"
    inner = path | {id(value)}
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for index, (key, item) in enumerate(value.items()):
            if item_limit is not None and index >= item_limit:
                out["..."] = f"[truncated {_count(value, item_limit)} keys]"
                break
            out[_key_text(key, str_limit)] = _clean(
                item, encoder, str_limit, item_limit, depth + 1, inner
            )
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = items if item_limit is None else items[:item_limit]
        cleaned = [_clean(item, encoder, str_limit, item_limit, depth + 1, inner) for item in kept]
        if len(kept) < len(items):
            cleaned.append(f"[truncated {len(items) - len(kept)} items]")
        return cleaned
    return clean_str(_repr_fallback(value), str_limit)


def _checked(
    value: object,
    encoder: msgspec.json.Encoder,
    str_limit: int | None,
    item_limit: int | None,
    depth: int,
    path: frozenset[int],
) -> object:
    """A scalar msgspec might refuse (or write at any length): encoded once, on its own.

    What encodes is kept as those bytes (user code such as a ``utcoffset`` or the hook's
    ``repr`` runs once); what does not becomes a marker saying why; what is too long for
    this round is decoded and cut like any other value.
    """
    try:
        encoded = encoder.encode(value)
    except Exception as exc:  # noqa: BLE001 - the bad value is replaced, not the event
        return _int_marker(value) if type(value) is int else _unencodable(value, exc, str_limit)
    if str_limit is None or len(encoded) <= max(str_limit + 2, _SHORT_JSON):
        return msgspec.Raw(encoded)
    if type(value) is int:
        return _int_marker(value)
    decoded: object = msgspec.json.decode(encoded)
    return _clean(decoded, encoder, str_limit, item_limit, depth, path)


def _count(value: Mapping[object, object], kept: int) -> str:
    """How many keys were left out, or ``"more"`` if the mapping's ``__len__`` fails."""
    try:
        return str(len(value) - kept)
    except Exception:  # noqa: BLE001 - a user Mapping's __len__ may raise
        return "more"


def _key_text(key: object, str_limit: int | None) -> str:
    """A key as JSON text: strings as they are, numbers as ``str``, anything else its repr."""
    try:
        if isinstance(key, str):
            name = key
        elif isinstance(key, int | float):
            name = str(key)
        else:
            name = _repr_fallback(key)
    except Exception as exc:  # noqa: BLE001 - str() of a huge int or a user __str__ raised
        name = _int_marker(key) if type(key) is int else _unencodable(key, exc, str_limit)
    return clean_str(name, str_limit)


def _clean_event(
    encoder: msgspec.json.Encoder,
    event: dict[str, object],
    str_limit: int | None,
    item_limit: int | None,
) -> dict[str, object]:
    """The event with every value cleaned; core keys are kept whatever ``item_limit`` says.

    ``item_limit`` counts the core keys, as it counts every key of a nested mapping: at 4,
    only the core keys and a note of how many fields were left out remain.
    """
    path = frozenset({id(event)})
    room = None
    if item_limit is not None:
        room = max(0, item_limit - sum(key in event for key in _CORE))
    out: dict[str, object] = {}
    left_out = 0
    for key, value in event.items():
        if type(key) is str and key in _CORE:
            limit = None if key in _UNCUT else str_limit
            out[key] = _clean(value, encoder, limit, item_limit, 1, path)
            continue
        if room is not None and room <= 0:
            left_out += 1
            continue
        if room is not None:
            room -= 1
        name = _key_text(key, str_limit)
        if name in _CORE:
            name = f"_{name}"  # as alog names a user's "msg" field, never over the core one
        out[name] = _clean(value, encoder, str_limit, item_limit, 1, path)
    if left_out:
        out["..."] = f"[truncated {left_out} keys]"
    return out


def _try_encode(
    encoder: msgspec.json.Encoder,
    event: dict[str, object],
    str_limit: int | None,
    item_limit: int | None,
) -> bytes | None:
    try:
        return encoder.encode(_clean_event(encoder, event, str_limit, item_limit))
    except Exception:  # noqa: BLE001 - try the next, harsher round
        return None


def encode_fallback(
    encoder: msgspec.json.Encoder, event: dict[str, object], max_bytes: int
) -> bytes:
    """Encode an event the fast path could not, shrinking it until it fits ``max_bytes``.

    Each value msgspec refuses is replaced by a marker first; then strings and containers
    are cut harder on each round, down to the core keys alone. If even that fails, the core
    keys (cut) and a note of what happened are written, so the event is never lost without
    a trace. An Exception raised by user code in a value never escapes; a BaseException
    such as KeyboardInterrupt does, for the caller to handle.
    """
    str_limit: int | None = None
    item_limit: int | None = None
    for _ in range(6):
        data = _try_encode(encoder, event, str_limit, item_limit)
        if data is not None and len(data) <= max_bytes:
            return data
        size = len(data) if data is not None else max_bytes * 2
        str_limit = max(16, (str_limit or max_bytes) * max_bytes // size // 2)
        item_limit = max(4, (item_limit or 1024) // 4)
    return _summary(encoder, event)


def _summary_text(value: object) -> str:
    try:
        if isinstance(value, datetime.datetime):
            return rfc3339(value)
        text = value if isinstance(value, str) else str(value)
    except Exception as exc:  # noqa: BLE001 - a user __str__ or utcoffset may raise
        text = _unencodable(value, exc)
    return clean_str(text, 256)


def _summary(encoder: msgspec.json.Encoder, event: dict[str, object]) -> bytes:
    """The last resort: the core keys as cut text and a note, for a pathological event."""
    summary = {key: _summary_text(event.get(key, "")) for key in _CORE}
    summary["alog.error"] = "event could not be encoded within max_event_bytes; fields dropped"
    try:
        return encoder.encode(summary)
    except Exception:  # noqa: BLE001 - only plain str values: nothing left that can fail
        return msgspec.json.encode(summary)
