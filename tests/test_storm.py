"""Storm control: repeats folded past a rate and reported once, levels sampled, all counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import alog
from alog import _storm
from alog._storm import StormControl

from .conftest import read_events


async def test_a_storm_is_folded_and_the_request_line_survives(tmp_path: Path) -> None:
    """Past the rate one event repeats into a report; a different event still gets through."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), rate_limit=(10, 60.0), max_events=100) as pipeline:
        for i in range(1000):
            log.info("retrying connection", attempt=i)
            if i == 500:
                log.info("request handled", status=200)
    events = read_events(path)
    messages = [event["msg"] for event in events]
    assert messages.count("retrying connection") == 10
    assert "request handled" in messages
    (report,) = [event for event in events if event["msg"] == "alog.suppressed"]
    assert report == {
        "time": report["time"],
        "level": "info",
        "logger": "app",
        "msg": "alog.suppressed",
        "suppressed": 990,
        "message": "retrying connection",
        "max": 10,
        "per_seconds": 60.0,
    }
    stats = pipeline.statistics()
    assert (stats.filtered, stats.dropped) == (990, 0)
    assert stats.accepted == 1002  # all that was logged, the folded too, and the report


async def test_warning_and_above_are_left_alone_unless_named(tmp_path: Path) -> None:
    """The shorthand limits levels below warning; naming a level is asking for it."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), rate_limit=(2, 60.0)):
        for _ in range(5):
            log.warning("disk almost full")
            log.error("write failed")
    assert len(read_events(path)) == 10
    path.unlink()
    async with alog.run(alog.File(path), rate_limit={"error": (2, 60.0)}):
        for _ in range(5):
            log.warning("disk almost full")
            log.error("write failed")
            log.info("tick")
    messages = [event["msg"] for event in read_events(path)]
    assert messages.count("write failed") == 2
    assert (messages.count("disk almost full"), messages.count("tick")) == (5, 5)
    assert messages.count("alog.suppressed") == 1


async def test_a_new_window_reports_the_last_ones_folds_first(tmp_path: Path) -> None:
    """The report comes with the key's next event once its window ended, before that event."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path), rate_limit=(2, 0.2)):
        for _ in range(5):
            log.info("poll")
        await anyio.sleep(0.3)
        log.info("poll")
    summary = [(e["msg"], e.get("suppressed")) for e in read_events(path)]
    assert summary[:4] == [("poll", None), ("poll", None), ("alog.suppressed", 3), ("poll", None)]


async def test_the_reporter_reports_a_storm_that_stopped(tmp_path: Path) -> None:
    """A storm that ends is reported within about a second, not only at the next event."""
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), rate_limit=(1, 0.1)) as pipeline:
        for _ in range(3):
            alog.get_logger("app").info("once")
        await anyio.sleep(1.5)
        await pipeline.aflush()
        assert [e["msg"] for e in read_events(path)] == ["once", "alog.suppressed"]


async def test_a_redacted_message_stays_redacted_in_the_report(tmp_path: Path) -> None:
    """The report quotes the message after redaction scrubbed it."""
    secret = "tok-123456"  # noqa: S105 - a fake secret, searched for below
    path = tmp_path / "out.log"
    async with alog.run(alog.File(path), redact=["token"], rate_limit=(1, 60.0)):
        for _ in range(3):
            alog.get_logger("app").info(f"auth with {secret}", token=secret)
    assert secret.encode() not in path.read_bytes()
    assert read_events(path)[-1]["message"] == "auth with [redacted]"


async def test_sampling_keeps_a_fraction_and_counts_the_rest(tmp_path: Path) -> None:
    """sample={"debug": 0.1} keeps about a tenth of debug events, filtered not dropped."""
    path = tmp_path / "out.log"
    log = alog.get_logger("app")
    async with alog.run(
        alog.File(path), level="debug", sample={"debug": 0.1, "info": 0.0}
    ) as pipeline:
        for i in range(2000):
            log.debug("detail", i=i)
            log.info("never kept")
        log.warning("always kept")
    kept = [e["msg"] for e in read_events(path)]
    assert 100 <= kept.count("detail") <= 330
    assert "never kept" not in kept
    assert "always kept" in kept
    stats = pipeline.statistics()
    assert stats.filtered == 4000 - kept.count("detail")
    assert stats.dropped == 0


def test_sampling_a_fraction_of_every_level_below_warning() -> None:
    """A bare fraction applies below warning only."""
    control = StormControl(rate_limit=None, sample=0.0, report=lambda e, n: None)
    event: dict[str, Any] = {"msg": "m", "logger": "a", "level": "x"}
    assert not control.admit(event, 10)
    assert not control.admit(event, 20)
    assert control.admit(event, 30)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"rate_limit": 10}, TypeError, id="rate-not-a-pair"),
        pytest.param({"rate_limit": (0, 1.0)}, ValueError, id="rate-zero"),
        pytest.param({"rate_limit": (1, -1)}, ValueError, id="negative-window"),
        pytest.param({"rate_limit": {"loud": (1, 1.0)}}, ValueError, id="unknown-level"),
        pytest.param({"sample": {"debug": 2}}, ValueError, id="sample-above-one"),
        pytest.param({"sample": {"debug": "half"}}, TypeError, id="sample-not-a-number"),
    ],
)
def test_bad_storm_options_fail_at_run(options: dict[str, Any], error: type[Exception]) -> None:
    """Misconfiguration fails where it is written."""
    with pytest.raises(error):
        alog.run(**options)


def test_sweep_reports_ended_windows_and_forgets_idle_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory is bounded: idle keys are dropped, and past MAX_KEYS new keys pass unlimited."""
    reports: list[dict[str, object]] = []
    control = StormControl(
        rate_limit=(1, 0.05), sample=None, report=lambda event, n: reports.append(event)
    )
    for msg in ("a", "a", "b"):
        control.admit({"msg": msg, "logger": "l", "level": "info"}, 20)
    time.sleep(0.06)
    assert control.sweep() == 1
    assert [(r["message"], r["suppressed"]) for r in reports] == [("a", 1)]
    assert control.sweep() == 0
    monkeypatch.setattr(_storm, "MAX_KEYS", 3)
    for i in range(10):
        assert control.admit({"msg": str(i), "logger": "l", "level": "info"}, 20)
    for _ in range(5):  # an untracked key is never limited
        assert control.admit({"msg": "9", "logger": "l", "level": "info"}, 20)
