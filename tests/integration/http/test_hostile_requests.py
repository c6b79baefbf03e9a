"""Bad input to the daemon's API, each once a 500 with a traceback in the log: now a 4xx with a
JSON body naming what is wrong, nothing stored, and no ERROR logged."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from dialer.store.schema import contacts, events
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN
from tests.integration.daemon_app import PUBLIC_URL, DaemonApp, daemon_app
from tests.integration.sms_support import AUTH, TOKEN, event
from tests.support import raw_request, until

JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[DaemonApp]:
    async with daemon_app(tmp_path) as app:
        yield app


def errors_in(log_output: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    return [line for line in lines if line["level"] in ("error", "critical") or "exception" in line]


async def count(api: DaemonApp, table: sa.Table) -> int:
    async with api.store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def post_event(api: DaemonApp, body: str | bytes, **headers: str) -> tuple[int, Any]:
    response = await api.client.post("/v1/events", data=body, headers={**JSON, **headers})
    return response.status, await response.json()


def field_of(answer: dict[str, Any]) -> str:
    [item] = answer["fields"]
    return str(item["field"])


# -- the JSON body of POST /v1/events --------------------------------------------------------------


async def test_json_nested_thousands_deep_is_400_not_a_recursion_error(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    status, answer = await post_event(api, "[" * 5000 + "]" * 5000)
    assert status == 400
    assert "nested too deeply" in answer["error"]
    assert errors_in(log_output) == []


async def test_a_context_nested_past_the_limit_is_422_naming_where(api: DaemonApp) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    response = await api.client.post(
        "/v1/campaigns/refusal-callback/contacts",
        json=[{"phone": "+8613800001001", "context": deep}],
        headers=AUTH,
    )
    answer = await response.json()
    assert response.status == 422
    assert field_of(answer).startswith("0.context.a.a.a")
    assert answer["fields"][0]["message"] == "nested deeper than 32 levels"
    assert await count(api, contacts) == 0


async def test_an_integer_of_5000_digits_is_400(api: DaemonApp, log_output: io.StringIO) -> None:
    body = json.dumps(event("e1")).replace('"data": {', '"data": {"amount": ' + "9" * 5000 + ", ")
    status, answer = await post_event(api, body)
    assert status == 400
    assert "more than 100 digits" in answer["error"]
    assert errors_in(log_output) == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_nan_infinity_and_out_of_range_numbers_are_400(api: DaemonApp, constant: str) -> None:
    body = json.dumps(event("e1")).replace('"data": {', '"data": {"amount": ' + constant + ", ")
    status, _ = await post_event(api, body)
    assert status == 400
    assert await count(api, events) == 0


async def test_an_unknown_charset_is_415_naming_the_content_type(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    status, answer = await post_event(
        api, json.dumps(event("e1")), **{"Content-Type": "application/json; charset=foo"}
    )
    assert status == 415
    assert answer["field"] == "Content-Type"
    assert "'foo'" in answer["error"]
    assert errors_in(log_output) == []


async def test_a_declared_charset_python_knows_is_still_read(api: DaemonApp) -> None:
    body = json.dumps(event("e1"), ensure_ascii=False).encode("utf-16")
    status, _ = await post_event(api, body, **{"Content-Type": "application/json; charset=utf-16"})
    assert status == 202


async def test_a_lone_surrogate_filling_a_placeholder_is_422_naming_the_field(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    body = json.dumps(event("e1", data={"courier": "SF\ud800", "tracking_number": "1"}))
    assert "\\ud800" in body
    status, answer = await post_event(api, body)
    assert status == 422
    assert field_of(answer) == "data.courier"
    assert "lone surrogate" in answer["fields"][0]["message"]
    assert await count(api, events) == 0
    assert errors_in(log_output) == []


async def test_a_nul_in_a_value_is_422_naming_the_field(api: DaemonApp) -> None:
    status, answer = await post_event(api, json.dumps(event("e1\x00")))
    assert status == 422
    assert field_of(answer) == "event_id"
    assert "NUL" in answer["fields"][0]["message"]


async def test_a_key_given_twice_is_422_naming_the_key(api: DaemonApp) -> None:
    body = json.dumps(event("e1")).replace('"stage": "shipped"', '"stage": "shipped", "stage": "x"')
    status, answer = await post_event(api, body)
    assert status == 422
    assert field_of(answer) == "stage"
    assert "more than once" in answer["fields"][0]["message"]


async def test_a_number_as_occurred_at_is_422_not_the_unix_epoch(api: DaemonApp) -> None:
    status, answer = await post_event(api, json.dumps({**event("e1"), "occurred_at": 0}))
    assert status == 422
    assert field_of(answer) == "occurred_at"
    assert "string" in answer["fields"][0]["message"]
    assert await count(api, events) == 0


async def test_a_number_as_phone_says_the_phone_must_be_a_string(api: DaemonApp) -> None:
    status, answer = await post_event(api, json.dumps({**event("e1"), "phone": 13812345678}))
    assert status == 422
    assert field_of(answer) == "phone"
    assert "phone must be a string" in answer["fields"][0]["message"]


# -- credentials that are not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [b"Authorization: Bearer \xff\xfe" + TOKEN.encode(), b"Cookie: outreach_session=\xff\xfe\x80"],
)
async def test_a_credential_that_is_not_utf8_is_401_and_logs_no_error(
    api: DaemonApp, log_output: io.StringIO, header: bytes
) -> None:
    port = api.client.port
    assert port is not None
    request = (
        b"GET /v1/campaigns HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = await raw_request(port, request)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert errors_in(log_output) == []


# -- contacts --------------------------------------------------------------------------------------


async def test_a_contact_priority_of_ten_to_the_twenty_refuses_that_row_only(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    rows = [
        {"phone": "+8613800001001", "priority": 10**20},
        {"phone": "+8613800001002", "priority": 7},
    ]
    response = await api.client.post(
        "/v1/campaigns/refusal-callback/contacts", json=rows, headers=AUTH
    )
    answer = await response.json()
    assert response.status == 200
    assert [row["status"] for row in answer["rows"]] == ["refused", "added"]
    assert answer["rows"][0]["reason"].startswith("priority: ")
    assert await count(api, contacts) == 1
    assert errors_in(log_output) == []


async def test_a_lone_surrogate_in_a_contact_name_is_422_naming_it(api: DaemonApp) -> None:
    body = json.dumps([{"phone": "+8613800001001"}, {"phone": "+8613800001002", "name": "\udc00"}])
    response = await api.client.post(
        "/v1/campaigns/refusal-callback/contacts", data=body, headers=JSON
    )
    answer = await response.json()
    assert response.status == 422
    assert field_of(answer) == "1.name"
    assert await count(api, contacts) == 0


@pytest.mark.parametrize("name", ['a"b', "x'y\\z", "<script>"])
async def test_an_unknown_campaign_is_a_404_whose_body_is_json(api: DaemonApp, name: str) -> None:
    response = await api.client.get(f"/v1/campaigns/{name}", headers=AUTH)
    answer = json.loads(await response.text())
    assert response.status == 404
    assert answer["error"].startswith(f"no campaign {name!r}; defined: ")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/campaigns/}", 404), ("GET", "/nowhere", 404), ("PUT", "/v1/events", 405)],
)
async def test_what_no_route_answers_is_still_a_json_body(
    api: DaemonApp, method: str, path: str, status: int
) -> None:
    response = await api.client.request(method, path, headers=AUTH)
    assert response.status == status
    assert "error" in json.loads(await response.text())


# -- ids in paths and query strings ----------------------------------------------------------------


@pytest.mark.parametrize("raw_id", ["١٢٣", "²", "9" * 25, "-1", "1.0"])
async def test_a_dead_message_id_that_is_no_id_is_404(
    api: DaemonApp, log_output: io.StringIO, raw_id: str
) -> None:
    response = await api.client.post(f"/v1/sms/dead/{raw_id}/replay", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["field"] == "id"
    assert errors_in(log_output) == []


@pytest.mark.parametrize("limit", ["²", "١٠", "9" * 25, "0"])
async def test_a_dead_letter_limit_that_is_no_number_in_range_is_422(
    api: DaemonApp, log_output: io.StringIO, limit: str
) -> None:
    response = await api.client.get("/v1/sms/dead", params={"limit": limit}, headers=AUTH)
    assert response.status == 422
    assert (await response.json())["field"] == "limit"
    assert errors_in(log_output) == []


@pytest.mark.parametrize("message_id", ["١", "9" * 25])
async def test_a_signed_status_callback_with_no_message_id_is_422(
    api: DaemonApp, log_output: io.StringIO, message_id: str
) -> None:
    path = f"/v1/sms/twilio/status?message_id={quote(message_id)}"  # as Twilio calls it
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(PUBLIC_URL + path, params)
    response = await api.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status == 422
    assert (await response.json())["field"] == "message_id"
    assert errors_in(log_output) == []


# -- a client that goes away -----------------------------------------------------------------------


async def test_a_client_gone_mid_body_leaves_at_most_one_warning_line(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    port = api.client.port
    assert port is not None
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        + b'{"event_id": "e1", '
    )
    await raw_request(port, request, close_after_send=True)
    await until(lambda: bool(log_output.getvalue()))  # the server noticed, and said so
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert errors_in(log_output) == []
    assert [line["event"] for line in lines] == ["http.client_disconnected"]
    assert "Traceback" not in log_output.getvalue()


# -- bodies that cannot be decoded (found by the fuzz test) ----------------------------------------


async def test_a_body_its_content_encoding_does_not_decode_is_400_and_logs_a_warning(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    status, answer = await post_event(api, json.dumps(event("e1")), **{"Content-Encoding": "gzip"})
    assert status == 400
    assert answer["field"] == "(body)"
    assert "cannot be read" in answer["error"]
    assert errors_in(log_output) == []


async def test_an_answer_given_without_reading_the_body_closes_the_connection(
    api: DaemonApp, log_output: io.StringIO
) -> None:
    response = await api.client.get(
        "/healthz", data=b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    again = await api.client.get("/healthz")  # a new connection, not the one closed
    assert response.status == 200
    assert response.headers["Connection"] == "close"
    assert again.status == 200
    assert errors_in(log_output) == []


# -- a hostile config file, reloaded -------------------------------------------------------------


async def test_reloading_an_alias_bomb_is_refused_at_the_line_of_the_alias(
    api: DaemonApp, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["ami: {username: outreach, secret: x}", "api: {token: x}", "a0: &a0 [x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\n")
    api.daemon.config_path = bomb
    response = await api.client.post("/v1/reload", headers=AUTH)
    answer = await response.json()
    assert response.status == 422
    assert answer["errors"] == [
        f"{bomb}:8: a5: expands to more than 100000 values (aliases used too often)"
    ]
