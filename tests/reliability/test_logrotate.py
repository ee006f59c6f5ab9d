"""The real ``logrotate`` rotating the file of a running pipeline, in a child process.

``create`` mode (rename, then a new empty file) with ``compress`` + ``delaycompress``, and a
``postrotate`` SIGHUP to a child run with ``reopen_on_sighup=True`` (or no SIGHUP at all: the
writer notices the rename). The child logs ~10,000 events/s throughout; after two rotations
and a SIGTERM drain, every event is in exactly one of the three files, whole, and the child's
own books say the same: nothing lost.
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Spawn, parse_lines

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"

pytestmark = pytest.mark.skipif(
    not Path(LOGROTATE).exists(), reason="logrotate is not installed (.ci/run installs it)"
)

APP = """
import asyncio, json, sys
import alog

async def main(path, name):
    log = alog.get_logger(name)
    seq = 0
    async with alog.run(alog.File(path), reopen_on_sighup=True, handle_sigterm=True) as pipeline:
        sys.stderr.write("ready\\n")
        while True:
            for _ in range(50):
                log.info("event", seq=seq, pad="x" * 60)
                seq += 1
            await asyncio.sleep(0.005)
    stats = pipeline.statistics()
    mine = stats.destinations[0]
    sys.stderr.write(json.dumps({
        "logged": seq, "accepted": stats.accepted, "written": stats.written,
        "dropped": stats.dropped, "undelivered": stats.undelivered, "reopens": mine.reopens,
    }) + "\\n")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

CONFIG = """
{path} {{
    create 0644
    rotate 5
    compress
    delaycompress
    missingok
{postrotate}}}
"""

POSTROTATE = """    postrotate
        kill -HUP {pids}
    endscript
"""


@pytest.mark.parametrize(
    ("signal_it", "processes"),
    [(True, 1), (False, 1), (True, 2)],
    ids=["postrotate-sighup", "no-signal", "two-processes-one-file"],
)
def test_logrotate_create_mode_loses_nothing(
    tmp_path: Path, spawn: Spawn, signal_it: bool, processes: int
) -> None:
    """Two real rotations under running writers: 0 events lost, none twice, none torn.

    Two processes appending to one file is the set-up logrotate is for (alog's own rotation
    refuses it): each reopens on its SIGHUP, and their lines never mix.
    """
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o755)
    path = folder / "app.log"
    children = [spawn(APP, [str(path), f"app{n}"]) for n in range(processes)]
    for child in children:
        child.wait_line(lambda line: line == "ready")
    pids = " ".join(str(child.proc.pid) for child in children)
    config = tmp_path / "logrotate.conf"
    config.write_text(
        CONFIG.format(path=path, postrotate=POSTROTATE.format(pids=pids) if signal_it else "")
    )
    config.chmod(0o644)  # logrotate refuses a config that others may write
    for _ in range(2):
        time.sleep(0.5)
        rotated = subprocess.run(
            [LOGROTATE, "-f", "-s", str(tmp_path / "state"), str(config)],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr.decode()
    time.sleep(0.5)
    for child in children:
        child.proc.send_signal(signal.SIGTERM)
    books = []
    for child in children:
        assert child.wait(30) == 0, child.stderr
        books.append(json.loads(child.stderr.splitlines()[-1]))

    oldest = gzip.decompress((folder / "app.log.2.gz").read_bytes())
    files = [oldest, (folder / "app.log.1").read_bytes(), path.read_bytes()]
    events = [event for data in files for event in parse_lines(data)]
    assert all(parse_lines(data) for data in files), "every file got events"
    assert len(events) == sum(mine["written"] for mine in books)
    for n, mine in enumerate(books):
        own = [event for event in events if event["logger"] == f"app{n}"]
        seqs = [event["seq"] for event in own if event["msg"] == "event"]
        assert seqs == list(range(mine["logged"])), "every event once, in order, across files"
        assert len(own) + 1 == mine["written"] == mine["accepted"]  # and its alog.sigterm
        assert (mine["dropped"], mine["undelivered"]) == (0, 0)
        assert mine["reopens"] >= 2  # the writer may notice the rename before the SIGHUP
