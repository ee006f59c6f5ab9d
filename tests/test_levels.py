"""Levels per logger: loggers=, set_level at run time, inheritance by dotted prefix."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import alog

from .conftest import read_events


async def test_loggers_option_sets_thresholds_by_dotted_prefix(tmp_path: Path) -> None:
    """As in stdlib logging: app.db.pool inherits app.db's level; others use the default."""
    path = tmp_path / "out.log"
    pool = alog.get_logger("app.db.pool")
    httpx = alog.get_logger("httpx")
    web = alog.get_logger("app.web")
    async with alog.run(
        alog.File(path), level="info", loggers={"httpx": "warning", "app.db": "debug"}
    ):
        pool.debug("pool")
        httpx.info("not made")
        httpx.warning("made")
        web.debug("not made")
        web.info("made")
    assert [(e["logger"], e["msg"]) for e in read_events(path)] == [
        ("app.db.pool", "pool"),
        ("httpx", "made"),
        ("app.web", "made"),
    ]


async def test_set_level_reaches_existing_loggers_at_once(tmp_path: Path) -> None:
    """A logger created before set_level follows it, also when set from another thread."""
    path = tmp_path / "out.log"
    log = alog.get_logger("svc")
    child = alog.get_logger("svc.child").bind(k=1)
    async with alog.run(alog.File(path), level="info") as pipeline:
        log.debug("before")
        pipeline.set_level("debug")
        log.debug("after default")
        thread = threading.Thread(
            target=pipeline.set_level, args=("error",), kwargs={"logger": "svc"}
        )
        thread.start()
        thread.join()
        log.warning("filtered")
        child.warning("filtered too")
        child.error("kept")
        alog.get_logger("other").debug("still debug")
    assert [e["msg"] for e in read_events(path)] == ["after default", "kept", "still debug"]


async def test_levels_are_put_back_when_the_pipeline_ends(tmp_path: Path) -> None:
    """After the block, every call reaches the stdlib fallback again (which filters itself)."""
    log = alog.get_logger("restored")
    async with alog.run(
        alog.File(tmp_path / "out.log"), level="error", loggers={"restored": "critical"}
    ):
        assert type(log).error is not alog.Logger.error
    assert type(log).debug is alog.Logger.debug
    assert log.is_enabled_for("debug")


def test_set_level_checks_its_arguments() -> None:
    """A bad level or logger name fails at the call."""
    pipeline = alog.run(alog.Stdout())
    with pytest.raises(ValueError, match="unknown level"):
        pipeline.set_level("loud")
    with pytest.raises(TypeError, match="logger name"):
        pipeline.set_level("info", logger="")
    with pytest.raises(TypeError, match="loggers="):
        alog.run(loggers={3: "info"})  # type: ignore[dict-item]


async def test_a_disabled_call_takes_every_argument_an_enabled_one_takes(tmp_path: Path) -> None:
    """Below its threshold a level method is a bare no-op (no keyword-only parameter to
    match, the cheapest call): it still accepts exc_info= and any fields, and writes nothing."""
    path = tmp_path / "out.log"
    log = alog.get_logger("quiet")
    async with alog.run(alog.File(path), level="info", loggers={"quiet": "error"}):
        try:
            raise ValueError("boom")
        except ValueError:
            log.info("not made", exc_info=True, status=200)
            log.exception("made")
        log.warning("not made", exc_info=ValueError("x"))
        log.debug("not made")
        with pytest.raises(TypeError):
            log.info()  # type: ignore[call-arg]  # as an enabled method: a message is required
    assert [e["msg"] for e in read_events(path)] == ["made"]
