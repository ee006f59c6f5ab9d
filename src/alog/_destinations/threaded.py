"""Regular files and sockets: blocking writes in one daemon thread per stream.

Regular files are never "not ready", so only a thread keeps their writes off the event loop.
The thread is alog's own and a daemon (anyio's worker threads are not): a write stuck in the
kernel must not keep the process from exiting. Work is handed over a batch at a time, never
per event.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel

from .._backend import Loop, keyboard_interrupt_safe
from .base import FdStream

if TYPE_CHECKING:
    from .._backend import TrioWakeup, Wakeup

_PIECE = 1 << 20
"""The most one ``os.write`` call is given."""

_GIL_CHECK: Final = 0.002
"""How often a writer waiting for the thread checks that the thread is getting anywhere."""

_GIL_HANDOVER: Final = 50e-6

_LOOK: Final = _GIL_CHECK
"""How often a writer whose batches are in flight looks at the thread (``wait_progress``).

Not longer: a thread waiting for the GIL beyond the switch interval (5 ms) forces a switch
in the middle of the loop's work, which on a busy machine costs the loop milliseconds (with
a 5 ms look, a run of 100,000 events under load took 2x as long).
"""


def _hand_over_the_gil() -> None:
    """Let the writer thread have the GIL: it may wait for it for as long as the loop is busy.

    CPython hands the GIL to a waiting thread only after a switch interval in which the
    running thread never released it; a busy event loop releases and retakes it at every
    ``select(0)``, and always wins the race to retake it. So a file's writer thread, back
    from ``os.write``, could wait for the whole of a logging burst (measured: one 16 KB write
    in 1.2 s) while its queue filled. A real wait of 50 us on the loop, at most every 2 ms
    and only while the thread has data it has made no progress on, lets it through.
    """
    select.select([], [], [], _GIL_HANDOVER)


class ThreadedFdStream(FdStream):
    """Blocking ``os.write`` calls in a daemon thread, in submission order.

    The writer task keeps the thread busy: it hands over the next batch while the thread is
    still writing (``writes_ahead``), and waits with :meth:`wait_progress`, which the thread
    does not wake; only :meth:`wait_sent` has the thread wake the loop. So at full speed the
    thread goes from batch to batch without sleeping, and a batch costs a hand-off to the
    thread only when it was asleep, none back.
    """

    writes_ahead = True

    def __init__(self, fd: int, description: str, *, stall_timeout: float) -> None:
        super().__init__(fd, description, stall_timeout=stall_timeout)
        # A plain Lock, not the default RLock: a signal handler on a thread that holds it
        # must not re-enter it (see send_sync).
        self._cond = threading.Condition(threading.Lock())
        # Threads that hold the lock or are taking or leaving it: a signal handler finding
        # its own thread here must not wait for the lock (it would wait for itself).
        self._holders: set[int] = set()
        self._loop = Loop()  # opened on the loop: the thread wakes it through the seam
        self._wakeup = self._loop.new_wakeup()
        self._last_progress = 0.0
        self._writing = False
        # The loop waits on _wakeup for the thread (wait_sent, a reopen): only then does the
        # thread wake it. Set before the loop looks at `done`, read after the thread set it.
        self._awaited = False
        self._stuck_at = -1  # `done` when a wait_progress found no progress in a whole interval
        # Stream offsets of lines the destination refused, not yet taken by the writer
        # (journald, OTLP: a stream that sends line by line sees some refused).
        self._refused_at: deque[int] = deque()
        # Started here, where no signal handler's flush can run yet: starting it lazily from
        # a send let a handler interrupting Thread() start a second writer thread.
        self._thread = threading.Thread(
            target=self._run, name=f"alog writer ({description})", daemon=True
        )
        self._thread.start()

    @keyboard_interrupt_safe
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
                while not self._pending and not self._closed and not self._idle_work_due():
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch = self._pending[0] if self._pending else None
                self._writing = True
            try:
                if batch is None:
                    self._between_lines(b"", 0)  # work asked for while idle (a reopen)
                else:
                    self._write_batch(*batch)
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits
                self._on_error(error)
                with self._cond:
                    self.error = error
                    self._writing = False
                    self._cond.notify_all()
                self._notify_loop()
                return
            with self._cond:
                if batch is not None:
                    self._pending.popleft()
                self._writing = False
                self._cond.notify_all()
            if self._awaited:
                self._notify_loop()

    def _write_batch(self, data: bytes | bytearray, offset: int) -> None:
        view = memoryview(data)
        while offset < len(data) and not self._closed:
            stop = self._between_lines(data, offset)
            while offset < stop and not self._closed:
                # Bounded pieces: once closed, the write in progress ends soon and the
                # books can say exactly what reached the file.
                written = os.write(self.fd, view[offset : min(stop, offset + _PIECE)])
                offset += written
                with self._cond:
                    self.done += written
                    self._last_progress = time.monotonic()

    def _refuse_line(self, end: int) -> None:
        """Writer thread, lock held, before ``done`` passes ``end``: that line was refused."""
        self._refused_at.append(end)

    def take_refused(self, upto: int) -> int:
        # No lock: the writer may call this from a signal handler that interrupted this
        # stream's own locked code. One thread appends (in offset order), the writer pops.
        refused = 0
        pending = self._refused_at
        while pending and pending[0] <= upto:
            pending.popleft()
            refused += 1
        return refused

    def _on_error(self, error: BaseException) -> None:
        """Writer thread: ``error`` ends the stream (a subclass may note it in its books)."""

    def _idle_work_due(self) -> bool:
        """Lock held: has the thread something to do with nothing to write (a file's reopen)?"""
        return False

    def _between_lines(self, data: bytes | bytearray, offset: int) -> int:
        """Writer thread, at a line boundary of ``data`` (``offset``): where to write up to.

        A stream that reopens or rotates its file does it here, so that no line is split
        between two files. The offset returned ends a line, or is ``len(data)``.
        """
        return len(data)

    def _notify_loop(self) -> None:
        # One hand-off per batch, never per event; a closed loop has nobody waiting.
        self._loop.call_soon_threadsafe(self._wakeup.set)

    @keyboard_interrupt_safe
    def submit(self, data: bytes | bytearray) -> int:
        if self.error is not None:
            raise self.error
        me = threading.get_ident()
        self._holders.add(me)  # before the lock is taken, until after it is released
        try:
            with self._cond:
                return self._submit_locked(data)
        finally:
            self._holders.discard(me)

    def reentered(self) -> bool:
        return threading.get_ident() in self._holders

    async def wait_sent(self, target: int) -> None:
        self._awaited = True
        try:
            while True:
                done = self._check(target)
                if done < 0:
                    return
                idle = time.monotonic() - self._last_progress
                woken = await self._wakeup.wait(min(_GIL_CHECK, self.stall_timeout - idle))
                if not woken and self.done == done < self.submitted:
                    _hand_over_the_gil()
        finally:
            self._awaited = False

    async def wait_progress(self, target: int, woken: Wakeup | TrioWakeup) -> None:
        """Wait until ``target`` is written, or for one look, or until ``woken`` is set.

        The writer's wait while the thread writes ahead. The thread does not wake the loop
        for it: the writer looks every ``_LOOK`` seconds, settles what is written and hands
        over what came meanwhile, so the thread goes from batch to batch without sleeping
        and without a hand-off back to the loop. A thread that made no progress since the
        last look waits for the GIL: it gets it at the next call, once the writer has handed
        it the next batch (one hand-over then finishes one batch and starts the next), and
        from then on at every look until it gets somewhere. Raises as :meth:`wait_sent` does.
        """
        done = self._check(target)
        if done < 0:
            return
        if self._stuck_at == done:
            _hand_over_the_gil()
            done = self._check(target)
            if done < 0:
                return
        self._stuck_at = -1
        idle = time.monotonic() - self._last_progress
        if await woken.wait(min(_LOOK, self.stall_timeout - idle)):
            return
        if self.done == done < self.submitted:
            self._stuck_at = done

    def _check(self, target: int) -> int:
        """-1 if ``target`` is written, else ``done``; raises the error or the stall."""
        if self.error is not None:
            raise self.error
        done = self.done
        if done >= target:
            return -1
        idle = time.monotonic() - self._last_progress
        if idle >= self.stall_timeout:
            raise TimeoutError(f"no progress for {idle:.1f} s")
        return done

    @keyboard_interrupt_safe
    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        me = threading.get_ident()
        if self.error is not None or me in self._holders:
            return False  # re-entered: the caller was to check reentered() first
        self._holders.add(me)
        try:
            # Not bounded by the deadline: only another thread can hold the lock here (this
            # one is not inside), and none blocks while holding it. Giving up would leave
            # the data in nobody's hands.
            with self._cond:
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
            self._holders.discard(me)

    async def aclose(self) -> None:
        if self._closed:
            return
        me = threading.get_ident()
        self._holders.add(me)
        try:
            with self._cond:
                self._closed = True
                # What the thread has not started is not written: the books count only what
                # it finished (a shutdown whose time ran out, a failure).
                while len(self._pending) > (1 if self._writing else 0):
                    self._pending.pop()
                self._cond.notify_all()
        finally:
            self._holders.discard(me)
        deadline = time.monotonic() + 1.0
        while self._writing and time.monotonic() < deadline:  # noqa: ASYNC110 - a thread's flag
            await anyio.sleep(0.005)
        busy = self._writing
        # A thread still inside write() may be stuck in the kernel: leave its fd open rather
        # than close it under the write (the number could be reused by someone else).
        if not busy:
            with contextlib.suppress(OSError):  # already closed under us (EBADF)
                os.close(self.fd)
        await anyio.lowlevel.checkpoint()
