"""A reloaded config's stages and templates apply to the next event posted; what only a restart
can change (the providers) stays as it was."""

from __future__ import annotations

from pathlib import Path

from dialer.config.reload import effective_settings, restart_only_changes
from dialer.store import Store
from tests.integration.sms_support import (
    AUTH,
    STAGES,
    Now,
    api_client,
    event,
    message_row,
    sms_settings,
)

NEW_SHIPPED = '"{signature}新模板：订单{order_id}已发出。"'
RETURN_STAGE = """\
    parcel_lost:
      template: "{signature}订单{order_id}的包裹丢失，我们会联系您。"
      urgent: true
"""


async def test_a_reloaded_template_and_a_new_stage_apply_to_the_next_event(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    before = sms_settings(tmp_path, store_url=store_url)
    new_stages = (
        STAGES.replace(
            STAGES.split("shipped:\n")[1].splitlines()[0], f"      template: {NEW_SHIPPED}"
        )
        + RETURN_STAGE
    )
    after = sms_settings(tmp_path, store_url=store_url, stages=new_stages, primary="twilio")
    async with api_client(before, store, Now()) as (client, component):
        first = await (await client.post("/v1/events", json=event("e1"), headers=AUTH)).json()
        unknown = await client.post(
            "/v1/events", json=event("e2", stage="parcel_lost"), headers=AUTH
        )
        needs_restart = restart_only_changes(before, after)
        changes = await component.reload(effective_settings(before, after))
        second = await client.post("/v1/events", json=event("e3", order_id="A1002"), headers=AUTH)
        lost = await client.post("/v1/events", json=event("e4", stage="parcel_lost"), headers=AUTH)
        second_row = await message_row(store, (await second.json())["message"]["id"])
    first_row = await message_row(store, first["message"]["id"])
    assert unknown.status == 422  # not a stage before the reload
    assert changes == {"sms_stages_changed": ["parcel_lost", "shipped"]}
    assert needs_restart == ["notifications.primary"]
    assert component.settings.notifications.primary == "outbox"  # kept until a restart
    assert first_row["body"].startswith("【好物优选】订单A1001已由顺丰发出")
    assert second_row["body"] == "【好物优选】新模板：订单A1002已发出。"
    assert lost.status == 202
