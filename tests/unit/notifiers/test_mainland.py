"""Template variables checked against the providers' documented rules before anything is sent,
and Beijing's calendar day (the providers' daily limits and lookups run on it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifiers import OutboundSms, PermanentError, ProviderTemplate
from notifiers.mainland import (
    beijing_today,
    check_template,
    contains_link,
    seconds_until_next_beijing_day,
)


def sms(params: dict[str, str] | None, code: str = "SMS_123") -> OutboundSms:
    template = None if params is None else ProviderTemplate(code, params)
    return OutboundSms("msg-42", "+8613812345678", "【优品购】您的订单已发货", template=template)


def refusal(message: OutboundSms, *, max_chars: int | None = 35, empty: bool = False) -> str:
    with pytest.raises(PermanentError) as raised:
        check_template(message, provider="aliyun", max_param_chars=max_chars, allow_empty=empty)
    assert raised.value.reason == "provider"
    assert raised.value.provider == "aliyun"
    return str(raised.value.code)


def test_a_good_template_is_returned_as_it_is() -> None:
    message = sms({"name": "张三", "order": "A123-456"})
    assert check_template(message, provider="aliyun", max_param_chars=35, allow_empty=False) == (
        message.template
    )


def test_a_message_without_a_template_is_refused_for_the_provider() -> None:
    assert refusal(sms(None)) == "template_missing"
    assert refusal(sms({}, code="")) == "template_missing"


def test_a_variable_over_the_limit_is_refused_and_one_at_the_limit_passes() -> None:
    assert refusal(sms({"name": "长" * 36})) == "template_param_invalid"
    check_template(sms({"name": "长" * 35}), provider="x", max_param_chars=35, allow_empty=False)


def test_without_a_per_variable_limit_only_the_500_character_message_limit_holds() -> None:
    check_template(sms({"a": "x" * 400}), provider="x", max_param_chars=None, allow_empty=True)
    assert refusal(sms({"a": "x" * 300, "b": "y" * 201}), max_chars=None) == (
        "template_param_invalid"
    )


def test_an_empty_variable_is_refused_where_the_provider_refuses_it() -> None:
    assert refusal(sms({"code": ""})) == "template_param_invalid"
    check_template(sms({"code": ""}), provider="x", max_param_chars=6, allow_empty=True)


def test_a_value_that_is_not_a_string_is_refused() -> None:
    assert refusal(sms({"amount": 12})) == "template_param_invalid"  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "value",
    [
        "https://shop.example.com/o/1",
        "http://t.cn/A6x",
        "www.example.com",
        "详情见 dwz.cn/abc",
        "shop.example.com/orders",
        "HTTPS://EXAMPLE.CN",
    ],
)
def test_a_link_in_a_variable_is_refused(value: str) -> None:
    assert contains_link(value)
    assert refusal(sms({"link": value[:35]})) == "template_param_invalid"


@pytest.mark.parametrize("value", ["A123.45", "12.50元", "Node.js", "张三", "2026-12-06 20:00"])
def test_ordinary_values_are_not_links(value: str) -> None:
    assert not contains_link(value)


@pytest.mark.parametrize(
    ("utc", "seconds"),
    [
        (datetime(2026, 12, 6, 12, 0, tzinfo=UTC), 4 * 3600.0),  # 20:00 Beijing
        (datetime(2026, 12, 6, 15, 59, 30, tzinfo=UTC), 30.0),  # 23:59:30 Beijing
        (datetime(2026, 12, 6, 16, 0, tzinfo=UTC), 24 * 3600.0),  # midnight Beijing
    ],
)
def test_the_next_beijing_day_starts_at_beijing_midnight(utc: datetime, seconds: float) -> None:
    assert seconds_until_next_beijing_day(utc) == seconds


def test_beijing_today_is_a_day_ahead_of_utc_in_the_evening() -> None:
    evening_utc = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
    assert beijing_today(lambda: evening_utc).isoformat() == "2026-12-07"
