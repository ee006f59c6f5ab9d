"""Type-checked, never run: the integrations' API as users write it (mypy --strict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

import alog
from alog.integrations import PROMETHEUS_CONTENT_TYPE, prometheus_text, request_fields
from alog.integrations import aiohttp as alog_aiohttp
from alog.integrations.asgi import RequestLogMiddleware, lifespan


def scope_fields(scope: Any, response: Any) -> Mapping[str, object]:
    return {"http_version": scope["http_version"]}


def fastapi_app() -> FastAPI:
    app = FastAPI(lifespan=lifespan(fields={"service": "shop"}))
    app.add_middleware(
        RequestLogMiddleware,
        skip={"/health"},
        fields=scope_fields,
        request_id_header="X-Correlation-ID",
        new_request_id=lambda: "id",
        log_query=True,
        log_user_agent=True,
    )

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        statistics: alog.Statistics = request.app.state.alog.statistics()
        return PlainTextResponse(prometheus_text(statistics), media_type=PROMETHEUS_CONTENT_TYPE)

    return app


def aiohttp_app() -> web.Application:
    def fields(request: web.Request, response: web.StreamResponse | None) -> dict[str, object]:
        return {"secure": request.secure}

    app = web.Application()
    alog_aiohttp.setup(app, skip=lambda request: request.path == "/health", fields=fields)
    statistics: alog.Statistics = app[alog_aiohttp.ALOG_KEY].statistics()
    text: str = prometheus_text(statistics, prefix="api", labels={"worker": "1"})
    added: bool = request_fields(user_id=7)
    del text, added
    return app
