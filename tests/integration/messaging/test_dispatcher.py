"""The dispatcher against the local Twilio stand-in, through the real SDK, on both stores.

No test waits through a backoff: the notifiers sleep with `RecordingSleep`, the dispatcher
reads a hand-moved clock, and `run_until_idle()` returns once nothing is due."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dialer.config import Settings
from dialer.messaging.dispatcher import Dispatcher
from dialer.messaging.ports import ClaimedMessage
from dialer.messaging.providers import build_notifier
from dialer.messaging.service import dispatcher_for
from dialer.store import OptOutStore, OutboxStore, Store
from dialer.store.schema import opt_outs
from notifiers import Notifier, OutboundSms, SendResult
from tests.fakes.clock import FakeClock, RecordingSleep
from tests.fakes.twilio_server import FakeTwilioServer, Fault
from tests.integration.sms_support import (
    Now,
    message_row,
    outbox_lines,
    queue_message,
    sms_settings,
)

OPTED_OUT, INVALID = "+15005550004", "+15005550001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioServer]:
    async with FakeTwilioServer() as server:
        yield server


class Rig:
    def __init__(self, settings: Settings, store: Store, notifier: Notifier, now: Now) -> None:
        self.settings, self.store, self.notifier, self.now = settings, store, notifier, now
        self.dispatcher: Dispatcher = dispatcher_for(
            settings, OutboxStore(store), notifier, now=now
        )


@pytest.fixture
async def rig_factory(
    store: Store, store_url: str, tmp_path: Path, fake: FakeTwilioServer
) -> AsyncIterator[object]:
    made: list[Notifier] = []
    clock = FakeClock()
    sleep = RecordingSleep(clock)  # waits move the notifiers' clock, in no real time

    async def make(**overrides: object) -> Rig:
        options: dict[str, object] = {
            "store_url": store_url,
            "primary": "twilio",
            "twilio_base_url": fake.base_url,
        }
        options.update(overrides)
        settings = sms_settings(tmp_path, **options)  # type: ignore[arg-type]
        notifier = await build_notifier(settings.notifications, sleep=sleep, clock=clock)
        made.append(notifier)
        return Rig(settings, store, notifier, Now())

    make.sleep = sleep  # type: ignore[attr-defined]
    yield make
    for notifier in made:
        await notifier.close()


async def test_a_queued_message_is_sent_through_twilio(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    message_id = await queue_message(rig.store, rig.now)
    assert await rig.dispatcher.run_until_idle() == 1
    row = await message_row(rig.store, message_id)
    assert (row["status"], row["provider"], row["attempts"]) == ("sent", "twilio", 1)
    assert row["provider_message_id"] in fake.messages
    assert fake.messages[row["provider_message_id"]]["body"] == "Your order shipped"


async def test_21610_is_dead_and_opts_the_number_out(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    message_id = await queue_message(rig.store, rig.now, phone=OPTED_OUT)
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert (row["status"], row["error_code"]) == ("dead", "21610")
    assert row["last_error"].startswith("opted_out:")
    async with rig.store.engine.connect() as conn:
        scopes = (await conn.execute(sa.select(opt_outs.c.scope, opt_outs.c.phone))).all()
    assert [tuple(s) for s in scopes] == [("all", OPTED_OUT)]
    assert fake.creates_seen == 1


async def test_two_503s_then_success_is_sent_after_three_tries(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    fake.fail_next(Fault(status=503), count=2)
    message_id = await queue_message(rig.store, rig.now)
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert row["status"] == "sent"
    assert fake.creates_seen == 3
    # in no real time: the rate limit's hold of the first second after a start, then two backoffs
    hold, *backoffs = rig_factory.sleep.delays_s
    assert hold == 1.0
    assert len(backoffs) == 2


async def test_429_with_retry_after_is_rescheduled_not_before_it(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    fake.fail_next(Fault(status=429, retry_after="120"))
    message_id = await queue_message(rig.store, rig.now)
    start = rig.now()
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert row["status"] == "queued"
    assert row["next_attempt_at"] == start + timedelta(seconds=120)
    rig.now.advance(119)
    assert await rig.dispatcher.run_until_idle() == 0
    rig.now.advance(1)
    assert await rig.dispatcher.run_until_idle() == 1
    assert (await message_row(rig.store, message_id))["status"] == "sent"
    assert fake.creates_seen == 2


async def test_a_transient_failure_backs_off_doubling(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory(
        retry="{in_process_attempts: 1, backoff_initial_s: 30, backoff_max_s: 50}"
    )
    fake.fail_next(Fault(status=500), count=3)
    message_id = await queue_message(rig.store, rig.now)
    waits = []
    for _ in range(3):
        before = rig.now()
        await rig.dispatcher.run_until_idle()
        due = (await message_row(rig.store, message_id))["next_attempt_at"]
        waits.append((due - before).total_seconds())
        rig.now.value = due
    assert waits == [30, 50, 50]  # 30, 60 capped at 50, 120 capped at 50
    await rig.dispatcher.run_until_idle()
    assert (await message_row(rig.store, message_id))["status"] == "sent"


async def test_a_message_failing_past_max_age_is_dead(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory(
        retry="{in_process_attempts: 1, backoff_initial_s: 60, backoff_max_s: 60, max_age_s: 100}"
    )
    fake.fail_next(Fault(status=500), count=5)
    message_id = await queue_message(rig.store, rig.now)
    await rig.dispatcher.run_until_idle()
    rig.now.advance(60)
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert row["status"] == "dead"
    assert row["last_error"].startswith("expired:")
    assert fake.creates_seen == 2


async def test_twilio_auth_failure_falls_back_to_the_outbox(  # type: ignore[no-untyped-def]
    rig_factory, fake, tmp_path: Path
) -> None:
    rig = await rig_factory(fallback="outbox", twilio_token="${WRONG_TOKEN}")
    message_id = await queue_message(rig.store, rig.now)
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert (row["status"], row["provider"]) == ("sent", "outbox")
    assert [line["to"] for line in outbox_lines(tmp_path)] == ["+14155550100"]
    assert fake.creates_seen == 1  # 20003 is permanent: not retried


async def test_an_invalid_number_is_dead_and_never_falls_back(  # type: ignore[no-untyped-def]
    rig_factory, fake, tmp_path: Path
) -> None:
    rig = await rig_factory(fallback="outbox")
    message_id = await queue_message(rig.store, rig.now, phone=INVALID)
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert (row["status"], row["error_code"]) == ("dead", "21211")
    assert row["last_error"].startswith("number:")
    assert outbox_lines(tmp_path) == []


async def test_a_number_opted_out_after_queueing_is_not_sent_to(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    message_id = await queue_message(rig.store, rig.now)
    await OptOutStore(rig.store).opt_out("+14155550100", source="test", now=rig.now())
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert row["status"] == "dead"
    assert row["last_error"].startswith("opted_out:")
    assert fake.creates_seen == 0


async def test_an_opt_out_stops_only_its_own_number(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    message_id = await queue_message(rig.store, rig.now, phone="+14155550100")
    await OptOutStore(rig.store).opt_out("+14155550199", source="test", now=rig.now())
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert row["status"] == "sent"
    assert fake.creates_seen == 1


async def test_rows_left_sending_by_a_crash_are_settled_and_sent_at_start(  # type: ignore[no-untyped-def]
    rig_factory, fake
) -> None:
    rig = await rig_factory()
    message_id = await queue_message(rig.store, rig.now)
    [claimed] = await OutboxStore(rig.store).claim_due(now=rig.now(), limit=10)  # then "crashed"
    assert (await message_row(rig.store, claimed.id))["status"] == "sending"
    assert await rig.dispatcher.run_until_idle() == 0  # a sending row is not claimed again
    assert await rig.dispatcher.start() == 1
    await rig.dispatcher.run_until_idle()
    row = await message_row(rig.store, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert fake.creates_seen == 1


class Gauge:
    """Wraps a notifier; records the most sends that were in flight at once."""

    def __init__(self, inner: Notifier) -> None:
        self.inner, self.name = inner, inner.name
        self.in_flight = self.most = 0

    async def send(self, message: OutboundSms) -> SendResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await self.inner.send(message)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        await self.inner.close()


async def test_messages_are_sent_with_bounded_concurrency(rig_factory, fake) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory(concurrency=3)
    gauge = Gauge(rig.notifier)
    dispatcher = dispatcher_for(rig.settings, OutboxStore(rig.store), gauge, now=rig.now)
    ids = [await queue_message(rig.store, rig.now, order_id=f"O{i}") for i in range(10)]
    assert await dispatcher.run_until_idle() == 10
    statuses = {(await message_row(rig.store, i))["status"] for i in ids}
    assert statuses == {"sent"}
    assert gauge.most == 3


class NewsDuringTheClaim(OutboxStore):
    """The outbox, where a message is queued (and its news heard) just after the dispatcher's
    first claim looked: the claim missed it, the news came before the dispatcher went idle."""

    def __init__(self, store: Store, now: Now) -> None:
        super().__init__(store)
        self.now = now
        self.dispatcher: Dispatcher | None = None
        self.claims = 0

    async def claim_due(self, *, now: datetime, limit: int) -> list[ClaimedMessage]:
        claimed = await super().claim_due(now=now, limit=limit)
        self.claims += 1
        if self.claims == 1:
            await queue_message(self.store, self.now)
            assert self.dispatcher is not None
            self.dispatcher.wake()
        return claimed


async def test_news_that_comes_during_a_claim_is_not_lost_in_the_idle_wait(
    rig_factory, fake
) -> None:  # type: ignore[no-untyped-def]
    rig = await rig_factory()
    outbox = NewsDuringTheClaim(rig.store, rig.now)
    dispatcher = outbox.dispatcher = Dispatcher(
        outbox, rig.notifier, now=rig.now, poll_interval_s=3600
    )
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        async with asyncio.timeout(30):  # a guard: without the news it would poll in an hour
            while not fake.received:  # noqa: ASYNC110 (the stand-in's record)
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await running
    assert outbox.claims >= 2
