"""`make demo SMS=aliyun|tencent`: the demo config built from config/example.yaml on a stand-in
loads, and an order event of the demo's goes through the daemon to the stand-in, with the
stage's placeholders as the template's variables. (The lab PBX is not needed for this.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialer.config import load_settings
from dialer.messaging.providers import build_provider_stack
from dialer.messaging.service import dispatcher_for
from dialer.store import OutboxStore, Store
from tests.fakes.sms_stand_in import (
    DEMO_ENV,
    delivery_report,
    demo_config,
    report_path,
    stand_in,
    template_code,
)
from tests.integration.mainland_support import real_now
from tests.integration.sms_support import api_client, message_row, sms_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example.yaml"
SHIPPED = next(
    event
    for event in json.loads((REPO / "scripts/demo.d/order-events.json").read_text("utf-8"))
    if event["stage"] == "shipped"
)


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_the_demo_sends_its_order_events_through_the_stand_in(
    provider: str, store: Store, tmp_path: Path
) -> None:
    async with stand_in(provider, 0) as fake:
        written = EXAMPLE.with_name(f".demo-{provider}-test-{tmp_path.name}.yaml")
        written.write_text(demo_config(EXAMPLE.read_text("utf-8"), provider, fake.endpoint))
        try:
            settings = load_settings(written, environ=DEMO_ENV)
        finally:
            written.unlink()
        assert settings.notifications.primary == provider
        now = real_now()
        status, answer_body = await sms_service(settings, store, now=now).accept_event(SHIPPED)
        assert status == 202, answer_body
        stack = await build_provider_stack(settings.notifications)
        try:
            sender = dispatcher_for(settings, OutboxStore(store), stack.notifier, now=now)
            assert await sender.run_until_idle() == 1
        finally:
            await stack.notifier.close()
    (sent,) = fake.accepted
    stages = list(settings.notifications.stages)
    assert sent.template_code == template_code(provider, stages.index("shipped"))
    values = sent.params if provider == "tencent" else list(sent.params.values())
    assert SHIPPED["order_id"] in values
    assert fake.signature_failures == 0
    # the stand-in's delivery report, pushed as the demo pushes it, is taken by the daemon
    async with api_client(settings, store, now) as (client, _):
        answer = await client.post(report_path(provider), json=delivery_report(provider, sent))
        assert answer.status == 200
    row = await message_row(store, answer_id(answer_body))
    assert row["status"] == "delivered"


def answer_id(answer: dict[str, object]) -> int:
    message = answer["message"]
    assert isinstance(message, dict)
    return int(message["id"])
