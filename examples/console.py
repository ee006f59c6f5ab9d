"""What development with alog looks like in a terminal: ``python examples/console.py``.

``alog.Stdout(format="auto")`` renders for people when stdout is a terminal and writes JSON
lines when it is a pipe or a file (try ``python examples/console.py | cat``).
"""

from __future__ import annotations

import asyncio

import alog

log = alog.get_logger("app.http")


def load_user(user_id: int) -> dict[str, str]:
    users = {1: {"name": "ada"}}
    return users[user_id]


async def main() -> None:
    async with alog.run(
        alog.Stdout(format="auto"), level="debug", redact=["password"], max_events=8
    ) as pipeline:
        log.debug("cache warm", entries=1024)
        log.info("request handled", method="GET", path="/items", status=200, duration_ms=3.2)
        secret = "hunter2"  # noqa: S105 - shown redacted: the point of redact= above
        log.info("login", user="ada", password=secret, client={"ip": "10.0.0.7"})
        log.warning("slow query", sql="SELECT * FROM items WHERE " + "x = 1 AND " * 40 + "1")
        try:
            try:
                load_user(2)
            except KeyError as error:
                raise LookupError("no such user") from error
        except LookupError:
            log.exception("request failed", path="/users/2")
        await pipeline.aflush()
        for i in range(30):  # a burst past max_events: counted, then reported once
            log.debug("burst", i=i)
        await pipeline.aflush()


if __name__ == "__main__":
    asyncio.run(main())
