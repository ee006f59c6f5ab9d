"""``alog.run``: the pipeline's life, from installing the queue to the last drained byte."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import threading
import time
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Final, NoReturn, final

import anyio
import anyio.abc

# anyio imports its asyncio backend on first use, inside the running loop: about 20 ms here,
# a visible stall of the app's loop when a pipeline starts. Import it with alog instead (if a
# future anyio moves it, it simply loads on first use again).
with contextlib.suppress(ImportError):
    import anyio._backends._asyncio

from . import _levels, _logger, _state
from ._destinations import Stdout, check_destination, open_stream
from ._exceptions import WriterFailed
from ._fields import stamp_now
from ._queue import EventQueue, Overflow
from ._records import FlushResult, Statistics, WriterState
from ._signals import SigtermHandler, check_can_handle_sigterm
from ._writer import Writer

if TYPE_CHECKING:
    from .typing import Destination

DEFAULT_MAX_EVENTS: Final = 100_000
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES: Final = 64 * 1024


def _positive(name: str, value: float, *, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


@final
class Pipeline:
    """A running queue + writer pair; get one from ``async with alog.run(...) as pipeline``."""

    def __init__(
        self,
        destination: Destination | anyio.abc.ByteSendStream | None = None,
        /,
        *,
        level: str | int = "info",
        levels: Mapping[str, int] | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        overflow: Overflow = "drop_newest",
        write_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        handle_sigterm: bool = False,
    ) -> None:
        _positive("max_events", max_events, integer=True)
        _positive("max_bytes", max_bytes, integer=True)
        _positive("max_event_bytes", max_event_bytes, integer=True)
        _positive("write_timeout", write_timeout, integer=False)
        _positive("shutdown_timeout", shutdown_timeout, integer=False)
        if max_event_bytes > max_bytes:
            raise ValueError(
                f"max_event_bytes ({max_event_bytes}) cannot exceed max_bytes ({max_bytes})"
            )
        if overflow not in ("drop_newest", "drop_oldest"):
            raise ValueError(f"overflow must be 'drop_newest' or 'drop_oldest', got {overflow!r}")
        if levels:
            _levels.register(levels)
        self.level = _levels.number_of(level)
        self.destination = Stdout() if destination is None else destination
        check_destination(self.destination)
        self.write_timeout = float(write_timeout)
        self.shutdown_timeout = float(shutdown_timeout)
        self._queue = EventQueue(
            max_events=max_events,
            max_bytes=max_bytes,
            max_event_bytes=max_event_bytes,
            overflow=overflow,
        )
        self._writer: Writer | None = None
        self._state: WriterState = "starting"
        self._entered = False
        self._task_group: anyio.abc.TaskGroup | None = None
        self._writer_scope: anyio.CancelScope | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.handle_sigterm = bool(handle_sigterm)
        self._sigterm: SigtermHandler | None = None

    def __repr__(self) -> str:
        return f"<alog.Pipeline {self.state} to {self.destination!r}>"

    @property
    def state(self) -> WriterState:
        """``starting``, ``running``, ``closing``, ``closed`` or ``failed``."""
        if self._writer is not None and self._writer.state == "failed":
            return "failed"
        return self._state

    # -- life -----------------------------------------------------------------------------

    async def __aenter__(self) -> Pipeline:
        if self._entered:
            raise RuntimeError("a pipeline can be run only once; call alog.run() again")
        if _state.pipeline is not None:
            raise RuntimeError(
                f"another alog pipeline is already running ({_state.pipeline!r}); "
                "one process runs one pipeline"
            )
        if self.handle_sigterm:
            check_can_handle_sigterm()
        self._entered = True
        self._loop = asyncio.get_running_loop()
        self._queue._loop_ident = threading.get_ident()
        _state.pipeline = self  # claimed before the first await: two runs cannot race
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self._run_writer)
        except BaseException as error:
            _state.pipeline = None
            self._state = "failed"
            try:
                await task_group.__aexit__(type(error), error, error.__traceback__)
            except BaseExceptionGroup as group:
                _raise_unwrapped(group)
            raise
        self._task_group = task_group
        self._state = "running"
        _state.sink = self._queue
        _logger.set_threshold(self.level)
        atexit.register(self._at_exit)
        if self.handle_sigterm:
            self._sigterm = SigtermHandler(
                self._loop,
                announce=self._announce_sigterm,
                stop_app=task_group.cancel_scope.cancel,
                stop_draining=self._stop_draining,
            )
            self._sigterm.install()
        return self

    def _announce_sigterm(self) -> None:
        queue = self._queue
        if queue.failed or self._writer is None:
            return
        # Past the caps, like the drop summary: a full queue must not hide why the log ends.
        queue.put_internal(
            {
                "time": stamp_now(),
                "level": "warning",
                "logger": "alog",
                "msg": "alog.sigterm",
                "action": "draining the log, then a normal exit",
            }
        )
        self._writer.wake()

    def _stop_draining(self) -> None:
        if self._writer_scope is not None:
            self._writer_scope.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self._begin_close()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            _raise_unwrapped(group)
        finally:
            self._uninstall()

    def _begin_close(self) -> None:
        if self._state == "running":
            self._state = "closing"
        writer = self._writer
        if writer is not None:
            writer.closing = True
            writer.wake()
        if self._writer_scope is not None:
            self._writer_scope.deadline = anyio.current_time() + self.shutdown_timeout

    def _uninstall(self) -> None:
        if _state.pipeline is self:
            _state.sink = _state.fallback
            _state.pipeline = None
            _logger.set_threshold(0)
        if self._state != "failed":
            self._state = "closed"
        if self._writer is not None and self._writer.state != "failed":
            self._writer.state = "closed"
        atexit.unregister(self._at_exit)
        if self._sigterm is not None:
            self._sigterm.uninstall()
            self._sigterm = None

    async def _run_writer(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Shielded: the writer keeps draining when the app is cancelled; only its own
        # deadline (set at close to shutdown_timeout) or a failure ends it early.
        with anyio.CancelScope(shield=True) as scope:
            self._writer_scope = scope
            description = repr(self.destination)
            try:
                with anyio.fail_after(self.write_timeout):
                    stream = await open_stream(self.destination)
            except Exception as error:
                raise WriterFailed(description, error, 0) from error
            description = getattr(stream, "description", description)
            if hasattr(stream, "stall_timeout"):
                stream.stall_timeout = self.write_timeout
            loop = self._loop
            assert loop is not None
            writer = Writer(
                self._queue,
                stream,
                description=description,
                write_timeout=self.write_timeout,
                loop=loop,
            )
            self._writer = writer
            task_status.started()
            try:
                await self._write_until_closed(writer, scope)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    await stream.aclose()
        if scope.cancelled_caught:
            writer.abandon(f"shutdown_timeout ({self.shutdown_timeout:g} s) expired")

    async def _write_until_closed(self, writer: Writer, scope: anyio.CancelScope) -> None:
        while True:
            try:
                await writer.run()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if scope.cancel_called or task is None:
                    raise
                # A cancel from outside anyio, which no shield stops: asyncio.run cancels
                # every task left when main returns, this one included. Drain anyway, as a
                # normal close does, within shutdown_timeout.
                task.uncancel()
                self._begin_close()
            else:
                return

    def _at_exit(self) -> None:
        # Only reached when the process exits with this pipeline never closed.
        warnings.warn(
            f"{self!r} was never closed; flushing at exit (use 'async with alog.run()')",
            ResourceWarning,
            stacklevel=1,
        )
        self.flush(timeout=self.shutdown_timeout)

    # -- observing ------------------------------------------------------------------------

    def statistics(self) -> Statistics:
        """A snapshot of queue depth, losses, throughput and writer state."""
        queue = self._queue
        writer = self._writer
        return Statistics(
            state=self.state,
            queued=queue.queued + queue.inflight_events,
            queued_bytes=queue.queued_bytes + queue.inflight_bytes,
            peak_queued=writer.peak_queued if writer else 0,
            peak_queued_bytes=writer.peak_queued_bytes if writer else 0,
            accepted=queue.accepted,
            written=writer.written if writer else 0,
            dropped=queue.dropped,
            undelivered=queue.undelivered,
            bytes_written=writer.bytes_written if writer else 0,
            batches=writer.batches if writer else 0,
            write_errors=writer.write_errors if writer else 0,
            encode_fallbacks=queue.encode_fallbacks + queue.thread_encode_fallbacks,
            internal_errors=queue.internal_errors + queue.thread_internal_errors,
            last_write_seconds=writer.last_write_seconds if writer else 0.0,
            max_write_seconds=writer.max_write_seconds if writer else 0.0,
        )

    # -- flushing -------------------------------------------------------------------------

    def _settled(self) -> int:
        """Accepted events that are written or definitely lost."""
        queue = self._queue
        written = self._writer.written if self._writer else 0
        return written + queue.evicted + queue.thread_evicted + queue.undelivered

    def _result(self, target: int, written: int, dropped: int) -> FlushResult:
        writer = self._writer
        pending = max(0, target - self._settled())
        return FlushResult(
            written=(writer.written if writer else 0) - written,
            pending=pending,
            dropped=self._queue.dropped + self._queue.undelivered - dropped,
            timed_out=pending > 0,
            state=self.state,
        )

    def flush(self, timeout: float = 5.0) -> FlushResult:
        """Write what is queued, waiting at most ``timeout`` seconds; from any thread.

        On the loop's own thread (sync code, a signal handler) the writing is done right
        here, with the deadline; elsewhere this waits for the writer task. It never raises
        on timeout and never deadlocks: the result says what was and was not written.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        writer = self._writer
        queue = self._queue
        target = queue.accepted
        written = writer.written if writer else 0
        dropped = queue.dropped + queue.undelivered
        if writer is None or self.state in ("closed", "failed", "starting"):
            return self._result(target, written, dropped)
        loop = self._loop
        loop_gone = loop is None or loop.is_closed() or not loop.is_running()
        if threading.get_ident() == queue._loop_ident or loop_gone:
            writer.write_here(deadline)
            return self._result(target, written, dropped)
        writer.wake_threadsafe()
        with writer.progress_cond:
            writer.thread_waiters += 1
            try:
                writer.progress_cond.wait_for(
                    lambda: self._settled() >= target or self.state in ("closed", "failed"),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
            finally:
                writer.thread_waiters -= 1
        return self._result(target, written, dropped)

    async def aflush(self, timeout: float = 5.0) -> FlushResult:
        """Wait (at most ``timeout`` seconds) until what is queued now is written."""
        writer = self._writer
        queue = self._queue
        target = queue.accepted
        written = writer.written if writer else 0
        dropped = queue.dropped + queue.undelivered
        if writer is not None:
            writer.wake()
            writer.async_waiters += 1
            try:
                with anyio.move_on_after(timeout):
                    while self._settled() < target and self.state not in ("closed", "failed"):
                        await writer.progress.wait()
            finally:
                writer.async_waiters -= 1
        return self._result(target, written, dropped)


def _raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise what the user can catch plainly: the writer's failure, or the body's own error."""
    failed = group.subgroup(WriterFailed)
    if failed is not None:
        failure = _first_leaf(failed)
        raise failure from failure.error
    if len(group.exceptions) == 1:
        raise group.exceptions[0] from None
    raise group


def _first_leaf(group: BaseExceptionGroup[WriterFailed]) -> WriterFailed:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def run(
    destination: Destination | anyio.abc.ByteSendStream | None = None,
    /,
    *,
    level: str | int = "info",
    levels: Mapping[str, int] | None = None,
    max_events: int = DEFAULT_MAX_EVENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    overflow: Overflow = "drop_newest",
    write_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    handle_sigterm: bool = False,
) -> Pipeline:
    """Run a logging pipeline for the ``async with`` block: ``async with alog.run() as p:``.

    The writer runs in a task group with the block. If it fails for good, the block is
    cancelled and :class:`alog.WriterFailed` is raised from it. Leaving the block drains the
    queue for at most ``shutdown_timeout`` seconds. Configuration is checked here, at once.
    ``handle_sigterm=True`` (for plain ``asyncio.run`` programs, main thread only) turns
    SIGTERM into cancelling the block, a drain and a normal exit; see docs/reliability.md.
    """
    return Pipeline(
        destination,
        level=level,
        levels=levels,
        max_events=max_events,
        max_bytes=max_bytes,
        max_event_bytes=max_event_bytes,
        overflow=overflow,
        write_timeout=write_timeout,
        shutdown_timeout=shutdown_timeout,
        handle_sigterm=handle_sigterm,
    )


def flush(timeout: float = 5.0) -> FlushResult:
    """Flush the running pipeline, from anywhere; with none running, nothing is pending."""
    pipeline = _state.pipeline
    if pipeline is None:
        return FlushResult(written=0, pending=0, dropped=0, timed_out=False, state="closed")
    return pipeline.flush(timeout)
