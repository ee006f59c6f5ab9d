"""Processors and process-wide fields: what runs on the caller's thread before encoding."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import alog

from .conftest import read_events


def drop_health_checks(event: dict[str, Any]) -> dict[str, Any] | None:
    return None if event.get("path") == "/health" else event


def add_region(event: dict[str, Any]) -> dict[str, Any]:
    event["region"] = "eu"
    return event


async def test_processors_run_in_order_and_may_filter(tmp_path: Path) -> None:
    """Returning None filters the event out: counted as filtered, never as a loss."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), processors=[drop_health_checks, add_region]) as pipeline:
        log.info("request", path="/health")
        log.info("request", path="/items")
    (event,) = read_events(path)
    assert (event["path"], event["region"]) == ("/items", "eu")
    stats = pipeline.statistics()
    assert (stats.accepted, stats.written, stats.filtered, stats.dropped) == (2, 1, 1, 0)


async def test_a_raising_processor_keeps_the_event_and_marks_it(tmp_path: Path) -> None:
    """A bug in a processor never loses the event: alog.error names it, and it is counted."""

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("user_id")

    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), processors=[broken, add_region]) as pipeline:
        alog.get_logger("app").info("kept", a=1)
    (event,) = read_events(path)
    assert event["a"] == 1
    assert event["region"] == "eu"  # later processors still ran
    assert event["alog.error"] == (
        "processor test_a_raising_processor_keeps_the_event_and_marks_it.<locals>.broken "
        "raised KeyError: 'user_id'"
    )
    assert pipeline.statistics().processor_errors == 1


@pytest.mark.parametrize(
    ("processor", "expected"),
    [
        pytest.param(
            lambda e: {"only": 1}, {"level": "info", "logger": "app", "msg": "hi"}, id="all gone"
        ),
        pytest.param(
            lambda e: {**e, "msg": 42, "level": None},
            {"level": "info", "msg": "42"},
            id="wrong types",
        ),
        pytest.param(lambda e: {"x": 1, **e}, {"level": "info", "msg": "hi"}, id="reordered"),
    ],
)
async def test_the_core_keys_survive_any_processor(
    tmp_path: Path, processor: alog.typing.Processor, expected: dict[str, object]
) -> None:
    """A processor cannot produce a line without time, level, logger and msg, first."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), processors=[processor]):
        alog.get_logger("app").info("hi")
    (event,) = read_events(path)
    assert list(event)[:4] == ["time", "level", "logger", "msg"]
    assert isinstance(event["time"], str)
    for key, value in expected.items():
        assert event[key] == value


async def test_a_processor_returning_a_non_dict_is_an_error_not_a_loss(tmp_path: Path) -> None:
    """The event is written as it was, with the reason."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), processors=[lambda e: "oops"]) as pipeline:  # type: ignore[list-item,return-value]
        alog.get_logger("app").info("hi")
    (event,) = read_events(path)
    assert event["alog.error"].endswith("returned str, not a dict")
    assert pipeline.statistics().processor_errors == 1


async def test_processors_run_on_the_callers_thread(tmp_path: Path) -> None:
    """Values are read where the event is made (a thread-local, a contextvar)."""
    seen: list[str] = []

    def who(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        return event

    async with alog.run(alog.File(tmp_path / "out.log"), processors=[who]):
        alog.get_logger("app").info("loop")
        thread = threading.Thread(target=lambda: alog.get_logger("app").info("t"), name="worker")
        thread.start()
        thread.join()
    assert seen == [threading.current_thread().name, "worker"]


async def test_process_wide_fields_come_first_and_yield_to_the_call(tmp_path: Path) -> None:
    """fields= is on every event, before bound, context and call fields (which override)."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app").bind(version="bound")
    async with alog.run(alog.File(path), fields={"service": "api", "version": "1.4.2", "msg": "x"}):
        log.info("one")
        alog.get_logger("other").info("two", service="call")
    first, second = read_events(path)
    assert list(first) == ["time", "level", "logger", "msg", "service", "version", "_msg"]
    assert (first["service"], first["version"], first["_msg"]) == ("api", "bound", "x")
    assert second["service"] == "call"
    assert second["version"] == "1.4.2"


def test_processor_and_field_options_are_checked_at_once() -> None:
    """A bad processors= or fields= fails in alog.run, not at the first event."""
    with pytest.raises(TypeError, match="callable"):
        alog.run(processors=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of callables"):
        alog.run(processors=add_region)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        alog.run(fields=[("a", 1)])  # type: ignore[arg-type]
