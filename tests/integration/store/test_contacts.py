"""Adding contacts and opt-outs, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dialer.store import CampaignStore, Store
from dialer.store.contacts import add_contact, ensure_campaign
from dialer.store.opt_outs import is_opted_out, opt_in, opt_out
from dialer.store.schema import campaigns, contacts

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
PHONE = "+8613812345678"


async def test_ensure_campaign_creates_the_row_once(store: Store) -> None:
    async with store.engine.begin() as conn:
        first = await ensure_campaign(conn, "refusal-callback", "refusal_callback")
        again = await ensure_campaign(conn, "refusal-callback", "refusal_callback")
        other = await ensure_campaign(conn, "vip-care", "vip")
    assert first == again
    assert other != first


async def test_a_kind_changed_in_the_config_is_written_over_by_the_campaign_store(
    store: Store,
) -> None:
    campaign_store = CampaignStore(store)
    first = await campaign_store.ensure_campaign("care", "refusal_callback")
    async with store.engine.begin() as conn:
        unchanged = await ensure_campaign(conn, "care", "vip")  # the intake's: insert only
        kind_after_intake = await conn.scalar(sa.select(campaigns.c.kind))
    again = await campaign_store.ensure_campaign("care", "vip")
    async with store.engine.connect() as conn:
        kind_after_reload = await conn.scalar(sa.select(campaigns.c.kind))
    assert first == unchanged == again
    assert (kind_after_intake, kind_after_reload) == ("refusal_callback", "vip")


async def test_a_new_number_becomes_a_pending_contact(store: Store) -> None:
    async with store.engine.begin() as conn:
        campaign_id = await ensure_campaign(conn, "refusal-callback", "refusal_callback")
        added = await add_contact(
            conn,
            campaign_id=campaign_id,
            phone=PHONE,
            due_at=NOW,
            now=NOW,
            name="王小明",
            context={"order_id": "A1"},
        )
        row = (await conn.execute(sa.select(contacts))).one()
    assert (added.merged, added.waiting) == (False, True)
    assert (row.state, row.phone, row.name, row.context) == (
        "pending",
        PHONE,
        "王小明",
        {"order_id": "A1"},
    )
    assert row.next_attempt_at == NOW


async def test_the_same_number_twice_is_merged_not_added(store: Store) -> None:
    async with store.engine.begin() as conn:
        campaign_id = await ensure_campaign(conn, "refusal-callback", "refusal_callback")
        first = await add_contact(
            conn,
            campaign_id=campaign_id,
            phone=PHONE,
            due_at=NOW + timedelta(hours=1),
            now=NOW,
            priority=1,
            context={"order_id": "A1", "note": "x"},
        )
        second = await add_contact(
            conn,
            campaign_id=campaign_id,
            phone=PHONE,
            due_at=NOW,
            now=NOW,
            priority=5,
            context={"order_id": "A2"},
        )
        rows = (await conn.execute(sa.select(contacts))).all()
    assert second.contact_id == first.contact_id
    assert (second.merged, second.waiting) == (True, True)
    [row] = rows
    assert row.context == {"order_id": "A2", "note": "x"}
    assert row.priority == 5
    assert row.next_attempt_at == NOW  # the earlier due time wins


async def test_a_finished_contact_is_not_reopened(store: Store) -> None:
    async with store.engine.begin() as conn:
        campaign_id = await ensure_campaign(conn, "refusal-callback", "refusal_callback")
        first = await add_contact(conn, campaign_id=campaign_id, phone=PHONE, due_at=NOW, now=NOW)
        await conn.execute(contacts.update().values(state="done"))
        again = await add_contact(conn, campaign_id=campaign_id, phone=PHONE, due_at=NOW, now=NOW)
        state = await conn.scalar(sa.select(contacts.c.state))
    assert again == type(again)(contact_id=first.contact_id, merged=True, waiting=False)
    assert state == "done"


async def test_opt_out_covers_its_scope_and_all(store: Store) -> None:
    async with store.engine.begin() as conn:
        await opt_out(conn, PHONE, source="sms:TD", now=NOW, scope="sms")
        await opt_out(conn, PHONE, source="sms:TD", now=NOW, scope="sms")  # idempotent
        assert await is_opted_out(conn, PHONE, "sms")
        assert not await is_opted_out(conn, PHONE, "call")
        await opt_out(conn, "+8613900000000", source="api", now=NOW)
        assert await is_opted_out(conn, "+8613900000000", "call")


async def test_opt_in_removes_every_opt_out(store: Store) -> None:
    async with store.engine.begin() as conn:
        await opt_out(conn, PHONE, source="sms:STOP", now=NOW)
        await opt_in(conn, PHONE)
        assert not await is_opted_out(conn, PHONE, "sms")
        assert not await is_opted_out(conn, PHONE, "call")
