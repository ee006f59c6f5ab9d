"""A FastAPI app where every line on stdout is alog JSON, uvicorn's own lines included.

Each server set-up is one command (docs/servers.md says what goes where)::

    python fastapi_app.py      # alog.integrations.uvicorn.run(); PORT=8000, WORKERS=1 by default
    uvicorn fastapi_app:app --no-access-log
    gunicorn fastapi_app:app -w 2 -k uvicorn.workers.UvicornWorker \
        --logger-class alog.integrations.gunicorn.Logger
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse

import alog
import alog.integrations.uvicorn
import alog.stdlib
from alog.integrations.asgi import RequestLogMiddleware, lifespan

# uvicorn's, asyncio's and every other library's logging records join alog's queue.
alog.stdlib.install()

log = alog.get_logger(__name__)

# Every event says which worker wrote it: the pid is read in the worker, after any fork.
app = FastAPI(lifespan=lifespan(level="info", write_timeout=5.0, fields=alog.process_fields("pid")))
app.add_middleware(RequestLogMiddleware, exclude_paths={"/health"})

ITEMS = {1: "hammer", 2: "saw"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, object]:
    if item_id not in ITEMS:
        log.warning("unknown item", item_id=item_id)
        raise HTTPException(status_code=404, detail="no such item")
    log.info("item found", item_id=item_id)
    return {"id": item_id, "name": ITEMS[item_id]}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for number in range(3):
            await asyncio.sleep(0.05)
            yield f"{number}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("the database is on fire")


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    workers = int(os.environ.get("WORKERS", "1"))
    # Several workers import the app by name; one serves this very object.
    target = "fastapi_app:app" if workers > 1 else app
    alog.integrations.uvicorn.run(target, host="127.0.0.1", port=port, workers=workers)
