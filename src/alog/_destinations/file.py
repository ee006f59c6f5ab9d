"""Log files that follow their path: reopened on request, when moved or deleted, and rotated.

A :class:`FileStream` is a :class:`~alog._destinations.threaded.ThreadedFdStream` (one daemon
thread writes, a batch at a time) that knows its path. Everything that changes which file the
descriptor names runs in that thread, at a line boundary (``_between_lines``), never on the
loop and never in a log call:

- a **reopen** asked for (SIGHUP with ``reopen_on_sighup=True``, ``pipeline.reopen()``): once
  every byte the stream took before the request is written, to the old file;
- the path **no longer names the open file** (logrotate's ``create`` mode renamed it, someone
  deleted it): checked with one ``stat`` at most every ``WATCH_EVERY`` seconds while writing;
- **rotation of alog's own** (``rotate_bytes=``, ``rotate_every=``): rename, reopen, keep
  ``keep`` rotated files, gzip them in a worker thread of their own.

The invariant: the stream's byte count (``done``) runs on across files, so the writer's books
do not see a reopen at all; each line goes whole to exactly one file, in order; a reopen
request splits the stream at a known offset (``_reopen_at``). Nothing is lost or duplicated by
a reopen or a rotation. (A deleted file loses what was written to it before the check saw the
deletion, as it would for any program: the OS took those lines.)

Two processes rotating one file rename each other's files and lose lines (cpython#88352,
loguru#365): a rotating stream holds an exclusive ``flock`` on ``<path>.lock`` for its life,
and a second one fails to open, saying who holds it. A rotating stream that finds its path
replaced by someone else (logrotate, a process without the lock) says so once on stderr.
A forked child closes its copies of the locks (``_LOCKS``, this module's one piece of global
state): it has no writer, and must not keep a lock alive once the parent is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import math
import os
import shutil
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import anyio

from .._report import to_stderr
from .threaded import ThreadedFdStream

WATCH_EVERY = 0.1
"""Seconds between two checks that the path still names the open file (one ``stat``)."""
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
"""O_NONBLOCK on open: a FIFO nobody reads fails at once (ENXIO) instead of hanging."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """``alog.File``'s rotation options, checked (see ``fd.File``)."""

    max_bytes: int | None
    every: float | None
    keep: int
    compress: bool


_LOCKS: set[int] = set()
"""Descriptors of the rotation locks this process holds (closed in a child after ``fork()``)."""


def release_lock(fd: int) -> None:
    """Close a rotation lock's descriptor (the lock goes with the last one)."""
    _LOCKS.discard(fd)
    with contextlib.suppress(OSError):
        os.close(fd)


def rotated_name(path: Path, number: int, *, compress: bool) -> Path:
    """``app.log.1`` (the newest) to ``app.log.<keep>``, ``.gz`` added when compressed."""
    return path.with_name(f"{path.name}.{number}{'.gz' if compress else ''}")


def lock_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


def _staging_prefix(path: Path) -> str:
    return f"{path.name}.rotated-"


def open_append(path: Path) -> int:
    """The path opened for appending (created ``0o644`` before the umask)."""
    return os.open(path, _FLAGS, 0o644)


@dataclass(slots=True)
class Opened:
    """What :func:`open_file` did in a worker thread, for the stream built on the loop."""

    fd: int
    path: Path
    status: os.stat_result
    lock_fd: int | None
    leftovers: list[Path]


def open_file(path: Path, rotation: Rotation | None) -> Opened:
    """Open ``path`` (blocking: run it in a thread); take the rotation lock if rotating."""
    path = path.absolute()  # a chdir later must not change which file is watched or rotated
    fd = open_append(path)
    try:
        return _prepare(fd, path, rotation)
    except BaseException:
        os.close(fd)
        raise


def _prepare(fd: int, path: Path, rotation: Rotation | None) -> Opened:
    status = os.fstat(fd)
    if rotation is None:
        return Opened(fd, path, status, None, [])
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(
            f"rotate_bytes= and rotate_every= need a regular file; {str(path)!r} is not one"
        )
    lock_fd = _lock(path)
    try:
        leftovers = _leftovers(path) if rotation.compress else []
    except BaseException:
        release_lock(lock_fd)
        raise
    return Opened(fd, path, status, lock_fd, leftovers)


def _lock(path: Path) -> int:
    """Hold ``<path>.lock`` exclusively, or fail saying which process rotates ``path``."""
    name = lock_name(path)
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            who = (
                "another alog.File of this process"
                if holder == str(os.getpid())
                else f"another process (pid {holder})"
            )
            raise RuntimeError(
                f"{who} already rotates {str(path)!r} (it holds "
                f"{str(name)!r}): processes rotating one file lose and corrupt lines. Rotate "
                "it once, outside the processes: logrotate with 'create' and a postrotate "
                "SIGHUP, and alog.run(reopen_on_sighup=True) without rotate_bytes=/rotate_every="
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    _LOCKS.add(fd)
    return fd


def _leftovers(path: Path) -> list[Path]:
    """Rotated files a previous run renamed but did not get to compress (it exited first)."""
    prefix = _staging_prefix(path)
    found = []
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            if entry.name.endswith(".gz.tmp"):  # a compression cut short: the source is intact
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            else:
                found.append(Path(entry.path))
    return sorted(found, key=lambda found_path: found_path.name)


def _shift(path: Path, keep: int, *, compress: bool) -> None:
    """Make room for a new ``.1``: ``.1`` becomes ``.2`` and so on; the oldest goes."""
    beyond = keep + 1
    while True:  # left by a run with a larger keep=
        try:
            os.unlink(rotated_name(path, beyond, compress=compress))
        except FileNotFoundError:
            break
        beyond += 1
    for number in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(
                rotated_name(path, number, compress=compress),
                rotated_name(path, number + 1, compress=compress),
            )


class _Compressor:
    """gzip of rotated files in a daemon thread of its own, one file at a time, in order.

    Not the writer thread: a big file takes seconds, and writes must go on meanwhile. It is
    the only code that renames ``.N.gz`` files, so rotations never race with it. A file it did
    not get to (the process exited) keeps its staging name and is compressed at the next open.
    """

    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self.keep = keep
        self._cond = threading.Condition()
        self._jobs: deque[Path] = deque()
        self._busy = False
        self._release: int | None = None  # a lock fd to close once done (the stream closed)
        self._warned = False

    def add(self, staging: Path) -> None:
        with self._cond:
            self._jobs.append(staging)
            if not self._busy:
                self._busy = True
                threading.Thread(
                    target=self._run, name=f"alog gzip ({self.path})", daemon=True
                ).start()

    def idle(self) -> bool:
        with self._cond:
            return not self._busy

    def release_when_idle(self, fd: int) -> bool:
        """Close ``fd`` (the rotation lock) once the queue is done; False if idle already."""
        with self._cond:
            if not self._busy:
                return False
            self._release = fd
            return True

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            # Linux sets a niceness per thread: gzip gets the CPU the loop and the writer
            # leave, so a burst of logging is not slowed (and dropped) by a compression.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            with self._cond:
                if not self._jobs:
                    self._busy = False
                    release, self._release = self._release, None
                    if release is not None:
                        release_lock(release)
                    return
                staging = self._jobs[0]
            try:
                self._compress(staging)
            except OSError as error:
                if not self._warned:
                    self._warned = True
                    to_stderr(
                        f"alog: could not compress {str(staging)!r}: {error}; it is kept as it is"
                    )
            with self._cond:
                self._jobs.popleft()

    def _compress(self, staging: Path) -> None:
        partial = staging.with_name(f"{staging.name}.gz.tmp")
        with (
            staging.open("rb") as source,
            partial.open("wb") as raw,
            # The name inside is the log's (gunzip -N), not the staging file's.
            gzip.GzipFile(self.path.name, "wb", compresslevel=6, fileobj=raw) as target,
        ):
            shutil.copyfileobj(source, target, 1 << 20)
        _shift(self.path, self.keep, compress=True)
        os.replace(partial, rotated_name(self.path, 1, compress=True))
        os.unlink(staging)


class FileStream(ThreadedFdStream):
    """A regular file written by a daemon thread, reopened and rotated between lines."""

    def __init__(
        self, opened: Opened, description: str, *, rotation: Rotation | None, stall_timeout: float
    ) -> None:
        path = self.path = opened.path
        self.rotation = rotation
        self.reopens = 0
        """Times the path was opened again: on request, or because it was moved or deleted."""
        self.rotations = 0
        """Times alog itself rotated the file."""
        self._lock_fd = opened.lock_fd
        self._compressor = (
            _Compressor(path, rotation.keep) if rotation is not None and rotation.compress else None
        )
        # Requests counted by the loop (under the lock), carried out by the thread. The loop
        # writes _reopen_at before _reopen_asked; the thread reads them in the other order.
        self._reopen_asked = 0
        self._reopen_done = 0
        self._reopen_at = 0
        self._next_watch = 0.0
        self._warned_foreign = False
        self._identity = (0, 0)
        self._size_base = 0  # the file's size is _size_base + done
        self._rotate_at: float | None = None
        self.done = 0
        self._adopt(opened.status)
        super().__init__(opened.fd, description, stall_timeout=stall_timeout)
        for staging in opened.leftovers:
            assert self._compressor is not None
            self._compressor.add(staging)

    # -- the loop's side ------------------------------------------------------------------

    async def reopen(self) -> None:
        me = threading.get_ident()
        self._holders.add(me)  # a signal handler's flush must not wait for this lock
        try:
            with self._cond:
                self._reopen_at = self.submitted
                self._reopen_asked += 1
                target = self._reopen_asked
                self._cond.notify_all()
        finally:
            self._holders.discard(me)
        started = time.monotonic()
        self._awaited = True  # the thread wakes the loop once it is done
        try:
            while self._reopen_done < target:
                if self.error is not None:
                    raise self.error
                idle = time.monotonic() - max(started, self._last_progress)
                if idle >= self.stall_timeout:
                    raise TimeoutError(f"no progress reopening {str(self.path)!r} for {idle:.1f} s")
                await self._wakeup.wait(self.stall_timeout - idle)
        finally:
            self._awaited = False

    def _idle_work_due(self) -> bool:
        return self._reopen_asked > self._reopen_done

    async def aclose(self) -> None:
        try:
            await super().aclose()
            compressor = self._compressor
            deadline = time.monotonic() + 1.0
            while compressor is not None and not compressor.idle():
                if time.monotonic() >= deadline:
                    break
                await anyio.sleep(0.01)
        finally:
            lock, self._lock_fd = self._lock_fd, None
            if lock is not None:
                compressor = self._compressor
                # Still compressing: it renames rotated files, so it keeps the lock until done.
                if compressor is None or not compressor.release_when_idle(lock):
                    release_lock(lock)

    # -- the writer thread's side ---------------------------------------------------------

    def _size(self) -> int:
        return self._size_base + self.done

    def _adopt(self, status: os.stat_result) -> None:
        """A newly opened file: who it is, how big, when its period ends."""
        self._identity = (status.st_dev, status.st_ino)
        self._size_base = status.st_size - self.done
        self._next_watch = time.monotonic() + WATCH_EVERY  # just opened: it is the path's
        rotation = self.rotation
        if rotation is not None and rotation.every is not None:
            # Periods are aligned on the epoch (UTC): a file last written in an earlier
            # period (a restart) is rotated before the first new line.
            start = status.st_mtime if status.st_size else time.time()
            self._rotate_at = (math.floor(start / rotation.every) + 1) * rotation.every

    def _between_lines(self, data: bytes | bytearray, offset: int) -> int:
        self._tend()
        end = len(data)
        rotation = self.rotation
        if rotation is None or rotation.max_bytes is None or offset >= end:
            return end
        limit = rotation.max_bytes
        room = limit - self._size()
        if end - offset <= room:
            return end
        if room > 0:
            cut = data.rfind(b"\n", offset, offset + room) + 1
            if cut > offset:
                return cut  # what fits; the next call rotates
        if self._size() > 0:
            self._rotate()
            if end - offset <= limit:
                return end
            cut = data.rfind(b"\n", offset, offset + limit) + 1
            if cut > offset:
                return cut
        return data.find(b"\n", offset) + 1 or end  # one line longer than rotate_bytes: alone

    def _tend(self) -> None:
        """Reopen or rotate if due; at a line boundary, in the writer thread."""
        asked = self._reopen_asked
        if asked > self._reopen_done and self.done >= self._reopen_at:
            self._reopen()
            self.reopens += 1
            self._reopen_done = asked
            return
        now = time.monotonic()
        if now >= self._next_watch:
            self._next_watch = now + WATCH_EVERY
            if not self._names_our_file():
                self._replaced_by_someone_else()
                return
        if self._rotate_at is not None and time.time() >= self._rotate_at:
            if self._size() > 0:
                self._rotate()
            else:
                self._adopt(os.fstat(self.fd))  # nothing to rotate: next period

    def _names_our_file(self) -> bool:
        try:
            status = os.stat(self.path)
        except OSError:  # deleted, or its directory is gone: reopening says which
            return False
        return (status.st_dev, status.st_ino) == self._identity

    def _replaced_by_someone_else(self) -> None:
        if self.rotation is not None and not self._warned_foreign:
            self._warned_foreign = True
            to_stderr(
                f"alog: {str(self.path)!r} was moved or replaced by someone else while alog "
                "rotates it too (rotate_bytes=/rotate_every=): use one rotation only, e.g. "
                "logrotate with reopen_on_sighup=True and no rotation options; reopening it"
            )
        self._reopen()
        self.reopens += 1

    def _reopen(self) -> None:
        fd = open_append(self.path)
        try:
            os.set_blocking(fd, True)
            status = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        with self._cond:
            old, self.fd = self.fd, fd
        with contextlib.suppress(OSError):
            os.close(old)
        self._adopt(status)

    def _rotate(self) -> None:
        rotation = self.rotation
        assert rotation is not None
        if not self._names_our_file():  # moved meanwhile: never rename someone else's file
            self._replaced_by_someone_else()
            return
        path = self.path
        try:
            if self._compressor is not None:
                staging = path.with_name(f"{_staging_prefix(path)}{time.time_ns()}")
                os.rename(path, staging)
                self._compressor.add(staging)
            else:
                _shift(path, rotation.keep, compress=False)
                os.rename(path, rotated_name(path, 1, compress=False))
        except FileNotFoundError:  # moved by someone else since the check above
            self._replaced_by_someone_else()
            return
        self._reopen()
        self.rotations += 1


def _close_locks_in_child() -> None:
    for fd in list(_LOCKS):
        release_lock(fd)  # the parent's descriptor keeps the lock held


os.register_at_fork(after_in_child=_close_locks_in_child)
