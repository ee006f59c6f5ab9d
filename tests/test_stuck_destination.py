"""A destination stuck in a way no cancel reaches still fails on time, and the process ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import anyio.abc
import pytest

import alog

from .conftest import RunScript

_STUCK_STREAM = """
    import asyncio, sys, time
    import anyio, anyio.abc
    import alog

    class Stuck(anyio.abc.ByteSendStream):
        async def send(self, item: bytes) -> None:
            await anyio.to_thread.run_sync(time.sleep, 1000)  # not abandonable by a cancel
        async def send_eof(self) -> None: ...
        async def aclose(self) -> None: ...
"""

_STUCK = (
    _STUCK_STREAM
    + """
    async def main() -> None:
        log = alog.get_logger("app")
        async with alog.run(Stuck(), write_timeout=1.0):
            while True:
                log.info("tick")
                await anyio.sleep(0.01)

    {runner}
"""
)

RUNNERS = [
    pytest.param("asyncio.run(main())", id="asyncio"),
    pytest.param("import uvloop; uvloop.run(main())", id="uvloop"),
    pytest.param("anyio.run(main, backend='trio')", id="trio"),
]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_send_stuck_in_a_worker_thread_fails_within_write_timeout(
    run_script: RunScript, runner: str
) -> None:
    """The review saw no stderr line and no exit, for ever; now: one line, status 1, soon."""
    started = time.monotonic()
    result = run_script(_STUCK.format(runner=runner), timeout=30)
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("alog:")]
    assert "no progress writing to" in line, stderr
    assert "Traceback" not in stderr
    assert elapsed < 1.0 + 2.0 + 4.0  # write_timeout, the exit watch's grace, start-up


class _Stuck(anyio.abc.ByteSendStream):
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    async def send(self, item: bytes) -> None:
        await anyio.to_thread.run_sync(self.release.wait)

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class _Optional:
    required = False

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    async def open(self) -> anyio.abc.ByteSendStream:
        return _Stuck(self.release)

    def __repr__(self) -> str:
        return "stuck"


async def test_an_optional_stuck_destination_is_given_up_and_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """required=False: the app keeps logging to the file; the stuck one counts its losses."""
    release = threading.Event()
    path = tmp_path / "main.log"
    log = alog.get_logger("app")
    try:
        async with alog.run(alog.File(path), _Optional(release), write_timeout=0.5) as pipeline:
            started = time.monotonic()
            while pipeline.statistics().destinations[1].state != "retrying":
                assert time.monotonic() - started < 5, "never given up"
                log.info("tick")
                await anyio.sleep(0.01)
            log.info("after")
    finally:
        release.set()  # let the abandoned worker thread end with the test
    stuck = pipeline.statistics().destinations[1]
    assert stuck.last_error is not None
    assert "no progress writing to stuck" in stuck.last_error
    assert stuck.written == 0
    assert '"msg":"after"' in path.read_text()
    assert capfd.readouterr().err.count("alog: optional destination stuck failed") == 1


_OPTIONAL_STUCK = (
    _STUCK_STREAM
    + """
    class Optional:
        required = False
        async def open(self) -> anyio.abc.ByteSendStream:
            return Stuck()
        def __repr__(self) -> str:
            return "stuck"

    async def main() -> None:
        log = alog.get_logger("app")
        async with alog.run(alog.File("app.log"), Optional(), write_timeout=0.5) as pipeline:
            while pipeline.statistics().destinations[1].state != "retrying":
                log.info("tick")
                await anyio.sleep(0.01)
            log.info("after")
        print("block done", flush=True)
        {ending}

    {runner}
"""
)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("ending", "status"),
    [
        pytest.param("", 0, id="clean"),
        pytest.param("raise RuntimeError('app bug')", 1, id="raises"),
    ],
)
def test_a_stuck_optional_destination_does_not_hold_the_exit(
    run_script: RunScript, runner: str, ending: str, status: int
) -> None:
    """The app ends while an abandoned send is stuck in a thread: the process still exits.

    Before, the worker thread (asyncio) or the stuck task (trio: ``trio.run`` waits for it)
    held the process for ever. Now it exits after a 2 s grace, saying why, with the status
    the application's end implies.
    """
    started = time.monotonic()
    result = run_script(
        _OPTIONAL_STUCK.format(runner=runner, ending=ending),
        timeout=30,
    )
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == status, stderr
    assert result.stdout.decode().splitlines() == ["block done"]
    assert stderr.count("alog: optional destination stuck failed") == 1, stderr
    assert "alog: exiting: the send of optional destination stuck never returned" in stderr
    assert ("RuntimeError: app bug" in stderr) == bool(status)
    assert elapsed < 0.5 + 2.0 + 6.0  # write_timeout, the grace, start-up and the close


@pytest.mark.parametrize(
    ("runner", "status"),
    [
        pytest.param("asyncio.run(main())", 0, id="asyncio"),
        pytest.param("import uvloop; uvloop.run(main())", 0, id="uvloop"),
        pytest.param("anyio.run(main, backend='trio')", 1, id="trio"),
    ],
)
def test_a_stuck_optional_destination_hides_a_system_exit_code(
    run_script: RunScript, runner: str, status: int
) -> None:
    """The exit watch's limit: it ends the process on time but cannot see ``sys.exit(3)``.

    It sees an uncaught error through ``sys.excepthook`` (asyncio) or trio's main task: a
    ``SystemExit`` calls no hook (status 0), and under trio it is the main task's error (1).
    """
    started = time.monotonic()
    result = run_script(_OPTIONAL_STUCK.format(runner=runner, ending="sys.exit(3)"), timeout=30)
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == status, stderr
    assert "alog: exiting: the send of optional destination stuck never returned" in stderr
    assert elapsed < 0.5 + 2.0 + 6.0
