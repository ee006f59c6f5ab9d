"""EventQueue on its own: built directly, driven from this thread (the "loop") and from others.

No pipeline and no event loop: ``loop_thread`` is the test's own thread, and the wake-ups are
recorders. Every read is checked line by line against the sequence numbers the chunks carry.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from alog._queue import Chunk, EventQueue
from alog.typing import Overflow

Side = Literal["loop", "thread"]
SIDES: tuple[Side, ...] = ("loop", "thread")
OVERFLOWS: tuple[Overflow, ...] = ("drop_newest", "drop_oldest")
INFO = 20


class Wakes:
    """Records the queue's two wake-ups."""

    def __init__(self) -> None:
        self.loop = 0
        self.threadsafe = 0

    def wake(self) -> None:
        self.loop += 1

    def wake_threadsafe(self) -> None:
        self.threadsafe += 1


def make_queue(
    wakes: Wakes | None = None,
    *,
    max_events: int = 100_000,
    max_bytes: int = 1 << 24,
    max_event_bytes: int = 4096,
    overflow: Overflow = "drop_newest",
    readers: int = 1,
    track_levels: bool = False,
    run_on_loop: Callable[[Callable[[], None]], object] | None = None,
) -> EventQueue:
    wakes = wakes or Wakes()
    return EventQueue(
        max_events=max_events,
        max_bytes=max_bytes,
        max_event_bytes=max_event_bytes,
        overflow=overflow,
        readers=readers,
        track_levels=track_levels,
        loop_thread=threading.get_ident(),
        wake=wakes.wake,
        wake_threadsafe=wakes.wake_threadsafe,
        run_on_loop=run_on_loop,
    )


def event(i: int, *, source: str = "loop", pad: int = 0, **fields: object) -> dict[str, object]:
    return {
        "time": "2024-01-01T00:00:00.000000Z",
        "level": "info",
        "logger": "test",
        "msg": "m",
        "i": i,
        "source": source,
        "pad": "p" * pad,
        **fields,
    }


def line_size(i: int, *, pad: int = 0) -> int:
    """Bytes one ``event(i, pad=pad)`` takes in the queue, newline included."""
    return len(json.dumps(event(i, source="thread", pad=pad), separators=(",", ":"))) + 1


def in_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in another thread and re-raise whatever it raised (BaseException too)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the thread did not finish"
    if raised:
        raise raised[0]


def put_all(queue: EventQueue, side: Side, events: Sequence[dict[str, object]]) -> None:
    """Put ``events`` in order, from the loop's thread or from one other thread."""

    def work() -> None:
        for item in events:
            queue.put(item, INFO)

    if side == "loop":
        work()
    else:
        in_thread(work)


@dataclass
class Read:
    """One ``read``: its events as (sequence number, parsed line), and the seq after them."""

    chunks: list[Chunk]
    upto: int
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.events]

    def values(self, key: str) -> list[Any]:
        return [item.get(key) for _, item in self.events]

    def gap(self, position: int) -> int:
        """Events missing between ``position`` and ``upto``: evicted before this read."""
        missing = 0
        for chunk in self.chunks:
            missing += chunk.start - position
            position = chunk.end
        return missing + self.upto - position


def read(queue: EventQueue, reader: int = 0, *, at_most_once: bool = False) -> Read:
    """Read until caught up (or once), checking every chunk: whole JSON lines, in seq order."""
    chunks: list[Chunk] = []
    while True:
        more, upto = queue.read(reader)
        chunks += more
        if at_most_once or upto >= queue.last_seq():
            break
    result = Read(chunks, upto)
    previous_end = -1
    for chunk in chunks:
        assert chunk.start >= previous_end
        previous_end = chunk.end
        data = bytes(chunk.data)
        assert data.endswith(b"\n") or not data
        lines = data.split(b"\n")[:-1]
        assert len(lines) == chunk.events
        for offset, line in enumerate(lines):
            parsed = json.loads(line)
            assert isinstance(parsed, dict)
            result.events.append((chunk.start + offset, parsed))
    assert previous_end <= upto
    return result


@contextmanager
def fast_thread_switches() -> Iterator[None]:
    """Switch threads as often as CPython allows, so races show within a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class RunsWhenRepresented:
    """A value whose ``__repr__`` runs ``action``: msgspec calls it mid-encode."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action

    def __repr__(self) -> str:
        self.action()
        return "<ran when represented>"


def logs_when_represented(
    queue: EventQueue, inner: Sequence[dict[str, object]]
) -> RunsWhenRepresented:
    """A value whose ``__repr__`` logs ``inner`` into ``queue``: a put inside a put."""

    def log() -> None:
        for item in inner:
            queue.put(item, INFO)  # on whichever thread is encoding the outer event

    return RunsWhenRepresented(log)


class InterruptedRepr:
    """A value whose ``__repr__`` is cut short by Ctrl-C, after ``calls`` that went through."""

    def __init__(self, calls: int = 0) -> None:
        self.calls = calls

    def __repr__(self) -> str:
        if self.calls <= 0:
            raise KeyboardInterrupt
        self.calls -= 1
        return "<not yet>"


# -- put and read ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("count", [1, 7, 5000])
def test_put_then_read_gives_the_lines_in_order_with_sequence_numbers(
    side: Side, count: int
) -> None:
    """Sequence numbers are how writers count losses: they must follow the puts exactly."""
    queue = make_queue(max_events=8000)  # chunks of 1000 events: 5000 spans several
    put_all(queue, side, [event(i, source=side) for i in range(count)])
    result = read(queue)
    assert result.seqs == list(range(count))
    assert result.values("i") == list(range(count))
    assert result.upto == count
    assert queue.statistics().entered == count


def test_loop_and_thread_puts_interleave_without_losing_or_reordering_either() -> None:
    """Each side's own events stay in their order, and every event gets exactly one seq."""
    queue = make_queue(max_events=1000)
    for round_ in range(20):
        put_all(queue, "loop", [event(round_ * 10 + i, source="loop") for i in range(10)])
        put_all(queue, "thread", [event(round_ * 10 + i, source="thread") for i in range(10)])
    result = read(queue)
    assert result.seqs == list(range(400))
    for side in SIDES:
        mine = [item["i"] for _, item in result.events if item["source"] == side]
        assert mine == list(range(200))


def test_a_threads_put_does_not_wait_for_a_lock_another_thread_holds() -> None:
    """Eight threads logging at once reached a quarter of one thread's rate: each waited
    for the queue's lock while its owner waited for the GIL. A thread that finds the lock
    taken appends its line without it (while the caps are far), and its later lines follow
    it there, so its own order holds; the loop's next put seals them before its own line."""
    queue = make_queue(max_events=1000)
    put_all(queue, "loop", [event(0, source="loop")])
    queue._lock.acquire()  # another thread's put, say, holds it
    try:
        started = time.monotonic()
        put_all(queue, "thread", [event(i, source="thread") for i in range(100)])
        took = time.monotonic() - started
    finally:
        queue._lock.release()
    assert took < 0.5, f"100 puts took {took:.2f} s (each waited for the lock)"
    put_all(queue, "thread", [event(i, source="thread") for i in range(100, 200)])
    put_all(queue, "loop", [event(1, source="loop")])  # after the thread's calls returned
    result = read(queue)
    assert result.seqs == list(range(202))
    assert [item["i"] for _, item in result.events if item["source"] == "thread"] == list(
        range(200)
    )
    assert [item["source"] for _, item in result.events][-1] == "loop"
    assert queue.statistics().entered == 202


def test_a_flush_from_a_thread_takes_the_lines_a_thread_put_without_the_lock() -> None:
    """With the loop gone (a flush at exit from another thread), the lines put without
    the lock are read too: only the loop's own open chunk waits for the loop."""
    queue = make_queue(max_events=1000)
    queue._lock.acquire()
    try:
        put_all(queue, "thread", [event(i, source="thread") for i in range(10)])
    finally:
        queue._lock.release()
    got: list[tuple[list[Chunk], int]] = []
    in_thread(lambda: got.append(queue.read_from_thread(0)))
    chunks, upto = got[0]
    assert upto == 10
    assert [json.loads(line)["i"] for c in chunks for line in bytes(c.data).splitlines()] == list(
        range(10)
    )


def test_near_the_caps_a_thread_takes_the_lock_and_still_follows_its_own_lines() -> None:
    """Without the lock a thread only appends while 64 more such events fit: near the caps
    it takes the lock (evicting or refusing as the policy says). Its lines still waiting
    from the unlocked path go first."""
    queue = make_queue(max_events=100)  # unlocked while fewer than 36 are held
    queue._lock.acquire()
    try:
        put_all(queue, "thread", [event(i, source="thread") for i in range(30)])
    finally:
        queue._lock.release()
    put_all(queue, "thread", [event(i, source="thread") for i in range(30, 80)])
    result = read(queue)
    assert result.values("i") == list(range(80))
    assert queue.statistics().held == 80


@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_threads_putting_while_the_queue_closes_leave_nothing_unsealed(
    overflow: Overflow,
) -> None:
    """A line appended without the lock just as the loop closes the queue could miss the
    close's last seal, with nothing to seal it after: counted as entered, never written.
    Such a line is taken back and counted as refused, so every put is either sealed before
    the last sequence number or refused."""
    with fast_thread_switches():
        for _ in range(20):
            queue = make_queue(max_events=100_000, overflow=overflow)
            start = threading.Barrier(5)

            def work(queue: EventQueue = queue, start: threading.Barrier = start) -> None:
                start.wait()
                for i in range(500):
                    queue.put(event(i, source="thread"), INFO)

            threads = [threading.Thread(target=work) for _ in range(4)]
            for thread in threads:
                thread.start()
            start.wait()
            time.sleep(0.002)
            last = queue.close()
            for thread in threads:
                thread.join(30)
            stats = queue.statistics()
            assert stats.entered + stats.rejected == 2000
            assert queue.entered() == queue.last_seq() == last, "lines left unsealed"


# -- caps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """Which cap a burst runs into: many small events, or fewer padded ones."""

    max_events: int
    max_bytes: int
    max_event_bytes: int
    pad: int

    def queue(self, overflow: Overflow) -> EventQueue:
        return make_queue(
            max_events=self.max_events,
            max_bytes=self.max_bytes,
            max_event_bytes=self.max_event_bytes,
            overflow=overflow,
        )

    @property
    def one_event(self) -> int:
        """The most bytes one of this burst's events takes."""
        return line_size(999_999, pad=self.pad)


CAPS = {
    "events": Cap(max_events=100, max_bytes=1 << 24, max_event_bytes=4096, pad=0),
    "bytes": Cap(max_events=100_000, max_bytes=20_000, max_event_bytes=1024, pad=150),
}


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("cap", sorted(CAPS))
@pytest.mark.parametrize("side", SIDES)
def test_caps_hold_after_every_put(side: Side, cap: str, overflow: Overflow) -> None:
    """Memory stays bounded whoever logs: at most one event past either cap, at any moment."""
    queue = CAPS[cap].queue(overflow)
    pad, one_event = CAPS[cap].pad, CAPS[cap].one_event
    total = 2000

    def work() -> None:
        for i in range(total):
            queue.put(event(i, source=side, pad=pad), INFO)
            stats = queue.statistics()
            assert stats.held <= queue.max_events + 1
            assert stats.held_bytes <= queue.max_bytes + one_event

    if side == "loop":
        work()
    else:
        in_thread(work)
    stats = queue.statistics()
    assert stats.entered + stats.rejected == total
    assert stats.entered - stats.evicted == stats.held
    assert stats.peak_held <= queue.max_events + 1
    assert stats.peak_held_bytes <= queue.max_bytes + one_event


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_caps_hold_with_the_loop_and_several_threads_putting_at_once(cap: str) -> None:
    """The loop's unlocked open chunk and the threads' locked one share the same caps."""
    queue = CAPS[cap].queue("drop_oldest")
    pad, one_event = CAPS[cap].pad, CAPS[cap].one_event
    start = threading.Barrier(5)
    seen: list[tuple[int, int]] = []

    def work() -> None:
        start.wait()
        for i in range(2000):
            queue.put(event(i, source="thread", pad=pad), INFO)

    threads = [threading.Thread(target=work) for _ in range(4)]
    with fast_thread_switches():
        for thread in threads:
            thread.start()
        start.wait()
        for i in range(2000):
            queue.put(event(i, pad=pad), INFO)
            if i % 50 == 0:
                stats = queue.statistics()  # never a thread's seal counted twice
                seen.append((stats.held, stats.held_bytes))
        for thread in threads:
            thread.join(30)
    stats = queue.statistics()
    seen.append((stats.held, stats.held_bytes))
    assert stats.entered + stats.rejected == 10_000
    assert max(held for held, _ in seen) <= queue.max_events + 1
    assert max(held_bytes for _, held_bytes in seen) <= queue.max_bytes + one_event


@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_statistics_never_count_a_threads_seal_twice(overflow: Overflow) -> None:
    """Read while another thread seals and evicts: held bytes stay within the cap."""
    queue = make_queue(max_bytes=64 * 1024, max_event_bytes=8192, overflow=overflow)
    pad = 4000
    done = threading.Event()

    def flood() -> None:
        for i in range(20_000):
            queue.put(event(i, source="thread", pad=pad), INFO)
        done.set()

    seen = 0
    thread = threading.Thread(target=flood)
    with fast_thread_switches():
        thread.start()
        while not done.is_set():
            seen = max(seen, queue.statistics().held_bytes)
        thread.join(30)
    assert seen <= queue.max_bytes + line_size(999_999, pad=pad)


def test_the_event_cap_holds_for_puts_made_inside_a_put() -> None:
    """A value whose repr logs in a loop must not grow the queue past max_events."""
    queue = make_queue(max_events=16)
    queue.put(event(0, value=logs_when_represented(queue, [event(i) for i in range(100)])), INFO)
    stats = queue.statistics()
    assert stats.held <= queue.max_events + 1
    assert stats.entered + stats.rejected == 101


# -- overflow policies ----------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_drop_newest_keeps_the_first_events_and_counts_the_rest_rejected(side: Side) -> None:
    """drop_newest never touches what is queued: the refused events are the ones counted."""
    queue = make_queue(max_events=100, overflow="drop_newest")
    put_all(queue, side, [event(i, source=side) for i in range(250)])
    stats = queue.statistics()
    assert (stats.entered, stats.held, stats.rejected, stats.evicted) == (100, 100, 150, 0)
    result = read(queue)
    assert result.values("i") == list(range(100))
    assert result.gap(0) == 0


def test_a_full_queue_refuses_the_loops_puts_without_the_lock() -> None:
    """Once a put was refused for want of room, the loop's next ones are refused without
    taking the lock while nothing changed: in a stall every call is refused, and the locked
    check cost four times an accepted put. Counted exactly as the locked refusal counts."""
    queue = make_queue(max_events=100, overflow="drop_newest")
    put_all(queue, "loop", [event(i) for i in range(101)])  # the 101st is refused, locked
    assert queue.statistics().rejected == 1
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with queue._lock:
            held.set()
            release.wait(5.0)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(5.0)
        started = time.monotonic()
        put_all(queue, "loop", [event(i) for i in range(101, 201)])
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert elapsed < 1.0  # with the lock needed, each put waits for the holder (5 s)
    stats = queue.statistics()
    assert (stats.entered, stats.rejected) == (100, 101)
    assert queue.first_loss > 0
    assert read(queue).values("i") == list(range(100))


@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_a_refusing_queue_takes_events_again_as_soon_as_room_is_freed(overflow: Overflow) -> None:
    """A reader's ``done`` (or any section, seal or eviction) ends the unlocked refusals:
    the next put sees the room and is accepted."""
    queue = make_queue(max_events=8, overflow=overflow)
    queue.put(event(0), INFO)
    first = queue.read(0)  # in flight: drop_oldest cannot evict it either
    put_all(queue, "loop", [event(i) for i in range(1, 40)])
    before = queue.statistics()
    assert before.rejected + before.evicted > 0
    queue.done(0, first[1])
    result = read(queue)
    queue.done(0, result.upto)
    queue.put(event(99), INFO)
    after = queue.statistics()
    assert after.entered == before.entered + 1
    assert after.rejected == before.rejected
    assert read(queue).values("i") == [99]


def test_any_section_seal_or_eviction_ends_the_unlocked_refusals() -> None:
    """What could make room (every section, seal and eviction) is counted; the loop's next
    put after one looks under the lock again, and a refusal there starts them over."""
    queue = make_queue(max_events=100, overflow="drop_newest")
    put_all(queue, "loop", [event(i) for i in range(101)])
    assert queue._full_at == queue._room_gen  # refusing without the lock from now on
    queue.seal()
    assert queue._full_at != queue._room_gen
    queue.put(event(300), INFO)  # refused under the lock, which starts them again
    assert queue._full_at == queue._room_gen
    assert queue.statistics().rejected == 2


@pytest.mark.parametrize("side", SIDES)
def test_drop_oldest_evicts_from_the_front_and_keeps_the_newest(side: Side) -> None:
    """drop_oldest keeps the most recent events: a contiguous tail ending with the last put."""
    queue = make_queue(max_events=100, overflow="drop_oldest")
    put_all(queue, side, [event(i, source=side) for i in range(1000)])
    stats = queue.statistics()
    assert stats.rejected == 0
    assert stats.evicted + stats.held == 1000
    result = read(queue)
    numbers = result.values("i")
    assert numbers[-1] == 999
    assert numbers == list(range(1000 - len(numbers), 1000))
    assert result.seqs == numbers  # nothing put out of turn: seq and i agree
    assert result.gap(0) == stats.evicted


OTHER_SIDE = [
    pytest.param("thread", "loop", id="loop-events-into-thread-events"),
    pytest.param("loop", "thread", id="thread-events-into-loop-events"),
]


@pytest.mark.parametrize("cap", sorted(CAPS))
@pytest.mark.parametrize(("filler", "newcomer"), OTHER_SIDE)
def test_drop_oldest_evicts_the_other_sides_events_to_take_new_ones(
    filler: Side, newcomer: Side, cap: str
) -> None:
    """A queue full of one side's events still takes the other side's newest, oldest out first."""
    queue = CAPS[cap].queue("drop_oldest")
    pad, one_event = CAPS[cap].pad, CAPS[cap].one_event
    put_all(queue, filler, [event(i, source=filler, pad=pad) for i in range(1000)])
    before = queue.statistics()
    put_all(queue, newcomer, [event(i, source=newcomer, pad=pad) for i in range(30)])
    after = queue.statistics()
    assert after.rejected == 0
    assert after.evicted > before.evicted
    assert after.held <= queue.max_events + 1
    assert after.held_bytes <= queue.max_bytes + one_event
    result = read(queue)
    assert [item["i"] for _, item in result.events if item["source"] == newcomer] == list(range(30))
    kept = [item["i"] for _, item in result.events if item["source"] == filler]
    assert kept == list(range(1000 - len(kept), 1000)), "the oldest go first"


def test_a_thread_flood_asks_the_loop_to_seal_and_then_evicts_its_older_events_first() -> None:
    """Loop events older than a thread's flood go first, though sealed after it began."""
    asked: list[Callable[[], None]] = []
    queue = make_queue(max_events=80, overflow="drop_oldest", run_on_loop=asked.append)
    put_all(queue, "loop", [event(i, source="loop") for i in range(5)])
    put_all(queue, "thread", [event(i, source="thread") for i in range(100)])
    assert len(asked) == 1, "asked once, not per event"
    asked.pop()()  # the loop runs the request between two callbacks
    put_all(queue, "thread", [event(i, source="thread") for i in range(100, 200)])
    assert not asked, "nothing open on the loop: nothing to ask"
    result = read(queue)
    assert result.values("source").count("loop") == 0, "the oldest events were evicted first"
    kept = [item["i"] for _, item in result.events]
    assert kept == list(range(200 - len(kept), 200))
    stats = queue.statistics()
    assert stats.entered == stats.evicted + len(kept) == 205


def test_a_seal_asked_for_while_the_loop_is_inside_a_put_waits_for_the_next_one() -> None:
    """The loop seals only outside its own sections: a request met inside one is skipped."""
    asked: list[Callable[[], None]] = []
    queue = make_queue(max_events=80, overflow="drop_oldest", run_on_loop=asked.append)
    put_all(queue, "loop", [event(0, source="loop")])
    put_all(queue, "thread", [event(i, source="thread") for i in range(100)])
    request = asked.pop()
    seen: list[tuple[int, int]] = []

    def run_request_mid_put() -> None:
        before = queue.entered() - queue.last_seq()  # events not yet sealed
        request()
        seen.append((before, queue.entered() - queue.last_seq()))

    queue.put(event(1, source="loop"), INFO)  # seals the threads' lines first, then opens
    queue.put(event(2, source="loop", value=RunsWhenRepresented(run_request_mid_put)), INFO)
    assert seen == [(1, 1)], "the open chunk (event 1) was not sealed under the put"
    result = read(queue)
    assert [item["i"] for _, item in result.events if item["source"] == "loop"][-2:] == [1, 2]


@pytest.mark.parametrize(
    ("filler", "newcomer"),
    [
        OTHER_SIDE[0],
        pytest.param(
            *OTHER_SIDE[1].values,
            id=OTHER_SIDE[1].id,
        ),
    ],
)
def test_drop_oldest_takes_a_new_event_when_events_are_large_next_to_max_bytes(
    filler: Side, newcomer: Side
) -> None:
    """max_event_bytes may equal max_bytes: drop_oldest must still take the newest event."""
    queue = make_queue(overflow="drop_oldest", max_bytes=4096, max_event_bytes=4096)
    put_all(queue, filler, [event(0, source=filler, pad=2500)])
    put_all(queue, newcomer, [event(1, source=newcomer, pad=2500)])
    stats = queue.statistics()
    assert stats.rejected == 0
    assert stats.held_bytes <= queue.max_bytes + line_size(1, pad=2500)
    assert newcomer in read(queue).values("source")  # seqs follow the seals, not the puts


@pytest.mark.parametrize("side", SIDES)
def test_a_chunk_in_flight_is_never_evicted(side: Side) -> None:
    """A writer is sending those bytes: evicting them would count a loss that did not happen."""
    queue = make_queue(max_events=80, overflow="drop_oldest")
    put_all(queue, side, [event(i, source=side) for i in range(40)])
    in_flight = read(queue)
    assert in_flight.values("i") == list(range(40))
    put_all(queue, side, [event(i, source=side) for i in range(40, 1000)])
    stats = queue.statistics()
    assert stats.evicted > 0
    assert stats.held <= queue.max_events + 1
    held_before_done = stats.held
    queue.done(0, in_flight.upto)
    assert queue.statistics().held == held_before_done - 40, "the 40 were still held"
    rest = read(queue)
    assert rest.seqs[0] >= in_flight.upto
    assert rest.values("i")[-1] == 999
    assert rest.gap(in_flight.upto) == stats.evicted


@pytest.mark.parametrize("side", SIDES)
def test_a_queue_full_of_chunks_in_flight_refuses_even_under_drop_oldest(side: Side) -> None:
    """With nothing evictable the new event is refused, and counted, rather than over the cap."""
    queue = make_queue(max_events=80, overflow="drop_oldest")
    put_all(queue, side, [event(i, source=side) for i in range(80)])
    in_flight = read(queue)
    put_all(queue, side, [event(i, source=side) for i in range(80, 90)])
    stats = queue.statistics()
    assert (stats.held, stats.evicted, stats.rejected) == (80, 0, 10)
    queue.done(0, in_flight.upto)
    assert read(queue).events == []


# -- several readers ------------------------------------------------------------------------


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("lagging", [0, 1])
@pytest.mark.parametrize("stall", ["never reads", "stuck with a batch in flight"])
def test_a_reader_past_its_share_loses_its_oldest_unread_chunks_and_sees_the_gap(
    stall: str, lagging: int, overflow: Overflow
) -> None:
    """A stalled destination loses its own backlog; the destination keeping up loses nothing."""
    queue = make_queue(readers=2, max_bytes=16_000, max_event_bytes=1024, overflow=overflow)
    keeping_up = 1 - lagging
    seen: list[int] = []
    in_flight = Read([], 0)
    for batch in range(100):
        put_all(queue, "loop", [event(batch * 10 + i, pad=100) for i in range(10)])
        if batch == 60 and stall == "stuck with a batch in flight":
            in_flight = read(queue, lagging, at_most_once=True)
        result = read(queue, keeping_up)
        seen += result.values("i")
        queue.done(keeping_up, result.upto)
    stats = queue.statistics()
    assert seen == list(range(1000)), "the reader that keeps up loses nothing"
    assert stats.rejected == 0
    assert stats.evicted > 0
    assert stats.held_bytes <= queue.max_bytes + line_size(0, pad=100)
    queue.done(lagging, in_flight.upto)  # its stuck batch is written at last
    late = read(queue, lagging)
    numbers = late.values("i")
    assert numbers[-1] == 999
    assert numbers == list(range(1000 - len(numbers), 1000)), "its oldest went first"
    assert in_flight.gap(0) + late.gap(in_flight.upto) == stats.evicted, "it sees every loss"
    assert len(in_flight.events) + stats.evicted + len(numbers) == 1000


@pytest.mark.parametrize("readers", [2, 4])
def test_a_read_takes_at_most_the_readers_share_and_the_next_goes_on_from_there(
    readers: int,
) -> None:
    """What one read puts in flight cannot be evicted: capping it keeps the rest evictable."""
    queue = make_queue(readers=readers, max_bytes=16_000, max_event_bytes=1024)
    put_all(queue, "loop", [event(i, pad=100) for i in range(70)])
    first = read(queue, 0, at_most_once=True)
    assert sum(len(chunk.data) for chunk in first.chunks) <= queue.max_bytes // readers
    assert first.upto < queue.last_seq()
    assert first.gap(0) == 0
    rest = read(queue, 0)
    assert first.seqs + rest.seqs == list(range(70))
    assert rest.gap(first.upto) == 0


def test_a_read_ahead_counts_what_is_in_flight_against_the_read_limits() -> None:
    """A writer that reads again before it is done (a file's, keeping its thread busy) never
    holds more in flight than one read would: the rest stays evictable."""
    queue = make_queue(max_events=80)  # chunks of 10 events, a read takes at most 20
    put_all(queue, "loop", [event(i) for i in range(60)])
    first, upto = queue.read(0, ahead=True)
    assert sum(chunk.events for chunk in first) == 20
    assert queue.read(0, ahead=True) == ([], upto), "in flight already fills the limits"
    queue.done(0, first[0].end)  # the first chunk is written: room for one more
    more, upto = queue.read(0, ahead=True)
    assert [chunk.start for chunk in more] == [20]
    assert upto == 30
    plain, upto = queue.read(0)  # counts nothing in flight: a whole read's worth
    assert [chunk.start for chunk in plain] == [30, 40]
    assert upto == 50


class NestedStatistics(EventQueue):
    """Calls statistics() from inside statistics(), as a signal handler's flush can."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.nested_seconds: float | None = None

    def _read_statistics(self) -> Any:
        if self.nested_seconds is None:
            self.nested_seconds = 0.0
            started = time.monotonic()
            self.statistics()
            self.nested_seconds = time.monotonic() - started
        return super()._read_statistics()


@pytest.mark.parametrize("side", SIDES)
def test_statistics_nested_in_statistics_never_waits_for_its_own_lock(side: Side) -> None:
    """A timer's handler that reads the numbers while its thread already reads them must not
    wait for the lock that thread holds: waiting, tick after tick, nested until RecursionError."""
    wakes = Wakes()
    queue = NestedStatistics(
        max_events=100,
        max_bytes=1 << 20,
        max_event_bytes=4096,
        overflow="drop_newest",
        readers=1,
        track_levels=False,
        loop_thread=threading.get_ident(),
        wake=wakes.wake,
        wake_threadsafe=wakes.wake_threadsafe,
    )
    put_all(queue, "loop", [event(i) for i in range(3)])
    if side == "loop":
        stats = queue.statistics()
    else:
        got = []
        in_thread(lambda: got.append(queue.statistics()))
        (stats,) = got
    assert stats.held == 3
    assert queue.nested_seconds is not None
    assert queue.nested_seconds < 0.04, "the nested read waited for the lock"


@pytest.mark.parametrize("readers", [2, 3])
def test_done_frees_chunks_only_when_every_reader_is_done(readers: int) -> None:
    """Fan-out without copies: one chunk serves every reader, so it lives until the last."""
    queue = make_queue(readers=readers)
    put_all(queue, "loop", [event(i) for i in range(10)])
    results = [read(queue, reader) for reader in range(readers)]
    held_bytes = queue.statistics().held_bytes
    assert held_bytes > 0
    for reader in range(readers - 1):
        queue.done(reader, results[reader].upto)
        assert queue.statistics().held == 10
        assert queue.statistics().held_bytes == held_bytes
    queue.done(readers - 1, results[-1].upto)
    assert (queue.statistics().held, queue.statistics().held_bytes) == (0, 0)


def test_done_with_part_of_a_read_frees_only_the_chunks_before_it() -> None:
    """A writer settles batch by batch: each done frees whole chunks up to its seq, no more."""
    queue = make_queue(max_events=80)  # chunks of 10 events
    put_all(queue, "loop", [event(i) for i in range(30)])
    result = read(queue)
    assert [chunk.events for chunk in result.chunks] == [10, 10, 10]
    queue.done(0, 15)  # in the middle of the second chunk
    assert queue.statistics().held == 20
    queue.done(0, 20)
    assert queue.statistics().held == 10
    queue.done(0, 10)  # going back is ignored
    assert queue.statistics().held == 10


# -- park and wake --------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_park_refuses_to_sleep_while_something_is_queued(side: Side) -> None:
    """A writer that slept on an unsealed event would leave it unwritten until the next one."""
    queue = make_queue()
    put_all(queue, side, [event(0, source=side)])
    assert queue.park() is False
    assert queue.sleeping is False
    read(queue)
    assert queue.park() is True


@pytest.mark.parametrize("side", SIDES)
def test_after_park_the_next_put_wakes_the_writer_once(side: Side) -> None:
    """A parked writer sleeps until woken: the first put wakes it, on the right thread."""
    wakes = Wakes()
    queue = make_queue(wakes)
    assert queue.park() is True
    assert queue.sleeping is True
    put_all(queue, side, [event(i, source=side) for i in range(10)])
    woken = (wakes.loop, wakes.threadsafe)
    assert woken == ((1, 0) if side == "loop" else (0, 1))
    assert queue.sleeping is False


def test_park_reports_losses_instead_of_sleeping() -> None:
    """The end of a loss episode is when its report is due: park queues it and stays awake."""
    queue = make_queue(max_events=8)
    put_all(queue, "loop", [event(i) for i in range(10)])
    read(queue)
    assert queue.park() is False
    assert read(queue).values("msg") == ["alog.dropped"]
    assert queue.park() is True


# -- close ----------------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_close_refuses_further_events_and_counts_them_rejected(side: Side) -> None:
    """After close nothing enters: a late call is refused and counted, never lost silently."""
    queue = make_queue()
    put_all(queue, "loop", [event(0)])
    assert queue.close() == 1
    put_all(queue, side, [event(i, source=side) for i in range(1, 4)])
    stats = queue.statistics()
    assert (stats.entered, stats.rejected) == (1, 3)
    assert read(queue).values("i") == [0]


def test_close_inside_a_put_refuses_the_puts_that_follow_on_the_reentrant_path() -> None:
    """A close that interrupts a put (a signal handler) refuses what it logs next, counted."""
    queue = make_queue()

    def close_then_log() -> None:
        queue.close()
        put_all(queue, "loop", [event(i, source="inner") for i in range(3)])

    put_all(queue, "loop", [event(0), event(1, value=RunsWhenRepresented(close_then_log))])
    stats = queue.statistics()
    assert (stats.entered, stats.rejected) == (2, 3), "the interrupted put itself completes"
    assert read(queue).values("i") == [0, 1]


# -- loss reports ---------------------------------------------------------------------------


def test_report_losses_queues_nothing_when_nothing_was_lost() -> None:
    """A quiet log stays quiet: no alog.dropped without a loss."""
    queue = make_queue()
    put_all(queue, "loop", [event(i) for i in range(10)])
    assert queue.report_losses() is False
    stats = queue.statistics()
    assert (stats.entered, stats.reports) == (10, 0)


@pytest.mark.parametrize(
    ("overflow", "counter"), [("drop_newest", "rejected"), ("drop_oldest", "evicted")]
)
def test_report_losses_queues_one_dropped_event_per_episode(
    overflow: Overflow, counter: str
) -> None:
    """Each report says how many were lost since the previous one: the log adds up."""
    queue = make_queue(max_events=80, overflow=overflow)
    reported: list[int] = []
    for episode in range(3):
        put_all(queue, "loop", [event(i) for i in range(100 + episode * 50)])
        assert queue.report_losses() is True
        assert queue.report_losses() is False, "one report per episode"
        result = read(queue)
        queue.done(0, result.upto)
        (report,) = [item for _, item in result.events if item["msg"] == "alog.dropped"]
        assert report["level"] == "warning"
        assert report["logger"] == "alog"
        assert report["overflow"] == overflow
        assert report["first_drop"] <= report["last_drop"]
        reported.append(report["dropped"])
    stats = queue.statistics()
    assert sum(reported) == getattr(stats, counter)
    assert stats.reports == 3


def test_a_loss_report_is_never_evicted() -> None:
    """The report says what was lost: evicting it would hide the loss it stands for."""
    queue = make_queue(max_events=80, overflow="drop_oldest")
    put_all(queue, "loop", [event(i) for i in range(100)])
    assert queue.report_losses()
    put_all(queue, "loop", [event(i) for i in range(100, 2000)])
    put_all(queue, "thread", [event(i, source="thread") for i in range(1000)])
    messages = read(queue).values("msg")
    assert messages.count("alog.dropped") == 1


def test_no_loss_report_after_close() -> None:
    """A closed queue takes nothing, not even its own report (the writers report on close)."""
    queue = make_queue(max_events=8)
    put_all(queue, "loop", [event(i) for i in range(10)])
    queue.close()
    assert queue.report_losses() is False


# -- re-entrancy ----------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("inner", [1, 50])
def test_a_put_made_inside_a_put_lands_whole_on_its_own_line(side: Side, inner: int) -> None:
    """A __repr__ that logs must not splice its line into the one being encoded."""
    queue = make_queue()
    nested = [event(100 + i, source="inner", pad=20) for i in range(inner)]
    outer = [
        event(0, source="outer"),
        event(1, source="outer", value=logs_when_represented(queue, nested)),
        event(2, source="outer"),
    ]
    put_all(queue, side, outer)
    result = read(queue)  # parses every line: a spliced one would not
    assert result.seqs == list(range(3 + inner))
    outers = [item for _, item in result.events if item["source"] == "outer"]
    assert [item["i"] for item in outers] == [0, 1, 2]
    assert outers[1]["value"] == "<ran when represented>"
    inners = [item["i"] for _, item in result.events if item["source"] == "inner"]
    assert inners == [100 + i for i in range(inner)]


def test_puts_nested_two_deep_each_land_on_their_own_line() -> None:
    """A repr inside a repr (an event logged from an event's value) is one more re-entry."""
    queue = make_queue()
    deepest = [event(3, source="deepest")]
    middle = [event(2, source="middle", value=logs_when_represented(queue, deepest))]
    queue.put(event(1, source="outer", value=logs_when_represented(queue, middle)), INFO)
    assert sorted(read(queue).values("i")) == [1, 2, 3]


INTERRUPTIONS = [
    pytest.param("loop", False, id="loop"),
    pytest.param(
        "loop",
        True,
        id="loop-in-the-fallback-encoder",
    ),
    pytest.param(
        "thread",
        False,
        id="thread",
    ),
]


@pytest.mark.parametrize(("side", "in_fallback"), INTERRUPTIONS)
def test_an_interrupted_encoding_leaves_no_partial_line_and_is_counted(
    side: Side, in_fallback: bool
) -> None:
    """Ctrl-C in a __repr__ loses that event, visibly, and never corrupts the lines around it."""
    queue = make_queue()
    put_all(queue, side, [event(0, source=side, pad=500)])
    if in_fallback:
        # a lone surrogate sends the event to the fallback encoder, which calls repr again
        interrupted = event(1, source=side, pad=500, value=InterruptedRepr(1), bad="\ud800")
    else:
        interrupted = event(1, source=side, pad=500, value=InterruptedRepr())
    with pytest.raises(KeyboardInterrupt):
        put_all(queue, side, [interrupted])
    del interrupted  # pytest's report must not call that repr
    assert not queue.reentered(), "the put left the queue marked as inside a section"
    put_all(queue, side, [event(2, source=side, pad=500)])
    assert read(queue).values("i") == [0, 2]
    stats = queue.statistics()
    assert (stats.entered, stats.interrupted) == (2, 1)
    assert queue.report_losses() is True


def test_threads_put_and_read_statistics_while_the_loop_puts_inside_a_put() -> None:
    """put never raises an Exception: not even while the loop is on its re-entrant path."""
    queue = make_queue(max_events=1 << 30, max_bytes=1 << 30)
    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                queue.put(event(0, source="thread"), INFO)
                queue.statistics()
            except Exception as error:
                errors.append(error)
                return

    thread = threading.Thread(target=hammer)
    with fast_thread_switches():
        thread.start()
        try:
            for round_ in range(5):
                nested = [event(i, source="inner") for i in range(2000)]
                queue.put(event(round_, value=logs_when_represented(queue, nested)), INFO)
                queue.done(0, read(queue).upto)
        finally:
            stop.set()
            thread.join(30)
    assert errors == []


# -- the numbers ----------------------------------------------------------------------------


def fill_open(queue: EventQueue) -> None:
    put_all(queue, "loop", [event(i, pad=i) for i in range(30)])


def fill_sealed_and_open(queue: EventQueue) -> None:
    put_all(queue, "loop", [event(i, pad=i) for i in range(300)])


def fill_from_thread(queue: EventQueue) -> None:
    put_all(queue, "thread", [event(i, pad=i, source="thread") for i in range(300)])


def fill_inside_a_put(queue: EventQueue) -> None:
    nested = [event(i, pad=i, source="inner") for i in range(30)]
    put_all(queue, "loop", [event(-1, value=logs_when_represented(queue, nested))])


def fill_with_a_report(queue: EventQueue) -> None:
    put_all(queue, "loop", [event(i, pad=i) for i in range(300)])
    queue.report_losses()


def fill_partly_done(queue: EventQueue) -> None:
    put_all(queue, "loop", [event(i, pad=i) for i in range(300)])
    queue.done(0, read(queue).upto - 50)
    put_all(queue, "thread", [event(i, pad=i, source="thread") for i in range(20)])


FILLS = {
    "open chunk": fill_open,
    "sealed chunks": fill_sealed_and_open,
    "other threads": fill_from_thread,
    "re-entrant puts": fill_inside_a_put,
    "loss report": fill_with_a_report,
    "partly done": fill_partly_done,
}


@pytest.mark.parametrize("fill", sorted(FILLS))
def test_held_bytes_match_the_bytes_really_held(fill: str) -> None:
    """queued_bytes is what an operator sizes max_bytes by: it must be the real figure."""
    queue = make_queue(max_events=200, max_bytes=40_000, overflow="drop_oldest")
    FILLS[fill](queue)
    before = queue.statistics()
    queue.seal()  # now every byte held is in a sealed chunk
    after = queue.statistics()
    really = sum(len(chunk.data) for chunk in queue._chunks)
    assert before.held_bytes == after.held_bytes == really
    assert before.held == after.held == sum(chunk.events for chunk in queue._chunks)
    queue.done(0, queue.last_seq())
    assert (queue.statistics().held, queue.statistics().held_bytes) == (0, 0)


@pytest.mark.parametrize(
    "side",
    [
        "loop",
        pytest.param(
            "thread",
        ),
    ],
)
def test_peak_held_bytes_cover_what_was_held(side: Side) -> None:
    """The peak tells how close to max_bytes a burst came: it may never be below a real value."""
    queue = make_queue(max_bytes=20_000, max_event_bytes=1024, overflow="drop_oldest")
    most_bytes = most_events = 0

    def burst_until_an_eviction() -> None:
        nonlocal most_bytes, most_events
        for i in range(10_000):
            queue.put(event(i, source=side, pad=50), INFO)
            stats = queue.statistics()
            most_bytes = max(most_bytes, stats.held_bytes)
            most_events = max(most_events, stats.held)
            if stats.evicted:
                return

    if side == "loop":
        burst_until_an_eviction()
    else:
        in_thread(burst_until_an_eviction)
    assert queue.statistics().evicted > 0
    queue.done(0, read(queue).upto)  # the writer catches up
    stats = queue.statistics()
    assert stats.held_bytes == 0
    assert stats.peak_held_bytes >= most_bytes
    assert stats.peak_held >= most_events
