"""Destinations: where the writer sends lines, as anyio byte streams.

The built-in ones write to file descriptors and can also be driven synchronously, which is
what lets ``flush()`` work from the event loop's own thread and from signal handlers.
"""

from __future__ import annotations

from .base import (
    ConnectionStatistics,
    FdStream,
    check_destination,
    destination_options,
    open_destination,
)
from .fd import Console, File, Stderr, Stdout
from .file import FileStream
from .journald import Journald, JournaldStatistics
from .socket import TCP, Unix
from .syslog import Syslog

__all__ = [
    "TCP",
    "ConnectionStatistics",
    "Console",
    "FdStream",
    "File",
    "FileStream",
    "Journald",
    "JournaldStatistics",
    "Stderr",
    "Stdout",
    "Syslog",
    "Unix",
    "check_destination",
    "destination_options",
    "open_destination",
]
