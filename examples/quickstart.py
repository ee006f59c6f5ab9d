"""A small asyncio program that logs structured events to stdout.

Run it with ``python examples/quickstart.py``; every line it prints is one JSON object.
"""

from __future__ import annotations

import asyncio
import random

import alog

log = alog.get_logger("quickstart")  # fine at import time, before any pipeline runs


async def handle(request_id: str, path: str) -> None:
    with alog.bound(request_id=request_id):  # every event in this block carries request_id
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(random.uniform(0.001, 0.01))  # noqa: S311 - demo latency
        duration_ms = round((asyncio.get_running_loop().time() - started) * 1000, 3)
        log.info("request handled", method="GET", path=path, status=200, duration_ms=duration_ms)


async def main() -> None:
    async with alog.run(alog.Stdout(), level="info") as pipeline:
        log.info("service started", version="1.0")
        async with asyncio.TaskGroup() as tasks:
            for number, path in enumerate(["/", "/items", "/items/7"]):
                tasks.create_task(handle(f"r-{number}", path))
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed", key="missing")
        log.debug("not written: below the pipeline's level")
        stats = pipeline.statistics()
        log.info("service stopping", accepted=stats.accepted, dropped=stats.dropped)


if __name__ == "__main__":
    asyncio.run(main())
