"""The built-in destinations: stdout, stderr and files, each opened as the fastest safe stream.

- pipes, FIFOs, terminals, character devices: a non-blocking descriptor driven by the loop;
  on Linux, stdout/stderr are reopened through ``/proc/self/fd`` so the process's own fd 1/2
  (and ``print``) stay blocking;
- regular files and sockets: a blocking descriptor written by a daemon thread.

Each takes ``level=`` (what this destination receives, default everything the loggers let
through) and ``required=`` (does its failure stop the application; default True).
"""

from __future__ import annotations

import math
import os
import select
import stat
from datetime import timedelta
from pathlib import Path
from typing import Literal, final

import anyio.to_thread

from .._console import Renderer, want_colors
from .base import FdStream
from .console import ConsoleStream
from .file import FileStream, Rotation, open_file, release_lock
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


Format = Literal["json", "console", "auto"]


def _console_for(
    fd: int, description: str, *, colors: bool | None, stall_timeout: float
) -> FdStream:
    own = os.dup(fd)
    os.set_blocking(own, True)
    renderer = Renderer(colors=want_colors(fd, colors))
    return ConsoleStream(own, description, stall_timeout=stall_timeout, renderer=renderer)


class _StdStream(_Builtin):
    _fd: int
    _name: str

    def __init__(
        self,
        *,
        level: str | int | None = None,
        required: bool = True,
        format: Format = "json",
    ) -> None:
        super().__init__(level=level, required=required)
        if format not in ("json", "console", "auto"):
            raise ValueError(f"format= is 'json', 'console' or 'auto', got {format!r}")
        self.format: Format = format

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Open a stream of alog's own onto the process's stdout/stderr."""
        console = self.format == "console" or (self.format == "auto" and _isatty(self._fd))
        if console:
            return _console_for(self._fd, self._name, colors=None, stall_timeout=write_timeout)
        return _stream_for(self._fd, self._name, reopen=True, stall_timeout=write_timeout)

    def _options(self) -> str:
        options = super()._options()
        if self.format != "json":
            options = ", ".join(filter(None, [f"format={self.format!r}", options]))
        return options

    def __repr__(self) -> str:
        return f"alog.{type(self).__name__}({self._options()})"


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


@final
class Stdout(_StdStream):
    """The process's standard output (the default destination).

    ``format="auto"`` renders for people (as :class:`Console` does) when stdout is a
    terminal, and writes JSON lines otherwise (a pipe, a file, a container's log).
    """

    _fd = 1
    _name = "stdout"


@final
class Stderr(_StdStream):
    """The process's standard error (``format=`` as for :class:`Stdout`)."""

    _fd = 2
    _name = "stderr"


@final
class Console(_Builtin):
    """Events for people: a short time, the level in colour, the message, ``key=value``.

    Writes to ``stream`` (``"stdout"`` or ``"stderr"``). Colours: ``colors=None`` decides
    from ``NO_COLOR``, ``FORCE_COLOR`` and whether the stream is a terminal. Each JSON line
    is rendered in the stream's own thread, tracebacks with their source lines.
    """

    def __init__(
        self,
        stream: Literal["stdout", "stderr"] = "stdout",
        *,
        colors: bool | None = None,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(level=level, required=required)
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream is 'stdout' or 'stderr', got {stream!r}")
        if colors is not None and not isinstance(colors, bool):
            raise TypeError(f"colors= must be True, False or None, got {colors!r}")
        self.stream = stream
        self.colors = colors

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """A thread of its own writing to a duplicate of fd 1 or 2."""
        fd = 1 if self.stream == "stdout" else 2
        return _console_for(fd, self.stream, colors=self.colors, stall_timeout=write_timeout)

    def __repr__(self) -> str:
        parts = [repr(self.stream)] if self.stream != "stdout" else []
        if self.colors is not None:
            parts.append(f"colors={self.colors}")
        options = self._options()
        if options:
            parts.append(options)
        return f"alog.Console({', '.join(parts)})"


@final
class File(_Builtin):
    """A file opened for appending (created if missing, ``0o644`` before the umask).

    It follows its path: reopened on ``pipeline.reopen()`` (and SIGHUP with
    ``alog.run(reopen_on_sighup=True)``) and when the path is moved or deleted, so logrotate's
    ``create`` mode works. ``rotate_bytes=`` / ``rotate_every=`` rotate it in-process
    instead: ``app.log`` is renamed ``app.log.1`` (``app.log.1.gz`` with ``compress=True``),
    older ones shift up, and ``keep`` rotated files are kept. One process only.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        /,
        *,
        level: str | int | None = None,
        required: bool = True,
        rotate_bytes: int | None = None,
        rotate_every: float | timedelta | None = None,
        keep: int | None = None,
        compress: bool = False,
    ) -> None:
        super().__init__(level=level, required=required)
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
        self.path = Path(path)
        self.rotation = _rotation(rotate_bytes, rotate_every, keep, compress)

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Open the file (in a thread: opening can block too)."""
        opened = await anyio.to_thread.run_sync(open_file, self.path, self.rotation)
        try:
            if stat.S_ISREG(opened.status.st_mode):
                os.set_blocking(opened.fd, True)
                return FileStream(
                    opened, str(self.path), rotation=self.rotation, stall_timeout=write_timeout
                )
            return _stream_for(opened.fd, str(self.path), reopen=False, stall_timeout=write_timeout)
        except BaseException:
            os.close(opened.fd)
            if opened.lock_fd is not None:
                release_lock(opened.lock_fd)
            raise

    def __repr__(self) -> str:
        parts = [repr(str(self.path))]
        rotation = self.rotation
        if rotation is not None:
            if rotation.max_bytes is not None:
                parts.append(f"rotate_bytes={rotation.max_bytes}")
            if rotation.every is not None:
                parts.append(f"rotate_every={rotation.every:g}")
            parts.append(f"keep={rotation.keep}")
            if rotation.compress:
                parts.append("compress=True")
        options = self._options()
        if options:
            parts.append(options)
        return f"alog.File({', '.join(parts)})"


DEFAULT_KEEP = 5
"""Rotated files kept when ``keep=`` is not given."""


def _rotation(
    rotate_bytes: object, rotate_every: object, keep: object, compress: object
) -> Rotation | None:
    """``File``'s rotation options, checked at construction."""
    if rotate_bytes is not None:
        if isinstance(rotate_bytes, bool) or not isinstance(rotate_bytes, int):
            raise TypeError(f"rotate_bytes= must be an int (bytes), got {rotate_bytes!r}")
        if rotate_bytes <= 0:
            raise ValueError(f"rotate_bytes= must be positive, got {rotate_bytes!r}")
    every: float | None = None
    if rotate_every is not None:
        if isinstance(rotate_every, timedelta):
            every = rotate_every.total_seconds()
        elif isinstance(rotate_every, int | float) and not isinstance(rotate_every, bool):
            every = float(rotate_every)
        else:
            raise TypeError(
                "rotate_every= must be seconds (an int or float) or a datetime.timedelta, "
                f"got {rotate_every!r}"
            )
        if not every > 0 or math.isinf(every):
            raise ValueError(
                f"rotate_every= must be a positive finite duration, got {rotate_every!r}"
            )
    if keep is not None:
        if isinstance(keep, bool) or not isinstance(keep, int):
            raise TypeError(f"keep= must be an int (rotated files kept), got {keep!r}")
        if keep < 1:
            raise ValueError(f"keep= must be at least 1, got {keep!r}")
    if not isinstance(compress, bool):
        raise TypeError(f"compress= must be True or False, got {compress!r}")
    if rotate_bytes is None and every is None:
        if keep is not None or compress:
            raise ValueError(
                "keep= and compress= apply to rotation: give rotate_bytes= or rotate_every= too"
            )
        return None
    return Rotation(
        max_bytes=rotate_bytes,
        every=every,
        keep=DEFAULT_KEEP if keep is None else keep,
        compress=compress,
    )
