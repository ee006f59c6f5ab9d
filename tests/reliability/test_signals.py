"""Signals and exit: every way a process ends, with real signals sent to real subprocesses.

Normal exit, an escaping exception, SIGINT and (opted in) SIGTERM drain what is queued; the
atexit path with a pipeline in another thread never hangs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time

import pytest

import alog

from .conftest import Pipe, PipeReader, Spawn, parse_lines

LOOPS = ["asyncio", "uvloop"]

# Logs a burst, then ends as argv[1] says; argv[2] picks the event loop.
ENDINGS_APP = """
import asyncio, sys
import alog, uvloop

log = alog.get_logger("app")
ending, loop_name = sys.argv[1], sys.argv[2]

async def main():
    async with alog.run(max_events=200_000, shutdown_timeout=30):
        for seq in range(100_000):
            log.info("queued", seq=seq)
        sys.stderr.write("logged\\n")
        if ending == "exception":
            raise RuntimeError("the app failed")

(uvloop.run if loop_name == "uvloop" else asyncio.run)(main())
"""


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(("ending", "status"), [("normal", 0), ("exception", 1)])
def test_leaving_the_block_writes_everything_queued(
    spawn: Spawn, pipe: Pipe, ending: str, status: int, loop: str
) -> None:
    """Normal return or an escaping exception: the queue is drained before the exit."""
    child = spawn(ENDINGS_APP, [ending, loop], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "logged")
    time.sleep(0.5)  # the app is leaving alog.run with the queue full and the reader late
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=40) == status, child.stderr
    events = parse_lines(reader.join(timeout=10))
    assert [event["seq"] for event in events] == list(range(100_000))
    if ending == "exception":
        assert "RuntimeError: the app failed" in child.stderr


# Logs until a signal arrives; prints what it logged after the block (if it gets there).
SIGTERM_APP = """
import asyncio, json, sys
import alog, uvloop

log = alog.get_logger("app")
opt_in, loop_name = sys.argv[1] == "opt-in", sys.argv[2]
shutdown_timeout = float(sys.argv[3])

async def main():
    seq = 0
    pipeline = alog.run(handle_sigterm=opt_in, shutdown_timeout=shutdown_timeout)
    async with pipeline:
        sys.stderr.write("ready\\n")
        try:
            while True:
                for _ in range(1_000):
                    log.info("tick", seq=seq)
                    seq += 1
                await asyncio.sleep(0.001)
        finally:
            sys.stderr.write("body ended\\n")
    stats = pipeline.statistics()
    sys.stderr.write("after: " + json.dumps(dict(
        logged=seq, written=stats.written, dropped=stats.dropped,
        undelivered=stats.undelivered)) + "\\n")

(uvloop.run if loop_name == "uvloop" else asyncio.run)(main())
"""


def _after(line: str) -> dict[str, int]:
    numbers: dict[str, int] = json.loads(line[len("after: ") :])
    return numbers


def test_sigterm_without_the_opt_in_kills_at_once(spawn: Spawn, pipe: Pipe) -> None:
    """The baseline the opt-in exists for: Python's default SIGTERM ends the process at once."""
    child = spawn(SIGTERM_APP, ["default", "asyncio", "5"], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    reader = PipeReader(pipe.read_end).start()
    child.wait_line(lambda line: line == "ready")
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == -signal.SIGTERM
    reader.join(timeout=10)


@pytest.mark.parametrize("loop", LOOPS)
def test_sigterm_opt_in_drains_and_exits_normally(spawn: Spawn, pipe: Pipe, loop: str) -> None:
    """handle_sigterm=True: SIGTERM cancels the app, everything logged is written, exit 0."""
    child = spawn(SIGTERM_APP, ["opt-in", loop, "30"], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "ready")
    time.sleep(0.5)  # nobody reads yet: the queue is full when the signal comes
    child.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=40) == 0, child.stderr
    events = parse_lines(reader.join(timeout=10))
    after = _after(child.wait_line(lambda line: line.startswith("after: ")))
    ticks = [event["seq"] for event in events if event["msg"] == "tick"]
    assert "alog.sigterm" in [event["msg"] for event in events], "the log says why it ended"
    assert after["undelivered"] == 0
    assert len(ticks) + after["dropped"] == after["logged"]
    assert ticks == sorted(set(ticks))


def test_second_sigterm_cuts_the_drain_short(spawn: Spawn, pipe: Pipe) -> None:
    """A drain stuck on a dead reader ends at the second SIGTERM, well before shutdown_timeout."""
    child = spawn(SIGTERM_APP, ["opt-in", "asyncio", "60"], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "ready")
    time.sleep(0.3)
    child.proc.send_signal(signal.SIGTERM)
    child.wait_line(lambda line: line == "body ended")  # signals sent too close would merge
    time.sleep(0.5)
    started = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 0, child.stderr
    assert time.monotonic() - started < 10
    after = _after(child.wait_line(lambda line: line.startswith("after: ")))
    assert after["undelivered"] > 0, "what was cut is counted"
    assert "events not written to stdout" in child.stderr


def test_sigterm_opt_in_needs_the_main_thread() -> None:
    """Only the main thread can handle signals: say so before starting anything."""
    errors: list[BaseException] = []

    async def main() -> None:
        async with alog.run(handle_sigterm=True):
            pass

    def in_thread() -> None:
        try:
            asyncio.run(main())
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert len(errors) == 1
    assert "main thread" in str(errors[0])


async def test_sigterm_opt_in_restores_the_previous_handler() -> None:
    """After the pipeline closes, SIGTERM means what it meant before."""
    before = signal.getsignal(signal.SIGTERM)
    async with alog.run(alog.Stderr(), handle_sigterm=True):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) == before


# A pipeline running in a daemon thread's loop when the main thread returns.
ATEXIT_APP = """
import asyncio, sys, threading
import alog

log = alog.get_logger("app")
ready = threading.Event()

async def app():
    async with alog.run(shutdown_timeout=float(sys.argv[1])):
        for seq in range(20_000):
            log.info("queued", seq=seq)
        ready.set()
        await asyncio.Event().wait()

threading.Thread(target=asyncio.run, args=(app(),), daemon=True).start()
ready.wait()
sys.stderr.write("returning\\n")
"""


@pytest.mark.parametrize("reader", ["reading", "stalled"])
def test_interpreter_exit_with_a_pipeline_in_another_thread_does_not_hang(
    spawn: Spawn, pipe: Pipe, reader: str
) -> None:
    """The atexit flush writes what it can within shutdown_timeout; the process always exits."""
    shutdown_timeout = 2.0
    child = spawn(ATEXIT_APP, [str(shutdown_timeout)], stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    pipe_reader = PipeReader(pipe.read_end)
    if reader == "reading":
        pipe_reader.start()
    child.wait_line(lambda line: line == "returning")
    started = time.monotonic()
    assert child.wait(timeout=30) == 0, child.stderr
    assert time.monotonic() - started < shutdown_timeout + 5
    if reader == "reading":
        events = parse_lines(pipe_reader.join(timeout=10))
        assert [event["seq"] for event in events] == list(range(20_000))
