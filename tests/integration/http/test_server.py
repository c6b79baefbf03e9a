"""The API's shared rules over real HTTP: bearer token on /v1, 413, 422 naming fields."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pydantic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.http.server import Check, make_web_app, mark_public, read_json, unprocessable

TOKEN = "s3cret-token"


class Order(pydantic.BaseModel):
    order_id: str
    items: list[int]


async def echo_order(request: web.Request) -> web.Response:
    try:
        order = Order.model_validate(await read_json(request))
    except pydantic.ValidationError as exc:
        return unprocessable(exc)
    return web.json_response(order.model_dump())


async def signed_callback(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def all_ready() -> list[Check]:
    return [Check("ami", True, "logged in")]


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = make_web_app(all_ready, max_body_bytes=1024, api_token=TOKEN)
    app.router.add_post("/v1/orders", echo_order)
    app.router.add_post("/v1/callback", signed_callback)
    mark_public(app, "/v1/callback")
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_v1_without_the_token_is_401(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/orders", json={"order_id": "A1", "items": []})
    assert response.status == 401
    assert (await response.json())["error"] == "missing or wrong bearer token"


async def test_v1_with_a_wrong_token_is_401(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/orders", json={}, headers={"Authorization": "Bearer nope"})
    assert response.status == 401


async def test_v1_with_the_token_reaches_the_handler(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/orders", json={"order_id": "A1", "items": [1]}, headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"order_id": "A1", "items": [1]}


async def test_a_public_route_needs_no_token(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/callback", data={"x": "1"})
    assert response.status == 200


async def test_health_and_readiness_need_no_token(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_an_invalid_body_is_422_naming_each_field(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/orders", json={"items": [1, "x"]}, headers=AUTH)
    body = await response.json()
    assert response.status == 422
    assert {item["field"] for item in body["fields"]} == {"order_id", "items.1"}


async def test_a_body_that_is_not_json_is_400(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.post("/v1/orders", data=b"{not json", headers=AUTH)
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]


async def test_an_oversized_body_is_413(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/v1/orders", data=b"x" * 4096, headers=AUTH)
    assert response.status == 413
