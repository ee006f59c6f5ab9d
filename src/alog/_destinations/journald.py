"""systemd-journald through its native protocol: one datagram of ``KEY=value`` fields per event.

The writer hands over batches of JSON lines, as to every stream; this stream's daemon thread
decodes each line and sends it as one entry, so the log call never pays for the translation.

- A value with a newline goes in the length-prefixed binary form (``KEY\\n``, a 64-bit
  little-endian length, the value, ``\\n``).
- An entry too large for a datagram (``EMSGSIZE``) goes in a sealed memfd passed with
  ``SCM_RIGHTS``, as ``sd_journal_send`` does.
- An entry journald would drop without a word (larger than it accepts) is not sent: it is
  counted as refused, and the writer books it as undelivered.
- journald gone (restarting, or stopped: ``ECONNREFUSED``/``ENOENT``): the thread reconnects
  and resends the same entry until ``write_timeout`` passes with no progress, then fails the
  stream; the writer's ``required=`` policy decides what follows.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket as _socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import anyio.to_thread
import msgspec

from .. import _levels
from .base import ConnectionStatistics
from .threaded import ThreadedFdStream

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_SOCKET: Final = "/run/systemd/journal/socket"

ENTRY_SIZE_MAX: Final = 768 * 1024 * 1024
"""Past this, journald ignores the entry without a word (systemd's ``DATA_SIZE_MAX`` for one
field is 768 MiB and ``ENTRY_SIZE_MAX`` 770 MiB; the smaller is taken for the whole entry)."""

FIELD_COUNT_MAX: Final = 1000
"""Fields per entry before the rest are folded into ``EXTRA_FIELDS`` (journald takes 1024)."""

_RECONNECT_FIRST: Final = 0.02
_RECONNECT_MAX: Final = 0.25
_POLL: Final = 0.25
"""How long one blocked send waits before the thread looks at the clock and at close."""

_GONE: Final = frozenset({errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET})

_ANCHORS: Final = (
    (_levels.DEBUG, b"7"),
    (_levels.INFO, b"6"),
    (_levels.WARNING, b"4"),
    (_levels.ERROR, b"3"),
    (_levels.CRITICAL, b"2"),
)

OWN_FIELDS: Final = frozenset(
    {"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "TIME", "LEVEL", "LOGGER"}
)
"""What alog sets from the core keys; a user's field of the same name gets ``FIELD_`` first."""

_INVALID: Final = re.compile(r"[^A-Z0-9_]")
_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def priority_of(level: int) -> bytes:
    """The syslog priority for a level number: the nearest of the five, ties to the graver."""
    best = b"7"
    distance = None
    for number, priority in _ANCHORS:
        gap = abs(level - number)
        if distance is None or gap <= distance:
            best, distance = priority, gap
    return best


def field_name(key: str) -> str:
    """A key as journald accepts it: A-Z, 0-9 and ``_``, never first ``_`` or a digit, ≤ 64."""
    name = _INVALID.sub("_", key.upper()).lstrip("_")
    if not name or name[0].isdigit():
        name = "FIELD_" + name
    return name[:64].rstrip("_") or "FIELD"


def default_identifier() -> str:
    """The program's name, as syslog would call it: ``python -m app`` gives ``app``."""
    argv0 = sys.argv[0] if sys.argv else ""
    path = Path(argv0)
    if path.name == "__main__.py":
        return path.parent.name or "python"
    if not argv0 or argv0 in ("-c", "-m", "-"):
        return Path(sys.executable).name or "python"
    return path.name


@dataclass(frozen=True, slots=True)
class JournaldStatistics:
    """What one :class:`Journald` destination did, across every reconnect and reopen."""

    socket: str
    """The journald socket it sends to."""
    connected: bool
    """Is a stream open to a journald that is there (not one reconnecting after it left)?"""
    entries: int
    """Entries journald's socket accepted."""
    memfd_entries: int
    """Of those, entries too large for a datagram, passed in a sealed memfd."""
    refused: int
    """Entries not sent because journald would have dropped them (too large)."""
    reconnects: int
    """Times a stream found journald gone and connected again."""
    last_error: str | None
    """The last error met while sending, as text."""


class _Counters:
    """The destination's numbers; each stream it opens adds to them (under ``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connected = 0
        self.away = 0  # of those, streams that found journald gone and are reconnecting
        self.entries = 0
        self.memfd_entries = 0
        self.refused = 0
        self.reconnects = 0
        self.last_error: str | None = None


@final
class Journald:
    """systemd-journald's native socket: one structured entry per event.

    ``identifier`` is ``SYSLOG_IDENTIFIER`` (default: the program's name); ``json_field``
    names a field that also carries the whole JSON event (off by default: it doubles what
    journald stores). ``level=`` and ``required=`` are as for every built-in destination.
    """

    def __init__(
        self,
        *,
        socket: str | os.PathLike[str] = DEFAULT_SOCKET,
        identifier: str | None = None,
        json_field: str | None = None,
        level: str | int | None = None,
        required: bool = True,
    ) -> None:
        if level is not None and (isinstance(level, bool) or not isinstance(level, str | int)):
            raise TypeError(f"level= must be a level name or number, got {level!r}")
        if not isinstance(required, bool):
            raise TypeError(f"required= must be True or False, got {required!r}")
        if not isinstance(socket, str | os.PathLike):
            raise TypeError(f"socket= must be a path (str or Path), got {socket!r}")
        path = os.fspath(socket)
        if not isinstance(path, str) or not path:
            raise ValueError(f"socket= must be a non-empty path, got {socket!r}")
        if len(os.fsencode(path)) >= 108:  # sun_path, with its terminating NUL
            raise ValueError(f"socket= is too long for a Unix socket address (≥ 108 bytes): {path}")
        if identifier is not None and (
            not isinstance(identifier, str) or not identifier or "\n" in identifier
        ):
            raise ValueError(f"identifier= must be a non-empty one-line str, got {identifier!r}")
        if json_field is not None and (
            not isinstance(json_field, str) or not _NAME.fullmatch(json_field)
        ):
            raise ValueError(
                "json_field= must be a journald field name (A-Z, 0-9, _, starting with a "
                f"letter, at most 64 characters), got {json_field!r}"
            )
        self.level = level
        self.required = required
        self.socket = path
        self.identifier = identifier
        self.json_field = json_field
        self._counters = _Counters()

    async def open(self) -> JournaldStream:
        """Open the stream (the :class:`alog.typing.Destination` protocol)."""
        return await self.open_stream(write_timeout=10.0)

    async def open_stream(self, *, write_timeout: float) -> JournaldStream:
        """Connect to journald's socket; fails at once if nobody listens there."""
        sock = await anyio.to_thread.run_sync(_connect, self.socket)
        try:
            return JournaldStream(
                sock,
                self.socket,
                identifier=self.identifier or default_identifier(),
                json_field=self.json_field,
                counters=self._counters,
                stall_timeout=write_timeout,
            )
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def stdout_is_journal() -> bool:
        """Is stdout already the journal (systemd's ``StandardOutput=journal``)?

        systemd sets ``$JOURNAL_STREAM`` to ``device:inode`` of the stream it connected; this
        compares it with fd 1, so a child whose stdout was redirected is not fooled.
        """
        device, colon, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
        if not colon:
            return False
        try:
            st = os.fstat(1)
            return (st.st_dev, st.st_ino) == (int(device), int(inode))
        except (OSError, ValueError):
            return False

    def statistics(self) -> JournaldStatistics:
        """A snapshot of what this destination sent, refused and met."""
        c = self._counters
        # Read without the lock (which only orders the writing threads): a signal handler
        # may ask while this thread is inside a locked update.
        return JournaldStatistics(
            socket=self.socket,
            connected=c.connected - c.away > 0,
            entries=c.entries,
            memfd_entries=c.memfd_entries,
            refused=c.refused,
            reconnects=c.reconnects,
            last_error=c.last_error,
        )

    def __repr__(self) -> str:
        parts = []
        if self.socket != DEFAULT_SOCKET:
            parts.append(f"socket={self.socket!r}")
        if self.identifier is not None:
            parts.append(f"identifier={self.identifier!r}")
        if self.json_field is not None:
            parts.append(f"json_field={self.json_field!r}")
        if self.level is not None:
            parts.append(f"level={self.level!r}")
        if not self.required:
            parts.append("required=False")
        return f"alog.Journald({', '.join(parts)})"


def _connect(path: str) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise FileNotFoundError(
            errno.ENOENT, f"no journald socket at {path} (is systemd-journald running?)"
        ) from None
    except ConnectionRefusedError:
        sock.close()
        raise ConnectionRefusedError(
            errno.ECONNREFUSED, f"journald is not listening on {path}"
        ) from None
    except OSError as error:
        sock.close()
        if error.errno != errno.EPROTOTYPE:
            raise
        raise OSError(
            errno.EPROTOTYPE,
            f"{path} is not a datagram socket (journald's native one is {DEFAULT_SOCKET})",
        ) from None
    except BaseException:
        sock.close()
        raise
    sock.settimeout(_POLL)  # a send blocked on a full journald wakes to check clock and close
    return sock


class _Refused(Exception):
    """An entry journald would drop: not sent, counted."""


class JournaldStream(ThreadedFdStream):
    """The daemon thread of :class:`ThreadedFdStream`, sending one entry per line."""

    writes_ahead = False  # its wait_sent names the cause of a stall; one batch at a time

    def __init__(
        self,
        sock: _socket.socket,
        path: str,
        *,
        identifier: str,
        json_field: str | None,
        counters: _Counters,
        stall_timeout: float,
    ) -> None:
        self._sock = sock
        self._path = path
        self._identifier = b"SYSLOG_IDENTIFIER=" + identifier.encode() + b"\n"
        self._json_field = json_field.encode() if json_field else None
        self._counters = counters
        # Keys repeat from event to event: their field names, bounded (and "time" and
        # "logger" are alog's own, mapped here once).
        self._names: dict[str, bytes] = {"time": b"TIME", "logger": b"LOGGER"}
        self._heads: dict[object, bytes] = {}  # level name: its PRIORITY and LEVEL fields
        self._decoder = msgspec.json.Decoder()
        self._encode = msgspec.json.Encoder(enc_hook=str).encode
        self._away: OSError | None = None  # the error met while journald is gone
        super().__init__(sock.fileno(), f"journald ({path})", stall_timeout=stall_timeout)
        with counters.lock:
            counters.connected += 1
        self._connected = True

    # -- the thread -----------------------------------------------------------------------

    def connection_statistics(self) -> ConnectionStatistics:
        """Connected and reconnects, as every connected destination reports them."""
        c = self._counters
        return ConnectionStatistics(
            connected=self._connected and self._away is None,
            reconnects=c.reconnects,
            truncated=0,
            last_error=c.last_error,
        )

    def _write_batch(self, data: bytes | bytearray, offset: int) -> None:
        while offset < len(data) and not self._closed:
            end = data.index(b"\n", offset) + 1
            refused = not self._send_line(bytes(data[offset : end - 1]))
            with self._cond:
                if refused:  # before done moves: whoever sees done sees the refusal
                    self._refuse_line(self.done + end - offset)
                self.done += end - offset
                self._last_progress = time.monotonic()
            offset = end

    def _on_error(self, error: BaseException) -> None:
        self._note_error(error)

    def _send_line(self, line: bytes) -> bool:
        """Send one event as one entry; False if it was refused (too large for journald)."""
        try:
            entry = self._entry(line)
        except _Refused as why:
            self._note_error(why, refused=True)
            return False
        delay = _RECONNECT_FIRST
        while True:
            try:
                self._send(entry)
            except TimeoutError:  # journald is slow: keep trying until the stall deadline
                self._check_stalled(TimeoutError(f"journald at {self._path} is not reading"))
                continue
            except OSError as error:
                if error.errno not in _GONE:
                    raise
                if self._away is None:
                    with self._counters.lock:
                        self._counters.away += 1
                if error.errno != errno.ENOTCONN or self._away is None:
                    self._away = error  # ENOTCONN only says the last reconnect failed
                    self._note_error(error)
                self._check_stalled(self._away)
                time.sleep(delay)
                delay = min(_RECONNECT_MAX, delay * 2)
                try:
                    self._sock.connect(self._path)
                except OSError as still_gone:  # tried again after the next sleep
                    self._away = still_gone
                    continue
                with self._counters.lock:
                    self._counters.reconnects += 1
                continue
            if self._away is not None:
                self._away = None
                with self._counters.lock:
                    self._counters.away -= 1
            return True

    def _check_stalled(self, error: OSError) -> None:
        if self._closed:
            raise OSError(errno.ESHUTDOWN, "stream closed while journald was away") from error
        if time.monotonic() - self._last_progress >= self.stall_timeout:
            if error is self._away:
                raise self._gone(error)
            raise error

    def _gone(self, away: OSError) -> ConnectionError:
        """Not a slow journald but none at all: the failure says so, rather than "no progress"."""
        gone = ConnectionError(away.errno, f"journald at {self._path} went away ({away.strerror})")
        gone.__cause__ = away
        return gone

    def _send(self, entry: bytes) -> None:
        try:
            self._sock.send(entry)
        except OSError as error:
            if error.errno != errno.EMSGSIZE:
                raise
            self._send_memfd(entry)
            with self._counters.lock:
                self._counters.entries += 1
                self._counters.memfd_entries += 1
            return
        with self._counters.lock:
            self._counters.entries += 1

    def _send_memfd(self, entry: bytes) -> None:
        fd = os.memfd_create("alog-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(entry)
            while view:
                view = view[os.write(fd, view) :]
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            rights = array.array("i", [fd])
            self._sock.sendmsg([], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        finally:
            os.close(fd)

    def _note_error(self, error: BaseException, *, refused: bool = False) -> None:
        text = str(error)
        with self._counters.lock:
            self._counters.last_error = f"{type(error).__name__}: {text}" if text else repr(error)
            if refused:
                self._counters.refused += 1

    # -- one entry ------------------------------------------------------------------------

    def _entry(self, line: bytes) -> bytes:
        try:
            event = self._decoder.decode(line)
        except msgspec.DecodeError:
            event = None
        if type(event) is not dict:  # not an alog line: still delivered, as a message
            event = {"msg": line.decode("utf-8", "replace")}
        level = event.pop("level", None)
        head = self._heads.get(level)
        if head is None:
            head = self._head_for(level)
        entry = bytearray(head)
        _append(entry, b"MESSAGE", event.pop("msg", ""), self._encode)
        ident = event.pop("syslog_identifier", None)
        if type(ident) is str and ident and "\n" not in ident:
            entry += b"SYSLOG_IDENTIFIER=" + ident.encode() + b"\n"
        else:
            entry += self._identifier
        names = self._names
        encode = self._encode
        room = FIELD_COUNT_MAX - 4  # after PRIORITY, LEVEL, MESSAGE and SYSLOG_IDENTIFIER
        extra: dict[str, object] | None = None
        for key, value in event.items():
            if room <= 0:
                if extra is None:
                    extra = {}
                extra[key] = value
                continue
            room -= 1
            name = names.get(key)
            if name is None:
                name = self._name_for(key)
            data = value.encode("utf-8", "surrogatepass") if type(value) is str else encode(value)
            if b"\n" in data:
                entry += name + b"\n" + _PACK_LENGTH(len(data))
            else:
                entry += name + b"="
            entry += data
            entry += b"\n"
        if extra is not None:
            _append(entry, b"EXTRA_FIELDS", extra, encode)
        if self._json_field is not None:
            _append(entry, self._json_field, line.decode(), encode)
        if len(entry) > ENTRY_SIZE_MAX:
            raise _Refused(f"an entry of {len(entry)} bytes is larger than journald accepts")
        return bytes(entry)

    def _head_for(self, level: object) -> bytes:
        """``PRIORITY`` and ``LEVEL`` for a level name, kept for the next event at that level."""
        head = bytearray(b"PRIORITY=" + priority_of(_levels.number_in_line(level)) + b"\n")
        if level is not None:
            _append(head, b"LEVEL", level, self._encode)
        if len(self._heads) < 256:
            self._heads[level] = bytes(head)
        return bytes(head)

    def _name_for(self, key: str) -> bytes:
        text = field_name(key)
        if text in OWN_FIELDS:
            text = ("FIELD_" + text)[:64]
        name = text.encode()
        if len(self._names) < 4096:  # keys repeat: a bounded cache of their names
            self._names[key] = name
        return name

    async def wait_sent(self, target: int) -> None:
        try:
            await super().wait_sent(target)
        except TimeoutError as stall:
            away = self._away
            if away is None:
                raise
            raise self._gone(away) from stall

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            if self._connected:
                self._connected = False
                with self._counters.lock:
                    self._counters.connected -= 1
                    if self._away is not None:
                        self._counters.away -= 1
            # The fd is the stream's to close (or to leave open under a stuck send): the
            # socket object must not close it a second time.
            self._sock.detach()


_PACK_LENGTH: Final = struct.Struct("<Q").pack


def _append(
    entry: bytearray, name: bytes, value: object, encode: Callable[[object], bytes]
) -> None:
    """Add one ``NAME=value`` field; the binary form when the value holds a newline."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else encode(value)
    if b"\n" in data:
        entry += name + b"\n" + _PACK_LENGTH(len(data))
    else:
        entry += name + b"="
    entry += data
    entry += b"\n"
