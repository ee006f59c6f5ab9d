"""aiohttp: a request-logging middleware and a ``cleanup_ctx`` running alog with the app.

::

    app = web.Application()
    alog.integrations.aiohttp.setup(app, level="info")
    web.run_app(app, access_log=None)

Each request gets a request id (an incoming ``X-Request-ID`` if short and safe, else a new
one), echoed in the response and bound with :func:`alog.bound` while the handler runs, and
one access line once the response is sent (a WebSocket session: when it closes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from typing import Any, Final, final

from aiohttp import web
from aiohttp.typedefs import Handler

from .._context import bound
from .._logger import Logger, get_logger
from .._traceparent import request_parent
from ._lifecycle import (
    DEFAULT_EXIT_TIMEOUT,
    AppPipeline,
    check_exit_timeout,
    no_server,
    split_run_options,
)
from ._requests import (
    StatusLevel,
    excluded,
    header_fields,
    level_for_status,
    milliseconds,
    redaction,
    request_id,
)

__all__ = ["RequestLogMiddleware", "setup"]

_HEADER: Final = "X-Request-ID"


class _Handling:
    """The request being handled in this task: its id, and its response once prepared."""

    __slots__ = ("request_id", "response", "streamed")

    def __init__(self, rid: str) -> None:
        self.request_id = rid
        self.response: web.StreamResponse | None = None
        self.streamed = 0

    def size(self, response: web.StreamResponse) -> int:
        """Body bytes of a finished response (aiohttp's ``body_length`` counts headers too)."""
        if isinstance(response, web.Response):
            body = response.body
            if isinstance(body, bytes | bytearray):
                return len(body)
        return self.streamed or response.content_length or 0

    def count_writes(self, response: web.StreamResponse) -> None:
        """Count what a streaming handler writes, as it writes it."""
        write = response.write

        async def counted(data: bytes | bytearray | memoryview) -> None:
            self.streamed += memoryview(data).nbytes
            await write(data)

        response.write = counted  # type: ignore[method-assign]


_handling: ContextVar[_Handling | None] = ContextVar("alog_aiohttp_request", default=None)


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    # Streaming responses send their headers before the middleware sees them: echo here.
    handling = _handling.get()
    if handling is not None:
        handling.response = response
        if not isinstance(response, web.Response | web.WebSocketResponse):
            handling.count_writes(response)
        if _HEADER not in response.headers:
            response.headers[_HEADER] = handling.request_id


@final
class RequestLogMiddleware:
    """The aiohttp middleware :func:`setup` installs; see it for the options.

    A response the handler returns unsent is sent here, so that ``duration_ms`` and
    ``response_bytes`` cover the whole body; this middleware must therefore be the outermost
    (first in ``app.middlewares``), which :func:`setup` arranges.
    """

    __middleware_version__ = 1

    def __init__(
        self,
        *,
        logger: Logger | str = "access",
        exclude_paths: Iterable[str] = (),
        log_headers: bool = False,
        redact_headers: Iterable[str] = (),
        status_level: StatusLevel = level_for_status,
    ) -> None:
        self.logger = get_logger(logger) if isinstance(logger, str) else logger
        self.exclude_paths = excluded(exclude_paths)
        self.log_headers = log_headers
        self.redact_headers = redaction(redact_headers)
        self.status_level = status_level

    async def __call__(
        self,
        request: web.Request,
        handler: Handler,
    ) -> web.StreamResponse:
        rid = request_id(request.headers.get(_HEADER))
        handling = _Handling(rid)
        token = _handling.set(handling)
        started = time.perf_counter()
        try:
            with bound(request_id=rid), request_parent(request.headers.get("traceparent")):
                return await self._handle(request, handler, handling, started)
        finally:
            _handling.reset(token)

    async def _handle(
        self,
        request: web.Request,
        handler: Handler,
        handling: _Handling,
        started: float,
    ) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            # Raised responses are sent by aiohttp after this returns.
            if _HEADER not in exc.headers:
                exc.headers[_HEADER] = handling.request_id
            body = exc.body
            size = len(body) if isinstance(body, bytes | bytearray) else 0
            self._access(request, exc.status, started, size, None)
            raise
        except Exception as error:
            prepared = handling.response
            if prepared is not None and prepared.prepared:
                self._access(request, prepared.status, started, handling.size(prepared), error)
                raise  # the response is cut short: aiohttp must abort the connection
            response = web.Response(
                status=500,
                text="500 Internal Server Error",
                headers={_HEADER: handling.request_id},
            )
            await self._send(request, response)
            self._access(request, 500, started, handling.size(response), error)
            return response
        except asyncio.CancelledError:
            self._access(request, None, started, 0, None, cancelled=True)
            raise
        if isinstance(response, web.WebSocketResponse):
            self._websocket(request, response, started)
            return response
        if not response.prepared:
            await self._send(request, response)
        self._access(request, response.status, started, handling.size(response), None)
        return response

    @staticmethod
    async def _send(request: web.Request, response: web.StreamResponse) -> None:
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the client left; aiohttp notices it again and closes the connection

    def _fields(self, request: web.Request, started: float) -> dict[str, Any]:
        fields: dict[str, Any] = {"method": request.method, "path": request.path}
        route = _route(request)
        if route is not None:
            fields["route"] = route
        fields["status"] = None
        fields["duration_ms"] = milliseconds(time.perf_counter() - started)
        fields["client"] = request.remote
        return fields

    def _access(
        self,
        request: web.Request,
        status: int | None,
        started: float,
        size: int,
        error: BaseException | None,
        *,
        cancelled: bool = False,
    ) -> None:
        failed = error is not None or status is None or status >= 500
        if request.path in self.exclude_paths and not failed:
            return
        fields = self._fields(request, started)
        fields["status"] = status
        fields["response_bytes"] = size
        if cancelled:
            fields["cancelled"] = True
        if self.log_headers:
            fields["headers"] = header_fields(request.headers.items(), self.redact_headers)
        if error is not None:
            self.logger.log("error", "request", exc_info=error, **fields)
        elif status is None:
            self.logger.log("warning", "request", **fields)
        else:
            self.logger.log(self.status_level(status), "request", **fields)

    def _websocket(self, request: web.Request, ws: web.WebSocketResponse, started: float) -> None:
        if request.path in self.exclude_paths:
            return
        fields = self._fields(request, started)
        fields.pop("method")
        fields["status"] = ws.status
        fields["close_code"] = ws.close_code
        fields["duration_ms"] = milliseconds(time.perf_counter() - started)
        if self.log_headers:
            fields["headers"] = header_fields(request.headers.items(), self.redact_headers)
        self.logger.log(self.status_level(ws.status), "websocket", **fields)


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return resource.canonical


def setup(
    app: web.Application,
    /,
    *,
    logger: Logger | str = "access",
    exclude_paths: Iterable[str] = (),
    log_headers: bool = False,
    redact_headers: Iterable[str] = (),
    status_level: StatusLevel = level_for_status,
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
    **run_options: Any,
) -> RequestLogMiddleware:
    """Log requests and run ``alog.run(**run_options)`` for the life of ``app``.

    Adds :class:`RequestLogMiddleware` first in ``app.middlewares``, an ``on_response_prepare``
    hook that echoes the request id, and a ``cleanup_ctx`` that starts the pipeline before
    the app's other start-up code and drains it after the app's cleanup. With
    ``otel=True`` and no OpenTelemetry span current, events get the ids of the request's
    ``traceparent`` header (see :mod:`alog.otel`). ``run_options`` are
    :func:`alog.run`'s (``destination=`` included), checked here. If the writer fails for
    good while the app is served, ``SystemExit(1)`` is raised through the event loop:
    ``web.run_app`` then stops listening, runs the app's cleanup and exits with status 1 (a
    daemon thread forces it ``exit_timeout`` + 2 s later if it hangs).
    """
    args, options = split_run_options(run_options)
    timeout = check_exit_timeout(exit_timeout)
    middleware = RequestLogMiddleware(
        logger=logger,
        exclude_paths=exclude_paths,
        log_headers=log_headers,
        redact_headers=redact_headers,
        status_level=status_level,
    )

    async def alog_pipeline(app: web.Application) -> AsyncIterator[None]:
        runner = AppPipeline(args, options, exit_timeout=timeout, stop_server=no_server)
        await runner.start()
        yield
        await runner.stop()

    app.middlewares.insert(0, middleware)
    app.on_response_prepare.append(_on_response_prepare)
    app.cleanup_ctx.insert(0, alog_pipeline)
    return middleware
