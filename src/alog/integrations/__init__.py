"""Framework integrations: ``alog.integrations.asgi`` and ``alog.integrations.aiohttp``.

Neither imports its framework at the top of this package; alog has no framework dependency.
Here: :func:`request_fields` (fields for the current request's access line, from any
framework) and :func:`prometheus_text` (a pipeline's statistics for a ``/metrics`` endpoint).
"""

from __future__ import annotations

from ._metrics import PROMETHEUS_CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from ._metrics import prometheus_text as prometheus_text
from ._requests import request_fields as request_fields

__all__ = ["PROMETHEUS_CONTENT_TYPE", "prometheus_text", "request_fields"]
