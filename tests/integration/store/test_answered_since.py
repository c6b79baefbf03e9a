"""The abandon rule's window read back from the attempts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.calling.ports import NewContact, NextStep, Settlement
from dialer.outcomes import Outcome
from dialer.store import CampaignStore, Store

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


async def test_answered_calls_since_come_back_with_whether_they_were_abandoned(
    store: Store,
) -> None:
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("proactive", "outbound")
    await campaigns.add_contacts(
        campaign_id, [NewContact(phone=f"+861380000000{n}") for n in range(5)], NOW
    )
    # (answered how long ago, outcome, agent wait)
    calls = [
        (timedelta(days=2), Outcome.ABANDONED, None),  # before the window
        (timedelta(hours=3), Outcome.ANSWERED, 0.5),
        (timedelta(hours=2), Outcome.ABANDONED, None),
        (timedelta(hours=1), Outcome.ANSWERED, 3.5),  # an agent, but late: abandoned
        (timedelta(0), Outcome.NO_ANSWER, None),  # never answered
    ]
    for number, (ago, outcome, wait_s) in enumerate(calls):
        contact = await campaigns.claim_next(campaign_id, owner="w", now=NOW, lease_s=60)
        assert contact is not None
        attempt_id = f"a{number}"
        await campaigns.start_attempt(contact, attempt_id=attempt_id, now=NOW - ago)
        answered_at = None if outcome is Outcome.NO_ANSWER else NOW - ago
        settlement = Settlement(
            attempt_id, outcome, NOW - ago, answered_at=answered_at, agent_wait_s=wait_s
        )
        assert await campaigns.settle(settlement, NextStep("done"), next_attempt_at=None)

    found = await campaigns.answered_since(
        campaign_id, NOW - timedelta(hours=24), abandon_after_s=2.0
    )

    assert found == [
        (NOW - timedelta(hours=3), False),
        (NOW - timedelta(hours=2), True),
        (NOW - timedelta(hours=1), True),
    ]
