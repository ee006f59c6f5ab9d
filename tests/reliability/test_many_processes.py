"""Many processes, one pipe: worker processes (as gunicorn or ``uvicorn --workers`` run them)
share one stdout pipe or FIFO, and no line may ever be torn or mixed with another's.

A pipe write is atomic only up to PIPE_BUF bytes, so alog cuts its batches for pipes and FIFOs
at line boundaries within PIPE_BUF; these tests check the result line by line.
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path

import pytest

from .conftest import Child, Pipe, PipeReader, Spawn, parse_lines

WORKER = """
import asyncio, json, sys
import alog

worker, count, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
destination = alog.Stdout() if target == "stdout" else alog.File(target)
log = alog.get_logger("worker").bind(worker=worker)

async def main():
    # Queues big enough that nothing is dropped: this test is about integrity, not overflow.
    pipeline = alog.run(
        destination, max_events=2_000_000, max_bytes=512 * 1024 * 1024, shutdown_timeout=120
    )
    async with pipeline:
        for seq in range(count):
            # Line lengths vary (about 100 to 700 bytes) so batch cuts fall everywhere.
            log.info("work", seq=seq, pad="x" * ((seq * 7919) % 600))
            if seq % 1000 == 999:
                await asyncio.sleep(0)
    stats = pipeline.statistics()
    sys.stderr.write("stats: " + json.dumps(dict(
        written=stats.written, dropped=stats.dropped, undelivered=stats.undelivered)) + "\\n")

asyncio.run(main())
"""


def _check_every_line(data: bytes, workers: int, count: int, children: list[Child]) -> None:
    events = parse_lines(data)  # every line parses: nothing torn, nothing interleaved
    seen = {worker: bytearray(count) for worker in range(workers)}
    for event in events:
        assert event["msg"] == "work"
        assert event["pad"] == "x" * ((event["seq"] * 7919) % 600)
        seen[event["worker"]][event["seq"]] += 1
    for worker, flags in seen.items():
        assert flags.count(1) == count, f"worker {worker}: events missing or written twice"
    assert len(events) == workers * count
    for child in children:
        stats = json.loads(child.wait_line(lambda line: line.startswith("stats: "))[7:])
        assert stats == {"written": count, "dropped": 0, "undelivered": 0}


SIZES = [
    pytest.param(25_000, id="4x25k"),
    pytest.param(250_000, id="4x250k", marks=[pytest.mark.soak, pytest.mark.timeout(600)]),
]


@pytest.mark.parametrize("count", SIZES)
def test_workers_sharing_a_stdout_pipe_never_tear_lines(
    spawn: Spawn, pipe: Pipe, count: int
) -> None:
    """4 processes, one stdout pipe: every line parses, every event exactly once."""
    workers = 4
    started = time.monotonic()
    children = [
        spawn(WORKER, [str(worker), str(count), "stdout"], stdout=pipe.write_end)
        for worker in range(workers)
    ]
    pipe.close(pipe.write_end)
    reader = PipeReader(pipe.read_end).start()
    for child in children:
        assert child.wait(timeout=600) == 0, child.stderr
    data = reader.join(timeout=60)
    elapsed = time.monotonic() - started
    _check_every_line(data, workers, count, children)
    print(f"\n{workers}x{count} lines through one pipe: all whole, all once, {elapsed:.1f} s")


@pytest.mark.parametrize("count", SIZES)
def test_workers_sharing_a_fifo_never_tear_lines(spawn: Spawn, tmp_path: Path, count: int) -> None:
    """The same through a named FIFO opened with alog.File(path)."""
    workers = 4
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY)  # no EOF before every worker has opened it
    try:
        os.set_blocking(read_end, True)
        reader = PipeReader(read_end).start()
        children = [
            spawn(WORKER, [str(worker), str(count), str(fifo)]) for worker in range(workers)
        ]
        for child in children:
            assert child.wait(timeout=600) == 0, child.stderr
        os.close(keep_open)
        keep_open = -1
        data = reader.join(timeout=60)
    finally:
        if keep_open >= 0:
            os.close(keep_open)
        os.close(read_end)
    _check_every_line(data, workers, count, children)


BIG_LINES = """
import asyncio, sys
import alog

log = alog.get_logger("big")

async def main():
    async with alog.run(max_event_bytes=1 << 20, max_bytes=1 << 28, shutdown_timeout=60):
        for seq in range(200):
            log.info("big", seq=seq, pad="y" * (seq * 997 % 300_000))
            await asyncio.sleep(0)

asyncio.run(main())
"""


def test_lines_longer_than_pipe_buf_are_written_whole(spawn: Spawn, pipe: Pipe) -> None:
    """A single event bigger than PIPE_BUF (up to 300 kB) still arrives as one whole line."""
    assert select.PIPE_BUF < 300_000
    child = spawn(BIG_LINES, stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    time.sleep(0.5)  # a late reader: the pipe fills and writes are partial
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=60) == 0, child.stderr
    events = parse_lines(reader.join(timeout=10))
    assert [event["seq"] for event in events] == list(range(200))
    assert all(len(event["pad"]) == event["seq"] * 997 % 300_000 for event in events)
