"""The bounded queue: caps on events and bytes, both overflow policies, and other threads."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import alog

from .conftest import read_events


async def test_drop_newest_keeps_the_first_events_and_reports_the_rest(tmp_path: Path) -> None:
    """A full queue refuses new events, counts them, and says so in the log once caught up."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), max_events=100) as pipeline:
        for i in range(250):  # no await: the writer cannot drain in between
            log.info("burst", i=i)
        stats = pipeline.statistics()
        assert (stats.accepted, stats.dropped, stats.queued) == (250, 150, 100)
    events = read_events(path)
    assert [e["i"] for e in events[:100]] == list(range(100))
    (summary,) = events[100:]
    assert summary["msg"] == "alog.dropped"
    assert summary["logger"] == "alog"
    assert summary["level"] == "warning"
    assert summary["dropped"] == 150
    assert summary["overflow"] == "drop_newest"
    assert summary["first_drop"] <= summary["last_drop"]
    final = pipeline.statistics()
    assert final.written == 101
    assert final.dropped == 150


async def test_drop_oldest_keeps_the_newest_events(tmp_path: Path) -> None:
    """drop_oldest evicts from the front, so the most recent events survive, in order."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), max_events=100, overflow="drop_oldest") as pipeline:
        for i in range(1000):
            log.info("burst", i=i)
        stats = pipeline.statistics()
        assert stats.queued <= 100
        assert stats.accepted == 1000
    events = read_events(path)
    numbers = [e["i"] for e in events if e["msg"] == "burst"]
    summary = events[-1]
    assert summary["msg"] == "alog.dropped"
    assert numbers == sorted(numbers)
    assert numbers[-1] == 999
    assert len(numbers) + summary["dropped"] == 1000
    assert pipeline.statistics().dropped == summary["dropped"]


async def test_the_byte_cap_bounds_the_queue(tmp_path: Path) -> None:
    """max_bytes caps memory whatever the event count allows (plus at most one event)."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), max_bytes=20_000, max_event_bytes=1024) as pipeline:
        for i in range(1000):
            log.info("burst", i=i, pad="p" * 100)
        stats = pipeline.statistics()
        assert stats.queued_bytes <= 20_000 + 1024
        assert stats.accepted == 1000
        assert stats.dropped > 800
    assert len(read_events(path)) == stats.accepted - stats.dropped + 1


async def test_in_flight_batches_count_against_the_caps(tmp_path: Path) -> None:
    """While a batch is being written it still occupies room: memory never doubles."""
    path = tmp_path / "pipe"
    import os

    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    log = alog.get_logger("app")
    try:
        async with alog.run(alog.File(path), max_bytes=200_000, write_timeout=30) as pipeline:
            for _ in range(50):
                for _ in range(100):
                    log.info("stalling", pad="z" * 200)
                await anyio.sleep(0.001)
            stats = pipeline.statistics()
            assert stats.queued_bytes <= 200_000 + 64 * 1024
            assert stats.dropped > 0
            drained = bytearray()
            while True:  # now read everything so the pipeline can drain and close
                try:
                    chunk = os.read(reader, 1 << 20)
                except BlockingIOError:
                    if (await pipeline.aflush(0.05)).complete:
                        break
                    continue
                drained += chunk
    finally:
        os.close(reader)


async def test_events_from_other_threads_all_arrive_once(tmp_path: Path) -> None:
    """Plain threads and to_thread workers log concurrently with the loop, losing nothing."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")

    def work(name: str) -> None:
        for i in range(5000):
            log.info("thread", who=name, i=i)

    async with alog.run(alog.File(path)) as pipeline:
        threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        worker = anyio.to_thread.run_sync(work, "to_thread")
        for i in range(5000):
            log.info("loop", who="loop", i=i)
            if i % 100 == 0:
                await anyio.lowlevel.checkpoint()
        await worker
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
    seen: dict[str, list[int]] = {}
    for event in read_events(path):
        seen.setdefault(event["who"], []).append(event["i"])
    assert sorted(seen) == ["loop", "t0", "t1", "t2", "to_thread"]
    for numbers in seen.values():
        assert numbers == list(range(5000))  # each thread's events stay in order
    assert pipeline.statistics().dropped == 0


async def test_other_threads_respect_the_caps_too(tmp_path: Path) -> None:
    """A thread flooding a full queue is counted as dropped, not buffered."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")

    def flood() -> None:
        for i in range(5000):
            log.info("flood", i=i)

    async with alog.run(alog.File(path), max_events=50) as pipeline:
        thread = threading.Thread(target=flood)
        thread.start()
        thread.join()  # blocks the loop on purpose: the writer cannot drain meanwhile
        stats = pipeline.statistics()
        assert stats.queued <= 50
        assert stats.accepted == 5000
    events = read_events(path)
    assert events[-1]["msg"] == "alog.dropped"
    assert len(events) - 1 + events[-1]["dropped"] == 5000


@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest"])
async def test_drop_summaries_repeat_for_each_episode(tmp_path: Path, overflow: str) -> None:
    """Each overflow episode is reported once with its own count: no storms, no silence."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), max_events=10, overflow=overflow) as pipeline:  # type: ignore[arg-type]
        for episode in range(3):
            for i in range(30):
                log.info("burst", episode=episode, i=i)
            await pipeline.aflush(5)
            await pipeline.aflush(5)
    summaries = [e for e in read_events(path) if e["msg"] == "alog.dropped"]
    assert len(summaries) == 3
    assert sum(s["dropped"] for s in summaries) == pipeline.statistics().dropped
