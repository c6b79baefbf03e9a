"""The config file: what loads, what is refused, and where each problem is reported."""

from __future__ import annotations

import re
import types
import typing
from datetime import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from dialer.config import (
    ConfigError,
    ConfigIssue,
    Settings,
    TimeRange,
    load_settings,
    parse_settings,
)

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data" / "config"
ENV = {"AMI_SECRET": "ami-s3cret", "API_TOKEN": "api-t0ken"}

# What every file needs; the snippets below are appended to it, so their lines start at 6.
REQUIRED = """\
ami:
  username: outreach
  secret: ${AMI_SECRET}
api:
  token: ${API_TOKEN}
"""
CAMPAIGN = """\
campaigns:
  refusal:
    kind: refusal_callback
    channel: PJSIP/{number}@carrier
"""  # lines 6-9


def parse(text: str, environ: dict[str, str] | None = None) -> Settings:
    environ = ENV if environ is None else environ
    return parse_settings(text, source="c.yaml", base_dir=Path("/srv/outreach"), environ=environ)


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    return [str(issue) for issue in caught.value.issues]


# ------------------------------------------------------------------------- valid files


def test_minimal_file_loads_with_defaults_applied() -> None:
    settings = load_settings(DATA / "minimal.yaml", environ=ENV)

    assert (settings.ami.host, settings.ami.port, settings.ami.events) == ("127.0.0.1", 5038, "on")
    assert settings.ami.login_failure_backoff_s == 60
    assert (settings.api.port, settings.api.max_body_bytes) == (8080, 65536)
    assert settings.store.url == f"sqlite:///{DATA}/var/outreach.db"
    assert (settings.logging.level, settings.logging.format) == ("INFO", "auto")
    assert settings.default_region == "CN"
    assert settings.notifications.primary == "outbox"
    assert settings.notifications.providers["outbox"].path == DATA / "var" / "outbox.jsonl"
    assert settings.campaigns == {}


def test_refusal_callback_campaign_gets_its_kind_defaults() -> None:
    campaign = parse(REQUIRED + CAMPAIGN).campaigns["refusal"]

    assert campaign.destination.model_dump() == {
        "context": "outreach-refusal-ivr",
        "exten": "s",
        "priority": 1,
    }
    assert (campaign.ring_timeout_s, campaign.max_concurrent_calls) == (25, 5)
    assert (campaign.max_total_attempts, campaign.priority) == (3, 0)
    assert sorted(campaign.calling_windows) == sorted(["mon", "tue", "wed", "thu", "fri", "sat"])
    assert campaign.calling_windows["sat"] == (TimeRange(time(9), time(21)),)
    assert campaign.dispositions["0"] == "agent"


def test_vip_campaign_gets_its_kind_defaults_and_dials_into_agent_queue() -> None:
    text = REQUIRED + "campaigns:\n  care:\n    kind: vip\n    channel: Local/{number}@c\n"
    campaign = parse(text + "    agent_queue: agents\n").campaigns["care"]

    assert campaign.destination.model_dump() == {"queue": "agents", "context": "outreach-vip"}
    assert (campaign.max_concurrent_calls, campaign.max_total_attempts) == (2, 5)
    assert campaign.priority == 10
    assert "sat" not in campaign.calling_windows
    assert campaign.calling_windows["fri"] == (TimeRange(time(9), time(20)),)


def test_example_config_is_valid() -> None:
    settings = load_settings(REPO / "config" / "example.yaml", environ={})

    assert sorted(settings.campaigns) == ["proactive", "refusal-callback", "vip-care"]
    assert settings.campaigns["proactive"].pacing_rule() is not None
    assert settings.notifications.stages["refused"].add_to_campaign == "refusal-callback"
    assert settings.notifications.stages["delivered"].only_vip
    assert settings.api.token.get_secret_value() == "demo-api-token"


def test_example_config_logs_in_to_the_lab_pbx() -> None:
    lab_pbx = (REPO / "lab" / "pbx").read_text()
    lab_port = re.search(r"AMI_PORT=\$\{PBX_AMI_PORT:-(\d+)\}", lab_pbx)
    lab_user = re.search(r"^AMI_USER=(\w+)$", lab_pbx, re.MULTILINE)
    assert lab_port is not None
    assert lab_user is not None

    settings = load_settings(REPO / "config" / "example.yaml", environ={})

    assert (settings.ami.port, settings.ami.username) == (15038, "outreach")
    assert (settings.ami.port, settings.ami.username) == (int(lab_port[1]), lab_user[1])


def test_dispositions_accept_unquoted_digits() -> None:
    text = REQUIRED + CAMPAIGN + "    dispositions:\n      1: wrong_item\n      9: other\n"

    campaign = parse(text).campaigns["refusal"]

    assert campaign.dispositions == {"1": "wrong_item", "9": "other"}


def test_every_field_is_described_for_the_reference() -> None:
    undocumented = [
        f"{model.__name__}.{name}"
        for model in _models(Settings)
        for name, field in model.model_fields.items()
        if not field.description
    ]

    assert undocumented == []


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    pending: list[object] = [root]
    while pending:
        item = pending.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item not in found:
                found.add(item)
                pending += [field.annotation for field in item.model_fields.values()]
        elif isinstance(item, types.UnionType) or typing.get_origin(item) is not None:
            pending += typing.get_args(item)
    return found


# ------------------------------------------------------------------ reporting problems


def test_three_mistakes_give_three_issues_at_their_lines() -> None:
    path = DATA / "three_mistakes.yaml"

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=ENV)

    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:1: ami.username: required key is missing",
        f"{path}:2: ami.port: "
        "Input should be a valid integer, unable to parse string as an integer",
        f"{path}:8: logging.colour: unknown key",
    ]


def test_config_error_str_lists_every_issue_on_its_own_line() -> None:
    issues = [ConfigIssue("c.yaml", 3, "ami.port", "bad"), ConfigIssue("c.yaml", None, "x", "y")]

    assert str(ConfigError(issues)) == "c.yaml:3: ami.port: bad\nc.yaml:?: x: y"


def test_unreadable_file_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(DATA / "no-such.yaml", environ=ENV)

    assert [str(issue) for issue in caught.value.issues] == [
        f"{DATA / 'no-such.yaml'}:?: (root): cannot read: No such file or directory"
    ]


def test_empty_file_is_reported() -> None:
    assert problems("# nothing here\n") == [
        "c.yaml:1: (root): expected a mapping, found an empty file"
    ]


def test_yaml_syntax_error_is_reported_at_its_line() -> None:
    text = REQUIRED + "logging:\n  level: [INFO\n  format: json\n"

    assert problems(text) == [
        "c.yaml:8: (yaml): expected ',' or ']', but got ':' (while parsing a flow sequence)"
    ]


def test_duplicate_key_is_reported_at_its_second_line() -> None:
    text = REQUIRED + "logging:\n  level: INFO\n  level: DEBUG\n"

    assert problems(text) == [
        'c.yaml:8: (yaml): duplicate key "level" (in the mapping that starts on line 7)'
    ]


def test_union_tag_is_not_part_of_the_dotted_key() -> None:
    text = REQUIRED + CAMPAIGN + "    ring_timeout_s: 10\n"

    assert problems(text) == [
        "c.yaml:10: campaigns.refusal.ring_timeout_s: Input should be greater than or equal to 15"
    ]


def test_unknown_campaign_kind_is_reported_at_the_kind_line() -> None:
    text = REQUIRED + "campaigns:\n  c:\n    channel: Local/{number}@c\n    kind: survey\n"

    assert problems(text) == [
        "c.yaml:9: campaigns.c.kind: unknown kind 'survey'; one of: refusal_callback, vip, outbound"
    ]


def test_keys_from_a_yaml_merge_are_reported_at_the_anchor() -> None:
    text = (
        REQUIRED
        + "base: &base\n  ring_timeout_s: 5\n"
        + CAMPAIGN.replace("    kind", "    <<: *base\n    kind")
    )

    assert problems(text) == [
        "c.yaml:6: base: unknown key",
        "c.yaml:7: campaigns.refusal.ring_timeout_s: Input should be greater than or equal to 15",
    ]


# ------------------------------------------------------------- environment and secrets


def test_unset_environment_variable_is_reported_once_at_its_line() -> None:
    assert problems(REQUIRED, environ={"API_TOKEN": "t"}) == [
        "c.yaml:3: ami.secret: environment variable AMI_SECRET is not set"
    ]


def test_environment_default_is_used_when_the_variable_is_unset() -> None:
    text = REQUIRED.replace("${API_TOKEN}", "${API_TOKEN:-dev-token}")

    settings = parse(text, environ={"AMI_SECRET": "s"})

    assert settings.api.token.get_secret_value() == "dev-token"


def test_environment_variable_is_expanded_inside_a_string() -> None:
    text = REQUIRED + "store:\n  url: postgresql://app@${DB_HOST}/app\n"

    settings = parse(text, environ={**ENV, "DB_HOST": "db.internal:5433"})

    assert settings.store.url == "postgresql://app@db.internal:5433/app"


def test_environment_is_the_process_environment_unless_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    settings = load_settings(DATA / "minimal.yaml")

    assert settings.ami.secret.get_secret_value() == ENV["AMI_SECRET"]


def test_secret_file_is_read_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings(DATA / "secret_file" / "outreach.yaml", environ={})

    assert settings.ami.secret.get_secret_value() == "from-a-file"
    assert settings.api.token.get_secret_value() == "token-from-a-file"


def test_missing_secret_file_is_reported_with_its_path() -> None:
    text = REQUIRED.replace("secret: ${AMI_SECRET}", "secret_file: secrets/ami")

    assert problems(text) == [
        "c.yaml:3: ami.secret_file: cannot read secret file /srv/outreach/secrets/ami: "
        "No such file or directory"
    ]


def test_secret_and_secret_file_together_are_rejected() -> None:
    text = REQUIRED.replace("${AMI_SECRET}", "${AMI_SECRET}\n  secret_file: ami-secret")

    assert problems(text) == [
        "c.yaml:4: ami.secret_file: give either secret or secret_file, not both"
    ]


def test_missing_secret_names_both_ways_to_give_it() -> None:
    text = REQUIRED.replace("  secret: ${AMI_SECRET}\n", "")

    assert problems(text) == [
        "c.yaml:1: ami.secret: required: give secret (as ${VAR}) or secret_file"
    ]


def test_secret_written_in_the_file_is_rejected() -> None:
    text = REQUIRED.replace("${API_TOKEN}", "hunter2")

    assert problems(text) == [
        "c.yaml:5: api.token: secrets must not be written in the file: use ${VAR} or token_file"
    ]


def test_secrets_are_not_shown_in_repr() -> None:
    text = REQUIRED + "store:\n  url: postgresql://app:${DB_PASSWORD}@db/app\n"

    settings = parse(text, environ={**ENV, "DB_PASSWORD": "db-pa55"})

    assert settings.store.password is not None
    for secret in ("ami-s3cret", "api-t0ken", "db-pa55"):
        assert secret not in repr(settings)
        assert secret not in str(settings)


# ------------------------------------------------------------------------------ store


def test_relative_sqlite_url_is_resolved_against_the_config_dir() -> None:
    settings = parse(REQUIRED + "store:\n  url: sqlite:///../var/outreach.db\n")

    assert settings.store.sqlite_path == Path("/srv/var/outreach.db")
    assert settings.store.async_url == "sqlite+aiosqlite:////srv/var/outreach.db"


def test_absolute_sqlite_url_is_kept() -> None:
    settings = parse(REQUIRED + "store:\n  url: sqlite:////data/outreach.db\n")

    assert settings.store.async_url == "sqlite+aiosqlite:////data/outreach.db"


def test_postgres_url_becomes_an_asyncpg_url_with_the_password(tmp_path: Path) -> None:
    (tmp_path / "pg-password").write_text("p@ss:w/rd\n")
    text = REQUIRED + "store:\n  url: postgresql://app@db:5432/app\n  password_file: pg-password\n"

    settings = parse_settings(text, source="c.yaml", base_dir=tmp_path, environ=ENV)

    url = make_url(settings.store.async_url)
    assert (url.drivername, url.username, url.host, url.port) == (
        "postgresql+asyncpg",
        "app",
        "db",
        5432,
    )
    assert (url.database, url.password) == ("app", "p@ss:w/rd")


def test_unsupported_database_scheme_is_rejected() -> None:
    assert problems(REQUIRED + "store:\n  url: mysql://app@db/app\n") == [
        "c.yaml:7: store.url: unsupported database 'mysql': use sqlite or postgresql"
    ]


# -------------------------------------------------------------------------- campaigns


def test_ring_timeout_under_15_s_is_rejected() -> None:
    assert problems(REQUIRED + CAMPAIGN + "    ring_timeout_s: 10\n") == [
        "c.yaml:10: campaigns.refusal.ring_timeout_s: Input should be greater than or equal to 15"
    ]


def test_campaign_name_must_be_a_slug() -> None:
    text = REQUIRED + CAMPAIGN.replace("  refusal:", "  Refusal Calls:")

    assert problems(text) == [
        "c.yaml:7: campaigns.Refusal Calls: "
        "'Refusal Calls' is not a valid name: use a-z, 0-9, '-' and '_'"
    ]


def test_channel_without_number_placeholder_is_rejected() -> None:
    text = REQUIRED + CAMPAIGN.replace("{number}", "{phone}")

    assert problems(text) == [
        "c.yaml:9: campaigns.refusal.channel: must contain {number} once and no other placeholder"
    ]


def test_unknown_weekday_is_rejected() -> None:
    text = REQUIRED + CAMPAIGN + "    calling_windows:\n      monday: [09:00-12:00]\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.refusal.calling_windows.monday: "
        "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'"
    ]


def test_window_that_ends_before_it_starts_is_rejected() -> None:
    text = REQUIRED + CAMPAIGN + "    calling_windows:\n      mon: [21:00-09:00]\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.refusal.calling_windows.mon[0]: "
        "'21:00-09:00': a window must start before it ends (split a night in two)"
    ]


def test_overlapping_windows_are_rejected() -> None:
    text = REQUIRED + CAMPAIGN + "    calling_windows:\n      mon: [14:00-18:00, 09:00-15:00]\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.refusal.calling_windows.mon: 14:00-18:00 overlaps 09:00-15:00"
    ]


def test_unknown_time_zone_is_rejected() -> None:
    assert problems(REQUIRED + CAMPAIGN + "    timezone: Asia/Beijing\n") == [
        "c.yaml:10: campaigns.refusal.timezone: "
        "unknown time zone 'Asia/Beijing'; use an IANA name like Asia/Shanghai"
    ]


def test_unknown_retry_outcome_is_rejected() -> None:
    text = REQUIRED + CAMPAIGN + "    retry:\n      hung_up: {delay_s: 60, max_attempts: 2}\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.refusal.retry.hung_up: Input should be 'busy', 'no_answer', "
        "'congestion', 'unavailable', 'failed', 'rejected', 'abandoned' or 'unknown'"
    ]


def test_vip_campaign_without_agent_queue_is_rejected() -> None:
    text = REQUIRED + "campaigns:\n  care:\n    kind: vip\n    channel: Local/{number}@c\n"

    assert problems(text) == ["c.yaml:7: campaigns.care.agent_queue: required key is missing"]


def test_vip_campaign_dialling_into_another_queue_is_rejected() -> None:
    text = REQUIRED + "campaigns:\n  care:\n    kind: vip\n    channel: Local/{number}@c\n"
    text += "    agent_queue: agents\n    destination: {queue: sales}\n"

    assert problems(text) == [
        "c.yaml:11: campaigns.care.destination.queue: "
        "must be agent_queue, whose free agents gate dialling"
    ]


def test_allowed_country_must_be_a_known_region() -> None:
    assert problems(REQUIRED + CAMPAIGN + "    allowed_countries: [CN, XX]\n") == [
        "c.yaml:10: campaigns.refusal.allowed_countries[1]: "
        "'XX' is not a region code phonenumbers knows (e.g. CN, HK, US)"
    ]


def test_missing_dnc_file_is_rejected() -> None:
    assert problems(REQUIRED + CAMPAIGN + "    dnc_file: dnc.txt\n") == [
        "c.yaml:10: campaigns.refusal.dnc_file: "
        "cannot read the do-not-call list /srv/outreach/dnc.txt"
    ]


def test_ami_events_mask_without_system_is_rejected() -> None:
    text = REQUIRED.replace("  username", "  events: call,user\n  username")

    assert problems(text) == [
        "c.yaml:2: ami.events: must be 'on' or include 'system' (else no resume after a reconnect)"
    ]


# ---------------------------------------------------------------------- notifications


STAGES = """\
notifications:
  stages:
    shipped:
      template: "{signature}您的订单{order_id}已发出"
"""  # lines 6-9


def test_unknown_template_placeholder_is_reported_at_the_template_line() -> None:
    text = REQUIRED + STAGES.replace("{order_id}", "{order_no}")

    assert problems(text) == [
        "c.yaml:9: notifications.stages.shipped.template: unknown placeholder {order_no}; "
        "allowed: customer_name, order_id, stage, signature, tracking_number, courier, eta, "
        "amount, refund_amount, return_id, opt_out_hint"
    ]


def test_template_with_bad_format_syntax_is_reported() -> None:
    text = REQUIRED + STAGES.replace("{order_id}", "{order_id")

    assert problems(text) == [
        "c.yaml:9: notifications.stages.shipped.template: "
        "invalid template: expected '}' before end of string"
    ]


def test_marketing_stage_without_opt_out_hint_is_rejected() -> None:
    text = REQUIRED + STAGES + "      marketing: true\n"

    assert problems(text) == [
        "c.yaml:9: notifications.stages.shipped.template: "
        "a marketing stage must include {opt_out_hint}"
    ]


def test_stage_pointing_at_a_missing_campaign_is_rejected() -> None:
    text = REQUIRED + STAGES + "      add_to_campaign: refusal\n"

    assert problems(text) == [
        "c.yaml:10: notifications.stages.shipped.add_to_campaign: unknown campaign 'refusal'; "
        "defined: none"
    ]


def test_stage_adding_everyone_to_a_vip_campaign_is_rejected() -> None:
    text = (
        REQUIRED
        + """\
campaigns:
  care:
    kind: vip
    channel: Local/{number}@c
    agent_queue: agents
notifications:
  stages:
    delivered:
      template: "{signature}您的订单{order_id}已签收"
      add_to_campaign: care
"""
    )

    assert problems(text) == [
        "c.yaml:15: notifications.stages.delivered.add_to_campaign: "
        "a vip campaign: set only_vip: true, or every customer is added"
    ]


def test_fallback_equal_to_primary_is_rejected() -> None:
    text = REQUIRED + "notifications:\n  primary: outbox\n  fallback: outbox\n"

    assert problems(text) == ["c.yaml:8: notifications.fallback: must differ from primary"]


def test_unknown_primary_provider_is_rejected() -> None:
    text = REQUIRED + "notifications:\n  primary: twilio\n"

    assert problems(text) == [
        "c.yaml:7: notifications.primary: unknown provider 'twilio'; defined: outbox"
    ]


TWILIO = """\
notifications:
  primary: twilio
  providers:
    twilio:
      type: twilio
      account_sid: AC00000000000000000000000000000000
      auth_token: ${TWILIO_AUTH_TOKEN}
      from_number: "+15005550006"
"""  # lines 6-13


def test_twilio_provider_takes_its_token_from_the_environment() -> None:
    settings = parse(REQUIRED + TWILIO, environ={**ENV, "TWILIO_AUTH_TOKEN": "tw-t0ken"})

    provider = settings.notifications.providers["twilio"]
    assert provider.auth_token.get_secret_value() == "tw-t0ken"


def test_twilio_status_callback_needs_the_public_url() -> None:
    text = REQUIRED + TWILIO + "      status_callback_url: https://x.example/v1/sms/twilio/status\n"

    assert problems(text, environ={**ENV, "TWILIO_AUTH_TOKEN": "tw"}) == [
        "c.yaml:14: notifications.providers.twilio.status_callback_url: "
        "needs api.public_url, to check the callbacks' signatures"
    ]


def test_http_gateway_status_lists_must_not_overlap() -> None:
    text = REQUIRED + "notifications:\n  providers:\n    gw:\n      type: http\n"
    text += "      url: https://sms.example/send\n      transient_statuses: [200, 503]\n"
    text += "  primary: gw\n"

    assert problems(text) == [
        "c.yaml:11: notifications.providers.gw.transient_statuses: [200] also in success_statuses"
    ]
