"""The hot-path checks of docs/performance.md ("Performance v2: hot path"), one per mode.

    .venv/bin/python benchmarks/hot_path.py burst       # 300,000 events at full speed, default caps
    .venv/bin/python benchmarks/hot_path.py threads     # 8 threads logging at once against 1
    .venv/bin/python benchmarks/hot_path.py disabled    # a disabled call against a do-nothing one
    .venv/bin/python benchmarks/hot_path.py burst --json out.json   # the numbers as JSON too

``benchmarks/run.py`` runs the three after its other scenarios (``--no-hot-path`` skips them).

``burst`` counts the lines in the file and what the statistics say was dropped (the target:
nothing lost). ``threads`` logs the same number of events from 1 and from 8 threads, three
rounds each, and prints events/s. ``disabled`` times a call below its logger's level (levels
per logger configured, one destination) against a do-nothing method taking the same call, in
one process, interleaved, the median of 11 rounds of the best of 7 repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import alog

FIELDS: dict[str, Any] = {"method": "GET", "path": "/api/items", "status": 200, "duration_ms": 12.5}


def _lines(path: Path) -> tuple[int, int]:
    """(benchmark lines, alog's own notices) in the file."""
    events = notices = 0
    with path.open("rb") as f:
        for line in f:
            if b'"logger":"alog"' in line:
                notices += 1
            else:
                events += 1
    return events, notices


async def burst(events: int, folder: Path) -> dict[str, Any]:
    path = folder / "burst.log"
    started = time.perf_counter()
    async with alog.run(alog.File(path)) as pipeline:  # default caps
        log = alog.get_logger("bench")
        for _ in range(events // 100):
            for _ in range(100):
                log.info("request handled", **FIELDS)
            await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    stats = pipeline.statistics()
    lines, notices = _lines(path)
    print(
        f"burst: {lines:,} lines for {events:,} events, dropped {stats.dropped:,}, "
        f"undelivered {stats.undelivered:,}, notices {notices}, batches {stats.batches:,}, "
        f"peak queued {stats.peak_queued:,}, {events / elapsed / 1e3:,.0f} k events/s"
    )
    return {
        "events": events,
        "lines": lines,
        "lost": events - lines,
        "dropped": stats.dropped,
        "undelivered": stats.undelivered,
        "notices": notices,
        "batches": stats.batches,
        "peak_queued": stats.peak_queued,
        "events_per_s": events / elapsed,
    }


def _log_from_thread(count: int) -> None:
    log = alog.get_logger("bench")
    for _ in range(count):
        log.info("request handled", **FIELDS)


async def _threads_once(threads: int, events: int, path: Path) -> float:
    async with alog.run(alog.File(path), max_events=1_000_000, max_bytes=256 << 20) as pipeline:
        started = time.perf_counter()
        workers = [
            threading.Thread(target=_log_from_thread, args=(events // threads,))
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):  # noqa: ASYNC110 - threads
            await asyncio.sleep(0.001)
        await pipeline.aflush(30)
        elapsed = time.perf_counter() - started
    assert pipeline.statistics().written == events
    path.unlink()  # noqa: ASYNC240 - after the measurement
    return events / elapsed


async def threads(events: int, folder: Path, rounds: int = 3) -> dict[str, Any]:
    rates: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(rounds):
        for count in rates:
            rates[count].append(await _threads_once(count, events, folder / "threads.log"))
    one, eight = statistics.median(rates[1]), statistics.median(rates[8])
    print(
        f"threads: 1 thread {one / 1e3:,.0f} k/s, 8 threads {eight / 1e3:,.0f} k/s "
        f"(medians of {rounds}), ratio {eight / one:.2f}"
    )
    return {
        "events": events,
        "rounds": rounds,
        "one_per_s": one,
        "eight_per_s": eight,
        "ratio": eight / one,
        "one_rounds": rates[1],
        "eight_rounds": rates[8],
    }


class _Noop:
    def info(self, msg: str, /, **fields: object) -> None:
        pass


def _four(log: Any, calls: int) -> None:
    for _ in range(calls):  # as the throughput benchmark calls it: keywords at the call site
        log.info("request handled", method="GET", path="/api/items", status=200, duration_ms=12.5)


def _one(log: Any, calls: int) -> None:
    for _ in range(calls):
        log.info("request handled", status=200)


def _best(burst: Any, log: Any, calls: int = 200_000, repeats: int = 7) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        burst(log, calls)
        samples.append((time.perf_counter_ns() - started) / calls)
    return min(samples)


async def disabled(
    folder: Path, rounds: int = 11, calls: int = 200_000, repeats: int = 7
) -> dict[str, Any]:
    loggers = {"bench": "warning", "bench.db": "debug", "other": "error"}
    result: dict[str, Any] = {"rounds": rounds, "calls": calls}
    async with alog.run(alog.File(folder / "disabled.log"), level="info", loggers=loggers):
        log, noop = alog.get_logger("bench"), _Noop()
        for key, name, burst in (
            ("four_fields", "four fields", _four),
            ("one_field", "one field", _one),
        ):
            pairs = [
                (_best(burst, log, calls, repeats), _best(burst, noop, calls, repeats))
                for _ in range(rounds)
            ]
            ours = statistics.median(r[0] for r in pairs)
            theirs = statistics.median(r[1] for r in pairs)
            print(
                f"disabled, {name}: {ours:.0f} ns; a do-nothing method {theirs:.0f} ns "
                f"({ours / theirs:.2f}x)"
            )
            result[key] = {"ns": ours, "noop_ns": theirs, "ratio": ours / theirs}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["burst", "threads", "disabled"])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result: dict[str, Any]
        if args.mode == "burst":
            result = asyncio.run(burst(args.events or 300_000, Path(folder)))
        elif args.mode == "threads":
            events = args.events or (32_000 if args.quick else 320_000)
            result = asyncio.run(threads(events, Path(folder), rounds=1 if args.quick else 3))
        elif args.quick:
            result = asyncio.run(disabled(Path(folder), rounds=3, calls=20_000, repeats=3))
        else:
            result = asyncio.run(disabled(Path(folder)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
