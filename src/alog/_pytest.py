"""The pytest plugin alog registers (entry point ``pytest11``): the ``alog_logs`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .testing import capture_logs


@pytest.fixture(name="alog_logs")
def fixture_alog_logs() -> Iterator[list[dict[str, Any]]]:
    """Every alog event the test logs, as dicts (see :func:`alog.testing.capture_logs`)."""
    with capture_logs() as events:
        yield events
