"""Frozen records the pipeline hands out: its statistics and the outcome of a flush."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WriterState = Literal["starting", "running", "closing", "closed", "failed"]


@dataclass(frozen=True, slots=True)
class Statistics:
    """A snapshot of a pipeline's health, cheap to take at any time from the loop's thread."""

    state: WriterState
    """Where the writer is in its life; ``failed`` means the app was (or is being) cancelled."""
    queued: int
    """Events accepted and not yet written: waiting in the queue or in flight."""
    queued_bytes: int
    """Bytes of those events."""
    peak_queued: int
    """The most events ever queued at once, as seen by the writer when it took a batch."""
    peak_queued_bytes: int
    """The most bytes ever queued at once, seen the same way."""
    accepted: int
    """Events that entered the queue (including alog's own drop summaries)."""
    written: int
    """Events the destination accepted."""
    dropped: int
    """Events lost to overflow (either policy) or refused after the writer failed."""
    undelivered: int
    """Events that were queued but lost with a failed writer or an expired shutdown."""
    bytes_written: int
    """Bytes the destination accepted."""
    batches: int
    """Writes handed to the destination (each holds many events)."""
    write_errors: int
    """Writes that failed; the first permanent one ends the writer."""
    encode_fallbacks: int
    """Events whose fields needed the fallback encoder (bad values, oversized events)."""
    internal_errors: int
    """Log calls lost to a bug in alog itself (a log call never raises; it counts here)."""
    last_write_seconds: float
    """How long the last batch took to write."""
    max_write_seconds: float
    """The slowest batch write so far."""


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What a flush achieved by its deadline."""

    written: int
    """Events written to the destination while the flush ran."""
    pending: int
    """Events logged before the flush that are still not written when it returned."""
    dropped: int
    """Events lost (overflow, failed writer) while the flush ran."""
    timed_out: bool
    """The deadline passed before everything logged before the flush was written."""
    state: WriterState
    """The writer's state when the flush returned."""

    @property
    def complete(self) -> bool:
        """Everything logged before the flush is written."""
        return self.pending == 0 and not self.timed_out
