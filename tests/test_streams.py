"""The fd streams on their own: NonBlockingFdStream over real pipes, ThreadedFdStream over a
file, a socket nobody reads and /dev/full. No pipeline, no writer: each stream is built on a
descriptor the test made, and what reached the other end is read back byte for byte.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from alog._backend import Loop
from alog._destinations.base import FdStream
from alog._destinations.nonblocking import NonBlockingFdStream
from alog._destinations.threaded import ThreadedFdStream

PIPE_BUF = select.PIPE_BUF


def lines(count: int, size: int) -> bytes:
    """``count`` distinct newline-terminated lines of ``size`` bytes each (newline included)."""
    out = bytearray()
    for i in range(count):
        head = f"{i:08d}:".encode()
        out += head + b"x" * (size - len(head) - 1) + b"\n"
    return bytes(out)


def mixed_lines(count: int) -> bytes:
    """Lines of many sizes, up to just under PIPE_BUF."""
    sizes = [20, 700, 4000, 1, 2048, PIPE_BUF - 1, 333, PIPE_BUF]
    out = bytearray()
    for i in range(count):
        size = max(10, sizes[i % len(sizes)])
        head = f"{i:08d}:".encode()
        out += head + b"y" * (size - len(head) - 1) + b"\n"
    return bytes(out)


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@pytest.fixture(name="pipe")
def fixture_pipe() -> Iterator[tuple[int, int]]:
    """A pipe, both ends non-blocking: (read end, write end)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        yield read_end, write_end
    finally:
        close_quietly(read_end)
        close_quietly(write_end)


@pytest.fixture(name="packet_pipe")
def fixture_packet_pipe() -> Iterator[tuple[int, int]]:
    """A pipe in packet mode (O_DIRECT): each read returns exactly one write, so the test sees
    where every ``write`` call began and ended."""
    if not hasattr(os, "O_DIRECT") or not hasattr(os, "pipe2"):
        pytest.skip("packet-mode pipes are Linux's")
    read_end, write_end = os.pipe2(os.O_DIRECT | os.O_NONBLOCK)
    try:
        yield read_end, write_end
    finally:
        close_quietly(read_end)
        close_quietly(write_end)


def nonblocking(write_end: int, *, stall_timeout: float = 5.0) -> NonBlockingFdStream:
    """A stream on a descriptor of its own, as alog's are: it closes that, the fixture its."""
    own = os.dup(write_end)
    return NonBlockingFdStream(own, "pipe", atomic_size=PIPE_BUF, stall_timeout=stall_timeout)


@contextlib.asynccontextmanager
async def closing(stream: FdStream) -> AsyncIterator[FdStream]:
    try:
        yield stream
    finally:
        await stream.aclose()


async def read_exactly(fd: int, size: int, *, timeout: float = 10.0) -> list[bytes]:
    """Read ``size`` bytes from a non-blocking fd, as the reads returned them."""
    pieces: list[bytes] = []
    got = 0
    with anyio.fail_after(timeout):
        while got < size:
            await anyio.wait_readable(fd)
            try:
                piece = os.read(fd, 65536)
            except BlockingIOError:
                continue
            assert piece, "end of file before everything arrived"
            pieces.append(piece)
            got += len(piece)
    assert got == size
    return pieces


def drain_now(fd: int) -> bytes:
    """Everything readable right now from a non-blocking fd."""
    out = bytearray()
    while True:
        try:
            piece = os.read(fd, 65536)
        except BlockingIOError:
            return bytes(out)
        if not piece:
            return bytes(out)
        out += piece


# -- NonBlockingFdStream --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"msg":"one"}\n', id="one line"),
        pytest.param(lines(100, 80), id="a small batch"),
        pytest.param(lines(4000, 300), id="a batch far past the pipe's capacity"),
        pytest.param(b"z" * (3 * 65536) + b"\n", id="one line longer than the pipe"),
    ],
)
async def test_nonblocking_send_delivers_everything_in_order(
    pipe: tuple[int, int], data: bytes
) -> None:
    """Every byte handed to send reaches the reader, in order, and is counted done."""
    read_end, write_end = pipe
    async with closing(nonblocking(write_end)) as stream:
        received: list[bytes] = []

        async def reader() -> None:
            received.extend(await read_exactly(read_end, len(data)))

        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            await stream.send(data)
        assert b"".join(received) == data
        assert stream.done == stream.submitted == len(data)


async def test_nonblocking_send_waits_on_a_full_pipe_and_resumes_when_read(
    pipe: tuple[int, int],
) -> None:
    """A slow reader slows the writer down: nothing is lost, and the loop is not blocked."""
    read_end, write_end = pipe
    data = lines(2000, 500)  # 1 MB, the pipe holds 64 KiB
    finished = anyio.Event()
    async with closing(nonblocking(write_end)) as stream:

        async def send() -> None:
            await stream.send(data)
            finished.set()

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            await anyio.sleep(0.1)  # the loop keeps running while the pipe is full
            assert not finished.is_set()
            assert 0 < stream.done < len(data)
            stuck_at = stream.done
            await anyio.sleep(0.05)
            assert stream.done == stuck_at, "no progress without a reader"
            received = await read_exactly(read_end, len(data))
            await finished.wait()
    assert b"".join(received) == data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lines(2000, 10), id="tiny lines"),
        pytest.param(lines(500, 100), id="100-byte lines"),
        pytest.param(lines(200, 1000), id="1000-byte lines"),
        pytest.param(lines(100, PIPE_BUF - 96), id="lines just under PIPE_BUF"),
        pytest.param(lines(100, PIPE_BUF), id="lines of exactly PIPE_BUF"),
        pytest.param(mixed_lines(400), id="mixed sizes"),
    ],
)
async def test_nonblocking_writes_never_tear_a_line_at_pipe_buf(
    packet_pipe: tuple[int, int], data: bytes
) -> None:
    """Processes sharing a pipe interleave whole lines only if each write is whole lines."""
    read_end, write_end = packet_pipe
    async with closing(nonblocking(write_end)) as stream:
        writes: list[bytes] = []

        async def reader() -> None:
            writes.extend(await read_exactly(read_end, len(data)))

        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            await stream.send(data)
    assert b"".join(writes) == data
    assert len(writes) > 1, "a multi-line batch past PIPE_BUF takes several writes"
    for write in writes:
        assert len(write) <= PIPE_BUF
        assert write.endswith(b"\n"), "a write ended inside a line"


@pytest.mark.parametrize("call", ["send", "send_sync"])
async def test_nonblocking_epipe_raises_broken_pipe_and_keeps_the_error(
    pipe: tuple[int, int], call: str
) -> None:
    """A reader that is gone is a permanent failure: said at once, and remembered."""
    read_end, write_end = pipe
    os.close(read_end)
    async with closing(nonblocking(write_end)) as stream:
        if call == "send":
            with pytest.raises(BrokenPipeError):
                await stream.send(b'{"msg":"lost"}\n')
        else:
            assert stream.send_sync(b'{"msg":"lost"}\n', time.monotonic() + 1) is False
        assert isinstance(stream.error, BrokenPipeError)
        assert stream.error.errno == errno.EPIPE
        with pytest.raises(BrokenPipeError):
            await stream.send(b'{"msg":"later"}\n')
        assert stream.send_sync(b'{"msg":"later"}\n', time.monotonic() + 1) is False
        assert stream.done == 0


async def test_nonblocking_send_sync_gives_up_at_the_deadline_and_keeps_the_rest(
    pipe: tuple[int, int],
) -> None:
    """A flush must not hang on a full pipe; what it could not write stays queued, in order."""
    read_end, write_end = pipe
    data = lines(1000, 500)  # far more than the pipe holds
    async with closing(nonblocking(write_end)) as stream:
        started = time.monotonic()
        assert stream.send_sync(data, started + 0.2) is False
        elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 0.2 + 1.0
        assert 0 < stream.done < len(data)
        assert stream.submitted == len(data)
        assert stream.error is None
        received = [drain_now(read_end)]

        async def reader() -> None:
            received.extend(await read_exactly(read_end, len(data) - len(received[0])))

        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            await stream.send(b"")  # the writer task finishes what the flush left
        assert b"".join(received) == data
        assert stream.done == len(data)


async def test_nonblocking_send_sync_writes_everything_when_the_pipe_has_room(
    pipe: tuple[int, int],
) -> None:
    """The synchronous path (flush from the loop's thread) is as complete as the async one."""
    read_end, write_end = pipe
    data = lines(50, 200)
    async with closing(nonblocking(write_end)) as stream:
        assert stream.send_sync(data, time.monotonic() + 1) is True
        assert drain_now(read_end) == data
        assert stream.done == len(data)


async def test_nonblocking_a_pipe_nobody_reads_is_a_timeout_after_stall_timeout(
    pipe: tuple[int, int],
) -> None:
    """A reader that stopped reading (but lives) must not hold the writer forever."""
    _, write_end = pipe
    stall_timeout = 0.2
    async with closing(nonblocking(write_end, stall_timeout=stall_timeout)) as stream:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await stream.send(lines(1000, 500))
        assert stall_timeout <= time.monotonic() - started < stall_timeout + 1.0
        assert 0 < stream.done < stream.submitted


# -- ThreadedFdStream -----------------------------------------------------------------------


def open_for_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([lines(1, 50)], id="one line"),
        pytest.param([lines(100, 80)] * 10, id="many batches"),
        pytest.param([lines(5000, 500)], id="one batch past a write piece"),
    ],
)
async def test_threaded_writes_every_batch_to_a_file_in_order(
    tmp_path: Path, batches: list[bytes]
) -> None:
    """A file gets exactly what was sent, batch after batch, and the counters say so."""
    path = tmp_path / "out.log"
    stream = ThreadedFdStream(open_for_append(path), str(path), stall_timeout=5.0)
    async with closing(stream):
        for batch in batches:
            await stream.send(batch)
        assert stream.done == stream.submitted == sum(map(len, batches))
    assert path.read_bytes() == b"".join(batches)


async def test_threaded_send_and_send_sync_keep_one_order(tmp_path: Path) -> None:
    """A flush from the loop's thread and the writer task share one stream: no reordering."""
    path = tmp_path / "out.log"
    stream = ThreadedFdStream(open_for_append(path), str(path), stall_timeout=5.0)
    expected = bytearray()
    async with closing(stream):
        for i in range(20):
            batch = lines(10, 100 + i)
            expected += batch
            if i % 2:
                assert stream.send_sync(batch, time.monotonic() + 5) is True
            else:
                await stream.send(batch)
    assert path.read_bytes() == bytes(expected)


async def test_threaded_aclose_closes_the_descriptor(tmp_path: Path) -> None:
    """alog owns the fd it writes: closing the stream must release it, once."""
    path = tmp_path / "out.log"
    fd = open_for_append(path)
    stream = ThreadedFdStream(fd, str(path), stall_timeout=5.0)
    await stream.send(b"line\n")
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(OSError, match="Bad file descriptor") as caught:
        os.fstat(fd)
    assert caught.value.errno == errno.EBADF


async def test_threaded_a_socket_nobody_reads_is_a_timeout_after_stall_timeout() -> None:
    """A write stuck in the kernel must surface as a failure, not hang the writer forever."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.settimeout(None)  # blocking, as alog sets a socket it is given
    fd = ours.detach()
    stall_timeout = 0.3
    stream = ThreadedFdStream(fd, "socket", stall_timeout=stall_timeout)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no progress"):
            await stream.send(lines(10_000, 800))  # 8 MB: the socket takes a few KiB
        elapsed = time.monotonic() - started
        assert stall_timeout <= elapsed < stall_timeout + 1.0
        assert stream.done < stream.submitted
    finally:
        theirs.close()  # the stuck write now fails (EPIPE) and the thread ends
        with anyio.fail_after(5):
            while stream.error is None:  # noqa: ASYNC110 - set by the stream's thread
                await anyio.sleep(0.01)
        await stream.aclose()
    assert isinstance(stream.error, OSError)


class CountingThreadedFdStream(ThreadedFdStream):
    """The real stream, counting the times its thread wakes the loop."""

    def __init__(self, fd: int, description: str, *, stall_timeout: float) -> None:
        self.loop_wakes = 0
        super().__init__(fd, description, stall_timeout=stall_timeout)

    def _notify_loop(self) -> None:
        self.loop_wakes += 1
        super()._notify_loop()


async def test_threaded_batches_handed_over_ahead_are_written_and_never_wake_the_loop(
    tmp_path: Path,
) -> None:
    """A writer that hands over batches while the thread writes (wait_progress) costs no
    hand-off back to the loop: only wait_sent has the thread wake the loop."""
    path = tmp_path / "out.log"
    stream = CountingThreadedFdStream(open_for_append(path), str(path), stall_timeout=5.0)
    woken = Loop().new_wakeup()
    expected = bytearray()
    async with closing(stream):
        for i in range(50):
            batch = lines(20, 60 + i)
            expected += batch
            stream.submit(batch)
            await stream.wait_progress(stream.submitted, woken)
        with anyio.fail_after(10):
            while stream.done < stream.submitted:
                await stream.wait_progress(stream.submitted, woken)
        assert stream.loop_wakes == 0
        await stream.send(b"last\n")  # wait_sent: the thread may wake the loop for it
        expected += b"last\n"
    assert path.read_bytes() == bytes(expected)


async def test_threaded_wait_progress_returns_at_once_when_woken() -> None:
    """New events for the writer (its wake-up set) end the wait, whatever the thread does."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.settimeout(None)
    stream = ThreadedFdStream(ours.detach(), "socket", stall_timeout=5.0)
    woken = Loop().new_wakeup()
    try:
        stream.submit(lines(1_000, 800))  # stuck: nobody reads
        woken.set()
        started = time.monotonic()
        await stream.wait_progress(stream.submitted, woken)
        assert time.monotonic() - started < 0.5
        assert stream.done < stream.submitted
    finally:
        theirs.close()
        with anyio.fail_after(5):
            while stream.error is None:  # noqa: ASYNC110 - set by the stream's thread
                await anyio.sleep(0.01)
        await stream.aclose()


async def test_threaded_wait_progress_raises_a_stall_after_stall_timeout() -> None:
    """Waiting ahead keeps the stall deadline: a write stuck in the kernel fails on time."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.settimeout(None)
    stall_timeout = 0.3
    stream = ThreadedFdStream(ours.detach(), "socket", stall_timeout=stall_timeout)
    woken = Loop().new_wakeup()
    try:
        started = time.monotonic()
        stream.submit(lines(10_000, 800))
        with pytest.raises(TimeoutError, match="no progress"):
            with anyio.fail_after(stall_timeout + 5):
                while True:
                    await stream.wait_progress(stream.submitted, woken)
        assert stall_timeout <= time.monotonic() - started < stall_timeout + 1.0
    finally:
        theirs.close()
        with anyio.fail_after(5):
            while stream.error is None:  # noqa: ASYNC110 - set by the stream's thread
                await anyio.sleep(0.01)
        await stream.aclose()


@pytest.mark.parametrize("kind", ["nonblocking", "threaded"])
async def test_dev_full_gives_enospc(kind: str) -> None:
    """A full disk is a write error with its errno, raised and kept, never a silent loss."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    stream: FdStream
    if kind == "nonblocking":
        os.set_blocking(fd, False)
        stream = NonBlockingFdStream(fd, "/dev/full", atomic_size=None, stall_timeout=5.0)
    else:
        stream = ThreadedFdStream(fd, "/dev/full", stall_timeout=5.0)
    async with closing(stream):
        with anyio.fail_after(5), pytest.raises(OSError, match="No space left") as caught:
            await stream.send(b'{"msg":"nowhere"}\n')
        assert caught.value.errno == errno.ENOSPC
        assert isinstance(stream.error, OSError)
        assert stream.error.errno == errno.ENOSPC
        assert stream.send_sync(b"more\n", time.monotonic() + 1) is False
        assert stream.done == 0
