"""The logging bridge: records from other code become alog events, without loops."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import alog
import alog.stdlib
from alog import _logger, _state
from alog.testing import capture_logs

from .conftest import RunScript, read_events


@pytest.fixture(name="bridge")
def fixture_bridge() -> Iterator[alog.stdlib.Bridge]:
    with alog.stdlib.install(level="debug") as bridge:
        yield bridge


async def test_records_become_events_with_args_extra_and_exception(
    tmp_path: Path, bridge: alog.stdlib.Bridge
) -> None:
    """Message formatted with its args, logger name, level, extra fields, structured exc_info."""
    path = tmp_path / "log.jsonl"
    async with alog.run(alog.File(path)):
        std = logging.getLogger("sqlalchemy.engine")
        std.info("query took %d ms", 12, extra={"table": "users"})
        try:
            raise KeyError("missing")
        except KeyError:
            std.exception("lookup failed")
        std.debug("below alog's level")
    first, second = read_events(path)
    assert {k: v for k, v in first.items() if k != "time"} == {
        "level": "info",
        "logger": "sqlalchemy.engine",
        "msg": "query took 12 ms",
        "table": "users",
    }
    assert (second["level"], second["msg"]) == ("error", "lookup failed")
    assert second["exception"]["type"] == "KeyError"


async def test_records_carry_bound_context(tmp_path: Path, bridge: alog.stdlib.Bridge) -> None:
    """A library's logging call inside a request carries the request id."""
    path = tmp_path / "log.jsonl"
    async with alog.run(alog.File(path)):
        with alog.bound(request_id="r1"):
            logging.getLogger("httpx").warning("retrying")
    (event,) = read_events(path)
    assert event["request_id"] == "r1"


async def test_records_from_threads_are_queued(tmp_path: Path, bridge: alog.stdlib.Bridge) -> None:
    """Threads log through the bridge like any alog call: thread-safe, none lost."""
    path = tmp_path / "log.jsonl"
    async with alog.run(alog.File(path)):

        def work(n: int) -> None:
            for _ in range(50):
                logging.getLogger("worker").info("n=%d", n)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(read_events(path)) == 200


def test_no_loop_when_alog_falls_back_to_logging(
    bridge: alog.stdlib.Bridge, capfd: pytest.CaptureFixture[str]
) -> None:
    """With no pipeline, alog forwards to logging and the bridge writes stderr, once."""
    alog.get_logger("lib").warning("no pipeline", user="ann")
    logging.getLogger("other").error("plain %s", "record")
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 2
    assert '"msg":"no pipeline"' in err[0]
    assert '"user":"ann"' in err[0]
    assert '"logger":"other"' in err[1]


def test_install_replaces_and_uninstall_restores_handlers() -> None:
    """uvicorn-style loggers with their own handlers are routed once, and put back after."""
    own = logging.getLogger("uvicorn.test")
    handler = logging.StreamHandler()
    own.addHandler(handler)
    own.propagate = False
    try:
        bridge = alog.stdlib.install()
        assert own.handlers == []
        assert own.propagate is True
        assert any(isinstance(h, alog.stdlib.AlogHandler) for h in logging.getLogger().handlers)
        bridge.uninstall()
        assert own.handlers == [handler]
        assert own.propagate is False
        assert not any(isinstance(h, alog.stdlib.AlogHandler) for h in logging.getLogger().handlers)
    finally:
        own.removeHandler(handler)
        handler.close()


def test_uvicorn_and_asyncio_lines_in_one_stream(run_script: RunScript) -> None:
    """asyncio's own logger goes through the same queue as the app's events."""
    result = run_script(
        """
        import asyncio, logging, alog, alog.stdlib
        alog.stdlib.install()
        async def main():
            async with alog.run():
                logging.getLogger("asyncio").warning("slow callback")
                alog.get_logger("app").info("hello")
        asyncio.run(main())
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert [line.count('"logger":"asyncio"') + line.count('"logger":"app"') for line in lines] == [
        1,
        1,
    ]


def test_loggers_sharing_one_handler_list_are_both_routed() -> None:
    """gunicorn's UvicornWorker gives uvicorn.error gunicorn.error's list: both must reach alog."""
    first = logging.getLogger("shared.first")
    second = logging.getLogger("shared.second")
    handler = logging.StreamHandler()
    first.addHandler(handler)
    second.handlers = first.handlers  # the very same list object, as UvicornWorker does
    first.propagate = second.propagate = False
    try:
        with alog.stdlib.install() as bridge, capture_logs() as events:
            assert (first.propagate, second.propagate) == (True, True)
            assert second.handlers is first.handlers == []
            first.warning("from the first")
            second.warning("from the second")
            assert [(e["logger"], e["msg"]) for e in events] == [
                ("shared.first", "from the first"),
                ("shared.second", "from the second"),
            ]
            bridge.uninstall()
            assert second.handlers is first.handlers == [handler]
            assert (first.propagate, second.propagate) == (False, False)
    finally:
        first.removeHandler(handler)
        handler.close()


FAILING = """
    import asyncio, logging, os, sys
    import alog, alog.stdlib

    alog.stdlib.install()
    log = alog.get_logger("app")
    logging.getLogger("lib").info("before any pipeline")

    async def fail():
        try:
            async with alog.run(alog.File("/dev/full"), write_timeout=1):
                log.info("lost with the destination")
                await asyncio.sleep(10)
        except alog.WriterFailed:
            pass

    asyncio.run(fail())
    for i in range(1000):
        log.info("after", i=i)
        logging.getLogger("lib").warning("after %d", i)
    log.debug("below the failed pipeline's level: not counted")
    if sys.argv[1:] == ["again"]:
        async def again():
            async with alog.run():
                log.info("a new pipeline writes again")
        asyncio.run(again())
"""


def test_after_a_writer_failure_later_events_are_counted_in_one_line(
    run_script: RunScript,
) -> None:
    """After the one failure line, the rest is one count at exit, not a line per event."""
    result = run_script(FAILING)
    assert result.returncode == 0, result.stderr
    before, failed, count = result.stderr.decode().splitlines()
    assert json.loads(before)["msg"] == "before any pipeline"  # no pipeline yet: JSON, as ever
    assert failed.startswith("alog: alog writer failed on /dev/full")
    assert count == "alog: 2000 events logged after the writer failed on /dev/full were not written"
    assert result.stdout == b""


def test_a_new_pipeline_after_a_failure_reports_the_count_and_writes(
    run_script: RunScript,
) -> None:
    """The count is said when a new pipeline takes over, which then writes as usual."""
    result = run_script(FAILING, args=("again",))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines[1:] == [
        lines[1],
        "alog: 2000 events logged after the writer failed on /dev/full were not written",
    ]
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["msg"] == "a new pipeline writes again"


def test_loggers_writing_through_alog_alone_are_left_as_they_are() -> None:
    """gunicorn.error under alog's gunicorn logger: its list is handed on later, so kept."""
    own = logging.getLogger("through.alog")
    handler = alog.stdlib.AlogHandler()
    own.addHandler(handler)
    own.propagate = False
    try:
        with alog.stdlib.install():
            assert (own.handlers, own.propagate) == ([handler], False)
        own.propagate = True  # then the root's handler would write each record a second time
        with alog.stdlib.install():
            assert (own.handlers, own.propagate) == ([], True)
    finally:
        own.removeHandler(handler)


async def test_the_count_ends_when_another_sink_takes_over(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The failed pipeline's level applies to the count; the next sink gets the fallback's."""
    log = alog.get_logger("app")
    with pytest.raises(alog.WriterFailed):
        async with alog.run(alog.File("/dev/full"), level="warning"):
            log.warning("lost with the destination")
            await anyio.sleep(10)
    log.info("below the failed pipeline's level")
    log.warning("counted")
    with capture_logs() as events:  # takes over: the count is said, and comes back after
        log.info("captured")
    log.error("counted too")
    assert _logger.snapshot()[0] == 30
    _state.install(_state.fallback)
    assert _logger.snapshot() == (0, {})
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("alog:")]
    assert said[1:] == [
        "alog: 1 events logged after the writer failed on /dev/full were not written",
        "alog: 1 events logged after the writer failed on /dev/full were not written",
    ]
    assert [event["msg"] for event in events] == ["captured"]


def test_gunicorns_loggers_get_the_bridges_handler_not_an_empty_list() -> None:
    """gunicorn hands gunicorn.error's list to uvicorn.error after the import: not empty."""
    error = logging.getLogger("gunicorn.error")
    handler = logging.StreamHandler()
    error.addHandler(handler)
    error.propagate = False
    try:
        with alog.stdlib.install() as bridge:
            assert error.handlers == [bridge.handler]
            assert error.propagate is False  # one write: by the handler, not the root too
        assert (error.handlers, error.propagate) == ([handler], False)
    finally:
        error.removeHandler(handler)
        handler.close()
