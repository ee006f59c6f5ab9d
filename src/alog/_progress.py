"""Wakes flushes that wait for the writers: in the loop (``aflush``) and in other threads."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import TrioWakeup, Wakeup


class Progress:
    """Writers call :meth:`notify` when they settle events; waiters check their condition."""

    def __init__(self, loop_thread: int) -> None:
        self._loop_thread = loop_thread
        self.condition = threading.Condition()
        self._thread_waiters = 0
        self._loop_waiters: set[Wakeup | TrioWakeup] = set()

    def notify(self) -> None:
        if self._loop_waiters and threading.get_ident() == self._loop_thread:
            for waiter in list(self._loop_waiters):
                waiter.set()
        if self._thread_waiters:
            with self.condition:
                self.condition.notify_all()

    def waited(self) -> bool:
        """Does a flush wait for the writers now (so they should settle without delay)?"""
        return bool(self._loop_waiters or self._thread_waiters)

    def add_loop_waiter(self, waiter: Wakeup | TrioWakeup) -> None:
        self._loop_waiters.add(waiter)

    def remove_loop_waiter(self, waiter: Wakeup | TrioWakeup) -> None:
        self._loop_waiters.discard(waiter)

    def thread_waiting(self, delta: int) -> None:
        """Under ``condition``: one more (+1) or one fewer (-1) thread waits."""
        self._thread_waiters += delta
