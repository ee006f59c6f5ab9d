"""The common part of fd streams: a FIFO of pending bytes and counters of progress."""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio.abc

if TYPE_CHECKING:
    from ..typing import Destination


@runtime_checkable
class _Opens(Protocol):
    async def open(self) -> anyio.abc.ByteSendStream: ...


class FdStream(anyio.abc.ByteSendStream):
    """A byte stream over a file descriptor that alog owns (a dup or a reopen).

    ``submitted`` and ``done`` count bytes handed in and bytes the OS accepted; data is written
    in order whether the writer task (``send``) or a synchronous flush (``send_sync``) drives
    it. ``stall_timeout`` bounds how long a write may make no progress.
    """

    def __init__(self, fd: int, description: str, *, stall_timeout: float = 10.0) -> None:
        self.fd = fd
        self.description = description
        self.stall_timeout = stall_timeout
        self.submitted = 0
        self.done = 0
        self.error: BaseException | None = None
        self._pending: deque[tuple[bytes | bytearray, int]] = deque()  # (data, offset)
        self._closed = False

    def _append(self, data: bytes | bytearray) -> int:
        if data:
            self._pending.append((data, 0))
            self.submitted += len(data)
        return self.submitted

    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        """Write ``data`` after everything pending, blocking until done or ``deadline``."""
        raise NotImplementedError

    def is_same_file(self, fd: int) -> bool:
        """Does this stream write where ``fd`` points (so a message there would be lost too)?"""
        try:
            mine, theirs = os.fstat(self.fd), os.fstat(fd)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def check_destination(destination: object) -> None:
    """Fail at configuration time on something that is not a destination."""
    if isinstance(destination, anyio.abc.ByteSendStream | _Opens):
        return
    raise TypeError(
        "a destination is alog.Stdout(), alog.Stderr(), alog.File(path), an object with an "
        f"async open() returning an anyio ByteSendStream, or such a stream; got {destination!r}"
    )


async def open_destination(
    destination: Destination | anyio.abc.ByteSendStream, *, write_timeout: float
) -> anyio.abc.ByteSendStream:
    """The stream for a destination object (built-in or user's), or the stream itself."""
    if isinstance(destination, anyio.abc.ByteSendStream):
        return destination
    open_stream = getattr(destination, "open_stream", None)
    if open_stream is not None:  # a built-in: it takes the stall deadline
        stream: anyio.abc.ByteSendStream = await open_stream(write_timeout=write_timeout)
        return stream
    return await destination.open()


def destination_options(destination: object) -> tuple[str | int | None, bool]:
    """A destination's ``level=`` and ``required=`` (a user's object may have neither)."""
    level = getattr(destination, "level", None)
    required = getattr(destination, "required", True)
    if not isinstance(required, bool):
        raise TypeError(f"required= must be True or False, got {required!r} on {destination!r}")
    if level is not None and not isinstance(level, str | int):
        raise TypeError(f"level= must be a level name or number, got {level!r} on {destination!r}")
    return level, required
