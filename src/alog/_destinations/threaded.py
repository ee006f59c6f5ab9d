"""Regular files and sockets: blocking writes in one daemon thread per stream.

Regular files are never "not ready", so only a thread keeps their writes off the event loop.
The thread is alog's own and a daemon (anyio's worker threads are not): a write stuck in the
kernel must not keep the process from exiting. Work is handed over a batch at a time, never
per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time

import anyio
import anyio.lowlevel

from .base import FdStream


class ThreadedFdStream(FdStream):
    """Blocking ``os.write`` calls in a daemon thread, in submission order."""

    def __init__(self, fd: int, description: str) -> None:
        super().__init__(fd, description)
        # A plain Lock, not the default RLock: a signal handler on a thread that holds it
        # must not re-enter it (see send_sync).
        self._cond = threading.Condition(threading.Lock())
        self._waiter: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_progress = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        # Started here, where no signal handler's flush can run yet: starting it lazily from
        # a send let a handler interrupting Thread() start a second writer thread.
        self._thread = threading.Thread(
            target=self._run, name=f"alog writer ({description})", daemon=True
        )
        self._thread.start()

    def _submit_locked(self, data: bytes | bytearray) -> int:
        """Queue ``data`` for the thread (lock held); returns the offset it ends at."""
        if self.done == self.submitted:  # idle until now: the stall clock starts here
            self._last_progress = time.monotonic()
        target = self._append(data)
        self._cond.notify_all()
        return target

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                data, offset = self._pending[0]
                self._writing = True
            try:
                view = memoryview(data)
                while offset < len(data):
                    written = os.write(self.fd, view[offset:])
                    offset += written
                    with self._cond:
                        self.done += written
                        self._last_progress = time.monotonic()
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits
                with self._cond:
                    self.error = error
                    self._writing = False
                    self._cond.notify_all()
                self._notify_loop()
                return
            with self._cond:
                self._pending.popleft()
                self._writing = False
                self._cond.notify_all()
            self._notify_loop()

    def _notify_loop(self) -> None:
        loop, waiter = self._loop, self._waiter
        if loop is not None and waiter is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
                loop.call_soon_threadsafe(_wake, waiter, None)

    async def send(self, item: bytes) -> None:
        # Plain asyncio futures and one long-lived watchdog timer, not a cancel scope per
        # batch: anyio's fail_after costs more than writing the batch (measured ~100 us).
        if self.error is not None:
            raise self.error
        loop = self._loop = asyncio.get_running_loop()
        with self._cond:
            target = self._submit_locked(item)
        while True:
            # Publish the waiter before checking, so no notification falls in between.
            self._waiter = waiter = loop.create_future()
            try:
                if self.error is not None:
                    raise self.error
                if self.done >= target:
                    return
                if self._watchdog is None:
                    self._watchdog = loop.call_later(self.stall_timeout, self._check_stall)
                await waiter
            finally:
                self._waiter = None

    def _check_stall(self) -> None:
        """Every ``stall_timeout``: fail the waiting send if the thread made no progress."""
        self._watchdog = None
        waiter = self._waiter
        if waiter is None or self._loop is None:
            return  # idle: the next send re-arms
        idle = time.monotonic() - self._last_progress
        if idle >= self.stall_timeout:
            _wake(waiter, TimeoutError(f"no progress for {idle:.1f} s"))
        else:
            self._watchdog = self._loop.call_later(self.stall_timeout - idle, self._check_stall)

    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        if self.error is not None:
            return False
        # Bounded: in a signal handler that interrupted this thread while it held the lock,
        # waiting forever would deadlock; by the deadline we give up instead.
        if not self._cond.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            if self._closed:
                return False
            target = self._submit_locked(data)
            return (
                self._cond.wait_for(
                    lambda: self.done >= target or self.error is not None,
                    timeout=max(0.0, deadline - time.monotonic()),
                )
                and self.error is None
            )
        finally:
            self._cond.release()

    async def aclose(self) -> None:
        if self._closed:
            return
        with self._cond:
            self._closed = True
            busy = self._writing or bool(self._pending)
            self._cond.notify_all()
        # A thread still inside write() may be stuck in the kernel: leave its fd open rather
        # than close it under the write (the number could be reused by someone else).
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if not busy:
            os.close(self.fd)
        await anyio.lowlevel.checkpoint()


def _wake(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if not waiter.done():
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
