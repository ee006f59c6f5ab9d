"""Shared test set-up: which event loops each async test runs on, and common helpers.

Async tests of the core and of the built-in destinations run on asyncio's default loop, on
uvloop and on trio, through anyio's pytest plugin (``anyio_backend`` below). The framework
integrations run on asyncio and uvloop only, through pytest-asyncio (``asyncio_mode`` is
``strict``: this file chooses, per test, which of the two plugins runs it):

- a test or module marked ``@pytest.mark.asyncio`` runs on asyncio and uvloop only (for what
  only asyncio has: ``asyncio.run``'s cancelling, uvloop itself, an asyncio-only framework);
- a test marked ``@pytest.mark.anyio`` runs on all three, whatever its module;
- any other async test runs on all three, unless its module is in ``ASYNCIO_ONLY_MODULES``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import alog
from alog import _state

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the test extra on Linux
    uvloop = None  # type: ignore[assignment]

TESTS = Path(__file__).resolve().parent

ASYNCIO_ONLY_MODULES = frozenset(
    {
        "test_aiohttp.py",
        "test_asgi.py",
        "test_stdlib.py",
        "reliability/test_servers.py",
    }
)
"""The framework integrations (paths relative to tests/): asyncio and uvloop only."""

ANYIO_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    *(
        [pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop")]
        if uvloop is not None
        else []
    ),
    pytest.param(("trio", {}), id="trio"),
]


def _marker_names(obj: object) -> set[str]:
    marks = getattr(obj, "pytestmark", ())
    return {mark.name for mark in (marks if isinstance(marks, list | tuple) else [marks])}


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> None:
    """Hand each async test to pytest-asyncio (asyncio, uvloop) or anyio (all three)."""
    if not collector.istestfunction(obj, name):
        return
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    if not inspect.iscoroutinefunction(inner):
        return
    chosen = _marker_names(obj) | {mark.name for mark in collector.iter_markers()}
    if "anyio" in chosen:
        pytest.mark.usefixtures("anyio_backend")(obj)
        return
    if "asyncio" in chosen:
        return
    try:
        module = collector.path.resolve().relative_to(TESTS).as_posix()
    except ValueError:  # a test file outside tests/, named on the command line
        module = collector.path.name
    if module in ASYNCIO_ONLY_MODULES:
        pytest.mark.asyncio(obj)
    else:
        pytest.mark.anyio(obj)
        pytest.mark.usefixtures("anyio_backend")(obj)


@pytest.fixture(params=ANYIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The loops alog supports, for anyio's plugin: asyncio, uvloop and trio."""
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests run by pytest-asyncio (the integrations) run on both asyncio loops."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(autouse=True)
def _no_pipeline_left_behind() -> Iterator[None]:
    """A test that leaves a pipeline installed would poison every test after it."""
    yield
    leftover = _state.pipeline
    _state.pipeline = None
    _state.install(_state.fallback)
    _state.redaction = _state.process_redaction = None
    assert leftover is None, f"test left {leftover!r} running"


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, parsed; fails on any line that is not one JSON object."""
    events = []
    for line in path.read_bytes().splitlines():
        event = json.loads(line)
        assert isinstance(event, dict)
        events.append(event)
    return events


RunScript = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(name="run_script")
def fixture_run_script(tmp_path: Path) -> RunScript:
    """Run a Python snippet in a fresh interpreter (for exit codes, stderr and real fds)."""

    def run_script(
        code: str,
        *,
        timeout: float = 30.0,
        stdout: int | None = subprocess.PIPE,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(code))
        return subprocess.run(
            [sys.executable, str(script), *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=timeout,
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            check=False,
        )

    return run_script


__all__ = ["RunScript", "alog", "read_events"]


@pytest.fixture(name="short_dir")
def fixture_short_dir() -> Iterator[Path]:
    """A fresh folder with a short path: a Unix socket's path is at most 107 bytes."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="alog-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(name="rsyslog")
def fixture_rsyslog(short_dir: Path) -> Iterator[Any]:
    """A real rsyslogd of this test's own (see tests/_rsyslog.py), stopped afterwards."""
    from . import _rsyslog

    engine = _rsyslog.start(short_dir / "rsyslog")
    try:
        yield engine
    finally:
        engine.stop()
