"""Throughput to socket destinations and the loss counted across a receiver's restart.

    python benchmarks/sockets.py [--events 100000]

Throughput is end to end: from the first log call until the receiver holds every event
(rsyslog: written to its output file). Each restart run logs at a steady rate while the
receiver is restarted, then compares the books with what the receiver wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio.lowlevel
from tests import _rsyslog
from tests._sockets import LineServer

import alog


async def _throughput(destination: Any, events: int, received: Any) -> dict[str, Any]:
    log = alog.get_logger("bench")
    started = time.perf_counter()
    async with alog.run(destination, max_events=events) as pipeline:
        for i in range(events):
            log.info("bench event", i=i, user="someone", path="/api/v1/items")
            if i % 1000 == 999:
                await anyio.lowlevel.checkpoint()
    logged = time.perf_counter() - started
    deadline = time.monotonic() + 10
    while received() < events and time.monotonic() < deadline:  # noqa: ASYNC110 - another process's file
        await anyio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stats = pipeline.statistics()
    return {
        "events": events,
        "received": received(),
        "written": stats.written,
        "dropped": stats.dropped,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed),
        "log_calls_seconds": round(logged, 3),
    }


async def _restart(destination: Any, restart: Any, received: Any) -> dict[str, Any]:
    """Log 20,000 events/s for 3 s; restart the receiver after 1 s."""
    log = alog.get_logger("bench")
    pipeline = alog.run(destination, max_events=100_000)
    async with pipeline:
        i = 0
        started = time.monotonic()
        restarter: threading.Thread | None = None
        while time.monotonic() - started < 3.0:
            for _ in range(200):
                log.info("steady", i=i)
                i += 1
            await anyio.sleep(0.01)
            if restarter is None and time.monotonic() - started > 1.0:
                # In a thread of its own: logging goes on while the receiver is away.
                restarter = threading.Thread(target=restart)
                restarter.start()
        await anyio.to_thread.run_sync(restarter.join) if restarter else None
        await pipeline.aflush(10)
    stats = pipeline.statistics()
    deadline = time.monotonic() + 10
    while received() < stats.written and time.monotonic() < deadline:  # noqa: ASYNC110 - as above
        await anyio.sleep(0.05)
    got = received()
    (books,) = stats.destinations
    return {
        "accepted": stats.accepted,
        "written": stats.written,
        "dropped": stats.dropped,
        "undelivered": stats.undelivered,
        "received": got,
        "lost_after_written": stats.written - got,
        "reconnects": books.reconnects,
    }


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    events = parser.parse_args().events
    results: dict[str, Any] = {}

    server = LineServer(("127.0.0.1", 0)).start()
    results["tcp_own_server"] = await _throughput(
        alog.TCP("127.0.0.1", server.port), events, lambda: len(server.lines())
    )
    server.stop()

    def restart_server() -> None:
        server.stop()
        time.sleep(0.3)
        server.start()

    server = LineServer(("127.0.0.1", 0)).start()
    results["tcp_own_server_restart"] = await _restart(
        alog.TCP("127.0.0.1", server.port), restart_server, lambda: len(server.lines())
    )
    server.stop()

    for name, make in [
        ("tcp_rsyslog_imtcp", lambda r: alog.TCP(*r.tcp_address)),
        ("syslog_tcp_rsyslog", lambda r: alog.Syslog(r.tcp_address, transport="tcp")),
        ("syslog_udp_rsyslog", lambda r: alog.Syslog(r.udp_address)),
        ("syslog_unix_rsyslog", lambda r: alog.Syslog(r.socket_path)),
    ]:
        work = Path(tempfile.mkdtemp(prefix="alog-bench-"))
        engine = _rsyslog.start(work)
        output = work / f"{'unix' if 'unix' in name else 'udp' if 'udp' in name else 'tcp'}.raw"
        try:
            results[name] = await _throughput(
                make(engine), events, lambda path=output: _count_lines(path)
            )
        finally:
            engine.stop()
        work = Path(tempfile.mkdtemp(prefix="alog-bench-"))
        output = work / output.name
        engine = _rsyslog.start(work)
        try:
            results[name + "_restart"] = await _restart(
                make(engine),
                engine.restart,
                lambda path=output: _count_lines(path),
            )
        finally:
            engine.stop()
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    anyio.run(main)
