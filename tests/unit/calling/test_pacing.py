"""Call pacing in virtual time: the clock moves only when every task waits on a virtual sleep."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable

import pytest

from dialer.calling.pacing import CallPacer


class VirtualTime:
    """An injected clock and sleep. `run` lets the tasks go until all of them wait, then jumps
    the clock to the earliest sleeper's wake-up time and wakes it, until the tasks are done."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(delay_s, 0.0), next(self._order), wake))
        await wake

    async def settle(self) -> None:
        """Let every runnable task run until it waits (no I/O here: a few loop turns suffice)."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def advance(self) -> bool:
        """Wake the next sleeper; False when nobody sleeps."""
        await self.settle()
        while self._sleepers:
            wake_at, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                self.now = max(self.now, wake_at)
                wake.set_result(None)
                await self.settle()
                return True
        return False

    async def run(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(task.done() for task in tasks):
            if not await self.advance():
                raise AssertionError("tasks are blocked and nobody sleeps: a deadlock")
        await asyncio.gather(*tasks)


@pytest.fixture
def virtual() -> VirtualTime:
    return VirtualTime()


def pacer_in(virtual: VirtualTime, cps: float, max_concurrent: int) -> CallPacer:
    return CallPacer(cps, max_concurrent, clock=virtual.clock, sleep=virtual.sleep)


class Calls:
    """Places calls through a pacer and records when each started and how many were up."""

    def __init__(self, pacer: CallPacer, virtual: VirtualTime) -> None:
        self.pacer = pacer
        self.virtual = virtual
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.up = 0
        self.most_up = 0
        self.most_in_flight = 0

    async def call(self, name: str, duration_s: float) -> None:
        async with self.pacer.slot():
            self.starts[name] = self.virtual.now
            self.up += 1
            self.most_up = max(self.most_up, self.up)
            self.most_in_flight = max(self.most_in_flight, self.pacer.in_flight)
            await self.virtual.sleep(duration_s)
            self.up -= 1
            self.ends[name] = self.virtual.now

    def start(self, name: str, duration_s: float) -> asyncio.Task[None]:
        return asyncio.create_task(self.call(name, duration_s), name=name)


async def test_call_starts_are_spaced_by_the_cps_cap(virtual: VirtualTime) -> None:
    calls = Calls(pacer_in(virtual, cps=5, max_concurrent=100), virtual)

    await virtual.run([calls.start(f"c{n}", duration_s=30) for n in range(20)])

    starts = sorted(calls.starts.values())
    assert len(starts) == 20
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(starts))
    assert starts[0] == 0
    assert starts[-1] == pytest.approx(19 * 0.2)  # the cap is reached, not undershot


async def test_idle_time_earns_no_burst(virtual: VirtualTime) -> None:
    calls = Calls(pacer_in(virtual, cps=2, max_concurrent=10), virtual)
    await virtual.run([calls.start("first", duration_s=1)])
    virtual.now = 100.0  # a long quiet spell

    await virtual.run([calls.start(f"c{n}", duration_s=1) for n in range(3)])

    assert sorted(calls.starts[f"c{n}"] for n in range(3)) == [100.0, 100.5, 101.0]


async def test_concurrency_never_exceeds_the_cap(virtual: VirtualTime) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=3)
    calls = Calls(pacer, virtual)

    await virtual.run([calls.start(f"c{n}", duration_s=1 + n % 7) for n in range(30)])

    assert len(calls.ends) == 30
    assert calls.most_up == 3
    assert calls.most_in_flight == 3
    assert pacer.in_flight == 0


async def test_slots_are_granted_first_come_first_served(virtual: VirtualTime) -> None:
    calls = Calls(pacer_in(virtual, cps=math.inf, max_concurrent=1), virtual)

    await virtual.run([calls.start(f"c{n}", duration_s=1) for n in range(5)])

    assert sorted(calls.starts, key=calls.starts.__getitem__) == [f"c{n}" for n in range(5)]


async def test_a_call_waits_for_both_a_free_slot_and_its_cps_turn(virtual: VirtualTime) -> None:
    calls = Calls(pacer_in(virtual, cps=1, max_concurrent=2), virtual)

    await virtual.run([calls.start(name, duration_s=0.5) for name in ("a", "b", "c")])

    # b waits for its turn (1 s after a), c for its turn (2 s), though a's slot is free at 0.5 s
    assert calls.starts == {"a": 0.0, "b": 1.0, "c": 2.0}


async def test_lowering_the_cap_blocks_new_starts_until_calls_in_flight_end(
    virtual: VirtualTime,
) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=3)
    calls = Calls(pacer, virtual)
    running = [calls.start(name, duration_s=d) for name, d in (("a", 2), ("b", 4), ("c", 6))]
    await virtual.settle()
    assert pacer.in_flight == 3

    pacer.set_max_concurrent(1)
    late = calls.start("late", duration_s=1)
    await virtual.run([*running, late])

    assert calls.ends == {"a": 2.0, "b": 4.0, "c": 6.0, "late": 7.0}  # none was cut short
    assert calls.starts["late"] == 6.0  # only when in flight dropped below the new cap of 1


async def test_raising_the_cap_wakes_waiters_at_once(virtual: VirtualTime) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=0)  # a VIP queue with no free agent
    calls = Calls(pacer, virtual)
    waiting = [calls.start(f"c{n}", duration_s=5) for n in range(3)]
    await virtual.settle()
    assert (pacer.in_flight, pacer.waiting) == (0, 3)

    pacer.set_max_concurrent(2)
    await virtual.settle()

    assert (pacer.in_flight, pacer.waiting) == (2, 1)
    assert sorted(calls.starts) == ["c0", "c1"]
    await virtual.run(waiting)
    assert calls.starts["c2"] == 5.0


async def test_cancelled_waiter_does_not_leak_a_slot(virtual: VirtualTime) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=1)
    calls = Calls(pacer, virtual)
    holder = calls.start("holder", duration_s=3)
    gives_up = calls.start("gives_up", duration_s=3)
    await virtual.settle()
    assert pacer.waiting == 1

    gives_up.cancel()
    await virtual.settle()
    assert pacer.waiting == 0
    later = calls.start("later", duration_s=1)
    await virtual.run([holder, later])

    assert gives_up.cancelled()
    assert "gives_up" not in calls.starts
    assert calls.starts["later"] == 3.0
    assert pacer.in_flight == 0


async def test_waiter_cancelled_just_after_being_granted_passes_the_slot_on(
    virtual: VirtualTime,
) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=1)
    await pacer.acquire()
    granted_then_cancelled = asyncio.create_task(pacer.acquire())
    next_in_line = asyncio.create_task(pacer.acquire())
    await virtual.settle()

    pacer.release()  # hands the slot to the first waiter...
    granted_then_cancelled.cancel()  # ...which is cancelled before it could run
    await virtual.settle()

    assert granted_then_cancelled.cancelled()
    assert next_in_line.done()
    assert pacer.in_flight == 1


async def test_waiter_cancelled_during_its_cps_turn_gives_back_slot_and_turn(
    virtual: VirtualTime,
) -> None:
    pacer = pacer_in(virtual, cps=1, max_concurrent=5)
    await pacer.acquire()  # starts at 0
    waits_for_turn = asyncio.create_task(pacer.acquire())  # its turn is at 1.0
    await virtual.settle()
    assert pacer.in_flight == 2

    waits_for_turn.cancel()
    await virtual.settle()
    assert pacer.in_flight == 1
    calls = Calls(pacer, virtual)
    await virtual.run([calls.start("next", duration_s=1)])

    assert calls.starts["next"] == 1.0  # the turn at 1.0 was given back, not skipped to 2.0


async def test_slot_is_freed_when_the_call_raises(virtual: VirtualTime) -> None:
    pacer = pacer_in(virtual, cps=math.inf, max_concurrent=1)

    with pytest.raises(RuntimeError, match="originate failed"):
        async with pacer.slot():
            raise RuntimeError("originate failed")

    assert pacer.in_flight == 0


async def test_release_without_acquire_is_an_error(virtual: VirtualTime) -> None:
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        pacer_in(virtual, cps=1, max_concurrent=1).release()


async def test_infinite_cps_never_sleeps() -> None:
    async def no_sleep(delay_s: float) -> None:
        raise AssertionError(f"slept {delay_s} s")

    pacer = CallPacer(math.inf, 2, clock=lambda: 0.0, sleep=no_sleep)
    await pacer.acquire()
    await pacer.acquire()

    assert pacer.in_flight == 2


@pytest.mark.parametrize("cps", [0, -1, math.nan])
def test_cps_must_be_positive(cps: float) -> None:
    with pytest.raises(ValueError, match="max_calls_per_second"):
        CallPacer(cps, 1)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda pacer: pacer.set_max_concurrent(-1), ValueError),
        (lambda pacer: pacer.set_max_concurrent(1.5), TypeError),
        (lambda pacer: CallPacer(1, -1), ValueError),
    ],
)
def test_concurrency_cap_must_be_a_count(
    change: Callable[[CallPacer], object], error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_concurrent"):
        change(CallPacer(1, 1))


async def test_a_late_wake_up_does_not_bunch_a_start_with_the_next(virtual: VirtualTime) -> None:
    """The first waiter wakes 0.15 s late (a loaded loop); the next one, due 0.2 s after the
    first's reserved time, must still start 0.2 s after the first actually started."""
    late = {"first": True}

    async def sleep(delay_s: float) -> None:
        extra = 0.15 if late.pop("first", False) else 0.0
        await virtual.sleep(delay_s + extra)

    pacer = CallPacer(5, 10, clock=virtual.clock, sleep=sleep)
    started: list[float] = []

    async def call() -> None:
        await pacer.acquire()
        started.append(virtual.clock())

    first = asyncio.create_task(call())
    await virtual.settle()  # the first start is at once; the second waits for its turn
    tasks = [first, *(asyncio.create_task(call()) for _ in range(3))]
    await virtual.run(tasks)
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert started[1] == pytest.approx(0.35)  # 0.2 reserved, woke 0.15 late
    assert min(gaps) >= 0.2 - 1e-9


async def test_a_slot_then_a_turn_right_before_the_start(virtual: VirtualTime) -> None:
    pacer = CallPacer(5, 1, clock=virtual.clock, sleep=virtual.sleep)
    await pacer.take_slot()
    assert pacer.in_flight == 1
    await pacer.turn()  # the first turn: at once
    waiting = asyncio.create_task(pacer.take_slot())
    await virtual.settle()
    assert not waiting.done()  # the concurrency cap holds without a turn taken
    pacer.release()
    await virtual.settle()
    assert waiting.done()
    turn = asyncio.create_task(pacer.turn())
    await virtual.run([turn])
    assert virtual.clock() == pytest.approx(0.2)
