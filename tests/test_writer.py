"""Supervision: a writer that fails for good cancels the app, says so once, and keeps nothing."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest

import alog

from .conftest import RunScript, read_events


@pytest.fixture(name="fifo")
def fixture_fifo(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO with a reader attached (non-blocking) that the test controls."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield path, reader
    finally:
        with contextlib.suppress(OSError):
            os.close(reader)


async def test_reader_gone_is_a_writer_failure_with_epipe(
    fifo: tuple[Path, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """EPIPE cancels the body, raises WriterFailed (cause BrokenPipeError), one stderr line."""
    path, reader = fifo
    log = alog.get_logger("app")
    cancelled = False
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File(path)) as pipeline:
            log.info("first")
            await pipeline.aflush(5)
            os.close(reader)
            try:
                for _ in range(100):
                    log.info("after the reader left")
                    await anyio.sleep(0.01)
            except anyio.get_cancelled_exc_class():
                cancelled = True
                raise
    assert cancelled, "the body must be cancelled when the writer fails"
    assert isinstance(caught.value.__cause__, BrokenPipeError)
    assert caught.value.undelivered >= 1
    stats = pipeline.statistics()
    assert stats.state == "failed"
    assert stats.queued == 0
    stderr = capfd.readouterr().err
    assert stderr.count("alog:") == 1
    assert "Broken pipe" in stderr
    assert "events not delivered" in stderr


async def test_calls_after_a_failure_are_counted_not_kept(
    fifo: tuple[Path, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """Once failed, the queue refuses everything: counted as dropped, memory stays empty."""
    path, reader = fifo
    log = alog.get_logger("app")
    with pytest.raises(alog.WriterFailed):
        async with alog.run(alog.File(path)) as pipeline:
            os.close(reader)
            try:
                log.info("x")
                await anyio.sleep(5)
            finally:
                for _ in range(10_000):
                    log.info("nowhere to go", payload="x" * 100)
                stats = pipeline.statistics()
                assert stats.dropped == 10_000
                assert stats.queued == 0
                assert stats.queued_bytes == 0
    assert capfd.readouterr().err.count("alog:") == 1


async def test_disk_full_is_a_writer_failure(capfd: pytest.CaptureFixture[str]) -> None:
    """ENOSPC (/dev/full) is permanent: WriterFailed carries the OSError."""
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File("/dev/full")):
            alog.get_logger("app").info("into the void")
            await anyio.sleep(5)
    cause = caught.value.__cause__
    assert isinstance(cause, OSError)
    assert cause.errno == errno.ENOSPC
    assert "No space left on device" in capfd.readouterr().err


class RaisingStream(anyio.abc.ByteSendStream):
    """A user destination that breaks on its second batch."""

    def __init__(self) -> None:
        self.batches: list[bytes] = []

    async def send(self, item: bytes) -> None:
        if self.batches:
            raise RuntimeError("destination exploded")
        self.batches.append(item)

    async def aclose(self) -> None:
        pass


async def test_a_destination_that_raises_is_a_writer_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Whatever a custom destination raises ends the writer the same way."""
    stream = RaisingStream()
    log = alog.get_logger("app")
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(stream) as pipeline:
            log.info("one")
            await pipeline.aflush(5)
            log.info("two")
            await anyio.sleep(5)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert stream.batches and b'"msg":"one"' in stream.batches[0]
    assert "destination exploded" in capfd.readouterr().err


class HangingStream(anyio.abc.ByteSendStream):
    """A user destination whose write never returns."""

    async def send(self, item: bytes) -> None:
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        pass


async def test_a_write_that_never_returns_fails_after_write_timeout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A hung destination is detected by the writer itself, not by a flush timing out."""
    started = time.monotonic()
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(HangingStream(), write_timeout=0.3):
            alog.get_logger("app").info("stuck")
            await anyio.sleep(30)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert "no progress" in str(caught.value)
    assert time.monotonic() - started < 10
    capfd.readouterr()


async def test_a_pipe_nobody_reads_fails_after_write_timeout(
    fifo: tuple[Path, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """The incident's stall: no progress for write_timeout is a failure, memory stays capped."""
    path, _reader = fifo  # attached but never read
    started = time.monotonic()
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File(path), write_timeout=0.5, max_bytes=1 << 20) as pipeline:
            for _ in range(200):
                for _ in range(100):
                    alog.get_logger("app").info("stalled", payload="x" * 200)
                await anyio.sleep(0.01)
                assert pipeline.statistics().queued_bytes <= (1 << 20) + 64 * 1024
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert time.monotonic() - started < 10
    assert "no progress writing" in capfd.readouterr().err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_program_exits_non_zero_when_the_reader_dies(
    run_script: RunScript, backend: str
) -> None:
    """End to end: stdout's reader is gone, the program stops with status 1, one message."""
    script = """
        import sys, anyio, alog
        async def main():
            log = alog.get_logger("app")
            async with alog.run():
                while True:
                    for _ in range(100):
                        log.info("tick")
                    await anyio.sleep(0.001)
        anyio.run(main, backend=sys.argv[1])
    """
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        result = run_script(script, stdout=write, timeout=30, args=(backend,))
    finally:
        os.close(write)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert stderr.count("alog: alog writer failed on stdout") == 1
    assert "Broken pipe" in stderr
    assert "Traceback" not in stderr, "one line, not a traceback beside it"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_write_stuck_in_the_kernel_does_not_keep_the_process_alive(
    run_script: RunScript, backend: str
) -> None:
    """stdout is a socket nobody reads: the writer thread blocks in write() forever, yet the
    writer fails after write_timeout and the process exits (the thread is a daemon)."""
    script = """
        import sys, anyio, alog
        async def main():
            log = alog.get_logger("app")
            async with alog.run(write_timeout=1.0):
                while True:
                    for _ in range(100):
                        log.info("tick", payload="x" * 500)
                    await anyio.sleep(0.001)
        anyio.run(main, backend=sys.argv[1])
    """
    ours, theirs = socket.socketpair()
    started = time.monotonic()
    try:
        result = run_script(script, stdout=theirs.fileno(), timeout=30, args=(backend,))
    finally:
        ours.close()
        theirs.close()
    assert result.returncode == 1, result.stderr.decode()
    assert time.monotonic() - started < 20
    assert b"no progress writing to stdout for 1 s" in result.stderr


def test_stdout_itself_stays_blocking_for_print(run_script: RunScript) -> None:
    """alog writes through its own non-blocking descriptor; print() on fd 1 is unaffected."""
    script = """
        import asyncio, os, alog
        async def main():
            async with alog.run():
                alog.get_logger("app").info("logged")
                print("printed", os.get_blocking(1), flush=True)
        asyncio.run(main())
    """
    result = run_script(script)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.splitlines()
    assert b"printed True" in lines
    assert any(b'"msg":"logged"' in line for line in lines)


@pytest.mark.skipif(sys.platform != "linux", reason="reopening via /proc is Linux-only")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_lines_to_a_shared_pipe_are_written_whole(tmp_path: Path, backend: str) -> None:
    """Pipe writes stay within PIPE_BUF on line boundaries, so processes never mix lines."""
    script = """
        import sys, anyio, alog
        async def main():
            log = alog.get_logger(sys.argv[1])
            async with alog.run():
                for i in range(20_000):
                    log.info("line", i=i, pad="y" * (i % 300))
                    if i % 500 == 0:
                        await anyio.sleep(0)
        anyio.run(main, backend=sys.argv[2])
    """
    source = tmp_path / "writer.py"
    source.write_text(textwrap.dedent(script))
    read, write = os.pipe()
    procs = [
        subprocess.Popen([sys.executable, str(source), f"p{n}", backend], stdout=write)
        for n in range(3)
    ]
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    seen: dict[str, set[int]] = {}
    for line in data.splitlines():
        event = json.loads(line)
        seen.setdefault(event["logger"], set()).add(event["i"])
    assert {name: len(numbers) for name, numbers in seen.items()} == {
        "p0": 20_000,
        "p1": 20_000,
        "p2": 20_000,
    }


async def test_a_fifo_without_a_reader_fails_at_start(tmp_path: Path) -> None:
    """Opening a FIFO nobody reads fails at once (ENXIO), never hangs the start."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File(path)):
            pytest.fail("the body must not run")
    cause = caught.value.__cause__
    assert isinstance(cause, OSError)
    assert cause.errno == errno.ENXIO


async def test_a_sync_flush_that_meets_epipe_still_fails_the_writer_loudly(
    fifo: tuple[Path, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """The flush reports what it could not write; the writer task then fails as usual."""
    path, reader = fifo
    log = alog.get_logger("app")
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File(path)) as pipeline:
            log.info("first")
            await pipeline.aflush(5)
            os.close(reader)
            log.info("into a closed pipe")
            result = pipeline.flush(timeout=2)
            assert not result.complete
            assert result.written == 0
            await anyio.sleep(5)
    assert isinstance(caught.value.__cause__, BrokenPipeError)
    assert capfd.readouterr().err.count("alog:") == 1


async def test_a_busy_loop_does_not_starve_the_files_writer_thread(tmp_path: Path) -> None:
    """A loop that logs without pause (yielding every 100 calls) still lets the file be written.

    CPython hands the GIL to the waiting writer thread only after a switch interval in which
    the loop never released it, and a busy loop releases and retakes it at every select(0):
    the thread used to finish no batch at all during the burst (2 batches for 100,000 events,
    all of them held in the queue). The writer now hands the GIL over when the thread makes no
    progress.
    """
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), max_events=1_000_000, max_bytes=256 << 20) as pipeline:
        for _ in range(1_000):
            for _ in range(100):
                log.info("request handled", method="GET", path="/api/items", status=200)
            await anyio.lowlevel.checkpoint()
        during = pipeline.statistics()
    assert during.batches >= 5, f"the writer thread finished {during.batches} batches"
    assert during.peak_queued < 50_000
    assert len(read_events(path)) == 100_000


async def test_a_files_writer_batches_events_that_come_while_its_thread_writes(
    tmp_path: Path,
) -> None:
    """At a service's rate (a few events every half millisecond) the writer does not hand
    each few to the thread: what comes while a batch is in flight waits for the next look
    (a few ms) and goes as one batch. Every event is written, and a flush is not delayed."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    bursts = 200
    async with alog.run(alog.File(path)) as pipeline:
        for burst in range(bursts):
            for i in range(3):
                log.info("request handled", burst=burst, i=i)
            await anyio.sleep(0.0005)
        started = time.monotonic()
        assert (await pipeline.aflush(5)).complete
        flushed_in = time.monotonic() - started
        stats = pipeline.statistics()
    assert stats.written == 3 * bursts
    # One batch per burst before; about one per look (~4 bursts) now, ~2 on a loaded machine.
    assert stats.batches < 0.8 * bursts, f"{stats.batches} batches for {bursts} bursts"
    assert flushed_in < 1.0
    assert len(read_events(path)) == 3 * bursts


@pytest.mark.parametrize("kind", ["file", "fifo"])
async def test_a_writer_woken_from_idle_gathers_a_few_calls_into_one_batch(
    kind: str, tmp_path: Path, fifo: tuple[Path, int]
) -> None:
    """At a service's rate each request's few events used to wake the idle writer and go as a
    batch of their own: a batch costs the loop about as much as a dozen calls. The writer now
    waits ``GATHER`` (2 ms) after a call wakes it, so events logged one per loop iteration go
    as a few batches for a hundred. To a pipe (written from the loop) they went one batch
    each before; to a regular file the thread's look (every 2 ms while a batch is in flight)
    already gathered what came after the first."""
    path = tmp_path / "out.log" if kind == "file" else fifo[0]
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)) as pipeline:
        await anyio.sleep(0.05)  # the writer is idle
        for i in range(100):
            log.info("request handled", i=i)
            await anyio.lowlevel.checkpoint()  # one loop iteration, as between two requests
        assert (await pipeline.aflush(5)).complete
        stats = pipeline.statistics()
    assert stats.written == 100
    assert stats.batches <= 25, f"{stats.batches} batches for 100 calls (one each before)"
    if kind == "file":
        lines = read_events(path)
    else:
        lines = [json.loads(line) for line in os.read(fifo[1], 1 << 20).splitlines()]
    assert [event["i"] for event in lines] == list(range(100))


async def test_a_thread_logging_flat_out_gets_few_large_batches(tmp_path: Path) -> None:
    """A writer that has caught up waits ``GATHER`` before its next read. Without that, a
    thread logging flat out was read about ten events at a time, each time the loop got the
    GIL (330 to 1,400 batches for these 20,000 events here, by backend; 10 to 20 with it), and
    the loop, the logging thread and the file's thread fought over the GIL."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")

    def produce() -> None:
        for i in range(20_000):
            log.info("work item", i=i, worker="w1")

    async with alog.run(alog.File(path)) as pipeline:
        await anyio.to_thread.run_sync(produce)
        assert (await pipeline.aflush(10)).complete
        stats = pipeline.statistics()
    assert stats.written == 20_000
    assert stats.batches <= 100, f"{stats.batches} batches for 20,000 events from a thread"
    assert [event["i"] for event in read_events(path)] == list(range(20_000))


async def test_a_flush_and_the_close_cut_the_gathering_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gathering delays only the writer's next read: an ``aflush``, a ``flush`` from
    another thread and the close wake it again and are not kept waiting (here with a
    gathering of 30 s, which each would otherwise wait for)."""
    from alog import _writer

    monkeypatch.setattr(_writer, "GATHER", 30.0)
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    started = time.monotonic()
    async with alog.run(alog.File(path)) as pipeline:
        await anyio.sleep(0.05)
        log.info("one")
        await anyio.sleep(0.05)  # the writer woke and is gathering
        assert (await pipeline.aflush(5)).complete
        log.info("two")
        await anyio.sleep(0.05)
        assert (await anyio.to_thread.run_sync(pipeline.flush, 5.0)).complete
        log.info("three")
        await anyio.sleep(0.05)
    assert time.monotonic() - started < 5.0
    assert [event["msg"] for event in read_events(path)] == ["one", "two", "three"]
