"""The `timeline`, `webhooks` and `escalations` sections: what loads, what is refused, where."""

from __future__ import annotations

from tests.unit.config.test_settings import CAMPAIGN, REQUIRED, parse, problems

STAGES = """\
notifications:
  stages:
    callback_missed:
      template: "{signature}订单{order_id}：回复1重新派送"
"""  # lines 10-13


def rules(text: str) -> str:
    return REQUIRED + CAMPAIGN + STAGES + text  # `text` starts at line 14


def test_rules_webhooks_and_retention_load() -> None:
    settings = parse(
        rules(
            """\
timeline: {retention_days: 30}
webhooks:
  url: https://orders.example/hooks
  secret: ${HOOK_SECRET}
  events: [contact.finished, redelivery.requested]
escalations:
  missed:
    on: contact_failed
    campaign: refusal
    send_stage: callback_missed
  reply:
    on: reply
    reply_patterns: ["1", "重新派送"]
    request_redelivery: true
"""
        ),
        {"AMI_SECRET": "a", "API_TOKEN": "t", "HOOK_SECRET": "s3"},
    )
    assert settings.timeline.retention_days == 30
    assert settings.webhooks.secret is not None
    assert settings.webhooks.secret.get_secret_value() == "s3"
    assert settings.webhooks.events == ["contact.finished", "redelivery.requested"]
    assert settings.escalations["reply"].matches_reply(" 重新派送 ")
    assert not settings.escalations["reply"].matches_reply("11")


def test_defaults_keep_90_days_and_send_no_webhook() -> None:
    settings = parse(REQUIRED)
    assert settings.timeline.retention_days == 90
    assert settings.webhooks.url is None
    assert settings.escalations == {}


def test_a_stage_or_campaign_that_does_not_exist_is_an_error_at_its_line() -> None:
    found = problems(
        rules(
            """\
escalations:
  missed:
    on: contact_failed
    campaign: refusal-calback
    send_stage: callback_mised
"""
        )
    )
    assert found == [
        "c.yaml:17: escalations.missed.campaign: unknown campaign 'refusal-calback'; "
        "defined: refusal",
        "c.yaml:18: escalations.missed.send_stage: unknown stage 'callback_mised'; "
        "defined: callback_missed",
    ]


def test_a_rule_that_does_nothing_or_lacks_its_trigger_is_refused() -> None:
    found = problems(
        rules(
            """\
escalations:
  idle:
    on: disposition
    dispositions: [not_at_home]
  reply:
    on: reply
    request_redelivery: true
  bad:
    on: reply
    reply_patterns: ["(unclosed"]
    request_redelivery: true
"""
        )
    )
    assert found == [
        "c.yaml:15: escalations.idle.send_stage: a rule must send_stage or request_redelivery",
        "c.yaml:18: escalations.reply.reply_patterns: required for on: reply",
        "c.yaml:23: escalations.bad.reply_patterns: '(unclosed' is not a regular expression: "
        "missing ), unterminated subpattern at position 0",
    ]


def test_a_webhook_url_needs_its_secret_from_the_environment_or_a_file() -> None:
    found = problems(REQUIRED + "webhooks:\n  url: https://orders.example/hooks\n")
    assert found == [
        "c.yaml:6: webhooks.secret: required with url: give secret (as ${VAR}) or secret_file"
    ]
    written = problems(REQUIRED + "webhooks:\n  url: https://o.example/h\n  secret: plain\n")
    assert written == [
        "c.yaml:8: webhooks.secret: secrets must not be written in the file: use ${VAR} or "
        "secret_file"
    ]


def test_an_unknown_webhook_event_is_refused_at_its_line() -> None:
    found = problems(REQUIRED + "webhooks:\n  events: [contact.finished, call.exploded]\n")
    assert len(found) == 1
    assert found[0].startswith("c.yaml:7: webhooks.events[1]:")


def test_a_reload_applies_new_events_and_rules_but_keeps_the_webhook_target() -> None:
    from dialer.config.reload import effective_settings, restart_only_changes

    environ = {"AMI_SECRET": "a", "API_TOKEN": "t", "HOOK_SECRET": "s3"}
    before = parse(
        REQUIRED + "webhooks:\n  url: https://a.example/h\n  secret: ${HOOK_SECRET}\n", environ
    )
    after = parse(
        REQUIRED
        + "webhooks:\n  url: https://b.example/h\n  secret: ${HOOK_SECRET}\n"
        + "  events: [sms.failed]\n",
        environ,
    )
    assert restart_only_changes(before, after) == ["webhooks.url"]
    applied = effective_settings(before, after)
    assert applied.webhooks.url == "https://a.example/h"
    assert applied.webhooks.events == ["sms.failed"]
