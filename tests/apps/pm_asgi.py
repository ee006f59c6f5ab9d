"""A Starlette app for tests/test_process_managers.py: alog on stdout, under any server.

Environment: ``BOOTS``, a file each process appends its pid to when it imports the app (a
worker boot); ``REQUIRED=0`` makes stdout an optional destination. Each process logs
``serving`` (with its pid) once its pipeline runs; ``/slow`` (its first line:
the pid) never ends; ``/stats``
answers the pipeline's statistics. Run as a script, it serves itself with ``uvicorn.run``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

import alog
import alog.stdlib
from alog.integrations.asgi import RequestLogMiddleware, lifespan

with open(os.environ["BOOTS"], "a") as boots:
    boots.write(f"{os.getpid()}\n")

alog.stdlib.install()
stdout = alog.Stdout(required=os.environ.get("REQUIRED", "1") == "1")
log = alog.get_logger("app")


async def root(request: Request) -> PlainTextResponse:
    log.info("hello")
    return PlainTextResponse(str(os.getpid()))


async def slow(request: Request) -> StreamingResponse:
    """A response that never ends: a graceful shutdown would wait for it forever."""

    async def forever() -> AsyncIterator[bytes]:
        yield f"{os.getpid()}\n".encode()
        while True:
            yield b"."
            await asyncio.sleep(0.2)

    return StreamingResponse(forever())


async def stats(request: Request) -> JSONResponse:
    pipeline = alog._state.pipeline
    assert pipeline is not None
    (destination,) = pipeline.statistics().destinations
    return JSONResponse(
        {
            "pid": os.getpid(),
            "state": destination.state,
            "undelivered": destination.undelivered,
            "write_errors": destination.write_errors,
            "last_error": destination.last_error,
        }
    )


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[None]:
    log.info("serving", pid=os.getpid())
    yield


app = RequestLogMiddleware(
    Starlette(
        routes=[Route("/", root), Route("/slow", slow), Route("/stats", stats)],
        lifespan=lifespan(serving, destination=stdout, write_timeout=1.0, exit_timeout=1.5),
    )
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
