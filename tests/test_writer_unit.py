"""DestinationWriter on its own: a real EventQueue, in-memory streams, no pipeline, no files.

Each test builds the queue, the writer, its wake-up and a Progress the way the pipeline wires
them, then drives ``run()`` itself. The streams record what they receive, so every count the
writer keeps is checked against what the destination really got.
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from alog import _writer
from alog._backend import Loop, TrioWakeup, Wakeup
from alog._exceptions import WriterFailed
from alog._progress import Progress
from alog._queue import EventQueue
from alog._writer import DestinationWriter
from alog.typing import Destination, Overflow

Target: TypeAlias = Destination | anyio.abc.ByteSendStream
"""What a writer writes to: a Destination (opened, reopened) or a stream itself."""

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class MemoryStream(anyio.abc.ByteSendStream):
    """Records every batch; can be told to raise, or to wait at a gate, on each send."""

    def __init__(self, *, error: Exception | None = None, good_batches: int = 0) -> None:
        self.batches: list[bytes] = []
        self.error = error
        self.good_batches = good_batches  # batches accepted before ``error`` is raised
        self.gate: anyio.Event | None = None
        self.closed = False

    async def send(self, item: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None and len(self.batches) >= self.good_batches:
            raise self.error
        self.batches.append(bytes(item))

    async def aclose(self) -> None:
        self.closed = True

    @property
    def received(self) -> bytes:
        return b"".join(self.batches)

    def events(self) -> list[dict[str, Any]]:
        """Every line received, parsed: fails on a line that is not one JSON object."""
        assert self.received.endswith(b"\n") or not self.received
        return [json.loads(line) for line in self.received.splitlines()]


class HangingStream(anyio.abc.ByteSendStream):
    """A destination whose send never returns."""

    async def send(self, item: bytes) -> None:
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        pass


class FlakyDestination:
    """A Destination (``open()``): its first stream breaks; it reopens once ``available``."""

    def __init__(self) -> None:
        self.streams: list[MemoryStream] = []
        self.available = True
        self.opens = 0

    async def open(self) -> anyio.abc.ByteSendStream:
        self.opens += 1
        if not self.available:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "still down")
        first = not self.streams
        stream = MemoryStream(error=BrokenPipeError(errno.EPIPE, "gone") if first else None)
        self.streams.append(stream)
        return stream

    def __repr__(self) -> str:
        return "<flaky destination>"


@dataclass
class Rig:
    """A queue and its writers wired as the pipeline wires them (``writer`` is reader 0)."""

    queue: EventQueue
    writer: DestinationWriter
    progress: Progress
    loop: Loop
    wakeups: list[Wakeup | TrioWakeup]

    def put(self, events: Sequence[dict[str, object]]) -> None:
        for item in events:
            self.queue.put(item, LEVELS[str(item["level"])])

    async def drain(self, timeout: float = 10.0) -> None:
        """Stop at what is queued now, and run the writer until it has settled it."""
        self.writer.stop_at(self.queue.seal())
        with anyio.fail_after(timeout):
            await self.writer.run()

    @asynccontextmanager
    async def running(
        self, *others: DestinationWriter, timeout: float = 10.0
    ) -> AsyncIterator[None]:
        """The writers run in tasks for the block; leaving it drains what is queued."""
        writers = (self.writer, *others)
        try:
            with anyio.fail_after(timeout):
                async with anyio.create_task_group() as group:
                    for writer in writers:
                        group.start_soon(writer.run)
                    yield
                    last = self.queue.seal()
                    for writer in writers:
                        writer.stop_at(last)
        except BaseExceptionGroup as group:  # the writer's own error, as the pipeline raises it
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def add_writer(
        self, reader: int, destination: Target, *, level: int | None = None
    ) -> DestinationWriter:
        """Another destination's writer on the same queue."""
        wakeup = self.loop.new_wakeup()
        self.wakeups.append(wakeup)
        writer = DestinationWriter(
            self.queue,
            reader,
            destination,
            level=level,
            required=True,
            write_timeout=5.0,
            wakeup=wakeup,
            progress=self.progress,
            loop_thread=self.loop.thread_ident,
        )
        await writer.open()
        return writer

    def assert_books_balance(self, writer: DestinationWriter | None = None) -> None:
        """entered == written + filtered + dropped + undelivered + held, with nothing faked."""
        stats = (writer or self.writer).statistics()
        counted = stats.written + stats.filtered + stats.dropped + stats.undelivered
        entered = self.queue.entered()
        assert counted <= entered, "counted more events than ever entered"
        assert counted + stats.held == entered


async def make_rig(
    destination: Target,
    *,
    level: int | None = None,
    required: bool = True,
    write_timeout: float = 5.0,
    readers: int = 1,
    max_events: int = 100_000,
    overflow: Overflow = "drop_newest",
    track_levels: bool = False,
) -> Rig:
    loop = Loop()
    wakeups = [loop.new_wakeup()]

    def wake() -> None:
        for wakeup in wakeups:
            wakeup.set()

    def wake_threadsafe() -> None:
        loop.call_soon_threadsafe(wake)

    queue = EventQueue(
        max_events=max_events,
        max_bytes=1 << 24,
        max_event_bytes=64 * 1024,
        overflow=overflow,
        readers=readers,
        track_levels=track_levels,
        loop_thread=loop.thread_ident,
        wake=wake,
        wake_threadsafe=wake_threadsafe,
    )
    progress = Progress(loop.thread_ident)
    writer = DestinationWriter(
        queue,
        0,
        destination,
        level=level,
        required=required,
        write_timeout=write_timeout,
        wakeup=wakeups[0],
        progress=progress,
        loop_thread=loop.thread_ident,
    )
    await writer.open()
    return Rig(queue, writer, progress, loop, wakeups)


def event(i: int, level: str = "info", **fields: object) -> dict[str, object]:
    return {
        "time": "2024-01-01T00:00:00.000000Z",
        "level": level,
        "logger": "test",
        "msg": "m",
        "i": i,
        **fields,
    }


def events(count: int, level: str = "info", start: int = 0) -> list[dict[str, object]]:
    return [event(start + i, level) for i in range(count)]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the writer task run until ``condition`` holds."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - a condition on the writer's counters
            await anyio.sleep(0.002)


def own_events(stream: MemoryStream) -> list[dict[str, Any]]:
    """What the stream got, without alog's own reports."""
    return [item for item in stream.events() if item["logger"] != "alog"]


# -- delivery -------------------------------------------------------------------------------


async def put_before_run(rig: Rig, batch: list[dict[str, object]]) -> None:
    rig.put(batch)
    await rig.drain()


async def put_while_running(rig: Rig, batch: list[dict[str, object]]) -> None:
    async with rig.running():
        for start in range(0, len(batch), 50):
            rig.put(batch[start : start + 50])
            await anyio.sleep(0.001)  # the writer takes what is there, in several batches


async def put_from_a_thread(rig: Rig, batch: list[dict[str, object]]) -> None:
    async with rig.running():
        await anyio.to_thread.run_sync(rig.put, batch)


DELIVERIES = {
    "queued before run": put_before_run,
    "put while running": put_while_running,
    "put from a thread": put_from_a_thread,
}


@pytest.mark.parametrize("delivery", sorted(DELIVERIES))
async def test_lines_reach_the_stream_whole_and_in_order(delivery: str) -> None:
    """A log is read top to bottom: every line, in the order logged, each one whole."""
    stream = MemoryStream()
    rig = await make_rig(stream)
    await DELIVERIES[delivery](rig, events(1000))
    assert [item["i"] for item in stream.events()] == list(range(1000))
    stats = rig.writer.statistics()
    assert (stats.written, stats.bytes_written) == (1000, len(stream.received))
    assert stats.batches == len(stream.batches)
    assert rig.writer.settled == rig.queue.last_seq() == 1000
    rig.assert_books_balance()


@pytest.mark.parametrize("threshold", [30, 40])
async def test_a_destination_level_writes_only_lines_at_or_above_it(threshold: int) -> None:
    """level= sends one destination only what matters to it, and counts the rest filtered."""
    stream = MemoryStream()
    rig = await make_rig(stream, level=threshold, track_levels=True)
    mixed = [event(i, level) for i, level in enumerate(list(LEVELS) * 40)]
    rig.put(mixed)
    await rig.drain()
    expected = [item["i"] for item in mixed if LEVELS[str(item["level"])] >= threshold]
    assert [item["i"] for item in stream.events()] == expected
    stats = rig.writer.statistics()
    assert (stats.written, stats.filtered) == (len(expected), len(mixed) - len(expected))
    rig.assert_books_balance()


async def test_a_chunk_of_only_filtered_lines_settles_without_a_write() -> None:
    """Debug noise below the level must still free the queue, or it would fill it."""
    stream = MemoryStream()
    rig = await make_rig(stream, level=30, track_levels=True)
    rig.put(events(100, "debug"))
    await rig.drain()
    assert stream.batches == []
    assert rig.writer.statistics().filtered == 100
    assert rig.queue.statistics().held == 0
    rig.assert_books_balance()


async def test_evicted_chunks_are_counted_as_dropped_and_reported() -> None:
    """A gap in the sequence numbers is a loss this destination must count and tell."""
    stream = MemoryStream()
    rig = await make_rig(stream, max_events=80, overflow="drop_oldest")
    rig.put(events(1000))
    async with rig.running():  # caught up, it reports before it parks
        await wait_until(lambda: rig.queue.statistics().reports == 1)
    evicted = rig.queue.statistics().evicted
    assert evicted > 0
    stats = rig.writer.statistics()
    assert stats.dropped == evicted
    numbers = [item["i"] for item in own_events(stream)]
    assert numbers == list(range(1000 - len(numbers), 1000)), "the newest survive, in order"
    (report,) = [item for item in stream.events() if item["msg"] == "alog.dropped"]
    assert report["dropped"] == evicted
    assert stats.written == len(numbers) + 1
    rig.assert_books_balance()


# -- the books ------------------------------------------------------------------------------


async def books_all_written(rig: Rig, stream: MemoryStream) -> None:
    rig.put(events(300))
    await rig.drain()


async def books_filtered(rig: Rig, stream: MemoryStream) -> None:
    rig.put(events(100, "info") + events(100, "error"))
    await rig.drain()


async def books_with_gaps(rig: Rig, stream: MemoryStream) -> None:
    rig.put(events(1000))
    await rig.drain()


async def books_while_down(rig: Rig, stream: MemoryStream) -> None:
    stream.error = OSError(errno.EIO, "device gone")
    stream.good_batches = 1
    async with rig.running():
        rig.put(events(50))
        await wait_until(lambda: rig.writer.statistics().written == 50)
        rig.put(events(50, start=50))  # fails: the writer is now retrying
        await wait_until(lambda: rig.writer.state == "retrying")
        rig.put(events(50, start=100))  # read while down


async def books_mid_run(rig: Rig, stream: MemoryStream) -> None:
    stream.gate = anyio.Event()
    async with rig.running():
        rig.put(events(100))
        await anyio.sleep(0.01)
        rig.put(events(100, start=100))
        rig.assert_books_balance()  # a batch in flight, another queued
        assert rig.writer.statistics().held > 0
        stream.gate.set()


class RigOptions(TypedDict, total=False):
    level: int
    required: bool
    max_events: int
    overflow: Overflow
    track_levels: bool


BOOKS: dict[str, tuple[Callable[[Rig, MemoryStream], Awaitable[None]], RigOptions]] = {
    "all written": (books_all_written, {}),
    "filtered": (books_filtered, {"level": 30, "track_levels": True}),
    "gaps": (books_with_gaps, {"max_events": 80, "overflow": "drop_oldest"}),
    "down and retrying": (books_while_down, {"required": False}),
    "in flight": (books_mid_run, {}),
}


@pytest.mark.parametrize("scenario", sorted(BOOKS))
async def test_the_books_balance(scenario: str) -> None:
    """entered == written + filtered + dropped + undelivered + held: no event unaccounted."""
    drive, options = BOOKS[scenario]
    stream = MemoryStream()
    rig = await make_rig(stream, **options)
    await drive(rig, stream)
    rig.assert_books_balance()
    stats = rig.writer.statistics()
    assert stats.held == 0, "drained: nothing left to settle"
    assert rig.writer.settled == rig.queue.entered()
    assert stats.written == len(stream.events())
    assert stats.bytes_written == len(stream.received)


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RuntimeError("destination exploded"), id="RuntimeError"),
        pytest.param(BrokenPipeError(errno.EPIPE, "gone"), id="BrokenPipeError"),
    ],
)
@pytest.mark.parametrize("good_batches", [0, 1])
async def test_a_raising_required_stream_raises_writer_failed(
    error: Exception, good_batches: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """A required destination that breaks must stop the app, saying what was not delivered."""
    stream = MemoryStream(error=error, good_batches=good_batches)
    rig = await make_rig(stream, required=True)
    with pytest.raises(WriterFailed) as caught:
        async with rig.running():
            rig.put(events(10))  # the first batch
            await wait_until(lambda: rig.writer.settled == 10)
            rig.put(events(20, start=10))  # the second, if the first went through
            await anyio.sleep(5)
    assert caught.value.error is error
    written = 10 * good_batches
    lost = 20 if good_batches else 10
    assert caught.value.undelivered == rig.writer.undelivered == lost
    assert rig.writer.state == "failed"
    assert stream.closed
    stats = rig.writer.statistics()
    assert (stats.written, stats.write_errors) == (written, 1)
    assert stats.last_error is not None and str(error) in stats.last_error
    rig.assert_books_balance()
    capfd.readouterr()


async def test_an_optional_destination_retries_counts_its_losses_and_reopens(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """An optional destination that breaks loses only its own events, says so once, comes back."""
    monkeypatch.setattr(_writer, "RETRY_FIRST", 0.01)
    destination = FlakyDestination()
    rig = await make_rig(destination, required=False, readers=2)  # reader 1: another destination
    destination.available = False  # once the first stream breaks, the first reopens fail too
    async with rig.running():
        rig.put(events(10))  # sent to the first stream, which breaks
        await wait_until(lambda: rig.writer.state == "retrying")
        rig.put(events(15, start=10))  # while it is down
        await wait_until(lambda: rig.writer.statistics().undelivered == 10 + 1 + 15)
        await wait_until(lambda: destination.opens >= 3)
        assert rig.writer.state == "retrying"
        destination.available = True
        await wait_until(lambda: rig.writer.state == "running")
        rig.put(events(5, start=25))
    stats = rig.writer.statistics()
    assert stats.reopens == 1
    assert stats.write_errors == destination.opens - 1  # the failed send, each failed reopen
    assert stats.undelivered == 26, "the lost batch, its own failure notice, the events while down"
    assert [item["i"] for item in destination.streams[-1].events()] == list(range(25, 30))
    assert destination.streams[0].closed
    rig.assert_books_balance()
    notices = [item for item in read_all(rig.queue, 1) if item["msg"] == "alog.destination_failed"]
    assert len(notices) == 1, "one notice however many reopens fail"
    assert notices[0]["destination"] == "<flaky destination>"
    assert "BrokenPipeError" in notices[0]["error"]
    assert capfd.readouterr().err.count("optional destination <flaky destination> failed") == 1


@pytest.mark.parametrize(
    "level",
    [
        None,
        30,
        pytest.param(
            40,
        ),
    ],
)
async def test_the_other_destinations_get_the_failure_notice_at_its_level(
    level: int | None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The notice is an error-level event: every destination taking errors must receive it."""
    monkeypatch.setattr(_writer, "RETRY_FIRST", 10.0)
    destination = FlakyDestination()
    rig = await make_rig(destination, required=False, readers=2, track_levels=True)
    other = MemoryStream()
    other_writer = await rig.add_writer(1, other, level=level)
    async with rig.running(other_writer):
        rig.put(events(3, "error"))
        await wait_until(lambda: rig.writer.state == "retrying")
    notices = [item for item in other.events() if item["msg"] == "alog.destination_failed"]
    assert [item["level"] for item in notices] == ["error"]
    assert [item["i"] for item in own_events(other)] == [0, 1, 2]
    rig.assert_books_balance(other_writer)
    capfd.readouterr()


def read_all(queue: EventQueue, reader: int) -> list[dict[str, Any]]:
    """Everything another reader has not read yet, parsed."""
    lines: list[dict[str, Any]] = []
    while True:
        chunks, upto = queue.read(reader)
        for chunk in chunks:
            lines += [json.loads(line) for line in bytes(chunk.data).splitlines()]
        if upto >= queue.last_seq():
            return lines


@pytest.mark.parametrize("required", [True, False])
async def test_a_send_that_hangs_past_write_timeout_fails_with_no_progress(
    required: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """A hung destination is found by its writer within write_timeout, not by a flush."""
    rig = await make_rig(HangingStream(), required=required, write_timeout=0.1)
    rig.put(events(10))
    started = time.monotonic()
    if required:
        with pytest.raises(WriterFailed, match="no progress") as caught:
            await rig.drain()
        assert isinstance(caught.value.error, TimeoutError)
    else:
        async with rig.running():
            await wait_until(lambda: rig.writer.state == "retrying")
        assert rig.writer.last_error is not None and "no progress" in rig.writer.last_error
    assert time.monotonic() - started < 0.1 + 2.0
    assert rig.writer.statistics().undelivered >= 10
    rig.assert_books_balance()
    capfd.readouterr()


# -- stopping -------------------------------------------------------------------------------


async def test_stop_at_ends_run_only_once_everything_before_it_is_settled() -> None:
    """Shutdown waits for the last batch in flight: returning earlier would lose it."""
    stream = MemoryStream()
    stream.gate = anyio.Event()
    rig = await make_rig(stream)
    finished = anyio.Event()

    async def run() -> None:
        await rig.writer.run()
        finished.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            rig.put(events(10))
            target = rig.queue.seal()
            rig.writer.stop_at(target)
            await anyio.sleep(0.05)
            assert not finished.is_set(), "a batch is still in flight"
            assert rig.writer.settled < target
            rig.put(events(5, start=10))  # before the close: still taken
            stream.gate.set()
            await finished.wait()
    assert rig.writer.settled == rig.queue.last_seq() == 15
    assert [item["i"] for item in stream.events()] == list(range(15))
    rig.put(events(1, start=15))
    assert rig.queue.statistics().rejected == 1, "the queue is closed once run returns"


async def test_settling_notifies_a_progress_waiter_on_the_loop() -> None:
    """aflush sleeps on Progress: a writer that settles must wake it, or flushes time out."""
    stream = MemoryStream()
    rig = await make_rig(stream)
    waiter = Loop().new_wakeup()
    rig.progress.add_loop_waiter(waiter)
    try:
        async with rig.running():
            rig.put(events(3))
            with anyio.fail_after(5):
                assert await waiter.wait(5) is True
            await wait_until(lambda: rig.writer.settled == 3)
    finally:
        rig.progress.remove_loop_waiter(waiter)
