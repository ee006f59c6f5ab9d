"""alog's own last words on stderr: never blocking, never raising, never repeated per event."""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import Detached, Loop


def to_stderr(text: str) -> None:
    """Write one line to stderr without blocking (a stalled stderr must not hang the exit)."""
    data = (text.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    try:
        if stat.S_ISREG(os.fstat(2).st_mode):
            # A file never blocks, and a description of our own would write at offset 0,
            # over what is already there.
            os.write(2, data)
            return
    except OSError:
        pass
    try:
        fd = os.open("/proc/self/fd/2", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            os.write(fd, data)
        elif select.select([], [2], [], 0)[1]:
            os.write(2, data)
    except OSError:
        pass  # stderr is gone too; the exit status still tells
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def said_once(error: BaseException) -> None:
    """``error`` was reported in one line already: if it ends the program uncaught, Python
    prints no traceback for it (the exit status is still 1). Other errors print as usual."""
    previous = sys.excepthook

    def hook(
        kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        if value is not error:
            previous(kind, value, traceback)

    sys.excepthook = hook


_exit_armed = False
_uncaught = False


def exit_if_stuck(
    loop: Loop, name: str, send: Detached, *, status: int | None = 1, grace: float = 2.0
) -> None:
    """Once the application's main part is over, give the rest ``grace`` seconds, then end
    the process, saying why in one line.

    Armed only after alog abandoned a destination's send that never returned: the thread or
    task it is stuck in (not alog's; alog's own threads are daemons) would otherwise keep
    the process from ever exiting, and a logger must end the program, not hang it. A
    required destination's failure exits with ``status`` 1. An optional one's (``status``
    None) keeps the application's own verdict as far as alog can see it: 1 if an exception
    ended it uncaught, else 0 (a ``SystemExit`` code is not visible here). Under trio,
    where the main task's end is not the process's, nothing happens if ``trio.run`` could
    finish (the ``send`` task ended after all).
    """
    global _exit_armed
    if _exit_armed:
        return
    _exit_armed = True
    if status is None:
        _watch_uncaught()

    def watch(main_error: BaseException | None) -> None:
        time.sleep(grace)
        if loop.name == "trio" and send.done():
            return
        if main_error is not None:  # trio.run will never raise it: show it as Python would
            with contextlib.suppress(Exception):
                sys.excepthook(type(main_error), main_error, main_error.__traceback__)
        code = status if status is not None else int(_uncaught or main_error is not None)
        if status is None:  # a required failure said its one line already
            to_stderr(f"alog: exiting: the send of optional destination {name} never returned")
        os._exit(code)

    loop.after_main(watch)


def _watch_uncaught() -> None:
    previous = sys.excepthook

    def hook(
        kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        global _uncaught
        _uncaught = True
        previous(kind, value, traceback)

    sys.excepthook = hook
