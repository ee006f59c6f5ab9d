"""Speed of `alog pretty` and `alog stats` on a generated file (docs/performance.md).

``python benchmarks/pretty.py [EVENTS]``: writes EVENTS alog lines (default 400,000, about
84 MB) to a temporary file and times each command with its output to /dev/null.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "pretty --no-color": ["pretty", "--no-color"],
    "pretty, colour (FORCE_COLOR=1)": ["pretty"],
    "pretty --level error --no-color": ["pretty", "--level", "error", "--no-color"],
    "stats": ["stats"],
}


def generate(path: Path, events: int) -> None:
    rng = random.Random(1)
    levels = ["debug", "info", "info", "info", "warning", "error"]
    with path.open("w") as file:
        for i in range(events):
            event = {
                "time": f"2026-12-02T02:09:35.{i % 1_000_000:06d}Z",
                "level": rng.choice(levels),
                "logger": rng.choice(["app.http", "app.db", "worker"]),
                "msg": "request handled",
                "method": "GET",
                "path": f"/items/{i}",
                "status": 200,
                "duration_ms": round(rng.random() * 10, 3),
                "user": {"id": i, "name": "ada lovelace"},
            }
            file.write(json.dumps(event, separators=(",", ":")) + "\n")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        generate(path, events)
        size = path.stat().st_size / 1e6
        print(f"{events} events, {size:.1f} MB")
        for name, args in COMMANDS.items():
            env = {**os.environ, "NO_COLOR": "", "FORCE_COLOR": "1" if "colour" in name else ""}
            start = time.perf_counter()
            with open(os.devnull, "wb") as devnull:
                subprocess.run(
                    [sys.executable, "-m", "alog", *args, str(path)],
                    stdout=devnull,
                    env=env,
                    check=True,
                )
            elapsed = time.perf_counter() - start
            print(f"  {name:34} {elapsed:6.2f} s  {size / elapsed:6.1f} MB/s")


main()
