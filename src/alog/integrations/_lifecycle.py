"""A pipeline that lives as long as a web app, and stops the server when its writer dies.

The pipeline runs in an asyncio task of its own, not around the server's lifespan code: a
writer failure then cancels only that task, never the server's. On :class:`alog.WriterFailed`
the process must end non-zero (see docs/integrations.md, "Fail-fast"):

1. ask the server to shut down gracefully: uvicorn is found through the ``SIGTERM`` handler
   it installs (a bound method of its ``Server``) and its ``should_exit`` is set. That stops
   accepting connections, lets requests in flight finish and runs the app's shutdown, without
   uvicorn re-raising a signal at the end (which would make the exit look like a clean stop);
2. when the app's shutdown reaches us, or ``exit_timeout`` seconds have passed, raise
   ``SystemExit(1)`` from a loop callback: it propagates out of the event loop (asyncio and
   uvloop both re-raise it), which cancels what is left and makes the exit status 1. Servers
   we cannot ask (aiohttp's ``run_app``, which runs the app's cleanup on ``SystemExit``)
   get this step at once;
3. a daemon thread ends the process with ``os._exit(1)`` if it is still alive two seconds
   after that, whatever the loop is doing.

The last line on stderr says why the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import _pipeline
from .._exceptions import WriterFailed
from .._pipeline import Pipeline
from .._report import to_stderr

DEFAULT_EXIT_TIMEOUT: Final = 5.0
WATCHDOG_GRACE: Final = 2.0

StopServer = Callable[[], "str | None"]
"""Asks the server running the app to shut down; returns its name, or None if none found."""


def stop_uvicorn() -> str | None:
    """Set ``should_exit`` on the uvicorn ``Server`` whose signal handler is installed."""
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return None
    server.should_exit = True
    cls = type(server)
    return f"{cls.__module__}.{cls.__qualname__}"


def no_server() -> str | None:
    """For servers that shut down (running the app's cleanup) when ``SystemExit`` is raised."""
    return None


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
        if self.failure is not None:
            self._exit_soon()  # the server got here after a failure: its shutdown is done
            return
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: failures are handled (and reported) in the task

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
        deadline = self._exit_timeout + WATCHDOG_GRACE
        threading.Thread(
            target=_watchdog, args=(deadline,), name="alog exit watchdog", daemon=True
        ).start()
        if self._stopping:
            self._exit_soon()
            return
        server = self._stop_server()
        if server is None:
            self._exit_soon()
            return
        to_stderr(f"alog: stopping {server}; the process will exit with status 1")
        assert self._loop is not None
        self._loop.call_later(self._exit_timeout, self._exit_soon)

    def _exit_soon(self) -> None:
        if self._exiting:
            return
        self._exiting = True
        assert self._loop is not None
        self._loop.call_soon(_raise_exit, self.failure)


def _raise_exit(failure: WriterFailed | None) -> None:
    to_stderr(f"alog: exiting with status 1: {failure}")
    raise SystemExit(1)


def _watchdog(timeout: float) -> None:
    threading.Event().wait(timeout)
    to_stderr(f"alog: the server did not stop within {timeout:g} s of the writer failing; exiting")
    with contextlib.suppress(BaseException):
        os._exit(1)


__all__ = [
    "DEFAULT_EXIT_TIMEOUT",
    "AppPipeline",
    "StopServer",
    "check_exit_timeout",
    "no_server",
    "split_run_options",
    "stop_uvicorn",
]
