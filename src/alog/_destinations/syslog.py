"""``alog.Syslog``: each event as one syslog message, the JSON event as its MSG.

The PRI, timestamp and MSGID come from the event itself: the writer hands the stream batches
of JSON lines, and each line's ``level``, ``time`` and ``logger`` are decoded here, in the
writer task, never on the caller's path. msgspec decodes just those three keys into a small
struct (skipping the rest at C speed, ~1 us a line). The per-chunk levels the queue keeps
would give the PRI without decoding, but only when some destination filters by level, and
not the event's time, which the RFC 5424 header wants anyway.

Transports: a Unix datagram socket (``/dev/log``), UDP (one datagram per message, cut to
``max_size`` with a visible marker and counted), TCP (octet-counting framing, RFC 6587, over
the same reconnecting stream as ``alog.TCP``, TLS included: RFC 5425).
"""

from __future__ import annotations

import datetime
import errno
import os
import socket
import ssl
import sys
from collections import deque
from pathlib import Path
from typing import Literal, final

import anyio
import msgspec

from .. import _levels
from .base import FdStream
from .fd import _Builtin
from .socket import (
    _WOULD_BLOCK,
    ConnectedStream,
    Connector,
    OctetFramer,
    TCPConnector,
    UnixConnector,
    _connect_socket,
    check_host_port,
    check_positive,
    check_socket_path,
    check_tls,
)

SyslogFormat = Literal["rfc5424", "rfc3164"]
Transport = Literal["unix", "udp", "tcp"]

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{number}": 16 + number for number in range(8)},
}
_MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_MARKER = b"...[alog: truncated %d bytes]"
DEFAULT_MAX_SIZE = {"udp": 2048, "unix": 8192}
"""Datagram limits: RFC 5426 says a UDP receiver SHOULD take 2048 octets; rsyslog's
``maxMessageSize`` is 8 KiB by default (it would cut a longer one itself, uncounted)."""


class _Head(msgspec.Struct):
    level: str = "info"
    time: str = ""
    logger: str = ""


_decode_head = msgspec.json.Decoder(_Head).decode


def severity(levelno: int) -> int:
    """The syslog severity of an alog level number (critical 2 ... debug 7)."""
    if levelno >= _levels.CRITICAL:
        return 2
    if levelno >= _levels.ERROR:
        return 3
    if levelno >= _levels.WARNING:
        return 4
    if levelno >= _levels.INFO:
        return 6
    return 7


def _printable(text: str, longest: int) -> bytes:
    """A header field: printable US-ASCII without spaces (RFC 5424 ``PRINTUSASCII``)."""
    kept = "".join(char for char in text if "!" <= char <= "~")[:longest]
    return kept.encode("ascii") if kept else b"-"


class Formatter:
    """Turns one JSON line (no newline) into one syslog message."""

    def __init__(
        self,
        *,
        format: SyslogFormat,
        facility: int,
        app_name: str,
        hostname: bool,
    ) -> None:
        self.format = format
        self.facility = facility
        self.app_name = _printable(app_name, 48)
        self.hostname = _printable(socket.gethostname(), 255) if hostname else b""
        self.procid = b"%d" % os.getpid()
        self._pri: dict[str, bytes] = {}

    def _pri_of(self, level: str) -> bytes:
        pri = self._pri.get(level)
        if pri is None:
            try:
                number = _levels.number_of(level)
            except (ValueError, TypeError):
                number = _levels.INFO
            pri = b"<%d>" % (self.facility * 8 + severity(number))
            if len(self._pri) < 64:
                self._pri[level] = pri
        return pri

    def __call__(self, line: bytes) -> bytes:
        try:
            head = _decode_head(line)
        except (msgspec.DecodeError, ValueError):
            head = _Head()
        pri = self._pri_of(head.level)
        if self.format == "rfc5424":
            stamp = _printable(head.time, 64)
            msgid = _printable(head.logger, 32)
            return b"%s1 %s %s %s %s %s - %s" % (
                pri,
                stamp,
                self.hostname or b"-",
                self.app_name,
                self.procid,
                msgid,
                line,
            )
        stamp = _rfc3164_time(head.time)
        host = self.hostname + b" " if self.hostname else b""
        return b"%s%s %s%s[%s]: %s" % (pri, stamp, host, self.app_name, self.procid, line)


def _rfc3164_time(text: str) -> bytes:
    """``Mmm dd hh:mm:ss`` in local time, as RFC 3164 has it (no year, no zone)."""
    try:
        stamp = datetime.datetime.fromisoformat(text).astimezone()
    except ValueError:
        stamp = datetime.datetime.now().astimezone()
    return b"%s %2d %02d:%02d:%02d" % (
        _MONTHS[stamp.month - 1],
        stamp.day,
        stamp.hour,
        stamp.minute,
        stamp.second,
    )


def truncate(message: bytes, limit: int) -> bytes:
    """Cut ``message`` to ``limit`` bytes, ending with a marker that says how much was cut."""
    cut = limit - len(_MARKER % len(message))
    while 0 < cut < len(message) and message[cut] & 0xC0 == 0x80:
        cut -= 1  # never split a UTF-8 sequence
    cut = max(cut, 0)
    return message[:cut] + _MARKER % (len(message) - cut)


class _Datagrams:
    __slots__ = ("formatted", "messages", "raw_size", "sent")

    def __init__(self, lines: list[bytes]) -> None:
        self.messages = lines  # each line becomes its message when it is next to go
        self.formatted = 0
        self.raw_size = 0  # the writer's bytes for the message next to go (line + newline)
        self.sent = 0


class UDPConnector(Connector):
    def __init__(self, host: str, port: int, *, description: str, connect_timeout: float) -> None:
        super().__init__(description, connect_timeout=connect_timeout)
        self.host = host
        self.port = port

    async def connect(self, timeout: float) -> socket.socket:
        infos = await anyio.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        return await _connect_socket(family, socket.SOCK_DGRAM, address, timeout)


class DatagramStream(ConnectedStream):
    """One datagram per message on a connected datagram socket (UDP, ``/dev/log``).

    A datagram is sent whole or not at all, so nothing is ever torn. A receiver that is gone
    shows as ``ECONNREFUSED`` (a Unix socket at once; UDP only on a later send, through ICMP,
    so the datagram that found nobody is lost uncounted): the stream reconnects with backoff.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        formatter: Formatter,
        max_size: int,
        required: bool,
        stall_timeout: float,
    ) -> None:
        super().__init__(
            connector, framer=OctetFramer(), required=required, stall_timeout=stall_timeout
        )
        self._formatter = formatter
        self._max_size = max_size
        self._datagrams: deque[_Datagrams] = deque()

    def _append(self, data: bytes | bytearray) -> int:
        if data:
            lines = bytes(data).split(b"\n")
            lines.pop()
            self._datagrams.append(_Datagrams(lines))
            self.submitted += len(data)
        return self.submitted

    def _write_out(self, sock: socket.socket, budget: int) -> bool | None:
        out = self._datagrams
        spent = 0
        while out:
            head = out[0]
            messages = head.messages
            while head.sent < len(messages):
                index = head.sent
                if head.formatted == index:
                    # Formatted when next to go: a big batch never holds the loop at once.
                    head.raw_size = len(messages[index]) + 1
                    message = self._formatter(messages[index])
                    if len(message) > self._max_size:
                        message = truncate(message, self._max_size)
                        self.truncated += 1
                    messages[index] = message
                    head.formatted = index + 1
                message = messages[index]
                try:
                    sock.send(message)
                except _WOULD_BLOCK:
                    return False
                except OSError as error:
                    if error.errno != errno.EMSGSIZE:  # the socket's own limit is lower
                        raise
                    messages[index] = truncate(message, max(64, len(message) // 2))
                    if not message.endswith(b" bytes]"):  # (a JSON event ends with "}")
                        self.truncated += 1  # not cut before: count it once
                    continue
                head.sent += 1
                self.done += head.raw_size
                spent += len(message)
                if spent >= budget:
                    return None
            out.popleft()
        return True

    def _rewind(self) -> None:
        pass  # a datagram is never torn: the one that failed is sent again

    def _has_pending(self) -> bool:
        return bool(self._datagrams)


@final
class Syslog(_Builtin):
    """Events as syslog messages: to ``/dev/log``, or to a syslog server over UDP or TCP."""

    def __init__(
        self,
        address: str | os.PathLike[str] | tuple[str, int] = "/dev/log",
        *,
        transport: Transport | None = None,
        format: SyslogFormat | None = None,
        app_name: str | None = None,
        facility: str | int = "user",
        tls: ssl.SSLContext | None = None,
        max_size: int | None = None,
        connect_timeout: float = 5.0,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(level=level, required=required)
        if isinstance(address, tuple):
            if len(address) != 2:
                raise ValueError(f"a syslog address is a path or (host, port), got {address!r}")
            self.address: Path | tuple[str, int] = check_host_port(*address)
            chosen: str = "udp" if transport is None else transport
            if chosen not in ("udp", "tcp"):
                raise ValueError(f"(host, port) goes with transport 'udp' or 'tcp', not {chosen!r}")
        elif isinstance(address, str | os.PathLike):
            self.address = check_socket_path(address)
            chosen = "unix" if transport is None else transport
            if chosen != "unix":
                raise ValueError(f"a socket path goes with transport 'unix', not {chosen!r}")
        else:
            raise TypeError(f"a syslog address is a path or (host, port), got {address!r}")
        self.transport: Transport = chosen  # type: ignore[assignment]  # checked above
        if format is None:
            # What a local daemon's socket parses by default (glibc's syslog() writes it);
            # RFC 5424 over the network, where receivers expect it.
            format = "rfc3164" if self.transport == "unix" else "rfc5424"
        if format not in ("rfc5424", "rfc3164"):
            raise ValueError(f"format must be 'rfc5424' or 'rfc3164', got {format!r}")
        self.format: SyslogFormat = format
        if isinstance(facility, str):
            if facility not in FACILITIES:
                raise ValueError(
                    f"unknown syslog facility {facility!r}; one of {', '.join(FACILITIES)}"
                )
            self.facility = FACILITIES[facility]
        elif isinstance(facility, int) and not isinstance(facility, bool) and 0 <= facility < 24:
            self.facility = facility
        else:
            raise ValueError(f"facility must be a name or a number from 0 to 23, got {facility!r}")
        if app_name is None:
            app_name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
        if not isinstance(app_name, str) or not app_name:
            raise ValueError(f"app_name must be a non-empty string, got {app_name!r}")
        self.app_name = app_name
        self.tls = check_tls(tls)
        if self.tls is not None and self.transport != "tcp":
            raise ValueError("tls= needs transport='tcp'")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 480
        ):
            raise ValueError(f"max_size must be an integer of at least 480, got {max_size!r}")
        self.max_size = max_size
        self.connect_timeout = check_positive("connect_timeout", connect_timeout)

    async def open_stream(self, *, write_timeout: float) -> FdStream:
        """Connect (a required destination within ``write_timeout``, else in the background)."""
        formatter = Formatter(
            format=self.format,
            facility=self.facility,
            app_name=self.app_name,
            hostname=self.transport != "unix",
        )
        description = repr(self)
        stream: ConnectedStream
        if self.transport == "tcp":
            assert isinstance(self.address, tuple)
            connector: Connector = TCPConnector(
                *self.address,
                self.tls,
                description=description,
                connect_timeout=self.connect_timeout,
            )
            stream = ConnectedStream(
                connector,
                framer=OctetFramer(formatter),
                required=self.required,
                stall_timeout=write_timeout,
            )
        else:
            if self.transport == "udp":
                assert isinstance(self.address, tuple)
                connector = UDPConnector(
                    *self.address, description=description, connect_timeout=self.connect_timeout
                )
            else:
                assert isinstance(self.address, Path)
                connector = UnixConnector(
                    self.address,
                    socket.SOCK_DGRAM,
                    description=description,
                    connect_timeout=self.connect_timeout,
                )
            stream = DatagramStream(
                connector,
                formatter=formatter,
                max_size=self.max_size or DEFAULT_MAX_SIZE[self.transport],
                required=self.required,
                stall_timeout=write_timeout,
            )
        await stream.connect_first()
        return stream

    def __repr__(self) -> str:
        where = repr(str(self.address)) if isinstance(self.address, Path) else repr(self.address)
        parts = [where, f"transport={self.transport!r}", f"format={self.format!r}"]
        parts.append(f"app_name={self.app_name!r}")
        if self.facility != 1:
            names = [name for name, number in FACILITIES.items() if number == self.facility]
            parts.append(f"facility={names[0]!r}" if names else f"facility={self.facility}")
        if self.tls is not None:
            parts.append("tls=<SSLContext>")
        options = self._options()
        if options:
            parts.append(options)
        return f"alog.Syslog({', '.join(parts)})"
