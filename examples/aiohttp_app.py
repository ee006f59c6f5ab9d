"""An aiohttp app logging with alog: one JSON access line per request, bound request ids.

Each server set-up is one command (docs/servers.md says what goes where)::

    python aiohttp_app.py    # alog's run_app(); PORT=8080 by default, PORT=0 picks a free one
    gunicorn 'aiohttp_app:make_app()' -w 2 -k aiohttp.GunicornWebWorker \
        --logger-class alog.integrations.gunicorn.Logger
"""

from __future__ import annotations

import os

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
    # Every event says which worker wrote it: the pid is read in the worker, after any fork.
    alog_aiohttp.setup(app, level="info", write_timeout=5.0, fields=alog.process_fields("pid"))
    return app


def main() -> None:
    # No banner and no aiohttp access log: "Running on ..." is an alog event, and alog's
    # middleware writes the access lines.
    alog_aiohttp.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))


if __name__ == "__main__":
    main()
