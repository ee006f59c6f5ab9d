"""The pipeline's life: draining on every way out of `alog.run`, and what it reports."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from blockbuster import blockbuster_ctx

import alog

from .conftest import RunScript, read_events


class AppError(Exception):
    pass


async def test_an_exception_from_the_body_drains_and_propagates_unwrapped(
    tmp_path: Path,
) -> None:
    """The app's own error comes out as itself (no ExceptionGroup), after the queue drained."""
    path = tmp_path / "out.log"
    with pytest.raises(AppError):
        async with alog.run(alog.File(path)):
            for i in range(1000):
                alog.get_logger("app").info("before the error", i=i)
            raise AppError
    assert len(read_events(path)) == 1000


async def test_cancellation_of_the_body_still_drains(tmp_path: Path) -> None:
    """Cancelled from outside (server shutdown, Ctrl-C): queued events are still written."""
    path = tmp_path / "out.log"
    with anyio.move_on_after(0.2):
        async with alog.run(alog.File(path)):
            for i in range(1000):
                alog.get_logger("app").info("queued", i=i)
            await anyio.sleep_forever()
    assert len(read_events(path)) == 1000


async def test_shutdown_gives_up_after_shutdown_timeout_and_reports(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A stalled destination cannot hold the exit: it waits shutdown_timeout, then reports."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        started = time.monotonic()
        async with alog.run(alog.File(path), shutdown_timeout=0.3, write_timeout=30) as pipeline:
            for _ in range(5000):
                alog.get_logger("app").info("stuck", pad="x" * 100)
        assert time.monotonic() - started < 5
    finally:
        os.close(reader)
    stats = pipeline.statistics()
    assert stats.state == "closed"
    assert stats.undelivered > 0
    assert stats.written + stats.undelivered == 5000
    err = capfd.readouterr().err
    assert f"{stats.undelivered} events not written" in err


async def test_statistics_describe_a_healthy_run(tmp_path: Path) -> None:
    """The numbers an operator watches add up."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path)) as pipeline:
        assert pipeline.statistics().state == "running"
        for i in range(100):
            alog.get_logger("app").info("e", i=i)
        await pipeline.aflush(5)
        stats = pipeline.statistics()
    assert (stats.accepted, stats.written, stats.dropped, stats.queued) == (100, 100, 0, 0)
    assert stats.bytes_written == path.stat().st_size
    assert stats.batches >= 1
    assert stats.peak_queued == 100
    assert stats.max_write_seconds >= stats.last_write_seconds > 0
    assert pipeline.statistics().state == "closed"


@pytest.mark.parametrize("kind", ["file", "pipe"])
async def test_logging_never_blocks_the_event_loop(tmp_path: Path, kind: str) -> None:
    """blockbuster fails the test if anything blocking runs on the loop during logging."""
    path = tmp_path / "out.log"
    if kind == "pipe":
        os.mkfifo(tmp_path / "pipe")
        reader = os.open(tmp_path / "pipe", os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(reader, True)
        holder = os.open(tmp_path / "pipe", os.O_WRONLY)  # no EOF before alog opens it
        # A thread copies the FIFO into the file, so the pipe never stalls.
        copier = threading.Thread(target=_copy, args=(reader, path))
        copier.start()
        destination = alog.File(tmp_path / "pipe")
    else:
        destination = alog.File(path)
    async with alog.run(destination) as pipeline:
        with blockbuster_ctx():
            log = alog.get_logger("app")
            for round_ in range(20):
                for i in range(500):
                    log.info("busy", i=i, round=round_)
                    with alog.bound(request_id="r"):
                        log.bind(x=1).warning("bound")
                await anyio.lowlevel.checkpoint()
            await pipeline.aflush(5)
    if kind == "pipe":
        os.close(holder)
        await anyio.to_thread.run_sync(copier.join)
    assert len(read_events(path)) == 20_000


def _copy(reader: int, path: Path) -> None:
    with path.open("wb") as out:
        while chunk := os.read(reader, 1 << 16):
            out.write(chunk)
    os.close(reader)


def test_keyboard_interrupt_drains_before_exit(run_script: RunScript) -> None:
    """Ctrl-C in asyncio.run cancels the body; alog writes what was queued, then re-raises."""
    script = """
        import asyncio, os, signal, alog
        async def main():
            async with alog.run():
                for i in range(10_000):
                    alog.get_logger("app").info("queued", i=i)
                os.kill(os.getpid(), signal.SIGINT)
                await asyncio.sleep(10)
        asyncio.run(main())
    """
    result = run_script(script)
    assert result.returncode != 0
    assert b"KeyboardInterrupt" in result.stderr
    assert len(result.stdout.splitlines()) == 10_000
