"""The bounded queue between log calls and the writers: JSON lines in chunks, read by many.

**Put.** A call on the loop's thread encodes its event straight into the *open chunk* (one
msgspec call into a reused buffer: the cheapest path measured here). Calls from other threads
encode on their own and append the finished line under a lock to a chunk of their own; one
that finds the lock taken appends its line to ``_side`` without it, as the re-entrant path
does, while the caps are far (a thread waiting for a lock whose owner waits for the GIL is
the costliest thing a call can do), and a thread's later lines follow it there. A
chunk is *sealed* when it is full or when a writer reads: sealing gives its events sequence
numbers, in the order sealed, and from then on its bytes never change.

**Read.** Each destination's writer is a *reader* with its own position: fan-out without
copies. A sealed chunk is freed when every reader is done with it. A reader that finds a gap
in the sequence numbers knows exactly how many of its events were lost, and counts them.

**Bounds.** Events and bytes held (open, sealed, in flight) never exceed ``max_events`` /
``max_bytes`` by more than one event. When full: ``drop_newest`` refuses the new event,
``drop_oldest`` evicts the oldest chunk nobody is writing. With several readers, one that
holds more than its share (``max_bytes / readers``) loses its oldest unread chunks first, so
a stalled destination never stops the others. An open chunk holds at most an eighth of the
caps, so there is always something old enough to evict. Once a put on the loop's thread was
refused, the next ones are refused without the lock until something changes that could make
room (``_room_gen``): in a stall every call is refused, and a refusal must not cost four
times an accepted put.

**Re-entrancy: the one mechanism.** A log call can run inside alog's own code on the same
thread: in a signal handler that interrupted it, or in a ``__repr__`` that msgspec calls
mid-encode. Every section that changes the queue marks itself: ``_busy`` on the loop's thread,
``_lock_owner`` for the others. A call that finds its own thread inside such a section takes
the *re-entrant path*: it encodes into bytes of its own and appends them to ``_side`` with one
atomic ``deque.append``, touching no buffer and no lock that the interrupted code holds; the
next seal picks them up. A flush that finds its thread inside a section cannot write without
corrupting what it interrupted, and says so (see ``Pipeline.flush``). Plain ``int`` updates
(``x += 1``) are not interrupted by a signal handler in CPython (no eval-breaker check inside).
"""

from __future__ import annotations

import itertools
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from ._backend import keyboard_interrupt_safe
from ._encoding import encode_fallback, new_encoder
from ._fields import stamp_now, timestamp
from .typing import Overflow

_NEVER: Final = -(2**62)
"""A limit no chunk fits under: set when the queue is closed, so every call is refused."""

_NEWLINE: Final = 10
_CHUNK_BYTES: Final = 64 * 1024
_NOBODY: Final = -1
_UNLOCKED_MARGIN: Final = 64
"""A thread appends without the lock only while this many more events of its size fit, so
the caps hold (within one event) unless more threads than this are between the check and
the append at once."""
_STATISTICS_WAIT: Final = 0.05
"""Seconds ``statistics`` waits for the lock before it reads without it."""
_get_ident: Final = threading.get_ident
_counter: Final = itertools.count().__next__
"""Orders the open chunks by their first event (atomic under the GIL)."""


class Chunk:
    """Sealed lines: ``events`` events numbered ``start`` to ``start + events - 1``."""

    __slots__ = ("data", "events", "keep", "levels", "since", "start")

    def __init__(
        self,
        data: bytes | bytearray,
        events: int,
        levels: array[int] | None,
        start: int,
        *,
        since: int = 0,
        keep: bool = False,
    ) -> None:
        self.data = data
        self.events = events
        self.levels = levels
        self.start = start
        self.since = since
        """When its first event came (an order, not a time): the oldest is evicted first."""
        self.keep = keep
        """alog's own reports: never evicted (they say what was lost)."""

    @property
    def end(self) -> int:
        return self.start + self.events


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """The queue's own numbers."""

    entered: int
    """Events that entered the queue (each gets a place in every reader's sequence)."""
    held: int
    """Events held now: waiting for a writer or in flight."""
    held_bytes: int
    """Bytes of those events."""
    peak_held: int
    """The most events ever held at once."""
    peak_held_bytes: int
    """The most bytes ever held at once."""
    rejected: int
    """Events refused: the queue was full under ``drop_newest``, or closed."""
    evicted: int
    """Events pushed out by ``drop_oldest`` or by a reader's share (counted once)."""
    interrupted: int
    """Events whose encoding was cut short by a ``BaseException`` (Ctrl-C in a ``__repr__``)."""
    encode_fallbacks: int
    """Events that needed the fallback encoder (bad values, oversized events)."""
    reports: int
    """alog's own events queued (loss reports, notices): part of ``entered``."""


class EventQueue:
    """Encoded events waiting for the writers, capped in count and bytes."""

    __slots__ = (
        "_busy",
        "_byte_limit",
        "_chunk_bytes",
        "_chunk_events",
        "_chunks",
        "_done_pos",
        "_encode_fallbacks",
        "_encode_into",
        "_encoder",
        "_event_limit",
        "_evicted",
        "_full_at",
        "_internal",
        "_interrupted",
        "_last_report",
        "_lock",
        "_lock_owner",
        "_loop_thread",
        "_losses_reported",
        "_next_seq",
        "_open",
        "_open_events",
        "_open_levels",
        "_open_since",
        "_other_encoder",
        "_peak_bytes",
        "_peak_events",
        "_read_events",
        "_read_limit",
        "_read_pos",
        "_refused_unlocked",
        "_rejected",
        "_reports",
        "_room_gen",
        "_run_on_loop",
        "_seal_asked",
        "_sealed_bytes",
        "_sealed_events",
        "_share",
        "_side",
        "_side_bytes",
        "_side_events",
        "_thread_events",
        "_thread_levels",
        "_thread_open",
        "_thread_since",
        "_track_levels",
        "_wake",
        "_wake_threadsafe",
        "closed",
        "first_loss",
        "last_loss",
        "max_bytes",
        "max_event_bytes",
        "max_events",
        "overflow",
        "sleeping",
    )

    def __init__(
        self,
        *,
        max_events: int,
        max_bytes: int,
        max_event_bytes: int,
        overflow: Overflow,
        readers: int,
        track_levels: bool,
        loop_thread: int,
        wake: Callable[[], None],
        wake_threadsafe: Callable[[], None],
        run_on_loop: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self.overflow: Overflow = overflow
        self._track_levels = track_levels
        self._loop_thread = loop_thread
        self._wake = wake
        self._wake_threadsafe = wake_threadsafe
        # From another thread: have the loop seal its open chunk (see _thread_room).
        self._run_on_loop = run_on_loop
        self._seal_asked = False
        self._chunk_bytes = max(1, min(_CHUNK_BYTES, max_bytes // 8))
        self._chunk_events = max(1, max_events // 8)
        self._share = max_bytes // readers if readers > 1 else max_bytes
        # A read takes at most this much into flight: what is in flight cannot be evicted,
        # so under drop_oldest three quarters of a stalled queue stay evictable.
        self._read_limit = max(1, min(self._share, max_bytes // 4))
        self._read_events = max(1, max_events // 4 if readers == 1 else max_events // readers)

        self._encoder = new_encoder()
        self._encode_into = self._encoder.encode_into
        self._other_encoder = new_encoder()  # other threads and the re-entrant path

        # The loop thread's open chunk (written without the lock).
        self._open = bytearray()
        self._open_events = 0
        self._open_since = 0
        self._open_levels: array[int] | None = array("H") if track_levels else None
        self._busy = False
        # Other threads' open chunk, under the lock.
        self._lock = threading.Lock()
        self._lock_owner = _NOBODY
        self._thread_open = bytearray()
        self._thread_events = 0
        self._thread_since = 0
        self._thread_levels: array[int] | None = array("H") if track_levels else None
        # Lines from the re-entrant path and from threads that found the lock taken, with
        # their newline and level; counted before each is appended and after it is sealed,
        # so that the caps, read without the lock, never count one short.
        self._side: deque[tuple[bytes, int]] = deque()
        self._side_bytes = 0
        self._side_events = 0
        # alog's own reports (loop thread), sealed into chunks that are never evicted.
        self._internal: list[tuple[bytes, int]] = []  # (line with its newline, level)

        self._chunks: deque[Chunk] = deque()
        self._next_seq = 0
        self._sealed_events = 0
        self._sealed_bytes = 0
        self._read_pos = [0] * readers
        self._done_pos = [0] * readers
        # What the open chunk may still take; changed under the lock, read without it.
        self._byte_limit = self._chunk_bytes
        self._event_limit = self._chunk_events

        self.sleeping = False
        """A writer waits for events: the next put wakes it (read by the put, set by park)."""
        self.closed = False
        self._rejected = 0
        # A full queue refuses a loop's put without the lock while nothing changed since it
        # last refused one under it (_full_at == _room_gen): in a stall every call is refused,
        # and the locked check costs four times an accepted put. _room_gen counts whatever
        # could make room (every section, seal and eviction), always under the lock.
        self._room_gen = 0
        self._full_at = -1
        self._refused_unlocked = 0  # the loop thread's own count: no lock, no race
        self._evicted = 0
        self._interrupted = 0
        self._encode_fallbacks = 0
        self._peak_events = 0
        self._peak_bytes = 0
        self.first_loss = 0.0
        self.last_loss = 0.0
        self._losses_reported = 0
        self._last_report = 0.0
        self._reports = 0

    @contextmanager
    def _section(self) -> Iterator[None]:
        """Hold the lock, marked as this thread's (see the module's docstring)."""
        me = threading.get_ident()
        on_loop = me == self._loop_thread
        was_busy = self._busy
        if on_loop:
            self._busy = True
        self._lock.acquire()
        self._lock_owner = me
        self._room_gen += 1
        try:
            yield
        finally:
            self._lock_owner = _NOBODY
            self._lock.release()
            if on_loop:
                self._busy = was_busy

    def reentered(self) -> bool:
        """Is this thread inside one of the queue's sections (a signal handler, a repr)?"""
        if threading.get_ident() == self._loop_thread:
            return self._busy
        return self._lock_owner == threading.get_ident()

    # -- put --------------------------------------------------------------------------------

    @keyboard_interrupt_safe
    def put(self, event: dict[str, object], levelno: int) -> None:
        """Queue one event; from any thread; never raises an ``Exception``."""
        if _get_ident() != self._loop_thread:
            self._put_from_thread(event, levelno)
            return
        if self._busy:
            self._put_reentrant(event, levelno)
            return
        self._busy = True  # a section (see the module's docstring), marked before _open is read
        start = -1
        counted = False
        buf = self._open
        try:
            if len(buf) >= self._byte_limit or self._open_events >= self._event_limit:
                # The one check on the fast path: full, closed, or other threads' lines to
                # seal before this one (they zero the limit, see _set_limits).
                if self._full_at == self._room_gen:
                    self._refused_unlocked += 1  # refused just now, and nothing changed since
                    self._note_loss()
                    return
                if not self._make_room():
                    return
                buf = self._open
            start = len(buf)
            try:
                self._encode_into(event, buf, -1)
                if len(buf) - start > self.max_event_bytes:
                    raise ValueError("event larger than max_event_bytes")  # noqa: TRY301
            except Exception:  # noqa: BLE001 - bad values: the fallback encoder replaces them
                # A failed encode_into can leave bytes (newlines among them) past ``start``.
                del buf[start:]
                buf += encode_fallback(self._encoder, event, self.max_event_bytes)
                self._encode_fallbacks += 1
            buf.append(_NEWLINE)
            if not self._open_events:
                self._open_since = _counter()  # sealing keeps the order chunks were begun in
            self._open_events += 1
            counted = True  # no check for signals between these two: counted means kept
            if self._open_levels is not None:
                self._open_levels.append(min(levelno, 65535))
        except BaseException:
            # Ctrl-C inside a __repr__, or (trio raises it where it lands) anywhere in this
            # section: no partial line, ever, and the event is counted.
            if not counted:
                if start >= 0:
                    del buf[start:]
                self._interrupted += 1
                self._note_loss()
            raise
        finally:
            self._busy = False
        if self.sleeping:
            self.sleeping = False
            self._wake()

    def _encode_alone(self, event: dict[str, object]) -> bytes:
        try:
            try:
                data = self._other_encoder.encode(event)
            except Exception:  # noqa: BLE001 - handled by the fallback encoder
                data = b""
            if not data or len(data) > self.max_event_bytes:
                data = encode_fallback(self._other_encoder, event, self.max_event_bytes)
                self._encode_fallbacks += 1
        except BaseException:
            self._interrupted += 1  # Ctrl-C in a __repr__ (another thread, or re-entrant)
            self._note_loss()
            raise
        return data

    def _put_from_thread(self, event: dict[str, object], levelno: int) -> None:
        me = _get_ident()
        if self._lock_owner == me:
            self._put_reentrant(event, levelno)
            return
        data = self._encode_alone(event)
        if self._side or not self._lock.acquire(blocking=False):
            if self._put_unlocked(data, levelno):
                return
            # Bounded: a signal handler that interrupted this thread just before it marked
            # the lock as its own would otherwise wait for itself.
            if not self._lock.acquire(timeout=1.0):
                self._put_reentrant(event, levelno)
                return
        self._lock_owner = me
        try:
            size = len(data) + 1
            if (
                self._sealed_bytes + len(self._open) + len(self._thread_open) + size
                > self.max_bytes
                or self._sealed_events + self._open_events + self._thread_events >= self.max_events
                or self.closed
                or self._side
            ) and not self._thread_room(size):
                return
            if self._side:
                # This thread's earlier lines may wait there (see _put_unlocked): after them.
                self._side_events += 1
                self._side_bytes += size
                self._side.append((data + b"\n", levelno))
                self._event_limit = 0
            else:
                self._thread_open += data
                self._thread_open.append(_NEWLINE)
                if not self._thread_events:
                    self._thread_since = _counter()
                self._thread_events += 1
                levels = self._thread_levels
                if levels is not None:
                    levels.append(min(levelno, 65535))
                if (
                    len(self._thread_open) >= self._chunk_bytes
                    or self._thread_events >= self._chunk_events
                ):
                    self._seal_thread_chunk()
                    self._set_limits()
                else:  # the loop's next put seals this line first, and recounts its room
                    self._event_limit = 0
            wake = self.sleeping
            if wake:
                self.sleeping = False  # one hand-off wakes the writers; later calls need none
        finally:
            self._lock_owner = _NOBODY
            self._lock.release()
        if wake:
            self._wake_threadsafe()

    def _put_unlocked(self, data: bytes, levelno: int) -> bool:
        """Another thread holds the lock, or lines wait in ``_side``: append to ``_side``
        without the lock, while the caps are far (``_UNLOCKED_MARGIN``). A thread that waits
        for a lock whose owner waits for the GIL costs more than the call: eight threads
        logging at once reached a quarter of one thread's rate. False if the caps are near
        or the queue is closed: the caller takes the lock then."""
        line = data + b"\n"
        size = len(line)
        if (
            self.closed
            or self._held_bytes() + size * _UNLOCKED_MARGIN > self.max_bytes
            or self._held_events() + _UNLOCKED_MARGIN > self.max_events
        ):
            return False
        item = (line, levelno)
        self._side_events += 1
        self._side_bytes += size
        self._side.append(item)
        self._event_limit = 0  # the loop's next put seals it first (see _set_limits)
        if self.closed:
            self._take_back_after_close(item)
            return True
        if self.sleeping:
            self.sleeping = False
            self._wake_threadsafe()
        return True

    def _take_back_after_close(self, item: tuple[bytes, int]) -> None:
        """The queue closed while this line was appended: the close's last seal may have
        missed it, and nothing would seal it after. Under the lock (seals take it too): a
        line still waiting is taken back and counted as refused, as a put after the close."""
        if not self._lock.acquire(timeout=1.0):
            return  # a signal handler in this thread's own section: left for the next seal
        self._lock_owner = _get_ident()
        self._room_gen += 1
        try:
            for index, waiting in enumerate(self._side):
                if waiting is item:
                    del self._side[index]
                    self._side_events -= 1
                    self._side_bytes -= len(item[0])
                    self._rejected += 1
                    self._note_loss()
                    return
        finally:
            self._lock_owner = _NOBODY
            self._lock.release()

    def _put_reentrant(self, event: dict[str, object], levelno: int) -> None:
        data = self._encode_alone(event)
        if (
            self.closed
            or self._held_bytes() + len(data) >= self.max_bytes + self.max_event_bytes
            or self._held_events() >= self.max_events  # the interrupted put lands after
        ):
            self._rejected += 1
            self._note_loss()
            return
        self._side_events += 1
        self._side_bytes += len(data) + 1
        self._side.append((data + b"\n", levelno))

    def put_internal(self, event: dict[str, object], levelno: int = 30) -> None:
        """alog's own event (a loss report), past the caps: it stands for events already lost.

        Loop thread only.
        """
        data = encode_fallback(self._encoder, event, self.max_event_bytes)
        self._internal.append((data + b"\n", levelno))
        self._reports += 1
        if self.sleeping:
            self.sleeping = False
            self._wake()

    # -- room -------------------------------------------------------------------------------

    def _held_bytes(self) -> int:
        side = self._side_bytes  # a counter: the deque is appended to without the lock
        if self._internal:
            side += sum(len(line) for line, _ in self._internal)
        return self._sealed_bytes + len(self._open) + len(self._thread_open) + side

    def _held_events(self) -> int:
        unsealed = self._open_events + self._thread_events + self._side_events + len(self._internal)
        return self._sealed_events + unsealed

    def _full(self, size: int) -> bool:
        return (
            self._held_bytes() + size > self.max_bytes or self._held_events() + 1 > self.max_events
        )

    def _make_room(self) -> bool:
        """Loop thread, in put: seal what is open (other threads' lines first), make room.

        The open chunk reached its limit, or other threads have lines waiting: a line
        logged on the loop after another thread's call returned (an awaited ``to_thread``
        that logged, say) is so written after it, whatever the writers' timing. False if
        the event is refused (counted).
        """
        with self._section():
            if self.closed:
                self._rejected += 1
                self._note_loss()
                return False
            self._seal_open_chunks()
            ok = self._free_room(1) or self._refuse()
            self._set_limits()
            self._full_at = -1 if ok else self._room_gen  # see _room_gen
            return ok

    def _thread_room(self, size: int) -> bool:
        """Under the lock: is there room for ``size`` more bytes from another thread?"""
        if self.closed:
            self._rejected += 1
            self._note_loss()
            return False
        if not self._full(size):
            return True
        if self._thread_events:
            self._seal_thread_chunk()
        if (
            self.overflow == "drop_oldest"
            and self._open_events
            and self._run_on_loop is not None
            and not self._seal_asked
        ):
            # Only the loop may seal its open chunk, and until it does nobody can evict it:
            # its events, older than this flood perhaps, would outlive the flood's.
            self._seal_asked = True
            self._run_on_loop(self._seal_when_asked)
        if self._free_room(size):
            return True
        if (
            self.overflow == "drop_oldest"
            and self._open_events
            and self._held_bytes() - len(self._open) + size <= self.max_bytes
            and self._held_bytes() + size <= self.max_bytes + self.max_event_bytes
            and self._held_events() < self.max_events + 1
        ):
            # Only the loop's open chunk, which no other thread may evict, is in the way:
            # one event over the cap, as the loop's own put may go.
            return True
        return self._refuse()

    def _refuse(self) -> bool:
        self._rejected += 1
        self._note_loss()
        return False

    def _free_room(self, size: int) -> bool:
        """Under the lock: evict until ``size`` more bytes fit; False if the policy refuses."""
        while self._full(size):
            if not self._evict_over_share() and (
                self.overflow == "drop_newest" or not self._evict_oldest()
            ):
                return False
        return True

    def _in_flight(self, chunk: Chunk) -> bool:
        start = chunk.start
        end = chunk.end
        return any(
            done < end and read > start
            for read, done in zip(self._read_pos, self._done_pos, strict=True)
        )

    def _evict_oldest(self) -> bool:
        """Evict the chunk whose first event is the oldest, of those nobody is writing.

        By age, not by place: the loop's chunk, sealed after other threads' newer ones,
        is still the first to go.
        """
        oldest: tuple[int, Chunk] | None = None
        for index, chunk in enumerate(self._chunks):
            if chunk.keep or self._in_flight(chunk):
                continue
            if oldest is None or chunk.since < oldest[1].since:
                oldest = (index, chunk)
        if oldest is None:
            return False
        self._drop_chunk(*oldest)
        return True

    def _evict_over_share(self) -> bool:
        """A reader holding more than its share loses its oldest chunk nobody else needs."""
        if len(self._read_pos) < 2:
            return False
        for reader, done in enumerate(self._done_pos):
            held = sum(chunk.data.__len__() for chunk in self._chunks if chunk.end > done)
            if held <= self._share:
                continue
            read = self._read_pos[reader]
            for index, chunk in enumerate(self._chunks):
                if chunk.start < read or chunk.end <= done or chunk.keep:
                    continue  # in its flight, done, or alog's own report
                others = (d >= chunk.end for r, d in enumerate(self._done_pos) if r != reader)
                if all(others):
                    self._drop_chunk(index, chunk)
                    return True
        return False

    def _measure_peak(self) -> None:
        """Under the lock, before anything held is freed or evicted: the most held so far."""
        held_events = self._held_events()
        if held_events > self._peak_events:
            self._peak_events = held_events
        held_bytes = self._held_bytes()
        if held_bytes > self._peak_bytes:
            self._peak_bytes = held_bytes

    def _drop_chunk(self, index: int, chunk: Chunk) -> None:
        self._measure_peak()
        self._room_gen += 1
        del self._chunks[index]
        self._sealed_events -= chunk.events
        self._sealed_bytes -= len(chunk.data)
        self._evicted += chunk.events
        self._note_loss()

    def _note_loss(self) -> None:
        """Remember when this episode of losses began and when it last lost an event."""
        now = time.time()
        if not self.first_loss:
            self.first_loss = now
        self.last_loss = now

    def report_losses(self) -> bool:
        """Loop thread: queue an ``alog.dropped`` event for the losses since the last one.

        Called when a writer catches up (the end of an episode: at once if nothing is held,
        else at most once a second, so a lagging destination cannot cause a storm) and by the
        pipeline once a second (an episode that goes on). True if there was something to
        report.
        """
        lost = self._rejected + self._refused_unlocked + self._evicted + self._interrupted
        if lost == self._losses_reported or self.closed:
            return False
        first, last = self.first_loss or self.last_loss, self.last_loss
        self.first_loss = 0.0
        self.put_internal(
            {
                "time": stamp_now(),
                "level": "warning",
                "logger": "alog",
                "msg": "alog.dropped",
                "dropped": lost - self._losses_reported,
                "first_drop": timestamp(int(first * 1e9)),
                "last_drop": timestamp(int(last * 1e9)),
                "overflow": self.overflow,
                "max_events": self.max_events,
                "max_bytes": self.max_bytes,
            }
        )
        self._losses_reported = lost
        self._last_report = time.monotonic()
        return True

    def _set_limits(self) -> None:
        """Under the lock: what the loop's open chunk may take before its next check."""
        if self.closed:
            self._byte_limit = self._event_limit = _NEVER
            return
        others_bytes = self._held_bytes() - len(self._open)
        others_events = self._held_events() - self._open_events
        self._byte_limit = min(self._chunk_bytes, self.max_bytes - others_bytes)
        # Other threads' open lines: the loop's next put seals them before its own.
        self._event_limit = (
            0 if self._thread_events else min(self._chunk_events, self.max_events - others_events)
        )
        if self._side:  # after the store: a line appended meanwhile zeroes it again, or is seen
            self._event_limit = 0

    # -- sealing ----------------------------------------------------------------------------

    def _append_chunk(
        self,
        data: bytes | bytearray,
        events: int,
        levels: array[int] | None,
        since: int,
        *,
        keep: bool = False,
    ) -> None:
        self._chunks.append(Chunk(data, events, levels, self._next_seq, since=since, keep=keep))
        self._room_gen += 1
        self._next_seq += events
        self._sealed_events += events
        self._sealed_bytes += len(data)

    def _seal_thread_chunk(self) -> None:
        self._append_chunk(
            self._thread_open, self._thread_events, self._thread_levels, self._thread_since
        )
        self._thread_open = bytearray()
        self._thread_events = 0
        self._thread_levels = array("H") if self._track_levels else None

    def _seal_loop_chunk(self) -> None:
        """Under the lock, on the loop thread outside a put: seal its chunk.

        Only the loop's own thread may: another thread could be switched out between seeing
        the loop outside its section and sealing, while the loop starts writing into it.
        """
        self._append_chunk(self._open, self._open_events, self._open_levels, self._open_since)
        self._open = bytearray()
        self._open_events = 0
        self._open_levels = array("H") if self._track_levels else None

    def _seal_open_chunks(self) -> None:
        """Under the lock, on the loop thread outside a put: seal everything open.

        The chunk begun first is sealed first, so an event a thread logged before the loop's
        next one is written before it.
        """
        if self._thread_events and (not self._open_events or self._thread_since < self._open_since):
            self._seal_thread_chunk()
        if self._open_events:
            self._seal_loop_chunk()
        if self._thread_events:
            self._seal_thread_chunk()
        if self._side:
            self._seal_side()
        internal = self._internal
        if internal:
            self._internal = []
            levels = array("H", [level for _, level in internal]) if self._track_levels else None
            data = b"".join([line for line, _ in internal])
            self._append_chunk(data, len(internal), levels, _counter(), keep=True)

    def _seal_side(self) -> None:
        """Under the lock: seal the lines waiting in ``_side`` (the re-entrant path's, and
        other threads' that found the lock taken) as one chunk."""
        side = self._side
        lines: list[bytes] = []
        levels = array("H") if self._track_levels else None
        while side:
            line, levelno = side.popleft()
            lines.append(line)
            if levels is not None:
                levels.append(min(levelno, 65535))
        data = b"".join(lines)
        self._append_chunk(data, len(lines), levels, _counter())
        self._side_events -= len(lines)  # after the seal counted them (see __init__)
        self._side_bytes -= len(data)

    # -- the writers' side ------------------------------------------------------------------

    def read(self, reader: int, ahead: bool = False) -> tuple[list[Chunk], int]:
        """Loop thread: the chunks ``reader`` has not read, and the sequence number after them.

        Everything queued is sealed first. Chunks can have gaps between them (evicted ones);
        the second value lets the reader count a gap at the end too. ``ahead``: the reader
        reads again before it is done with what it read last (a file's writer keeps its
        thread busy); what it has in flight then counts against the read's limits, so that
        it never holds more in flight than one read would.
        """
        with self._section():
            self._seal_open_chunks()
            chunks, upto = self._unread(reader, ahead=ahead)
            self._set_limits()
            return chunks, upto

    def _unread(self, reader: int, *, ahead: bool = False) -> tuple[list[Chunk], int]:
        """Under the lock: what ``reader`` reads next, at most its share of bytes in flight.

        A stalled destination so holds no more than its share; the rest stays evictable.
        """
        position = self._read_pos[reader]
        chunks: list[Chunk] = []
        size = count = 0
        if ahead and position > self._done_pos[reader]:
            done = self._done_pos[reader]
            for chunk in self._chunks:  # in sequence order
                if chunk.start >= position:
                    break
                if chunk.end > done:
                    size += len(chunk.data)
                    count += chunk.events
            if size >= self._read_limit or count >= self._read_events:
                return chunks, position
        upto = self._next_seq
        for chunk in self._chunks:
            if chunk.start < position:
                continue
            if (chunks or size) and (
                size + len(chunk.data) > self._read_limit
                or count + chunk.events > self._read_events
            ):
                upto = chunk.start
                break
            chunks.append(chunk)
            size += len(chunk.data)
            count += chunk.events
        self._read_pos[reader] = upto
        return chunks, upto

    def read_from_thread(self, reader: int) -> tuple[list[Chunk], int]:
        """Another thread (a flush with the loop gone): only what is sealed or from threads
        (the loop's open chunk only the loop may seal)."""
        with self._section():
            if self._thread_events:
                self._seal_thread_chunk()
            if self._side:
                self._seal_side()
            return self._unread(reader)

    def done(self, reader: int, seq: int) -> None:
        """``reader`` has settled every event before ``seq``: free what nobody needs."""
        with self._section():
            if seq > self._done_pos[reader]:
                self._done_pos[reader] = seq
            self._measure_peak()
            floor = min(self._done_pos)
            chunks = self._chunks
            while chunks and chunks[0].end <= floor:
                chunk = chunks.popleft()
                self._sealed_events -= chunk.events
                self._sealed_bytes -= len(chunk.data)
            self._set_limits()

    def park(self) -> bool:
        """A writer is about to sleep: True if it may (nothing queued), and the next put wakes."""
        if (not self._sealed_events or self._last_report + 1.0 <= time.monotonic()) and (
            self.report_losses()
        ):
            return False
        self.sleeping = True
        if self.entered() > self._next_seq or self.closed:
            self.sleeping = False
            return False
        return True

    def entered(self) -> int:
        """Events that entered so far, sealed or not (a flush's target)."""
        unsealed = self._open_events + self._thread_events + len(self._side) + len(self._internal)
        return self._next_seq + unsealed

    def _seal_when_asked(self) -> None:
        """On the loop, between callbacks: another thread needs the open chunk evictable."""
        self._seal_asked = False
        if not self._busy:  # inside a put or a section: the next overflow asks again
            self.seal()

    def seal(self) -> int:
        """Loop thread: seal what is open; the sequence number after everything queued."""
        with self._section():
            self._seal_open_chunks()
            self._set_limits()
            return self._next_seq

    def close(self) -> int:
        """Refuse every event from now on (counted as rejected); returns the last seq + 1.

        Loop thread, or any thread once the loop is gone.
        """
        on_loop = threading.get_ident() == self._loop_thread and not self._busy
        with self._section():
            self.closed = True
            if on_loop:
                self._seal_open_chunks()
            elif self._thread_events:
                self._seal_thread_chunk()
            self._set_limits()
            return self._next_seq

    def discard(self) -> None:
        """Free every chunk (after a failure: the writers count what they lose)."""
        with self._section():
            self.closed = True
            self._measure_peak()
            self._chunks.clear()
            self._sealed_events = self._sealed_bytes = 0
            self._open = bytearray()
            self._open_events = 0
            self._thread_open = bytearray()
            self._thread_events = 0
            while self._side:
                self._side_bytes -= len(self._side.popleft()[0])
                self._side_events -= 1
            self._internal = []
            self._set_limits()

    def held_from(self, seq: int) -> int:
        """Events still held (sealed) from ``seq`` on: the rest before the end were evicted.

        Takes no lock (statistics are read from signal handlers too): a C-level copy of the
        chunk list, consistent under the GIL.
        """
        return sum(chunk.events for chunk in tuple(self._chunks) if chunk.start >= seq)

    def last_seq(self) -> int:
        """The sequence number after the last sealed event."""
        return self._next_seq

    # -- numbers ----------------------------------------------------------------------------

    def statistics(self) -> QueueStatistics:
        """The numbers, read under the lock so another thread's seal is never half counted.

        Without the lock, a read between a seal's two steps counts the sealed chunk twice
        (once sealed, once still open). A signal handler that interrupted this thread's own
        section cannot wait for the lock it holds: it reads without it, as does a caller
        that finds the lock held for longer than a section ever takes.
        """
        if self.reentered():
            return self._read_statistics()
        # Marked as a section while it waits and reads: a signal handler nesting in here
        # (the next timer tick, during a flush's wait for another thread's put) must not
        # wait for the lock its own thread holds; waiting nested, tick after tick, recursed.
        me = _get_ident()
        on_loop = me == self._loop_thread
        was_busy = self._busy
        if on_loop:
            self._busy = True
        try:
            if not self._lock.acquire(timeout=_STATISTICS_WAIT):
                return self._read_statistics()
            self._lock_owner = me
            try:
                return self._read_statistics()
            finally:
                self._lock_owner = _NOBODY
                self._lock.release()
        finally:
            if on_loop:
                self._busy = was_busy

    def _read_statistics(self) -> QueueStatistics:
        return QueueStatistics(
            entered=self.entered(),
            held=self._held_events(),
            held_bytes=self._held_bytes(),
            peak_held=max(self._peak_events, self._held_events()),
            peak_held_bytes=max(self._peak_bytes, self._held_bytes()),
            rejected=self._rejected + self._refused_unlocked,
            evicted=self._evicted,
            interrupted=self._interrupted,
            encode_fallbacks=self._encode_fallbacks,
            reports=self._reports,
        )


__all__ = ["Chunk", "EventQueue", "QueueStatistics"]
