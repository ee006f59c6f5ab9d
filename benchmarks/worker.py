"""One measurement of one contender, in a fresh process; run by run.py, not by hand.

    worker.py throughput --logger alog --events 200000 --path out.log --result r.json
    worker.py disabled --logger alog --calls 1000000 --path out.log --result r.json
    worker.py stall --logger alog --stall-seconds 10 --ctrl-fd 5 --result r.json

The result is a JSON object written to ``--result``. In the stall scenario stdout is the log
destination (a pipe that run.py does not read for a while) and ``--ctrl-fd`` tells run.py when
the logging starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from typing import Any

from contenders import CONTENDERS, Burst, Contender

_PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss() -> int:
    """Resident set size now, in bytes (ru_maxrss only gives the peak)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss() -> int:
    """Peak RSS of this process image, in bytes.

    Not ru_maxrss: Linux carries it over from the parent across fork and exec, so a child of a
    big parent reports the parent's peak.
    """
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def throughput(c: Contender, events: int, path: str) -> dict[str, Any]:
    rss_start = current_rss()
    cpu0 = time.process_time()
    thread0 = time.thread_time()
    w0 = time.perf_counter()
    await c.start(path, level="info")
    w1 = time.perf_counter()
    burst = c.burst
    sleep = asyncio.sleep
    clock = time.perf_counter_ns
    in_calls = 0
    batches, rest = divmod(events, 100)
    for _ in range(batches):
        b0 = clock()
        burst(100)
        in_calls += clock() - b0
        await sleep(0)
    if rest:
        b0 = clock()
        burst(rest)
        in_calls += clock() - b0
    w2 = time.perf_counter()
    stats = await c.stop()
    w3 = time.perf_counter()
    cpu3 = time.process_time()
    thread3 = time.thread_time()
    return {
        "events": events,
        # Wall time of the logging loop (calls, and whatever the logger ran on the loop during the
        # yields) per event: what the application's event loop paid.
        "loop_ns_per_call": (w2 - w1) * 1e9 / events,
        # Time inside the calls only, yields excluded.
        "call_ns": in_calls / events,
        # Process CPU time, all threads, from configuration to the file complete.
        "cpu_us_per_event": (cpu3 - cpu0) * 1e6 / events,
        # The share of it spent on the event loop's thread (the rest: writer threads).
        "loop_thread_cpu_us_per_event": (thread3 - thread0) * 1e6 / events,
        "events_per_s": events / (w3 - w0),
        "setup_ms": (w1 - w0) * 1e3,
        "drain_ms": (w3 - w2) * 1e3,
        "wall_s": w3 - w0,
        "rss_start": rss_start,
        "peak_rss": peak_rss(),
        "file_bytes": os.path.getsize(path),  # noqa: ASYNC240 - after the measured region
        "stats": stats,
    }


class _Noop:
    """The cheapest Python-level logger: a method that does nothing with the same arguments
    (no keyword-only parameter: matching each keyword against one costs ~50 ns with four)."""

    __slots__ = ()

    def info(self, msg: str, /, **fields: object) -> None:
        pass


def _noop_bursts() -> tuple[Burst, Burst, Burst]:
    log = _Noop()

    def four(k: int) -> None:
        for _ in range(k):
            log.info(
                "request handled", method="GET", path="/api/items", status=200, duration_ms=12.5
            )

    def one(k: int) -> None:
        for _ in range(k):
            log.info("request handled", status=200)

    def empty(k: int) -> None:
        for _ in range(k):
            pass

    return four, one, empty


async def _per_call(burst: Burst, calls: int) -> float:
    """ns per call, best of 5 repeats (as timeit does: the others measure the machine's
    noise), yielding to the loop every 1000 calls."""
    clock = time.perf_counter_ns
    batches = max(calls // 5000, 1)
    samples = []
    for _ in range(5):
        t = 0
        for _ in range(batches):
            t0 = clock()
            burst(1000)
            t += clock() - t0
            await asyncio.sleep(0)
        samples.append(t / (batches * 1000))
    return min(samples)


async def disabled(c: Contender, calls: int, path: str) -> dict[str, Any]:
    await c.start(path, level="warning")
    result = {"ns_per_call": await _per_call(c.burst, calls)}
    if c.burst_one_field is not None:
        result["one_field_ns"] = await _per_call(c.burst_one_field, calls)
    await c.stop()
    four, one, empty = _noop_bursts()
    result["noop_ns"] = await _per_call(four, calls)
    result["noop_one_field_ns"] = await _per_call(one, calls)
    result["loop_ns"] = await _per_call(empty, calls)
    return result


async def stall(
    c: Contender,
    *,
    stall_seconds: float,
    recovery_seconds: float,
    grace_seconds: float,
    rate: int,
    burst_size: int,
    ctrl_fd: int,
) -> dict[str, Any]:
    await c.start(None, level="info")
    burst_seq = c.burst_seq
    interval = burst_size / rate
    total = stall_seconds + recovery_seconds
    lag: list[tuple[float, float]] = []  # (when the monitor should have woken, how late it was)
    rss: list[tuple[float, int]] = []
    stop = False

    async def monitor() -> None:
        next_rss = 0.0
        while not stop:
            due = time.monotonic() + 0.001
            await asyncio.sleep(0.001)
            now = time.monotonic()
            lag.append((due, now - due))
            if now >= next_rss:
                rss.append((now, current_rss()))
                next_rss = now + 0.1

    mon = asyncio.create_task(monitor())
    await asyncio.sleep(0.005)  # the monitor is asleep in its loop before the first burst
    rss_start = current_rss()
    t0 = time.monotonic()
    os.write(ctrl_fd, f"ready {t0}\n".encode())
    bursts: list[tuple[int, float]] = []
    seq = 0
    skipped = 0
    due = t0
    while True:
        now = time.monotonic()
        if now - t0 >= total:
            break
        if now > due + interval:
            # The loop was held up: those requests never reached the application.
            missed = int((now - due) / interval)
            skipped += missed
            due += missed * interval
        bursts.append((seq, time.monotonic()))
        burst_seq(burst_size, seq)
        seq += burst_size
        due += interval
        await asyncio.sleep(max(due - time.monotonic(), 0))
    t_end = time.monotonic()
    # A service keeps running after the incident: give buffered events time to go out before
    # the shutdown (which some loggers cut short).
    await asyncio.sleep(grace_seconds)
    stop = True
    await mon
    rss_end_stall = max((r for t, r in rss if t < t0 + stall_seconds), default=rss_start)
    # Bounded means flat once the queue is full: growth over the second half of the stall.
    rss_half = max((r for t, r in rss if t < t0 + stall_seconds / 2), default=rss_start)
    t_stop = time.monotonic()
    stats = await c.stop()
    t_stopped = time.monotonic()

    def phase(lo: float, hi: float) -> list[float]:
        return [v for t, v in lag if lo <= t < hi]

    # The monitor went to sleep just before t0: a freeze in the first burst is due before t0.
    stall_lag = phase(t0 - 1.0, t0 + stall_seconds)
    rec_lag = phase(t0 + stall_seconds, t_end)
    return {
        "t0": t0,
        "t_end": t_end,
        "logged": seq,
        "scheduled": int(total / interval) * burst_size,
        "skipped_bursts": skipped,
        "bursts": bursts,
        "max_lag_ms_stall": max(stall_lag, default=0.0) * 1e3,
        "p99_lag_ms_stall": _pct(stall_lag, 0.99) * 1e3,
        "max_lag_ms_recovery": max(rec_lag, default=0.0) * 1e3,
        "p99_lag_ms_recovery": _pct(rec_lag, 0.99) * 1e3,
        "rss_start": rss_start,
        "rss_max_stall": rss_end_stall,
        "rss_growth_stall": rss_end_stall - rss_start,
        "rss_growth_second_half": rss_end_stall - rss_half,
        "writes": c.writes,
        "peak_rss": peak_rss(),
        "t_stop": t_stop,
        "shutdown_ms": (t_stopped - t_stop) * 1e3,
        "timeline": _timeline(lag, rss, t0),
        "stats": stats,
    }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _timeline(
    lag: list[tuple[float, float]], rss: list[tuple[float, int]], t0: float
) -> list[list[float]]:
    """Per 100 ms window: [seconds since start, max lag in ms, RSS in MB].

    A lag covers every window from when the monitor was due until it ran, so a frozen loop
    shows as frozen for as long as it was, not as one late wake-up.
    """
    windows: dict[int, list[float]] = {}
    for t, v in lag:
        for k in range(int((t - t0) * 10), int((t + v - t0) * 10) + 1):
            w = windows.setdefault(k, [0.0, 0.0])
            w[0] = max(w[0], v * 1e3)
    for t, r in rss:
        w = windows.setdefault(int((t - t0) * 10), [0.0, 0.0])
        w[1] = r / 1e6
    last_rss = 0.0
    out = []
    for k in sorted(windows):
        lag_ms, rss_mb = windows[k]
        last_rss = rss_mb or last_rss
        out.append([k / 10, round(lag_ms, 3), round(last_rss, 2)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["throughput", "disabled", "stall"])
    parser.add_argument("--logger", required=True, choices=sorted(CONTENDERS))
    parser.add_argument("--result", required=True)
    parser.add_argument("--path")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--stall-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-seconds", type=float, default=3.0)
    parser.add_argument("--grace-seconds", type=float, default=2.0)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--ctrl-fd", type=int)
    args = parser.parse_args()

    contender = CONTENDERS[args.logger]()
    contender.load()
    gc.collect()
    if args.mode == "throughput":
        coro = throughput(contender, args.events, args.path)
    elif args.mode == "disabled":
        coro = disabled(contender, args.calls, args.path)
    else:
        coro = stall(
            contender,
            stall_seconds=args.stall_seconds,
            recovery_seconds=args.recovery_seconds,
            grace_seconds=args.grace_seconds,
            rate=args.rate,
            burst_size=args.burst,
            ctrl_fd=args.ctrl_fd,
        )
    result = asyncio.run(coro)
    with open(args.result, "w") as f:
        json.dump(result, f, default=str)
    sys.exit(0)


if __name__ == "__main__":
    main()
