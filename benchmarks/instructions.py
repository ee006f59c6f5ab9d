"""Instructions per event, counted by valgrind (callgrind): the CPU targets without the noise.

    .venv/bin/python benchmarks/instructions.py                   # the default contenders
    .venv/bin/python benchmarks/instructions.py --loggers floor,alog --json out.json
    .venv/bin/python benchmarks/instructions.py --quick           # small counts, two contenders
    .venv/bin/python benchmarks/instructions.py --parts           # alog's call, piece by piece

``benchmarks/run.py`` runs it after its other scenarios when ``valgrind`` is on PATH
(``--no-instructions`` skips it).

Each contender runs worker.py's throughput scenario twice under ``valgrind --tool=callgrind``,
with a small and a large number of events, in fresh processes; the difference of the two totals
divided by the difference of the counts is what one more event costs. Start-up, imports and
shutdown cancel out. With ``PYTHONHASHSEED=0`` the pieces of ``--parts`` repeat to the
instruction; a throughput count moves by 1-2 % (alog's writer wakes on timers, so how many
batches it makes depends on valgrind's pace), where CPU time on this VM moves by 15-30 %:
they can tell a 1.3x target from a 1.5x one.

``--parts`` counts alog's log call piece by piece, each piece added to the one before in a
process of its own (no event loop, no writer): the call itself, the floor's work, then alog's
level method, its event builder and its queue. Each difference is what that piece costs.

What they do not see: valgrind runs one thread at a time, so the cost of handing the GIL to a
writer thread, of waking it and of the cache misses a second core brings is not in them. They
count work, and CPU time is what the targets are about; the two are reported side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
DEFAULT = ("floor-inline", "floor", "alog", "picologging", "structlog")
QUICK = ("floor", "alog")
_COLLECTED = re.compile(rb"Collected : (\d+)")
_VALGRIND_LINE = re.compile(r"==\d+==")
PARTS = {
    "call": "a do-nothing function taking the call (msg and four keyword fields)",
    "dict": "+ the event dict (four core keys and **fields), a constant time",
    "now": "+ datetime.now(UTC) for the time",
    "encode": "+ encode_into a reused bytearray and a newline: the floor's call",
    "level-method": "alog's Logger.info handing the call to a do-nothing sink",
    "build": "+ alog's event builder (context, bound fields, key checks); it hands on nothing",
    "queue": "+ alog's EventQueue.put (read and freed every 1,000 events; no writer)",
}


def valgrind() -> str | None:
    """valgrind's path, or None when it is not installed."""
    return shutil.which("valgrind")


def _callgrind(args: list[str], what: str) -> int:
    """Instructions callgrind counted for one whole Python process running ``args``."""
    tool = valgrind()
    if tool is None:
        raise RuntimeError("valgrind is not on PATH")
    proc = subprocess.run(
        [tool, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, *args],
        capture_output=True, timeout=1800, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict and set layouts every run
    )  # fmt: skip
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        # The process's own last lines, not valgrind's summary (its lines start "==pid==").
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = [line for line in lines if not _VALGRIND_LINE.match(line)][-3:]
        raise RuntimeError(f"{what}: exit {proc.returncode}: {' | '.join(tail)}")
    return int(found.group(1))


def count(logger: str, events: int, folder: Path) -> int:
    """Instructions for one whole worker.py throughput process."""
    path = folder / f"{logger}-{events}.log"
    result = folder / f"{logger}-{events}.json"
    total = _callgrind(
        [str(WORKER), "throughput", "--logger", logger, "--events", str(events),
         "--path", str(path), "--result", str(result)],
        f"{logger} ({events:,} events)",
    )  # fmt: skip
    if not result.exists():
        raise RuntimeError(f"{logger} ({events:,} events): no result file")
    path.unlink(missing_ok=True)
    result.unlink()
    return total


def _part(part: str, events: int) -> None:
    """Run ``events`` log calls of one of PARTS, in this process (under valgrind)."""
    import datetime
    import threading

    import msgspec

    import alog
    from alog import _state
    from alog._events import make_emitter
    from alog._queue import EventQueue

    utc, now = datetime.UTC, datetime.datetime.now
    stamp = now(utc)
    buf = bytearray()
    encode_into = msgspec.json.Encoder().encode_into
    queue: EventQueue | None = None

    def call(msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        pass

    def with_dict(msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        _ = {"time": stamp, "level": "info", "logger": "bench", "msg": msg, **fields}

    def with_now(msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        _ = {"time": now(utc), "level": "info", "logger": "bench", "msg": msg, **fields}

    def with_encode(msg: str, /, *, exc_info: object = None, **fields: object) -> None:
        encode_into({"time": now(utc), "level": "info", "logger": "bench", "msg": msg, **fields},
                    buf, -1)  # fmt: skip
        buf.append(10)

    def sink(*args: object) -> None:
        pass

    info: Any
    if part in ("call", "dict", "now", "encode"):
        info = {"call": call, "dict": with_dict, "now": with_now, "encode": with_encode}[part]
    else:
        if part == "level-method":
            _state.emit = sink
        elif part == "build":
            _state.emit = make_emitter(lambda event, levelno: None)
        else:
            queue = EventQueue(
                max_events=100_000, max_bytes=64 << 20, max_event_bytes=1 << 20,
                overflow="drop_newest", readers=1, track_levels=False,
                loop_thread=threading.get_ident(), wake=lambda: None,
                wake_threadsafe=lambda: None,
            )  # fmt: skip
            _state.emit = make_emitter(queue.put)
        info = alog.get_logger("bench").info
    for i in range(events // 100):
        for _ in range(100):
            info("request handled", method="GET", path="/api/items", status=200, duration_ms=12.5)
        if len(buf) > 1 << 20:
            buf.clear()
        if queue is not None and i % 10 == 9:
            queue.done(0, queue.read(0)[1])


def _count_part(part: str, events: int) -> int:
    return _callgrind([__file__, "--part", part, "--small", str(events)], f"part {part}")


def measure_parts(small: int, large: int, jobs: int = 2) -> dict[str, Any]:
    """Instructions per event of each of PARTS, and of each piece over the one before."""
    runs = [(part, events) for part in PARTS for events in (small, large)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {run: pool.submit(_count_part, *run) for run in runs}
    per_event = {
        part: round(
            (futures[(part, large)].result() - futures[(part, small)].result()) / (large - small)
        )
        for part in PARTS
    }
    return {"events": [small, large], "parts": pieces(per_event)}


def pieces(per_event: dict[str, int]) -> dict[str, Any]:
    """What each piece adds to the row above it; alog's level method starts over from the
    bare call (it replaces the floor's body, it does not add to it)."""
    parts: dict[str, Any] = {}
    before = None
    for part, per in per_event.items():
        base = per_event["call"] if part == "level-method" else before
        parts[part] = {"per_event": per, "added": None if base is None else per - base}
        before = per
    return parts


def report_parts(data: dict[str, Any]) -> list[str]:
    """The pieces as Markdown lines."""
    small, large = data["events"]
    rows = [
        (f"{part}: {PARTS[part]}", f"{e['per_event']:,}",
         "-" if e["added"] is None else f"{e['added']:+,}")
        for part, e in data["parts"].items()
    ]  # fmt: skip
    return _table((f"piece ({large:,} - {small:,} calls)", "instructions per call", "added"), rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table: the first column text, the others numbers."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def measure(loggers: list[str], small: int, large: int, jobs: int = 2) -> dict[str, Any]:
    """Instructions per event for each logger; the runs go ``jobs`` at a time."""
    if large <= small:
        raise ValueError("--large must be more events than --small")
    with tempfile.TemporaryDirectory(prefix="alog-instructions-") as name:
        folder = Path(name)
        runs = [(logger, events) for logger in loggers for events in (small, large)]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {run: pool.submit(count, *run, folder) for run in runs}
        contenders: dict[str, Any] = {}
        for logger in loggers:
            try:
                low = futures[(logger, small)].result()
                high = futures[(logger, large)].result()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                contenders[logger] = {"error": str(error)}
                continue
            contenders[logger] = {
                "per_event": round((high - low) / (large - small)),
                "total_small": low,
                "total_large": high,
            }
    return {"events": [small, large], "contenders": contenders, "ratios": ratios(contenders)}


def ratios(contenders: dict[str, Any]) -> dict[str, float]:
    """The issue's CPU targets, in instructions: alog against the floors, peers against alog."""
    per = {n: c["per_event"] for n, c in contenders.items() if "per_event" in c}
    out: dict[str, float] = {}
    alog = per.get("alog")
    if alog:
        for floor in ("floor-inline", "floor"):
            if per.get(floor):
                out[f"alog_vs_{floor.replace('-', '_')}"] = round(alog / per[floor], 3)
        for peer in ("picologging", "structlog"):
            if per.get(peer):
                out[f"{peer}_vs_alog"] = round(per[peer] / alog, 3)
    if per.get("floor") and per.get("floor-inline"):
        # What a call with keyword fields costs by itself: no logger API can do without it.
        out["floor_vs_floor_inline"] = round(per["floor"] / per["floor-inline"], 3)
    return out


def report(data: dict[str, Any]) -> list[str]:
    """The table as Markdown lines."""
    small, large = data["events"]
    rows = [
        (name, f"{e['per_event']:,}" if "per_event" in e else e["error"])
        for name, e in data["contenders"].items()
    ]
    lines = _table(("contender", f"instructions per event ({large:,} - {small:,} events)"), rows)
    if data["ratios"]:
        lines.append("")
        lines += [f"- {key}: {value:.2f}x" for key, value in data["ratios"].items()]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--loggers", help=f"comma-separated (default: {','.join(DEFAULT)})")
    p.add_argument("--small", type=int, help="events in the smaller run (20,000)")
    p.add_argument("--large", type=int, help="events in the larger run (60,000)")
    p.add_argument("--jobs", type=int, default=2, help="valgrind runs at a time (2)")
    p.add_argument("--quick", action="store_true", help="2,000 and 4,000 events; floor and alog")
    p.add_argument("--json", type=Path, help="write the results here as JSON too")
    p.add_argument("--parts", action="store_true", help="alog's call piece by piece (see above)")
    p.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # one piece, here
    args = p.parse_args(argv)
    if args.part:
        _part(args.part, args.small)
        return 0
    if valgrind() is None:
        print(
            "instructions: valgrind is not on PATH (apt-get install -y valgrind)", file=sys.stderr
        )
        return 2
    if args.parts:
        small = args.small or (2_000 if args.quick else 20_000)
        large = args.large or (4_000 if args.quick else 60_000)
        try:
            data = measure_parts(small, large, jobs=args.jobs)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"instructions: {error}", file=sys.stderr)  # a piece failed: no table
            return 1
        print("\n".join(report_parts(data)))
        if args.json:
            args.json.write_text(json.dumps(data, indent=2) + "\n")
        return 0
    loggers = args.loggers.split(",") if args.loggers else list(QUICK if args.quick else DEFAULT)
    small = args.small or (2_000 if args.quick else 20_000)
    large = args.large or (4_000 if args.quick else 60_000)
    data = measure(loggers, small, large, jobs=args.jobs)
    print("\n".join(report(data)))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if any("error" in c for c in data["contenders"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
