"""The incident, reproduced: examples/incident.py logging into a stdout pipe that stops being read.

Each test runs the example in a subprocess with a real pipe as its stdout and plays the reader:
stalled, resumed, or gone for good.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .conftest import INCIDENT, Pipe, PipeReader, Spawn, parse_lines

MIB = 1024 * 1024
RSS_SLACK_KIB = 12 * 1024
"""What RSS may grow beyond max_bytes: allocator slack, one batch in flight, the lag probe."""
MAX_LOOP_LAG_MS = 250.0
"""Generous: a shared 2-core CI VM preempts us; the peers froze the loop for 10,000 ms."""


def _check_accounting(output: bytes, end: dict[str, str]) -> tuple[int, int]:
    """written + dropped == logged, exactly, from the program's numbers and from the lines."""
    events = parse_lines(output)
    summaries = [event for event in events if event["msg"] == "alog.dropped"]
    app = [event for event in events if event["msg"] == "request handled"]
    assert len(app) + len(summaries) == len(events)
    logged, written, dropped = int(end["logged"]), int(end["written"]), int(end["dropped"])
    assert int(end["undelivered"]) == 0
    assert written == len(events), "statistics count what the reader got"
    assert len(app) + dropped == logged, "every event is written or counted as dropped"
    assert sum(summary["dropped"] for summary in summaries) == dropped
    seqs = Counter(event["seq"] for event in app)
    assert not [seq for seq, count in seqs.items() if count > 1], "an event was written twice"
    return dropped, len(summaries)


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(200_000, id="200k"),
        pytest.param(1_000_000, id="1M", marks=[pytest.mark.soak, pytest.mark.timeout(600)]),
    ],
)
def test_memory_stays_within_max_bytes_while_the_pipe_is_stalled(
    spawn: Spawn, pipe: Pipe, events: int
) -> None:
    """RSS grows by at most max_bytes plus a small constant, however much is logged."""
    max_bytes = 4 * MIB
    child = spawn(
        INCIDENT,
        [
            f"--events={events}",
            "--rate=400000",
            "--burst=500",
            f"--max-bytes={max_bytes}",
            "--write-timeout=60",
            "--shutdown-timeout=60",
        ],
        stdout=pipe.write_end,
    )
    pipe.close(pipe.write_end)
    start = child.report("start")
    logged = child.report("logged")  # every event was logged with nobody reading
    growth_kib = int(logged["peak_rss_kib"]) - int(start["rss_kib"])
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=60) == 0, child.stderr
    output = reader.join(timeout=30)
    end = child.report("end")
    dropped, summaries = _check_accounting(output, end)
    print(
        f"\nstalled pipe, {events} events: RSS growth {growth_kib} KiB for max_bytes "
        f"{max_bytes // 1024} KiB; peak queued {int(end['peak_queued_bytes']) // 1024} KiB; "
        f"dropped {dropped} in {summaries} summaries; max loop lag {end['max_lag_ms']} ms"
    )
    assert int(end["peak_queued_bytes"]) <= max_bytes + 64 * 1024
    assert growth_kib <= max_bytes // 1024 + RSS_SLACK_KIB
    assert dropped > events // 2, "the pipe held most of them: the test proved nothing"


@pytest.mark.parametrize(
    ("duration", "stall"),
    [
        pytest.param(4.0, 2.0, id="short"),
        pytest.param(30.0, 8.0, id="long", marks=[pytest.mark.soak, pytest.mark.timeout(600)]),
    ],
)
@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest"])
def test_resumed_reader_gets_everything_not_reported_dropped(
    spawn: Spawn, pipe: Pipe, duration: float, stall: float, overflow: str
) -> None:
    """After a stall shorter than write_timeout the program keeps running; the books balance."""
    child = spawn(
        INCIDENT,
        [
            f"--duration={duration}",
            f"--max-bytes={512 * 1024}",
            f"--write-timeout={stall + 10}",
            f"--overflow={overflow}",
        ],
        stdout=pipe.write_end,
    )
    pipe.close(pipe.write_end)
    child.report("start")
    time.sleep(stall)
    reader = PipeReader(pipe.read_end).start()
    assert child.wait(timeout=duration + 30) == 0, child.stderr
    output = reader.join(timeout=30)
    end = child.report("end")
    assert end["ending"] == "finished"
    dropped, summaries = _check_accounting(output, end)
    assert dropped > 0, "the stall was too short to fill the queue"
    assert summaries >= 1, "the drops were reported in the log itself"
    assert "alog:" not in child.stderr, "drops are reported in the log, not as errors"
    lag = float(end["max_lag_ms"])
    print(f"\nresumed reader: dropped {dropped}, max loop lag {lag} ms")
    assert lag < MAX_LOOP_LAG_MS


def test_dead_reader_stops_the_program_after_write_timeout(spawn: Spawn, pipe: Pipe) -> None:
    """A reader that never comes back: exit 1 within write_timeout + a few s, one message."""
    write_timeout = 2.0
    child = spawn(
        INCIDENT,
        ["--duration=60", f"--write-timeout={write_timeout}"],
        stdout=pipe.write_end,
    )
    pipe.close(pipe.write_end)
    child.report("start")
    started = time.monotonic()
    assert child.wait(timeout=write_timeout + 30) == 1, child.stderr
    latency = time.monotonic() - started
    print(f"\ndead reader: exit status 1 after {latency:.2f} s (write_timeout {write_timeout} s)")
    assert latency < write_timeout + 5.0
    messages = [line for line in child.lines if line.startswith("alog:")]
    if messages[-1].endswith("events logged after the writer failed on stdout were not written"):
        messages.pop()  # what was logged after the failure: one count at exit, not a line each
    assert len(messages) == 1, child.stderr
    assert "no progress writing to stdout" in messages[0]
    assert "Traceback" not in child.stderr
    assert len(child.lines) < 20, "no error storm on stderr"
    end = child.report("end")
    assert end["ending"] == "writer-failed"
    assert end["state"] == "failed"
    # Everything not written is accounted for: lost in the queue or refused afterwards.
    assert int(end["written"]) + int(end["undelivered"]) + int(end["dropped"]) == int(end["logged"])
