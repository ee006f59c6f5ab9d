"""``alog.run``: a pipeline's life, from installing the sink to the last drained byte.

The pipeline owns the lifecycle and reads the numbers of the units it built: the
:class:`~alog._intake.Intake` (log calls in), the :class:`~alog._queue.EventQueue` (the bound)
and one :class:`~alog._writer.DestinationWriter` per destination (the books of each). It
assigns none of their attributes; it calls their methods.

Life: ``__aenter__`` opens every destination (a required one that cannot be opened fails the
start), then installs the sink and the loggers' thresholds. Leaving the block drains, within
``shutdown_timeout``, in two steps that always end: what was queued when the block ended, and
what other tasks and threads logged meanwhile; then the queue is closed (later calls are
refused and counted as dropped), the last events are written and the sink is uninstalled.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, NoReturn, final

import anyio
import anyio.abc
import anyio.to_thread

# anyio imports its asyncio backend on first use, inside the running loop: about 20 ms here,
# a visible stall of the app's loop when a pipeline starts. Import it with alog instead (if a
# future anyio moves it, it simply loads on first use again).
with contextlib.suppress(ImportError):
    import anyio._backends._asyncio

from . import _levels, _logger, _state
from ._backend import Loop, keyboard_interrupt_safe
from ._destinations import Stdout, check_destination, destination_options
from ._exceptions import WriterFailed
from ._fallback import LostAfterFailure
from ._fields import protect_core_keys, stamp_now
from ._intake import Intake
from ._process import read_process_fields
from ._progress import Progress
from ._queue import EventQueue
from ._records import FlushResult, Statistics
from ._redact import Redaction, compile_redaction
from ._report import said_once, to_stderr
from ._signals import SighupHandler, SigtermHandler, check_can_handle_sigterm
from ._storm import RateSpec, SampleSpec, StormControl
from ._writer import DestinationWriter
from .typing import Overflow, WriterState

if TYPE_CHECKING:
    from .typing import Destination, Processor

DEFAULT_MAX_EVENTS: Final = 100_000
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES: Final = 64 * 1024
LOSS_REPORT_INTERVAL: Final = 1.0
"""While events are being lost, an ``alog.dropped`` report at least this often (seconds)."""
_LONGEST_WAIT: Final = 365 * 86400.0
"""Timeouts beyond a year are a year: no clock or wait primitive overflows."""


def _ignore(event: dict[str, object], levelno: int, /) -> None:
    """Where the configuration check's storm control would report (it never does)."""


def _positive(name: str, value: float, *, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _wait_seconds(timeout: object) -> float:
    """Any timeout a user may pass, as seconds to wait: never raises (NaN, inf, junk...)."""
    try:
        seconds = float(timeout)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float: as long as we ever wait
        return _LONGEST_WAIT
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(seconds) or seconds <= 0:
        return 0.0
    return min(seconds, _LONGEST_WAIT)


@final
class Pipeline:
    """Writers, a queue and the sink; get one from ``async with alog.run(...) as pipeline``."""

    def __init__(
        self,
        *destinations: Destination | anyio.abc.ByteSendStream,
        level: str | int = "info",
        loggers: Mapping[str, str | int] | None = None,
        levels: Mapping[str, int] | None = None,
        fields: Mapping[str, object] | None = None,
        processors: Sequence[Processor] = (),
        otel: bool = False,
        redact: Iterable[str] | None = None,
        censor: object = "[redacted]",
        remove: bool = False,
        rate_limit: RateSpec | None = None,
        sample: SampleSpec | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        overflow: Overflow = "drop_newest",
        write_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        handle_sigterm: bool = False,
        reopen_on_sighup: bool = False,
    ) -> None:
        if not isinstance(reopen_on_sighup, bool):
            raise TypeError(f"reopen_on_sighup must be True or False, got {reopen_on_sighup!r}")
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
        self.loggers: dict[str, int] = {}
        for name, threshold in (loggers or {}).items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"loggers= maps logger names to levels; got the key {name!r}")
            self.loggers[name] = _levels.number_of(threshold)
        if fields is not None and not isinstance(fields, Mapping):
            raise TypeError(f"fields= must be a mapping, got {type(fields).__name__}")
        self.fields = protect_core_keys(fields) if fields else {}
        if isinstance(processors, str | bytes) or not isinstance(processors, Sequence):
            raise TypeError("processors= must be a list of callables")
        for processor in processors:
            if not callable(processor):
                raise TypeError(f"a processor must be callable, got {processor!r}")
        if not isinstance(otel, bool):
            raise TypeError(f"otel= must be True or False, got {otel!r}")
        self.otel = otel
        self._trace = _trace_context() if otel else None
        self.processors = tuple(processors)
        # Compiled here to fail at once on a bad path; again at start, with the
        # process-wide rules of alog.set_redaction() in force then.
        if isinstance(redact, Iterable) and not isinstance(redact, str | bytes):
            redact = tuple(redact)  # an iterator is read once, here
        compile_redaction(redact, censor=censor, remove=remove)
        self._redact_options = (redact or (), censor, remove)
        self._redaction: Redaction | None = None
        StormControl(rate_limit=rate_limit, sample=sample, report=_ignore)  # checks them
        self._storm_options = (rate_limit, sample)
        self.destinations = destinations or (Stdout(),)
        self._destination_levels: list[int | None] = []
        self._required: list[bool] = []
        for destination in self.destinations:
            check_destination(destination)
            dest_level, required = destination_options(destination)
            self._destination_levels.append(
                None if dest_level is None else _levels.number_of(dest_level)
            )
            self._required.append(required)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self.overflow: Overflow = overflow
        self.write_timeout = float(write_timeout)
        self.shutdown_timeout = float(shutdown_timeout)
        self.handle_sigterm = bool(handle_sigterm)
        self.reopen_on_sighup = reopen_on_sighup
        self._state: WriterState = "starting"
        self._entered = False
        self._loop: Loop | None = None
        self._queue: EventQueue | None = None
        self._intake: Intake | None = None
        self._writers: list[DestinationWriter] = []
        self._progress: Progress | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._sigterm: SigtermHandler | None = None
        self._sighup: SighupHandler | None = None
        self._failed_on: str | None = None
        self._refused_before_failure = 0

    def __repr__(self) -> str:
        names = ", ".join(repr(destination) for destination in self.destinations)
        return f"<alog.Pipeline {self.state} to {names}>"

    @property
    def state(self) -> WriterState:
        """``starting``, ``running``, ``closing``, ``closed`` or ``failed``."""
        return self._state

    def sink(self) -> Intake | None:
        """Where this pipeline's log calls arrive (for alog.testing to put back)."""
        return self._intake

    # -- levels ---------------------------------------------------------------------------

    @keyboard_interrupt_safe
    def set_level(self, level: str | int, *, logger: str | None = None) -> None:
        """Change the default threshold, or one logger's (and its children's); any thread.

        It takes effect at once, for loggers created before the call too.
        """
        number = _levels.number_of(level)
        if logger is None:
            self.level = number
        else:
            if not isinstance(logger, str) or not logger:
                raise TypeError(f"logger= is a logger name, got {logger!r}")
            self.loggers[logger] = number
        if _state.pipeline is self:
            _logger.set_level(number, logger)

    @keyboard_interrupt_safe
    def reopen(self) -> bool:
        """Reopen every file by its path (after logrotate moved it); from any thread.

        Also safe in a signal handler: it only hands the request to the loop and returns at
        once. Each file's writer then writes what it already took to the old file and opens
        the path again between two batches (``statistics()``: ``reopens``); no line is lost
        or split. Other destinations are unaffected. False when the pipeline is not running.
        """
        loop = self._loop
        if loop is None or self._state != "running":
            return False
        return loop.call_soon_threadsafe(self._request_reopen)

    def _request_reopen(self) -> None:
        if self._state == "running":
            for writer in self._writers:
                writer.request_reopen()

    # -- life -----------------------------------------------------------------------------

    @keyboard_interrupt_safe
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
        if self.reopen_on_sighup:
            check_can_handle_sigterm("reopen_on_sighup")
        self._entered = True
        loop = self._loop = Loop()
        progress = self._progress = Progress(loop.thread_ident)
        wakeups = [loop.new_wakeup() for _ in self.destinations]

        def wake_writers() -> None:
            for wakeup in wakeups:
                wakeup.set()

        def wake_writers_threadsafe() -> None:
            loop.call_soon_threadsafe(wake_writers)

        queue = self._queue = EventQueue(
            max_events=self.max_events,
            max_bytes=self.max_bytes,
            max_event_bytes=self.max_event_bytes,
            overflow=self.overflow,
            readers=len(self.destinations),
            track_levels=any(level is not None for level in self._destination_levels),
            loop_thread=loop.thread_ident,
            wake=wake_writers,
            wake_threadsafe=wake_writers_threadsafe,
            run_on_loop=loop.call_soon_threadsafe,
        )
        self._writers = [
            DestinationWriter(
                queue,
                index,
                destination,
                level=self._destination_levels[index],
                required=self._required[index],
                write_timeout=self.write_timeout,
                wakeup=wakeups[index],
                progress=progress,
                loop_thread=loop.thread_ident,
                loop=loop,
            )
            for index, destination in enumerate(self.destinations)
        ]
        paths, censor, remove = self._redact_options
        self._redaction = compile_redaction(
            paths, censor=censor, remove=remove, base=_state.process_redaction
        )
        rate_limit, sample = self._storm_options
        self._intake = Intake(
            queue,
            fields=read_process_fields(self.fields),  # pid, hostname: this process's, now
            processors=self.processors,
            redaction=self._redaction,
            storm=StormControl(rate_limit=rate_limit, sample=sample, report=queue.put),
            trace=self._trace,  # the ids first, so the user's processors see them
        )
        _state.pipeline = self  # claimed before the first await: two runs cannot race
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            for writer in self._writers:
                await task_group.start(self._run_writer, writer)
        except BaseException as error:
            _state.pipeline = None
            self._state = "failed"
            queue.close()
            for scope in self._scopes:
                scope.cancel()
            try:
                await task_group.__aexit__(type(error), error, error.__traceback__)
            except BaseExceptionGroup as group:
                _raise_unwrapped(group)
            raise
        self._task_group = task_group
        task_group.start_soon(self._report_losses_while_running)
        self._state = "running"
        _state.redaction = self._redaction
        _state.install(self._intake)
        _logger.configure(self.level, self.loggers)
        atexit.register(self._at_exit)
        if self.handle_sigterm:
            self._sigterm = SigtermHandler(
                loop,
                announce=self._announce_sigterm,
                stop_app=task_group.cancel_scope.cancel,
                stop_draining=self._stop_draining,
            )
            self._sigterm.install()
        if self.reopen_on_sighup:
            self._sighup = SighupHandler(self.reopen)
            self._sighup.install()
        return self

    def _announce_sigterm(self) -> None:
        if self._queue is None or self._state != "running":
            return
        # Past the caps, like the loss report: a full queue must not hide why the log ends.
        self._queue.put_internal(
            {
                "time": stamp_now(),
                "level": "warning",
                "logger": "alog",
                "msg": "alog.sigterm",
                "action": "draining the log, then a normal exit",
            }
        )

    def _stop_draining(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    @keyboard_interrupt_safe
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
            self._finish()

    @keyboard_interrupt_safe
    def _begin_close(self) -> None:
        """Stop taking events, and let the writers drain what was queued, within the timeout."""
        if self._state != "running":
            return
        self._state = "closing"
        assert self._queue is not None
        if self._intake is not None:
            self._intake.sweep(everything=True)  # storm control's last folds, before the seal
        self._queue.report_losses()
        last = self._queue.seal()
        for writer in self._writers:
            writer.stop_at(last)
        deadline = anyio.current_time() + self.shutdown_timeout
        for scope in self._scopes:
            scope.deadline = min(scope.deadline, deadline)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()  # the loss reporter; writers are shielded

    def _uninstall_sink(self) -> None:
        if _state.pipeline is self:
            if self._failed_on is not None and self._queue is not None:
                # Said once already: later calls are counted and reported at exit, not each
                # written to stderr. The thresholds stay: what is counted would have been written.
                refused = self._queue.statistics().rejected - self._refused_before_failure
                lost = LostAfterFailure(self._failed_on, refused, release=_fallback_thresholds)
                _state.install(lost)
            else:
                _state.install(_state.fallback)
                _fallback_thresholds()
            _state.pipeline = None
            _state.redaction = _state.process_redaction

    @keyboard_interrupt_safe
    def _finish(self) -> None:
        self._uninstall_sink()
        if self._state != "failed":
            self._state = "closed"
        if self._loop is not None:
            self._loop.mark_closed()
        atexit.unregister(self._at_exit)
        if self._sigterm is not None:
            self._sigterm.uninstall()
            self._sigterm = None
        if self._sighup is not None:
            self._sighup.uninstall()
            self._sighup = None

    @keyboard_interrupt_safe
    async def _run_writer(
        self, writer: DestinationWriter, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        # Shielded: a writer keeps draining when the app is cancelled; only its deadline (set
        # at close to shutdown_timeout) or a failure ends it early.
        await writer.open()  # not shielded: cancelling a start-up never waits for an open
        with anyio.CancelScope(shield=True) as scope:
            self._scopes.append(scope)
            task_status.started()
            try:
                await self._write_until_stopped(writer, scope)
            except WriterFailed as failure:
                raise self._fail(writer, failure) from failure.error
            finally:
                await writer.aclose()
        if scope.cancelled_caught and self._state != "failed":
            assert self._queue is not None
            self._queue.close()  # a caller still holding the sink is refused and counted
            lost = writer.abandon()
            if lost and not writer.writes_to_stderr():
                to_stderr(
                    f"alog: shutdown_timeout ({self.shutdown_timeout:g} s) expired: "
                    f"{lost} events not written to {writer.name}"
                )

    async def _write_until_stopped(
        self, writer: DestinationWriter, scope: anyio.CancelScope
    ) -> None:
        assert self._loop is not None
        while True:
            try:
                await writer.run()
            except anyio.get_cancelled_exc_class():
                if not self._loop.rescue_native_cancel(scope.cancel_called):
                    raise
                # asyncio.run cancels every task left when main returns, this one included:
                # drain anyway, as a normal close does, within shutdown_timeout.
                self._begin_close()
            else:
                return

    def _fail(self, failed: DestinationWriter, failure: WriterFailed) -> WriterFailed:
        """A required destination is lost: stop everything, count what is left, say so once."""
        self._state = "failed"
        assert self._queue is not None
        self._queue.close()  # later calls are refused and counted, never buffered
        self._failed_on = failed.name
        self._refused_before_failure = self._queue.statistics().rejected
        for writer in self._writers:
            writer.abandon()
        self._queue.discard()
        for scope in self._scopes:
            scope.cancel()
        final = WriterFailed(failed.name, failure.error, failed.undelivered)
        if not failed.writes_to_stderr():
            to_stderr(f"alog: {final}; the application is being stopped")
            said_once(final)
        return final

    @keyboard_interrupt_safe
    async def _report_losses_while_running(self) -> None:
        assert self._queue is not None
        while True:
            await anyio.sleep(LOSS_REPORT_INTERVAL)
            self._queue.report_losses()
            if self._intake is not None:
                self._intake.sweep()

    def _forked(self) -> None:
        """This is a forked child's copy: it writes nothing, flushes nothing."""
        self._state = "closed"
        self._queue = None
        self._writers = []
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        # Only reached when the process exits with this pipeline never closed.
        warnings.warn(
            f"{self!r} was never closed; flushing at exit (use 'async with alog.run()')",
            ResourceWarning,
            stacklevel=1,
        )
        result = self.flush(timeout=self.shutdown_timeout)
        # Whole lines a stalled stream took from a batch it did not finish are written.
        not_written = result.pending - sum(writer.taken_in_flight() for writer in self._writers)
        if not_written > 0:
            to_stderr(f"alog: at exit, {not_written} events could not be written in time")

    # -- observing ------------------------------------------------------------------------

    def statistics(self) -> Statistics:
        """A snapshot of queue depth, losses, throughput and each destination's state."""
        queue = self._queue
        intake = self._intake
        if queue is None or intake is None:
            return _empty_statistics(self._state)
        q = queue.statistics()
        ds = tuple(writer.statistics() for writer in self._writers)
        return Statistics(
            state=self._state,
            queued=q.held,
            queued_bytes=q.held_bytes,
            peak_queued=q.peak_held,
            peak_queued_bytes=q.peak_held_bytes,
            accepted=q.entered + q.rejected + q.interrupted + intake.filtered,
            written=sum(d.written for d in ds),
            dropped=q.rejected + q.interrupted + sum(d.dropped for d in ds),
            undelivered=sum(d.undelivered for d in ds),
            filtered=intake.filtered + sum(d.filtered for d in ds),
            bytes_written=sum(d.bytes_written for d in ds),
            batches=sum(d.batches for d in ds),
            write_errors=sum(d.write_errors for d in ds),
            encode_fallbacks=q.encode_fallbacks,
            internal_errors=intake.internal_errors,
            processor_errors=intake.processor_errors,
            reports=q.reports,
            last_write_seconds=max((d.last_write_seconds for d in ds), default=0.0),
            max_write_seconds=max((d.max_write_seconds for d in ds), default=0.0),
            destinations=ds,
        )

    # -- flushing -------------------------------------------------------------------------

    def _settled_through(self, target: int) -> bool:
        return all(writer.settled >= target for writer in self._writers)

    def _totals(self) -> tuple[int, int]:
        stats = self.statistics()
        return stats.written, stats.dropped + stats.undelivered

    def _result(self, target: int, before: tuple[int, int], deadline: float) -> FlushResult:
        written, lost = self._totals()
        pending = sum(max(0, target - writer.settled) for writer in self._writers)
        if self._state in ("closed", "failed"):
            pending = 0 if self._state == "closed" else pending
        return FlushResult(
            written=written - before[0],
            pending=pending,
            dropped=lost - before[1],
            timed_out=pending > 0 and time.monotonic() >= deadline,
            state=self._state,
        )

    @keyboard_interrupt_safe
    def flush(self, timeout: float = 5.0) -> FlushResult:
        """Write what is queued, waiting at most ``timeout`` seconds; from any thread.

        On the loop's own thread (sync code, a signal handler) the writing is done right here,
        with the deadline; elsewhere this waits for the writers. It never raises and never
        deadlocks: the result says what was and was not written. A flush that interrupted
        alog itself (a signal handler that landed inside a log call) cannot write without
        corrupting that call, and returns at once with ``pending`` > 0. So does a flush on the
        loop's thread for a destination that is not built in: its stream is async and the
        loop is busy running this very call (``await pipeline.aflush()`` writes it).
        """
        deadline = time.monotonic() + _wait_seconds(timeout)
        queue = self._queue
        loop = self._loop
        if queue is None or loop is None or self._state in ("starting", "closed", "failed"):
            return self._result(0, self._totals(), deadline)
        before = self._totals()
        target = queue.entered()
        on_loop = loop.on_loop_thread()
        if on_loop or not loop.running():
            if queue.reentered():
                return self._result(target, before, deadline)
            for writer in self._writers:
                writer.write_here(deadline, from_loop=on_loop)
            return self._result(target, before, deadline)
        assert self._progress is not None
        progress = self._progress
        for writer in self._writers:
            loop.call_soon_threadsafe(writer.wake)
        with progress.condition:
            progress.thread_waiting(+1)
            try:
                progress.condition.wait_for(
                    lambda: self._settled_through(target) or self._state in ("closed", "failed"),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
            finally:
                progress.thread_waiting(-1)
        return self._result(target, before, deadline)

    @keyboard_interrupt_safe
    async def aflush(self, timeout: float = 5.0) -> FlushResult:
        """Wait (at most ``timeout`` seconds) until what is queued now is written."""
        seconds = _wait_seconds(timeout)
        loop = self._loop
        if loop is not None and not loop.on_loop_thread():
            # Another thread's event loop: wait for ours from a worker thread.
            return await anyio.to_thread.run_sync(self.flush, seconds)
        deadline = time.monotonic() + seconds
        queue = self._queue
        if queue is None or loop is None or self._progress is None:
            return self._result(0, self._totals(), deadline)
        before = self._totals()
        target = queue.entered()
        waiter = loop.new_wakeup()
        self._progress.add_loop_waiter(waiter)
        try:
            for writer in self._writers:
                writer.wake()
            while not self._settled_through(target) and self._state not in ("closed", "failed"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await waiter.wait(remaining)
        finally:
            self._progress.remove_loop_waiter(waiter)
        return self._result(target, before, deadline)


def _forget_pipeline_in_child() -> None:
    """After ``fork()``: the child has the parent's queue but not its loop or threads.

    It starts with nothing queued and its calls go to stdlib :mod:`logging` (run
    ``alog.run`` in the child for a pipeline of its own); the parent's events are never
    written twice, and no flush waits for a writer that does not exist here.
    """
    pipeline = _state.pipeline
    if pipeline is None:
        return
    _state.install(_state.fallback)
    _state.pipeline = None
    _logger.configure(0, {})
    pipeline._forked()


def _fallback_thresholds() -> None:
    """With no pipeline, every call goes on to logging, whose levels decide."""
    _logger.configure(0, {})


def _empty_statistics(state: WriterState) -> Statistics:
    return Statistics(
        state=state,
        queued=0,
        queued_bytes=0,
        peak_queued=0,
        peak_queued_bytes=0,
        accepted=0,
        written=0,
        dropped=0,
        undelivered=0,
        filtered=0,
        bytes_written=0,
        batches=0,
        write_errors=0,
        encode_fallbacks=0,
        internal_errors=0,
        processor_errors=0,
        reports=0,
        last_write_seconds=0.0,
        max_write_seconds=0.0,
    )


def _trace_context() -> Processor:
    """``alog.otel.trace_context``, or a clear error when ``opentelemetry-api`` is missing."""
    try:
        from .otel import trace_context
    except ImportError as missing:
        raise ImportError(
            "alog.run(otel=True) needs opentelemetry-api; install it with: pip install 'alog[otel]'"
        ) from missing
    return trace_context


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


os.register_at_fork(after_in_child=_forget_pipeline_in_child)


def run(
    *destinations: Destination | anyio.abc.ByteSendStream,
    level: str | int = "info",
    loggers: Mapping[str, str | int] | None = None,
    levels: Mapping[str, int] | None = None,
    fields: Mapping[str, object] | None = None,
    processors: Sequence[Processor] = (),
    otel: bool = False,
    redact: Iterable[str] | None = None,
    censor: object = "[redacted]",
    remove: bool = False,
    rate_limit: RateSpec | None = None,
    sample: SampleSpec | None = None,
    max_events: int = DEFAULT_MAX_EVENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    overflow: Overflow = "drop_newest",
    write_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    handle_sigterm: bool = False,
    reopen_on_sighup: bool = False,
) -> Pipeline:
    """Run a logging pipeline for the ``async with`` block: ``async with alog.run() as p:``.

    Every event goes to each destination (default ``alog.Stdout()``) whose ``level=`` admits
    it. The writers run in a task group with the block: if a required destination fails for
    good, the block is cancelled and :class:`alog.WriterFailed` is raised from it. Leaving the
    block drains the queue for at most ``shutdown_timeout`` seconds. Configuration is checked
    here, at once. ``handle_sigterm=True`` (plain ``asyncio.run`` programs, main thread only)
    turns SIGTERM into cancelling the block, a drain and a normal exit.
    ``reopen_on_sighup=True`` (main thread only) makes SIGHUP reopen the files (logrotate).
    ``otel=True`` adds the current OpenTelemetry span's ``trace_id``, ``span_id`` and
    ``trace_flags`` to every event (:func:`alog.otel.trace_context`; needs ``alog[otel]``).
    ``redact=["password", "headers.authorization", "**.secret"]`` replaces those fields by
    ``censor`` (or drops them, ``remove=True``) on the caller's thread, before queueing.
    ``rate_limit=(10, 1.0)`` folds repeats of an event (same logger, level and message) past
    10 a second into one ``alog.suppressed`` report; ``sample={"debug": 0.1}`` keeps a tenth.
    Both leave warning and above alone unless those levels are named.
    """
    return Pipeline(
        *destinations,
        level=level,
        loggers=loggers,
        levels=levels,
        fields=fields,
        processors=processors,
        otel=otel,
        redact=redact,
        censor=censor,
        remove=remove,
        rate_limit=rate_limit,
        sample=sample,
        max_events=max_events,
        max_bytes=max_bytes,
        max_event_bytes=max_event_bytes,
        overflow=overflow,
        write_timeout=write_timeout,
        shutdown_timeout=shutdown_timeout,
        handle_sigterm=handle_sigterm,
        reopen_on_sighup=reopen_on_sighup,
    )


def flush(timeout: float = 5.0) -> FlushResult:
    """Flush the running pipeline, from anywhere; with none running, nothing is pending."""
    pipeline = _state.pipeline
    if pipeline is None:
        return FlushResult(written=0, pending=0, dropped=0, timed_out=False, state="closed")
    return pipeline.flush(timeout)
