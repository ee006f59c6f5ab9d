"""alog's exceptions.

    AlogError
     └── WriterFailed      the writer stopped for good; raised out of ``alog.run``

A log call never raises any of these: failures surface where the application awaits or
supervises the pipeline (``alog.run``, ``flush``, ``aflush``).
"""

from __future__ import annotations


class AlogError(Exception):
    """Root of alog's exceptions."""


class WriterFailed(AlogError):
    """The writer could not deliver to its destination and stopped; the app was cancelled.

    ``__cause__`` is the underlying error (an ``OSError`` such as ``BrokenPipeError``, a
    ``TimeoutError`` for a stalled write, or whatever a custom destination raised).
    """

    def __init__(self, destination: str, error: BaseException, undelivered: int) -> None:
        self.destination = destination
        self.error = error
        self.undelivered = undelivered
        reason = str(error) or type(error).__name__
        super().__init__(
            f"alog writer failed on {destination}: {reason}; {undelivered} events not delivered"
        )
