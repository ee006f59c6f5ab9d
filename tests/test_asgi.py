"""The ASGI middleware and lifespan: in-process with httpx, and under a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import uvicorn
from fastapi import BackgroundTasks, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import alog
from alog.integrations import request_fields
from alog.integrations.asgi import RequestLogMiddleware, lifespan
from alog.testing import capture_logs

from ._servers import UVICORN_READY, ServerProcess, refuses_connections, uvicorn_args
from .conftest import read_events

EXAMPLES = Path(__file__).parent.parent / "examples"


def make_app(**options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestLogMiddleware, **options)
    log = alog.get_logger("app")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        log.info("item", item_id=item_id)
        if item_id == 0:
            raise HTTPException(status_code=404)
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                await asyncio.sleep(0.05)
                yield b"0123456789"

        return StreamingResponse(chunks())

    @app.get("/cut")
    async def cut() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("cut short")

        return StreamingResponse(chunks())

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close(code=4001)

    return app


@pytest.fixture(name="events")
def fixture_events() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as events:
        yield events


def client(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=app, client=("127.0.0.1", 5000), raise_app_exceptions=raise_app_exceptions
    )
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def access(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["logger"] == "access"]


async def test_access_line_has_route_status_duration_client_and_size(
    events: list[dict[str, Any]],
) -> None:
    """One line per request with what an operator looks for, at info for a 2xx."""
    async with client(make_app()) as http:
        response = await http.get("/items/7")
    assert response.status_code == 200
    (line,) = access(events)
    rid = response.headers["x-request-id"]
    assert line == {
        "level": "info",
        "logger": "access",
        "msg": "request",
        "request_id": rid,
        "method": "GET",
        "path": "/items/7",
        "route": "/items/{item_id}",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "client": "127.0.0.1",
        "response_bytes": len(response.content),
    }
    assert 0 <= line["duration_ms"] < 5000


async def test_app_events_carry_the_request_id(events: list[dict[str, Any]]) -> None:
    """Every call made while handling a request carries its id, via the bound context."""
    async with client(make_app()) as http:
        response = await http.get("/items/3", headers={"X-Request-ID": "req-3.a:b"})
    assert response.headers["x-request-id"] == "req-3.a:b"
    app_event = next(event for event in events if event["logger"] == "app")
    assert app_event["request_id"] == "req-3.a:b"
    assert access(events)[0]["request_id"] == "req-3.a:b"


@pytest.mark.parametrize(
    "hostile",
    ["a b", "x;rm -rf /", "<script>", "id\twith\ttabs", "ünïcode", '"quoted"', "a" * 129, ""],
)
async def test_unsafe_request_ids_are_replaced(events: list[dict[str, Any]], hostile: str) -> None:
    """A request id that could forge log lines or headers is never reused."""
    async with client(make_app()) as http:
        response = await http.get("/items/1", headers=[(b"x-request-id", hostile.encode("utf-8"))])
    rid = response.headers["x-request-id"]
    assert rid != hostile
    assert len(rid) == 32
    assert int(rid, 16) >= 0
    assert access(events)[0]["request_id"] == rid


@pytest.mark.parametrize(
    ("path", "status", "level"),
    [("/items/1", 200, "info"), ("/items/0", 404, "warning"), ("/nowhere", 404, "warning")],
)
async def test_level_follows_status(
    events: list[dict[str, Any]], path: str, status: int, level: str
) -> None:
    """4xx lines are warnings, 2xx info, so alerting can key on the level."""
    async with client(make_app()) as http:
        response = await http.get(path)
    assert response.status_code == status
    (line,) = access(events)
    assert (line["status"], line["level"]) == (status, level)


async def test_status_level_is_configurable(events: list[dict[str, Any]]) -> None:
    """Teams that do not want 404s as warnings can say so."""
    app = make_app(status_level=lambda status: "error" if status >= 500 else "debug")
    async with client(app) as http:
        await http.get("/items/0")
    assert access(events)[0]["level"] == "debug"


async def test_exception_gives_one_error_line_and_a_500(events: list[dict[str, Any]]) -> None:
    """An unhandled exception is one error line with its traceback, not two, and a 500."""
    async with client(make_app()) as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-request-id"]
    errors = [event for event in events if event["level"] == "error"]
    assert len(errors) == 1
    (line,) = errors
    assert line["status"] == 500
    assert line["exception"]["type"] == "RuntimeError"
    assert line["exception"]["message"] == "boom"
    assert line["exception"]["frames"][-1]["function"] == "boom"


async def test_exception_after_a_complete_response_is_logged_not_raised(
    events: list[dict[str, Any]],
) -> None:
    """Starlette's outer error middleware sends the 500 and re-raises; we log it once."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    app = RequestLogMiddleware(Starlette(routes=[Route("/boom", boom)]))
    async with client(app) as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    (line,) = access(events)
    assert (line["level"], line["status"]) == ("error", 500)
    assert line["exception"]["type"] == "RuntimeError"


async def test_exception_mid_stream_is_logged_and_reraised(events: list[dict[str, Any]]) -> None:
    """A response cut short must still be aborted by the server, so the error propagates."""
    async with client(make_app()) as http:
        with pytest.raises(RuntimeError, match="cut short"):
            await http.get("/cut")
    (line,) = access(events)
    assert line["level"] == "error"
    assert line["status"] == 200
    assert line["response_bytes"] == len(b"partial")
    assert line["exception"]["message"] == "cut short"


async def test_streaming_response_is_timed_to_its_end(events: list[dict[str, Any]]) -> None:
    """A streamed body's duration covers every chunk, and its size counts them all."""
    async with client(make_app()) as http:
        response = await http.get("/stream")
    assert response.content == b"0123456789" * 4
    (line,) = access(events)
    assert line["response_bytes"] == 40
    assert line["duration_ms"] >= 150


async def test_excluded_paths_log_nothing_unless_they_fail(events: list[dict[str, Any]]) -> None:
    """Health checks stay quiet, but a failing one is still reported."""
    app = make_app(exclude_paths={"/health", "/boom"})
    async with client(app) as http:
        await http.get("/health")
        await http.get("/boom")
    lines = access(events)
    assert [line["path"] for line in lines] == ["/boom"]


async def test_headers_are_logged_only_when_asked_and_redacted(
    events: list[dict[str, Any]],
) -> None:
    """Credentials never reach the log, even with header logging on."""
    secret = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret", "X-Api-Key": "s3cret"}
    async with client(make_app()) as http:
        await http.get("/items/1", headers=secret)
    assert "headers" not in access(events)[0]
    events.clear()
    async with client(make_app(log_headers=True, redact_headers=["X-Api-Key"])) as http:
        await http.get("/items/1", headers={**secret, "User-Agent": "tests"})
    headers = access(events)[0]["headers"]
    assert headers["user-agent"] == "tests"
    assert headers["authorization"] == headers["cookie"] == headers["x-api-key"] == "[redacted]"
    assert "s3cret" not in json.dumps(events)


def test_redact_headers_rejects_a_single_string() -> None:
    """A bare string would be read as a set of letters; fail at construction."""
    with pytest.raises(TypeError, match="collection"):
        RequestLogMiddleware(make_app(), redact_headers="x-api-key")


async def test_lifespan_runs_the_pipeline_and_passes_the_apps_state(tmp_path: Path) -> None:
    """The helper starts alog before the app's own start-up and drains it after shutdown."""
    path = tmp_path / "log.jsonl"
    seen: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        seen.append("started")
        alog.get_logger("app").info("starting")
        yield {"db": "connected"}
        alog.get_logger("app").info("stopping")

    app = Starlette(lifespan=lifespan(app_lifespan, destination=alog.File(path)))
    async with app.router.lifespan_context(app) as state:
        assert state == {"db": "connected"}
        assert alog.flush is not None
        pipeline = alog._state.pipeline
        assert pipeline is not None
        assert pipeline.state == "running"
    assert alog._state.pipeline is None
    assert [event["msg"] for event in read_events(path)] == ["starting", "stopping"]


def test_lifespan_checks_options_at_once() -> None:
    """A typo in the logging set-up fails when the app is built, not at first request."""
    with pytest.raises(ValueError, match="max_events"):
        lifespan(max_events=0)
    with pytest.raises(ValueError, match="exit_timeout"):
        lifespan(exit_timeout=-1)


async def test_lifespan_fails_startup_when_the_destination_cannot_open(tmp_path: Path) -> None:
    """An unopenable destination stops the app from starting, with the reason."""
    app = Starlette(lifespan=lifespan(destination=alog.File(tmp_path / "no" / "such" / "dir")))
    with pytest.raises(alog.WriterFailed):
        async with app.router.lifespan_context(app):
            pass


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """A real uvicorn server in this loop, on a free port of 127.0.0.1."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_websocket_session_gets_one_line_when_it_closes(
    events: list[dict[str, Any]],
) -> None:
    """A WebSocket session is logged when it ends, with its close code and message counts."""
    async with served(make_app()) as address, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://{address}/ws/lobby", headers={"X-Request-ID": "ws-1"})
        assert ws._response.headers["x-request-id"] == "ws-1"
        await ws.send_str("hello")
        assert (await ws.receive_str()) == "HELLO"
        await ws.receive()
        await ws.close()
    (line,) = [event for event in events if event["msg"] == "websocket"]
    assert line["request_id"] == "ws-1"
    assert line["route"] == "/ws/{room}"
    assert (line["status"], line["close_code"], line["closed_by"]) == (101, 4001, "server")
    assert (line["messages_received"], line["messages_sent"]) == (1, 1)


# -- under a real uvicorn -----------------------------------------------------------------

LOOPS = ["asyncio", "uvloop"]


def test_fastapi_example_under_uvicorn_writes_only_json_to_stdout(tmp_path: Path) -> None:
    """The example's stdout is all alog JSON: app events, access lines and uvicorn's own."""
    server = ServerProcess(
        uvicorn_args("fastapi_app:app", loop="uvloop"),
        cwd=EXAMPLES,
        ready=UVICORN_READY,
        stdout=subprocess.PIPE,
        read_stdout=True,
    )
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/items/1", headers={"X-Request-ID": "req-42"}).status_code == 200
            assert http.get("/items/9").status_code == 404
            assert http.get("/health").status_code == 200
            assert http.get("/stream").text == "0\n1\n2\n"
            assert http.get("/fail").status_code == 500
        assert server.stop() == 0
    finally:
        server.kill()
    events = [json.loads(line) for line in server.stdout_lines()]
    # A line is written when the app returns, which may be after the client moved on.
    lines = sorted(
        (event for event in events if event["logger"] == "access"), key=lambda e: e["path"]
    )
    assert [(line["path"], line["status"], line["level"]) for line in lines] == [
        ("/fail", 500, "error"),
        ("/items/1", 200, "info"),
        ("/items/9", 404, "warning"),
        ("/stream", 200, "info"),
    ]
    assert lines[1]["request_id"] == "req-42"
    assert lines[1]["route"] == "/items/{item_id}"
    assert lines[3]["duration_ms"] >= 100
    assert lines[0]["exception"]["message"] == "the database is on fire"
    found = next(event for event in events if event["msg"] == "item found")
    assert found["request_id"] == "req-42"
    assert any(event["logger"] == "uvicorn.error" for event in events)
    assert not any("Exception in ASGI application" in event["msg"] for event in events)


FAILING_APP = """
import asyncio
import os
import alog
from alog.integrations.asgi import RequestLogMiddleware, lifespan
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

log = alog.get_logger("app")

async def root(request):
    return PlainTextResponse("ok")

async def spam(request):
    for i in range(5000):
        log.info("spam " + "x" * 100, i=i)
    return PlainTextResponse("ok")

async def slow(request):
    async def forever():
        while True:
            yield b"."
            await asyncio.sleep(0.2)
    return StreamingResponse(forever())

options = {"write_timeout": 1.0, "exit_timeout": 1.5}
if os.environ.get("DEST"):
    options["destination"] = alog.File(os.environ["DEST"])
routes = [Route("/", root), Route("/spam", spam), Route("/slow", slow)]
app = RequestLogMiddleware(Starlette(routes=routes, lifespan=lifespan(**options)))
"""


@pytest.mark.parametrize(
    ("failure", "loop"),
    [
        ("dev_full", "asyncio"),
        ("dev_full", "uvloop"),
        ("dead_reader", "uvloop"),
        ("stalled_pipe", "asyncio"),
        ("busy_server", "uvloop"),
    ],
)
def test_writer_failure_stops_uvicorn_with_status_1(
    tmp_path: Path, loop: str, failure: str
) -> None:
    """uvicorn ignores a failed lifespan; alog makes it stop serving and exit non-zero."""
    (tmp_path / "failing_app.py").write_text(textwrap.dedent(FAILING_APP))
    env = {"DEST": "/dev/full"} if failure in ("dev_full", "busy_server") else {}
    server = ServerProcess(
        uvicorn_args("failing_app:app", loop=loop),
        cwd=tmp_path,
        ready=UVICORN_READY,
        env=env,
        stdout=subprocess.DEVNULL if env else subprocess.PIPE,
    )
    try:
        port = server.port
        slow: httpx.Client | None = None
        if failure == "dead_reader":
            assert server.proc.stdout is not None
            server.proc.stdout.close()
        if failure == "busy_server":
            # A response that never ends: graceful shutdown would wait for it forever.
            slow = httpx.Client(base_url=server.url, timeout=30)
            stream = slow.stream("GET", "/slow")
            stream.__enter__()
        started = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            path = "/spam" if failure == "stalled_pipe" else "/"
            assert http.get(path).status_code == 200
        status = server.wait(timeout=20)
        elapsed = time.monotonic() - started
        if slow is not None:
            slow.close()
    finally:
        server.kill()
    stderr = server.stderr_lines()
    assert status == 1, stderr
    assert elapsed < 1.0 + 1.5 + 5.0, elapsed  # write_timeout + exit_timeout + slack
    print(f"exit {elapsed:.2f} s after the triggering request")
    assert refuses_connections(port)
    assert any("alog writer failed" in line for line in stderr), stderr
    # Events logged after the failure (the shutdown's own) are one count, said at exit.
    said = [line for line in stderr if line.startswith("alog:")]
    last = [line for line in said if not line.endswith("were not written")][-1]
    assert last.startswith(("alog: exiting with status 1", "alog: the server did not stop"))


# -- OpenTelemetry: traceparent, and a real instrumentation ---------------------------------

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def trace_ids(event: dict[str, Any]) -> tuple[Any, Any, Any]:
    return event.get("trace_id"), event.get("span_id"), event.get("trace_flags")


async def test_traceparent_gives_the_ids_when_no_span_was_made(tmp_path: Path) -> None:
    """otel=True, no instrumentation: the caller's trace and span ids on every line."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), otel=True), client(make_app()) as http:
        await http.get("/items/7", headers={"traceparent": TRACEPARENT})
        await http.get("/items/8")
        await http.get("/items/9", headers={"traceparent": "00-bad-header-01"})
    app_events = [e for e in read_events(path) if e["logger"] == "app"]
    lines = [e for e in read_events(path) if e["logger"] == "access"]
    expected = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01")
    assert trace_ids(app_events[0]) == trace_ids(lines[0]) == expected
    assert trace_ids(app_events[1]) == trace_ids(lines[1]) == (None, None, None)
    assert trace_ids(app_events[2]) == trace_ids(lines[2]) == (None, None, None)


async def test_traceparent_is_ignored_without_otel(events: list[dict[str, Any]]) -> None:
    """Correlation off: the header changes nothing on the lines."""
    async with client(make_app()) as http:
        await http.get("/items/7", headers={"traceparent": TRACEPARENT})
    assert all("trace_id" not in event for event in events)


async def test_an_instrumentations_span_wins_over_traceparent(tmp_path: Path) -> None:
    """With FastAPI instrumented, the handler's events carry its server span, in the trace."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = make_app()
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    path = tmp_path / "out.log"
    try:
        async with alog.run(alog.File(path), otel=True), client(app) as http:
            await http.get("/items/7", headers={"traceparent": TRACEPARENT})
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    (app_event,) = [e for e in read_events(path) if e["logger"] == "app"]
    (line,) = [e for e in read_events(path) if e["logger"] == "access"]
    (server_span,) = [
        span
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    ]
    context = server_span.get_span_context()
    assert context is not None
    server = ("0af7651916cd43dd8448eb211c80319c", f"{context.span_id:016x}", "01")
    # The instrumentation's middleware is outermost: the access line is inside its span too.
    assert trace_ids(app_event) == trace_ids(line) == server


# -- the access line's options ---------------------------------------------------------------


@pytest.mark.parametrize(
    "skip",
    [
        pytest.param({"/health", "/boom"}, id="paths"),
        pytest.param(lambda scope: scope["path"] in ("/health", "/boom"), id="predicate"),
    ],
)
async def test_skip_takes_paths_or_a_predicate_and_failures_are_still_logged(
    events: list[dict[str, Any]], skip: Any
) -> None:
    """Health checks stay quiet either way; a failing one is still reported."""
    async with client(make_app(skip=skip)) as http:
        await http.get("/health")
        await http.get("/boom")
        await http.get("/items/1")
    assert [line["path"] for line in access(events)] == ["/boom", "/items/1"]


async def test_skip_predicate_that_raises_writes_the_line_and_says_why(
    events: list[dict[str, Any]],
) -> None:
    """A broken predicate never fails the request or hides its line."""

    def skip(scope: dict[str, Any]) -> bool:
        raise KeyError("no such thing")

    async with client(make_app(skip=skip)) as http:
        assert (await http.get("/items/1")).status_code == 200
    (line,) = access(events)
    assert line["skip_error"] == "KeyError: 'no such thing'"


def test_skip_and_exclude_paths_are_one_option() -> None:
    """exclude_paths is skip's older name: both at once, or a bare string, is a mistake."""
    with pytest.raises(TypeError, match="not both"):
        RequestLogMiddleware(make_app(), skip={"/a"}, exclude_paths={"/b"})
    with pytest.raises(TypeError, match="one string"):
        RequestLogMiddleware(make_app(), skip="/health")
    with pytest.raises(TypeError, match="one string"):
        RequestLogMiddleware(make_app(), exclude_paths="/health")
    with pytest.raises(TypeError, match="callable"):
        RequestLogMiddleware(make_app(), fields={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="request_id_header"):
        RequestLogMiddleware(make_app(), request_id_header="")


async def test_fields_callback_sees_the_request_and_the_response(
    events: list[dict[str, Any]],
) -> None:
    """fields(scope, response_start) adds what a team wants on every line."""

    def fields(scope: dict[str, Any], response: dict[str, Any] | None) -> dict[str, object]:
        assert response is not None
        kinds = [value for key, value in response["headers"] if key == b"content-type"]
        return {"http_version": scope["http_version"], "content_type": kinds[0].decode()}

    async with client(make_app(fields=fields)) as http:
        await http.get("/items/1")
    (line,) = access(events)
    assert (line["http_version"], line["content_type"]) == ("1.1", "application/json")


async def test_fields_callback_that_raises_is_reported_on_the_line(
    events: list[dict[str, Any]],
) -> None:
    """The request is served and logged; the line names the callback's error."""

    def fields(scope: dict[str, Any], response: dict[str, Any] | None) -> dict[str, object]:
        raise ValueError("bad field")

    async with client(make_app(fields=fields)) as http:
        assert (await http.get("/items/1")).status_code == 200
    (line,) = access(events)
    assert (line["status"], line["fields_error"]) == (200, "ValueError: bad field")


async def test_request_id_header_is_configurable(events: list[dict[str, Any]]) -> None:
    """X-Correlation-ID shops read and echo their own header."""
    app = make_app(request_id_header="X-Correlation-ID")
    async with client(app) as http:
        response = await http.get(
            "/items/1", headers={"X-Correlation-ID": "corr-1", "X-Request-ID": "other"}
        )
    assert response.headers["x-correlation-id"] == "corr-1"
    assert "x-request-id" not in response.headers
    assert access(events)[0]["request_id"] == "corr-1"


async def test_new_request_id_makes_the_ids_and_unsafe_ones_are_replaced(
    events: list[dict[str, Any]],
) -> None:
    """A generator of ids (ULIDs, prefixed ids) is used, unless what it makes is unsafe."""
    made = iter(["svc-1", "bad id\r\nX-Evil: 1"])
    async with client(make_app(new_request_id=lambda: next(made))) as http:
        first = await http.get("/items/1")
        second = await http.get("/items/1")
        kept = await http.get("/items/1", headers={"X-Request-ID": "from-client"})
    assert first.headers["x-request-id"] == "svc-1"
    assert len(second.headers["x-request-id"]) == 32
    assert kept.headers["x-request-id"] == "from-client"
    assert [line["request_id"] for line in access(events)] == [
        "svc-1",
        second.headers["x-request-id"],
        "from-client",
    ]


async def test_query_and_user_agent_are_opt_in(events: list[dict[str, Any]]) -> None:
    """Query strings can hold secrets, so they are logged only when asked."""
    headers = {"User-Agent": "probe/1.0"}
    async with client(make_app()) as http:
        await http.get("/items/1?token=abc", headers=headers)
    assert "query" not in access(events)[0]
    assert "user_agent" not in access(events)[0]
    events.clear()
    async with client(make_app(log_query=True, log_user_agent=True)) as http:
        await http.get("/items/1?page=2&q=x", headers=headers)
        await http.get("/items/1", headers={"User-Agent": ""})
    first, second = access(events)
    assert (first["query"], first["user_agent"]) == ("page=2&q=x", "probe/1.0")
    assert (second["query"], second["user_agent"]) == ("", "")


# -- background tasks: the line is written when the response ends ------------------------------


def background_app(seen: list[list[dict[str, Any]]], events: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestLogMiddleware)

    async def send_mail(fail: bool) -> None:
        seen.append(access(events))  # what the access log held when the task started
        assert request_fields(too_late=True) is False  # the line is already written
        await asyncio.sleep(0.3)
        if fail:
            raise ConnectionError("smtp is down")

    @app.post("/signup")
    async def signup(tasks: BackgroundTasks, fail: bool = False) -> dict[str, str]:
        tasks.add_task(send_mail, fail)
        return {"ok": "yes"}

    return app


async def test_line_is_written_before_background_tasks_run(events: list[dict[str, Any]]) -> None:
    """A slow background task does not delay the line, nor count in its duration."""
    seen: list[list[dict[str, Any]]] = []
    async with client(background_app(seen, events)) as http:
        response = await http.post("/signup", headers={"X-Request-ID": "bg-1"})
    assert response.status_code == 200
    (before,) = seen
    (line,) = before
    assert (line["request_id"], line["status"], line["level"]) == ("bg-1", 200, "info")
    assert line["duration_ms"] < 300
    assert access(events) == [line]  # and nothing more once the task is done


async def test_background_task_failure_gets_its_own_line(events: list[dict[str, Any]]) -> None:
    """The response went out fine; the task's failure is one more error line, with the id."""
    seen: list[list[dict[str, Any]]] = []
    async with client(background_app(seen, events), raise_app_exceptions=False) as http:
        response = await http.post("/signup?fail=true", headers={"X-Request-ID": "bg-2"})
    assert response.status_code == 200
    request_line, failure = access(events)
    assert (request_line["msg"], request_line["status"], request_line["level"]) == (
        "request",
        200,
        "info",
    )
    assert failure["msg"] == "error after response"
    assert (failure["level"], failure["request_id"], failure["status"]) == ("error", "bg-2", 200)
    assert failure["route"] == "/signup"
    assert failure["exception"]["type"] == "ConnectionError"
    assert failure["exception"]["message"] == "smtp is down"


async def test_line_is_written_while_a_real_server_runs_the_background_task(
    events: list[dict[str, Any]],
) -> None:
    """Under uvicorn the client has its response and the line exists, task still running."""
    release = asyncio.Event()
    app = FastAPI()
    app.add_middleware(RequestLogMiddleware)

    async def wait_for_release() -> None:
        await release.wait()

    @app.get("/later")
    async def later(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(wait_for_release)
        return {"ok": "yes"}

    async with served(app) as address, httpx.AsyncClient() as http:
        response = await http.get(f"http://{address}/later")
        assert response.status_code == 200
        lines = access(events)
        release.set()
    (line,) = lines
    assert (line["path"], line["status"]) == ("/later", 200)


async def test_a_5xx_response_followed_by_an_exception_is_one_line(
    events: list[dict[str, Any]],
) -> None:
    """Starlette's error middleware sends a 500 then re-raises: one line, with the error."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def unavailable(request: Request) -> Response:
        return Response("busy", status_code=503)

    routes = [Route("/boom", boom), Route("/busy", unavailable)]
    app = RequestLogMiddleware(Starlette(routes=routes))
    async with client(app) as http:
        await http.get("/boom")
        assert (await http.get("/busy")).status_code == 503
    boom_line, busy_line = access(events)
    assert boom_line["exception"]["message"] == "boom"
    assert (busy_line["status"], busy_line["level"]) == (503, "error")
    assert "exception" not in busy_line


# -- the pipeline in the app's state --------------------------------------------------------------


async def test_lifespan_puts_the_pipeline_in_app_state(tmp_path: Path) -> None:
    """request.app.state.alog.statistics() works in a handler: a /stats endpoint is one line."""
    app = FastAPI(lifespan=lifespan(destination=alog.File(tmp_path / "log.jsonl")))
    app.add_middleware(RequestLogMiddleware)

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        statistics = request.app.state.alog.statistics()
        return {"accepted": statistics.accepted, "state": statistics.state}

    async with app.router.lifespan_context(app), client(app) as http:
        await http.get("/stats")
        assert app.state.alog is alog._state.pipeline
        body = (await http.get("/stats")).json()
    assert body == {"accepted": 1, "state": "running"}  # the first request's access line


async def test_websocket_line_takes_the_same_options(events: list[dict[str, Any]]) -> None:
    """skip, fields, request_fields, the query and the id header apply to sessions too."""
    app = FastAPI()
    app.add_middleware(
        RequestLogMiddleware,
        skip=lambda scope: scope["path"] == "/ws/quiet",
        fields=lambda scope, response: {"scheme": scope["scheme"]},
        request_id_header="X-Correlation-ID",
        log_query=True,
    )

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        request_fields(room=room)
        await websocket.accept()
        await websocket.close()

    async with served(app) as address, aiohttp.ClientSession() as session:
        for room in ("quiet", "lobby"):
            socket = await session.ws_connect(
                f"ws://{address}/ws/{room}?v=2", headers={"X-Correlation-ID": f"ws-{room}"}
            )
            assert socket._response.headers["x-correlation-id"] == f"ws-{room}"
            await socket.receive()
            await socket.close()
    (line,) = [event for event in events if event["msg"] == "websocket"]
    assert (line["request_id"], line["room"], line["query"]) == ("ws-lobby", "lobby", "v=2")
    assert line["scheme"] == "ws"


async def test_a_line_whose_level_is_off_is_not_built(tmp_path: Path) -> None:
    """With access info lines off, a 2xx costs no line and no fields= call; a 4xx still has
    both."""
    calls: list[str] = []

    def fields(scope: dict[str, Any], response: dict[str, Any] | None) -> dict[str, object]:
        calls.append(scope["path"])
        return {}

    path = tmp_path / "log.jsonl"
    async with alog.run(alog.File(path), level="warning"), client(make_app(fields=fields)) as http:
        await http.get("/items/1")
        await http.get("/items/0")
    assert calls == ["/items/0"]
    assert [event["path"] for event in read_events(path)] == ["/items/0"]
