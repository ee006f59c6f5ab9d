"""The logging bridge: records from other code become alog events, without loops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import alog
import alog.stdlib

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
