"""aiohttp: a request-logging middleware and a ``cleanup_ctx`` running alog with the app.

::

    app = web.Application()
    alog.integrations.aiohttp.setup(app, level="info")
    web.run_app(app, access_log=None)

Each request gets a request id (an incoming ``X-Request-ID``, or ``request_id_header=``, if
short and safe, else a new one), echoed in the response and bound with :func:`alog.bound`
while the handler runs, and one access line once the response is sent (a WebSocket
session: when it closes). The running pipeline is ``app["alog"]``.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Final, TypeAlias, final

from aiohttp import web
from aiohttp.typedefs import Handler

from .._logger import Logger
from .._pipeline import Pipeline
from .._records import Statistics
from ._aiohttp_run import run_app as run_app
from ._lifecycle import (
    DEFAULT_EXIT_TIMEOUT,
    AppPipeline,
    check_exit_timeout,
    no_server,
    split_run_options,
)
from ._requests import (
    REQUEST_ID_HEADER,
    AccessOptions,
    Added,
    StatusLevel,
    close_request,
    level_for_status,
    milliseconds,
    open_request,
    request_id,
)

__all__ = [
    "ALOG_KEY",
    "AccessFields",
    "AppLogging",
    "RequestLogMiddleware",
    "RequestPredicate",
    "run_app",
    "setup",
]

RequestPredicate: TypeAlias = Callable[[web.Request], bool]
"""``skip=`` as a predicate: given the request, True for no access line."""
AccessFields: TypeAlias = Callable[
    [web.Request, "web.StreamResponse | None"], "Mapping[str, object] | None"
]
"""``fields=``: given the request and its response (None if there is none), the fields to
add to the access line."""


class _Handling:
    """The request being handled in this task: its id, and its response once prepared."""

    __slots__ = ("header", "request_id", "response", "streamed")

    def __init__(self, rid: str, header: str) -> None:
        self.request_id = rid
        self.header = header
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
        if handling.header not in response.headers:
            response.headers[handling.header] = handling.request_id


@final
class AppLogging:
    """What :func:`setup` stores at ``app["alog"]`` (and ``app[ALOG_KEY]``): the app's pipeline.

    ``request.app["alog"].statistics()`` in a handler gives the running pipeline's
    :class:`alog.Statistics` (a ``/metrics`` endpoint: :func:`alog.integrations.prometheus_text`).
    """

    __slots__ = ("_args", "_exit_timeout", "_options", "_runner")

    def __init__(
        self, args: tuple[Any, ...], options: Mapping[str, Any], *, exit_timeout: float
    ) -> None:
        self._args = args
        self._options = options
        self._exit_timeout = exit_timeout
        self._runner: AppPipeline | None = None

    async def _run(self, app: web.Application) -> AsyncIterator[None]:
        """The ``cleanup_ctx``: the pipeline from the app's start-up to its cleanup."""
        runner = AppPipeline(
            self._args, self._options, exit_timeout=self._exit_timeout, stop_server=no_server
        )
        await runner.start()
        self._runner = runner
        yield
        await runner.stop()

    @property
    def pipeline(self) -> Pipeline:
        """The app's :class:`alog.Pipeline`; RuntimeError before the app has started."""
        runner = self._runner
        if runner is None or runner.pipeline is None:
            raise RuntimeError("the app's alog pipeline has not started yet")
        return runner.pipeline

    def statistics(self) -> Statistics:
        """The app's pipeline's :meth:`alog.Pipeline.statistics`."""
        return self.pipeline.statistics()


ALOG_KEY: Final = web.AppKey("alog", AppLogging)
"""The typed key of :class:`AppLogging` in the app (``app["alog"]`` is the same object)."""


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
        skip: Collection[str] | RequestPredicate | None = None,
        exclude_paths: Iterable[str] = (),
        fields: AccessFields | None = None,
        request_id_header: str = REQUEST_ID_HEADER,
        new_request_id: Callable[[], str] | None = None,
        log_query: bool = False,
        log_user_agent: bool = False,
        log_headers: bool = False,
        redact_headers: Iterable[str] = (),
        status_level: StatusLevel = level_for_status,
    ) -> None:
        self.options: AccessOptions[web.Request, web.StreamResponse] = AccessOptions(
            logger=logger,
            skip=skip,
            exclude_paths=exclude_paths,
            fields=fields,
            request_id_header=request_id_header,
            new_request_id=new_request_id,
            log_query=log_query,
            log_user_agent=log_user_agent,
            log_headers=log_headers,
            redact_headers=redact_headers,
            status_level=status_level,
        )

    async def __call__(
        self,
        request: web.Request,
        handler: Handler,
    ) -> web.StreamResponse:
        options = self.options
        headers = request.headers
        rid = request_id(headers.get(options.header), options.make_id)
        handling = _Handling(rid, options.header)
        added = Added()
        token = _handling.set(handling)
        tokens = open_request(rid, headers.get("traceparent"), added)
        started = time.perf_counter()
        try:
            return await self._handle(request, handler, handling, added, started)
        finally:
            close_request(tokens)
            _handling.reset(token)

    async def _handle(
        self,
        request: web.Request,
        handler: Handler,
        handling: _Handling,
        added: Added,
        started: float,
    ) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            # Raised responses are sent by aiohttp after this returns.
            if handling.header not in exc.headers:
                exc.headers[handling.header] = handling.request_id
            body = exc.body
            size = len(body) if isinstance(body, bytes | bytearray) else 0
            self._access(request, exc, exc.status, started, size, added)
            raise
        except Exception as error:
            prepared = handling.response
            if prepared is not None and prepared.prepared:
                self._access(
                    request,
                    prepared,
                    prepared.status,
                    started,
                    handling.size(prepared),
                    added,
                    error,
                )
                raise  # the response is cut short: aiohttp must abort the connection
            response = web.Response(
                status=500,
                text="500 Internal Server Error",
                headers={handling.header: handling.request_id},
            )
            await self._send(request, response)
            self._access(request, response, 500, started, handling.size(response), added, error)
            return response
        except asyncio.CancelledError:
            self._access(request, handling.response, None, started, 0, added, cancelled=True)
            raise
        if isinstance(response, web.WebSocketResponse):
            self._websocket(request, response, started, added)
            return response
        if not response.prepared:
            await self._send(request, response)
        self._access(request, response, response.status, started, handling.size(response), added)
        return response

    @staticmethod
    async def _send(request: web.Request, response: web.StreamResponse) -> None:
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the client left; aiohttp notices it again and closes the connection

    def _line(self, request: web.Request, started: float, method: bool) -> dict[str, Any]:
        line: dict[str, Any] = {"method": request.method} if method else {}
        line["path"] = request.path
        route = _route(request)
        if route is not None:
            line["route"] = route
        if self.options.log_query:
            line["query"] = request.query_string
        line["status"] = None
        line["duration_ms"] = milliseconds(time.perf_counter() - started)
        line["client"] = request.remote
        if self.options.log_user_agent:
            line["user_agent"] = request.headers.get("User-Agent")
        return line

    def _access(
        self,
        request: web.Request,
        response: web.StreamResponse | None,
        status: int | None,
        started: float,
        size: int,
        added: Added,
        error: BaseException | None = None,
        *,
        cancelled: bool = False,
    ) -> None:
        added.close()
        options = self.options
        failed = error is not None or status is None or status >= 500
        skip_error = None
        if not failed:
            skipped, skip_error = options.skipped(request.path, request)
            if skipped:
                return
        if error is not None:
            level: str | int = "error"
        elif status is None:
            level = "warning"
        else:
            level = options.status_level(status)
        logger = options.logger
        if not logger.is_enabled_for(level):
            return  # no line to build
        line = self._line(request, started, method=True)
        line["status"] = status
        line["response_bytes"] = size
        if cancelled:
            line["cancelled"] = True
        self.options.extend(line, request, response, request.headers.items, added, skip_error)
        logger.log(level, "request", exc_info=error, **line)

    def _websocket(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        started: float,
        added: Added,
    ) -> None:
        added.close()
        options = self.options
        skipped, skip_error = options.skipped(request.path, request)
        if skipped:
            return
        line = self._line(request, started, method=False)
        line["status"] = ws.status
        line["close_code"] = ws.close_code
        self.options.extend(line, request, ws, request.headers.items, added, skip_error)
        options.logger.log(options.status_level(ws.status), "websocket", **line)


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
    skip: Collection[str] | RequestPredicate | None = None,
    exclude_paths: Iterable[str] = (),
    fields: AccessFields | Mapping[str, object] | None = None,
    request_id_header: str = REQUEST_ID_HEADER,
    new_request_id: Callable[[], str] | None = None,
    log_query: bool = False,
    log_user_agent: bool = False,
    log_headers: bool = False,
    redact_headers: Iterable[str] = (),
    status_level: StatusLevel = level_for_status,
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
    **run_options: Any,
) -> RequestLogMiddleware:
    """Log requests and run ``alog.run(**run_options)`` for the life of ``app``.

    Adds :class:`RequestLogMiddleware` first in ``app.middlewares``, an ``on_response_prepare``
    hook that echoes the request id, and a ``cleanup_ctx`` that starts the pipeline before
    the app's other start-up code and drains it after the app's cleanup; the running
    pipeline is reached through ``app["alog"]`` (an :class:`AppLogging`, also at
    ``app[ALOG_KEY]``): ``request.app["alog"].statistics()``.

    The access line's options are those of the ASGI middleware
    (:class:`alog.integrations.asgi.RequestLogMiddleware`): ``skip`` (paths, or a predicate
    on the ``web.Request``; ``exclude_paths`` is its older name), ``fields(request,
    response)`` (a callable; a mapping is :func:`alog.run`'s ``fields=``, on every event,
    as it always was here), ``request_id_header``, ``new_request_id``, ``log_query``,
    ``log_user_agent``, ``log_headers``, ``redact_headers``, ``status_level``. With
    ``otel=True`` and no OpenTelemetry span current, events get the ids of the request's
    ``traceparent`` header (see :mod:`alog.otel`). ``run_options`` are :func:`alog.run`'s
    (``destination=`` included), checked here. If the writer fails for good while the app
    is served, ``SystemExit(1)`` is raised through the event loop: ``web.run_app`` then
    stops listening, runs the app's cleanup and exits with status 1 (a daemon thread forces
    it ``exit_timeout`` + 2 s later if it hangs).
    """
    access_fields: AccessFields | None = None
    if isinstance(fields, Mapping):  # alog.run's fields=, on every event
        run_options["fields"] = fields
    else:
        access_fields = fields
    args, options = split_run_options(run_options)
    timeout = check_exit_timeout(exit_timeout)
    middleware = RequestLogMiddleware(
        logger=logger,
        skip=skip,
        exclude_paths=exclude_paths,
        fields=access_fields,
        request_id_header=request_id_header,
        new_request_id=new_request_id,
        log_query=log_query,
        log_user_agent=log_user_agent,
        log_headers=log_headers,
        redact_headers=redact_headers,
        status_level=status_level,
    )
    handle = AppLogging(args, options, exit_timeout=timeout)
    app[ALOG_KEY] = handle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["alog"] = handle  # the plain name people type; the AppKey is the typed one
    app.middlewares.insert(0, middleware)
    app.on_response_prepare.append(_on_response_prepare)
    app.cleanup_ctx.insert(0, handle._run)
    return middleware
