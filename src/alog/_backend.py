"""The one seam between alog and the event loop it runs on: asyncio (uvloop too) or trio.

Everything else speaks anyio. What anyio does not offer, or offers at a cost measured too high
for a per-batch path, is here, once per backend:

- ``Loop.call_soon_threadsafe``: fire and forget a callback onto the loop from any thread
  (never blocks; ``False`` once the loop is gone). anyio's ``from_thread`` waits for the result.
- ``Wakeup``: a level-triggered flag a task can wait on with a timeout, set from the loop or
  (through ``Loop``) from other threads. Plain asyncio futures and one timer per wait: an
  anyio cancel scope per batch cost ~100 us on asyncio here, more than the write.
- ``Loop.rescue_native_cancel``: asyncio's ``asyncio.run`` cancels every task left when the
  main coroutine returns, with ``Task.cancel()``, which no anyio shield stops. The pipeline
  drains anyway; trio has no such thing.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any


class Wakeup:
    """A flag set by producers and waited on by one task (asyncio)."""

    __slots__ = ("_flag", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Loop thread only."""
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set (True, and the flag is cleared) or ``timeout`` passes (False)."""
        if not self._flag:
            loop = self._loop
            self._waiter = waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._flag:
                return False
        self._flag = False
        return True


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class TrioWakeup:
    """The same flag for trio: a fresh ``trio.Event`` per wait, a cheap cancel scope."""

    __slots__ = ("_event", "_flag", "_trio")

    def __init__(self) -> None:
        import trio

        self._trio: Any = trio
        self._flag = False
        self._event: Any = None

    def set(self) -> None:
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        if not self._flag:
            self._event = event = self._trio.Event()
            try:
                with self._trio.move_on_after(float("inf") if timeout is None else timeout):
                    await event.wait()
            finally:
                self._event = None
            if not self._flag:
                return False
        self._flag = False
        return True


class Loop:
    """The loop a pipeline runs on, captured on its thread when the pipeline starts."""

    def __init__(self) -> None:
        self.thread_ident = threading.get_ident()
        self.name: str
        self._asyncio: asyncio.AbstractEventLoop | None = None
        self._trio_token: Any = None
        try:
            self._asyncio = asyncio.get_running_loop()
            self.name = "asyncio"
        except RuntimeError:
            trio = sys.modules.get("trio")
            if trio is None:
                raise RuntimeError("alog runs under asyncio (uvloop too) or trio") from None
            self._trio_token = trio.lowlevel.current_trio_token()
            self.name = "trio"
        self._closed = False

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread_ident

    def new_wakeup(self) -> Wakeup | TrioWakeup:
        if self._asyncio is not None:
            return Wakeup(self._asyncio)
        return TrioWakeup()

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` on the loop soon; from any thread; False if the loop is gone."""
        try:
            if self._asyncio is not None:
                self._asyncio.call_soon_threadsafe(callback)
            else:
                self._trio_token.run_sync_soon(callback)
        except RuntimeError:  # asyncio: loop closed; trio: RunFinishedError is one
            return False
        return True

    def running(self) -> bool:
        """Can the loop still run callbacks (for a flush from another thread or atexit)?"""
        if self._asyncio is not None:
            return self._asyncio.is_running() and not self._asyncio.is_closed()
        return not self._closed and self.call_soon_threadsafe(_nothing)

    def mark_closed(self) -> None:
        self._closed = True

    def rescue_native_cancel(self, scope_cancelled: bool) -> bool:
        """In an ``except CancelledError``: was it asyncio's own ``Task.cancel()``, now undone?

        True means carry on (the pipeline then closes as usual, within its timeout).
        """
        if self._asyncio is None or scope_cancelled:
            return False
        task = asyncio.current_task()
        if task is None:
            return False
        task.uncancel()
        return True


def _nothing() -> None:
    return None
