"""The token bucket, driven by a fake clock and a sleep that only records and moves that clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers import OutboundSms, RateLimitedNotifier, SendWindow, TokenBucket
from tests.fakes.clock import FakeClock, RecordingSleep
from tests.fakes.notifier import ScriptedNotifier


def bucket(rate_per_s: float, burst: float) -> tuple[TokenBucket, FakeClock, RecordingSleep]:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    return TokenBucket(rate_per_s, burst, clock=clock, sleep=sleep), clock, sleep


async def test_a_full_bucket_lets_a_burst_through_without_waiting() -> None:
    limiter, _, sleep = bucket(rate_per_s=2, burst=3)
    for _ in range(3):
        await limiter.acquire()
    assert sleep.delays_s == []


async def test_past_the_burst_each_token_waits_one_interval() -> None:
    limiter, clock, sleep = bucket(rate_per_s=2, burst=3)
    start = clock()
    for _ in range(3 + 4):
        await limiter.acquire()
    assert sleep.delays_s == pytest.approx([0.5] * 4)
    assert clock() - start == pytest.approx(2.0)  # 4 tokens at 2/s


async def test_idle_time_refills_the_bucket_up_to_the_burst_only() -> None:
    limiter, clock, sleep = bucket(rate_per_s=10, burst=5)
    for _ in range(5):
        await limiter.acquire()
    clock.advance(3600)  # an idle hour refills 5 tokens, not 36000
    assert limiter.tokens == pytest.approx(5)
    for _ in range(5):
        await limiter.acquire()
    assert sleep.delays_s == []
    await limiter.acquire()
    assert sleep.delays_s == pytest.approx([0.1])


async def test_a_partly_refilled_token_waits_only_for_the_rest() -> None:
    limiter, clock, sleep = bucket(rate_per_s=1, burst=1)
    await limiter.acquire()
    clock.advance(0.25)
    await limiter.acquire()
    assert sleep.delays_s == pytest.approx([0.75])


async def test_waiters_are_served_one_at_a_time_in_arrival_order() -> None:
    limiter, clock, _ = bucket(rate_per_s=1, burst=1)
    served: list[tuple[int, float]] = []

    async def take(number: int) -> None:
        await limiter.acquire()
        served.append((number, clock()))

    await asyncio.gather(*(take(number) for number in range(4)))
    assert [number for number, _ in served] == [0, 1, 2, 3]
    start = served[0][1]
    assert [at - start for _, at in served] == pytest.approx([0, 1, 2, 3])


@settings(max_examples=50, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=100),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=60),
)
def test_grants_never_outrun_the_burst_plus_the_rate(
    rate: float, burst: int, gaps: list[float]
) -> None:
    async def scenario() -> None:
        limiter, clock, _ = bucket(rate, burst)
        start = clock()
        for granted, gap in enumerate(gaps, start=1):
            clock.advance(gap)
            await limiter.acquire()
            assert granted <= burst + rate * (clock() - start) + 1e-6

    asyncio.run(scenario())


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5), (float("inf"), 1)])
def test_a_bucket_refuses_meaningless_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


async def test_a_cost_above_the_burst_is_refused_rather_than_waited_for_forever() -> None:
    limiter, _, _ = bucket(rate_per_s=1, burst=2)
    with pytest.raises(ValueError, match="cost"):
        await limiter.acquire(3)


async def test_a_rate_limited_notifier_takes_a_token_per_send() -> None:
    limiter, _, sleep = bucket(rate_per_s=1, burst=1)
    inner = ScriptedNotifier("twilio")
    notifier = RateLimitedNotifier(inner, limiter)
    message = OutboundSms("msg-1", "+8613812345678", "hi")
    await notifier.send(message)
    await notifier.send(message)
    assert inner.attempts == 2
    assert sleep.delays_s == pytest.approx([1.0])
    assert notifier.name == "twilio"
    await notifier.close()
    assert inner.closed == 1


# ------------------------------------------------------------------------------ the send window


def window(rate_per_s: float, **options: bool) -> tuple[SendWindow, FakeClock, RecordingSleep]:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    return SendWindow(rate_per_s, clock=clock, sleep=sleep, **options), clock, sleep


def most_in_any_window(starts: list[float], window_s: float) -> int:
    """The most starts in any half-open window [t, t + window_s)."""
    ordered = sorted(starts)
    return max(
        sum(1 for other in ordered if start <= other < start + window_s - 1e-9) for start in ordered
    )


async def test_a_token_bucket_lets_nearly_twice_its_rate_through_its_first_second() -> None:
    limiter, clock, _ = bucket(rate_per_s=5, burst=5)  # what the daemon used before
    starts = []
    for _ in range(10):
        await limiter.acquire()
        starts.append(clock())
    assert most_in_any_window(starts, 1.0) == 9


async def test_the_window_holds_its_rate_in_every_second_from_the_start() -> None:
    limiter, clock, _ = window(5)
    starts = []
    for _ in range(23):
        await limiter.acquire()
        starts.append(clock())
    assert most_in_any_window(starts, 1.0) == 5


async def test_the_first_second_after_a_restart_is_taken_as_used() -> None:
    limiter, clock, sleep = window(5)
    started = clock()
    await limiter.acquire()
    assert clock() - started == pytest.approx(1.0)  # another process may have just sent 5
    assert sleep.delays_s == pytest.approx([1.0])


async def test_without_that_assumption_the_first_sends_go_at_once() -> None:
    limiter, _, sleep = window(5, full_at_start=False)
    for _ in range(5):
        await limiter.acquire()
    assert sleep.delays_s == []


async def test_a_rate_below_one_spaces_single_sends() -> None:
    limiter, clock, _ = window(0.5, full_at_start=False)
    started = clock()
    starts = []
    for _ in range(4):
        await limiter.acquire()
        starts.append(clock() - started)
    assert starts == pytest.approx([0.0, 2.0, 4.0, 6.0])


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=60),
)
def test_no_window_of_a_second_ever_holds_more_than_the_rate(
    rate: float, gaps: list[float]
) -> None:
    async def run() -> list[float]:
        limiter, clock, _ = window(rate)
        starts = []
        for gap in gaps:
            clock.advance(gap)
            await limiter.acquire()
            starts.append(clock())
        return starts

    starts = asyncio.run(run())
    assert most_in_any_window(starts, 1.0) <= max(1, int(rate))
