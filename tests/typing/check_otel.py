"""Checked by mypy only (never run): alog.otel as users write it, with its types."""

from __future__ import annotations

import alog
import alog.otel
from alog.otel import OTLP, OTLPStatistics
from alog.typing import Destination, Processor


async def service() -> None:
    collector: OTLP = OTLP(
        "https://otel.example:4318/v1/logs",
        headers={"authorization": "Bearer x"},
        timeout=5.0,
        level="info",
    )
    destination: Destination = collector
    processor: Processor = alog.otel.trace_context
    async with alog.run(alog.Stdout(), destination, otel=True, processors=[processor]):
        stats: OTLPStatistics = collector.statistics()
        records: int = stats.records
        status: int | None = stats.last_status
        del records, status
