"""The console: stdout or stderr for people, each JSON line rendered in the writer's thread.

The writer hands over batches of JSON lines, as to every stream, and its books count those
bytes; this stream's daemon thread decodes each line and writes the rendered text (with the
source lines of a traceback, read there). So the log call pays nothing for the look, the
queue's caps, ``flush()``, ``level=`` and ``required=`` work as for ``Stdout``, and a
terminal that stops reading stalls only this thread.
"""

from __future__ import annotations

import os
import time

import msgspec

from .._console import Renderer
from .threaded import ThreadedFdStream

_CHUNK = 1 << 16
"""About this much JSON is rendered before the text is written (one write per chunk)."""


class ConsoleStream(ThreadedFdStream):
    """:class:`ThreadedFdStream`, writing each line as the console renderer shows it."""

    def __init__(
        self, fd: int, description: str, *, stall_timeout: float, renderer: Renderer
    ) -> None:
        self._renderer = renderer
        self._decoder = msgspec.json.Decoder()
        super().__init__(fd, description, stall_timeout=stall_timeout)

    def _line(self, line: bytes | bytearray) -> bytes:
        try:
            event = self._decoder.decode(line)
        except msgspec.DecodeError:
            event = None
        if not isinstance(event, dict):
            return bytes(line)  # not alog's JSON (a user's stream wrapper): as it came
        try:
            text = self._renderer.render(event)
        except Exception:  # noqa: BLE001 - a rendering bug must not lose the line
            return bytes(line)
        return text.encode("utf-8", "replace")

    def _write_batch(self, data: bytes | bytearray, offset: int) -> None:
        end = len(data)
        while offset < end and not self._closed:
            out = bytearray()
            stop = offset
            while stop < end and len(out) < _CHUNK:
                newline = data.find(b"\n", stop)
                cut = end if newline < 0 else newline + 1
                out += self._line(data[stop:cut])
                stop = cut
            view = memoryview(out)
            while view and not self._closed:
                written = os.write(self.fd, view)
                view = view[written:]
                with self._cond:
                    self._last_progress = time.monotonic()
            with self._cond:
                # The books count the JSON taken, whatever length its rendering had.
                self.done += stop - offset
                self._last_progress = time.monotonic()
            offset = stop
