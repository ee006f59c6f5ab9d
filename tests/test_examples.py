"""Every example runs: the quickstart here; the others in the tests of what they show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"

# Where each other example is executed, so a new example cannot go untested.
TESTED_ELSEWHERE = {
    "incident.py": "tests/reliability/test_incident.py",
    "fastapi_app.py": "tests/test_asgi.py",
    "aiohttp_app.py": "tests/test_aiohttp.py",
    "console.py": "tests/test_console.py",
}


def test_quickstart_prints_one_json_event_per_line() -> None:
    """The README's first command: every stdout line is a JSON event, in a clean exit."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    messages = [event["msg"] for event in events]
    assert messages[0] == "service started"
    assert messages.count("request handled") == 3
    assert {e["request_id"] for e in events if e["msg"] == "request handled"} == {
        "r-0",
        "r-1",
        "r-2",
    }
    assert events[-1]["msg"] == "service stopping"
    failure = next(e for e in events if e["msg"] == "lookup failed")
    assert failure["exception"]["type"] == "KeyError"


def test_every_example_is_executed_by_some_test() -> None:
    """A new example must be added to a test (here or in the list above)."""
    root = EXAMPLES.parent
    for example in sorted(EXAMPLES.glob("*.py")):
        if example.name == "quickstart.py":
            continue
        test_file = root / TESTED_ELSEWHERE[example.name]
        assert example.stem in test_file.read_text(), (example.name, test_file)
