"""The hot-path checks of docs/performance.md ("Performance v2: hot path"), one per mode.

    .venv/bin/python benchmarks/hot_path.py burst       # 300,000 events at full speed, default caps
    .venv/bin/python benchmarks/hot_path.py threads     # 8 threads logging at once against 1
    .venv/bin/python benchmarks/hot_path.py disabled    # a disabled call against a do-nothing one

``burst`` counts the lines in the file and what the statistics say was dropped (the target:
nothing lost). ``threads`` logs the same number of events from 1 and from 8 threads, three
rounds each, and prints events/s. ``disabled`` times a call below its logger's level (levels
per logger configured, one destination) against a do-nothing method taking the same call, in
one process, interleaved, the median of 11 rounds of the best of 7 repeats.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def burst(events: int, folder: Path) -> None:
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


async def threads(events: int, folder: Path) -> None:
    rates: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(3):
        for count in rates:
            rates[count].append(await _threads_once(count, events, folder / "threads.log"))
    one, eight = statistics.median(rates[1]), statistics.median(rates[8])
    print(
        f"threads: 1 thread {one / 1e3:,.0f} k/s, 8 threads {eight / 1e3:,.0f} k/s "
        f"(medians of 3), ratio {eight / one:.2f}"
    )


class _Noop:
    def info(self, msg: str, /, **fields: object) -> None:
        pass


def _four(log: Any, calls: int) -> None:
    for _ in range(calls):  # as the throughput benchmark calls it: keywords at the call site
        log.info("request handled", method="GET", path="/api/items", status=200, duration_ms=12.5)


def _one(log: Any, calls: int) -> None:
    for _ in range(calls):
        log.info("request handled", status=200)


def _best(burst: Any, log: Any, calls: int = 200_000) -> float:
    samples = []
    for _ in range(7):
        started = time.perf_counter_ns()
        burst(log, calls)
        samples.append((time.perf_counter_ns() - started) / calls)
    return min(samples)


async def disabled(folder: Path) -> None:
    loggers = {"bench": "warning", "bench.db": "debug", "other": "error"}
    async with alog.run(alog.File(folder / "disabled.log"), level="info", loggers=loggers):
        log, noop = alog.get_logger("bench"), _Noop()
        for name, burst in (("four fields", _four), ("one field", _one)):
            rounds = [(_best(burst, log), _best(burst, noop)) for _ in range(11)]
            ours = statistics.median(r[0] for r in rounds)
            theirs = statistics.median(r[1] for r in rounds)
            print(
                f"disabled, {name}: {ours:.0f} ns; a do-nothing method {theirs:.0f} ns "
                f"({ours / theirs:.2f}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["burst", "threads", "disabled"])
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.mode == "burst":
            asyncio.run(burst(args.events or 300_000, Path(folder)))
        elif args.mode == "threads":
            asyncio.run(threads(args.events or 320_000, Path(folder)))
        else:
            asyncio.run(disabled(Path(folder)))


if __name__ == "__main__":
    main()
