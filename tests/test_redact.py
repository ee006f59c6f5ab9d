"""Redaction: which keys a path reaches, and that a secret reaches no output at all."""

from __future__ import annotations

import copy
import dis
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import hypothesis
import hypothesis.strategies as st
import pytest

import alog
import alog.testing
from alog import _intake, _state
from alog._redact import Redaction, compile_redaction

from .conftest import RunScript, read_events

SECRET = "hunter2-s3cr3t"


@pytest.fixture(autouse=True)
def _no_process_wide_rules() -> Iterator[None]:
    yield
    alog.set_redaction(None)


def redacted(paths: list[str], event: dict[str, Any], **options: Any) -> dict[str, Any]:
    compiled = compile_redaction(paths, **options)
    assert compiled is not None
    built = {"time": "t", "level": "info", "logger": "app", "msg": "m", **event}
    compiled.apply(built)
    return {key: value for key, value in built.items() if key not in ("time", "level", "logger")}


@pytest.mark.parametrize(
    ("paths", "event", "expected"),
    [
        pytest.param(
            ["password"],
            {"password": "x", "user": "bob"},
            {"password": "[redacted]", "user": "bob"},
            id="top",
        ),
        pytest.param(
            ["password"], {"PassWord": "x"}, {"PassWord": "[redacted]"}, id="case-insensitive-key"
        ),
        pytest.param(
            ["PASSWORD"], {"password": "x"}, {"password": "[redacted]"}, id="case-insensitive-path"
        ),
        pytest.param(
            ["password"], {"a": {"password": "x"}}, {"a": {"password": "x"}}, id="top-only"
        ),
        pytest.param(
            ["*.token"],
            {"api": {"token": "x", "n": 1}, "token": "y"},
            {"api": {"token": "[redacted]", "n": 1}, "token": "y"},
            id="star-is-one-key",
        ),
        pytest.param(
            ["*.token"],
            {"a": {"b": {"token": "x"}}},
            {"a": {"b": {"token": "x"}}},
            id="star-not-two",
        ),
        pytest.param(
            ["headers.authorization"],
            {"headers": {"Authorization": "Bearer x", "accept": "*/*"}},
            {"headers": {"Authorization": "[redacted]", "accept": "*/*"}},
            id="dotted",
        ),
        pytest.param(
            ["user.*.ssn"],
            {"user": {"bob": {"ssn": 123456789, "age": 3}}},
            {"user": {"bob": {"ssn": "[redacted]", "age": 3}}},
            id="star-in-the-middle",
        ),
        pytest.param(
            ["**.secret"], {"secret": "x"}, {"secret": "[redacted]"}, id="double-star-zero-keys"
        ),
        pytest.param(
            ["**.secret"],
            {"a": {"b": {"c": {"d": {"e": {"f": {"secret": "x"}}}}}}},
            {"a": {"b": {"c": {"d": {"e": {"f": {"secret": "[redacted]"}}}}}}},
            id="double-star-deep",
        ),
        pytest.param(
            ["a.**.secret"],
            {"a": {"secret": "x", "b": {"secret": "y"}}, "secret": "z"},
            {"a": {"secret": "[redacted]", "b": {"secret": "[redacted]"}}, "secret": "z"},
            id="double-star-below-a-key",
        ),
        pytest.param(
            ["headers.authorization"],
            {"headers": [{"authorization": "x"}, {"authorization": "y", "k": 1}]},
            {"headers": [{"authorization": "[redacted]"}, {"authorization": "[redacted]", "k": 1}]},
            id="list-transparent",
        ),
        pytest.param(
            ["**.secret"],
            {"a": [[{"secret": "x"}], ({"secret": "y"},)]},
            {"a": [[{"secret": "[redacted]"}], ({"secret": "[redacted]"},)]},
            id="nested-lists-and-tuples",
        ),
        pytest.param(
            ["credentials"],
            {"credentials": {"user": "bob", "pw": "x"}},
            {"credentials": "[redacted]"},
            id="a-whole-dict",
        ),
        pytest.param(["password"], {"user": "bob"}, {"user": "bob"}, id="absent"),
    ],
)
def test_paths_reach_exactly_their_keys(
    paths: list[str], event: dict[str, Any], expected: dict[str, Any]
) -> None:
    """The path language: * is one key, ** any number (none too), lists see through."""
    assert redacted(paths, event) == {"msg": "m", **expected}


def test_remove_drops_the_key_and_censor_is_any_value() -> None:
    """remove=True leaves no key; censor= replaces the value with what the user chose."""
    assert redacted(["a.password"], {"a": {"password": "x", "k": 1}}, remove=True) == {
        "msg": "m",
        "a": {"k": 1},
    }
    assert redacted(["password"], {"password": "x"}, censor=None) == {"msg": "m", "password": None}


def test_the_callers_objects_are_never_changed() -> None:
    """Nested dicts and lists are copied before a change: the app's request headers stay."""
    headers = {"authorization": "Bearer x", "nested": [{"secret": "y"}]}
    before = copy.deepcopy(headers)
    out = redacted(["headers.authorization", "**.secret"], {"headers": headers})
    assert headers == before
    assert out["headers"] == {"authorization": "[redacted]", "nested": [{"secret": "[redacted]"}]}


def test_a_redacted_value_is_scrubbed_from_every_text_of_the_event() -> None:
    """The message, the exception's message and other texts quoting the secret lose it too."""
    compiled = compile_redaction(["password"])
    assert compiled is not None
    event = {
        "time": "t",
        "level": "info",
        "logger": "app",
        "msg": f"login with {SECRET}",
        "password": SECRET,
        "exception": {"type": "ValueError", "message": f"bad {SECRET}", "frames": []},
        "url": f"/login?pw={SECRET}",
        "short": "abc",
    }
    compiled.apply(event)
    assert SECRET not in json.dumps(event)
    assert event["msg"] == "login with [redacted]"
    assert event["short"] == "abc"


class Pin(int):
    """An int subclass (an IntEnum member is one): written as its number."""


@pytest.mark.parametrize(
    ("value", "text", "scrubbed"),
    [
        pytest.param("hunter22", "hunter22", True, id="str"),
        pytest.param(482913, "482913", True, id="int"),
        pytest.param(4829.5, "4829.5", True, id="float"),
        pytest.param(Pin(771234), "771234", True, id="int-subclass"),
        pytest.param(b"s3cr3t!", "s3cr3t!", True, id="bytes"),
        pytest.param(True, "True", False, id="bool-is-not-a-number"),
        pytest.param(123, "123", False, id="shorter-than-MIN_SCRUB_LENGTH"),
    ],
)
def test_each_kind_of_redacted_value_is_scrubbed_from_the_events_texts_as_written(
    value: object, text: str, scrubbed: bool
) -> None:
    """A redacted value is searched for as the text it would be written as: a str as
    itself, a number (bools aside) by its digits, bytes decoded; the value's own key always
    gets the censor. Strings and plain numbers take a path without calls (apply), the rest
    _collect: both must give the same texts."""
    compiled = compile_redaction(["pin"])
    assert compiled is not None
    event: dict[str, Any] = {"time": "t", "level": "info", "logger": "app", "msg": f"pin {text}"}
    event["pin"] = value
    event["note"] = f"was {text}"
    compiled.apply(event)
    assert event["pin"] == "[redacted]"
    if scrubbed:
        assert event["msg"] == "pin [redacted]"
        assert event["note"] == "was [redacted]"
    else:
        assert event["msg"] == f"pin {text}"
        assert event["note"] == f"was {text}"


def test_nesting_past_the_depth_limit_is_censored_whole() -> None:
    """A value nested 100 levels deep (or a cycle) never slips past a '**' path."""
    deep: dict[str, Any] = {"secret": SECRET}
    for _ in range(100):
        deep = {"a": deep}
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    out = redacted(["**.secret"], {"deep": deep, "cycle": cycle})
    assert SECRET not in repr(out)


def test_the_core_keys_are_never_redacted() -> None:
    """A wildcard at the top never reaches time, level, logger or msg."""
    assert redacted(["*"], {"a": 1}) == {"msg": "m", "a": "[redacted]"}


@pytest.mark.parametrize(
    ("paths", "error", "says"),
    [
        pytest.param(["a..b"], ValueError, "empty key", id="empty-key"),
        pytest.param([""], ValueError, "empty key", id="empty"),
        pytest.param(["a.**"], ValueError, "ends with", id="trailing-double-star"),
        pytest.param(["pass*"], ValueError, "whole key", id="partial-star"),
        pytest.param(["msg"], ValueError, "core key", id="core-key"),
        pytest.param([3], TypeError, "is a str", id="not-a-str"),
        pytest.param("password", TypeError, "list of", id="a-bare-string"),
    ],
)
def test_bad_paths_fail_at_run(paths: Any, error: type[Exception], says: str) -> None:
    """A mistyped path fails when the pipeline is configured, not silently at log time."""
    with pytest.raises(error, match=says):
        alog.run(redact=paths)
    with pytest.raises(error, match=says):
        alog.set_redaction(paths)


def test_the_hot_path_is_unchanged_without_redaction() -> None:
    """Not configured, the builder hands events straight to queue.put: nothing added."""

    class Queue:
        def put(self, event: dict[str, object], levelno: int) -> None: ...

    queue: Any = Queue()
    plain = _intake.Intake(queue, fields=None, processors=())
    closure = cast("types.FunctionType", plain.emit).__closure__
    assert closure is not None
    assert queue.put in {cell.cell_contents for cell in closure}
    redacting = _intake.Intake(
        queue, fields=None, processors=(), redaction=compile_redaction(["password"])
    )
    # The builder's code is one and the same; only what it delivers to differs.
    assert list(dis.get_instructions(plain.emit)) == list(dis.get_instructions(redacting.emit))


async def test_every_field_kind_is_redacted_before_the_queue(tmp_path: Path) -> None:
    """Call, bound, context and process-wide fields, and the exception: all redacted."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app", password=SECRET)
    async with alog.run(
        alog.File(path), redact=["password", "**.token"], fields={"token": SECRET}
    ) as pipeline:
        with alog.bound(ctx={"token": SECRET}):
            log.info("bound, context and process-wide")
        log.bind(password=SECRET).info("call", headers={"Token": SECRET})
        try:
            raise ValueError(f"rejected {SECRET}")
        except ValueError:
            alog.get_logger("app").exception("failed", password=SECRET)
    data = path.read_bytes()
    assert SECRET.encode() not in data
    events = read_events(path)
    assert [e["password"] for e in events] == ["[redacted]"] * 3
    assert events[0]["ctx"] == {"token": "[redacted]"}
    assert events[1]["headers"] == {"Token": "[redacted]"}
    assert events[2]["exception"]["message"] == "rejected [redacted]"
    assert pipeline.statistics().written == 3


async def test_processors_see_redacted_events_and_their_additions_are_redacted(
    tmp_path: Path,
) -> None:
    """No processor sees a secret (nor quotes it in alog.error); what one adds is redacted."""
    seen: list[object] = []

    def peek(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["password"])
        raise RuntimeError(f"cannot handle {event['password']}")

    def add_token(event: dict[str, Any]) -> dict[str, Any]:
        event["api_token"] = SECRET
        return event

    path = tmp_path / "out.log"
    async with alog.run(
        alog.File(path), redact=["password", "api_token"], processors=[peek, add_token]
    ):
        alog.get_logger("app").info(f"for {SECRET}", password=SECRET)
    assert seen == ["[redacted]"]
    assert SECRET.encode() not in path.read_bytes()
    (event,) = read_events(path)
    assert event["api_token"] == "[redacted]"
    assert "alog.error" in event


async def test_capture_logs_inside_a_pipeline_applies_its_redaction() -> None:
    """The test capture shows what the pipeline would write: the secret is not there."""
    async with alog.run(alog.Stderr(), redact=["password"]):
        with alog.testing.capture_logs() as events:
            alog.get_logger("app").info("login", password=SECRET)
    assert events == [{"level": "info", "logger": "app", "msg": "login", "password": "[redacted]"}]
    assert _state.redaction is None  # the pipeline's rules ended with it


def test_set_redaction_applies_to_the_capture_and_to_later_pipelines() -> None:
    """Process-wide rules work with no pipeline at all and join every pipeline's own."""
    alog.set_redaction(["password"], censor="***")
    with alog.testing.capture_logs() as events:
        alog.get_logger("app").info("login", password=SECRET)
    assert events[0]["password"] == "***"
    pipeline = alog.run(redact=["token"])
    assert pipeline._redaction is None  # compiled with the process-wide rules when it starts


async def test_process_wide_rules_join_a_pipelines_own(tmp_path: Path) -> None:
    """set_redaction() rules apply inside every pipeline started after, with its redact=."""
    alog.set_redaction(["password"])
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), redact=iter(["token"])):
        alog.get_logger("app").info("both", password=SECRET, token=SECRET, other=1)
    assert SECRET.encode() not in path.read_bytes()
    (event,) = read_events(path)
    assert (event["password"], event["token"], event["other"]) == ("[redacted]", "[redacted]", 1)
    assert _state.redaction is _state.process_redaction  # back to the process-wide rules


def test_a_redaction_compiles_lazily_and_bounds_its_memo() -> None:
    """Keys made of data (ids as keys) cannot grow the per-state memo without bound."""
    compiled = compile_redaction(["**.secret"])
    assert isinstance(compiled, Redaction)
    event: dict[str, Any] = {"time": "t", "level": "info", "logger": "a", "msg": "m"}
    event.update({f"user{i}": {"secret": i} for i in range(10_000)})
    compiled.apply(event)
    assert event["user9999"] == {"secret": "[redacted]"}
    assert len(compiled.root.memo) <= 4096


SCRIPT = """
import asyncio, logging, sys
import alog, alog.stdlib, alog.testing

SECRET = "hunter2-s3cr3t"

def marker(event):
    raise ValueError(str(event))

async def main():
    log = alog.get_logger("app", password=SECRET)
    async with alog.run(
        alog.Stdout(), alog.Stderr(), alog.File("out.log"),
        redact=["password", "headers.authorization", "**.secret"],
        fields={"secret": SECRET},
        processors=[marker],
    ):
        with alog.bound(request={"headers": {"Authorization": SECRET}}):
            log.info(f"login {SECRET}", deep=[{"a": {"b": {"c": {"secret": SECRET}}}}])
        try:
            raise KeyError(SECRET)
        except KeyError:
            log.exception("failed")
        with alog.testing.capture_logs() as events:
            log.warning("captured", secret=SECRET)
        print("CAPTURED", events, file=sys.stderr)

asyncio.run(main())

# No pipeline: the stdlib fallback, with the process-wide rules.
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="FALLBACK %(message)s")
alog.set_redaction(["password"])
try:
    raise RuntimeError(f"denied {SECRET}")
except RuntimeError:
    alog.get_logger("lib").exception("fallback", password=SECRET)
alog.get_logger("lib").info("fallback too", password=SECRET)
"""


def test_no_byte_of_any_output_holds_the_secret(run_script: RunScript, tmp_path: Path) -> None:
    """stdout, stderr, the file, the capture and the stdlib fallback: a byte search of all."""
    done = run_script(SCRIPT)
    assert done.returncode == 0, done.stderr.decode()
    outputs = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "file": (tmp_path / "out.log").read_bytes(),
    }
    for name, data in outputs.items():
        assert SECRET.encode() not in data, f"the secret is in {name}"
    assert outputs["file"].count(b"[redacted]") >= 5  # the events were written, redacted
    assert outputs["stdout"].count(b"\n") == 2
    assert b"CAPTURED" in done.stderr
    assert done.stderr.count(b"FALLBACK") == 2
    assert b"denied [redacted]" in done.stderr  # the fallback's traceback, scrubbed


_KEYS = st.sampled_from(["a", "b", "secret", "Secret", "SECRET", "list"])
_LEAVES = st.one_of(st.integers(), st.text(max_size=5), st.none())
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=30,
)


def _secret_values(value: object) -> list[object]:
    """Every value stored under a key named secret (any case), at any depth."""
    found: list[object] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == "secret":
                found.append(item)
            found.extend(_secret_values(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_secret_values(item))
    return found


@hypothesis.given(fields=st.dictionaries(_KEYS, _VALUES, max_size=5))
@hypothesis.settings(max_examples=300, deadline=None)
def test_double_star_reaches_every_depth_and_copies(fields: dict[str, Any]) -> None:
    """Whatever the nesting, '**.secret' leaves no secret value, and the input is unchanged."""
    before = copy.deepcopy(fields)
    out = redacted(["**.secret"], fields)
    assert fields == before
    assert all(value == "[redacted]" for value in _secret_values(out))
    assert len(_secret_values(out)) <= len(_secret_values(before))
