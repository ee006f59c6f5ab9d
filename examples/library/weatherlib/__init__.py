"""A tiny library that logs with alog and configures nothing: the app decides the output."""

from __future__ import annotations

import alog

log = alog.get_logger(__name__)


def _lookup(city: str) -> str:
    if not city:
        raise ValueError("empty city name")
    return "sunny"


def forecast(city: str) -> str:
    """Pretend to fetch a forecast, logging what a library should: facts, as fields."""
    log.info("forecast requested", city=city, source="cache")
    try:
        return _lookup(city)
    except ValueError:
        log.exception("forecast failed", city=city)
        return "unknown"
