"""Storm control: fold repeats of one event past a rate, and keep a sample of a level.

Both run on the caller's thread in the pipeline's intake, after redaction (so the message
a report quotes is the redacted one) and before the processors. What they hold back is
counted as ``filtered``, never as a loss. Neither touches ``warning`` and above unless the
configuration names those levels.

``rate_limit=(10, 1.0)``: at most 10 events with the same logger, level and message per 1 s
window and key, for every level below warning; ``rate_limit={"info": (10, 1.0), "error":
(100, 60.0)}`` per level (naming ``error`` is asking for it). Past the limit, events are
counted, and when the key's window ends one ``alog.suppressed`` event (the key's logger and
level) says how many were folded: at the key's next event, or within a second from the
pipeline's reporter. ``sample={"debug": 0.1}`` keeps a random tenth of ``debug`` events.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias, final

from . import _levels
from ._fields import stamp_now

RateSpec: TypeAlias = "tuple[int, float] | Mapping[str | int, tuple[int, float]]"
SampleSpec: TypeAlias = "float | Mapping[str | int, float]"

MAX_KEYS: Final = 10_000
"""Keys tracked at once; past it, new keys are not limited until idle ones are swept."""


def _rate(spec: object, where: str) -> tuple[int, float]:
    if (
        not isinstance(spec, tuple)
        or len(spec) != 2
        or isinstance(spec[0], bool)
        or not isinstance(spec[0], int)
        or isinstance(spec[1], bool)
        or not isinstance(spec[1], int | float)
    ):
        raise TypeError(f"{where} is (events, seconds) such as (10, 1.0), got {spec!r}")
    count, per = spec
    if count < 1 or not per > 0 or math.isinf(per):
        raise ValueError(f"{where}: events must be >= 1 and seconds positive, got {spec!r}")
    return count, float(per)


def _fraction(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} is a fraction between 0 and 1, got {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"{where} is a fraction between 0 and 1, got {value!r}")
    return float(value)


def _per_level(
    spec: object, check: Callable[[object, str], Any], name: str
) -> tuple[Any, dict[int, Any]]:
    """(the spec for every level below warning, or None; the specs of named levels)."""
    if isinstance(spec, Mapping):
        levels: dict[int, Any] = {}
        for level, value in spec.items():
            levels[_levels.number_of(level)] = check(value, f"{name}[{level!r}]")
        return None, levels
    return check(spec, f"{name}="), {}


@final
class StormControl:
    """The rate limiter and the sampler of one pipeline; :meth:`admit` decides per event."""

    def __init__(
        self,
        *,
        rate_limit: RateSpec | None,
        sample: SampleSpec | None,
        report: Callable[[dict[str, object], int], object],
    ) -> None:
        self._rate_default: tuple[int, float] | None = None
        self._rates: dict[int, tuple[int, float]] = {}
        if rate_limit is not None:
            self._rate_default, self._rates = _per_level(rate_limit, _rate, "rate_limit")
        self._sample_default: float | None = None
        self._samples: dict[int, float] = {}
        if sample is not None:
            self._sample_default, self._samples = _per_level(sample, _fraction, "sample")
        self._report = report
        self._lock = threading.Lock()
        # (logger, levelno, msg) -> [window start, events in it, folded, level name, per, max]
        self._keys: dict[tuple[str, int, str], list[Any]] = {}
        self._random = random.random

    def __bool__(self) -> bool:
        return bool(self._rate_default or self._rates or self._samples) or (
            self._sample_default is not None
        )

    def admit(self, event: dict[str, Any], levelno: int) -> bool:
        """Keep this event? False when sampled out or folded (the caller counts it)."""
        below_warning = levelno < _levels.WARNING
        fraction = self._samples.get(levelno)
        if fraction is None and below_warning:
            fraction = self._sample_default
        if fraction is not None and (fraction == 0 or self._random() >= fraction):
            return False
        rate = self._rates.get(levelno)
        if rate is None:
            if not below_warning or self._rate_default is None:
                return True
            rate = self._rate_default
        msg = event["msg"]
        logger = event["logger"]
        if type(msg) is not str or type(logger) is not str:
            return True
        key = (logger, levelno, msg)
        now = time.monotonic()
        due: tuple[tuple[str, int, str], list[Any]] | None = None
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                if len(self._keys) < MAX_KEYS:
                    self._keys[key] = [now, 1, 0, event["level"], rate[1], rate[0]]
                return True
            if now - state[0] >= state[4]:  # a new window
                if state[2]:
                    due = (key, list(state))
                state[0], state[1], state[2] = now, 1, 0
                admitted = True
            else:
                state[1] += 1
                admitted = state[1] <= state[5]
                if not admitted:
                    state[2] += 1
        if due is not None:
            self._send(*due)
        return admitted

    def sweep(self, *, everything: bool = False) -> int:
        """Report the folds of ended windows and forget idle keys (the loop, once a second).

        ``everything`` (at close): report every fold, ended window or not. Returns the
        number of reports.
        """
        now = time.monotonic()
        due: list[tuple[tuple[str, int, str], list[Any]]] = []
        with self._lock:
            for key, state in list(self._keys.items()):
                if everything or now - state[0] >= state[4]:
                    if state[2]:
                        due.append((key, list(state)))
                    del self._keys[key]
        for key, state in due:
            self._send(key, state)
        return len(due)

    def _send(self, key: tuple[str, int, str], state: list[Any]) -> None:
        logger, levelno, msg = key
        self._report(
            {
                "time": stamp_now(),
                "level": state[3],
                "logger": logger,
                "msg": "alog.suppressed",
                "suppressed": state[2],
                "message": msg,
                "max": state[5],
                "per_seconds": state[4],
            },
            levelno,
        )
