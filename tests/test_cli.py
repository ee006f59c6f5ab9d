"""``alog pretty`` and ``alog stats`` on real output of alog, structlog, pino and others."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hypothesis
import hypothesis.strategies as st
import msgspec
import pytest

from alog._cli import _pretty_line, normalize, parse_since
from alog._console import Renderer

FIXTURES = Path(__file__).parent / "fixtures"
CLEAN_ENV = {"NO_COLOR": "", "FORCE_COLOR": "", "TZ": "UTC"}


def alog_cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> bytes:
    """Run ``python -m alog``; its stdout (it must exit 0 and print nothing on stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "alog", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **CLEAN_ENV, **(env or {})},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    return done.stdout


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        pytest.param(
            "alog.jsonl",
            [
                "INFO     app.http request handled method=GET path=/items status=200 "
                "duration_ms=3.2",
                "WARNING  app.db slow query duration_ms=812.5 table=items",
                "ValueError: bad input",
                # The fixture's frames name the machine that made it: a location, no source.
                'make_fixtures.py", line 26, in fail\nValueError: bad input',
                "WARNING  alog  alog.dropped  dropped=14",
            ],
            id="alog",
        ),
        pytest.param(
            "structlog.jsonl",
            [
                "INFO     shop.orders order placed order_id=17 amount=12.5",
                "ERROR    shop.orders payment failed order_id=18\nTraceback (most recent call",
                "ValueError: bad input",
            ],
            id="structlog",
        ),
        pytest.param(
            "pino.jsonl",
            [
                "INFO     api.users user fetched pid=",
                "userId=7 route=/users/7",
                "WARNING  api.users upstream slow",
                "ERROR    api.users upstream failed pid=",
                "Error: connection reset\n    at ",
            ],
            id="pino",
        ),
        pytest.param(
            "python-json-logger.jsonl",
            [
                "INFO     uvicorn.error Started server process [4242]",
                'INFO     uvicorn.access 127.0.0.1:51234 - "GET /items HTTP/1.1" 200 '
                "status_code=200",
                "ERROR    uvicorn.error Exception in ASGI application\nTraceback",
            ],
            id="python-json-logger",
        ),
    ],
)
def test_pretty_reads_each_json_loggers_real_output(fixture: str, expected: list[str]) -> None:
    """Their key names map to alog's: time, level (pino's numbers too), logger, message."""
    text = alog_cli("pretty", str(FIXTURES / fixture)).decode()
    for piece in expected:
        assert piece in text
    assert "{" + '"' not in text.replace('{"ip"', "")  # no line left as raw JSON
    assert "\x1b" not in text  # a pipe: no colour


def test_pretty_shows_a_frames_source_line_when_its_file_is_here(tmp_path: Path) -> None:
    """The source is read where pretty runs: shown when the file exists, left out when not."""
    source = tmp_path / "handler.py"
    source.write_text("def handle():\n    raise KeyError('user')\n")
    frames = [
        {"file": str(source), "line": 2, "function": "handle"},
        {"file": str(tmp_path / "gone.py"), "line": 7, "function": "elsewhere"},
    ]
    event = {
        "time": "2026-12-02T09:15:02.123456Z",
        "level": "error",
        "logger": "app",
        "msg": "failed",
        "exception": {"type": "KeyError", "message": "'user'", "frames": frames},
    }
    out = alog_cli("pretty", stdin=json.dumps(event).encode() + b"\n").decode()
    assert f"File \"{source}\", line 2, in handle\n    raise KeyError('user')\n" in out
    assert "gone.py\", line 7, in elsewhere\nKeyError: 'user'" in out


def test_what_is_not_json_passes_through_untouched() -> None:
    """Plain text, broken JSON, a JSON array, bad UTF-8, blank lines: byte for byte."""
    odd = b'started\n{"broken\n[1, 2]\n\xff\xfe\x00 binary\n\n  indented text\n"a string"\n'
    line = b'{"time":"2026-12-02T09:15:02.123456Z","level":"info","logger":"a","msg":"m"}\n'
    out = alog_cli("pretty", stdin=odd + line + b"no newline at the end")
    assert out == odd + b"09:15:02.123 INFO     a m\n" + b"no newline at the end\n"


def test_pretty_filters_by_level_logger_fields_and_time(tmp_path: Path) -> None:
    """--level, --logger (dotted children only), --where (repeatable, dotted), --since."""
    now = datetime.datetime.now(datetime.UTC)
    events = [
        {"level": "debug", "logger": "app.db", "msg": "d", "user": {"id": 1}, "ago": 5},
        {"level": "warning", "logger": "app.db.pool", "msg": "w", "user": {"id": 2}, "ago": 5},
        {"level": "error", "logger": "application", "msg": "e", "user": {"id": 2}, "ago": 5},
        {"level": "error", "logger": "app.db", "msg": "old", "user": {"id": 2}, "ago": 7200},
    ]
    path = tmp_path / "app.log"
    with path.open("w") as file:
        for event in events:
            stamp = (now - datetime.timedelta(seconds=event["ago"])).isoformat()  # type: ignore[arg-type]
            file.write(json.dumps({"time": stamp.replace("+00:00", "Z"), **event}) + "\n")

    def messages(*args: str) -> list[str]:
        out = alog_cli("pretty", *args, str(path)).decode()
        return [line.split()[3] for line in out.splitlines()]

    assert messages("--level", "warning") == ["w", "e", "old"]
    assert messages("--level", "WARN") == ["w", "e", "old"]
    assert messages("--logger", "app.db") == ["d", "w", "old"]
    assert messages("--where", "user.id=2", "--where", "ago=5") == ["w", "e"]
    assert messages("--since", "1h") == ["d", "w", "e"]
    assert messages("--since", (now - datetime.timedelta(hours=3)).isoformat()) == [
        "d",
        "w",
        "e",
        "old",
    ]


def test_bad_options_are_errors_not_tracebacks() -> None:
    """A bad --since or --where is a usage error (exit 2 or a message), never a traceback."""
    for args in (["--since", "yesterday"], ["--where", "novalue"], ["--level", "loud"]):
        done = subprocess.run(
            [sys.executable, "-m", "alog", "pretty", *args],
            input=b"",
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode != 0
        assert b"Traceback" not in done.stderr
        assert done.stderr


def test_colour_only_when_asked_for_or_on_a_terminal() -> None:
    """Into a pipe: plain; FORCE_COLOR: coloured; --no-color wins over FORCE_COLOR."""
    fixture = str(FIXTURES / "alog.jsonl")
    assert b"\x1b[" not in alog_cli("pretty", fixture)
    assert b"\x1b[32mINFO" in alog_cli("pretty", fixture, env={"FORCE_COLOR": "1"})
    assert b"\x1b[" not in alog_cli("pretty", "--no-color", fixture, env={"FORCE_COLOR": "1"})


def test_follow_prints_appended_lines_and_survives_a_rotation(tmp_path: Path) -> None:
    """-f: lines appended later are printed, and the new file after logrotate moves it."""
    path = tmp_path / "app.log"
    path.write_text('{"level":"info","logger":"a","msg":"first","time":""}\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "alog", "pretty", "-f", str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, **CLEAN_ENV},
    )
    assert process.stdout is not None
    try:
        assert b"first" in process.stdout.readline()
        with path.open("a") as file:
            file.write('{"level":"info","logger":"a","msg":"second","time":""}\n')
        assert b"second" in process.stdout.readline()
        shutil.move(path, tmp_path / "app.log.1")
        time.sleep(0.3)
        path.write_text('{"level":"info","logger":"a","msg":"after rotation","time":""}\n')
        assert b"after rotation" in process.stdout.readline()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_a_closed_pipe_ends_pretty_quietly(tmp_path: Path) -> None:
    """`alog pretty big.log | head -1` exits without a BrokenPipeError traceback."""
    path = tmp_path / "big.log"
    line = '{"time":"2026-12-02T09:15:02.123456Z","level":"info","logger":"a","msg":"m"}\n'
    path.write_text(line * 200_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "alog", "pretty", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().endswith(b" m\n")
    process.stdout.close()  # what `head -1` does once it has its line
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""
    process.stderr.close()


def test_stats_counts_levels_loggers_losses_and_the_span() -> None:
    """The summary of a file: what is there, what was lost, over which time."""
    out = alog_cli("stats", str(FIXTURES / "alog.jsonl")).decode()
    assert "events: 11\n" in out
    assert "alog.dropped: 14 events lost, in 1 reports" in out
    counts = {tuple(line.split()) for line in out.splitlines()}
    assert {("debug", "7"), ("warning", "2"), ("app.http", "9"), ("alog", "1")} <= counts
    assert "app.http" in out
    assert "from 2026-12-02T" in out


def test_the_console_script_is_installed() -> None:
    """`alog` on the PATH of the environment runs the same command."""
    script = Path(sys.executable).parent / "alog"
    done = subprocess.run([str(script), "--help"], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert b"pretty" in done.stdout


def test_normalize_puts_the_core_keys_first() -> None:
    """pino's numeric levels and names, structlog's event, python-json-logger's message."""
    assert normalize({"level": 50, "time": 1, "name": "n", "msg": "m", "v": 1, "x": 2}) == {
        "time": 1,
        "level": "error",
        "logger": "n",
        "msg": "m",
        "x": 2,
    }
    assert list(normalize({"event": "e", "timestamp": "t", "level": "warn"})) == [
        "time",
        "level",
        "msg",
    ]


def test_since_takes_durations_and_times() -> None:
    """Relative to now, or an absolute ISO 8601 time."""
    now = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
    assert parse_since("90m", now) == datetime.datetime(2026, 12, 2, 10, 30, tzinfo=datetime.UTC)
    assert parse_since("2026-12-01T00:00:00Z").day == 1


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_EVENTS = st.dictionaries(
    st.sampled_from(["time", "level", "logger", "msg", "name", "event", "err", "exception", "x"]),
    _JSON,
    max_size=6,
)


@hypothesis.given(
    line=st.one_of(
        st.binary(max_size=60),
        _EVENTS.map(lambda event: json.dumps(event).encode()),
        _JSON.map(lambda value: json.dumps(value).encode()),
    )
)
@hypothesis.settings(max_examples=400, deadline=None)
def test_no_line_makes_pretty_fail(line: bytes) -> None:
    """Whatever a line holds (any bytes, any JSON, odd types under the core keys): text out."""
    decode = msgspec.json.Decoder().decode
    for renderer in (Renderer(colors=False), Renderer(colors=True)):
        out = _pretty_line(line, decode, renderer.render, None)
        assert isinstance(out, bytes) and out.endswith(b"\n")


@hypothesis.given(event=_EVENTS)
@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.example(event={"time": 253402300800000.0})  # past year 9999: found by this test
@hypothesis.example(event={"time": float("nan"), "level": 10**30})
@hypothesis.example(event={"time": "0001-01-01T00:00:00+14:00"})
def test_any_json_object_is_rendered_not_passed_through(event: dict[str, object]) -> None:
    """The renderer itself copes with odd types under every key (no fallback needed)."""
    for renderer in (Renderer(colors=False), Renderer(colors=True)):
        text = renderer.render(normalize(event))
        assert text.endswith("\n")


def test_stats_never_dies_on_a_line(tmp_path: Path) -> None:
    """Odd values under the core keys and lines that are not JSON are counted, not fatal."""
    path = tmp_path / "odd.log"
    path.write_bytes(
        b'{"time": 253402300800000.0, "level": {"x": 1}, "logger": null, "msg": "alog.dropped",'
        b' "dropped": true}\n'
        b'{"time": "not a time", "level": 10}\nplain\n\xff\n[1]\n'
    )
    out = alog_cli("stats", str(path)).decode()
    assert "events: 2 (and 3 lines that are not JSON)" in out
    assert "alog.dropped: 0 events lost, in 1 reports" in out
