"""An app that does not use alog: the library's events arrive through plain logging."""

from __future__ import annotations

import logging

import weatherlib

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

print(weatherlib.forecast("Lisbon"))
print(weatherlib.forecast(""))
