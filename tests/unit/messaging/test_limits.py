"""The daily limit per number: what each stage may use, where a day starts, one turn per
number."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest

from dialer.config import QuietHours
from dialer.messaging.limits import DailyLimit, NumberTurns
from dialer.messaging.ports import ClaimedMessage

LIMIT = DailyLimit.of(5, 2, "Asia/Shanghai", ["refused"])


def test_an_urgent_stage_may_use_the_whole_limit() -> None:
    assert LIMIT.allowed("refused") == 5


def test_any_other_stage_leaves_the_reserve() -> None:
    assert LIMIT.allowed("shipped") == 3


def test_a_reserve_as_large_as_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="urgent_reserve"):
        DailyLimit.of(2, 2, "Asia/Shanghai", [])


def test_the_day_starts_at_midnight_in_beijing() -> None:
    late_evening_utc = datetime(2025, 6, 2, 17, 30, tzinfo=UTC)  # 01:30 on 3 June in Beijing
    assert LIMIT.day_start(late_evening_utc) == datetime(2025, 6, 2, 16, 0, tzinfo=UTC)
    assert LIMIT.next_day(late_evening_utc) == datetime(2025, 6, 3, 16, 0, tzinfo=UTC)


def test_the_next_day_of_a_daylight_saving_zone_is_its_local_midnight() -> None:
    paris = DailyLimit.of(5, 0, "Europe/Paris", [])
    before_the_change = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)  # DST starts on the 30th
    assert paris.next_day(before_the_change) == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert paris.next_day(datetime(2025, 3, 30, 12, 0, tzinfo=UTC)) == datetime(
        2025, 3, 30, 22, 0, tzinfo=UTC
    )


async def test_two_messages_to_one_number_take_turns_and_others_do_not_wait() -> None:
    turns = NumberTurns()
    order: list[str] = []
    first_inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with turns.turn("+8613800000001"):
            order.append("first in")
            first_inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with turns.turn("+8613800000001"):
            order.append("second in")

    async def other_number() -> None:
        async with turns.turn("+8613800000002"):
            order.append("other in")

    running = asyncio.create_task(first())
    await first_inside.wait()
    waiting = asyncio.create_task(second())
    await other_number()
    release.set()
    await asyncio.gather(running, waiting)
    assert order == ["first in", "other in", "first out", "second in"]
    assert turns._locks == {}  # nothing kept once nobody waits


class Phones:
    """The outbox's count of what a number had today, fixed."""

    def __init__(self, sent: int) -> None:
        self.sent = sent

    async def sent_today(self, phone: str, *, since: datetime, besides: int) -> int:
        return self.sent


def claimed(stage: str) -> ClaimedMessage:
    return ClaimedMessage(
        7, "e7", "A7", stage, "+8613812345678", "text", 1, datetime(2025, 6, 2, tzinfo=UTC), False
    )


QUIET = QuietHours(start=time(21, 0), end=time(8, 0), timezone="Asia/Shanghai")
WITH_QUIET = DailyLimit.of(2, 1, "Asia/Shanghai", ["refused"], QUIET)
NOON = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


async def test_a_held_ordinary_stage_waits_for_the_end_of_the_next_quiet_hours() -> None:
    hold = await WITH_QUIET.hold(Phones(1), claimed("shipped"), now=NOON)  # type: ignore[arg-type]
    assert hold is not None
    assert hold.until == datetime(2025, 6, 3, 0, 0, tzinfo=UTC)  # 08:00 on 3 June in Beijing
    assert hold.why.startswith("held: daily limit per number: 1 sent today, 1 allowed")


async def test_a_held_urgent_stage_goes_at_midnight() -> None:
    hold = await WITH_QUIET.hold(Phones(2), claimed("refused"), now=NOON)  # type: ignore[arg-type]
    assert hold is not None
    assert hold.until == datetime(2025, 6, 2, 16, 0, tzinfo=UTC)


async def test_a_number_under_its_allowance_is_not_held() -> None:
    assert await WITH_QUIET.hold(Phones(1), claimed("refused"), now=NOON) is None  # type: ignore[arg-type]
