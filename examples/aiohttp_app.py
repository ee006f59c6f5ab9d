"""An aiohttp app logging with alog: one JSON access line per request, bound request ids.

python aiohttp_app.py        # PORT=8080 by default; PORT=0 picks a free one
"""

from __future__ import annotations

import os
import socket
import sys

from aiohttp import web

import alog
from alog.integrations import aiohttp as alog_aiohttp

log = alog.get_logger(__name__)

ITEMS = {1: "hammer", 2: "saw"}


async def get_item(request: web.Request) -> web.Response:
    item_id = int(request.match_info["item_id"])
    if item_id not in ITEMS:
        log.warning("unknown item", item_id=item_id)
        raise web.HTTPNotFound(text="no such item")
    log.info("item found", item_id=item_id)
    return web.json_response({"id": item_id, "name": ITEMS[item_id]})


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for number in range(3):
        await response.write(f"{number}\n".encode())
    await response.write_eof()
    return response


async def fail(request: web.Request) -> web.Response:
    raise RuntimeError("the database is on fire")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/items/{item_id}", get_item)
    app.router.add_get("/stream", stream)
    app.router.add_get("/fail", fail)
    alog_aiohttp.setup(app, level="info", write_timeout=5.0)
    return app


def main() -> None:
    sock = socket.create_server(("127.0.0.1", int(os.environ.get("PORT", "8080"))))
    print(f"listening on port {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    # access_log=None: alog's middleware writes the access lines.
    web.run_app(make_app(), sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
