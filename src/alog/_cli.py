"""``python -m alog`` / ``alog``: read JSON log lines as people do.

``alog pretty [FILE...]`` prints each line as :class:`alog.Console` shows it, whichever JSON
logger wrote it (alog, structlog, pino, python-json-logger / uvicorn's JSON config: their
key names are mapped to alog's), filtered by ``--level``, ``--logger``, ``--where`` and
``--since``. A line that is not a JSON object is printed as it came; nothing in the input
stops it. ``-f`` follows growing files (and finds them again after a rotation).

``alog stats FILE...`` counts events by level and by logger, adds up the ``alog.dropped``
reports and gives the time span.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Final

import msgspec

from ._console import Renderer, want_colors

_CHUNK: Final = 1 << 20
_FOLLOW_POLL: Final = 0.2

TIME_KEYS: Final = ("time", "timestamp", "@timestamp", "asctime", "ts")
LEVEL_KEYS: Final = ("level", "levelname", "severity", "lvl", "log.level")
LOGGER_KEYS: Final = ("logger", "name", "logger_name", "log.logger")
MSG_KEYS: Final = ("msg", "message", "event")
"""Where each JSON logger puts the core facts, in the order they are looked for.

alog: ``time``/``level``/``logger``/``msg``; structlog: ``timestamp``/``level``/``logger``/
``event``; pino: ``time`` (epoch ms)/``level`` (a number)/``name``/``msg``; python-json-logger
(and uvicorn configured with it): ``asctime``/``levelname``/``name``/``message``."""

PINO_LEVELS: Final = {
    10: "trace",
    20: "debug",
    30: "info",
    40: "warning",
    50: "error",
    60: "critical",
}
LEVEL_ALIASES: Final = {
    "warn": "warning",
    "fatal": "critical",
    "crit": "critical",
    "err": "error",
    "panic": "critical",
    "dpanic": "critical",
    "notset": "debug",
}
LEVEL_NUMBERS: Final = {
    "trace": 5,
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "critical": 50,
}
_DROP: Final = frozenset({"v"})  # pino's format version: noise to a reader


def _level_name(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return PINO_LEVELS.get(value) or (
            "critical" if value >= 60 else "error" if value >= 50 else str(value)
        )
    text = str(value).lower()
    return LEVEL_ALIASES.get(text, text)


def normalize(event: dict[str, Any]) -> dict[str, Any]:
    """Any of the JSON loggers' events as an alog event: the core keys first, then the rest."""
    rest = dict(event)
    head: dict[str, Any] = {}
    for target, keys in (
        ("time", TIME_KEYS),
        ("level", LEVEL_KEYS),
        ("logger", LOGGER_KEYS),
        ("msg", MSG_KEYS),
    ):
        for key in keys:
            if key in rest:
                value = rest.pop(key)
                head[target] = value
                break
    if "level" in head:
        head["level"] = _level_name(head["level"])
    err = rest.get("err")
    if "exception" not in rest and isinstance(err, dict) and isinstance(err.get("stack"), str):
        rest.pop("err")
        rest["exception"] = err["stack"]  # pino's error: its stack is the traceback
    exc_info = rest.get("exc_info")
    if "exception" not in rest and isinstance(exc_info, str):
        rest["exception"] = rest.pop("exc_info")  # python-json-logger
    for key in _DROP.intersection(rest):
        del rest[key]
    head.update(rest)
    return head


def parse_time(value: object) -> datetime.datetime | None:
    """An event's time as an aware datetime (RFC 3339 text, epoch seconds or milliseconds)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else float(value)
            return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        if isinstance(value, str):
            when = datetime.datetime.fromisoformat(value.replace(",", ".", 1))
            return when if when.tzinfo is not None else when.astimezone()
    except (ValueError, OverflowError, OSError):  # not a time, or out of the calendar
        return None
    return None


_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) or a time."""
    match = _DURATION.fullmatch(text.strip())
    if match:
        now = now or datetime.datetime.now(datetime.UTC)
        return now - datetime.timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    when = parse_time(text)
    if when is None:
        raise argparse.ArgumentTypeError(
            f"--since takes a duration (30s, 10m, 2h, 1d) or an ISO 8601 time, not {text!r}"
        )
    return when


def _field(event: dict[str, Any], path: str) -> object:
    if path in event:
        return event[path]
    value: object = event
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


_MISSING: Final = object()


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


Filter = Callable[[dict[str, Any]], bool]


def _field_is(key: str, wanted: str) -> Filter:
    def check(event: dict[str, Any]) -> bool:
        value = _field(event, key)
        return value is not _MISSING and _as_text(value) == wanted

    return check


def build_filter(
    *,
    level: str | None,
    logger: str | None,
    where: Sequence[str],
    since: datetime.datetime | None,
) -> Filter | None:
    """One predicate for every option given; None when nothing filters."""
    checks: list[Filter] = []
    if level is not None:
        threshold = LEVEL_NUMBERS.get(_level_name(level))
        if threshold is None:
            raise SystemExit(f"alog pretty: unknown level {level!r}")
        checks.append(lambda e: LEVEL_NUMBERS.get(str(e.get("level")), 20) >= threshold)
    if logger is not None:
        prefix = f"{logger}."
        checks.append(
            lambda e: (name := str(e.get("logger", ""))) == logger or name.startswith(prefix)
        )
    for condition in where:
        key, sep, wanted = condition.partition("=")
        if not sep or not key:
            raise SystemExit(f"alog pretty: --where takes key=value, not {condition!r}")
        checks.append(_field_is(key, wanted))
    if since is not None:
        checks.append(lambda e: (when := parse_time(e.get("time"))) is not None and when >= since)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda e: all(check(e) for check in checks)


def _lines(stream: IO[bytes], *, follow: bool, path: str | None) -> Iterator[bytes]:
    """Every line of ``stream`` (the last may lack its newline); then, with ``follow``, more."""
    rest = b""
    while True:
        chunk = stream.read(_CHUNK)
        if chunk:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
            continue
        if not follow:
            break
        if path is not None:
            reopened = _reopened(stream, path)
            if reopened is not None:
                if rest:
                    yield rest
                    rest = b""
                stream.close()
                stream = reopened
                continue
        time.sleep(_FOLLOW_POLL)
    if rest:
        yield rest


def _reopened(stream: IO[bytes], path: str) -> IO[bytes] | None:
    """The file at ``path`` if it is no longer the one read (rotated) or was truncated."""
    try:
        now = os.stat(path)
        mine = os.fstat(stream.fileno())
    except OSError:
        return None
    if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
        try:
            return open(path, "rb")
        except OSError:
            return None
    if now.st_size < stream.tell():  # truncated in place (copytruncate)
        stream.seek(0)
    return None


def _inputs(paths: Sequence[str]) -> Iterator[tuple[IO[bytes], str | None]]:
    for path in paths or ["-"]:
        if path == "-":
            yield sys.stdin.buffer, None
        else:
            try:
                yield open(path, "rb"), path  # noqa: SIM115 - closed by the reader
            except OSError as error:
                print(f"alog: {path}: {error.strerror}", file=sys.stderr)


def pretty(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    colors = want_colors(
        out.fileno() if hasattr(out, "fileno") else -1, False if args.no_color else None
    )
    renderer = Renderer(colors=colors)
    keep = build_filter(level=args.level, logger=args.logger, where=args.where, since=args.since)
    decode = msgspec.json.Decoder().decode
    render = renderer.render
    pending: list[bytes] = []
    size = 0
    inputs = list(_inputs(args.files))
    if args.follow and len(inputs) > 1:
        print("alog pretty: -f follows one file", file=sys.stderr)
        return 2
    for stream, path in inputs:
        try:
            # A pipe ends for good: only a file is followed past its end.
            for line in _lines(stream, follow=args.follow and path is not None, path=path):
                text = _pretty_line(line, decode, render, keep)
                if text is None:
                    continue
                pending.append(text)
                size += len(text)
                if size >= _CHUNK or args.follow:
                    out.write(b"".join(pending))
                    pending.clear()
                    size = 0
                    if args.follow:
                        out.flush()
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    out.write(b"".join(pending))
    out.flush()
    return 0


def _pretty_line(
    line: bytes,
    decode: Callable[[bytes], Any],
    render: Callable[[dict[str, Any]], str],
    keep: Filter | None,
) -> bytes | None:
    stripped = line.rstrip(b"\r")
    if not stripped.lstrip().startswith(b"{"):
        return line + b"\n"  # not JSON: as it came
    try:
        event = decode(stripped)
    except msgspec.DecodeError:
        return line + b"\n"
    if not isinstance(event, dict):
        return line + b"\n"
    try:
        if "msg" not in event or "time" not in event or "level" not in event:
            event = normalize(event)
        elif isinstance(event["level"], int):
            event = normalize(event)  # pino
        if keep is not None and not keep(event):
            return None
        return render(event).encode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - never die on a line: show it as it came
        return line + b"\n"


def stats(args: argparse.Namespace) -> int:
    decode = msgspec.json.Decoder().decode
    levels: Counter[str] = Counter()
    loggers: Counter[str] = Counter()
    dropped = reports = events = other = 0
    first: datetime.datetime | None = None
    last: datetime.datetime | None = None
    for stream, _path in _inputs(args.files):
        with stream:
            for line in _lines(stream, follow=False, path=None):
                try:
                    event = decode(line)
                except msgspec.DecodeError:
                    event = None
                if not isinstance(event, dict):
                    other += line.strip() != b""
                    continue
                event = normalize(event)
                events += 1
                levels[_as_text(event.get("level", "?"))] += 1
                loggers[_as_text(event.get("logger", "?"))] += 1
                if event.get("msg") == "alog.dropped":
                    reports += 1
                    count = event.get("dropped")
                    dropped += count if type(count) is int else 0
                when = parse_time(event.get("time"))
                if when is not None:
                    first = when if first is None or when < first else first
                    last = when if last is None or when > last else last
    write = sys.stdout.write
    write(f"events: {events}" + (f" (and {other} lines that are not JSON)" if other else "") + "\n")
    if first is not None and last is not None:
        write(f"from {first.isoformat()} to {last.isoformat()} ({last - first})\n")
    write(f"alog.dropped: {dropped} events lost, in {reports} reports\n")
    for title, counter in (("level", levels), ("logger", loggers)):
        write(f"by {title}:\n")
        order = (
            sorted(counter, key=lambda n: -LEVEL_NUMBERS.get(n, 0))
            if title == "level"
            else [name for name, _ in counter.most_common()]
        )
        width = max(map(len, order), default=0)
        for name in order:
            write(f"  {name.ljust(width)}  {counter[name]:>10}\n")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="alog", description="Read JSON log lines.")
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "pretty",
        help="print JSON log lines (alog, structlog, pino, python-json-logger) for people",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="files to read (default: stdin, or -)")
    p.add_argument("--level", help="only events at this level and above")
    p.add_argument("--logger", help="only this logger and its dotted children")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only events whose field (dotted for nested) has this value; repeatable",
    )
    p.add_argument("--since", type=parse_since, help="only events since 10m, 2h... or a time")
    p.add_argument("--no-color", action="store_true", help="no colour, even on a terminal")
    p.add_argument("-f", "--follow", action="store_true", help="keep reading a growing file")
    p.set_defaults(run=pretty)
    s = commands.add_parser("stats", help="counts by level and logger, losses, time span")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.set_defaults(run=stats)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """The ``alog`` command."""
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `alog pretty app.log | head`: the reader has seen enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code
