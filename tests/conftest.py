"""Shared test set-up: every async test runs on asyncio's default loop and on uvloop."""

from __future__ import annotations

import asyncio
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


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run each async test on both loops alog supports."""
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
    _state.sink = _state.fallback
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
