"""What timeline entries cause (`dialer.messaging.followup.decide`): pure, no store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialer.config import Settings, parse_settings
from dialer.messaging.followup import decide
from dialer.timeline import TimelineEntry

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
MOBILE, LANDLINE = "+8613812345678", "+861012345678"
BASE = """\
ami: {username: outreach, secret: "${AMI_SECRET}"}
api: {token: "${API_TOKEN}"}
campaigns:
  refusal-callback: {kind: refusal_callback, channel: "Local/{number}@customers"}
notifications:
  stages:
    callback_missed: {template: "{signature}订单{order_id}未接通，回复1重新派送", urgent: true}
    redelivery_confirm: {template: "订单{order_id}将重新派送"}
  quiet_hours: {start: "21:00", end: "08:00", timezone: Asia/Shanghai}
escalations:
  missed: {on: contact_failed, campaign: refusal-callback, send_stage: callback_missed}
  confirm: {on: disposition, dispositions: [not_at_home], send_stage: redelivery_confirm}
  redeliver: {on: reply, reply_patterns: ["1", "重新派送"], request_redelivery: true}
"""
HOOKS = """\
webhooks:
  url: https://orders.example/hooks
  secret: "${HOOK_SECRET}"
"""


def settings(text: str = BASE + HOOKS) -> Settings:
    environ = {"AMI_SECRET": "a", "API_TOKEN": "t", "HOOK_SECRET": "h"}
    return parse_settings(text, source="c.yaml", base_dir=Path("."), environ=environ)


def entry(kind: str, reason: str | None, phone: str = MOBILE, **detail: Any) -> TimelineEntry:
    return TimelineEntry(1, phone, NOW, kind, reason, None, "refusal-callback", "A1", detail)


def finished(state: str, phone: str = MOBILE) -> TimelineEntry:
    return entry(
        "contact_finished", state, phone, contact_id=7, outcome="no_answer", disposition=None,
        why="2 attempts ended no_answer", name="王女士", context={"order_id": "A1"},
    )  # fmt: skip


def test_a_failed_contact_gets_a_webhook_and_the_callback_missed_sms() -> None:
    [hook, rule] = decide([finished("failed")], settings(), NOW)
    [webhook] = hook.messages
    assert (webhook.channel, webhook.stage) == ("webhook", "webhook:contact.finished:contact-7")
    body = json.loads(webhook.body)
    assert body["state"] == "failed"
    assert body["id"] == "contact.finished:contact-7/A1"
    assert (rule.rule, rule.subject) == ("missed", "contact-7")
    [sms] = rule.messages
    assert (sms.channel, sms.stage, sms.phone) == ("sms", "callback_missed", MOBILE)
    assert "A1" in sms.body
    assert sms.next_attempt_at == NOW  # urgent: not held by the quiet hours
    assert [e.kind for e in rule.entries] == ["escalated"]


def test_a_contact_done_gets_the_webhook_only() -> None:
    [hook] = decide([finished("done")], settings(), NOW)
    assert hook.rule is None


def test_no_sms_stage_goes_to_a_landline() -> None:
    actions = decide([finished("failed", LANDLINE)], settings(), NOW)
    assert [action.rule for action in actions] == [None, "missed"]
    assert actions[1].messages == ()  # the rule still acts (once), and says so on the timeline


def test_without_a_webhook_url_nothing_is_sent_to_the_order_system() -> None:
    assert decide([finished("done")], settings(BASE), NOW) == []


def test_a_not_urgent_stage_waits_for_the_end_of_the_quiet_hours() -> None:
    late = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    disposition = entry("disposition", "not_at_home", contact_id=7, context={"order_id": "A1"})
    [action] = decide([disposition], settings(BASE), late)
    assert action.messages[0].next_attempt_at == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def test_a_reply_matching_cancels_each_pending_callback_of_its_order() -> None:
    pending = [{"contact_id": 7, "campaign": "refusal-callback", "order_id": "A1"}]
    reply = entry("sms_reply", "重新派送", pending=pending)
    [action] = decide([reply], settings(), NOW)
    assert (action.rule, action.subject, action.cancel_contacts) == ("redeliver", "order-A1", (7,))
    [hook] = action.messages
    assert json.loads(hook.body)["event"] == "redelivery.requested"


def test_a_reply_without_a_pending_callback_or_not_matching_does_nothing() -> None:
    assert decide([entry("sms_reply", "1", pending=[])], settings(), NOW) == []
    pending = [{"contact_id": 7, "campaign": "refusal-callback", "order_id": "A1"}]
    assert decide([entry("sms_reply", "11", pending=pending)], settings(), NOW) == []


def test_sms_outcomes_become_their_webhooks() -> None:
    delivered = entry("sms_delivered", "delivered", stage="refused", message_id=3)
    dead = entry("sms_dead", "number: invalid", stage="refused", message_id=4)
    opted = entry("opted_out", "sms_reply")
    events = [
        json.loads(action.messages[0].body)["event"]
        for action in decide([delivered, dead, opted], settings(), NOW)
    ]
    assert events == ["sms.delivered", "sms.failed", "sms.opted_out"]


def test_an_entry_that_cannot_be_followed_up_does_not_hold_up_the_others() -> None:
    broken = entry("sms_reply", "1", pending=[{"campaign": "refusal-callback"}])  # no contact_id
    actions = decide([broken, finished("done")], settings(), NOW)
    assert [json.loads(a.messages[0].body)["event"] for a in actions] == ["contact.finished"]


MAINLAND = BASE.replace(
    """  stages:
    callback_missed: {template: "{signature}订单{order_id}未接通，回复1重新派送", urgent: true}
""",
    """  providers:
    aliyun:
      type: aliyun
      access_key_id: "${AK}"
      access_key_secret: "${AS}"
      sign_name: 好物优选
  primary: aliyun
  stages:
    callback_missed:
      template: "{signature}订单{order_id}未接通，回复1重新派送"
      urgent: true
      provider_templates:
        aliyun: {template_code: SMS_1001, template_params: {order: "{order_id}"}}
""",
).replace(
    '    redelivery_confirm: {template: "订单{order_id}将重新派送"}\n',
    """    redelivery_confirm:
      template: "订单{order_id}将重新派送"
      provider_templates: {aliyun: {template_code: SMS_1002}}
""",
)


def test_an_escalation_sms_carries_its_stage_templates_for_a_mainland_provider() -> None:
    environ = {"AMI_SECRET": "a", "API_TOKEN": "t", "AK": "k", "AS": "s"}
    config = parse_settings(MAINLAND, source="c.yaml", base_dir=Path("."), environ=environ)
    [rule] = decide([finished("failed")], config, NOW)
    [sms] = rule.messages
    [(provider, template)] = sms.templates.items()
    assert (provider, template.code, dict(template.params)) == (
        "aliyun",
        "SMS_1001",
        {"order": "A1"},
    )
