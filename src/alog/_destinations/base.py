"""The common part of fd streams: a FIFO of pending bytes and counters of progress."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio.abc

if TYPE_CHECKING:
    from .._backend import TrioWakeup, Wakeup
    from ..typing import Destination


@runtime_checkable
class _Opens(Protocol):
    async def open(self) -> anyio.abc.ByteSendStream: ...


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """What a connected destination's link has been through (sockets, syslog, journald).

    A stream that has one offers ``connection_statistics()``; the writer reads it into
    :class:`~alog.DestinationStatistics`.
    """

    connected: bool
    """Is a connection open now (as far as the last write or check knew)?"""
    reconnects: int
    """Connections opened after the first one."""
    truncated: int
    """Messages cut to a datagram's size limit (syslog over UDP or a Unix datagram socket)."""
    last_error: str | None
    """The last connection error, as text."""


class FdStream(anyio.abc.ByteSendStream):
    """A byte stream over a file descriptor that alog owns (a dup or a reopen).

    ``submitted`` and ``done`` count bytes handed in and bytes the OS accepted; data is written
    in order whether the writer task (``send``) or a synchronous flush (``send_sync``) drives
    it. ``stall_timeout`` bounds how long a write may make no progress.

    The writer task may split ``send`` in two: ``submit`` (synchronous: the data is taken, in
    order, and the offset it ends at is returned, so a batch can be read from the queue,
    entered in the books and handed over with no await in between) and ``wait_sent``.
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

    def submit(self, data: bytes | bytearray) -> int:
        """Take ``data`` after everything pending; the offset it ends at (the writer task).

        Raises the stream's error if it failed already.
        """
        if self.error is not None:
            raise self.error
        return self._append(data)

    async def wait_sent(self, target: int) -> None:
        """Wait until the OS has accepted every byte before ``target`` (from ``submit``)."""
        raise NotImplementedError

    async def wait_progress(self, target: int, woken: Wakeup | TrioWakeup) -> None:
        """A stream that ``writes_ahead``: wait until every byte before ``target`` is written,
        some more of it is, or ``woken`` is set; raises as :meth:`wait_sent` does."""
        raise NotImplementedError

    async def send(self, item: bytes) -> None:
        await self.wait_sent(self.submit(item))

    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        """Write ``data`` after everything pending, blocking until done or ``deadline``.

        True once all of it is written. False otherwise, but the data is taken all the same
        (it is written in order later, by whoever drives the stream) unless the stream has
        failed (``error``) or is closed: then ``submitted`` is unchanged. Never call it where
        :meth:`reentered` is True.
        """
        raise NotImplementedError

    def take_refused(self, upto: int) -> int:
        """Events taken and finished before offset ``upto`` that the destination refused.

        A stream that sends each line on its own (journald) can see one refused while the
        rest of the batch goes through; the writer counts those as undelivered, not written.
        Each refusal is reported once; the default stream refuses nothing.
        """
        return 0

    async def reopen(self) -> None:
        """Open the destination again by its name, after what it has taken is written.

        Streams with a path (:class:`~alog._destinations.file.FileStream`) do; others have
        nothing to reopen and return at once. Raises the error if the reopen failed.
        """
        return

    writes_ahead = False
    """May the writer hand over the next batch before this one is written? Then it waits
    with ``wait_progress(target, woken)`` (see :class:`ThreadedFdStream`)."""

    checks_idle = False
    """Should the writer call :meth:`check_idle` every second while it has nothing to send?"""

    def check_idle(self) -> None:
        """The writer is idle (a socket looks for its peer's close here)."""

    def reentered(self) -> bool:
        """Is this thread inside this stream's own code (a signal handler interrupted it)?

        Then ``send_sync`` could not take data without waiting for itself: a flush there must
        leave the queue alone and report what it could not write.
        """
        return False

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
