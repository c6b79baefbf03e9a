"""Aliyun's and Tencent's delivery reports and replies over real HTTP: the secret in the path,
the source-address allow list, the callbacks' own fields (the number, the signature), monotonic
statuses, replays acted on once, 退订/TD/T/STOP opting out, malformed bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient

from dialer.config import Settings
from dialer.store import OutboxStore, Store
from dialer.store.engine import reading
from dialer.store.schema import opt_outs
from tests.integration.mainland_support import ALIYUN_HOOK, TENCENT_HOOK, mainland_settings
from tests.integration.sms_support import (
    MOBILE,
    Now,
    api_client,
    message_row,
    queue_message,
    record_sent,
)

Client = TestClient[web.Request, web.Application]
BIZ_ID = "900619746936498440^0"
SERIAL = "2028:f825e6b16e23f73f4123"


def report(message_id: int, *, success: bool = True, code: str = "DELIVERED") -> list[Any]:
    return [
        {
            "phone_number": MOBILE[3:],
            "send_time": "2025-06-02 12:00:00",
            "report_time": "2025-06-02 12:00:05",
            "success": success,
            "err_code": code,
            "err_msg": "用户接收成功" if success else "失败",
            "sms_size": "1",
            "biz_id": BIZ_ID,
            "out_id": f"msg-{message_id}",
        }
    ]


def tencent_status(*, mobile: str = MOBILE[3:], status: str = "SUCCESS") -> list[Any]:
    return [
        {
            "user_receive_time": "2025-06-02 12:00:05",
            "nationcode": "86",
            "mobile": mobile,
            "report_status": status,
            "errmsg": "DELIVRD" if status == "SUCCESS" else "MK:0001",
            "description": "用户短信送达成功",
            "sid": SERIAL,
        }
    ]


async def sent_message(store: Store, now: Now, provider: str, provider_id: str) -> int:
    message_id = await queue_message(store, now, phone=MOBILE)
    [claimed] = await OutboxStore(store).claim_due(now=now(), limit=10)
    assert claimed.id == message_id
    assert await record_sent(
        store, message_id, provider=provider, provider_message_id=provider_id, now=now()
    )
    return message_id


async def opted_out(store: Store) -> list[str]:
    async with reading(store.engine) as conn:
        return list(await conn.scalars(sa.select(opt_outs.c.phone)))


def settings(tmp_path: Path, store_url: str, **options: Any) -> Settings:
    return mainland_settings(tmp_path, store_url=store_url, **options)


async def test_an_aliyun_report_marks_the_message_delivered_once(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "aliyun", BIZ_ID)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        path = f"/v1/sms/aliyun/{ALIYUN_HOOK}/report"
        answer = await client.post(path, json=report(message_id))
        assert answer.status == 200
        assert await answer.json() == {"code": 0, "msg": "接收成功"}
        again = await client.post(path, json=report(message_id))
        assert again.status == 200
    row = await message_row(store, message_id)
    assert row["status"] == "delivered"


async def test_a_wrong_secret_is_403_and_changes_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "aliyun", BIZ_ID)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        answer = await client.post("/v1/sms/aliyun/guessed/report", json=report(message_id))
        assert answer.status == 403
        tencent = await client.post(f"/v1/sms/tencent/{ALIYUN_HOOK}/status", json=[])
        assert tencent.status == 403  # one provider's secret does not open the other's routes
    assert (await message_row(store, message_id))["status"] == "sent"


async def test_a_source_outside_the_allow_list_is_403(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "aliyun", BIZ_ID)
    config = settings(tmp_path, store_url, allow_from="[10.0.0.0/8]")
    async with api_client(config, store, now) as (client, _):
        answer = await client.post(f"/v1/sms/aliyun/{ALIYUN_HOOK}/report", json=report(message_id))
        assert answer.status == 403
    assert (await message_row(store, message_id))["status"] == "sent"


async def test_a_report_about_another_number_moves_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "tencent", SERIAL)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        path = f"/v1/sms/tencent/{TENCENT_HOOK}/status"
        answer = await client.post(path, json=tencent_status(mobile="13900001111"))
        assert answer.status == 200
        assert (await message_row(store, message_id))["status"] == "sent"
        answer = await client.post(path, json=tencent_status())
        assert await answer.json() == {"result": 0, "errmsg": "OK"}
    assert (await message_row(store, message_id))["status"] == "delivered"


async def test_a_late_report_never_undoes_a_final_status(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "tencent", SERIAL)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        path = f"/v1/sms/tencent/{TENCENT_HOOK}/status"
        await client.post(path, json=tencent_status())
        await client.post(path, json=tencent_status(status="FAIL"))
    row = await message_row(store, message_id)
    assert row["status"] == "delivered"


async def test_an_undelivered_report_with_a_dead_code_makes_the_message_dead(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "aliyun", BIZ_ID)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        body = report(message_id, success=False, code="MK:0001")
        await client.post(f"/v1/sms/aliyun/{ALIYUN_HOOK}/report", json=body)
    row = await message_row(store, message_id)
    assert (row["status"], row["error_code"]) == ("dead", "MK:0001")


async def test_an_undelivered_report_with_a_passing_code_sends_it_again_later(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    message_id = await sent_message(store, now, "aliyun", BIZ_ID)
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        body = report(message_id, success=False, code="MK:0023")  # phone off
        await client.post(f"/v1/sms/aliyun/{ALIYUN_HOOK}/report", json=body)
    row = await message_row(store, message_id)
    assert row["status"] == "queued"
    assert row["next_attempt_at"] > now()


async def test_stop_words_in_replies_of_either_provider_opt_the_number_out(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        aliyun_reply = [
            {
                "phone_number": "13812345678",
                "send_time": "2025-06-02 12:00:00",
                "content": " 退订 ",
                "sign_name": "好物优选",
                "dest_code": "1234",
                "sequence_id": 1234567,
            }
        ]
        answer = await client.post(f"/v1/sms/aliyun/{ALIYUN_HOOK}/reply", json=aliyun_reply)
        assert answer.status == 200
        tencent_reply = {
            "extend": "",
            "mobile": "13900001111",
            "nationcode": "86",
            "sign": "好物优选",
            "text": "t",
            "time": 1748836800,
        }
        answer = await client.post(f"/v1/sms/tencent/{TENCENT_HOOK}/reply", json=tencent_reply)
        assert answer.status == 200
    assert sorted(await opted_out(store)) == ["+8613812345678", "+8613900001111"]


async def test_a_reply_signed_with_another_signature_is_refused(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        reply = {"mobile": "13900001111", "nationcode": "86", "sign": "别家", "text": "TD"}
        answer = await client.post(
            f"/v1/sms/tencent/{TENCENT_HOOK}/reply", json={**reply, "time": 1748836800}
        )
        assert answer.status == 422
        assert (await answer.json())["field"] == "sign"
    assert await opted_out(store) == []


async def test_a_malformed_push_is_400_naming_the_body(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        answer = await client.post(
            f"/v1/sms/aliyun/{ALIYUN_HOOK}/report", json=[{"success": "yes"}]
        )
        assert answer.status == 400
        body = await answer.json()
    assert body["field"] == "(body)"
    assert "'success' must be true or false" in body["error"]


async def test_callbacks_of_a_provider_type_without_a_secret_are_404(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    config = settings(tmp_path, store_url)
    providers = dict(config.notifications.providers)
    providers["aliyun"] = providers["aliyun"].model_copy(update={"callback_secret": None})
    config = config.model_copy(
        update={"notifications": config.notifications.model_copy(update={"providers": providers})}
    )
    async with api_client(config, store, now) as (client, _):
        answer = await client.post(f"/v1/sms/aliyun/{ALIYUN_HOOK}/report", json=[])
        assert answer.status == 404
        assert (await answer.json())["error"] == "no aliyun provider has a callback_secret"
        tencent = await client.post(f"/v1/sms/tencent/{TENCENT_HOOK}/status", json=[])
    assert tencent.status == 400  # still open, and an empty push is no push


async def test_the_routes_need_no_bearer_token_but_the_rest_of_v1_still_does(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    now = Now()
    async with api_client(settings(tmp_path, store_url), store, now) as (client, _):
        assert (await client.get("/v1/sms/held")).status == 401
        assert (await client.post("/v1/sms/aliyun/x/unknown", json=[])).status == 404
