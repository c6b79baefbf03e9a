"""Workers sharing a store: leases, dead workers declared once, fenced claims, runner slots,
and messages taken over only from dead workers. Time passes by moving a lease into the past
(the lease clock is the database's, so the test cannot move it otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dialer.calling.ports import NewContact, SlotRequest
from dialer.messaging.ports import MessageOutcome
from dialer.store import CampaignStore, OutboxStore, Store, StoreError
from dialer.store.runner_slots import RunnerSlotStore
from dialer.store.schema import contacts, outbound_messages, workers
from dialer.store.workers import SqliteLock, WorkerStore
from dialer.workers import Membership, WorkerIdentity, WorkerIdTaken
from tests.integration.sms_support import queue_message

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
LEASE_S = 30.0


def now() -> datetime:
    return NOW


def worker(worker_id: str, *, pbx: str = "site-a", host: str = "host-1") -> WorkerIdentity:
    return WorkerIdentity(worker_id, pbx=pbx, host=host, pid=4_000_000)


async def join(store: Store, *worker_ids: str, pbx: str = "site-a") -> WorkerStore:
    registry = WorkerStore(store)
    for worker_id in worker_ids:
        await registry.register(worker(worker_id, pbx=pbx), lease_s=LEASE_S)
    return registry


async def expire(store: Store, worker_id: str) -> None:
    """The worker fell silent: its lease ran out a minute ago."""
    async with store.engine.begin() as conn:
        await conn.execute(
            workers.update()
            .where(workers.c.id == worker_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


async def contact_owners(store: Store) -> dict[str, str | None]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(contacts.c.phone, contacts.c.lease_owner))).all()
    return {row.phone: row.lease_owner for row in rows}


async def message_states(store: Store) -> dict[int, tuple[str, str | None]]:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    outbound_messages.c.id,
                    outbound_messages.c.status,
                    outbound_messages.c.lease_owner,
                )
            )
        ).all()
    return {row.id: (row.status, row.lease_owner) for row in rows}


@pytest.mark.postgres
async def test_a_silent_worker_is_declared_dead_once_and_cannot_renew(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    try:
        registry = await join(store, "a", "b", "c")
        assert await registry.declare_expired() == []
        await expire(store, "b")
        assert await registry.declare_expired() == ["b"]
        assert await registry.declare_expired() == []  # declared once
        assert await registry.renew("b", lease_s=LEASE_S) is False
        assert await registry.renew("a", lease_s=LEASE_S) is True
        await registry.stop("c")
        live = {row["id"]: row["live"] for row in await registry.rows()}
        assert live == {"a": True, "b": False, "c": False}
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_live_worker_id_cannot_be_taken_by_a_second_worker(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    try:
        registry = await join(store, "a")
        with pytest.raises(WorkerIdTaken, match="in use by pid 4000000 on host-1"):
            await registry.register(worker("a", host="host-2"), lease_s=LEASE_S)
        await expire(store, "a")  # a dead worker's id may be used again
        await registry.register(worker("a", host="host-2"), lease_s=LEASE_S)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_restart_on_the_same_host_replaces_its_dead_process_at_once(
    postgres_url: str,
) -> None:
    store = await Store.open(postgres_url)
    try:
        registry = await join(store, "a")  # pid 4,000,000: no such process here
        again = WorkerIdentity("a", pbx="site-a", host="host-1")
        membership = Membership(registry, again, lease_s=LEASE_S, heartbeat_s=5)
        await membership.join()
        assert [row["pid"] for row in await registry.rows()] == [again.pid]
    finally:
        await store.close()


async def test_a_dead_worker_claims_nothing(store: Store) -> None:
    registry = await join(store, "a", "b")
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(campaign_id, [NewContact("+8613800001001")], NOW)
    await queue_message(store, now)
    await expire(store, "a")
    await registry.declare_expired()

    assert await campaigns.claim_next(campaign_id, owner="a", now=NOW, lease_s=60) is None
    assert await OutboxStore(store, owner="a").claim_due(now=NOW, limit=10) == []
    assert await campaigns.claim_next(campaign_id, owner="b", now=NOW, lease_s=60) is not None
    assert len(await OutboxStore(store, owner="b").claim_due(now=NOW, limit=10)) == 1


@pytest.mark.postgres
async def test_messages_sending_are_taken_over_only_from_dead_workers(
    postgres_store: Store,
) -> None:
    store = postgres_store
    registry = await join(store, "a", "b")
    for order in ("A1", "A2", "A3"):
        await queue_message(store, now, order_id=order)
    outbox_a, outbox_b = OutboxStore(store, owner="a"), OutboxStore(store, owner="b")
    [first] = await outbox_a.claim_due(now=NOW, limit=1)
    [second] = await outbox_b.claim_due(now=NOW, limit=1)

    assert await outbox_b.settle_sending(now=NOW, own=False) == []  # a is live: untouched
    await expire(store, "a")
    assert await outbox_b.settle_sending(now=NOW, own=False) == []  # expired, not yet declared
    await registry.declare_expired()
    settled = await outbox_b.settle_sending(now=NOW, own=False)

    assert [message_id for message_id, _, _ in settled] == [first.id]
    states = await message_states(store)
    assert states[first.id] == ("queued", None)
    assert states[second.id] == ("sending", "b")  # its own, in flight: never settled by itself


@pytest.mark.postgres
async def test_a_dead_worker_cannot_undo_what_took_its_message_over(postgres_store: Store) -> None:
    store = postgres_store
    registry = await join(store, "a", "b")
    await queue_message(store, now)
    outbox_a, outbox_b = OutboxStore(store, owner="a"), OutboxStore(store, owner="b")
    [claimed] = await outbox_a.claim_due(now=NOW, limit=1)
    await expire(store, "a")  # paused mid-send
    await registry.declare_expired()
    await outbox_b.settle_sending(now=NOW, own=False)
    [again] = await outbox_b.claim_due(now=NOW, limit=1)

    late_retry = MessageOutcome("retry", claimed.id, NOW, at=NOW, error="late", code=None)
    assert await outbox_a.record_outcome(late_retry) is False  # fenced
    assert (await message_states(store))[again.id] == ("sending", "b")


async def test_the_sqlite_store_serves_one_worker(tmp_path: Path) -> None:
    database = f"{tmp_path}/outreach.db"
    first, second = SqliteLock(database), SqliteLock(database)
    first.acquire()
    try:
        with pytest.raises(StoreError, match="SQLite serves one worker: to run several, use Post"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # free once the first daemon is gone
    second.release()


def slot(campaign: str, campaign_id: int, owner: str, **fields: str) -> SlotRequest:
    return SlotRequest(
        campaign=campaign,
        campaign_id=campaign_id,
        owner=owner,
        pbx=fields.get("pbx", "site-a"),
        agent_queue=fields.get("agent_queue"),
    )


@pytest.mark.postgres
async def test_a_campaign_runs_on_one_worker_until_it_dies(postgres_store: Store) -> None:
    store = postgres_store
    registry = await join(store, "a", "b")
    slots, campaigns = RunnerSlotStore(store), CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(
        campaign_id, [NewContact("+8613800001001"), NewContact("+8613800001002")], NOW
    )
    assert await slots.claim(slot("refusal", campaign_id, "a")) is True
    assert await slots.claim(slot("refusal", campaign_id, "b")) is False
    assert await slots.claim(slot("refusal", campaign_id, "a")) is True  # held already
    in_flight = await campaigns.claim_next(campaign_id, owner="a", now=NOW, lease_s=60)
    assert in_flight is not None
    assert (await campaigns.summary(campaign_id))["worker"] == "a"  # what supervisors see

    await expire(store, "a")
    assert await slots.claim(slot("refusal", campaign_id, "b")) is False  # not declared yet
    await registry.declare_expired()
    assert (await campaigns.summary(campaign_id))["worker"] is None  # nobody dials it now
    assert await slots.claim(slot("refusal", campaign_id, "b")) is True
    assert (await campaigns.summary(campaign_id))["worker"] == "b"

    assert await slots.holders() == {"refusal": "b"}
    assert (await contact_owners(store))[in_flight.phone] == "b"  # adopted: b recovers it


@pytest.mark.postgres
async def test_campaigns_of_one_agent_queue_run_on_one_worker(postgres_store: Store) -> None:
    store = postgres_store
    await join(store, "a", "b")
    slots, campaigns = RunnerSlotStore(store), CampaignStore(store)
    gold = await campaigns.ensure_campaign("gold", "vip")
    platinum = await campaigns.ensure_campaign("platinum", "vip")
    assert await slots.claim(slot("gold", gold, "a", agent_queue="vip-agents")) is True
    assert await slots.claim(slot("platinum", platinum, "b", agent_queue="vip-agents")) is False
    assert await slots.claim(slot("platinum", platinum, "a", agent_queue="vip-agents")) is True
    other_pbx = slot("platinum", platinum, "b", agent_queue="vip-agents", pbx="site-b")
    await slots.release("a")
    assert await slots.claim(other_pbx) is True  # the same queue name on another PBX


@pytest.mark.postgres
async def test_a_campaign_leaves_a_dead_pbx_only_once_its_calls_there_are_settled(
    postgres_store: Store,
) -> None:
    store = postgres_store
    registry = await join(store, "a")
    await registry.register(worker("b", pbx="site-b"), lease_s=LEASE_S)
    slots, campaigns = RunnerSlotStore(store), CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(campaign_id, [NewContact("+8613800001001")], NOW)
    assert await slots.claim(slot("refusal", campaign_id, "a")) is True
    contact = await campaigns.claim_next(campaign_id, owner="a", now=NOW, lease_s=60)
    assert contact is not None
    await expire(store, "a")
    await registry.declare_expired()

    on_site_b = slot("refusal", campaign_id, "b", pbx="site-b")
    assert await slots.claim(on_site_b) is False  # its call is on site-a: b cannot see it
    await campaigns.put_back(contact.id, due_at=NOW, now=NOW)  # settled by a site-a worker
    assert await slots.claim(on_site_b) is True
