"""Fields about the process: ``alog.run(fields=alog.process_fields("pid", "hostname"))``.

A value such as the pid must be read in the process that writes the events. A server that
forks its workers after importing the app (``gunicorn --preload``) builds the app, and its
``alog.run`` options, in the master: a ``{"pid": os.getpid()}`` written there would give
every worker the master's pid. So :func:`process_fields` returns placeholders, and a
pipeline reads them when it starts, in the process that runs it; then they are static
fields, free on each event.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Final, Literal, final, get_args

ProcessFieldName = Literal["pid", "hostname"]
"""What :func:`process_fields` can add: ``pid`` (an int) and ``hostname`` (a str)."""

_READERS: Final[dict[str, Callable[[], object]]] = {
    "pid": os.getpid,
    "hostname": socket.gethostname,
}


@final
class ProcessField:
    """A placeholder in ``fields=``: its value is read when the pipeline starts."""

    __slots__ = ("name",)

    def __init__(self, name: ProcessFieldName) -> None:
        self.name = name

    def read(self) -> object:
        """The value in this process, now."""
        return _READERS[self.name]()

    def __repr__(self) -> str:
        return f"alog.process_fields({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcessField) and other.name == self.name

    def __hash__(self) -> int:
        return hash((ProcessField, self.name))


def process_fields(*names: ProcessFieldName) -> dict[str, object]:
    """Fields for ``alog.run(fields=...)`` read when the pipeline starts: ``pid``, ``hostname``.

    ``alog.run(fields=alog.process_fields("pid", "hostname"))`` adds both to every event; the
    dict merges with fields of your own (``{"service": "api", **alog.process_fields("pid")}``).
    The values are read by the pipeline in the process that runs it, so they are right in
    a worker forked after the options were written (``gunicorn --preload``).
    """
    if not names:
        raise TypeError("process_fields() needs at least one name: 'pid', 'hostname'")
    known = get_args(ProcessFieldName)
    for name in names:
        if name not in known:
            raise ValueError(
                f"unknown process field {name!r}; known: {', '.join(map(repr, known))}"
            )
    return {name: ProcessField(name) for name in names}


def read_process_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """``fields`` with each placeholder replaced by its value in this process."""
    return {
        key: value.read() if isinstance(value, ProcessField) else value
        for key, value in fields.items()
    }
