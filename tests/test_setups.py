"""Every server set-up of docs/servers.md, with its real server: every line alog JSON.

The examples are served as a user serves them (``uvicorn``, ``python app.py``, ``uvicorn
--workers 2``, ``gunicorn`` with uvicorn's and aiohttp's workers, aiohttp's ``run_app``);
each gets a request, and the uvicorn ones a malformed request too, whose warning
(``uvicorn.error``) is the record gunicorn's UvicornWorker used to lose. Then every line on
stdout, and on stderr where the server lets a logger in, must be one JSON event.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import signal
import socket
import subprocess
import textwrap
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import alog
import alog.integrations.uvicorn
import alog.stdlib

from ._servers import AIOHTTP_READY, READY_TIMEOUT, UVICORN_READY, ServerProcess
from .conftest import RunScript

EXAMPLES = Path(__file__).parent.parent / "examples"
GUNICORN_READY = r"Listening at: http://127\.0\.0\.1:(\d+)"
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
LOCAL = ["--host", "127.0.0.1", "--port", "0"]


def gunicorn(target: str, worker: str, *extra: str) -> list[str]:
    return [
        "-m",
        "gunicorn",
        target,
        "--worker-class",
        worker,
        "--workers",
        "2",
        "--bind",
        "127.0.0.1:0",
        "--no-control-socket",  # its default path is shared by every gunicorn on the machine
        "--logger-class",
        "alog.integrations.gunicorn.Logger",
        *extra,
    ]


@dataclass(frozen=True)
class Setup:
    """One way to serve an example, as docs/servers.md shows it."""

    args: list[str]
    ready: str
    _: KW_ONLY
    serves_uvicorn: bool  # uvicorn serves the requests (it logs a warning for a malformed one)
    stop: signal.Signals = signal.SIGINT
    env: dict[str, str] = field(default_factory=dict)
    text_on_stderr: tuple[str, ...] = ()
    """Lines the server writes where no logger is let in (uvicorn's CLI supervisor)."""


SETUPS = {
    "uvicorn": Setup(
        ["-m", "uvicorn", "fastapi_app:app", *LOCAL, "--no-access-log"],
        UVICORN_READY,
        serves_uvicorn=True,
    ),
    "python_app_uvicorn_run": Setup(
        ["fastapi_app.py"], UVICORN_READY, serves_uvicorn=True, env={"PORT": "0"}
    ),
    "uvicorn_workers_2": Setup(
        ["-m", "uvicorn", "fastapi_app:app", *LOCAL, "--no-access-log", "--workers", "2"],
        UVICORN_READY,
        serves_uvicorn=True,
        text_on_stderr=tuple(
            f"INFO:     {what}"  # uvicorn's LOGGING_CONFIG, in a supervisor that runs no app
            for what in (
                "Uvicorn running on",
                "Started parent process",
                "Received SIGINT",
                "Terminated child process",
                "Waiting for child process",
                "Stopping parent process",
            )
        ),
    ),
    "uvicorn_run_workers_2": Setup(
        ["fastapi_app.py"], UVICORN_READY, serves_uvicorn=True, env={"PORT": "0", "WORKERS": "2"}
    ),
    "gunicorn_uvicorn_worker": Setup(
        gunicorn("fastapi_app:app", "uvicorn.workers.UvicornWorker"),
        GUNICORN_READY,
        serves_uvicorn=True,
        stop=signal.SIGTERM,
    ),
    "gunicorn_uvicorn_worker_preload": Setup(
        gunicorn("fastapi_app:app", "uvicorn.workers.UvicornWorker", "--preload"),
        GUNICORN_READY,
        serves_uvicorn=True,
        stop=signal.SIGTERM,
    ),
    "aiohttp_run_app": Setup(
        ["aiohttp_app.py"], AIOHTTP_READY, serves_uvicorn=False, env={"PORT": "0"}
    ),
    "gunicorn_aiohttp_worker": Setup(
        gunicorn("aiohttp_app:make_app()", "aiohttp.GunicornWebWorker"),
        GUNICORN_READY,
        serves_uvicorn=False,
        stop=signal.SIGTERM,
    ),
}


@dataclass
class Served:
    """What one run of a set-up wrote, parsed."""

    status: int
    stdout: list[dict[str, Any]]
    stderr: list[dict[str, Any]]
    text: list[str]  # stderr lines that are not JSON

    def events(self) -> list[dict[str, Any]]:
        return self.stdout + self.stderr

    def messages(self, logger: str) -> list[str]:
        return [event["msg"] for event in self.events() if event["logger"] == logger]


def parse(line: str) -> dict[str, Any]:
    event = json.loads(line)
    assert isinstance(event, dict), line
    assert list(event)[:4] == ["time", "level", "logger", "msg"], line
    return event


def malformed_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        return sock.recv(100)


def first_request(http: httpx.Client) -> httpx.Response:
    """uvicorn's supervisor says it runs once bound; its workers listen once they booted."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            return http.get("/items/1", headers={"X-Request-ID": "req-1"})
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def serve(setup: Setup) -> Served:
    server = ServerProcess(
        setup.args,
        cwd=EXAMPLES,
        ready=setup.ready,
        env=setup.env,
        stdout=subprocess.PIPE,
        read_stdout=True,
        process_group=True,
    )
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            response = first_request(http)
            assert response.status_code == 200, response.text
        if setup.serves_uvicorn:
            assert malformed_request(server.port).startswith(b"HTTP/1.1 400")
        server.proc.send_signal(setup.stop)
        status = server.wait(15)
    finally:
        server.kill()
    stdout = [parse(line) for line in server.stdout_lines()]
    stderr, text = [], []
    for line in server.stderr_lines():
        if line.startswith("{"):
            stderr.append(parse(line))
        else:
            text.append(line)
    return Served(status, stdout, stderr, text)


@pytest.mark.parametrize("name", list(SETUPS))
def test_every_line_is_alog_json(name: str) -> None:
    """One server run per set-up: stdout all JSON events, stderr too where a logger fits."""
    setup = SETUPS[name]
    run = serve(setup)
    assert run.status == 0, run.text
    assert run.stdout
    check_stderr(setup, run)
    check_one_access_line(run)
    check_pids(run)
    check_server_lines(setup, run)


def check_stderr(setup: Setup, run: Served) -> None:
    """No plain text but what no logger can reach (uvicorn's CLI supervisor)."""
    assert all(line.startswith(setup.text_on_stderr) for line in run.text), run.text
    if setup.text_on_stderr:
        assert run.text  # the exception is real: if uvicorn ever lets a logger in, use it


def check_one_access_line(run: Served) -> None:
    """One access line (alog's middleware, not the server's access log), on stdout."""
    (line,) = [event for event in run.events() if event["logger"] == "access"]
    assert line in run.stdout
    assert (line["path"], line["status"], line["request_id"]) == ("/items/1", 200, "req-1")
    (found,) = [event for event in run.stdout if event["msg"] == "item found"]
    assert found["request_id"] == "req-1"
    assert not [event for event in run.events() if event["logger"] == "uvicorn.access"]


def check_pids(run: Served) -> None:
    """alog.process_fields("pid") in the example: each event names the worker that wrote it."""
    pids = {event["pid"] for event in run.stdout if "pid" in event}
    assert pids
    booted = {
        int(found.group(1))
        for event in run.events()
        if (found := BOOTED.search(event["msg"])) is not None
    }
    if booted:  # gunicorn: the master boots the workers (--preload: after the import)
        assert pids <= booted, (pids, booted)
        master = {event.get("pid") for event in run.stderr if event["logger"] == "gunicorn.error"}
        assert master == {None}  # the master runs no pipeline: its lines carry no fields


def check_server_lines(setup: Setup, run: Served) -> None:
    """uvicorn's and gunicorn's lines are alog events, the bad request's warning included."""
    if setup.serves_uvicorn:
        assert "Application startup complete." in run.messages("uvicorn.error")
        warning = next(e for e in run.stdout if e["msg"] == "Invalid HTTP request received.")
        assert warning["level"] == "warning"
    if setup.ready == GUNICORN_READY:
        assert "Shutting down: Master" in run.messages("gunicorn.error")
        assert len([m for m in run.messages("gunicorn.error") if BOOTED.search(m)]) == 2
    if setup.ready == AIOHTTP_READY:
        (banner,) = run.messages("aiohttp.web")
        assert banner.startswith("Running on http://127.0.0.1:")


# -- what was broken: gunicorn's UvicornWorker without alog's logger class ---------------------


@pytest.mark.parametrize("preload", [False, True], ids=["import_in_worker", "preload"])
def test_uvicorn_worker_records_reach_alog_without_the_logger_class(preload: bool) -> None:
    """install() in the app no longer leaves uvicorn.error (gunicorn.error's list) silent.

    Without --logger-class, the master's lines are gunicorn's plain text, unless the app
    was imported there (--preload) and bridged them; the workers' are JSON, uvicorn's
    warning for the malformed request included.
    """
    setup = SETUPS["gunicorn_uvicorn_worker_preload" if preload else "gunicorn_uvicorn_worker"]
    args = [arg for arg in setup.args if "alog" not in arg]
    args.remove("--logger-class")
    run = serve(Setup(args, GUNICORN_READY, serves_uvicorn=True, stop=signal.SIGTERM))
    assert run.status == 0, run.text
    assert "Invalid HTTP request received." in run.messages("uvicorn.error")
    assert "Application startup complete." in run.messages("uvicorn.error")
    started = "Starting gunicorn"
    if preload:
        assert run.text == []
        assert any(m.startswith(started) for m in run.messages("gunicorn.error"))
    else:
        assert any(started in line for line in run.text)


# -- the one calls, directly ----------------------------------------------------------------


def test_uvicorn_run_refuses_a_log_config() -> None:
    """The one thing alog's run() decides: a log_config of one's own is uvicorn.run's job."""
    with pytest.raises(TypeError, match="sets log_config itself"):
        alog.integrations.uvicorn.run("app:app", log_config=None)


def test_log_config_routes_uvicorn_to_alog_and_nowhere_else() -> None:
    """LOG_CONFIG leaves one AlogHandler, on the root; uvicorn's loggers propagate to it."""
    import logging.config

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    config = copy.deepcopy(alog.integrations.uvicorn.LOG_CONFIG)
    for formatter in ("default", "access"):  # what uvicorn does with run(use_colors=False)
        config["formatters"][formatter]["use_colors"] = False
    try:
        logging.config.dictConfig(config)
        assert [type(h) for h in root.handlers] == [alog.stdlib.AlogHandler]
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            assert (logger.handlers, logger.propagate) == ([], True)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_run_app_refuses_print() -> None:
    """run_app logs the banner itself; printing it is aiohttp's run_app's job."""
    from aiohttp import web

    from alog.integrations.aiohttp import run_app

    with pytest.raises(TypeError, match="logs the banner itself"):
        run_app(web.Application(), print=print)


GUNICORN_RELOAD = """
    import logging
    from gunicorn.config import Config
    from alog.integrations.gunicorn import Logger
    from alog.stdlib import AlogHandler

    cfg = Config()
    cfg.set("accesslog", "-")
    log = Logger(cfg)
    log.setup(cfg)  # what a configuration reload (SIGHUP) runs
    for logger in (log.error_log, log.access_log):
        assert [type(h) for h in logger.handlers] == [AlogHandler], logger.handlers
    log.info("booting %s", "worker")
"""


def test_gunicorn_logger_reload_keeps_one_handler(run_script: RunScript) -> None:
    """A reload replaces alog's handlers, never stacks them (one line per record)."""
    result = run_script(textwrap.dedent(GUNICORN_RELOAD))
    assert result.returncode == 0, result.stderr.decode()
    (line,) = result.stderr.decode().splitlines()
    assert parse(line)["msg"] == "booting worker"
    assert logging.getLogger("gunicorn.error").handlers == []  # this process was untouched
