"""Twilio's signed callbacks over real HTTP: delivery status (from the stand-in's own signed
callbacks), a bad signature, out-of-order statuses, STOP/TD/退订/START replies, and signed
callbacks replayed (acted on once)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from dialer.messaging.providers import build_notifier
from dialer.messaging.service import CALLBACKS_KEPT, dispatcher_for
from dialer.metrics import Metrics
from dialer.store import OutboxStore, Store
from dialer.store.schema import opt_outs, seen_callbacks
from notifiers import TWILIO_DELIVERY_FAILURES
from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN, FakeTwilioServer
from tests.integration.sms_support import (
    ACCOUNT_SID,
    MOBILE,
    Now,
    api_client,
    mark_dead,
    message_row,
    queue_message,
    record_sent,
    sms_settings,
)
from tests.support import free_port

STATUS, INBOUND = "/v1/sms/twilio/status", "/v1/sms/twilio/inbound"


def signed(url: str, params: dict[str, str]) -> dict[str, str]:
    return {
        "X-Twilio-Signature": RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(url, params)
    }


async def test_the_stand_ins_signed_callbacks_mark_the_message_delivered(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    async with FakeTwilioServer() as fake:
        settings = sms_settings(
            tmp_path,
            store_url=store_url,
            primary="twilio",
            twilio_base_url=fake.base_url,
            public_url=public,
        )
        now = Now()
        async with api_client(settings, store, now, port=port):
            notifier = await build_notifier(settings.notifications)
            try:
                message_id = await queue_message(store, now)
                await dispatcher_for(
                    settings, OutboxStore(store), notifier, now=now
                ).run_until_idle()
                callbacks = await fake.wait_for_callbacks(2)
            finally:
                await notifier.close()
    assert [c.response_status for c in callbacks] == [204, 204]
    assert callbacks[0].url == f"{public}{STATUS}?message_id={message_id}"
    row = await message_row(store, message_id)
    assert row["status"] == "delivered"


async def test_a_callback_with_a_bad_signature_is_403_and_changes_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    message_id = await queue_message(store, now)
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = signed(f"{public}{STATUS}?message_id={message_id}", params)
    async with api_client(settings, store, now) as (client, _):
        forged = await client.post(
            f"{STATUS}?message_id={message_id}", data=params, headers={"X-Twilio-Signature": "x"}
        )
        other_url = await client.post(
            f"{STATUS}?message_id={message_id + 1}", data=params, headers=good
        )
        unsigned = await client.post(f"{STATUS}?message_id={message_id}", data=params)
    assert (forged.status, other_url.status, unsigned.status) == (403, 403, 403)
    assert (await message_row(store, message_id))["status"] == "queued"


async def test_a_late_sent_never_undoes_delivered(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    message_id = await queue_message(store, now)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    await record_sent(store, claimed.id, provider="twilio", provider_message_id="SMx", now=now())
    async with api_client(settings, store, now) as (client, _):
        for status in ("delivered", "sent"):
            params = {"MessageSid": "SMx", "MessageStatus": status, "AccountSid": ACCOUNT_SID}
            response = await client.post(
                STATUS, data=params, headers=signed(public + STATUS, params)
            )
            assert response.status == 204
    assert (await message_row(store, message_id))["status"] == "delivered"


async def test_a_delivery_report_before_our_own_write_is_kept(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await queue_message(store, now)
    await OutboxStore(store).claim_due(now=now(), limit=1)
    await OutboxStore(store).record_delivery_status(
        status="delivered", now=now(), message_id=message_id
    )
    await record_sent(store, message_id, provider="twilio", provider_message_id="SMy", now=now())
    row = await message_row(store, message_id)
    assert (row["status"], row["provider_message_id"]) == ("delivered", "SMy")


@pytest.mark.parametrize("word", ["STOP", " stop ", "TD", "td", "退订", "Unsubscribe"])
async def test_a_stop_reply_opts_the_number_out(
    store: Store, store_url: str, tmp_path: Path, word: str
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    params = {"From": MOBILE, "Body": word, "To": "+15005550006"}
    async with api_client(settings, store, Now()) as (client, _):
        response = await client.post(INBOUND, data=params, headers=signed(public + INBOUND, params))
        text = await response.text()
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert text.endswith("<Response/>")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(opt_outs.c.phone, opt_outs.c.scope))).all()
    assert [tuple(row) for row in rows] == [(MOBILE, "all")]


async def test_start_opts_the_number_back_in_and_other_words_change_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    async with api_client(settings, store, Now()) as (client, _):
        for word in ("STOP", "thanks!", "START"):
            params = {"From": MOBILE, "Body": word}
            await client.post(INBOUND, data=params, headers=signed(public + INBOUND, params))
            if word == "thanks!":
                async with store.engine.connect() as conn:
                    assert await conn.scalar(sa.select(sa.func.count()).select_from(opt_outs)) == 1
        forged = await client.post(INBOUND, data={"From": MOBILE, "Body": "STOP"})
    assert forged.status == 403
    async with store.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(opt_outs)) == 0


async def test_dead_letters_are_listed_and_replayed_over_the_api(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    from tests.integration.sms_support import AUTH

    settings = sms_settings(tmp_path, store_url=store_url)
    now = Now()
    message_id = await queue_message(store, now)
    await OutboxStore(store).claim_due(now=now(), limit=1)
    await mark_dead(store, message_id, reason="number", error="bad", code="21211", now=now())
    async with api_client(settings, store, now) as (client, _):
        listed = await (await client.get("/v1/sms/dead", headers=AUTH)).json()
        replayed = await client.post(f"/v1/sms/dead/{message_id}/replay", headers=AUTH)
        again = await client.post(f"/v1/sms/dead/{message_id}/replay", headers=AUTH)
        unauthorised = await client.get("/v1/sms/dead")
    [dead] = listed["dead"]
    assert (dead["id"], dead["reason"], dead["phone"]) == (
        message_id,
        "number: bad",
        "+141****0100",
    )
    assert (replayed.status, again.status, unauthorised.status) == (200, 404, 401)
    row = await message_row(store, message_id)
    assert row["status"] == "queued"
    assert row["replayed_at"] == now()  # max_age_s counts from the replay


async def test_a_replayed_message_gets_max_age_anew_and_keeps_when_it_was_queued(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    queued_at = now()
    message_id = await queue_message(store, now)
    await OutboxStore(store).claim_due(now=now(), limit=1)
    await mark_dead(store, message_id, reason="expired", error="too old", code=None, now=now())
    now.advance(2 * 86400)  # two days later, past the 1-day max_age_s
    assert await OutboxStore(store).replay_dead(message_id, now=now())
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    row = await message_row(store, message_id)
    assert claimed.age_from == now()
    assert row["created_at"] == queued_at


@pytest.mark.parametrize(
    ("code", "status", "after"),
    [
        (code, "undelivered", "queued" if transient else "dead")
        for code, transient in sorted(TWILIO_DELIVERY_FAILURES.items())
    ]
    + [(None, "failed", "dead"), ("99999", "undelivered", "dead")],
)
async def test_an_undelivered_report_is_sent_again_or_dead_by_its_code(
    store: Store, store_url: str, tmp_path: Path, code: int | None, status: str, after: str
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    message_id = await queue_message(store, now)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    await record_sent(store, claimed.id, provider="twilio", provider_message_id="SMu", now=now())
    params = {"MessageSid": "SMu", "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    if code is not None:
        params["ErrorCode"] = str(code)
    async with api_client(settings, store, now) as (client, _):
        response = await client.post(STATUS, data=params, headers=signed(public + STATUS, params))
    row = await message_row(store, message_id)
    assert response.status == 204
    assert row["status"] == after
    if after == "queued":
        assert row["next_attempt_at"] == now() + timedelta(seconds=30)  # backoff_initial_s
        assert row["last_error"].startswith("redelivery:")
    else:
        assert row["last_error"].startswith("undelivered:")


async def test_an_undelivered_report_past_max_age_is_dead(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(
        tmp_path,
        store_url=store_url,
        public_url=public,
        retry="{backoff_initial_s: 30, backoff_max_s: 3600, max_age_s: 100}",
    )
    now = Now()
    message_id = await queue_message(store, now)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    await record_sent(store, claimed.id, provider="twilio", provider_message_id="SMo", now=now())
    now.advance(90)  # 90 s old: the next try (30 s later) would be past 100 s
    params = {"MessageSid": "SMo", "MessageStatus": "undelivered", "ErrorCode": "30003",
              "AccountSid": ACCOUNT_SID}  # fmt: skip
    async with api_client(settings, store, now) as (client, _):
        await client.post(STATUS, data=params, headers=signed(public + STATUS, params))
    row = await message_row(store, message_id)
    assert (row["status"], row["last_error"].split(":")[0]) == ("dead", "expired")


# -- replayed callbacks ----------------------------------------------------------------------------


async def test_a_replayed_start_after_a_stop_does_not_opt_the_number_back_in(
    store: Store, store_url: str, tmp_path: Path, log_output: io.StringIO
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    start = {"From": MOBILE, "Body": "START", "MessageSid": "SMstart"}
    stop = {"From": MOBILE, "Body": "STOP", "MessageSid": "SMstop"}
    async with api_client(settings, store, Now()) as (client, _):
        for params in (start, stop, start):  # the last: a captured START sent again
            response = await client.post(
                INBOUND, data=params, headers=signed(public + INBOUND, params)
            )
            assert response.status == 200
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(opt_outs.c.phone))).all()
    events = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [tuple(row) for row in rows] == [(MOBILE,)]
    assert [line["callback_id"] for line in events if line["event"] == "sms.callback_replayed"] == [
        "SMstart"
    ]


async def test_a_replayed_delivery_report_is_acted_on_once(
    store: Store, store_url: str, tmp_path: Path, log_output: io.StringIO
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    message_id = await queue_message(store, now)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    await record_sent(store, claimed.id, provider="twilio", provider_message_id="SMr", now=now())
    metrics = Metrics()
    delivered = {"MessageSid": "SMr", "MessageStatus": "delivered"}
    async with api_client(settings, store, now, metrics=metrics) as (client, _):
        for _ in range(2):
            response = await client.post(
                STATUS, data=delivered, headers=signed(public + STATUS, delivered)
            )
            assert response.status == 204
    events = [json.loads(line)["event"] for line in log_output.getvalue().splitlines()]
    assert [e for e in events if e.startswith("sms.")] == [
        "sms.status_received",
        "sms.callback_replayed",
    ]
    assert metrics.sms_delivered.labels(stage="shipped", provider="twilio")._value.get() == 1
    assert (await message_row(store, message_id))["status"] == "delivered"


async def test_each_status_of_one_message_is_a_callback_of_its_own(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    message_id = await queue_message(store, now)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=1)
    await record_sent(store, claimed.id, provider="twilio", provider_message_id="SMs", now=now())
    async with api_client(settings, store, now) as (client, _):
        for status in ("sent", "delivered"):  # one MessageSid, two statuses: both count
            params = {"MessageSid": "SMs", "MessageStatus": status}
            await client.post(STATUS, data=params, headers=signed(public + STATUS, params))
    assert (await message_row(store, message_id))["status"] == "delivered"


async def test_callbacks_seen_are_forgotten_after_thirty_days(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    public = "https://outreach.example.com"
    settings = sms_settings(tmp_path, store_url=store_url, public_url=public)
    now = Now()
    stop = {"From": MOBILE, "Body": "STOP", "MessageSid": "SMold"}
    other = {"From": MOBILE, "Body": "STOP", "MessageSid": "SMnew"}
    async with api_client(settings, store, now) as (client, _):
        await client.post(INBOUND, data=stop, headers=signed(public + INBOUND, stop))
        now.advance(CALLBACKS_KEPT.total_seconds() + 3600)
        await client.post(INBOUND, data=other, headers=signed(public + INBOUND, other))
    async with store.engine.connect() as conn:
        kept = (await conn.execute(sa.select(seen_callbacks.c.callback_id))).scalars().all()
    assert kept == ["SMnew"]
