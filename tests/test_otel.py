"""OpenTelemetry: trace ids on events (``otel=True``, ``alog.otel.trace_context``).

Spans are real: the SDK's ``TracerProvider`` (never installed globally, so tests do not share
it), or a ``NonRecordingSpan`` around a ``SpanContext`` of the test's choosing. The OTLP
destination's tests are in tests/test_otlp.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import alog
import alog.otel
from alog import _traceparent

from .conftest import read_events

log = alog.get_logger("tests.otel")


@pytest.fixture(name="tracer")
def fixture_tracer() -> trace.Tracer:
    """A recording tracer of this test's own (sampled spans)."""
    return TracerProvider().get_tracer("tests.otel")


def ids_of(span: trace.Span) -> dict[str, str]:
    context = span.get_span_context()
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "trace_flags": f"{context.trace_flags:02x}",
    }


def trace_keys(event: dict[str, Any]) -> dict[str, Any]:
    return {key: event[key] for key in ("trace_id", "span_id", "trace_flags") if key in event}


# -- the processor ----------------------------------------------------------------------------


def test_adds_the_current_spans_ids(tracer: trace.Tracer) -> None:
    """Inside a span: 32, 16 and 2 lowercase hex digits, the span's own values."""
    with tracer.start_as_current_span("request") as span:
        event = alog.otel.trace_context({"msg": "x"})
    assert trace_keys(event) == ids_of(span)
    assert re.fullmatch(r"[0-9a-f]{32}", event["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", event["span_id"])
    assert re.fullmatch(r"[0-9a-f]{2}", event["trace_flags"])


def test_adds_nothing_without_a_valid_span() -> None:
    """No span, or the invalid one: none of the three keys (never zeros)."""
    assert alog.otel.trace_context({"msg": "x"}) == {"msg": "x"}
    with trace.use_span(trace.INVALID_SPAN):
        assert alog.otel.trace_context({"msg": "x"}) == {"msg": "x"}


def test_a_child_span_gives_its_own_id_and_the_parent_its_own_again(tracer: trace.Tracer) -> None:
    """The span current at the call, never a stale one (the cache follows the context)."""
    with tracer.start_as_current_span("parent") as parent:
        before = alog.otel.trace_context({})
        with tracer.start_as_current_span("child") as child:
            inside = alog.otel.trace_context({})
        after = alog.otel.trace_context({})
    assert trace_keys(before) == trace_keys(after) == ids_of(parent)
    assert trace_keys(inside) == ids_of(child)
    assert inside["trace_id"] == before["trace_id"]
    assert inside["span_id"] != before["span_id"]
    assert alog.otel.trace_context({}) == {}


def test_writes_the_spans_own_flags() -> None:
    """trace_flags is the span's byte (0x03: sampled plus the random bit), never a constant."""
    for flags, text in ((0x03, "03"), (0x00, "00"), (0x01, "01")):
        context = SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=TraceFlags(flags),
        )
        with trace.use_span(NonRecordingSpan(context)):
            event = alog.otel.trace_context({})
        assert event == {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "00f067aa0ba902b7",
            "trace_flags": text,
        }


def test_each_thread_sees_its_own_span(tracer: trace.Tracer) -> None:
    """Two threads in two spans at once: each call gets its own thread's ids."""
    results: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            barrier.wait()
            for _ in range(200):
                event = alog.otel.trace_context({})
                if trace_keys(event) != ids_of(span):
                    break
            results[name] = (ids_of(span), event)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, event in results.values():
        assert trace_keys(event) == expected
    assert results["a"][0]["trace_id"] != results["b"][0]["trace_id"]


# -- in a pipeline ----------------------------------------------------------------------------


async def test_otel_true_puts_the_ids_on_lines(tmp_path: Path, tracer: trace.Tracer) -> None:
    """alog.run(otel=True): the ids on the lines logged in a span, none on the others."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), otel=True):
        log.info("outside")
        with tracer.start_as_current_span("request") as span:
            log.info("inside", user=1)
            with tracer.start_as_current_span("db") as child:
                log.info("query")
    outside, inside, query = read_events(path)
    assert trace_keys(outside) == {}
    assert trace_keys(inside) == ids_of(span)
    assert inside["user"] == 1
    assert trace_keys(query) == ids_of(child)
    assert list(inside)[:4] == ["time", "level", "logger", "msg"]


@pytest.mark.parametrize("with_processor", [False, True])
async def test_otel_true_with_redaction_and_processors(
    tmp_path: Path, tracer: trace.Tracer, with_processor: bool
) -> None:
    """otel=True beside redact= (and processors): the ids are there, the secret is not."""
    path = tmp_path / "out.log"

    def tag(event: dict[str, object]) -> dict[str, object]:
        event["tagged"] = True
        return event

    async with alog.run(
        alog.File(path),
        otel=True,
        redact=["password"],
        processors=[tag] if with_processor else [],
    ):
        with tracer.start_as_current_span("request") as span:
            log.info("login", user="ada", password="hunter2-secret")  # noqa: S106 - a test secret
    (event,) = read_events(path)
    assert trace_keys(event) == ids_of(span)
    assert event["password"] == "[redacted]"  # noqa: S105 - the censor, not a secret
    assert ("tagged" in event) is with_processor
    assert b"hunter2-secret" not in path.read_bytes()


async def test_otel_true_on_another_thread(tmp_path: Path, tracer: trace.Tracer) -> None:
    """A thread's call carries the span current on that thread, not the loop's."""
    path = tmp_path / "out.log"
    seen: list[dict[str, str]] = []

    def work() -> None:
        with tracer.start_as_current_span("job") as span:
            seen.append(ids_of(span))
            log.info("from a thread")

    async with alog.run(alog.File(path), otel=True):
        with tracer.start_as_current_span("loop") as loop_span:
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            log.info("from the loop")
    by_msg = {event["msg"]: event for event in read_events(path)}
    assert trace_keys(by_msg["from a thread"]) == seen[0]
    assert trace_keys(by_msg["from the loop"]) == ids_of(loop_span)


async def test_user_processors_see_the_ids(tmp_path: Path, tracer: trace.Tracer) -> None:
    """otel=True runs first: a processor may rename (or drop) the ids."""

    def rename(event: dict[str, Any]) -> dict[str, Any]:
        event["dd.trace_id"] = event.pop("trace_id", None)
        return event

    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), otel=True, processors=[rename]):
        with tracer.start_as_current_span("request") as span:
            log.info("inside")
    (event,) = read_events(path)
    assert event["dd.trace_id"] == ids_of(span)["trace_id"]
    assert "trace_id" not in event
    assert event["span_id"] == ids_of(span)["span_id"]


async def test_trace_context_as_a_processor(tmp_path: Path, tracer: trace.Tracer) -> None:
    """The processor itself, listed in processors=, does what otel=True does."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), processors=[alog.otel.trace_context]):
        with tracer.start_as_current_span("request") as span:
            log.info("inside")
    (event,) = read_events(path)
    assert trace_keys(event) == ids_of(span)


def test_otel_must_be_a_bool() -> None:
    """Bad configuration fails at alog.run()."""
    with pytest.raises(TypeError, match="otel= must be True or False"):
        alog.run(otel="yes")  # type: ignore[arg-type]


# -- traceparent, when no span was made ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01"),
        ),
        (
            " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00 ",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "00"),
        ),
        (  # a later version may append fields
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-what-ever",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "03"),
        ),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_parses_traceparent(header: str | None, expected: tuple[str, str, str] | None) -> None:
    """W3C Trace Context: lowercase hex, no all-zero ids, version ff invalid."""
    assert _traceparent.parse(header) == expected


def test_traceparent_is_used_only_without_a_span(tracer: trace.Tracer) -> None:
    """The request's caller's ids when no span is current; a real span wins."""
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with _traceparent.request_parent(header):
        assert alog.otel.trace_context({}) == {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "trace_flags": "01",
        }
        with tracer.start_as_current_span("handler") as span:
            assert trace_keys(alog.otel.trace_context({})) == ids_of(span)
    assert alog.otel.trace_context({}) == {}


# -- without OpenTelemetry installed ------------------------------------------------------------

_WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
import alog
alog.run()
try:
    alog.run(otel=True)
except ImportError as error:
    print(error)
"""


def test_alog_imports_and_otel_true_says_what_to_install() -> None:
    """import alog needs no OpenTelemetry; otel=True without it names the extra."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (
        "alog.run(otel=True) needs opentelemetry-api; install it with: pip install 'alog[otel]'"
    )


_WITHOUT_PROTO = """
import sys
sys.modules["opentelemetry.proto"] = None  # opentelemetry-api alone
import alog.otel
print(alog.otel.trace_context({}))
try:
    from alog.otel import OTLP
except ImportError as error:
    print(error)
"""


def test_the_ids_need_only_the_api_and_otlp_says_what_to_install() -> None:
    """trace_context works with opentelemetry-api alone; OTLP names the extra."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PROTO], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "{}",
        "alog.otel.OTLP needs opentelemetry-proto; install it with: pip install 'alog[otel]'",
    ]
