"""ASGI: a request-logging middleware and a lifespan that runs alog for the life of the app.

Works with any ASGI app (FastAPI, Starlette, Litestar, Quart...) and imports none of them::

    app = FastAPI(lifespan=alog.integrations.asgi.lifespan())
    app.add_middleware(alog.integrations.asgi.RequestLogMiddleware)

Each request gets a request id (an incoming ``X-Request-ID`` if short and safe, else a new
one), echoed in the response and bound with :func:`alog.bound` while the app handles it, and
one access line when its response ends (a WebSocket session: when it closes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, TypeAlias, final

from .._context import bound
from .._logger import Logger, get_logger
from .._traceparent import request_parent
from ._lifecycle import (
    DEFAULT_EXIT_TIMEOUT,
    AppPipeline,
    check_exit_timeout,
    split_run_options,
    stop_uvicorn,
)
from ._requests import (
    REQUEST_ID_HEADER,
    StatusLevel,
    excluded,
    header_fields,
    level_for_status,
    milliseconds,
    redaction,
    request_id,
)

__all__ = ["RequestLogMiddleware", "lifespan"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
Lifespan: TypeAlias = Callable[[Any], AbstractAsyncContextManager[Any]]

_ID_HEADER: Final = REQUEST_ID_HEADER.encode("ascii")
_TRACEPARENT: Final = b"traceparent"
_ERROR_BODY: Final = b"Internal Server Error"


@final
class RequestLogMiddleware:
    """Logs one line per request (``msg="request"``) or WebSocket session (``"websocket"``).

    Fields: ``method``, ``path``, ``route`` (the template, when the framework records it in
    ``scope["route"]``, as Starlette and FastAPI do), ``status``, ``duration_ms`` (until the
    last body byte was handed to the server), ``client``, ``response_bytes``, and ``headers``
    with ``log_headers=True`` (``authorization``, ``cookie``, ``set-cookie`` and
    ``redact_headers`` redacted). ``request_id`` comes from the bound context. With trace
    correlation on (``alog.run(otel=True)``) and no OpenTelemetry span current (no
    instrumentation), events get the ids of the request's ``traceparent`` header.

    Level: ``status_level(status)``, by default error for 5xx, warning for 4xx, else info. An
    exception escaping the app gives one error line carrying the structured traceback, and a
    500 response if none was started; it is not re-raised unless the response was cut short
    (then the server must abort the connection). ``exclude_paths`` get no line unless they
    fail with a 5xx or an exception.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,
        *,
        logger: Logger | str = "access",
        exclude_paths: Iterable[str] = (),
        log_headers: bool = False,
        redact_headers: Iterable[str] = (),
        status_level: StatusLevel = level_for_status,
    ) -> None:
        self.app = app
        self.logger = get_logger(logger) if isinstance(logger, str) else logger
        self.exclude_paths = excluded(exclude_paths)
        self.log_headers = log_headers
        self.redact_headers = redaction(redact_headers)
        self.status_level = status_level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(_header(scope, _ID_HEADER))
        started = time.perf_counter()
        ended: float | None = None
        status: int | None = None
        size = 0

        async def send_logged(message: Message) -> None:
            nonlocal ended, status, size
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                message = _with_request_id(message, rid)
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    ended = time.perf_counter()
            await send(message)

        with bound(request_id=rid), request_parent(_header(scope, _TRACEPARENT)):
            try:
                await self.app(scope, receive, send_logged)
            except Exception as error:
                if status is None:
                    await _send_error(send_logged)
                elif ended is None:
                    self._access(scope, status, started, ended, size, error)
                    raise  # the response is cut short: the server must abort it
                self._access(scope, status, started, ended, size, error)
                return
            except BaseException:
                self._access(scope, status, started, ended, size, None, cancelled=True)
                raise
            self._access(scope, status, started, ended, size, None)

    def _access(
        self,
        scope: Scope,
        status: int | None,
        started: float,
        ended: float | None,
        size: int,
        error: BaseException | None,
        *,
        cancelled: bool = False,
    ) -> None:
        path = scope.get("path", "")
        failed = error is not None or status is None or status >= 500
        if path in self.exclude_paths and not failed:
            return
        shown = 500 if status is None and not cancelled else status
        fields: dict[str, Any] = {"method": scope.get("method"), "path": path}
        route = _route(scope)
        if route is not None:
            fields["route"] = route
        fields["status"] = shown
        fields["duration_ms"] = milliseconds((ended or time.perf_counter()) - started)
        fields["client"] = _client(scope)
        fields["response_bytes"] = size
        if cancelled:
            fields["cancelled"] = True
        if self.log_headers:
            fields["headers"] = header_fields(_headers(scope), self.redact_headers)
        if error is not None:
            self.logger.log("error", "request", exc_info=error, **fields)
        elif cancelled or shown is None:
            self.logger.log("warning", "request", **fields)
        else:
            self.logger.log(self.status_level(shown), "request", **fields)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(_header(scope, _ID_HEADER))
        started = time.perf_counter()
        accepted = False
        status: int | None = None
        close_code: int | None = None
        closed_by: str | None = None
        received = sent = 0

        async def receive_logged() -> Message:
            nonlocal close_code, closed_by, received
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                received += 1
            elif kind == "websocket.disconnect" and closed_by is None:
                close_code = int(message.get("code", 1005))
                closed_by = "client"
            return message

        async def send_logged(message: Message) -> None:
            nonlocal accepted, status, close_code, closed_by, sent
            kind = message["type"]
            if kind == "websocket.accept":
                accepted = True
                status = 101
                message = _with_request_id(message, rid)
            elif kind == "websocket.send":
                sent += 1
            elif kind == "websocket.close" and closed_by is None:
                close_code = int(message.get("code", 1000))
                closed_by = "server"
                if not accepted:
                    status = 403
            elif kind == "websocket.http.response.start":
                status = int(message["status"])
                message = _with_request_id(message, rid)
            await send(message)

        error: BaseException | None = None
        with bound(request_id=rid), request_parent(_header(scope, _TRACEPARENT)):
            try:
                await self.app(scope, receive_logged, send_logged)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback, once
                error = exc
                if closed_by is None:
                    # 1011: internal error; before the handshake this rejects it (403).
                    await _ignore_closed(send_logged({"type": "websocket.close", "code": 1011}))
            path = scope.get("path", "")
            if path in self.exclude_paths and error is None:
                return
            fields: dict[str, Any] = {"path": path}
            route = _route(scope)
            if route is not None:
                fields["route"] = route
            fields["status"] = status
            fields["close_code"] = close_code
            fields["closed_by"] = closed_by
            fields["duration_ms"] = milliseconds(time.perf_counter() - started)
            fields["client"] = _client(scope)
            fields["messages_received"] = received
            fields["messages_sent"] = sent
            if self.log_headers:
                fields["headers"] = header_fields(_headers(scope), self.redact_headers)
            if error is not None:
                self.logger.log("error", "websocket", exc_info=error, **fields)
            else:
                self.logger.log(self.status_level(status or 403), "websocket", **fields)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [
        (key.decode("latin-1"), value.decode("latin-1")) for key, value in scope.get("headers", ())
    ]


def _with_request_id(message: Message, rid: str) -> Message:
    headers = list(message.get("headers", ()))
    if not any(key.lower() == _ID_HEADER for key, _ in headers):
        headers.append((_ID_HEADER, rid.encode("latin-1")))
    return {**message, "headers": headers}


def _route(scope: Scope) -> str | None:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _send_error(send: Send) -> None:
    await _ignore_closed(
        send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_ERROR_BODY)).encode("ascii")),
                ],
            }
        )
    )
    await _ignore_closed(send({"type": "http.response.body", "body": _ERROR_BODY}))


async def _ignore_closed(sending: Awaitable[None]) -> None:
    with contextlib.suppress(OSError):  # the client is gone; the access line still tells
        await sending


def lifespan(
    app_lifespan: Lifespan | None = None,
    /,
    *,
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
    **run_options: Any,
) -> Lifespan:
    """A lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)`` running alog.

    ``run_options`` are :func:`alog.run`'s (``destination=`` included), checked here. The
    pipeline starts before ``app_lifespan`` (if given, its state is passed on) and drains
    after it. If the writer fails for good while the app runs, the server is asked to shut
    down and the process exits with status 1 within ``exit_timeout`` seconds (plus two,
    forcibly, if the server hangs); see docs/integrations.md.
    """
    args, options = split_run_options(run_options)
    timeout = check_exit_timeout(exit_timeout)

    @asynccontextmanager
    async def alog_lifespan(app: Any) -> AsyncIterator[Any]:
        runner = AppPipeline(args, options, exit_timeout=timeout, stop_server=stop_uvicorn)
        await runner.start()
        try:
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as state:
                    yield state
        finally:
            await runner.stop()

    return alog_lifespan
