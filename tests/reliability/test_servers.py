"""SIGTERM under real servers: uvicorn and aiohttp handle the signal, alog drains on their way out.

The pipeline runs in a task of its own for the life of the app (see shared SERVER-FACTS: wrapping
the server's own task in ``alog.run`` cancels it by accident on a writer failure). The servers
listen on 127.0.0.1 with an ephemeral port; no request is needed to prove the drain.
"""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import Pipe, PipeReader, Spawn, parse_lines

PIPELINE_TASK = """
import asyncio, sys
import alog

log = alog.get_logger("server")

class LogPipeline:
    \"\"\"alog.run in a task of its own, started and stopped by the server's lifecycle.\"\"\"

    async def start(self):
        self.stop = asyncio.Event()
        started = asyncio.Event()
        self.task = asyncio.create_task(self._run(started))
        await started.wait()

    async def _run(self, started):
        async with alog.run(shutdown_timeout=30):
            started.set()
            await self.stop.wait()

    async def close(self):
        log.info("shutting down")
        self.stop.set()
        await self.task

def log_burst():
    for seq in range(50_000):
        log.info("queued", seq=seq)
    sys.stderr.write("ready\\n")
"""

UVICORN_APP = (
    PIPELINE_TASK
    + """
import uvicorn

pipeline = LogPipeline()

async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await pipeline.start()
            log_burst()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pipeline.close()
            await send({"type": "lifespan.shutdown.complete"})
            return

uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")).run()
"""
)

AIOHTTP_APP = (
    PIPELINE_TASK
    + """
from aiohttp import web

async def with_log_pipeline(app):
    pipeline = LogPipeline()
    await pipeline.start()
    log_burst()
    yield
    await pipeline.close()

app = web.Application()
app.cleanup_ctx.append(with_log_pipeline)
web.run_app(app, host="127.0.0.1", port=0, print=None)
"""
)


@pytest.mark.parametrize(
    ("server", "status"),
    [
        # uvicorn finishes its graceful shutdown, then re-raises the signal (SERVER-FACTS).
        pytest.param(UVICORN_APP, -signal.SIGTERM, id="uvicorn"),
        pytest.param(AIOHTTP_APP, 0, id="aiohttp"),
    ],
)
def test_server_sigterm_drains_on_the_shutdown_path(
    spawn: Spawn, pipe: Pipe, server: str, status: int
) -> None:
    """SIGTERM to a server: its shutdown leaves alog.run, and every queued event is written."""
    child = spawn(server, stdout=pipe.write_end)
    pipe.close(pipe.write_end)
    child.wait_line(lambda line: line == "ready")
    time.sleep(0.5)  # the reader is late: the queue is still full when the signal arrives
    child.proc.send_signal(signal.SIGTERM)
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=40) == status, child.stderr
    events = parse_lines(reader.join(timeout=10))
    queued = [event["seq"] for event in events if event["msg"] == "queued"]
    assert queued == list(range(50_000))
    assert events[-1]["msg"] == "shutting down"
