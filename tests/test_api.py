"""The public surface: names, loggers, binding, levels and configuration checks."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import alog
from alog import _logger, _state

from .conftest import read_events


def test_all_lists_exactly_the_public_names() -> None:
    """`__all__` is the contract: sorted, complete, and nothing private leaks."""
    # (pytest assertion rewriting adds "@py_builtins" when alog is loaded as a plugin)
    public = {name for name in vars(alog) if name.isidentifier() and not name.startswith("_")}
    modules = {"typing", "testing", "stdlib", "integrations", "otel", "annotations"}
    assert sorted(alog.__all__) == alog.__all__
    assert set(alog.__all__) == public - modules


def test_get_logger_defaults_to_the_calling_module() -> None:
    """Library authors write `alog.get_logger()` and get their module's name."""
    assert alog.get_logger().name == __name__
    assert alog.get_logger("app").name == "app"


def test_bind_returns_a_new_logger_and_leaves_the_original_alone() -> None:
    """Binding is immutable: handing a logger to other code cannot change it."""
    log = alog.get_logger("app", service="api")
    child = log.bind(request_id="r-1")
    assert log.bound_fields == {"service": "api"}
    assert child.bound_fields == {"service": "api", "request_id": "r-1"}
    assert child.name == "app"


async def test_every_field_source_lands_in_order(tmp_path: Path) -> None:
    """Core keys first, then bound, context and call fields, as the line format promises."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app").bind(bound=1)
    async with alog.run(alog.File(path)):
        with alog.bound(ctx=2):
            log.info("hello", call=3)
    (event,) = read_events(path)
    assert list(event) == ["time", "level", "logger", "msg", "bound", "ctx", "call"]
    assert event["level"] == "info"
    assert event["logger"] == "app"
    assert event["msg"] == "hello"
    assert (event["bound"], event["ctx"], event["call"]) == (1, 2, 3)


async def test_time_is_rfc3339_utc_with_microseconds(tmp_path: Path) -> None:
    """Every line has the same timestamp shape, so log tools never guess."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path)):
        for _ in range(50):
            alog.get_logger("t").info("tick")
    for event in read_events(path):
        stamp = event["time"]
        assert len(stamp) == len("2026-11-28T02:13:20.123456Z")
        assert stamp.endswith("Z")
        assert stamp[10] == "T"
        assert stamp[19] == "."


async def test_later_field_sources_override_earlier_ones(tmp_path: Path) -> None:
    """A call's field wins over a context field, which wins over a bound one."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app").bind(who="bound", keep="b")
    async with alog.run(alog.File(path)):
        with alog.bound(who="context"):
            log.info("a")
            log.info("b", who="call")
    first, second = read_events(path)
    assert (first["who"], first["keep"]) == ("context", "b")
    assert second["who"] == "call"


async def test_fields_cannot_overwrite_core_keys(tmp_path: Path) -> None:
    """A field named like a core key is renamed, so it can never forge level or msg."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app").bind(logger="forged")
    async with alog.run(alog.File(path)):
        with alog.bound(time="forged"):
            log.info("real", msg="forged", level="forged")
    (event,) = read_events(path)
    assert event["msg"] == "real"
    assert event["level"] == "info"
    assert event["logger"] == "app"
    assert event["_msg"] == event["_level"] == event["_logger"] == event["_time"]


async def test_context_follows_tasks_created_inside_the_block(tmp_path: Path) -> None:
    """`alog.bound` is a context variable: child tasks inherit it, siblings do not."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")

    async def child(name: str) -> None:
        await anyio.lowlevel.checkpoint()
        log.info(name)

    async with alog.run(alog.File(path)), anyio.create_task_group() as tasks:
        with alog.bound(request_id="r-1"):
            tasks.start_soon(child, "inside")
        tasks.start_soon(child, "outside")
        assert alog.current_context() == {}
    events = {event["msg"]: event for event in read_events(path)}
    assert events["inside"]["request_id"] == "r-1"
    assert "request_id" not in events["outside"]


async def test_values_are_taken_at_the_time_of_the_call(tmp_path: Path) -> None:
    """Mutating a logged dict afterwards must not change the line already logged."""
    path = tmp_path / "out.log"
    items = [1, 2]
    payload: dict[str, object] = {"items": items}
    async with alog.run(alog.File(path)):
        alog.get_logger("app").info("snapshot", payload=payload)
        items.append(3)
        payload["late"] = True
    (event,) = read_events(path)
    assert event["payload"] == {"items": [1, 2]}


async def test_level_threshold_filters_and_custom_levels_work(tmp_path: Path) -> None:
    """`level=` drops lower levels; `levels=` adds names usable by `log.log`."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), level="warning", levels={"audit": 35}):
        log.debug("no")
        log.info("no")
        log.warning("yes-warning")
        log.log("audit", "yes-audit", user_id=1)
        log.log(25, "no-25")
        log.log(45, "yes-45")
        log.log("AUDIT", "yes-audit-upper")
        log.error("yes-error")
        log.critical("yes-critical")
    events = read_events(path)
    assert [e["msg"] for e in events] == [
        "yes-warning",
        "yes-audit",
        "yes-45",
        "yes-audit-upper",
        "yes-error",
        "yes-critical",
    ]
    assert [e["level"] for e in events] == [
        "warning",
        "audit",
        "level45",
        "audit",
        "error",
        "critical",
    ]


async def test_unknown_level_names_are_never_filtered_out(tmp_path: Path) -> None:
    """A typo in a custom level must show up rather than vanish (and never raise)."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), level="critical"):
        alog.get_logger("app").log("adit", "typo")
    (event,) = read_events(path)
    assert event["level"] == "adit"


async def test_exception_is_logged_as_structured_fields(tmp_path: Path) -> None:
    """`log.exception` records type, message, frames and the cause chain."""
    path = tmp_path / "out.log"

    def fail() -> None:
        try:
            int("x")
        except ValueError as error:
            raise RuntimeError("wrapped") from error

    async with alog.run(alog.File(path)):
        try:
            fail()
        except RuntimeError:
            alog.get_logger("app").exception("boom", job=7)
        alog.get_logger("app").warning("explicit", exc_info=KeyError("k"))
    boom, explicit = read_events(path)
    assert boom["level"] == "error"
    assert boom["job"] == 7
    exc = boom["exception"]
    assert exc["type"] == "RuntimeError"
    assert exc["message"] == "wrapped"
    assert exc["frames"][-1]["function"] == "fail"
    assert exc["cause"]["type"] == "ValueError"
    assert explicit["exception"] == {"type": "KeyError", "message": "'k'", "frames": []}


def test_disabled_levels_are_swapped_for_a_no_op() -> None:
    """Below the threshold a call is one empty method call: nothing is built."""
    log = alog.get_logger("swap.test")
    try:
        _logger.configure(30, {})
        assert type(log).info is _logger._disabled
        assert type(log).debug is _logger._disabled
        assert type(log).warning is not _logger._disabled
        _logger.configure(41, {})
        assert type(log).exception is _logger._disabled
    finally:
        _logger.configure(0, {})
    assert type(log).info is alog.Logger.info


def test_a_logger_threshold_follows_the_nearest_configured_ancestor() -> None:
    """Dotted names inherit as in stdlib logging; a change reaches existing loggers at once."""
    pool = alog.get_logger("app.db.pool")
    other = alog.get_logger("app.web")
    try:
        _logger.configure(20, {"app.db": 10, "httpx": 30})
        assert type(pool).debug is alog.Logger.debug
        assert type(other).debug is _logger._disabled
        _logger.set_level(40, "app")
        assert type(other).warning is _logger._disabled
        assert type(pool).debug is alog.Logger.debug  # app.db keeps its own setting
        _logger.set_level(50)
        assert type(alog.get_logger("unrelated")).error is _logger._disabled
    finally:
        _logger.configure(0, {})


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_events": 0}, ValueError, "max_events"),
        ({"max_bytes": -1}, ValueError, "max_bytes"),
        ({"max_events": 1.5}, TypeError, "max_events"),
        ({"write_timeout": 0}, ValueError, "write_timeout"),
        ({"shutdown_timeout": float("inf")}, ValueError, "shutdown_timeout"),
        ({"overflow": "block"}, ValueError, "overflow"),
        ({"level": "loud"}, ValueError, "unknown level 'loud'"),
        ({"level": True}, TypeError, "level"),
        ({"levels": {"Audit": 35}}, ValueError, "lower-case"),
        ({"levels": {"audit2": 20}}, ValueError, "already belongs to 'info'"),
        ({"max_event_bytes": 2048, "max_bytes": 1024}, ValueError, "max_event_bytes"),
    ],
)
def test_bad_configuration_fails_at_construction(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    """Misconfiguration is a precise error when `alog.run(...)` is called, not later."""
    with pytest.raises(error, match=message):
        alog.run(**options)  # type: ignore[arg-type]


def test_a_destination_must_be_something_alog_can_open() -> None:
    """A wrong destination type is reported at once, with what would have worked."""
    with pytest.raises(TypeError, match=r"alog\.File\(path\)"):
        alog.run("stdout")  # type: ignore[arg-type]


async def test_a_destination_that_cannot_open_fails_the_run(tmp_path: Path) -> None:
    """An unopenable destination raises WriterFailed from `async with`, before the body."""
    body_ran = False
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.File(tmp_path / "missing-dir" / "out.log")):
            body_ran = True
    assert not body_ran
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    assert _state.pipeline is None
    assert _state.sink is _state.fallback


async def test_only_one_pipeline_runs_at_a_time(tmp_path: Path) -> None:
    """Log calls come from anywhere, so a second concurrent pipeline is refused."""
    async with alog.run(alog.File(tmp_path / "a.log")) as first:
        with pytest.raises(RuntimeError, match="already running"):
            async with alog.run(alog.File(tmp_path / "b.log")):
                pass
        assert _state.pipeline is first
    assert _state.pipeline is None


async def test_a_pipeline_runs_once(tmp_path: Path) -> None:
    """Re-entering a finished pipeline is a clear error, not a silent restart."""
    pipeline = alog.run(alog.File(tmp_path / "a.log"))
    async with pipeline:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        async with pipeline:
            pass


def test_without_a_pipeline_calls_go_to_stdlib_logging(caplog: pytest.LogCaptureFixture) -> None:
    """No pipeline: nothing accumulates; records reach `logging` with their fields."""
    log = alog.get_logger("lib.module").bind(component="db")
    with caplog.at_level(logging.INFO, logger="lib.module"), alog.bound(request_id="r-9"):
        log.info("connected", host="db1", port=5432)
        log.debug("filtered by logging's own level")
    (record,) = caplog.records
    assert record.name == "lib.module"
    assert record.levelno == logging.INFO
    assert record.getMessage() == ("connected component='db' request_id='r-9' host='db1' port=5432")
    assert record.alog_fields == {  # type: ignore[attr-defined]
        "component": "db",
        "request_id": "r-9",
        "host": "db1",
        "port": 5432,
    }
    assert record.funcName == "test_without_a_pipeline_calls_go_to_stdlib_logging"


def test_fallback_carries_exceptions_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    """`log.exception` without a pipeline still gives logging the traceback."""
    with caplog.at_level(logging.ERROR, logger="lib"):
        try:
            raise KeyError("gone")
        except KeyError:
            alog.get_logger("lib").exception("failed")
    (record,) = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
