"""Level names and numbers: the standard five plus any registered by ``alog.run(levels=...)``.

The table is process-global (like :mod:`logging`'s) because loggers are created at import time,
before any pipeline exists, and a level name must mean the same thing everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

DEBUG: Final = 10
INFO: Final = 20
WARNING: Final = 30
ERROR: Final = 40
CRITICAL: Final = 50

STANDARD: Final[Mapping[str, int]] = {
    "debug": DEBUG,
    "info": INFO,
    "warning": WARNING,
    "error": ERROR,
    "critical": CRITICAL,
}

_numbers: dict[str, int] = dict(STANDARD)
_names: dict[int, str] = {number: name for name, number in STANDARD.items()}


def register(levels: Mapping[str, int]) -> None:
    """Add custom levels; fails on a bad name or number, or a clash with an existing level."""
    for name, number in levels.items():
        if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
            raise ValueError(f"level names must be lower-case identifiers, got {name!r}")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 1000:
            raise ValueError(f"level {name!r} needs a number between 1 and 999, got {number!r}")
        known = _numbers.get(name)
        if known is not None and known != number:
            raise ValueError(f"level {name!r} is already registered as {known}")
        owner = _names.get(number)
        if owner is not None and owner != name:
            raise ValueError(f"level number {number} already belongs to {owner!r}")
    for name, number in levels.items():
        _numbers[name] = number
        _names[number] = name


def number_of(level: str | int) -> int:
    """The number of a level given by name or number, for configuration (raises on unknown)."""
    if isinstance(level, bool):
        raise TypeError("a level is a name or an int, not a bool")
    if isinstance(level, int):
        if level < 0:
            raise ValueError(f"level numbers are not negative, got {level}")
        return level
    if isinstance(level, str):
        try:
            return _numbers[level.lower()]
        except KeyError:
            known = ", ".join(sorted(_numbers, key=_numbers.__getitem__))
            raise ValueError(f"unknown level {level!r}; known levels: {known}") from None
    raise TypeError(f"a level is a name or an int, got {type(level).__name__}")


def resolve(level: str | int) -> tuple[int, str]:
    """Number and name for a log call; never raises, because a log call must not.

    An unknown name keeps its own name and is never filtered out (a typo in a custom level
    should be visible, not silently lost); an unregistered number is named ``level<N>``.
    """
    if isinstance(level, str):
        number = _numbers.get(level) or _numbers.get(level.lower())
        if number is None:
            return 1_000, level
        return number, _names[number]
    try:
        number = int(level)
    except (TypeError, ValueError):
        return 1_000, repr(level)
    return number, _names.get(number) or f"level{number}"


_LEVEL_N: Final = re.compile(r"level(\d+)")


def number_in_line(level: object) -> int:
    """The number of a line's ``level`` name, for destinations that translate the line.

    A registered name gives its number, ``level<N>`` (what :func:`resolve` names an
    unregistered number) gives N; anything else (no level, not a name) is info.
    """
    if not isinstance(level, str):
        return INFO
    number, _ = resolve(level)
    if number == 1_000:  # not a registered name: maybe one alog made up for a number
        match = _LEVEL_N.fullmatch(level)
        if match:
            return int(match.group(1))
    return number
