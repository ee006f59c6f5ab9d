"""ns per log call on the loop, with and without redaction (docs/performance.md)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import alog

N = 100_000
CONFIGS: dict[str, list[str] | None] = {
    "not configured": None,
    "2 exact paths": ["password", "headers.authorization"],
    "5 paths with * and **": [
        "password",
        "*.token",
        "headers.authorization",
        "user.*.ssn",
        "**.secret",
    ],
}


async def one_round(paths: list[str] | None, folder: Path, *, secret: bool) -> float:
    log = alog.get_logger("bench")
    async with alog.run(alog.File(folder / "out.log"), redact=paths, max_events=N + 1):
        extra = {"password": "hunter22"} if secret else {}
        start = time.perf_counter_ns()
        for i in range(N):
            log.info("request", method="GET", path="/items", status=200, duration_ms=1.5, **extra)
            if i % 100 == 99:
                await asyncio.sleep(0)
        elapsed = time.perf_counter_ns() - start
    (folder / "out.log").unlink()
    return elapsed / N


async def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for secret in (False, True):
            results: dict[str, list[float]] = {name: [] for name in CONFIGS}
            for _ in range(rounds):  # interleaved: the machine's noise hits every config alike
                for name, paths in CONFIGS.items():
                    results[name].append(await one_round(paths, folder, secret=secret))
            print(f"events {'with' if secret else 'without'} a password field:")
            base = statistics.median(results["not configured"])
            for name, values in results.items():
                median = statistics.median(values)
                print(f"  {name:24} {median:7.0f} ns per call  (+{median - base:4.0f})")


asyncio.run(main())
