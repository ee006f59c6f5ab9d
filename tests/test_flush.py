"""flush(timeout): from the loop's thread, other threads, signal handlers and atexit, always
returning by its deadline with an account of what was and was not written."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import pytest

import alog
from alog._pipeline import _LONGEST_WAIT, _wait_seconds

from .conftest import RunScript, read_events


@pytest.fixture(name="stalled_fifo")
def fixture_stalled_fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO whose reader is attached but never reads: writes stall once it is full."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield path
    finally:
        os.close(reader)


async def test_sync_flush_on_the_loop_thread_writes_before_returning(tmp_path: Path) -> None:
    """Sync code inside async code can flush: the lines are in the file when it returns."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)) as pipeline:
        for i in range(1000):
            log.info("event", i=i)
        result = pipeline.flush(timeout=5)
        assert result.complete
        assert (result.written, result.pending, result.timed_out) == (1000, 0, False)
        assert len(read_events(path)) == 1000


async def test_flush_from_another_thread_waits_for_the_writer(tmp_path: Path) -> None:
    """A worker thread's flush hands off once and waits for the writer task."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)):
        for i in range(1000):
            log.info("event", i=i)
        # Started here, before the writer task gets a turn (anyio's to_thread yields first).
        results: list[alog.FlushResult] = []
        flusher = threading.Thread(target=lambda: results.append(alog.flush(5)))
        flusher.start()
        await anyio.to_thread.run_sync(flusher.join)
        (result,) = results
        assert result.complete
        assert result.written == 1000
        assert len(read_events(path)) == 1000


async def test_async_flush_waits_for_what_was_queued(tmp_path: Path) -> None:
    """aflush is the await-able version with the same account."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path)) as pipeline:
        for i in range(500):
            alog.get_logger("app").info("event", i=i)
        result = await pipeline.aflush(timeout=5)
        assert (result.written, result.pending, result.state) == (500, 0, "running")


async def test_flush_on_the_loop_thread_honours_its_deadline_when_stalled(
    stalled_fifo: Path,
) -> None:
    """A stalled destination cannot make flush hang: it returns and reports what is pending."""
    log = alog.get_logger("app")
    async with alog.run(alog.File(stalled_fifo), write_timeout=30, shutdown_timeout=0.2):
        for _ in range(5000):
            log.info("event", pad="x" * 100)
        started = time.monotonic()
        result = alog.flush(timeout=0.5)
        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 2.0
        assert result.timed_out
        assert not result.complete
        assert result.pending > 0
        assert result.written < 5000


async def test_flush_from_a_thread_honours_its_deadline_when_stalled(
    stalled_fifo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The same from another thread: the wait is bounded by the deadline."""
    log = alog.get_logger("app")
    async with alog.run(alog.File(stalled_fifo), write_timeout=30, shutdown_timeout=0.2):
        for _ in range(5000):
            log.info("event", pad="x" * 100)
        started = time.monotonic()
        result = await anyio.to_thread.run_sync(alog.flush, 0.5)
        assert time.monotonic() - started < 2.0
        assert result.timed_out and result.pending > 0
    assert "shutdown_timeout (0.2 s) expired" in capfd.readouterr().err


def test_flush_without_a_pipeline_has_nothing_pending() -> None:
    """Library code may call alog.flush() unconditionally."""
    result = alog.flush(1)
    assert result.complete and result.state == "closed"


async def test_flush_after_close_reports_the_closed_state(tmp_path: Path) -> None:
    """A closed pipeline's flush returns at once."""
    async with alog.run(alog.File(tmp_path / "out.log")) as pipeline:
        pass
    result = pipeline.flush(1)
    assert result.complete and result.state == "closed"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_flush_from_a_signal_handler_writes_queued_events(
    run_script: RunScript, backend: str
) -> None:
    """A handler on the loop's thread writes synchronously; os._exit right after loses nothing."""
    script = """
        import os, signal, sys, anyio, alog
        def on_signal(signum, frame):
            result = alog.flush(timeout=5)
            sys.stderr.write(f"flushed {result.written} pending {result.pending}\\n")
            sys.stderr.flush()
            os._exit(0)
        async def main():
            signal.signal(signal.SIGUSR1, on_signal)
            log = alog.get_logger("app")
            async with alog.run():
                for i in range(20_000):
                    log.info("queued", i=i)
                os.kill(os.getpid(), signal.SIGUSR1)
                await anyio.sleep(10)
        anyio.run(main, backend=sys.argv[1])
    """
    result = run_script(script, args=(backend,))
    assert result.returncode == 0, result.stderr.decode()
    assert b"flushed 20000 pending 0" in result.stderr
    numbers = [json.loads(line)["i"] for line in result.stdout.splitlines()]
    assert numbers == list(range(20_000))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_flush_at_exit_with_a_pipeline_in_another_threads_loop(
    run_script: RunScript, backend: str
) -> None:
    """An atexit flush while another thread's loop still runs the pipeline: no hang."""
    script = """
        import atexit, sys, threading, anyio, alog
        log = alog.get_logger("app")
        started = threading.Event()
        async def service():
            async with alog.run():
                started.set()
                while True:
                    log.info("background")
                    await anyio.sleep(0.001)
        def at_exit():
            result = alog.flush(timeout=2)
            sys.stderr.write(f"atexit flush: pending={result.pending}\\n")
        threading.Thread(
            target=anyio.run, args=(service,), kwargs={"backend": sys.argv[1]}, daemon=True
        ).start()
        started.wait(5)
        log.info("from main")
        atexit.register(at_exit)
    """
    started = time.monotonic()
    result = run_script(script, timeout=30, args=(backend,))
    assert result.returncode == 0, result.stderr.decode()
    assert time.monotonic() - started < 15
    assert b"atexit flush: pending=0" in result.stderr
    assert b'"msg":"from main"' in result.stdout


def test_a_never_closed_pipeline_warns_and_flushes_at_exit(run_script: RunScript) -> None:
    """Entering alog.run without leaving it is a bug: ResourceWarning, then a best effort."""
    script = """
        import asyncio, alog
        holder = []
        async def main():
            pipeline = alog.run()
            await pipeline.__aenter__()
            holder.append(pipeline)
            alog.get_logger("app").info("queued but never drained")
        loop = asyncio.new_event_loop()
        loop.run_until_complete(main())
    """
    result = run_script(script, env={"PYTHONWARNINGS": "always::ResourceWarning"})
    assert b"ResourceWarning" in result.stderr
    assert b"was never closed" in result.stderr
    assert b"queued but never drained" in result.stdout


def test_threads_flushing_concurrently_all_return(tmp_path: Path) -> None:
    """Many threads flushing at once never deadlock each other or the writer."""
    path = tmp_path / "out.log"
    results: list[alog.FlushResult] = []

    async def main() -> None:
        log = alog.get_logger("app")
        async with alog.run(alog.File(path)):

            def worker() -> None:
                for i in range(200):
                    log.info("w", i=i)
                    if i % 50 == 0:
                        results.append(alog.flush(5))

            threads = [threading.Thread(target=worker) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                await asyncio.to_thread(thread.join)

    asyncio.run(main())
    assert len(results) == 16
    assert all(r.complete for r in results)
    assert len(read_events(path)) == 800


@pytest.mark.parametrize("stdout_kind", ["pipe", "file"])
def test_flushes_from_a_signal_storm_never_tear_a_line(
    run_script: RunScript, tmp_path: Path, stdout_kind: str
) -> None:
    """A timer signal fires every 2 ms and flushes from its handler while the loop logs:
    handlers that land inside a log call (or inside another flush) leave every line whole,
    and no line is written twice (pipe: loop-driven writes; file: the writer thread)."""
    script = """
        import asyncio, signal, sys, alog
        flushes = []
        def on_alarm(signum, frame):
            flushes.append(alog.flush(timeout=0.05).written)
        async def main():
            log = alog.get_logger("app")
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
            async with alog.run() as pipeline:
                for i in range(100_000):
                    log.info("event", i=i, pad="x" * (i % 50))
                    if i % 1000 == 0:
                        await asyncio.sleep(0)
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            stats = pipeline.statistics()
            sys.stderr.write(f"flushes={len(flushes)} written={stats.written}\\n")
        asyncio.run(main())
    """
    if stdout_kind == "pipe":
        result = run_script(script, timeout=60)
        output = result.stdout
    else:
        with (tmp_path / "out.log").open("wb") as out:
            result = run_script(script, timeout=60, stdout=out.fileno())
        output = (tmp_path / "out.log").read_bytes()
    assert result.returncode == 0, result.stderr.decode()
    numbers = [json.loads(line)["i"] for line in output.splitlines()]
    assert sorted(numbers) == list(range(100_000))
    flushes = int(result.stderr.split(b"flushes=")[1].split()[0])
    assert flushes > 10


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        (10**400, _LONGEST_WAIT),
        (float("inf"), _LONGEST_WAIT),
        (float("nan"), 0.0),
        (-1, 0.0),
        (2.5, 2.5),
    ],
)
def test_any_timeout_becomes_a_wait_that_cannot_overflow(timeout: object, seconds: float) -> None:
    """A huge int means 'wait long', not 'do not wait'; nothing a user passes can raise."""
    assert _wait_seconds(timeout) == seconds
