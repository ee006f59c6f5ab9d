"""alog's own last words on stderr: never blocking, never raising, never repeated per event."""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
from types import TracebackType


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
