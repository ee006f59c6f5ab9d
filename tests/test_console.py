"""The console: what a line looks like, when colour is used, and that it is for terminals only."""

from __future__ import annotations

import json
import linecache
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

import alog
from alog._console import ALERT, RESET, Renderer, local_time, value_text, want_colors
from alog._destinations.console import ConsoleStream

from .conftest import RunScript

EXAMPLE = Path(__file__).parent.parent / "examples" / "console.py"
ANSI = re.compile(rb"\x1b\[[0-9;]*m")

EVENT: dict[str, Any] = {
    "time": "2026-12-02T09:15:02.123456Z",
    "level": "info",
    "logger": "app.http",
    "msg": "request handled",
    "method": "GET",
    "path": "/items",
    "status": 200,
    "note": "two words",
    "ok": True,
    "missing": None,
    "client": {"ip": "10.0.0.7"},
}


@pytest.fixture(name="utc")
def fixture_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC, so rendered times are the ones in the events."""
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_line_has_time_level_logger_message_then_fields_in_order(utc: None) -> None:
    """The layout people scan: fixed-width head, then key=value in the event's order."""
    line = Renderer(colors=False).render(EVENT)
    assert line == (
        "09:15:02.123 INFO     app.http request handled method=GET path=/items status=200 "
        'note=\'two words\' ok=true missing=null client={"ip":"10.0.0.7"}\n'
    )


def test_without_colors_not_one_escape_code_is_written() -> None:
    """colors=False is plain text, whatever the event holds."""
    event = {**EVENT, "level": "error", "alog.error": "x", "exception": {"type": "E", "frames": []}}
    assert "\x1b" not in Renderer(colors=False).render(event)
    assert "\x1b[31mERROR" in Renderer(colors=True).render(event)


def test_control_characters_in_an_event_never_reach_the_terminal() -> None:
    """A logged escape sequence is shown escaped: data cannot clear or retitle the screen."""
    event = {
        "time": "",
        "level": "info\x1b[8m",
        "logger": "a\x1b]0;title\x07",
        "msg": "clear\x1b[2J\roverwrite\nsecond line",
        "k\x1b[5m": "\x1b[31m",
        "exception": {"type": "E\x1b", "message": "m\x1b[2J", "notes": ["n\x9b"], "frames": []},
    }
    for colors in (False, True):
        text = ANSI.sub(b"", Renderer(colors=colors).render(event).encode()).decode()
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
        assert text.count("\n") == 3  # the line, the exception's, its note's: no other break
        assert "clear\\x1b[2J\\roverwrite\\nsecond line" in text


def test_long_values_are_cut_with_a_marker() -> None:
    """One field cannot push the line off every screen; the marker says how much went."""
    assert value_text("x" * 500) == f"'{'x' * 200}'…(+300 chars)"
    assert value_text(list(range(200))).endswith("chars)")


def test_losses_stand_out() -> None:
    """alog's own loss report is drawn as an alert, not as one more info line."""
    dropped = {
        "time": "",
        "level": "warning",
        "logger": "alog",
        "msg": "alog.dropped",
        "dropped": 3,
    }
    assert f"{ALERT} alog.dropped {RESET}" in Renderer(colors=True).render(dropped)


def test_an_exception_is_a_traceback_with_its_source_lines() -> None:
    """The structured exception is shown as Python shows it, chain and source included."""

    def fail() -> None:
        raise KeyError("user")  # the source line the traceback shows

    try:
        try:
            fail()
        except KeyError as error:
            raise LookupError("no such user") from error
    except LookupError as error:
        from alog._fields import exception_fields

        described = exception_fields(error)
    assert described is not None
    text = Renderer(colors=False).render({**EVENT, "exception": described})
    assert "exception=" not in text
    assert 'raise KeyError("user")  # the source line the traceback shows' in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.rstrip().endswith("LookupError: no such user")


def test_times_are_local_and_short(utc: None) -> None:
    """RFC 3339 text and epoch numbers (pino's milliseconds) alike; junk stays as it is."""
    assert local_time("2026-12-02T09:15:02.5Z") == "09:15:02.500"
    assert local_time(1_764_666_902_500) == local_time(1_764_666_902.5)
    assert local_time("yesterday") == "yesterday"


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        pytest.param({}, True, True, id="terminal"),
        pytest.param({}, False, False, id="pipe"),
        pytest.param({"NO_COLOR": "1"}, True, False, id="no-color"),
        pytest.param({"NO_COLOR": ""}, True, True, id="empty-no-color-is-unset"),
        pytest.param({"FORCE_COLOR": "1"}, False, True, id="force-color"),
        pytest.param({"FORCE_COLOR": "0"}, False, False, id="force-color-0"),
        pytest.param({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False, id="no-color-wins"),
    ],
)
def test_colour_follows_no_color_force_color_and_the_terminal(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool
) -> None:
    """ANSI codes only where someone asked for them or a terminal will show them."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if tty:
        fd, other = pty.openpty()
    else:
        fd, other = os.pipe()
    try:
        assert want_colors(fd) is expected
    finally:
        os.close(fd)
        os.close(other)


def test_bad_options_fail_at_construction() -> None:
    """A typo in stream= or format= is caught where it is written."""
    with pytest.raises(ValueError, match="'stdout' or 'stderr'"):
        alog.Console("stdin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format="):
        alog.Stdout(format="pretty")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="colors="):
        alog.Console(colors="yes")  # type: ignore[arg-type]
    assert (
        repr(alog.Console("stderr", level="warning")) == "alog.Console('stderr', level='warning')"
    )
    assert repr(alog.Console(stream="stderr")) == "alog.Console('stderr')"
    assert repr(alog.Stdout(format="auto")) == "alog.Stdout(format='auto')"


async def test_rendering_happens_in_the_streams_thread_and_the_books_count_json(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log call pays nothing for the look; written and bytes are the pipeline's own."""
    threads: list[int] = []
    line = ConsoleStream._line

    def spy(self: ConsoleStream, data: bytes | bytearray) -> bytes:
        threads.append(threading.get_ident())
        return line(self, data)

    monkeypatch.setattr(ConsoleStream, "_line", spy)
    async with alog.run(alog.Console(level="warning")) as pipeline:
        log = alog.get_logger("app")
        log.info("not for the console")
        log.warning("for the console", n=1)
        result = await pipeline.aflush()
    out = capfd.readouterr().out
    assert "WARNING  app for the console n=1" in out
    assert "not for the console" not in out
    assert "\x1b" not in out  # captured into a file: no colour
    assert result.written == 1
    stats = pipeline.statistics()
    assert (stats.written, stats.filtered, stats.dropped) == (1, 1, 0)
    assert threads and threading.get_ident() not in threads


def _run_in_pty(args: list[str], env: dict[str, str]) -> bytes:
    """Run a command with stdout and stderr on a real pseudo-terminal; all it printed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args, stdout=follower, stderr=follower, env={**os.environ, "TZ": "UTC", **env}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=30) == 0
    return b"".join(chunks)


CLEAN_ENV = {"NO_COLOR": "", "FORCE_COLOR": ""}


def test_the_example_in_a_real_terminal_is_coloured_and_readable() -> None:
    """Under a pseudo-terminal, format="auto" renders: colours, a traceback, the alert."""
    out = _run_in_pty([sys.executable, str(EXAMPLE)], {**CLEAN_ENV, "FORCE_COLOR": "0"})
    text = ANSI.sub(b"", out).decode()
    assert b"\x1b[32mINFO    \x1b[0m" in out
    assert "INFO     app.http request handled method=GET path=/items status=200" in text
    assert "password='[redacted]'" in text
    assert "    load_user(2)" in text  # the source line, read by the writer's thread
    assert "LookupError: no such user" in text
    assert f"{ALERT} alog.dropped {RESET}".encode() in out
    assert "{" + '"time"' not in text  # no JSON line


def test_the_example_with_no_color_in_a_terminal_is_rendered_plain() -> None:
    """NO_COLOR keeps the layout and removes every escape code."""
    out = _run_in_pty([sys.executable, str(EXAMPLE)], {**CLEAN_ENV, "NO_COLOR": "1"})
    assert b"\x1b" not in out
    assert b"INFO     app.http request handled" in out


def test_the_example_into_a_pipe_writes_json_lines_only() -> None:
    """format="auto" never puts ANSI codes or console text into a pipe."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        env={**os.environ, **CLEAN_ENV, "FORCE_COLOR": "1"},
        timeout=30,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert b"\x1b" not in done.stdout


def test_console_into_a_pipe_is_plain_unless_colour_is_forced(run_script: RunScript) -> None:
    """Console() itself asked for: readable text into a pipe, colour only with FORCE_COLOR."""
    code = """
    import asyncio, alog
    async def main():
        async with alog.run(alog.Console("stderr")):
            alog.get_logger("app").error("boom", code=7)
    asyncio.run(main())
    """
    plain = run_script(code, env=CLEAN_ENV)
    assert plain.returncode == 0
    assert re.fullmatch(rb"\d\d:\d\d:\d\d\.\d{3} ERROR    app boom code=7\n", plain.stderr)
    forced = run_script(code, env={**CLEAN_ENV, "FORCE_COLOR": "1"})
    assert b"\x1b[31mERROR" in forced.stderr


async def test_logging_to_the_console_never_blocks_the_event_loop(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing blocking on the loop (blockbuster); source files read in the stream's thread."""
    readers: set[int] = set()
    getline = linecache.getline

    def spy(filename: str, lineno: int, module_globals: Any = None) -> str:
        readers.add(threading.get_ident())
        return getline(filename, lineno, module_globals)

    # blockbuster does not see linecache's reads (they go through the stdlib's own open):
    # the spy says in which thread they happen.
    monkeypatch.setattr(linecache, "getline", spy)
    log = alog.get_logger("app")
    with blockbuster_ctx():
        async with alog.run(alog.Console()) as pipeline:
            for i in range(200):
                try:
                    raise ValueError(f"failure {i}")
                except ValueError:
                    log.exception("failed", i=i)
            await pipeline.aflush(10)
    out = capfd.readouterr().out
    assert out.count("Traceback (most recent call last):") == 200
    assert 'raise ValueError(f"failure {i}")' in out
    assert readers and threading.get_ident() not in readers
