"""A pipeline that lives as long as a web app, and ends the service when its writer dies.

The pipeline runs in an asyncio task of its own, not around the server's lifespan code: a
writer failure then cancels only that task, never the server's. On :class:`alog.WriterFailed`
the service must end, loudly (see docs/process-managers.md):

1. find who restarts this process (:func:`find_supervisor`): gunicorn's arbiter, uvicorn's
   ``--workers`` supervisor, or nobody. A supervisor restarts a worker that crashed, and the
   new one would fail on its first write: a crash loop. Each stops the whole service instead
   when a worker exits with its "failed to boot" status (3), so that is the exit status under
   them; alone, the process exits 1. uvicorn's supervisor is also sent ``SIGTERM``, which it
   handles at once (its exit-status check can lag by a health-check timeout). Under gunicorn
   only one worker exits 3 (:meth:`Supervisor.claim`); the others exit 1 after it;
2. ask the server to shut down gracefully: uvicorn is found through the ``SIGTERM`` handler
   it installs (a bound method of its ``Server``) and its ``should_exit`` is set; a gunicorn
   worker with no uvicorn inside (aiohttp's) is stopped as its own ``SIGTERM`` handler would.
   That stops accepting connections, lets requests in flight finish and runs the app's
   shutdown, without uvicorn re-raising a signal at the end (which would make the exit look
   like a clean stop);
3. when the app's shutdown reaches us, or ``exit_timeout`` seconds have passed, end with that
   status: ``SystemExit`` raised from a loop callback (it propagates out of the event loop,
   asyncio and uvloop alike; the app's shutdown waits in alog's lifespan meanwhile, so that
   the server's main task cannot finish in the same batch), or, in aiohttp's gunicorn worker,
   the worker's own ``exit_code``. Servers we cannot ask (aiohttp's ``run_app``, which runs
   the app's cleanup on ``SystemExit``) get this step at once;
4. a daemon thread ends the process with ``os._exit`` if it is still alive two seconds after
   that, whatever the loop is doing.

A failure found while the server was already shutting down for another reason (a signal, the
arbiter stopping every worker) exits 1: the service is ending anyway, and gunicorn's arbiter
must not be handed a second "failed to boot" while it halts. The last line on stderr says why
the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final, final

from .. import _pipeline, _state
from .._exceptions import WriterFailed
from .._fallback import LostAfterFailure
from .._pipeline import Pipeline
from .._report import to_stderr

DEFAULT_EXIT_TIMEOUT: Final = 5.0
WATCHDOG_GRACE: Final = 2.0
FAILED: Final = 1
HALT_STATUS_FILE_ENV: Final = "ALOG_HALT_STATUS_FILE"
"""Names the file where a uvicorn worker leaves the status its supervisor should exit with."""
"""The exit status after a writer failure when no supervisor is to be stopped by it."""
CLAIM_POLL: Final = 0.05


@final
@dataclass(frozen=True, slots=True)
class Stopping:
    """A server alog asked to shut down gracefully."""

    server: str
    """Its class, as ``module.Name``."""
    already: bool
    """It was shutting down before alog asked (a signal, ``--max-requests``...)."""


StopServer = Callable[[], "Stopping | None"]
"""Asks the server running the app to shut down; None if there is no such server."""


def stop_uvicorn() -> Stopping | None:
    """Set ``should_exit`` on the uvicorn ``Server`` whose signal handler is installed."""
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return None
    already = bool(server.should_exit)
    server.should_exit = True
    return Stopping(_class_name(server), already)


def no_server() -> Stopping | None:
    """For servers that shut down (running the app's cleanup) when ``SystemExit`` is raised."""
    return None


@final
class Supervisor:
    """The process that restarts this worker when it dies, and how to make it stop instead.

    Found by :func:`find_supervisor`. ``halt_status`` is the exit status on which it stops the
    whole service rather than start a new worker: gunicorn's arbiter halts on
    ``Arbiter.WORKER_BOOT_ERROR``, uvicorn's multiprocess supervisor (``--workers``) stops on
    ``STARTUP_FAILURE``; both are 3. Any other failing exit is a crash to them, and the next
    worker would fail the same way on its first write.

    Workers share stdout, so several fail at about the same time. gunicorn's arbiter takes one
    halt status only: a second, reaped while it halts, makes it die with a ``HaltServer``
    traceback and status 1. So there, only the worker that :meth:`claims <claim>` the halt
    (a lock on a file named after the arbiter's pid, held until that worker is gone) exits
    with it; the others exit 1, once it is gone (earlier, the arbiter would boot a new worker).
    """

    __slots__ = (
        "_lock",
        "_lock_path",
        "claimed",
        "halt_signal",
        "halt_status",
        "name",
        "pid",
        "terminated",
        "worker",
    )

    def __init__(
        self,
        name: str,
        pid: int,
        halt_status: int,
        halt_signal: int | None,
        worker: Any,
        *,
        lock_path: str | None = None,
    ) -> None:
        self.name = name
        """Who it is, for the last line on stderr: ``"gunicorn's arbiter"``..."""
        self.pid = pid
        """Its process id (this process's parent)."""
        self.halt_status = halt_status
        """The exit status that makes it stop the service."""
        self.halt_signal = halt_signal
        """A signal that makes it stop the service too (gunicorn's arbiter exits 0 on any)."""
        self.worker = worker
        """The gunicorn worker object running this process, or None (uvicorn's supervisor)."""
        self.terminated = False
        """Was this worker sent ``SIGTERM`` after alog stopped it (the arbiter halting)?"""
        self.claimed = True
        """Is this the worker that halts the supervisor (see :meth:`claim`)?"""
        self._lock_path = lock_path
        self._lock: int | None = None

    def claim(self) -> bool:
        """Become the one worker that halts the supervisor; False if another one is."""
        if self._lock_path is None:
            return True
        try:
            self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return True  # no lock to share: halting twice beats not halting
        self.claimed = _locked(self._lock)  # held (never closed) until this process ends
        return self.claimed

    async def claimant_gone(self) -> None:
        """Wait until the worker that claimed the halt has ended (at once if this one did)."""
        # Polled: a file lock has no event to wait on, and a thread blocked in flock() could
        # not be cancelled (it would hold up the interpreter's exit).
        while not self.claimed and self._lock is not None and not _locked(self._lock):  # noqa: ASYNC110
            await asyncio.sleep(CLAIM_POLL)

    def status(self, status: int) -> int:
        """``status``, unless the supervisor is stopping this worker already: then 1.

        An arbiter that halts stops every worker; one more "failed to boot" while it waits
        for them makes it fail with a traceback instead of exiting 3.
        """
        return FAILED if self.terminated else status

    def halt(self) -> None:
        """Tell the supervisor to stop the service now, if a signal can (uvicorn's).

        uvicorn's supervisor exits 0 however its workers ended; when the supervisor runs in
        :func:`alog.integrations.uvicorn.run`, the halt status is left in the file named by
        :data:`HALT_STATUS_FILE_ENV` for it to exit with.
        """
        if self.halt_signal is not None:
            path = os.environ.get(HALT_STATUS_FILE_ENV)
            if path:
                with contextlib.suppress(OSError), open(path, "w") as status_file:
                    status_file.write(str(self.halt_status))
            with contextlib.suppress(OSError):
                os.kill(self.pid, self.halt_signal)

    def stop_worker(self) -> Stopping | None:
        """Stop a gunicorn worker's serving loop, as its ``SIGTERM`` handler would.

        From then on ``SIGTERM`` does the same and sets :attr:`terminated` (aiohttp's worker
        takes its signals through the event loop, and a flag is all its handler leaves).
        """
        worker = self.worker
        if worker is None:
            return None
        already = not worker.alive
        worker.handle_exit(signal.SIGTERM, None)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminate)
        return Stopping(_class_name(worker), already)

    def _terminate(self) -> None:
        self.terminated = True
        self.worker.handle_exit(signal.SIGTERM, None)
        if self.worker.exit_code == self.halt_status:
            self.worker.exit_code = FAILED

    def set_exit_status(self, status: int) -> bool:
        """Have the worker exit with ``status`` itself, if it can (aiohttp's sets ``exit_code``).

        aiohttp's gunicorn worker must not see a ``SystemExit`` in its loop: it then runs the
        loop again to close it, which fails, and the worker crashes (exit 255) instead.
        """
        if self.worker is None or not isinstance(getattr(self.worker, "exit_code", None), int):
            return False
        self.worker.exit_code = status
        return True


def find_supervisor() -> Supervisor | None:
    """gunicorn's arbiter or uvicorn's supervisor, if one started this process; else None.

    Found through the object that runs this process, on the calling thread's stack (the
    event loop's): a gunicorn worker's ``run()``, or the ``Process.target`` of uvicorn's
    supervisor; and only while that supervisor is still this process's parent. A module not
    imported is not looked for: nothing is imported here.
    """
    gunicorn = sys.modules.get("gunicorn.workers.base")
    arbiter = sys.modules.get("gunicorn.arbiter")
    uvicorn = sys.modules.get("uvicorn.supervisors.multiprocess")
    kinds: tuple[type, ...] = ()
    if gunicorn is not None and arbiter is not None:
        kinds += (gunicorn.Worker,)
    if uvicorn is not None and isinstance(getattr(uvicorn, "Process", None), type):
        kinds += (uvicorn.Process,)
    runner = _running(kinds) if kinds else None
    if runner is None:
        return None
    parent = os.getppid()
    if gunicorn is not None and isinstance(runner, gunicorn.Worker):
        if runner.ppid != parent:
            return None  # the arbiter is gone: nobody restarts this process
        status = int(arbiter.Arbiter.WORKER_BOOT_ERROR)  # type: ignore[union-attr]
        lock = os.path.join(tempfile.gettempdir(), f"alog-halt-gunicorn-{parent}.lock")
        return Supervisor("gunicorn's arbiter", parent, status, None, runner, lock_path=lock)
    process = multiprocessing.parent_process()
    if process is None or process.pid != parent:
        return None
    # 0.54's supervisor stops on STARTUP_FAILURE; an older one only on the signal.
    status = getattr(uvicorn, "STARTUP_FAILURE", FAILED)
    return Supervisor("uvicorn's supervisor", parent, int(status), signal.SIGTERM, None)


def _locked(fd: int) -> bool:
    import fcntl  # gunicorn runs on POSIX only

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _running(kinds: tuple[type, ...]) -> object | None:
    """The innermost ``self`` on this thread's stack that is one of ``kinds``."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, kinds):
            return candidate
        frame = frame.f_back
    return None


def _class_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def check_exit_timeout(exit_timeout: float) -> float:
    """``exit_timeout`` must be a positive finite number of seconds."""
    if isinstance(exit_timeout, bool) or not isinstance(exit_timeout, int | float):
        raise TypeError(f"exit_timeout must be a number, got {exit_timeout!r}")
    if not 0 < exit_timeout < float("inf"):
        raise ValueError(f"exit_timeout must be a positive finite number, got {exit_timeout!r}")
    return float(exit_timeout)


def split_run_options(
    run_options: Mapping[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``alog.run``'s arguments, with ``destination`` made positional; checked at once."""
    options = dict(run_options)
    args: tuple[Any, ...] = ()
    if "destination" in options:
        args = (options.pop("destination"),)
    _pipeline.run(*args, **options)  # a bad option fails here, when the app is built
    return args, options


class AppPipeline:
    """``alog.run(...)`` in its own task from the app's start-up to its shutdown."""

    def __init__(
        self,
        args: tuple[Any, ...],
        options: Mapping[str, Any],
        *,
        exit_timeout: float,
        stop_server: StopServer,
    ) -> None:
        self._args = args
        self._options = dict(options)
        self._exit_timeout = exit_timeout
        self._stop_server = stop_server
        self._stop = asyncio.Event()
        self._stopping = False
        self._exiting = False
        self._exit_pending = False
        self._end = _End(FAILED, "", None)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pipeline: Pipeline | None = None
        self.failure: WriterFailed | None = None

    async def start(self) -> Pipeline:
        """Start the pipeline; raises what stopped it from starting (a bad destination...)."""
        loop = self._loop = asyncio.get_running_loop()
        started: asyncio.Future[Pipeline] = loop.create_future()
        self._task = loop.create_task(self._main(started), name="alog pipeline")
        try:
            self.pipeline = await asyncio.shield(started)
        except asyncio.CancelledError:
            self._stop.set()
            raise
        return self.pipeline

    async def stop(self) -> None:
        """Drain and close (the app is shutting down); never raises into the server."""
        self._stopping = True
        self._stop.set()
        task = self._task
        if self.failure is None and task is not None and not task.done():
            await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: failures are handled (and reported) in the task
        if self.failure is None:
            return
        if self._end.supervisor is not None:
            await self._end.supervisor.claimant_gone()
        self._shutdown_done()  # the server got here after a failure
        if self._exit_pending:
            # Hold the server's shutdown here until the SystemExit ends the loop: if its main
            # task finished first, uvloop would run that task's stale "stop the loop" callback
            # while asyncio.run cancels what is left, which then fails with a RuntimeError.
            # The cancellation that ends this wait is that teardown: the shutdown is done.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.get_running_loop().create_future()

    async def _main(self, started: asyncio.Future[Pipeline]) -> None:
        try:
            async with _pipeline.run(*self._args, **self._options) as pipeline:
                started.set_result(pipeline)
                await self._stop.wait()
        except WriterFailed as failure:
            if not started.done():
                started.set_exception(failure)
                return
            self._fail(failure)
        except asyncio.CancelledError:
            started.cancel()
            raise
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
                return
            raise

    def _fail(self, failure: WriterFailed) -> None:
        self.failure = failure
        supervisor = find_supervisor()
        stopping: Stopping | None = None
        if not self._stopping:
            stopping = self._stop_server()
            if stopping is None and supervisor is not None:
                stopping = supervisor.stop_worker()
        outside = self._stopping or (stopping is not None and stopping.already)
        grace = WATCHDOG_GRACE
        if supervisor is None or outside:
            self._end = _End(FAILED, "", supervisor)
        elif supervisor.claim():
            why = f" so that {supervisor.name} (pid {supervisor.pid}) stops the service"
            self._end = _End(supervisor.halt_status, why, supervisor)
            supervisor.halt()
        else:
            why = f"; another worker has {supervisor.name} (pid {supervisor.pid}) stop the service"
            self._end = _End(FAILED, why, supervisor)
            grace *= 2  # after that worker's own watchdog
        threading.Thread(
            target=_watchdog,
            args=(self._exit_timeout + grace, self._end),
            name="alog exit watchdog",
            daemon=True,
        ).start()
        assert self._loop is not None
        if self._stopping:
            self._shutdown_done()
        elif stopping is None:
            self._exit_soon()  # no server to wait for
        else:
            self._loop.call_later(self._exit_timeout, self._give_up)

    def _give_up(self) -> None:
        """``exit_timeout`` passed and the app's shutdown has not reached alog: exit anyway."""
        assert self._loop is not None
        self._loop.create_task(self._exit_after_claimant(), name="alog exit")

    async def _exit_after_claimant(self) -> None:
        if self._end.supervisor is not None:
            await self._end.supervisor.claimant_gone()
        self._exit_soon()

    def _shutdown_done(self) -> None:
        """The app's shutdown reached alog after the failure: end the process now."""
        end = self._end
        if end.supervisor is not None and end.supervisor.set_exit_status(end.status):
            if not self._exiting:
                self._exiting = True
                end.say(self.failure)  # the worker exits with it once the cleanup returns
            return
        self._exit_soon()

    def _exit_soon(self) -> None:
        if self._exiting:
            return
        self._exiting = True
        self._exit_pending = True
        assert self._loop is not None
        self._loop.call_soon(self._exit)

    def _exit(self) -> None:
        self._exit_pending = False
        self._end.exit(self.failure)


@final
@dataclass(frozen=True, slots=True)
class _End:
    """How the process ends after a failure: its status, why, and who is told."""

    planned: int
    why: str
    supervisor: Supervisor | None

    @property
    def status(self) -> int:
        if self.supervisor is None:
            return self.planned
        return self.supervisor.status(self.planned)

    def say(self, failure: WriterFailed | None) -> None:
        status = self.status
        why = self.why if status == self.planned else ""
        to_stderr(f"alog: exiting with status {status}{why}: {failure}{_lost_since()}")

    def exit(self, failure: WriterFailed | None) -> None:
        """From a loop callback: ``SystemExit``, unless the worker cannot take one."""
        self.say(failure)
        status = self.status
        if self.supervisor is not None and self.supervisor.set_exit_status(status):
            os._exit(status)  # its shutdown never came; a SystemExit would crash it
        raise SystemExit(status)


def _lost_since() -> str:
    """The events logged since the failure, said in the exit line: not in a line of their own.

    Only what is logged after this (during the interpreter's exit) is left for the at-exit
    line of :class:`~alog._fallback.LostAfterFailure`.
    """
    sink = _state.sink
    lost = sink.take() if isinstance(sink, LostAfterFailure) else 0
    return f"; {lost} events logged since were not written" if lost else ""


def _watchdog(timeout: float, end: _End) -> None:
    threading.Event().wait(timeout)
    status = end.status
    to_stderr(
        f"alog: the server did not stop within {timeout:g} s of the writer failing; "
        f"exiting with status {status}{_lost_since()}"
    )
    with contextlib.suppress(BaseException):
        os._exit(status)


__all__ = [
    "DEFAULT_EXIT_TIMEOUT",
    "FAILED",
    "HALT_STATUS_FILE_ENV",
    "AppPipeline",
    "StopServer",
    "Stopping",
    "Supervisor",
    "check_exit_timeout",
    "find_supervisor",
    "no_server",
    "split_run_options",
    "stop_uvicorn",
]
