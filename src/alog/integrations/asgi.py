"""ASGI: a request-logging middleware and a lifespan that runs alog for the life of the app.

Works with any ASGI app (FastAPI, Starlette, Litestar, Quart...) and imports none of them::

    app = FastAPI(lifespan=alog.integrations.asgi.lifespan())
    app.add_middleware(alog.integrations.asgi.RequestLogMiddleware)

Each request gets a request id (an incoming ``X-Request-ID``, or ``request_id_header=``, if
short and safe, else a new one), echoed in the response and bound with :func:`alog.bound`
while the app handles it, and one access line when its response ends, before background
tasks run (a WebSocket session: when it closes). Under :func:`lifespan` the running
pipeline is ``app.state.alog``.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    MutableMapping,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, TypeAlias, final

from .._logger import Logger
from ._lifecycle import (
    DEFAULT_EXIT_TIMEOUT,
    AppPipeline,
    check_exit_timeout,
    split_run_options,
    stop_uvicorn,
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

__all__ = ["AccessFields", "RequestLogMiddleware", "RequestPredicate", "lifespan"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
Lifespan: TypeAlias = Callable[[Any], AbstractAsyncContextManager[Any]]

_TRACEPARENT: Final = b"traceparent"
_USER_AGENT: Final = b"user-agent"
_ERROR_BODY: Final = b"Internal Server Error"

RequestPredicate: TypeAlias = Callable[[Scope], bool]
"""``skip=`` as a predicate: given the request's ASGI scope, True for no access line."""
AccessFields: TypeAlias = Callable[[Scope, Message | None], "Mapping[str, object] | None"]
"""``fields=``: given the scope and the ``http.response.start`` message (None if no response
was started; always None for a WebSocket), the fields to add to the access line."""


@final
class RequestLogMiddleware:
    """Logs one line per request (``msg="request"``) or WebSocket session (``"websocket"``).

    Fields: ``method``, ``path``, ``route`` (the template, when the framework records it in
    ``scope["route"]``, as Starlette and FastAPI do), ``query`` (with ``log_query=True``),
    ``status``, ``duration_ms`` (until the last body byte was handed to the server),
    ``client``, ``user_agent`` (with ``log_user_agent=True``), ``response_bytes``, and
    ``headers`` with ``log_headers=True`` (``authorization``, ``cookie``, ``set-cookie`` and
    ``redact_headers`` redacted); then what ``fields(scope, response_start)`` returns and
    what the app added with :func:`alog.integrations.request_fields`. ``request_id`` comes
    from the bound context: the ``request_id_header`` of the request if short and safe,
    else ``new_request_id()`` (32 random hex digits by default), echoed in the response.
    With trace correlation on (``alog.run(otel=True)``) and no OpenTelemetry span current,
    events get the ids of the request's ``traceparent`` header.

    The line is written as soon as the last body byte is sent, before background tasks run
    (their failure gets a line of its own, ``msg="error after response"``); a 5xx line waits
    for the app to return, to carry the exception that usually follows. Level:
    ``status_level(status)``, by default error for 5xx, warning for 4xx, else info. An
    exception escaping the app gives one error line carrying the structured traceback, and
    a 500 response if none was started; it is not re-raised unless the response was cut
    short (then the server must abort the connection). ``skip`` (paths, or a predicate on
    the scope; ``exclude_paths`` is its older name) gets no line unless it fails with a 5xx
    or an exception.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,
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
        self.app = app
        self.options: AccessOptions[Scope, Message] = AccessOptions(
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
        self._id_header = self.options.header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _request(self, scope: Scope) -> tuple[str, str | None, str | None]:
        """The request id to use, and the ``traceparent`` and ``user-agent`` headers."""
        incoming = traceparent = agent = None
        id_header = self._id_header
        for key, value in scope.get("headers", ()):
            name = key.lower()
            if name == id_header:
                incoming = value.decode("latin-1")
            elif name == _TRACEPARENT:
                traceparent = value.decode("latin-1")
            elif name == _USER_AGENT:
                agent = value.decode("latin-1")
        return request_id(incoming, self.options.make_id), traceparent, agent

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid, traceparent, agent = self._request(scope)
        header = self._id_header
        added = Added()
        started = time.perf_counter()
        ended: float | None = None
        status: int | None = None
        response: Message | None = None
        size = 0
        logged = False
        held: contextvars.Context | None = None

        async def send_logged(message: Message) -> None:
            nonlocal ended, status, response, size, logged, held
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                message = response = _with_request_id(message, header, rid)
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body", False) and ended is None:
                    ended = time.perf_counter()
                    await send(message)
                    if status is not None and status < 500:
                        # Now, before background tasks run, and in the app's context: what
                        # a yield dependency bound is still bound here.
                        logged = True
                        self._access(scope, status, ended - started, size, response, agent, added)
                    else:
                        held = contextvars.copy_context()
                    return
            await send(message)

        tokens = open_request(rid, traceparent, added)
        try:
            await self.app(scope, receive, send_logged)
        except Exception as error:
            if logged:  # a background task, or teardown code, after a whole response
                self._after_response(scope, status, error)
                return
            if status is None:
                await _send_error(send_logged)
            elif ended is None:
                self._access(scope, status, _since(started), size, response, agent, added, error)
                raise  # the response is cut short: the server must abort it
            duration = (ended or time.perf_counter()) - started
            self._access(scope, status, duration, size, response, agent, added, error)
            return
        except BaseException:
            if not logged:
                self._access(
                    scope,
                    status,
                    (ended or time.perf_counter()) - started,
                    size,
                    response,
                    agent,
                    added,
                    cancelled=True,
                )
            raise
        else:
            if logged:
                return
            duration = (ended or time.perf_counter()) - started
            if held is not None:
                held.run(self._access, scope, status, duration, size, response, agent, added)
            else:
                self._access(scope, status, duration, size, response, agent, added)
        finally:
            close_request(tokens)

    def _access(
        self,
        scope: Scope,
        status: int | None,
        duration: float,
        size: int,
        response: Message | None,
        agent: str | None,
        added: Added,
        error: BaseException | None = None,
        *,
        cancelled: bool = False,
    ) -> None:
        added.close()
        options = self.options
        path = scope.get("path", "")
        failed = error is not None or status is None or status >= 500
        skip_error = None
        if not failed:
            skipped, skip_error = options.skipped(path, scope)
            if skipped:
                return
        shown = 500 if status is None and not cancelled else status
        if error is not None:
            level: str | int = "error"
        elif cancelled or shown is None:
            level = "warning"
        else:
            level = options.status_level(shown)
        logger = options.logger
        if not logger.is_enabled_for(level):
            return  # no line to build
        line: dict[str, Any] = {"method": scope.get("method"), "path": path}
        route = _route(scope)
        if route is not None:
            line["route"] = route
        if options.log_query:
            line["query"] = scope.get("query_string", b"").decode("latin-1")
        line["status"] = shown
        line["duration_ms"] = milliseconds(duration)
        line["client"] = _client(scope)
        if options.log_user_agent:
            line["user_agent"] = agent
        line["response_bytes"] = size
        if cancelled:
            line["cancelled"] = True
        options.extend(line, scope, response, lambda: _headers(scope), added, skip_error)
        logger.log(level, "request", exc_info=error, **line)

    def _after_response(self, scope: Scope, status: int | None, error: Exception) -> None:
        """The response was sent and logged; what ran after it (a background task) failed."""
        line: dict[str, Any] = {"method": scope.get("method"), "path": scope.get("path", "")}
        route = _route(scope)
        if route is not None:
            line["route"] = route
        line["status"] = status
        self.options.logger.log("error", "error after response", exc_info=error, **line)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid, traceparent, agent = self._request(scope)
        header = self._id_header
        added = Added()
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
                message = _with_request_id(message, header, rid)
            elif kind == "websocket.send":
                sent += 1
            elif kind == "websocket.close" and closed_by is None:
                close_code = int(message.get("code", 1000))
                closed_by = "server"
                if not accepted:
                    status = 403
            elif kind == "websocket.http.response.start":
                status = int(message["status"])
                message = _with_request_id(message, header, rid)
            await send(message)

        error: BaseException | None = None
        options = self.options
        tokens = open_request(rid, traceparent, added)
        try:
            try:
                await self.app(scope, receive_logged, send_logged)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback, once
                error = exc
                if closed_by is None:
                    # 1011: internal error; before the handshake this rejects it (403).
                    await _ignore_closed(send_logged({"type": "websocket.close", "code": 1011}))
            added.close()
            path = scope.get("path", "")
            skip_error = None
            if error is None:
                skipped, skip_error = options.skipped(path, scope)
                if skipped:
                    return
            line: dict[str, Any] = {"path": path}
            route = _route(scope)
            if route is not None:
                line["route"] = route
            if options.log_query:
                line["query"] = scope.get("query_string", b"").decode("latin-1")
            line["status"] = status
            line["close_code"] = close_code
            line["closed_by"] = closed_by
            line["duration_ms"] = milliseconds(time.perf_counter() - started)
            line["client"] = _client(scope)
            if options.log_user_agent:
                line["user_agent"] = agent
            line["messages_received"] = received
            line["messages_sent"] = sent
            options.extend(line, scope, None, lambda: _headers(scope), added, skip_error)
            if error is not None:
                options.logger.log("error", "websocket", exc_info=error, **line)
            else:
                level = options.status_level(status or 403)
                options.logger.log(level, "websocket", **line)
        finally:
            close_request(tokens)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [
        (key.decode("latin-1"), value.decode("latin-1")) for key, value in scope.get("headers", ())
    ]


def _with_request_id(message: Message, header: bytes, rid: str) -> Message:
    headers = list(message.get("headers", ()))
    for key, _ in headers:
        if key.lower() == header:
            break  # the app set its own
    else:
        headers.append((header, rid.encode("latin-1")))
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
    after it. The running :class:`alog.Pipeline` is ``app.state.alog`` (Starlette, FastAPI:
    ``request.app.state.alog.statistics()`` in a handler). If the writer fails for good
    while the app runs, the server is asked to shut down and the process exits with status
    1 within ``exit_timeout`` seconds (plus two, forcibly, if the server hangs); see
    docs/integrations.md.
    """
    args, options = split_run_options(run_options)
    timeout = check_exit_timeout(exit_timeout)

    @asynccontextmanager
    async def alog_lifespan(app: Any) -> AsyncIterator[Any]:
        runner = AppPipeline(args, options, exit_timeout=timeout, stop_server=stop_uvicorn)
        pipeline = await runner.start()
        app_state = getattr(app, "state", None)
        if app_state is not None:  # Starlette's: request.app.state.alog in a handler
            app_state.alog = pipeline
        try:
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as state:
                    yield state
        finally:
            await runner.stop()

    return alog_lifespan
