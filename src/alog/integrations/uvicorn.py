"""uvicorn: ``alog.integrations.uvicorn.run(app, ...)``, uvicorn's own lines as alog events.

::

    if __name__ == "__main__":
        alog.integrations.uvicorn.run(app, host="127.0.0.1", port=8000)

``uvicorn.run()`` installs uvicorn's logging configuration, whose handlers write plain text
around any bridge installed before (``python app.py`` printed uvicorn's start-up lines as
text). This passes :data:`LOG_CONFIG` instead: in every process uvicorn runs (the supervisor
of ``workers=N`` and each worker, a fresh interpreter), records go to an
:class:`alog.stdlib.AlogHandler` on the root logger. uvicorn's access log is off unless
``access_log=True``: ``RequestLogMiddleware`` writes one line per request.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, Final

from ._lifecycle import HALT_STATUS_FILE_ENV

__all__ = ["LOG_CONFIG", "run"]

LOG_CONFIG: Final[dict[str, Any]] = {
    "version": 1,
    "disable_existing_loggers": False,
    # Empty, but present: uvicorn writes use_colors= into these two (and colours mean
    # nothing to a JSON line).
    "formatters": {"default": {}, "access": {}},
    "handlers": {"alog": {"()": "alog.stdlib.AlogHandler"}},
    "root": {"level": "INFO", "handlers": ["alog"]},
    "loggers": {
        name: {"level": "INFO", "handlers": [], "propagate": True}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}
"""A :func:`logging.config.dictConfig` dict: every record to alog's handler on the root.

Before a pipeline runs (and in the supervisor of ``workers=N``, which runs none) records
are JSON lines on stderr; in a running app they join its queue.
"""


def run(app: Any, /, *, access_log: bool = False, **options: Any) -> None:
    """``uvicorn.run(app, **options)`` with every line of uvicorn's through alog.

    ``options`` are uvicorn's (``host``, ``port``, ``workers``, ``loop``...); ``log_config``
    is this module's :data:`LOG_CONFIG` and cannot be given. ``access_log`` is off by
    default: the app's ``RequestLogMiddleware`` logs each request.
    """
    if "log_config" in options:
        raise TypeError(
            "alog.integrations.uvicorn.run() sets log_config itself (to LOG_CONFIG); "
            "call uvicorn.run() to use a logging configuration of your own"
        )
    import uvicorn

    log_config = copy.deepcopy(LOG_CONFIG)
    with _halt_status() as halt_status:
        uvicorn.run(app, log_config=log_config, access_log=access_log, **options)
        status = halt_status()
    if status:
        # A worker's writer failed for good and stopped this supervisor: uvicorn returns as
        # from a plain stop, and a restart-on-failure policy would never see it.
        raise SystemExit(status)


@contextlib.contextmanager
def _halt_status() -> Iterator[Callable[[], int]]:
    """A file the workers inherit the name of (``workers=N``), read once uvicorn returns."""
    with tempfile.TemporaryDirectory(prefix="alog-uvicorn-") as folder:
        path = os.path.join(folder, "halt-status")
        saved = os.environ.get(HALT_STATUS_FILE_ENV)
        os.environ[HALT_STATUS_FILE_ENV] = path

        def read() -> int:
            try:
                with open(path) as status_file:
                    return int(status_file.read() or 0)
            except (OSError, ValueError):
                return 0

        try:
            yield read
        finally:
            if saved is None:
                os.environ.pop(HALT_STATUS_FILE_ENV, None)
            else:
                os.environ[HALT_STATUS_FILE_ENV] = saved
