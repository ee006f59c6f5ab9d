"""Bad field values never kill the writer: each has a fixed, visible outcome in the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import alog

from .conftest import read_events

_TIME = re.compile(rb'^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",')


async def logged_lines(path: Path, /, **fields: object) -> list[bytes]:
    """Log one event with ``fields`` and return the file's raw lines, time stripped."""
    async with alog.run(alog.File(path), max_event_bytes=4096) as pipeline:
        alog.get_logger("t").info("m", **fields)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "every line ends with a newline"
    stripped = []
    for line in lines[:-1]:
        assert _TIME.match(line), line
        stripped.append(_TIME.sub(b"{", line))
    assert pipeline.statistics().written == len(stripped)
    return stripped


class Unserialisable:
    def __repr__(self) -> str:
        return "<Unserialisable #1>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def circular_dict() -> dict[str, object]:
    value: dict[str, object] = {"name": "loop"}
    value["self"] = value
    return value


def circular_list() -> list[object]:
    value: list[object] = [1]
    value.append(value)
    return value


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


_PREFIX = b'{"level":"info","logger":"t","msg":"m",'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(Unserialisable(), b'"v":"<Unserialisable #1>"}', id="unserialisable-repr"),
        pytest.param(BrokenRepr(), b'"v":"<unrepresentable BrokenRepr>"}', id="broken-repr"),
        pytest.param(
            circular_dict(), b'"v":{"name":"loop","self":"<circular>"}}', id="circular-dict"
        ),
        pytest.param(circular_list(), b'"v":[1,"<circular>"]}', id="circular-list"),
        pytest.param({1: "a", None: "b"}, b'"v":{"1":"a","None":"b"}}', id="non-string-keys"),
        pytest.param({(1, 2): "t"}, b'"v":{"(1, 2)":"t"}}', id="tuple-key"),
        pytest.param(float("nan"), b'"v":null}', id="nan"),
        pytest.param([float("inf"), float("-inf")], b'"v":[null,null]}', id="infinities"),
        pytest.param("bad \udcff byte", b'"v":"bad \\\\xff byte"}', id="surrogate-escaped"),
        pytest.param("lone \ud800 high", b'"v":"lone \\\\ud800 high"}', id="lone-surrogate"),
        pytest.param(b"\x00\xff", b'"v":"AP8="}', id="bytes-base64"),
        pytest.param(2**70, b'"v":1180591620717411303424}', id="huge-int-exact"),
        pytest.param({1, 2} and frozenset({3}), b'"v":[3]}', id="frozenset-as-list"),
        pytest.param(
            "two\nlines\r\x00\x1b[31m",
            b'"v":"two\\nlines\\r\\u0000\\u001b[31m"}',
            id="control-characters-escaped",
        ),
        pytest.param(
            '","level":"critical',
            b'"v":"\\",\\"level\\":\\"critical"}',
            id="json-fragment-stays-a-string",
        ),
    ],
)
async def test_bad_values_are_written_with_a_visible_fallback(
    tmp_path: Path, value: object, expected: bytes
) -> None:
    """Every bad value yields exactly one valid line with a predictable rendering."""
    (line,) = await logged_lines(tmp_path / "out.log", v=value)
    assert line == _PREFIX + expected


async def test_newlines_in_the_message_stay_on_one_line(tmp_path: Path) -> None:
    """One event is always one line, whatever the message contains."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path)):
        alog.get_logger("t").info('first\nsecond\r\n{"forged": 1}')
    (event,) = read_events(path)
    assert event["msg"] == 'first\nsecond\r\n{"forged": 1}'


async def test_huge_strings_are_truncated_with_a_marker(tmp_path: Path) -> None:
    """An oversized event is cut to max_event_bytes, saying how much was cut."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), max_event_bytes=4096) as pipeline:
        alog.get_logger("t").info("big", blob="x" * 100_000, small="kept")
    raw = path.read_bytes()
    assert len(raw) <= 4097
    (event,) = read_events(path)
    assert event["small"] == "kept"
    assert event["blob"].startswith("xxxx")
    assert re.search(r"\.\.\.\[truncated \d+ chars\]$", event["blob"])
    assert pipeline.statistics().encode_fallbacks == 1


async def test_huge_containers_are_truncated_with_a_marker(tmp_path: Path) -> None:
    """Long lists are cut too, ending with how many items were left out."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), max_event_bytes=4096):
        alog.get_logger("t").info("big", items=list(range(100_000)))
    (event,) = read_events(path)
    assert len(path.read_bytes()) <= 4097
    assert re.fullmatch(r"\[truncated \d+ items\]", event["items"][-1])


async def test_nesting_beyond_the_encoder_limit_is_capped(tmp_path: Path) -> None:
    """Absurd nesting is cut at a fixed depth with a marker instead of crashing.

    (100,000 levels: beyond msgspec's limit on every Python; 3.13 encodes 5,000 as it is.)
    """
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path)):
        alog.get_logger("t").info("deep", v=nested(100_000))
    (event,) = read_events(path)
    value = event["v"]
    depth = 0
    while isinstance(value, list):
        (value,) = value
        depth += 1
    assert value == "<max depth>"
    assert depth == 63


async def test_an_event_that_cannot_fit_at_all_keeps_its_core(tmp_path: Path) -> None:
    """When nothing shrinks enough, the core keys and a note are written, not nothing."""
    path = tmp_path / "out.log"
    keys = {f"key{i:05d}": i for i in range(2000)}
    async with alog.run(alog.File(path), max_event_bytes=200):
        alog.get_logger("t").info("crowded", **keys)
    assert len(path.read_bytes()) <= 201
    (event,) = read_events(path)
    assert event["msg"] == "crowded"
    assert event["..."] == "[truncated 2000 keys]"


def test_messages_from_other_threads_get_the_same_fallbacks(tmp_path: Path) -> None:
    """The locked path for other threads shares the encoder fallbacks."""
    import asyncio
    import threading

    path = tmp_path / "out.log"

    async def main() -> None:
        async with alog.run(alog.File(path)):
            worker = threading.Thread(
                target=lambda: alog.get_logger("t").info("m", v=circular_dict())
            )
            worker.start()
            await asyncio.to_thread(worker.join)

    asyncio.run(main())
    (event,) = read_events(path)
    assert event["v"] == {"name": "loop", "self": "<circular>"}
