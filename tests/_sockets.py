"""A line server of the tests' own: TCP or Unix, TLS optional, stopped and restarted at will.

It runs in threads (one accepting, one per connection) so it keeps reading whatever the test's
event loop does. ``stop()`` is an agent's graceful shutdown: it closes the listener, then on
each connection ``shutdown(SHUT_WR)`` (the client sees EOF) and reads until the client closes,
so every byte the client's kernel accepted before it saw the EOF is received. ``start()``
listens again on the same address. ``lines()`` is every complete line over every life.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path


class LineServer:
    def __init__(self, address: tuple[str, int] | Path, *, tls: ssl.SSLContext | None = None):
        self.address: tuple[str, int] | Path = address
        self.tls = tls
        self._listener: socket.socket | None = None
        self._received: list[bytearray] = []  # one per connection, in accept order
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self.closed_by_client = 0  # connections the client closed (EOF read here)

    @property
    def port(self) -> int:
        assert isinstance(self.address, tuple)
        return self.address[1]

    def start(self) -> LineServer:
        if isinstance(self.address, Path):
            self.address.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.address))
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self.address)
            self.address = listener.getsockname()
        listener.listen(16)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            buffer = bytearray()
            with self._lock:
                self.accepted += 1
                self._received.append(buffer)
                self._connections.append(conn)
            thread = threading.Thread(target=self._read, args=(conn, buffer), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, conn: socket.socket, buffer: bytearray) -> None:
        sock: socket.socket = conn
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(conn, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    with self._lock:
                        self.closed_by_client += 1
                    return
                with self._lock:
                    buffer += data
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self, *, timeout: float = 0.2) -> None:
        """Stop like an agent that shuts down cleanly (see the module docstring)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        # The readers go on until each client closes (they keep what they read): a client
        # with nothing to write notices the EOF within a second (the writer's idle check).
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def close_connections(self) -> None:
        """Half-close every open connection (the client sees EOF); keep listening."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)

    def data(self) -> list[bytes]:
        with self._lock:
            return [bytes(buffer) for buffer in self._received]

    def lines(self) -> list[bytes]:
        """Every complete line received, over every connection; torn tails left out."""
        lines: list[bytes] = []
        for data in self.data():
            lines.extend(data.split(b"\n")[:-1])
        return lines

    def torn(self) -> int:
        """Connections whose data did not end with a whole line."""
        return sum(1 for data in self.data() if data and not data.endswith(b"\n"))

    def wait_lines(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)
