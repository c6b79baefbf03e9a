"""AliyunSmsNotifier: the real Aliyun SDK over real HTTP to our local stand-in, which checks its
V3 signature as Aliyun does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from notifiers import (
    AliyunSmsNotifier,
    OutboundSms,
    PermanentError,
    ProviderTemplate,
    SendResult,
    TransientError,
    send_with_retry,
)
from notifiers.mainland import BEIJING
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.clock import RecordingSleep
from tests.fakes.cloud_sms_common import Fault, eventually

KEY_ID, SECRET = "test-access-key-id", "test-access-key-secret"
CUSTOMER = "+8613812345678"
TEMPLATE = ProviderTemplate("SMS_123456789", {"name": "张三", "order": "A123 & B"})


def sms(message_id: str = "msg-42", to: str = CUSTOMER) -> OutboundSms:
    return OutboundSms(message_id, to, "【优品购】张三，您的订单A123 & B已发货", template=TEMPLATE)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunSms]:
    async with FakeAliyunSms(secrets={KEY_ID: SECRET}) as server:
        yield server


def aliyun_for(fake: FakeAliyunSms, **overrides: object) -> AliyunSmsNotifier:
    options: dict[str, object] = {
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "sign_name": "优品购",
        "endpoint": fake.endpoint,
        "protocol": "http",
        "connect_timeout_s": 2.0,
        "read_timeout_s": 0.3,  # the stalls below cost this much real time, no more
    }
    options.update(overrides)
    return AliyunSmsNotifier(**options)  # type: ignore[arg-type]


@pytest.fixture
async def aliyun(fake: FakeAliyunSms) -> AsyncIterator[AliyunSmsNotifier]:
    notifier = aliyun_for(fake)
    yield notifier
    await notifier.close()


async def test_a_send_is_accepted_with_our_template_number_and_id(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    result = await aliyun.send(sms())
    assert result.provider == "aliyun"
    assert result.status == "queued"
    (accepted,) = fake.accepted
    assert result.provider_message_id == accepted.provider_message_id
    assert accepted.phone == "13812345678"  # no +86: Aliyun's mainland form
    assert accepted.sign_name == "优品购"
    assert accepted.template_code == "SMS_123456789"
    assert accepted.params == {"name": "张三", "order": "A123 & B"}
    assert list(accepted.params) == ["name", "order"]
    assert accepted.our_id == "msg-42"
    assert fake.signature_failures == 0


async def test_a_wrong_secret_fails_the_signature_check_and_is_a_provider_error(
    fake: FakeAliyunSms,
) -> None:
    notifier = aliyun_for(fake, access_key_secret="not-the-secret")
    try:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms())
    finally:
        await notifier.close()
    assert (raised.value.code, raised.value.reason) == ("SignatureDoesNotMatch", "provider")
    assert fake.signature_failures == 1
    assert fake.accepted == []


async def test_an_unknown_key_is_a_provider_error(fake: FakeAliyunSms) -> None:
    notifier = aliyun_for(fake, access_key_id="LTAI-unknown")
    try:
        with pytest.raises(PermanentError) as raised:
            await notifier.send(sms())
    finally:
        await notifier.close()
    assert raised.value.code == "InvalidAccessKeyId.NotFound"


async def test_account_throttling_is_transient_for_the_whole_account(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(throttle=True))
    with pytest.raises(TransientError) as raised:
        await aliyun.send(sms())
    assert (raised.value.code, raised.value.scope) == ("Throttling.User", "account")
    assert raised.value.ambiguous is False


async def test_one_numbers_flow_control_makes_only_that_message_wait(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.flow_limited["13900000000"] = "hour"
    sleep = RecordingSleep()
    with pytest.raises(TransientError) as raised:
        await send_with_retry(aliyun, sms("msg-limited", "+8613900000000"), sleep=sleep)
    assert (raised.value.scope, raised.value.retry_after_s) == ("message", 3600.0)
    assert sleep.delays_s == []  # handed back to the store at once, nothing slept
    other = await send_with_retry(aliyun, sms("msg-other"), sleep=sleep)
    assert other.status == "queued"
    assert [a.our_id for a in fake.accepted] == ["msg-other"]


async def test_a_5xx_is_transient_and_ambiguous(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(status=503))
    with pytest.raises(TransientError) as raised:
        await aliyun.send(sms())
    assert (raised.value.code, raised.value.ambiguous) == ("ServiceUnavailable", True)


async def test_a_business_error_in_a_200_answer_is_classified(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(code="isv.AMOUNT_NOT_ENOUGH", message="账户余额不足"))
    with pytest.raises(PermanentError) as raised:
        await aliyun.send(sms())
    assert (raised.value.code, raised.value.reason) == ("isv.AMOUNT_NOT_ENOUGH", "provider")


async def test_accepted_then_stalled_and_retried_is_sent_exactly_once(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(accept_then_stall=True))
    with pytest.raises(TransientError) as raised:
        await aliyun.send(sms())
    assert raised.value.ambiguous is True
    again = await aliyun.send(sms())
    assert again == SendResult("aliyun", "msg-42", "delivered")
    assert len(fake.accepted_for("msg-42")) == 1
    assert fake.sends_seen == 1  # the retry asked QuerySendDetails, and did not send
    assert fake.queries_seen == 1


async def test_send_with_retry_through_a_stall_sends_once(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(accept_then_reset=True))
    result = await send_with_retry(aliyun, sms(), sleep=RecordingSleep())
    assert result.provider_message_id == "msg-42"
    assert len(fake.accepted) == 1


async def test_a_reset_before_acceptance_is_sent_again_after_the_lookup(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    fake.fail_next(Fault(reset=True))
    with pytest.raises(TransientError) as raised:
        await aliyun.send(sms())
    assert raised.value.ambiguous is True
    result = await aliyun.send(sms())
    assert result.status == "queued"
    assert (fake.sends_seen, fake.queries_seen, len(fake.accepted)) == (2, 1, 1)


async def test_a_refused_connection_is_transient_and_not_ambiguous() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = AliyunSmsNotifier(
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
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


async def test_lookup_finds_our_message_by_out_id_and_only_it(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    await aliyun.send(sms("msg-1"))
    day = fake.accepted[0].at.astimezone(BEIJING).date()
    assert await aliyun.lookup(sms("msg-1"), day) == SendResult("aliyun", "msg-1", "delivered")
    assert await aliyun.lookup(sms("msg-2"), day) is None


async def test_a_message_without_a_template_is_refused_before_any_request(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    with pytest.raises(PermanentError) as raised:
        await aliyun.send(OutboundSms("msg-42", CUSTOMER, "plain text"))
    assert (raised.value.code, raised.value.reason) == ("template_missing", "provider")
    assert fake.sends_seen == 0


async def test_a_link_in_a_variable_is_refused_before_any_request(
    fake: FakeAliyunSms, aliyun: AliyunSmsNotifier
) -> None:
    linked = OutboundSms(
        "msg-42", CUSTOMER, "x", template=ProviderTemplate("SMS_1", {"url": "https://t.cn/x"})
    )
    with pytest.raises(PermanentError) as raised:
        await aliyun.send(linked)
    assert raised.value.code == "template_param_invalid"
    assert fake.sends_seen == 0


async def test_the_pool_keeps_at_most_max_workers_requests_on_the_wire(
    fake: FakeAliyunSms,
) -> None:
    notifier = aliyun_for(fake, max_workers=2, read_timeout_s=5.0)
    fake.gate.holding = True
    sends = [asyncio.create_task(notifier.send(sms(f"msg-{n}"))) for n in range(5)]
    try:
        # two on the wire, held by the stand-in; the other three wait for a thread, not a socket
        await eventually(lambda: fake.gate.in_flight == 2 and notifier.pool.queued == 3)
        assert (notifier.pool.running, fake.sends_seen) == (2, 2)
        for _ in sends:
            await fake.gate.release_one()
        results = await asyncio.gather(*sends)
    finally:
        await notifier.close()
    assert len({r.provider_message_id for r in results}) == 5
    assert fake.gate.max_in_flight == 2
    assert sorted(a.our_id for a in fake.accepted) == [f"msg-{n}" for n in range(5)]
    assert (notifier.pool.running, notifier.pool.queued) == (0, 0)
