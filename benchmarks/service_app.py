"""The service benchmark's app: one FastAPI endpoint under uvicorn, logging with one logger.

Run by benchmarks/service.py, configured by environment variables:

- ``ALOG_BENCH_LOGGER``: ``none`` (no logging, no middleware), ``alog``, ``alog-filtered``
  (alog's middleware and calls, the level at ``warning`` so that every call is filtered),
  ``structlog``, ``stdlib`` or ``loguru``;
- ``ALOG_BENCH_DEST``: ``stdout``, ``file`` (``ALOG_BENCH_PATH``; the logger's own file writer:
  ``alog.File``, structlog's ``BytesLogger`` on an open file, ``logging.FileHandler``,
  ``logger.add(path)``) or ``tcp`` (alog only: ``alog.TCP`` to 127.0.0.1 at
  ``ALOG_BENCH_TCP_PORT``).

Every request logs two events of four fields each in the endpoint, and one access line from a
middleware when the response has ended: alog's ``RequestLogMiddleware``, or for the peers a
pure ASGI middleware of the same shape (method, path, status, duration_ms, client,
response_bytes). Each line carries the request's ``X-Request-ID``: alog binds it (the
middleware does), the peers pass it as a field from a context variable, which is cheaper
than their context-merging processors.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

LOGGER = os.environ.get("ALOG_BENCH_LOGGER", "none")
DEST = os.environ.get("ALOG_BENCH_DEST", "stdout")
PATH = os.environ.get("ALOG_BENCH_PATH", "")
TCP_PORT = int(os.environ.get("ALOG_BENCH_TCP_PORT", "0"))

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class AccessLog:
    """The peers' access-line middleware: one line per request when its response has ended."""

    def __init__(self, app: ASGIApp, info: Callable[..., None]) -> None:
        self.app = app
        self.info = info

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0
        size = 0

        async def send_logged(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            request_id.reset(token)
        client = scope.get("client")
        self.info(
            "request",
            request_id=rid,
            method=scope["method"],
            path=scope["path"],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1e3, 3),
            client=client[0] if client else None,
            response_bytes=size,
        )


def _alog_app() -> FastAPI:
    import alog
    from alog.integrations.asgi import RequestLogMiddleware, lifespan

    destination: Any
    if DEST == "stdout":
        destination = alog.Stdout()
    elif DEST == "file":
        destination = alog.File(PATH)
    elif DEST == "tcp":
        destination = alog.TCP(host="127.0.0.1", port=TCP_PORT)
    else:
        raise SystemExit(f"unknown destination {DEST!r}")
    level = "warning" if LOGGER == "alog-filtered" else "info"
    app = FastAPI(lifespan=lifespan(destination=destination, level=level))
    app.add_middleware(RequestLogMiddleware)
    log = alog.get_logger("app")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        log.info("item requested", item_id=item_id, user="someone", cache="miss", attempt=1)
        log.info("item loaded", item_id=item_id, rows=3, source="db", duration_ms=1.25)
        return {"item_id": item_id, "name": "widget"}

    return app


def _keyword_app(log: Any, lifespan: Any = None) -> FastAPI:
    """structlog and loguru: ``log.info(msg, **fields)``."""
    app = FastAPI(lifespan=lifespan)
    app.add_middleware(AccessLog, info=log.info)  # type: ignore[arg-type]

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        rid = request_id.get()
        log.info(
            "item requested",
            request_id=rid,
            item_id=item_id,
            user="someone",
            cache="miss",
            attempt=1,
        )
        log.info(
            "item loaded", request_id=rid, item_id=item_id, rows=3, source="db", duration_ms=1.25
        )
        return {"item_id": item_id, "name": "widget"}

    return app


def _structlog_app() -> FastAPI:
    import orjson
    import structlog

    # The harness's fastest structlog JSON configuration (benchmarks/contenders.py).
    file = open(PATH, "wb") if DEST == "file" else sys.stdout.buffer  # noqa: SIM115
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(20),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(file=file),
    )
    return _keyword_app(structlog.get_logger().bind())


def _loguru_app() -> FastAPI:
    from loguru import logger

    logger.remove()
    logger.add(PATH if DEST == "file" else sys.stdout, serialize=True, level="INFO")

    @asynccontextmanager
    async def complete(app: Any) -> AsyncIterator[None]:
        yield
        await logger.complete()

    return _keyword_app(logger, complete)


def _stdlib_app() -> FastAPI:
    import logging

    from contenders import StdlibJsonFormatter

    log = logging.getLogger("bench")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler: logging.Handler
    if DEST == "file":
        handler = logging.FileHandler(PATH, mode="w", encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(StdlibJsonFormatter())
    log.addHandler(handler)

    def access(msg: str, **fields: Any) -> None:
        log.info(msg, extra=fields)

    app = FastAPI()
    app.add_middleware(AccessLog, info=access)  # type: ignore[arg-type]

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        rid = request_id.get()
        log.info(
            "item requested",
            extra={
                "request_id": rid,
                "item_id": item_id,
                "user": "someone",
                "cache": "miss",
                "attempt": 1,
            },
        )
        log.info(
            "item loaded",
            extra={
                "request_id": rid,
                "item_id": item_id,
                "rows": 3,
                "source": "db",
                "duration_ms": 1.25,
            },
        )
        return {"item_id": item_id, "name": "widget"}

    return app


def _none_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"item_id": item_id, "name": "widget"}

    return app


BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "none": _none_app,
    "alog": _alog_app,
    "alog-filtered": _alog_app,
    "structlog": _structlog_app,
    "stdlib": _stdlib_app,
    "loguru": _loguru_app,
}
if LOGGER not in BUILDERS:
    raise SystemExit(f"unknown logger {LOGGER!r}; known: {', '.join(BUILDERS)}")
if DEST == "tcp" and not LOGGER.startswith("alog"):
    raise SystemExit(f"{LOGGER} has no JSON-lines TCP destination here")
app = BUILDERS[LOGGER]()
