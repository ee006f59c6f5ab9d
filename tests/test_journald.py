"""alog.Journald against a real systemd-journald, read back with ``journalctl -o json``.

Each test that needs journald starts its own, in a private mount namespace (tests/_journald.py),
so tests run in parallel and the machine's own journal is never touched. Outside CI a machine
that cannot run it skips those tests and says why; in CI (``CI`` set) they must run.
"""

from __future__ import annotations

import array
import fcntl
import os
import re
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec
import pytest
from blockbuster import blockbuster_ctx

import alog
from alog._destinations import journald as journald_module
from alog._destinations.journald import JournaldStream, _Counters, field_name, priority_of

from ._journald import JournaldServer, unavailable

log = alog.get_logger("tests.journald")


@pytest.fixture(name="server")
def fixture_server() -> Iterator[JournaldServer]:
    """A running journald of this test's own."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the journald tests: {reason}")
        pytest.skip(reason)
    server = JournaldServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


def ident(request: pytest.FixtureRequest) -> str:
    """A SYSLOG_IDENTIFIER for this test alone, to find its entries."""
    return f"alog-test-{abs(hash(request.node.nodeid)) % 10**9}"


def user_fields(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if not key.startswith("_")}


# -- the mapping, without journald ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("user_id", "USER_ID"),
        ("userId", "USERID"),
        ("http.status", "HTTP_STATUS"),
        ("weird key!", "WEIRD_KEY"),
        ("_private", "PRIVATE"),
        ("__x", "X"),
        ("9lives", "FIELD_9LIVES"),
        ("_", "FIELD"),
        ("é", "FIELD"),
        ("a" * 80, "A" * 64),
    ],
)
def test_field_names_follow_journalds_rules(key: str, name: str) -> None:
    """journald ignores a field whose name breaks its rules: every key must map to a valid one."""
    assert field_name(key) == name


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (50, b"2"),
        (40, b"3"),
        (30, b"4"),
        (20, b"6"),
        (10, b"7"),
        (5, b"7"),  # trace
        (25, b"4"),  # half-way: the graver
        (22, b"6"),
        (35, b"3"),
        (1000, b"2"),  # an unknown level name is never hidden
    ],
)
def test_priority_is_the_nearest_syslog_level(level: int, priority: bytes) -> None:
    """`journalctl -p` filters on PRIORITY: custom levels land on the nearest standard one."""
    assert priority_of(level) == priority


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"socket": 3}, TypeError, "socket= must be a path"),
        ({"socket": ""}, ValueError, "non-empty"),
        ({"socket": "/tmp/" + "x" * 120}, ValueError, "too long"),
        ({"identifier": ""}, ValueError, "identifier="),
        ({"identifier": "a\nb"}, ValueError, "identifier="),
        ({"json_field": "json"}, ValueError, "json_field="),
        ({"json_field": "_JSON"}, ValueError, "json_field="),
        ({"level": 1.5}, TypeError, "level="),
        ({"required": "yes"}, TypeError, "required="),
    ],
)
def test_bad_configuration_fails_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A mistake in the configuration is caught where it is written, with a precise message."""
    with pytest.raises(error, match=match):
        alog.Journald(**options)


def test_repr_shows_what_differs_from_the_defaults() -> None:
    """The repr names the destination in reports and statistics."""
    assert repr(alog.Journald()) == "alog.Journald()"
    assert (
        repr(alog.Journald(socket=Path("/tmp/j.sock"), identifier="app", required=False))
        == "alog.Journald(socket='/tmp/j.sock', identifier='app', required=False)"
    )
    assert repr(alog.Journald(json_field="JSON", level="warning")) == (
        "alog.Journald(json_field='JSON', level='warning')"
    )


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/srv/app/bin/worker", "worker"),
        ("/srv/app/__main__.py", "app"),
        ("-c", Path(sys.executable).name),
    ],
)
def test_identifier_defaults_to_the_programs_name(
    monkeypatch: pytest.MonkeyPatch, argv0: str, expected: str
) -> None:
    """SYSLOG_IDENTIFIER is what `journalctl -t` finds: the program, as syslog would name it."""
    monkeypatch.setattr(sys, "argv", [argv0])
    assert journald_module.default_identifier() == expected


# -- against a real journald ----------------------------------------------------------------


async def test_fields_reach_journald_upper_cased(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """Each field is a journald field: core keys mapped, names sanitised, nested values JSON."""
    name = ident(request)
    async with alog.run(alog.Journald(socket=server.socket, identifier=name)):
        log.info(
            "request handled",
            status=200,
            duration_ms=12.5,
            ok=True,
            nothing=None,
            user={"id": 7, "roles": ["a", "b"]},
            **{"http.method": "GET", "message": "a user's own", "code_line": 42},
        )
    [entry] = server.wait_for(name, 1)
    fields = user_fields(entry)
    time_field = fields.pop("TIME")
    assert fields == {
        "MESSAGE": "request handled",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": name,
        "LEVEL": "info",
        "LOGGER": "tests.journald",
        "STATUS": "200",
        "DURATION_MS": "12.5",
        "OK": "true",
        "NOTHING": "null",
        "USER": '{"id":7,"roles":["a","b"]}',
        "HTTP_METHOD": "GET",
        "FIELD_MESSAGE": "a user's own",  # never a second MESSAGE
        "CODE_LINE": "42",
    }
    assert time_field.endswith("Z")
    assert entry["_TRANSPORT"] == "journal"
    assert entry["_PID"] == str(os.getpid())


async def test_priority_follows_the_level(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """`journalctl -p err` shows errors and worse: PRIORITY is the syslog number of the level."""
    name = ident(request)
    async with alog.run(
        alog.Journald(socket=server.socket, identifier=name),
        level=1,
        levels={"trace": 5, "notice": 25},
    ):
        for level in ("trace", "debug", "info", "notice", "warning", "error", "critical"):
            log.log(level, level)
        log.log(45, "forty-five")
    entries = server.wait_for(name, 8)
    assert [(e["MESSAGE"], e["PRIORITY"]) for e in entries] == [
        ("trace", "7"),
        ("debug", "7"),
        ("info", "6"),
        ("notice", "4"),
        ("warning", "4"),
        ("error", "3"),
        ("critical", "2"),
        ("forty-five", "2"),
    ]


async def test_values_with_newlines_arrive_whole(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """A newline would end a KEY=value field: such values go in the length-prefixed form."""
    name = ident(request)
    text = "line one\nline two\n\nend="
    async with alog.run(alog.Journald(socket=server.socket, identifier=name)):
        log.info("first\nsecond", body=text)
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            log.error("failed", exc_info=True)
    first, failed = server.wait_for(name, 2)
    assert first["MESSAGE"] == "first\nsecond"
    assert first["BODY"] == text
    assert '"type":"ValueError"' in failed["EXCEPTION"]
    assert '"message":"bad\\nvalue"' in failed["EXCEPTION"]


async def test_a_large_entry_goes_through_a_memfd(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """An entry past the datagram limit (EMSGSIZE) is passed as a sealed memfd, not lost."""
    name = ident(request)
    big = "x" * (1 << 20)
    destination = alog.Journald(socket=server.socket, identifier=name)
    async with alog.run(destination, max_event_bytes=2 << 20) as pipeline:
        log.info("big", blob=big, tail="a\nb")
        log.info("small")
    [entry, small] = server.wait_for(name, 2)
    assert entry["BLOB"] == big
    assert entry["TAIL"] == "a\nb"
    assert small["MESSAGE"] == "small"
    stats = destination.statistics()
    assert (stats.entries, stats.memfd_entries, stats.refused) == (2, 1, 0)
    assert pipeline.statistics().written == 2


async def test_a_burst_is_stored_exactly_as_the_books_say(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """Every event the books call written is an entry in the journal, in order, none twice."""
    name = ident(request)
    count = 20_000
    destination = alog.Journald(socket=server.socket, identifier=name)
    async with alog.run(destination, max_events=count + 10) as pipeline:
        for i in range(count):
            log.info("burst", i=i)
            if i % 500 == 0:
                await anyio.lowlevel.checkpoint()
        assert destination.statistics().connected
        assert pipeline.statistics().destinations[0].connected is True
    assert destination.statistics() == alog.JournaldStatistics(
        socket=str(server.socket),
        connected=False,
        entries=count,
        memfd_entries=0,
        refused=0,
        reconnects=0,
        last_error=None,
    )
    stats = pipeline.statistics()
    entries = server.wait_for(name, count)
    assert stats.written + stats.dropped + stats.undelivered + stats.filtered == stats.accepted
    assert stats.written == len(entries) == count
    assert [int(e["I"]) for e in entries] == list(range(count))


async def test_an_entry_journald_would_drop_is_counted(
    server: JournaldServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """journald drops an oversized entry without a word: alog refuses it itself, and counts it."""
    monkeypatch.setattr(journald_module, "ENTRY_SIZE_MAX", 100_000)
    name = ident(request)
    destination = alog.Journald(socket=server.socket, identifier=name)
    async with alog.run(destination, max_event_bytes=1 << 20) as pipeline:
        log.info("before")
        log.info("too big", blob="y" * 200_000)
        log.info("after")
    entries = server.wait_for(name, 2)
    assert [e["MESSAGE"] for e in entries] == ["before", "after"]
    stats = pipeline.statistics()
    assert (stats.written, stats.undelivered) == (2, 1)
    assert stats.written + stats.undelivered == stats.accepted
    journald = destination.statistics()
    assert journald.refused == 1
    assert journald.last_error is not None
    assert "larger than journald accepts" in journald.last_error


async def test_logging_to_journald_never_blocks_the_event_loop(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """blockbuster fails the test if anything blocking runs on the loop: open, log, flush, close."""
    name = ident(request)
    with blockbuster_ctx():
        async with alog.run(alog.Journald(socket=server.socket, identifier=name)) as pipeline:
            for round_ in range(10):
                for i in range(500):
                    log.info("busy", i=i, round=round_, text="a\nb")
                await anyio.lowlevel.checkpoint()
            await pipeline.aflush(10)
    assert len(server.wait_for(name, 5000)) == 5000


async def test_fields_past_journalds_count_limit_are_folded(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """journald ignores an entry of more than 1024 fields: the rest travel as one JSON field."""
    name = ident(request)
    many = {f"f{i}": i for i in range(1100)}
    async with alog.run(alog.Journald(socket=server.socket, identifier=name)):
        log.info("wide", **many)
    [entry] = server.wait_for(name, 1)
    fields = user_fields(entry)
    assert len(fields) == journald_module.FIELD_COUNT_MAX + 1
    extra = msgspec.json.decode(fields.pop("EXTRA_FIELDS"))
    kept = {key: int(value) for key, value in fields.items() if key.startswith("F")}
    assert {**{k.lower(): v for k, v in kept.items()}, **extra} == many


async def test_level_keeps_lesser_events_out(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """`level=` on the destination: only warnings and worse reach the journal, the rest counted."""
    name = ident(request)
    async with alog.run(
        alog.Journald(socket=server.socket, identifier=name, level="warning")
    ) as pipeline:
        log.info("no")
        log.warning("yes")
    assert [e["MESSAGE"] for e in server.wait_for(name, 1)] == ["yes"]
    stats = pipeline.statistics()
    assert (stats.written, stats.filtered) == (1, 1)


async def test_json_field_carries_the_whole_event(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """With json_field=, an agent reading the journal gets alog's own line back, unchanged."""
    name = ident(request)
    async with alog.run(alog.Journald(socket=server.socket, identifier=name, json_field="JSON")):
        log.info("hi", n=1)
    [entry] = server.wait_for(name, 1)
    assert entry["JSON"].startswith('{"time":')
    assert entry["JSON"].endswith('"level":"info","logger":"tests.journald","msg":"hi","n":1}')


async def test_an_events_syslog_identifier_wins(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """A field syslog_identifier= names the entry's program, as journald users expect."""
    name = ident(request)
    async with alog.run(alog.Journald(socket=server.socket, identifier="other")):
        log.info("mine", syslog_identifier=name)
    [entry] = server.wait_for(name, 1)
    assert entry["SYSLOG_IDENTIFIER"] == name


async def test_flush_from_a_thread_waits_for_journald(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """alog.flush() from another thread returns once journald's socket has every entry."""
    name = ident(request)
    async with alog.run(alog.Journald(socket=server.socket, identifier=name)):

        def work() -> alog.FlushResult:
            for i in range(1000):
                log.info("from a thread", i=i)
            return alog.flush(10.0)

        result = await anyio.to_thread.run_sync(work)
        assert (result.written, result.pending, result.timed_out) == (1000, 0, False)
        assert len(server.wait_for(name, 1000)) == 1000


# -- journald missing, stopped, restarted ---------------------------------------------------


async def test_missing_journald_fails_a_required_destination_at_start(tmp_path: Path) -> None:
    """No socket where journald should be: the app does not start, and says why."""
    with pytest.raises(alog.WriterFailed, match="no journald socket at"):
        async with alog.run(alog.Journald(socket=tmp_path / "nothing")):
            pass


async def test_a_socket_nobody_listens_on_fails_at_start(tmp_path: Path) -> None:
    """journald stopped (its socket file left behind): refused at once, not at the first event."""
    path = tmp_path / "socket"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    with pytest.raises(alog.WriterFailed, match="not listening"):
        async with alog.run(alog.Journald(socket=path)):
            pass


async def test_missing_journald_is_counted_for_an_optional_destination(tmp_path: Path) -> None:
    """An optional journald that is not there: the app runs, its events are counted as lost."""
    destination = alog.Journald(socket=tmp_path / "nothing", required=False)
    async with alog.run(destination, alog.File(tmp_path / "app.log")) as pipeline:
        log.info("one")
        log.info("two")
        await pipeline.aflush(5)
        [journald, file] = pipeline.statistics().destinations
        assert journald.state == "retrying"
        assert "no journald socket" in (journald.last_error or "")
        assert journald.undelivered >= 2
        assert file.written >= 3  # the two and the alog.destination_failed report
    assert destination.statistics().connected is False


async def test_journald_stopped_for_good_fails_a_required_destination(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """journald gone for longer than write_timeout: a writer failure, loud, losses counted."""
    name = ident(request)
    with pytest.raises(alog.WriterFailed, match="journal"):
        async with alog.run(
            alog.Journald(socket=server.socket, identifier=name), write_timeout=1.0
        ) as pipeline:
            log.info("before")
            await pipeline.aflush(5)
            await anyio.to_thread.run_sync(server.stop)
            log.info("lost")
            await anyio.sleep(5)
    assert [e["MESSAGE"] for e in server.entries(name)] == ["before"]


async def test_journald_restarted_loses_nothing_the_books_call_written(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """A restart shorter than write_timeout: the stream reconnects; the books match the journal.

    Only what sat unread in journald's socket when it stopped can be lost without a trace (no
    datagram sender can see that): the test measures it and bounds it by the socket's queue.
    """
    name = ident(request)
    destination = alog.Journald(socket=server.socket, identifier=name)
    count = 6000
    async with alog.run(destination, max_events=count + 10, write_timeout=10.0) as pipeline:
        for i in range(count):
            log.info("event", i=i)
            if i == count // 2:
                await anyio.to_thread.run_sync(server.restart)
            if i % 200 == 0:
                await anyio.sleep(0.001)
    stats = pipeline.statistics()
    entries = server.wait_for(name, stats.written)
    seen = [int(e["I"]) for e in entries]
    assert seen == sorted(set(seen))  # in order, none twice
    assert stats.written + stats.dropped + stats.undelivered + stats.filtered == stats.accepted
    unseen = stats.written - len(entries)
    print(f"journald restart: {stats.undelivered} counted lost, {unseen} unseen in its socket")
    assert stats.undelivered == 0
    assert 0 <= unseen <= _socket_queue_bound()
    assert destination.statistics().reconnects >= 1
    (mine,) = stats.destinations  # the same numbers as every connected destination's
    assert mine.reconnects == destination.statistics().reconnects


async def test_an_optional_journald_comes_back(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """Optional and gone past write_timeout: counted while away, written again once it is back."""
    name = ident(request)
    async with alog.run(
        alog.Journald(socket=server.socket, identifier=name, required=False), write_timeout=0.5
    ) as pipeline:
        log.info("before")
        await pipeline.aflush(5)
        await anyio.to_thread.run_sync(server.stop)
        log.info("while away")
        with anyio.fail_after(10):
            while pipeline.statistics().destinations[0].state != "retrying":  # noqa: ASYNC110 - the writer's state
                await anyio.sleep(0.05)
        await anyio.to_thread.run_sync(server.start)
        with anyio.fail_after(20):
            while pipeline.statistics().destinations[0].state != "running":  # noqa: ASYNC110 - the writer's state
                await anyio.sleep(0.05)
        log.info("after")
    stats = pipeline.statistics().destinations[0]
    messages = [e["MESSAGE"] for e in server.wait_for(name, 2)]
    assert messages[0] == "before"
    assert messages[-1] == "after"
    assert stats.reopens >= 1
    assert stats.written == len(messages)
    assert stats.undelivered >= 1


def _socket_queue_bound() -> int:
    """How many datagrams a Unix socket holds unread (``net.unix.max_dgram_qlen``), plus one."""
    return int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text()) + 1


def test_stdout_is_journal_compares_journal_stream_with_fd_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$JOURNAL_STREAM names the stream systemd connected; a redirected stdout is not it."""
    st = os.fstat(1)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert alog.Journald.stdout_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
    assert not alog.Journald.stdout_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not alog.Journald.stdout_is_journal()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not alog.Journald.stdout_is_journal()


async def test_a_stream_socket_is_refused_with_a_pointer(tmp_path: Path) -> None:
    """journald's stdout socket is a stream socket: say which socket the native protocol uses."""
    path = tmp_path / "stream"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    try:
        with pytest.raises(alog.WriterFailed, match="not a datagram socket"):
            async with alog.run(alog.Journald(socket=path)):
                pass
    finally:
        listener.close()


def _line(msg: str, level: str = "info") -> bytes:
    return msgspec.json.encode({"time": "t", "level": level, "logger": "l", "msg": msg}) + b"\n"


def _receive(sock: socket.socket) -> bytes:
    """One entry as journald gets it: a datagram, or a memfd passed with SCM_RIGHTS."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(1 << 17, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in ancillary:
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not fds:
        return data
    assert data == b""
    [fd] = fds
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS), "the memfd is sealed before it is passed"
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 1 << 22)
    finally:
        os.close(fd)


async def test_stream_sends_one_entry_per_line_and_books_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream on its own: a datagram per line, a memfd past the size limit, refusals booked.

    ``take_refused`` hands each refusal to the writer once, at the batch it belongs to.
    """
    monkeypatch.setattr(journald_module, "ENTRY_SIZE_MAX", 50_000)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # a small datagram limit
    ours.settimeout(0.25)
    theirs.settimeout(5)
    counters = _Counters()
    stream = JournaldStream(
        ours, "pair", identifier="unit", json_field=None, counters=counters, stall_timeout=5
    )
    try:
        lines = [_line("a"), _line("y" * 60_000), _line("m" * 10_000, "error"), _line("z")]
        ends = [stream.submit(line) for line in lines]
        await stream.wait_sent(ends[-1])
        assert stream.take_refused(ends[0]) == 0
        assert stream.take_refused(ends[1]) == 1  # too large for journald: not sent
        assert stream.take_refused(ends[-1]) == 0  # reported once
        entries = [_receive(theirs) for _ in range(3)]
    finally:
        await stream.aclose()
        theirs.close()
    assert entries[0] == (
        b"PRIORITY=6\nLEVEL=info\nMESSAGE=a\nSYSLOG_IDENTIFIER=unit\nTIME=t\nLOGGER=l\n"
    )
    assert b"MESSAGE=" + b"m" * 10_000 + b"\n" in entries[1]  # through a memfd
    assert entries[1].startswith(b"PRIORITY=3\n")
    assert entries[2].startswith(b"PRIORITY=6\nLEVEL=info\nMESSAGE=z\n")
    assert (counters.entries, counters.memfd_entries, counters.refused) == (3, 1, 1)


async def test_stream_waits_for_a_journald_that_went_away() -> None:
    """journald gone: not connected, the error kept, and after write_timeout a named failure."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.settimeout(0.25)
    theirs.close()  # the peer is gone: sends are refused
    counters = _Counters()
    stream = JournaldStream(
        ours,
        "/nonexistent/journald.sock",
        identifier="unit",
        json_field=None,
        counters=counters,
        stall_timeout=0.5,
    )
    try:
        target = stream.submit(_line("lost"))
        with anyio.fail_after(0.3):
            while counters.away == 0:  # noqa: ASYNC110 - set by the stream's thread
                await anyio.sleep(0.01)
        assert counters.connected == 1
        with pytest.raises(ConnectionError, match="went away"):
            await stream.wait_sent(target)
        assert stream.done == 0
        assert counters.last_error is not None
    finally:
        await stream.aclose()
    assert (counters.connected, counters.away, counters.entries) == (0, 0, 0)


async def test_a_stalled_journald_fails_after_write_timeout(
    server: JournaldServer, request: pytest.FixtureRequest
) -> None:
    """journald stopped (SIGSTOP) fills its socket: no progress for write_timeout is a failure.

    What the books call written is exactly what journald stores once it runs again.
    """
    name = ident(request)
    assert server.process is not None
    pipeline = alog.run(alog.Journald(socket=server.socket, identifier=name), write_timeout=1.0)
    server.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(alog.WriterFailed, match="no progress"):
            async with pipeline:
                for i in range(500):
                    log.info("stalled", i=i)
                await anyio.sleep(10)
    finally:
        server.process.send_signal(signal.SIGCONT)
    stats = pipeline.statistics()
    assert stats.written + stats.dropped + stats.undelivered + stats.filtered == stats.accepted
    assert stats.undelivered > 0
    assert len(server.wait_for(name, stats.written)) == stats.written


DOCS = Path(__file__).resolve().parents[1] / "docs" / "journald.md"


def test_the_docs_examples_run_against_journald(server: JournaldServer, tmp_path: Path) -> None:
    """docs/journald.md's code runs as written, at the default socket, under `python -m app`."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert len(blocks) == 2
    for number, block in enumerate(blocks):
        app = tmp_path / f"run{number}" / "app"
        app.mkdir(parents=True)
        (app / "__main__.py").write_text(block)
        result = server.run_inside([sys.executable, "-m", "app"], cwd=app.parent)
        assert result.returncode == 0, result.stderr.decode()
    [entry] = server.wait_for("app", 1)
    assert (entry["MESSAGE"], entry["METHOD"], entry["USER"]) == (
        "request handled",
        "GET",
        '{"id":7}',
    )


def test_binary_field_form_is_the_protocols() -> None:
    """KEY, newline, 64-bit little-endian length, value, newline: the native protocol's form."""
    entry = bytearray()
    journald_module._append(entry, b"BODY", "a\nb", msgspec.json.encode)
    assert entry == b"BODY\n" + struct.pack("<Q", 3) + b"a\nb\n"
