"""``alog.integrations.aiohttp.run_app(app, ...)``: ``web.run_app`` with every line in alog.

``web.run_app`` prints a ``======== Running on ... ========`` banner to stdout and keeps an
access log of its own. This passes ``print=`` a function that logs the banner as one alog
event (``logger="aiohttp.web"``, ``msg="Running on http://..."``) and ``access_log=None``
(alog's middleware writes the access lines), and bridges :mod:`logging` for the call, so
aiohttp's and asyncio's own records are alog events too.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from aiohttp import web

from .._logger import Logger
from ..stdlib import AlogHandler, install

__all__ = ["run_app"]

_BANNER: Final = re.compile(r"=+ (Running on .*?) =+")
_log: Final = Logger("aiohttp.web")


def _announce(*values: object, **_: object) -> None:
    """``print`` for ``run_app``'s banner: one event, without the frame and the Ctrl+C hint."""
    text = " ".join(str(value) for value in values)
    found = _BANNER.search(text)
    _log.info(found.group(1) if found else text.strip())


def run_app(app: Any, /, *, access_log: logging.Logger | None = None, **options: Any) -> None:
    """``aiohttp.web.run_app(app, **options)`` with its banner and its records as alog events.

    ``options`` are ``run_app``'s (``host``, ``port``, ``sock``, ``shutdown_timeout``...);
    ``print`` cannot be given. ``access_log`` is None (off) unless given: the middleware
    that :func:`alog.integrations.aiohttp.setup` adds logs each request. The stdlib bridge
    (:func:`alog.stdlib.install`) is installed for the call unless already in place.
    """
    if "print" in options:
        raise TypeError(
            "alog.integrations.aiohttp.run_app() logs the banner itself; "
            "call aiohttp.web.run_app() to print it"
        )
    bridged = any(isinstance(handler, AlogHandler) for handler in logging.getLogger().handlers)
    bridge = None if bridged else install()
    try:
        web.run_app(app, print=_announce, access_log=access_log, **options)
    finally:
        if bridge is not None:
            bridge.uninstall()
