"""The writer task: drains the queue in batches into the destination stream.

It is the only code that waits on the destination. A permanent error or a write making no
progress for ``write_timeout`` ends it with :class:`WriterFailed`, after the queue has been
emptied and closed (so nothing accumulates) and one message went to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ._destinations import FdStream
from ._exceptions import WriterFailed
from ._fields import stamp_now, timestamp
from ._records import WriterState
from ._report import to_stderr

if TYPE_CHECKING:
    from ._queue import EventQueue


class Writer:
    """Moves batches from an :class:`EventQueue` to a stream, and keeps the books."""

    def __init__(
        self,
        queue: EventQueue,
        stream: anyio.abc.ByteSendStream,
        *,
        description: str,
        write_timeout: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.queue = queue
        self.stream = stream
        self.description = description
        self.write_timeout = write_timeout
        self.loop = loop
        self.state: WriterState = "running"
        self.closing = False
        self.written = 0
        self.bytes_written = 0
        self.batches = 0
        self.write_errors = 0
        self.last_write_seconds = 0.0
        self.max_write_seconds = 0.0
        self.peak_queued = 0
        self.peak_queued_bytes = 0
        # (stream offset at which a chunk ends, its events, its bytes), in write order.
        self._ledger: deque[tuple[int, int, int]] = deque()
        self._submitted = 0  # for streams that do not count bytes themselves
        self._writing_here = False  # a synchronous flush is writing (see write_here)
        # asyncio's own Event, reused: an anyio Event per wake-up costs more than it carries.
        self._wakeup = asyncio.Event()
        self.progress = anyio.Event()
        self.progress_cond = threading.Condition()
        self.async_waiters = 0  # aflush calls waiting on `progress`
        self.thread_waiters = 0  # flush calls from other threads waiting on `progress_cond`
        queue.wake = self.wake
        queue.wake_threadsafe = self.wake_threadsafe

    # -- waking ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Loop thread only: the queue has something (or a flush or close wants attention)."""
        self.queue.writer_idle = False
        self._wakeup.set()

    def wake_threadsafe(self) -> None:
        """From any thread; one hand-off per batch, never per event."""
        with contextlib.suppress(RuntimeError):  # a closed loop: flush writes directly
            self.loop.call_soon_threadsafe(self.wake)

    # -- the task -------------------------------------------------------------------------

    async def run(self) -> None:
        """Write until closed and drained; raises :class:`WriterFailed` on a permanent error."""
        queue = self.queue
        stream = self.stream
        while True:
            if isinstance(stream, FdStream) and stream.error is not None:
                raise self.fail(stream.error)  # a synchronous flush met it first
            chunks = queue.take()
            if not chunks:
                if self._queue_drop_summary():
                    continue
                if self.closing:
                    if self._ledger:  # a send cut short by a cancel left bytes in flight
                        await self._send(bytearray(), 0)
                        continue
                    return
                queue.writer_idle = True
                if queue.queued:  # something arrived while we were deciding to sleep
                    queue.writer_idle = False
                    continue
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            self._note_peak()
            for data, events in chunks:
                await self._send(data, events)

    def _note_peak(self) -> None:
        queued = self.queue.inflight_events
        if queued > self.peak_queued:
            self.peak_queued = queued
        queued_bytes = self.queue.inflight_bytes
        if queued_bytes > self.peak_queued_bytes:
            self.peak_queued_bytes = queued_bytes

    async def _send(self, data: bytearray, events: int) -> None:
        stream = self.stream
        started = time.monotonic()
        try:
            if isinstance(stream, FdStream):
                self._ledger.append((stream.submitted + len(data), events, len(data)))
                await stream.send(data)  # type: ignore[arg-type]  # bytearray is bytes-like
            else:
                self._submitted += len(data)
                self._ledger.append((self._submitted, events, len(data)))
                with anyio.fail_after(self.write_timeout):
                    await stream.send(bytes(data))
        except anyio.get_cancelled_exc_class():
            raise
        except TimeoutError as error:
            stall = TimeoutError(
                f"no progress writing to {self.description} for {self.write_timeout:g} s"
            )
            raise self.fail(stall) from error
        except Exception as error:
            raise self.fail(error) from error
        elapsed = time.monotonic() - started
        self.last_write_seconds = elapsed
        self.max_write_seconds = max(self.max_write_seconds, elapsed)
        self.batches += 1
        self.settle()

    def settle(self) -> None:
        """Count chunks the stream finished as written and give their room back."""
        stream = self.stream
        done = stream.done if isinstance(stream, FdStream) else self._submitted
        ledger = self._ledger
        events = nbytes = 0
        while ledger and ledger[0][0] <= done:
            _, chunk_events, chunk_bytes = ledger.popleft()
            events += chunk_events
            nbytes += chunk_bytes
        if events or nbytes:
            self.written += events
            self.bytes_written += nbytes
            self.queue.release(events, nbytes)
            self.notify_progress()

    def notify_progress(self) -> None:
        """Wake flushes waiting in this loop and in other threads."""
        if self.async_waiters and threading.get_ident() == self.queue._loop_ident:
            progress, self.progress = self.progress, anyio.Event()
            progress.set()
        if self.thread_waiters:
            with self.progress_cond:
                self.progress_cond.notify_all()

    def _queue_drop_summary(self) -> bool:
        """Caught up after losses: write one event saying how many and when."""
        queue = self.queue
        dropped = queue.dropped
        if dropped == queue.drops_reported or queue.failed:
            return False
        queue.put_internal(
            {
                "time": stamp_now(),
                "level": "warning",
                "logger": "alog",
                "msg": "alog.dropped",
                "dropped": dropped - queue.drops_reported,
                "first_drop": timestamp(int(queue.first_drop * 1e9)),
                "last_drop": timestamp(int(queue.last_drop * 1e9)),
                "overflow": queue.overflow,
                "max_events": queue.max_events,
                "max_bytes": queue.max_bytes,
            }
        )
        queue.drops_reported = dropped
        return True

    # -- failure and shutdown -------------------------------------------------------------

    def fail(self, error: BaseException) -> WriterFailed:
        """Stop for good: empty the queue, refuse new events, say so once on stderr."""
        self.write_errors += 1
        self.state = "failed"
        inflight = sum(events for _, events, _ in self._ledger)
        inflight_bytes = sum(nbytes for _, _, nbytes in self._ledger)
        self._ledger.clear()
        queue = self.queue
        lost = queue.fail() + inflight
        queue.undelivered += inflight
        queue.release(inflight, inflight_bytes)
        failure = WriterFailed(self.description, error, lost)
        if not self._writes_to_stderr():
            to_stderr(f"alog: {failure}; the application is being stopped")
        self.notify_progress()
        return failure

    def abandon(self, reason: str) -> int:
        """Shutdown ran out of time: count what is left as undelivered and say so."""
        inflight = sum(events for _, events, _ in self._ledger)
        inflight_bytes = sum(nbytes for _, _, nbytes in self._ledger)
        self._ledger.clear()
        queue = self.queue
        lost = queue.abandon_queued() + inflight
        queue.undelivered += inflight
        queue.release(inflight, inflight_bytes)
        if lost and not self._writes_to_stderr():
            to_stderr(f"alog: {reason}: {lost} events not written to {self.description}")
        self.notify_progress()
        return lost

    def _writes_to_stderr(self) -> bool:
        stream = self.stream
        return isinstance(stream, FdStream) and stream.is_same_file(2)

    # -- synchronous flush ----------------------------------------------------------------

    def write_here(self, deadline: float) -> None:
        """Flush from the loop's own thread (or with the loop gone): write synchronously."""
        stream = self.stream
        if self.state in ("failed", "closed") or not isinstance(stream, FdStream):
            return
        if self._writing_here:
            return  # a signal handler interrupted a flush on this thread: let that one finish
        self._writing_here = True
        chunks = self.queue.take_complete_lines(timeout=deadline - time.monotonic())
        try:
            for data, events in chunks:
                self._ledger.append((stream.submitted + len(data), events, len(data)))
                if not stream.send_sync(data, deadline):
                    return
            if not chunks:
                stream.send_sync(b"", deadline)  # finish what the writer task has in flight
        finally:
            self._writing_here = False
            self.settle()
            if stream.error is not None and threading.get_ident() == self.queue._loop_ident:
                self.wake()  # let the writer task fail loudly
