"""The bounded queue between log calls and the writer: encoded JSON lines in a byte buffer.

A log call on the event loop's thread encodes its event straight into ``_buf`` (one msgspec
call into a reused buffer: the cheapest path measured here) and wakes the writer only when it
sleeps. Calls from other threads take a lock and use a buffer of their own, so the loop's path
never pays for the lock. The writer swaps buffers out in batches.

Bounds: events and bytes queued *or in flight* never exceed ``max_events`` / ``max_bytes``
(plus at most one event). ``_event_room`` / ``_byte_room`` are what the loop's buffer may
still take: the caps minus what is in flight and what other threads queued. They change only
under ``_lock``; the loop's path reads them without it.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

from ._context import context_fields
from ._encoding import encode_fallback, new_encoder, repr_fallback
from ._fields import UTC as _UTC
from ._fields import exception_fields, merge_fields, rfc3339, stamp_now
from ._fields import now as _now

if TYPE_CHECKING:
    from ._logger import Logger

Overflow = Literal["drop_newest", "drop_oldest"]

_NEVER: Final = -(2**62)
"""A room no queue can fit in: set when the writer has failed, so every call is a counted drop."""

_NEWLINE: Final = 10

_NO_THREAD: Final = -1
"""No thread's ident: the loop's while user code runs inside an encode (see _loop_enc_hook)."""


def _nothing() -> None:
    return None


def _evict_quarter(buf: bytearray, queued: int) -> tuple[int, int]:
    """drop_oldest: remove the oldest quarter of the ``queued`` lines; (events, bytes) gone.

    A quarter at once, so a sustained overflow costs one memmove per many events.
    """
    count = max(1, queued // 4)
    cut = 0
    for _ in range(count):
        cut = buf.find(b"\n", cut) + 1
    del buf[:cut]
    return count, cut


def _inside_emit() -> bool:
    """Is a log call on this thread's stack (so this code runs in a signal handler)?"""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _LEVEL_METHOD_CODE:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class EventQueue:
    """Encoded events waiting for the writer, capped in count and bytes."""

    def __init__(
        self,
        *,
        max_events: int,
        max_bytes: int,
        max_event_bytes: int,
        overflow: Overflow,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self.overflow: Overflow = overflow
        self._encoder = new_encoder(self._loop_enc_hook)
        self._encode_into = self._encoder.encode_into
        self._thread_encoder = new_encoder()
        self._loop_ident = threading.get_ident()

        self._buf = bytearray()
        self._accepted = 0
        self._taken = 0
        self._event_room = max_events
        self._byte_room = max_bytes

        self._lock = threading.Lock()
        self._thread_buf = bytearray()
        self._thread_accepted = 0
        self._thread_taken = 0

        self.inflight_events = 0
        self.inflight_bytes = 0
        self.failed = False
        self.rejected = 0  # never queued: full (drop_newest) or the writer had failed
        self.evicted = 0  # queued, then pushed out by drop_oldest
        self.undelivered = 0  # queued, then lost with a failed or timed-out writer
        self.encode_fallbacks = 0
        self.internal_errors = 0
        # Counted under the lock by other threads; kept apart so no update is lost.
        self.thread_rejected = 0
        self.thread_evicted = 0
        self.thread_encode_fallbacks = 0
        self.thread_internal_errors = 0
        self.first_drop = 0.0
        self.last_drop = 0.0
        self.drops_reported = 0

        self._methods: dict[tuple[int, str], Callable[..., None]] = {}
        self.writer_idle = False
        self.wake: Callable[[], None] = _nothing
        self.wake_threadsafe: Callable[[], None] = _nothing

    # -- the log call's path -------------------------------------------------------------

    def level_method(self, levelno: int, levelname: str) -> Callable[..., None]:
        """The body of ``Logger.info`` (etc.) while this queue is the sink: one call per event.

        Installed on the Logger class by ``_logger.set_threshold``; the level is baked in and
        the queue is a closure variable, so a log call costs a single Python call.
        """
        queue = self
        get_ident = threading.get_ident
        get_context = context_fields.get
        now = _now
        utc = _UTC
        encode_into = self._encode_into
        max_event_bytes = self.max_event_bytes

        def method(
            logger: Logger, msg: str, /, *, exc_info: object = None, **fields: object
        ) -> None:
            if get_ident() != queue._loop_ident:
                queue._emit_from_thread(logger, levelname, msg, fields, exc_info)
                return
            buf = queue._buf
            try:
                if (
                    queue._accepted - queue._taken >= queue._event_room
                    or len(buf) >= queue._byte_room
                ) and not queue._make_room():
                    return
                # Built and encoded here, inline, because this is the hot path: values are
                # captured as they are at the call, and the writer only moves bytes.
                ts: datetime.datetime | str = now(utc)
                if not ts.microsecond:  # type: ignore[union-attr]
                    ts = rfc3339(ts)  # type: ignore[arg-type]  # keep the shape: 1 in 10^6
                name = logger._name
                bound = logger._bound
                context = get_context()
                event: dict[str, object]
                if bound or context:
                    event = {"time": ts, "level": levelname, "logger": name, "msg": msg}
                    if bound:
                        event.update(bound)
                    if context:
                        event.update(context)
                    size = len(event)
                    event.update(fields)
                    collided = len(event) != size + len(fields)
                else:  # the common case, one dict display
                    event = {"time": ts, "level": levelname, "logger": name, "msg": msg, **fields}
                    collided = len(event) != 4 + len(fields)
                if collided:  # overlapping keys: let merge_fields sort out core-key clashes
                    event = merge_fields(
                        {"time": ts, "level": levelname, "logger": name, "msg": msg},
                        bound,
                        context,
                        fields,
                    )
                if exc_info is not None:
                    described = exception_fields(exc_info)
                    if described is not None:
                        event["exception"] = described
                start = len(buf)
                try:
                    encode_into(event, buf, -1)
                except Exception:  # noqa: BLE001 - handled by the fallback encoder
                    queue._encode_slowly(event, buf, start)
                else:
                    if len(buf) - start > max_event_bytes:
                        queue._encode_slowly(event, buf, start)
                buf.append(10)  # b"\n"
                queue._accepted += 1
                if queue.writer_idle:
                    queue.wake()
            except Exception:  # noqa: BLE001 - a log call never raises into the application
                queue.internal_errors += 1

        method.__name__ = method.__qualname__ = levelname
        method.__doc__ = f"Log at level ``{levelname}``."
        return method

    def emit(
        self,
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: str,
        fields: dict[str, object],
        exc_info: object,
        /,
    ) -> None:
        """Queue one event (the generic path: ``log.log``, the stdlib bridge); never raises."""
        method = self._methods.get((levelno, levelname))
        if method is None:
            method = self._methods[levelno, levelname] = self.level_method(levelno, levelname)
        method(logger, msg, exc_info=exc_info, **fields)

    def _loop_enc_hook(self, value: object) -> object:
        """The loop encoder's hook for unknown types: user code (``__repr__``) runs mid-encode.

        A log call made from that ``__repr__`` must not write into the buffer msgspec is
        encoding into (that crashed the interpreter), so while the hook runs, this thread
        takes the path of other threads: the lock and a buffer of their own.
        """
        ident, self._loop_ident = self._loop_ident, _NO_THREAD
        try:
            return repr_fallback(value)
        finally:
            self._loop_ident = ident

    def _encode_slowly(self, event: dict[str, object], buf: bytearray, start: int) -> None:
        # A failed encode_into can leave uninitialised bytes (newlines among them) past
        # ``start``; nothing else touches the buffer during a call (see take_complete_lines).
        del buf[start:]
        buf += encode_fallback(self._encoder, event, self.max_event_bytes)
        self.encode_fallbacks += 1

    def _note_drop(self) -> None:
        """Remember when this episode of losses began and when it last lost an event."""
        now = time.time()
        if not self.first_drop or self.dropped == self.drops_reported:
            self.first_drop = now
        self.last_drop = now

    def _make_room(self) -> bool:
        """Called when the loop's buffer is full: evict the oldest (policy) or drop this one."""
        self._note_drop()
        queued = self._accepted - self._taken
        if self.failed or self.overflow == "drop_newest" or not queued:
            self.rejected += 1
            return False
        count, _ = _evict_quarter(self._buf, queued)
        self._taken += count
        self.evicted += count
        return True

    def _emit_from_thread(
        self,
        logger: Logger,
        levelname: str,
        msg: str,
        fields: dict[str, object],
        exc_info: object,
    ) -> None:
        try:
            event = merge_fields(
                {
                    "time": stamp_now(),
                    "level": levelname,
                    "logger": logger.name,
                    "msg": msg,
                },
                logger._bound,
                context_fields.get(),
                fields,
            )
            if exc_info is not None:
                described = exception_fields(exc_info)
                if described is not None:
                    event["exception"] = described
            try:
                data = self._thread_encoder.encode(event)
            except Exception:  # noqa: BLE001 - handled by the fallback encoder
                data = b""
            if not data or len(data) > self.max_event_bytes:
                data = encode_fallback(self._thread_encoder, event, self.max_event_bytes)
                with self._lock:
                    self.thread_encode_fallbacks += 1
            with self._lock:
                if not self._thread_room():
                    return
                self._thread_buf += data
                self._thread_buf.append(_NEWLINE)
                self._thread_accepted += 1
                self._event_room -= 1
                self._byte_room -= len(data) + 1
                idle = self.writer_idle
            if idle:
                self.wake_threadsafe()
        except Exception:  # noqa: BLE001 - a log call never raises into the application
            with self._lock:
                self.thread_internal_errors += 1

    def _thread_room(self) -> bool:
        """Under the lock: is there room for one more event from another thread?"""
        if self._accepted - self._taken < self._event_room and len(self._buf) < self._byte_room:
            return True
        self._note_drop()
        queued = self._thread_accepted - self._thread_taken
        if self.failed or self.overflow == "drop_newest" or not queued:
            self.thread_rejected += 1
            return False
        count, cut = _evict_quarter(self._thread_buf, queued)
        self._thread_taken += count
        self.thread_evicted += count
        self._event_room += count
        self._byte_room += cut
        return True

    # -- the writer's side ----------------------------------------------------------------

    def take(self) -> list[tuple[bytearray, int]]:
        """Everything queued, as (lines, event count) chunks now in flight (writer task only)."""
        chunks: list[tuple[bytearray, int]] = []
        with self._lock:
            count = self._accepted - self._taken
            if count:
                buf = self._buf
                self._buf = bytearray()
                self._taken += count
                self._event_room -= count
                self._byte_room -= len(buf)
                chunks.append((buf, count))
            count = self._thread_accepted - self._thread_taken
            if count:
                chunks.append((self._thread_buf, count))
                self._thread_buf = bytearray()
                self._thread_taken += count
            for chunk, events in chunks:
                self.inflight_events += events
                self.inflight_bytes += len(chunk)
        return chunks

    def take_complete_lines(self, timeout: float) -> list[tuple[bytes, int]]:
        """Like :meth:`take`, but safe inside a signal handler that interrupted a log call.

        It copies complete lines out and leaves the buffer object in place, so an interrupted
        call finishes its line into the same buffer; the lock is only waited for ``timeout``.
        """
        chunks: list[tuple[bytes, int]] = []
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            return chunks
        try:
            buf = self._buf
            # A signal handler that interrupted a log call on this thread leaves the loop's
            # buffer alone: the call holds offsets into it.
            cut = 0 if _inside_emit() else buf.rfind(b"\n") + 1
            if cut:
                data = bytes(buf[:cut])
                del buf[:cut]
                count = data.count(b"\n")
                self._taken += count
                self._event_room -= count
                self._byte_room -= cut
                chunks.append((data, count))
            count = self._thread_accepted - self._thread_taken
            if count:
                chunks.append((bytes(self._thread_buf), count))
                self._thread_buf = bytearray()
                self._thread_taken += count
            for chunk, events in chunks:
                self.inflight_events += events
                self.inflight_bytes += len(chunk)
        finally:
            self._lock.release()
        return chunks

    def release(self, events: int, nbytes: int) -> None:
        """Events left flight (written or lost): give their room back."""
        with self._lock:
            self.inflight_events -= events
            self.inflight_bytes -= nbytes
            if not self.failed:
                self._event_room += events
                self._byte_room += nbytes

    def put_internal(self, event: dict[str, object]) -> None:
        """Queue alog's own event (the drop summary), past the caps: it replaces lost ones."""
        self._buf += encode_fallback(self._encoder, event, self.max_event_bytes)
        self._buf.append(_NEWLINE)
        self._accepted += 1

    def fail(self) -> int:
        """The writer is gone: free what is queued and refuse from now on; returns the loss."""
        with self._lock:
            self.failed = True
            self._event_room = _NEVER
            self._byte_room = _NEVER
            lost = self._accepted - self._taken + self._thread_accepted - self._thread_taken
            self._taken = self._accepted
            self._thread_taken = self._thread_accepted
            self._buf = bytearray()
            self._thread_buf = bytearray()
            self.undelivered += lost
        return lost

    def abandon_queued(self) -> int:
        """At the end of shutdown: count what could not be written in time as undelivered."""
        with self._lock:
            lost = self._accepted - self._taken + self._thread_accepted - self._thread_taken
            self._taken = self._accepted
            self._thread_taken = self._thread_accepted
            self._buf = bytearray()
            self._thread_buf = bytearray()
            self.undelivered += lost
        return lost

    # -- numbers --------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Events lost to overflow or refused after the writer failed."""
        return self.rejected + self.evicted + self.thread_rejected + self.thread_evicted

    @property
    def accepted(self) -> int:
        """Events that entered the queue (including alog's own)."""
        return self._accepted + self._thread_accepted

    @property
    def queued(self) -> int:
        """Events waiting for the writer, not counting those in flight."""
        return self._accepted - self._taken + self._thread_accepted - self._thread_taken

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the writer, not counting those in flight."""
        return len(self._buf) + len(self._thread_buf)


_LEVEL_METHOD_CODE: Final = next(
    const
    for const in EventQueue.level_method.__code__.co_consts
    if isinstance(const, types.CodeType) and const.co_name == "method"
)
"""The code of every level method :meth:`EventQueue.level_method` makes (for _inside_emit)."""
