"""`GET /v1/contacts/{phone}/timeline` over real HTTP, on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.http.server import make_web_app
from dialer.http.timeline import add_timeline_routes
from dialer.store import Store
from dialer.store.timeline import TimelineStore
from dialer.timeline import NewEntry
from tests.integration.sms_support import AUTH, TOKEN, all_ready

PHONE = "+8613812345678"
AT = datetime(2026, 12, 6, 6, 5, tzinfo=UTC)


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    await TimelineStore(store).record(
        [
            NewEntry(PHONE, AT + timedelta(seconds=1), "sms_queued", "refused", order_id="A1"),
            NewEntry(PHONE, AT, "event_received", "refused", order_id="A1"),
            NewEntry(PHONE, AT + timedelta(seconds=9), "dialled", "attempt 1", campaign="rc"),
        ]
    )
    app = make_web_app(all_ready, max_body_bytes=65536, api_token=TOKEN)
    add_timeline_routes(app, store, default_region="CN")
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_the_entries_come_oldest_first_for_the_number_in_any_format(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/contacts/138-1234-5678/timeline", headers=AUTH)
    assert response.status == 200
    document = await response.json()
    assert document["phone"] == PHONE
    kinds = [entry["kind"] for entry in document["entries"]]
    assert kinds == ["event_received", "sms_queued", "dialled"]
    assert document["entries"][2]["campaign"] == "rc"


async def test_limit_keeps_the_last_entries(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/contacts/%2B8613812345678/timeline?limit=1", headers=AUTH)
    assert [entry["kind"] for entry in (await response.json())["entries"]] == ["dialled"]


async def test_a_number_that_does_not_parse_is_a_422_naming_phone(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/contacts/12ab/timeline", headers=AUTH)
    assert response.status == 422
    fields = (await response.json())["fields"]
    assert [field["field"] for field in fields] == ["phone"]


async def test_a_bad_limit_is_a_422_naming_limit(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/contacts/13812345678/timeline?limit=0", headers=AUTH)
    assert response.status == 422
    assert (await response.json())["fields"][0]["field"] == "limit"


async def test_without_the_token_it_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/contacts/13812345678/timeline")
    assert response.status == 401
