"""Pipes, FIFOs and terminals: non-blocking writes driven by the event loop, no thread at all.

A write to a pipe is atomic only up to ``PIPE_BUF`` bytes, so several processes sharing one
stdout pipe never mix parts of lines only if each write is at most that long and ends on a
line boundary. A single line longer than ``PIPE_BUF`` is written whole, as far as the OS allows.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

import anyio
import anyio.lowlevel

from .._backend import keyboard_interrupt_safe
from .base import FdStream

_YIELD_EVERY = 256 * 1024
"""Bytes written between two yields to the loop, so a big batch never hogs it."""
_LONGEST_POLL = 3600.0
"""One ``poll`` waits at most this long (seconds), then the deadline is checked again: poll
takes an int of milliseconds, and a deadline far away (a year) would overflow it."""


class NonBlockingFdStream(FdStream):
    """Writes with ``O_NONBLOCK``: what fits now, then wait for the fd to become writable."""

    def __init__(
        self, fd: int, description: str, *, atomic_size: int | None, stall_timeout: float
    ) -> None:
        super().__init__(fd, description, stall_timeout=stall_timeout)
        self.atomic_size = atomic_size
        self._busy = False  # set while writing: a signal handler must not write in between

    @keyboard_interrupt_safe
    def _write_ready(self, budget: int) -> bool | None:
        """Write pending data until done (True), the fd is full (False) or ``budget`` is spent.

        Returns None when the budget ran out or a re-entrant call (a signal handler
        interrupting a write) had to back off.
        """
        if self._busy:
            return None
        self._busy = True
        try:
            pending = self._pending
            spent = 0
            while pending:
                data, offset = pending[0]
                end = len(data)
                size = end - offset
                limit = self.atomic_size
                if limit is not None and size > limit:
                    cut = data.rfind(b"\n", offset, offset + limit) + 1
                    if cut <= 0:
                        cut = data.find(b"\n", offset) + 1 or end
                    size = cut - offset
                try:
                    written = os.write(self.fd, memoryview(data)[offset : offset + size])
                except BlockingIOError:
                    return False
                offset += written
                self.done += written
                if offset >= end:
                    pending.popleft()
                else:
                    pending[0] = (data, offset)
                spent += written
                if spent >= budget:
                    return None if pending else True
        except OSError as error:
            self.error = error
            raise
        finally:
            self._busy = False
        return True

    async def wait_sent(self, target: int) -> None:
        while self.done < target:
            state = self._write_ready(_YIELD_EVERY)
            if self.done >= target:
                break
            if state is False:
                with anyio.fail_after(self.stall_timeout):
                    await anyio.wait_writable(self.fd)
            else:
                await anyio.lowlevel.checkpoint()

    @keyboard_interrupt_safe
    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        if self.error is not None:
            return False
        self._append(data)
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        while self._pending:
            try:
                state = self._write_ready(1 << 62)
            except OSError:
                return False
            if state is None:
                return False  # re-entered from a signal handler: leave it to the writer
            if state:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            poller.poll(min(remaining, _LONGEST_POLL) * 1000)
        return True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):  # already closed under us (EBADF)
                os.close(self.fd)
