"""The outbound campaign kind: its pacing, abandon rule and the errors it reports, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import ConfigError, OutboundCampaign, Settings, parse_settings

REQUIRED = """\
ami:
  username: outreach
  secret: ${AMI_SECRET}
api:
  token: ${API_TOKEN}
campaigns:
  proactive:
    kind: outbound
    channel: Local/{number}@customers
"""  # the campaign's own keys go on at line 10


def parse(text: str) -> Settings:
    return parse_settings(
        text, source="c.yaml", base_dir=Path("/srv"), environ={"AMI_SECRET": "s", "API_TOKEN": "t"}
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(issue) for issue in caught.value.issues]


def outbound(text: str) -> OutboundCampaign:
    campaign = parse(REQUIRED + text).campaigns["proactive"]
    assert isinstance(campaign, OutboundCampaign)
    return campaign


def test_outbound_campaign_defaults_to_progressive_into_its_agent_queue() -> None:
    campaign = outbound("    agent_queue: sales\n")

    rule = campaign.pacing_rule()
    assert (rule.mode, rule.abandon_after_s, rule.abandon_cap) == ("progressive", 2.0, 0.03)
    assert rule.abandon_window_s == 30 * 86400
    route = campaign.answer_route()
    assert (route.context, route.queue) == ("outreach-outbound", "sales")
    assert campaign.free_agent_queue == "sales"


def test_predictive_pacing_and_a_24h_rule_are_read() -> None:
    campaign = outbound(
        "    agent_queue: sales\n"
        "    pacing: {mode: predictive, max_abandon_rate: 0.01}\n"
        "    abandon_rule: {max_rate: 0.02, window: 24h}\n"
        "    intro: {sound: hello, duration_s: 4}\n"
    )

    rule = campaign.pacing_rule()
    assert (rule.mode, rule.max_abandon_rate, rule.abandon_cap) == ("predictive", 0.01, 0.02)
    assert (rule.abandon_window_s, rule.intro_s) == (86400.0, 4.0)
    assert campaign.dialplan_variables() == {
        "ABANDON_AFTER": "2",
        "ABANDON_MESSAGE": "outreach-abandoned",
        "INTRO": "hello",
    }


def test_pacing_aim_above_the_rule_cap_is_held_to_the_cap() -> None:
    campaign = outbound(
        "    agent_queue: sales\n"
        "    pacing: {mode: predictive, max_abandon_rate: 0.05}\n"
        "    abandon_rule: {max_rate: 0.01}\n"
    )

    assert campaign.pacing_rule().max_abandon_rate == 0.01


def test_unknown_pacing_mode_is_reported_at_its_line() -> None:
    text = REQUIRED + "    agent_queue: sales\n    pacing:\n      mode: turbo\n"

    assert problems(text) == [
        "c.yaml:12: campaigns.proactive.pacing.mode: "
        "Input should be 'progressive', 'power' or 'predictive'"
    ]


def test_power_ratio_of_one_or_less_is_reported_at_its_line() -> None:
    text = REQUIRED + "    agent_queue: sales\n    pacing:\n      mode: power\n      ratio: 1\n"

    assert problems(text) == [
        "c.yaml:13: campaigns.proactive.pacing.ratio: Input should be greater than 1"
    ]


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("0", "Input should be greater than 0"),
        ("0.2", "Input should be less than or equal to 0.1"),
    ],
)
def test_max_abandon_rate_outside_zero_to_a_tenth_is_reported(rate: str, message: str) -> None:
    text = REQUIRED + f"    agent_queue: sales\n    pacing:\n      max_abandon_rate: {rate}\n"

    assert problems(text) == [f"c.yaml:12: campaigns.proactive.pacing.max_abandon_rate: {message}"]


def test_abandon_rule_cap_outside_zero_to_a_tenth_is_reported() -> None:
    text = REQUIRED + "    agent_queue: sales\n    abandon_rule: {max_rate: 0.5, window: 1w}\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.proactive.abandon_rule.max_rate: "
        "Input should be less than or equal to 0.1",
        "c.yaml:11: campaigns.proactive.abandon_rule.window: '1w' is not a window like 24h or 30d",
    ]


def test_outbound_campaign_without_agent_queue_is_reported() -> None:
    assert problems(REQUIRED) == [
        "c.yaml:7: campaigns.proactive.agent_queue: required key is missing"
    ]


def test_vip_campaign_takes_no_pacing() -> None:
    text = REQUIRED.replace("kind: outbound", "kind: vip")
    text += "    agent_queue: sales\n    pacing: {mode: predictive}\n"

    assert problems(text) == ["c.yaml:11: campaigns.proactive.pacing: unknown key"]
