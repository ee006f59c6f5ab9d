"""``alog.File`` following its path: reopened (request, SIGHUP, moved, deleted) and rotated.

Real files in ``tmp_path``, real renames and deletes under a running writer, real signals. What
every test checks in the end: each line in every file parses as JSON, each event is in exactly
one file, and the books match the files (written + dropped + undelivered + filtered ==
accepted).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from blockbuster import blockbuster_ctx

import alog
from alog._destinations import file
from alog._destinations.file import FileStream, Opened, open_file

from .conftest import RunScript, read_events


def events_in(*paths: Path) -> list[dict[str, Any]]:
    """Every event of these files (``.gz`` ones decompressed), in the order given."""
    events: list[dict[str, Any]] = []
    for path in paths:
        if path.suffix == ".gz":
            plain = path.with_name(path.name + ".plain")
            plain.write_bytes(gzip.decompress(path.read_bytes()))
            events += read_events(plain)
            plain.unlink()
        else:
            events += read_events(path)
    return events


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [event["seq"] for event in events if "seq" in event]


def balanced(stats: alog.Statistics) -> bool:
    return stats.accepted == stats.written + stats.dropped + stats.undelivered + stats.filtered


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await anyio.sleep(0.01)


async def log_until(log: alog.Logger, start: int, done: Callable[[], bool]) -> int:
    """Log from ``start`` until ``done()`` (the writer checks its path only while writing)."""
    seq = start
    deadline = time.monotonic() + 10.0
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await log_steadily(log, seq, seq + 10)
        seq += 10
        await anyio.sleep(0.01)
    return seq


async def log_steadily(log: alog.Logger, start: int, stop: int, *, pause_every: int = 100) -> None:
    """Log ``seq`` from ``start`` to ``stop``, yielding now and then so the writer runs."""
    for seq in range(start, stop):
        log.info("event", seq=seq, pad="x" * 40)
        if seq % pause_every == 0:
            await anyio.sleep(0.001)


async def test_rotating_and_reopening_never_block_the_event_loop(tmp_path: Path) -> None:
    """blockbuster fails the test if a reopen, a rotation or a gzip runs on the loop."""
    rotating, moving = tmp_path / "rotating.log", tmp_path / "moving.log"
    log = alog.get_logger("app")
    files = alog.File(rotating, rotate_bytes=50_000, keep=2, compress=True), alog.File(moving)
    async with alog.run(*files) as pipeline:
        with blockbuster_ctx():
            for round_ in range(6):
                await log_steadily(log, round_ * 1000, round_ * 1000 + 1000)
                assert pipeline.reopen()
                await anyio.to_thread.run_sync(moving.rename, tmp_path / f"moved.{round_}")
                seq = 100_000 + round_ * 1000  # until the writer noticed: no stat on the loop
                while not await anyio.to_thread.run_sync(moving.exists):
                    await log_steadily(log, seq, seq + 10)
                    seq += 10
            assert (await pipeline.aflush(10)).complete
        stats = pipeline.statistics()
    first, second = stats.destinations
    assert first.rotations > 0 and first.reopens > 0 and second.reopens >= 6
    assert first.written == second.written == stats.accepted


FORKING_APP = """
import asyncio, os, sys
import alog

async def main():
    async with alog.run(alog.File("app.log", rotate_bytes=1000)):
        pid = os.fork()
        if pid == 0:
            fds = os.listdir("/proc/self/fd")
            held = [os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds]
            os._exit(sum(name.endswith("app.log.lock") for name in held))
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))

asyncio.run(main())
"""


def test_a_forked_child_lets_go_of_the_rotation_lock(run_script: RunScript) -> None:
    """The child closes its copy of the lock: it must not hold it once the parent is gone."""
    result = run_script(FORKING_APP)
    assert result.returncode == 0, "the child kept a copy of the lock"


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"rotate_bytes": 0}, ValueError, "rotate_bytes= must be positive"),
        ({"rotate_bytes": 1.5}, TypeError, "rotate_bytes= must be an int"),
        ({"rotate_bytes": True}, TypeError, "rotate_bytes= must be an int"),
        ({"rotate_every": 0}, ValueError, "rotate_every= must be a positive finite"),
        ({"rotate_every": float("inf")}, ValueError, "positive finite"),
        ({"rotate_every": float("nan")}, ValueError, "positive finite"),
        ({"rotate_every": timedelta(0)}, ValueError, "positive finite"),
        ({"rotate_every": "1d"}, TypeError, "seconds .an int or float. or a datetime.timedelta"),
        ({"rotate_bytes": 10, "keep": 0}, ValueError, "keep= must be at least 1"),
        ({"rotate_bytes": 10, "keep": 2.0}, TypeError, "keep= must be an int"),
        ({"rotate_bytes": 10, "compress": "yes"}, TypeError, "compress= must be True or False"),
        ({"keep": 3}, ValueError, "give rotate_bytes= or rotate_every= too"),
        ({"compress": True}, ValueError, "give rotate_bytes= or rotate_every= too"),
    ],
)
def test_rotation_options_are_checked_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A bad option fails where it is written, with what was wrong."""
    with pytest.raises(error, match=message):
        alog.File("app.log", **options)


def test_repr_says_how_the_file_rotates() -> None:
    """The repr names the destination in statistics and errors: rotation included."""
    assert repr(alog.File("a.log")) == "alog.File('a.log')"
    file = alog.File("a.log", rotate_bytes=1000, rotate_every=timedelta(hours=1), compress=True)
    assert repr(file) == (
        "alog.File('a.log', rotate_bytes=1000, rotate_every=3600, keep=5, compress=True)"
    )


def test_reopen_on_sighup_is_checked() -> None:
    with pytest.raises(TypeError, match="reopen_on_sighup must be True or False"):
        alog.run(reopen_on_sighup=1)  # type: ignore[arg-type]


# -- the stream on its own ----------------------------------------------------------------


async def test_a_reopen_splits_the_stream_where_it_was_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the stream took before the request is in the old file, the rest in the new."""
    monkeypatch.setattr(file, "WATCH_EVERY", 3600.0)  # only the request moves it on
    path = tmp_path / "app.log"
    opened: Opened = await anyio.to_thread.run_sync(open_file, path, None)
    stream = FileStream(opened, str(path), rotation=None, stall_timeout=5.0)
    try:
        stream.submit(b"old 1\nold 2\n")
        path.rename(tmp_path / "app.log.1")
        await stream.reopen()
        await stream.send(b"new 1\n")
    finally:
        await stream.aclose()
    assert (tmp_path / "app.log.1").read_bytes() == b"old 1\nold 2\n"
    assert path.read_bytes() == b"new 1\n"
    assert (stream.reopens, stream.done, stream.submitted) == (1, 18, 18)


async def test_one_big_batch_is_cut_between_lines_into_full_files(tmp_path: Path) -> None:
    """Rotation inside a batch: each file gets as many whole lines as fit, none split."""
    path = tmp_path / "app.log"
    rotation = file.Rotation(max_bytes=1000, every=None, keep=20, compress=False)
    opened: Opened = await anyio.to_thread.run_sync(open_file, path, rotation)
    stream = FileStream(opened, str(path), rotation=rotation, stall_timeout=5.0)
    lines = b"".join(b"%09d" % n + b"x" * 90 + b"\n" for n in range(95))  # 100 bytes each
    try:
        await stream.send(lines)
    finally:
        await stream.aclose()
    files = [path.with_name(f"app.log.{n}") for n in range(9, 0, -1)] + [path]
    assert [f.stat().st_size for f in files] == [1000] * 9 + [500]
    assert b"".join(f.read_bytes() for f in files) == lines
    assert (stream.rotations, stream.reopens, stream.done) == (9, 0, len(lines))
    assert not path.with_name("app.log.10").exists()


# -- reopening ----------------------------------------------------------------------------


async def test_reopen_after_a_rename_loses_no_line(tmp_path: Path) -> None:
    """logrotate's create mode by hand: rename, create, reopen(); every event in one file."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)) as pipeline:
        await log_steadily(log, 0, 2000)
        path.rename(tmp_path / "app.log.1")
        path.touch()  # create mode: logrotate makes the new file
        await log_steadily(log, 2000, 4000)
        assert pipeline.reopen()
        await log_steadily(log, 4000, 6000)
        await wait_until(lambda: pipeline.statistics().destinations[0].reopens >= 1)
        await log_steadily(log, 6000, 7000)
        assert (await pipeline.aflush(10)).complete
        stats = pipeline.statistics()
    rotated, current = read_events(tmp_path / "app.log.1"), read_events(path)
    assert seqs(rotated) + seqs(current) == list(range(7000))
    assert seqs(current)[-1] == 6999 and seqs(rotated)[0] == 0
    assert stats.destinations[0].reopens in (1, 2)  # the writer may notice the rename first
    assert stats.written == 7000 and balanced(stats)
    assert not pipeline.reopen(), "a closed pipeline has nothing to reopen"


async def test_a_file_moved_under_the_writer_is_followed(tmp_path: Path) -> None:
    """No request at all: the writer notices the path names another file and reopens it."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)) as pipeline:
        await log_steadily(log, 0, 1000)
        assert (await pipeline.aflush(10)).complete
        path.rename(tmp_path / "moved.log")
        last = await log_until(log, 1000, path.exists)
        await log_steadily(log, last, last + 1000)
        stats_before_close = pipeline.statistics()
    stats = pipeline.statistics()
    moved, current = read_events(tmp_path / "moved.log"), read_events(path)
    assert seqs(moved) + seqs(current) == list(range(last + 1000))
    assert seqs(current), "the path was opened again"
    assert stats_before_close.destinations[0].reopens == 1
    assert stats.written == last + 1000 and balanced(stats)


async def test_a_deleted_file_is_created_again(tmp_path: Path) -> None:
    """Deleted while open: later events go to a new file at the path (earlier ones to the
    deleted inode, read back here through a descriptor opened before the delete)."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path)) as pipeline:
        await log_steadily(log, 0, 1000)
        assert (await pipeline.aflush(10)).complete
        with path.open("rb") as old:
            path.unlink()
            last = await log_until(log, 1000, path.exists)
            await log_steadily(log, last, last + 1000)
            assert (await pipeline.aflush(10)).complete
            deleted = old.read()
        stats = pipeline.statistics()
    old_copy = tmp_path / "deleted.log"
    old_copy.write_bytes(deleted)
    assert seqs(read_events(old_copy)) + seqs(read_events(path)) == list(range(last + 1000))
    assert stats.destinations[0].reopens == 1
    assert (stats.written, stats.write_errors, stats.state) == (last + 1000, 0, "running")


async def test_sighup_reopens_when_asked_for(tmp_path: Path) -> None:
    """A real SIGHUP with reopen_on_sighup=True: the file is reopened; the old handler is back."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    before = signal.getsignal(signal.SIGHUP)
    async with alog.run(alog.File(path), alog.Stderr(level="error"), reopen_on_sighup=True) as p:
        await log_steadily(log, 0, 500)
        assert (await p.aflush(5)).complete
        path.rename(tmp_path / "app.log.1")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: p.statistics().destinations[0].reopens >= 1)
        await log_steadily(log, 500, 1000)
        stats = p.statistics()
    assert signal.getsignal(signal.SIGHUP) == before
    assert seqs(read_events(tmp_path / "app.log.1")) + seqs(read_events(path)) == list(range(1000))
    assert stats.destinations[1].reopens == 0, "stderr has no path to reopen"


def test_reopen_on_sighup_needs_the_main_thread() -> None:
    """Only the main thread can handle signals: say so before starting anything."""
    errors: list[BaseException] = []

    def in_thread() -> None:
        async def main() -> None:
            async with alog.run(alog.Stderr(), reopen_on_sighup=True):
                pass

        try:
            anyio.run(main)
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert len(errors) == 1
    assert "reopen_on_sighup=True) needs its event loop in the main thread" in str(errors[0])


async def test_reopen_from_another_thread(tmp_path: Path) -> None:
    """pipeline.reopen() from a worker thread hands the request to the loop."""
    path = tmp_path / "app.log"
    async with alog.run(alog.File(path)) as pipeline:
        alog.get_logger("app").info("event", seq=0)
        assert (await pipeline.aflush(5)).complete
        path.rename(tmp_path / "app.log.1")
        assert await anyio.to_thread.run_sync(pipeline.reopen)
        await wait_until(lambda: pipeline.statistics().destinations[0].reopens == 1)
        alog.get_logger("app").info("event", seq=1)
    assert seqs(read_events(tmp_path / "app.log.1")) == [0]
    assert seqs(read_events(path)) == [1]


# -- reopening fails ----------------------------------------------------------------------


def break_the_path(path: Path, how: str) -> None:
    """Make ``path`` impossible to open for appending."""
    if how == "directory removed":
        path.unlink()
        path.parent.rmdir()
    else:  # root ignores permissions: a directory in the file's place is refused to anyone
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["directory removed", "a directory in its place"])
async def test_a_required_file_that_cannot_be_reopened_fails_the_pipeline(
    tmp_path: Path, how: str
) -> None:
    """The reopen's error is a writer failure, with the books balanced."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "app.log"
    log = alog.get_logger("app")
    with pytest.raises(alog.WriterFailed) as failure:
        async with alog.run(alog.File(path), alog.Stderr(level="critical")) as pipeline:
            await log_steadily(log, 0, 300)
            assert (await pipeline.aflush(10)).complete
            break_the_path(path, how)
            pipeline.reopen()
            await anyio.sleep(10)
    assert isinstance(failure.value.__cause__, OSError)
    stats = pipeline.statistics()
    assert stats.destinations[0].state == "failed"
    assert stats.destinations[0].written == 300


@pytest.mark.parametrize("how", ["directory removed", "a directory in its place"])
async def test_an_optional_file_that_cannot_be_reopened_retries_and_counts(
    tmp_path: Path, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Optional: counted as undelivered while it cannot be opened, written again once it can."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "app.log"
    log = alog.get_logger("app")
    old = path.open("w+b")  # the unlinked file, read back at the end
    async with alog.run(alog.File(path, required=False)) as pipeline:
        await log_steadily(log, 0, 300)
        assert (await pipeline.aflush(10)).complete
        break_the_path(path, how)
        # Noticed by the writer while it writes: no request needed.
        last = await log_until(
            log, 300, lambda: pipeline.statistics().destinations[0].state == "retrying"
        )
        await log_steadily(log, last, last + 100)
        if how == "directory removed":
            folder.mkdir()
        else:
            path.rmdir()
        await wait_until(lambda: pipeline.statistics().destinations[0].state == "running")
        await log_steadily(log, last + 100, last + 200)
        assert (await pipeline.aflush(10)).complete
        stats = pipeline.statistics()
    mine = stats.destinations[0]
    with old:
        (tmp_path / "unlinked.log").write_bytes(old.read())
    before, after = seqs(read_events(tmp_path / "unlinked.log")), seqs(read_events(path))
    assert before == list(range(len(before))) and len(before) >= 300
    assert after == list(range(after[0], last + 200)), "what came after the reopen, in order"
    assert mine.written == len(before) + len(after)  # the books say what the files got
    assert mine.undelivered > 0 and mine.write_errors >= 1
    assert balanced(stats) and stats.accepted == last + 200 + 1  # and alog.destination_failed
    assert "optional destination" in capfd.readouterr().err


PERMISSION_APP = """
import asyncio, concurrent.futures.thread, json, os, sys
import alog

async def main(path, required):
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, required=required), alog.Stderr(level="critical")) as p:
        log.info("event", seq=0)
        await p.aflush(5)
        # Everything is imported (the interpreter lives under /root): now become nobody,
        # every thread at once (glibc), the writer's included.
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.readline)  # the folder is read-only now
        p.reopen()
        while p.statistics().destinations[0].state == "running":  # required: cancelled here
            await asyncio.sleep(0.01)
        for seq in range(1, 101):
            log.info("event", seq=seq)
            await asyncio.sleep(0.005)
    mine = p.statistics().destinations[0]
    print(json.dumps({"written": mine.written, "undelivered": mine.undelivered,
                      "error": mine.last_error}))

asyncio.run(main(sys.argv[1], sys.argv[2] == "required"))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the app as another user")
@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_permission_denied_on_reopen_follows_required(required: bool) -> None:
    """An app running as nobody cannot create the file again in a folder made read-only."""
    folder = Path(tempfile.mkdtemp(prefix="alog-permission-"))
    try:
        folder.chmod(0o755)
        os.chown(folder, 65534, 65534)
        script = folder / "app.py"
        script.write_text(PERMISSION_APP)
        path = folder / "app.log"
        with subprocess.Popen(
            [sys.executable, str(script), str(path), "required" if required else "optional"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=folder,
        ) as child:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == b"ready\n"
            folder.chmod(0o555)
            path.rename(folder / "app.log.1")  # root may; the app may not create app.log
            out, err = child.communicate(b"go\n", timeout=30)
        assert seqs(read_events(folder / "app.log.1")) == [0]
        assert not path.exists()
        if required:
            assert child.returncode == 1
            assert "Permission denied" in err.decode() and err.decode().count("\n") == 1
        else:
            assert child.returncode == 0, err.decode()
            books = json.loads(out)
            assert books["written"] == 1
            assert books["undelivered"] == 100 + 1  # and its own alog.destination_failed
            assert "PermissionError" in books["error"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


# -- rotation of its own ------------------------------------------------------------------


async def test_rotation_by_size_keeps_whole_lines_and_n_files(tmp_path: Path) -> None:
    """No file exceeds rotate_bytes, every line is whole, the newest ``keep`` files stay."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_bytes=4000, keep=3)) as pipeline:
        await log_steadily(log, 0, 1000)
    stats = pipeline.statistics()
    files = [path.with_name(f"app.log.{n}") for n in (3, 2, 1)] + [path]
    assert not path.with_name("app.log.4").exists()
    assert all(0 < file.stat().st_size <= 4000 for file in files)
    kept = seqs(events_in(*files))
    assert kept == list(range(1000 - len(kept), 1000)), "the newest events, in order"
    assert stats.destinations[0].rotations > 3
    assert stats.written == 1000 and balanced(stats)
    assert (tmp_path / "app.log.lock").exists()


async def test_a_line_longer_than_rotate_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_bytes=500, keep=5)):
        log.info("small", seq=0)
        log.info("big", seq=1, pad="y" * 2000)
        log.info("small", seq=2)
    assert seqs(read_events(path.with_name("app.log.2"))) == [0]
    assert seqs(read_events(path.with_name("app.log.1"))) == [1]
    assert seqs(read_events(path)) == [2]


async def test_compressed_rotation(tmp_path: Path) -> None:
    """compress=True: rotated files become ``app.log.N.gz``, done by a thread of their own."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_bytes=20_000, keep=2, compress=True)) as pipeline:
        await log_steadily(log, 0, 1000)
    stats = pipeline.statistics()
    gz = [path.with_name("app.log.2.gz"), path.with_name("app.log.1.gz")]
    await wait_until(lambda: all(file.exists() for file in gz))
    await wait_until(lambda: not list(tmp_path.glob("app.log.rotated-*")))
    assert not path.with_name("app.log.3.gz").exists()
    kept = seqs(events_in(*gz, path))
    assert kept == list(range(1000 - len(kept), 1000))
    assert stats.destinations[0].rotations >= 3


async def test_a_rotated_file_left_uncompressed_is_compressed_at_the_next_open(
    tmp_path: Path,
) -> None:
    """A process that exited before its gzip finished loses nothing: the next one does it."""
    path = tmp_path / "app.log"
    (tmp_path / "app.log.rotated-1").write_bytes(b'{"msg":"older"}\n')
    (tmp_path / "app.log.rotated-2").write_bytes(b'{"msg":"newer"}\n')
    (tmp_path / "app.log.rotated-2.gz.tmp").write_bytes(b"half a gzip")
    async with alog.run(alog.File(path, rotate_bytes=10_000, compress=True)):
        alog.get_logger("app").info("now")
    await wait_until(lambda: not list(tmp_path.glob("app.log.rotated-*")))
    assert [e["msg"] for e in events_in(path.with_name("app.log.2.gz"))] == ["older"]
    assert [e["msg"] for e in events_in(path.with_name("app.log.1.gz"))] == ["newer"]
    assert [e["msg"] for e in read_events(path)] == ["now"]


async def test_size_and_period_together_rotate_on_whichever_comes_first(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_bytes=3000, rotate_every=0.5, keep=20)) as p:
        await log_steadily(log, 0, 100)  # about 9 kB: size rotations
        assert (await p.aflush(5)).complete
        by_size = p.statistics().destinations[0].rotations
        await anyio.sleep(1.05)
        log.info("event", seq=100)  # a new period: one more, though the file is small
    assert by_size >= 2
    assert p.statistics().destinations[0].rotations == by_size + 1
    files = [path.with_name(f"app.log.{n}") for n in range(by_size + 1, 0, -1)] + [path]
    assert seqs(events_in(*files)) == list(range(101))
    assert seqs(read_events(path)) == [100]


async def test_rotation_every_period(tmp_path: Path) -> None:
    """rotate_every=: the first line after the period's end starts a new file."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_every=0.5)) as pipeline:
        log.info("first", seq=0)
        assert (await pipeline.aflush(5)).complete
        await anyio.sleep(1.05)  # past the end of the period (aligned on the epoch)
        log.info("second", seq=1)
    stats = pipeline.statistics()
    assert seqs(read_events(path.with_name("app.log.1"))) == [0]
    assert seqs(read_events(path)) == [1]
    assert stats.destinations[0].rotations == 1


async def test_a_file_from_an_earlier_period_is_rotated_before_the_first_line(
    tmp_path: Path,
) -> None:
    """A restart: yesterday's file (by its mtime) is rotated, not appended to."""
    path = tmp_path / "app.log"
    path.write_bytes(b'{"msg":"yesterday"}\n')
    yesterday = time.time() - 86400
    os.utime(path, (yesterday, yesterday))
    async with alog.run(alog.File(path, rotate_every=timedelta(days=1))):
        alog.get_logger("app").info("today")
    assert [e["msg"] for e in read_events(path.with_name("app.log.1"))] == ["yesterday"]
    assert [e["msg"] for e in read_events(path)] == ["today"]


async def test_a_rotating_file_moved_by_someone_else_warns_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two rotations of one file (logrotate and rotate_bytes=): said once, nothing lost."""
    path = tmp_path / "app.log"
    log = alog.get_logger("app")
    async with alog.run(alog.File(path, rotate_bytes=1_000_000)) as pipeline:
        for round_ in range(3):
            await log_steadily(log, round_ * 500, round_ * 500 + 500)
            assert (await pipeline.aflush(10)).complete
            path.rename(tmp_path / f"foreign.{round_}")
            await anyio.sleep(0.15)
        await log_steadily(log, 1500, 1600)
    err = capfd.readouterr().err
    assert err.count("was moved or replaced by someone else") == 1
    assert "logrotate" in err
    files = [tmp_path / f"foreign.{n}" for n in range(3)] + [path]
    assert seqs(events_in(*files)) == list(range(1600))


async def test_two_rotating_files_on_one_path_are_refused(tmp_path: Path) -> None:
    """The lock is per open file: a second rotating File on the path fails to open."""
    path = tmp_path / "app.log"
    with pytest.raises(alog.WriterFailed, match="already rotates") as failure:
        async with alog.run(alog.File(path, rotate_bytes=1000), alog.File(path, rotate_bytes=1000)):
            pass
    assert "another alog.File of this process already rotates" in str(failure.value)


ROTATING_APP = """
import asyncio, sys
import alog

async def main():
    async with alog.run(alog.File(sys.argv[1], rotate_bytes=10_000), handle_sigterm=True):
        sys.stderr.write("ready\\n")
        while True:
            alog.get_logger("app").info("working")
            await asyncio.sleep(0.01)

asyncio.run(main())
"""


def test_a_second_process_rotating_the_same_file_is_refused(tmp_path: Path) -> None:
    """Two real processes: the second stops at once with a pointer to logrotate."""
    path = tmp_path / "app.log"
    script = tmp_path / "rotating.py"
    script.write_text(ROTATING_APP)
    first = subprocess.Popen(
        [sys.executable, str(script), str(path)], stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        assert first.stderr is not None
        assert first.stderr.readline() == b"ready\n"
        second = subprocess.run(
            [sys.executable, str(script), str(path)],
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
        assert second.returncode == 1
        err = second.stderr.decode()
        assert f"another process (pid {first.pid}) already rotates" in err
        assert "logrotate" in err and "ready\n" not in err
        assert err.count("\n") == 1, "one line, no traceback"
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        assert first.stderr is not None
        first.stderr.close()
    assert all(event["msg"] in ("working", "alog.sigterm") for event in read_events(path))


DOCS = Path(__file__).parent.parent / "docs" / "files.md"


@pytest.mark.parametrize(
    "code", re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL), ids=["1", "2"]
)
def test_the_python_blocks_in_docs_files_run(code: str, tmp_path: Path) -> None:
    """docs/files.md's examples are real (its own test: tests/test_docs.py lists its pages)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
