"""The reconnecting socket stream on its own, over socketpairs: torn frames, books, framing.

A socketpair with small buffers makes the kernel take part of a batch; closing the far end
then breaks the connection in the middle of a line, which a real server restart does only by
luck. What the stream promises: a frame cut short is sent again whole on the next connection,
frames taken whole are never sent again, and ``done`` counts the writer's bytes of whole
frames only.
"""

from __future__ import annotations

import json
import socket

import anyio
import anyio.lowlevel
import pytest

from alog._destinations.socket import (
    ConnectedStream,
    Connector,
    Framer,
    OctetFramer,
    _refuse_self_connection,
)


class _Pairs(Connector):
    """Each connect hands out one end of a new socketpair; the test keeps the other ends."""

    def __init__(self) -> None:
        super().__init__("socketpair", connect_timeout=1.0)
        self.far: list[socket.socket] = []

    async def connect(self, timeout: float) -> socket.socket:
        near, far = socket.socketpair()
        for end in (near, far):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        near.setblocking(False)  # noqa: FBT003 - the socket module's own signature
        far.setblocking(False)  # noqa: FBT003
        self.far.append(far)
        await anyio.lowlevel.checkpoint()
        return near


def _drain(sock: socket.socket) -> bytes:
    got = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return bytes(got)
        if not data:
            return bytes(got)
        got += data


def _lines(count: int) -> bytes:
    return b"".join(json.dumps({"i": i, "pad": "x" * 50}).encode() + b"\n" for i in range(count))


@pytest.mark.parametrize("framing", ["lines", "octet-counting"])
async def test_a_frame_cut_short_is_sent_again_whole_and_nothing_twice(framing: str) -> None:
    """Break the connection mid-frame: the next one starts at that frame's first byte."""
    pairs = _Pairs()
    framer = Framer() if framing == "lines" else OctetFramer()
    stream = ConnectedStream(pairs, framer=framer, required=False, stall_timeout=5.0)
    await stream.connect_first()
    data = _lines(2000)
    target = stream.submit(data)
    with anyio.move_on_after(0.2):  # the far end reads nothing: the batch is cut short
        await stream.wait_sent(target)
    first = _drain(pairs.far[0])
    assert 0 < len(first) < len(framer.encode(data))
    # torn: the kernel took part of a frame (8 KiB socketpair buffers, ~70-byte frames)
    assert _whole_bytes(first, framing) < len(first)
    pairs.far[0].close()  # the peer goes away with a frame half sent
    second = bytearray()
    async with anyio.create_task_group() as group:
        group.start_soon(stream.wait_sent, target)
        while stream.done < target:
            if len(pairs.far) > 1:
                second += _drain(pairs.far[1])
            await anyio.sleep(0.002)
    second += _drain(pairs.far[1])
    assert stream.done == target == len(data)
    frames = _frames(first, framing) + _frames(bytes(second), framing)
    assert [json.loads(frame)["i"] for frame in frames] == list(range(2000))
    assert second.startswith(b'{"i"' if framing == "lines" else b"")
    assert stream.connection_statistics().reconnects == 1
    await stream.aclose()
    for far in pairs.far:
        far.close()


def _whole_bytes(data: bytes, framing: str) -> int:
    frames = _frames(data, framing)
    if framing == "lines":
        return sum(len(frame) + 1 for frame in frames)
    return sum(len(b"%d " % len(frame)) + len(frame) for frame in frames)


def _frames(data: bytes, framing: str) -> list[bytes]:
    """Whole frames only: a torn tail (no newline, or a short octet count) is left out."""
    if framing == "lines":
        return data.split(b"\n")[:-1]
    frames: list[bytes] = []
    at = 0
    while True:
        space = data.find(b" ", at)
        if space < 0:
            return frames
        end = space + 1 + int(data[at:space])
        if end > len(data):
            return frames
        frames.append(data[space + 1 : end])
        at = end


async def test_peer_eof_is_seen_before_the_next_write() -> None:
    """The far end half-closes: the next batch goes to a new connection, none to the old."""
    pairs = _Pairs()
    stream = ConnectedStream(pairs, framer=Framer(), required=False, stall_timeout=5.0)
    await stream.connect_first()
    await stream.wait_sent(stream.submit(b"one\n"))
    assert _drain(pairs.far[0]) == b"one\n"
    pairs.far[0].shutdown(socket.SHUT_WR)
    await stream.wait_sent(stream.submit(b"two\n"))
    assert _drain(pairs.far[0]) == b""  # nothing more on the closed connection
    assert _drain(pairs.far[1]) == b"two\n"
    statistics = stream.connection_statistics()
    assert statistics.reconnects == 1
    assert statistics.last_error is not None
    assert "closed the connection" in statistics.last_error
    await stream.aclose()
    for far in pairs.far:
        far.close()


async def test_a_required_stream_gives_up_with_the_connection_error() -> None:
    """No connection for the stall timeout: ConnectionError, and the stream stays failed."""

    class _Refusing(Connector):
        async def connect(self, timeout: float) -> socket.socket:
            await anyio.lowlevel.checkpoint()
            raise ConnectionRefusedError(111, "Connection refused")

    stream = ConnectedStream(
        _Refusing("nowhere", connect_timeout=1.0),
        framer=Framer(),
        required=True,
        stall_timeout=0.3,
    )
    with pytest.raises(ConnectionError, match=r"no connection to nowhere for 0\.3 s"):
        await stream.connect_first()
    assert stream.error is not None
    with pytest.raises(ConnectionError):
        stream.submit(b"late\n")


def test_a_socket_connected_to_itself_counts_as_refused() -> None:
    """TCP's simultaneous open: connecting to a free port that the kernel gave the socket.

    Seen in this suite: a reconnect to a stopped server's port connected to itself and took
    every line for 60 s. Forced here by binding the socket to the port it connects to.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.connect(sock.getsockname())
        with pytest.raises(ConnectionRefusedError, match="connected to itself"):
            _refuse_self_connection(sock)
    with socket.socket() as listener, socket.create_connection(_listen(listener)) as fine:
        _refuse_self_connection(fine)  # an ordinary connection passes


def _listen(listener: socket.socket) -> tuple[str, int]:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address: tuple[str, int] = listener.getsockname()
    return address


async def test_a_connection_lost_while_idle_is_not_held_against_a_required_stream() -> None:
    """The peer closed long ago while nothing was to be sent: the next batch still connects."""
    pairs = _Pairs()
    stream = ConnectedStream(pairs, framer=Framer(), required=True, stall_timeout=0.3)
    await stream.connect_first()
    pairs.far[0].shutdown(socket.SHUT_WR)
    await anyio.sleep(0.01)
    stream.check_idle()  # what the idle writer does every second: sees the close
    assert stream.connection_statistics().connected is False
    await anyio.sleep(0.5)  # longer than stall_timeout, with nothing to send
    await stream.wait_sent(stream.submit(b"later\n"))
    assert _drain(pairs.far[1]) == b"later\n"
    await stream.aclose()
    for far in pairs.far:
        far.close()
