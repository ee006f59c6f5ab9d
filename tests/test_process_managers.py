"""A dead stdout under every process manager: the service ends loudly, or serves and counts.

Each setup runs for real in a subprocess (tests/apps/): uvicorn alone, ``uvicorn.run`` in a
script, ``uvicorn --workers 2``, gunicorn with uvicorn's worker, aiohttp's ``web.run_app``
and gunicorn with aiohttp's worker. stdout is a pipe whose reader closes while the service
runs; then requests arrive. A required stdout must end the whole service (supervisor
included) without a crash loop; an optional one (``required=False``) must leave it serving,
with the loss counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from alog.integrations._lifecycle import WATCHDOG_GRACE, Supervisor, find_supervisor

from ._servers import ServerProcess, refuses_connections
from .test_docs import _BLOCK

APPS = Path(__file__).parent / "apps"
# The apps' write_timeout and exit_timeout: the service must be gone within their sum and
# a few seconds (two cores shared with other tests).
WRITE_TIMEOUT = 1.0
EXIT_TIMEOUT = 1.5
SLACK = 5.0

READY = (
    r"(?:Uvicorn running on http://127\.0\.0\.1:|Listening at: http://127\.0\.0\.1:"
    r"|listening on port )(\d+)"
)
GUNICORN = [
    *("-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:0", "--graceful-timeout", "3"),
    "--no-control-socket",  # gunicorn 27 would make one in the home directory
]
UVICORN = ["-m", "uvicorn", "pm_asgi:app", "--host", "127.0.0.1", "--port", "0"]


BROKEN = (
    "HaltServer",  # gunicorn's arbiter handed a second halt status while halting
    "Event loop stopped before Future completed",  # a SystemExit raced the server's end
    "Exception in worker process",  # a gunicorn worker crashed instead of exiting
)


@dataclass(frozen=True)
class Setup:
    args: list[str]
    workers: int
    status: int
    """The supervisor's (or the lone server's) exit status after the failure."""


SETUPS = {
    "uvicorn": Setup([*UVICORN, "--no-access-log"], 1, 1),
    "uvicorn.run": Setup(["pm_asgi.py"], 1, 1),
    # uvicorn's supervisor exits 0 whenever it stops, whatever its workers' statuses
    # (uvicorn/main.py: nothing after Multiprocess.run()); see docs/process-managers.md.
    "uvicorn --workers 2": Setup([*UVICORN, "--no-access-log", "--workers", "2"], 2, 0),
    # alog's run() reads the status a failed worker left it, and exits with it.
    "alog uvicorn.run(workers=2)": Setup(["pm_asgi_workers.py"], 2, 3),
    "gunicorn -k UvicornWorker": Setup(
        [*GUNICORN, "-k", "uvicorn.workers.UvicornWorker", "pm_asgi:app"], 2, 3
    ),
    "web.run_app": Setup(["pm_aiohttp.py"], 1, 1),
    "gunicorn -k GunicornWebWorker": Setup(
        [*GUNICORN, "-k", "aiohttp.GunicornWebWorker", "pm_aiohttp:app"], 2, 3
    ),
}


class Service:
    """A setup's processes: the server (or supervisor), its workers' pids, and its exit."""

    def __init__(self, setup: Setup, tmp_path: Path, *, required: bool) -> None:
        self.setup = setup
        self.boots = tmp_path / "boots"
        self.boots.touch()
        # TMPDIR: where gunicorn workers share their halt lock (alog-halt-gunicorn-PID.lock).
        env = {
            "BOOTS": str(self.boots),
            "REQUIRED": "1" if required else "0",
            "TMPDIR": str(tmp_path),
        }
        self.server = ServerProcess(
            setup.args,
            cwd=APPS,
            ready=READY,
            env=env,
            stdout=subprocess.PIPE,
            closable_stdout=True,
        )
        self.exited_at: float | None = None
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        self.server.proc.wait()
        self.exited_at = time.monotonic()

    def serving(self) -> None:
        """Wait until every worker's pipeline runs (its ``serving`` line is on stdout).

        Then until stdout is quiet: the servers' own start-up lines follow the app's, and one
        of them written after the reader closed would be a failure of its own.
        """
        self.server.wait_for_stdout(
            lambda lines: (
                len({event["pid"] for event in _events(lines, "serving")}) >= self.setup.workers
            ),
            timeout=20,
        )
        seen = -1
        while seen != (seen := len(self.server.stdout_lines())):
            time.sleep(0.3)

    def booted(self) -> list[int]:
        """Every process that imported the app: the workers ever started."""
        return [int(pid) for pid in self.boots.read_text().split()]

    def alog_lines(self) -> list[str]:
        return [line for line in self.server.stderr_lines() if line.startswith("alog:")]

    def end(self) -> None:
        """Stop whatever is left of the service: the server, then any worker it left."""
        if self.server.proc.poll() is None:
            self.server.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.proc.wait(15)
        self.server.kill()
        for pid in self.booted():
            if pid != self.server.proc.pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _request_until_exit(service: Service, port: int) -> tuple[int, float, int]:
    """Requests, one after the other, until the service is gone: (answered, seconds, status).

    The seconds run from the first request to the exit of the server (or supervisor).
    """
    first = time.monotonic()
    answered = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1.0) as http:
        while service.exited_at is None and time.monotonic() - first < 20:
            try:
                answered += http.get("/").status_code == 200
            except httpx.TransportError:
                time.sleep(0.02)  # stopped accepting, or the supervisor's backlog
    status = service.server.wait(timeout=15)
    assert service.exited_at is not None
    return answered, service.exited_at - first, status


def _events(lines: list[str], msg: str) -> list[dict[str, object]]:
    events = []
    for line in lines:
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("msg") == msg:
                events.append(event)
    return events


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(name="setup", params=list(SETUPS))
def _setup(request: pytest.FixtureRequest) -> Setup:
    return SETUPS[request.param]


@pytest.fixture(name="service")
def _service(setup: Setup, tmp_path: Path) -> Iterator[Service]:
    service = Service(setup, tmp_path, required=True)
    try:
        yield service
    finally:
        service.end()


@pytest.fixture(name="optional")
def _optional(setup: Setup, tmp_path: Path) -> Iterator[Service]:
    service = Service(setup, tmp_path, required=False)
    try:
        yield service
    finally:
        service.end()


def test_a_dead_stdout_ends_the_whole_service_once(
    service: Service, request: pytest.FixtureRequest
) -> None:
    """The reader of stdout dies: every process ends, within the deadlines, with no restart."""
    port = service.server.port
    service.serving()
    service.server.close_stdout()
    answered, elapsed, status = _request_until_exit(service, port)
    print(f"\n{request.node.callspec.id}: exit {status} {elapsed:.2f} s after the first request")
    stderr = service.server.stderr_lines()
    shown = "\n".join([line for line in stderr if not line.startswith("{")][-40:])
    assert status == service.setup.status, shown
    assert elapsed < WRITE_TIMEOUT + EXIT_TIMEOUT + SLACK, shown
    assert answered >= 1  # the request that found the failure was still answered
    assert refuses_connections(port)
    # No crash loop: only the first workers ever booted, and none of them is left.
    booted = service.booted()
    assert len(booted) == service.setup.workers, shown
    assert not any(_alive(pid) for pid in booted), booted
    # Each worker that failed says why once, and how it exits; nothing else from alog.
    lines = service.alog_lines()
    failed = [line for line in lines if line.endswith("the application is being stopped")]
    exits = [line for line in lines if line.startswith("alog: exiting with status")]
    assert 1 <= len(failed) <= service.setup.workers, shown
    assert 1 <= len(exits) <= service.setup.workers, shown
    # What was logged after a worker's exit line (its teardown) is counted in one line more.
    late = [line for line in lines if "events logged after the writer failed on stdout" in line]
    assert len(late) <= len(exits), shown
    assert len(lines) == len(failed) + len(exits) + len(late), shown
    said = [line for line in lines if line not in late]
    assert all("alog writer failed on stdout: [Errno 32] Broken pipe" in line for line in said)
    assert not any("Traceback" in line for line in stderr), shown
    under_gunicorn = "gunicorn" in service.setup.args
    if service.setup.workers > 1:
        supervisor = f"so that {'gunicorn' if under_gunicorn else 'uvicorn'}'s "
        assert any(supervisor in line for line in exits), exits
    if under_gunicorn:  # one worker halts the arbiter, any other exits 1 after it
        assert sum(line.startswith("alog: exiting with status 3") for line in exits) == 1, shown


@pytest.mark.parametrize("client", ["waits", "left"])
def test_endless_responses_do_not_hold_the_service_up(
    service: Service, client: str, request: pytest.FixtureRequest
) -> None:
    """Every worker has an endless response: alog still ends the service, by its deadlines.

    ``waits``: their clients stay; a failed worker stops waiting for them after
    ``exit_timeout`` (its watchdog two seconds later at worst), a worker the supervisor stops
    gets the supervisor's graceful timeout. ``left``: their clients went away, so the
    shutdown comes at once, with the responses' generators still to be closed by
    ``asyncio.run`` after the ``SystemExit``, which must not make that fail.
    """
    port = service.server.port
    service.serving()
    with contextlib.ExitStack() as held:
        slow = held.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20))
        holders: dict[int, Iterator[str]] = {}
        for _ in range(20):
            if len(holders) == service.setup.workers:
                break
            response = held.enter_context(slow.stream("GET", "/slow"))
            lines = response.iter_lines()
            holders.setdefault(int(next(lines)), lines)  # kept: dropping it ends the response
            if client == "left":
                response.close()
        assert len(holders) == service.setup.workers
        service.server.close_stdout()
        _, elapsed, status = _request_until_exit(service, port)
    print(f"\n{request.node.callspec.id}: exit {status} {elapsed:.2f} s after the first request")
    stderr = service.server.stderr_lines()
    shown = "\n".join([line for line in stderr if not line.startswith("{")][-40:])
    assert status == service.setup.status, shown
    graceful = 3.0 if service.setup.workers > 1 else 0.0  # GUNICORN's --graceful-timeout
    assert elapsed < WRITE_TIMEOUT + EXIT_TIMEOUT + WATCHDOG_GRACE + graceful + SLACK, shown
    assert len(service.booted()) == service.setup.workers, shown
    # The servers log the requests they cut off, tracebacks included; what must not be
    # there is a process ending on an exception of its own.
    assert not any(marker in line for line in stderr for marker in BROKEN), shown


def test_an_optional_stdout_keeps_the_workers_serving_and_counts_the_loss(
    optional: Service,
) -> None:
    """``required=False``: the same dead stdout costs lines, never requests."""
    port = optional.server.port
    optional.serving()
    optional.server.close_stdout()
    lost: dict[int, int] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
        for _ in range(20):
            assert http.get("/").status_code == 200
        deadline = time.monotonic() + 10
        while not lost and time.monotonic() < deadline:
            stats = http.get("/stats").json()
            if stats["undelivered"] > 0:
                assert stats["write_errors"] >= 1
                assert "Broken pipe" in stats["last_error"]
                lost[stats["pid"]] = stats["undelivered"]
        assert http.get("/").status_code == 200
    assert lost, "no worker counted its lost lines"
    assert optional.server.proc.poll() is None
    assert len(optional.booted()) == optional.setup.workers
    assert not [line for line in optional.server.stderr_lines() if "exiting" in line]


MANAGED = [name for name, setup in SETUPS.items() if setup.workers > 1]


@pytest.mark.parametrize("name", MANAGED)
def test_a_stop_from_outside_with_a_dead_stdout_is_a_plain_stop(name: str, tmp_path: Path) -> None:
    """SIGTERM to the supervisor: workers failing as they stop must not ask it to halt again.

    Their last lines (uvicorn's "Shutting down"...) find the dead stdout while the supervisor
    is already stopping them; a second "failed to boot" would make gunicorn's arbiter die
    with a traceback instead of its own clean stop.
    """
    service = Service(SETUPS[name], tmp_path, required=True)
    try:
        service.server.port  # noqa: B018 - waits for the ready line
        service.serving()
        service.server.close_stdout()
        service.server.proc.send_signal(signal.SIGTERM)
        status = service.server.wait(timeout=15)
    finally:
        service.end()
    stderr = service.server.stderr_lines()
    shown = "\n".join([line for line in stderr if not line.startswith("{")][-40:])
    assert status == 0, shown
    assert not any("Traceback" in line for line in stderr), shown
    assert len(service.booted()) == service.setup.workers, shown
    assert not any("stops the service" in line for line in service.alog_lines()), shown


def gunicorn_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """gunicorn's arbiter, config and worker base (it has no type hints: imported by name)."""
    names = ("gunicorn.arbiter", "gunicorn.config", "gunicorn.workers.base")
    arbiter, config, workers = (importlib.import_module(name) for name in names)
    return arbiter, config, workers


def test_no_supervisor_is_found_outside_a_worker() -> None:
    """The test process runs under no gunicorn worker and no uvicorn supervisor."""
    gunicorn_modules()  # the modules are there, the worker is not
    assert find_supervisor() is None


def _run(self: object) -> Supervisor | None:
    """Stands for a worker's ``run()``: ``self`` on the stack is the worker."""
    return find_supervisor()


@pytest.mark.parametrize("orphaned", [False, True])
def test_a_gunicorn_worker_on_the_stack_names_its_arbiter(orphaned: bool) -> None:
    """The worker object running this process gives the arbiter and its halting status."""
    arbiter, config, workers = gunicorn_modules()
    parent = os.getppid() + (1 if orphaned else 0)
    worker = workers.Worker(1, parent, [], None, 30, config.Config(), None)
    try:
        found = _run(worker)
    finally:
        worker.tmp.close()
    if orphaned:  # the arbiter is gone: nobody would restart this process
        assert found is None
        return
    assert found is not None
    assert (found.name, found.pid) == ("gunicorn's arbiter", os.getppid())
    assert found.halt_status == arbiter.Arbiter.WORKER_BOOT_ERROR == 3
    assert found.halt_signal is None  # any signal would make the arbiter exit 0
    assert found.worker is worker


@pytest.mark.parametrize(
    "code", _BLOCK.findall((APPS.parent.parent / "docs/process-managers.md").read_text())
)
def test_the_pages_python_blocks_run(code: str, tmp_path: Path) -> None:
    """docs/process-managers.md's code is real (as tests/test_docs.py does for other pages)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr.decode()


HOLD_THE_CLAIM = """
import sys
from alog.integrations._lifecycle import Supervisor
claimant = Supervisor("test", 1, 3, None, None, lock_path=sys.argv[1])
print(claimant.claim(), flush=True)
sys.stdin.read()
"""


def test_one_worker_claims_the_halt_and_the_others_wait_until_it_is_gone(
    tmp_path: Path,
) -> None:
    """Of the workers failing together, one halts gunicorn; the rest exit after it ended."""
    lock = str(tmp_path / "halt.lock")
    claimant = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_CLAIM, lock],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    stdin, stdout = claimant.stdin, claimant.stdout
    assert stdin is not None and stdout is not None
    other = Supervisor("test", 1, 3, None, None, lock_path=lock)

    async def wait_for_the_claimant() -> None:
        waiting = asyncio.ensure_future(other.claimant_gone())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the claimant still runs
        stdin.close()  # the claimant ends, and its lock with it
        await asyncio.wait_for(waiting, timeout=5)

    try:
        assert stdout.readline() == b"True\n"
        assert not other.claim()
        assert other.claimed is False
        asyncio.run(wait_for_the_claimant())
    finally:
        claimant.kill()
        claimant.wait()
        stdin.close()
        stdout.close()
    alone = Supervisor("test", 1, 3, None, None)  # uvicorn's: no lock, every worker halts it
    assert alone.claim()
    asyncio.run(alone.claimant_gone())
