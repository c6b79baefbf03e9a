"""Config of the Aliyun and Tencent providers, their stage templates and the daily limit per
number: what loads, and what is refused at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import (
    AliyunProvider,
    ConfigError,
    Settings,
    TencentProvider,
    parse_settings,
)

ENV = {"AMI": "x", "API": "t", "AK": "LTAI-key", "AS": "aliyun-secret", "HOOK": "hook-secret"}
HEAD = """\
ami: {username: outreach, secret: "${AMI}"}
api: {token: "${API}"}
notifications:
  providers:
    outbox: {type: outbox}
    aliyun:
      type: aliyun
      access_key_id: "${AK}"
      access_key_secret: "${AS}"
      sign_name: 好物优选
      callback_secret: "${HOOK}"
    tencent:
      type: tencent
      secret_id: "${AK}"
      secret_key: "${AS}"
      sdk_app_id: "1400006666"
      sign_name: 好物优选
      endpoint: "127.0.0.1:8090"
      protocol: http
"""  # lines 1-19
TEMPLATED = """\
  stages:
    shipped:
      template: "{signature}订单{order_id}已发货"
      provider_templates:
        aliyun: {template_code: SMS_1, template_params: {order: "{order_id}"}}
        tencent: {template_code: "11", template_params: {"1": "{order_id}"}}
"""


def parse(text: str, environ: dict[str, str] | None = None) -> Settings:
    return parse_settings(
        text, source="c.yaml", base_dir=Path("/srv"), environ=ENV if environ is None else environ
    )


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    return [str(issue) for issue in caught.value.issues]


def test_both_providers_load_with_their_defaults_and_the_stage_templates() -> None:
    settings = parse(HEAD + "  primary: aliyun\n  fallback: tencent\n" + TEMPLATED)
    aliyun = settings.notifications.providers["aliyun"]
    tencent = settings.notifications.providers["tencent"]
    assert isinstance(aliyun, AliyunProvider)
    assert isinstance(tencent, TencentProvider)
    assert aliyun.access_key_secret.get_secret_value() == "aliyun-secret"
    assert (aliyun.region, aliyun.max_param_chars, aliyun.pool_size) == ("cn-hangzhou", 35, 4)
    assert (tencent.endpoint, tencent.protocol, tencent.max_param_chars) == (
        "127.0.0.1:8090",
        "http",
        None,
    )
    shipped = settings.notifications.stages["shipped"]
    assert shipped.provider_templates["tencent"].template_code == "11"
    assert dict(shipped.provider_templates["aliyun"].template_params) == {"order": "{order_id}"}


def test_a_key_written_in_the_file_is_refused_at_its_line() -> None:
    text = HEAD.replace('access_key_secret: "${AS}"', "access_key_secret: plain")
    (found,) = problems(text)
    assert found.startswith("c.yaml:9: notifications.providers.aliyun.access_key_secret: secrets")


def test_a_key_may_come_from_a_file(tmp_path: Path) -> None:
    key = tmp_path / "aliyun.key"
    key.write_text("from-file\n", encoding="utf-8")
    text = HEAD.replace('access_key_secret: "${AS}"', f"access_key_secret_file: {key}")
    provider = parse(text).notifications.providers["aliyun"]
    assert isinstance(provider, AliyunProvider)
    assert provider.access_key_secret.get_secret_value() == "from-file"


def test_a_stage_without_a_template_for_the_primary_is_an_error_at_its_line() -> None:
    text = HEAD + '  primary: aliyun\n  stages:\n    shipped:\n      template: "x{order_id}"\n'
    assert problems(text) == [
        "c.yaml:23: notifications.stages.shipped.template: no template_code for provider "
        "'aliyun': aliyun sends only approved templates; add provider_templates.aliyun"
    ]


def test_a_stage_without_a_template_for_the_fallback_is_an_error_too() -> None:
    text = (
        HEAD
        + "  primary: aliyun\n  fallback: tencent\n"
        + TEMPLATED.replace(
            '        tencent: {template_code: "11", template_params: {"1": "{order_id}"}}\n', ""
        )
    )
    (found,) = problems(text)
    assert found.startswith("c.yaml:25: notifications.stages.shipped.provider_templates: ")
    assert "no template_code for provider 'tencent'" in found


def test_a_stage_template_for_an_unknown_provider_is_an_error() -> None:
    text = HEAD + "  primary: aliyun\n" + TEMPLATED.replace("tencent:", "tencnet:")
    (found,) = problems(text)
    assert found.startswith("c.yaml:26: notifications.stages.shipped.provider_templates.tencnet:")


def test_an_unknown_placeholder_in_a_template_variable_is_refused() -> None:
    text = HEAD + "  primary: aliyun\n" + TEMPLATED.replace('"{order_id}"}}', '"{orderid}"}}', 1)
    (found,) = problems(text)
    assert "template_params.order: " in found
    assert "unknown placeholder {orderid}" in found


def test_twilio_or_the_outbox_need_no_stage_template() -> None:
    text = HEAD + '  stages:\n    shipped:\n      template: "x{order_id}"\n'
    assert parse(text).notifications.primary == "outbox"


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ('sdk_app_id: "app"', "sdk_app_id", "String should match pattern"),
        ("endpoint: http://x/y", "endpoint", "without scheme or path"),
        ("callback_allow_from: [not-a-net]", "callback_allow_from[0]", "not an IP address"),
        ("pool_size: 0", "pool_size", "greater than or equal to 1"),
    ],
)
def test_bad_tencent_values_are_refused_at_their_key(line: str, key: str, message: str) -> None:
    name = line.partition(":")[0]
    lines = [text for text in HEAD.splitlines() if not text.startswith(f"      {name}:")]
    lines.insert(lines.index("      protocol: http"), "      " + line)
    (found,) = problems("\n".join(lines) + "\n")
    assert f"notifications.providers.tencent.{key}: " in found
    assert message in found


def test_the_urgent_reserve_must_leave_room_for_the_other_stages() -> None:
    text = HEAD + "  daily_limit_per_number: 3\n  daily_limit_urgent_reserve: 3\n"
    assert problems(text) == [
        "c.yaml:21: notifications.daily_limit_urgent_reserve: must be less than "
        "daily_limit_per_number (non-urgent stages get the rest)"
    ]


def test_an_urgent_reserve_without_a_limit_is_refused() -> None:
    (found,) = problems(HEAD + "  daily_limit_urgent_reserve: 1\n")
    assert (
        found == "c.yaml:20: notifications.daily_limit_urgent_reserve: needs daily_limit_per_number"
    )


def test_the_commented_providers_and_stage_templates_of_the_example_load(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
    lines = example.read_text(encoding="utf-8").splitlines()
    start = lines.index("    # aliyun:")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  primary:"))
    for i in range(start, end):  # uncomment the two providers' blocks
        lines[i] = lines[i].replace("# ", "", 1)
    for i, line in enumerate(lines):
        if line.strip().startswith(("# provider_templates:", "#   aliyun: {", "#   tencent: {")):
            lines[i] = line.replace("# ", "", 1)
    for i, line in enumerate(lines):  # the lab's secret files, as the example's other secrets
        lines[i] = line.replace("../lab/", str(example.parents[1] / "lab") + "/")
    environ = {
        "ALIYUN_ACCESS_KEY_ID": "id",
        "ALIYUN_ACCESS_KEY_SECRET": "key",
        "ALIYUN_CALLBACK_SECRET": "hook",
        "TENCENTCLOUD_SECRET_ID": "id",
        "TENCENTCLOUD_SECRET_KEY": "key",
        "TENCENT_CALLBACK_SECRET": "hook",
    }
    settings = parse_settings(
        "\n".join(lines), source="example.yaml", base_dir=tmp_path, environ=environ
    )
    notifications = settings.notifications
    assert {"aliyun", "tencent"} <= set(notifications.providers)
    shipped = notifications.stages["shipped"].provider_templates
    assert shipped["aliyun"].template_code == "SMS_123456789"
    assert list(shipped["tencent"].template_params) == ["order", "courier", "no", "eta"]
