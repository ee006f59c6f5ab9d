"""alog.Syslog and alog.TCP against a real rsyslogd (tests/_rsyslog.py), and the formatter.

rsyslog parses what it receives and writes ``PRI|APP-NAME|PROCID|MSGID|TIMESTAMP|HOSTNAME|MSG``
per message: the assertions read what a syslog daemon understood, not what alog meant.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from blockbuster import blockbuster_ctx

import alog
from alog._destinations.syslog import Formatter, severity, truncate

from ._rsyslog import Rsyslog


def _fields(line: str) -> dict[str, Any]:
    pri, app, procid, msgid, stamp, host, msg = line.split("|", 6)
    return {
        "pri": int(pri),
        "app": app,
        "procid": procid,
        "msgid": msgid,
        "time": stamp,
        "host": host,
        "event": json.loads(msg.strip()),
    }


def _address(rsyslog: Rsyslog, transport: str) -> Any:
    if transport == "unix":
        return rsyslog.socket_path
    return rsyslog.tcp_address if transport == "tcp" else rsyslog.udp_address


@pytest.mark.parametrize("transport", ["unix", "udp", "tcp"])
@pytest.mark.parametrize("form", ["rfc5424", "rfc3164"])
async def test_syslog_messages_reach_rsyslog(rsyslog: Rsyslog, transport: str, form: str) -> None:
    """PRI from each event's level, the app name and pid, the JSON event as MSG, in order."""
    log = alog.get_logger("app.db")
    destination = alog.Syslog(
        _address(rsyslog, transport),
        transport=transport,  # type: ignore[arg-type]  # parametrized
        format=form,  # type: ignore[arg-type]
        app_name="alogtest",
        facility="local3",
    )
    async with alog.run(destination, level="debug") as pipeline:
        for i in range(50):
            log.info("query", i=i)
        log.debug("detail")
        log.warning("slow")
        log.error("failed")
        log.critical("down")
    assert pipeline.statistics().written == 54
    received = [_fields(line) for line in rsyslog.wait_for(transport, 54)]
    assert len(received) == 54
    assert [r["event"]["i"] for r in received[:50]] == list(range(50))
    local3 = 19 * 8
    severities = [6, 7, 4, 3, 2]  # info, debug, warning, error, critical
    assert [r["pri"] for r in received[49:]] == [local3 + number for number in severities]
    assert {r["app"] for r in received} == {"alogtest"}
    assert {r["procid"] for r in received} == {str(os.getpid())}
    if form == "rfc5424":
        assert {r["msgid"] for r in received} == {"app.db"}
        # the event's own time, to the microsecond
        assert received[0]["time"][:19] == received[0]["event"]["time"][:19]
    if transport != "unix":
        assert {r["host"] for r in received} == {socket.gethostname()}


@pytest.mark.parametrize("transport", ["unix", "udp", "tcp"])
async def test_syslog_never_blocks_the_event_loop(rsyslog: Rsyslog, transport: str) -> None:
    """blockbuster on: formatting and sending each message stays off blocking calls."""
    log = alog.get_logger("app")
    destination = alog.Syslog(_address(rsyslog, transport), transport=transport)  # type: ignore[arg-type]
    async with alog.run(destination) as pipeline:
        with blockbuster_ctx():
            for round_ in range(5):
                for i in range(200):
                    log.info("busy", i=i, round=round_)
                await anyio.sleep(0.01)  # UDP: let rsyslog keep up (no flow control)
            assert (await pipeline.aflush(5)).complete
    assert pipeline.statistics().written == 1000


@pytest.mark.parametrize("framing", ["lines", "octet-counting"])
async def test_json_lines_to_rsyslog_imtcp(rsyslog: Rsyslog, framing: str) -> None:
    """alog.TCP to imtcp as an agent: each JSON line arrives as one message, whole."""
    log = alog.get_logger("app")
    async with alog.run(alog.TCP(*rsyslog.tcp_address, framing=framing)):  # type: ignore[arg-type]
        for i in range(500):
            log.info("to rsyslog", i=i, text='with spaces and "quotes"')
    raw = rsyslog.wait_for("tcp", 500, kind="raw")
    assert [json.loads(line)["i"] for line in raw] == list(range(500))


async def test_rsyslog_restarting_mid_stream_is_counted(rsyslog: Rsyslog) -> None:
    """rsyslog restarts under a running pipeline: it reconnects, nothing torn or doubled.

    rsyslog closes its connections at SIGTERM without reading what is in their buffers, so
    what it lost is exactly what sat there: counted as written by the kernel, never read. The
    test measures it (written - received) and shows it is bounded by the socket buffers.
    """
    log = alog.get_logger("app")
    pipeline = alog.run(alog.Syslog(rsyslog.tcp_address, transport="tcp"), max_events=2000)
    async with pipeline:
        for i in range(2000):
            log.info("before", i=i)
            if i % 200 == 0:
                await anyio.sleep(0.001)
        await anyio.to_thread.run_sync(rsyslog.restart)
        for i in range(2000, 4000):
            log.info("after", i=i)
            if i % 200 == 0:
                await anyio.sleep(0.005)
        assert (await pipeline.aflush(10.0)).complete
    stats = pipeline.statistics()
    assert stats.written + stats.dropped + stats.undelivered + stats.filtered == stats.accepted
    received = [_fields(line)["event"] for line in rsyslog.wait_for("tcp", stats.written)]
    numbers = [e["i"] for e in received if "i" in e]
    assert numbers == sorted(set(numbers))  # never torn (each parsed), never twice
    lost = stats.written - len(received)
    assert lost >= 0
    assert numbers[-1] == 3999  # the new connection carried the rest
    (books,) = stats.destinations
    assert books.reconnects >= 1 or lost == 0


async def test_udp_datagrams_are_cut_to_max_size_with_a_marker(rsyslog: Rsyslog) -> None:
    """An event too big for a datagram: cut with a visible marker, counted as truncated."""
    log = alog.get_logger("app")
    async with alog.run(alog.Syslog(rsyslog.udp_address, max_size=600)) as pipeline:
        log.info("small")
        log.info("big", blob="x" * 5000)
    (books,) = pipeline.statistics().destinations
    assert books.truncated == 1
    assert books.written == 2
    lines = rsyslog.wait_for("udp", 2, kind="raw")
    assert len(lines) == 2
    assert len(lines[1].encode()) <= 600
    assert lines[1].endswith("...[alog: truncated 4539 bytes]") or "[alog: truncated" in lines[1]


async def test_unix_syslog_reconnects_when_rsyslog_restarts(rsyslog: Rsyslog) -> None:
    """/dev/log style: the socket file is made anew at restart; the stream connects to it."""
    log = alog.get_logger("app")
    async with alog.run(alog.Syslog(rsyslog.socket_path)) as pipeline:
        for i in range(100):
            log.info("a", i=i)
        await pipeline.aflush()
        rsyslog.wait_for("unix", 100)
        await anyio.to_thread.run_sync(rsyslog.restart)
        for i in range(100, 200):
            log.info("b", i=i)
        assert (await pipeline.aflush(10.0)).complete
    received = [_fields(line)["event"]["i"] for line in rsyslog.wait_for("unix", 200)]
    assert received == list(range(200))
    assert pipeline.statistics().destinations[0].reconnects == 1


async def test_a_missing_syslog_socket_follows_required(
    short_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """No daemon at the path: required fails the start, optional counts and goes on."""
    path = short_dir / "no-daemon.sock"
    with pytest.raises(alog.WriterFailed, match="No such file or directory"):
        async with alog.run(alog.Syslog(path), write_timeout=0.5):
            pytest.fail("the block must not run")
    assert capfd.readouterr().err.count("alog:") == 1
    log = alog.get_logger("app")
    pipeline = alog.run(alog.Syslog(path, required=False), shutdown_timeout=0.3)
    async with pipeline:
        log.info("nobody hears this")
    (books,) = pipeline.statistics().destinations
    assert books.connected is False
    assert books.written == 0
    assert books.undelivered == 1


def test_severity_follows_the_level() -> None:
    """critical 2, error 3, warning 4, info 6, debug 7; custom levels by their number."""
    assert [severity(n) for n in (50, 40, 30, 20, 10, 25, 5)] == [2, 3, 4, 6, 7, 6, 7]


def test_rfc5424_header() -> None:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG``; MSG is the JSON line."""
    line = b'{"time":"2026-01-02T03:04:05.000006Z","level":"error","logger":"a b","msg":"m"}'
    formatter = Formatter(format="rfc5424", facility=1, app_name="my app", hostname=True)
    message = formatter(line)
    host = socket.gethostname().encode()
    pid = str(os.getpid()).encode()
    assert message == b"<11>1 2026-01-02T03:04:05.000006Z %s myapp %s ab - %s" % (host, pid, line)


def test_rfc3164_header_on_a_local_socket() -> None:
    """``<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG``, no hostname over a Unix socket (as glibc)."""
    line = b'{"time":"2026-01-02T03:04:05Z","level":"warning","logger":"x","msg":"m"}'
    formatter = Formatter(format="rfc3164", facility=16, app_name="svc", hostname=False)
    message = formatter(line)
    assert message.startswith(b"<132>Jan  2 ")
    assert message.endswith(b" svc[%d]: %s" % (os.getpid(), line))


def test_truncate_keeps_utf8_whole_and_says_how_much() -> None:
    """The cut never splits a character, and the marker counts the bytes cut."""
    message = ("é" * 1000).encode()
    cut = truncate(message, 480)
    assert len(cut) <= 480
    text = cut.decode()  # still valid UTF-8
    kept = len(text.split("...")[0].encode())
    assert text.endswith(f"...[alog: truncated {len(message) - kept} bytes]")


_untyped: Any = alog


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: alog.Syslog(("h", 514), transport="unix"), ValueError, "goes with transport"),
        (lambda: alog.Syslog("/dev/log", transport="udp"), ValueError, "goes with transport"),
        (lambda: alog.Syslog(("h", 0)), ValueError, "port must be"),
        (lambda: _untyped.Syslog(("h", 1, 2)), ValueError, "path or"),
        (lambda: _untyped.Syslog(514), TypeError, "path or"),
        (lambda: _untyped.Syslog(format="json"), ValueError, "format must be"),
        (lambda: alog.Syslog(facility="nope"), ValueError, "unknown syslog facility"),
        (lambda: alog.Syslog(facility=24), ValueError, "facility must be"),
        (lambda: alog.Syslog("/no/such/dir/log"), ValueError, "does not exist"),
        (lambda: alog.Syslog(max_size=100), ValueError, "max_size"),
        (lambda: _untyped.Syslog(("h", 6514), transport="tcp", tls=object()), TypeError, "tls="),
        (lambda: alog.Syslog(app_name=""), ValueError, "app_name"),
    ],
)
def test_bad_configuration_fails_at_construction(
    make: Any, error: type[Exception], message: str
) -> None:
    """Mistakes show where the destination is written."""
    with pytest.raises(error, match=message):
        make()


def test_repr() -> None:
    """Where, how and as whom."""
    assert repr(alog.Syslog(app_name="svc")) == (
        "alog.Syslog('/dev/log', transport='unix', format='rfc3164', app_name='svc')"
    )
    assert "facility='local3'" in repr(alog.Syslog(app_name="svc", facility=19))
    assert repr(alog.Syslog(address="/dev/log", app_name="svc")) == repr(
        alog.Syslog(app_name="svc")
    )
    assert repr(alog.Syslog(("127.0.0.1", 514), transport="tcp", app_name="svc", level="info")) == (
        "alog.Syslog(('127.0.0.1', 514), transport='tcp', format='rfc5424', app_name='svc', "
        "level='info')"
    )


def test_rsyslog_helper_writes_files_in_its_folder(rsyslog: Rsyslog) -> None:
    """The shared fixture: its own folder, ports and socket (tests/_rsyslog.py)."""
    assert rsyslog.tcp_port > 0
    assert rsyslog.socket_path.exists()
    assert Path(rsyslog.work).is_dir()
