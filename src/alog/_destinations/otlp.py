"""OTLP/HTTP: events as OpenTelemetry log records, protobuf-encoded, POSTed in batches.

The writer hands over batches of JSON lines, as to every stream; this stream's daemon thread
decodes them and sends them as ``ExportLogsServiceRequest`` messages (``opentelemetry-proto``)
with the standard library's ``http.client``, so the log call never pays for the translation.

- One request carries at most :data:`MAX_RECORDS` records (about :data:`MAX_REQUEST_BYTES` of
  JSON); a request never spans two of the writer's batches, so the books stay per batch.
- 429, 502, 503, 504 and connection errors are retried with exponential backoff and jitter,
  honouring ``Retry-After``, as the OTLP specification asks, until ``write_timeout`` passes
  with no progress: then the stream fails and the writer's ``required=`` policy decides.
- Any other answer rejects the request for good: its records are refused (the writer books
  them as undelivered), as are those a 200's ``partial_success`` says were rejected.

Mapping: ``level`` gives ``severity_text`` (the name) and ``severity_number`` (the standard
five to DEBUG, INFO, WARN, ERROR, FATAL; other numbers to the nearest step of the 24),
``msg`` is the body, ``time`` the timestamp, ``logger`` the instrumentation scope, alog's
``exception`` the semantic conventions' ``exception.type`` / ``.message`` / ``.stacktrace``,
``trace_id`` / ``span_id`` / ``trace_flags`` go on the record, the keys of the pipeline's
``fields=`` make the resource (``service.name``...), and every other field is an attribute
(nested values as AnyValue maps and arrays).
"""

from __future__ import annotations

import datetime
import errno
import http.client
import random
import re
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final, final

import anyio.to_thread
import msgspec
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from .. import _levels, _state
from .base import ConnectionStatistics
from .threaded import ThreadedFdStream

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:4318/v1/logs"

MAX_RECORDS: Final = 2048
"""Records per request at most."""
MAX_REQUEST_BYTES: Final = 1 << 20
"""JSON bytes per request at most (a single longer line goes alone)."""
MAX_DEPTH: Final = 32
"""Deeper values are sent as their JSON text (protobuf decoders stop at 100 levels)."""

RETRY_FIRST: Final = 0.1
RETRY_MAX: Final = 5.0
_RETRYABLE: Final = frozenset({429, 502, 503, 504})

_SEVERITY_ANCHORS: Final = (
    (_levels.DEBUG, 5),
    (_levels.INFO, 9),
    (_levels.WARNING, 13),
    (_levels.ERROR, 17),
    (_levels.CRITICAL, 21),
)
_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX2: Final = re.compile(r"[0-9a-f]{2}")
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_INT64: Final = range(-(1 << 63), 1 << 63)


def severity_of(level: int) -> int:
    """OTel's ``severity_number`` (1-24) for an alog level number.

    debug, info, warning, error and critical are DEBUG (5), INFO (9), WARN (13), ERROR (17) and
    FATAL (21). Other numbers take the nearest of the 24 steps, keeping the order: 25 (between
    info and warning) is INFO3 (11), 5 is TRACE3 (3), 55 is FATAL3 (23), 60 and above FATAL4.
    """
    if level <= 0:
        return 1
    previous_level, previous_severity = 0, 1
    for anchor, severity in _SEVERITY_ANCHORS:
        if level <= anchor:
            span = anchor - previous_level
            return previous_severity + round(
                (severity - previous_severity) * (level - previous_level) / span
            )
        previous_level, previous_severity = anchor, severity
    return min(24, 21 + round((level - _levels.CRITICAL) * 4 / 10))


@dataclass(frozen=True, slots=True)
class OTLPStatistics:
    """What one :class:`OTLP` destination sent, across every stream it opened."""

    endpoint: str
    """The URL it POSTs to."""
    requests: int
    """Requests the receiver accepted (2xx)."""
    records: int
    """Log records the receiver accepted."""
    rejected: int
    """Records rejected for good (a 4xx other than 429, or ``partial_success``)."""
    retries: int
    """Requests sent again after a 429/502/503/504 or a connection error."""
    last_status: int | None
    """The last HTTP status received."""
    last_error: str | None
    """The last error met, as text."""


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.records = 0
        self.rejected = 0
        self.retries = 0
        self.reconnects = 0
        self.last_status: int | None = None
        self.last_error: str | None = None


@final
class OTLP:
    """An OpenTelemetry Collector (or any OTLP/HTTP receiver): events as OTel log records.

    ``endpoint`` is the full URL of the logs endpoint (a URL with no path gets ``/v1/logs``);
    ``headers`` are added to every request (an ``authorization`` for a vendor, say);
    ``timeout`` bounds one request. Optional by default (``required=False``): the receiver
    being away costs its events (counted as undelivered), never the application.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        level: str | int | None = None,
        required: bool = False,
    ) -> None:
        if not isinstance(endpoint, str):
            raise TypeError(f"endpoint= must be a URL (str), got {endpoint!r}")
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint= must be an http:// or https:// URL, got {endpoint!r}")
        try:
            port = url.port
        except ValueError:
            raise ValueError(f"endpoint= has a bad port: {endpoint!r}") from None
        if headers is not None and (
            not isinstance(headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise TypeError("headers= must map header names (str) to values (str)")
        for name, value in (headers or {}).items():
            if not name or any(c in name + value for c in "\r\n") or ":" in name:
                raise ValueError(f"headers= holds a header that cannot be sent: {name!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout= must be a positive number of seconds, got {timeout!r}")
        if level is not None and (isinstance(level, bool) or not isinstance(level, str | int)):
            raise TypeError(f"level= must be a level name or number, got {level!r}")
        if not isinstance(required, bool):
            raise TypeError(f"required= must be True or False, got {required!r}")
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.level = level
        self.required = required
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = port or (443 if self._https else 80)
        path = url.path or "/v1/logs"
        self._target = f"{path}?{url.query}" if url.query else path
        self._counters = _Counters()

    async def open(self) -> OTLPStream:
        """Open the stream (the :class:`alog.typing.Destination` protocol)."""
        return await self.open_stream(write_timeout=10.0)

    async def open_stream(self, *, write_timeout: float) -> OTLPStream:
        """Connect to the receiver; fails at once if nothing listens there."""
        connection = await anyio.to_thread.run_sync(self._connect)
        pipeline = _state.pipeline
        try:
            return OTLPStream(
                connection,
                self,
                resource_keys=tuple(pipeline.fields) if pipeline is not None else (),
                counters=self._counters,
                stall_timeout=write_timeout,
            )
        except BaseException:
            connection.close()
            raise

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise ConnectionError(
                error.errno or errno.ECONNREFUSED,
                f"no OTLP receiver at {self.endpoint} ({error.strerror or error})",
            ) from error
        return connection

    def statistics(self) -> OTLPStatistics:
        """A snapshot of what this destination sent, had rejected and met."""
        c = self._counters
        return OTLPStatistics(
            endpoint=self.endpoint,
            requests=c.requests,
            records=c.records,
            rejected=c.rejected,
            retries=c.retries,
            last_status=c.last_status,
            last_error=c.last_error,
        )

    def __repr__(self) -> str:
        parts = [repr(self.endpoint)]
        if self.level is not None:
            parts.append(f"level={self.level!r}")
        if self.required:
            parts.append("required=True")
        return f"alog.otel.OTLP({', '.join(parts)})"


class _Closed(Exception):
    """The stream was closed while a request waited to be sent again."""


class OTLPStream(ThreadedFdStream):
    """The daemon thread of :class:`ThreadedFdStream`, POSTing one request per slice of lines.

    There is no file descriptor (``fd`` is -1: ``is_same_file`` is always False); the thread
    owns the HTTP connection and reconnects as needed.
    """

    writes_ahead = False  # its wait_sent names the cause of a stall; one batch at a time

    def __init__(
        self,
        connection: http.client.HTTPConnection,
        destination: OTLP,
        *,
        resource_keys: tuple[str, ...],
        counters: _Counters,
        stall_timeout: float,
    ) -> None:
        self._connection: http.client.HTTPConnection | None = connection
        self._destination = destination
        self._target = destination._target
        self._headers = {
            **destination.headers,
            "Content-Type": "application/x-protobuf",
            "User-Agent": "alog",
        }
        self._resource_keys = resource_keys
        self._counters = counters
        self._decoder = msgspec.json.Decoder()
        self._encode = msgspec.json.Encoder(enc_hook=str).encode
        self._service = "unknown_service:" + (Path(sys.executable).name or "python")
        self._problem: str | None = None  # why the request in progress is not through yet
        super().__init__(-1, f"OTLP ({destination.endpoint})", stall_timeout=stall_timeout)

    def connection_statistics(self) -> ConnectionStatistics:
        """Connected and reconnects, as every connected destination reports them.

        Connected: the last request got an answer (a keep-alive connection the receiver
        closed is opened again with the next request, and counts as a reconnect).
        """
        c = self._counters
        return ConnectionStatistics(
            connected=self._problem is None and self.error is None,
            reconnects=c.reconnects,
            truncated=0,
            last_error=c.last_error,
        )

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    def _write_batch(self, data: bytes | bytearray, offset: int) -> None:
        while offset < len(data) and not self._closed:
            end, events = self._slice(data, offset)
            rejected = self._export(events)
            with self._cond:
                for _ in range(rejected):  # before done moves, as journald's stream
                    self._refuse_line(self.done + end - offset)
                self.done += end - offset
                self._last_progress = time.monotonic()
            offset = end

    def _on_error(self, error: BaseException) -> None:
        self._note(error=error)

    def _slice(self, data: bytes | bytearray, offset: int) -> tuple[int, list[Any]]:
        """The end of the next request's lines, and those lines decoded."""
        limit = min(len(data), offset + MAX_REQUEST_BYTES)
        end = data.rfind(b"\n", offset, limit) + 1
        if end <= offset:  # one line longer than a request: alone
            end = data.index(b"\n", offset) + 1
        lines = bytes(data[offset:end]).split(b"\n")
        lines.pop()  # after the last newline
        if len(lines) > MAX_RECORDS:
            del lines[MAX_RECORDS:]
            end = offset + sum(len(line) + 1 for line in lines)
        events: list[Any] = []
        for line in lines:
            try:
                event = self._decoder.decode(line)
            except msgspec.DecodeError:
                event = None
            if type(event) is not dict:  # not an alog line: still delivered, as its text
                event = {"msg": line.decode("utf-8", "replace")}
            events.append(event)
        return end, events

    def _export(self, events: list[dict[str, Any]]) -> int:
        """Send one request until it is through or rejected; the number of records rejected."""
        body = self._request(events).SerializeToString()
        delay = RETRY_FIRST
        reused = True  # an idle keep-alive connection the receiver closed: retry at once
        while True:
            wait = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrets
            try:
                status, retry_after, answer = self._post(body)
            except (OSError, http.client.HTTPException) as error:
                self._disconnect()
                self._problem = f"{type(error).__name__}: {error}"
                self._note(error=error)
                if reused:
                    wait = 0.0
            else:
                with self._counters.lock:
                    self._counters.last_status = status
                if 200 <= status < 300:
                    rejected = min(len(events), _rejected_in(answer))
                    with self._counters.lock:
                        self._counters.requests += 1
                        self._counters.records += len(events) - rejected
                        self._counters.rejected += rejected
                    self._problem = None
                    return rejected
                reason = f"HTTP {status} from {self._destination.endpoint}"
                detail = answer[:200].decode("utf-8", "replace").strip()
                self._note(text=f"{reason}: {detail}" if detail else reason)
                if status not in _RETRYABLE:
                    with self._counters.lock:
                        self._counters.rejected += len(events)
                    self._problem = None
                    return len(events)
                self._problem = reason
                if retry_after is not None:
                    wait = retry_after
            reused = False
            self._pause(wait)
            delay = min(RETRY_MAX, delay * 2)
            with self._counters.lock:
                self._counters.retries += 1

    def _pause(self, wait: float) -> None:
        """Wait before sending again, within the stall deadline; close ends it at once."""
        with self._cond:
            remaining = self.stall_timeout - (time.monotonic() - self._last_progress)
            if remaining <= 0:
                raise self._gone()
            self._cond.wait_for(lambda: self._closed, timeout=min(wait, remaining))
            if self._closed:
                raise _Closed("closed while a request waited to be sent again")

    def _gone(self) -> ConnectionError:
        return ConnectionError(
            errno.ETIMEDOUT,
            f"OTLP receiver at {self._destination.endpoint} took nothing for "
            f"{self.stall_timeout:g} s (last: {self._problem})",
        )

    def _post(self, body: bytes) -> tuple[int, float | None, bytes]:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._destination._connect()
            with self._counters.lock:
                self._counters.reconnects += 1
        connection.request("POST", self._target, body=body, headers=self._headers)
        response = connection.getresponse()
        answer = response.read()
        if response.will_close:
            self._disconnect()
        return response.status, _retry_after(response.getheader("Retry-After")), answer

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _note(self, *, error: BaseException | None = None, text: str | None = None) -> None:
        if error is not None:
            message = str(error)
            text = f"{type(error).__name__}: {message}" if message else type(error).__name__
        with self._counters.lock:
            self._counters.last_error = text

    # -- one request ----------------------------------------------------------------------

    def _request(self, events: list[dict[str, Any]]) -> ExportLogsServiceRequest:
        request = ExportLogsServiceRequest()
        resources: dict[bytes, ResourceLogs] = {}
        scopes: dict[tuple[bytes, str], ScopeLogs] = {}
        keys = self._resource_keys
        for event in events:
            resource = {key: event.pop(key) for key in keys if key in event}
            resource_key = self._encode(resource)
            logger = event.pop("logger", "")
            if type(logger) is not str:
                logger = str(logger)
            scope = scopes.get((resource_key, logger))
            if scope is None:
                owner = resources.get(resource_key)
                if owner is None:
                    owner = resources[resource_key] = request.resource_logs.add()
                    if "service.name" not in resource:
                        _set(owner.resource.attributes.add(), "service.name", self._service, 0)
                    _add_attributes(owner.resource.attributes, resource.items())
                scope = scopes[resource_key, logger] = owner.scope_logs.add()
                scope.scope.name = logger
            _fill(scope.log_records.add(), event)
        return request

    async def wait_sent(self, target: int) -> None:
        try:
            await super().wait_sent(target)
        except TimeoutError as stall:
            if self._problem is None:
                raise
            raise self._gone() from stall


def _fill(record: LogRecord, event: dict[str, Any]) -> None:
    """One event as one log record (the event is consumed)."""
    level = event.pop("level", None)
    record.severity_number = severity_of(_levels.number_in_line(level))  # type: ignore[assignment]
    if type(level) is str:
        record.severity_text = level
    stamp = event.pop("time", None)
    nanos = _nanos(stamp) if type(stamp) is str else None
    if nanos is None:
        nanos = time.time_ns()
        if stamp is not None:
            event["time"] = stamp  # kept, as an attribute, if it was not a time
    record.time_unix_nano = nanos
    record.observed_time_unix_nano = nanos
    msg = event.pop("msg", None)
    if msg is not None:
        _set_value(record.body, msg, 0)
    trace_id = event.get("trace_id")
    span_id = event.get("span_id")
    if (
        type(trace_id) is str
        and _HEX32.fullmatch(trace_id)
        and type(span_id) is str
        and _HEX16.fullmatch(span_id)
    ):
        record.trace_id = bytes.fromhex(trace_id)
        record.span_id = bytes.fromhex(span_id)
        del event["trace_id"], event["span_id"]
        flags = event.get("trace_flags")
        if type(flags) is str and _HEX2.fullmatch(flags):
            record.flags = int(flags, 16)
            del event["trace_flags"]
    exception = event.get("exception")
    if type(exception) is dict and type(exception.get("type")) is str:
        del event["exception"]
        attributes = record.attributes
        _set(attributes.add(), "exception.type", exception["type"], 0)
        message = exception.get("message")
        if type(message) is str:
            _set(attributes.add(), "exception.message", message, 0)
        _set(attributes.add(), "exception.stacktrace", stacktrace(exception), 0)
    _add_attributes(record.attributes, event.items())


def _add_attributes(attributes: Any, items: Iterable[tuple[str, object]]) -> None:
    for key, value in items:
        _set(attributes.add(), key, value, 0)


def _set(pair: KeyValue, key: str, value: object, depth: int) -> None:
    pair.key = key
    _set_value(pair.value, value, depth)


def _set_value(target: AnyValue, value: object, depth: int) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value  # type: ignore[assignment]
    elif kind is bool:
        target.bool_value = value  # type: ignore[assignment]
    elif kind is int:
        if value in _INT64:
            target.int_value = value  # type: ignore[assignment]
        else:
            target.string_value = str(value)
    elif kind is float:
        target.double_value = value  # type: ignore[assignment]
    elif value is None:
        pass  # an empty AnyValue is null
    elif depth >= MAX_DEPTH:
        target.string_value = msgspec.json.encode(value).decode()
    elif kind is dict:
        pairs = target.kvlist_value
        pairs.SetInParent()
        for key, inner in value.items():  # type: ignore[attr-defined]
            _set(pairs.values.add(), str(key), inner, depth + 1)
    elif kind is list:
        array = target.array_value
        array.SetInParent()
        for inner in value:  # type: ignore[attr-defined]
            _set_value(array.values.add(), inner, depth + 1)
    else:  # pragma: no cover - JSON decodes to the kinds above only
        target.string_value = str(value)


def _nanos(text: str) -> int | None:
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    delta = stamp - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000


def _rejected_in(answer: bytes) -> int:
    """Records a 2xx answer's ``partial_success`` says were rejected (0 if none or unreadable)."""
    if not answer:
        return 0
    try:
        response = ExportLogsServiceResponse.FromString(answer)
    except Exception:  # noqa: BLE001 - an answer we cannot read is a plain success
        return 0
    return max(0, int(response.partial_success.rejected_log_records))


def _retry_after(header: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (a number, or an HTTP date)."""
    if header is None:
        return None
    header = header.strip()
    if header.isdigit():
        return min(float(header), 3600.0)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return min(3600.0, max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds()))


def stacktrace(exception: Mapping[str, Any]) -> str:
    """alog's ``exception`` field as Python prints a traceback (with its causes, no source)."""
    lines: list[str] = []
    _render(exception, lines, "")
    return "\n".join(lines)


_CAUSE: Final = "The above exception was the direct cause of the following exception:"
_CONTEXT: Final = "During handling of the above exception, another exception occurred:"


def _render(exception: Mapping[str, Any], lines: list[str], indent: str) -> None:
    for link, heading in (("cause", _CAUSE), ("context", _CONTEXT)):
        inner = exception.get(link)
        if isinstance(inner, Mapping):
            _render(inner, lines, indent)
            lines.extend((indent, indent + heading, indent))
    group = exception.get("exceptions")
    frames = exception.get("frames")
    if isinstance(frames, list) and frames:
        title = "Exception Group Traceback" if isinstance(group, list) else "Traceback"
        lines.append(f"{indent}{title} (most recent call last):")
        lines.extend(
            f'{indent}  File "{frame.get("file")}", line {frame.get("line")}, '
            f"in {frame.get('function')}"
            for frame in frames
            if isinstance(frame, Mapping)
        )
    kind = str(exception.get("type", "Exception"))
    message = exception.get("message")
    lines.append(f"{indent}{kind}: {message}" if message else f"{indent}{kind}")
    notes = exception.get("notes")
    if isinstance(notes, list):
        lines.extend(f"{indent}{note}" for note in notes)
    if isinstance(group, list):
        for number, inner in enumerate(group, 1):
            if isinstance(inner, Mapping):
                lines.append(f"{indent}+---------------- {number} ----------------")
                _render(inner, lines, indent + "| ")
