"""Throughput to a real systemd-journald, and what a journald restart costs.

Runs journald the way the tests do (tests/_journald.py: a private mount namespace, root), so
the machine's own journal is untouched. Prints events/s from the first log call until
journald's socket took the last event (every one checked as stored), and, across restarts in
the middle of a stream, the events the books counted as lost and those journald never stored
although its socket had accepted them.

    python benchmarks/journald.py [--events 50000] [--rounds 3] [--restarts 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._journald import JournaldServer, unavailable

import alog

log = alog.get_logger("bench")


async def throughput(server: JournaldServer, events: int, name: str) -> float:
    async with alog.run(
        alog.Journald(socket=server.socket, identifier=name), max_events=events + 10
    ) as pipeline:
        started = time.perf_counter()
        for i in range(events):
            log.info("request handled", i=i, method="GET", status=200, duration_ms=1.5)
            if i % 1000 == 0:
                await anyio.lowlevel.checkpoint()
        result = await pipeline.aflush(60)
        elapsed = time.perf_counter() - started
    stored = len(server.wait_for(name, events))
    if not result.complete or stored != events:
        raise RuntimeError(f"not all stored: {result}, {stored} entries")
    return events / elapsed


async def restart(server: JournaldServer, events: int, name: str) -> tuple[int, int, int]:
    async with alog.run(
        alog.Journald(socket=server.socket, identifier=name), max_events=events + 10
    ) as pipeline:
        for i in range(events):
            log.info("event", i=i)
            if i == events // 2:
                await anyio.to_thread.run_sync(server.restart)
            if i % 200 == 0:
                await anyio.sleep(0.001)
    stats = pipeline.statistics()
    stored = len(server.wait_for(name, stats.written))
    return stats.written, stats.undelivered, stats.written - stored


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        sys.exit(f"cannot run journald here: {reason}")
    server = JournaldServer()
    try:
        await anyio.to_thread.run_sync(server.start)
        rates = [await throughput(server, args.events, f"bench-{n}") for n in range(args.rounds)]
        print(
            f"throughput: {statistics.median(rates):,.0f} events/s to journald "
            f"(median of {args.rounds} x {args.events:,}; all stored)"
        )
        for n in range(args.restarts):
            written, counted, unseen = await restart(server, 6000, f"restart-{n}")
            print(
                f"restart {n + 1}: {written} written, {counted} counted as lost, "
                f"{unseen} accepted by the old socket but never stored"
            )
    finally:
        server.close()


if __name__ == "__main__":
    anyio.run(main)
