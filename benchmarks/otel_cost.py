"""The cost per log call of trace correlation (``otel=True``), inside a running pipeline.

Each variant runs in this process in turn, interleaved over rounds, with an ``alog.File``
destination in a temporary folder; the figure is wall time of the logging loop per call (the
loop yields every 100 calls, as in benchmarks/run.py). Variants: correlation off; on with no
span current; on inside a recording SDK span. Run: ``python benchmarks/otel_cost.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

import alog

log = alog.get_logger("bench")
tracer = TracerProvider().get_tracer("bench")


def keep(event: dict[str, object]) -> dict[str, object]:
    return event


async def one(path: Path, events: int, *, otel: bool, in_span: bool, noop: bool = False) -> float:
    async with alog.run(
        alog.File(path),
        otel=otel,
        processors=[keep] if noop else [],
        max_events=events + 1,
        max_bytes=1 << 30,
    ) as pipeline:
        gc.collect()
        started = time.perf_counter()
        if in_span:
            with tracer.start_as_current_span("request"):
                for i in range(events):
                    log.info("request handled", method="GET", path="/", status=200, duration_ms=1.5)
                    if i % 100 == 99:
                        await asyncio.sleep(0)
        else:
            for i in range(events):
                log.info("request handled", method="GET", path="/", status=200, duration_ms=1.5)
                if i % 100 == 99:
                    await asyncio.sleep(0)
        elapsed = time.perf_counter() - started
        await pipeline.aflush(30)
    return elapsed * 1e9 / events


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants = {
        "off": {"otel": False, "in_span": False},
        "on, no span": {"otel": True, "in_span": False},
        "on, in a span": {"otel": True, "in_span": True},
        "off, in a span": {"otel": False, "in_span": True},
        "a no-op processor": {"otel": False, "in_span": False, "noop": True},
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            names = list(variants)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                path = Path(folder) / f"{round_}-{name}.log"
                results[name].append(await one(path, args.events, **variants[name]))
                path.unlink()
    base = statistics.median(results["off"])
    base_span = statistics.median(results["off, in a span"])
    print(f"{args.events} events x {args.rounds} rounds, median ns per call")
    for name, values in results.items():
        median = statistics.median(values)
        ref = base_span if "in a span" in name else base
        print(f"{name:16} {median:8.0f} ns  (+{median - ref:5.0f} ns)")


if __name__ == "__main__":
    asyncio.run(main())
