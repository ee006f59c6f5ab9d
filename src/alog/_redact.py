"""Redaction: key paths compiled once, applied to each event on the caller's thread.

A path is dotted keys from the top of the event: ``password``, ``headers.authorization``,
``*.token`` (``*`` is exactly one key), ``**.secret`` (``**`` is any number of keys, none
included, so depth is never a limit). Keys match case-insensitively; lists and tuples are
transparent (a path through one applies to every item). The four core keys at the top
(``time``, ``level``, ``logger``, ``msg``) are never redacted.

The paths compile into an automaton whose states are built lazily, one per set of pattern
positions, each with a memo from a key as written to what it leads to: an event key costs
one dict lookup once its spelling has been seen.

Once a value is redacted from an event, every other text in the same event (the message,
the exception's message and notes, an ``alog.error`` marker, other string fields) is
searched for it and the occurrences replaced by the censor: an exception raised with the
password in its message does not give it away. Only values of at least
:data:`MIN_SCRUB_LENGTH` characters are searched for (a ``True`` or a ``1`` would erase
every digit of the line).

Nested dicts and lists are copied before they are changed: the caller's objects are never
modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, final

from . import _state
from ._fields import CORE_KEYS

MIN_SCRUB_LENGTH: Final = 4
"""Redacted values shorter than this (as text) are not searched for in the event's texts."""

_MEMO_LIMIT: Final = 4096
"""Spellings remembered per state; past it (keys made of data), transitions are computed."""
_MAX_DEPTH: Final = 64
"""A container a path still reaches past this depth (a cycle, a hostile value) is censored
whole rather than descended into: depth never lets a value through."""

_REMOVE: Final = object()

# Tuples, not `a | b` unions: a union in isinstance() is built anew on each call (~100 ns).
_CONTAINERS: Final = (dict, list, tuple)
_SEQUENCES: Final = (list, tuple)
_COLLECTIONS: Final = (list, tuple, set, frozenset)
_BYTES: Final = (bytes, bytearray)
_NUMBERS: Final = (int, float)

_State = tuple[int, int]  # (pattern index, position in the pattern)


def _check(path: object) -> tuple[str, ...]:
    if not isinstance(path, str):
        raise TypeError(f"a redaction path is a str such as 'headers.authorization', got {path!r}")
    segments = tuple(path.split("."))
    if not path or any(not segment for segment in segments):
        raise ValueError(f"redaction path {path!r} has an empty key (paths are 'a.b.c')")
    for segment in segments:
        if segment not in ("*", "**") and "*" in segment:
            raise ValueError(
                f"redaction path {path!r}: '*' stands for a whole key ('a.*.b'), not part of one"
            )
    if segments[-1] == "**":
        raise ValueError(
            f"redaction path {path!r} ends with '**', which would match every key below its "
            f"parent: name the parent instead ({'.'.join(segments[:-1]) or 'a key'!r})"
        )
    if len(segments) == 1 and segments[0] in CORE_KEYS:
        raise ValueError(f"redaction path {path!r}: the core key {path!r} is never redacted")
    return tuple(segment.lower() for segment in segments)


@final
class _Node:
    """One state of the automaton: a set of positions in the patterns."""

    __slots__ = ("_owner", "_states", "memo", "wild")

    def __init__(self, owner: Redaction, states: frozenset[_State]) -> None:
        self._owner = owner
        self._states = states
        self.memo: dict[str, tuple[object, _Node | None]] = {}
        # A state on '*' or '**' makes every key interesting; without one, only listed keys.
        self.wild = any(owner.patterns[p][i] in ("*", "**") for p, i in states)

    def step(self, key: str) -> tuple[object, _Node | None]:
        """(the action if ``key`` is redacted here or None, the node below ``key``)."""
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        owner = self._owner
        lowered = key.lower()
        following: set[_State] = set()
        action: object = None
        action_pattern = len(owner.patterns)  # the first rule listed wins
        for p, i in self._states:
            segment = owner.patterns[p][i]
            if segment == "**":
                following.add((p, i))
            if segment in ("*", "**") or segment == lowered:
                if i + 1 == len(owner.patterns[p]):
                    if p < action_pattern:
                        action, action_pattern = owner.actions[p], p
                else:
                    following.add((p, i + 1))
        result = (action, owner.node(following) if following and action is None else None)
        if len(self.memo) < _MEMO_LIMIT:
            self.memo[key] = result
        return result


@final
class Redaction:
    """Compiled redaction rules; :meth:`apply` redacts one event."""

    def __init__(self, rules: Iterable[tuple[Iterable[str], object, bool]]) -> None:
        self.patterns: list[tuple[str, ...]] = []
        self.actions: list[object] = []
        self.texts: list[str] = []
        for paths, censor, remove in rules:
            if isinstance(paths, str):
                raise TypeError(f"redact= is a list of paths, got the string {paths!r}")
            for path in paths:
                self.patterns.append(_check(path))
                self.texts.append(path)
                # A censor is boxed: None stays free to mean "not redacted here".
                self.actions.append(_REMOVE if remove else (censor,))
        self._nodes: dict[frozenset[_State], _Node] = {}
        self._plans: dict[tuple[Any, ...], tuple[tuple[str, object, _Node | None], ...]] = {}
        self.root = self.node({(p, 0) for p in range(len(self.patterns))})
        self.scrub_with = next(
            (a[0] for a in self.actions if isinstance(a, tuple) and isinstance(a[0], str)),
            "[redacted]",
        )

    def rules(self) -> list[tuple[str, object]]:
        """Each path as written, with its action (a boxed censor value, or removal)."""
        return list(zip(self.texts, self.actions, strict=True))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"<alog redaction of {self.texts!r}>"

    def node(self, states: Iterable[_State]) -> _Node:
        closed = set(states)
        todo = list(closed)
        while todo:  # '**' also matches no key at all: its next position is live too
            p, i = todo.pop()
            if self.patterns[p][i] == "**" and (p, i + 1) not in closed:
                closed.add((p, i + 1))
                todo.append((p, i + 1))
        key = frozenset(closed)
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes.setdefault(key, _Node(self, key))
        return node

    def _plan(self, shape: tuple[Any, ...]) -> tuple[tuple[str, object, _Node | None], ...]:
        step = self.root.step
        plan = []
        # alog builds every event with its four core keys first: they are never redacted.
        for key in shape[4:]:
            if type(key) is str:
                action, below = step(key)
                if action is not None or below is not None:
                    plan.append((key, action, below))
        frozen = tuple(plan)
        if len(self._plans) < _MEMO_LIMIT:
            self._plans[shape] = frozen
        return frozen

    def apply(self, event: dict[str, Any], found: list[str] | None = None) -> list[str] | None:
        """Redact ``event`` (a dict alog built: changed in place); what was redacted, as text.

        ``found`` carries the texts of an earlier pass (before the processors) into this one,
        so its scrubbing covers what the processors added. None when nothing was redacted.
        """
        # Events from one call site share their keys: the plan for a shape of event (which
        # keys are redacted, which lead further down) is made once, from a tuple of its keys.
        shape = tuple(event)
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plan(shape)
        texts = found  # made at the first change: most events have none
        for key, action, below in plan:
            value = event[key]
            if action is None:  # a key that leads further down: only a container does
                if not isinstance(value, _CONTAINERS):
                    continue
                if texts is None:
                    texts = []
                assert below is not None
                event[key] = _descend(value, below, texts, 1)
                continue
            if texts is None:
                texts = []
            kind = type(value)
            if kind is str:  # the usual values, without a call (_collect's answer for them)
                texts.append(value)
            elif kind is int or kind is float:
                texts.append(str(value))
            else:
                _collect(value, texts, 0)
            if action is _REMOVE:
                del event[key]
            else:
                event[key] = action[0]  # type: ignore[index]
        if not texts:
            return None
        secrets = []
        for text in texts:  # a loop, not a comprehension: one frame less per event (3.11)
            if len(text) >= MIN_SCRUB_LENGTH:
                secrets.append(text)  # noqa: PERF401 - see the loop's comment
        if secrets:
            if len(secrets) > 1:  # the longest first: a secret inside another is not cut in two
                secrets.sort(key=len, reverse=True)
            censor = self.scrub_with
            changed: list[tuple[str, object]] = []
            for key, value in event.items():
                if type(value) is str:
                    for secret in secrets:
                        if secret in value:
                            value = value.replace(secret, censor)
                            changed.append((key, value))
                elif isinstance(value, _CONTAINERS):
                    new = _scrub(value, secrets, censor, 1)
                    if new is not value:
                        changed.append((key, new))
            event.update(changed)
        return texts


def _descend(value: object, node: _Node, texts: list[str], depth: int) -> object:
    """``value`` with the paths below ``node`` redacted: a copy if anything changed."""
    if depth > _MAX_DEPTH:
        # Fail closed: what a live path could still reach below here is never written.
        return node._owner.scrub_with if isinstance(value, _CONTAINERS) else value
    if isinstance(value, _SEQUENCES):
        items = [_descend(item, node, texts, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if not isinstance(value, dict):
        return value
    copy: dict[Any, object] | None = None
    for key, item in value.items():
        if type(key) is not str:
            continue
        action, below = node.step(key)
        if action is None:
            if below is None or not isinstance(item, _CONTAINERS):
                continue
            new = _descend(item, below, texts, depth + 1)
            if new is item:
                continue
            if copy is None:
                copy = dict(value)
            copy[key] = new
            continue
        _collect(item, texts, 0)
        if copy is None:
            copy = dict(value)
        if action is _REMOVE:
            del copy[key]
        else:
            copy[key] = action[0]  # type: ignore[index]
    return value if copy is None else copy


def _collect(value: object, texts: list[str], depth: int) -> None:
    """The texts a redacted value could be written as, to search the event's texts for."""
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, _BYTES):
        texts.append(value.decode("utf-8", "replace"))
    elif isinstance(value, _NUMBERS) and not isinstance(value, bool):
        texts.append(str(value))
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            for item in value.values():
                _collect(item, texts, depth + 1)
        elif isinstance(value, _COLLECTIONS):
            for item in value:
                _collect(item, texts, depth + 1)


def _scrub(value: object, secrets: list[str], censor: str, depth: int) -> object:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, censor)
        return value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        copy: dict[Any, object] | None = None
        for key, item in value.items():
            new = _scrub(item, secrets, censor, depth + 1)
            if new is not item:
                if copy is None:
                    copy = dict(value)
                copy[key] = new
        return value if copy is None else copy
    if isinstance(value, _SEQUENCES):
        items = [_scrub(item, secrets, censor, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def compile_redaction(
    redact: Iterable[str] | None,
    *,
    censor: object = "[redacted]",
    remove: bool = False,
    base: Redaction | None = None,
) -> Redaction | None:
    """Check and compile ``redact=`` (with the process-wide rules of ``base`` after it)."""
    if not isinstance(remove, bool):
        raise TypeError(f"remove= must be True or False, got {remove!r}")
    if redact is None:
        redact = ()
    elif isinstance(redact, str) or not isinstance(redact, Iterable):
        raise TypeError(f"redact= is a list of key paths such as ['password'], got {redact!r}")
    rules: list[tuple[Iterable[str], object, bool]] = [(list(redact), censor, remove)]
    if base is not None:
        rules.extend(
            ([text], None if action is _REMOVE else action[0], action is _REMOVE)  # type: ignore[index]
            for text, action in base.rules()
        )
    redaction = Redaction(rules)
    return redaction if redaction else None


def redact_outside(event: dict[str, Any]) -> list[str] | None:
    """Apply the redaction in force to an event built outside a pipeline's intake."""
    redaction = _state.redaction
    return None if redaction is None else redaction.apply(event)


def set_redaction(
    redact: Iterable[str] | None, *, censor: object = "[redacted]", remove: bool = False
) -> None:
    """Redact these key paths everywhere in this process, pipeline or not.

    Outside a pipeline (the stdlib fallback, ``alog.testing.capture_logs()``, the stdlib
    bridge's stderr) they apply at once; every pipeline started afterwards applies them too,
    after its own ``redact=``. A running pipeline keeps the rules it started with.
    ``set_redaction(None)`` clears them. Bad paths raise ``ValueError`` here.
    """
    compiled = compile_redaction(redact, censor=censor, remove=remove)
    _state.process_redaction = compiled
    if _state.pipeline is None:
        _state.redaction = compiled
