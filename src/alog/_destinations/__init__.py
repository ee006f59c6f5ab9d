"""Destinations: where the writer sends lines, as anyio byte streams.

The built-in ones write to file descriptors and can also be driven synchronously, which is
what lets ``flush()`` work from the event loop's own thread and from signal handlers.
"""

from __future__ import annotations

from .base import FdStream, check_destination, destination_options, open_destination
from .fd import Console, File, Stderr, Stdout
from .file import FileStream
from .journald import Journald, JournaldStatistics

__all__ = [
    "Console",
    "FdStream",
    "File",
    "FileStream",
    "Journald",
    "JournaldStatistics",
    "Stderr",
    "Stdout",
    "check_destination",
    "destination_options",
    "open_destination",
]
