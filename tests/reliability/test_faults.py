"""Faults against real resources, while the application keeps logging.

Each fault has the outcome the core contract names: a permanent error or a stall ends the
writer (one stderr message, the app cancelled, exit status non-zero, nothing accumulating),
while faults the OS absorbs (a deleted file) change nothing for the app.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import alog

from .conftest import Pipe, PipeReader, Spawn, parse_lines

# An app that logs in bursts until it is stopped; WriterFailed escapes asyncio.run on purpose.
LOGGING_APP = """
import asyncio, json, os, sys
import alog

log = alog.get_logger("app")

async def main(destination, write_timeout):
    seq = 0
    pipeline = alog.run(destination, write_timeout=write_timeout)
    try:
        async with pipeline:
            sys.stderr.write("ready\\n")
            {setup}
            while True:
                for _ in range(500):
                    log.info("tick", seq=seq, pad="p" * 100)
                    seq += 1
                await asyncio.sleep(0.001)
    finally:
        stats = pipeline.statistics()
        sys.stderr.write("stats: " + json.dumps(dict(
            logged=seq, state=stats.state, written=stats.written, dropped=stats.dropped,
            undelivered=stats.undelivered, queued=stats.queued)) + "\\n")

destination = {destination}
asyncio.run(main(destination, {write_timeout}))
"""


def _app(destination: str = "alog.Stdout()", *, setup: str = "", write_timeout: float = 5.0) -> str:
    return LOGGING_APP.format(destination=destination, setup=setup, write_timeout=write_timeout)


def _stats(stderr: str) -> dict[str, object]:
    lines = [line for line in stderr.splitlines() if line.startswith("stats: ")]
    assert len(lines) == 1, stderr
    stats: dict[str, object] = json.loads(lines[0][len("stats: ") :])
    return stats


def _assert_failed_loudly_once(stderr: str, reason: str) -> None:
    messages = [line for line in stderr.splitlines() if line.startswith("alog:")]
    if re.fullmatch(
        r"alog: \d+ events logged after the writer failed on .+ were not written", messages[-1]
    ):
        messages.pop()  # what was logged after the failure: one count at exit, not a line each
    assert len(messages) == 1, stderr
    assert reason in messages[0], messages[0]
    assert "the application is being stopped" in messages[0]
    assert "Traceback" not in stderr, "the one line, not a traceback beside it"
    stats = _stats(stderr)
    assert stats["state"] == "failed"
    assert stats["queued"] == 0, "nothing accumulates after the failure"


def test_reader_closing_the_pipe_stops_the_app(spawn: Spawn, pipe: Pipe) -> None:
    """EPIPE: the reader goes away; exit 1 with one message, not one per call."""
    child = spawn(_app(), stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "ready")
    assert os.read(pipe.read_end, 65536)  # it is logging
    pipe.close(pipe.read_end)
    started = time.monotonic()
    assert child.wait(timeout=20) == 1
    latency = time.monotonic() - started
    print(f"\nEPIPE: exit status 1 {latency:.2f} s after the reader closed the pipe")
    assert latency < 10
    _assert_failed_loudly_once(child.stderr, "Broken pipe")


@pytest.mark.parametrize("destination", ["alog.Stdout()", "alog.File('/dev/full')"])
def test_disk_full_stops_the_app(spawn: Spawn, destination: str) -> None:
    """ENOSPC (/dev/full), as redirected stdout and as a File: exit 1, one message."""
    with open("/dev/full", "wb") as full:
        child = spawn(_app(destination), stdout=full.fileno())
    assert child.wait(timeout=20) == 1
    _assert_failed_loudly_once(child.stderr, "No space left on device")


def test_closed_descriptor_stops_the_app(spawn: Spawn, tmp_path: Path) -> None:
    """EBADF: the app closes the pipeline's own descriptor under it; exit 1, one message."""
    setup = "await asyncio.sleep(0.2); os.close(pipeline._writers[0].stream.fd)"
    child = spawn(_app(f"alog.File({str(tmp_path / 'app.log')!r})", setup=setup))
    assert child.wait(timeout=20) == 1
    _assert_failed_loudly_once(child.stderr, "Bad file descriptor")


def test_socket_nobody_reads_is_a_stall_and_the_process_still_exits(spawn: Spawn) -> None:
    """A write stuck in the kernel (a full socket, written by alog's thread): exit 1 anyway."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        child = spawn(_app(write_timeout=2.0), stdout=theirs.fileno())
        theirs.close()
        child.wait_line(lambda line: line == "ready")
        started = time.monotonic()
        assert child.wait(timeout=30) == 1
        latency = time.monotonic() - started
    assert latency < 2.0 + 5.0
    _assert_failed_loudly_once(child.stderr, "no progress writing to stdout for 2 s")


def test_default_sigpipe_disposition_kills_quietly(spawn: Spawn, pipe: Pipe) -> None:
    """With SIGPIPE restored to SIG_DFL, a dead reader kills the process (status -SIGPIPE).

    That is the Unix default alog does not override (it never changes process-wide signal
    dispositions); the exit status is still non-zero and the process does not hang.
    """
    setup = "import signal; signal.signal(signal.SIGPIPE, signal.SIG_DFL)"
    child = spawn(_app(setup=setup), stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "ready")
    assert os.read(pipe.read_end, 65536)
    pipe.close(pipe.read_end)
    assert child.wait(timeout=20) == -signal.SIGPIPE


class _Raising(anyio.abc.ByteSendStream):
    """A destination that works for a while, then raises."""

    def __init__(self, good_sends: int) -> None:
        self.left = good_sends
        self.received = 0

    async def send(self, item: bytes) -> None:
        if self.left == 0:
            raise OSError(5, "Input/output error (injected)")
        self.left -= 1
        self.received += item.count(b"\n")
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        pass


class _NeverReturns(anyio.abc.ByteSendStream):
    async def send(self, item: bytes) -> None:
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        pass


async def _log_until_cancelled(log: alog.Logger, sent: list[int]) -> None:
    while True:
        for _ in range(200):
            log.info("tick", seq=sent[0])
            sent[0] += 1
        await anyio.sleep(0.001)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda: _Raising(good_sends=3), "injected", id="raises"),
        pytest.param(_NeverReturns, "no progress", id="never returns"),
    ],
)
async def test_a_failing_custom_destination_cancels_the_app_and_keeps_memory_flat(
    make: type[anyio.abc.ByteSendStream], reason: str
) -> None:
    """Raising or hanging destination: WriterFailed with the cause; later calls are counted."""
    sent = [0]
    log = alog.get_logger("app")
    pipeline = alog.run(make(), write_timeout=1.0)
    with pytest.raises(alog.WriterFailed) as failed:
        async with pipeline:
            await _log_until_cancelled(log, sent)
    assert reason in str(failed.value)
    assert failed.value.__cause__ is failed.value.error
    stats = pipeline.statistics()
    assert (stats.state, stats.queued, stats.queued_bytes) == ("failed", 0, 0)
    assert stats.written + stats.undelivered + stats.dropped == sent[0] + stats.reports
    assert stats.accepted == sent[0] + stats.reports


# Events queued when the loop goes away without leaving alog.run normally.
LOOP_SHUTDOWN_APP = """
import asyncio, sys
import alog

log = alog.get_logger("app")
mode = sys.argv[1]

async def run_pipeline(ready):
    async with alog.run(shutdown_timeout=30):
        ready.set()
        await asyncio.Event().wait()

async def main():
    ready = asyncio.Event()
    asyncio.get_running_loop().create_task(run_pipeline(ready))
    await ready.wait()
    for seq in range(50_000):
        log.info("queued", seq=seq)
    # main returns: asyncio.run cancels the pipeline's task; its exit must drain.

def stop_loop():
    loop = asyncio.new_event_loop()
    async def body():
        pipeline = alog.run(shutdown_timeout=30)
        await pipeline.__aenter__()  # never exited: only the atexit flush is left
        for seq in range(50_000):
            log.info("queued", seq=seq)
    loop.run_until_complete(body())
    loop.close()

if mode == "cancelled":
    asyncio.run(main())
else:
    stop_loop()
"""


@pytest.mark.parametrize("mode", ["cancelled", "loop-closed"])
def test_loop_shutting_down_with_events_queued_writes_them(
    spawn: Spawn, pipe: Pipe, mode: str
) -> None:
    """asyncio.run cancelling the pipeline's task, or a loop closed under it: all written."""
    child = spawn(LOOP_SHUTDOWN_APP, [mode], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    time.sleep(1.0)  # a reader late enough that the queue is full when shutdown starts
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=40) == 0, child.stderr
    events = parse_lines(reader.join(timeout=10))
    assert [event["seq"] for event in events] == list(range(50_000))


# Logs in bursts and is interrupted by SIGINT from outside at a random point.
BURSTS_APP = """
import asyncio, json, sys
import alog

log = alog.get_logger("app")
counted = [0]

async def main():
    # Caps far above what one second can log: this test is about the interrupt, not overflow.
    pipeline = alog.run(max_events=10**7, max_bytes=2**30, shutdown_timeout=30)
    try:
        async with pipeline:
            sys.stderr.write("ready\\n")
            while True:
                for _ in range(5_000):
                    log.info("burst", seq=counted[0])
                    counted[0] += 1
                await asyncio.sleep(0)
    finally:
        stats = pipeline.statistics()
        sys.stderr.write("stats: " + json.dumps(dict(
            logged=counted[0], written=stats.written, dropped=stats.dropped,
            undelivered=stats.undelivered, state=stats.state)) + "\\n")

asyncio.run(main())
"""


def test_keyboard_interrupt_in_a_burst_writes_everything_logged(spawn: Spawn, pipe: Pipe) -> None:
    """SIGINT mid-burst: KeyboardInterrupt ends the app, and every logged event is written."""
    child = spawn(BURSTS_APP, stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    reader = PipeReader(pipe.read_end).start()
    child.wait_line(lambda line: line == "ready")
    time.sleep(1.0)
    child.proc.send_signal(signal.SIGINT)
    code = child.wait(timeout=40)
    assert code in (-signal.SIGINT, 1, 130), child.stderr
    assert "KeyboardInterrupt" in child.stderr
    stats = _stats(child.stderr)
    events = parse_lines(reader.join(timeout=10))
    assert stats["dropped"] == stats["undelivered"] == 0
    assert stats["written"] == stats["logged"] == len(events)
    assert [event["seq"] for event in events] == list(range(len(events)))
