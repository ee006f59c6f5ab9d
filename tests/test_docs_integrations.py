"""docs/integrations.md is real: every code block on it is run, most under a real server.

Each block is named by the HTML comment before it (``<!-- test: NAME -->``); ``CHECKS``
says what runs it, and a block without a name or a check fails here. Standalone Python
blocks run as they are, the way tests/test_docs.py runs the other pages; app blocks are
saved as a module and served by uvicorn or ``web.run_app`` in a subprocess, and the
lines and endpoints they promise are checked.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alog.integrations import PROMETHEUS_CONTENT_TYPE

from ._servers import AIOHTTP_READY, UVICORN_READY, ServerProcess
from .test_docs import ROOT

PAGE = ROOT / "docs" / "integrations.md"
_NAMED = re.compile(r"<!-- test: ([a-z-]+) -->\n```([a-z]*)\n(.*?)```", re.DOTALL)
_FENCE = re.compile(r"^```[a-z]*$", re.MULTILINE)


def blocks() -> dict[str, tuple[str, str]]:
    """Each named block: its language and its code."""
    return {name: (lang, code) for name, lang, code in _NAMED.findall(PAGE.read_text())}


def code(name: str) -> str:
    return blocks()[name][1]


def run_python(source: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, timeout=60, cwd=cwd, check=False
    )


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Every stdout line, parsed: fails on one that is not a JSON object."""
    events = []
    for line in lines:
        event = json.loads(line)
        assert isinstance(event, dict), line
        events.append(event)
    return events


# -- standalone blocks ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["options", "request-fields", "context"])
def test_standalone_blocks_run_and_their_asserts_hold(name: str, tmp_path: Path) -> None:
    """These blocks assert what the text around them says; they must pass as written."""
    result = run_python(code(name), tmp_path)
    assert result.returncode == 0, f"{name}:\n{result.stderr.decode()}"


# -- the FastAPI app, its command, and the line shown -----------------------------------------


def uvicorn_command(tmp_path: Path, module: str, block: str) -> list[str]:
    """The documented ``uvicorn`` command for ``block`` saved as ``module``, on port 0."""
    (tmp_path / f"{module}.py").write_text(code(block))
    command = shlex.split(code("fastapi-run").strip())
    assert command[0] == "uvicorn"
    command[1] = command[1].replace("myapp", module)
    return ["-m", *command, "--host", "127.0.0.1", "--port", "0"]


def test_fastapi_app_under_uvicorn_writes_the_lines_the_page_shows(tmp_path: Path) -> None:
    """The app and command as written: JSON on stdout, the line shown, /health skipped."""
    server = ServerProcess(
        uvicorn_command(tmp_path, "myapp", "fastapi-app"),
        cwd=tmp_path,
        ready=UVICORN_READY,
        stdout=subprocess.PIPE,
        read_stdout=True,
    )
    try:
        with httpx.Client(base_url=server.url) as http:
            response = http.get("/items/1", headers={"X-Request-ID": "req-42"})
            assert response.headers["x-request-id"] == "req-42"
            assert http.get("/items/9").status_code == 404
            assert http.get("/health").status_code == 200
        assert server.stop() == 0
    finally:
        server.kill()
    events = json_lines(server.stdout_lines())
    lines = [event for event in events if event["logger"] == "access"]
    assert [(line["path"], line["status"], line["level"]) for line in lines] == [
        ("/items/1", 200, "info"),
        ("/items/9", 404, "warning"),
    ]
    found = next(event for event in events if event["msg"] == "item found")
    assert (found["request_id"], found["item_id"]) == ("req-42", 1)
    assert any(event["logger"] == "uvicorn.error" for event in events)
    # The line on the page is this line: the same keys in the same order, the same values
    # but for the time and the duration.
    shown = json.loads(code("access-line"))
    real = lines[0]
    assert list(shown) == list(real)
    varying = {"time", "duration_ms"}
    assert {k: v for k, v in shown.items() if k not in varying} == {
        k: v for k, v in real.items() if k not in varying
    }


def test_process_fields_reach_every_event_and_the_access_line(tmp_path: Path) -> None:
    """lifespan(fields=...): the app's start-up events and each request's line carry them."""
    (tmp_path / "fields_app.py").write_text(code("process-fields"))
    driver = textwrap.dedent(
        """
        import asyncio
        import httpx
        from fields_app import app

        @app.get("/")
        async def root():
            return {"ok": "yes"}

        async def main():
            transport = httpx.ASGITransport(app=app)
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    assert (await http.get("/")).status_code == 200

        asyncio.run(main())
        """
    )
    result = run_python(driver, tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    events = json_lines(result.stdout.decode().splitlines())
    (line,) = [event for event in events if event["logger"] == "access"]
    assert (line["service"], line["version"]) == ("shop", "1.4.2")
    assert all(event["service"] == "shop" for event in events)


# -- aiohttp blocks, served by web.run_app ----------------------------------------------------

RUN_APP = """
import socket
import sys

from aiohttp import web

from {module} import make_app

sock = socket.create_server(("127.0.0.1", 0))
print(f"listening on port {{sock.getsockname()[1]}}", file=sys.stderr, flush=True)
web.run_app(make_app(), sock=sock, access_log=None, print=None)
"""


def run_app(tmp_path: Path, module: str, block: str) -> ServerProcess:
    """``make_app()`` from ``block`` (saved as ``module``) under web.run_app, on port 0."""
    (tmp_path / f"{module}.py").write_text(code(block))
    (tmp_path / "serve.py").write_text(RUN_APP.format(module=module))
    return ServerProcess(
        ["serve.py"],
        cwd=tmp_path,
        ready=AIOHTTP_READY,
        stdout=subprocess.PIPE,
        read_stdout=True,
    )


def test_aiohttp_app_under_run_app(tmp_path: Path) -> None:
    """The aiohttp block as written: the handler's event and the line share the id."""
    server = run_app(tmp_path, "aiohttp_doc_app", "aiohttp-app")
    try:
        with httpx.Client(base_url=server.url) as http:
            response = http.get("/items/1", headers={"X-Request-ID": "req-7"})
            assert response.json() == {"id": 1, "name": "hammer"}
            assert response.headers["x-request-id"] == "req-7"
        assert server.stop() == 0
    finally:
        server.kill()
    events = json_lines(server.stdout_lines())
    assert [(event["msg"], event["request_id"]) for event in events] == [
        ("item found", "req-7"),
        ("request", "req-7"),
    ]
    assert events[1]["route"] == "/items/{item_id}"


# -- the /metrics recipes -------------------------------------------------------------------


def scrape(server: ServerProcess) -> dict[str, Any]:
    """A request to count, then /metrics, read by the reference parser."""
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/nowhere").status_code == 404
        response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def total(families: dict[str, Any], name: str) -> float:
    return float(sum(sample.value for sample in families[name].samples))


@pytest.mark.parametrize("framework", ["fastapi", "aiohttp"])
def test_metrics_recipe_serves_the_pipelines_counts(framework: str, tmp_path: Path) -> None:
    """/metrics on a real server: the 404's access line is counted, /metrics is skipped."""
    start: Callable[[], ServerProcess]
    if framework == "fastapi":
        args = uvicorn_command(tmp_path, "metrics_app", "metrics-fastapi")

        def start() -> ServerProcess:
            return ServerProcess(
                args, cwd=tmp_path, ready=UVICORN_READY, stdout=subprocess.PIPE, read_stdout=True
            )
    else:

        def start() -> ServerProcess:
            return run_app(tmp_path, "metrics_app", "metrics-aiohttp")

    server = start()
    try:
        families = scrape(server)
        assert server.stop() == 0
    finally:
        server.kill()
    assert total(families, "alog_events_accepted") >= 1
    assert total(families, "alog_events_dropped") == 0
    assert "alog_destination_events_written" in families
    events = json_lines(server.stdout_lines())
    assert [event["path"] for event in events if event["logger"] == "access"] == ["/nowhere"]


# -- nothing on the page goes unrun ---------------------------------------------------------

CHECKS = {
    "access-line": test_fastapi_app_under_uvicorn_writes_the_lines_the_page_shows,
    "fastapi-app": test_fastapi_app_under_uvicorn_writes_the_lines_the_page_shows,
    "fastapi-run": test_fastapi_app_under_uvicorn_writes_the_lines_the_page_shows,
    "aiohttp-app": test_aiohttp_app_under_run_app,
    "options": test_standalone_blocks_run_and_their_asserts_hold,
    "request-fields": test_standalone_blocks_run_and_their_asserts_hold,
    "context": test_standalone_blocks_run_and_their_asserts_hold,
    "process-fields": test_process_fields_reach_every_event_and_the_access_line,
    "metrics-fastapi": test_metrics_recipe_serves_the_pipelines_counts,
    "metrics-aiohttp": test_metrics_recipe_serves_the_pipelines_counts,
}


def test_every_block_on_the_page_is_named_and_checked() -> None:
    """A new block without a name, or a name without a check, fails here."""
    text = PAGE.read_text()
    opening_fences = len(_FENCE.findall(text)) // 2
    assert len(_NAMED.findall(text)) == opening_fences
    assert set(blocks()) == set(CHECKS)
