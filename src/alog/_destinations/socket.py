"""Sockets to a log agent: ``alog.TCP`` and ``alog.Unix``, reconnecting on their own.

The socket is non-blocking and driven by the event loop, as pipes are (``nonblocking.py``), so
a synchronous ``flush()`` can write to it too. The stream keeps the connection itself: when the
peer goes away it reconnects with exponential backoff and jitter, and meanwhile the writer waits
in ``wait_sent`` with its batch in hand, reading nothing more. Events logged while the
connection is down therefore wait in the bounded queue, under its caps and its drop accounting
(``alog.dropped`` once the connection is back), instead of being counted as undelivered: a
restarting agent is a pause, not a failure. Only a required destination with no connection for
``write_timeout`` fails.

What the books call written is what the kernel accepted; before every write (and once a second
while idle) the read side is checked for the peer's close (EOF: an agent shutting down with
``shutdown(SHUT_WR)``), and nothing more is written to a connection the peer closed. A frame
(a line, or an octet-counted message) that the kernel took only part of when the connection
broke is sent again, whole, on the next connection; frames the kernel took whole are never
sent again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, final

import anyio
import anyio.lowlevel

from .._backend import keyboard_interrupt_safe
from .._report import to_stderr
from .base import ConnectionStatistics, FdStream
from .fd import _Builtin

Framing = Literal["lines", "octet-counting"]

_YIELD_EVERY = 256 * 1024
"""Bytes written between two yields to the loop."""
_FRAME_LINES = 1000
"""Lines framed at once (octet counting, syslog headers): about a millisecond of work."""
_TLS_PIECE = 16 * 1024
"""One TLS record: an ``SSL_write`` that would block must be retried with the same piece."""
_WATCH_EVERY = 0.25
"""While a write waits for room, the read side is checked for the peer's close this often."""
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 30.0
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Framer:
    """Newline-terminated JSON lines, sent as they are (the writer's own bytes)."""

    per_line = False
    """Does framing cost Python work per line? Then it is done lazily, a slice at a time."""

    def encode(self, data: bytes | bytearray) -> bytes | bytearray:
        """The bytes to send for a batch of lines."""
        return data

    def whole(self, wire: bytes | bytearray, data: bytes | bytearray, sent: int) -> tuple[int, int]:
        """Of ``wire[:sent]``: the bytes of whole frames, and the input bytes they came from."""
        cut = wire.rfind(b"\n", 0, sent) + 1
        return cut, cut


class OctetFramer(Framer):
    """RFC 6587 octet counting: ``LEN SP MSG`` per line, the line's newline left out."""

    per_line = True

    def __init__(self, message: Callable[[bytes], bytes] | None = None) -> None:
        self._message = message

    def encode(self, data: bytes | bytearray) -> bytes | bytearray:
        lines = bytes(data).split(b"\n")
        lines.pop()  # after the last newline: nothing
        return self.encode_lines(lines)

    def encode_lines(self, lines: list[bytes]) -> bytes:
        """The frames for these lines (each without its newline)."""
        message = self._message
        if message is not None:
            lines = [message(line) for line in lines]
        return b"".join([b"%d %s" % (len(line), line) for line in lines])

    def whole(self, wire: bytes | bytearray, data: bytes | bytearray, sent: int) -> tuple[int, int]:
        at = consumed = 0
        while True:
            space = wire.find(b" ", at, sent)
            if space < 0 or space + 1 + int(wire[at:space]) > sent:
                return at, consumed
            end = space + 1 + int(wire[at:space])
            at = end
            consumed = data.index(b"\n", consumed) + 1


class _Pending:
    __slots__ = ("data", "lines", "sent", "wire")

    def __init__(
        self,
        wire: bytes | bytearray | None,
        data: bytes | bytearray,
        lines: list[bytes] | None = None,
    ) -> None:
        self.wire = wire  # None: not framed yet (``lines`` are, when it reaches the head)
        self.data = data
        self.lines = lines
        self.sent = 0


class _Broken(Exception):
    """The connection is gone (its cause is the OS error or the peer's close)."""


class PeerClosed(ConnectionError):
    """The peer closed its side of the connection (EOF on the read side)."""


class Connector:
    """Opens one connected, non-blocking socket: where, and how (TLS)."""

    def __init__(self, description: str, *, connect_timeout: float) -> None:
        self.description = description
        self.connect_timeout = connect_timeout

    async def connect(self, timeout: float) -> socket.socket:
        raise NotImplementedError


async def _connect_socket(
    family: int, kind: int, address: tuple[Any, ...] | str, timeout: float
) -> socket.socket:
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        try:
            sock.connect(address)
        except BlockingIOError:
            with anyio.fail_after(timeout):
                await anyio.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code)) from None
        if family != socket.AF_UNIX:
            _refuse_self_connection(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _refuse_self_connection(sock: socket.socket) -> None:
    """Nobody listens on a port in the ephemeral range and the kernel gave this socket that
    very port: it is connected to itself (TCP's simultaneous open; UDP alike). It would take
    every line and read it back. Seen in the tests, when a restarted server's port was free.
    """
    if sock.getsockname() == sock.getpeername():
        raise ConnectionRefusedError(errno.ECONNREFUSED, "connected to itself: no listener")


async def _handshake(sock: ssl.SSLSocket, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while True:
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                await anyio.wait_readable(sock)
            except ssl.SSLWantWriteError:
                await anyio.wait_writable(sock)
            else:
                return


class TCPConnector(Connector):
    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        description: str,
        connect_timeout: float,
    ) -> None:
        super().__init__(description, connect_timeout=connect_timeout)
        self.host = host
        self.port = port
        self.tls = tls

    async def connect(self, timeout: float) -> socket.socket:
        started = time.monotonic()
        infos = await anyio.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        error: BaseException = OSError(f"no address for {self.host!r}")
        for family, _, _, _, address in infos:
            left = max(0.001, timeout - (time.monotonic() - started))
            try:
                sock = await _connect_socket(family, socket.SOCK_STREAM, address, left)
            except (OSError, TimeoutError) as failed:
                error = failed
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is None:
                return sock
            wrapped = self.tls.wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
            try:
                left = max(0.001, timeout - (time.monotonic() - started))
                await _handshake(wrapped, left)
            except BaseException:
                wrapped.close()
                raise
            return wrapped
        raise error


class UnixConnector(Connector):
    def __init__(self, path: Path, kind: int, *, description: str, connect_timeout: float) -> None:
        super().__init__(description, connect_timeout=connect_timeout)
        self.path = path
        self.kind = kind

    async def connect(self, timeout: float) -> socket.socket:
        return await _connect_socket(socket.AF_UNIX, self.kind, str(self.path), timeout)


class ConnectedStream(FdStream):
    """A socket the loop writes to without blocking; it reconnects when the peer goes away.

    ``submitted`` and ``done`` count the writer's bytes (JSON lines), whatever the framing
    puts on the wire. ``required``: with no connection for ``stall_timeout`` the stream fails
    (the writer fails the pipeline); otherwise it keeps trying for ever.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        framer: Framer,
        required: bool,
        stall_timeout: float,
    ) -> None:
        super().__init__(-1, connector.description, stall_timeout=stall_timeout)
        self._connector = connector
        self._framer = framer
        self.required = required
        self._out: deque[_Pending] = deque()
        self._sock: socket.socket | None = None
        self._busy = False
        self._down_since = time.monotonic()
        self._connections = 0
        self._announced = False
        self.truncated = 0
        self.connection_error: str | None = None

    # -- the connection -----------------------------------------------------------------------

    def connection_statistics(self) -> ConnectionStatistics:
        """Connected, reconnects, truncations and the last connection error."""
        return ConnectionStatistics(
            connected=self._sock is not None,
            reconnects=max(0, self._connections - 1),
            truncated=self.truncated,
            last_error=self.connection_error,
        )

    async def connect_first(self) -> None:
        """At open: a required destination must connect within ``stall_timeout``."""
        if self.required:
            await self._reconnect(time.monotonic())
        else:
            with contextlib.suppress(OSError, TimeoutError):
                await self._attempt(self._connector.connect_timeout)

    async def _attempt(self, timeout: float) -> None:
        try:
            sock = await self._connector.connect(timeout)
        except (OSError, TimeoutError) as error:
            cut_short = timeout < self._connector.connect_timeout
            if not (cut_short and isinstance(error, TimeoutError) and self.connection_error):
                # (an attempt the deadline cut short says less than the one before it)
                self.connection_error = _describe(error, timeout)
            raise
        self._sock = sock
        self.fd = sock.fileno()
        self._connections += 1
        if self._announced:
            to_stderr(f"alog: reconnected to {self.description}")
        self._announced = False

    async def _reconnect(self, since: float) -> None:
        """Connect, with exponential backoff and jitter; a required stream gives up in time.

        ``since``: when data began to wait for a connection (the clock of ``stall_timeout``).
        A required stream makes its last attempt a little before that time is up, so that it
        fails with the connection's own error rather than the writer's backstop.
        """
        delay = RECONNECT_FIRST
        # Room for the writer's own clock, which started a little earlier (it opens the
        # stream in a task of its own), and for a loaded machine's scheduling.
        margin = min(0.5, self.stall_timeout / 5)
        deadline = since + self.stall_timeout - margin
        while True:
            timeout = self._connector.connect_timeout
            if self.required:
                timeout = max(0.001, min(timeout, deadline - time.monotonic()))
            try:
                await self._attempt(timeout)
            except (OSError, TimeoutError) as error:
                pause = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy
                delay = min(RECONNECT_MAX, delay * 2)
                if self.required:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        failure = ConnectionError(
                            f"no connection to {self.description} for "
                            f"{self.stall_timeout:g} s: {self.connection_error}"
                        )
                        self.error = failure
                        raise failure from error
                    pause = min(pause, left)
                elif not self._announced:
                    self._announced = True
                    to_stderr(
                        f"alog: no connection to {self.description} "
                        f"({self.connection_error}); events wait in the queue, reconnecting"
                    )
                await anyio.sleep(pause)
            else:
                return

    def _disconnect(self, cause: BaseException) -> None:
        """The connection is gone: close it; a frame it took only part of is sent again whole."""
        sock, self._sock = self._sock, None
        self.fd = -1
        self._down_since = time.monotonic()
        self.connection_error = _describe(cause, 0)
        if sock is not None:
            _close(sock)
        self._rewind()

    def _peer_closed(self, sock: socket.socket) -> BaseException | None:
        """Has the peer closed its side (EOF) or reset the connection? Reads what it sent."""
        while True:
            try:
                got = sock.recv(65536)
            except _WOULD_BLOCK:
                return None
            except OSError as error:
                return error
            if not got:
                return PeerClosed(f"{self.description} closed the connection")

    checks_idle = True

    @keyboard_interrupt_safe
    def check_idle(self) -> None:
        """The writer is idle: if the peer closed, close now (and reconnect at the next write).

        So an agent that half-closes and waits for us sees our close within a second, and
        ``connected`` says so, instead of at the next event.
        """
        sock = self._sock
        if sock is None or self._busy or self._has_pending():
            return
        closed = self._peer_closed(sock)
        if closed is not None:
            self._disconnect(closed)

    # -- writing --------------------------------------------------------------------------

    def _append(self, data: bytes | bytearray) -> int:
        if data:
            framer = self._framer
            if not framer.per_line:
                self._out.append(_Pending(framer.encode(data), data))
            else:
                # Framed later, a slice at a time, so a big batch never holds the loop.
                lines = bytes(data).split(b"\n")
                lines.pop()
                for start in range(0, len(lines), _FRAME_LINES):
                    part = lines[start : start + _FRAME_LINES]
                    self._out.append(_Pending(None, b"\n".join(part) + b"\n", part))
            self.submitted += len(data)
        return self.submitted

    def _send_piece(self, sock: socket.socket, view: memoryview) -> int:
        if isinstance(sock, ssl.SSLSocket):
            return sock.send(view[:_TLS_PIECE])
        return sock.send(view)

    @keyboard_interrupt_safe
    def _write_ready(self, budget: int) -> bool | None:
        """Write until done (True), the socket is full (False) or ``budget`` is spent (None).

        Raises :class:`_Broken` when the connection is gone (it is closed by then).
        """
        if self._busy:
            return None
        sock = self._sock
        assert sock is not None
        closed = self._peer_closed(sock)
        if closed is not None:
            self._disconnect(closed)
            raise _Broken from closed
        self._busy = True
        try:
            return self._write_out(sock, budget)
        except OSError as error:
            self._disconnect(error)
            raise _Broken from error
        finally:
            self._busy = False

    def _write_out(self, sock: socket.socket, budget: int) -> bool | None:
        out = self._out
        spent = 0
        framer = self._framer
        while out:
            head = out[0]
            wire = head.wire
            if wire is None:
                assert head.lines is not None
                assert isinstance(framer, OctetFramer)
                head.wire = wire = framer.encode_lines(head.lines)
                head.lines = None
                spent += len(wire) // 2  # framing is work too: it counts towards the budget
            try:
                written = self._send_piece(sock, memoryview(wire)[head.sent :])
            except _WOULD_BLOCK:
                return False
            head.sent += written
            spent += written
            if head.sent >= len(wire):
                out.popleft()
                self.done += len(head.data)
            if spent >= budget:
                return None if out else True
        return True

    def _rewind(self) -> None:
        """The connection broke: a frame it took only part of is sent again whole."""
        if self._out:
            head = self._out[0]
            if head.sent and head.wire is not None:
                wire_cut, data_cut = self._framer.whole(head.wire, head.data, head.sent)
                self.done += data_cut
                head.wire = head.wire[wire_cut:]
                head.data = head.data[data_cut:]
                head.sent = 0

    def _has_pending(self) -> bool:
        return bool(self._out)

    async def wait_sent(self, target: int) -> None:
        started = last_progress = time.monotonic()
        while self.done < target:
            if self._sock is None:
                # The clock starts when this data began to wait, or when the connection went
                # if that was later: a peer that closed an idle connection an hour ago has
                # not kept this batch waiting for an hour.
                await self._reconnect(max(started, self._down_since))
                last_progress = time.monotonic()
                continue
            before = self.done
            try:
                state = self._write_ready(_YIELD_EVERY)
            except _Broken:
                continue
            if self.done > before:
                last_progress = time.monotonic()
            if self.done >= target:
                break
            if state is False:
                idle = time.monotonic() - last_progress
                if idle >= self.stall_timeout:
                    stall = TimeoutError(f"no progress for {idle:.1f} s")
                    if self.required:
                        self._give_up(stall)
                        raise stall
                    self._disconnect(stall)  # a peer that stopped reading: try a new one
                    continue
                sock = self._sock
                assert sock is not None
                with (
                    anyio.move_on_after(min(_WATCH_EVERY, self.stall_timeout - idle)),
                    contextlib.suppress(anyio.ClosedResourceError),  # closed by a sync flush
                ):
                    await anyio.wait_writable(sock)
            else:
                await anyio.lowlevel.checkpoint()

    def _give_up(self, error: BaseException) -> None:
        """Failing for good: count the whole frames of a batch cut short as done."""
        self.error = error
        self._rewind()

    @keyboard_interrupt_safe
    def send_sync(self, data: bytes | bytearray, deadline: float) -> bool:
        if self.error is not None or self._closed:
            return False
        self._append(data)
        while self._has_pending():
            sock = self._sock
            if sock is None:
                return False  # reconnecting is the writer task's: the flush reports it
            try:
                state = self._write_ready(1 << 62)
            except _Broken:
                return False
            if state is None:
                return False  # re-entered from a signal handler: leave it to the writer
            if state:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLOUT | select.POLLIN)
            poller.poll(min(remaining, _WATCH_EVERY) * 1000)
        return True

    def is_same_file(self, fd: int) -> bool:
        return False  # a socket of alog's own: never where stderr points

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            sock, self._sock = self._sock, None
            self.fd = -1
            if sock is not None:
                _close(sock)
        await anyio.lowlevel.checkpoint()


def _close(sock: socket.socket) -> None:
    """Close a socket the writer task may be waiting on (a flush in a signal handler broke it)."""
    with contextlib.suppress(Exception):  # no loop here (an atexit flush): nobody waits on it
        anyio.notify_closing(sock)
    with contextlib.suppress(OSError):
        sock.close()


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"TimeoutError: no answer within {timeout:g} s"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def check_tls(tls: object) -> ssl.SSLContext | None:
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    raise TypeError(
        f"tls= takes an ssl.SSLContext (e.g. ssl.create_default_context()) or None, got {tls!r}"
    )


def check_host_port(host: object, port: object) -> tuple[str, int]:
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return host, port


def check_socket_path(path: str | os.PathLike[str]) -> Path:
    where = Path(path)
    if not str(path):
        raise ValueError("a Unix socket path must not be empty")
    if not where.parent.is_dir():
        raise ValueError(f"the directory of Unix socket {str(where)!r} does not exist")
    if len(os.fsencode(where)) >= 108:
        raise ValueError(f"Unix socket path {str(where)!r} is too long (107 bytes at most)")
    return where


def check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class _SocketDestination(_Builtin):
    """The options common to TCP and Unix; the stream is opened with the stall deadline."""

    framing: Framing
    connect_timeout: float

    def _framer(self) -> Framer:
        return OctetFramer() if self.framing == "octet-counting" else Framer()

    def _connector(self) -> Connector:
        raise NotImplementedError

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Connect (a required destination within ``write_timeout``, else in the background)."""
        stream = ConnectedStream(
            self._connector(),
            framer=self._framer(),
            required=self.required,
            stall_timeout=write_timeout,
        )
        await stream.connect_first()
        return stream

    def _socket_options(self, tls: ssl.SSLContext | None = None) -> str:
        parts = []
        if tls is not None:
            parts.append("tls=<SSLContext>")
        if self.framing != "lines":
            parts.append(f"framing={self.framing!r}")
        options = self._options()
        return "".join(f", {part}" for part in [*parts, *([options] if options else [])])


def _check_framing(framing: object) -> Framing:
    if framing not in ("lines", "octet-counting"):
        raise ValueError(f"framing must be 'lines' or 'octet-counting', got {framing!r}")
    return framing


@final
class TCP(_SocketDestination):
    """JSON lines over TCP (TLS with ``tls=``) to an agent: Vector, Fluent Bit, rsyslog, ..."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        framing: Framing = "lines",
        connect_timeout: float = 5.0,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(level=level, required=required)
        self.host, self.port = check_host_port(host, port)
        self.tls = check_tls(tls)
        self.framing = _check_framing(framing)
        self.connect_timeout = check_positive("connect_timeout", connect_timeout)

    def _connector(self) -> Connector:
        return TCPConnector(
            self.host,
            self.port,
            self.tls,
            description=repr(self),
            connect_timeout=self.connect_timeout,
        )

    def __repr__(self) -> str:
        return f"alog.TCP({self.host!r}, {self.port}{self._socket_options(self.tls)})"


@final
class Unix(_SocketDestination):
    """JSON lines over a Unix stream socket to an agent on the same machine."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        framing: Framing = "lines",
        connect_timeout: float = 5.0,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(level=level, required=required)
        self.path = check_socket_path(path)
        self.framing = _check_framing(framing)
        self.connect_timeout = check_positive("connect_timeout", connect_timeout)

    def _connector(self) -> Connector:
        return UnixConnector(
            self.path,
            socket.SOCK_STREAM,
            description=repr(self),
            connect_timeout=self.connect_timeout,
        )

    def __repr__(self) -> str:
        return f"alog.Unix({str(self.path)!r}{self._socket_options()})"


__all__ = [
    "TCP",
    "ConnectedStream",
    "Framer",
    "OctetFramer",
    "Unix",
]
