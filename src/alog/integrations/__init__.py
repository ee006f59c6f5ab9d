"""Framework integrations: ``alog.integrations.asgi`` and ``alog.integrations.aiohttp``.

Neither imports its framework at the top of this package; alog has no framework dependency.
"""
