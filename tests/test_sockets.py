"""alog.TCP and alog.Unix against a line server of the tests' own, on 127.0.0.1 or tmp folders.

The server (tests/_sockets.py) is stopped and restarted under a running pipeline: the books must
say exactly what it received, and nothing may be torn or sent twice.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from blockbuster import blockbuster_ctx

import alog

from ._sockets import LineServer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(name="server")
def fixture_server() -> Any:
    server = LineServer(("127.0.0.1", 0)).start()
    yield server
    server.stop()


def _parsed(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]  # every line must parse


def _balanced(stats: alog.Statistics) -> None:
    assert stats.queued == 0
    assert stats.written + stats.dropped + stats.undelivered + stats.filtered == stats.accepted


async def test_lines_reach_a_tcp_server(server: LineServer) -> None:
    """The plain case: every event, in order, one JSON line each; the stream says connected."""
    log = alog.get_logger("app")
    destination = alog.TCP("127.0.0.1", server.port)
    async with alog.run(destination) as pipeline:
        for i in range(2000):
            log.info("hello", i=i)
        await pipeline.aflush()
        (books,) = pipeline.statistics().destinations
        assert books.connected is True
        assert books.reconnects == 0
        assert books.name == repr(destination)
    events = _parsed(server.wait_lines(2000))
    assert [e["i"] for e in events] == list(range(2000))
    assert pipeline.statistics().destinations[0].written == 2000


@pytest.mark.parametrize("framing", ["lines", "octet-counting"])
async def test_sending_never_blocks_the_event_loop(server: LineServer, framing: str) -> None:
    """blockbuster fails the test if anything blocking runs on the loop: sends, reconnects."""
    log = alog.get_logger("app")
    async with alog.run(
        alog.TCP("127.0.0.1", server.port, framing=framing)  # type: ignore[arg-type]
    ) as pipeline:
        with blockbuster_ctx():
            for round_ in range(10):
                for i in range(1000):
                    log.info("busy", i=i, round=round_)
                await anyio.lowlevel.checkpoint()
                if round_ == 4:
                    while not server.accepted:  # noqa: ASYNC110 - a thread's counter
                        await anyio.sleep(0.001)
                    server.close_connections()  # a reconnect, under blockbuster too
            assert (await pipeline.aflush(5)).complete
    assert pipeline.statistics().written == 10_000
    assert pipeline.statistics().destinations[0].reconnects == 1


async def test_a_sync_flush_writes_to_the_socket_at_once(server: LineServer) -> None:
    """flush() on the loop's thread writes through the socket itself, within its deadline."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP("127.0.0.1", server.port)) as pipeline:
        for i in range(100):
            log.info("sync", i=i)
        result = pipeline.flush(2.0)
        assert result.complete
        assert len(server.wait_lines(100)) == 100


async def test_server_restarted_mid_stream_loses_nothing_uncounted(server: LineServer) -> None:
    """Stop the agent, log on, start it again: no torn line, none twice, the books exact.

    While the connection is down the events wait in the (small) queue; what overflows is
    dropped by the queue and reported in an ``alog.dropped`` event once the link is back.
    """
    log = alog.get_logger("app")
    pipeline = alog.run(alog.TCP("127.0.0.1", server.port), max_events=500, write_timeout=10.0)
    async with pipeline:
        for i in range(3000):
            log.info("before", i=i)
            if i % 100 == 0:
                await anyio.sleep(0.001)
        await pipeline.aflush()
        # A clean agent accepts and reads what it was sent before it stops (one that closes
        # its listener with connections still in the backlog loses them: see docs).
        await anyio.to_thread.run_sync(server.wait_lines, 3000)
        await anyio.to_thread.run_sync(server.stop)
        for i in range(3000, 6000):
            log.info("while down", i=i)
            if i % 100 == 0:
                await anyio.sleep(0.001)
        await anyio.sleep(0.2)
        server.start()
        for i in range(6000, 9000):
            log.info("after", i=i)
            if i % 100 == 0:
                await anyio.sleep(0.001)
        result = await pipeline.aflush(10.0)
        assert result.complete
    stats = pipeline.statistics()
    _balanced(stats)
    (books,) = stats.destinations
    assert books.reconnects >= 1
    assert stats.dropped > 0  # the queue of 500 overflowed while the agent was away
    await anyio.to_thread.run_sync(server.stop)
    received = server.lines()
    assert server.torn() == 0
    events = _parsed(received)
    assert len(received) == stats.written == books.written
    numbers = [e["i"] for e in events if "i" in e]
    assert numbers == sorted(set(numbers))  # in order, never twice
    assert numbers[:3000] == list(range(3000))
    reports = [e for e in events if e["msg"] == "alog.dropped"]
    assert sum(e["dropped"] for e in reports) == stats.dropped


async def test_peer_eof_stops_writing_and_reconnects(server: LineServer) -> None:
    """An agent that half-closes (SHUT_WR) gets nothing more on that connection."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP("127.0.0.1", server.port)) as pipeline:
        for i in range(500):
            log.info("first", i=i)
        await pipeline.aflush()
        await anyio.to_thread.run_sync(server.wait_lines, 500)  # accepted, not just queued
        server.close_connections()
        await anyio.sleep(0.1)  # the FIN arrives
        for i in range(500, 1000):
            log.info("second", i=i)
        result = await pipeline.aflush(5.0)
        assert result.complete
    server.wait_lines(1000)
    per_connection = [data.split(b"\n")[:-1] for data in server.data()]
    assert [len(lines) for lines in per_connection] == [500, 500]
    assert [e["i"] for e in _parsed(per_connection[1])] == list(range(500, 1000))
    assert pipeline.statistics().destinations[0].reconnects == 1


async def test_an_idle_connection_notices_the_peer_close_within_a_second(
    server: LineServer,
) -> None:
    """With nothing to send, the peer's half-close is still answered: closed, not connected."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP("127.0.0.1", server.port)) as pipeline:
        log.info("one")
        await pipeline.aflush()
        await anyio.to_thread.run_sync(server.wait_lines, 1)
        server.close_connections()
        with anyio.fail_after(3):
            while server.closed_by_client == 0:  # noqa: ASYNC110 - a thread's counter
                await anyio.sleep(0.01)
        assert pipeline.statistics().destinations[0].connected is False
        log.info("two")  # reconnects for it
        assert (await pipeline.aflush(5)).complete
        assert pipeline.statistics().destinations[0].connected is True
    assert len(server.wait_lines(2)) == 2


async def test_required_with_no_server_fails_at_start_within_write_timeout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Nobody listening: WriterFailed after write_timeout (and not much later), one line."""
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(alog.WriterFailed) as caught:
        async with alog.run(alog.TCP("127.0.0.1", port), write_timeout=1.0):
            pytest.fail("the block must not run")
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 3.0  # its last attempt is a little before write_timeout
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert "Connection refused" in str(caught.value)
    err = capfd.readouterr().err
    assert err.count("alog:") == 1, err


async def test_required_fails_when_the_server_stays_away(
    server: LineServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Connected, then the agent goes for good: WriterFailed after write_timeout, counted."""
    log = alog.get_logger("app")
    pipeline = alog.run(alog.TCP("127.0.0.1", server.port), write_timeout=1.0)
    started = 0.0
    with pytest.raises(alog.WriterFailed):
        async with pipeline:
            log.info("one")
            await pipeline.aflush()
            await anyio.to_thread.run_sync(server.wait_lines, 1)  # accepted and read
            await anyio.to_thread.run_sync(server.stop)
            started = time.monotonic()
            while True:
                log.info("lost")
                await anyio.sleep(0.01)
    assert time.monotonic() - started < 3.5
    stats = pipeline.statistics()
    assert stats.state == "failed"
    assert stats.written == 1 == len(server.lines())
    _balanced(stats)
    assert capfd.readouterr().err.count("alog:") == 1


async def test_optional_keeps_serving_and_counts(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """required=False with nobody listening: the app goes on, the file gets all, TCP counts."""
    path = tmp_path / "main.log"
    log = alog.get_logger("app")
    pipeline = alog.run(
        alog.File(path),
        alog.TCP("127.0.0.1", _free_port(), required=False),
        write_timeout=0.5,
        shutdown_timeout=0.5,
    )
    async with pipeline:
        for i in range(200):
            log.info("x", i=i)
            await anyio.sleep(0.002)
        file_books, tcp_books = pipeline.statistics().destinations
        assert tcp_books.connected is False
        assert tcp_books.state == "running"
        assert tcp_books.last_error is not None and "refused" in tcp_books.last_error
    file_books, tcp_books = pipeline.statistics().destinations
    assert file_books.written == 200
    assert tcp_books.written == 0
    assert tcp_books.undelivered + tcp_books.dropped == 200  # waited, then counted at close
    err = capfd.readouterr().err
    assert err.count("no connection to alog.TCP") == 1, err


async def test_level_filters_what_the_agent_gets(server: LineServer) -> None:
    """level= on a socket destination, as on any other: the rest is counted as filtered."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP("127.0.0.1", server.port, level="warning")) as pipeline:
        log.info("kept out")
        log.warning("sent")
        log.error("sent too")
    assert [e["msg"] for e in _parsed(server.wait_lines(2))] == ["sent", "sent too"]
    (books,) = pipeline.statistics().destinations
    assert (books.written, books.filtered) == (2, 1)


async def test_unix_stream_socket(short_dir: Path) -> None:
    """alog.Unix: the same stream over a socket in a folder of the test's own."""
    server = LineServer(short_dir / "agent.sock").start()
    try:
        log = alog.get_logger("app")
        async with alog.run(alog.Unix(short_dir / "agent.sock")) as pipeline:
            for i in range(1000):
                log.info("unix", i=i)
        assert [e["i"] for e in _parsed(server.wait_lines(1000))] == list(range(1000))
        assert pipeline.statistics().written == 1000
    finally:
        server.stop()


async def test_unix_server_restarted_mid_stream(short_dir: Path) -> None:
    """The agent's socket file is removed and made again: the stream reconnects to it."""
    path = short_dir / "agent.sock"
    server = LineServer(path).start()
    log = alog.get_logger("app")
    try:
        async with alog.run(alog.Unix(path)) as pipeline:
            for i in range(300):
                log.info("a", i=i)
            await pipeline.aflush()
            await anyio.to_thread.run_sync(server.wait_lines, 300)  # accepted and read
            await anyio.to_thread.run_sync(server.stop)
            for i in range(300, 600):
                log.info("b", i=i)
            await anyio.sleep(0.1)
            server.start()
            assert (await pipeline.aflush(5.0)).complete
        assert [e["i"] for e in _parsed(server.wait_lines(600))] == list(range(600))
        assert pipeline.statistics().destinations[0].reconnects == 1
    finally:
        server.stop()


async def test_octet_counting_framing(server: LineServer) -> None:
    """framing="octet-counting": ``LEN SP JSON`` frames (RFC 6587), no newlines."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP("127.0.0.1", server.port, framing="octet-counting")):
        for i in range(100):
            log.info("framed", i=i, text="a b\nc")
    deadline = time.monotonic() + 5
    while True:
        data = b"".join(server.data())  # (one connection, maybe not accepted yet)
        frames = []
        at = 0
        while at < len(data):
            space = data.index(b" ", at)
            size = int(data[at:space])
            frames.append(data[space + 1 : space + 1 + size])
            at = space + 1 + size
        if len(frames) == 100 or time.monotonic() > deadline:
            break
        await anyio.sleep(0.01)
    assert [json.loads(frame)["i"] for frame in frames] == list(range(100))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made here with the openssl CLI (no test dependency)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (Debian package openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    """tls=SSLContext: verified against the test's own CA, hostname checked, lines intact."""
    cert, key = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = LineServer(("127.0.0.1", 0), tls=server_context).start()
    try:
        client = ssl.create_default_context(cafile=str(cert))
        log = alog.get_logger("app")
        destination = alog.TCP("127.0.0.1", server.port, tls=client)
        assert "tls=<SSLContext>" in repr(destination)
        async with alog.run(destination) as pipeline:
            for i in range(3000):
                log.info("secret", i=i, pad="x" * 100)
            await pipeline.aflush()
            for i in range(3000, 3100):
                log.info("secret", i=i)
            result = pipeline.flush(2.0)  # sync, on the loop's thread: through TLS here
            assert result.complete
            assert result.written == 100
        assert [e["i"] for e in _parsed(server.wait_lines(3100))] == list(range(3100))
    finally:
        server.stop()


async def test_tls_refuses_an_unknown_certificate(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A certificate the context does not trust: the connection fails, loudly, in time."""
    cert, key = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = LineServer(("127.0.0.1", 0), tls=server_context).start()
    try:
        with pytest.raises(alog.WriterFailed, match="CERTIFICATE_VERIFY_FAILED"):
            async with alog.run(
                alog.TCP("127.0.0.1", server.port, tls=ssl.create_default_context()),
                write_timeout=0.5,
            ):
                pass
    finally:
        server.stop()
    assert capfd.readouterr().err.count("alog:") == 1


_untyped: Any = alog  # the mistakes below are what a type checker would catch


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: alog.TCP("127.0.0.1", 0), ValueError, "port must be an integer from 1"),
        (lambda: alog.TCP("127.0.0.1", 70000), ValueError, "port must be an integer from 1"),
        (lambda: _untyped.TCP("127.0.0.1", True), ValueError, "port"),  # noqa: FBT003
        (lambda: alog.TCP("", 514), ValueError, "host must be a non-empty string"),
        (lambda: _untyped.TCP("h", 514, tls=True), TypeError, "tls= takes an ssl.SSLContext"),
        (lambda: _untyped.TCP("h", 514, framing="json"), ValueError, "framing must be"),
        (lambda: alog.TCP("h", 514, connect_timeout=0), ValueError, "connect_timeout"),
        (lambda: alog.Unix("/no/such/dir/agent.sock"), ValueError, "does not exist"),
        (lambda: alog.Unix("/tmp/" + "x" * 120), ValueError, "too long"),
        (lambda: _untyped.TCP("h", 514, required=1), TypeError, "required="),
    ],
)
def test_bad_configuration_fails_at_construction(
    make: Any, error: type[Exception], message: str
) -> None:
    """Mistakes show where the destination is written, not at the first write."""
    with pytest.raises(error, match=message):
        make()


def test_repr_says_where_and_how() -> None:
    """A repr users can read in statistics and in the one stderr line."""
    assert repr(alog.TCP("127.0.0.1", 5170)) == "alog.TCP('127.0.0.1', 5170)"
    assert (
        repr(alog.TCP("agent", 5170, framing="octet-counting", level="warning", required=False))
        == "alog.TCP('agent', 5170, framing='octet-counting', level='warning', required=False)"
    )
    assert repr(alog.Unix("/tmp/agent.sock")) == "alog.Unix('/tmp/agent.sock')"
    # The contract names them: they may be given by keyword.
    assert repr(alog.TCP(host="127.0.0.1", port=5170)) == "alog.TCP('127.0.0.1', 5170)"
    assert repr(alog.Unix(path="/tmp/agent.sock")) == "alog.Unix('/tmp/agent.sock')"
