"""An app that runs alog: the library's events are JSON lines under its logger name."""

from __future__ import annotations

import asyncio
import sys

import weatherlib

import alog


async def main() -> None:
    async with alog.run(alog.Stdout()):
        with alog.bound(job="nightly"):
            results = [weatherlib.forecast("Lisbon"), weatherlib.forecast("")]
    print(results, file=sys.stderr)


asyncio.run(main())
