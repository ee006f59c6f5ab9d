"""The benchmark harness runs end to end on a tiny workload, so that it cannot rot.

Peers that are not installed here (they live in the ``bench`` extra) must be reported as
unavailable; everything that can run, runs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
# Need nothing beyond alog's own dependencies and the standard library.
ALWAYS = ("alog", "floor", "stdlib", "stdlib-queue")


@pytest.fixture(name="run", scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("bench")
    results = tmp / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--events=2000",
            "--rounds=1",
            "--disabled-calls=20000",
            "--stall-seconds=0.4",
            "--recovery-seconds=0.2",
            "--grace-seconds=0.1",
            f"--json={results}",
            f"--tmpdir={tmp}",
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(results.read_text())
    return data, proc.stdout


def test_core_loggers_write_every_event_correctly(run: tuple[dict[str, Any], str]) -> None:
    """alog, the floor and stdlib need no extra package, so they are always measured."""
    contenders = run[0]["contenders"]
    for name in ALWAYS:
        entry = contenders[name]
        assert entry["status"] == "ok", (name, entry.get("reason"), entry.get("problems"))
        assert entry["rounds"][0]["check"]["lines"] == 2000
        median = entry["median"]
        assert median["cpu_us_per_event"] > 0
        assert median["events_per_s"] > 0
        assert median["disabled_ns"] > 0


def test_a_peer_is_unavailable_only_when_its_package_is_missing(
    run: tuple[dict[str, Any], str],
) -> None:
    """Marking a logger unavailable when it could run would hide it from the comparison."""
    for name, entry in run[0]["contenders"].items():
        if entry["status"] == "unavailable":
            missing = entry["reason"].removeprefix("not installed: ").split(", ")
            assert all(importlib.util.find_spec(m) is None for m in missing), name
        else:
            assert entry["status"] in {"ok", "broken", "stall only"}, (name, entry.get("reason"))


def test_ratios_against_the_floor_are_reported(run: tuple[dict[str, Any], str]) -> None:
    """The report's point is alog relative to the floor and the peers, from the same run."""
    targets = run[0]["targets"]
    assert targets["alog_cpu_vs_floor"] > 0
    assert targets["alog_disabled_ns"] > 0
    assert run[0]["contenders"]["stdlib"]["median"]["cpu_vs_alog"] > 0


def test_stall_scenario_accounts_for_every_event(run: tuple[dict[str, Any], str]) -> None:
    """Every event alog accepted during the stall is either received by the reader or lost."""
    stall = run[0]["stall"]
    assert {"baseline", "alog", "stdlib-queue", "stdlib-queue-10k"} <= set(stall)
    for name, result in stall.items():
        assert "error" not in result, (name, result)
        assert result["logged"] > 0
        assert result["max_lag_ms_stall"] >= 0
        if result["writes"]:
            assert result["received"] + result["lost"] == result["logged"], name
    assert stall["alog"]["lost"] == stall["alog"]["stats"]["dropped"]


def test_markdown_report_names_the_machine_and_the_command(
    run: tuple[dict[str, Any], str],
) -> None:
    """A figure without its machine and command cannot be reproduced or compared."""
    data, report = run
    assert data["command"] in report
    assert data["machine"]["python"] in report
    assert "| alog |" in report
    assert "## Stall" in report
