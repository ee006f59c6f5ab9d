"""A FastAPI app where every line on stdout is alog JSON, uvicorn's own lines included.

Run it with uvicorn's access log off (alog writes the access lines)::

    uvicorn fastapi_app:app --no-access-log
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse

import alog
import alog.stdlib
from alog.integrations.asgi import RequestLogMiddleware, lifespan

# uvicorn's, asyncio's and every other library's logging records join alog's queue.
alog.stdlib.install()

log = alog.get_logger(__name__)

app = FastAPI(lifespan=lifespan(level="info", write_timeout=5.0))
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
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000, access_log=False)
