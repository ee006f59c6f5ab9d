"""One writer per destination: reads its share of the queue and keeps that destination's books.

A writer is the only code that waits on its destination. It owns what is in flight there and
what was written, filtered (its ``level=``), dropped (sequence gaps: evicted before it read
them) or undelivered (lost in flight or after a failure). For every writer, at every moment::

    entered == written + filtered + dropped + undelivered + held

A ``required`` destination that fails (a permanent ``OSError``, a raising stream, or no
progress for ``write_timeout``) raises :class:`WriterFailed`, which fails the pipeline. An
optional one reports once (stderr and an ``alog.destination_failed`` event to the others),
counts what it cannot deliver, and reopens with exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar, cast

import anyio
import anyio.abc
import anyio.lowlevel

from ._backend import Loop, abandon, exit_if_stuck, spawn_detached
from ._destinations import FdStream, FileStream, open_destination
from ._exceptions import WriterFailed
from ._fields import stamp_now
from ._report import said_once, to_stderr
from .typing import DestinationState

T = TypeVar("T")

if TYPE_CHECKING:
    from ._backend import TrioWakeup, Wakeup
    from ._progress import Progress
    from ._queue import Chunk, EventQueue
    from .typing import Destination

RETRY_FIRST: Final = 0.5
RETRY_MAX: Final = 30.0
IDLE_CHECK: Final = 1.0
"""An idle writer calls its stream's ``check_idle`` this often (seconds), if it asks to."""
GATHER: Final = 0.002
"""Seconds a writer woken from idle by a log call, or one that has just caught up, waits
before it reads, so that the events of a few requests (or of a thread logging flat out) go as
one batch: each batch costs the loop about as much as a dozen calls."""


@dataclass(frozen=True, slots=True)
class DestinationStatistics:
    """One destination's books."""

    name: str
    """The destination, as ``repr`` shows it."""
    state: DestinationState
    """``starting``, ``running``, ``retrying`` (optional, reopening), ``failed`` or ``closed``."""
    required: bool
    """Does its failure fail the pipeline?"""
    written: int
    """Events the destination accepted."""
    filtered: int
    """Events its ``level=`` kept out."""
    dropped: int
    """Events evicted from the queue before this destination could take them."""
    undelivered: int
    """Events lost in flight, while failed or retrying, or at an expired shutdown."""
    held: int
    """Events it has not settled yet: queued for it or in flight."""
    bytes_written: int
    """Bytes the destination accepted."""
    batches: int
    """Writes handed to the destination."""
    write_errors: int
    """Writes or opens that failed."""
    reopens: int
    """Times it was opened again: an optional one after a failure; a file on request (SIGHUP
    with ``reopen_on_sighup=True``, ``pipeline.reopen()``) or because its path was moved or
    deleted (logrotate's ``create`` mode)."""
    rotations: int
    """Times alog rotated the file itself (``alog.File(rotate_bytes=..., rotate_every=...)``)."""
    last_error: str | None
    """The last error, as text."""
    last_write_seconds: float
    """How long the last batch took."""
    max_write_seconds: float
    """The slowest batch so far."""
    connected: bool | None = None
    """A connected destination (socket, syslog, journald): is it connected now? None for
    the others."""
    reconnects: int = 0
    """A socket destination: connections opened after the first (the peer went away)."""
    truncated: int = 0
    """Syslog over datagrams: messages cut to the size limit, with a marker."""


class DestinationWriter:
    """Moves one destination's events from the queue to its stream."""

    def __init__(
        self,
        queue: EventQueue,
        reader: int,
        destination: Destination | anyio.abc.ByteSendStream,
        *,
        level: int | None,
        required: bool,
        write_timeout: float,
        wakeup: Wakeup | TrioWakeup,
        progress: Progress,
        loop_thread: int,
        loop: Loop | None = None,
    ) -> None:
        self.queue = queue
        self.reader = reader
        self.destination = destination
        self.name = repr(destination)
        self.level = level
        self.required = required
        self.write_timeout = write_timeout
        self._wakeup = wakeup
        self._progress = progress
        self._loop_thread = loop_thread
        self._loop = loop
        self._send_done: Wakeup | TrioWakeup | None = None
        self.stream: anyio.abc.ByteSendStream | None = None
        self.state: DestinationState = "starting"
        self._stop_at: int | None = None
        self._position = 0  # every event before it is in flight or settled
        self._settled = 0  # every event before it is settled
        # In write order: (stream offset at which a batch ends, its events, seq after it, data,
        # when it was handed over)
        self._ledger: deque[tuple[int, int, int, bytes | bytearray, float]] = deque()
        self._submitted = 0  # bytes a stream that does not count them itself has taken
        self._writing_here = False
        self._reopen_wanted = False
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        # Said on stderr and as an event, until the destination writes again: a reopen that
        # succeeds but never delivers is the same failure, not a new one.
        self._announced = False
        self.written = 0
        self.filtered = 0
        self.dropped = 0
        self.undelivered = 0
        self.bytes_written = 0
        self.batches = 0
        self.write_errors = 0
        self.reopens = 0
        self._closed_stream_counts = (0, 0)  # (reopens, rotations) of streams since replaced
        self.last_error: str | None = None
        self.last_write_seconds = 0.0
        self.max_write_seconds = 0.0

    def __repr__(self) -> str:
        return f"<alog writer {self.name} {self.state}>"

    # -- control (from the pipeline) ------------------------------------------------------

    def wake(self) -> None:
        """Loop thread: there is something to read (or to stop for)."""
        self._wakeup.set()

    def stop_at(self, seq: int) -> None:
        """Finish once every event before ``seq`` is settled."""
        self._stop_at = seq
        self._wakeup.set()

    def request_reopen(self) -> None:
        """Loop thread: reopen the destination by its path (a file), between two batches."""
        self._reopen_wanted = True
        self._wakeup.set()

    @property
    def settled(self) -> int:
        """Every event before this sequence number is written or counted as lost."""
        return self._settled

    # -- the task -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the stream; a required destination that cannot be opened fails the start."""
        try:
            self.stream = await self._open_stream()
        except Exception as error:
            self.write_errors += 1
            self.last_error = _describe(error)
            if self.required:
                self.state = "failed"
                failure = WriterFailed(self.name, error, 0)
                to_stderr(f"alog: {failure}; the application is being stopped")
                said_once(failure)
                raise failure from error
            self._start_retrying(error, announce=True)
            return
        self.name = getattr(self.stream, "description", self.name)
        self.state = "running"

    async def run(self) -> None:
        """Write until stopped and drained; raises :class:`WriterFailed` if required and lost."""
        queue = self.queue
        reader = self.reader
        while True:
            stream = self.stream
            if isinstance(stream, FdStream) and stream.error is not None:
                await self._failed(stream.error)  # a synchronous flush met it first
                continue
            if self._reopen_wanted:
                self._reopen_wanted = False
                await self._reopen_stream()
                continue
            if self.state == "retrying" and time.monotonic() >= self._retry_at:
                await self._reopen()
            stop_at = self._stop_at
            if stop_at is not None and self._settled >= stop_at and not self._ledger:
                # Checked before every read: a task that logs all the time keeps every read
                # busy, and must not hold the close open.
                if not queue.closed:
                    queue.report_losses()  # the drain's own losses, before the queue refuses
                    # Caught up with what was queued at close: refuse from now on, then take
                    # what came meanwhile. Two steps, both bounded.
                    self._stop_at = queue.close()
                    continue
                last = queue.last_seq()
                if self._settled >= last:
                    return
                self._stop_at = last
            # From the read until the stream has the batch, a flush in a signal handler must
            # keep out (a section marker: see alog._queue's docstring on re-entrancy).
            self._writing_here = True
            got = False
            ahead = isinstance(stream, FdStream) and stream.writes_ahead
            try:
                chunks, upto = queue.read(reader, ahead)  # positional: tests wrap read(*args)
                got = bool(chunks) or upto > self._position
                if got:
                    data, events = self._take(chunks, upto)
            finally:
                if not got:
                    self._writing_here = False
            if got:
                await self._deliver(data, events)
                if upto >= queue.last_seq() and self._may_gather():
                    # Caught up: a thread logging flat out would otherwise be read ten events
                    # at a time, each time the loop gets the GIL. A stream writing ahead
                    # waits its own look instead, which also hands the GIL to its thread
                    # when that makes no progress (a loop logging flat out starves it).
                    if ahead and self._ledger:
                        assert isinstance(stream, FdStream)
                        await self._wait_ahead(stream)
                    else:
                        await self._wakeup.wait(GATHER)
                continue
            if self._ledger and isinstance(stream, FdStream):
                if ahead:
                    await self._wait_ahead(stream)
                    continue
                await self._send(b"", 0)  # a send cut short by a cancel left bytes pending
                await anyio.lowlevel.checkpoint()
                continue
            if queue.park():
                timeout = None
                if self.state == "retrying":
                    timeout = max(0.0, self._retry_at - time.monotonic())
                # A socket watches for its peer's close while idle too (FdStream.check_idle).
                watch = isinstance(stream, FdStream) and stream.checks_idle
                if watch:
                    timeout = IDLE_CHECK if timeout is None else min(timeout, IDLE_CHECK)
                if await self._wakeup.wait(timeout):
                    if self._may_gather():
                        # Woken by a log call (a flush or the close that comes meanwhile
                        # wakes it again, which cuts this short).
                        await self._wakeup.wait(GATHER)
                elif watch:
                    assert isinstance(stream, FdStream)
                    stream.check_idle()

    def _may_gather(self) -> bool:
        """May the writer wait ``GATHER`` before its next read? Not while a flush, the close
        or a reopen waits for it, nor while the stream is down."""
        return bool(
            GATHER
            and self.state == "running"
            and self._stop_at is None
            and not self._reopen_wanted
            and not self._progress.waited()
        )

    def _take(self, chunks: list[Chunk], upto: int) -> tuple[bytes | bytearray, int]:
        """Move past what was read, counting gaps and level filtering: the lines to write."""
        batch: list[bytes | bytearray] = []
        events = 0
        for chunk in chunks:
            if chunk.start > self._position:
                self.dropped += chunk.start - self._position
            data, kept = self._select(chunk)
            self.filtered += chunk.events - kept
            self._position = chunk.end
            if kept:
                batch.append(data)
                events += kept
        if upto > self._position:
            self.dropped += upto - self._position
            self._position = upto
        return (batch[0] if len(batch) == 1 else b"".join(batch)), events

    async def _deliver(self, data: bytes | bytearray, events: int) -> None:
        if events and self.state == "running":
            await self._send(data, events)
            return
        self._writing_here = False
        self.undelivered += events  # down: counted, never buffered
        self._settle_to_position()

    def _select(self, chunk: Chunk) -> tuple[bytes | bytearray, int]:
        """The chunk's lines this destination's level admits."""
        level = self.level
        levels = chunk.levels
        if level is None or levels is None or min(levels) >= level:
            return chunk.data, chunk.events
        lines = bytes(chunk.data).split(b"\n")
        kept = [line for line, number in zip(lines, levels, strict=False) if number >= level]
        if not kept:
            return b"", 0
        return b"\n".join(kept) + b"\n", len(kept)

    def _settle_to_position(self) -> None:
        if self._ledger:
            # Behind what is in flight: settles when that does.
            offset = self._ledger[-1][0]
            self._ledger.append((offset, 0, self._position, b"", 0.0))
        else:
            self._settled = self._position
            self.queue.done(self.reader, self._settled)
            self._progress.notify()

    async def _send(self, data: bytes | bytearray, events: int) -> None:
        stream = self.stream
        assert stream is not None
        try:
            if isinstance(stream, FdStream):
                end = stream.submitted + len(data)
                self._ledger.append((end, events, self._position, data, time.monotonic()))
                self._writing_here = False  # booked: the stream takes it before any await
                if stream.writes_ahead and data:
                    # Taken now, settled as the thread writes it (_wait_ahead): the writer
                    # goes on reading while the thread writes.
                    stream.submit(data)
                    self.batches += 1
                    return
                await stream.send(data)  # type: ignore[arg-type]  # bytearray is bytes-like
            else:
                end = self._submitted + len(data)
                self._ledger.append((end, events, self._position, data, time.monotonic()))
                self._writing_here = False
                await self._send_custom(stream, bytes(data))
                self._submitted = end  # counted as done only once send returned
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as error:  # noqa: BLE001 - a destination's failure, handled by policy
            await self._failed(self._stalled(error))
            return
        self.batches += 1
        self.settle()

    async def _wait_ahead(self, stream: FdStream) -> None:
        """Batches in flight in a stream that writes ahead: settle them as they are written.

        New events do not wake it (they wait for the next look, and go as one batch); a
        flush, a stop or a reopen does. While a flush or the close waits, the thread wakes
        the loop as soon as it is done (``wait_sent``).
        """
        target = stream.submitted  # the ledger's end (a signal handler may settle it meanwhile)
        try:
            if self._stop_at is not None or self._progress.waited():
                await stream.wait_sent(target)
            else:
                await stream.wait_progress(target, self._wakeup)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as error:  # noqa: BLE001 - a destination's failure, handled by policy
            await self._failed(self._stalled(error))
            return
        self.settle()

    def _stalled(self, error: Exception) -> Exception:
        """A stall (``TimeoutError``) as the writer reports it; other errors as they are."""
        if not isinstance(error, TimeoutError):
            return error
        stall = TimeoutError(f"no progress writing to {self.name} for {self.write_timeout:g} s")
        stall.__cause__ = error
        return stall

    async def _send_custom(self, stream: anyio.abc.ByteSendStream, data: bytes) -> None:
        """A user's stream: its send may hang in ways no cancel reaches (a worker thread)."""
        await self._detached(lambda: stream.send(data), "send")

    async def _open_stream(self) -> anyio.abc.ByteSendStream:
        """Open the destination; a user's ``open()`` may hang like a send, and is given up
        on the same way (a stream it returns after that is closed, never used)."""
        return await self._detached(
            lambda: open_destination(self.destination, write_timeout=self.write_timeout),
            "open",
            late=_close_quietly,
        )

    async def _detached(
        self,
        make: Callable[[], Awaitable[T]],
        what: str,
        late: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Await ``make()`` in a detached task (a system task under trio) that the writer
        gives up on after ``write_timeout``: the failure happens on time whatever the call is
        stuck in. ``late`` gets a result that comes after the writer gave up."""
        if self._loop is None:
            self._loop = Loop()
        outcome: list[tuple[T | None, BaseException | None]] = []
        if self._send_done is None:
            self._send_done = self._loop.new_wakeup()
        finished = self._send_done
        given_up = False

        async def attempt() -> None:
            try:
                result = await make()
            except BaseException as error:  # noqa: BLE001 - handed to the writer below
                outcome.append((None, error))
            else:
                outcome.append((result, None))
                if given_up and late is not None:
                    with contextlib.suppress(Exception):
                        await late(result)
            finally:
                finished.set()

        task = spawn_detached(self._loop, attempt())
        try:
            while not outcome:
                if not await finished.wait(self.write_timeout) and not outcome:
                    given_up = True
                    abandon(task)
                    exit_if_stuck(self._loop, self.name, task, status=1 if self.required else None)
                    raise TimeoutError(f"{what} did not return within {self.write_timeout:g} s")
        finally:
            if not task.done():
                given_up = True
                abandon(task)  # the writer itself was cancelled (shutdown deadline)
                exit_if_stuck(self._loop, self.name, task, status=None)
        result, error = outcome[0]
        if error is not None:
            raise error
        return cast(T, result)

    def settle(self) -> None:
        """Count batches the stream finished as written and free them in the queue."""
        stream = self.stream
        done = stream.done if isinstance(stream, FdStream) else self._submitted
        ledger = self._ledger
        settled = None
        written_before = self.written
        sent_at = 0.0
        while ledger and ledger[0][0] <= done:
            end, events, seq, data, when = ledger.popleft()
            refused = stream.take_refused(end) if isinstance(stream, FdStream) else 0
            self.written += events - refused
            self.undelivered += refused
            self.bytes_written += len(data)
            settled = seq
            if data:
                sent_at = when
        if sent_at:
            # Handed over until found written: with batches written ahead, that includes the
            # wait behind the batch before it.
            elapsed = time.monotonic() - sent_at
            self.last_write_seconds = elapsed
            self.max_write_seconds = max(self.max_write_seconds, elapsed)
        if settled is not None:
            self._settled = settled
            if self._announced and self.written > written_before:  # a later failure is new
                self._announced = False
                self._retry_delay = RETRY_FIRST
            if threading.get_ident() == self._loop_thread or not self.queue.reentered():
                self.queue.done(self.reader, settled)
            self._progress.notify()

    # -- failure --------------------------------------------------------------------------

    def taken_in_flight(self) -> int:
        """Events of batches in flight whose whole line the stream has already taken.

        Read-only, from any thread (a copy of the ledger, under the GIL): an exit report
        that cannot settle the books still must not count those as not written.
        """
        stream = self.stream
        if not isinstance(stream, FdStream):
            return 0
        done = stream.done
        taken = 0
        for end, events, _, data, _ in tuple(self._ledger):
            start = end - len(data)
            if done >= end:
                taken += events
            elif done > start and events:
                taken += data.count(b"\n", 0, done - start)
        return taken

    def _settle_lost(self) -> int:
        """The stream is gone: count the lines it took as written, the rest as undelivered.

        A batch cut short counts each whole line the OS accepted: the books say what the
        destination got (a pipe's reader may still lose what sat unread in the pipe when it
        died; no writer can see that).
        """
        self.settle()
        stream = self.stream
        done = stream.done if isinstance(stream, FdStream) else self._submitted
        lost = 0
        for end, events, _, data, _ in self._ledger:
            start = end - len(data)
            if done > start and events:
                taken = data.count(b"\n", 0, done - start)
                refused = stream.take_refused(done) if isinstance(stream, FdStream) else 0
                self.written += taken - refused
                self.undelivered += refused
                self.bytes_written += done - start
                events -= taken
                done = start  # only the first unfinished batch can be partly written
            lost += events
        self._ledger.clear()
        self.undelivered += lost
        return lost

    def _lose_in_flight(self) -> None:
        self._settle_lost()
        self._settled = self._position
        self.queue.done(self.reader, self._settled)
        self._progress.notify()

    async def _reopen_stream(self) -> None:
        """Reopen the stream's file by its path; a failure follows ``required=``."""
        stream = self.stream
        if self.state != "running" or not isinstance(stream, FdStream):
            return  # retrying: its next open is a reopen anyway
        try:
            await stream.reopen()
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as error:  # noqa: BLE001 - a destination's failure, handled by policy
            await self._failed(error)

    async def _failed(self, error: BaseException) -> None:
        self.write_errors += 1
        self.last_error = _describe(error)
        self._lose_in_flight()
        stream, self.stream = self.stream, None
        if stream is not None:
            reopens, rotations = _file_counts(stream)
            before = self._closed_stream_counts
            self._closed_stream_counts = (before[0] + reopens, before[1] + rotations)
            await _close_quietly(stream)
        if self.required:
            self.state = "failed"
            raise WriterFailed(self.name, error, self.undelivered)
        self._start_retrying(error, announce=True)

    def _start_retrying(self, error: BaseException, *, announce: bool) -> None:
        self.state = "retrying"
        self._retry_at = time.monotonic() + self._retry_delay * random.uniform(0.5, 1.0)  # noqa: S311
        self._retry_delay = min(RETRY_MAX, self._retry_delay * 2)
        if announce and not self._announced:
            self._announced = True
            reason = _describe(error)
            to_stderr(
                f"alog: optional destination {self.name} failed: {reason}; counting its losses"
            )
            self.queue.put_internal(
                {
                    "time": stamp_now(),
                    "level": "error",
                    "logger": "alog",
                    "msg": "alog.destination_failed",
                    "destination": self.name,
                    "error": reason,
                    "action": "its events are counted as undelivered; retrying with backoff",
                },
                40,  # an error, as its "level" says
            )

    async def _reopen(self) -> None:
        try:
            self.stream = await self._open_stream()
        except Exception as error:  # noqa: BLE001 - still down: try again later
            self.write_errors += 1
            self.last_error = _describe(error)
            self._start_retrying(error, announce=False)
            return
        self.reopens += 1
        self.state = "running"  # the backoff starts over once it writes again (settle)

    def abandon(self) -> int:
        """Shutdown ran out of time or the pipeline failed: count what is left as undelivered."""
        lost_in_flight = self._settle_lost()
        last = self.queue.last_seq()
        held = self.queue.held_from(self._position)
        self.dropped += max(0, last - self._position - held)  # evicted before we got there
        self.undelivered += held
        self._position = self._settled = max(self._position, last)
        self.queue.done(self.reader, self._settled)  # counted: no longer held
        self._progress.notify()
        return lost_in_flight + held

    async def aclose(self) -> None:
        """Close the stream (kept for the books: what it finished still counts)."""
        stream = self.stream
        if self.state != "failed":
            self.state = "closed"
        if stream is not None:
            await _close_quietly(stream)

    # -- synchronous flush ----------------------------------------------------------------

    def write_here(self, deadline: float, *, from_loop: bool) -> None:
        """Flush from the loop's own thread (or with the loop gone): write synchronously."""
        stream = self.stream
        if (
            self.state != "running"
            or not isinstance(stream, FdStream)
            or self._writing_here  # the writer task is between a read and its stream
            or (self._ledger and self._ledger[-1][0] > stream.submitted)  # booked, not taken
        ):
            return
        self._writing_here = True
        try:
            read = self.queue.read if from_loop else self.queue.read_from_thread
            while time.monotonic() < deadline:
                if stream.reentered():
                    break  # a handler inside the stream's own code: the writer task sends it
                chunks, upto = read(self.reader)
                if not chunks and upto <= self._position:
                    stream.send_sync(b"", deadline)  # finish what the writer task has in flight
                    break
                data, events = self._take(chunks, upto)
                before = stream.submitted
                self._ledger.append(
                    (before + len(data), events, self._position, data, time.monotonic())
                )
                done = stream.send_sync(data, deadline)
                if data and stream.submitted == before:
                    # The stream would not take it (this handler interrupted its own send):
                    # read from the queue but never written, so counted as undelivered.
                    self._ledger.pop()
                    self.undelivered += events
                    break
                if not done:
                    break
                self.settle()
        finally:
            self._writing_here = False
            self.settle()
            if stream.error is not None and from_loop:
                self.wake()  # let the writer task fail loudly

    def writes_to_stderr(self) -> bool:
        stream = self.stream
        return isinstance(stream, FdStream) and stream.is_same_file(2)

    def statistics(self) -> DestinationStatistics:
        # Evicted before this writer got there: lost already, counted now, not when reached.
        unread = self.queue.last_seq() - self._position
        evicted = max(0, unread - self.queue.held_from(self._position)) if unread > 0 else 0
        dropped = self.dropped + evicted
        settled = self.written + self.filtered + dropped + self.undelivered
        held = max(0, self.queue.entered() - settled)
        reopens, rotations = _file_counts(self.stream)
        link = getattr(self.stream, "connection_statistics", None)
        connection = link() if link is not None else None
        last_error = self.last_error
        if connection is not None and connection.last_error is not None:
            last_error = connection.last_error  # the stream reconnects by itself: its own
        return DestinationStatistics(
            name=self.name,
            state=self.state,
            required=self.required,
            written=self.written,
            filtered=self.filtered,
            dropped=dropped,
            undelivered=self.undelivered,
            held=held,
            bytes_written=self.bytes_written,
            batches=self.batches,
            write_errors=self.write_errors,
            reopens=self.reopens + self._closed_stream_counts[0] + reopens,
            rotations=self._closed_stream_counts[1] + rotations,
            last_error=last_error,
            last_write_seconds=self.last_write_seconds,
            max_write_seconds=self.max_write_seconds,
            connected=None if connection is None else connection.connected,
            reconnects=0 if connection is None else connection.reconnects,
            truncated=0 if connection is None else connection.truncated,
        )


async def _close_quietly(stream: anyio.abc.ByteSendStream) -> None:
    """Close a stream that may be broken already: its error was counted where it happened."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(1.0),
        contextlib.suppress(Exception),  # the failure itself is already in the books
    ):
        await stream.aclose()


def _file_counts(stream: object) -> tuple[int, int]:
    """A file stream's own (reopens, rotations); nothing for other streams."""
    if isinstance(stream, FileStream):
        return stream.reopens, stream.rotations
    return 0, 0


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
