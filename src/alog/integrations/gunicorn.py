"""gunicorn: a ``logger_class`` whose lines (master and workers) are alog events.

::

    gunicorn app:app --worker-class uvicorn.workers.UvicornWorker \
        --logger-class alog.integrations.gunicorn.Logger

gunicorn's own logger writes plain text to stderr, in the master (``Starting gunicorn``,
``Booting worker``) and in each worker. :class:`Logger` keeps gunicorn's loggers, levels
and settings, but where gunicorn would have put a handler of its own (``gunicorn.error``
always, ``gunicorn.access`` with ``--access-logfile``), it puts an
:class:`alog.stdlib.AlogHandler`; and it bridges the root logger, so other libraries'
records are alog events too. alog's destinations decide where the lines go: a file given
to ``--error-logfile`` or ``--access-logfile``, or ``--log-syslog``, is not written. In
the master, which runs no pipeline, the lines are JSON on stderr; in a worker whose app
runs alog, they join its queue.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]  # no types

from ..stdlib import AlogHandler, install

__all__ = ["Logger"]


class Logger(glogging.Logger):  # type: ignore[misc]  # a class from an untyped package
    """gunicorn's ``logger_class`` (``--logger-class alog.integrations.gunicorn.Logger``)."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's set-up (run again on a configuration reload), then alog's handlers.

        gunicorn marks its handlers (``_gunicorn``) and drops them on each set-up; alog's
        carry the mark too, so a reload replaces them instead of stacking duplicates.
        """
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            gunicorns = [h for h in log.handlers if getattr(h, "_gunicorn", False)]
            if not gunicorns:
                continue  # no access log asked for: none given to alog either
            for handler in gunicorns:
                log.removeHandler(handler)  # in place: UvicornWorker shares this list
            handler = AlogHandler()
            handler._gunicorn = True  # type: ignore[attr-defined]
            log.addHandler(handler)
        root = logging.getLogger()
        if not any(isinstance(handler, AlogHandler) for handler in root.handlers):
            install()  # leaves gunicorn's loggers, which write through alog already
