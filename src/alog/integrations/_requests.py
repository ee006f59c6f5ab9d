"""What the request middlewares share: the access line's options, request ids, redaction,
level by status, and the per-request holder behind :func:`request_fields`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Final, Generic, TypeAlias, TypeVar

from .._context import context_fields, push_fields
from .._logger import Logger, get_logger
from .._traceparent import TraceIds, push_parent, remote_parent

REQUEST_ID_HEADER: Final = "X-Request-ID"

StatusLevel: TypeAlias = Callable[[int], "str | int"]
"""Picks the level of an access line from the response status."""

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

ALWAYS_REDACTED: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED: Final = "[redacted]"

# Short and made of characters that cannot break a log line, a header or a shell: what UUIDs,
# ULIDs, hex trace ids and base64 tokens use. Anything else is replaced, not escaped.
_SAFE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def fresh_id() -> str:
    """The default for a request that brings no usable id: 32 random hex digits."""
    return os.urandom(16).hex()  # uuid4().hex without the UUID object: 4x cheaper


def request_id(incoming: str | None, make: Callable[[], str] = fresh_id) -> str:
    """Reuse an incoming request id if it is short and safe; otherwise make a new one."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    if make is fresh_id:
        return os.urandom(16).hex()
    made = make()
    # A generator's id goes into a response header too: an unsafe one is not used.
    if isinstance(made, str) and _SAFE_REQUEST_ID.fullmatch(made):
        return made
    return os.urandom(16).hex()


def level_for_status(status: int) -> str:
    """The default: ``error`` for 5xx, ``warning`` for 4xx, ``info`` for everything else."""
    if status >= 500:
        return "error"
    if status >= 400:
        return "warning"
    return "info"


def redaction(names: Iterable[str]) -> frozenset[str]:
    """The lower-cased header names to redact: the configured ones plus the credentials."""
    if isinstance(names, str):
        raise TypeError("redact_headers is a collection of header names, not one string")
    return ALWAYS_REDACTED | {name.lower() for name in names}


def header_fields(pairs: Iterable[tuple[str, str]], redact: Collection[str]) -> dict[str, str]:
    """Request headers as one field: lower-case names, repeats joined, secrets redacted."""
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        shown = REDACTED if name in redact else value
        headers[name] = f"{headers[name]}, {shown}" if name in headers else shown
    return headers


def milliseconds(seconds: float) -> float:
    """A duration (never negative) for the ``duration_ms`` field, to the microsecond.

    Not ``round(x, 3)``: that formats the float as decimal digits, 3x slower per request."""
    return int(seconds * 1_000_000.0 + 0.5) / 1000.0


def describe(error: BaseException) -> str:
    """An error raised by a user's callback, as the field that reports it on the line."""
    return f"{type(error).__name__}: {error}"


class AccessOptions(Generic[RequestT, ResponseT]):
    """The access line's configuration, checked once when the middleware is built.

    ``RequestT`` is what a callback is given as the request (an ASGI scope, an aiohttp
    ``web.Request``), ``ResponseT`` the response (the ``http.response.start`` message, an
    aiohttp ``web.StreamResponse``).
    """

    __slots__ = (
        "fields",
        "header",
        "header_bytes",
        "log_headers",
        "log_query",
        "log_user_agent",
        "logger",
        "make_id",
        "redact_headers",
        "skip_paths",
        "skip_request",
        "status_level",
    )

    def __init__(
        self,
        *,
        logger: Logger | str,
        skip: Collection[str] | Callable[[RequestT], bool] | None,
        exclude_paths: Iterable[str],
        fields: Callable[[RequestT, ResponseT | None], Mapping[str, object] | None] | None,
        request_id_header: str,
        new_request_id: Callable[[], str] | None,
        log_query: bool,
        log_user_agent: bool,
        log_headers: bool,
        redact_headers: Iterable[str],
        status_level: StatusLevel,
    ) -> None:
        self.logger = get_logger(logger) if isinstance(logger, str) else logger
        self.skip_paths: frozenset[str] = frozenset()
        self.skip_request: Callable[[RequestT], bool] | None = None
        if isinstance(exclude_paths, str):
            raise TypeError("exclude_paths is a collection of paths, not one string")
        old = frozenset(exclude_paths)
        if skip is not None and old:
            raise TypeError("give skip= or its older name exclude_paths=, not both")
        if skip is None:
            self.skip_paths = old
        elif isinstance(skip, str):
            raise TypeError("skip is a collection of paths or a predicate, not one string")
        elif callable(skip):
            self.skip_request = skip
        else:
            self.skip_paths = frozenset(skip)
            if not all(isinstance(path, str) for path in self.skip_paths):
                raise TypeError("skip is a collection of paths (strings) or a predicate")
        if fields is not None and not callable(fields):
            raise TypeError(f"fields must be a callable (request, response), got {fields!r}")
        self.fields = fields
        if not isinstance(request_id_header, str) or not request_id_header:
            raise TypeError(f"request_id_header must be a header name, got {request_id_header!r}")
        self.header = request_id_header
        self.header_bytes = request_id_header.lower().encode("latin-1")
        if new_request_id is not None and not callable(new_request_id):
            raise TypeError(f"new_request_id must be a callable, got {new_request_id!r}")
        self.make_id: Callable[[], str] = new_request_id or fresh_id
        self.log_query = log_query
        self.log_user_agent = log_user_agent
        self.log_headers = log_headers
        self.redact_headers = redaction(redact_headers)
        if not callable(status_level):
            raise TypeError(f"status_level must be a callable, got {status_level!r}")
        self.status_level = status_level

    def skipped(self, path: str, request: RequestT) -> tuple[bool, str | None]:
        """Is this (successful) request one that gets no line? And the predicate's error."""
        if path in self.skip_paths:
            return True, None
        if self.skip_request is None:
            return False, None
        try:
            return bool(self.skip_request(request)), None
        except Exception as error:  # noqa: BLE001 - the line is written, and says why
            return False, describe(error)

    def extend(
        self,
        line: dict[str, Any],
        request: RequestT,
        response: ResponseT | None,
        headers: Callable[[], Iterable[tuple[str, str]]],
        added: Mapping[str, object],
        skip_error: str | None,
    ) -> None:
        """The line's optional tail, the same on every framework: headers (read only when
        logged), ``fields=``, :func:`request_fields`' fields, a ``skip=`` predicate's error."""
        if self.log_headers:
            line["headers"] = header_fields(headers(), self.redact_headers)
        if self.fields is not None:
            self.add_fields(request, response, line)
        if added:
            line.update(added)
        if skip_error is not None:
            line["skip_error"] = skip_error

    def add_fields(
        self, request: RequestT, response: ResponseT | None, line: dict[str, Any]
    ) -> None:
        """The ``fields=`` callback's fields; its failure is reported on the line itself."""
        assert self.fields is not None
        try:
            extra = self.fields(request, response)
            if extra:
                line.update(extra)
        except Exception as error:  # noqa: BLE001 - a log line never fails the request
            line["fields_error"] = describe(error)


class Added(dict[str, object]):
    """The fields :func:`request_fields` adds to one request's line, until it is written."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        super().__init__()
        self.open = True

    def close(self) -> None:
        """The line is being written: later additions (a background task's) have no line."""
        self.open = False


# The middleware sets a fresh record for each request before the app runs: a context copied
# later (a task, FastAPI's threadpool for sync dependencies, asyncio.to_thread) holds the
# same record, so additions made there reach the line.
_added: ContextVar[Added | None] = ContextVar("alog_request_fields", default=None)

RequestTokens: TypeAlias = tuple[
    "Token[dict[str, object] | None]", "Token[TraceIds | None] | None", "Token[Added | None]"
]


def open_request(request_id: str, traceparent: str | None, added: Added) -> RequestTokens:
    """While the app handles a request: its id bound (as :func:`alog.bound` would), its
    ``traceparent`` the remote parent (if valid), ``added`` the holder of
    :func:`request_fields`. Plain calls, not three context managers: this runs per request.
    """
    return push_fields({"request_id": request_id}), push_parent(traceparent), _added.set(added)


def close_request(tokens: RequestTokens) -> None:
    """Undo :func:`open_request`, in reverse order."""
    fields_token, parent_token, added_token = tokens
    _added.reset(added_token)
    if parent_token is not None:
        remote_parent.reset(parent_token)
    context_fields.reset(fields_token)


def request_fields(**fields: object) -> bool:
    """Add ``fields`` to the access line of the request being handled.

    Works from the handler, a dependency (sync ones run in a threadpool included), a task
    started while handling the request, or ``asyncio.to_thread``. Returns False, and does
    nothing, outside a request (or where the context was lost: ``loop.run_in_executor``),
    and once the line is written (in a background task).
    """
    added = _added.get()
    if added is None or not added.open:
        return False
    added.update(fields)
    return True


__all__ = [
    "REQUEST_ID_HEADER",
    "AccessOptions",
    "Added",
    "StatusLevel",
    "close_request",
    "describe",
    "fresh_id",
    "header_fields",
    "level_for_status",
    "milliseconds",
    "open_request",
    "redaction",
    "request_fields",
    "request_id",
]
