"""Helpers for the reliability suite: child processes with real pipes, and strict line parsing.

Everything here runs alog in subprocesses, because what is being proven (exit status, RSS,
signals, shared pipes) only exists at the process level.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "examples" / "incident.py"


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """Every line a JSON object, the last one terminated: fails on any torn or forged line."""
    assert not data or data.endswith(b"\n"), f"output ends mid-line: {data[-200:]!r}"
    events = []
    for line in data.split(b"\n")[:-1]:
        try:
            event = json.loads(line)
        except ValueError:
            pytest.fail(f"not one JSON object per line: {line[:300]!r}")
        assert isinstance(event, dict), line[:300]
        events.append(event)
    return events


def parse_report(line: str) -> dict[str, str]:
    """``incident: phase=report t=1.0 rss_kib=...`` as a dict."""
    return dict(pair.split("=", 1) for pair in line.split()[1:])


class PipeReader:
    """Reads one pipe to the end in a thread, only once told to start (a stalled reader)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PipeReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        while chunk := os.read(self.fd, 1 << 20):
            self.data += chunk

    def join(self, timeout: float) -> bytes:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the pipe's writers never closed it"
        return bytes(self.data)


class Child:
    """A subprocess whose stderr lines are collected as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first stderr line matching ``predicate``; fails if none comes in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self._thread.is_alive() and self.proc.poll() is not None):
                    pytest.fail(f"no such line on stderr; got: {self.stderr[-2000:]}")
                self._cond.wait(min(remaining, 0.5))

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        self._thread.join(10)
        if self.proc.stderr is not None and not self._thread.is_alive():
            self.proc.stderr.close()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def report(self, phase: str) -> dict[str, str]:
        return parse_report(self.wait_line(lambda line: f"phase={phase} " in line))


Spawn = Callable[..., Child]


@pytest.fixture(name="spawn")
def fixture_spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start a script (a path, or source code) with the given stdout; killed at teardown."""
    children: list[Child] = []

    def spawn(
        script: Path | str,
        args: Sequence[str] = (),
        *,
        stdout: int | None = subprocess.DEVNULL,
        stdin: int | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> Child:
        if isinstance(script, str):
            path = tmp_path / f"child{len(children)}.py"
            path.write_text(textwrap.dedent(script))
            script = path
        proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            stdin=stdin,
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            pass_fds=tuple(pass_fds),
        )
        child = Child(proc)
        children.append(child)
        return child

    yield spawn
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGKILL)
            child.proc.wait(10)
        child.close()


class Pipe:
    """A real pipe whose ends are closed once, exactly (a double close could hit a reused fd)."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        self._open = {self.read_end, self.write_end}

    def close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self.close(fd)


@pytest.fixture(name="pipe")
def fixture_pipe() -> Iterator[Pipe]:
    """A real pipe; whatever the test left open is closed after it."""
    pipe = Pipe()
    yield pipe
    pipe.close_all()


__all__ = [
    "INCIDENT",
    "ROOT",
    "Child",
    "Pipe",
    "PipeReader",
    "Spawn",
    "parse_lines",
    "parse_report",
]
