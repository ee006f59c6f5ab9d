"""Where log calls go when no pipeline runs: the standard :mod:`logging` module.

A library that uses alog inside an app that does not must cost that app nothing surprising:
no memory kept, records under the same logger name, fields visible in the message and
available to handlers as ``record.alog_fields``.
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import TYPE_CHECKING

from ._events import build_event

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
        merged = dict(islice(event.items(), 4, None))  # all but the core keys
        text = msg if not merged else f"{msg} {_logfmt(merged)}"
        std.log(
            levelno,
            "%s",
            text,
            exc_info=exc_info if isinstance(exc_info, bool | BaseException | tuple) else None,
            extra={"alog_fields": merged, FALLBACK_MARK: True},
            stacklevel=3,  # the user's call, not Logger.info or this method
        )


def _logfmt(fields: dict[str, object]) -> str:
    parts = []
    for key, value in fields.items():
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not break the log call
            text = f"<unrepresentable {type(value).__qualname__}>"
        parts.append(f"{key}={text}")
    return " ".join(parts)
