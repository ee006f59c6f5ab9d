"""The built-in destinations: stdout, stderr and files, each opened as the fastest safe stream.

- pipes, FIFOs, terminals, character devices: a non-blocking descriptor driven by the loop;
  on Linux, stdout/stderr are reopened through ``/proc/self/fd`` so the process's own fd 1/2
  (and ``print``) stay blocking;
- regular files and sockets: a blocking descriptor written by a daemon thread.

Each takes ``level=`` (what this destination receives, default everything the loggers let
through) and ``required=`` (does its failure stop the application; default True).
"""

from __future__ import annotations

import os
import select
import stat
from pathlib import Path
from typing import final

import anyio.to_thread

from .base import FdStream
from .nonblocking import NonBlockingFdStream
from .threaded import ThreadedFdStream


def _stream_for(fd: int, description: str, *, reopen: bool, stall_timeout: float) -> FdStream:
    """Pick the stream kind for ``fd``; the stream owns a descriptor of its own."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        atomic = select.PIPE_BUF if stat.S_ISFIFO(mode) else None
        if not reopen:
            os.set_blocking(fd, False)
            return NonBlockingFdStream(
                fd, description, atomic_size=atomic, stall_timeout=stall_timeout
            )
        try:
            # A new open file description: O_NONBLOCK on it leaves fd 1 itself blocking.
            own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            return NonBlockingFdStream(
                own, description, atomic_size=atomic, stall_timeout=stall_timeout
            )
    own = fd if not reopen else os.dup(fd)
    os.set_blocking(own, True)
    return ThreadedFdStream(own, description, stall_timeout=stall_timeout)


class _Builtin:
    """``level=`` and ``required=``, shared by the built-in destinations."""

    def __init__(self, *, level: str | int | None, required: bool) -> None:
        if level is not None and (isinstance(level, bool) or not isinstance(level, str | int)):
            raise TypeError(f"level= must be a level name or number, got {level!r}")
        if not isinstance(required, bool):
            raise TypeError(f"required= must be True or False, got {required!r}")
        self.level = level
        self.required = required

    async def open(self) -> FdStream:
        """Open the stream (the :class:`alog.typing.Destination` protocol)."""
        return await self.open_stream(write_timeout=10.0)

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        raise NotImplementedError

    def _options(self) -> str:
        parts = []
        if self.level is not None:
            parts.append(f"level={self.level!r}")
        if not self.required:
            parts.append("required=False")
        return ", ".join(parts)


class _StdStream(_Builtin):
    _fd: int
    _name: str

    def __init__(self, *, level: str | int | None = None, required: bool = True) -> None:
        super().__init__(level=level, required=required)

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Open a stream of alog's own onto the process's stdout/stderr."""
        return _stream_for(self._fd, self._name, reopen=True, stall_timeout=write_timeout)

    def __repr__(self) -> str:
        return f"alog.{type(self).__name__}({self._options()})"


@final
class Stdout(_StdStream):
    """The process's standard output (the default destination)."""

    _fd = 1
    _name = "stdout"


@final
class Stderr(_StdStream):
    """The process's standard error."""

    _fd = 2
    _name = "stderr"


@final
class File(_Builtin):
    """A file opened for appending (created if missing, ``0o644`` before the umask)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        /,
        *,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(level=level, required=required)
        self.path = Path(path)

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Open the file (in a thread: opening can block too)."""
        # O_NONBLOCK on open: a FIFO nobody reads fails at once (ENXIO) instead of hanging.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
        fd = await anyio.to_thread.run_sync(os.open, self.path, flags, 0o644)
        try:
            return _stream_for(fd, str(self.path), reopen=False, stall_timeout=write_timeout)
        except BaseException:
            os.close(fd)
            raise

    def __repr__(self) -> str:
        options = self._options()
        return f"alog.File({str(self.path)!r}{', ' + options if options else ''})"
