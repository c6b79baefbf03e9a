"""POST /v1/events over real HTTP, on SQLite and PostgreSQL: auth, limits, validation,
idempotency, one message per order and stage, opt-outs, quiet hours, campaign contacts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from dialer.store import OptOutStore, Store
from dialer.store.schema import contacts, events, outbound_messages
from tests.integration.sms_support import (
    AUTH,
    LANDLINE,
    MOBILE,
    Now,
    api_client,
    event,
    message_row,
    sms_settings,
)


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_an_event_without_the_token_is_401_and_stores_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=event("e1"))
    assert response.status == 401
    assert await count(store, events) == 0


async def test_an_oversized_event_is_413(store: Store, store_url: str, tmp_path: Path) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    big = event("e1", data={"courier": "x" * 100_000})
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=big, headers=AUTH)
    assert response.status == 413


async def test_an_event_queues_its_rendered_message_and_answers_202(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    now = Now()
    async with api_client(settings, store, now) as (client, _):
        response = await client.post("/v1/events", json=event("e1"), headers=AUTH)
        answer = await response.json()
    assert response.status == 202
    message = answer["message"]
    assert (message["status"], message["encoding"], message["segments"]) == ("queued", "UCS-2", 1)
    row = await message_row(store, message["id"])
    assert row["body"] == "【好物优选】订单A1001已由顺丰发出，运单号SF123，送达。"
    assert row["phone"] == MOBILE
    assert row["next_attempt_at"] == now()
    assert answer["contacts"] == []


async def test_unknown_stage_and_invalid_phone_are_422_naming_the_fields(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    bad = {**event("e1", stage="teleported", phone="12"), "colour": "red"}
    del bad["occurred_at"]
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=bad, headers=AUTH)
        answer = await response.json()
    assert response.status == 422
    fields = {item["field"]: item["message"] for item in answer["fields"]}
    assert set(fields) == {"stage", "phone", "occurred_at", "colour"}
    assert "unknown stage 'teleported'" in fields["stage"]
    assert "too short" in fields["phone"] or "not a valid" in fields["phone"]
    assert await count(store, events) == 0


async def test_a_naive_occurred_at_is_422(store: Store, store_url: str, tmp_path: Path) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        body = {**event("e1"), "occurred_at": "2025-06-02T12:00:00"}
        response = await client.post("/v1/events", json=body, headers=AUTH)
        answer = await response.json()
    assert response.status == 422
    assert [item["field"] for item in answer["fields"]] == ["occurred_at"]


async def test_the_same_event_again_is_200_with_the_same_answer_and_queues_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        first = await client.post("/v1/events", json=event("e1"), headers=AUTH)
        again = await client.post("/v1/events", json=event("e1"), headers=AUTH)
        assert (first.status, again.status) == (202, 200)
        assert await again.json() == await first.json()
    assert await count(store, outbound_messages) == 1
    assert await count(store, events) == 1


async def test_events_posted_at_once_each_get_their_own_answer(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    bodies = [event(f"e{i}", order_id=f"A{i}") for i in range(8)] + [event("e0", order_id="A0")]
    async with api_client(settings, store, Now()) as (client, _):
        responses = await asyncio.gather(
            *(client.post("/v1/events", json=body, headers=AUTH) for body in bodies)
        )
        answers = [await response.json() for response in responses]
    statuses = [response.status for response in responses]
    assert sorted(statuses) == [200] + [202] * 8
    assert answers[0] == answers[8]  # the same event twice at once: one answer
    assert [answer["order_id"] for answer in answers[:8]] == [f"A{i}" for i in range(8)]
    assert len({answer["message"]["id"] for answer in answers}) == 8
    assert await count(store, outbound_messages) == 8
    assert await count(store, events) == 8


async def test_an_event_id_reused_with_another_body_is_409(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        await client.post("/v1/events", json=event("e1"), headers=AUTH)
        other = await client.post("/v1/events", json=event("e1", order_id="B2"), headers=AUTH)
    assert other.status == 409
    assert await count(store, outbound_messages) == 1


async def test_a_second_event_for_the_same_order_and_stage_queues_no_second_message(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        await client.post("/v1/events", json=event("e1"), headers=AUTH)
        second = await client.post("/v1/events", json=event("e2"), headers=AUTH)
        answer = await second.json()
    assert second.status == 202
    assert (answer["message"], answer["message_skipped"]) == (None, "already_queued")
    assert await count(store, outbound_messages) == 1
    assert await count(store, events) == 2


async def test_an_opted_out_number_gets_no_message(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    await OptOutStore(store).opt_out(MOBILE, source="test", now=datetime.now(UTC))
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=event("e1"), headers=AUTH)
        answer = await response.json()
    assert response.status == 202
    assert (answer["message"], answer["message_skipped"]) == (None, "opted_out")
    assert await count(store, outbound_messages) == 0


async def test_a_landline_is_accepted_without_a_message(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=event("e1", phone=LANDLINE), headers=AUTH)
        answer = await response.json()
    assert response.status == 202
    assert (answer["message"], answer["message_skipped"]) == (None, "not_mobile")


async def test_a_non_urgent_message_in_quiet_hours_waits_for_their_end(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    quiet = '{start: "21:00", end: "08:00", timezone: Asia/Shanghai}'
    settings = sms_settings(tmp_path, store_url=store_url, quiet_hours=quiet)
    now = Now(datetime(2025, 6, 2, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    async with api_client(settings, store, now) as (client, _):
        shipped = await (await client.post("/v1/events", json=event("e1"), headers=AUTH)).json()
        refused = await (
            await client.post("/v1/events", json=event("e2", stage="refused"), headers=AUTH)
        ).json()
    assert shipped["message"]["next_attempt_at"] == "2025-06-03T00:00:00+00:00"  # 08:00 local
    assert refused["message"]["next_attempt_at"] == now().isoformat()  # urgent: at once


async def test_refused_adds_a_refusal_callback_contact_in_the_same_answer(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=event("e1", stage="refused"), headers=AUTH)
        answer = await response.json()
    [added] = answer["contacts"]
    assert added["campaign"] == "refusal-callback"
    assert added["merged"] is False
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(sa.select(contacts).where(contacts.c.id == added["contact_id"]))
        ).one()
    assert row.phone == MOBILE
    assert row.context["order_id"] == "A1001"


async def test_delivered_adds_a_vip_contact_only_for_a_vip(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        plain = await client.post(
            "/v1/events", json=event("e1", stage="delivered", order_id="P1"), headers=AUTH
        )
        vip = await client.post(
            "/v1/events",
            json=event("e2", stage="delivered", order_id="V1", vip=True),
            headers=AUTH,
        )
        plain_answer, vip_answer = await plain.json(), await vip.json()
    assert plain_answer["contacts"] == []
    assert [c["campaign"] for c in vip_answer["contacts"]] == ["vip-care"]
    row = await message_row(store, vip_answer["message"]["id"])
    assert row["body"].endswith("回复TD退订")
