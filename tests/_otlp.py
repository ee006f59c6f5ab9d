"""A loopback OTLP/HTTP logs receiver for the tests: ``http.server`` in a thread.

It decodes each POSTed ``ExportLogsServiceRequest`` with ``opentelemetry-proto`` (as a
Collector's ``otlphttp`` receiver would) and keeps the requests; ``answers`` scripts what it
replies (a status, optional ``Retry-After``, a ``partial_success``), request by request, and
``delay`` makes it slow.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord


@dataclass(frozen=True)
class Answer:
    """One scripted reply."""

    status: int = 200
    retry_after: str | None = None
    rejected: int = 0


@dataclass
class Received:
    """One decoded log record with where it came from."""

    record: LogRecord
    resource: dict[str, Any]
    scope: str

    @property
    def attributes(self) -> dict[str, Any]:
        return {pair.key: value_of(pair.value) for pair in self.record.attributes}


@dataclass
class Receiver:
    """Start with ``with Receiver() as receiver:``; ``receiver.endpoint`` is its URL."""

    answers: deque[Answer] = field(default_factory=deque)
    delay: float = 0.0
    refuse_until: float = 0.0  # time.monotonic() before which every request gets a 503
    requests: list[ExportLogsServiceRequest] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status)
    content_types: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.add(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    if time.monotonic() < receiver.refuse_until:
                        answer = Answer(503)
                    else:
                        answer = receiver.answers.popleft() if receiver.answers else Answer()
                    receiver.arrivals.append((time.monotonic(), answer.status))
                    receiver.content_types.append(self.headers.get("Content-Type", ""))
                    receiver.headers.append(dict(self.headers.items()))
                    if answer.status == 200:
                        receiver.requests.append(ExportLogsServiceRequest.FromString(body))
                reply = b""
                if answer.status == 200:
                    response = ExportLogsServiceResponse()
                    if answer.rejected:
                        response.partial_success.CopyFrom(
                            ExportLogsPartialSuccess(
                                rejected_log_records=answer.rejected, error_message="too big"
                            )
                        )
                    reply = response.SerializeToString()
                elif answer.status >= 400:
                    reply = b"try later" if answer.status in (429, 503) else b"bad data"
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: no access line per request on stderr

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/logs"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening and drop every connection (the port is then refused)."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def received(self) -> list[Received]:
        """Every record accepted so far, in order."""
        with self.lock:
            requests = list(self.requests)
        return list(_flatten(requests))


def _flatten(requests: list[ExportLogsServiceRequest]) -> Iterator[Received]:
    for request in requests:
        for resource_logs in request.resource_logs:
            resource = {
                pair.key: value_of(pair.value) for pair in resource_logs.resource.attributes
            }
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    yield Received(record, resource, scope_logs.scope.name)


def value_of(value: AnyValue) -> Any:
    """An AnyValue as plain Python (kvlist: dict, array: list, empty: None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {pair.key: value_of(pair.value) for pair in value.kvlist_value.values}
    if kind == "array_value":
        return [value_of(inner) for inner in value.array_value.values]
    return getattr(value, kind)
