"""HttpGatewayNotifier over real HTTP to a local gateway stand-in."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from notifiers import (
    HttpGatewayNotifier,
    NotifyError,
    OutboundSms,
    PermanentError,
    TransientError,
    send_with_retry,
)
from tests.fakes.clock import RecordingSleep
from tests.fakes.sms_gateway import FakeSmsGateway, Reply

CN_BODY = "【优品购】您的订单SO-1001已发货，回复TD退订"
MESSAGE = OutboundSms(
    "msg-42", "+8613812345678", CN_BODY, extra={"order_id": "SO-1001", "stage": "shipped"}
)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeSmsGateway]:
    async with FakeSmsGateway() as server:
        yield server


async def notifier_for(gateway: FakeSmsGateway, **options: object) -> HttpGatewayNotifier:
    return HttpGatewayNotifier(url=gateway.url, timeout_s=5.0, **options)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- requests


async def test_a_json_body_is_rendered_from_the_template_with_headers_and_auth(
    gateway: FakeSmsGateway,
) -> None:
    async with await notifier_for(
        gateway,
        body={"mobile": "{phone}", "content": "{body}", "outId": "{message_id}", "sign": "优品购"},
        headers={"X-Tenant": "shop-1"},
        auth_header="Bearer s3cret",
        name="cn-gateway",
    ) as notifier:
        result = await notifier.send(MESSAGE)
    (request,) = gateway.received
    assert request.method == "POST"
    assert request.content_type == "application/json; charset=utf-8"
    assert request.json() == {
        "mobile": "+8613812345678",
        "content": CN_BODY,
        "outId": "msg-42",
        "sign": "优品购",
    }
    assert CN_BODY.encode("utf-8") in request.raw  # UTF-8, not \\u escapes
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Tenant"] == "shop-1"
    assert result.provider == "cn-gateway"
    assert result.provider_message_id == "gw-1"
    assert result.status == "accepted"


async def test_a_form_body_is_rendered_with_extra_values_and_put(
    gateway: FakeSmsGateway,
) -> None:
    async with await notifier_for(
        gateway,
        method="put",
        body_format="form",
        body={"to": "{to}", "text": "{body}", "ref": "{order_id}:{stage}"},
        auth_header="Key abc",
        auth_header_name="X-Api-Key",
    ) as notifier:
        await notifier.send(MESSAGE)
    (request,) = gateway.received
    assert request.method == "PUT"
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form() == {"to": "+8613812345678", "text": CN_BODY, "ref": "SO-1001:shipped"}
    assert request.headers["X-Api-Key"] == "Key abc"
    assert "Authorization" not in request.headers


async def test_a_template_placeholder_the_message_lacks_fails_before_any_request(
    gateway: FakeSmsGateway,
) -> None:
    async with await notifier_for(gateway, body={"to": "{to}", "t": "{tenant}"}) as notifier:
        with pytest.raises(PermanentError, match="tenant") as raised:
            await notifier.send(MESSAGE)
    assert raised.value.reason == "provider"
    assert gateway.received == []


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("reply", "provider_message_id"),
    [
        (Reply(200, json={"id": 12345}), "12345"),
        (Reply(200, json={"message_id": "m-9"}), "m-9"),
        (Reply(201, json={"sid": "s-9"}), "s-9"),
        (Reply(200, json={"ok": True}), "msg-42"),  # none: our own id stands in
        (Reply(202, text="OK"), "msg-42"),  # not JSON
    ],
)
async def test_the_provider_message_id_is_read_from_the_reply(
    gateway: FakeSmsGateway, reply: Reply, provider_message_id: str
) -> None:
    gateway.script(reply)
    async with await notifier_for(gateway) as notifier:
        result = await notifier.send(MESSAGE)
    assert result.provider_message_id == provider_message_id


async def test_a_configured_message_id_field_may_be_a_dotted_path(
    gateway: FakeSmsGateway,
) -> None:
    gateway.script(Reply(200, json={"code": "OK", "data": {"bizId": "9f3a", "id": "wrong"}}))
    async with await notifier_for(gateway, message_id_field="data.bizId") as notifier:
        result = await notifier.send(MESSAGE)
    assert result.provider_message_id == "9f3a"


@pytest.mark.parametrize(
    ("status", "kind", "detail"),
    [
        (400, PermanentError, "provider"),
        (401, PermanentError, "provider"),
        (409, PermanentError, "provider"),  # unlisted 4xx
        (429, TransientError, False),
        (500, TransientError, True),
        (503, TransientError, True),
        (507, TransientError, True),  # unlisted 5xx
    ],
)
async def test_statuses_map_to_permanent_or_transient_errors(
    gateway: FakeSmsGateway, status: int, kind: type[NotifyError], detail: object
) -> None:
    gateway.script(Reply(status, json={"error": "nope"}))
    async with await notifier_for(gateway) as notifier:
        with pytest.raises(NotifyError) as raised:
            await notifier.send(MESSAGE)
    error = raised.value
    assert type(error) is kind
    assert error.code == status
    assert "nope" in str(error)  # the gateway's answer, for the log
    if isinstance(error, PermanentError):
        assert error.reason == detail
    else:
        assert isinstance(error, TransientError)
        assert error.ambiguous is detail


async def test_configured_lists_decide_success_and_number_failures(
    gateway: FakeSmsGateway,
) -> None:
    gateway.script(Reply(299, json={"id": "x"}), Reply(400, json={"error": "bad mobile"}))
    async with await notifier_for(
        gateway, success_statuses=(299,), number_statuses=(400,)
    ) as notifier:
        assert (await notifier.send(MESSAGE)).provider_message_id == "x"
        with pytest.raises(PermanentError) as raised:
            await notifier.send(MESSAGE)
    assert raised.value.reason == "number"


@pytest.mark.parametrize(
    ("header", "seconds"), [("7", 7.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)]
)
async def test_retry_after_is_honoured(
    gateway: FakeSmsGateway, header: str, seconds: float
) -> None:
    gateway.script(Reply(429, json={"error": "slow down"}, retry_after=header))
    async with await notifier_for(gateway) as notifier:
        with pytest.raises(TransientError) as raised:
            await notifier.send(MESSAGE)
    assert raised.value.retry_after_s == seconds


async def test_two_503s_then_success_with_retries(gateway: FakeSmsGateway) -> None:
    gateway.script(Reply(503), Reply(503, retry_after="2"), Reply(200, json={"id": "ok"}))
    sleep = RecordingSleep()
    async with await notifier_for(gateway) as notifier:
        result = await send_with_retry(notifier, MESSAGE, attempts=3, sleep=sleep)
    assert result.provider_message_id == "ok"
    assert len(gateway.received) == 3
    assert sleep.delays_s[1] == 2.0


# --------------------------------------------------------------------------- the network


async def test_a_stalled_gateway_is_a_transient_error_after_the_timeout(
    gateway: FakeSmsGateway,
) -> None:
    gateway.script(Reply(stall=True))
    async with HttpGatewayNotifier(url=gateway.url, timeout_s=0.3) as notifier:
        started = time.monotonic()
        with pytest.raises(TransientError) as raised:
            await notifier.send(MESSAGE)
        elapsed = time.monotonic() - started
    assert raised.value.ambiguous is True
    assert 0.25 <= elapsed < 2.0


async def test_connection_refused_is_transient_and_not_ambiguous() -> None:
    url = f"http://127.0.0.1:{closed_port()}/sms/send"
    async with HttpGatewayNotifier(url=url, timeout_s=2.0) as notifier:
        with pytest.raises(TransientError) as raised:
            await notifier.send(MESSAGE)
    assert raised.value.ambiguous is False


async def test_close_closes_the_session(gateway: FakeSmsGateway) -> None:
    notifier = await notifier_for(gateway)
    await notifier.send(MESSAGE)
    await notifier.close()
    assert notifier.closed
