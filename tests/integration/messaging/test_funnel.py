"""GET /v1/sms/funnel over real HTTP against a real store (SQLite and PostgreSQL): messages by
order stage and current status, the configured stages first; and `?limit` on /v1/sms/dead."""

from __future__ import annotations

from pathlib import Path

from dialer.store import OutboxStore, Store
from dialer.store.schema import MESSAGE_STATUSES
from tests.integration.sms_support import (
    AUTH,
    Now,
    api_client,
    mark_dead,
    queue_message,
    record_sent,
    sms_settings,
)

CONFIGURED = ["order_confirmed", "shipped", "delivered", "refused", "refund_issued"]


def zeros(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(MESSAGE_STATUSES, 0), **counts}


async def fill_outbox(store: Store, now: Now) -> None:
    """shipped: 1 delivered, 1 sent, 1 dead, 1 queued; refused: 1 sent; a stage no longer
    configured (legacy_stage): 1 dead."""
    ids = {
        name: await queue_message(store, now, order_id=f"A{i}", stage=stage)
        for i, (name, stage) in enumerate(
            [
                ("delivered", "shipped"),
                ("sent", "shipped"),
                ("dead", "shipped"),
                ("refused_sent", "refused"),
                ("legacy_dead", "legacy_stage"),
            ]
        )
    }
    claimed = await OutboxStore(store).claim_due(now=now(), limit=10)
    assert {message.id for message in claimed} == set(ids.values())
    for name in ("delivered", "sent", "refused_sent"):
        await record_sent(store, ids[name], provider="outbox", provider_message_id=name, now=now())
    await OutboxStore(store).record_delivery_status(
        status="delivered", now=now(), message_id=ids["delivered"]
    )
    for name in ("dead", "legacy_dead"):
        await mark_dead(
            store, ids[name], reason="provider", error="invalid To", code="21211", now=now()
        )
    await queue_message(store, now, order_id="A9", stage="shipped")  # still queued


async def test_the_funnel_counts_each_stage_by_current_status(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    await fill_outbox(store, now)
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, now) as (client, _):
        response = await client.get("/v1/sms/funnel", headers=AUTH)
        body = await response.json()
    assert response.status == 200
    assert body["statuses"] == list(MESSAGE_STATUSES)
    by_stage = {row["stage"]: row for row in body["stages"]}
    assert [row["stage"] for row in body["stages"]] == [*CONFIGURED, "legacy_stage"]
    assert by_stage["shipped"]["counts"] == zeros(queued=1, sent=1, delivered=1, dead=1)
    assert by_stage["shipped"]["total"] == 4
    assert by_stage["refused"]["counts"] == zeros(sent=1)
    assert by_stage["legacy_stage"]["counts"] == zeros(dead=1)
    assert by_stage["order_confirmed"]["counts"] == zeros()
    assert by_stage["order_confirmed"]["total"] == 0


async def test_the_funnel_needs_the_token(store: Store, store_url: str, tmp_path: Path) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.get("/v1/sms/funnel")
    assert response.status == 401


async def test_the_dead_list_keeps_to_the_limit_newest_first(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    first = await queue_message(store, now, order_id="A1")
    second = await queue_message(store, now, order_id="A2")
    await OutboxStore(store).claim_due(now=now(), limit=10)
    for message_id in (first, second):
        now.advance(60)
        await mark_dead(
            store, message_id, reason="number", error="not a mobile", code=None, now=now()
        )
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, now) as (client, _):
        one = await (await client.get("/v1/sms/dead?limit=1", headers=AUTH)).json()
        every = await (await client.get("/v1/sms/dead", headers=AUTH)).json()
        refused = await client.get("/v1/sms/dead?limit=0", headers=AUTH)
    assert [item["id"] for item in one["dead"]] == [second]
    assert [item["id"] for item in every["dead"]] == [second, first]
    assert one["dead"][0]["reason"] == "number: not a mobile"
    assert refused.status == 422
