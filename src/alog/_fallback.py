"""Where log calls go when no pipeline runs: the standard :mod:`logging` module.

A library that uses alog inside an app that does not must cost that app nothing surprising:
no memory kept, records under the same logger name, fields visible in the message and
available to handlers as ``record.alog_fields``.
"""

from __future__ import annotations

import logging
import traceback
from itertools import islice
from typing import TYPE_CHECKING

from ._events import build_event
from ._redact import MIN_SCRUB_LENGTH, redact_outside

if TYPE_CHECKING:
    from ._logger import Logger

FALLBACK_MARK = "_alog_fallback"
"""Attribute set on records alog forwards, so a bridge from logging back to alog skips them."""


class StdlibFallback:
    """Forwards each call to ``logging.getLogger(logger.name)``, if that logger is enabled."""

    def emit(
        self,
        logger: Logger,
        levelno: int,
        levelname: str,
        msg: str,
        fields: dict[str, object],
        exc_info: object,
        /,
    ) -> None:
        std = logging.getLogger(logger.name)
        if not std.isEnabledFor(levelno):
            return
        event = build_event(logger, levelname, msg, fields, None, "")
        found = redact_outside(event)
        msg = event["msg"]  # type: ignore[assignment]  # redaction may have scrubbed it
        merged = dict(islice(event.items(), 4, None))  # all but the core keys
        text = msg if not merged else f"{msg} {_logfmt(merged)}"
        exc = exc_info if isinstance(exc_info, bool | BaseException | tuple) else None
        if found and exc:
            exc, text = _scrubbed_exception(exc, text, found)
        std.log(
            levelno,
            "%s",
            text,
            exc_info=exc,
            extra={"alog_fields": merged, FALLBACK_MARK: True},
            stacklevel=3,  # the user's call, not Logger.info or this method
        )


def _scrubbed_exception(
    exc_info: bool | BaseException | tuple[object, ...], text: str, found: list[str]
) -> tuple[bool | BaseException | tuple[object, ...] | None, str]:
    """A traceback quoting a redacted value goes into the text, scrubbed, not to logging."""
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if exc is True:
        import sys

        exc = sys.exc_info()[1]
    if not isinstance(exc, BaseException):
        return exc_info, text
    formatted = "".join(traceback.format_exception(exc))
    secrets = [secret for secret in found if len(secret) >= MIN_SCRUB_LENGTH]
    if not any(secret in formatted for secret in secrets):
        return exc_info, text
    for secret in sorted(secrets, key=len, reverse=True):
        formatted = formatted.replace(secret, "[redacted]")
    return None, f"{text}\n{formatted.rstrip()}"


def _logfmt(fields: dict[str, object]) -> str:
    parts = []
    for key, value in fields.items():
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not break the log call
            text = f"<unrepresentable {type(value).__qualname__}>"
        parts.append(f"{key}={text}")
    return " ".join(parts)
