"""The loop closed, on both stores: the timeline of a number, escalation rules, and webhooks to a
local order system that checks their signatures and counts duplicates.

Calls are played on the store as the campaign runner plays them (claim, attempt, disposition,
settle); the lab-PBX test of the same path is tests/integration/pbx/test_refusal_loop.py. No
test sleeps: the clocks are moved by hand, the loops run in burst mode (`run_until_idle`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.calling.ports import NextStep, Settlement
from dialer.config import Settings
from dialer.messaging.followup_service import FollowUpService
from dialer.messaging.service import dispatcher_for
from dialer.outcomes import Outcome
from dialer.store import CampaignStore, OutboxStore, Store
from dialer.store.timeline import TimelineStore
from dialer.store.timeline_reports import entries_for
from notifiers import OutboxNotifier
from tests.fakes.order_system import OrderSystem
from tests.integration.sms_support import (
    ENV,
    MOBILE,
    Now,
    event,
    message_row,
    sms_service,
    sms_settings,
)

STAGES_WITH_FOLLOW_UPS = """\
  stages:
    refused:
      template: "{signature}您好{customer_name}，订单{order_id}已拒收，客服稍后致电。"
      urgent: true
      add_to_campaign: refusal-callback
    callback_missed:
      template: "{signature}我们致电您未接通（订单{order_id}），回复1安排重新派送。"
      urgent: true
    redelivery_confirm:
      template: "{signature}订单{order_id}将重新派送，请保持电话畅通。"
      urgent: true
"""


def follow_up_extra(url: str, events: str = "") -> str:
    return f"""
webhooks:
  url: {url}
  secret: "${{WEBHOOK_SECRET}}"
  backoff_initial_s: 10
  backoff_max_s: 60
  {events}
escalations:
  callback-missed:
    on: contact_failed
    campaign: refusal-callback
    send_stage: callback_missed
  reply-redeliver:
    on: reply
    campaign: refusal-callback
    reply_patterns: ["1", "重新派送"]
    request_redelivery: true
  not-home-confirm:
    on: disposition
    campaign: refusal-callback
    dispositions: [not_at_home]
    send_stage: redelivery_confirm
"""


@pytest.fixture
async def order_system() -> AsyncIterator[OrderSystem]:
    async with OrderSystem(ENV["WEBHOOK_SECRET"]) as receiver:
        yield receiver


class Loop:
    """The SMS component, the campaigns' store and the follow-up, on one store."""

    def __init__(self, settings: Settings, store: Store, now: Now) -> None:
        self.settings, self.store, self.now = settings, store, now
        self.sms = sms_service(settings, store, now=now)
        self.sms.timeline = TimelineStore(store)
        self.campaigns = CampaignStore(store)
        self.follow_up = FollowUpService(
            settings,
            timeline=TimelineStore(store),
            webhooks=OutboxStore(store, channel="webhook"),
            now=now,
        )

    async def refused(self, order_id: str = "A1001", phone: str = MOBILE) -> int:
        """A refused order: its SMS queued, its number added to the callback campaign."""
        body = event(f"ev-{order_id}", order_id=order_id, stage="refused", phone=phone, data={})
        status, answer = await self.sms.accept_event(body)
        assert status == 202, answer
        return int(answer["contacts"][0]["contact_id"])

    async def call(
        self, outcome: Outcome, step: NextStep, *, digit_disposition: str | None = None
    ) -> str:
        """One call of the callback campaign, as the runner writes it."""
        campaign_id = await self.campaigns.ensure_campaign("refusal-callback", "refusal_callback")
        contact = await self.campaigns.claim_next(
            campaign_id, owner="w", now=self.now(), lease_s=60
        )
        assert contact is not None
        attempt_id = f"attempt-{contact.id}-{contact.attempts_count}"
        await self.campaigns.start_attempt(contact, attempt_id=attempt_id, now=self.now())
        if digit_disposition is not None:
            await self.campaigns.record_disposition(attempt_id, digit_disposition, self.now())
        self.now.advance(30)
        settled = Settlement(attempt_id, outcome, self.now())
        due = self.now() + timedelta(seconds=step.delay_s) if step.delay_s else None
        assert await self.campaigns.settle(settled, step, next_attempt_at=due)
        return attempt_id

    async def kinds(self, phone: str = MOBILE) -> list[str]:
        return [entry.kind for entry in await entries_for(self.store, phone)]


@pytest.fixture
async def loop(
    store: Store, store_url: str, tmp_path: Path, order_system: OrderSystem
) -> AsyncIterator[Loop]:
    settings = sms_settings(
        tmp_path,
        store_url=store_url,
        stages=STAGES_WITH_FOLLOW_UPS,
        extra=follow_up_extra(order_system.url),
    )
    made = Loop(settings, store, Now())
    yield made
    await made.follow_up.close()


async def test_a_refused_order_is_on_the_timeline_in_order(loop: Loop) -> None:
    await loop.refused()
    notifier = OutboxNotifier(str(loop.settings.notifications.providers["outbox"].path))  # type: ignore[union-attr]
    dispatcher = dispatcher_for(loop.settings, OutboxStore(loop.store), notifier, now=loop.now)
    assert await dispatcher.run_until_idle() == 1
    entries = await entries_for(loop.store, MOBILE)
    assert [entry.kind for entry in entries] == [
        "event_received",
        "sms_queued",
        "contact_added",
        "sms_sent",
    ]
    assert entries[0].reason == "refused"
    assert entries[0].order_id == "A1001"
    assert entries[2].campaign == "refusal-callback"
    assert entries[3].reason == "outbox"


async def test_a_callback_that_fails_for_good_sends_callback_missed_and_a_signed_webhook(
    loop: Loop, order_system: OrderSystem
) -> None:
    contact_id = await loop.refused()
    await loop.call(Outcome.NO_ANSWER, NextStep("pending", delay_s=600, why="retry no_answer"))
    loop.now.advance(600)
    await loop.call(Outcome.NO_ANSWER, NextStep("failed", why="2 attempts ended no_answer"))
    await loop.follow_up.run_until_idle()

    [finished] = order_system.events("contact.finished")
    assert finished["order_id"] == "A1001"
    assert finished["state"] == "failed"
    assert finished["outcome"] == "no_answer"
    assert finished["phone"] == MOBILE
    assert order_system.refused == []
    assert order_system.duplicates() == 0
    kinds = await loop.kinds()
    assert kinds[-6:] == [
        "call_outcome",
        "contact_finished",
        "webhook_queued",
        "escalated",
        "sms_queued",
        "reported",
    ]
    assert "retry_scheduled" in kinds
    rows = await entries_for(loop.store, MOBILE)
    escalated = next(entry for entry in rows if entry.kind == "escalated")
    assert escalated.reason == "callback-missed"
    queued = next(entry for entry in rows if entry.kind == "sms_queued" and entry.id > escalated.id)
    row = await message_row(loop.store, queued.detail["message_id"])
    assert row["stage"] == "callback_missed"
    assert "回复1" in row["body"]
    assert contact_id == rows[2].detail["contact_id"]


async def test_a_rule_acts_once_per_contact_even_when_its_entry_comes_twice(
    loop: Loop, order_system: OrderSystem
) -> None:
    await loop.refused()
    await loop.call(Outcome.BUSY, NextStep("failed", why="no retry rule for busy"))
    await loop.follow_up.run_until_idle()
    entries = await entries_for(loop.store, MOBILE)
    finished = next(entry for entry in entries if entry.kind == "contact_finished")
    # The same decision recorded again (a replayed settle, say): nothing more happens.
    await TimelineStore(loop.store).record([_again(finished)])
    await loop.follow_up.run_until_idle()
    assert (await loop.kinds()).count("escalated") == 1
    assert len(order_system.events("contact.finished")) == 1
    assert order_system.duplicates() == 0


def _again(entry: Any) -> Any:
    from dialer.timeline import NewEntry

    return NewEntry(
        entry.phone,
        entry.at,
        entry.kind,
        entry.reason,
        campaign=entry.campaign,
        order_id=entry.order_id,
        detail=entry.detail,
    )


async def test_a_reply_1_cancels_the_pending_callback_and_requests_redelivery(
    loop: Loop, order_system: OrderSystem
) -> None:
    contact_id = await loop.refused()
    await loop.sms.handle_reply(MOBILE, " 1 ")
    await loop.follow_up.run_until_idle()

    [request] = order_system.events("redelivery.requested")
    assert request["order_id"] == "A1001"
    assert request["reply"] == "1"
    campaign_id = await loop.campaigns.ensure_campaign("refusal-callback", "refusal_callback")
    assert (
        await loop.campaigns.claim_next(campaign_id, owner="w", now=loop.now(), lease_s=60) is None
    )
    kinds = await loop.kinds()
    assert kinds[-5:] == [
        "sms_reply",
        "escalated",
        "webhook_queued",
        "contact_cancelled",
        "reported",
    ]
    summary = await loop.campaigns.summary(campaign_id)
    assert contact_id
    assert summary["contacts"].get("cancelled") == 1


async def test_a_reply_that_matches_no_rule_changes_nothing(
    loop: Loop, order_system: OrderSystem
) -> None:
    await loop.refused()
    await loop.sms.handle_reply(MOBILE, "谢谢")
    await loop.follow_up.run_until_idle()
    assert order_system.events("redelivery.requested") == []
    assert "escalated" not in await loop.kinds()


async def test_an_ivr_disposition_sends_the_confirmation_stage(
    loop: Loop, order_system: OrderSystem
) -> None:
    await loop.refused()
    await loop.call(
        Outcome.ANSWERED, NextStep("done", why="disposition"), digit_disposition="not_at_home"
    )
    await loop.follow_up.run_until_idle()
    [finished] = order_system.events("contact.finished")
    assert (finished["state"], finished["disposition"]) == ("done", "not_at_home")
    entries = await entries_for(loop.store, MOBILE)
    escalated = [entry for entry in entries if entry.kind == "escalated"]
    assert [entry.reason for entry in escalated] == ["not-home-confirm"]
    confirm = [
        entry for entry in entries if entry.kind == "sms_queued" and entry.id > escalated[0].id
    ]
    row = await message_row(loop.store, confirm[0].detail["message_id"])
    assert row["stage"] == "redelivery_confirm"


async def test_a_webhook_refused_with_503_is_retried_after_its_backoff_with_the_same_key(
    loop: Loop, order_system: OrderSystem
) -> None:
    order_system.fail_next = [503]
    await loop.refused()
    await loop.call(Outcome.ANSWERED, NextStep("done", why="answered"))
    await loop.follow_up.run_until_idle()
    assert order_system.events("contact.finished") == []
    assert "webhook_retry" in await loop.kinds()
    loop.now.advance(11)
    await loop.follow_up.run_until_idle()
    assert len(order_system.events("contact.finished")) == 1
    assert (await loop.kinds())[-1] == "reported"


async def test_a_webhook_refused_for_good_is_a_dead_letter_that_replays(
    loop: Loop, order_system: OrderSystem
) -> None:
    order_system.fail_next = [400]
    await loop.refused()
    await loop.call(Outcome.ANSWERED, NextStep("done", why="answered"))
    await loop.follow_up.run_until_idle()
    dead = [
        entry for entry in await entries_for(loop.store, MOBILE) if entry.kind == "webhook_dead"
    ]
    assert len(dead) == 1
    assert "400" in (dead[0].reason or "")
    assert await OutboxStore(loop.store).replay_dead(dead[0].detail["message_id"], now=loop.now())
    await loop.follow_up.run_until_idle()
    assert len(order_system.events("contact.finished")) == 1


async def test_webhooks_of_events_not_chosen_are_not_sent(
    store: Store, store_url: str, tmp_path: Path, order_system: OrderSystem
) -> None:
    settings = sms_settings(
        tmp_path,
        store_url=store_url,
        stages=STAGES_WITH_FOLLOW_UPS,
        extra=follow_up_extra(order_system.url, events="events: [redelivery.requested]"),
    )
    loop = Loop(settings, store, Now())
    await loop.refused()
    await loop.call(Outcome.ANSWERED, NextStep("done", why="answered"))
    await loop.follow_up.run_until_idle()
    await loop.follow_up.close()
    assert order_system.accepted == []


async def test_entries_older_than_the_retention_are_pruned(loop: Loop) -> None:
    await loop.refused()
    await loop.follow_up.run_until_idle()
    loop.now.advance(89 * 86400)
    assert await loop.follow_up.prune() == 0
    loop.now.advance(2 * 86400)
    assert await loop.follow_up.prune() == 3
    assert await loop.kinds() == []


async def test_webhooks_stay_out_of_the_sms_funnel_and_backlog(
    loop: Loop, order_system: OrderSystem
) -> None:
    from dialer.store import sms_reports

    order_system.fail_next = [503]
    await loop.refused()
    await loop.call(Outcome.ANSWERED, NextStep("done", why="answered"))
    await loop.follow_up.run_until_idle()  # the webhook waits for its retry
    assert list(await sms_reports.funnel(loop.store)) == ["refused"]
    assert (await sms_reports.backlog(loop.store, now=loop.now())).depth == 1  # the SMS


async def test_a_stage_held_by_the_quiet_hours_is_queued_now_until_their_end(
    store: Store, store_url: str, tmp_path: Path, order_system: OrderSystem
) -> None:
    settings = sms_settings(
        tmp_path,
        store_url=store_url,
        stages=STAGES_WITH_FOLLOW_UPS.rsplit("      urgent: true\n", 1)[0],  # confirm: not urgent
        extra=follow_up_extra(order_system.url),
        quiet_hours='{start: "21:00", end: "08:00", timezone: Asia/Shanghai}',
    )
    loop = Loop(settings, store, Now(datetime(2025, 6, 2, 14, 0, tzinfo=UTC)))  # 22:00 there
    await loop.refused()
    await loop.call(
        Outcome.ANSWERED, NextStep("done", why="disposition"), digit_disposition="not_at_home"
    )
    await loop.follow_up.run_until_idle()
    await loop.follow_up.close()
    entries = await entries_for(loop.store, MOBILE)
    escalated = next(entry for entry in entries if entry.kind == "escalated")
    [held] = [e for e in entries if e.kind == "sms_queued" and e.id > escalated.id]
    assert held.at == loop.now()
    assert held.reason == "quiet_hours"
    assert held.until == datetime(2025, 6, 3, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    row = await message_row(loop.store, held.detail["message_id"])
    assert row["created_at"] == loop.now()
