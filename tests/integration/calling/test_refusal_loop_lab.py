"""One refused order end to end against the lab PBX: the refused event queues the SMS and the
callback; the customer (+8613800001102) answers the refusal IVR and presses 2, "not at home";
the disposition finishes the contact; the order system's stand-in receives the signed
`contact.finished` webhook with that disposition; the confirmation SMS stage is queued by the
escalation rule; the number's timeline tells it all, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.service import CampaignService
from dialer.messaging.followup_service import FollowUpService
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.store import CampaignStore, OutboxStore, Store
from dialer.store.timeline import TimelineStore
from dialer.store.timeline_reports import entries_for
from tests.fakes.order_system import OrderSystem
from tests.integration.messaging.test_follow_up import STAGES_WITH_FOLLOW_UPS, follow_up_extra
from tests.integration.sms_support import ENV, event, message_row, sms_service, sms_settings
from tests.support import ALL_WEEK, lab_ami_options, running

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]

NOT_AT_HOME = "+8613800001102"  # the lab customer who answers and presses 2
CAMPAIGNS = f"""\
campaigns:
  refusal-callback:
    kind: refusal_callback
    channel: "Local/{{number}}@customers"
    ring_timeout_s: 15
    calling_windows: {ALL_WEEK}
    retry: {{}}
    max_total_attempts: 1
"""


@pytest.fixture
async def order_system() -> AsyncIterator[OrderSystem]:
    async with OrderSystem(ENV["WEBHOOK_SECRET"]) as receiver:
        yield receiver


async def test_a_refused_order_answered_2_reaches_the_order_system_and_the_timeline(
    tmp_path: Path, order_system: OrderSystem
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}"
    settings = sms_settings(
        tmp_path,
        store_url=url,
        stages=STAGES_WITH_FOLLOW_UPS,
        extra=follow_up_extra(order_system.url),
        campaigns=CAMPAIGNS,
    )
    now = lambda: datetime.now(UTC)  # noqa: E731
    store = await Store.open(url)
    client = AmiClient(lab_ami_options())
    try:
        sms = sms_service(settings, store, now=now)
        status, answer = await sms.accept_event(
            event("ev-loop-1", order_id="R-2002", stage="refused", phone=NOT_AT_HOME, data={})
        )
        assert status == 202, answer
        campaigns = CampaignService(
            settings,
            CampaignStore(store),
            CampaignStore(store),
            AmiPbx(client),
            now=now,
            options=RunnerOptions(worker_id="lab-loop", default_region="CN"),
        )
        client.add_event_handler(campaigns.handle_event)
        follow_up = FollowUpService(
            settings,
            timeline=TimelineStore(store),
            webhooks=OutboxStore(store, channel="webhook"),
            now=now,
        )
        async with running(client):
            await client.wait_logged_in(5)
            await campaigns.open()
            await campaigns.start()
            async with asyncio.timeout(30):
                await campaigns.run_until_idle()
        await follow_up.run_until_idle()
        await follow_up.close()
        entries = await entries_for(store, NOT_AT_HOME)
        [finished] = order_system.events("contact.finished")
        escalated = next(entry for entry in entries if entry.kind == "escalated")
        confirm = next(e for e in entries if e.kind == "sms_queued" and e.id > escalated.id)
        row = await message_row(store, confirm.detail["message_id"])
    finally:
        await store.close()

    assert row["stage"] == "redelivery_confirm"
    assert escalated.reason == "not-home-confirm"
    assert finished["order_id"] == "R-2002"
    assert finished["disposition"] == "not_at_home"
    assert finished["outcome"] == "answered"
    assert order_system.refused == []
    assert order_system.duplicates() == 0
    kinds = [entry.kind for entry in entries]
    assert kinds[:3] == ["event_received", "sms_queued", "contact_added"]
    assert kinds.index("dialled") < kinds.index("disposition") < kinds.index("contact_finished")
    assert kinds[-1] == "reported"
    disposition = next(entry for entry in entries if entry.kind == "disposition")
    assert disposition.reason == "not_at_home"
