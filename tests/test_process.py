"""alog.process_fields(): pid and hostname, read by the pipeline in the process that runs it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import alog

from .conftest import RunScript, read_events


async def test_process_fields_are_on_every_event(tmp_path: Path) -> None:
    """One line gives every event this process's pid and hostname, after the user's fields."""
    path = tmp_path / "log.jsonl"
    fields = {"service": "api", **alog.process_fields("pid", "hostname")}
    async with alog.run(alog.File(path), fields=fields):
        alog.get_logger("app").info("hello")
    (event,) = read_events(path)
    assert event["service"] == "api"
    assert (event["pid"], event["hostname"]) == (os.getpid(), socket.gethostname())


def test_process_fields_checks_its_names() -> None:
    """A typo fails at once, with the names that exist."""
    with pytest.raises(ValueError, match=r"unknown process field 'ppid'; known: 'pid', 'hostname'"):
        alog.process_fields("pid", "ppid")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at least one name"):
        alog.process_fields()


def test_a_placeholder_shows_what_it_stands_for() -> None:
    """Printed options say what will be read, not a value from the wrong process."""
    assert repr(alog.process_fields("pid")) == "{'pid': alog.process_fields('pid')}"
    assert alog.process_fields("pid") == alog.process_fields("pid")


def test_the_pid_is_the_forked_childs(run_script: RunScript, tmp_path: Path) -> None:
    """Options written before fork() (gunicorn --preload) give each child its own pid."""
    script = f"""
        import asyncio, os
        import alog

        pipeline = alog.run(alog.File({str(tmp_path / "log.jsonl")!r}),
                            fields=alog.process_fields("pid"))
        child = os.fork()

        async def main():
            async with pipeline:
                alog.get_logger("app").info("hello", real_pid=os.getpid())

        asyncio.run(main())
        if child:
            _, status = os.waitpid(child, 0)
            assert status == 0, status
        else:
            os._exit(0)
    """
    result = run_script(script)
    assert result.returncode == 0, result.stderr.decode()
    events = read_events(tmp_path / "log.jsonl")
    assert len(events) == 2
    assert len({event["pid"] for event in events}) == 2
    assert all(event["pid"] == event["real_pid"] for event in events)
