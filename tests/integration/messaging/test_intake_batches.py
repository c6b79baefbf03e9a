"""POST /v1/events with a JSON array, over real HTTP, on SQLite and PostgreSQL: each event
answered as if posted alone, in order; only the valid ones stored; the limits of a batch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dialer.config import Settings
from dialer.store import OptOutStore, Store
from dialer.store.schema import contacts, events, outbound_messages
from tests.integration.sms_support import AUTH, Now, api_client, event, sms_settings

OPTED_OUT = "+8613900001111"
ROOM_FOR_500_EVENTS = 262_144  # the max_body_bytes README advises for batches of 500


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def stored_event_ids(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set((await conn.scalars(sa.select(events.c.event_id))).all())


def with_body_limit(settings: Settings, max_body_bytes: int) -> Settings:
    api = settings.api.model_copy(update={"max_body_bytes": max_body_bytes})
    return settings.model_copy(update={"api": api})


def without_place(result: dict[str, Any]) -> dict[str, Any]:
    """A batch result as the single-event route would answer it (no index, no status)."""
    return {key: value for key, value in result.items() if key not in ("index", "status")}


async def test_a_mixed_batch_answers_each_event_in_order_and_stores_only_the_valid_ones(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    await OptOutStore(store).opt_out(OPTED_OUT, source="test", now=datetime.now(UTC))
    bad_stage = event("bad", stage="teleported", order_id="A9")
    batch: list[Any] = [
        event("e1", order_id="A1"),  # 0 new
        bad_stage,  # 1 invalid field
        event("e0", order_id="A0"),  # 2 the event posted alone before
        event("e1", order_id="A1"),  # 3 again, within the batch
        event("e1", order_id="B1"),  # 4 the same event_id, another body
        event("e3", order_id="A3", phone=OPTED_OUT),  # 5 an opted-out number
        event("e4", order_id="A4", stage="refused"),  # 6 adds a refusal-callback contact
        42,  # 7 not an object
        [event("e5", order_id="A5")],  # 8 a nested array
    ]
    async with api_client(settings, store, Now()) as (client, _):
        before = await client.post("/v1/events", json=event("e0", order_id="A0"), headers=AUTH)
        first_answer = await before.json()
        response = await client.post("/v1/events", json=batch, headers=AUTH)
        answer = await response.json()
        alone_invalid = await client.post("/v1/events", json=bad_stage, headers=AUTH)
        alone_number = await client.post("/v1/events", json=42, headers=AUTH)
        alone_answers = [await alone_invalid.json(), await alone_number.json()]
    results = answer["results"]
    assert response.status == 200
    assert [item["index"] for item in results] == list(range(len(batch)))
    assert [item["status"] for item in results] == [202, 422, 200, 200, 409, 202, 202, 422, 422]
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 2, 4)
    assert results[0]["message"]["status"] == "queued"
    assert [without_place(results[1]), without_place(results[7])] == alone_answers
    assert [field["field"] for field in results[1]["fields"]] == ["stage"]
    assert without_place(results[2]) == first_answer
    assert without_place(results[3]) == without_place(results[0])
    assert results[4]["event_id"] == "e1"
    assert "different body" in results[4]["error"]
    assert (results[5]["message"], results[5]["message_skipped"]) == (None, "opted_out")
    assert [added["campaign"] for added in results[6]["contacts"]] == ["refusal-callback"]
    assert [field["field"] for field in results[8]["fields"]] == ["(body)"]
    assert await stored_event_ids(store) == {"e0", "e1", "e3", "e4"}
    assert await count(store, outbound_messages) == 3  # A0, A1, A4; none to the opted-out number
    assert await count(store, contacts) == 1


async def test_a_batch_of_invalid_events_answers_each_one(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    batch = [event("e1", phone="12"), {"event_id": "e2"}]
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=batch, headers=AUTH)
        answer = await response.json()
    assert response.status == 200
    assert [item["status"] for item in answer["results"]] == [422, 422]
    assert [field["field"] for field in answer["results"][0]["fields"]] == ["phone"]
    assert answer["rejected"] == 2
    assert await count(store, events) == 0


async def test_a_batch_of_500_events_is_accepted(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = with_body_limit(sms_settings(tmp_path, store_url=store_url), ROOM_FOR_500_EVENTS)
    batch = [event(f"e{i}", order_id=f"A{i}") for i in range(500)]
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=batch, headers=AUTH)
        answer = await response.json()
    assert response.status == 200
    assert answer["accepted"] == 500
    assert [item["event_id"] for item in answer["results"]] == [f"e{i}" for i in range(500)]
    assert len({item["message"]["id"] for item in answer["results"]}) == 500
    assert await count(store, events) == 500
    assert await count(store, outbound_messages) == 500


async def test_a_batch_of_501_events_is_refused_naming_the_limit(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = with_body_limit(sms_settings(tmp_path, store_url=store_url), ROOM_FOR_500_EVENTS)
    batch = [event(f"e{i}", order_id=f"A{i}") for i in range(501)]
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=batch, headers=AUTH)
        answer = await response.json()
    assert response.status == 413
    assert answer["error"] == "events: at most 500 per request, got 501"
    assert await count(store, events) == 0


async def test_an_empty_batch_is_400(store: Store, store_url: str, tmp_path: Path) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post("/v1/events", json=[], headers=AUTH)
        answer = await response.json()
    assert response.status == 400
    assert answer["error"] == "events: at least 1 per request, got 0"


async def test_the_same_batch_twice_is_all_duplicates_and_doubles_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, store_url=store_url)  # the default body limit
    batch = [
        event(f"e{i}", order_id=f"A{i}", stage="refused", phone=f"+861381234{i:04d}")
        for i in range(200)
    ]
    async with api_client(settings, store, Now()) as (client, _):
        first = await (await client.post("/v1/events", json=batch, headers=AUTH)).json()
        again = await (await client.post("/v1/events", json=batch, headers=AUTH)).json()
    assert (first["accepted"], first["duplicates"]) == (200, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 200)
    assert [item["status"] for item in again["results"]] == [200] * 200
    assert [without_place(item) for item in again["results"]] == [
        without_place(item) for item in first["results"]
    ]
    assert await count(store, events) == 200
    assert await count(store, outbound_messages) == 200
    assert await count(store, contacts) == 200
