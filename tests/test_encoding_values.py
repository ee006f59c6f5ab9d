"""One bad value costs only itself: encode_fallback marks it and keeps every other field.

These call :func:`alog._encoding.encode_fallback` directly, as the queue does when msgspec's
fast path raised or wrote more than ``max_event_bytes``, and decode what it returns.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alog._encoding import encode_fallback, new_encoder

STAMP = datetime.datetime(2024, 1, 2, 3, 4, 5, 6789, tzinfo=datetime.UTC)
CORE: dict[str, object] = {"time": STAMP, "level": "info", "logger": "t", "msg": "m"}
CORE_OUT: dict[str, Any] = {
    "time": "2024-01-02T03:04:05.006789Z",
    "level": "info",
    "logger": "t",
    "msg": "m",
}
HUGE = 10**5000
"""Past Python's 4,300-digit limit for ``str(int)``, so msgspec cannot write it."""


def fallback(fields: Mapping[Any, object], max_bytes: int = 4096) -> dict[str, Any]:
    """Encode the core keys plus ``fields`` the slow way; check the size and decode."""
    event: dict[str, object] = {**CORE, **fields}
    data = encode_fallback(new_encoder(), event, max_bytes)
    assert len(data) <= max_bytes, data[:200]
    decoded = msgspec.json.decode(data)
    assert isinstance(decoded, dict)
    return decoded


class RaisingTZ(datetime.tzinfo):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        raise RuntimeError("no offset")

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        return None

    def tzname(self, dt: datetime.datetime | None) -> str | None:
        return "raising"


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


class UnprintableTZ(RaisingTZ):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        raise UnprintableError


class VerboseTZ(RaisingTZ):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        raise RuntimeError("x" * 10_000)


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class BadFloat(float):
    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class RaisingMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration")

    def __len__(self) -> int:
        return 1


class RaisingList(list[object]):
    def __iter__(self) -> Iterator[object]:
        raise RuntimeError("no iteration")


class RaisingStr(str):
    __slots__ = ()

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class HugeEnum(enum.Enum):
    HUGE = HUGE


class SurrogateEnum(enum.Enum):
    LONE = "lone \ud800"


class Abort(BaseException):
    """Stands in for KeyboardInterrupt: not an Exception, so never swallowed."""


class AbortingRepr:
    def __repr__(self) -> str:
        raise Abort


class AbortingTZ(RaisingTZ):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        raise Abort


@pytest.mark.parametrize(
    ("bad", "marker"),
    [
        pytest.param(HUGE, "<int with 5001 digits>", id="huge-int"),
        pytest.param(-HUGE, "<negative int with 5001 digits>", id="negative-huge-int"),
        pytest.param(
            datetime.datetime(2024, 1, 1, tzinfo=RaisingTZ()),
            "<unencodable datetime: RuntimeError: no offset>",
            id="datetime-raising-tzinfo",
        ),
        pytest.param(
            datetime.time(1, 2, tzinfo=RaisingTZ()),
            "<unencodable time: RuntimeError: no offset>",
            id="time-raising-tzinfo",
        ),
        pytest.param(
            datetime.datetime(2024, 1, 1, tzinfo=UnprintableTZ()),
            "<unencodable datetime: UnprintableError>",
            id="reason-whose-str-raises",
        ),
        pytest.param(BrokenRepr(), "<unrepresentable BrokenRepr>", id="unknown-type-raising-repr"),
        pytest.param(BadFloat(1.5), "<unrepresentable BadFloat>", id="float-subclass"),
        pytest.param(
            RaisingMapping(),
            "<unencodable RaisingMapping: RuntimeError: no iteration>",
            id="mapping-raising-iter",
        ),
        pytest.param(
            RaisingList([1]),
            "<unencodable RaisingList: RuntimeError: no iteration>",
            id="list-raising-iter",
        ),
    ],
)
def test_a_bad_value_is_marked_and_every_other_field_is_kept(bad: object, marker: str) -> None:
    """Only the value msgspec (or its own code) refuses is replaced, saying why."""
    assert fallback({"before": 1, "bad": bad, "after": "kept"}) == {
        **CORE_OUT,
        "before": 1,
        "bad": marker,
        "after": "kept",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(-(2**70), -(2**70), id="negative-2**70"),
        pytest.param(2**200, 2**200, id="2**200"),
        pytest.param(10**4299, 10**4299, id="4300-digits"),
    ],
)
def test_big_ints_msgspec_can_write_stay_exact_numbers(value: int, expected: int) -> None:
    """Ints past 64 bits but within Python's digit limit are written as they are."""
    assert fallback({"n": value, "bad": HUGE}, max_bytes=8192)["n"] == expected


@pytest.mark.parametrize(
    ("value", "marker"),
    [
        pytest.param(10**4300, "<int with 4301 digits>", id="10**4300"),
        pytest.param(10**4301 - 1, "<int with 4301 digits>", id="10**4301-1"),
        pytest.param(-(10**38_000), "<negative int with 38001 digits>", id="-10**38000"),
        pytest.param(10**38_000 - 1, "<int with 38000 digits>", id="10**38000-1"),
        pytest.param(1 << 200_000, "<int with about 60206 digits>", id="2**200000"),
    ],
)
def test_the_digit_count_of_a_huge_int_is_exact_or_says_about(value: int, marker: str) -> None:
    """The marker's count is exact without ``str(value)``; beyond ~39,000 digits, estimated."""
    assert fallback({"n": value})["n"] == marker


@pytest.mark.parametrize(
    ("bad", "prefix"),
    [
        pytest.param(HugeEnum.HUGE, "<unencodable HugeEnum: ValueError: ", id="enum-huge-value"),
        pytest.param(
            SurrogateEnum.LONE,
            "<unencodable SurrogateEnum: UnicodeEncodeError: ",
            id="enum-surrogate-value",
        ),
    ],
)
def test_an_enum_with_an_unwritable_value_is_marked_with_the_reason(
    bad: object, prefix: str
) -> None:
    """The marker names the type and quotes msgspec's error, made encodable itself."""
    event = fallback({"bad": bad, "after": "kept"})
    assert event["after"] == "kept"
    assert event["bad"].startswith(prefix)
    assert event["bad"].endswith(">")


def test_bad_values_nested_in_dicts_and_lists_keep_their_siblings() -> None:
    """A bad value deep inside a field replaces itself, not its container."""
    fields = {
        "outer": {
            "ok": 1,
            "bad": HUGE,
            "items": [1, datetime.datetime(2024, 1, 1, tzinfo=RaisingTZ()), "x", -HUGE],
            "inner": {"raising": RaisingMapping(), "fine": [True, None]},
        },
        "sibling": "kept",
    }
    assert fallback(fields) == {
        **CORE_OUT,
        "outer": {
            "ok": 1,
            "bad": "<int with 5001 digits>",
            "items": [
                1,
                "<unencodable datetime: RuntimeError: no offset>",
                "x",
                "<negative int with 5001 digits>",
            ],
            "inner": {
                "raising": "<unencodable RaisingMapping: RuntimeError: no iteration>",
                "fine": [True, None],
            },
        },
        "sibling": "kept",
    }


@pytest.mark.parametrize(
    ("key", "name"),
    [
        pytest.param(HUGE, "<int with 5001 digits>", id="huge-int"),
        pytest.param(BrokenRepr(), "<unrepresentable BrokenRepr>", id="raising-repr"),
        pytest.param(RaisingStr("plain"), "plain", id="str-subclass-raising-len-and-str"),
    ],
)
def test_a_key_that_cannot_be_written_is_marked_in_place(key: object, name: str) -> None:
    """A bad key becomes marker text; its value and the other keys stay."""
    assert fallback({"outer": {key: 1, "other": 2}}) == {**CORE_OUT, "outer": {name: 1, "other": 2}}


def test_an_oversized_event_with_a_bad_value_still_fits_and_keeps_its_core() -> None:
    """Bad values are marked first, then the event is cut to size as before."""
    event = fallback({"blob": "x" * 100_000, "bad": HUGE, "small": "kept"}, max_bytes=1024)
    assert {key: event[key] for key in CORE_OUT} == CORE_OUT
    assert event["bad"] == "<int with 5001 digits>"
    assert event["small"] == "kept"
    assert event["blob"].startswith("xxxx")
    assert event["blob"].endswith(" chars]")
    assert "alog.error" not in event


def test_an_oversized_message_is_cut_but_time_level_and_logger_stay_whole() -> None:
    """Only ``msg`` of the core keys may be cut, and then with a marker."""
    data = encode_fallback(
        new_encoder(), {**CORE, "msg": "m" * 100_000, "bad": HUGE, "extra": "e" * 5000}, 512
    )
    assert len(data) <= 512
    event = msgspec.json.decode(data)
    assert {key: event[key] for key in ("time", "level", "logger")} == {
        key: CORE_OUT[key] for key in ("time", "level", "logger")
    }
    assert event["msg"].startswith("mmmm")
    assert event["msg"].endswith(" chars]")


def test_too_many_fields_leave_the_core_and_a_count() -> None:
    """When no field fits, the core keys and how many fields were left out remain."""
    event = fallback({f"key{i:05d}": HUGE if i % 2 else i for i in range(2000)}, max_bytes=200)
    assert event == {**CORE_OUT, "...": "[truncated 2000 keys]"}


def test_a_cycle_and_a_bad_int_are_each_marked() -> None:
    """A cycle and an unwritable int in the same value are marked independently."""
    loop: dict[str, object] = {"name": "loop", "n": HUGE}
    loop["self"] = loop
    assert fallback({"v": loop}) == {
        **CORE_OUT,
        "v": {"name": "loop", "n": "<int with 5001 digits>", "self": "<circular>"},
    }


def test_the_reason_in_a_marker_is_cut_short() -> None:
    """A huge exception message does not become a huge marker."""
    marker = fallback({"bad": datetime.datetime(2024, 1, 1, tzinfo=VerboseTZ())})["bad"]
    assert marker.startswith("<unencodable datetime: RuntimeError: xxx")
    assert marker.endswith("...[truncated 9800 chars]>")
    assert len(marker) < 300


def test_huge_bytes_are_cut_like_a_string() -> None:
    """Bytes are written as base64 text, so an oversized one is cut with the chars marker."""
    event = fallback({"blob": b"\x00" * 100_000, "small": "kept"}, max_bytes=1024)
    assert event["blob"].startswith("AAAA")
    assert event["blob"].endswith(" chars]")
    assert event["small"] == "kept"


def test_only_a_pathological_core_reaches_the_summary() -> None:
    """A logger name too big to fit is the kind of event that gets the last-resort note."""
    data = encode_fallback(new_encoder(), {**CORE, "logger": "l" * 100_000, "v": HUGE}, 1024)
    event = msgspec.json.decode(data)
    assert event["alog.error"].startswith("event could not be encoded")
    assert event["time"] == CORE_OUT["time"]
    assert event["logger"].endswith("...[truncated 99744 chars]")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(AbortingRepr(), id="repr"),
        pytest.param(datetime.datetime(2024, 1, 1, tzinfo=AbortingTZ()), id="utcoffset"),
    ],
)
def test_a_base_exception_from_user_code_propagates(bad: object) -> None:
    """Only Exception is caught: an interrupt raised in a value's code reaches the caller."""
    with pytest.raises(Abort):
        encode_fallback(new_encoder(), {**CORE, "bad": bad}, 4096)


def _huge_int(exponent: int) -> int:
    value: int = 10**exponent  # typeshed: int ** int is Any (a negative exponent gives a float)
    return value


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
"""Any code point, lone surrogates and control characters included."""
RESERVED = frozenset({*CORE, "alog.error"})
"""Keys alog writes itself (a user field named "alog.error" would read as the summary)."""
LONG_TEXT = ANY_TEXT.map(lambda text: text * 200)
INTS = (
    st.integers()
    | st.integers(4290, 6000).map(_huge_int)
    | st.integers(4290, 6000).map(lambda exponent: -_huge_int(exponent))
)
LEAVES = INTS | st.floats() | ANY_TEXT | LONG_TEXT
VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(ANY_TEXT, children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.dictionaries(ANY_TEXT.filter(lambda key: key not in RESERVED), VALUES, max_size=12),
    msg=ANY_TEXT | LONG_TEXT,
    max_bytes=st.integers(512, 8192),
)
def test_any_nested_values_decode_fit_and_keep_the_core(
    fields: dict[str, object], msg: str, max_bytes: int
) -> None:
    """Whatever the values, the line decodes, fits, and has the four core keys uncut."""
    data = encode_fallback(new_encoder(), {**CORE, "msg": msg, **fields}, max_bytes)
    assert len(data) <= max_bytes
    event = msgspec.json.decode(data)
    assert {key: event[key] for key in ("time", "level", "logger")} == {
        key: CORE_OUT[key] for key in ("time", "level", "logger")
    }
    assert isinstance(event["msg"], str)
    assert "alog.error" not in event
