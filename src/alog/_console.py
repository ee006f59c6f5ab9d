"""The console look: one decoded event as one readable, optionally coloured, line.

Shared by :class:`alog.Console` (in its writer thread, never on the caller's path: reading
source lines for a traceback is file I/O) and by ``alog pretty``. The line is: short local
time, the level padded and coloured, the logger, the message, then ``key=value`` for every
other field in the event's order. A traceback, if the event carries an ``exception``,
follows on its own lines, with the source lines read here through :mod:`linecache`.

Whether to colour is decided once, by :func:`want_colors`: ``NO_COLOR`` (set and not empty)
turns colour off, then ``FORCE_COLOR`` (set, not empty, not ``0`` or ``false``) turns it on, else
only a terminal gets it. ANSI codes never reach a pipe or a file by accident.
"""

from __future__ import annotations

import datetime
import linecache
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Final, final

import msgspec

RESET: Final = "\x1b[0m"
BOLD: Final = "\x1b[1m"
DIM: Final = "\x1b[2m"
RED: Final = "\x1b[31m"
GREEN: Final = "\x1b[32m"
YELLOW: Final = "\x1b[33m"
BLUE: Final = "\x1b[34m"
MAGENTA: Final = "\x1b[35m"
CYAN: Final = "\x1b[36m"
ALERT: Final = "\x1b[1;97;41m"  # bold white on red: alog's own reports of losses

LEVEL_STYLES: Final = {
    "trace": DIM,
    "debug": BLUE,
    "info": GREEN,
    "warning": YELLOW,
    "error": RED,
    "critical": "\x1b[1;31m",
}
LEVEL_WIDTH: Final = 8  # "critical"
MAX_VALUE: Final = 200
"""A field's text is cut past this many characters, with a marker saying how much was cut."""

_CORE: Final = ("time", "level", "logger", "msg")
_REPORTS: Final = frozenset(
    {"alog.dropped", "alog.suppressed", "alog.destination_failed", "alog.sigterm"}
)
_PLAIN_TEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+"
)  # text made only of these is shown bare: paths, ids, hosts, words
_json: Final = msgspec.json.Encoder()

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_NOT_NEWLINE: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def safe(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with control characters shown escaped (``\\x1b``), never sent to the terminal.

    A message is data: a user-supplied ``\\x1b[2J`` must not clear the reader's screen, nor a
    carriage return overwrite the line. Tracebacks and notes keep their newlines.
    """
    pattern = _CONTROL_NOT_NEWLINE if keep_lines else _CONTROL
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda match: repr(match[0])[1:-1], text)


def want_colors(fd: int, colors: bool | None = None) -> bool:
    """Colour for ``fd``? ``colors`` if given, else NO_COLOR, FORCE_COLOR, then ``isatty``."""
    if colors is not None:
        return colors
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force and force.lower() not in ("0", "false"):
        return True
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _cut(text: str, limit: int = MAX_VALUE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def value_text(value: object) -> str:
    """A field value as people read it: bare words bare, other text quoted, JSON for data."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE:  # cut, then quoted: the marker stays outside the quotes
            return f"{value[:MAX_VALUE]!r}…(+{len(value) - MAX_VALUE} chars)"
        if value and _PLAIN_TEXT.issuperset(value):
            return value
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    try:
        return _cut(_json.encode(value).decode())
    except (TypeError, ValueError):
        return _cut(repr(value))


def local_time(stamp: object) -> str:
    """``HH:MM:SS.mmm`` in local time, from an RFC 3339 text (or the text, if not one)."""
    if isinstance(stamp, str):
        # alog's own stamps: "2026-12-02T09:15:02.123456Z". The local HH:MM:SS of each
        # second is converted once; the milliseconds are the text's own digits.
        if len(stamp) >= 24 and stamp[-1] == "Z" and stamp[19] == ".":
            head = _seconds_cache.get(stamp[:19])
            if head is None:
                head = _local_seconds(stamp[:19])
            if head is not None:
                return f"{head}.{stamp[20:23]}"
        try:
            when = datetime.datetime.fromisoformat(stamp)
            when = when.astimezone() if when.tzinfo is not None else when
        except (ValueError, OverflowError):  # not a time, or one no local clock can show
            return stamp
    elif isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        # Epoch seconds or milliseconds (pino): a number this large is milliseconds.
        try:
            seconds = stamp / 1000 if stamp > 1e11 else float(stamp)
            when = datetime.datetime.fromtimestamp(seconds).astimezone()
        except (ValueError, OverflowError, OSError):  # NaN, inf, out of the calendar
            return str(stamp)
    else:
        return "" if stamp is None else str(stamp)
    return when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


_seconds_cache: dict[str, str] = {}


def _local_seconds(head: str) -> str | None:
    try:
        when = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
        text = when.astimezone().strftime("%H:%M:%S")
    except (ValueError, OverflowError):
        return None
    if len(_seconds_cache) > 4096:  # one entry per second of log: a day's file stays small
        _seconds_cache.clear()
    _seconds_cache[head] = text
    return text


@final
class Renderer:
    """Renders decoded events as text; ``colors=False`` writes no escape code at all."""

    def __init__(self, *, colors: bool, tracebacks: bool = True) -> None:
        self.colors = colors
        self.tracebacks = tracebacks
        self._keys: dict[str, str] = {}  # a field's "key=" as drawn, once per key
        self._levels: dict[str, str] = {}
        self._loggers: dict[str, str] = {}

    def _paint(self, style: str, text: str) -> str:
        return f"{style}{text}{RESET}" if self.colors and style else text

    def _key(self, key: str) -> str:
        drawn = self._keys.get(key)
        if drawn is None:
            drawn = f"{self._paint(RED if key == 'alog.error' else CYAN, safe(key))}="
            if len(self._keys) < 4096:
                self._keys[key] = drawn
        return drawn

    def render(self, event: Mapping[str, Any]) -> str:
        """One event as one line (plus its traceback's lines), ending with a newline."""
        colors = self.colors
        level = event.get("level", "")
        drawn_level = self._levels.get(level) if type(level) is str else None
        if drawn_level is None:
            name = str(level)
            drawn_level = self._paint(
                LEVEL_STYLES.get(name, MAGENTA), safe(name.upper()).ljust(LEVEL_WIDTH)
            )
            if type(level) is str and len(self._levels) < 64:
                self._levels[level] = drawn_level
        time_text = local_time(event.get("time"))
        parts = [f"{DIM}{time_text}{RESET}" if colors else time_text] if time_text else []
        parts.append(drawn_level)
        logger = event.get("logger")
        if logger:
            drawn = self._loggers.get(logger) if type(logger) is str else None
            if drawn is None:
                drawn = self._paint(BLUE, safe(str(logger)))
                if type(logger) is str and len(self._loggers) < 4096:
                    self._loggers[logger] = drawn
            parts.append(drawn)
        msg = event.get("msg", "")
        if type(msg) is not str:
            msg = value_text(msg)
        elif _CONTROL.search(msg):
            msg = safe(msg)
        if msg in _REPORTS:
            parts.append(self._paint(ALERT, f" {msg} "))
        elif msg:
            parts.append(f"{BOLD}{msg}{RESET}" if colors else msg)
        exception: Mapping[str, Any] | str | None = None
        key_of = self._keys.get
        for key, value in event.items():
            if key in _CORE:
                continue
            if key == "exception" and self.tracebacks and isinstance(value, (dict, str)):
                exception = value  # a str: another logger's formatted traceback
                continue
            drawn_key = key_of(key) or self._key(key)
            kind = type(value)
            if kind is int:
                parts.append(f"{drawn_key}{value}")
            elif kind is str and len(value) <= MAX_VALUE and _PLAIN_TEXT.issuperset(value):
                parts.append(f"{drawn_key}{value}" if value else f"{drawn_key}''")
            else:
                parts.append(f"{drawn_key}{value_text(value)}")
        line = " ".join(parts)
        if exception is None:
            return f"{line}\n"
        if isinstance(exception, str):
            return f"{line}\n{safe(exception.rstrip(), keep_lines=True)}\n"
        return f"{line}\n{self.traceback(exception)}"

    def traceback(self, described: Mapping[str, Any]) -> str:
        """The ``exception`` field as Python prints a traceback, source lines included."""
        blocks: list[str] = []
        self._chain(described, blocks, depth=0)
        return "".join(blocks)

    def _chain(self, described: Mapping[str, Any], blocks: list[str], depth: int) -> None:
        if depth > 8:
            return
        cause = described.get("cause")
        context = described.get("context")
        if isinstance(cause, dict):
            self._chain(cause, blocks, depth + 1)
            blocks.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        elif isinstance(context, dict):
            self._chain(context, blocks, depth + 1)
            blocks.append(
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        blocks.append(self._one(described, depth))

    def _one(self, described: Mapping[str, Any], depth: int) -> str:
        paint = self._paint
        lines = []
        frames = described.get("frames")
        if isinstance(frames, list) and frames:
            lines.append(paint(DIM, "Traceback (most recent call last):"))
            for frame in frames:
                if not isinstance(frame, dict):
                    continue
                file, number, function = frame.get("file"), frame.get("line"), frame.get("function")
                lines.append(
                    f'  File "{paint(MAGENTA, safe(str(file)))}", '
                    f"line {paint(MAGENTA, safe(str(number)))}, "
                    f"in {paint(MAGENTA, safe(str(function)))}"
                )
                if isinstance(file, str) and isinstance(number, int):
                    source = linecache.getline(file, number).strip()
                    if source:
                        lines.append(f"    {safe(source)}")
        kind = safe(str(described.get("type", "Exception")))
        message = described.get("message")
        message = safe(str(message), keep_lines=True) if message else None
        head = paint(BOLD + RED, kind)
        lines.append(f"{head}: {message}" if message else head)
        notes = described.get("notes")
        if isinstance(notes, list):
            lines.extend(safe(str(note), keep_lines=True) for note in notes)
        inner = described.get("exceptions")
        text = "\n".join(lines) + "\n"
        if isinstance(inner, list):
            for index, sub in enumerate(inner, 1):
                if isinstance(sub, dict):
                    nested = Renderer(colors=self.colors).traceback(sub)
                    text += f"  +---- {index} ----\n"
                    text += "".join(f"  | {line}\n" for line in nested.splitlines())
        return text
