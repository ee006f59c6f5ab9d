"""A pipeline's statistics in the Prometheus text exposition format (version 0.0.4).

No client library: the format is a few lines of text. Counters end in ``_total``; every
family has its ``# HELP`` and ``# TYPE`` lines; label values are escaped as the format says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Final, get_args

from .._records import Statistics
from .._writer import DestinationStatistics
from ..typing import DestinationState, WriterState

PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The ``Content-Type`` of a response carrying :func:`prometheus_text`."""

_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WRITER_STATES: Final[tuple[str, ...]] = get_args(WriterState)
_DESTINATION_STATES: Final[tuple[str, ...]] = get_args(DestinationState)

# (name, type, help, value): the pipeline's totals.
_PIPELINE: Final[tuple[tuple[str, str, str, Callable[[Statistics], float]], ...]] = (
    ("events_accepted_total", "counter", "Events accepted by log calls.", lambda s: s.accepted),
    ("events_written_total", "counter", "Events the destinations accepted.", lambda s: s.written),
    (
        "events_dropped_total",
        "counter",
        "Events lost to overflow, refused when closed or failed, or cut short.",
        lambda s: s.dropped,
    ),
    (
        "events_undelivered_total",
        "counter",
        "Events queued but lost: a failed destination, or an expired shutdown.",
        lambda s: s.undelivered,
    ),
    (
        "events_filtered_total",
        "counter",
        "Events kept out on purpose: by a processor, or by a destination's level.",
        lambda s: s.filtered,
    ),
    ("events_queued", "gauge", "Events accepted and not yet written.", lambda s: s.queued),
    ("queued_bytes", "gauge", "Bytes of the events queued.", lambda s: s.queued_bytes),
    (
        "peak_queued",
        "gauge",
        "The most events ever queued at once.",
        lambda s: s.peak_queued,
    ),
    (
        "bytes_written_total",
        "counter",
        "Bytes the destinations accepted.",
        lambda s: s.bytes_written,
    ),
    ("write_errors_total", "counter", "Writes that failed.", lambda s: s.write_errors),
    (
        "internal_errors_total",
        "counter",
        "Log calls lost to a bug in alog itself.",
        lambda s: s.internal_errors,
    ),
    (
        "max_write_seconds",
        "gauge",
        "The slowest batch write so far, in seconds.",
        lambda s: s.max_write_seconds,
    ),
)

# The same for each destination, labelled destination="...".
_DESTINATION: Final[tuple[tuple[str, str, str, Callable[[DestinationStatistics], float]], ...]] = (
    (
        "destination_events_written_total",
        "counter",
        "Events this destination accepted.",
        lambda d: d.written,
    ),
    (
        "destination_events_dropped_total",
        "counter",
        "Events evicted from the queue before this destination could take them.",
        lambda d: d.dropped,
    ),
    (
        "destination_events_undelivered_total",
        "counter",
        "Events lost in flight, while failed or retrying, or at an expired shutdown.",
        lambda d: d.undelivered,
    ),
    (
        "destination_events_filtered_total",
        "counter",
        "Events this destination's level kept out.",
        lambda d: d.filtered,
    ),
    (
        "destination_events_queued",
        "gauge",
        "Events not settled yet by this destination: queued for it or in flight.",
        lambda d: d.held,
    ),
    (
        "destination_bytes_written_total",
        "counter",
        "Bytes this destination accepted.",
        lambda d: d.bytes_written,
    ),
    (
        "destination_write_errors_total",
        "counter",
        "Writes or opens to this destination that failed.",
        lambda d: d.write_errors,
    ),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _destination_names(destinations: tuple[DestinationStatistics, ...]) -> list[str]:
    """Each destination's label: its name, made unique when two share one."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for destination in destinations:
        count = seen.get(destination.name, 0) + 1
        seen[destination.name] = count
        names.append(destination.name if count == 1 else f"{destination.name} #{count}")
    return names


def prometheus_text(
    statistics: Statistics,
    /,
    *,
    prefix: str = "alog",
    labels: Mapping[str, str] | None = None,
) -> str:
    """``statistics`` (a :meth:`alog.Pipeline.statistics`) as Prometheus text exposition.

    The pipeline's totals (``alog_events_accepted_total``, ``..._written_total``,
    ``..._dropped_total``, ``..._undelivered_total``, ``..._filtered_total``,
    ``alog_events_queued``...), the writer's state (``alog_writer_state{state="running"} 1``)
    and each destination's books, labelled ``destination="<its name>"``. ``labels`` are
    added to every sample (a worker's id under several processes); serve it with
    ``Content-Type:`` :data:`PROMETHEUS_CONTENT_TYPE`.
    """
    if not isinstance(statistics, Statistics):
        raise TypeError(f"prometheus_text takes a pipeline's statistics(), got {statistics!r}")
    if not isinstance(prefix, str) or not _NAME.fullmatch(prefix):
        raise ValueError(f"prefix must be a Prometheus metric name, got {prefix!r}")
    common = dict(labels or {})
    for key, value in common.items():
        if not isinstance(key, str) or not _LABEL.fullmatch(key) or key.startswith("__"):
            raise ValueError(f"{key!r} is not a Prometheus label name")
        if key in ("state", "destination"):
            raise ValueError(f"the label {key!r} is alog's own")
        if not isinstance(value, str):
            raise TypeError(f"label values are strings, got {key}={value!r}")
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> str:
        full = f"{prefix}_{name}"
        out.append(f"# HELP {full} {help_text}")
        out.append(f"# TYPE {full} {kind}")
        return full

    plain = _labels(common)
    for name, kind, help_text, total in _PIPELINE:
        full = family(name, kind, help_text)
        out.append(f"{full}{plain} {_number(total(statistics))}")
    full = family("writer_state", "gauge", "The writer's state: 1 for the current one.")
    for state in _WRITER_STATES:
        shown = _labels({**common, "state": state})
        out.append(f"{full}{shown} {int(statistics.state == state)}")
    destinations = statistics.destinations
    names = _destination_names(destinations)
    for name, kind, help_text, books in _DESTINATION:
        full = family(name, kind, help_text)
        for label, destination in zip(names, destinations, strict=True):
            shown = _labels({**common, "destination": label})
            out.append(f"{full}{shown} {_number(books(destination))}")
    full = family("destination_state", "gauge", "Each destination's state: 1 for the current one.")
    for label, destination in zip(names, destinations, strict=True):
        for state in _DESTINATION_STATES:
            shown = _labels({**common, "destination": label, "state": state})
            out.append(f"{full}{shown} {int(destination.state == state)}")
    return "\n".join(out) + "\n"


__all__ = ["PROMETHEUS_CONTENT_TYPE", "prometheus_text"]
