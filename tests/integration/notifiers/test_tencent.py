"""TencentSmsNotifier: the real Tencent Cloud SDK over real HTTP to our local stand-in, which
checks its TC3-HMAC-SHA256 signature as Tencent Cloud does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from notifiers import (
    OutboundSms,
    PermanentError,
    ProviderTemplate,
    TencentSmsNotifier,
    TransientError,
    send_with_retry,
)
from notifiers.mainland import BEIJING
from tests.fakes.clock import RecordingSleep
from tests.fakes.cloud_sms_common import Fault, eventually
from tests.fakes.tencent_sms_server import FakeTencentSms

SECRET_ID, SECRET_KEY, APP_ID = "AKIDtest", "test-secret-key", "1400006666"
CUSTOMER = "+8613812345678"
TEMPLATE = ProviderTemplate("1110", {"name": "张三", "order": "A123"})


def sms(message_id: str = "msg-42", to: str = CUSTOMER) -> OutboundSms:
    return OutboundSms(message_id, to, "【优品购】张三，您的订单A123已发货", template=TEMPLATE)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencentSms]:
    async with FakeTencentSms(secrets={SECRET_ID: SECRET_KEY}) as server:
        yield server


def tencent_for(fake: FakeTencentSms, **overrides: object) -> TencentSmsNotifier:
    options: dict[str, object] = {
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
        "sdk_app_id": APP_ID,
        "sign_name": "优品购",
        "endpoint": fake.endpoint,
        "protocol": "http",
        "timeout_s": 0.3,  # the stalls below cost this much real time, no more
    }
    options.update(overrides)
    return TencentSmsNotifier(**options)  # type: ignore[arg-type]


@pytest.fixture
async def tencent(fake: FakeTencentSms) -> AsyncIterator[TencentSmsNotifier]:
    notifier = tencent_for(fake)
    yield notifier
    await notifier.close()


async def test_a_send_is_accepted_with_our_template_number_and_id(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    result = await tencent.send(sms())
    (accepted,) = fake.accepted
    assert (result.provider, result.status) == ("tencent", "queued")
    assert result.provider_message_id == accepted.provider_message_id
    assert accepted.phone == CUSTOMER  # E.164, as Tencent wants it
    assert (accepted.sign_name, accepted.template_code) == ("优品购", "1110")
    assert accepted.params == ["张三", "A123"]  # TemplateParamSet: the values, in order
    assert accepted.our_id == "msg-42"  # SessionContext


async def test_a_wrong_secret_fails_the_signature_check_and_is_a_provider_error(
    fake: FakeTencentSms,
) -> None:
    notifier = tencent_for(fake, secret_key="not-the-key")
    try:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms())
    finally:
        await notifier.close()
    assert (raised.value.code, raised.value.reason) == ("AuthFailure.SignatureFailure", "provider")
    assert (fake.signature_failures, fake.accepted) == (1, [])


async def test_an_unknown_secret_id_is_a_provider_error(fake: FakeTencentSms) -> None:
    notifier = tencent_for(fake, secret_id="AKIDunknown")
    try:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms())
    finally:
        await notifier.close()
    assert raised.value.code == "AuthFailure.SecretIdNotFound"


async def test_account_throttling_is_transient_for_the_whole_account(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    fake.fail_next(Fault(throttle=True))
    with pytest.raises(TransientError) as raised:
        await tencent.send(sms())
    assert (raised.value.code, raised.value.scope) == ("RequestLimitExceeded", "account")


@pytest.mark.parametrize(
    ("code", "wait_s"),
    [
        ("LimitExceeded.PhoneNumberThirtySecondLimit", 30.0),
        ("LimitExceeded.PhoneNumberOneHourLimit", 3600.0),
    ],
)
async def test_one_numbers_flow_control_makes_only_that_message_wait(
    fake: FakeTencentSms, tencent: TencentSmsNotifier, code: str, wait_s: float
) -> None:
    fake.flow_limited["+8613900000000"] = code
    sleep = RecordingSleep()
    with pytest.raises(TransientError) as raised:
        await send_with_retry(tencent, sms("msg-limited", "+8613900000000"), sleep=sleep)
    assert (raised.value.code, raised.value.scope, raised.value.retry_after_s) == (
        code,
        "message",
        wait_s,
    )
    assert sleep.delays_s == []  # longer than the in-process bound: back to the store
    assert (await tencent.send(sms("msg-other"))).status == "queued"
    assert [a.our_id for a in fake.accepted] == ["msg-other"]


async def test_a_gateways_5xx_is_transient_and_ambiguous(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    fake.fail_next(Fault(status=502))
    with pytest.raises(TransientError) as raised:
        await tencent.send(sms())
    assert (raised.value.code, raised.value.ambiguous) == ("ServerNetworkError", True)


async def test_accepted_then_stalled_and_retried_is_sent_exactly_once(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    fake.fail_next(Fault(accept_then_stall=True))
    with pytest.raises(TransientError) as raised:
        await tencent.send(sms())
    assert raised.value.ambiguous is True
    again = await tencent.send(sms())
    (accepted,) = fake.accepted_for("msg-42")
    assert (again.provider_message_id, again.status) == (accepted.provider_message_id, "delivered")
    assert (fake.sends_seen, fake.queries_seen) == (1, 1)


async def test_send_with_retry_through_a_reset_after_acceptance_sends_once(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    fake.fail_next(Fault(accept_then_reset=True))
    await send_with_retry(tencent, sms(), sleep=RecordingSleep())
    assert len(fake.accepted) == 1


async def test_a_refused_connection_is_transient_and_not_ambiguous() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = TencentSmsNotifier(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        sdk_app_id=APP_ID,
        sign_name="优品购",
        endpoint=f"127.0.0.1:{port}",
        protocol="http",
    )
    try:
        with pytest.raises(TransientError) as raised:
            await notifier.send(sms())
    finally:
        await notifier.close()
    assert raised.value.ambiguous is False


async def test_lookup_finds_our_message_by_session_context_and_only_it(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    sent = await tencent.send(sms("msg-1"))
    day = fake.accepted[0].at.astimezone(BEIJING).date()
    found = await tencent.lookup(sms("msg-1"), day)
    assert found is not None
    assert (found.provider_message_id, found.status) == (sent.provider_message_id, "delivered")
    assert await tencent.lookup(sms("msg-2"), day) is None


async def test_a_message_without_a_template_is_refused_before_any_request(
    fake: FakeTencentSms, tencent: TencentSmsNotifier
) -> None:
    with pytest.raises(PermanentError) as raised:
        await tencent.send(OutboundSms("msg-42", CUSTOMER, "plain text"))
    assert raised.value.code == "template_missing"
    assert fake.sends_seen == 0


async def test_the_pool_keeps_at_most_max_workers_requests_on_the_wire(
    fake: FakeTencentSms,
) -> None:
    notifier = tencent_for(fake, max_workers=2, timeout_s=5.0)
    fake.gate.holding = True
    sends = [asyncio.create_task(notifier.send(sms(f"msg-{n}"))) for n in range(5)]
    try:
        await eventually(lambda: fake.gate.in_flight == 2 and notifier.pool.queued == 3)
        assert (notifier.pool.running, fake.sends_seen) == (2, 2)
        for _ in sends:
            await fake.gate.release_one()
        results = await asyncio.gather(*sends)
    finally:
        await notifier.close()
    assert len({r.provider_message_id for r in results}) == 5
    assert fake.gate.max_in_flight == 2
