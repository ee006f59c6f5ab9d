"""The incident that alog exists for, as a program you can run: logging into a stalled stdout.

A busy service logs in bursts (default 20,000 events/s) to stdout while stdout is a pipe that
stops being read. Once a second it reports on stderr: RSS, queue depth, dropped, written and the
worst event-loop lag. Try both endings from a shell::

    # the reader stalls for 3 s, then resumes: the program keeps running, memory stays flat,
    # and the log itself says how many events were dropped ("alog.dropped")
    python examples/incident.py --duration 8 | { sleep 3; cat > /dev/null; }

    # the reader never resumes: after --write-timeout the writer fails, the app is cancelled,
    # alog says so once on stderr and the program exits with status 1
    python examples/incident.py --write-timeout 3 | sleep 30

Report lines look like ``incident: phase=report t=1.0 rss_kib=... queued=... dropped=...``:
``key=value`` pairs, easy to read and easy to parse.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import alog

log = alog.get_logger("incident")


def rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB, from /proc (Linux)."""
    current = peak = 0
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
    except OSError:
        pass
    return current, peak


def report(phase: str, started: float, **numbers: object) -> None:
    """One ``key=value`` line on stderr (the synchronous write is this demo's own choice)."""
    current, peak = rss_kib()
    pairs = " ".join(f"{key}={value}" for key, value in numbers.items())
    line = f"incident: phase={phase} t={time.monotonic() - started:.1f} "
    sys.stderr.write(f"{line}rss_kib={current} peak_rss_kib={peak} {pairs}\n")
    sys.stderr.flush()


class Counters:
    """What the app did, next to what alog says it did."""

    def __init__(self) -> None:
        self.logged = 0
        self.max_lag = 0.0
        self.window_lag = 0.0


async def watch_lag(counters: Counters, interval: float) -> None:
    """Sleep ``interval`` over and over; oversleeping is time the loop was busy elsewhere."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(interval)
        lag = time.perf_counter() - before - interval
        counters.window_lag = max(counters.window_lag, lag)
        counters.max_lag = max(counters.max_lag, lag)


async def log_steadily(counters: Counters, rate: float, burst: int, total: int) -> None:
    """Log ``total`` events at ``rate`` per second, ``burst`` events at a time."""
    interval = burst / rate
    next_burst = time.monotonic()
    while counters.logged < total:
        for _ in range(min(burst, total - counters.logged)):
            log.info(
                "request handled",
                method="GET",
                path="/items/42",
                status=200,
                duration_ms=3.25,
                seq=counters.logged,
            )
            counters.logged += 1
        next_burst += interval
        delay = next_burst - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_burst = time.monotonic()  # behind: do not try to catch up in one go
            await asyncio.sleep(0)


async def report_every_second(pipeline: alog.Pipeline, counters: Counters, started: float) -> None:
    while True:
        await asyncio.sleep(1.0)
        stats = pipeline.statistics()
        report(
            "report",
            started,
            state=stats.state,
            logged=counters.logged,
            queued=stats.queued,
            queued_bytes=stats.queued_bytes,
            dropped=stats.dropped,
            written=stats.written,
            max_lag_ms=f"{counters.window_lag * 1000:.2f}",
        )
        counters.window_lag = 0.0


async def main(args: argparse.Namespace) -> int:
    total = args.events if args.events is not None else int(args.rate * args.duration)
    counters = Counters()
    started = time.monotonic()
    pipeline = alog.run(
        alog.Stdout(),
        write_timeout=args.write_timeout,
        max_bytes=args.max_bytes,
        max_events=args.max_events,
        shutdown_timeout=args.shutdown_timeout,
        overflow=args.overflow,
    )
    ending = "finished"
    try:
        async with pipeline:
            report("start", started, events=total, rate=args.rate, max_bytes=args.max_bytes)
            async with asyncio.TaskGroup() as tasks:
                lag = tasks.create_task(watch_lag(counters, args.lag_interval))
                reporter = tasks.create_task(report_every_second(pipeline, counters, started))
                await log_steadily(counters, args.rate, args.burst, total)
                report("logged", started, logged=counters.logged)
                if args.linger:
                    await asyncio.sleep(args.linger)
                lag.cancel()
                reporter.cancel()
    except alog.WriterFailed:
        ending = "writer-failed"  # alog has already said why, once, on stderr
    stats = pipeline.statistics()
    report(
        "end",
        started,
        ending=ending,
        state=stats.state,
        logged=counters.logged,
        accepted=stats.accepted,
        written=stats.written,
        dropped=stats.dropped,
        undelivered=stats.undelivered,
        peak_queued_bytes=stats.peak_queued_bytes,
        max_lag_ms=f"{counters.max_lag * 1000:.2f}",
    )
    return 1 if ending == "writer-failed" else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20_000, help="events per second")
    parser.add_argument("--burst", type=int, default=200, help="events per burst")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of logging")
    parser.add_argument("--events", type=int, default=None, help="log this many (not duration)")
    parser.add_argument("--write-timeout", type=float, default=10.0)
    parser.add_argument("--shutdown-timeout", type=float, default=5.0)
    parser.add_argument("--max-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--max-events", type=int, default=100_000)
    parser.add_argument("--overflow", choices=["drop_newest", "drop_oldest"], default="drop_newest")
    parser.add_argument("--linger", type=float, default=0.0, help="seconds to idle after logging")
    parser.add_argument("--lag-interval", type=float, default=0.005, help="lag probe period")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
