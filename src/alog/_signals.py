"""``alog.run(handle_sigterm=True)``: SIGTERM as a graceful drain for plain programs; and
``alog.run(reopen_on_sighup=True)``: SIGHUP reopens the log files (logrotate's postrotate).

(``asyncio.run``, uvloop, ``anyio.run(main, backend="trio")``: the handler only schedules a
loop callback, which both asyncio and trio make safe from a signal handler.)

By default SIGTERM kills a Python process at once, with whatever is queued lost. Servers
(uvicorn, aiohttp) install their own handler and leave ``alog.run`` on their shutdown path, so
they need nothing from here. A plain program opts in: the first SIGTERM cancels the body of
``async with alog.run(...)``, leaving it drains the queue (within ``shutdown_timeout``) and the
program carries on after the block, normally, to exit status 0. A second SIGTERM cuts the
drain short (what is left is counted as undelivered).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import Loop


def check_can_handle_sigterm(option: str = "handle_sigterm") -> None:
    """Signal handlers belong to the main thread; fail before the pipeline starts otherwise."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            f"alog.run({option}=True) needs its event loop in the main thread "
            "(only the main thread can handle signals)"
        )


class SigtermHandler:
    """Installed on the running loop for the life of one pipeline, then put back."""

    def __init__(
        self,
        loop: Loop,
        *,
        announce: Callable[[], None],
        stop_app: Callable[[], None],
        stop_draining: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._announce = announce
        self._stop_app = stop_app
        self._stop_draining = stop_draining
        self._previous: object = None
        self.received = 0

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # The raw handler only schedules: the work runs as a loop callback (asyncio and trio
        # both wake their loop for it), where queueing and cancelling are safe. Under trio it
        # runs in trio's system task, between the app's own tasks.
        self._loop.call_soon_threadsafe(self._on_sigterm)

    def _on_sigterm(self) -> None:
        self.received += 1
        if self.received == 1:
            self._announce()
            self._stop_app()
        else:
            self._stop_draining()

    def uninstall(self) -> None:
        previous = self._previous
        if callable(previous) or previous in (signal.SIG_IGN, signal.SIG_DFL):
            signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


class SighupHandler:
    """SIGHUP reopens the files, for the life of one pipeline; the previous handler is put back.

    The raw handler only schedules ``reopen`` (itself safe anywhere: it hands the request to
    the loop), so a SIGHUP landing inside a log call or a write touches nothing they hold.
    """

    def __init__(self, reopen: Callable[[], object]) -> None:
        self._reopen = reopen
        self._previous: object = None
        self.received = 0

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGHUP, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        self._reopen()

    def uninstall(self) -> None:
        previous = self._previous
        if callable(previous) or previous in (signal.SIG_IGN, signal.SIG_DFL):
            signal.signal(signal.SIGHUP, previous)  # type: ignore[arg-type]
