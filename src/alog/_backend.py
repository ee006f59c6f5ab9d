"""The one seam between alog and the event loop it runs on: asyncio (uvloop too) or trio.

Everything else speaks anyio. What anyio does not offer, or offers at a cost measured too high
for a per-batch path, is here, once per backend:

- ``Loop.call_soon_threadsafe``: fire and forget a callback onto the loop from any thread or
  signal handler (never blocks; ``False`` once the loop is gone). anyio's ``from_thread``
  waits for the result. The callback runs guarded: under trio a callback that raises would
  crash the whole run (``TrioInternalError``); here it is reported on stderr instead.
- ``Wakeup``: a level-triggered flag a task can wait on with a timeout, set from the loop's
  thread (tasks, and signal handlers that interrupted them) or, through ``Loop``, from other
  threads. Plain asyncio futures and one timer per wait: an anyio cancel scope per batch cost
  ~100 us on asyncio here, more than the write.
- ``Loop.rescue_native_cancel``: asyncio's ``asyncio.run`` cancels every task left when the
  main coroutine returns, with ``Task.cancel()``, which no anyio shield stops. The pipeline
  drains anyway; trio has no such thing.
- ``keyboard_interrupt_safe``: asyncio.run turns the first Ctrl-C into a cancellation of the
  main task; trio raises ``KeyboardInterrupt`` at whatever line is running, which inside alog
  would leave a half-written line or half-updated books. Code marked with it gets trio's own
  protection: the interrupt is raised at the main task's next checkpoint instead.

Which loop runs is decided as anyio decides it (sniffio), so alog's own primitives and the
anyio ones it uses always agree, trio's guest mode included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from types import ModuleType, TracebackType
from typing import Any, Protocol, TypeVar

from ._report import to_stderr

_F = TypeVar("_F", bound=Callable[..., Any])

_KI_SAFE: list[Callable[..., Any]] = []
"""Everything marked with :func:`keyboard_interrupt_safe` (marked for trio once it is used)."""
_ki_marked = 0
"""How many of ``_KI_SAFE`` trio has been told about."""


def keyboard_interrupt_safe(function: _F) -> _F:
    """Mark alog's own code that a ``KeyboardInterrupt`` must not cut in half (under trio).

    Trio then raises a Ctrl-C that lands inside it at the main task's next checkpoint, where
    the application sees it as usual. The mark is trio's table of protected code objects: no
    wrapper, nothing to pay per call, and nothing at all under asyncio. Use it on entry points
    (what a log call, a flush or a writer task enters through): code they call is covered.
    """
    _KI_SAFE.append(function)
    trio = sys.modules.get("trio")
    if trio is not None:
        _mark_ki_safe(trio)
    return function


def _mark_ki_safe(trio: ModuleType) -> None:
    global _ki_marked
    enable = trio.lowlevel.enable_ki_protection
    while _ki_marked < len(_KI_SAFE):
        # trio >= 0.28 marks the code object and returns the function itself; an older trio
        # would return a wrapper, which is dropped here: no protection, nothing broken.
        enable(_KI_SAFE[_ki_marked])
        _ki_marked += 1


def _current_library() -> str | None:
    """What anyio would say runs here: ``asyncio``, ``trio`` or None (no loop)."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        try:
            name: str = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            pass  # outside a task: an asyncio callback, say
        else:
            return name
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return "asyncio"


def _run_guarded(callback: Callable[[], object]) -> None:
    """Run a loop callback; an error in alog is reported, never allowed to crash the loop."""
    try:
        callback()
    except Exception as error:  # noqa: BLE001 - under trio it would end the whole run
        to_stderr(f"alog: internal error in a loop callback {callback!r}: {error!r}")


class Wakeup:
    """A flag set by producers and waited on by one task (asyncio)."""

    __slots__ = ("_flag", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Loop thread only (a task, or a signal handler that interrupted the loop)."""
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            _resolve(waiter)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set (True, and the flag is cleared) or ``timeout`` passes (False)."""
        if not self._flag:
            loop = self._loop
            self._waiter = waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
            try:
                if not self._flag:  # a signal handler may have set it after the first check
                    await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._flag:
                return False
        self._flag = False
        return True


def _resolve(waiter: asyncio.Future[None]) -> None:
    with contextlib.suppress(asyncio.InvalidStateError):  # resolved meanwhile (a signal handler)
        waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        _resolve(waiter)


class TrioWakeup:
    """The same flag for trio: a fresh ``trio.Event`` per wait, a cheap cancel scope.

    ``set`` may run where trio's own state is half-updated: in a signal handler (a flush, a
    log call) that interrupted trio's scheduler between two tasks, or interrupted the waiting
    task inside its own ``Event.wait``. Waking a task there can lose the wakeup or corrupt
    trio's bookkeeping, so from there the event is set through ``run_sync_soon`` (which trio
    makes safe for signal handlers); from any other task it is set at once.
    """

    __slots__ = ("_event", "_flag", "_task", "_token", "_trio")

    def __init__(self, trio: ModuleType, token: Any) -> None:
        self._trio = trio
        self._token = token
        self._flag = False
        self._event: Any = None
        self._task: Any = None

    def set(self) -> None:
        """Loop thread only (a task, or a signal handler that interrupted the loop)."""
        self._flag = True
        event = self._event
        if event is None:
            return
        try:
            task = self._trio.lowlevel.current_task()
        except RuntimeError:  # between two tasks: trio's scheduler itself was interrupted
            task = None
        if task is not None and task is not self._task:
            event.set()
            return
        with contextlib.suppress(RuntimeError):  # the run is over: nobody waits any more
            self._token.run_sync_soon(event.set)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set (True, and the flag is cleared) or ``timeout`` passes (False)."""
        if not self._flag:
            trio = self._trio
            self._task = trio.lowlevel.current_task()
            self._event = event = trio.Event()
            try:
                if self._flag:  # a signal handler may have set it after the first check
                    pass
                elif timeout is None:
                    await event.wait()
                else:
                    with trio.move_on_after(timeout):
                        await event.wait()
            finally:
                self._event = self._task = None
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
        self._trio: ModuleType | None = None
        self._trio_token: Any = None
        library = _current_library()
        if library == "asyncio":
            self._asyncio = asyncio.get_running_loop()
        elif library == "trio":
            self._trio = trio = sys.modules["trio"]
            self._trio_token = trio.lowlevel.current_trio_token()
            _mark_ki_safe(trio)
        else:
            raise RuntimeError(
                f"alog runs under asyncio (uvloop too) or trio, not {library or 'no event loop'}"
            )
        self.name = library
        self._closed = False

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread_ident

    def new_wakeup(self) -> Wakeup | TrioWakeup:
        if self._asyncio is not None:
            return Wakeup(self._asyncio)
        assert self._trio is not None
        return TrioWakeup(self._trio, self._trio_token)

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` on the loop soon; from any thread or a signal handler.

        Never blocks. False if the loop is gone (closed, or the trio run is over): the
        callback will not run. (A stopped asyncio loop that is not closed keeps it for its
        next run; :meth:`running` tells whether anything runs it now.)
        """
        try:
            if self._asyncio is not None:
                self._asyncio.call_soon_threadsafe(_run_guarded, callback)
            else:
                self._trio_token.run_sync_soon(_run_guarded, callback)
        except RuntimeError:  # asyncio: loop closed; trio: RunFinishedError is one
            return False
        return True

    def running(self) -> bool:
        """Can the loop still run callbacks (for a flush from another thread or atexit)?"""
        if self._asyncio is not None:
            return self._asyncio.is_running() and not self._asyncio.is_closed()
        # trio cannot be asked: a callback it accepts is one it will run (RunFinishedError
        # otherwise), so the question is one harmless callback.
        return not self._closed and self.call_soon_threadsafe(_nothing)

    def mark_closed(self) -> None:
        self._closed = True

    def after_main(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback`` in a thread of its own once the application's main part is over.

        asyncio: when the main thread has finished (the interpreter then waits for other
        threads); the argument is None. trio: when the main task has finished (``trio.run``
        then waits for the system tasks, a stuck send among them); the argument is what the
        main task raised, if anything, since ``trio.run`` may never get to raise it.
        """
        if self._trio is None:

            def watch() -> None:
                threading.main_thread().join()
                callback(None)

            threading.Thread(target=watch, name="alog exit watch", daemon=True).start()
            return
        trio = self._trio

        async def sentinel() -> None:
            try:
                await trio.sleep_forever()
            finally:  # system tasks are cancelled when the main task is done
                error = _trio_main_error(trio)
                threading.Thread(
                    target=callback, args=(error,), name="alog exit watch", daemon=True
                ).start()

        trio.lowlevel.spawn_system_task(sentinel, name="alog exit watch")

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


def _trio_main_error(trio: ModuleType) -> BaseException | None:
    """What trio's main task raised (read from trio's runner: no public API says it)."""
    try:
        runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner
        error = getattr(runner.main_task_outcome, "error", None)
    except Exception:  # noqa: BLE001 - an internal of trio's that may change
        return None
    return error if isinstance(error, BaseException) else None


def _nothing() -> None:
    return None


# -- sends that may never return ----------------------------------------------------------

_detached: set[asyncio.Task[None]] = set()  # strong references: asyncio keeps weak ones


class Detached(Protocol):
    """A send running apart from the writer, which may give up on it."""

    def done(self) -> bool: ...

    def cancel(self) -> object: ...


class _TrioDetached:
    """trio: a system task (outside every nursery of the application) in a scope of its own."""

    __slots__ = ("_done", "_scope")

    def __init__(self, trio: ModuleType, coroutine: Coroutine[Any, Any, None]) -> None:
        self._scope = trio.CancelScope()
        self._done = False

        async def run() -> None:
            try:
                with self._scope:
                    await coroutine
            finally:
                self._done = True

        trio.lowlevel.spawn_system_task(run, name="alog: a destination's send")

    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        self._scope.cancel()


def spawn_detached(loop: Loop, coroutine: Coroutine[Any, Any, None]) -> Detached:
    """Run ``coroutine`` outside every task group, so that the writer can give up on it (a
    custom destination's send stuck in a thread that cannot be cancelled, which would
    otherwise hold the task group, and the application, for ever).

    ``coroutine`` must not raise: it hands its outcome over itself.
    """
    if loop._asyncio is None:
        assert loop._trio is not None
        return _TrioDetached(loop._trio, coroutine)
    task = loop._asyncio.create_task(coroutine)
    _detached.add(task)
    task.add_done_callback(_detached.discard)
    return task


def abandon(task: Detached) -> None:
    """Give up on a detached send: cancel it (asyncio's own cancel also releases an awaited
    worker thread's future) and do not wait. A thread it is stuck in may still hold the
    interpreter's exit (anyio's worker threads are not daemons), and under trio the stuck
    task holds ``trio.run``: :func:`exit_if_stuck` ends that."""
    task.cancel()


class _StuckSends:
    """The sends given up on, for one exit watch: one per process under asyncio (the main
    thread's end), one per ``trio.run`` under trio (its main task's end)."""

    __slots__ = ("names", "required", "sends")

    def __init__(self) -> None:
        self.sends: list[Detached] = []
        self.names: list[str] = []
        self.required = False


_watches: dict[object, _StuckSends] = {}
_uncaught = False


def exit_if_stuck(
    loop: Loop, name: str, send: Detached, *, status: int | None = 1, grace: float = 2.0
) -> None:
    """Once the application's main part is over, give the rest ``grace`` seconds, then end
    the process, saying why in one line.

    Armed only after alog gave up on a destination's send (or open) that had not returned:
    the thread or task it is stuck in (not alog's; alog's own threads are daemons) would
    otherwise keep the process from ever exiting, and a logger must end the program, not
    hang it. If a required destination's failed that way (``status`` 1), the exit status is
    1. With only optional ones (``status`` None) it keeps the application's own verdict as
    far as alog can see it: 1 if an exception ended it uncaught, else 0 (a ``SystemExit``
    code is not visible here). Nothing happens if every such send ended after all: under
    trio that is how ``trio.run`` can finish, since the main task's end is not the process's.
    """
    key = loop._trio_token if loop._trio is not None else "asyncio"
    stuck = _watches.get(key)
    first = stuck is None
    if stuck is None:
        stuck = _watches[key] = _StuckSends()
    stuck.sends.append(send)
    stuck.names.append(name)
    stuck.required = stuck.required or status == 1
    if not first:
        return
    _watch_uncaught()

    def watch(main_error: BaseException | None) -> None:
        time.sleep(grace)
        if loop._trio is not None and all(send.done() for send in stuck.sends):
            _watches.pop(key, None)
            return
        if main_error is not None:  # trio.run will never raise it: show it as Python would
            with contextlib.suppress(Exception):
                sys.excepthook(type(main_error), main_error, main_error.__traceback__)
        if stuck.required:  # a required failure said its one line already
            os._exit(1)
        names = ", ".join(sorted(set(stuck.names)))
        to_stderr(f"alog: exiting: the send of optional destination {names} never returned")
        os._exit(int(_uncaught or main_error is not None))

    loop.after_main(watch)


def _watch_uncaught() -> None:
    if getattr(sys.excepthook, "_alog_watches_uncaught", False):
        return
    previous = sys.excepthook

    def hook(
        kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        global _uncaught
        _uncaught = True
        previous(kind, value, traceback)

    hook._alog_watches_uncaught = True  # type: ignore[attr-defined]
    sys.excepthook = hook
