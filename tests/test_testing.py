"""alog.testing: capture_logs() and the alog_logs fixture."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import alog
import alog.stdlib
from alog import _logger, _state
from alog.testing import capture_logs

from .conftest import read_events


def test_captures_events_as_dicts_with_bound_and_context_fields() -> None:
    """Events are what a pipeline would write, minus time, so tests can compare whole dicts."""
    log = alog.get_logger("svc").bind(component="db")
    with capture_logs() as events, alog.bound(request_id="r1"):
        log.debug("connected", host="db1")
        log.log("warning", "slow", ms=120)
    assert events == [
        {
            "level": "debug",
            "logger": "svc",
            "msg": "connected",
            "component": "db",
            "request_id": "r1",
            "host": "db1",
        },
        {
            "level": "warning",
            "logger": "svc",
            "msg": "slow",
            "component": "db",
            "request_id": "r1",
            "ms": 120,
        },
    ]


def test_captures_structured_exceptions() -> None:
    """exception() gives the same structured traceback a pipeline writes."""
    with capture_logs() as events:
        try:
            raise ValueError("bad")
        except ValueError:
            alog.get_logger("x").exception("failed")
    assert events[0]["exception"]["type"] == "ValueError"
    assert events[0]["exception"]["frames"][0]["function"] == (
        "test_captures_structured_exceptions"
    )


def test_captures_other_threads() -> None:
    """Work done in threads is captured too."""
    with capture_logs() as events:
        thread = threading.Thread(target=lambda: alog.get_logger("t").info("from thread"))
        thread.start()
        thread.join()
    assert [event["msg"] for event in events] == ["from thread"]


async def test_restores_a_running_pipeline_and_its_level(tmp_path: Path) -> None:
    """Inside the block events are captured; after it, the pipeline gets them again."""
    path = tmp_path / "log.jsonl"
    async with alog.run(alog.File(path), level="warning"):
        queue = _state.sink
        with capture_logs() as events:
            alog.get_logger("x").debug("captured at any level")
        assert _state.sink is queue
        assert _logger.snapshot() == (30, {})
        alog.get_logger("x").warning("written")
        alog.get_logger("x").info("filtered")
    assert [event["msg"] for event in events] == ["captured at any level"]
    assert [event["msg"] for event in read_events(path)] == ["written"]


def test_restores_the_fallback() -> None:
    """With no pipeline, the fallback and threshold 0 come back."""
    with capture_logs():
        pass
    assert _state.sink is _state.fallback
    assert _logger.snapshot() == (0, {})


def test_fixture_from_the_installed_plugin(alog_logs: list[dict[str, Any]]) -> None:
    """The pytest11 plugin gives every test an alog_logs list."""
    alog.get_logger("plugin").info("seen")
    assert alog_logs == [{"level": "info", "logger": "plugin", "msg": "seen"}]


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    """Users get the fixture by installing alog; no conftest import needed."""
    assert pytestconfig.pluginmanager.has_plugin("alog")


def test_captures_records_from_the_stdlib_bridge(capfd: pytest.CaptureFixture[str]) -> None:
    """A library's logging call is captured like an alog call: same dict, its logger's name."""
    with alog.stdlib.install(level="debug"), capture_logs() as events, alog.bound(rid="r1"):
        logging.getLogger("sqlalchemy.engine").debug("took %d ms", 12, extra={"table": "t"})
        try:
            raise KeyError("k")
        except KeyError:
            logging.getLogger("httpx").exception("retrying")
        alog.get_logger("app").info("mine")
    assert events[0] == {
        "level": "debug",
        "logger": "sqlalchemy.engine",
        "msg": "took 12 ms",
        "rid": "r1",
        "table": "t",
    }
    assert (events[1]["logger"], events[1]["msg"]) == ("httpx", "retrying")
    assert events[1]["exception"]["type"] == "KeyError"
    assert events[2] == {"level": "info", "logger": "app", "msg": "mine", "rid": "r1"}
    assert capfd.readouterr().err == ""  # captured, not written to stderr as well


async def test_captures_bridged_records_while_a_pipeline_runs(tmp_path: Path) -> None:
    """Inside the block the bridge's records are captured; after it, written again."""
    path = tmp_path / "log.jsonl"
    with alog.stdlib.install():
        async with alog.run(alog.File(path)):
            with capture_logs() as events:
                logging.getLogger("lib").warning("captured")
            logging.getLogger("lib").warning("written")
    assert events == [{"level": "warning", "logger": "lib", "msg": "captured"}]
    assert [event["msg"] for event in read_events(path)] == ["written"]
