"""Order events through the daemon to the real Aliyun and Tencent SDKs, against the local
stand-ins (which check the SDKs' signatures): intake -> outbox -> dispatcher -> provider, with
faults (5xx, throttling, per-number flow control, a send accepted then stalled, a crash mid-send),
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialer.metrics import Metrics
from dialer.store import Store
from dialer.store.timeline_reports import entries_for
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.cloud_sms_common import CloudSmsServer, Fault, eventually
from tests.fakes.tencent_sms_server import FakeTencentSms
from tests.integration.mainland_support import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    SHIPPED_ALIYUN,
    SHIPPED_TENCENT,
    TENCENT_ID,
    TENCENT_KEY,
    dispatcher,
    mainland_settings,
    real_now,
)
from tests.integration.sms_support import (
    AUTH,
    MOBILE,
    api_client,
    event,
    message_row,
    sms_service,
)

OTHER_MOBILE = "+8613900001111"


@pytest.fixture
async def aliyun() -> AsyncIterator[FakeAliyunSms]:
    async with FakeAliyunSms(secrets={ALIYUN_KEY_ID: ALIYUN_SECRET}) as fake:
        yield fake


@pytest.fixture
async def tencent() -> AsyncIterator[FakeTencentSms]:
    async with FakeTencentSms(secrets={TENCENT_ID: TENCENT_KEY}) as fake:
        yield fake


def settings_for(
    tmp_path: Path,
    store_url: str,
    aliyun: FakeAliyunSms,
    tencent: FakeTencentSms,
    **options: object,
) -> object:
    return mainland_settings(
        tmp_path,
        store_url=store_url,
        aliyun_endpoint=aliyun.endpoint,
        tencent_endpoint=tencent.endpoint,
        **options,  # type: ignore[arg-type]
    )


async def queue(service: object, event_id: str, **fields: object) -> int:
    status, answer = await service.accept_event(event(event_id, **fields))  # type: ignore[attr-defined]
    assert status == 202, answer
    assert answer["message"] is not None, answer
    return int(answer["message"]["id"])


async def test_an_order_event_goes_out_as_the_stages_aliyun_template(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent)
    now = real_now()
    service = sms_service(settings, store, now=now)  # type: ignore[arg-type]
    message_id = await queue(service, "e1", order_id="A1001")
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        assert await sender.run_until_idle() == 1
    (sent,) = aliyun.accepted
    assert (sent.phone, sent.sign_name, sent.template_code) == (
        "13812345678",
        "好物优选",
        SHIPPED_ALIYUN,
    )
    assert sent.params == {"order": "A1001", "courier": "顺丰", "no": "SF123"}
    assert sent.our_id == f"msg-{message_id}"
    row = await message_row(store, message_id)
    assert (row["status"], row["provider"]) == ("sent", "aliyun")
    assert row["provider_message_id"] == sent.provider_message_id
    # the outbox keeps the stage's own text, for the status page
    assert row["body"] == "【好物优选】订单A1001已由顺丰发出，运单号SF123。"
    assert tencent.accepted == []


async def test_an_order_event_goes_out_as_the_stages_tencent_template_in_order(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent, primary="tencent")
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1", order_id="A7")  # type: ignore[arg-type]
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
    (sent,) = tencent.accepted
    assert (sent.phone, sent.template_code) == (MOBILE, SHIPPED_TENCENT)
    assert sent.params == ["A7", "顺丰", "SF123"]  # TemplateParamSet, by position
    assert sent.our_id == f"msg-{message_id}"
    row = await message_row(store, message_id)
    assert (row["status"], row["provider"]) == ("sent", "tencent")


async def test_a_template_the_primary_refuses_goes_through_the_fallbacks_own_template(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    aliyun.templates = {"SMS_999999": ["order"]}  # ours is not approved there
    settings = settings_for(tmp_path, store_url, aliyun, tencent, fallback="tencent")
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1")  # type: ignore[arg-type]
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
    assert aliyun.accepted == []
    (sent,) = tencent.accepted
    assert sent.template_code == SHIPPED_TENCENT
    row = await message_row(store, message_id)
    assert (row["status"], row["provider"]) == ("sent", "tencent")


async def test_a_link_in_a_variable_is_dead_before_any_request_with_a_clear_reason(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent)
    now = real_now()
    data = {"courier": "see https://evil.example.com/x", "tracking_number": "SF1"}
    message_id = await queue(sms_service(settings, store, now=now), "e1", data=data)  # type: ignore[arg-type]
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
    assert aliyun.sends_seen == 0
    row = await message_row(store, message_id)
    assert row["status"] == "dead"
    assert row["error_code"] == "template_param_invalid"
    assert "variable 'courier' holds a link" in row["last_error"]


@pytest.mark.parametrize(
    "fault", [Fault(status=503), Fault(throttle=True)], ids=["5xx", "throttled"]
)
async def test_a_passing_fault_is_retried_and_the_message_sent_once(
    store: Store,
    store_url: str,
    tmp_path: Path,
    aliyun: FakeAliyunSms,
    tencent: FakeTencentSms,
    fault: Fault,
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent)
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1")  # type: ignore[arg-type]
    aliyun.fail_next(fault)
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
    assert aliyun.sends_seen == 2
    assert len(aliyun.accepted_for(f"msg-{message_id}")) == 1
    assert (await message_row(store, message_id))["status"] == "sent"


async def test_one_numbers_flow_control_delays_only_its_message_and_never_falls_back(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    aliyun.flow_limited["13812345678"] = "hour"
    settings = settings_for(tmp_path, store_url, aliyun, tencent, fallback="tencent")
    now = real_now()
    service = sms_service(settings, store, now=now)  # type: ignore[arg-type]
    limited = await queue(service, "e1", order_id="A1")
    other = await queue(service, "e2", order_id="A2", phone=OTHER_MOBILE)
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
    row = await message_row(store, limited)
    assert row["status"] == "queued"
    assert row["error_code"] == "isv.BUSINESS_LIMIT_CONTROL"
    assert (row["next_attempt_at"] - now()).total_seconds() == pytest.approx(3600, abs=1)
    assert (await message_row(store, other))["status"] == "sent"
    assert tencent.accepted == []  # the limit protects the person: no other provider


@pytest.mark.parametrize(
    "fault",
    [Fault(accept_then_stall=True), Fault(accept_then_reset=True)],
    ids=["stall", "reset"],
)
@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_a_send_accepted_then_unanswered_is_looked_up_not_sent_again(
    store: Store,
    store_url: str,
    tmp_path: Path,
    aliyun: FakeAliyunSms,
    tencent: FakeTencentSms,
    provider: str,
    fault: Fault,
) -> None:
    fake: CloudSmsServer = aliyun if provider == "aliyun" else tencent
    # one try per dispatch: the time-out is left to the store, and a new process retries
    settings = settings_for(
        tmp_path, store_url, aliyun, tencent, primary=provider, in_process_attempts=1
    )
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1")  # type: ignore[arg-type]
    fake.fail_next(fault)
    async with dispatcher(settings, store, now) as first:  # type: ignore[arg-type]
        await first.run_until_idle()
    row = await message_row(store, message_id)
    assert row["status"] == "queued"
    assert row["ambiguous_since"] is not None
    now.advance(3600)
    async with dispatcher(settings, store, now) as second:  # type: ignore[arg-type]
        await second.run_until_idle()
    assert len(fake.accepted_for(f"msg-{message_id}")) == 1  # 0 duplicates
    assert fake.queries_seen >= 1
    row = await message_row(store, message_id)
    # the stand-ins report what they accepted as delivered, and so do their lookups
    assert (row["status"], row["provider"], row["ambiguous_since"]) == (
        "delivered",
        provider,
        None,
    )


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_a_crash_mid_send_after_the_provider_took_it_sends_nothing_twice(
    store: Store,
    store_url: str,
    tmp_path: Path,
    aliyun: FakeAliyunSms,
    tencent: FakeTencentSms,
    provider: str,
) -> None:
    fake: CloudSmsServer = aliyun if provider == "aliyun" else tencent
    settings = settings_for(tmp_path, store_url, aliyun, tencent, primary=provider, timeout_s=30)
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1")  # type: ignore[arg-type]
    fake.fail_next(Fault(accept_then_stall=True))
    async with dispatcher(settings, store, now) as first:  # type: ignore[arg-type]
        running = asyncio.create_task(first.run_until_idle())
        await eventually(lambda: len(fake.accepted) == 1)
        for task in list(first._in_flight):  # the process dies: nothing is written
            task.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert (await message_row(store, message_id))["status"] == "sending"
    fake.release_stalls()
    async with dispatcher(settings, store, now) as second:  # type: ignore[arg-type]
        assert await second.start() == 1  # settled: queued again, to be looked up
        await second.run_until_idle()
    assert len(fake.accepted_for(f"msg-{message_id}")) == 1  # 0 duplicates
    row = await message_row(store, message_id)
    assert (row["status"], row["provider"]) == ("delivered", provider)


async def test_a_lookup_that_fails_sends_nothing_and_waits(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent, in_process_attempts=1)
    now = real_now()
    message_id = await queue(sms_service(settings, store, now=now), "e1")  # type: ignore[arg-type]
    aliyun.fail_next(Fault(accept_then_stall=True))
    async with dispatcher(settings, store, now) as first:  # type: ignore[arg-type]
        await first.run_until_idle()
    now.advance(3600)
    aliyun.secrets.clear()  # every request now fails (InvalidAccessKeyId), the lookup too
    async with dispatcher(settings, store, now) as second:  # type: ignore[arg-type]
        await second.run_until_idle()
    assert aliyun.sends_seen == 1
    row = await message_row(store, message_id)
    assert row["status"] == "queued"
    assert row["ambiguous_since"] is not None
    assert "cannot tell whether an earlier send was taken" in row["last_error"]


LIMITS = "daily_limit_per_number: 2\n  daily_limit_urgent_reserve: 1"


async def test_the_daily_limit_holds_a_low_priority_stage_and_keeps_room_for_an_urgent_one(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent, limits=LIMITS)
    now = real_now()
    service = sms_service(settings, store, now=now)  # type: ignore[arg-type]
    first = await queue(service, "e1", order_id="A1", stage="shipped")
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
        second = await queue(service, "e2", order_id="A2", stage="delivered")
        third = await queue(service, "e3", order_id="A3", stage="refused")  # urgent
        await sender.run_until_idle()
    assert [sms.our_id for sms in aliyun.accepted] == [f"msg-{first}", f"msg-{third}"]
    held = await message_row(store, second)
    assert held["status"] == "queued"
    assert held["attempts"] == 0  # a hold is not a try
    assert held["held_until"] == held["next_attempt_at"] > now()
    assert held["last_error"].startswith("held: daily limit per number: 1 sent today, 1 allowed")
    [entry] = [e for e in await entries_for(store, held["phone"]) if e.kind == "sms_held"]
    assert (entry.order_id, entry.until) == ("A2", held["held_until"])  # on the timeline


async def test_a_held_message_goes_out_the_next_day_even_past_max_age(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    limits = "daily_limit_per_number: 1"
    settings = settings_for(tmp_path, store_url, aliyun, tencent, limits=limits)
    now = real_now()
    service = sms_service(settings, store, now=now)  # type: ignore[arg-type]
    await queue(service, "e1", order_id="A1")
    held = await queue(service, "e2", order_id="A2")
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        await sender.run_until_idle()
        assert (await message_row(store, held))["status"] == "queued"
        row = await message_row(store, held)
        now.value = row["held_until"]
        now.advance(86400 - 60)  # max_age_s (a day) after it was queued: still not dropped
        assert await sender.run_until_idle() == 1
    assert len(aliyun.accepted) == 2
    assert (await message_row(store, held))["status"] == "sent"


async def test_held_messages_are_listed_by_the_api_and_counted(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(tmp_path, store_url, aliyun, tencent, limits=LIMITS)
    now = real_now()
    metrics = Metrics()
    async with api_client(settings, store, now, metrics=metrics) as (client, service):  # type: ignore[arg-type]
        await queue(service, "e1", order_id="A1")
        held = await queue(service, "e2", order_id="A2")
        async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
            sender.metrics = metrics
            await sender.run_until_idle()
        answer = await client.get("/v1/sms/held", headers=AUTH)
        assert answer.status == 200
        (item,) = (await answer.json())["held"]
        refused = await client.get("/v1/sms/held?limit=0", headers=AUTH)
        assert refused.status == 422
    assert (item["id"], item["stage"], item["phone"]) == (held, "shipped", "+86138****5678")
    assert item["reason"].startswith("held: daily limit per number")
    assert metrics.sms_held.labels(stage="shipped")._value.get() == 1


async def test_a_reload_sets_the_daily_limit_of_the_running_dispatcher(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    before = settings_for(tmp_path, store_url, aliyun, tencent)
    after = settings_for(tmp_path, store_url, aliyun, tencent, limits=LIMITS)
    now = real_now()
    service = sms_service(before, store, now=now)  # type: ignore[arg-type]
    async with dispatcher(before, store, now) as sender:  # type: ignore[arg-type]
        service.dispatcher = sender
        assert sender.daily_limit is None
        await service.reload(after)  # type: ignore[arg-type]
    assert sender.daily_limit is not None
    assert (sender.daily_limit.limit, sender.daily_limit.allowed("shipped")) == (2, 1)


async def test_account_throttling_sends_the_next_messages_to_the_fallback_without_asking(
    store: Store, store_url: str, tmp_path: Path, aliyun: FakeAliyunSms, tencent: FakeTencentSms
) -> None:
    settings = settings_for(
        tmp_path, store_url, aliyun, tencent, fallback="tencent", in_process_attempts=1
    )
    now = real_now()
    service = sms_service(settings, store, now=now)  # type: ignore[arg-type]
    aliyun.fail_next(Fault(throttle=True))
    async with dispatcher(settings, store, now) as sender:  # type: ignore[arg-type]
        first = await queue(service, "e1", order_id="A1")
        await sender.run_until_idle()
        second = await queue(service, "e2", order_id="A2", phone=OTHER_MOBILE)
        await sender.run_until_idle()
    assert aliyun.sends_seen == 1  # the second message never asked the throttled account
    assert [sms.our_id for sms in tencent.accepted] == [f"msg-{first}", f"msg-{second}"]
