"""Types for code that extends or configures alog (destinations, level and policy names)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import anyio.abc

from ._fields import ExcInfo
from ._queue import Overflow
from ._records import WriterState


@runtime_checkable
class Destination(Protocol):
    """Where a pipeline writes: ``open()`` is awaited once, when the pipeline starts.

    The stream's ``send`` gets whole batches of newline-terminated JSON lines. A stream that
    raises from ``send`` ends the writer (:class:`alog.WriterFailed`); one that makes no
    progress for ``write_timeout`` does too. Any ``anyio.abc.ByteSendStream`` can also be
    passed to ``alog.run`` directly.
    """

    async def open(self) -> anyio.abc.ByteSendStream:
        """Open the stream the writer sends batches to."""
        ...


__all__ = ["Destination", "ExcInfo", "Overflow", "WriterState"]
