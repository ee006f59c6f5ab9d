"""Frozen records the pipeline hands out: its statistics and the outcome of a flush."""

from __future__ import annotations

from dataclasses import dataclass

from ._writer import DestinationStatistics
from .typing import WriterState


@dataclass(frozen=True, slots=True)
class Statistics:
    """A snapshot of a pipeline's health, cheap to take at any time.

    The books balance: ``accepted == written + dropped + undelivered + filtered + queued``
    with one destination. With several, each destination's own books balance against
    ``accepted`` (see :class:`DestinationStatistics`) and the totals here add them up.
    """

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
    """Events made by enabled log calls (and alog's own reports), whatever became of them."""
    written: int
    """Events the destinations accepted."""
    dropped: int
    """Events lost to overflow (either policy), refused when closed or failed, or cut short."""
    undelivered: int
    """Events queued but lost: a failed destination, or an expired shutdown."""
    filtered: int
    """Events kept out on purpose: by a processor, or by a destination's ``level=``."""
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
    processor_errors: int
    """Processor calls that raised or returned a non-dict (the event was kept and marked)."""
    reports: int
    """alog's own events among ``accepted``: loss reports and notices."""
    last_write_seconds: float
    """How long the last batch took to write."""
    max_write_seconds: float
    """The slowest batch write so far."""
    destinations: tuple[DestinationStatistics, ...] = ()
    """Each destination's books, in the order given to ``alog.run``."""


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
