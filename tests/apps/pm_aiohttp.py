"""An aiohttp app for tests/test_process_managers.py: alog on stdout, under any server.

The same environment and endpoints as ``pm_asgi.py``. ``app`` is what gunicorn's
``aiohttp.GunicornWebWorker`` serves; run as a script, it serves itself with
``web.run_app`` on a socket of its own, and says its port on stderr.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

import alog
import alog.stdlib
from alog.integrations.aiohttp import setup

with open(os.environ["BOOTS"], "a") as boots:
    boots.write(f"{os.getpid()}\n")

alog.stdlib.install()
stdout = alog.Stdout(required=os.environ.get("REQUIRED", "1") == "1")
log = alog.get_logger("app")


async def root(request: web.Request) -> web.Response:
    log.info("hello")
    return web.Response(text=str(os.getpid()))


async def slow(request: web.Request) -> web.StreamResponse:
    """A response that never ends: a graceful shutdown would wait for it forever."""
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(f"{os.getpid()}\n".encode())
    while True:
        await response.write(b".")
        await asyncio.sleep(0.2)


async def stats(request: web.Request) -> web.Response:
    pipeline = alog._state.pipeline
    assert pipeline is not None
    (destination,) = pipeline.statistics().destinations
    return web.json_response(
        {
            "pid": os.getpid(),
            "state": destination.state,
            "undelivered": destination.undelivered,
            "write_errors": destination.write_errors,
            "last_error": destination.last_error,
        }
    )


async def serving(app: web.Application) -> None:
    log.info("serving", pid=os.getpid())


app = web.Application()
setup(app, destination=stdout, write_timeout=1.0, exit_timeout=1.5)
app.router.add_get("/", root)
app.router.add_get("/slow", slow)
app.router.add_get("/stats", stats)
app.on_startup.append(serving)

if __name__ == "__main__":
    import socket
    import sys

    sock = socket.create_server(("127.0.0.1", 0))
    print(f"listening on port {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    web.run_app(app, sock=sock, access_log=None, print=None)
