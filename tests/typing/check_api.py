"""Checked by mypy only (never run): alog's API as users write it, with its types."""

from __future__ import annotations

from datetime import timedelta

import anyio.abc

import alog
from alog.typing import Destination


async def service(stream: anyio.abc.ByteSendStream) -> None:
    log: alog.Logger = alog.get_logger(__name__)
    fields: dict[str, object] = {"method": "GET", "status": 200}
    log.info("request handled", **fields)  # any dict of fields type-checks
    log.error("failed", exc_info=ValueError("x"))
    log.log("audit", "user created", user_id=1)
    child: alog.Logger = log.bind(request_id="r-1")
    with alog.bound(request_id="r-2"):
        child.warning("slow", duration_ms=812.5)

    destination: Destination = alog.File("app.log")
    async with alog.run(destination, level="info", overflow="drop_oldest") as pipeline:
        result: alog.FlushResult = pipeline.flush(timeout=2.0)
        done: bool = result.complete
        stats: alog.Statistics = pipeline.statistics()
        dropped: int = stats.dropped
        del done, dropped
        await pipeline.aflush(timeout=1.0)
    async with alog.run(stream):  # any anyio byte stream is a destination
        pass
    async with alog.run(fields={"service": "api", **alog.process_fields("pid", "hostname")}):
        pass
    try:
        async with alog.run(alog.Stdout(), write_timeout=10.0):
            pass
    except alog.WriterFailed as failure:
        cause: BaseException | None = failure.__cause__
        del cause
    alog.flush(timeout=2.0)


async def rotated(path: str) -> None:
    daily = alog.File(path, rotate_every=timedelta(days=1), keep=7, compress=True)
    by_size = alog.File(path + ".debug", rotate_bytes=10_000_000, rotate_every=3600.0)
    async with alog.run(daily, by_size, alog.File("other.log"), reopen_on_sighup=True) as pipeline:
        asked: bool = pipeline.reopen()
        mine: alog.DestinationStatistics = pipeline.statistics().destinations[0]
        counts: tuple[int, int] = (mine.reopens, mine.rotations)
        del asked, counts


async def to_engines() -> None:
    import ssl

    agent: Destination = alog.TCP("127.0.0.1", 5170, framing="octet-counting", required=False)
    secure: Destination = alog.TCP("logs", 6514, tls=ssl.create_default_context())
    local: Destination = alog.Unix("/run/agent.sock", level="warning")
    syslog: Destination = alog.Syslog(("127.0.0.1", 514), transport="tcp", facility="local0")
    async with alog.run(agent, secure, local, syslog, alog.Syslog()) as pipeline:
        for books in pipeline.statistics().destinations:
            up: bool | None = books.connected
            again: int = books.reconnects
            cut: int = books.truncated
            del up, again, cut


async def development() -> None:
    alog.set_redaction(["password"], censor="***")
    console: Destination = alog.Console("stderr", colors=True, level="debug")
    async with alog.run(
        console,
        alog.Stdout(format="auto"),
        redact=["password", "*.token", "headers.authorization", "**.secret"],
        censor=None,
        rate_limit=(10, 1.0),
        sample={"debug": 0.1},
    ):
        pass
    async with alog.run(redact=("user.*.ssn",), remove=True, rate_limit={"error": (5, 60.0)}):
        pass
    alog.set_redaction(None)
