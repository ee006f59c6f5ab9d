"""Checked by mypy only (never run): alog.Journald as users write it, with its types."""

from __future__ import annotations

from pathlib import Path

import alog
from alog.typing import Destination


async def service() -> None:
    journal: alog.Journald = alog.Journald(identifier="app", level="info", required=False)
    destination: Destination = journal if alog.Journald.stdout_is_journal() else alog.Stdout()
    async with alog.run(destination, alog.Journald(socket=Path("/run/j.sock"), json_field="JSON")):
        stats: alog.JournaldStatistics = journal.statistics()
        connected: bool = stats.connected
        refused: int = stats.refused
        last_error: str | None = stats.last_error
        del connected, refused, last_error
