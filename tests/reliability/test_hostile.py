"""Hostile input: whatever an application passes, one call is one valid JSON line.

Property-based (hypothesis) over messages, keys, values and level names, from the loop's thread
and from another thread, plus log injection, deep nesting and huge values. Every call is
followed by a flush, so a missing, extra or torn line is pinned to the call that caused it.
"""

from __future__ import annotations

import datetime
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alog
from alog import _levels
from alog._encoding import clean_str

MAX_EVENT_BYTES = 16 * 1024
CORE = frozenset({"time", "level", "logger", "msg"})

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
"""Any code point, lone surrogates and control characters included."""
CLEAN_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
HOSTILE_PIECES = [
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x1b[31m",
    "\x1b]0;owned\x07",
    "\u2028",
    '"',
    "\\",
    '"}\n{"level":"critical","msg":"forged","admin":true}',
    '","level":"critical',
]
INJECTION_TEXT = st.lists(st.sampled_from(HOSTILE_PIECES) | CLEAN_TEXT, max_size=6).map("".join)


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("_BadRepr()")  # how hypothesis shows it in a failure report


class _HugeRepr:
    def __repr__(self) -> str:
        return "r" * (MAX_EVENT_BYTES * 4)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("_HugeRepr()")


class _Slotted:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = 1


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | ANY_TEXT
    | INJECTION_TEXT
    | st.binary(max_size=20)
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.sampled_from([_BadRepr(), _HugeRepr(), _Slotted(), object(), ..., 1j, math.nan])
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(ANY_TEXT | st.integers() | st.floats() | st.none(), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = (
    ANY_TEXT | INJECTION_TEXT | st.sampled_from(["time", "level", "logger", "msg", "_msg"])
).filter(
    lambda key: key != "exc_info"  # the keyword argument, not a field
)
LEVELS = (
    st.sampled_from(["debug", "INFO", "warning", "error", "critical"]) | ANY_TEXT | st.integers(0)
)

JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | CLEAN_TEXT
    | INJECTION_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CLEAN_TEXT, inner, max_size=4),
    max_leaves=12,
)


class Tail:
    """The lines a file gained since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> list[bytes]:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        assert not data or data.endswith(b"\n"), f"a torn line: {data[-200:]!r}"
        return data.split(b"\n")[:-1]


def _one_event(tail: Tail) -> tuple[bytes, dict[str, Any]]:
    lines = tail.new_lines()
    assert len(lines) == 1, f"one call, {len(lines)} lines: {lines!r}"
    event = json.loads(lines[0])
    assert isinstance(event, dict)
    assert list(event)[:4] == ["time", "level", "logger", "msg"]
    assert all(isinstance(event[key], str) for key in ("time", "level", "logger", "msg"))
    assert len(lines[0]) <= MAX_EVENT_BYTES
    return lines[0], event


def _lost_calls(pipeline: alog.Pipeline) -> int:
    """Calls that vanished inside alog: neither written nor counted as dropped."""
    return pipeline.statistics().internal_errors


Where = Callable[[Callable[[], None]], Any]


@pytest.fixture(name="where", params=["loop thread", "other thread"])
def fixture_where(request: pytest.FixtureRequest) -> str:
    """Log calls from the loop's thread (the fast path) and from a worker thread."""
    return str(request.param)


async def _run_property(
    where: str, tmp_path: Path, body: Callable[[alog.Pipeline, Tail], None]
) -> None:
    path = tmp_path / "hostile.log"
    async with alog.run(alog.File(path), level=0, max_event_bytes=MAX_EVENT_BYTES) as pipeline:
        tail = Tail(path)

        def check() -> None:
            body(pipeline, tail)

        if where == "loop thread":
            check()  # flushes write synchronously from this thread; the writer task waits
        else:
            await anyio.to_thread.run_sync(check)
        assert (await pipeline.aflush(5)).complete
        stats = pipeline.statistics()
        assert stats.state == "running", "the writer never dies"
        assert stats.dropped == 0
        assert _lost_calls(pipeline) == 0


PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def test_any_call_writes_exactly_one_valid_line(where: str, tmp_path: Path) -> None:
    """Arbitrary messages, keys, values and levels: one JSON line per call, writer alive."""

    def body(pipeline: alog.Pipeline, tail: Tail) -> None:
        @PROPERTY_SETTINGS
        @given(
            name=ANY_TEXT,
            msg=ANY_TEXT | INJECTION_TEXT,
            level=LEVELS,
            fields=st.dictionaries(KEYS, ANY_VALUE, max_size=5),
            bound=st.dictionaries(KEYS, ANY_VALUE, max_size=2),
        )
        def one_call(
            name: str,
            msg: str,
            level: str | int,
            fields: dict[str, object],
            bound: dict[str, object],
        ) -> None:
            alog.get_logger(name).bind(**bound).log(level, msg, **fields)
            result = pipeline.flush(5)
            assert result.complete, result
            _, event = _one_event(tail)
            _, level_name = _levels.resolve(level)
            assert event["level"] == clean_str(level_name)
            expected = {f"_{key}" if key in CORE else clean_str(key) for key in fields}
            assert not expected - set(event) or ("..." in event or "alog.error" in event), (
                "every field is there (unless cut to fit, visibly)"
            )

        one_call()

    await _run_property(where, tmp_path, body)


async def test_json_values_round_trip_exactly(where: str, tmp_path: Path) -> None:
    """Values JSON can carry come back equal: nothing escaped away, nothing added."""

    def body(pipeline: alog.Pipeline, tail: Tail) -> None:
        @PROPERTY_SETTINGS
        @given(
            msg=CLEAN_TEXT | INJECTION_TEXT,
            fields=st.dictionaries(
                CLEAN_TEXT.filter(
                    lambda key: key not in ("exc_info", "time", "level", "logger", "msg")
                ),
                JSON_VALUE,
                max_size=5,
            ),
        )
        def one_call(msg: str, fields: dict[str, object]) -> None:
            alog.get_logger("rt").warning(msg, **fields)
            assert pipeline.flush(5).complete
            line, event = _one_event(tail)
            if len(line) < MAX_EVENT_BYTES // 2:
                assert event == {
                    "time": event["time"],
                    "level": "warning",
                    "logger": "rt",
                    "msg": msg,
                    **fields,
                }

        one_call()

    await _run_property(where, tmp_path, body)


@pytest.mark.parametrize("piece", HOSTILE_PIECES)
async def test_log_injection_cannot_forge_lines_or_fields(tmp_path: Path, piece: str) -> None:
    """Control characters, ANSI escapes and JSON fragments stay inside their string."""
    path = tmp_path / "injection.log"
    text = f"a{piece}b"
    async with alog.run(alog.File(path)) as pipeline:
        log = alog.get_logger(text).bind(**{text: text})
        with alog.bound(ctx=text):
            log.error(text, **{f"k{piece}": text, "value": [text, {text: text}]})
        assert (await pipeline.aflush(5)).complete
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1, raw
    assert not any(byte < 0x20 for byte in raw[:-1]), "control bytes are escaped, not written"
    event = json.loads(raw)
    assert event == {
        "time": event["time"],
        "level": "error",
        "logger": text,
        "msg": text,
        text: text,
        "ctx": text,
        f"k{piece}": text,
        "value": [text, {text: text}],
    }


async def test_core_fields_cannot_be_overwritten(tmp_path: Path) -> None:
    """A field named like a core key is renamed (``_level``), never replacing the real one."""
    path = tmp_path / "core.log"
    async with alog.run(alog.File(path)) as pipeline:
        log = alog.get_logger("app").bind(level="critical")
        with alog.bound(logger="forged"):
            log.info("real", msg="forged", time="1970-01-01T00:00:00Z")
        assert (await pipeline.aflush(5)).complete
    event = json.loads(path.read_bytes())
    assert (event["level"], event["logger"], event["msg"]) == ("info", "app", "real")
    assert event["time"] != "1970-01-01T00:00:00Z"
    assert (event["_level"], event["_logger"], event["_msg"]) == ("critical", "forged", "forged")


def _nested_lists(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_dicts(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"d": value}
    return value


def _circular() -> dict[str, object]:
    value: dict[str, object] = {"name": "loop"}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    ("value", "marker"),
    [
        pytest.param(_nested_lists(100_000), "<max depth>", id="100k nested lists"),
        pytest.param(_nested_dicts(100_000), "<max depth>", id="100k nested dicts"),
        pytest.param(_circular(), "<circular>", id="circular"),
        pytest.param("x" * 20_000_000, "[truncated", id="20 MB string"),
        pytest.param(["y" * 100] * 200_000, "[truncated", id="200k-item list"),
        pytest.param({str(i): i for i in range(100_000)}, "[truncated", id="100k-key dict"),
        pytest.param(_HugeRepr(), "[truncated", id="huge repr"),
    ],
)
async def test_deep_and_huge_values_are_capped_with_a_visible_marker(
    where: str, tmp_path: Path, value: object, marker: str
) -> None:
    """Recursion and size cannot crash the writer or blow max_event_bytes; the cut shows."""
    path = tmp_path / "big.log"
    async with alog.run(alog.File(path), max_event_bytes=MAX_EVENT_BYTES) as pipeline:
        log = alog.get_logger("big")

        def call() -> None:
            log.info("big value", value=value, after="kept")

        if where == "loop thread":
            call()
        else:
            await anyio.to_thread.run_sync(call)
        log.info("next")
        assert (await pipeline.aflush(10)).complete
        stats = pipeline.statistics()
        assert stats.state == "running"
        assert stats.encode_fallbacks == 1
    lines = path.read_bytes().split(b"\n")[:-1]
    assert len(lines) == 2
    assert len(lines[0]) <= MAX_EVENT_BYTES
    assert marker.encode() in lines[0]
    event = json.loads(lines[0])
    assert event["msg"] == "big value"
    assert json.loads(lines[1])["msg"] == "next"


async def test_a_repr_that_logs_does_not_crash_the_interpreter(where: str, tmp_path: Path) -> None:
    """Regression: a __repr__ that logs, called mid-encode, used to corrupt memory (segfault)."""
    path = tmp_path / "reentrant.log"
    log = alog.get_logger("re")

    class Chatty:
        def __repr__(self) -> str:
            log.info("from repr", depth=1)
            return "chatty"

    async with alog.run(alog.File(path)) as pipeline:

        def burst() -> None:
            for index in range(200):
                log.info("outer", value=Chatty(), index=index, pad="p" * 300)

        if where == "loop thread":
            burst()
        else:
            await anyio.to_thread.run_sync(burst)
        assert (await pipeline.aflush(5)).complete
        assert pipeline.statistics().state == "running"
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert sorted(event["index"] for event in events if event["msg"] == "outer") == list(range(200))
    assert all(event["value"] == "chatty" for event in events if event["msg"] == "outer")
    assert sum(event["msg"] == "from repr" for event in events) == 200


def test_thread_safety_of_hostile_calls_from_many_threads(tmp_path: Path) -> None:
    """Eight threads logging hostile values at once still give one whole line per call."""
    path = tmp_path / "threads.log"

    async def main() -> None:
        async with alog.run(alog.File(path)) as pipeline:
            log = alog.get_logger("t")

            def worker(number: int) -> None:
                for index in range(2_000):
                    log.info(
                        HOSTILE_PIECES[index % len(HOSTILE_PIECES)], n=number, i=index, v=_BadRepr()
                    )

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for thread in threads:
                thread.start()

            def join_all() -> None:
                for thread in threads:
                    thread.join()

            await anyio.to_thread.run_sync(join_all)
            assert (await pipeline.aflush(10)).complete

    anyio.run(main)
    events = [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]
    assert sorted((event["n"], event["i"]) for event in events) == [
        (n, i) for n in range(8) for i in range(2_000)
    ]
    assert {event["v"] for event in events} == {"<unrepresentable _BadRepr>"}
