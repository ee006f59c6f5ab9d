"""Types for code that extends or configures alog: destinations, processors, option names.

This module is a leaf: it imports nothing else from alog, so every private module may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import anyio.abc

EventDict: TypeAlias = dict[str, Any]
"""An assembled event: ``time``, ``level``, ``logger``, ``msg``, then the fields."""

Processor: TypeAlias = Callable[[EventDict], "EventDict | None"]
"""``(event) -> event | None``, run in order on the caller's thread before encoding.

It may add, change or remove fields; returning ``None`` filters the event out (counted as
``filtered``). The core keys are restored if a processor removed or broke them.
"""

Overflow: TypeAlias = Literal["drop_newest", "drop_oldest"]
"""What a full queue does with one more event: refuse it, or evict the oldest."""

WriterState: TypeAlias = Literal["starting", "running", "closing", "closed", "failed"]
"""Where a pipeline is in its life; ``failed`` means the app was (or is being) cancelled."""

DestinationState: TypeAlias = Literal["starting", "running", "retrying", "failed", "closed"]
"""Where one destination is: ``retrying`` is an optional destination waiting to reopen."""

ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)
"""What ``exc_info=`` takes, as in :mod:`logging`."""


@runtime_checkable
class Destination(Protocol):
    """Where a pipeline writes: ``open()`` is awaited when the pipeline starts.

    The stream's ``send`` gets whole batches of newline-terminated JSON lines. A stream that
    raises from ``send``, or makes no progress for ``write_timeout``, fails the destination.
    Any ``anyio.abc.ByteSendStream`` can also be passed to ``alog.run`` directly.
    """

    async def open(self) -> anyio.abc.ByteSendStream:
        """Open the stream the writer sends batches to (again, after a failure, to retry)."""
        ...


__all__ = [
    "Destination",
    "DestinationState",
    "EventDict",
    "ExcInfo",
    "Overflow",
    "Processor",
    "WriterState",
]
