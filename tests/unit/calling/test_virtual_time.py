"""The virtual-time loop: timers keep their order and their virtual times, nothing waits."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialer.calling.virtual_time import (
    VirtualClock,
    VirtualTimeDeadlock,
    VirtualTimeError,
    VirtualTimeLoop,
    run_virtual,
)

EIGHT_HOURS_S = 8 * 3600.0


def test_timers_fire_in_order_at_their_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        done = asyncio.Event()
        for name, delay_s in [("c", 30.0), ("a", 0.5), ("d", 3600.0), ("b", 2.0)]:
            loop.call_later(delay_s, lambda name=name: fired.append((name, loop.time())))
        loop.call_at(3600.0 + 1.0, done.set)
        await done.wait()
        return fired

    assert run_virtual(main()) == [("a", 0.5), ("b", 2.0), ("c", 30.0), ("d", 3600.0)]


def test_an_eight_hour_sleep_takes_no_wall_time() -> None:
    async def main() -> float:
        await asyncio.sleep(EIGHT_HOURS_S)
        return asyncio.get_running_loop().time()

    started = time.perf_counter()
    virtual_now = run_virtual(main(), start=100.0)

    assert virtual_now == pytest.approx(100.0 + EIGHT_HOURS_S)
    assert time.perf_counter() - started < 0.5


def test_timeout_expires_at_its_virtual_deadline() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.sleep(60.0)
        return loop.time()

    assert run_virtual(main()) == pytest.approx(5.0)


def test_wait_for_returns_before_its_timeout_when_the_work_is_faster() -> None:
    async def work() -> str:
        await asyncio.sleep(3.0)
        return "done"

    async def main() -> tuple[str, float]:
        result = await asyncio.wait_for(work(), timeout=10.0)
        return result, asyncio.get_running_loop().time()

    assert run_virtual(main()) == ("done", pytest.approx(3.0))


def test_concurrent_tasks_interleave_by_virtual_time() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        steps: list[tuple[str, float]] = []

        async def ticker(name: str, every_s: float, times: int) -> None:
            for _ in range(times):
                await asyncio.sleep(every_s)
                steps.append((name, loop.time()))

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(ticker("slow", 3.0, 2))
            tasks.create_task(ticker("fast", 2.0, 3))
        return steps

    assert run_virtual(main()) == [
        ("fast", 2.0),
        ("slow", 3.0),
        ("fast", 4.0),
        ("slow", 6.0),
        ("fast", 6.0),
    ]


def test_a_task_cancelled_while_sleeping_stops_at_the_cancel_time() -> None:
    async def main() -> tuple[bool, float, float]:
        loop = asyncio.get_running_loop()
        stopped_at: list[float] = []

        async def sleeper() -> None:
            try:
                await asyncio.sleep(3600.0)
            except asyncio.CancelledError:
                stopped_at.append(loop.time())
                raise

        task = asyncio.create_task(sleeper())
        loop.call_later(10.0, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), stopped_at[0], loop.time()

    assert run_virtual(main()) == (True, 10.0, 10.0)


def test_an_event_set_by_a_timer_wakes_its_waiters() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        loop.call_later(42.0, event.set)
        await event.wait()
        return loop.time()

    assert run_virtual(main()) == 42.0


def test_waiting_with_no_timer_is_a_deadlock_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualTimeDeadlock):
        run_virtual(main())


def test_real_io_is_refused() -> None:
    async def main() -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(VirtualTimeError, match="real I/O"):
        run_virtual(main())


def test_threads_are_refused() -> None:
    async def main() -> None:
        await asyncio.to_thread(time.sleep, 0)

    with pytest.raises(VirtualTimeError, match="thread"):
        run_virtual(main())


def test_the_clock_reads_virtual_time_as_an_aware_utc_datetime() -> None:
    anchor = datetime(2025, 3, 3, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    clock = VirtualClock(anchor, start_s=50.0)

    async def main() -> tuple[datetime, datetime]:
        before = clock()
        await asyncio.sleep(90 * 60)
        return before, clock.now()

    before, after = run_virtual(main(), start=50.0)

    assert before == datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    assert before.tzinfo is UTC
    assert after == datetime(2025, 3, 3, 9, 30, tzinfo=UTC)


def test_the_clock_refuses_a_naive_anchor() -> None:
    with pytest.raises(ValueError, match="aware"):
        VirtualClock(datetime(2025, 3, 3, 9, 0))


def test_a_loop_can_be_driven_by_hand() -> None:
    loop = VirtualTimeLoop(start=10.0)
    try:
        result = loop.run_until_complete(asyncio.sleep(5.0, result="slept"))
        assert (result, loop.time()) == ("slept", 15.0)
    finally:
        loop.close()
