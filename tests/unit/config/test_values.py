"""Values the config accepted but the daemon could not use: control characters in what goes
into an AMI action, booleans read as numbers, sizes and priorities too large to store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import ConfigError, Settings, parse_settings

ENV = {"AMI_SECRET": "ami-s3cret", "API_TOKEN": "api-t0ken"}


def config(ami: str = "", api: str = "", campaign: str = "") -> str:
    return f"""\
ami:
  username: outreach
  secret: ${{AMI_SECRET}}
{ami}api:
  token: ${{API_TOKEN}}
{api}campaigns:
  c:
    kind: refusal_callback
    channel: Local/{{number}}@c
{campaign}"""


def parse(text: str) -> Settings:
    return parse_settings(text, source="c.yaml", base_dir=Path("/srv/outreach"), environ=ENV)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(issue) for issue in caught.value.issues]


# -- control characters -------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\\0", "\\e", "\\t", "\\x7f", "\\x85"])
def test_a_control_character_in_the_caller_id_is_refused(character: str) -> None:
    text = config(campaign=f'    caller_id: "\\"Outreach{character}\\" <4000>"\n')

    [found] = problems(text)

    assert found.startswith("c.yaml:10: campaigns.c.caller_id: must not hold a control character")


def test_a_nul_in_the_channel_is_refused() -> None:
    text = config().replace("channel: Local/{number}@c", 'channel: "Local/{number}@c\\0"')

    assert problems(text) == [
        "c.yaml:9: campaigns.c.channel: must not hold a control character (found \\x00)"
    ]


def test_a_nul_in_the_ami_username_is_refused() -> None:
    text = config().replace("username: outreach", 'username: "outreach\\0Action: Command"')

    assert problems(text) == [
        "c.yaml:2: ami.username: must not hold a control character (found \\x00)"
    ]


def test_printable_text_with_quotes_and_unicode_is_kept() -> None:
    text = config(campaign="    caller_id: '\"外呼 Outreach\" <4000>'\n")

    assert parse(text).campaigns["c"].caller_id == '"外呼 Outreach" <4000>'


# -- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["!!bool yes", "true", "false"])
def test_a_boolean_port_is_refused(value: str) -> None:
    assert problems(config(api=f"  port: {value}\n")) == [
        "c.yaml:6: api.port: should be a number, not a boolean"
    ]


def test_a_boolean_duration_is_refused() -> None:
    assert problems(config(ami="  connect_timeout_s: true\n")) == [
        "c.yaml:4: ami.connect_timeout_s: should be a number, not a boolean"
    ]


def test_a_port_from_the_environment_is_still_read_as_a_number() -> None:
    settings = parse_settings(
        config(api="  port: ${API_PORT}\n"),
        source="c.yaml",
        base_dir=Path("/srv"),
        environ={**ENV, "API_PORT": "9090"},
    )

    assert settings.api.port == 9090


def test_a_body_limit_over_64_mib_is_refused() -> None:
    [found] = problems(config(api="  max_body_bytes: 1e12\n"))

    assert found.startswith("c.yaml:6: api.max_body_bytes: Input should be less than or equal to")
    assert "67108864" in found


def test_a_campaign_priority_past_a_million_is_refused() -> None:
    [found] = problems(config(campaign="    priority: 100000000000000000000\n"))

    assert found == (
        "c.yaml:10: campaigns.c.priority: Input should be less than or equal to 1000000"
    )


def test_a_negative_priority_within_bounds_is_kept() -> None:
    assert parse(config(campaign="    priority: -1000000\n")).campaigns["c"].priority == -1000000


@pytest.mark.parametrize("value", [".inf", ".nan", "1e300"])
def test_an_infinite_or_absurd_duration_is_refused(value: str) -> None:
    [found] = problems(config(ami=f"  ping_interval_s: {value}\n"))

    assert found.startswith("c.yaml:4: ami.ping_interval_s: ")
