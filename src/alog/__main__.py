"""``python -m alog pretty app.log``: see :mod:`alog._cli`."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
