"""examples/library: one library, used by a plain logging app and by an alog app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LIBRARY = Path(__file__).parent.parent / "examples" / "library"


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script],
        cwd=LIBRARY,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(LIBRARY)},
        check=False,
    )


def test_plain_logging_app_sees_the_librarys_events_with_fields() -> None:
    """Without alog running, events reach logging under the library's name, fields included."""
    result = run("plain_app.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["sunny", "unknown"]
    err = result.stderr.splitlines()
    assert err[0] == "INFO weatherlib: forecast requested city='Lisbon' source='cache'"
    assert "ERROR weatherlib: forecast failed city=''" in err
    assert "ValueError: empty city name" in err


def test_alog_app_sees_json_lines_under_the_librarys_name() -> None:
    """With alog running, the same calls are JSON lines carrying the app's bound context."""
    result = run("alog_app.py")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {event["logger"] for event in events} == {"weatherlib"}
    assert [event["msg"] for event in events] == [
        "forecast requested",
        "forecast requested",
        "forecast failed",
    ]
    assert all(event["job"] == "nightly" for event in events)
    assert events[2]["exception"]["message"] == "empty city name"
    assert result.stderr.strip() == "['sunny', 'unknown']"
