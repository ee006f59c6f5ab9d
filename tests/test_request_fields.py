"""request_fields(): fields for the current request's access line, from wherever the app runs.

Also the context rules around a request (issue 13, item 7), each shown by a test: what
``alog.bound()`` reaches from a lifespan, a dependency or an executor, and the tool to use
where it does not.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import Depends, FastAPI
from starlette.applications import Starlette

import alog
from alog.integrations import aiohttp as alog_aiohttp
from alog.integrations import request_fields
from alog.integrations.asgi import RequestLogMiddleware, lifespan
from alog.testing import capture_logs

from .conftest import read_events

pytestmark = pytest.mark.asyncio

log = alog.get_logger("app")


@pytest.fixture(name="events")
def fixture_events() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as events:
        yield events


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def by_msg(events: list[dict[str, Any]], msg: str) -> list[dict[str, Any]]:
    return [event for event in events if event["msg"] == msg]


def sync_dependency() -> None:
    request_fields(sync_dependency=True)  # FastAPI runs this in a threadpool


async def async_dependency() -> None:
    request_fields(async_dependency=True)


def sync_yield_dependency() -> Iterator[None]:
    request_fields(sync_yield=True)
    with alog.bound(bound_in_sync_yield=True):
        yield


async def async_yield_dependency() -> AsyncIterator[None]:
    request_fields(async_yield=True)
    with alog.bound(bound_in_async_yield=True):
        yield


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestLogMiddleware)
    dependencies = [
        Depends(sync_dependency),
        Depends(async_dependency),
        Depends(sync_yield_dependency),
        Depends(async_yield_dependency),
    ]

    @app.get("/everywhere", dependencies=dependencies)
    async def everywhere() -> dict[str, object]:
        request_fields(handler=True)
        log.info("in handler")

        async def in_task() -> None:
            request_fields(task=True)

        await asyncio.create_task(in_task())
        await asyncio.to_thread(request_fields, to_thread=True)
        loop = asyncio.get_running_loop()
        lost = await loop.run_in_executor(None, functools.partial(request_fields, executor=True))
        kept = await loop.run_in_executor(
            None, contextvars.copy_context().run, functools.partial(request_fields, copied=True)
        )
        return {"executor": lost, "copied": kept}

    @app.get("/sync")
    def sync_handler(user_id: int) -> dict[str, str]:
        request_fields(user_id=user_id)  # a def handler runs in the threadpool too
        return {"ok": "yes"}

    return app


async def test_fields_from_dependencies_handler_tasks_and_threads_reach_the_line(
    events: list[dict[str, Any]],
) -> None:
    """Sync and async dependencies, yield ones, the handler, a task, to_thread: all arrive."""
    async with client(make_app()) as http:
        response = await http.get("/everywhere")
    assert response.json() == {"executor": False, "copied": True}
    (line,) = by_msg(events, "request")
    added = {key: line.get(key) for key in line if key not in ("time", "duration_ms")}
    for key in (
        "sync_dependency",
        "async_dependency",
        "sync_yield",
        "async_yield",
        "handler",
        "task",
        "to_thread",
        "copied",
    ):
        assert added[key] is True, key
    assert "executor" not in line  # run_in_executor does not copy the context: Python's rule


async def test_a_sync_handler_in_the_threadpool_adds_fields(events: list[dict[str, Any]]) -> None:
    """A def handler (FastAPI's threadpool) reaches the line."""
    async with client(make_app()) as http:
        await http.get("/sync?user_id=7")
    (line,) = by_msg(events, "request")
    assert line["user_id"] == 7


async def test_fields_belong_to_their_own_request(events: list[dict[str, Any]]) -> None:
    """Concurrent requests never see each other's fields."""
    async with client(make_app()) as http:
        await asyncio.gather(*(http.get(f"/sync?user_id={n}") for n in range(20)))
    lines = by_msg(events, "request")
    assert sorted(line["user_id"] for line in lines) == list(range(20))
    assert all(line["path"] == "/sync" for line in lines)


async def test_request_fields_outside_a_request_does_nothing() -> None:
    """Called where no request is handled (a script, a lost context), it says so."""
    assert request_fields(user_id=1) is False


async def test_aiohttp_handler_and_threads_add_fields(tmp_path: Path) -> None:
    """The same helper under aiohttp: the handler, to_thread, and not run_in_executor."""
    path = tmp_path / "log.jsonl"

    async def handler(request: web.Request) -> web.Response:
        request_fields(user_id=7)
        await asyncio.to_thread(request_fields, to_thread=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(request_fields, executor=True))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    alog_aiohttp.setup(app, destination=alog.File(path))
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        await (await http.get("/")).read()
    (line,) = [event for event in read_events(path) if event["logger"] == "access"]
    assert (line["user_id"], line["to_thread"]) == (7, True)
    assert "executor" not in line


# -- the context rules (issue 13, item 7) ------------------------------------------------------


async def test_yield_dependency_bound_reaches_the_handler_only_when_async(
    events: list[dict[str, Any]],
) -> None:
    """An async yield dependency runs in the request's context; a sync one in a thread's copy.

    What the async one binds is still bound when the response ends, so it is on the access
    line too. The sync one's context is a copy made by FastAPI's threadpool and thrown away:
    nothing can carry it back (use request_fields() for the line).
    """
    async with client(make_app()) as http:
        await http.get("/everywhere")
    (handler_event,) = by_msg(events, "in handler")
    (line,) = by_msg(events, "request")
    for event in (handler_event, line):
        assert event["bound_in_async_yield"] is True
        assert "bound_in_sync_yield" not in event


async def test_bound_in_a_lifespan_does_not_reach_requests_but_fields_do(
    tmp_path: Path,
) -> None:
    """A lifespan runs in a task of its own: what it binds stays there. Process-wide fields
    belong in lifespan(fields=...) (alog.run's fields=), which every event carries."""
    path = tmp_path / "log.jsonl"

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        with alog.bound(bound_in_lifespan=True):
            log.info("started")
            yield

    app = FastAPI(
        lifespan=lifespan(app_lifespan, destination=alog.File(path), fields={"service": "api"})
    )
    app.add_middleware(RequestLogMiddleware)

    @app.get("/")
    async def root() -> dict[str, str]:
        log.info("in handler")
        return {"ok": "yes"}

    # The lifespan in a task of its own, as servers run it; requests in this one.
    ready = asyncio.Event()
    done = asyncio.Event()

    async def serve_lifespan() -> None:
        async with app.router.lifespan_context(app):
            ready.set()
            await done.wait()

    task = asyncio.create_task(serve_lifespan())
    await ready.wait()
    async with client(app) as http:
        await http.get("/")
    done.set()
    await task
    events = {event["msg"]: event for event in read_events(path)}
    assert events["started"]["bound_in_lifespan"] is True
    for msg in ("in handler", "request"):
        assert events[msg]["service"] == "api"
        assert "bound_in_lifespan" not in events[msg]
    assert events["started"]["service"] == "api"


async def test_run_in_executor_loses_the_context_and_copy_context_keeps_it(
    events: list[dict[str, Any]],
) -> None:
    """Python's rule: loop.run_in_executor runs f in the worker's own context, to_thread in a
    copy of the caller's. contextvars.copy_context().run(f) keeps the bound fields."""
    loop = asyncio.get_running_loop()
    with alog.bound(request_id="r-1"):
        await loop.run_in_executor(None, functools.partial(log.info, "executor"))
        await loop.run_in_executor(
            None, contextvars.copy_context().run, functools.partial(log.info, "copied")
        )
        await asyncio.to_thread(log.info, "to_thread")
    found = {event["msg"]: event.get("request_id") for event in events}
    assert found == {"executor": None, "copied": "r-1", "to_thread": "r-1"}


# -- the per-request context, as plain calls ------------------------------------------------------


async def test_open_request_sets_the_id_parent_and_holder_and_close_request_restores_them() -> None:
    """What the middlewares set per request (one call in, one out, instead of three context
    managers): the request id over what is bound already, the ``traceparent`` ids when the
    header is valid, and the holder of request_fields(); all restored after."""
    from alog import _traceparent
    from alog.integrations._requests import Added, close_request, open_request

    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with alog.bound(tenant="t-1"):
        added = Added()
        tokens = open_request("r-1", header, added)
        try:
            assert alog.current_context() == {"tenant": "t-1", "request_id": "r-1"}
            assert _traceparent.remote_parent.get() == (
                "0af7651916cd43dd8448eb211c80319c",
                "b7ad6b7169203331",
                "01",
            )
            assert request_fields(user="u-1")
            assert added == {"user": "u-1"}
        finally:
            close_request(tokens)
        assert alog.current_context() == {"tenant": "t-1"}
        assert _traceparent.remote_parent.get() is None
        assert not request_fields(user="u-2")


async def test_open_request_with_an_invalid_traceparent_sets_no_parent() -> None:
    """An invalid or missing header leaves the remote parent as it was (none)."""
    from alog import _traceparent
    from alog.integrations._requests import Added, close_request, open_request

    for header in (None, "not-a-traceparent", "00-" + "0" * 32 + "-b7ad6b7169203331-01"):
        tokens = open_request("r-2", header, Added())
        assert _traceparent.remote_parent.get() is None
        assert alog.current_context() == {"request_id": "r-2"}
        close_request(tokens)
        assert alog.current_context() == {}


async def test_a_request_id_never_overwrites_a_core_key_of_the_event() -> None:
    """The id is bound as bound() binds it: under its own key, beside the core keys."""
    from alog.integrations._requests import Added, close_request, open_request

    with capture_logs() as events:
        tokens = open_request("r-3", None, Added())
        try:
            log.info("hello")
        finally:
            close_request(tokens)
    assert events[0]["request_id"] == "r-3"
    assert events[0]["msg"] == "hello"


async def test_duration_ms_is_rounded_to_the_microsecond() -> None:
    """The access line's duration, in milliseconds with three decimals (as round() gives)."""
    from alog.integrations._requests import milliseconds

    assert milliseconds(0.0) == 0.0
    assert milliseconds(0.0001234) == 0.123
    assert milliseconds(0.0001236) == 0.124
    assert milliseconds(1.5) == 1500.0
    assert milliseconds(12.3456789) == 12345.679
    for micros in range(0, 5_000_000, 997):
        seconds = micros / 1e6 + 3e-8
        assert milliseconds(seconds) == round(seconds * 1000.0, 3)
