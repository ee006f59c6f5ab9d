"""alog under trio: ``anyio.run(main, backend="trio")`` end to end, with real files and pipes.

The core's tests run on trio too (see conftest.py); these are the behaviours where trio differs
from asyncio: how other threads and signal handlers reach the loop (``run_sync_soon``), Ctrl-C
raised wherever it lands, no ``asyncio.run`` cancelling tasks at exit. Most run the program in
a subprocess under a real ``trio.run`` (anyio's test runner drives trio in guest mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import trio
import trio.lowlevel

import alog
from alog._backend import Loop, TrioWakeup, Wakeup
from alog._destinations.threaded import ThreadedFdStream

from .conftest import RunScript, read_events


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Only trio here: the other loops run the same behaviours in the other test files."""
    return ("trio", {})


def _numbers(output: bytes, key: str = "i") -> list[int]:
    """Every line parsed (fails on a torn one); the ``key`` of alog-free events, in order."""
    events = [json.loads(line) for line in output.splitlines()]
    return [event[key] for event in events if event["logger"] != "alog"]


# -- in process: trio's own primitives under alog -------------------------------------------


async def test_the_pipeline_runs_on_trio_primitives(tmp_path: Path) -> None:
    """The seam picks trio (not asyncio) and its wake-ups are trio's."""
    async with alog.run(alog.File(tmp_path / "out.log")) as pipeline:
        loop = Loop()
        assert loop.name == "trio"
        assert isinstance(loop.new_wakeup(), TrioWakeup)
        alog.get_logger("app").info("on trio")
        assert (await pipeline.aflush(5)).complete
    assert [event["msg"] for event in read_events(tmp_path / "out.log")] == ["on trio"]


async def test_a_loop_callback_that_raises_is_reported_not_fatal(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Under trio a raising run_sync_soon callback would end the run (TrioInternalError)."""
    loop = Loop()

    def broken() -> None:
        raise ValueError("bug in a callback")

    ran = trio.Event()
    assert loop.call_soon_threadsafe(broken)
    assert loop.call_soon_threadsafe(ran.set)
    with trio.fail_after(5):
        await ran.wait()
    assert "alog: internal error in a loop callback" in capfd.readouterr().err


async def test_the_seam_says_when_the_trio_run_is_over() -> None:
    """After the run, callbacks are refused (not silently dropped) and running() is False."""
    loops: list[Loop] = []

    async def capture() -> None:
        loops.append(Loop())

    await anyio.to_thread.run_sync(trio.run, capture)  # a run of its own, over by now
    (finished,) = loops
    assert finished.call_soon_threadsafe(lambda: None) is False
    assert finished.running() is False
    assert Loop().running() is True


class _SetBeforeIoWait(trio.abc.Instrument):
    """Calls ``set`` from trio's scheduler, between tasks: where a signal handler lands when
    trio is idle (the handler runs as trio is about to wait for I/O, or just woke from it)."""

    def __init__(self, wakeup: Wakeup | TrioWakeup) -> None:
        self.wakeup = wakeup
        self.armed = False
        self.fired = 0

    def before_io_wait(self, timeout: float) -> None:
        if self.armed:
            self.armed = False
            self.fired += 1
            self.wakeup.set()


async def test_wakeup_set_from_trios_scheduler_wakes_the_waiter_at_once() -> None:
    """Set between tasks, the event goes through run_sync_soon: set directly, trio would go
    on into its I/O wait with the timeout it had computed, the woken task left behind."""
    wakeup = Loop().new_wakeup()
    instrument = _SetBeforeIoWait(wakeup)
    woke: list[bool] = []
    done = trio.Event()

    async def waiter() -> None:
        woke.append(await wakeup.wait(10))
        done.set()

    trio.lowlevel.add_instrument(instrument)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(0.05)
            started = time.monotonic()
            instrument.armed = True
            with trio.move_on_after(5):
                await done.wait()
    finally:
        trio.lowlevel.remove_instrument(instrument)
    assert instrument.fired == 1
    assert woke == [True]
    assert time.monotonic() - started < 1


async def test_flush_from_trio_worker_threads_and_plain_threads(tmp_path: Path) -> None:
    """Other threads hand the flush to the loop (run_sync_soon) and wait for the writers."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    results: list[alog.FlushResult] = []
    async with alog.run(alog.File(path)):
        for i in range(1000):
            log.info("event", i=i)
        results.append(await trio.to_thread.run_sync(alog.flush, 5))

        def plain() -> None:
            for i in range(1000, 2000):
                log.info("event", i=i)
            results.append(alog.flush(5))

        thread = threading.Thread(target=plain)
        thread.start()
        await trio.to_thread.run_sync(thread.join)
        assert len(read_events(path)) == 2000
    # (written counts only what the flush itself waited for: the writer may have been first)
    assert [(r.complete, r.pending, r.timed_out) for r in results] == [(True, 0, False)] * 2
    assert [event["i"] for event in read_events(path)] == list(range(2000))


async def test_fan_out_to_two_files_and_a_pipe(tmp_path: Path) -> None:
    """One call, three destinations (two threaded files, one loop-driven pipe): all get it."""
    first, second, fifo = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            if not chunk:
                return
            received.extend(chunk)

    log = alog.get_logger("app")
    try:
        async with alog.run(alog.File(first), alog.File(second), alog.File(fifo)) as pipeline:
            copier = threading.Thread(target=drain)
            copier.start()
            for i in range(20_000):
                log.info("fan", i=i)
                if i % 1000 == 0:
                    await trio.lowlevel.checkpoint()
            stats = pipeline.statistics()
            assert stats.accepted == 20_000
        await trio.to_thread.run_sync(copier.join, 10)
    finally:
        os.close(reader)
    assert first.read_bytes() == second.read_bytes() == bytes(received)
    assert [event["i"] for event in read_events(first)] == list(range(20_000))
    final = pipeline.statistics()
    assert [d.written for d in final.destinations] == [20_000] * 3
    assert (final.dropped, final.undelivered, final.queued) == (0, 0, 0)


async def test_the_threaded_stream_detects_a_stall_after_write_timeout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A socket nobody reads: the writer thread stays in write(), no progress for
    write_timeout is a WriterFailed; the app is cancelled and the block raises it."""
    ours, theirs = socket.socketpair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fd = os.dup(theirs.fileno())
    identity = os.fstat(fd).st_ino
    theirs.close()
    stream = ThreadedFdStream(fd, "unread socket", stall_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(alog.WriterFailed) as caught:
            async with alog.run(stream, write_timeout=0.5):
                for _ in range(200):
                    for _ in range(100):
                        alog.get_logger("app").info("stuck", pad="x" * 200)
                    await trio.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        ours.close()  # the stuck write fails now and the thread ends
        stream._thread.join(5)
        with contextlib.suppress(OSError):  # left open by a close that found it busy
            if os.fstat(fd).st_ino == identity:
                os.close(fd)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert "no progress" in str(caught.value)
    assert 0.4 < elapsed < 5
    capfd.readouterr()


async def test_close_with_events_queued_writes_them_all(tmp_path: Path) -> None:
    """Leaving the block (also when cancelled from outside) drains the queue first."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    with trio.move_on_after(0.2):
        async with alog.run(alog.File(path), max_events=200_000) as pipeline:
            for i in range(50_000):
                log.info("queued", i=i)
            await trio.sleep_forever()
    assert [event["i"] for event in read_events(path)] == list(range(50_000))
    assert pipeline.statistics().written == 50_000


# -- a real trio.run, in a subprocess ---------------------------------------------------------


@pytest.mark.parametrize("stdout_kind", ["pipe", "file"])
def test_a_signal_storm_that_flushes_and_logs_never_tears_a_line(
    run_script: RunScript, tmp_path: Path, stdout_kind: str
) -> None:
    """A timer signal every 2 ms flushes and logs from its handler while the loop logs and
    sleeps: handlers land inside log calls, inside flushes and inside trio's scheduler (where
    a wake-up must go through run_sync_soon). Every line whole, none lost, none twice."""
    script = """
        import itertools, signal, sys, anyio, trio, alog
        flushes, handled = [], itertools.count()  # next() is atomic: handlers nest
        log = alog.get_logger("app")
        def on_alarm(signum, frame):
            flushes.append(alog.flush(timeout=0.05).written)
            log.info("from the handler", h=next(handled))
        async def main():
            signal.signal(signal.SIGALRM, on_alarm)
            async with alog.run() as pipeline:
                signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
                for i in range(50_000):
                    log.info("event", i=i, pad="x" * (i % 50))
                    if i % 1000 == 0:
                        await trio.sleep(0.005)  # idle in trio: handlers land in its scheduler
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            stats = pipeline.statistics()
            sys.stderr.write(
                f"flushes={len(flushes)} handled={next(handled)} written={stats.written} "
                f"dropped={stats.dropped}\\n"
            )
        anyio.run(main, backend="trio")
    """
    if stdout_kind == "pipe":
        result = run_script(script, timeout=60)
        output = result.stdout
    else:
        with (tmp_path / "out.log").open("wb") as out:
            result = run_script(script, timeout=60, stdout=out.fileno())
        output = (tmp_path / "out.log").read_bytes()
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in output.splitlines()]
    assert sorted(e["i"] for e in events if e["msg"] == "event") == list(range(50_000))
    (line,) = [line for line in result.stderr.decode().splitlines() if "flushes=" in line]
    report = dict(pair.split("=") for pair in line.split())
    assert int(report["flushes"]) > 10
    from_handler = sorted(e["h"] for e in events if e["msg"] == "from the handler")
    assert from_handler == list(range(int(report["handled"])))
    assert int(report["written"]) == len(events)


ENDINGS_APP = """
import sys, anyio, alog
log = alog.get_logger("app")
async def main():
    async with alog.run(max_events=200_000, shutdown_timeout=30):
        for i in range(100_000):
            log.info("queued", i=i)
        sys.stderr.write("logged\\n")
        sys.stderr.flush()
        if sys.argv[1] == "exception":
            raise RuntimeError("the app failed")
anyio.run(main, backend="trio")
"""


@pytest.mark.parametrize(("ending", "status"), [("normal", 0), ("exception", 1)])
def test_leaving_the_block_writes_everything_queued(
    tmp_path: Path, ending: str, status: int
) -> None:
    """Normal return or an escaping exception, the pipe's reader late: all is written first."""
    script = tmp_path / "app.py"
    script.write_text(ENDINGS_APP)
    with subprocess.Popen(
        [sys.executable, str(script), ending], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stderr is not None
        assert proc.stderr.readline() == b"logged\n"
        time.sleep(0.5)  # leaving alog.run with the queue full and nobody reading yet
        stdout, stderr = proc.communicate(timeout=40)
    assert proc.returncode == status, stderr.decode()
    assert _numbers(stdout) == list(range(100_000))
    if ending == "exception":
        assert b"RuntimeError: the app failed" in stderr


def test_ctrl_c_drains_what_was_queued_then_raises(run_script: RunScript, tmp_path: Path) -> None:
    """trio raises KeyboardInterrupt where it lands; leaving alog.run still drains the queue."""
    script = """
        import os, signal, sys, threading, anyio, trio, alog
        logged = [0]
        async def main():
            log = alog.get_logger("app")
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                async with alog.run(alog.File(sys.argv[1]), max_events=1_000_000) as pipeline:
                    while True:
                        for _ in range(100):
                            log.info("tick", i=logged[0])
                            logged[0] += 1
                        await trio.sleep(0)
            finally:
                stats = pipeline.statistics()
                sys.stderr.write(f"logged={logged[0]} written={stats.written}\\n")
        anyio.run(main, backend="trio")
    """
    path = tmp_path / "out.log"
    result = run_script(script, args=(str(path),))
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    output = path.read_bytes()
    numbers = _numbers(output)  # every line whole
    assert numbers == sorted(set(numbers)), "in order, none twice"
    assert f"written={len(output.splitlines())}" in stderr, "the books match the file"


def test_ctrl_c_landing_in_a_writer_task_still_drains_everything(
    run_script: RunScript, tmp_path: Path
) -> None:
    """trio raises Ctrl-C wherever it lands, a writer task included: the writer must go on
    draining, and the KeyboardInterrupt reach the app at its next checkpoint instead."""
    script = """
        import signal, sys, anyio, trio, alog
        from alog import _queue
        armed = [False]
        def len_where_ctrl_c_lands(obj):  # the queue's read calls len(), in the writer task
            if armed[0] and trio.lowlevel.current_task().name.endswith("_run_writer"):
                armed[0] = False
                signal.raise_signal(signal.SIGINT)
            return len(obj)
        _queue.len = len_where_ctrl_c_lands
        async def main():
            log = alog.get_logger("app")
            pipeline = alog.run(alog.File(sys.argv[1]), max_events=200_000)
            try:
                async with pipeline:
                    for i in range(50_000):
                        log.info("queued", i=i)
                    armed[0] = True
                    await trio.sleep(5)
            finally:
                stats = pipeline.statistics()
                sys.stderr.write(f"accepted={stats.accepted} written={stats.written}\\n")
        anyio.run(main, backend="trio")
    """
    path = tmp_path / "out.log"
    result = run_script(script, args=(str(path),))
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert "accepted=50000 written=50000" in stderr
    assert _numbers(path.read_bytes()) == list(range(50_000))


def test_sigterm_opt_in_drains_and_exits_normally(run_script: RunScript) -> None:
    """handle_sigterm=True under trio: the body is cancelled, the queue drained, status 0."""
    script = """
        import os, signal, sys, threading, anyio, trio, alog
        async def main():
            log = alog.get_logger("app")
            seq = 0
            async with alog.run(handle_sigterm=True, max_events=1_000_000) as pipeline:
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
                while True:
                    for _ in range(200):
                        log.info("tick", i=seq)
                        seq += 1
                    await trio.sleep(0.001)
            stats = pipeline.statistics()
            sys.stderr.write(f"after: logged={seq} written={stats.written}\\n")
        anyio.run(main, backend="trio")
    """
    result = run_script(script)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    ticks = [e["i"] for e in events if e["msg"] == "tick"]
    assert ticks == list(range(len(ticks)))
    assert [e["msg"] for e in events if e["logger"] == "alog"] == ["alog.sigterm"]
    assert f"after: logged={len(ticks)} written={len(events)}" in stderr
