"""The aiohttp middleware and set-up: a real in-process server, and web.run_app subprocesses."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import alog
from alog.integrations.aiohttp import setup
from alog.testing import capture_logs

from ._servers import AIOHTTP_READY, ServerProcess, refuses_connections
from .conftest import read_events

EXAMPLES = Path(__file__).parent.parent / "examples"


def make_app(path: Path, **options: Any) -> web.Application:
    log = alog.get_logger("app")

    async def item(request: web.Request) -> web.Response:
        log.info("item", item_id=request.match_info["item_id"])
        if request.match_info["item_id"] == "0":
            raise web.HTTPNotFound(text="no such item")
        return web.json_response({"id": request.match_info["item_id"]})

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(4):
            await asyncio.sleep(0.05)
            await response.write(b"0123456789")
        await response.write_eof()
        return response

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        message = await socket.receive_str()
        await socket.send_str(message.upper())
        await socket.close(code=4001)
        return socket

    app = web.Application()
    app.router.add_get("/items/{item_id}", item)
    app.router.add_get("/boom", boom)
    app.router.add_get("/stream", stream)
    app.router.add_get("/health", health)
    app.router.add_get("/ws", ws)
    setup(app, destination=alog.File(path), **options)
    return app


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture(name="log_path")
def fixture_log_path(tmp_path: Path) -> Path:
    return tmp_path / "log.jsonl"


def access(path: Path) -> list[dict[str, Any]]:
    return [event for event in read_events(path) if event["logger"] == "access"]


async def test_setup_runs_the_pipeline_and_logs_each_request(log_path: Path) -> None:
    """One access line per request, with the id bound for the handler's own events."""
    async with served(make_app(log_path)) as client:
        response = await client.get("/items/5", headers={"X-Request-ID": "abc-5"})
        body = await response.read()
        assert response.headers["X-Request-ID"] == "abc-5"
    events = read_events(log_path)
    app_event = next(event for event in events if event["logger"] == "app")
    assert app_event["request_id"] == "abc-5"
    (line,) = access(log_path)
    assert {key: value for key, value in line.items() if key not in ("time", "duration_ms")} == {
        "level": "info",
        "logger": "access",
        "msg": "request",
        "request_id": "abc-5",
        "method": "GET",
        "path": "/items/5",
        "route": "/items/{item_id}",
        "status": 200,
        "client": "127.0.0.1",
        "response_bytes": len(body),
    }


@pytest.mark.parametrize("hostile", ["a b", "x;y", "<b>", "é", "a" * 129])
async def test_unsafe_request_ids_are_replaced(log_path: Path, hostile: str) -> None:
    """A request id that could forge log lines is replaced by a fresh one, and echoed."""
    async with served(make_app(log_path)) as client:
        response = await client.get("/items/1", headers={"X-Request-ID": hostile})
        rid = response.headers["X-Request-ID"]
    assert rid != hostile
    assert len(rid) == 32
    assert access(log_path)[0]["request_id"] == rid


async def test_levels_errors_streams_and_exclusions(log_path: Path) -> None:
    """4xx warn, exceptions are one error line with a 500, streams are timed to the end."""
    app = make_app(log_path, exclude_paths={"/health"})
    async with served(app) as client:
        assert (await client.get("/items/0")).status == 404
        failed = await client.get("/boom")
        assert failed.status == 500
        assert failed.headers["X-Request-ID"]
        streamed = await client.get("/stream")
        assert await streamed.read() == b"0123456789" * 4
        assert streamed.headers["X-Request-ID"]
        assert (await client.get("/health")).status == 200
    lines = {line["path"]: line for line in access(log_path)}
    assert set(lines) == {"/items/0", "/boom", "/stream"}
    assert (lines["/items/0"]["status"], lines["/items/0"]["level"]) == (404, "warning")
    error = lines["/boom"]
    assert (error["status"], error["level"]) == (500, "error")
    assert error["exception"]["message"] == "boom"
    assert error["exception"]["frames"][-1]["function"] == "boom"
    assert [event["level"] for event in read_events(log_path)].count("error") == 1
    assert lines["/stream"]["response_bytes"] == 40
    assert lines["/stream"]["duration_ms"] >= 150


async def test_headers_only_when_asked_and_redacted(log_path: Path) -> None:
    """Header logging is opt-in, and credentials are redacted."""
    app = make_app(log_path, log_headers=True, redact_headers={"X-Token"})
    async with served(app) as client:
        await client.get(
            "/items/1", headers={"Authorization": "secret", "X-Token": "secret", "X-Ok": "1"}
        )
    headers = access(log_path)[0]["headers"]
    assert headers["authorization"] == headers["x-token"] == "[redacted]"
    assert headers["x-ok"] == "1"
    assert "secret" not in log_path.read_text()


async def test_websocket_session_is_logged_when_it_closes(log_path: Path) -> None:
    """A WebSocket gets one line when the session ends, with its close code."""
    async with served(make_app(log_path)) as client:
        socket = await client.ws_connect("/ws")
        await socket.send_str("hi")
        assert await socket.receive_str() == "HI"
        await socket.receive()
        await socket.close()
    (line,) = [event for event in read_events(log_path) if event["msg"] == "websocket"]
    assert (line["status"], line["route"]) == (101, "/ws")
    assert line["close_code"] in (1000, 4001)  # aiohttp reports the code the peer echoed


async def test_capture_logs_inside_a_running_app(log_path: Path) -> None:
    """Users can assert on an aiohttp app's events with alog.testing once it has started."""
    async with served(make_app(log_path)) as client:
        with capture_logs() as events:
            await client.get("/items/2")
    assert [event["msg"] for event in events] == ["item", "request"]
    assert alog._state.pipeline is None


# -- under a real web.run_app ---------------------------------------------------------------


@pytest.fixture(name="example")
def fixture_example() -> Iterator[ServerProcess]:
    server = ServerProcess(
        [str(EXAMPLES / "aiohttp_app.py")],
        cwd=EXAMPLES,
        ready=AIOHTTP_READY,
        env={"PORT": "0"},
        stdout=subprocess.PIPE,
        read_stdout=True,
    )
    yield server
    server.kill()


async def test_aiohttp_example_under_run_app(example: ServerProcess) -> None:
    """The example, served by web.run_app, writes JSON access lines and stops cleanly."""
    url = example.url
    async with aiohttp.ClientSession(url) as session:
        async with session.get("/items/1", headers={"X-Request-ID": "req-7"}) as response:
            assert response.status == 200
        async with session.get("/stream") as response:
            assert await response.text() == "0\n1\n2\n"
        async with session.get("/fail") as response:
            assert response.status == 500
    assert await asyncio.to_thread(example.stop) == 0
    events = [json.loads(line) for line in example.stdout_lines()]
    lines = {event["path"]: event for event in events if event["logger"] == "access"}
    assert lines["/items/1"]["request_id"] == "req-7"
    assert lines["/items/1"]["route"] == "/items/{item_id}"
    assert lines["/stream"]["response_bytes"] == 6
    assert lines["/fail"]["exception"]["message"] == "the database is on fire"


FAILING_APP = """
import asyncio
import os
import socket
import sys
import alog
from aiohttp import web
from alog.integrations.aiohttp import setup

log = alog.get_logger("app")

async def root(request):
    return web.Response(text="ok")

async def spam(request):
    for i in range(5000):
        log.info("spam " + "x" * 100, i=i)
    return web.Response(text="ok")

async def slow(request):
    response = web.StreamResponse()
    await response.prepare(request)
    while True:
        await response.write(b".")
        await asyncio.sleep(0.2)

app = web.Application()
app.router.add_get("/", root)
app.router.add_get("/spam", spam)
app.router.add_get("/slow", slow)
options = {"write_timeout": 1.0, "exit_timeout": 1.5}
if os.environ.get("DEST"):
    options["destination"] = alog.File(os.environ["DEST"])
setup(app, **options)
loop = None
if sys.argv[1] == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
sock = socket.create_server(("127.0.0.1", 0))
print(f"listening on port {sock.getsockname()[1]}", file=sys.stderr, flush=True)
web.run_app(app, sock=sock, access_log=None, print=None, loop=loop)
"""


@pytest.mark.parametrize(
    ("failure", "loop"),
    [
        ("dev_full", "asyncio"),
        ("dev_full", "uvloop"),
        ("dead_reader", "asyncio"),
        ("stalled_pipe", "uvloop"),
        ("busy_server", "asyncio"),
    ],
)
def test_writer_failure_stops_run_app_with_status_1(
    tmp_path: Path, loop: str, failure: str
) -> None:
    """web.run_app stops serving, runs the app's cleanup and exits 1 when the writer dies."""
    (tmp_path / "failing_app.py").write_text(textwrap.dedent(FAILING_APP))
    env = {"DEST": "/dev/full"} if failure in ("dev_full", "busy_server") else {}
    server = ServerProcess(
        ["failing_app.py", loop],
        cwd=tmp_path,
        ready=AIOHTTP_READY,
        env=env,
        stdout=subprocess.DEVNULL if env else subprocess.PIPE,
    )
    try:
        port = server.port
        if failure == "dead_reader":
            assert server.proc.stdout is not None
            server.proc.stdout.close()
        slow = None
        if failure == "busy_server":
            slow = socket.create_connection(("127.0.0.1", port))
            slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            slow.recv(100)
        started = time.monotonic()
        with urllib.request.urlopen(  # noqa: S310 - an http:// URL built here
            f"{server.url}{'/spam' if failure == 'stalled_pipe' else '/'}", timeout=30
        ) as response:
            assert response.status == 200
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


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"


async def test_traceparent_gives_the_ids_when_no_span_was_made(log_path: Path) -> None:
    """otel=True, no instrumentation: the caller's trace and span ids on every line."""
    async with served(make_app(log_path, otel=True)) as client:
        await (await client.get("/items/5", headers={"traceparent": TRACEPARENT})).read()
        await (await client.get("/items/6")).read()
    events = read_events(log_path)
    app_events = [e for e in events if e["logger"] == "app"]
    lines = [e for e in events if e["logger"] == "access"]
    expected = ["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "03"]
    for event in (app_events[0], lines[0]):
        assert [event["trace_id"], event["span_id"], event["trace_flags"]] == expected
    for event in (app_events[1], lines[1]):
        assert "trace_id" not in event


async def test_a_span_current_in_the_handler_wins_over_traceparent(log_path: Path) -> None:
    """A span made inside the handler (instrumentation, or by hand): its own ids."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("tests")
    log = alog.get_logger("app")
    seen: list[str] = []

    async def traced(request: web.Request) -> web.Response:
        with tracer.start_as_current_span("handler") as span:
            seen.append(f"{span.get_span_context().span_id:016x}")
            log.info("in span")
        return web.Response(text="ok")

    app = make_app(log_path, otel=True)
    app.router.add_get("/traced", traced)
    async with served(app) as client:
        await (await client.get("/traced", headers={"traceparent": TRACEPARENT})).read()
    (event,) = [e for e in read_events(log_path) if e["msg"] == "in span"]
    assert event["span_id"] == seen[0]
    assert event["trace_id"] != "0af7651916cd43dd8448eb211c80319c"  # a new root span


# -- the access line's options ---------------------------------------------------------------


@pytest.mark.parametrize(
    "skip",
    [
        pytest.param({"/health", "/boom"}, id="paths"),
        pytest.param(lambda request: request.path in ("/health", "/boom"), id="predicate"),
    ],
)
async def test_skip_takes_paths_or_a_predicate_and_failures_are_still_logged(
    log_path: Path, skip: Any
) -> None:
    """Health checks stay quiet either way; a failing one is still reported."""
    async with served(make_app(log_path, skip=skip)) as client:
        await (await client.get("/health")).read()
        await (await client.get("/boom")).read()
        await (await client.get("/items/1")).read()
    assert [line["path"] for line in access(log_path)] == ["/boom", "/items/1"]


def test_skip_and_exclude_paths_are_one_option(log_path: Path) -> None:
    """Both names at once is a mistake caught when the app is built."""
    with pytest.raises(TypeError, match="not both"):
        make_app(log_path, skip={"/a"}, exclude_paths={"/b"})


async def test_fields_request_id_header_query_and_user_agent(log_path: Path) -> None:
    """The same options as the ASGI middleware, given aiohttp's request and response."""

    def fields(request: web.Request, response: web.StreamResponse | None) -> dict[str, object]:
        assert response is not None
        return {"secure": request.secure, "content_type": response.content_type}

    made = iter(["svc-1"])
    app = make_app(
        log_path,
        fields=fields,
        request_id_header="X-Correlation-ID",
        new_request_id=lambda: next(made),
        log_query=True,
        log_user_agent=True,
    )
    async with served(app) as client:
        first = await client.get("/items/1?page=2", headers={"User-Agent": "probe/1.0"})
        await first.read()
        second = await client.get("/stream", headers={"X-Correlation-ID": "corr-2"})
        await second.read()
    assert first.headers["X-Correlation-ID"] == "svc-1"
    assert "X-Request-ID" not in first.headers
    assert second.headers["X-Correlation-ID"] == "corr-2"
    one, two = access(log_path)
    assert (one["request_id"], one["query"], one["user_agent"]) == ("svc-1", "page=2", "probe/1.0")
    assert (one["secure"], one["content_type"]) == (False, "application/json")
    assert (two["request_id"], two["query"], two["content_type"]) == (
        "corr-2",
        "",
        "application/octet-stream",
    )


async def test_fields_callback_that_raises_is_reported_on_the_line(log_path: Path) -> None:
    """The request is served and logged; the line names the callback's error."""

    def fields(request: web.Request, response: web.StreamResponse | None) -> dict[str, object]:
        raise ValueError("bad field")

    async with served(make_app(log_path, fields=fields)) as client:
        assert (await client.get("/items/1")).status == 200
    (line,) = access(log_path)
    assert line["fields_error"] == "ValueError: bad field"


async def test_setup_puts_the_pipeline_at_app_alog(log_path: Path) -> None:
    """request.app["alog"].statistics() works in a handler; the AppKey is the same object."""
    from alog.integrations.aiohttp import ALOG_KEY

    async def stats(request: web.Request) -> web.Response:
        statistics = request.app["alog"].statistics()
        assert request.app[ALOG_KEY] is request.app["alog"]
        return web.json_response({"accepted": statistics.accepted, "state": statistics.state})

    app = make_app(log_path)
    app.router.add_get("/stats", stats)
    with pytest.raises(RuntimeError, match="not started"):
        app[ALOG_KEY].statistics()
    async with served(app) as client:
        await (await client.get("/stats")).read()
        body = await (await client.get("/stats")).json()
        assert app[ALOG_KEY].pipeline is alog._state.pipeline
    assert body == {"accepted": 1, "state": "running"}  # the first request's access line


async def test_setup_fields_as_a_mapping_are_alog_runs(log_path: Path) -> None:
    """setup(app, fields={...}) still means alog.run's process-wide fields; a callable is
    the access line's."""
    async with served(make_app(log_path, fields={"service": "shop"})) as client:
        await (await client.get("/items/1")).read()
    events = read_events(log_path)
    assert {event["msg"] for event in events} == {"item", "request"}
    assert all(event["service"] == "shop" for event in events)
