"""TwilioNotifier: the real twilio SDK over real HTTP to our local Twilio-compatible server."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from notifiers import (
    OutboundSms,
    PermanentError,
    TransientError,
    TwilioNotifier,
    send_with_retry,
)
from tests.fakes.clock import RecordingSleep
from tests.fakes.twilio_server import VALID_FROM, FakeTwilioServer, Fault

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test_auth_token"
CUSTOMER = "+15558675310"


def sms(
    to: str = CUSTOMER, body: str = "Your order has shipped", status_callback_url: str | None = None
) -> OutboundSms:
    return OutboundSms("msg-42", to, body, status_callback_url=status_callback_url)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioServer]:
    async with FakeTwilioServer(auth_token=AUTH_TOKEN) as server:
        yield server


async def twilio_for(fake: FakeTwilioServer, **overrides: object) -> TwilioNotifier:
    options: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": VALID_FROM,
        "base_url": fake.base_url,
        "timeout_s": 5.0,
    }
    options.update(overrides)
    return TwilioNotifier(**options)  # type: ignore[arg-type]


@pytest.fixture
async def twilio(fake: FakeTwilioServer) -> AsyncIterator[TwilioNotifier]:
    async with await twilio_for(fake) as notifier:
        yield notifier


@dataclass(frozen=True)
class ReceivedCallback:
    signature: str
    form: dict[str, str]


@pytest.fixture
async def callback_receiver() -> AsyncIterator[tuple[str, list[ReceivedCallback]]]:
    """A status-callback endpoint on 127.0.0.1; yields its base url and what it received."""
    received: list[ReceivedCallback] = []

    async def status(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        received.append(ReceivedCallback(request.headers.get("X-Twilio-Signature", ""), form))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/v1/sms/twilio/status", status)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- sending


async def test_a_send_returns_the_sm_sid_and_the_server_saw_body_and_status_callback(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    body = "【优品购】您的订单已发货，回复TD退订"
    callback = "https://outreach.example.com/v1/sms/twilio/status?tenant=42"
    result = await twilio.send(sms(body=body, status_callback_url=callback))
    assert result.provider == "twilio"
    assert result.provider_message_id.startswith("SM")
    assert result.status == "queued"
    (create,) = fake.received
    assert create.account_sid == ACCOUNT_SID
    assert create.form["To"] == CUSTOMER
    assert create.form["From"] == VALID_FROM
    assert create.form["Body"] == body
    assert create.form["StatusCallback"] == callback
    assert fake.messages[result.provider_message_id]["body"] == body


async def test_a_messaging_service_sends_as_accepted(fake: FakeTwilioServer) -> None:
    service = "MG" + "1" * 32
    async with await twilio_for(fake, from_number=None, messaging_service_sid=service) as notifier:
        result = await notifier.send(sms())
    assert result.status == "accepted"
    assert fake.received[0].form["MessagingServiceSid"] == service
    assert "From" not in fake.received[0].form


async def test_the_notifiers_own_status_callback_is_used_when_the_message_has_none(
    fake: FakeTwilioServer,
) -> None:
    default = "https://outreach.example.com/v1/sms/twilio/status"
    async with await twilio_for(fake, status_callback_url=default) as notifier:
        await notifier.send(sms())
        await notifier.send(sms(status_callback_url=default + "?x=1"))
    assert [c.form["StatusCallback"] for c in fake.received] == [default, default + "?x=1"]


async def test_without_a_status_callback_none_is_sent(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    await twilio.send(sms())
    assert "StatusCallback" not in fake.received[0].form


async def test_status_callbacks_arrive_signed_for_the_exact_url(
    fake: FakeTwilioServer,
    twilio: TwilioNotifier,
    callback_receiver: tuple[str, list[ReceivedCallback]],
) -> None:
    base, received = callback_receiver
    url = f"{base}/v1/sms/twilio/status?tenant=42&msg=a%20b"
    result = await twilio.send(sms(status_callback_url=url))
    callbacks = await fake.wait_for_callbacks(2)
    assert [c.params["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
    assert all(c.response_status == 204 for c in callbacks)
    assert {c.params["MessageSid"] for c in callbacks} == {result.provider_message_id}
    assert len(received) == 2
    validator = RequestValidator(AUTH_TOKEN)
    for callback in received:
        assert validator.validate(url, callback.form, callback.signature)
        assert not validator.validate(url.replace("=42", "=43"), callback.form, callback.signature)


async def test_one_session_serves_sequential_sends(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    for _ in range(3):
        await twilio.send(sms())
    assert fake.creates_seen == 3
    assert len(fake.peers) == 1


async def test_the_base_url_wins_over_twilio_region_and_edge(
    fake: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    async with await twilio_for(fake) as notifier:
        result = await notifier.send(sms())
    assert result.provider_message_id in fake.messages


# --------------------------------------------------------------------------- Twilio's errors


async def test_an_opted_out_number_is_permanent_after_exactly_one_post(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    sleep = RecordingSleep()
    with pytest.raises(PermanentError) as raised:
        await send_with_retry(twilio, sms(to="+15005550004"), attempts=5, sleep=sleep)
    assert raised.value.opted_out
    assert raised.value.code == 21610
    assert raised.value.provider == "twilio"
    assert fake.creates_seen == 1
    assert sleep.delays_s == []


@pytest.mark.parametrize(
    ("to", "from_", "code", "reason"),
    [
        ("+15005550001", VALID_FROM, 21211, "number"),
        ("+15005550002", VALID_FROM, 21612, "number"),
        ("+15005550003", VALID_FROM, 21408, "number"),
        ("+15005550009", VALID_FROM, 21614, "number"),
        (CUSTOMER, "+15005550001", 21212, "provider"),
        (CUSTOMER, "+15005550007", 21606, "provider"),
    ],
)
async def test_twilio_error_bodies_become_permanent_errors_with_their_reason(
    fake: FakeTwilioServer, to: str, from_: str, code: int, reason: str
) -> None:
    async with await twilio_for(fake, from_number=from_) as notifier:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms(to=to))
    assert (raised.value.code, raised.value.reason) == (code, reason)
    assert raised.value.__cause__ is not None  # the SDK's exception is kept


async def test_a_full_sender_queue_is_transient(fake: FakeTwilioServer) -> None:
    async with await twilio_for(fake, from_number="+15005550008") as notifier:
        with pytest.raises(TransientError) as raised:
            await notifier.send(sms())
    assert raised.value.code == 21611
    assert not raised.value.ambiguous


async def test_a_wrong_auth_token_is_a_permanent_provider_error(fake: FakeTwilioServer) -> None:
    async with await twilio_for(fake, auth_token="wrong") as notifier:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms())
    assert (raised.value.code, raised.value.reason) == (20003, "provider")


async def test_two_503s_then_201_succeed_after_three_posts_without_waiting(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    fake.fail_next(Fault(status=503), count=2)
    sleep = RecordingSleep()
    started = time.monotonic()
    result = await send_with_retry(twilio, sms(), attempts=3, sleep=sleep)
    assert result.provider_message_id.startswith("SM")
    assert fake.creates_seen == 3
    assert len(sleep.delays_s) == 2
    assert time.monotonic() - started < 2.0  # the recorded waits were not slept


async def test_429_carries_retry_after(fake: FakeTwilioServer, twilio: TwilioNotifier) -> None:
    fake.fail_next(Fault(status=429, retry_after="7"))
    with pytest.raises(TransientError) as raised:
        await twilio.send(sms())
    assert raised.value.retry_after_s == 7
    assert raised.value.code == 20429
    assert raised.value.ambiguous is False


async def test_429_then_success_waits_the_retry_after(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    fake.fail_next(Fault(status=429, retry_after="3"))
    sleep = RecordingSleep()
    await send_with_retry(twilio, sms(), initial_wait_s=0.5, sleep=sleep)
    assert sleep.delays_s == [3.0]
    assert fake.creates_seen == 2


async def test_a_retry_after_from_a_previous_answer_does_not_leak_into_the_next(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    fake.fail_next(Fault(status=429, retry_after="7"))
    fake.fail_next(Fault(status=500))
    with pytest.raises(TransientError):
        await twilio.send(sms())
    with pytest.raises(TransientError) as raised:
        await twilio.send(sms())
    assert raised.value.retry_after_s is None


async def test_concurrent_sends_each_get_their_own_retry_after(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    for seconds in range(1, 9):
        fake.fail_next(Fault(status=429, retry_after=str(seconds), delay_s=0.01 * (seconds % 3)))

    async def retry_after_of_one_send() -> float | None:
        with pytest.raises(TransientError) as raised:
            await twilio.send(sms())
        return raised.value.retry_after_s

    answers = await asyncio.gather(*(retry_after_of_one_send() for _ in range(8)))
    assert sorted(answer or 0 for answer in answers) == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_an_html_503_is_transient_and_ambiguous_with_its_retry_after(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    fake.fail_next(Fault(status=503, html=True, retry_after="2"))
    with pytest.raises(TransientError) as raised:
        await twilio.send(sms())
    assert raised.value.code == 503
    assert raised.value.ambiguous is True
    assert raised.value.retry_after_s == 2


async def test_a_json_500_is_transient_and_ambiguous(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    with pytest.raises(TransientError) as raised:
        await twilio.send(sms(to="+15005550500"))
    assert (raised.value.code, raised.value.ambiguous) == (20500, True)


# --------------------------------------------------------------------------- the network


async def test_a_stalled_server_is_a_transient_error_after_the_timeout(
    fake: FakeTwilioServer,
) -> None:
    fake.fail_next(Fault(stall=True))
    async with await twilio_for(fake, timeout_s=0.3) as notifier:
        started = time.monotonic()
        with pytest.raises(TransientError) as raised:
            await notifier.send(sms())
        elapsed = time.monotonic() - started
    assert raised.value.ambiguous is True
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert 0.25 <= elapsed < 2.0


async def test_a_connection_reset_is_transient_and_ambiguous(
    fake: FakeTwilioServer, twilio: TwilioNotifier
) -> None:
    fake.fail_next(Fault(reset=True))
    with pytest.raises(TransientError) as raised:
        await twilio.send(sms())
    assert raised.value.ambiguous is True
    assert fake.creates_seen == 1
    result = await twilio.send(sms())  # the session recovers with a new connection
    assert result.provider_message_id.startswith("SM")


async def test_connection_refused_is_transient_and_not_ambiguous() -> None:
    async with TwilioNotifier(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=VALID_FROM,
        base_url=f"http://127.0.0.1:{closed_port()}",
        timeout_s=2.0,
    ) as notifier:
        with pytest.raises(TransientError) as raised:
            await notifier.send(sms())
    assert raised.value.ambiguous is False
    assert raised.value.retry_after_s is None


# --------------------------------------------------------------------------- lifecycle


async def test_close_leaves_no_unclosed_session_behind(
    fake: FakeTwilioServer, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = await twilio_for(fake)
    await notifier.send(sms())
    await notifier.close()
    assert notifier.closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del notifier
        gc.collect()
        await asyncio.sleep(0)
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "Unclosed" not in caplog.text


async def test_a_notifier_dropped_unclosed_is_reported_by_aiohttp(
    fake: FakeTwilioServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The check above can fail: without close(), aiohttp does complain."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    notifier = await twilio_for(fake)  # never used: no connection is left open
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del notifier
        gc.collect()
    assert any("Unclosed client session" in str(w.message) for w in caught)


async def test_close_may_be_called_twice(fake: FakeTwilioServer) -> None:
    notifier = await twilio_for(fake)
    await notifier.close()
    await notifier.close()
    assert notifier.closed


def test_building_outside_the_event_loop_says_how_to_do_it() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        TwilioNotifier(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=VALID_FROM)


async def test_credentials_are_required_before_any_session_is_opened() -> None:
    with pytest.raises(ValueError, match="account_sid and auth_token"):
        TwilioNotifier(account_sid=ACCOUNT_SID, auth_token="", from_number=VALID_FROM)


async def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioNotifier(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
