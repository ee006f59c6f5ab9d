"""Fan-out: several destinations, each with its own level, required or optional, and books."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import anyio.abc
import pytest

import alog

from .conftest import read_events


async def test_every_event_reaches_every_destination(tmp_path: Path) -> None:
    """One log call, two files: both get the same line, encoded once."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(first), alog.File(second)) as pipeline:
        for i in range(1000):
            log.info("fan", i=i)
    assert first.read_bytes() == second.read_bytes()
    assert [e["i"] for e in read_events(first)] == list(range(1000))
    stats = pipeline.statistics()
    assert [d.written for d in stats.destinations] == [1000, 1000]
    assert stats.written == 2000
    assert stats.accepted == 1000


async def test_a_destination_level_filters_what_it_receives(tmp_path: Path) -> None:
    """The issue's example: app.db debug reaches debug.log, not the info-level main log."""
    main, debug, audit = tmp_path / "main.log", tmp_path / "debug.log", tmp_path / "audit.log"
    db = alog.get_logger("app.db")
    web = alog.get_logger("app.web")
    async with alog.run(
        alog.File(main, level="info"),
        alog.File(debug),
        alog.File(audit, level="warning", required=False),
        level="info",
        loggers={"app.db": "debug"},
    ) as pipeline:
        db.debug("query", sql="select 1")
        web.debug("never made")  # below app.web's threshold (the default, info)
        web.info("request")
        db.warning("slow query")
    assert [e["msg"] for e in read_events(main)] == ["request", "slow query"]
    assert [e["msg"] for e in read_events(debug)] == ["query", "request", "slow query"]
    assert [e["msg"] for e in read_events(audit)] == ["slow query"]
    by_name = {Path(d.name).name: d for d in pipeline.statistics().destinations}
    assert (by_name["main.log"].written, by_name["main.log"].filtered) == (2, 1)
    assert (by_name["audit.log"].written, by_name["audit.log"].filtered) == (1, 2)
    for d in by_name.values():
        assert d.written + d.filtered + d.dropped + d.undelivered + d.held == 3


class _BrokenStream(anyio.abc.ByteSendStream):
    def __init__(self, owner: _Broken) -> None:
        self.owner = owner

    async def send(self, item: bytes) -> None:
        if self.owner.good <= 0:
            raise OSError(5, "injected I/O error")
        self.owner.good -= 1
        self.owner.received.append(item)

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class _Broken:
    """A destination whose stream fails every write after ``good`` sends; it can be reopened."""

    def __init__(self, good: int = 0, *, required: bool = False) -> None:
        self.good = good
        self.required = required
        self.opens = 0
        self.received: list[bytes] = []

    async def open(self) -> anyio.abc.ByteSendStream:
        self.opens += 1
        return _BrokenStream(self)

    def __repr__(self) -> str:
        return "broken"


async def test_an_optional_destination_failing_is_counted_not_fatal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """required=False: one stderr line, an alog.destination_failed event, the app goes on."""
    path = tmp_path / "main.log"
    broken = _Broken(good=1)
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), broken, write_timeout=1.0) as pipeline:
        log.info("first")
        await pipeline.aflush(5)
        for i in range(100):
            log.info("later", i=i)
        await pipeline.aflush(5)
        assert pipeline.statistics().destinations[1].state == "retrying"
    stats = pipeline.statistics()
    main, other = stats.destinations
    assert other.written == 1
    assert other.undelivered == 101  # the 100 later events and the notice itself
    assert other.last_error == "OSError: [Errno 5] injected I/O error"
    assert main.written == 102  # first, 100 later, the notice
    assert stats.state == "closed"
    events = read_events(path)
    (notice,) = [e for e in events if e["msg"] == "alog.destination_failed"]
    assert notice["destination"] == "broken"
    assert notice["level"] == "error"
    assert [e["i"] for e in events if e["msg"] == "later"] == list(range(100))
    err = capfd.readouterr().err
    assert err.count("alog: optional destination broken failed") == 1


async def test_an_optional_destination_is_reopened_with_backoff(tmp_path: Path) -> None:
    """After a failure the writer opens the destination again and delivers from then on."""
    broken = _Broken(good=0)
    log = alog.get_logger("app")
    async with alog.run(alog.File(tmp_path / "main.log"), broken) as pipeline:
        log.info("lost")
        await pipeline.aflush(5)
        broken.good = 1000  # the destination is back
        deadline = time.monotonic() + 5
        while pipeline.statistics().destinations[1].reopens == 0:
            assert time.monotonic() < deadline, "never reopened"
            log.info("probe")
            await anyio.sleep(0.05)
        log.info("delivered")
        await pipeline.aflush(5)
        (_, other) = pipeline.statistics().destinations
    assert other.state == "running"
    assert other.reopens >= 1
    assert broken.opens >= 2
    assert b'"msg":"delivered"' in b"".join(broken.received)


async def test_a_required_destination_failing_fails_the_pipeline(tmp_path: Path) -> None:
    """required=True (the default) among others: WriterFailed, every writer stops."""
    broken = _Broken(good=0, required=True)
    log = alog.get_logger("app")
    pipeline = alog.run(alog.File(tmp_path / "main.log"), broken, write_timeout=1.0)
    with pytest.raises(alog.WriterFailed, match="injected I/O error"):
        async with pipeline:
            while True:
                log.info("x")
                await anyio.sleep(0.001)
    stats = pipeline.statistics()
    assert stats.state == "failed"
    for d in stats.destinations:
        assert d.held == 0
        assert d.written + d.filtered + d.dropped + d.undelivered == stats.accepted - (
            stats.dropped - sum(x.dropped for x in stats.destinations)
        )


async def test_a_stalled_destination_does_not_stall_the_others(tmp_path: Path) -> None:
    """A pipe nobody reads holds at most its share; the file keeps getting every event."""
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        path = tmp_path / "main.log"
        log = alog.get_logger("app")
        async with alog.run(
            alog.File(path),
            alog.File(fifo, required=False),
            max_bytes=256 * 1024,
            write_timeout=30.0,
            shutdown_timeout=0.5,
        ) as pipeline:
            for i in range(20_000):
                log.info("steady", i=i, pad="x" * 50)
                if i % 50 == 0:
                    await anyio.sleep(0.001)  # a steady rate the file can follow
            assert (await pipeline.aflush(0.2)).pending > 0  # the pipe never catches up
            stats = pipeline.statistics()
            assert stats.queued_bytes <= 256 * 1024 + 64 * 1024
        file_stats, pipe_stats = pipeline.statistics().destinations
        assert [e["i"] for e in read_events(path) if e["msg"] == "steady"] == list(range(20_000))
        assert file_stats.dropped == 0
        assert pipe_stats.dropped > 0
        assert (
            pipe_stats.written + pipe_stats.dropped + pipe_stats.undelivered + pipe_stats.filtered
            == pipeline.statistics().accepted
        )
    finally:
        os.close(reader)


def test_destination_options_are_checked_at_once() -> None:
    """Bad level= or required= fails when the destination or the pipeline is configured."""
    with pytest.raises(TypeError, match="required="):
        alog.File("x.log", required="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown level 'loud'"):
        alog.run(alog.Stdout(level="loud"))
    assert repr(alog.File("x.log", level="warning", required=False)) == (
        "alog.File('x.log', level='warning', required=False)"
    )
    assert repr(alog.Stdout()) == "alog.Stdout()"
