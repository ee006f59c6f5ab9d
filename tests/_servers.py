"""Real servers in subprocesses for the integration tests: started on 127.0.0.1, port 0."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

READY_TIMEOUT = 20.0


class ServerProcess:
    """A server subprocess: its port (parsed from stderr), stderr as read so far, exit."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        ready: str,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        read_stdout: bool = False,
        process_group: bool = False,
        closable_stdout: bool = False,
    ) -> None:
        self._ready = re.compile(ready)
        # A process group of its own: kill() then also ends the workers a supervisor or a
        # master started (orphans would hold the pipes open, and the readers with them).
        self._group = process_group
        self._lines: list[str] = []
        self._out: list[str] = []
        self._port: int | None = None
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=process_group,
        )
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stderr, self._lines), daemon=True
        )
        self._reader.start()
        self._out_reader: threading.Thread | None = None
        self._close_stdout = threading.Event()
        if stdout == subprocess.PIPE and closable_stdout:
            self._out_reader = threading.Thread(
                target=self._read_until_closed, args=(self.proc.stdout,), daemon=True
            )
            self._out_reader.start()
        elif stdout == subprocess.PIPE and read_stdout:
            self._out_reader = threading.Thread(
                target=self._read, args=(self.proc.stdout, self._out), daemon=True
            )
            self._out_reader.start()

    def _read(self, stream: IO[bytes] | None, lines: list[str]) -> None:
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                lines.append(line)
                match = self._ready.search(line)
                if match and self._port is None:
                    self._port = int(match.group(1))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_until_closed(self, stream: IO[bytes] | None) -> None:
        """Read stdout as :meth:`_read` does, until :meth:`close_stdout` closes it."""
        assert stream is not None
        fd = stream.fileno()
        pending = b""
        while not self._close_stdout.is_set():
            if not select.select([fd], [], [], 0.02)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                self._take(raw.decode("utf-8", "replace"), self._out)
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def _take(self, line: str, lines: list[str]) -> None:
        with self._cond:
            lines.append(line)
            match = self._ready.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
            self._cond.notify_all()

    def close_stdout(self) -> None:
        """The reader of stdout goes away (with ``closable_stdout``): the pipe is closed."""
        self._close_stdout.set()
        assert self._out_reader is not None
        self._out_reader.join(5)
        assert self.proc.stdout is not None and self.proc.stdout.closed

    def wait_for_stdout(self, predicate: Callable[[list[str]], bool], timeout: float) -> None:
        """Wait until ``predicate(stdout lines)`` holds; fails with stderr if it never does."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._out), timeout=timeout):
                raise AssertionError(
                    "stdout never got there:\n" + "\n".join([*self._out, *self._lines])
                )

    @property
    def port(self) -> int:
        """Wait for the ready line; fails with the stderr so far if the server died."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._port is not None or self.proc.poll() is not None,
                timeout=READY_TIMEOUT,
            )
            if self._port is None:
                raise AssertionError("server did not start:\n" + "\n".join(self._lines))
            return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr_lines(self) -> list[str]:
        """Everything read from stderr; complete once :meth:`wait` returned."""
        with self._cond:
            return list(self._lines)

    def stdout_lines(self) -> list[str]:
        """Stdout as read so far (with ``read_stdout``); complete once :meth:`wait` returned."""
        with self._cond:
            return list(self._out)

    def _join(self) -> None:
        self._reader.join(5)
        if self._out_reader is not None:
            self._out_reader.join(5)

    def wait(self, timeout: float) -> int:
        """The exit status, waiting at most ``timeout`` (then the process is killed)."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._join()
            raise AssertionError(
                f"server still running after {timeout} s:\n" + "\n".join(self._lines)
            ) from None
        self._join()
        return status

    def stop(self) -> int:
        """Ask for a graceful stop (SIGINT, as Ctrl+C) and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        return self.wait(15)

    def kill(self) -> None:
        """End the process if still running and close its pipes (always call this)."""
        self._close_stdout.set()
        if self._group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def refuses_connections(port: int, deadline: float = 10.0) -> bool:
    """Does 127.0.0.1:port refuse connections (soon, within ``deadline`` seconds)?"""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            return True
        time.sleep(0.05)
    return False


UVICORN_READY = r"Uvicorn running on http://127\.0\.0\.1:(\d+)"
AIOHTTP_READY = r"(?:listening on port |Running on http://127\.0\.0\.1:)(\d+)"


def uvicorn_args(target: str, *, loop: str) -> list[str]:
    return [
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--loop",
        loop,
        "--no-access-log",
    ]
