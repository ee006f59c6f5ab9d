"""alog.otel.OTLP end to end, against a loopback OTLP/HTTP receiver (tests/_otlp.py).

The receiver decodes every request with opentelemetry-proto, as a Collector would; each test
checks both what it received and the pipeline's books (written == records it accepted).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from blockbuster import blockbuster_ctx
from opentelemetry.sdk.trace import TracerProvider

import alog
from alog._destinations.otlp import (
    MAX_RECORDS,
    OTLPStream,
    _retry_after,
    severity_of,
    stacktrace,
)
from alog.otel import OTLP

from ._otlp import Answer, Receiver

log = alog.get_logger("tests.otlp")


@pytest.fixture(name="receiver")
def fixture_receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the mapping ------------------------------------------------------------------------------


def fail(message: str) -> None:
    try:
        raise KeyError("config")
    except KeyError as cause:
        raise ValueError(message) from cause


async def test_maps_every_field(receiver: Receiver, tmp_path: Path) -> None:
    """Severity, body, time, scope, attributes (nested), exception, trace ids, resource."""
    tracer = TracerProvider().get_tracer("tests")
    destination = OTLP(receiver.endpoint, headers={"authorization": "Bearer t"})
    async with alog.run(
        destination,
        alog.File(tmp_path / "out.log"),
        otel=True,
        levels={"notice": 25},
        fields={"service.name": "checkout", "deployment.environment": "test"},
    ) as pipeline:
        with tracer.start_as_current_span("request") as span:
            log.info(
                "hello",
                user={"id": 7, "roles": ["admin", "dev"], "flags": {}},
                n=3,
                ratio=0.5,
                ok=True,
                nothing=None,
                big=2**70,
                empty=[],
            )
        alog.get_logger("app.db").log("notice", "slow query", ms=12.5)
        try:
            fail("bad input")
        except ValueError:
            log.error("failed", exc_info=True)
    by_body = {r.record.body.string_value: r for r in receiver.received()}
    hello, notice, failed = by_body["hello"], by_body["slow query"], by_body["failed"]
    lines = (tmp_path / "out.log").read_text().splitlines()

    context = span.get_span_context()
    assert hello.record.trace_id == context.trace_id.to_bytes(16, "big")
    assert hello.record.span_id == context.span_id.to_bytes(8, "big")
    assert hello.record.flags == int(context.trace_flags)
    assert (hello.record.severity_number, hello.record.severity_text) == (9, "info")
    assert hello.record.body.string_value == "hello"
    assert hello.scope == "tests.otlp"
    assert hello.resource == {"service.name": "checkout", "deployment.environment": "test"}
    assert hello.attributes == {
        "user": {"id": 7, "roles": ["admin", "dev"], "flags": {}},
        "n": 3,
        "ratio": 0.5,
        "ok": True,
        "nothing": None,
        "big": str(2**70),
        "empty": [],
    }
    assert hello.record.attributes[0].value.WhichOneof("value") == "kvlist_value"
    assert hello.record.attributes[-1].value.WhichOneof("value") == "array_value"
    event = alog_line(lines[0])
    assert hello.record.time_unix_nano == nanos(event["time"])
    assert hello.record.observed_time_unix_nano == hello.record.time_unix_nano

    assert (notice.record.severity_number, notice.record.severity_text) == (11, "notice")
    assert notice.scope == "app.db"
    assert notice.attributes == {"ms": 12.5}
    assert notice.record.trace_id == b""
    assert notice.record.flags == 0

    assert (failed.record.severity_number, failed.record.severity_text) == (17, "error")
    attributes = failed.attributes
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "bad input"
    trace_text = attributes["exception.stacktrace"]
    assert trace_text.startswith("Traceback (most recent call last):\n")
    assert "KeyError: 'config'" in trace_text
    assert "The above exception was the direct cause of the following exception:" in trace_text
    assert ", in fail\n" in trace_text
    assert trace_text.endswith("\nValueError: bad input")
    assert set(attributes) == {"exception.type", "exception.message", "exception.stacktrace"}

    assert receiver.content_types == ["application/x-protobuf"] * len(receiver.arrivals)
    assert receiver.headers[0]["authorization"] == "Bearer t"
    otlp_books = pipeline.statistics().destinations[0]
    assert (otlp_books.written, otlp_books.undelivered, otlp_books.dropped) == (3, 0, 0)
    assert (otlp_books.connected, otlp_books.reconnects) == (True, 0)
    assert destination.statistics().records == 3


def alog_line(line: str) -> dict[str, Any]:
    import json

    event: dict[str, Any] = json.loads(line)
    return event


def nanos(text: str) -> int:
    import datetime

    stamp = datetime.datetime.fromisoformat(text)
    seconds = int(stamp.replace(microsecond=0).timestamp())
    return (seconds * 1_000_000 + stamp.microsecond) * 1000


async def test_without_service_name_the_resource_says_unknown_service(
    receiver: Receiver,
) -> None:
    """The SDKs' fallback: ``unknown_service:`` and the executable's name."""
    async with alog.run(OTLP(receiver.endpoint)):
        log.info("hello", region="eu")
    (record,) = receiver.received()
    assert record.resource["service.name"].startswith("unknown_service:")
    assert record.attributes == {"region": "eu"}


async def test_a_field_overriding_a_resource_value_gets_its_own_resource(
    receiver: Receiver,
) -> None:
    """Resource values are read per event: a bound override is not lost, nor mixed."""
    async with alog.run(OTLP(receiver.endpoint), fields={"service.name": "api"}):
        log.info("one")
        log.bind(**{"service.name": "worker"}).info("two")
        log.info("three")
    services = [
        (r.record.body.string_value, r.resource["service.name"]) for r in receiver.received()
    ]
    assert sorted(services) == [("one", "api"), ("three", "api"), ("two", "worker")]
    (request,) = receiver.requests
    assert len(request.resource_logs) == 2


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (1, 1),
        (5, 3),
        (10, 5),
        (15, 7),
        (20, 9),
        (25, 11),
        (29, 13),
        (30, 13),
        (40, 17),
        (50, 21),
        (55, 23),
        (60, 24),
        (999, 24),
        (0, 1),
    ],
)
def test_severity_numbers(level: int, severity: int) -> None:
    """The five standard levels on OTel's anchors; custom levels to the nearest step."""
    assert severity_of(level) == severity


def test_stacktrace_of_a_group_with_notes() -> None:
    """Exception groups and notes render as Python prints them (without source lines)."""
    try:
        error = ValueError("inner")
        error.add_note("while parsing")
        raise ExceptionGroup("several", [error, KeyError("k")])
    except ExceptionGroup as group:
        from alog._fields import exception_fields

        described = exception_fields(group)
    assert described is not None
    text = stacktrace(described)
    assert text.startswith("Exception Group Traceback (most recent call last):\n")
    assert "ExceptionGroup: several (2 sub-exceptions)\n" in text
    assert "| ValueError: inner\n| while parsing\n" in text
    assert text.endswith("| KeyError: 'k'")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), (" 12 ", 12.0), ("soon", None), (None, None), ("99999", 3600.0)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    """Retry-After in seconds (capped at an hour); an unreadable one is ignored."""
    assert _retry_after(header) == seconds


def test_retry_after_as_a_date() -> None:
    """The HTTP-date form: the time until then."""
    from email.utils import formatdate

    waited = _retry_after(formatdate(time.time() + 30, usegmt=True))
    assert waited is not None
    assert 25 <= waited <= 31


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"endpoint": "ftp://x/v1/logs"}, ValueError, "http:// or https://"),
        ({"endpoint": "http:///v1/logs"}, ValueError, "http:// or https://"),
        ({"endpoint": 4318}, TypeError, "must be a URL"),
        ({"endpoint": "http://h:99999/"}, ValueError, "bad port"),
        ({"headers": {"a": 1}}, TypeError, "header names"),
        ({"headers": {"a": "x\r\nInjected: 1"}}, ValueError, "cannot be sent"),
        ({"timeout": 0}, ValueError, "positive number"),
        ({"level": True}, TypeError, "level name"),
        ({"required": "yes"}, TypeError, "True or False"),
    ],
)
def test_bad_configuration_fails_at_construction(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Precise errors when the destination is built, not when it first sends."""
    with pytest.raises(error, match=match):
        OTLP(**kwargs)


def test_defaults_and_repr() -> None:
    """The default endpoint is a local collector's; optional unless said otherwise."""
    destination = OTLP()
    assert destination.endpoint == "http://127.0.0.1:4318/v1/logs"
    assert destination.required is False
    assert repr(destination) == "alog.otel.OTLP('http://127.0.0.1:4318/v1/logs')"
    assert repr(OTLP("https://otel.example:443", level="warning", required=True)) == (
        "alog.otel.OTLP('https://otel.example:443', level='warning', required=True)"
    )
    assert OTLP("http://h:1")._target == "/v1/logs"


# -- batching, retries, losses ----------------------------------------------------------------


async def test_nothing_blocks_the_loop(receiver: Receiver) -> None:
    """blockbuster fails the test if anything blocking runs on the loop: open, log, flush, close."""
    tracer = TracerProvider().get_tracer("tests")
    with blockbuster_ctx():
        async with alog.run(OTLP(receiver.endpoint), otel=True) as pipeline:
            for round_ in range(10):
                with tracer.start_as_current_span("round"):
                    for i in range(500):
                        log.info("busy", i=i, round=round_)
                await anyio.lowlevel.checkpoint()
            await pipeline.aflush(10)
    assert len(receiver.received()) == 5000


async def test_level_keeps_lower_events_out(receiver: Receiver, tmp_path: Path) -> None:
    """OTLP(level="warning") beside a file that gets everything: filtered, not lost."""
    async with alog.run(OTLP(receiver.endpoint, level="warning"), alog.File(tmp_path / "a")) as p:
        log.info("chatter")
        log.warning("look")
    assert [r.record.body.string_value for r in receiver.received()] == ["look"]
    otlp = p.statistics().destinations[0]
    assert (otlp.written, otlp.filtered) == (1, 1)


async def test_batches_many_events_in_few_requests(receiver: Receiver) -> None:
    """Thousands of events go in requests of at most MAX_RECORDS, all in order."""
    count = MAX_RECORDS * 2 + 10
    async with alog.run(OTLP(receiver.endpoint), max_events=count) as pipeline:
        for i in range(count):
            log.info("event", i=i)
    received = receiver.received()
    assert [r.attributes["i"] for r in received] == list(range(count))
    assert 3 <= len(receiver.requests) <= count // 100
    assert all(
        len(request.resource_logs[0].scope_logs[0].log_records) <= MAX_RECORDS
        for request in receiver.requests
    )
    stats = pipeline.statistics()
    assert (stats.written, stats.undelivered, stats.dropped) == (count, 0, 0)


async def test_503_for_a_while_is_retried_and_nothing_is_lost(receiver: Receiver) -> None:
    """The receiver refuses (503, 429, 502) and then recovers: every event arrives, once."""
    receiver.answers.extend(
        [Answer(503), Answer(429, retry_after="0"), Answer(502), Answer(503), Answer(504)]
    )
    destination = OTLP(receiver.endpoint)
    async with alog.run(destination) as pipeline:
        for i in range(500):
            log.info("event", i=i)
            if i % 50 == 0:
                await anyio.sleep(0.01)
    assert [r.attributes["i"] for r in receiver.received()] == list(range(500))
    stats = pipeline.statistics()
    assert (stats.written, stats.undelivered, stats.dropped) == (500, 0, 0)
    assert destination.statistics().retries >= 5
    assert stats.destinations[0].connected is True
    assert [status for _, status in receiver.arrivals[:5]] == [503, 429, 502, 503, 504]


async def test_a_receiver_refusing_for_a_second_loses_nothing(receiver: Receiver) -> None:
    """503 for 1 s while the app keeps logging: held in the queue (within its caps), then sent."""
    receiver.refuse_until = time.monotonic() + 1.0
    async with alog.run(OTLP(receiver.endpoint), max_events=5000) as pipeline:
        for i in range(3000):
            log.info("event", i=i)
            if i % 100 == 99:
                await anyio.sleep(0.04)
        assert time.monotonic() >= receiver.refuse_until  # the app logged through it
    assert [r.attributes["i"] for r in receiver.received()] == list(range(3000))
    stats = pipeline.statistics()
    assert (stats.written, stats.undelivered, stats.dropped) == (3000, 0, 0)
    assert sum(1 for _, status in receiver.arrivals if status == 503) >= 3


async def test_retry_after_is_honoured(receiver: Receiver) -> None:
    """A 503 with Retry-After: 1 makes the next attempt wait a second."""
    receiver.answers.append(Answer(503, retry_after="1"))
    async with alog.run(OTLP(receiver.endpoint)):
        log.info("event")
    (first, _), (second, status) = receiver.arrivals
    assert status == 200
    assert second - first >= 0.95
    assert len(receiver.received()) == 1


async def test_a_rejected_request_is_undelivered_not_written(receiver: Receiver) -> None:
    """400 (bad data) is not retried: its records are counted as undelivered."""
    receiver.answers.append(Answer(400))
    destination = OTLP(receiver.endpoint)
    async with alog.run(destination) as pipeline:
        for i in range(5):
            log.info("event", i=i)
        await pipeline.aflush()
        log.info("after")
    stats = pipeline.statistics()
    assert [r.record.body.string_value for r in receiver.received()] == ["after"]
    assert (stats.written, stats.undelivered) == (1, 5)
    assert destination.statistics().rejected == 5
    assert (
        destination.statistics().last_error == "HTTP 400 from " + receiver.endpoint + ": bad data"
    )


async def test_partial_success_counts_the_rejected_records(receiver: Receiver) -> None:
    """A 200 whose partial_success rejects some: those are undelivered, the rest written."""
    receiver.answers.append(Answer(200, rejected=2))
    async with alog.run(OTLP(receiver.endpoint)) as pipeline:
        for i in range(5):
            log.info("event", i=i)
    stats = pipeline.statistics()
    assert (stats.written, stats.undelivered) == (3, 2)


async def test_a_receiver_that_is_down_costs_events_not_the_app(tmp_path: Path) -> None:
    """required=False: nobody listens; the app runs on, losses are counted, the file has all."""
    destination = OTLP(f"http://127.0.0.1:{free_port()}/v1/logs")
    path = tmp_path / "out.log"
    async with alog.run(destination, alog.File(path), write_timeout=0.5) as pipeline:
        for i in range(20):
            log.info("event", i=i)
        done = "the app went on"
    assert done == "the app went on"
    otlp, file = pipeline.statistics().destinations
    # the 20 and alog's own alog.destination_failed report
    assert (otlp.written, otlp.undelivered + otlp.dropped) == (0, 21)
    assert otlp.state == "closed"
    assert otlp.last_error is not None and "no OTLP receiver" in otlp.last_error
    assert file.written == 21


async def test_a_receiver_that_goes_away_fails_the_stream_after_write_timeout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """It vanishes mid-run: retried until write_timeout, then counted; the app unaffected."""
    with Receiver() as receiver:
        destination = OTLP(receiver.endpoint)
        async with alog.run(destination, write_timeout=0.5) as pipeline:
            log.info("before")
            await pipeline.aflush()
            receiver.stop()
            for i in range(10):
                log.info("while away", i=i)
            await anyio.sleep(0.25)
            retrying = pipeline.statistics().destinations[0]
            assert (retrying.state, retrying.connected) == ("running", False)
            await anyio.sleep(0.75)
            stats = pipeline.statistics().destinations[0]
    assert [r.record.body.string_value for r in receiver.received()] == ["before"]
    assert stats.written == 1
    assert stats.state == "retrying"
    assert stats.undelivered == 11  # and alog's own alog.destination_failed report
    assert stats.last_error is not None and "no OTLP receiver" in stats.last_error  # reopening
    said = capfd.readouterr().err
    assert "OTLP receiver at http://127.0.0.1:" in said
    assert "took nothing for 0.5 s (last: ConnectionError:" in said
    final = pipeline.statistics()
    assert final.written + final.undelivered + final.dropped == final.accepted


async def test_required_and_down_fails_the_start() -> None:
    """required=True: a receiver that is not there fails alog.run, as a file that cannot open."""
    destination = OTLP(f"http://127.0.0.1:{free_port()}/v1/logs", required=True)
    with pytest.raises(alog.WriterFailed, match="no OTLP receiver"):
        async with alog.run(destination):
            pass


async def test_flush_honours_its_deadline_with_a_slow_receiver(receiver: Receiver) -> None:
    """Sync flush() from the loop: back by its deadline, with what is pending said."""
    receiver.delay = 1.0
    async with alog.run(OTLP(receiver.endpoint)) as pipeline:
        log.info("slow")
        started = time.monotonic()
        result = pipeline.flush(timeout=0.2)
        took = time.monotonic() - started
        assert took < 0.6
        assert result.pending == 1
        assert result.timed_out
        receiver.delay = 0.0
    assert len(receiver.received()) == 1
    assert pipeline.statistics().written == 1


async def test_flush_writes_synchronously(receiver: Receiver) -> None:
    """Sync flush() with a receiver that answers: everything is there when it returns."""
    async with alog.run(OTLP(receiver.endpoint)) as pipeline:
        for i in range(10):
            log.info("event", i=i)
        result = pipeline.flush(timeout=5)
        assert (result.pending, result.written) == (0, 10)
        assert len(receiver.received()) == 10


async def test_flush_from_another_thread(receiver: Receiver) -> None:
    """alog.flush() from a worker thread waits for the writer: no pending left."""
    async with alog.run(OTLP(receiver.endpoint)):
        log.info("event")
        result = await anyio.to_thread.run_sync(alog.flush, 5.0)
        assert result.pending == 0
        assert len(receiver.received()) == 1


async def test_the_stream_has_no_file(receiver: Receiver) -> None:
    """No descriptor: never mistaken for stderr (where failures are reported)."""
    stream = await OTLP(receiver.endpoint).open()
    try:
        assert isinstance(stream, OTLPStream)
        assert not stream.is_same_file(2)
    finally:
        await stream.aclose()
